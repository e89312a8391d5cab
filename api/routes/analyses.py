"""One endpoint per built-in analysis; results are reasoning.results models, redacted to the key's
plant scope (see api.scope) and wrapped with a note of what was withheld."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.cache import CachedResponse
from api.deps import Analyst, AuditContext, AuditDep, ServicesDep, StoreDep
from api.keys import Principal
from api.problems import PROBLEM_RESPONSES, FieldError, ProblemError, not_found
from api.schemas import AnalysisResponse, envelope_json
from api.scope import entity_ref_ids, redact_json, scope_note
from api.services import Services
from reasoning.results import RiskBoard, RootCauseResult, SopInEffectResult, TraceResult
from store.base import GraphStore

router = APIRouter(prefix="/v1", tags=["analyses"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=200)]
AsOf = Annotated[datetime | None, Query(description="the graph as it was at this time (ISO-8601 with offset)")]
LotPrecise = Annotated[bool, Query(description="follow lot-to-lot links (DERIVED_FROM) where recorded")]
R = TypeVar("R", bound=BaseModel)


class RootCauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lots: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=5000, description="the bad lots")
    incident: str | None = Field(None, min_length=1, max_length=200, description="or an incident whose lots are bad")
    as_of: datetime | None = None


def _aware(**times: datetime | None) -> None:
    for name, t in times.items():
        if t is not None and t.tzinfo is None:
            raise ProblemError(422, f"{name} needs a time zone offset, e.g. 2026-03-02T06:00:00+01:00",
                               slug="validation", errors=[FieldError(loc=f"query.{name}", msg="timezone required")])


def _visible(store: GraphStore, principal: Principal, ids: Sequence[tuple[str, str]]) -> None:
    """Every start entity must exist and be in scope; both failures are the same 404."""
    nodes = store.get_nodes([i for _, i in ids])
    for what, i in ids:
        n = nodes.get(i)
        if n is None or not principal.sees_plant(n.plant):
            raise not_found(what, i)


def _iso(t: datetime | None) -> str | None:
    """Times in cache keys keep their offset: the same instant written differently may echo back
    differently in a result."""
    return t.isoformat() if t is not None else None


def _run(
    store: GraphStore, principal: Principal, audit: AuditContext, services: Services, key: tuple[Any, ...],
    fn: Callable[[], R], model: type[R],
) -> Any:
    """Run (or serve from the response cache) one analysis for this key's scope. ``key`` names the
    analysis and every parameter that can change its result."""
    from reasoning.errors import NotFoundError, ReasoningError

    cache_key = (*key, "*" if principal.all_plants else tuple(sorted(principal.plants)))
    state = services.graph_epoch(store)
    epoch = state if services.responses.enabled else None
    hit = services.responses.get(epoch, cache_key)
    if hit is not None:
        audit.entity_ids.update(hit.entity_ids)
        audit.detail = hit.detail
        return Response(hit.body, media_type="application/json")
    try:
        result = fn()
    except NotFoundError as exc:
        raise ProblemError(404, str(exc), slug="not-found") from None
    except (ReasoningError, ValueError) as exc:
        # the analysis refused its input (e.g. an incident that concerns no lots)
        raise ProblemError(422, str(exc), slug="analysis-input") from None
    withheld = 0
    text: str | None = None
    if not principal.all_plants:
        text = result.model_dump_json()
        doc, withheld = redact_json(store, principal, text, services.plants, state)
        if doc is not None:
            result = model.model_validate(doc)
            text = None
        if withheld:
            audit.detail = f"withheld={withheld}"
    # serialised once: the result is a checked model (re-validated above only when redacted), and
    # the envelope is written around its JSON rather than serialising it again inside a wrapper
    note = scope_note(principal, withheld)
    if type(result) is model:
        body = envelope_json("result", result.model_dump_json() if text is None else text, note)
    else:
        body = AnalysisResponse[model](result=result, scope=note).model_dump_json()  # type: ignore[valid-type]
    ids = entity_ref_ids(body)
    audit.entity_ids.update(ids)
    raw = body.encode()
    services.responses.put(epoch, cache_key, CachedResponse(raw, frozenset(ids), audit.detail))
    return Response(raw, media_type="application/json")


@router.get("/trace/lot/{lot_id}", response_model=AnalysisResponse[TraceResult],
            summary="Impact of a suspect lot (forward), or where it came from with backward=true")
async def trace_lot(lot_id: Id, principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
                    backward: bool = False, as_of: AsOf = None, lot_precise: LotPrecise = False
                    ) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "backward" if backward else "trace_lot", "lot": lot_id}
    _aware(as_of=as_of)
    _visible(store, principal, [("lot", lot_id)])
    a = services.analyses()
    fn = a.backward if backward else a.trace_lot
    return _run(store, principal, audit, services,
                ("backward" if backward else "trace_lot", lot_id, _iso(as_of), lot_precise),
                lambda: fn(lot_id, as_of=as_of, lot_precise=lot_precise), TraceResult)


@router.get("/trace/backward/{lot_id}", response_model=AnalysisResponse[TraceResult],
            summary="Backward genealogy (where-used): inputs, suppliers, orders, machines, SOPs, people")
async def trace_backward(lot_id: Id, principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
                         as_of: AsOf = None, lot_precise: LotPrecise = False) -> AnalysisResponse[Any]:
    return await trace_lot(lot_id, principal, store, services, audit, True, as_of, lot_precise)


@router.get("/trace/hold/{hold_id}", response_model=AnalysisResponse[TraceResult],
            summary="Impact of a quality hold: reached lots, orders, sales order lines, customers")
async def trace_hold(hold_id: Id, principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
                     as_of: AsOf = None, lot_precise: LotPrecise = False) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "trace_hold", "hold": hold_id}
    _aware(as_of=as_of)
    _visible(store, principal, [("hold", hold_id)])
    a = services.analyses()
    return _run(store, principal, audit, services, ("trace_hold", hold_id, _iso(as_of), lot_precise),
                lambda: a.trace_hold(hold_id, as_of=as_of, lot_precise=lot_precise),
                TraceResult)


@router.get("/trace/machine/{machine_id}", response_model=AnalysisResponse[TraceResult],
            summary="Orders on a machine in a time window, their lots, onward to customers")
async def trace_machine(
    machine_id: Id, principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
    start: Annotated[datetime, Query(alias="from", description="window start (ISO-8601 with offset)")],
    end: Annotated[datetime, Query(alias="to", description="window end (exclusive)")],
    as_of: AsOf = None, lot_precise: LotPrecise = False,
) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "trace_machine", "machine": machine_id, "from": start.isoformat(),
                    "to": end.isoformat()}
    _aware(**{"from": start, "to": end, "as_of": as_of})
    if end <= start:
        raise ProblemError(422, "'to' must be after 'from'", slug="validation",
                           errors=[FieldError(loc="query.to", msg="must be after query.from")])
    _visible(store, principal, [("machine", machine_id)])
    a = services.analyses()
    return _run(store, principal, audit, services,
                ("trace_machine", machine_id, _iso(start), _iso(end), _iso(as_of), lot_precise),
                lambda: a.trace_machine(machine_id, start, end, as_of=as_of, lot_precise=lot_precise), TraceResult)


@router.get("/trace/incident/{incident_id}", response_model=AnalysisResponse[TraceResult],
            summary="Impact of an incident: its lots and orders, or its machine around its time")
async def trace_incident(incident_id: Id, principal: Analyst, store: StoreDep, services: ServicesDep,
                         audit: AuditDep, as_of: AsOf = None, lot_precise: LotPrecise = False
                         ) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "trace_incident", "incident": incident_id}
    _aware(as_of=as_of)
    _visible(store, principal, [("incident", incident_id)])
    a = services.analyses()
    return _run(store, principal, audit, services, ("trace_incident", incident_id, _iso(as_of), lot_precise),
                lambda: a.trace_incident(incident_id, as_of=as_of, lot_precise=lot_precise),
                TraceResult)


@router.get("/risk", response_model=AnalysisResponse[RiskBoard],
            summary="Delivery risk board: open sales order lines due in the horizon, scored with causes")
async def risk(
    principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
    horizon_days: Annotated[float, Query(gt=0, le=366)] = 14,
    plant: Annotated[str | None, Query(max_length=200)] = None,
    as_of: AsOf = None,
    now: Annotated[datetime | None, Query(description="reference 'now' (default: PLANTGRAPH_NOW or the clock)")] = None,
) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "risk", "horizon_days": horizon_days, "plant": plant}
    _aware(as_of=as_of, now=now)
    if plant is not None and not principal.sees_plant(plant):
        raise ProblemError(403, f"plant {plant!r} is outside this key's scope", slug="forbidden")
    if plant is None and not principal.all_plants and len(principal.plants) == 1:
        plant = next(iter(principal.plants))
    a = services.analyses()
    return _run(store, principal, audit, services, ("risk", horizon_days, plant, _iso(as_of), _iso(now)),
                lambda: a.risk(horizon_days=horizon_days, plant=plant, as_of=as_of, now=now), RiskBoard)


@router.post("/rootcause", response_model=AnalysisResponse[RootCauseResult],
             summary="Root-cause candidates shared by bad lots, ranked against comparable good lots")
async def rootcause(body: RootCauseRequest, principal: Analyst, store: StoreDep, services: ServicesDep,
                    audit: AuditDep) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "rootcause", "lots": body.lots, "incident": body.incident}
    _aware(as_of=body.as_of)
    if not body.lots and body.incident is None:
        raise ProblemError(422, "give the bad lots or an incident", slug="validation",
                           errors=[FieldError(loc="body.lots", msg="lots or incident required")])
    _visible(store, principal, [("lot", x) for x in body.lots]
             + ([("incident", body.incident)] if body.incident else []))
    a = services.analyses()
    return _run(store, principal, audit, services,
                ("rootcause", tuple(body.lots), body.incident, _iso(body.as_of)),
                lambda: a.rootcause(lots=body.lots, incident=body.incident, as_of=body.as_of), RootCauseResult)


@router.get("/sop", response_model=AnalysisResponse[SopInEffectResult],
            summary="The SOP version in effect for an order at its production time")
async def sop(
    principal: Analyst, store: StoreDep, services: ServicesDep, audit: AuditDep,
    order: Annotated[str, Query(min_length=1, max_length=200, description="production order id")],
    machine: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    at: Annotated[datetime | None, Query(description="production time (default: the order's)")] = None,
    as_of: AsOf = None,
) -> AnalysisResponse[Any]:
    audit.kind = "analysis"
    audit.params = {"analysis": "sop", "order": order, "machine": machine}
    _aware(at=at, as_of=as_of)
    _visible(store, principal, [("order", order)] + ([("machine", machine)] if machine else []))
    a = services.analyses()
    return _run(store, principal, audit, services, ("sop", order, machine, _iso(at), _iso(as_of)),
                lambda: a.sop_in_effect(order, machine=machine, at=at, as_of=as_of),
                SopInEffectResult)
