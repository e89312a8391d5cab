"""Rule files: validation against the ontology with file:line errors, user rule folders, running rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning.errors import RuleError
from reasoning.rule_model import BUILTIN_RULES_DIR, load_rules, parse_rules
from reasoning.service import Analyses
from store.base import GraphStore
from tests.reasoning import hand
from tests.reasoning.evidence import assert_paths_exist

GOOD = """\
name: my_rule
description: lots to the orders that consumed them
params: {lots: ids}
start: {var: lot, class: Lot, ids: lots}
path:
  - rel: CONSUMED
    direction: in
    node: {var: order, class: ProductionOrder}
return: [order]
"""


def test_builtin_rules_load_and_are_documented() -> None:
    rules = load_rules()
    names = {r.name for r in rules}
    assert {"forward_genealogy", "backward_genealogy", "lots_to_customers", "machine_window",
            "sop_versions_for", "order_context"} <= names
    docs = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in docs, f"rule {name} is not explained in docs/rules.md"
    for r in rules:
        assert r.source is not None and r.source.startswith(str(BUILTIN_RULES_DIR)) and r.line


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("rel: CONSUMED", "rel: CONSUMES", 6, "unknown relation 'CONSUMES'"),
        ("class: ProductionOrder}", "class: WorkOrder}", 8, "unknown class 'WorkOrder'"),
        ("class: ProductionOrder}", "class: ProductionOrder, where: [{prop: colour, value: red}]}", 8,
         "unknown property 'colour'"),
        ("direction: in", "direction: sideways", 7, "direction"),
        ("class: ProductionOrder}", "class: Customer}", 8, "can never be reached"),
        ("rel: CONSUMED", "rel: PLACED_BY", 6, "cannot leave ['Lot']"),
        ("return: [order]", "return: [nobody]", 9, "unknown variable 'nobody'"),
        ("ids: lots}", "ids: things}", 4, "start.ids names 'things'"),
        ("path:\n", "path:\n  - repeat: {max: 0, any_of: [[{rel: CONSUMED, direction: in}]]}\n", 6, "max"),
        ("    node:", "    window: {kind: within, time: [node.nonsense], from: {param: lots}}\n    node:", 8,
         "not a timestamp property"),
        ("name: my_rule", "name: my_rule\n  bad: [", 2, "invalid YAML"),
    ],
)
def test_rule_errors_name_file_and_line(old: str, new: str, line: int, message: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(RuleError) as err:
        parse_rules(text, "rules/mine.yaml")
    assert err.value.file == "rules/mine.yaml"
    assert err.value.line == line, str(err.value)
    assert message in str(err.value)
    assert str(err.value).startswith(f"rules/mine.yaml:{line}")


def test_user_rules_dir_adds_a_rule_without_python(tmp_path: Path, store: GraphStore) -> None:
    (tmp_path / "mine.yaml").write_text(GOOD, encoding="utf-8")
    hand.build(store)
    a = Analyses(store, rules_dirs=[tmp_path])
    res = a.run_rule("my_rule", {"lots": ["IL1", "IL2"]})
    assert {e.entity.id for e in res.bindings["order"]} == {"PO2", "PO3"}
    assert assert_paths_exist(store, [p for e in res.bindings["order"] for p in e.evidence]) == 2


def test_duplicate_rule_names_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text(GOOD.replace("my_rule", "forward_genealogy"), encoding="utf-8")
    with pytest.raises(RuleError, match="already defined in"):
        load_rules([tmp_path])


def test_missing_rules_dir(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="does not exist"):
        load_rules([tmp_path / "nope"])


def test_rule_run_needs_its_params(store: GraphStore) -> None:
    from reasoning.errors import ReasoningError

    a = Analyses(store, rules_dirs=[])
    with pytest.raises(ReasoningError, match="needs parameter 'lots'"):
        a.run_rule("forward_genealogy", {})
    with pytest.raises(ReasoningError, match="timezone-aware"):
        a.run_rule("machine_window", {"machines": ["M1"], "from": "2026-03-01T00:00", "to": "2026-03-02T00:00Z"})


def test_an_edited_rule_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert "my_rule" in load_rules([tmp_path])
    path.write_text(GOOD.replace("rel: CONSUMED", "rel: CONSUMES"), encoding="utf-8")
    with pytest.raises(RuleError, match="CONSUMES"):
        load_rules([tmp_path])
