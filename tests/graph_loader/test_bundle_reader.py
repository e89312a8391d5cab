"""The bundle reader: manifest, file names, CSV/JSONL rows typed with their places."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph_loader.bundle import FileKind, open_bundle, raw_batches, read_deletions, typed_batches
from graph_loader.errors import BundleNotFoundError, ErrorCollector
from graph_loader.loader import validate_bundle
from tests.graph_loader.bundles import MANIFEST, write_bundle


def _only(bundle_dir: Path, name: str):  # type: ignore[no-untyped-def]
    bundle = open_bundle(bundle_dir)
    return next(f for f in bundle.files if f.path.name == name)


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="not a bundle folder"):
        open_bundle(tmp_path / "nope")


@pytest.mark.parametrize(
    ("manifest", "column", "fragment"),
    [
        ({**MANIFEST, "format": "other"}, "format", "'plantgraph-bundle'"),
        ({**MANIFEST, "format_version": "2.0"}, "format_version", "1.x"),
        ({**MANIFEST, "exported_at": "2026-03-02T06:00:00"}, "exported_at", "time zone"),
        ({k: v for k, v in MANIFEST.items() if k != "exported_at"}, "exported_at", "time zone"),
    ],
)
def test_manifest_errors_name_the_key(tmp_path: Path, manifest: dict[str, object], column: str,
                                      fragment: str) -> None:
    bundle = open_bundle(write_bundle(tmp_path / "b", {}, manifest))
    assert [e.column for e in bundle.errors] == [column]
    assert bundle.errors[0].file == "manifest.json"
    assert fragment in str(bundle.errors[0])


def test_missing_and_broken_manifest(tmp_path: Path) -> None:
    root = tmp_path / "b"
    root.mkdir()
    assert "no manifest.json" in str(open_bundle(root).errors[0])
    (root / "manifest.json").write_text('{"format": ')
    err = open_bundle(root).errors[0]
    assert err.file == "manifest.json" and err.line == 1 and "invalid JSON" in err.message


def test_manifest_extra_keys_are_kept(tmp_path: Path) -> None:
    bundle = open_bundle(write_bundle(tmp_path / "b", {}, {**MANIFEST, "generator": {"seed": 7}}))
    assert bundle.errors == []
    assert bundle.manifest is not None and bundle.manifest.model_extra == {"generator": {"seed": 7}}


def test_unknown_file_name_is_an_error_listing_known_names(tmp_path: Path) -> None:
    bundle = open_bundle(write_bundle(tmp_path / "b", {"Lots.csv": "id\n", "truth.json": "{}"}))
    assert len(bundle.errors) == 1
    err = bundle.errors[0]
    assert err.file == "Lots.csv"
    assert "'Lots'" in str(err) and "Lot," in str(err) and "CONSUMED" in str(err)
    assert bundle.files == []


def test_files_are_classified_and_ordered(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "CONSUMED.csv": "src,dst,quantity\n", "Lot.jsonl": "", "Material.csv": "id,kind\n",
        "_deleted_nodes.csv": "id\n",
    })
    bundle = open_bundle(root)
    assert [(f.kind, f.name, f.fmt) for f in bundle.files] == [
        (FileKind.DELETED_NODES, "_deleted_nodes", "csv"),
        (FileKind.NODES, "Lot", "jsonl"),
        (FileKind.NODES, "Material", "csv"),
        (FileKind.EDGES, "CONSUMED", "csv"),
    ]


def test_csv_rows_are_typed_with_lists_defaults_and_lines(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"Material.csv": (
        "id,name,kind,aliases\n"
        'MAT-1,"Resin, ""PP""\nsecond line",raw,pp|resin\n'
        "MAT-2,,finished,\n"
    )})
    errors = ErrorCollector()
    batches = list(typed_batches(_only(root, "Material.csv"), errors))
    assert not errors
    rows = [r for b in batches for r in b.typed]
    lines = [line for b in batches for _, line in b.places]
    assert lines == [2, 4]  # the quoted cell spans lines 2-3
    m1 = batches[0].schema.to_node(rows[0])
    assert m1.name == 'Resin, "PP"\nsecond line'
    assert m1.props["aliases"] == ["pp", "resin"]
    assert m1.props["kind"] == "raw" and m1.props["unit"] == "kg"  # default filled in
    m2 = batches[0].schema.to_node(rows[1])
    assert m2.name is None and m2.props["aliases"] == []


def test_jsonl_rows_keep_types_and_null_means_absent(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"Lot.jsonl": (
        '{"id": "L-1", "quantity": 2.5, "status": "on_hold", "produced_at": "2026-03-02T06:00:00Z"}\n'
        "\n"
        '{"id": "L-2", "quantity": 1, "unit": null}\n'
    )})
    errors = ErrorCollector()
    (batch,) = list(typed_batches(_only(root, "Lot.jsonl"), errors))
    assert not errors
    assert [line for _, line in batch.places] == [1, 3]
    l1, l2 = (batch.schema.to_node(r) for r in batch.typed)
    assert l1.props["quantity"] == 2.5 and l1.props["status"] == "on_hold"
    assert l1.props["produced_at"].startswith("2026-03-02T06:00:00")
    assert l2.props["unit"] == "kg" and l2.props["status"] == "released"


def test_reading_streams_in_batches(tmp_path: Path) -> None:
    body = "".join(f"L-{i},{i + 1}\n" for i in range(25))
    root = write_bundle(tmp_path / "b", {"Lot.csv": "id,quantity\n" + body})
    errors = ErrorCollector()
    batches = list(raw_batches(_only(root, "Lot.csv"), errors, batch_size=10))
    assert [len(b.rows) for b in batches] == [10, 10, 5]
    assert batches[2].places[-1][1] == 26


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"Lot.csv": "id,quantity,colour\nL-1,1,red\n"}, "Lot.csv:1:colour: unknown column 'colour'"),
        ({"Lot.csv": "id,name\nL-1,x\n"}, "Lot.csv:1:quantity: missing required column 'quantity'"),
        ({"Lot.csv": "id,quantity,id\nL-1,1,L-2\n"}, "Lot.csv:1:id: duplicate column 'id'"),
        ({"Lot.csv": "id,quantity\nL-1,1,extra\n"}, "Lot.csv:2:-: row has 3 cells, the header has 2"),
        ({"Lot.csv": ""}, "Lot.csv:1:-: empty file"),
        ({"Lot.jsonl": '{"id": "L-1", "quantity": 1}\n{"id": "L-2",\n'}, "Lot.jsonl:2:"),
        ({"Lot.jsonl": '[1, 2]\n'}, "Lot.jsonl:1:-: the line is not a JSON object"),
        ({"Lot.jsonl": '{"id": "L-1", "quantity": 1, "colour": "red"}\n'},
         "Lot.jsonl:1:colour: Extra inputs are not permitted"),
    ],
    ids=["unknown-column", "missing-column", "duplicate-column", "cell-count", "empty-file",
         "bad-json", "not-object", "unknown-key"],
)
def test_file_structure_errors(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    report = validate_bundle(write_bundle(tmp_path / "b", files))
    assert not report.valid
    assert any(line.startswith(expected) for line in report.error_lines()), report.error_lines()


def test_missing_required_column_is_reported_once_not_per_row(tmp_path: Path) -> None:
    body = "".join(f"L-{i},x\n" for i in range(50))
    report = validate_bundle(write_bundle(tmp_path / "b", {"Lot.csv": "id,name\n" + body}))
    assert report.error_count == 1


def test_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {})
    (root / "Lot.csv").write_bytes(b"id,quantity\nL-1,1\nL-\xff2,1\n")
    report = validate_bundle(root)
    assert not report.valid
    assert report.errors[0].file == "Lot.csv" and "UTF-8" in str(report.errors[0])


def test_deletion_files(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {
        "_deleted_nodes.csv": "id\nL-1\n\nL-2\n",
        "_deleted_edges.csv": "src,rel,dst\nMO-1,CONSUMED,L-3\nMO-1,EATS,L-3\n",
    })
    errors = ErrorCollector()
    dels = read_deletions(open_bundle(root), errors)
    assert set(dels.nodes) == {"L-1", "L-2"}
    assert set(dels.edges) == {("MO-1", "CONSUMED", "L-3")}
    assert [str(e).split(" (")[0] for e in errors.errors] == ["_deleted_edges.csv:3:rel: unknown relation"]
