"""What every analysis shares: the context (store, rules, engine, now), entity references, lot
status as of a time, and evidence-path composition."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reasoning import trusted
from reasoning.engine import EdgeCache, Match, NodeCache, RuleEngine, RuleResult, as_time, node_value
from reasoning.errors import NotFoundError
from reasoning.results import Caps, EntityRef, EvidencePath, EvidenceStep
from reasoning.rule_model import RuleSet
from store.base import Direction, EdgeRecord, GraphStore, NodeRecord

HELD_STATUSES = ("on_hold", "quarantined")


@dataclass
class Context:
    store: GraphStore
    rules: RuleSet
    now: datetime
    max_depth: int
    max_results: int
    engine: RuleEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = RuleEngine(self.store, self.max_depth, self.max_results)

    def run(self, rule: str, as_of: datetime | None = None, caps: Caps | None = None,
            edge_cache: EdgeCache | None = None, node_cache: NodeCache | None = None,
            **params: Any) -> RuleResult:
        """Evaluate a rule by name; fold its cap flags into ``caps``."""
        return self.run_params(rule, params, as_of, caps, edge_cache, node_cache)

    def run_params(self, rule: str, params: Mapping[str, Any], as_of: datetime | None = None,
                   caps: Caps | None = None, edge_cache: EdgeCache | None = None,
                   node_cache: NodeCache | None = None) -> RuleResult:
        """Like :meth:`run`, with the parameters as a mapping (for names such as ``from``)."""
        res = self.engine.evaluate(self.rules[rule], params, as_of=as_of, edge_cache=edge_cache,
                                   node_cache=node_cache)
        if caps is not None:
            caps.depth_limit_hit |= res.depth_limit_hit
            caps.result_limit_hit |= res.result_limit_hit
            caps.notes.extend(n for n in res.notes if n not in caps.notes)
        return res

    def new_caps(self) -> Caps:
        return Caps(max_depth=self.max_depth, max_results=self.max_results)

    def require(self, node_id: str, cls: str | tuple[str, ...], as_of: datetime | None = None) -> NodeRecord:
        """The node, or NotFoundError naming what was expected."""
        rec = self.store.get_node(node_id, as_of)
        classes = (cls,) if isinstance(cls, str) else cls
        if rec is None:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise NotFoundError(f"no {' or '.join(classes)} with id {node_id!r}{when}")
        if rec.cls not in classes:
            raise NotFoundError(f"{node_id!r} is a {rec.cls}, expected {' or '.join(classes)}")
        return rec


def ref(node: NodeRecord, status: str | None = None) -> EntityRef:
    """The node as an entity reference (its own status unless ``status`` is given); built without
    re-validating values that already have the fields' types (:mod:`reasoning.trusted`)."""
    st = status if status is not None else node.props.get("status")
    return trusted.entity(node.id, node.cls, node.name, node.plant, str(st) if st is not None else None)


def prop_time(node: NodeRecord, prop: str) -> datetime | None:
    return as_time(node_value(node, prop))


def active_holds(store: GraphStore, lot: str, at: datetime, as_of: datetime | None = None
                 ) -> list[tuple[NodeRecord, EdgeRecord]]:
    """Quality holds on ``lot`` whose window [placed_at, released_at) contains ``at``."""
    edges = store.neighbours(lot, ["HOLDS"], Direction.IN, as_of)
    holds = store.get_nodes([e.src for e in edges], as_of)
    out = []
    for e in edges:
        h = holds.get(e.src)
        if h is None or h.cls != "QualityHold":
            continue
        placed, released = prop_time(h, "placed_at"), prop_time(h, "released_at")
        if placed is not None and placed > at:
            continue
        if released is not None and released <= at:
            continue
        out.append((h, e))
    return out


def lot_status(store: GraphStore, lot: NodeRecord, as_of: datetime | None) -> str | None:
    """The lot's status, as of a time when given.

    Without ``as_of`` the stored status. With it, the hold history decides: a lot is ``on_hold``
    when a QualityHold window contains ``as_of``; a stored ``on_hold`` whose holds were all placed
    later or released by then reads ``released``. Other statuses have no history in the graph and
    are reported as stored (documented in docs/rules.md).
    """
    stored = lot.props.get("status")
    if as_of is None:
        return str(stored) if stored is not None else None
    if active_holds(store, lot.id, as_of, as_of):
        return "on_hold"
    if stored == "on_hold" and store.neighbours(lot.id, ["HOLDS"], Direction.IN, None):
        return "released"
    return str(stored) if stored is not None else None


def compose(prefix: Sequence[EvidenceStep], match: Match | None, rule: str | None = None,
            extra: Sequence[EvidenceStep] = ()) -> EvidencePath:
    """prefix + the match's steps + extra, as one evidence path."""
    return trusted.path(rule, [*prefix, *(match.steps if match is not None else ()), *extra])


class EdgeKey(Protocol):
    """What an evidence step needs of an edge: its key (an :class:`EdgeRecord` or an ids-only
    :class:`Link`)."""

    @property
    def src(self) -> str: ...
    @property
    def rel(self) -> str: ...
    @property
    def dst(self) -> str: ...


def edge_step(edge: EdgeKey, from_node: str, times: dict[str, datetime] | None = None) -> EvidenceStep:
    """An evidence step walking ``edge`` away from ``from_node``; ``times`` is kept, not copied
    (:func:`reasoning.trusted.step`)."""
    if edge.src == from_node:
        return trusted.step(edge.src, edge.rel, edge.dst, "out", times or {})
    return trusted.step(edge.dst, edge.rel, edge.src, "in", times or {})


def sorted_unique(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids))
