"""Rules compiled to one parameterised Cypher query (reasoning/cypher.py).

Every built-in rule compiles, with no parameter value in the query text. On the neo4j backend a
compiled run returns exactly what the engine returns on the same store, with and without the
engine's traversal fast path: the same ids per variable, depths, start nodes, evidence paths (step
by step, times included) and flags, on the hand-drawn plant of tests/reasoning/hand.py and on the
generator's tiny plant, where the known answers of truth.json hold too. A repeat whose bound is
reached is answered by the interpreter, and says so. On the embedded backend, running a compiled
rule is refused with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from graph_loader.generator import generate, load_truth, named_spec
from graph_loader.loader import load_bundle
from reasoning.cypher import CompiledStats, compile_rule, run_compiled
from reasoning.engine import RuleEngine, RuleResult, _fast_plan
from reasoning.errors import ReasoningError
from reasoning.rule_model import Rule, load_rules, parse_rules
from store.base import GraphStore
from tests.conftest import open_backend
from tests.reasoning import hand
from tests.reasoning.evidence import assert_paths_exist

RULES = load_rules()
AT = datetime.fromisoformat("2026-03-02T09:30:00+00:00")


def _params(rule: Rule, ids: list[str], at: datetime = AT, to: datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in rule.params.items():
        if kind == "ids":
            out[name] = ids
        elif name == "to" and to is not None:
            out[name] = to
        else:
            out[name] = at
    return out


@pytest.mark.parametrize("name", sorted(RULES.rules))
def test_every_builtin_rule_compiles_without_values_in_text(name: str) -> None:
    rule = RULES[name]
    weird_id = "ZQX-4711'--"
    when = datetime.fromisoformat("2031-07-19T13:14:15+02:00")
    cq = compile_rule(rule, _params(rule, [weird_id, "ZQX-0815"], when), as_of=when)
    assert weird_id not in cq.cypher and "ZQX" not in cq.cypher
    assert "2031" not in cq.cypher and "13:14" not in cq.cypher
    # no string literal of any kind: names are backquoted identifiers, values are $parameters
    assert "'" not in cq.cypher and '"' not in cq.cypher
    assert cq.parameters[f"p_{rule.start.ids}"] == [weird_id, "ZQX-0815"]
    assert cq.parameters["as_of"] == when
    for p in set(re.findall(r"\$(\w+)", cq.cypher)):
        assert p in cq.parameters, f"{name}: ${p} used but not passed"
    for rel in {r for st in rule.steps() for r in st.rels}:
        assert f"`{rel}`" in cq.cypher


def test_rule_offsets_and_literals_are_parameters() -> None:
    (rule,) = parse_rules(
        """
name: late_incidents
params: {orders: ids}
start: {var: order, class: ProductionOrder, ids: orders, where: [{prop: status, op: in, value: [completed, closed]}]}
path:
  - {rel: RAN_ON, direction: out, node: {var: machine, class: Machine}}
  - rel: OCCURRED_ON
    direction: in
    node: {var: incident, class: Incident, where: [{prop: severity, value: high}]}
    window: {kind: within, time: [node.occurred_at], from: {var: order, prop: actual_start, offset: -2h},
             to: {var: order, prop: actual_end, offset: 90m}}
return: [incident]
""")
    cq = compile_rule(rule, {"orders": ["PO1"]})
    assert "high" not in cq.cypher and "completed" not in cq.cypher and "90" not in cq.cypher
    values = list(cq.parameters.values())
    assert ["completed", "closed"] in values and "high" in values
    assert any(getattr(v, "total_seconds", lambda: 0)() == -7200 for v in values)


LOT_HOPS = """
name: lot_hops
params: {lots: ids}
start: {var: start, class: Lot, ids: lots}
path:
  - repeat:
      max: 1
      any_of:
        - - {rel: CONSUMED, direction: in, node: {var: mid, class: ProductionOrder}}
          - {rel: PRODUCED, direction: out, node: {var: lot, class: Lot}}
        - - {rel: DERIVED_FROM, direction: in, node: {var: lot, class: Lot}}
return: [mid, lot]
"""


def test_the_level_bound_and_positions_come_from_the_automaton() -> None:
    """A repeat is the engine's automaton: positions share classes freely, and the server searches
    one level more than the deepest state the bound allows (to see the bound being reached)."""
    (rule,) = parse_rules(LOT_HOPS)
    cq = compile_rule(rule, {"lots": ["L1"]})
    assert cq.parameters["levels"] == 1 * 2 + 1
    assert "$levels" in cq.cypher and "1 * 2" not in cq.cypher
    deep = compile_rule(RULES["forward_genealogy"], {"lots": ["L1"]}, max_depth=7)
    assert deep.parameters["levels"] == 7 * 2 + 1


def test_compile_checks_parameters() -> None:
    with pytest.raises(ReasoningError, match="needs parameter 'from'"):
        compile_rule(RULES["machine_window"], {"machines": ["M1"], "to": AT})


# ---------------------------------------------------------------------------------------------
# Same answers as the engine (neo4j backend)
# ---------------------------------------------------------------------------------------------


def _assert_same(got: RuleResult, want: RuleResult, what: str) -> int:
    """The compiled answer is the engine's: ids, depths, starts, evidence steps, flags."""
    assert got.starts == want.starts, what
    assert got.missing_starts == want.missing_starts, what
    assert (got.depth_limit_hit, got.result_limit_hit) == (want.depth_limit_hit, want.result_limit_hit), what
    n = 0
    for var in want.bindings:
        assert got.ids(var) == want.ids(var), f"{what} {var}"
        for m_got, m_want in zip(got.matches(var), want.matches(var), strict=True):
            assert (m_got.node, m_got.depth, m_got.start) == (m_want.node, m_want.depth, m_want.start), what
            assert m_got.steps == m_want.steps, f"{what} {var} {m_got.node.id}"
            n += 1
    return n


