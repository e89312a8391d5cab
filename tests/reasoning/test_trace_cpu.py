"""What the traces do to spend less CPU leaves their answers alone: the collector is paused for
the duration of a trace only (also when it fails), the engine's shortcut for steps whose edges
carry no times gives the steps :func:`reasoning.engine.edge_times` would, and the automaton's
memo of window anchors per state answers as computing them per edge does."""

from __future__ import annotations

import gc
from datetime import datetime, timedelta
from typing import Any

import pytest

from reasoning.analyses import trace
from reasoning.analyses.common import Context
from reasoning.engine import RuleEngine, _Run, as_time, edge_times, untimed
from reasoning.errors import NotFoundError
from reasoning.rule_model import load_rules, parse_rules
from reasoning.service import Analyses
from store.base import Direction, GraphStore
from tests.reasoning import hand
from tests.reasoning.conftest import TinyPlant
from tests.reasoning.test_chain_path import same

RULES = load_rules()


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


WINDOW_RULES = [r.name for r in RULES if any(st.window is not None for st in r.steps())]
#: windows the edge decides, anchored on a variable (each start order has its own anchors)
ANCHORED = {r.name: r for r in parse_rules("""\
rules:
  - name: ran_during_order
    params: {orders: ids}
    start: {var: order, class: ProductionOrder, ids: orders}
    path:
      - {rel: RAN_ON, direction: out, node: {var: machine, class: Machine}}
      - rel: RAN_ON
        direction: in
        node: {var: other, class: ProductionOrder}
        window: {kind: overlaps, start: [edge.start], end: [edge.end],
                 from: {var: order, prop: actual_start}, to: {var: order, prop: actual_end, offset: 1h}}
    return: [other]
  - name: started_during_order
    params: {orders: ids}
    start: {var: order, class: ProductionOrder, ids: orders}
    path:
      - {rel: RAN_ON, direction: out, node: {var: machine, class: Machine}}
      - rel: RAN_ON
        direction: in
        node: {var: other, class: ProductionOrder}
        window: {kind: within, time: [edge.start], from: {var: order, prop: actual_start},
                 to: {var: order, prop: actual_end, offset: 1d}}
    return: [other]
  - name: running_at_order_start
    params: {orders: ids}
    start: {var: order, class: ProductionOrder, ids: orders}
    path:
      - {rel: RAN_ON, direction: out, node: {var: machine, class: Machine}}
      - rel: RAN_ON
        direction: in
        node: {var: other, class: ProductionOrder}
        window: {kind: contains, start: [edge.start], end: [edge.end], at: {var: order, prop: actual_end, offset: 3h}}
    return: [other]
""")}


def _plain_anchors(self: _Run, step: Any, w: Any, key: Any) -> Any:
    self._anchors.clear()
    self._bound.clear()
    return ANCHORS(self, step, w, key)


ANCHORS = _Run.anchors


