"""Durability of the embedded store: what a restarted or killed process leaves on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from contextlib import suppress
from pathlib import Path

import pytest

from store.base import Direction, EdgeRecord, IntegrityError, NodeRecord, StoreError, TraversalStep
from store.embedded import EmbeddedStore
from tests.graphs import build_graph, ts

ROOT = Path(__file__).resolve().parents[2]


def snapshot(store: EmbeddedStore) -> tuple[object, ...]:
    c = store.counts()
    nodes = list(store.find_nodes())
    edges = [e for n in nodes for e in store.neighbours(n.id, direction=Direction.OUT)]
    return (c.nodes_by_class, c.edges_by_relation, nodes, edges)


def load_base(path: Path) -> tuple[object, ...]:
    with EmbeddedStore(path) as s:
        build_graph(
            s,
            nodes=[(f"L{i}", "Lot", {"q": i}, {"valid_from": ts("2026-01-01T00:00:00+01:00")}) for i in range(50)]
            + [("PO", "ProductionOrder", {"status": "completed"})],
            edges=[("PO", "CONSUMED", f"L{i}", {"quantity": float(i + 1)}) for i in range(50)],
        )
        return snapshot(s)


def test_reopen_sees_identical_counts_and_records(store_path: Path) -> None:
    before = load_base(store_path)
    with EmbeddedStore(store_path) as again:
        assert snapshot(again) == before
        assert again.counts().nodes == 51 and again.counts().edges == 50
        got = again.get_node("L7")
        assert got is not None and got.valid_from == ts("2026-01-01T00:00:00+01:00")
        assert got.valid_from is not None and got.valid_from.utcoffset() == ts("2026-01-01T00:00:00+01:00").utcoffset()


CHILD = textwrap.dedent(
    """
    import sys, time
    from store.base import NodeRecord, EdgeRecord
    from store.embedded import EmbeddedStore
    path, n = sys.argv[1], int(sys.argv[2])
    s = EmbeddedStore(path, cache_mb=1)  # a tiny page cache makes SQLite spill the open transaction to disk
    with s.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="COMMITTED", cls="Lot")])
    with s.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id=f"K{i}", cls="Lot", props={"pad": "x" * 200}) for i in range(n)])
        tx.upsert_edges([EdgeRecord(src=f"K{i}", rel="DERIVED_FROM", dst=f"K{i+1}") for i in range(n - 1)])
        tx.upsert_nodes([NodeRecord(id="L1", cls="Lot", props={"overwritten": True})])
        tx.delete_nodes(["PO"])
        print("READY", flush=True)
        time.sleep(600)
    """
)


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def start_writer(code: str, store_path: Path) -> subprocess.Popen[str]:
    """A child process running ``code`` on the store, once it says READY (mid-transaction)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(store_path), "30000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise AssertionError(proc.stderr.read() if proc.stderr else line)
    return proc


def test_sigkill_midway_leaves_previous_state(store_path: Path) -> None:
    before = load_base(store_path)
    proc = start_writer(CHILD, store_path)
    try:
        wal = store_path / "graph.sqlite-wal"
        assert wal.exists() and wal.stat().st_size > 1_000_000  # the open transaction did reach the disk
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with EmbeddedStore(store_path) as s:
        assert s.get_node("K0") is None and s.get_node("PO") is not None
        committed = s.get_node("COMMITTED")
        assert committed is not None  # the child's first, committed transaction survived the kill
        with s.transaction() as tx:
            tx.delete_nodes(["COMMITTED"])
        assert snapshot(s) == before
        # and the store takes writes again
        build_graph(s, [("NEW", "Lot")], [("PO", "CONSUMED", "NEW")])
        assert s.counts().nodes == 52


def test_swallowed_write_error_still_rolls_back(embedded: EmbeddedStore) -> None:
    build_graph(embedded, [("A", "Lot")])
    with pytest.raises(IntegrityError), embedded.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        with suppress(IntegrityError):  # a careless caller; the commit must still be refused
            tx.upsert_edges([EdgeRecord(src="B", rel="DERIVED_FROM", dst="MISSING")])
        with pytest.raises(StoreError, match="already failed"):
            tx.upsert_nodes([NodeRecord(id="C", cls="Lot")])
    assert embedded.get_node("B") is None and embedded.counts().nodes == 1


