"""Loading: all or nothing, idempotent, incremental; the importer-facing record API."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graph_loader.errors import BundleValidationError
from graph_loader.loader import load_bundle, load_records, validate_bundle, write_records
from graph_loader.validation import Deletions, validate_records
from ontology.models import ENTITY_CLASSES, RELATIONS
from store.base import Direction, EdgeRecord, GraphStore, NodeRecord
from store.factory import open_store
from tests.graph_loader.bundles import EXAMPLE, copy_example, data_rows, write_bundle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", tmp_path / "store")
    yield s
    s.close()


def _expected_counts(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    nodes: dict[str, int] = {}
    edges: dict[str, int] = {}
    for p in sorted(root.iterdir()):
        if p.suffix not in (".csv", ".jsonl") or p.name.startswith("_"):
            continue
        target = nodes if p.stem in ENTITY_CLASSES else edges
        target[p.stem] = target.get(p.stem, 0) + data_rows(p)
    return nodes, edges


def _distinct_edge_keys(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in sorted(root.glob("*.csv")):
        if p.stem in RELATIONS:
            with p.open(encoding="utf-8", newline="") as f:
                out[p.stem] = len({(r[0], r[1]) for r in list(csv.reader(f))[1:] if r})
    return out


def _snapshot(store: GraphStore) -> tuple[dict[str, NodeRecord], dict[tuple[str, str, str], EdgeRecord]]:
    nodes = {n.id: n for n in store.find_nodes()}
    edges = {e.key: e for nid in nodes for e in store.neighbours(nid, None, Direction.OUT)}
    return nodes, edges


def test_the_docs_example_bundle_loads(store: GraphStore) -> None:
    report = load_bundle(store, EXAMPLE)
    want_nodes, want_edges = _expected_counts(EXAMPLE)
    counts = store.counts()
    assert counts.nodes_by_class == want_nodes == report.nodes_by_class
    assert counts.edges_by_relation == want_edges == report.edges_by_relation
    assert report.written and report.nodes == sum(want_nodes.values())
    lot = store.get_node("LOT-SYR-0002")
    assert lot is not None and lot.cls == "Lot" and lot.props["status"] == "on_hold"
    assert lot.plant == "SITE-LYON" and lot.source_system == "MES"
    mat = store.get_node("MAT-SUGAR")
    assert mat is not None and mat.props["aliases"] == ["sugar", "saccharose"]
    ran = store.neighbours("WO-1001", ["RAN_ON"], Direction.OUT)
    assert {e.dst for e in ran} == {"M-LYON-1-MIX", "M-LYON-1-FILL"}
    assert all(e.props.get("start") for e in ran)


def test_loading_twice_changes_nothing(store: GraphStore) -> None:
    load_bundle(store, EXAMPLE)
    first_counts, first = store.counts(), _snapshot(store)
    again = load_bundle(store, EXAMPLE)
    assert again.nodes == sum(first_counts.nodes_by_class.values())
    assert store.counts() == first_counts
    assert _snapshot(store) == first


def _bad_example(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "bad")
    with (root / "Lot.csv").open("a") as f:
        f.write("LOT-NEW,New lot,MES,SITE-LYON,10,kg,released,,\n")
        f.write("LOT-BAD,Bad lot,MES,SITE-LYON,-10,kg,released,,\n")
    with (root / "PRODUCED.csv").open("a") as f:
        f.write("WO-1001,LOT-NEW,10,kg,MES\n")
    return root


def test_invalid_bundle_writes_nothing_into_an_empty_store(tmp_path: Path, store: GraphStore) -> None:
    with pytest.raises(BundleValidationError) as info:
        load_bundle(store, _bad_example(tmp_path))
    assert [str(e).split(": ")[0] for e in info.value.errors] == ["Lot.csv:6:quantity"]
    assert store.counts().nodes == 0 and store.counts().edges == 0
    assert store.get_node("LOT-NEW") is None


def test_invalid_bundle_leaves_existing_data_unchanged(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, EXAMPLE)
    before_counts, before = store.counts(), _snapshot(store)
    root = _bad_example(tmp_path)
    # also change an existing entity, so a partial write would show
    text = (root / "Lot.csv").read_text().replace("120,l,on_hold", "120,l,released")
    (root / "Lot.csv").write_text(text)
    with pytest.raises(BundleValidationError):
        load_bundle(store, root)
    assert store.counts() == before_counts
    assert _snapshot(store) == before


def test_a_late_error_in_an_edge_file_still_writes_nothing(tmp_path: Path, store: GraphStore) -> None:
    root = copy_example(tmp_path / "b")
    with (root / "WORKS_AT.csv").open("a") as f:  # the last relation file read
        f.write("P-ANNA,SITE-NOWHERE\n")
    with pytest.raises(BundleValidationError) as info:
        load_bundle(store, root, batch_size=2)
    assert [(e.file, e.line, e.column) for e in info.value.errors] == [("WORKS_AT.csv", 4, "dst")]
    assert store.counts().nodes == 0


def test_incremental_update_end_and_delete(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, EXAMPLE)
    before = store.counts()
    update = write_bundle(tmp_path / "inc", {
        # property update (status) and ending an entity (valid_to)
        "Lot.csv": ("id,name,source_system,plant,quantity,unit,status,valid_to\n"
                    "LOT-SYR-0002,Syrup lot 0002,MES,SITE-LYON,120,l,scrapped,2026-03-08T12:00:00+01:00\n"),
        # a new relation between existing entities
        "ALLOCATED_TO.csv": "src,dst,quantity,unit\nLOT-SYR-0002,SO-7001-10,100,l\n",
        "_deleted_nodes.csv": "id\nHOLD-88\n",
        "_deleted_edges.csv": "src,rel,dst\nWO-1001,OPERATED_BY,P-LUC\n",
    })
    report = load_bundle(store, update)
    assert (report.nodes, report.edges, report.nodes_deleted, report.edges_deleted) == (1, 1, 1, 1)
    lot = store.get_node("LOT-SYR-0002")
    assert lot is not None and lot.props["status"] == "scrapped"
    assert lot.valid_to == datetime(2026, 3, 8, 11, 0, tzinfo=UTC)
    assert store.get_node("LOT-SYR-0002", as_of=datetime(2026, 3, 9, tzinfo=UTC)) is None
    assert store.get_node("LOT-SYR-0002", as_of=datetime(2026, 3, 4, tzinfo=UTC)) is not None
    assert [e.dst for e in store.neighbours("LOT-SYR-0002", ["ALLOCATED_TO"])] == ["SO-7001-10"]
    assert store.get_node("HOLD-88") is None
    assert store.neighbours("LOT-SYR-0002", ["HOLDS"], Direction.IN) == []
    assert store.neighbours("WO-1001", ["OPERATED_BY"]) == []
    after = store.counts()
    assert after.nodes == before.nodes - 1
    assert after.edges_by_relation["ALLOCATED_TO"] == 1
    assert after.edges_by_relation.get("OPERATED_BY", 0) == before.edges_by_relation["OPERATED_BY"] - 1
    # HOLD-88 took its HOLDS and RAISED_BY edges with it
    assert after.edges_by_relation.get("HOLDS", 0) == 0
    assert after.edges_by_relation["RAISED_BY"] == before.edges_by_relation["RAISED_BY"] - 1
    # and the same incremental bundle again changes nothing more
    snap = _snapshot(store)
    load_bundle(store, update)
    assert _snapshot(store) == snap


def test_edge_properties_update_by_key(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, EXAMPLE)
    update = {"CONSUMED.csv": "src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,980,kg\n"}
    load_bundle(store, write_bundle(tmp_path / "b", update))
    (edge,) = store.neighbours("WO-1001", ["CONSUMED"])
    assert edge.props["quantity"] == 980.0
    assert store.counts().edges_by_relation["CONSUMED"] == 1


def test_a_repeated_edge_key_in_one_bundle_is_an_update(tmp_path: Path, store: GraphStore) -> None:
    load_bundle(store, EXAMPLE)
    report = load_bundle(store, write_bundle(tmp_path / "b", {
        "CONSUMED.csv": "src,dst,quantity,unit\nWO-1001,LOT-SUG-0001,900,kg\n",
        "CONSUMED.jsonl": '{"src": "WO-1001", "dst": "LOT-SUG-0001", "quantity": 950, "unit": "kg"}\n',
    }))
    assert report.repeated_edges == 1
    (edge,) = store.neighbours("WO-1001", ["CONSUMED"])
    assert edge.props["quantity"] == 950.0  # the later row (CSV is read before JSONL) won


def test_progress_reaches_the_bundle_size(tmp_path: Path, store: GraphStore) -> None:
    root = copy_example(tmp_path / "b")
    # non-ASCII text in a JSON Lines file: more bytes than characters, and the bar must still end full
    with (root / "Incident.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"id": "INC-302", "kind": "deviation", "severity": "low", '
                '"occurred_at": "2026-03-03T15:00:00+01:00", "title": "Öl – Ventil", "text": "Ölfilm geprüft"}\n')
    seen: list[tuple[int, int]] = []
    load_bundle(store, root, progress=lambda done, total: seen.append((done, total)))
    total = sum(p.stat().st_size for p in root.iterdir() if p.name != "manifest.json")
    assert seen and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---------------------------------------------------------------------------------------------
# Record API for other importers
# ---------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _records() -> tuple[list[NodeRecord], list[EdgeRecord]]:
    nodes = [
        NodeRecord("MAT-1", "Material", {"kind": "raw"}),
        NodeRecord("LOT-1", "Lot", {"quantity": 3, "produced_at": T0}, plant="SITE-1"),
    ]
    edges = [EdgeRecord("LOT-1", "FOR_MATERIAL", "MAT-1")]
    return nodes, edges


def test_record_api_validates_normalises_and_writes(store: GraphStore) -> None:
    nodes, edges = _records()
    assert validate_records(nodes, edges) == []
    report = load_records(store, nodes, edges)
    assert report.nodes_upserted == 2 and report.edges_upserted == 1
    lot = store.get_node("LOT-1")
    assert lot is not None
    props = dict(lot.props)
    produced = props.pop("produced_at")
    assert props == {"quantity": 3.0, "unit": "kg", "status": "released"}
    assert isinstance(produced, str) and datetime.fromisoformat(produced) == T0  # JSON-ready, with offset


def test_record_api_reports_positions_and_writes_nothing(store: GraphStore) -> None:
    nodes, edges = _records()
    nodes.append(NodeRecord("LOT-2", "Lot", {"quantity": 0}))
    edges.append(EdgeRecord("LOT-2", "FOR_MATERIAL", "MAT-404"))
    errs = validate_records(nodes, edges)
    assert [(e.file, e.line, e.column) for e in errs] == [("<nodes>", 3, "quantity"), ("<edges>", 2, "dst")]
    with pytest.raises(BundleValidationError):
        load_records(store, nodes, edges)
    assert store.counts().nodes == 0


def test_write_records_applies_deletions(store: GraphStore) -> None:
    nodes, edges = _records()
    load_records(store, nodes, edges)
    write_records(store, [], [], Deletions(nodes={"LOT-1": (None, 0)}))  # type: ignore[dict-item]
    assert store.get_node("LOT-1") is None and store.counts().edges == 0


def test_validate_bundle_does_not_write(store: GraphStore) -> None:
    assert validate_bundle(EXAMPLE, store).valid
    assert store.counts().nodes == 0


def test_validate_and_load_count_the_same_rows(tmp_path: Path, store: GraphStore) -> None:
    checked = validate_bundle(EXAMPLE)
    loaded = load_bundle(store, EXAMPLE)
    assert checked.valid and loaded.written
    assert checked.nodes_by_class == loaded.nodes_by_class == store.counts().nodes_by_class
    assert checked.edges_by_relation == loaded.edges_by_relation


@pytest.mark.slow
def test_a_generated_small_plant_loads_with_matching_counts(tmp_path: Path, store: GraphStore) -> None:
    from graph_loader.generator import generate, named_spec

    bundle = tmp_path / "plant"
    generate(named_spec("small"), 7, bundle)
    want_nodes, want_edges = _expected_counts(bundle)
    report = load_bundle(store, bundle)
    counts = store.counts()
    assert counts.nodes_by_class == want_nodes == report.nodes_by_class
    assert report.edges_by_relation == want_edges  # rows read
    # in the store, a (src, rel, dst) repeated in the bundle is one edge (the later row updated it)
    assert counts.edges_by_relation == _distinct_edge_keys(bundle)
    assert report.repeated_edges == sum(want_edges.values()) - counts.edges
    # loading it again is idempotent at this size too
    load_bundle(store, bundle)
    assert store.counts() == counts


def _append(name: str, text: str):  # type: ignore[no-untyped-def]
    def mutate(root: Path) -> None:
        with (root / name).open("a", encoding="utf-8") as f:
            f.write(text)
    return mutate


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_append("Lot.csv", "LOT-N,n,MES,SITE-LYON,1,kg,lost,,\n"), [("Lot.csv", 5, "status")]),
        (_append("Shift.csv", "SHIFT-X,x,MES,SITE-LYON,2026-03-03T06:00:00,2026-03-03T14:00:00+01:00\n"),
         [("Shift.csv", 4, "start")]),
        (_append("Person.csv", "P-ANNA,Anna again,MES,SITE-LYON,operator,\n"), [("Person.csv", 4, "id")]),
        (_append("HOLDS.csv", "HOLD-88,LOT-GHOST\n"), [("HOLDS.csv", 3, "dst")]),
        (_append("HOLDS.csv", "HOLD-88,WO-1001\n"), [("HOLDS.csv", 3, "dst")]),
        # open-ended from February: overlaps v1 (ends in March) and v2 (starts in March)
        (_append("SOPVersion.jsonl", '{"id": "SOP-MIX-v3", "version": "3", "effective_from": '
                 '"2026-02-01T00:00:00+01:00", "text": "t"}\n'),
         [("SOPVersion.jsonl", 3, "effective_from"), ("SOPVersion.jsonl", 2, "effective_from")]),
        (lambda root: (root / "Widgets.csv").write_text("id\nW-1\n"), [("Widgets.csv", 0, "-")]),
        # deleting P-LUC contradicts its own row and both relations that still use it
        (lambda root: (root / "_deleted_nodes.csv").write_text("id\nP-LUC\n"),
         [("Person.csv", 3, "id"), ("OPERATED_BY.csv", 2, "dst"), ("WORKS_AT.csv", 3, "src")]),
    ],
    ids=["enum", "naive-time", "duplicate-id", "missing-endpoint", "wrong-range", "sop-overlap",
         "unknown-file", "deleted-endpoint"],
)
def test_each_error_kind_is_located_and_leaves_a_loaded_store_unchanged(
    tmp_path: Path, store: GraphStore, mutate: Callable[[Path], None], where: list[tuple[str, int, str]]
) -> None:
    load_bundle(store, EXAMPLE)
    before_counts, before = store.counts(), _snapshot(store)
    root = copy_example(tmp_path / "b")
    # the bundle also changes an existing entity, so a partial write would show
    (root / "Lot.csv").write_text((root / "Lot.csv").read_text().replace("120,l,on_hold", "120,l,scrapped"))
    if where[0][0] == "SOPVersion.jsonl":
        with (root / "VERSION_OF.csv").open("a") as f:
            f.write("SOP-MIX-v3,SOP-MIX\n")
    mutate(root)
    with pytest.raises(BundleValidationError) as info:
        load_bundle(store, root)
    assert [(e.file, e.line, e.column) for e in info.value.errors] == where
    # validation alone (which builds no records) finds exactly the same errors, worded the same
    assert [str(e) for e in validate_bundle(root, store).errors] == [str(e) for e in info.value.errors]
    assert store.counts() == before_counts
    assert _snapshot(store) == before


def test_the_cyclic_collector_is_paused_during_a_load_and_back_on_after(tmp_path: Path, store: GraphStore) -> None:
    import gc

    assert gc.isenabled()
    during: list[bool] = []
    load_bundle(store, EXAMPLE, progress=lambda done, total: during.append(gc.isenabled()))
    assert during and not any(during)
    assert gc.isenabled()
    broken = write_bundle(tmp_path / "bad", {"Lot.csv": "id,quantity\nLOT-X,-1\n"})
    with pytest.raises(BundleValidationError):
        load_bundle(store, broken)
    assert gc.isenabled()
    assert not validate_bundle(broken).valid and gc.isenabled()
    gc.disable()  # a caller that keeps it off keeps it off
    try:
        validate_bundle(EXAMPLE)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_bulk_row_path_writes_what_the_record_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load writes plain rows (``upsert_node_rows``/``upsert_edge_rows``); with those routed
    through the record form (what the interface's defaults do) the store's tables are identical."""
    import sqlite3

    from graph_loader.generator import generate, named_spec
    from store.base import WriteTransaction
    from store.embedded import DB_FILE, _EmbeddedTransaction

    bundle = tmp_path / "plant"
    generate(named_spec("tiny"), 7, bundle)

    def tables(path: Path) -> list[list[tuple[object, ...]]]:
        conn = sqlite3.connect(path / DB_FILE)
        try:
            return [conn.execute(q).fetchall() for q in (
                "SELECT * FROM nodes ORDER BY nid", "SELECT * FROM edges ORDER BY eid",
                "SELECT * FROM node_counts ORDER BY cls", "SELECT * FROM edge_counts ORDER BY rel")]
        finally:
            conn.close()

    with open_store("embedded", tmp_path / "rows") as a:
        load_bundle(a, bundle)
    with monkeypatch.context() as m:
        m.setattr(_EmbeddedTransaction, "upsert_node_rows", WriteTransaction.upsert_node_rows)
        m.setattr(_EmbeddedTransaction, "upsert_edge_rows", WriteTransaction.upsert_edge_rows)
        with open_store("embedded", tmp_path / "records") as b:
            load_bundle(b, bundle)
    rows, records = tables(tmp_path / "rows"), tables(tmp_path / "records")
    assert rows == records
    assert len(rows[0]) > 1000 and len(rows[1]) > 3000


