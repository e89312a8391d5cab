"""Write-back proposals: drafted by one person, applied only after another person approves.

Nothing here writes to a system of record. On approval the change is applied to the graph (so
the next query sees it) and one JSON line is appended to the outbox file, which an integration
forwards to the CMMS, QMS, MES or ERP. The proposer can never approve their own proposal, whatever
key or role they use (the check is on the person, not the key).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.keys import Principal
from api.problems import ProblemError, not_found
from api.roles import PROPOSAL_KINDS, ProposalKind
from api.writes import Resolver, edge, iso, node, updated, write
from ontology.models import LotStatus, MaintenanceKind, Priority, Severity
from store.base import EdgeRecord, GraphStore, NodeRecord

Id = Annotated[str, Field(min_length=1, max_length=200)]
_SEVERITY_ORDER = [s.value for s in Severity]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaintenanceRequest(_Action):
    kind: Literal["maintenance_request"]
    machine_id: Id
    maintenance_kind: MaintenanceKind = MaintenanceKind.corrective
    text: str = Field(min_length=1, max_length=20_000)
    addresses: list[Id] = Field(default_factory=list, max_length=100,
                                description="Incident, Anomaly or DowntimeEvent ids the request responds to")


class QualityHoldAction(_Action):
    kind: Literal["quality_hold"]
    lot_ids: list[Id] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=2000)


class EscalateIncident(_Action):
    kind: Literal["escalate_incident"]
    incident_id: Id
    severity: Severity | None = Field(None, description="target severity; default: one level up")
    reason: str = Field(min_length=1, max_length=2000)


class ExpediteSalesOrder(_Action):
    kind: Literal["expedite_sales_order"]
    sales_order_id: Id = Field(description="a SalesOrder (all its lines) or one SalesOrderLine")
    priority: Priority = Priority.urgent
    reason: str = Field(min_length=1, max_length=2000)


Action = Annotated[
    MaintenanceRequest | QualityHoldAction | EscalateIncident | ExpediteSalesOrder,
    Field(discriminator="kind"),
]

ProposalStatus = Literal["pending", "approved", "rejected"]


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action
    comment: str | None = Field(None, max_length=5000)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=5000, description="why; kept in the audit log")


class Proposal(BaseModel):
    id: str
    kind: ProposalKind
    status: ProposalStatus
    action: Action
    plants: list[str] = Field(description="plants the proposal touches (its visibility scope)")
    target_ids: list[str]
    proposed_by: str
    proposed_at: datetime
    comment: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str | None = None
    applied_ids: list[str] = Field(default_factory=list, description="graph entities changed on approval")
    outbox_id: str | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at TEXT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_status ON proposals(status, proposed_at);
"""


