"""Table imports with declarative mappings: examples end to end, mapping checks, row errors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph_loader.tables import MappingError, import_table, load_mapping
from store.base import GraphStore
from store.factory import open_store

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mappings"
ORDER = ["equipment", "material_master", "bom", "suppliers", "purchase_orders", "sales_orders",
         "lot_master", "mes_orders", "lot_consumption"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", tmp_path / "store")
    yield s
    s.close()


def _data_file(name: str) -> Path:
    return next(p for p in EXAMPLES.glob(f"{name}.*") if p.suffix != ".yaml")


def _import_examples(store: GraphStore, upto: str | None = None) -> None:
    for name in ORDER:
        rep = import_table(_data_file(name), load_mapping(EXAMPLES / f"{name}.yaml"), store)
        assert rep.written, (name, [str(e) for e in rep.errors])
        if name == upto:
            return


def _edge(store: GraphStore, src: str, rel: str) -> dict[str, dict]:
    return {e.dst: dict(e.props) for e in store.neighbours(src, [rel])}


def test_examples_import_end_to_end(store: GraphStore) -> None:
    _import_examples(store)
    # material master: cp1252 + ';' detected, code maps
    m = store.get_node("MAT-100-200")
    assert m is not None and m.name == "Würfelzucker" and m.props["kind"] == "raw" and m.props["unit"] == "kg"
    assert m.source_system == "ERP" and m.props["aliases"] == ["100-200"]
    assert store.get_node("MAT-300-200").name == "Sirup 0,5 l Flasche"  # type: ignore[union-attr]
    # BOM: decimal commas, optional substitute
    assert store.get_node("BOM-300-200-10").props["quantity"] == 0.55  # type: ignore[union-attr]
    assert set(_edge(store, "BOM-300-200-10", "APPROVED_SUBSTITUTE")) == {"MAT-300-100"}
    assert _edge(store, "BOM-200-100-10", "APPROVED_SUBSTITUTE") == {}
    assert set(_edge(store, "MAT-200-100", "HAS_BOM_ITEM")) == {"BOM-200-100-10", "BOM-200-100-20"}
    # suppliers from nested JSON, POs with supplier looked up by name
    assert set(_edge(store, "PO-4500001", "ORDERED_FROM")) == {"SUP-V-100"}
    assert store.get_node("PO-4500002-10").props["quantity"] == 1500.0  # type: ignore[union-attr]
    po = store.get_node("PO-4500001")
    assert po is not None and po.props["order_date"] == "2026-02-03T00:00:00+01:00"
    # Excel sales orders: Excel dates and a text date, three entities per row
    line = store.get_node("SO-7001-1")
    assert line is not None and line.props["priority"] == "high"
    assert line.props["due_date"] == "2026-03-06T00:00:00+01:00"
    assert store.get_node("SO-7002-1").props["due_date"] == "2026-03-13T00:00:00+01:00"  # type: ignore[union-attr]
    assert set(_edge(store, "SO-7001", "PLACED_BY")) == {"CUST-C-10"}
    assert store.get_node("CUST-C-20").name == "Bäckerei Süd"  # type: ignore[union-attr]
    # lot master: g -> kg, status map, local time with zone, DELIVERED_AS from the PO line
    lot2 = store.get_node("LOT-CH-0002")
    assert lot2 is not None and lot2.props["quantity"] == 750.0 and lot2.props["status"] == "on_hold"
    assert lot2.props["produced_at"] == "2026-03-02T07:15:00+01:00"
    assert store.get_node("LOT-CH-0001").props["quantity"] == 1250.5  # type: ignore[union-attr]
    assert _edge(store, "PO-4500001-10", "DELIVERED_AS")["LOT-CH-0001"]["quantity"] == 1250.5
    # MES orders and consumption onto stored entities
    mo = store.get_node("MO-9001")
    assert mo is not None and mo.props["operations"] == ["MIX", "COOK"] and mo.props["status"] == "completed"
    assert set(_edge(store, "MO-9001", "SCHEDULED_ON")) == {"N-L1"}
    assert _edge(store, "MO-9001", "CONSUMED")["LOT-CH-0001"]["quantity"] == 325.25
    assert mo.props["quantity"] == 500.0  # untouched by the consumption import
    # equipment: merged repeated site, hierarchy
    assert set(_edge(store, "SITE-N", "HAS_AREA")) == {"N-MIX", "N-PACK"}
    assert store.get_node("N-L2").props["capacity_per_hour"] == 80.5  # type: ignore[union-attr]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("yaml_text", "line", "needle"), [
    ("entity:\n  class: Materail\n  id: '{a}'\n", 2, "unknown class 'Materail'"),
    ("entity:\n  class: Material\n  id: '{a}'\n  properties:\n    colour: c\n", 5, "no property 'colour'"),
    ("entity:\n  class: Lot\n  id: '{a}'\nrelations:\n  - type: MADE_OF\n    to: {class: Lot, column: b}\n",
     5, "unknown relation 'MADE_OF'"),
    ("entity:\n  class: Lot\n  id: '{a}'\nrelations:\n  - type: FOR_MATERIAL\n    to: {class: Supplier, column: b}\n",
     6, "must be Material"),
    ("entity:\n  class: Lot\n  id: '{a}'\n  bogus: 1\n", 4, "bogus"),
    ("entity: [\n", 2, "not valid YAML"),
])
def test_mapping_errors_name_file_and_line(tmp_path: Path, yaml_text: str, line: int, needle: str) -> None:
    p = _write(tmp_path, "m.yaml", yaml_text)
    with pytest.raises(MappingError) as exc:
        load_mapping(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert needle in msg


MAPPING = """
entity:
  class: Lot
  id: "L-{lot}"
  properties:
    quantity: qty
    produced_at: {column: made, format: "%d.%m.%Y"}
