"""The topology index refreshed after a bulk commit from the rows the transaction kept
(``adjacency.Written``) equals the one read back from SQLite, and the record steps aside
whenever it cannot vouch for every row (updates, deletions, another writer)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import store.adjacency as adjacency
import store.embedded as embedded_module
from store.base import EdgeRecord, NodeRecord
from store.embedded import EmbeddedStore

RELS = ["A", "B", "C"]
CLASSES = ["Lot", "ProductionOrder", "Machine"]


def _graph(
    rng: random.Random, prefix: str, n: int, m: int, old: list[str]
) -> tuple[list[NodeRecord], list[EdgeRecord]]:
    """New nodes, and new edges from them to any node (so no edge of an earlier step recurs)."""
    nodes = [NodeRecord(id=f"{prefix}{i:03d}", cls=rng.choice(CLASSES)) for i in range(n)]
    new = [x.id for x in nodes]
    edges: dict[tuple[str, str, str], EdgeRecord] = {}
    for _ in range(m):
        e = EdgeRecord(src=rng.choice(new), rel=rng.choice(RELS), dst=rng.choice(new + old))
        edges[e.key] = e
    return nodes, list(edges.values())


def _write(store: EmbeddedStore, nodes: list[NodeRecord], edges: list[EdgeRecord], bulk_rows: bool,
           delete: list[str] | None = None) -> None:
    with store.transaction() as tx:
        if bulk_rows:  # the bundle loader's path: one relation per call
            for cls in sorted({x.cls for x in nodes}):
                tx.upsert_node_rows(cls, [(x.id, None, None, "t", None, None, {}) for x in nodes if x.cls == cls])
            for rel in RELS:
                tx.upsert_edge_rows(rel, [(e.src, e.dst, "t", None, None, {}) for e in edges if e.rel == rel])
        else:
            tx.upsert_nodes(nodes)
            tx.upsert_edges(edges)
        if delete:
            tx.delete_nodes(delete)


def _arrays(adj: adjacency.Adjacency) -> dict[str, Any]:
    m = adj.merged()
    return {
        "marks": (m.store_id, m.generation, m.edge_mark, m.node_mark), "rels": m.rel_names, "cls": m.cls_names,
        **{f"{side}.{f}": getattr(getattr(m, side), f).tolist() for side in ("out", "inc")
           for f in ("ptr", "nbr", "rel", "eid")},
        "dead": m.dead.tolist(), "cls_code": m.cls_code.tolist(), "ids": m.ids_blob, "off": m.ids_off.tolist(),
    }


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bulk commits refresh the index at once; counts the reads of added rows from SQLite."""
    monkeypatch.setattr(embedded_module, "INDEX_AT", 1)
    calls: list[int] = []
    real = adjacency._read_edges

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(adjacency, "_read_edges", counted)
    yield calls


def _run(tmp: Path, steps: list[dict[str, Any]], keep: bool) -> dict[str, Any]:
    """Apply the writes to a new store; ``keep=False`` disables the kept rows (the old way)."""
    rng = random.Random(5)
    ids: list[str] = []
    s = EmbeddedStore(tmp)
    with s:
        for i, step in enumerate(steps):
            nodes, edges = _graph(rng, f"s{i}-", step["n"], step["m"], ids)
            _write(s, nodes, edges, step.get("rows", True), step.get("delete"))
            ids += [x.id for x in nodes]
        assert s._adj is not None
        return _arrays(s._adj)


STEPS = [
    pytest.param([{"n": 40, "m": 120}], 0, id="first-load"),
    pytest.param([{"n": 40, "m": 120}, {"n": 15, "m": 60}], 0, id="second-load-on-top"),
    pytest.param([{"n": 40, "m": 120, "rows": False}], 0, id="record-path"),
    pytest.param([{"n": 40, "m": 120}, {"n": 5, "m": 30, "delete": ["s0-001"]}], 1, id="deletion-reads-back"),
]


@pytest.mark.parametrize(("steps", "expected_reads"), STEPS)
def test_the_index_from_kept_rows_equals_the_one_read_back(
    tmp_path: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch, steps: list[dict[str, Any]],
    expected_reads: int,
) -> None:
    kept = _run(tmp_path / "kept", steps, keep=True)
    assert len(reads) == expected_reads  # the kept rows served every refresh they could
    monkeypatch.setattr(adjacency.Written, "rows_since", lambda *a, **k: None)
    read_back = _run(tmp_path / "read", steps, keep=False)
    assert len(reads) > expected_reads
    kept.pop("marks"), read_back.pop("marks")  # store ids differ
    assert kept == read_back
    assert len(kept["out.eid"]) > 100


def test_an_update_in_a_batch_makes_the_refresh_read_back(tmp_path: Path, reads: list[int]) -> None:
    s = EmbeddedStore(tmp_path / "s")
    with s:
        _write(s, [NodeRecord("X", "Lot"), NodeRecord("Y", "Lot")], [EdgeRecord("X", "A", "Y")], True)
        n = len(reads)
        _write(s, [], [EdgeRecord("X", "A", "Y", props={"q": 1}), EdgeRecord("Y", "A", "X")], True)
        assert len(reads) == n + 1  # one row was an update (it even used up a rowid): read back
        assert s._adj is not None
        conn = s._read()
        assert _arrays(s._adj) == _arrays(adjacency.build(conn))


def test_kept_rows_answer_only_for_exactly_the_rows_they_hold() -> None:
    w = adjacency.Written(edge_after=10, node_after=4)
    w.add_nodes(np.array([5, 6]), ["a", "b"], ["Lot", "Machine"])
    w.add_edges(11, np.array([5, 6]), np.array([6, 5]), "R")
    names: list[str] = []
    cls: list[str] = []
    assert w.rows_since(10, 4, 12, 6, names, cls) is not None
    assert w.rows_since(0, 4, 12, 6, [], []) is None  # asked from another mark
    assert w.rows_since(10, 4, 13, 6, [], []) is None  # the database holds a row it did not keep
    w.add_edges(14, np.array([5]), np.array([5]), "R")  # a gap in the rowids
    assert w.rows_since(10, 4, 14, 6, [], []) is None


def test_a_first_load_takes_the_index_built_beside_its_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[int]) -> None:
    built: list[int] = []
    real = adjacency.build

    def counted(*args: Any, **kwargs: Any) -> adjacency.Adjacency:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(adjacency, "build", counted)
    ahead = _run(tmp_path / "ahead", [{"n": 40, "m": 120}], keep=True)
    assert built == [] and reads == []  # neither built after the commit nor read back
    monkeypatch.setattr(adjacency, "speculate", lambda *a, **k: None)
    after = _run(tmp_path / "after", [{"n": 40, "m": 120}], keep=True)
    assert built == [1]
    ahead.pop("marks"), after.pop("marks")
    assert ahead == after


def test_an_index_built_ahead_is_taken_only_when_it_is_current(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s")
    with s:
        _write(s, [NodeRecord("X", "Lot"), NodeRecord("Y", "Lot")], [EdgeRecord("X", "A", "Y")], True)
        conn = s._read()
        adj = adjacency.build(conn)
        assert adjacency.is_current(adj, conn)
        for stale in (dataclasses.replace(adj, generation=adj.generation - 1),
                      dataclasses.replace(adj, edge_mark=adj.edge_mark + 1),
                      dataclasses.replace(adj, rel_names=["A", "B"]),
                      dataclasses.replace(adj, store_id="another")):
            assert not adjacency.is_current(stale, conn)