def test_generation_counts_commits_only(embedded: EmbeddedStore) -> None:
    g0 = embedded.generation
    build_graph(embedded, [("A", "Lot")])
    assert embedded.generation == g0 + 1
    with pytest.raises(RuntimeError), embedded.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        raise RuntimeError("abort")
    assert embedded.generation == g0 + 1


def test_second_store_object_sees_commits(store_path: Path) -> None:
    """Two handles (as in two processes: loader and API) share the file; nothing is cached."""
    with EmbeddedStore(store_path) as writer, EmbeddedStore(store_path) as reader:
        build_graph(writer, [("A", "Lot"), ("B", "Lot")], [("A", "DERIVED_FROM", "B")])
        assert set(reader.traverse(["A"], [TraversalStep("DERIVED_FROM")], 3).hops) == {"A", "B"}
        build_graph(writer, [("C", "Lot")], [("B", "DERIVED_FROM", "C")])
        assert set(reader.traverse(["A"], [TraversalStep("DERIVED_FROM")], 3).hops) == {"A", "B", "C"}
        with writer.transaction() as tx:
            tx.delete_nodes(["B"])
        assert set(reader.traverse(["A"], [TraversalStep("DERIVED_FROM")], 3).hops) == {"A"}
        assert reader.counts().nodes_by_class == {"Lot": 2}


def test_readers_see_only_committed_data(embedded: EmbeddedStore) -> None:
    build_graph(embedded, [("A", "Lot")])
    seen: dict[str, object] = {}
    with embedded.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        assert embedded.get_node("B") is not None  # the writing thread sees its own writes

        def other_thread() -> None:
            seen["B"] = embedded.get_node("B")
            seen["count"] = embedded.counts().nodes

        th = threading.Thread(target=other_thread)
        th.start()
        th.join(timeout=30)
    assert seen == {"B": None, "count": 1}
    assert embedded.counts().nodes == 2


def test_nested_transaction_is_refused(embedded: EmbeddedStore) -> None:
    with pytest.raises(StoreError, match="nested"), embedded.transaction(), embedded.transaction():
        pass


def test_closed_store_refuses_use(store_path: Path) -> None:
    s = EmbeddedStore(store_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.counts()


def _indexes(path: Path) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(path / "graph.sqlite")
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def test_bulk_load_defers_and_restores_indexes(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.embedded as embedded_module

    monkeypatch.setattr(embedded_module, "DEFER_AT", 20)
    nodes = [NodeRecord(id=f"N{i:03d}", cls="Lot" if i % 2 else "Machine") for i in range(100)]
    edges = [EdgeRecord(src=f"N{i:03d}", rel="DERIVED_FROM", dst=f"N{(i * 7) % 100:03d}") for i in range(100)]
    with EmbeddedStore(store_path) as s:
        with pytest.raises(RuntimeError), s.transaction() as tx:
            tx.upsert_nodes(nodes)
            tx.upsert_edges(edges)
            raise RuntimeError("abort the bulk load")
        assert {"nodes_by_class", "edges_in"} <= _indexes(store_path)
        assert s.counts().nodes == 0
        with s.transaction() as tx:
            tx.upsert_nodes(nodes)
            tx.upsert_edges(edges)
        assert {"nodes_by_class", "edges_in"} <= _indexes(store_path)
        for target in ("N007", "N014", "N000"):
            expected = sorted(e.src for e in edges if e.dst == target)
            assert [e.src for e in s.neighbours(target, direction=Direction.IN)] == expected
        assert [n.id for n in s.find_nodes(cls="Machine", limit=3)] == ["N000", "N002", "N004"]
        assert s.counts().nodes_by_class == {"Lot": 50, "Machine": 50}


# -- a bulk transaction into an empty store holds it alone (rollback journal, no WAL) -----------

def _journal_mode(path: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(path / "graph.sqlite")
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def test_bulk_transaction_into_an_empty_store_holds_it_alone(store_path: Path) -> None:
    with EmbeddedStore(store_path) as s:
        s.counts()  # this thread's own reader does not stand in the way
        with s.bulk_transaction() as tx:
            assert tx.sole
            tx.upsert_nodes([NodeRecord(id="A", cls="Lot"), NodeRecord(id="B", cls="Lot")])
            tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="B")])
            assert not (store_path / "graph.sqlite-wal").exists()
            assert s.get_node("A") is not None  # the writing thread sees its own writes
        assert _journal_mode(store_path) == "wal"  # back in WAL mode after the commit
        with EmbeddedStore(store_path) as other:  # and shared again
            assert other.counts().nodes == 2 and other.counts().edges == 1
            with s.transaction() as tx2:
                tx2.upsert_nodes([NodeRecord(id="C", cls="Lot")])
                assert other.counts().nodes == 2  # readers beside a write, as before
        assert s.counts().nodes == 3


