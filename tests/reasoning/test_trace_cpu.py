"""What the traces do to spend less CPU leaves their answers alone: the collector is paused for
the duration of a trace only (also when it fails), and the engine's shortcut for steps whose
edges carry no times gives the steps :func:`reasoning.engine.edge_times` would."""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Any

import pytest

from reasoning.analyses import trace
from reasoning.analyses.common import Context
from reasoning.engine import edge_times, untimed
from reasoning.errors import NotFoundError
from reasoning.service import Analyses
from store.base import Direction, GraphStore
from tests.reasoning import hand


def test_a_trace_runs_with_the_collector_paused(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    hand.build(store)
    a = Analyses(store, now=datetime.fromisoformat(hand.t(11)), rules_dirs=[])
    seen: list[bool] = []
    run = Context.run_params

    def spy(self: Context, *args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Context, "run_params", spy)
    assert gc.isenabled()
    a.trace_hold("H1")
    a.trace_lot("RL1")
    a.backward("FL2")
    a.trace_machine("M1", datetime.fromisoformat(hand.t(8)), datetime.fromisoformat(hand.t(15)))
    assert seen and not any(seen)
    assert gc.isenabled()
    with pytest.raises(NotFoundError):
        a.trace_hold("NOPE")
    assert gc.isenabled()
    assert trace.trace_hold.__name__ == "trace_hold"


def test_untimed_relations_record_no_times(store: GraphStore) -> None:
    hand.build(store)
    at = datetime.fromisoformat(hand.t(11))
    assert untimed(("CONSUMED", "PRODUCED"), None)
    assert not untimed(("CONSUMED", "PRODUCED"), at)  # validity times with as_of
    assert not untimed(("ALLOCATED_TO", "SHIPPED_TO"), None)  # shipped_at
    for rels, direction, ids in ((["CONSUMED"], Direction.IN, ["RL1", "IL1", "IL2"]),
                                 (["PRODUCED"], Direction.OUT, ["PO1", "PO2", "PO3"]),
                                 (["SHIPPED_TO"], Direction.OUT, ["FL2"])):
        for as_of in (None, at):
            edges = [e for lst in store.neighbours_many(ids, rels, direction, as_of).values() for e in lst]
            assert edges
            if untimed(rels, as_of):
                assert all(edge_times(e, as_of, {}) == {} for e in edges)