def _compare(store: GraphStore, rule: Rule, params: dict[str, Any], as_of: datetime | None = None) -> int:
    """Assert the compiled query and the engine agree (with and without the engine's fast path);
    return how many nodes were compared."""
    n = 0
    # the engine's traversal fast path picks evidence its own way: compare both where it applies
    for fast in (False, True) if _fast_plan(rule, 50) is not None else (False,):
        want = RuleEngine(store, fast_path=fast).evaluate(rule, params, as_of)
        got = run_compiled(store, rule, params, as_of, fast_path=fast)
        n += _assert_same(got, want, f"{rule.name} fast={fast} {params} as_of={as_of}")
        for var in rule.returns:
            for m in got.matches(var):
                if m.steps:
                    ev = m.evidence(rule.name)
                    assert ev.steps[0].src == m.start and ev.steps[-1].dst == m.node.id
                    assert assert_paths_exist(store, [ev], as_of) == m.depth
    return n


def _start_ids(store: GraphStore, rule: Rule) -> list[list[str]]:
    classes = rule.start.classes or ("Lot",)
    ids = sorted(n.id for c in classes for n in store.find_nodes(c))
    return [[i] for i in ids] + [[*ids[:3], "NO-SUCH-ID"]]


def _refuses_embedded(store: GraphStore) -> None:
    with pytest.raises(ReasoningError, match="compiled rules need the neo4j backend"):
        run_compiled(store, RULES["hold_lots"], {"holds": ["H1"]})


def test_compiled_rules_match_the_engine_on_the_hand_plant(store: GraphStore, backend: str) -> None:
    if backend != "neo4j":
        _refuses_embedded(store)
        return
    hand.build(store)
    compared = 0
    windows = [(hand.t(2, 7), hand.t(2, 9)), (hand.t(2, 11), hand.t(3, 0)), (hand.t(1), hand.t(30))]
    for rule in RULES:
        for ids in _start_ids(store, rule):
            if "from" in rule.params:
                for lo, hi in windows:
                    p = _params(rule, ids, datetime.fromisoformat(lo), datetime.fromisoformat(hi))
                    compared += _compare(store, rule, p)
                continue
            for at in (hand.t(2), hand.t(5)) if rule.params.get("at") else (hand.t(2),):
                compared += _compare(store, rule, _params(rule, ids, datetime.fromisoformat(at)))
        # as of a time (the SHIPPED_TO edge of FL2 is valid from day 10 only)
        for as_of in (hand.t(5), hand.t(11)):
            when = datetime.fromisoformat(as_of)
            for ids in _start_ids(store, rule)[:2]:
                compared += _compare(store, rule, _params(rule, ids, when, when), as_of=when)
    assert compared > 400


def test_a_reached_repeat_bound_is_answered_by_the_engine(store: GraphStore, backend: str) -> None:
    """RL1 -> PO1 -> IL1 -> PO2 -> FL1 needs two passes of the repeat; with max 1 the engine flags the
    bound, and so does the compiled run, by handing the rule to the engine (counted)."""
    if backend != "neo4j":
        _refuses_embedded(store)
        return
    hand.build(store)
    (rule,) = parse_rules(LOT_HOPS)
    stats = CompiledStats()
    for fast in (False, True):
        want = RuleEngine(store, fast_path=fast).evaluate(rule, {"lots": ["RL1"]})
        got = run_compiled(store, rule, {"lots": ["RL1"]}, fast_path=fast, stats=stats)
        assert want.depth_limit_hit and got.depth_limit_hit
        _assert_same(got, want, f"lot_hops fast={fast}")
    assert stats.queries == 2 and stats.fallbacks == 2
    # below the bound nothing falls back
    ok = run_compiled(store, rule, {"lots": ["FL1"]}, stats=stats)
    assert stats.fallbacks == 2 and not ok.depth_limit_hit


