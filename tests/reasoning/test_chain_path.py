"""The engine's chain path (a rule that is a fixed sequence of plain steps) gives exactly the
automaton's answers, and traces give the same JSON with it, without it and without the trusted
result builders (reasoning/trusted.py), on the hand-built plant and the generated tiny plant; the
traces' batch lot statuses equal ``common.lot_status`` lot by lot."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from reasoning import trusted
from reasoning.analyses.common import lot_status
from reasoning.analyses.trace import lot_statuses
from reasoning.engine import RuleEngine, RuleResult, _chain_plan
from reasoning.rule_model import Rule, load_rules, parse_rules
from reasoning.service import Analyses
from store.base import GraphStore
from tests.graphs import build_graph
from tests.reasoning import hand
from tests.reasoning.conftest import TinyPlant

RULES = load_rules()
CHAIN_RULES = [r.name for r in RULES if _chain_plan(r) is not None]

ROUND_TRIP = parse_rules("""\
name: round_trip
description: lots, the orders that consumed them, every lot those orders consumed, and what they made
params: {lots: ids}
start: {var: lot, class: Lot, ids: lots}
path:
  - {rel: CONSUMED, direction: in, node: {var: order, class: ProductionOrder}}
  - {rel: CONSUMED, direction: out, node: {var: lot, class: Lot}}
  - {rel: CONSUMED, direction: in, node: {var: order, class: ProductionOrder}}
  - {rel: PRODUCED, direction: out, node: {var: made}}
return: [lot, order, made]
""")[0]


def same(fast: RuleResult, slow: RuleResult) -> None:
    """Equal in everything a caller can see, bindings' insertion order included."""
    assert (fast.rule, fast.starts, fast.missing_starts) == (slow.rule, slow.starts, slow.missing_starts)
    assert (fast.depth_limit_hit, fast.result_limit_hit, fast.notes) == (
        slow.depth_limit_hit, slow.result_limit_hit, slow.notes)
    assert fast.states_visited == slow.states_visited
    assert list(fast.bindings) == list(slow.bindings)
    for var in fast.bindings:
        assert list(fast.bindings[var].items()) == list(slow.bindings[var].items()), var


def params_for(rule: Rule, starts: list[str], at: datetime) -> dict[str, Any]:
    return {name: starts if kind == "ids" else at for name, kind in rule.params.items()}


def start_ids(store: GraphStore, rule: Rule) -> list[str]:
    ids = sorted(n.id for c in rule.start.classes for n in store.find_nodes(c))
    return [*ids, "NOPE", *ids[:1]]  # an unknown id and a duplicate


def compare(store: GraphStore, rule: Rule, starts: list[str], as_of: datetime | None, at: datetime,
            max_results: int | None = None) -> RuleResult:
    p = params_for(rule, starts, at)
    fast = RuleEngine(store).evaluate(rule, p, as_of, max_results=max_results, edge_cache={}, node_cache={})
    slow = RuleEngine(store, fast_path=False).evaluate(rule, p, as_of, max_results=max_results)
    same(fast, slow)
    return fast


def test_the_chain_rules_are_the_plain_ones() -> None:
    assert {"lots_to_customers", "hold_lots", "incident_lots"} <= set(CHAIN_RULES)
    assert _chain_plan(RULES["forward_genealogy"]) is None  # a repeat
    assert _chain_plan(RULES["machine_window"]) is None  # a window
    assert _chain_plan(ROUND_TRIP) is not None


@pytest.mark.parametrize("rule_name", CHAIN_RULES)
def test_chain_rules_equal_the_automaton_on_the_hand_plant(store: GraphStore, rule_name: str) -> None:
    hand.build(store)
    rule = RULES[rule_name]
    starts = start_ids(store, rule)
    at = datetime.fromisoformat(hand.t(3))
    for as_of in (None, datetime.fromisoformat(hand.t(9)), datetime.fromisoformat(hand.t(11))):
        compare(store, rule, starts, as_of, at)
        compare(store, rule, starts[:1], as_of, at)
        compare(store, rule, starts, as_of, at, max_results=1)  # the result cap, mid-level


def test_a_chain_that_comes_back_to_its_starts(store: GraphStore) -> None:
    """A start reached again is reported as a start only; one variable at two positions; a step
    without classes."""
    hand.build(store)
    at = datetime.fromisoformat(hand.t(3))
    res = compare(store, ROUND_TRIP, ["RL1", "IL1", "IL2", "FL2"], None, at)
    assert res.ids("lot") == ["FL2", "IL1", "IL2", "RL1", "RL2", "RL3"]
    assert res.bindings["lot"]["RL1"].steps == ()  # a start, not the path back to it
    assert res.bindings["lot"]["RL2"].start == "RL1"
    assert res.ids("made") == ["FL1", "RW1"]  # IL1, IL2 and FL2 are starts
    for cap in (1, 2, 3, 5):
        compare(store, ROUND_TRIP, ["RL1", "IL1", "IL2", "FL2"], None, at, max_results=cap)


