"""B2MML import: every version maps the same hand-written plant; messy inputs; all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graph_loader.b2mml.importer import import_b2mml
from store.base import GraphStore

from .conftest import FIXTURES

VERSIONS = ["v0401", "v0500", "v0600", "v0701"]

# The plant every version's fixture set describes, written by hand from the fixtures.
EXPECTED_NODES: dict[str, tuple[str, dict[str, Any]]] = {
    "ACME": ("Enterprise", {}),
    "SITE-A": ("Site", {"name": "Plant A", "plant": "SITE-A", "timezone": "Europe/Berlin"}),
    "AREA-A1": ("Area", {"name": "Filling", "plant": "SITE-A"}),
    "LINE-A1": ("Line", {"name": "Line 1", "plant": "SITE-A"}),
    "M-1": ("Machine", {"name": "Filler 1", "plant": "SITE-A", "equipment_class": "FILLER"}),
    "MAT-RAW": ("Material", {"name": "Sugar", "kind": "raw", "material_class": "RAWS"}),
    "MAT-FG": ("Material", {"name": "Syrup 1 l", "kind": "finished"}),
    "LOT-R1": ("Lot", {"quantity": 500.0, "unit": "kg", "status": "released"}),
    "LOT-R1-S1": ("Lot", {"quantity": 200.0, "unit": "kg"}),
    "LOT-F1": ("Lot", {"quantity": 100.0, "unit": "kg", "produced_at": "2026-03-02T13:40:00+01:00"}),
    "WO-1": ("ProductionOrder", {
        "name": "Syrup for week 10", "plant": "SITE-A", "quantity": 100.0, "unit": "kg",
        "planned_start": "2026-03-02T06:00:00+01:00", "planned_end": "2026-03-02T14:00:00+01:00",
        "actual_start": "2026-03-02T06:10:00+01:00", "actual_end": "2026-03-02T13:40:00+01:00",
        "status": "completed", "operations": ["FILL"],
    }),
    "P-1": ("Person", {"name": "Dana Ortiz", "role": "Operator", "plant": "SITE-A"}),
}
EXPECTED_EDGES = {
    ("ACME", "HAS_SITE", "SITE-A"), ("SITE-A", "HAS_AREA", "AREA-A1"), ("AREA-A1", "HAS_LINE", "LINE-A1"),
    ("LINE-A1", "HAS_MACHINE", "M-1"), ("LOT-R1", "FOR_MATERIAL", "MAT-RAW"),
    ("LOT-R1-S1", "FOR_MATERIAL", "MAT-RAW"), ("LOT-R1-S1", "DERIVED_FROM", "LOT-R1"),
    ("LOT-F1", "FOR_MATERIAL", "MAT-FG"), ("WO-1", "FOR_MATERIAL", "MAT-FG"),
    ("WO-1", "SCHEDULED_ON", "LINE-A1"), ("WO-1", "RAN_ON", "M-1"), ("WO-1", "OPERATED_BY", "P-1"),
    ("WO-1", "CONSUMED", "LOT-R1"), ("WO-1", "PRODUCED", "LOT-F1"), ("P-1", "WORKS_AT", "SITE-A"),
}


def _row(store: GraphStore, node_id: str) -> dict[str, Any]:
    n = store.get_node(node_id)
    assert n is not None, node_id
    row: dict[str, Any] = {"cls": n.cls, **n.props}
    for attr in ("name", "plant"):
        if getattr(n, attr) is not None:
            row[attr] = getattr(n, attr)
    return row


def _edges(store: GraphStore) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for n in store.find_nodes():
        out.update(e.key for e in store.neighbours(n.id))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_maps_the_same_plant(version: str, store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / version], store)
    assert rep.ok, [str(e) for e in rep.errors]
    assert rep.written
    assert rep.messages == 5
    assert {n.id for n in store.find_nodes()} == set(EXPECTED_NODES)
    for node_id, (cls, props) in EXPECTED_NODES.items():
        row = _row(store, node_id)
        assert row["cls"] == cls
        for k, v in props.items():
            assert row.get(k) == v, (node_id, k, row.get(k), v)
    assert _edges(store) == EXPECTED_EDGES
    consumed = next(iter(store.neighbours("WO-1", ["CONSUMED"])))
    assert consumed.props["quantity"] == 120.0
    ran = store.neighbours("WO-1", ["RAN_ON"])[0]
    assert ran.props["start"] == "2026-03-02T06:10:00+01:00"
    assert store.neighbours("LOT-R1-S1", ["DERIVED_FROM"])[0].props["quantity"] == 200.0


def test_sender_becomes_source_system(store: GraphStore) -> None:
    import_b2mml([FIXTURES / "v0701"], store)
    site = store.get_node("SITE-A")
    assert site is not None and site.source_system == "MES"
    mat = store.get_node("MAT-RAW")
    assert mat is not None and mat.source_system == "B2MML"


def test_performance_later_merges_into_stored_planned_order(store: GraphStore) -> None:
    d = FIXTURES / "v0701"
    first = import_b2mml([d / "equipment.xml", d / "material.xml", d / "personnel.xml", d / "schedule.xml"], store)
    assert first.written
    order = store.get_node("WO-1")
    assert order is not None and order.props["status"] == "planned"
    second = import_b2mml([d / "performance.xml"], store)
    assert second.written, [str(e) for e in second.errors]
    order = store.get_node("WO-1")
    assert order is not None
    assert order.props["status"] == "completed"
    assert order.props["planned_start"] == "2026-03-02T06:00:00+01:00"  # kept from the schedule
    assert order.name == "Syrup for week 10"


@pytest.mark.parametrize("name", ["bom_utf8.xml", "latin1.xml", "utf16.xml"])
def test_encodings(name: str, store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / name], store)
    assert rep.written
    mat = store.get_node("MAT-ENC")
    assert mat is not None and mat.name == "Crème brûlée Grundmasse"
    assert mat.props["kind"] == "intermediate"


def test_whitespace_quantities_empty_elements_extensions(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "whitespace_quantities.xml"], store)
    assert rep.written, [str(e) for e in rep.errors]
    qty = {i: store.get_node(i).props["quantity"] for i in ("LOT-D1", "LOT-D2", "LOT-D3")}  # type: ignore[union-attr]
    assert qty == {"LOT-D1": 150.0, "LOT-D2": 5.0, "LOT-D3": 12.5}
    assert {e.dst for e in store.neighbours("LOT-D1", ["FOR_MATERIAL"])} == {"MAT-WS"}
    ext = [u for u in rep.unmapped if u.path.endswith("/ColorCode")]
    assert ext and ext[0].line == 18 and "urn:acme:ext" in ext[0].message


def test_foreign_root_and_prefix_on_inner_element(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "v0701" / "material.xml", FIXTURES / "messy" / "foreign_root.xml"], store)
    assert rep.written, [str(e) for e in rep.errors]
    lot = store.get_node("LOT-SOAP")
    assert lot is not None and lot.props["status"] == "on_hold" and lot.source_system == "WMS"
    assert any(u.path == "/Envelope/Header/Trace" for u in rep.unmapped)


def test_missing_reference_blocks_the_whole_import(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "foreign_root.xml"], store)
    assert not rep.written
    assert any("MAT-RAW" in e.message and e.line == 11 for e in rep.errors)
    assert store.counts().nodes == 0


def test_lot_listed_under_its_material(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "implicit_lot.xml"], store)
    assert rep.written
    assert [e.dst for e in store.neighbours("LOT-IMP-1", ["FOR_MATERIAL"])] == ["MAT-IMP"]
    mat = store.get_node("MAT-IMP")
    assert mat is not None and mat.props["kind"] == "finished"  # from the class name "Finished Goods"


def test_assembly_lots_become_lot_precise_genealogy(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "assembly.xml"], store)
    assert rep.written
    got = {(e.dst, e.props["quantity"]) for e in store.neighbours("LOT-ASM-1", ["DERIVED_FROM"])}
    assert got == {("LOT-C1", 20.0), ("LOT-C2", 30.0)}


def test_unmapped_items_are_reported_not_dropped(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "unmapped.xml"], store)
    assert rep.written
    paths = {u.path.rsplit("/", 1)[1]: u for u in rep.unmapped}
    assert set(paths) == {"MaterialDefinitionProperty", "TestSpecificationID", "Hazard", "ProcessSegment"}
    assert "ShelfLifeDays" in paths["MaterialDefinitionProperty"].message
    assert paths["ProcessSegment"].line == 16


def test_get_message_imports_nothing(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "get_request.xml"], store)
    assert rep.entities == 0 and store.counts().nodes == 0
    assert any("Get message" in n.message for n in rep.notes)


def test_batchml_carrying_b2mml_nouns(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "messy" / "batchml.xml"], store)
    assert rep.written
    lot = store.get_node("LOT-BML-1")
    assert lot is not None and lot.props["quantity"] == 12.5 and lot.props["unit"] == "l"


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_unsafe_xml_is_refused_and_nothing_written(name: str, store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "v0701", FIXTURES / "unsafe" / name], store)
    assert not rep.written
    errs = [e for e in rep.errors if e.file.endswith(name)]
    assert errs and "refused" in errs[0].message
    assert store.counts().nodes == 0


def test_malformed_xml_names_file_line_column(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "unsafe" / "malformed.xml"], store)
    assert not rep.written
    (err,) = rep.errors
    assert err.file.endswith("malformed.xml") and err.line == 5 and err.column is not None
    assert "not well-formed" in err.message


def test_invalid_value_is_an_error_with_its_place(tmp_path: Path, store: GraphStore) -> None:
    f = tmp_path / "neg.xml"
    f.write_text(
        '<MaterialLot xmlns="http://www.mesa.org/xml/B2MML">\n<ID>L-NEG</ID>\n'
        "<Quantity><QuantityString>-3</QuantityString></Quantity></MaterialLot>\n"
        '<!-- -->', encoding="utf-8")
    g = tmp_path / "nan.xml"
    g.write_text('<MaterialLot xmlns="http://www.mesa.org/xml/B2MML"><ID>L-NAN</ID>\n'
                 "<Quantity><QuantityString>lots</QuantityString></Quantity></MaterialLot>", encoding="utf-8")
    rep = import_b2mml([f, g], store)
    assert not rep.written
    msgs = {(e.file.rsplit("/", 1)[1], e.line): e.message for e in rep.errors}
    assert "greater than 0" in msgs[("neg.xml", 1)]
    assert "expected a number" in msgs[("nan.xml", 2)]
    assert store.counts().nodes == 0


def test_dry_run_writes_nothing(store: GraphStore) -> None:
    rep = import_b2mml([FIXTURES / "v0701"], store, dry_run=True)
    assert rep.ok and not rep.written and rep.entities == len(EXPECTED_NODES)
    assert store.counts().nodes == 0


def test_reimport_is_idempotent(store: GraphStore) -> None:
    import_b2mml([FIXTURES / "v0600"], store)
    before = store.counts()
    import_b2mml([FIXTURES / "v0600"], store)
    after = store.counts()
    assert before.nodes_by_class == after.nodes_by_class
    assert before.edges_by_relation == after.edges_by_relation


def test_streamed_and_whole_file_reading_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files are parsed whole, big ones streamed with iterparse: both give the same report
    (mapped records, unmapped items with their lines, notes, errors) on every fixture."""
    import graph_loader.b2mml.importer as importer

    def report(limit: int) -> dict[str, Any]:
        monkeypatch.setattr(importer, "TREE_BYTES", limit)
        rep = import_b2mml([FIXTURES / "messy", FIXTURES / "v0500", FIXTURES / "v0701"], None, dry_run=True)
        return rep.model_dump(exclude={"seconds"})

    whole, streamed = report(1 << 30), report(-1)
    assert whole["unmapped"] and whole["entities"] > 0
    assert whole == streamed


