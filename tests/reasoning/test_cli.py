"""The reasoning CLI on the hand-built plant: --json output parses into the result models; bad input
is a clear error with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantgraph.cli import app
from reasoning.results import RiskBoard, RootCauseResult, RuleRunResult, SopInEffectResult, TraceResult
from store.factory import open_store
from tests.reasoning import hand

runner = CliRunner()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "store"
    s = open_store("embedded", path)
    try:
        hand.build(s)
    finally:
        s.close()
    return str(path)


def run(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_trace_commands_json(store_path: str) -> None:
    r = TraceResult.model_validate_json(run("trace", "lot", "RL1", "--store", store_path, "--json"))
    assert set(r.ids("Lot")) == {"IL1", "IL2", "FL1", "FL2", "RW1"}
    r = TraceResult.model_validate_json(run("trace", "lot", "RL1", "--lot-precise", "--store", store_path, "--json"))
    assert r.mode == "lot_precise" and set(r.ids("Lot")) == {"IL1", "FL1"}
    r = TraceResult.model_validate_json(run("trace", "lot", "FL1", "--backward", "--store", store_path, "--json"))
    assert r.direction == "backward" and "SUP1" in r.ids("Supplier")
    r = TraceResult.model_validate_json(run("trace", "hold", "H1", "--store", store_path, "--json",
                                            "--as-of", "2026-03-06T00:00:00Z"))
    assert r.shipped_lots == [] and r.as_of is not None
    r = TraceResult.model_validate_json(run("trace", "machine", "M1", "--from", "2026-03-02T09:00:00Z",
                                            "--to", "2026-03-02T11:00:00Z", "--store", store_path, "--json"))
    assert r.start_orders == ["PO1"]
    r = TraceResult.model_validate_json(run("trace", "incident", "INC2", "--store", store_path, "--json"))
    assert r.start_orders == ["PO3"]


def test_risk_rootcause_sop_rules_json(store_path: str) -> None:
    b = RiskBoard.model_validate_json(run("risk", "--horizon", "14d", "--now", "2026-03-11T00:00:00Z",
                                          "--store", store_path, "--json"))
    assert b.lines_considered == 1 and b.lines[0].line.id == "SOL1"
    rc = RootCauseResult.model_validate_json(run("rootcause", "--lots", "FL1", "--store", store_path, "--json"))
    assert rc.bad_lots == ["FL1"]
    sop = SopInEffectResult.model_validate_json(run("sop", "--order", "PO2", "--store", store_path, "--json"))
    assert sop.superseded and sop.sop_version == "SOPV2"
    rr = RuleRunResult.model_validate_json(run("rules", "run", "lots_to_customers", "-p", "lots=FL1,FL2",
                                               "--store", store_path, "--json"))
    assert [e.entity.id for e in rr.bindings["customer"]] == ["C1", "C2"]
    names = {r["name"] for r in json.loads(run("rules", "list", "--json"))}
    assert "forward_genealogy" in names
    assert "forward_genealogy" in run("rules", "show", "forward_genealogy")


def test_human_output(store_path: str) -> None:
    out = run("trace", "hold", "H1", "--store", store_path)
    assert "customers: C1, C2" in out
    assert "SOL1" in run("risk", "--now", "2026-03-11T00:00:00Z", "--store", store_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "lot", "NOPE"], "no Lot with id 'NOPE'"),
        (["trace", "lot", "PO1"], "expected Lot"),
        (["trace", "machine", "M1", "--from", "2026-03-02T09:00", "--to", "2026-03-03T00:00Z"], "no time zone"),
        (["trace", "machine", "M1", "--from", "2026-03-03T00:00Z", "--to", "2026-03-02T00:00Z"], "must be after"),
        (["risk", "--horizon", "fortnight"], "duration"),
        (["rootcause"], "--lots"),
        (["rules", "run", "lots_to_customers", "-p", "nope=1"], "NAME=VALUE"),
        (["rules", "show", "nope"], "unknown rule 'nope'"),
    ],
)
def test_bad_input_is_a_clear_error(store_path: str, args: list[str], message: str) -> None:
    extra = ["--store", store_path] if args[0] != "rules" or args[1] == "run" else []
    res = runner.invoke(app, [*args, *extra])
    assert res.exit_code != 0
    assert message in res.output.replace("\n", " ") or message in (res.stderr if res.stderr_bytes else ""), res.output


def test_missing_store(tmp_path: Path) -> None:
    res = runner.invoke(app, ["trace", "lot", "X", "--store", str(tmp_path / "none")])
    assert res.exit_code == 2
    assert "no store at" in res.output


def test_rules_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparams: {lots: ids}\nstart: {class: Lot, ids: lots}\n"
                   "path:\n  - {rel: NOPE, direction: out}\nreturn: [x]\n", encoding="utf-8")
    res = runner.invoke(app, ["rules", "check", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:5" in res.output.replace("\n", "")
