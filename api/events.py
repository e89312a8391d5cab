"""Single MES/ERP events: typed models (a discriminated union on ``type``), an idempotency ledger
and how each event changes the graph.

An event is applied in one store transaction; its id is then written to the ledger with a hash of
its payload. Replaying the same event answers ``duplicate`` and writes nothing; reusing an id with a
different payload is a 409. Every event only *upserts* records computed from its own payload, so
even a replay after a crash between the two writes lands on the same graph.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.keys import Principal
from api.problems import ProblemError
from api.writes import Resolver, edge, iso, node, updated, write
from ontology.models import IncidentKind, LotStatus, OrderStatus, Severity
from store.base import Direction, EdgeRecord, GraphStore, NodeRecord

Id = Annotated[str, Field(min_length=1, max_length=200)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Id = Field(description="unique per event; a repeated id with the same payload changes nothing")
    occurred_at: AwareDatetime
    source_system: str = Field("MES", min_length=1, max_length=50)


class LotStatusChanged(_Event):
    type: Literal["lot_status_changed"]
    lot_id: Id
    status: LotStatus


class QualityHoldPlaced(_Event):
    type: Literal["quality_hold_placed"]
    hold_id: Id
    lot_ids: list[Id] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=2000)
    placed_by: Id | None = Field(None, description="a Person id (linked with RAISED_BY when it exists) or a name")


class QualityHoldReleased(_Event):
    type: Literal["quality_hold_released"]
    hold_id: Id
    release_lots: bool = Field(True, description="set held lots back to released unless another open hold holds them")


class ProductionOrderStarted(_Event):
    type: Literal["production_order_started"]
    order_id: Id
    machine_id: Id | None = None


class ConsumedLot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_id: Id
    quantity: float = Field(gt=0)
    unit: str | None = None


class ProducedLot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_id: Id
    quantity: float = Field(gt=0)
    unit: str = "kg"
    material_id: Id | None = Field(None, description="defaults to the order's material (FOR_MATERIAL)")
    name: str | None = None


class ProductionOrderCompleted(_Event):
    type: Literal["production_order_completed"]
    order_id: Id
    consumed: list[ConsumedLot] = Field(default_factory=list, max_length=10_000)
    produced: list[ProducedLot] = Field(default_factory=list, max_length=10_000)


class DowntimeStarted(_Event):
    type: Literal["downtime_started"]
    downtime_id: Id
    machine_id: Id
    reason: str = Field(min_length=1, max_length=2000)


class DowntimeEnded(_Event):
    type: Literal["downtime_ended"]
    downtime_id: Id


class IncidentRaised(_Event):
    type: Literal["incident_raised"]
    incident_id: Id
    kind: IncidentKind
    severity: Severity
    title: str = Field(min_length=1, max_length=500)
    text: str | None = Field(None, max_length=100_000)
    machine_id: Id | None = None
    lot_ids: list[Id] = Field(default_factory=list, max_length=1000)
    order_ids: list[Id] = Field(default_factory=list, max_length=1000)


Event = Annotated[
    LotStatusChanged | QualityHoldPlaced | QualityHoldReleased | ProductionOrderStarted
    | ProductionOrderCompleted | DowntimeStarted | DowntimeEnded | IncidentRaised,
    Field(discriminator="type"),
]


class EventEnvelope(BaseModel):
    """``POST /v1/events`` body."""

    event: Event


class EventResult(BaseModel):
    event_id: str
    type: str
    status: Literal["applied", "duplicate"]
    nodes_upserted: int
    edges_upserted: int
    entity_ids: list[str] = Field(description="entities the event created or changed")
    applied_at: datetime


_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_ledger (
    event_id     TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    user         TEXT NOT NULL,
    result       TEXT NOT NULL
);
"""


class EventLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def seen(self, event_id: str) -> tuple[str, EventResult] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT payload_hash, result FROM event_ledger WHERE event_id=?", (event_id,)
            ).fetchone()
        return (row[0], EventResult.model_validate_json(row[1])) if row else None

    def record(self, payload_hash: str, user: str, result: EventResult) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO event_ledger VALUES (?,?,?,?,?)",
                (result.event_id, result.type, payload_hash, user, result.model_dump_json()),
            )


