"""B2MML export: schema-valid V0701 messages, and import(export(x)) == x for the mapped part."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from graph_loader.b2mml.export import NOUNS, ExportError, bundle_to_b2mml, export_store
from graph_loader.b2mml.importer import import_b2mml
from graph_loader.b2mml.xsd import validate_files
from store.base import Direction, GraphStore
from store.factory import open_store

from .conftest import FIXTURES

MAPPED_CLASSES = ["Enterprise", "Site", "Area", "Line", "Machine", "Material", "Lot", "ProductionOrder", "Person"]
MAPPED_RELATIONS = {"HAS_SITE", "HAS_AREA", "HAS_LINE", "HAS_MACHINE", "SCHEDULED_ON", "RAN_ON", "CONSUMED",
                    "PRODUCED", "DERIVED_FROM", "OPERATED_BY", "WORKS_AT", "FOR_MATERIAL"}


def _snapshot(store: GraphStore) -> tuple[dict, dict]:
    """Mapped nodes (all fields) and mapped edges between mapped nodes (key -> properties)."""
    nodes = {n.id: n for c in MAPPED_CLASSES for n in store.find_nodes(cls=c)}
    edges = {}
    for n in nodes.values():
        for e in store.neighbours(n.id, direction=Direction.OUT):
            if e.rel in MAPPED_RELATIONS and e.dst in nodes:
                edges[e.key] = dict(e.props)
    return nodes, edges


def test_round_trip_import_export_import(tmp_path: Path, store: GraphStore) -> None:
    assert import_b2mml([FIXTURES / "v0401"], store).written
    res = export_store(store, NOUNS, tmp_path / "out")
    assert res.files > 0
    again = open_store("embedded", tmp_path / "again")
    try:
        rep = import_b2mml([tmp_path / "out"], again)
        assert rep.written, [str(e) for e in rep.errors]
        assert rep.unmapped == []
        assert _snapshot(again) == _snapshot(store)
    finally:
        again.close()


def test_exported_messages_validate_against_v0701(tmp_path: Path, store: GraphStore) -> None:
    assert import_b2mml([FIXTURES / "v0701", FIXTURES / "messy" / "assembly.xml"], store).written
    export_store(store, NOUNS, tmp_path / "out")
    files = sorted((tmp_path / "out").glob("*.xml"))
    assert len(files) >= 6
    assert validate_files(files) == []


def test_generated_plant_same_by_bundle_and_by_b2mml(tmp_path: Path) -> None:
    from graph_loader.generator import generate
    from graph_loader.generator.spec import named_spec
    from graph_loader.loader import load_bundle

    generate(named_spec("tiny"), 7, tmp_path / "bundle")
    by_bundle = open_store("embedded", tmp_path / "a")
    by_b2mml = open_store("embedded", tmp_path / "b")
    try:
        load_bundle(by_bundle, tmp_path / "bundle")
        bundle_to_b2mml(tmp_path / "bundle", tmp_path / "b2mml")
        rep = import_b2mml([tmp_path / "b2mml"], by_b2mml)
        assert rep.written, [str(e) for e in rep.errors[:5]]
        nodes_a, edges_a = _snapshot(by_bundle)
        nodes_b, edges_b = _snapshot(by_b2mml)
        assert len(nodes_a) > 500 and len(edges_a) > 1000
        assert set(nodes_a) == set(nodes_b)
        assert [i for i in nodes_a if nodes_a[i] != nodes_b[i]] == []
        assert edges_a == edges_b
    finally:
        by_bundle.close()
        by_b2mml.close()


def test_unknown_noun_or_version(tmp_path: Path, store: GraphStore) -> None:
    with pytest.raises(ExportError, match="unknown noun"):
        export_store(store, "Recipe", tmp_path)
    with pytest.raises(ExportError, match="V0401"):
        export_store(store, "Equipment", tmp_path, version="V0401")


def test_cli_export_and_import(tmp_path: Path) -> None:
    from plantgraph.cli import app

    runner = CliRunner()
    s = str(tmp_path / "s")
    r = runner.invoke(app, ["import", "b2mml", str(FIXTURES / "v0600"), "--store", s, "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", "b2mml", "--noun", "Equipment", "--noun", "MaterialLot", "--version", "V0701",
                            "--out", str(tmp_path / "out"), "--store", s])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["equipment-ACME.xml", "lots-00000.xml"]
    r = runner.invoke(app, ["export", "b2mml", "--noun", "Recipe", "--out", str(tmp_path / "o2"), "--store", s])
    assert r.exit_code == 1
    bad = runner.invoke(app, ["import", "b2mml", str(FIXTURES / "unsafe" / "external_entity.xml"), "--store", s,
                              "--report", str(tmp_path / "rep.json")])
    assert bad.exit_code == 1
    assert "refused" in (tmp_path / "rep.json").read_text(encoding="utf-8")


def test_xsd_violations_are_reported_without_blocking(tmp_path: Path, store: GraphStore) -> None:
    f = tmp_path / "lot.xml"
    f.write_text('<SyncMaterialLot xmlns="http://www.mesa.org/xml/B2MML">\n'
                 "<ApplicationArea><CreationDateTime>2026-03-01T08:00:00Z</CreationDateTime></ApplicationArea>\n"
                 "<DataArea><Sync/><MaterialLot><ID>L-1</ID>\n"
                 "<Quantity><QuantityString>4</QuantityString></Quantity><Colour>red</Colour></MaterialLot>"
                 "</DataArea></SyncMaterialLot>\n", encoding="utf-8")
    rep = import_b2mml([f, FIXTURES / "v0401" / "material.xml"], store, xsd=True)
    assert rep.written
    lot_file = [v for v in rep.xsd_violations if v.file == str(f)]
    assert any("releaseID" in v.message for v in lot_file)
    assert any("Colour" in v.message and v.line == 3 for v in lot_file)  # reported on the parent element
    assert any("not checked" in v.message for v in rep.xsd_violations if v.file.endswith("material.xml"))
    assert any(u.path.endswith("/Colour") for u in rep.unmapped)