def test_the_chain_path_shares_the_callers_caches(store: GraphStore) -> None:
    hand.build(store)
    edges: dict[Any, Any] = {}
    nodes: dict[str, Any] = {}
    RuleEngine(store).evaluate(RULES["lots_to_customers"], {"lots": ["FL1", "FL2"]}, edge_cache=edges,
                               node_cache=nodes)
    assert [e.dst for e in edges[("FL2", ("ALLOCATED_TO", "SHIPPED_TO"), "out")]] == ["SOL2"]
    assert {"FL1", "FL2", "SOL1", "SOL2", "SO1", "SO2", "C1", "C2"} <= set(nodes)


def traces(a: Analyses, holds: list[str], lots: list[str], as_of: datetime | None) -> list[str]:
    holds = [h for h in holds if a.store.get_node(h, as_of) is not None]
    lots = [x for x in lots if a.store.get_node(x, as_of) is not None]
    out = [a.trace_hold(h, as_of, lp).model_dump_json() for h in holds for lp in (False, True)]
    out += [a.trace_lot(x, as_of, lp).model_dump_json() for x in lots for lp in (False, True)]
    out += [a.backward(x, as_of).model_dump_json() for x in lots]
    return out


def slow_analyses(store: GraphStore, now: datetime) -> Analyses:
    a = Analyses(store, now=now, rules_dirs=[])
    a.ctx.engine = RuleEngine(store, a.max_depth, a.max_results, fast_path=False)
    return a


def test_traces_equal_without_the_fast_paths_and_trusted_builders(
        store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    hand.build(store)
    now = datetime.fromisoformat(hand.t(11))
    lots = ["RL1", "RL2", "IL2", "FL2"]
    for as_of in (None, datetime.fromisoformat(hand.t(4)), datetime.fromisoformat(hand.t(11))):
        fast = traces(Analyses(store, now=now, rules_dirs=[]), ["H1"], lots, as_of)
        assert fast == traces(slow_analyses(store, now), ["H1"], lots, as_of)
        with monkeypatch.context() as m:
            m.setattr(trusted, "_ON", False)
            assert fast == traces(Analyses(store, now=now, rules_dirs=[]), ["H1"], lots, as_of)


@pytest.fixture(scope="module")
def tiny(tiny_plant: TinyPlant) -> tuple[GraphStore, datetime]:
    """The generator's tiny plant (seed 7) in an embedded store."""
    return tiny_plant.store, tiny_plant.truth.now


def test_chain_rules_and_traces_on_the_tiny_plant(tiny: tuple[GraphStore, datetime],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store, now = tiny
    earlier = now - timedelta(days=2)
    lots = sorted(n.id for n in store.find_nodes("Lot"))
    holds = sorted(n.id for n in store.find_nodes("QualityHold"))
    for as_of in (None, earlier):
        for rule_name in CHAIN_RULES:
            rule = RULES[rule_name]
            compare(store, rule, start_ids(store, rule), as_of, earlier)
        compare(store, RULES["lots_to_customers"], lots, as_of, earlier, max_results=7)
        compare(store, ROUND_TRIP, lots[::5], as_of, earlier)
    shipped = [n.id for n in store.find_nodes("Lot", where={"status": "shipped"})][:3]
    some = [*lots[:: max(1, len(lots) // 4)], *shipped]
    for as_of in (None, earlier):
        fast = traces(Analyses(store, now=now, rules_dirs=[]), holds, some, as_of)
        assert fast == traces(slow_analyses(store, now), holds, some, as_of)
        with monkeypatch.context() as m:
            m.setattr(trusted, "_ON", False)
            assert fast == traces(Analyses(store, now=now, rules_dirs=[]), holds, some, as_of)



def check_statuses(a: Analyses, times: list[datetime | None]) -> None:
    lots = list(a.store.find_nodes("Lot"))
    for as_of in times:
        want = {lot.id: lot_status(a.store, lot, as_of) for lot in lots}
        assert lot_statuses(a.ctx, lots, as_of) == want
        assert lot_statuses(a.ctx, lots[:1], as_of) == {k: want[k] for k in [lot.id for lot in lots[:1]]}
    assert lot_statuses(a.ctx, [], times[-1]) == {}


def test_lot_statuses_equal_lot_status_on_the_hand_plant(store: GraphStore) -> None:
    hand.build(store)
    # a second hold, placed on day 6 and never released, on RL2 and RL3
    build_graph(store, [("H2", "QualityHold", {"placed_at": hand.t(6)})],
                [("H2", "HOLDS", "RL2"), ("H2", "HOLDS", "RL3")])
    a = Analyses(store, now=datetime.fromisoformat(hand.t(11)), rules_dirs=[])
    statuses = lot_statuses(a.ctx, list(store.find_nodes("Lot")), datetime.fromisoformat(hand.t(11)))
    assert statuses["RL1"] == "released" and statuses["RL2"] == "on_hold"
    check_statuses(a, [None, *(datetime.fromisoformat(hand.t(d)) for d in (1, 4, 5, 6, 11))])


def test_lot_statuses_equal_lot_status_on_the_tiny_plant(tiny: tuple[GraphStore, datetime]) -> None:
    store, now = tiny
    check_statuses(Analyses(store, now=now, rules_dirs=[]), [None, now, now - timedelta(days=2),
                                                              now - timedelta(days=20)])
