"""Result models of every built-in analysis.

These pydantic models are the contract between the reasoning engine, the API (they are its
response models) and the copilot (its structured facts). Every reached entity carries at least
one :class:`EvidencePath`: the node ids and relation types, in order, that justify it, plus the
timestamps that made each step match, so that a person (or a test) can walk the path in the store.

Ordering is deterministic everywhere: lists are sorted by id unless a field says otherwise
(risk lines by score, root-cause factors by rank).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TraceMode = Literal["conservative", "lot_precise"]
TraceDirection = Literal["forward", "backward"]
StepDirection = Literal["out", "in"]
RiskLevel = Literal["none", "low", "medium", "high", "critical"]
CauseKind = Literal["hold", "quarantine", "behind_schedule", "downtime", "late_supplier", "shortage"]
OptionKind = Literal["substitute", "alternative_lot", "alternative_line"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class EntityRef(_Model):
    """A pointer to one entity, with the few fields a reader needs to recognise it."""

    id: str
    cls: str
    name: str | None = None
    plant: str | None = None
    status: str | None = Field(
        default=None, description="Status where the class has one (as of the query time for lots)."
    )


class EvidenceStep(_Model):
    """One hop of an evidence path, from ``src`` to ``dst`` along relation ``rel``.

    ``direction`` says how the stored edge points: ``out`` means the store holds the edge
    ``(src, rel, dst)``; ``in`` means it holds ``(dst, rel, src)`` and the walk followed it
    backwards (e.g. lot -> the order that CONSUMED it).
    """

    src: str
    rel: str
    dst: str
    direction: StepDirection
    times: dict[str, datetime] = Field(
        default_factory=dict,
        description="Timestamps (edge or node properties) that made this step match, by property name.",
    )

    def edge_key(self) -> tuple[str, str, str]:
        """The key ``(src, rel, dst)`` of the stored edge this step walked."""
        if self.direction == "out":
            return (self.src, self.rel, self.dst)
        return (self.dst, self.rel, self.src)


class EvidencePath(_Model):
    """An ordered chain of steps from a start entity to the entity it justifies."""

    rule: str | None = Field(default=None, description="The rule whose pattern this path matched.")
    steps: list[EvidenceStep] = Field(default_factory=list)
    note: str | None = None

    @property
    def nodes(self) -> list[str]:
        """Node ids along the path, start first."""
        if not self.steps:
            return []
        return [self.steps[0].src, *(s.dst for s in self.steps)]

    @property
    def start(self) -> str | None:
        return self.steps[0].src if self.steps else None

    @property
    def end(self) -> str | None:
        return self.steps[-1].dst if self.steps else None


class Caps(_Model):
    """Limits a query ran under and whether it hit them. Hitting a cap is never silent."""

    max_depth: int
    max_results: int
    depth_limit_hit: bool = False
    result_limit_hit: bool = False
    notes: list[str] = Field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.depth_limit_hit or self.result_limit_hit


class ReachedEntity(_Model):
    """An entity a trace reached, how far away it is, how much of it, and why."""

    entity: EntityRef
    depth: int = Field(description="Hops from the nearest start entity along the first evidence path.")
    quantity: float | None = None
    unit: str | None = None
    via: str | None = Field(default=None, description="How it was reached, e.g. 'allocated' or 'shipped'.")
    shipped: bool | None = Field(default=None, description="For lots: at the customer (True) or in house.")
    evidence: list[EvidencePath] = Field(default_factory=list)


class QuantityTotal(_Model):
    cls: str
    unit: str | None
    quantity: float
    count: int


class TraceResult(_Model):
    """Forward (impact) or backward (where-from) genealogy from one or more start entities."""

    analysis: Literal["trace_lot", "trace_hold", "trace_machine", "trace_incident", "backward"]
    start_ids: list[str]
    start_lots: list[str] = Field(
        default_factory=list,
        description="Lots the genealogy walk started from (resolved from a hold, window or incident).",
    )
    start_orders: list[str] = Field(
        default_factory=list, description="Orders resolved from a machine window or an incident."
    )
    direction: TraceDirection
    mode: TraceMode
    as_of: datetime | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None
    reached: dict[str, list[ReachedEntity]] = Field(
        default_factory=dict, description="Reached entities grouped by class name, each list sorted by id."
    )
    totals: list[QuantityTotal] = Field(default_factory=list)
    sales_order_lines: list[ReachedEntity] = Field(default_factory=list)
    customers: list[ReachedEntity] = Field(default_factory=list)
    shipped_lots: list[str] = Field(default_factory=list)
    in_house_lots: list[str] = Field(default_factory=list)
    caps: Caps
    rules: list[str] = Field(default_factory=list, description="Rules the analysis evaluated.")

    def ids(self, cls: str) -> list[str]:
        """Ids of the reached entities of one class."""
        return [r.entity.id for r in self.reached.get(cls, [])]

    def all_evidence(self) -> list[EvidencePath]:
        out: list[EvidencePath] = []
        for group in self.reached.values():
            for r in group:
                out.extend(r.evidence)
        for r in (*self.sales_order_lines, *self.customers):
            out.extend(r.evidence)
        return out


class RiskCause(_Model):
    """One link of a risk's cause chain: what blocks the line and how it is connected."""

    kind: CauseKind
    entity: EntityRef
    detail: str
    weight: float = Field(description="Contribution to the line's score (see docs/rules.md).")
    expected_available: datetime | None = Field(
        default=None, description="When this cause is expected to stop blocking, if known."
    )
    evidence: list[EvidencePath] = Field(default_factory=list)


