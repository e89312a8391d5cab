"""The column path for CSV files (graph_loader/columnar.py) against the row path: the same store
and the same report for every file it takes, and for every file it refuses, the row path's own
errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graph_loader import columnar, loader
from graph_loader.bundle import BundleFile
from graph_loader.columnar import edge_columns, node_columns
from graph_loader.errors import BundleValidationError
from graph_loader.generator import generate, named_spec
from graph_loader.loader import load_bundle, validate_bundle
from store.base import Coded, EdgeColumns, GraphStore, IntegrityError
from store.embedded import EmbeddedStore
from store.factory import open_store
from tests.graph_loader.bundles import EXAMPLE, copy_example, store_tables, write_bundle

EXAMPLE_SHIFTS = EXAMPLE / "Shift.csv"

_REPORT_KEYS = ("valid", "written", "nodes", "edges", "nodes_by_class", "edges_by_relation", "nodes_deleted",
                "edges_deleted", "repeated_edges", "error_count")


_tables = store_tables


@pytest.fixture(autouse=True)
def every_csv_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundles here are small: let the column path take their files."""
    monkeypatch.setattr(columnar, "MIN_BUNDLE_BYTES", 0)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the column path took (in this process: loads here use pipeline=False)."""
    names: list[str] = []

    def spying(real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(bf: BundleFile, *args: Any) -> Any:
            out = real(bf, *args)
            if out is not None:
                names.append(bf.path.name)
            return out
        return spy

    monkeypatch.setattr(loader, "edge_columns", spying(edge_columns))
    monkeypatch.setattr(loader, "node_columns", spying(node_columns))
    return names


def _rows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "edge_columns", lambda *a, **k: None)
    monkeypatch.setattr(loader, "node_columns", lambda *a, **k: None)


def _load_both(tmp_path: Path, bundles: list[Path], monkeypatch: pytest.MonkeyPatch,
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Load ``bundles`` in order into two stores, by the default paths and by rows only; the
    stores must come out the same. Returns both lists of reports."""
    out = []
    for name in ("columns", "rows"):
        with monkeypatch.context() as m:
            if name == "rows":
                _rows_only(m)
            with open_store("embedded", tmp_path / name) as s:
                out.append([load_bundle(s, b, pipeline=False).model_dump(include=set(_REPORT_KEYS))
                            for b in bundles])
    assert _tables(tmp_path / "columns") == _tables(tmp_path / "rows")
    return out[0], out[1]


def test_a_generated_plant_and_an_update_load_the_same_by_columns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    plant = tmp_path / "plant"
    generate(named_spec("tiny"), 7, plant)
    order = (plant / "ProductionOrder.csv").read_text().splitlines()[1].split(",")[0]
    old_lot = (plant / "Lot.csv").read_text().splitlines()[1].split(",")[0]
    update = write_bundle(tmp_path / "update", {
        "Lot.csv": "id,name,source_system,plant,quantity,unit,status\nLOT-NEW,n,MES,SITE-1,5,kg,released\n",
        # one endpoint from this bundle, one only in the store; an existing edge updated
        "CONSUMED.csv": f"src,dst,quantity,unit\n{order},LOT-NEW,2.5,kg\n{order},{old_lot},7,kg\n",
    })
    cols, rows = _load_both(tmp_path, [plant, update], monkeypatch)
    assert cols == rows
    assert "CONSUMED.csv" in taken and "RAN_ON.csv" in taken and taken.count("CONSUMED.csv") == 2
    assert "Lot.csv" in taken and "ProductionOrder.csv" in taken and taken.count("Lot.csv") == 2
    # SOP versions and VERSION_OF feed the SOP window check row by row
    assert "VERSION_OF.csv" not in taken and "SOPVersion.csv" not in taken


_CONSUMED = "src,dst,quantity,unit,source_system\nWO-1001,LOT-SUG-0001,972,kg,MES\n"