def test_bulk_transaction_shares_a_store_with_data_or_other_handles(store_path: Path) -> None:
    with EmbeddedStore(store_path) as s:
        with EmbeddedStore(store_path) as other:
            other.counts()
            with s.bulk_transaction() as tx:  # empty, but another handle has it open
                assert not tx.sole
                tx.upsert_nodes([NodeRecord(id="A", cls="Lot")])
                assert other.counts().nodes == 0
        with s.bulk_transaction() as tx:  # alone now, but not empty
            assert not tx.sole
            tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        assert s.counts().nodes == 2 and _journal_mode(store_path) == "wal"


def test_failed_bulk_transaction_leaves_the_store_empty_and_shared(store_path: Path) -> None:
    with EmbeddedStore(store_path) as s:
        with pytest.raises(IntegrityError), s.bulk_transaction() as tx:
            assert tx.sole
            tx.upsert_nodes([NodeRecord(id="A", cls="Lot")])
            tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="MISSING")])
        assert s.counts().nodes == 0 and _journal_mode(store_path) == "wal"
        with s.bulk_transaction() as tx:  # and the next load may hold it alone again
            assert tx.sole
            tx.upsert_nodes([NodeRecord(id="A", cls="Lot")])
        assert s.get_node("A") is not None


SOLE_CHILD = textwrap.dedent(
    """
    import sys, time
    from store.base import NodeRecord, EdgeRecord
    from store.embedded import EmbeddedStore
    path, n = sys.argv[1], int(sys.argv[2])
    s = EmbeddedStore(path, cache_mb=1)  # a tiny page cache makes SQLite spill the open transaction to disk
    with s.bulk_transaction() as tx:
        assert tx.sole
        tx.upsert_nodes([NodeRecord(id=f"K{i}", cls="Lot", props={"pad": "x" * 200}) for i in range(n)])
        tx.upsert_edges([EdgeRecord(src=f"K{i}", rel="DERIVED_FROM", dst=f"K{i+1}") for i in range(n - 1)])
        print("READY", flush=True)
        time.sleep(600)
    """
)

WAITING_CHILD = textwrap.dedent(
    """
    import sys
    import store.embedded as E
    from store.base import StoreUnavailableError
    E.BUSY_MS = 300
    try:
        E.EmbeddedStore(sys.argv[1])
    except StoreUnavailableError as exc:
        print(exc)
    """
)


def test_sigkill_midway_through_a_sole_load_leaves_the_store_empty(store_path: Path) -> None:
    with EmbeddedStore(store_path) as s:  # an empty store, as a first load finds it
        assert s.counts().nodes == 0
    proc = start_writer(SOLE_CHILD, store_path)
    try:
        assert (store_path / "graph.sqlite").stat().st_size > 1_000_000  # pages reached the database file
        assert (store_path / "graph.sqlite-journal").exists()
        # another process that opens the store meanwhile waits, then is told why
        waited = subprocess.run([sys.executable, "-c", WAITING_CHILD, str(store_path)], capture_output=True,
                                text=True, env=ENV, cwd=ROOT, timeout=60)
        assert "holds it alone until it commits" in waited.stdout, waited.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with EmbeddedStore(store_path) as s:
        assert s.get_node("K0") is None and s.counts().nodes == 0 and s.counts().edges == 0
        assert _journal_mode(store_path) == "wal"
        build_graph(s, [("NEW", "Lot"), ("OLD", "Lot")], [("NEW", "DERIVED_FROM", "OLD")])
        assert s.counts().nodes == 2
