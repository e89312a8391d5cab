"""The one entry point to the built-in analyses: :class:`Analyses`.

The API, the copilot and the CLI all call this facade, so they give the same answers. It holds a
store, a reference time ``now`` (the plant's "current time"; defaults to the wall clock) and the
loaded rule set; each method takes an optional ``as_of`` to ask about the graph as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reasoning.analyses import risk, rootcause, sop, trace
from reasoning.analyses.common import Context, ref
from reasoning.results import (
    ReachedEntity,
    RiskBoard,
    RootCauseResult,
    RuleRunResult,
    SopInEffectResult,
    TraceResult,
)
from reasoning.rule_model import RuleSet, load_rules
from store.base import GraphStore

DEFAULT_MAX_DEPTH = 50
DEFAULT_MAX_RESULTS = 100_000


class Analyses:
    """Facade over the rule engine and the six built-in analyses.

    ``rules_dirs`` are folders of extra rule files loaded after the built-in ones; the entry
    points pass the configured ``PLANTGRAPH_RULES_DIR`` here (this layer reads no settings)."""

    def __init__(
        self,
        store: GraphStore,
        now: datetime | None = None,
        rules_dirs: Sequence[Path] | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> None:
        self.store = store
        self.now = now if now is not None else datetime.now(UTC)
        self.rules_dirs = tuple(rules_dirs or ())
        self.max_depth = max_depth
        self.max_results = max_results
        self.rules: RuleSet = load_rules(self.rules_dirs)
        self.ctx = Context(store, self.rules, self.now, max_depth, max_results)
        if store.capabilities.cypher:  # Neo4j: each rule runs as its one compiled query (same answers)
            from reasoning.cypher import CompiledRuleEngine

            self.ctx.engine = CompiledRuleEngine(store, max_depth, max_results)

    # -- traces ---------------------------------------------------------------------------
    def trace_lot(self, lot: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Forward impact of a suspect lot: lots, orders, sales order lines, customers."""
        return trace.trace_lot(self.ctx, lot, as_of, lot_precise)

    def backward(self, lot: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Where-from of a lot: input lots, suppliers, orders, machines, SOPs, people, incidents."""
        return trace.backward(self.ctx, lot, as_of, lot_precise)

    def trace_hold(self, hold: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Forward impact of the lots a quality hold applies to."""
        return trace.trace_hold(self.ctx, hold, as_of, lot_precise)

    def trace_machine(
        self, machine: str, start: datetime, end: datetime, as_of: datetime | None = None,
        lot_precise: bool = False,
    ) -> TraceResult:
        """Orders that ran on the machine in [start, end), their lots, onward to customers."""
        return trace.trace_machine(self.ctx, machine, start, end, as_of, lot_precise)

    def trace_incident(self, incident: str, as_of: datetime | None = None,
                       lot_precise: bool = False) -> TraceResult:
        """Impact of an incident: its lots/orders (CONCERNS) or its machine around its time."""
        return trace.trace_incident(self.ctx, incident, as_of, lot_precise)

    # -- risk, root cause, SOP --------------------------------------------------------------
    def risk(self, horizon_days: float = 14, plant: str | None = None,
             as_of: datetime | None = None, now: datetime | None = None) -> RiskBoard:
        """Open sales order lines due in [now, now + horizon], scored with cause chains.

        ``now`` defaults to ``as_of`` when given, else to the facade's ``now``."""
        return risk.risk_board(self.ctx, horizon_days, plant, as_of, now)

    def rootcause(self, lots: Sequence[str] = (), incident: str | None = None,
                  as_of: datetime | None = None) -> RootCauseResult:
        """Factors shared by bad lots' histories, ranked against comparable good lots."""
        return rootcause.rootcause(self.ctx, lots, incident, as_of)

    def sop_in_effect(self, order: str, machine: str | None = None, at: datetime | None = None,
                      as_of: datetime | None = None) -> SopInEffectResult:
        """The SOP version(s) in effect for an order at its production time."""
        return sop.sop_in_effect(self.ctx, order, machine, at, as_of)

    # -- any rule by name -------------------------------------------------------------------
    def run_rule(self, name: str, params: Mapping[str, Any], as_of: datetime | None = None) -> RuleRunResult:
        """Evaluate one rule (built-in or from a rules folder) and return its bindings with evidence."""
        caps = self.ctx.new_caps()
        res = self.ctx.run(name, as_of, caps, **params)
        bindings = {
            var: [
                ReachedEntity(entity=ref(m.node), depth=m.depth, evidence=[m.evidence(name)])
                for m in res.matches(var)
            ]
            for var in self.rules[name].returns
        }
        shown = {k: ([str(x) for x in v] if isinstance(v, (list, tuple)) else str(v)) for k, v in params.items()}
        return RuleRunResult(rule=name, params=shown, as_of=as_of, starts=res.starts,
                             missing_starts=res.missing_starts, bindings=bindings, caps=caps)