@pytest.mark.parametrize(("text", "by_columns"), [
    (_CONSUMED, True),
    ("\ufeff" + _CONSUMED.replace("\n", "\r\n"), True),  # byte-order mark, CRLF
    ("src,dst,quantity,unit,source_system\n  WO-1001 ,LOT-SUG-0001, 1e3 , kg ,  MES\n", True),
    ("src,dst,quantity\nWO-1001,LOT-SUG-0001,0.25\n", True),  # no unit, default system
    ("src,dst,quantity,unit,valid_from,valid_to\n"
     "WO-1001,LOT-SUG-0001,9,kg,2026-03-02T06:00:00Z,2026-03-05T06:00:00.250000+01:00\n", True),
    ("src,dst,quantity,unit\n\nWO-1001,LOT-SUG-0001,9,\n\n", True),  # blank lines, empty unit
    ("src,dst,quantity,valid_from,valid_to\n"  # in order as instants, not as text
     "WO-1001,LOT-SUG-0001,9,2026-03-02T06:00:00+01:00,2026-03-02T05:30:00Z\n", True),
    ("src,dst,quantity,valid_from,valid_to\n"  # in order by 1 µs, far from 1970
     "WO-1001,LOT-SUG-0001,9,2300-01-01T00:00:00+00:00,2300-01-01T00:00:00.000001+00:00\n", True),
    ('src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,9,"k,g"\n', False),  # quoting: row path
    ("src,dst,quantity,unit\n", True),  # no rows
])
def test_valid_edge_files_load_the_same_either_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str], text: str, by_columns: bool) -> None:
    bundle = copy_example(tmp_path / "b")
    (bundle / "CONSUMED.csv").write_bytes(text.encode("utf-8"))
    cols, rows = _load_both(tmp_path, [bundle], monkeypatch)
    assert cols == rows and cols[0]["valid"]
    assert ("CONSUMED.csv" in taken) is by_columns


@pytest.mark.parametrize("text", [
    "src,dst,quantity,unit\nWO-1001,LOT-NOPE,9,kg\n",  # unknown endpoint
    "src,dst,quantity,unit\nLOT-SUG-0001,WO-1001,9,kg\n",  # endpoints of the wrong classes
    "src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,-9,kg\n",  # quantity must be > 0
    "src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,nine,kg\n",
    "src,dst,unit\nWO-1001,LOT-SUG-0001,kg\n",  # required column missing
    "src,dst,quantity,colour\nWO-1001,LOT-SUG-0001,9,red\n",  # unknown column
    "src,dst,quantity\nWO-1001,LOT-SUG-0001,9,kg\n",  # a row longer than the header
    "src,dst,quantity\nWO-1001,,9\n",  # empty endpoint
    "src,dst,quantity,valid_from,valid_to\nWO-1001,LOT-SUG-0001,9,2026-03-05T06:00:00+01:00,"
    "2026-03-02T06:00:00+01:00\n",  # window out of order
    "src,dst,quantity,valid_from\nWO-1001,LOT-SUG-0001,9,2026-03-05T06:00:00\n",  # no time zone
    "src,dst,quantity,valid_from,valid_to\nWO-1001,LOT-SUG-0001,9,2300-01-01T00:00:00.000001+00:00,"
    "2300-01-01T00:00:00+00:00\n",  # out of order by 1 µs, far from 1970
    "src,dst,quantity,valid_from,valid_to\nWO-1001,LOT-SUG-0001,9,2026-03-02T06:00:00Z,"
    "2026-03-02T06:30:00+01:00\n",  # out of order as instants, in order as text
])
def test_bad_edge_files_get_the_row_paths_errors_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str], text: str) -> None:
    bundle = copy_example(tmp_path / "b")
    (bundle / "CONSUMED.csv").write_text(text)
    by_columns = validate_bundle(bundle)
    with monkeypatch.context() as m:
        _rows_only(m)
        by_rows = validate_bundle(bundle)
    assert not by_columns.valid and by_columns.errors
    assert by_columns.errors == by_rows.errors
    assert "CONSUMED.csv" not in taken
    with open_store("embedded", tmp_path / "s") as s, pytest.raises(BundleValidationError):
        load_bundle(s, bundle, pipeline=False)
    assert _tables(tmp_path / "s")[0] == []


def test_a_bundle_with_deletions_checks_its_edges_row_by_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    bundle = copy_example(tmp_path / "b")
    (bundle / "_deleted_nodes.csv").write_text("id\nNOT-THERE\n")
    validate_bundle(bundle)
    assert taken == []


def _coded(values: list[Any], codes: list[int]) -> Coded:
    import numpy as np
    return Coded(values, np.array(codes))


def test_edge_columns_give_the_rows_they_stand_for() -> None:
    cols = EdgeColumns(
        ["a", "b", "c"], ["x", "y", "z"], _coded(["MES"], [0, 0, 0]),
        _coded(["2026-03-02T06:00:00Z", None], [1, 0, 1]), _coded([None], [0, 0, 0]),
        {"quantity": _coded([1.5, 2.0], [0, 1, 0]), "unit": _coded(["kg", None], [1, 0, 1])},
    )
    assert len(cols) == 3
    assert cols.rows() == [
        ("a", "x", "MES", None, None, {"quantity": 1.5}),
        ("b", "y", "MES", "2026-03-02T06:00:00Z", None, {"quantity": 2.0, "unit": "kg"}),
        ("c", "z", "MES", None, None, {"quantity": 1.5}),
    ]


