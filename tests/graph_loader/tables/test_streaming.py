"""The streaming path of table imports gives the full path's stores and reports, and hands every
import it cannot answer (errors, lookups, clashes) to the full path with nothing half-written."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graph_loader.tables import fast, import_table, load_mapping
from graph_loader.tables import importer as importer_mod
from graph_loader.tables.readers import RowBatch
from store.factory import open_store

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mappings"
ORDER = ["equipment", "material_master", "bom", "suppliers", "purchase_orders", "sales_orders",
         "lot_master", "mes_orders", "lot_consumption"]

LOTS = """
defaults: {source_system: ERP, timezone: Europe/Berlin, decimal_comma: true}
entity:
  class: Lot
  id: "LOT-{batch}"
  properties:
    quantity: qty
    unit: {column: uom, map: {KG: kg, L: l}}
    status: {column: status, map: {FREI: released, GESPERRT: on_hold}, default: FREI}
    produced_at: {column: produced, format: "%d.%m.%Y %H:%M"}
    name: label
"""

ORDERS = """
defaults: {source_system: ERP, timezone: Europe/Berlin, date_format: "%d.%m.%Y"}
entities:
  - {as: po, class: PurchaseOrder, id: "PO-{po}", properties: {order_date: date}}
  - {as: line, class: PurchaseOrderLine, id: "POL-{line}", properties: {quantity: qty, promised_date: prom}}
relations:
  - {type: HAS_PO_LINE, from: po, to: line, properties: {source_system: {column: sys}}}