def test_checked_rows_replayed_into_a_store_equal_a_load(tmp_path: Path) -> None:
    """``check_bundle_into`` hands a sink exactly what a load writes: replayed into an empty
    store they give the store ``load_bundle`` gives. A broken bundle raises as a load does (what the
    sink got before the error is to be dropped, as the load rolls back)."""
    from graph_loader.loader import check_bundle_into
    from graph_loader.pipeline import TxSink

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, tuple[object, ...]]] = []

        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *args: self.calls.append((name, args))

    loaded, replayed = open_store("embedded", tmp_path / "a"), open_store("embedded", tmp_path / "b")
    try:
        report = load_bundle(loaded, EXAMPLE)
        recorder = Recorder()
        checked = check_bundle_into(EXAMPLE, recorder, replayed.column_preparer())  # type: ignore[arg-type]
        assert (checked.nodes, checked.edges) == (report.nodes, report.edges)
        writes = [(name, args) for name, args in recorder.calls if name != "progress"]
        assert writes
        with replayed.bulk_transaction() as tx:
            sink = TxSink(tx)
            for name, args in writes:
                getattr(sink, name)(*args)
        assert _snapshot(replayed) == _snapshot(loaded)
        assert replayed.counts() == loaded.counts()
    finally:
        loaded.close()
        replayed.close()

    broken = copy_example(tmp_path / "broken")
    with (broken / "WORKS_AT.csv").open("a") as f:  # the last relation file read
        f.write("P-ANNA,SITE-NOWHERE\n")
    with pytest.raises(BundleValidationError) as info:
        check_bundle_into(broken, Recorder())
    assert "WORKS_AT.csv:4:dst" in str(info.value) and "SITE-NOWHERE" in str(info.value)