def test_batches_carry_only_the_values_they_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graph_loader.bundle import FileKind, open_bundle
    from graph_loader.errors import ErrorCollector
    from graph_loader.validation import GraphValidator, row_schema

    monkeypatch.setattr(columnar, "EMIT_ROWS", 2)
    lots = "".join(f"LOT-{i},n,MES,SITE-1,5,kg,released\n" for i in range(5))
    edges = "".join(f"LOT-{i},LOT-{i + 1},{i + 1},kg\n" for i in range(4))
    bundle = write_bundle(tmp_path / "b", {
        "Lot.csv": "id,name,source_system,plant,quantity,unit,status\n" + lots,
        "DERIVED_FROM.csv": "src,dst,quantity,unit\n" + edges,
    })
    b = open_bundle(bundle)
    gv = GraphValidator(ErrorCollector())
    for bf in b.of_kind(FileKind.NODES):
        for batch in loader.typed_batches(bf, gv.errors):
            gv.accept_nodes(batch.schema, batch.typed, batch.places)
    bf = next(iter(b.of_kind(FileKind.EDGES)))
    seen: list[int] = []
    got = edge_columns(bf, row_schema("edge", "DERIVED_FROM"), gv, seen.append)
    assert got is not None
    batches = list(got)
    assert [len(c) for c in batches] == [2, 2]
    assert [c.props["quantity"].values for c in batches] == [[1.0, 2.0], [3.0, 4.0]]
    assert sum(seen) == bf.size and gv.edges_seen == 4
    rows: Callable[[EdgeColumns], list[Any]] = EdgeColumns.rows
    assert [r[:2] for c in batches for r in rows(c)] == [(f"LOT-{i}", f"LOT-{i + 1}") for i in range(4)]


def _errors_both_ways(bundle: Path, monkeypatch: pytest.MonkeyPatch, store: Path | None = None) -> list[Any]:
    def run() -> list[Any]:
        if store is None:
            return validate_bundle(bundle).errors
        with open_store("embedded", store) as s:
            return validate_bundle(bundle, s).errors
    by_columns = run()
    with monkeypatch.context() as m:
        _rows_only(m)
        by_rows = run()
    assert by_columns == by_rows
    return by_columns


@pytest.mark.parametrize(("lots", "by_columns"), [
    ("LOT-A,a,MES,SITE-LYON,5,kg,released,,\nLOT-B,b,MES,SITE-LYON,5,kg,released,,\n", True),
    ("LOT-A,a,MES,SITE-LYON,5,kg,released,,\n\nLOT-B,b,MES,SITE-LYON,5,kg,released,,\n", False),  # a blank line
    ("LOT-A,a,MES,SITE-LYON,5,kg,released,,\r\nLOT-B,b,MES,SITE-LYON,5,kg,released,,", True),  # CRLF, no last EOL
])
def test_an_id_repeated_in_a_later_file_names_the_first_place_either_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str], lots: str, by_columns: bool) -> None:
    bundle = copy_example(tmp_path / "b")
    with (bundle / "Lot.csv").open("a", encoding="utf-8", newline="") as f:
        f.write(lots)
    # files are read in name order: Shift.csv after Lot.csv
    with (bundle / "Shift.csv").open("a", encoding="utf-8") as f:
        f.write(_shift_row("LOT-B"))
    errors = _errors_both_ways(bundle, monkeypatch)
    assert [e.message for e in errors if "duplicate id 'LOT-B'" in e.message]
    assert ("Lot.csv" in taken) is by_columns


def _shift_row(node_id: str) -> str:
    header = (EXAMPLE_SHIFTS.read_text().splitlines()[0]).split(",")
    values = {"id": node_id, "name": "s", "source_system": "MES", "plant": "SITE-LYON",
              "start": "2026-03-02T06:00:00+01:00", "end": "2026-03-02T14:00:00+01:00"}
    return ",".join(values.get(h, "") for h in header) + "\n"


def test_duplicate_ids_in_one_file_and_class_changes_get_the_row_paths_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    bundle = copy_example(tmp_path / "b")
    with (bundle / "Lot.csv").open("a", encoding="utf-8") as f:
        f.write("LOT-A,a,MES,SITE-LYON,5,kg,released,,\nLOT-A,again,MES,SITE-LYON,5,kg,released,,\n")
    errors = _errors_both_ways(bundle, monkeypatch)
    assert any("duplicate id 'LOT-A'" in e.message for e in errors)
    assert "Lot.csv" not in taken
    # an id the store holds as another class
    with open_store("embedded", tmp_path / "s") as s:
        load_bundle(s, copy_example(tmp_path / "base"), pipeline=False)
    taken.clear()
    update = write_bundle(tmp_path / "u", {
        "Material.csv": "id,name,source_system,kind,unit\nLOT-SUG-0001,m,ERP,raw,kg\nMAT-NEW,n,ERP,raw,kg\n"})
    errors = _errors_both_ways(update, monkeypatch, tmp_path / "s")
    assert any("cannot change class" in e.message for e in errors)
    assert "Material.csv" not in taken