"""


def _lots_csv(path: Path, rows: int, seed: int, dup_every: int = 0) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("batch;qty;uom;status;produced;label\n")
        for i in range(rows):
            b = i // dup_every if dup_every else i
            status = rnd.choice(["FREI", "GESPERRT", " FREI ", ""])
            label = rnd.choice(["", "x", " Lot a "])
            fh.write(f"{b:05d};{rnd.randint(1, 10_000) / 100:.2f}".replace(".", ",")
                     + f";{rnd.choice(['KG', 'L'])};{status};{1 + i % 28:02d}.03.2026 {i % 24:02d}:05;{label}\n")


def _orders_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("po,line,qty,date,prom,sys\n")
        for i in range(rows):
            date = "" if i % 4 else f"{1 + i % 28:02d}.03.2026"  # on a PO's first row only
            fh.write(f"{i // 4},{i % 9},{i + 1},{date},02.03.2026,{'MES' if i % 3 else ''}\n")


def _dump(root: Path) -> dict[str, Any]:
    con = sqlite3.connect(root / "graph.sqlite")
    try:
        return {
            "nodes": con.execute("SELECT id, cls, name, plant, source_system, valid_from, valid_to, vf, vt, props "
                                 "FROM nodes ORDER BY id").fetchall(),
            "edges": con.execute("SELECT s.id, e.rel, t.id, e.source_system, e.props FROM edges e "
                                 "JOIN nodes s ON s.nid = e.src JOIN nodes t ON t.nid = e.dst "
                                 "ORDER BY s.id, e.rel, t.id").fetchall(),
            "counts": con.execute("SELECT * FROM node_counts ORDER BY cls").fetchall(),
            "generation": con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchall(),
        }
    finally:
        con.close()


def _run(tmp: Path, name: str, steps: list[tuple[Path, Path, dict[str, Any]]],
         stream: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int], dict[str, Any], int]:
    """Reports (without timing), progress calls, the store after ``steps`` and how many imports
    the streaming path finished."""
    done = []
    with monkeypatch.context() as mp:
        if not stream:
            mp.setattr(fast, "applies", lambda *a: False)
        run = fast.StreamImport.run

        def counted(self: fast.StreamImport, *a: Any) -> None:
            run(self, *a)
            done.append(1)

        mp.setattr(fast.StreamImport, "run", counted)
        store = open_store("embedded", tmp / name)
        reports: list[str] = []
        told: list[int] = []
        for data, mapping, kw in steps:
            rep = import_table(data, load_mapping(mapping), store, progress=told.append, **kw)
            d = rep.model_dump(mode="json")
            d.pop("seconds")
            reports.append(json.dumps(d))
            if rep.reject_file:
                reports.append(Path(rep.reject_file).read_text(encoding="utf-8"))
        store.close()
    return reports, told, _dump(tmp / name), len(done)


def _same(tmp: Path, steps: list[tuple[Path, Path, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch) -> int:
    """Compares both paths; returns how many of the steps the streaming path finished."""
    full = _run(tmp, "full", steps, False, monkeypatch)
    streamed = _run(tmp, "stream", steps, True, monkeypatch)
    assert streamed[0] == full[0]
    assert sum(streamed[1]) == sum(full[1])
    assert streamed[2] == full[2]
    assert full[3] == 0
    return streamed[3]


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "BATCH_ROWS", 7)


def _yaml(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_examples_give_the_same_store_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  small_batches: None) -> None:
    steps: list[tuple[Path, Path, dict[str, Any]]] = [
        (next(p for p in EXAMPLES.glob(f"{n}.*") if p.suffix not in (".yaml", ".py", ".md")),
         EXAMPLES / f"{n}.yaml", {}) for n in ORDER]
    # twice: the second round merges every row over stored entities
    assert _same(tmp_path, steps + steps, monkeypatch) >= 10


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dup_every", [0, 3])
def test_generated_lots_same_as_full_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_batches: None,
                                          seed: int, dup_every: int) -> None:
    data, other = tmp_path / "lots.csv", tmp_path / "more.csv"
    _lots_csv(data, 40, seed, dup_every)
    _lots_csv(other, 25, seed + 10, 2)  # overlaps the first file's ids: merged over the store
    m = _yaml(tmp_path, "lots.yaml", LOTS)
    assert _same(tmp_path, [(data, m, {}), (other, m, {"skip_bad_rows": True})], monkeypatch) == 2


def test_multi_entity_rows_with_ids_repeated_across_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            small_batches: None) -> None:
    data = tmp_path / "orders.csv"
    _orders_csv(data, 45)
    m = _yaml(tmp_path, "orders.yaml", ORDERS)
    assert _same(tmp_path, [(data, m, {}), (data, m, {})], monkeypatch) == 2


@pytest.mark.parametrize("tail", [
    "99999;x;KG;FREI;01.03.2026 10:00;\n",  # a bad number late in the file
    "99999;1,0;KG;NOPE;01.03.2026 10:00;\n",  # a value outside the map
    "99999;-1,0;KG;FREI;01.03.2026 10:00;\n",  # typing refuses it (quantity > 0)
    "99999;1,0;KG\n",  # wrong number of fields
    ";1,0;KG;FREI;01.03.2026 10:00;\n",  # empty id
])
@pytest.mark.parametrize("skip", [False, True])
def test_bad_rows_fall_back_with_the_same_errors_and_nothing_half_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_batches: None, tail: str, skip: bool) -> None:
    data = tmp_path / "lots.csv"
    _lots_csv(data, 30, 5)
    with data.open("a", encoding="utf-8") as fh:
        fh.write(tail)
    m = _yaml(tmp_path, "lots.yaml", LOTS)
    assert _same(tmp_path, [(data, m, {"skip_bad_rows": skip, "reject_path": tmp_path / "rej.csv"})],
                 monkeypatch) == 0


def test_class_clash_and_missing_endpoint_fall_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   small_batches: None) -> None:
    m = _yaml(tmp_path, "m.yaml", """
entities:
  - {as: a, class: Lot, id: "{x}", properties: {quantity: q}}
  - {as: b, class: Material, id: "{y}", properties: {kind: {value: raw}}}
relations:
  - type: FOR_MATERIAL
    from: a
    to: {class: Material, column: z, id: "{value}"}