def test_lot_precise_and_as_of_known_answers(store: GraphStore, backend: str) -> None:
    """Answers worked out on the picture in tests/reasoning/hand.py."""
    if backend != "neo4j":
        _refuses_embedded(store)
        return
    hand.build(store)
    fwd = run_compiled(store, RULES["forward_genealogy_lot_precise"], {"lots": ["RL1"]})
    # RL1 -> IL1 (DERIVED_FROM) -> PO2 -> FL1; PO1's other output IL2 has its own DERIVED_FROM
    assert fwd.ids("lot") == ["FL1", "IL1"]
    assert fwd.ids("order") == ["PO1", "PO2"]
    cons = run_compiled(store, RULES["forward_genealogy"], {"lots": ["RL1"]})
    assert set(cons.ids("lot")) == {"IL1", "IL2", "FL1", "FL2", "RW1"}
    fl2 = cons.bindings["lot"]["FL2"]
    assert [s.rel for s in fl2.steps] == ["CONSUMED", "PRODUCED", "CONSUMED", "PRODUCED"]
    before = run_compiled(store, RULES["lots_to_customers"], {"lots": ["FL2"]},
                          as_of=datetime.fromisoformat(hand.t(5)))
    after = run_compiled(store, RULES["lots_to_customers"], {"lots": ["FL2"]},
                         as_of=datetime.fromisoformat(hand.t(11)))
    assert before.ids("customer") == [] and after.ids("customer") == ["C2"]
    inc = run_compiled(store, RULES["incidents_during_production"], {"orders": ["PO1", "PO3"]})
    assert inc.ids("incident") == ["INC1"]  # 09:00 inside PO1's 08-10 run; INC2 at 11:00 in neither
    step = inc.bindings["incident"]["INC1"].steps[-1]
    assert step.times["node.occurred_at"] == datetime.fromisoformat(hand.t(2, 9))


@pytest.fixture(scope="module")
def tiny_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GraphStore, Path]]:
    """The generator's tiny plant (seed 7) loaded into Neo4j, for the one test that uses it."""
    bundle = tmp_path_factory.mktemp("cypher-tiny") / "bundle"
    generate(named_spec("tiny"), 7, bundle)
    store = open_backend("neo4j", tmp_path_factory.mktemp("cypher-tiny-store"))
    try:
        load_bundle(store, bundle)
        yield store, bundle
    finally:
        store.close()


@pytest.mark.neo4j
@pytest.mark.slow
def test_compiled_rules_on_the_generated_tiny_plant(tiny_neo4j: tuple[GraphStore, Path]) -> None:
    """Known answers of truth.json through compiled queries, and every built-in rule equal to the
    engine from a spread of real start entities (single and batched, with an unknown id)."""
    store, bundle = tiny_neo4j
    truth = load_truth(bundle / "truth.json")
    sc = truth.scenarios
    stats = CompiledStats()
    fwd = run_compiled(store, RULES["forward_genealogy"], {"lots": [sc.contaminated_supplier_lot.supplier_lot]},
                       stats=stats)
    assert fwd.ids("lot") == sorted(sc.contaminated_supplier_lot.reached_lots)
    assert fwd.ids("order") == sorted(sc.contaminated_supplier_lot.reached_production_orders)
    m = sc.machine_fault
    win = run_compiled(store, RULES["machine_window"], {"machines": [m.machine], "from": m.from_, "to": m.to},
                       stats=stats)
    assert win.ids("order") == sorted(m.affected_production_orders)
    assert win.ids("lot") == sorted(m.affected_lots)
    h = sc.quality_hold
    assert run_compiled(store, RULES["hold_lots"], {"holds": [h.hold]}, stats=stats).ids("lot") == [h.lot]
    held = run_compiled(store, RULES["forward_genealogy"], {"lots": [h.lot]}, stats=stats)
    assert held.ids("lot") == sorted(h.reached_lots)

    compared = 0
    for rule in RULES:
        ids = sorted(n.id for c in rule.start.classes for n in store.find_nodes(c))
        picks = ids[:: max(1, len(ids) // 2)][:2]
        for starts in [*([i] for i in picks), [*picks, "NO-SUCH-ID"]]:
            params: dict[str, Any] = {}
            for k, kind in rule.params.items():
                params[k] = starts if kind == "ids" else {
                    "from": truth.now - timedelta(days=2), "to": truth.now}.get(k, truth.now - timedelta(days=5))
            compared += _compare(store, rule, params)
        compared += _compare(store, rule, {k: (picks if kind == "ids" else truth.now)
                                           for k, kind in rule.params.items()}, as_of=truth.now - timedelta(days=3))
    assert compared > 100
    assert stats.fallbacks == 0


def test_cli_rules_explain_prints_cypher_and_parameters() -> None:
    from typer.testing import CliRunner

    from plantgraph.cli import app

    r = CliRunner().invoke(app, ["rules", "explain", "lots_to_customers", "-p", "lots=LOT-77,LOT-78", "--json"])
    assert r.exit_code == 0, r.output
    import json

    out = json.loads(r.output)
    assert out["parameters"]["p_lots"] == ["LOT-77", "LOT-78"]
    assert "LOT-77" not in out["cypher"] and "`SHIPPED_TO`" in out["cypher"]
    bad = CliRunner().invoke(app, ["rules", "explain", "lots_to_customers", "-p", "nope=1"])
    assert bad.exit_code != 0 and "NAME one of ['lots']" in bad.output
    unknown = CliRunner().invoke(app, ["rules", "explain", "no_such_rule"])
    assert unknown.exit_code == 1 and "unknown rule 'no_such_rule'" in unknown.output