def test_vendor_junk_beside_nouns_is_reported_and_nouns_inside_it_are_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graph_loader.b2mml.importer as importer

    f = tmp_path / "junk.xml"
    f.write_text(
        '<x:Envelope xmlns:x="urn:x" xmlns:b="http://www.mesa.org/xml/B2MML">\n'
        "<x:Note>hello</x:Note>\n"
        "<b:Weird><b:MaterialLot><b:ID>L-HIDDEN</b:ID></b:MaterialLot></b:Weird>\n"
        "<b:MaterialInformation><b:Foo>1</b:Foo>\n"
        "<b:MaterialLot><b:ID>L-SEEN</b:ID><b:Quantity><b:QuantityString>2</b:QuantityString></b:Quantity>"
        "</b:MaterialLot></b:MaterialInformation>\n"
        "</x:Envelope>", encoding="utf-8")
    for limit in (1 << 30, -1):  # whole-file and streamed reading
        monkeypatch.setattr(importer, "TREE_BYTES", limit)
        rep = import_b2mml([f], None, dry_run=True)
        assert rep.entities_by_class == {"Lot": 1}
        where = {(u.line, u.path) for u in rep.unmapped}
        assert where == {(2, "/Envelope/Note"), (3, "/Envelope/Weird"), (4, "/Envelope/MaterialInformation/Foo")}
