"""Rules compiled to one parameterised Cypher query (reasoning/cypher.py).

Every built-in rule compiles, with no parameter value in the query text. On the neo4j backend the
compiled query reaches the same entity ids per returned variable as the embedded engine (on the
hand-drawn plant of tests/reasoning/hand.py), at the same depth, and
every evidence path walks edges that exist. Paths themselves may differ where several shortest
paths exist (the engine breaks BFS ties by edge key, the server by its own search order).
On the embedded backend, running a compiled rule is refused with a clear error.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from reasoning.cypher import CypherCompileError, compile_rule, run_compiled
from reasoning.engine import RuleEngine, RuleResult
from reasoning.errors import ReasoningError
from reasoning.rule_model import Rule, load_rules, parse_rules
from store.base import GraphStore
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


def test_a_repeat_whose_positions_share_classes_is_refused_clearly() -> None:
    (rule,) = parse_rules(
        """
name: lot_hops
params: {lots: ids}
start: {var: start, class: Lot, ids: lots}
path:
  - repeat:
      max: 5
      any_of:
        - - {rel: DERIVED_FROM, direction: out, node: {var: mid, class: Lot}}
          - {rel: DERIVED_FROM, direction: out, node: {var: lot, class: Lot}}
return: [lot]
""")
    with pytest.raises(CypherCompileError, match=r"lot_hops.*class decides its position"):
        compile_rule(rule, {"lots": ["L1"]})


def test_compile_checks_parameters() -> None:
    with pytest.raises(ReasoningError, match="needs parameter 'from'"):
        compile_rule(RULES["machine_window"], {"machines": ["M1"], "to": AT})


# ---------------------------------------------------------------------------------------------
# Same answers as the engine (neo4j backend)
# ---------------------------------------------------------------------------------------------


def _compare(store: GraphStore, rule: Rule, params: dict[str, Any], as_of: datetime | None = None,
             fast_path: bool = False) -> int:
    """Assert the compiled query and the engine agree; return how many nodes were compared."""
    want: RuleResult = RuleEngine(store, fast_path=fast_path).evaluate(rule, params, as_of)
    got = run_compiled(store, rule, params, as_of)
    assert got.starts == want.starts, rule.name
    assert got.missing_starts == want.missing_starts, rule.name
    n = 0
    for var in rule.returns:
        assert got.ids(var) == want.ids(var), f"{rule.name} {var} {params} as_of={as_of}"
        for m_got, m_want in zip(got.matches(var), want.matches(var), strict=True):
            assert m_got.depth == m_want.depth, f"{rule.name} {var} {m_got.node.id}"
            assert m_got.node.cls == m_want.node.cls
            if m_got.steps:
                ev = m_got.evidence(rule.name)
                assert ev.steps[0].src in got.starts and ev.steps[-1].dst == m_got.node.id
                assert ev.steps[0].src == m_got.start
                assert assert_paths_exist(store, [ev], as_of) == m_got.depth
            n += 1
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
    assert compared > 200


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