class UnblockOption(_Model):
    kind: OptionKind
    entity: EntityRef
    detail: str
    quantity: float | None = None
    unit: str | None = None
    evidence: list[EvidencePath] = Field(default_factory=list)


class RiskLine(_Model):
    line: EntityRef
    sales_order: EntityRef | None = None
    customer: EntityRef | None = None
    material: EntityRef | None = None
    quantity: float
    unit: str | None = None
    due_date: datetime
    priority: str
    level: RiskLevel
    score: float = Field(ge=0, le=1)
    causes: list[RiskCause] = Field(default_factory=list)
    expected_available: datetime | None = None
    slack_hours: float | None = Field(
        default=None, description="Due date minus expected availability, in hours (negative = late)."
    )
    options: list[UnblockOption] = Field(default_factory=list)


class RiskBoard(_Model):
    now: datetime
    horizon_days: float
    plant: str | None = None
    as_of: datetime | None = None
    lines_considered: int
    lines: list[RiskLine] = Field(
        default_factory=list,
        description="Open lines due in the horizon, highest score first, then by due date and id.",
    )
    caps: Caps

    @property
    def at_risk(self) -> list[RiskLine]:
        return [ln for ln in self.lines if ln.causes]


class RootCauseFactor(_Model):
    factor: EntityRef
    factor_class: str
    rank: int
    bad_with: int
    bad_total: int
    good_with: int
    good_total: int
    support: float = Field(description="Share of bad lots whose history contains the factor.")
    good_share: float = Field(description="Share of comparable good lots whose history contains it.")
    lift: float = Field(description="support / good_share (with +1 smoothing, see docs/rules.md).")
    odds_ratio: float | None = None
    p_value: float = Field(description="One-sided Fisher's exact test (bad lots over-represented).")
    evidence: list[EvidencePath] = Field(default_factory=list)


class RootCauseResult(_Model):
    bad_lots: list[str]
    incident: str | None = None
    materials: list[str] = Field(default_factory=list)
    good_lots: list[str] = Field(
        default_factory=list, description="The comparable good lots (same materials)."
    )
    factors: list[RootCauseFactor] = Field(default_factory=list)
    as_of: datetime | None = None
    caps: Caps

    @property
    def top(self) -> RootCauseFactor | None:
        return self.factors[0] if self.factors else None


class SopMatch(_Model):
    sop: EntityRef
    version: EntityRef
    applies_via: Literal["material", "machine", "line", "operation"]
    applies_to: str
    effective_from: datetime
    effective_to: datetime | None = None
    text_excerpt: str = ""
    evidence: list[EvidencePath] = Field(default_factory=list)


class SopInEffectResult(_Model):
    order: EntityRef
    machine: str | None = None
    at: datetime | None = Field(description="The production time the window must contain.")
    in_effect: list[SopMatch] = Field(default_factory=list)
    sop_version: str | None = Field(
        default=None, description="The primary version in effect (material first)."
    )
    used_version: EntityRef | None = None
    superseded: bool = False
    superseded_detail: str | None = None
    evidence: list[EvidencePath] = Field(default_factory=list)


class RuleRunResult(_Model):
    """The result of running one rule (built-in or user-written) by name."""

    rule: str
    params: dict[str, str | list[str]] = Field(default_factory=dict)
    as_of: datetime | None = None
    starts: list[str] = Field(default_factory=list)
    missing_starts: list[str] = Field(default_factory=list)
    bindings: dict[str, list[ReachedEntity]] = Field(
        default_factory=dict, description="Each returned variable's nodes, sorted by id, with evidence."
    )
    caps: Caps
