"""The data CLI: validate, load, stats, get, export rdf (through Typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph
from typer.testing import CliRunner

from ontology.models import ENTITY_CLASSES
from ontology.rdf import entity_iri, rel_iri
from plantgraph.cli import app
from store.factory import open_store
from tests.graph_loader.bundles import EXAMPLE, copy_example, data_rows

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("PLANTGRAPH_STORE", raising=False)
    monkeypatch.delenv("PLANTGRAPH_BACKEND", raising=False)


def _rows(root: Path) -> tuple[int, int]:
    nodes = edges = 0
    for p in root.iterdir():
        if p.suffix in (".csv", ".jsonl"):
            if p.stem in ENTITY_CLASSES:
                nodes += data_rows(p)
            else:
                edges += data_rows(p)
    return nodes, edges


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    n, e = _rows(EXAMPLE)
    assert f"{n} entities" in ok.stdout and f"{e} relations" in ok.stdout

    bad = copy_example(tmp_path / "bad")
    with (bad / "Lot.csv").open("a") as f:
        f.write("LOT-Z,Z,MES,SITE-LYON,1,kg,released,2026-03-02T06:00:00,\n")
    with (bad / "HOLDS.csv").open("a") as f:
        f.write("HOLD-88,LOT-MISSING\n")
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 1
    lines = [ln for ln in res.stdout.splitlines() if ln]
    assert lines[0].startswith("Lot.csv:5:produced_at: ") and "time zone" in lines[0]
    assert lines[1].startswith("HOLDS.csv:3:dst: ") and "'LOT-MISSING'" in lines[1]
    assert len(lines) == 2


def test_load_stats_get_roundtrip(tmp_path: Path) -> None:
    store = tmp_path / "s"
    res = runner.invoke(app, ["load", str(EXAMPLE), "--store", str(store)])
    assert res.exit_code == 0, res.output
    n, e = _rows(EXAMPLE)
    assert f"loaded {n} entities" in res.stdout and f"{e} relations" in res.stdout

    stats = json.loads(runner.invoke(app, ["stats", "--store", str(store), "--json"]).stdout)
    assert stats["nodes"] == n and stats["edges"] == e
    assert stats["nodes_by_class"]["Lot"] == data_rows(EXAMPLE / "Lot.csv")
    assert stats["edges_by_relation"]["PRODUCED"] == data_rows(EXAMPLE / "PRODUCED.csv")

    got = runner.invoke(app, ["get", "WO-1001", "--store", str(store), "--json"])
    assert got.exit_code == 0, got.output
    view = json.loads(got.stdout)
    assert view["cls"] == "ProductionOrder" and view["props"]["status"] == "completed"
    groups = {(g["relation"], g["direction"]): g for g in view["relations"]}
    produced = groups[("PRODUCED", "out")]
    assert {nb["id"] for nb in produced["neighbours"]} == {"LOT-SYR-0001", "LOT-SYR-0002"}
    assert all(nb["cls"] == "Lot" and nb["edge_props"]["quantity"] > 0 for nb in produced["neighbours"])
    assert {nb["id"] for nb in groups[("CONCERNS", "in")]["neighbours"]} == {"INC-301"}

    text = runner.invoke(app, ["get", "WO-1001", "--store", str(store)])
    assert text.exit_code == 0 and "PRODUCED" in text.stdout and "LOT-SYR-0002" in text.stdout


def test_get_unknown_id_fails_clearly(tmp_path: Path) -> None:
    store = tmp_path / "s"
    runner.invoke(app, ["load", str(EXAMPLE), "--store", str(store)])
    res = runner.invoke(app, ["get", "LOT-NOPE", "--store", str(store)])
    assert res.exit_code == 1
    assert "no entity with id 'LOT-NOPE'" in res.stderr


def test_commands_on_a_missing_store_fail_clearly(tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "--store", str(tmp_path / "none")])
    assert res.exit_code == 1 and "no store at" in res.stderr


def test_bad_load_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    runner.invoke(app, ["load", str(EXAMPLE), "--store", str(store)])
    before = json.loads(runner.invoke(app, ["stats", "--store", str(store), "--json"]).stdout)
    bad = copy_example(tmp_path / "bad")
    (bad / "Lot.csv").write_text((bad / "Lot.csv").read_text().replace(",1500,l,shipped,", ",1400,l,shipped,")
                                 + "LOT-NEW,n,MES,SITE-LYON,0,kg,released,,\n")
    res = runner.invoke(app, ["load", str(bad), "--store", str(store)])
    assert res.exit_code == 1
    assert res.stdout.splitlines()[0].startswith("Lot.csv:5:quantity: ")
    assert "nothing was written" in res.stderr
    after = json.loads(runner.invoke(app, ["stats", "--store", str(store), "--json"]).stdout)
    assert after == before
    with open_store("embedded", store) as s:
        lot = s.get_node("LOT-SYR-0001")
        assert lot is not None and lot.props["quantity"] == 1500.0


def test_store_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_STORE", str(tmp_path / "env-store"))
    assert runner.invoke(app, ["load", str(EXAMPLE)]).exit_code == 0
    assert (tmp_path / "env-store").is_dir()
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["store"] == str(tmp_path / "env-store") and stats["nodes"] > 0


def test_store_path_defaults_to_the_data_dir(tmp_path: Path) -> None:
    assert runner.invoke(app, ["load", str(EXAMPLE)]).exit_code == 0
    assert (tmp_path / "data" / "store").is_dir()


@pytest.mark.parametrize(("fmt", "rdflib_format"), [("turtle", "turtle"), ("nt", "nt"), ("json-ld", "json-ld")])
def test_export_rdf(tmp_path: Path, fmt: str, rdflib_format: str) -> None:
    store = tmp_path / "s"
    runner.invoke(app, ["load", str(EXAMPLE), "--store", str(store)])
    out = tmp_path / f"plant.{fmt}"
    res = runner.invoke(app, ["export", "rdf", "--format", fmt, "--out", str(out), "--store", str(store)])
    assert res.exit_code == 0, res.output
    g = Graph().parse(out, format=rdflib_format)
    assert (entity_iri("WO-1001"), rel_iri("PRODUCED"), entity_iri("LOT-SYR-0002")) in g
    subjects = {s for s in g.subjects() if str(s).startswith("https://plantgraph.example/id/")}
    assert len(subjects) == _rows(EXAMPLE)[0]


def test_validate_json_and_missing_folder(tmp_path: Path) -> None:
    bad = copy_example(tmp_path / "bad")
    (bad / "Lots.csv").write_text("id\nL-1\n")
    res = runner.invoke(app, ["validate", str(bad), "--json"])
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert report["valid"] is False and report["error_count"] == 1
    assert report["errors"][0]["file"] == "Lots.csv"
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "not a bundle folder" in missing.stderr


def test_streamed_turtle_holds_the_same_triples_as_rdflib_would_write(tmp_path: Path) -> None:
    from ontology.rdf import graph_from_records

    store = tmp_path / "s"
    runner.invoke(app, ["load", str(EXAMPLE), "--store", str(store)])
    out = tmp_path / "plant.ttl"
    assert runner.invoke(app, ["export", "rdf", "--out", str(out), "--store", str(store)]).exit_code == 0
    with open_store("embedded", store) as s:
        nodes = list(s.find_nodes())
        edges = [e for n in nodes for e in s.neighbours(n.id)]
    expected = graph_from_records(nodes, edges)  # type: ignore[arg-type]
    got = Graph().parse(out, format="turtle")
    assert set(got) == set(expected)
