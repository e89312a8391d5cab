"""The one entry point to the built-in analyses: :class:`Analyses`.

The API, the copilot and the CLI all call this facade, so they give the same answers. It holds a
store, a reference time ``now`` (the plant's "current time"; defaults to the wall clock) and the
loaded rule set; each method takes an optional ``as_of`` to ask about the graph as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from reasoning.results import RiskBoard, RootCauseResult, SopInEffectResult, TraceResult
from store.base import GraphStore

DEFAULT_MAX_DEPTH = 50
DEFAULT_MAX_RESULTS = 100_000


class Analyses:
    """Facade over the rule engine and the six built-in analyses."""

    def __init__(
        self,
        store: GraphStore,
        now: datetime | None = None,
        rules_dirs: Sequence[Path] = (),
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> None:
        self.store = store
        self.now = now if now is not None else datetime.now(UTC)
        self.rules_dirs = tuple(rules_dirs)
        self.max_depth = max_depth
        self.max_results = max_results

    # -- traces ---------------------------------------------------------------------------
    def trace_lot(self, lot: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Forward impact of a suspect lot: lots, orders, sales order lines, customers."""
        raise NotImplementedError

    def backward(self, lot: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Where-from of a lot: input lots, suppliers, orders, machines, SOPs, people, incidents."""
        raise NotImplementedError

    def trace_hold(self, hold: str, as_of: datetime | None = None, lot_precise: bool = False) -> TraceResult:
        """Forward impact of the lots a quality hold applies to."""
        raise NotImplementedError

    def trace_machine(
        self, machine: str, start: datetime, end: datetime, as_of: datetime | None = None,
        lot_precise: bool = False,
    ) -> TraceResult:
        """Orders that ran on the machine in [start, end), their lots, onward to customers."""
        raise NotImplementedError

    def trace_incident(self, incident: str, as_of: datetime | None = None,
                       lot_precise: bool = False) -> TraceResult:
        """Impact of an incident: its lots/orders (CONCERNS) or its machine around its time."""
        raise NotImplementedError

    # -- risk, root cause, SOP --------------------------------------------------------------
    def risk(self, horizon_days: float = 14, plant: str | None = None,
             as_of: datetime | None = None) -> RiskBoard:
        """Open sales order lines due in [now, now + horizon], scored with cause chains."""
        raise NotImplementedError

    def rootcause(self, lots: Sequence[str] = (), incident: str | None = None,
                  as_of: datetime | None = None) -> RootCauseResult:
        """Factors shared by bad lots' histories, ranked against comparable good lots."""
        raise NotImplementedError

    def sop_in_effect(self, order: str, machine: str | None = None, at: datetime | None = None,
                      as_of: datetime | None = None) -> SopInEffectResult:
        """The SOP version(s) in effect for an order at its production time."""
        raise NotImplementedError