relations:
  - type: FOR_MATERIAL
    to: {class: Material, column: mat, id: "{value}"}
"""


def test_row_errors_name_file_line_column_and_nothing_is_written(tmp_path: Path, store: GraphStore) -> None:
    _import_examples(store, upto="material_master")
    before = store.counts().nodes
    data = _write(tmp_path, "lots.csv",
                  'lot,qty,made,mat\nA,5,01.03.2026,MAT-100-200\n"B\nmultiline",x,01.03.2026,MAT-100-200\n'
                  "C,3,2026-13-01,MAT-100-200\nD,-1,01.03.2026,MAT-100-200\nE,2,01.03.2026,MAT-NOPE\n")
    rep = import_table(data, load_mapping(_write(tmp_path, "m.yaml", MAPPING)), store)
    assert not rep.written
    got = {(e.line, e.column) for e in rep.errors}
    assert (3, "qty") in got  # the quoted two-line record starts on line 3
    assert (5, "made") in got  # the next record is on line 5
    assert any(e.line == 6 and "greater than 0" in e.message for e in rep.errors)
    assert any(e.line == 7 and "MAT-NOPE" in e.message for e in rep.errors)
    assert store.counts().nodes == before


def test_skip_bad_rows_writes_good_rows_and_a_reject_file(tmp_path: Path, store: GraphStore) -> None:
    _import_examples(store, upto="material_master")
    data = _write(tmp_path, "lots.csv",
                  "lot,qty,made,mat\nA,5,01.03.2026,MAT-100-200\nB,x,01.03.2026,MAT-100-200\n"
                  "C,2,01.03.2026,MAT-NOPE\nD,7,02.03.2026,MAT-100-300\n")
    rep = import_table(data, load_mapping(_write(tmp_path, "m.yaml", MAPPING)), store, skip_bad_rows=True)
    assert rep.written and rep.rows_ok == 2 and rep.rows_rejected == 2
    assert store.get_node("L-A") is not None and store.get_node("L-D") is not None
    assert store.get_node("L-B") is None and store.get_node("L-C") is None
    with open(rep.reject_file or "", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["lot"] for r in rows] == ["B", "C"]
    assert rows[0]["_line"] == "3" and "qty" in rows[0]["_reason"]
    assert "MAT-NOPE" in rows[1]["_reason"]


def test_missing_column_is_reported_before_rows(tmp_path: Path, store: GraphStore) -> None:
    data = _write(tmp_path, "lots.csv", "lot,quantity\nA,5\n")
    rep = import_table(data, load_mapping(_write(tmp_path, "m.yaml", MAPPING)), store)
    assert not rep.written and rep.rows_read == 0
    assert "'qty'" in rep.errors[0].message and rep.errors[0].line == 1


def test_ambiguous_business_key_is_a_row_error(tmp_path: Path, store: GraphStore) -> None:
    _import_examples(store, upto="material_master")
    m = _write(tmp_path, "m.yaml", """
entity: {class: Lot, id: "L-{lot}", properties: {quantity: qty}}
relations:
  - type: FOR_MATERIAL
    to: {class: Material, column: cls, lookup: material_class}
""")
    data = _write(tmp_path, "lots.csv", "lot,qty,cls\nA,1,SWEET\nB,1,SYRUP\n")
    rep = import_table(data, load_mapping(m), store)
    assert not rep.written
    assert [e.line for e in rep.errors] == [3]
    assert "ambiguous" in rep.errors[0].message


@pytest.mark.parametrize("fmt", ["%d.%m.%Y %H:%M", "%Y-%m-%d", "%Y%m%d%H%M%S", "%m/%d/%Y %H:%M:%S.%f",
                                 "%d.%m.%Y  %H:%M"])
@pytest.mark.parametrize("text", [
    "01.03.2026 10:05", "1.3.2026 1:5", "31.02.2026 10:00", "2026-03-01", "2026-3-1", "20260301101500",
    " 1.03.2026 10:05", "12/31/2026 23:59:59.5", "13/01/2026 00:00:00.1", "01.03.2026   10:05",
    "01.03.2026\t10:05", "01.03.2026 24:00", "01.03.2026 10:60", "2026-00-01", "x", "2026-03-01x",
])
def test_fast_date_format_reads_like_strptime(fmt: str, text: str) -> None:
    """The compiled date formats used for table columns accept and reject what strptime does."""
    from datetime import datetime

    from graph_loader.b2mml.values import _strptime

    try:
        want: object = datetime.strptime(text, fmt)
    except ValueError:
        want = ValueError
    try:
        got: object = _strptime(text, fmt)
    except ValueError:
        got = ValueError
    assert got == want


def test_import_pauses_the_cyclic_gc_and_turns_it_back_on() -> None:
    import gc

    from graph_loader.b2mml.records import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()