""")
    rows = "".join(f"K{i},{i + 1},M{i % 3},M{i % 3}\n" for i in range(20))
    clash = _yaml(tmp_path, "clash.csv", "x,q,y,z\n" + rows + "K1,2,K3,M1\n")
    missing = _yaml(tmp_path, "missing.csv", "x,q,y,z\n" + rows + "K99,2,M1,M-NOPE\n")
    good = _yaml(tmp_path, "good.csv", "x,q,y,z\n" + rows)
    stored_clash = _yaml(tmp_path, "stored.csv", "x,q,y,z\nM1,1,M2,M2\n")  # M1 is a stored Material
    steps = [(clash, m, {}), (missing, m, {}), (good, m, {}), (clash, m, {}), (stored_clash, m, {}),
             (stored_clash, m, {"skip_bad_rows": True, "reject_path": tmp_path / "rej.csv"})]
    assert _same(tmp_path, steps, monkeypatch) == 1


def test_streaming_path_writes_clean_files_without_the_full_path(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "lots.csv"
    _lots_csv(data, 50, 9)

    def no_full_path(*a: Any, **k: Any) -> Any:
        raise AssertionError("the full path ran")

    monkeypatch.setattr(importer_mod, "ImportBatch", no_full_path)
    store = open_store("embedded", tmp_path / "s")
    rep = import_table(data, load_mapping(_yaml(tmp_path, "lots.yaml", LOTS)), store)
    assert rep.written and rep.rows_read == 50 and rep.entities == 50
    assert store.counts().nodes == 50
    store.close()


def test_lookups_and_dry_runs_use_the_full_path(tmp_path: Path) -> None:
    lookup = load_mapping(_yaml(tmp_path, "m.yaml", """
entity: {class: Lot, id: "L-{lot}", properties: {quantity: qty}}
relations:
  - type: FOR_MATERIAL
    to: {class: Material, column: cls, lookup: material_class}