def payload_hash(event: _Event) -> str:
    return hashlib.sha256(
        json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def apply_event(store: GraphStore, ledger: EventLedger, principal: Principal, event: _Event) -> EventResult:
    """Validate against the graph and the caller's scope, then apply in one transaction."""
    h = payload_hash(event)
    prior = ledger.seen(event.event_id)
    if prior is not None:
        if prior[0] != h:
            raise ProblemError(409, f"event id {event.event_id!r} was already used for a different event",
                               slug="event-id-conflict")
        return prior[1].model_copy(update={"status": "duplicate"})
    nodes, edges = _plan(store, principal, event)
    n, e = write(store, nodes, edges)
    ids = sorted({x.id for x in nodes} | {x.src for x in edges} | {x.dst for x in edges})
    result = EventResult(
        event_id=event.event_id, type=getattr(event, "type", "event"), status="applied", nodes_upserted=n,
        edges_upserted=e, entity_ids=ids, applied_at=datetime.now(UTC),
    )
    ledger.record(h, principal.user, result)
    return result


def _plan(store: GraphStore, principal: Principal, ev: _Event) -> tuple[list[NodeRecord], list[EdgeRecord]]:
    r = Resolver(store, principal)
    src = ev.source_system
    t = iso(ev.occurred_at)
    nodes: list[NodeRecord] = []
    edges: list[EdgeRecord] = []
    base = "body.event"

    if isinstance(ev, LotStatusChanged):
        lot = r.get(f"{base}.lot_id", ev.lot_id, "Lot")
        r.raise_if_any()
        assert lot is not None
        nodes.append(updated(lot, status=ev.status))

    elif isinstance(ev, QualityHoldPlaced):
        lots = [r.get(f"{base}.lot_ids[{i}]", lid, "Lot") for i, lid in enumerate(ev.lot_ids)]
        r.new_id(f"{base}.hold_id", ev.hold_id, "QualityHold")
        plants = {lot.plant for lot in lots if lot is not None}
        if len(plants) > 1:
            r.fail(f"{base}.lot_ids", "a hold covers lots of one plant; send one event per plant")
        person = store.get_node(ev.placed_by) if ev.placed_by else None
        r.raise_if_any()
        plant = next(iter(plants)) if plants else None
        nodes.append(node("QualityHold", ev.hold_id, plant=plant, source_system=src,
                          props={"reason": ev.reason, "placed_at": t, "placed_by": ev.placed_by}))
        for lot in lots:
            assert lot is not None
            nodes.append(updated(lot, status=LotStatus.on_hold.value))
            edges.append(edge(ev.hold_id, "HOLDS", lot.id, src))
        if person is not None and person.cls == "Person" and principal.sees_plant(person.plant):
            edges.append(edge(ev.hold_id, "RAISED_BY", person.id, src))

    elif isinstance(ev, QualityHoldReleased):
        hold = r.get(f"{base}.hold_id", ev.hold_id, "QualityHold")
        r.raise_if_any()
        assert hold is not None
        nodes.append(updated(hold, released_at=t))
        if ev.release_lots:
            for e in store.neighbours(hold.id, ["HOLDS"]):
                lot = store.get_node(e.dst)
                if lot is None or lot.props.get("status") != LotStatus.on_hold.value:
                    continue
                other_open = any(
                    h.src != hold.id and _open_hold(store, h.src)
                    for h in store.neighbours(lot.id, ["HOLDS"], Direction.IN)
                )
                if not other_open:
                    nodes.append(updated(lot, status=LotStatus.released.value))

    elif isinstance(ev, ProductionOrderStarted):
        order = r.get(f"{base}.order_id", ev.order_id, "ProductionOrder")
        machine = r.get(f"{base}.machine_id", ev.machine_id, "Machine") if ev.machine_id else None
        r.raise_if_any()
        assert order is not None
        nodes.append(updated(order, status=OrderStatus.running.value, actual_start=t))
        if machine is not None:
            edges.append(edge(order.id, "RAN_ON", machine.id, src, start=t))

    elif isinstance(ev, ProductionOrderCompleted):
        order = r.get(f"{base}.order_id", ev.order_id, "ProductionOrder")
        consumed = [r.get(f"{base}.consumed[{i}].lot_id", c.lot_id, "Lot") for i, c in enumerate(ev.consumed)]
        order_material = None
        if order is not None:
            mats = store.neighbours(order.id, ["FOR_MATERIAL"])
            order_material = mats[0].dst if mats else None
        for i, p in enumerate(ev.produced):
            r.new_id(f"{base}.produced[{i}].lot_id", p.lot_id, "Lot")
            if p.material_id is not None:
                r.get(f"{base}.produced[{i}].material_id", p.material_id, "Material")
            elif order_material is None and order is not None:
                r.fail(f"{base}.produced[{i}].material_id",
                       "the order has no material; give material_id for produced lots")
        r.raise_if_any()
        assert order is not None
        nodes.append(updated(order, status=OrderStatus.completed.value, actual_end=t))
        for c, lot in zip(ev.consumed, consumed, strict=True):
            assert lot is not None
            props = {"quantity": c.quantity} | ({"unit": c.unit} if c.unit else {})
            edges.append(edge(order.id, "CONSUMED", lot.id, src, **props))
        for p in ev.produced:
            existing = store.get_node(p.lot_id)
            base_props = dict(existing.props) if existing is not None else {}
            nodes.append(node("Lot", p.lot_id, plant=order.plant, source_system=src,
                              name=p.name or (existing.name if existing else None),
                              props={**base_props, "quantity": p.quantity, "unit": p.unit,
                                     "status": base_props.get("status", LotStatus.released.value),
                                     "produced_at": t}))
            edges.append(edge(order.id, "PRODUCED", p.lot_id, src, quantity=p.quantity, unit=p.unit))
            material = p.material_id or order_material
            if material is not None:
                edges.append(edge(p.lot_id, "FOR_MATERIAL", material, src))

    elif isinstance(ev, DowntimeStarted):
        machine = r.get(f"{base}.machine_id", ev.machine_id, "Machine")
        r.new_id(f"{base}.downtime_id", ev.downtime_id, "DowntimeEvent")
        r.raise_if_any()
        assert machine is not None
        nodes.append(node("DowntimeEvent", ev.downtime_id, plant=machine.plant, source_system=src,
                          props={"start": t, "reason": ev.reason}))
        edges.append(edge(ev.downtime_id, "OCCURRED_ON", machine.id, src))

    elif isinstance(ev, DowntimeEnded):
        dt = r.get(f"{base}.downtime_id", ev.downtime_id, "DowntimeEvent")
        r.raise_if_any()
        assert dt is not None
        start = dt.props.get("start")
        if start and datetime.fromisoformat(str(start)) > ev.occurred_at:
            r.fail(f"{base}.occurred_at", f"the downtime started at {dt.props['start']}, after this end time")
            r.raise_if_any()
        nodes.append(updated(dt, end=t))

    elif isinstance(ev, IncidentRaised):
        machine = r.get(f"{base}.machine_id", ev.machine_id, "Machine") if ev.machine_id else None
        lots = [r.get(f"{base}.lot_ids[{i}]", x, "Lot") for i, x in enumerate(ev.lot_ids)]
        orders = [r.get(f"{base}.order_ids[{i}]", x, "ProductionOrder") for i, x in enumerate(ev.order_ids)]
        r.new_id(f"{base}.incident_id", ev.incident_id, "Incident")
        plants = {x.plant for x in (machine, *lots, *orders) if x is not None}
        if len(plants) > 1:
            r.fail(f"{base}", "an incident belongs to one plant; its machine, lots and orders span several")
        r.raise_if_any()
        plant = next(iter(plants)) if plants else None
        if plant is None and not principal.all_plants:
            plant = sorted(principal.plants)[0]
        nodes.append(node("Incident", ev.incident_id, plant=plant, source_system=src,
                          props={"kind": ev.kind, "severity": ev.severity, "occurred_at": t, "title": ev.title,
                                 "text": ev.text}))
        if machine is not None:
            edges.append(edge(ev.incident_id, "OCCURRED_ON", machine.id, src))
        for x in (*lots, *orders):
            assert x is not None
            edges.append(edge(ev.incident_id, "CONCERNS", x.id, src))
    else:  # pragma: no cover - the union is closed
        raise ProblemError(422, f"unknown event type {type(ev).__name__}")
    return nodes, edges


def _open_hold(store: GraphStore, hold_id: str) -> bool:
    h = store.get_node(hold_id)
    return h is not None and h.cls == "QualityHold" and not h.props.get("released_at")