def test_list_columns_and_defaults_load_the_same_either_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    bundle = copy_example(tmp_path / "b")
    with (bundle / "Customer.csv").open("a", encoding="utf-8") as f:
        f.write("CUST-X,X,ERP,FR,a| b |c\nCUST-Y,Y,ERP,,\n")
    cols, rows = _load_both(tmp_path, [bundle], monkeypatch)
    assert cols == rows and cols[0]["valid"]
    assert "Customer.csv" in taken


def test_a_small_bundle_is_read_row_by_row_without_pyarrow() -> None:
    code = ("import sys; from graph_loader.loader import validate_bundle; "
            f"assert validate_bundle({str(EXAMPLE)!r}).valid; print('pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_a_backend_without_its_own_binding_gets_the_columns_as_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    """The GraphStore defaults (what the Neo4j backend uses): columns handed over unchanged and
    written through upsert_node_rows / upsert_edge_rows."""
    plant = tmp_path / "plant"
    generate(named_spec("tiny"), 7, plant)
    monkeypatch.setattr(EmbeddedStore, "column_preparer", GraphStore.column_preparer)
    cols, rows = _load_both(tmp_path, [plant], monkeypatch)
    assert cols == rows
    assert "Lot.csv" in taken and "CONSUMED.csv" in taken


def test_an_infinite_quantity_fails_the_write_with_the_row_paths_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    bundle = copy_example(tmp_path / "b")
    (bundle / "CONSUMED.csv").write_text("src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,inf,kg\n")
    messages = []
    for name in ("columns", "rows"):
        with monkeypatch.context() as m:
            if name == "rows":
                _rows_only(m)
            with open_store("embedded", tmp_path / name) as s, pytest.raises(IntegrityError) as err:
                load_bundle(s, bundle, pipeline=False)
            messages.append(str(err.value))
    assert messages[0] == messages[1] and "not JSON-compatible" in messages[0]
    assert "CONSUMED.csv" not in taken


# -- times already in their dumped form skip pydantic ------------------------------------------

def _time_text() -> Any:
    """Text near the ISO form: valid and invalid calendar days, hours, offsets, fractions, UTC
    written three ways, stray spaces, dates alone."""
    from hypothesis import strategies as st

    two = st.integers(0, 99).map(lambda n: f"{n:02d}")
    date = st.tuples(st.sampled_from(["0000", "0001", "1969", "2024", "2026", "2300", "9999"]),
                     st.sampled_from(["01", "02", "04", "12", "13", "00"]),
                     st.sampled_from(["01", "28", "29", "30", "31", "32"])).map("-".join)
    hours, sixty = st.sampled_from(["00", "08", "23", "24"]), st.sampled_from(["00", "30", "59", "60"])
    clock = st.one_of(st.tuples(hours, sixty, sixty), st.tuples(two, two, two)).map(":".join)
    fraction = st.sampled_from(["", ".000000", ".5", ".500000", ".000001", ".999999", ".1234567"])
    zone = st.one_of(st.sampled_from(["Z", "+00:00", "-00:00", "", "z", "+24:00", "+23:59", "-05:30"]),
                     st.tuples(st.sampled_from("+-"), hours, sixty).map(lambda t: f"{t[0]}{t[1]}:{t[2]}"))
    sep = st.sampled_from(["T", " ", "t"])
    text = st.tuples(date, sep, clock, fraction, zone).map("".join)
    return st.lists(st.one_of(text, text.map(lambda t: f" {t}"), date, st.none()), max_size=12, unique_by=str)


def test_times_in_dump_form_are_what_pydantic_makes_of_them() -> None:
    from hypothesis import given, settings

    from graph_loader.validation import row_schema

    schema = row_schema("node", "Lot")

    def by_pydantic(values: list[Any]) -> list[Any] | None:
        try:
            return columnar._dumped(schema, "produced_at", columnar._typed(schema, "produced_at", values))
        except columnar._NotClean:
            return None

    def fast(values: list[Any]) -> list[Any] | None:
        try:
            return columnar._times(schema, "produced_at", values)
        except columnar._NotClean:
            return None

    @settings(max_examples=300, deadline=None)
    @given(_time_text())
    def check(values: list[Any]) -> None:
        assert fast(values) == by_pydantic(values)
        for v in values:  # alone too: in a list, one value pyarrow refuses sends all to pydantic
            assert fast([v]) == by_pydantic([v]), v

    check()
    # and the shortcut is taken: a dumped value comes back as the very same object
    value = "2026-03-28T08:00:00+01:00"
    assert columnar._times(schema, "produced_at", [value, None])[0] is value
