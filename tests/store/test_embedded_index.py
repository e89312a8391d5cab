"""The embedded store's topology index (store/adjacency.py) against its SQL walk, and its cache.

The SQL walk (used inside write transactions) and the index walk must give identical
traversals; random graphs with deletes and incremental writes exercise the overlay and the
tombstones. The cache file may be missing, unreadable, older or newer than the database.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from store.adjacency import CACHE_FILE
from store.base import Direction, EdgeRecord, NodeRecord, TraversalStep
from store.embedded import EmbeddedStore
from tests.graphs import build_graph, ts

RELS = ["A", "B", "C"]
CLASSES = ["Lot", "ProductionOrder", "Machine"]
TIMES = [ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z"), ts("2026-03-01T00:00:00Z")]


def random_graph(store: EmbeddedStore, rng: random.Random, n: int, m: int, prefix: str = "") -> None:
    nodes = []
    for i in range(n):
        vf = rng.choice([None, TIMES[0], TIMES[1]])
        vt = rng.choice([None, None, TIMES[2]])
        nodes.append(NodeRecord(id=f"{prefix}n{i:03d}", cls=rng.choice(CLASSES), valid_from=vf, valid_to=vt))
    ids = [x.id for x in nodes]
    edges = {}
    for _ in range(m):
        e = EdgeRecord(src=rng.choice(ids), rel=rng.choice(RELS), dst=rng.choice(ids),
                       props={"w": rng.randint(0, 9)}, valid_to=rng.choice([None, None, TIMES[1]]))
        edges[e.key] = e
    with store.transaction() as tx:
        tx.upsert_nodes(nodes)
        tx.upsert_edges(list(edges.values()))


def all_ids(store: EmbeddedStore) -> list[str]:
    return [n.id for n in store.find_nodes()]


def compare_walks(store: EmbeddedStore, rng: random.Random, rounds: int = 25) -> None:
    ids = all_ids(store)
    for _ in range(rounds):
        steps = [TraversalStep(r, rng.choice(list(Direction))) for r in rng.sample(RELS, rng.randint(1, 3))]
        kwargs = dict(
            starts=rng.sample(ids, rng.randint(1, 3)),
            steps=steps,
            max_depth=rng.randint(0, 5),
            as_of=rng.choice([None, None, TIMES[0], ts("2026-02-15T00:00:00Z")]),
            max_nodes=rng.choice([100_000, rng.randint(1, 30)]),
            through_classes=rng.choice([None, frozenset({"Lot", "Machine"})]),
        )
        fast = store.traverse(**kwargs)  # type: ignore[arg-type]
        slow = store._traverse_sql(**kwargs)  # type: ignore[arg-type]
        assert fast.truncated_reason == slow.truncated_reason, kwargs
        assert fast.hops == slow.hops, kwargs
        assert list(fast.hops) == list(slow.hops), kwargs
        # the same tree, the edges by their keys alone
        bare = store.traverse(**kwargs, edge_payloads=False)  # type: ignore[arg-type]
        assert bare.truncated_reason == fast.truncated_reason, kwargs
        assert [(h.node, h.depth, h.parent, h.edge and h.edge.key) for h in bare.hops.values()] == [
            (h.node, h.depth, h.parent, h.edge and h.edge.key) for h in fast.hops.values()], kwargs
        assert all(h.edge is None or h.edge.props == {} for h in bare.hops.values())


def test_a_commit_during_a_bare_walk_sends_it_to_the_payload_path(
        embedded: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without payloads the walk trusts the index only when no commit landed meanwhile."""
    import dataclasses

    build_graph(embedded, [("a", "Lot"), ("b", "Lot")], [("a", "A", "b", {"w": 1})])
    steps = [TraversalStep("A", Direction.OUT)]
    assert embedded.traverse(["a"], steps, 2, edge_payloads=False).hops["b"].edge == EdgeRecord("a", "A", "b")
    index = embedded._index

    def older(*args: object, **kwargs: object) -> object:  # as if a commit landed after the walk read it
        adj = index(*args, **kwargs)  # type: ignore[arg-type]
        return dataclasses.replace(adj, generation=adj.generation - 1)

    monkeypatch.setattr(embedded, "_index", older)
    edge = embedded.traverse(["a"], steps, 2, edge_payloads=False).hops["b"].edge
    assert edge is not None and edge.props == {"w": 1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_walk_equals_sql_walk(embedded: EmbeddedStore, seed: int) -> None:
    rng = random.Random(seed)
    random_graph(embedded, rng, 60, 180)
    compare_walks(embedded, rng)
    # incremental writes land in the overlay, deletes in the tombstones
    random_graph(embedded, rng, 20, 60, prefix="x")
    ids = all_ids(embedded)
    with embedded.transaction() as tx:
        tx.delete_nodes(rng.sample(ids, 8))
    ids = all_ids(embedded)
    some_edges = [e.key for i in rng.sample(ids, 10) for e in embedded.neighbours(i)]
    with embedded.transaction() as tx:
        tx.delete_edges(some_edges[:10])
        tx.upsert_edges([EdgeRecord(src=a, rel="A", dst=b) for a, b in zip(ids[:15], ids[15:30], strict=True)])
    compare_walks(embedded, rng)


def test_restart_uses_cache_and_deltas(store_path: Path) -> None:
    rng = random.Random(9)
    with EmbeddedStore(store_path) as s:
        random_graph(s, rng, 50, 150)
        s.build_index()
    assert (store_path / CACHE_FILE).exists()
    # writes by a process that never traverses: the cache file is now older than the database
    with EmbeddedStore(store_path) as s:
        random_graph(s, rng, 10, 40, prefix="late")
        with s.transaction() as tx:
            tx.delete_nodes(["n000", "n001", "n002"])
    with EmbeddedStore(store_path) as s:
        compare_walks(s, rng)
        assert s._adj is not None and len(s._adj.ov_eid) > 0  # brought forward, not rebuilt


def test_unreadable_cache_is_rebuilt(store_path: Path) -> None:
    rng = random.Random(4)
    with EmbeddedStore(store_path) as s:
        random_graph(s, rng, 40, 120)
        s.build_index()
    (store_path / CACHE_FILE).write_bytes(b"garbage")
    with EmbeddedStore(store_path) as s:
        compare_walks(s, rng, rounds=10)
    with np.load(store_path / CACHE_FILE) as z:  # rewritten as a valid file
        assert "out_ptr" in z.files


def test_cache_newer_than_database_is_rebuilt(store_path: Path) -> None:
    """E.g. the database was restored from a backup while the cache file stayed."""
    with EmbeddedStore(store_path) as s:
        build_graph(s, [("A", "Lot"), ("B", "Lot")], [("A", "REL", "B")])
        s.build_index()
    cache = store_path / CACHE_FILE
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["stamp"] = arrays["stamp"].copy()
    arrays["stamp"][1] = 999  # generation far ahead of the database
    arrays["out_ptr"] = np.zeros_like(arrays["out_ptr"])  # and a topology that lies
    arrays["in_ptr"] = np.zeros_like(arrays["in_ptr"])
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    with EmbeddedStore(store_path) as s:
        assert set(s.traverse(["A"], [TraversalStep("REL")], 2).hops) == {"A", "B"}
        assert s._adj is not None and s._adj.generation == s.generation


def test_traversal_inside_transaction_sees_own_writes(embedded: EmbeddedStore) -> None:
    build_graph(embedded, [("A", "Lot")])
    embedded.build_index()
    with embedded.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        tx.upsert_edges([EdgeRecord(src="A", rel="REL", dst="B")])
        assert set(embedded.traverse(["A"], [TraversalStep("REL")], 2).hops) == {"A", "B"}
    assert set(embedded.traverse(["A"], [TraversalStep("REL")], 2).hops) == {"A", "B"}


def test_index_build_copes_with_relations_missing_from_counts(store_path: Path) -> None:
    import sqlite3

    with EmbeddedStore(store_path) as s:
        build_graph(s, [("A", "Lot"), ("B", "Lot"), ("C", "Lot")], [("A", "R1", "B"), ("B", "R2", "C")])
    conn = sqlite3.connect(store_path / "graph.sqlite")
    conn.execute("DELETE FROM edge_counts WHERE rel = 'R2'")
    conn.commit()
    conn.close()
    with EmbeddedStore(store_path) as s:
        tr = s.traverse(["A"], [TraversalStep("R1"), TraversalStep("R2")], 5)
        assert {h: tr.hops[h].depth for h in tr.hops} == {"A": 0, "B": 1, "C": 2}


def test_bulk_commit_refreshes_the_cache(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.embedded as embedded_module

    monkeypatch.setattr(embedded_module, "INDEX_AT", 10)
    with EmbeddedStore(store_path) as s:
        build_graph(s, [(f"N{i}", "Lot") for i in range(30)], [(f"N{i}", "R", f"N{i + 1}") for i in range(29)])
        assert (store_path / CACHE_FILE).exists()  # written at commit, before any traversal
        with s.transaction() as tx, pytest.raises(Exception, match="inside a write transaction"):
            s.build_index()
            tx.upsert_nodes([])
    with EmbeddedStore(store_path) as s:
        assert len(s.traverse(["N0"], [TraversalStep("R")], 40).hops) == 30
        assert s._adj is not None and len(s._adj.ov_eid) == 0  # mapped from the cache, nothing to add


def test_cache_without_database_is_ignored(store_path: Path) -> None:
    """The database file was removed but the cache stayed: a new, empty store, not the old graph."""
    with EmbeddedStore(store_path) as s:
        build_graph(s, [("A", "Lot"), ("B", "Lot")], [("A", "REL", "B")])
        s.build_index()
    for f in store_path.iterdir():
        if f.name.startswith("graph.sqlite"):
            f.unlink()
    with EmbeddedStore(store_path) as s:
        assert s.counts().nodes == 0
        build_graph(s, [("A", "Lot"), ("C", "Lot")], [("A", "REL", "C")])
        assert set(s.traverse(["A"], [TraversalStep("REL")], 2).hops) == {"A", "C"}
