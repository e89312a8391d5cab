"""Validation: every kind of error names file, line and column, says expected vs found."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyshacl import validate as shacl_validate
from rdflib import Graph

from graph_loader.bundle import open_bundle, typed_batches
from graph_loader.errors import ErrorCollector, LoadError
from graph_loader.loader import load_bundle, validate_bundle
from graph_loader.validation import validate_records
from ontology.build import SHAPES_TTL
from ontology.rdf import graph_from_records
from store.base import EdgeRecord, GraphStore, NodeRecord
from store.factory import open_store
from tests.graph_loader.bundles import EXAMPLE, copy_example, write_bundle

LOTS = "id,quantity,unit,status,produced_at\nL-1,10,kg,released,2026-03-02T06:00:00+01:00\nL-2,5,kg,,\n"
ORDERS = (
    '{"id": "MO-1", "quantity": 5, "planned_start": "2026-03-02T06:00:00Z", '
    '"planned_end": "2026-03-02T14:00:00Z"}\n'
)


@pytest.fixture
def store(tmp_path: Path) -> GraphStore:
    s = open_store("embedded", tmp_path / "store")
    yield s  # type: ignore[misc]
    s.close()


def _errors(root: Path, store: GraphStore | None = None) -> list[LoadError]:
    report = validate_bundle(root, store)
    assert not report.valid
    return report.errors


def _one(root: Path, store: GraphStore | None = None) -> LoadError:
    errs = _errors(root, store)
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]


def test_the_example_bundle_is_valid() -> None:
    report = validate_bundle(EXAMPLE)
    assert report.valid, report.error_lines()


@pytest.mark.parametrize(
    ("lot_row", "column", "expected", "found"),
    [
        ("L-9,abc,kg,released,", "quantity", "a number", "'abc'"),
        ("L-9,-3,kg,released,", "quantity", "a number > 0", "'-3'"),
        ("L-9,0,kg,released,", "quantity", "a number > 0", "'0'"),
        ("L-9,,kg,released,", "quantity", "a value for required field 'quantity'", "an empty cell"),
        ("L-9,1,kg,lost,", "status", "one of 'released'", "'lost'"),
        ("L-9,1,kg,released,2026-03-02T06:00:00", "produced_at", "time zone offset", "'2026-03-02T06:00:00'"),
        ("L-9,1,kg,released,yesterday", "produced_at", "ISO-8601", "'yesterday'"),
        (",1,kg,released,", "id", "a value for required field 'id'", "an empty cell"),
    ],
    ids=["type", "negative", "zero", "required", "enum", "naive-time", "bad-time", "empty-id"],
)
def test_csv_value_errors(tmp_path: Path, lot_row: str, column: str, expected: str, found: str) -> None:
    root = write_bundle(tmp_path / "b", {"Lot.csv": LOTS + lot_row + "\n"})
    err = _one(root)
    assert (err.file, err.line, err.column) == ("Lot.csv", 4, column)
    assert err.column_index == ["id", "quantity", "unit", "status", "produced_at"].index(column) + 1
    assert expected in (err.expected or "") and err.found == found
    assert str(err).startswith(f"Lot.csv:4:{column}: ")


def test_jsonl_errors_name_the_field_path(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"Material.jsonl": (
        '{"id": "MAT-1", "kind": "raw"}\n'
        '{"id": "MAT-2", "kind": "raw", "aliases": ["ok", 7]}\n'
        '{"id": "MAT-3", "kind": "gas"}\n'
    )})
    errs = _errors(root)
    assert [(e.file, e.line, e.column) for e in errs] == [
        ("Material.jsonl", 2, "aliases[1]"), ("Material.jsonl", 3, "kind")]
    assert errs[0].column_index is None


def test_ids_unique_across_files_and_formats(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS.replace("MO-1", "L-2")})
    err = _one(root)
    assert (err.file, err.line, err.column) == ("ProductionOrder.jsonl", 1, "id")
    assert "duplicate id 'L-2'" in err.message and "Lot.csv:3" in err.message


def test_edge_endpoints_must_exist(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS,
        "CONSUMED.csv": "src,dst,quantity\nMO-1,L-1,2\nMO-1,L-404,1\nMO-404,L-2,1\n",
    })
    errs = _errors(root)
    assert [(e.file, e.line, e.column) for e in errs] == [("CONSUMED.csv", 3, "dst"), ("CONSUMED.csv", 4, "src")]
    assert "'L-404' is neither in the bundle nor in the store" in errs[0].message
    assert errs[0].expected == "the id of an existing Lot"


def test_edge_endpoint_classes_follow_domain_and_range(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS,
        "CONSUMED.csv": "src,dst,quantity\nL-1,L-2,1\nMO-1,MO-1,1\n",
    })
    errs = _errors(root)
    assert [(e.line, e.column, e.expected, e.found) for e in errs] == [
        (2, "src", "ProductionOrder", "Lot"), (3, "dst", "Lot", "ProductionOrder")]


def test_edge_quantities_positive(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS,
        "PRODUCED.jsonl": '{"src": "MO-1", "dst": "L-1", "quantity": -2}\n{"src": "MO-1", "dst": "L-2"}\n',
    })
    errs = _errors(root)
    assert [(e.file, e.line, e.column) for e in errs] == [("PRODUCED.jsonl", 1, "quantity"),
                                                         ("PRODUCED.jsonl", 2, "quantity")]
    assert errs[1].found == "nothing"


def test_a_bad_node_row_does_not_cause_endpoint_errors(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "Lot.csv": LOTS + "L-3,-1,kg,,\n", "ProductionOrder.jsonl": ORDERS,
        "CONSUMED.csv": "src,dst,quantity\nMO-1,L-3,1\n",
    })
    assert [(e.file, e.line) for e in _errors(root)] == [("Lot.csv", 4)]


def test_time_windows_in_order(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"Shift.csv": (
        "id,start,end\nS-1,2026-03-02T06:00:00+01:00,2026-03-02T14:00:00+01:00\n"
        "S-2,2026-03-02T14:00:00+01:00,2026-03-02T06:00:00+01:00\n")})
    err = _one(root)
    assert (err.line, err.column) == (3, "end") and "before start" in err.message


SOPS = "id,title\nSOP-1,Mixing\nSOP-2,Filling\n"


def _versions(*rows: tuple[str, str, str | None]) -> str:
    out = []
    for vid, start, end in rows:
        end_part = f', "effective_to": "{end}"' if end else ""
        out.append(f'{{"id": "{vid}", "version": "{vid[-1]}", "effective_from": "{start}"{end_part}, "text": "t"}}')
    return "\n".join(out) + "\n"


def test_sop_version_windows_of_one_sop_may_not_overlap(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "SOP.csv": SOPS,
        "SOPVersion.jsonl": _versions(
            ("V-1", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
            ("V-2", "2026-01-15T00:00:00Z", None),
            ("V-3", "2026-01-10T00:00:00Z", None),  # same window as V-1, but another SOP
        ),
        "VERSION_OF.csv": "src,dst\nV-1,SOP-1\nV-2,SOP-1\nV-3,SOP-2\n",
    })
    err = _one(root)
    assert (err.file, err.line, err.column) == ("SOPVersion.jsonl", 2, "effective_from")
    assert "'V-2' overlaps version 'V-1'" in err.message


def test_touching_sop_windows_are_fine(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "SOP.csv": SOPS,
        "SOPVersion.jsonl": _versions(("V-1", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00+00:00"),
                                      ("V-2", "2026-02-01T01:00:00+01:00", None)),
        "VERSION_OF.csv": "src,dst\nV-1,SOP-1\nV-2,SOP-1\n",
    })
    assert validate_bundle(root).valid


def test_sop_windows_are_checked_against_versions_in_the_store(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, write_bundle(tmp_path / "a", {
        "SOP.csv": SOPS, "SOPVersion.jsonl": _versions(("V-1", "2026-01-01T00:00:00Z", None)),
        "VERSION_OF.csv": "src,dst\nV-1,SOP-1\n"}))
    later = write_bundle(tmp_path / "b", {
        "SOPVersion.jsonl": _versions(("V-2", "2026-03-01T00:00:00Z", None)),
        "VERSION_OF.csv": "src,dst\nV-2,SOP-1\n"})
    err = _one(later, store)
    assert err.file == "SOPVersion.jsonl" and "overlaps version 'V-1'" in err.message
    # ending V-1 in the same bundle makes it valid
    fixed = write_bundle(tmp_path / "c", {
        "SOPVersion.jsonl": _versions(("V-1", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
                                      ("V-2", "2026-03-01T00:00:00Z", None)),
        "VERSION_OF.csv": "src,dst\nV-2,SOP-1\n"})
    assert validate_bundle(fixed, store).valid


def test_endpoints_may_live_in_the_store(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, write_bundle(tmp_path / "a", {"Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS}))
    edges_only = write_bundle(tmp_path / "b", {"CONSUMED.csv": "src,dst,quantity\nMO-1,L-1,2\nMO-1,L-7,1\n"})
    assert validate_bundle(edges_only).error_count == 4  # without the store no endpoint is known
    err = _one(edges_only, store)
    assert (err.line, err.column) == (3, "dst")


def test_an_id_cannot_change_class(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, write_bundle(tmp_path / "a", {"Lot.csv": LOTS}))
    err = _one(write_bundle(tmp_path / "b", {"ProductionOrder.jsonl": ORDERS.replace("MO-1", "L-1")}), store)
    assert (err.file, err.line, err.column, err.expected, err.found) == (
        "ProductionOrder.jsonl", 1, "id", "Lot", "ProductionOrder")


def test_deletions_may_not_contradict_upserts(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "Lot.csv": LOTS, "ProductionOrder.jsonl": ORDERS,
        "CONSUMED.csv": "src,dst,quantity\nMO-1,L-1,1\nMO-1,L-2,1\n",
        "_deleted_nodes.csv": "id\nL-2\n",
        "_deleted_edges.csv": "src,rel,dst\nMO-1,CONSUMED,L-1\n",
    })
    got = {(e.file, e.line, e.column) for e in _errors(root)}
    assert got == {("Lot.csv", 3, "id"), ("CONSUMED.csv", 2, "-"), ("CONSUMED.csv", 3, "dst")}


def test_error_list_is_capped_and_counts_the_rest(tmp_path: Path) -> None:
    body = "".join(f"L-{i},-1\n" for i in range(250))
    report = validate_bundle(write_bundle(tmp_path / "b", {"Lot.csv": "id,quantity\n" + body}))
    assert report.error_count == 250 and len(report.errors) == 200
    assert report.error_lines()[-1] == "... and 50 more error(s) not shown"
    assert validate_bundle(tmp_path / "b", cap=5).error_lines()[-1] == "... and 245 more error(s) not shown"


def test_every_error_is_found_in_one_pass(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "b")
    with (root / "Lot.csv").open("a") as f:
        f.write("LOT-X,-1,kg,released,,\n")  # wrong cell count
        f.write("LOT-Y,Y,ERP,SITE-LYON,-1,kg,gone,,\n")  # two bad values
    with (root / "CONSUMED.csv").open("a") as f:
        f.write("WO-1001,LOT-NOPE,1,kg,MES\n")
    (root / "Widget.csv").write_text("id\nW-1\n")
    lines = validate_bundle(root).error_lines()
    assert [ln.split(": ")[0] for ln in lines] == [
        "Widget.csv:0:-", "Lot.csv:5:-", "Lot.csv:6:quantity", "Lot.csv:6:status", "CONSUMED.csv:3:dst"]


# ---------------------------------------------------------------------------------------------
# SHACL: the shapes are generated from the same models, so the loader enforces them too
# ---------------------------------------------------------------------------------------------


def _shacl_conforms(nodes: list[NodeRecord], edges: list[EdgeRecord]) -> bool:
    conforms, _, _ = shacl_validate(graph_from_records(nodes, edges), shacl_graph=Graph().parse(SHAPES_TTL),
                                    inference="none")
    return bool(conforms)


def _typed_example() -> tuple[list[NodeRecord], list[EdgeRecord]]:
    bundle = open_bundle(EXAMPLE)
    errors = ErrorCollector()
    nodes: list[NodeRecord] = []
    edges: list[EdgeRecord] = []
    for bf in bundle.files:
        for batch in typed_batches(bf, errors):
            if batch.schema.kind == "node":
                nodes += [batch.schema.to_node(r) for r in batch.typed]
            else:
                edges += [batch.schema.to_edge(r) for r in batch.typed]
    assert not errors
    return nodes, edges


def test_the_loaded_example_conforms_to_the_shacl_shapes() -> None:
    assert _shacl_conforms(*_typed_example())


@pytest.mark.parametrize(
    "break_it",
    [
        lambda n, e: n.append(NodeRecord("AN-1", "Anomaly", {"signal": "vibration", "score": 1.5,
                                                             "detected_at": "2026-03-02T06:00:00+00:00"})),
        lambda n, e: n.append(NodeRecord("AN-2", "Anomaly", {"score": 0.5,
                                                             "detected_at": "2026-03-02T06:00:00+00:00"})),
        lambda n, e: n.append(NodeRecord("LOT-Q", "Lot", {"quantity": 1.0, "status": "lost"})),
        lambda n, e: e.append(EdgeRecord("LOT-SYR-0001", "FOR_MATERIAL", "SITE-LYON")),
    ],
    ids=["score-above-max", "missing-required", "status-not-allowed", "wrong-range"],
)
def test_a_row_breaking_a_shacl_constraint_is_rejected(break_it) -> None:  # type: ignore[no-untyped-def]
    nodes, edges = _typed_example()
    break_it(nodes, edges)
    assert not _shacl_conforms(nodes, edges)  # SHACL says no ...
    assert validate_records(nodes, edges)  # ... and so does the loader