class ProposalStore:
    def __init__(self, path: Path, outbox: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.outbox = outbox
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _save(self, p: Proposal, insert: bool = False) -> None:
        doc = p.model_dump_json()
        with self._lock:
            if insert:
                self._db.execute("INSERT INTO proposals VALUES (?,?,?,?,?,?)",
                                 (p.id, p.kind, p.status, p.proposed_by, p.proposed_at.isoformat(), doc))
            else:
                self._db.execute("UPDATE proposals SET status=?, doc=? WHERE id=?", (p.status, doc, p.id))

    def get(self, principal: Principal, proposal_id: str) -> Proposal:
        with self._lock:
            row = self._db.execute("SELECT doc FROM proposals WHERE id=?", (proposal_id,)).fetchone()
        if row is None:
            raise not_found("proposal", proposal_id)
        p = Proposal.model_validate_json(row[0])
        if not all(principal.sees_plant(x) for x in p.plants):
            raise not_found("proposal", proposal_id)
        return p

    def list(self, principal: Principal, status: str | None, kind: str | None,
             offset: int, limit: int) -> tuple[list[Proposal], int]:
        where, args = [], []
        if status:
            where.append("status=?")
            args.append(status)
        if kind:
            where.append("kind=?")
            args.append(kind)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            rows = self._db.execute(f"SELECT doc FROM proposals{clause} ORDER BY proposed_at DESC, id", args).fetchall()
        visible = [p for p in (Proposal.model_validate_json(r[0]) for r in rows)
                   if all(principal.sees_plant(x) for x in p.plants)]
        return visible[offset:offset + limit], len(visible)

    # -- lifecycle ---------------------------------------------------------------------------
    def create(self, store: GraphStore, principal: Principal, body: ProposalCreate) -> Proposal:
        kind = ProposalKind(body.action.kind)
        if principal.role not in PROPOSAL_KINDS[kind]:
            allowed = ", ".join(sorted(PROPOSAL_KINDS[kind]))
            raise ProblemError(403, f"role {principal.role.value!r} may not propose {kind.value} (allowed: {allowed})",
                               slug="forbidden")
        targets, _, _ = plan(store, principal, body.action, "PREVIEW", principal.user)
        plants = sorted({n.plant for n in targets if n.plant is not None})
        p = Proposal(
            id="PRP-" + uuid.uuid4().hex[:12], kind=kind, status="pending", action=body.action, plants=plants,
            target_ids=sorted({n.id for n in targets}), proposed_by=principal.user,
            proposed_at=datetime.now(UTC), comment=body.comment,
        )
        self._save(p, insert=True)
        return p

    def decide(self, store: GraphStore, principal: Principal, proposal_id: str, approve: bool,
               decision: Decision) -> Proposal:
        p = self.get(principal, proposal_id)
        if p.status != "pending":
            raise ProblemError(409, f"proposal {p.id} is already {p.status}", slug="proposal-decided")
        if principal.user == p.proposed_by:
            raise ProblemError(403, "a proposal must be decided by a person other than its proposer",
                               slug="self-approval")
        now = datetime.now(UTC)
        if approve:
            _, nodes, edges = plan(store, principal, p.action, p.id, p.proposed_by)
            write(store, nodes, edges)
            p.applied_ids = sorted({n.id for n in nodes})
            p.outbox_id = "OBX-" + uuid.uuid4().hex[:12]
            self._append_outbox({
                "outbox_id": p.outbox_id, "proposal_id": p.id, "kind": p.kind.value,
                "target_system": _TARGET_SYSTEM[p.kind], "action": p.action.model_dump(mode="json"),
                "proposed_by": p.proposed_by, "approved_by": principal.user, "approved_at": now.isoformat(),
                "comment": decision.comment, "graph_changes": p.applied_ids,
            })
        p.status = "approved" if approve else "rejected"
        p.decided_by = principal.user
        p.decided_at = now
        p.decision_comment = decision.comment
        self._save(p)
        return p

    def _append_outbox(self, line: dict[str, Any]) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.outbox.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
            fh.flush()


_TARGET_SYSTEM: dict[ProposalKind, str] = {
    ProposalKind.maintenance_request: "CMMS",
    ProposalKind.quality_hold: "QMS",
    ProposalKind.escalate_incident: "QMS",
    ProposalKind.expedite_sales_order: "ERP",
}


def plan(
    store: GraphStore, principal: Principal, action: _Action, proposal_id: str, proposer: str
) -> tuple[list[NodeRecord], list[NodeRecord], list[EdgeRecord]]:
    """(target entities, nodes to write, edges to write). Validates targets under the caller's scope,
    so a proposal on an invisible entity is a 404 and a stale one fails at approval with a clear error."""
    r = Resolver(store, principal)
    now = iso(datetime.now(UTC))
    src = "plantgraph-proposal"
    targets: list[NodeRecord] = []
    nodes: list[NodeRecord] = []
    edges: list[EdgeRecord] = []
    base = "body.action"
    if isinstance(action, MaintenanceRequest):
        machine = r.get(f"{base}.machine_id", action.machine_id, "Machine")
        related = [r.get(f"{base}.addresses[{i}]", x, ("Incident", "Anomaly", "DowntimeEvent"))
                   for i, x in enumerate(action.addresses)]
        r.raise_if_any()
        assert machine is not None
        targets = [machine, *(x for x in related if x is not None)]
        mo = f"MO-{proposal_id}"
        nodes.append(node("MaintenanceOrder", mo, plant=machine.plant, source_system=src,
                          name=f"maintenance request ({proposal_id})",
                          props={"kind": action.maintenance_kind, "status": "open", "created_at": now,
                                 "text": action.text}))
        edges.append(edge(mo, "OCCURRED_ON", machine.id, src))
        edges.extend(edge(mo, "ADDRESSES", x.id, src) for x in related if x is not None)
    elif isinstance(action, QualityHoldAction):
        lots = [r.get(f"{base}.lot_ids[{i}]", x, "Lot") for i, x in enumerate(action.lot_ids)]
        plants = {x.plant for x in lots if x is not None}
        if len(plants) > 1:
            r.fail(f"{base}.lot_ids", "a hold covers lots of one plant; propose one hold per plant")
        r.raise_if_any()
        targets = [x for x in lots if x is not None]
        qh = f"QH-{proposal_id}"
        nodes.append(node("QualityHold", qh, plant=next(iter(plants), None), source_system=src,
                          props={"reason": action.reason, "placed_at": now, "placed_by": proposer}))
        for lot in targets:
            nodes.append(updated(lot, status=LotStatus.on_hold.value))
            edges.append(edge(qh, "HOLDS", lot.id, src))
    elif isinstance(action, EscalateIncident):
        inc = r.get(f"{base}.incident_id", action.incident_id, "Incident")
        if inc is not None:
            cur = str(inc.props.get("severity", "low"))
            idx = _SEVERITY_ORDER.index(cur) if cur in _SEVERITY_ORDER else 0
            target = action.severity or _SEVERITY_ORDER[min(idx + 1, len(_SEVERITY_ORDER) - 1)]
            if _SEVERITY_ORDER.index(str(target)) <= idx:
                r.fail(f"{base}.severity", f"the incident is already {cur}; escalation must raise the severity")
        r.raise_if_any()
        assert inc is not None
        targets = [inc]
        nodes.append(updated(inc, severity=str(target)))
    elif isinstance(action, ExpediteSalesOrder):
        so = r.get(f"{base}.sales_order_id", action.sales_order_id, ("SalesOrder", "SalesOrderLine"))
        r.raise_if_any()
        assert so is not None
        targets = [so]
        if so.cls == "SalesOrderLine":
            lines = [so]
        else:
            line_ids = [e.dst for e in store.neighbours(so.id, ["HAS_SO_LINE"])]
            lines = [n for n in store.get_nodes(line_ids).values() if principal.sees_plant(n.plant)]
        nodes.extend(updated(ln, priority=action.priority) for ln in lines)
    return targets, nodes, edges