"""))
    store = open_store("embedded", tmp_path / "s")
    assert not fast.applies(lookup, store, False)
    plain = load_mapping(_yaml(tmp_path, "p.yaml", LOTS))
    assert fast.applies(plain, store, False)
    assert not fast.applies(plain, store, True)
    assert not fast.applies(plain, None, False)
    store.close()


NUMBERS = ["12", "1,5", "1.234,5", ".5", "5.", "1e3", "-1,5", "+2", "1 234,5", "1\u202f234,5", "\u0661\u0662", "inf",
           "nan", "1" * 400, "0,0", "00012", "1.5", "1,2,3", "x", "1.2.3", "\u00b2", "1_000", "0x10", "1\n2"]


@pytest.mark.parametrize("decimal_comma", [False, True])
@pytest.mark.parametrize("value", NUMBERS)
def test_column_numbers_read_like_the_row_reader(value: str, decimal_comma: bool) -> None:
    from graph_loader.tables.mapping import Mapping, ValueSpec
    from graph_loader.tables.rowmap import RowMapper, _RowError

    m = Mapping.model_validate({"entity": {"class": "Lot", "id": "{a}", "properties": {"quantity": "q"}},
                                "defaults": {"decimal_comma": decimal_comma}})
    spec = ValueSpec(column="q")
    mapper = RowMapper(m)
    rows = [{"q": value}, {"q": "7"}]
    try:
        want: Any = [mapper.reader(spec, "number")(r) for r in rows]
    except _RowError as exc:
        want = str(exc)
    for batch in (RowBatch([2, 3], rows=rows), RowBatch([2, 3], header=["q"], records=[[r["q"]] for r in rows])):
        try:
            got: Any = mapper.column_reader(spec, "number")(batch)
        except _RowError as exc:
            got = str(exc)
        assert repr(got) == repr(want)


@pytest.mark.parametrize("fmt", [None, "%d.%m.%Y %H:%M"])
def test_column_times_read_like_the_row_reader_with_repeats(fmt: str | None) -> None:
    from graph_loader.tables.mapping import Mapping, ValueSpec
    from graph_loader.tables.rowmap import RowMapper, _RowError

    m = Mapping.model_validate({"entity": {"class": "Lot", "id": "{a}", "properties": {"produced_at": "t"}},
                                "defaults": {"timezone": "Europe/Berlin"}})
    spec = ValueSpec(column="t", format=fmt)
    mapper = RowMapper(m)
    texts = (["29.03.2026 02:30", "01.03.2026 10:05", " 1.3.2026 1:5 "] if fmt else
             ["2026-03-29T02:30:00", "2026-03-01", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00.1234567+05:30"])
    for batch in (texts + texts, [*texts, "31.02.2026 10:00", "bad"], [*texts, ""]):
        rows = [{"t": t} for t in batch]
        try:
            want: Any = [mapper.reader(spec, "datetime")(r) for r in rows]
        except _RowError as exc:
            want = str(exc)
        lines = list(range(len(rows)))
        for b in (RowBatch(lines, rows=rows), RowBatch(lines, header=["t"], records=[[r["t"]] for r in rows])):
            try:
                got: Any = mapper.column_reader(spec, "datetime")(b)
            except _RowError as exc:
                got = str(exc)
            assert got == want


@pytest.mark.parametrize("size", [1, 2, 100])
def test_csv_batches_hold_the_rows_of_the_row_iterator(tmp_path: Path, size: int) -> None:
    from graph_loader.tables.readers import open_table

    text = 'a;b\r\n1;x\r\n\r\n"2\nmore";y\r\n ;\r\n3;"z;z"\r\n   \r\n4;w\r\n'
    data = _yaml(tmp_path, "t.csv", "\ufeff" + text)
    m = load_mapping(_yaml(tmp_path, "m.yaml", 'entity: {class: Lot, id: "{a}", properties: {quantity: b}}'))
    want = list(open_table(data, m).rows)
    batches = open_table(data, m).batches
    assert batches is not None
    got = [(ln, r) for b in batches(size) for ln, r in zip(b.lines, b.rows(), strict=True)]
    assert got == want
    cols = [c for b in open_table(data, m).batches(size) for c in b.column("b")]  # type: ignore[misc]
    assert cols == [r["b"] for _, r in want]
    ragged = _yaml(tmp_path, "r.csv", "a;b\n1;x\n2\n3;y\n")
    rb = open_table(ragged, m).batches
    assert rb is not None
    assert [b.ragged for b in rb(size)][-1]


@pytest.mark.parametrize("case", ["clean", "repeats", "bad"])
def test_two_process_stream_same_as_full_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              small_batches: None, case: str) -> None:
    """A big file is read and checked in a second process (here any file): same store, same
    reports; ids repeated across batches send it back to the one-process stream, errors to the
    full path."""
    from graph_loader import pipeline

    monkeypatch.setattr(importer_mod, "PIPELINE_MIN_BYTES", 0)
    monkeypatch.setattr(importer_mod, "usable_cpus", lambda: 2)
    piped: list[int] = []
    run_beside = pipeline.run_beside

    def counted(*a: Any, **k: Any) -> Any:
        out = run_beside(*a, **k)
        piped.append(1)
        return out

    monkeypatch.setattr(importer_mod, "run_beside", counted)
    data = tmp_path / "lots.csv"
    _lots_csv(data, 30, 4, dup_every=3 if case == "repeats" else 0)
    if case == "bad":
        with data.open("a", encoding="utf-8") as fh:
            fh.write("99999;x;KG;FREI;01.03.2026 10:00;\n")
    m = _yaml(tmp_path, "lots.yaml", LOTS)
    streamed_here = _same(tmp_path, [(data, m, {})], monkeypatch)
    assert streamed_here == (1 if case == "repeats" else 0)
    assert len(piped) == (1 if case == "clean" else 0)
