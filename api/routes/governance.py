"""Proposals (write-back with approval by another person), events from MES/ERP, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.audit import AuditRecord, VerifyReport
from api.deps import AuditDep, AuditReader, Decider, EventWriter, ProposalReader, Proposer, ServicesDep, StoreDep
from api.events import EventEnvelope, EventResult, apply_event
from api.keys import Principal
from api.problems import PROBLEM_RESPONSES, ProblemError
from api.proposals import Decision, Proposal, ProposalCreate, ProposalStatus
from api.roles import ProposalKind
from api.schemas import Page
from api.scope import covers_all_plants

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

ProposalId = Annotated[str, Path(min_length=1, max_length=100)]


class ProposalPage(Page[Proposal]):
    pass


class AuditPage(Page[AuditRecord]):
    pass


# -- proposals ------------------------------------------------------------------------------
@router.post("/proposals", response_model=Proposal, status_code=201, tags=["proposals"],
             summary="Propose a write-back (maintenance request, quality hold, escalation, expedite)")
async def create_proposal(body: ProposalCreate, principal: Proposer, store: StoreDep, services: ServicesDep,
                          audit: AuditDep) -> Proposal:
    audit.kind = "proposal"
    audit.params = {"action": body.action.model_dump(mode="json"), "comment": body.comment}
    p = services.proposals.create(store, principal, body)
    audit.entity_ids.update(p.target_ids)
    audit.detail = f"proposed {p.id} ({p.kind.value})"
    return p


@router.get("/proposals", response_model=ProposalPage, tags=["proposals"], summary="Proposals in scope")
async def list_proposals(
    principal: ProposalReader, services: ServicesDep, audit: AuditDep,
    status: Annotated[ProposalStatus | None, Query()] = None,
    kind: Annotated[ProposalKind | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ProposalPage:
    audit.kind = "proposal"
    items, total = services.proposals.list(principal, status, kind.value if kind else None, offset, limit)
    return ProposalPage(items=items, offset=offset, limit=limit, total=total,
                        next_offset=offset + limit if offset + limit < total else None)


@router.get("/proposals/{proposal_id}", response_model=Proposal, tags=["proposals"])
async def get_proposal(proposal_id: ProposalId, principal: ProposalReader, services: ServicesDep,
                       audit: AuditDep) -> Proposal:
    audit.kind = "proposal"
    p = services.proposals.get(principal, proposal_id)
    audit.entity_ids.update(p.target_ids)
    return p


async def _decide(proposal_id: str, body: Decision, principal: Decider, store: StoreDep, services: ServicesDep,
                  audit: AuditDep, approve: bool) -> Proposal:
    audit.kind = "decision"
    audit.params = {"proposal_id": proposal_id, "decision": "approve" if approve else "reject",
                    "comment": body.comment}
    p = services.proposals.decide(store, principal, proposal_id, approve, body)
    audit.entity_ids.update(p.target_ids + p.applied_ids)
    audit.detail = f"{p.status} {p.id} proposed by {p.proposed_by}" + (f"; outbox {p.outbox_id}" if p.outbox_id else "")
    if approve:
        services.graph_changed(p.applied_ids)
    return p


@router.post("/proposals/{proposal_id}/approve", response_model=Proposal, tags=["proposals"],
             summary="Approve (approver role, not the proposer): apply to the graph and write the outbox")
async def approve(proposal_id: ProposalId, body: Decision, principal: Decider, store: StoreDep,
                  services: ServicesDep, audit: AuditDep) -> Proposal:
    return await _decide(proposal_id, body, principal, store, services, audit, True)


@router.post("/proposals/{proposal_id}/reject", response_model=Proposal, tags=["proposals"],
             summary="Reject (approver role, not the proposer)")
async def reject(proposal_id: ProposalId, body: Decision, principal: Decider, store: StoreDep,
                 services: ServicesDep, audit: AuditDep) -> Proposal:
    return await _decide(proposal_id, body, principal, store, services, audit, False)


# -- events ---------------------------------------------------------------------------------
@router.post("/events", response_model=EventResult, tags=["events"],
             summary="Apply one MES/ERP event (idempotent by event_id)",
             responses={409: {"description": "the event id was used for a different event"}})
async def post_event(body: EventEnvelope, principal: EventWriter, store: StoreDep, services: ServicesDep,
                     audit: AuditDep) -> EventResult:
    audit.kind = "event"
    audit.params = {"event": body.event.model_dump(mode="json")}
    result = apply_event(store, services.ledger, principal, body.event)
    audit.entity_ids.update(result.entity_ids)
    audit.detail = f"{result.status} {result.type} {result.event_id}"
    if result.status == "applied":
        services.graph_changed(result.entity_ids)
    return result


# -- audit ----------------------------------------------------------------------------------
@router.get("/audit", response_model=AuditPage, tags=["audit"], summary="Audit records, newest first")
async def list_audit(
    principal: AuditReader, services: ServicesDep, audit: AuditDep,
    user: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    audit.kind = "audit"
    _all_plants(services, principal)
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.tzinfo is None:
            raise ProblemError(422, f"{name} needs a time zone offset", slug="validation")
    items, total = services.audit.query(user=user, kind=kind, since=since, until=until, offset=offset, limit=limit)
    return AuditPage(items=items, offset=offset, limit=limit, total=total,
                     next_offset=offset + limit if offset + limit < total else None)


@router.get("/audit/verify", response_model=VerifyReport, tags=["audit"],
            summary="Check the hash chain; names the first edited, deleted, reordered or missing record")
async def verify_audit(principal: AuditReader, services: ServicesDep, audit: AuditDep,
                       expect_head: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None) -> VerifyReport:
    audit.kind = "audit"
    _all_plants(services, principal)
    return services.audit.verify(expect_head)


def _all_plants(services: ServicesDep, principal: Principal) -> None:
    """The log spans every plant (questions, ids), so reading it needs a key that sees every plant."""
    if not principal.all_plants and not covers_all_plants(services.store(), principal):
        raise ProblemError(403, "the audit log spans all plants; reading it needs a key that sees every plant",
                           slug="forbidden")