def test_window_anchors_memo_changes_no_answer(tiny_plant: TinyPlant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The automaton's per-state memo of window anchors gives what computing them per edge gives,
    for every rule with a window, on the tiny plant, with and without as_of."""
    store, now = tiny_plant.store, tiny_plant.truth.now
    assert {"machine_window", "incidents_during_production", "sop_versions_for"} <= set(WINDOW_RULES)
    found: dict[str, int] = {}
    for name in [*WINDOW_RULES, *ANCHORED]:
        rule = ANCHORED[name] if name in ANCHORED else RULES[name]
        starts = sorted(n.id for c in rule.start.classes for n in store.find_nodes(c))
        if name in ANCHORED:
            starts = starts[::3]  # a start reached again is reported as a start only
        for as_of in (None, now - timedelta(days=2)):
            for lo, hi in ((now - timedelta(days=30), now), (now - timedelta(days=3), now - timedelta(days=2))):
                params = {p: starts if kind == "ids" else (hi if p in ("to", "at") else lo)
                          for p, kind in rule.params.items()}
                memo = RuleEngine(store, fast_path=False).evaluate(rule, params, as_of)
                with monkeypatch.context() as m:
                    m.setattr(_Run, "anchors", _plain_anchors)
                    plain = RuleEngine(store, fast_path=False).evaluate(rule, params, as_of)
                same(memo, plain)
                found[name] = found.get(name, 0) + sum(len(b) for b in memo.bindings.values())
    assert all(found.values()), found  # every rule matched something


def _as_time_before(value: Any) -> datetime | None:
    """``engine.as_time`` as it was before its string fast path."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


class _Text(str):
    pass


def test_as_time_string_fast_path_answers_as_before() -> None:
    t = datetime.fromisoformat("2026-03-01T02:03:04+01:00")
    values: list[Any] = [None, "", " ", "2026-03-01", "2026-03-01T02:03:04Z", "2026-03-01T02:03:04+01:00",
                         "2026-03-01T02:03:04.123456-05:00", "not a time", "2026-13-01T00:00:00Z", "Z", t,
                         _Text("2026-03-01T02:03:04Z"), _Text(""), 0, 1.5, ["2026-03-01"]]
    for v in values:
        got, want = as_time(v), _as_time_before(v)
        assert got == want and (got is None or got.tzinfo == want.tzinfo), v  # type: ignore[union-attr]


def test_chain_prefetch_reads_nodes_once_and_answers_the_same(
        tiny_plant: TinyPlant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain path's prefetch of its leading unfiltered levels: the customer chain reads its
    nodes in one call instead of three, with the same answers and shared caches as without it."""
    from reasoning import engine

    store = tiny_plant.store
    rule = RULES["lots_to_customers"]
    assert [engine._admits_all(st) for st in rule.path] == [True, True, True]  # type: ignore[arg-type]
    pruned = parse_rules("""\
name: incidents_on_machines_of_consuming_orders
params: {lots: ids}
start: {var: lot, class: Lot, ids: lots}
path:
  - {rel: CONSUMED, direction: in, node: {var: order, class: ProductionOrder}}
  - {rel: RAN_ON, direction: out, node: {var: machine, class: Machine}}
  - {rel: OCCURRED_ON, direction: in, node: {var: incident, class: Incident}}
  - {rel: CONCERNS, direction: out, node: {var: lot2, class: Lot}}
return: [machine, incident, lot2]
""")[0]
    # two unfiltered levels, then steps whose classes prune (events other than incidents, orders)
    assert [engine._admits_all(st) for st in pruned.path] == [True, True, False, False]  # type: ignore[arg-type]
    lots = sorted(n.id for n in store.find_nodes("Lot"))
    calls: list[int] = []
    get_nodes = store.get_nodes

    def counting(ids: Any, as_of: Any = None) -> Any:
        calls.append(1)
        return get_nodes(ids, as_of)

    for as_of in (None, tiny_plant.truth.now - timedelta(days=2)):
        for starts in (lots, lots[::7], lots[:1]):
            edges: dict[Any, Any] = {}
            nodes: dict[str, Any] = {}
            monkeypatch.setattr(store, "get_nodes", counting)
            calls.clear()
            engine._fetch_into(store, nodes, starts, as_of)  # the starts, read by the caller
            with_prefetch = RuleEngine(store).evaluate(rule, {"lots": starts}, as_of, edge_cache=edges,
                                                       node_cache=nodes)
            assert len(calls) <= 2
            monkeypatch.setattr(store, "get_nodes", get_nodes)
            with monkeypatch.context() as m:
                m.setattr(engine, "_prefetch_chain", lambda *a, **k: None)
                edges2: dict[Any, Any] = {}
                plain = RuleEngine(store).evaluate(rule, {"lots": starts}, as_of, edge_cache=edges2, node_cache={})
            same(with_prefetch, plain)
            assert edges == edges2
            for cap in (1, 3):
                same(RuleEngine(store).evaluate(rule, {"lots": starts}, as_of, max_results=cap),
                     RuleEngine(store, fast_path=False).evaluate(rule, {"lots": starts}, as_of, max_results=cap))
            same(RuleEngine(store).evaluate(pruned, {"lots": starts}, as_of),
                 RuleEngine(store, fast_path=False).evaluate(pruned, {"lots": starts}, as_of))
