"""``top_neighbours`` (the greatest-id far nodes of many nodes) equals sorting every neighbour's
id in Python, on both backends (the embedded store compares ids as bytes on its topology index),
with classes, as_of, deletions, writes committed after the index was read and open transactions."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from store import topk
from store.base import Direction, EdgeRecord, GraphStore, NodeRecord
from tests.graphs import build_graph, ts

T0, T1, T2 = ts("2026-01-01T00:00Z"), ts("2026-02-01T00:00Z"), ts("2026-03-01T00:00Z")
# ids whose string order differs from their length and insertion order, some not ASCII
ORDER_IDS = ["MO-9", "MO-10", "MO-0000024", "MO-100", "MO-1", "MO-Ä1", "MO-Z", "mo-2", "MO-", "MO-ÿ", "MO-€"]


def _graph(store: GraphStore) -> None:
    nodes: list[Any] = [("M1", "Material"), ("M2", "Material"), ("M3", "Material"), ("LOT-99", "Lot")]
    edges: list[Any] = []
    for i, oid in enumerate(ORDER_IDS):
        common = {"valid_from": T1} if i % 4 == 1 else {}
        nodes.append((oid, "ProductionOrder", {}, common))
        edges.append((oid, "FOR_MATERIAL", "M1", {}, {"valid_to": T2} if i % 5 == 2 else {}))
        if i % 2:
            edges.append((oid, "FOR_MATERIAL", "M2"))
    edges += [("LOT-99", "FOR_MATERIAL", "M1"), ("M1", "FOR_MATERIAL", "M3"), ("M3", "FOR_MATERIAL", "M1")]
    build_graph(store, nodes, edges)


def _expected(store: GraphStore, ids: list[str], d: Direction, k: int, **kw: Any) -> dict[str, list[str]]:
    links = store.neighbour_links(ids, ["FOR_MATERIAL"], d, kw.get("as_of"), kw.get("classes"))
    return {n: sorted({x.far for x in ls}, reverse=True)[:k] for n, ls in links.items()}


def _assert_same(store: GraphStore) -> None:
    ids = ["M1", "M2", "M3", "NOPE", "MO-10"]
    for d in (Direction.IN, Direction.OUT, Direction.BOTH):
        for k in (0, 1, 3, 50):
            for kw in ({}, {"classes": ["ProductionOrder"]}, {"as_of": T0}, {"as_of": T2},
                       {"classes": ["Lot", "Material"], "as_of": T1}):
                got = store.top_neighbours(ids, "FOR_MATERIAL", d, k, **kw)
                assert got == _expected(store, ids, d, k, **kw), (d, k, kw)


def test_top_equals_a_full_sort(store: GraphStore) -> None:
    _graph(store)
    _assert_same(store)
    got = store.top_neighbours(["M1"], "FOR_MATERIAL", Direction.IN, 4, classes=["ProductionOrder"])
    assert got == {"M1": ["mo-2", "MO-€", "MO-ÿ", "MO-Ä1"]}  # hand-known: by code point, greatest first
    assert store.top_neighbours(["M2"], "FOR_MATERIAL", Direction.IN, 2) == {"M2": ["mo-2", "MO-ÿ"]}


def test_top_follows_writes(store: GraphStore) -> None:
    _graph(store)
    _assert_same(store)  # reads the index
    with store.transaction() as tx:
        tx.upsert_nodes([NodeRecord("mo-zz", "ProductionOrder")])
        tx.upsert_edges([EdgeRecord("mo-zz", "FOR_MATERIAL", "M1")])
        tx.delete_nodes(["mo-2"])
        tx.delete_edges([("MO-Z", "FOR_MATERIAL", "M1")])
        inside = store.top_neighbours(["M1"], "FOR_MATERIAL", Direction.IN, 2, classes=["ProductionOrder"])
        assert inside == {"M1": ["mo-zz", "MO-€"]}
    assert store.top_neighbours(["M1"], "FOR_MATERIAL", Direction.IN, 2, classes=["ProductionOrder"]) == \
        {"M1": ["mo-zz", "MO-€"]}
    _assert_same(store)


def test_top_per_group_on_generated_ids() -> None:
    rng = random.Random(7)
    n = 400
    group = np.array([rng.randrange(6) for _ in range(n)], dtype=np.int64)
    member = np.array([rng.randrange(150) for _ in range(n)], dtype=np.int64)
    names = {m: "".join(rng.choice("AZaz09-_é") for _ in range(rng.randrange(1, 9))) + f"#{m}" for m in range(150)}
    keys = np.array([names[m].encode() for m in member.tolist()])
    for k in (1, 5, 200):
        got = {g: v.tolist() for g, v in topk.top_per_group(group, member, keys, k).items()}
        want: dict[int, list[int]] = {}
        for g in sorted(set(group.tolist())):
            ms = {m for gg, m in zip(group.tolist(), member.tolist(), strict=True) if gg == g}
            want[g] = sorted(ms, key=lambda m: names[m], reverse=True)[:k]
        assert got == want


@pytest.mark.parametrize("bad", ["A\x00B"])
def test_ids_with_nul_bytes_fall_back(store: GraphStore, bad: str) -> None:
    build_graph(store, [("M1", "Material"), (bad, "ProductionOrder"), ("A", "ProductionOrder")],
                [(bad, "FOR_MATERIAL", "M1"), ("A", "FOR_MATERIAL", "M1")])
    assert store.top_neighbours(["M1"], "FOR_MATERIAL", Direction.IN, 1) == {"M1": [bad]}


def test_valid_top_equals_checking_everything() -> None:
    rng = random.Random(3)
    for _ in range(30):
        n = rng.randrange(0, 300)
        group = np.array([rng.randrange(8) for _ in range(n)], dtype=np.int64)
        member = np.arange(n, dtype=np.int64)  # once per group, as one relation in one direction gives
        keys = np.array([f"{rng.randrange(10_000):05d}#{i}".encode() for i in range(n)], dtype="S16")
        ok = np.array([rng.random() < rng.choice([0.05, 0.5, 0.95]) for _ in range(n)], dtype=bool)
        asked: list[int] = []

        def check(at: np.ndarray, asked: list[int] = asked, ok: np.ndarray = ok) -> np.ndarray:
            asked.extend(at.tolist())
            return ok[at]

        for k in (1, 2, 5, 40):
            asked.clear()
            keep = topk.valid_top(group, keys, k, check)
            assert len(set(asked)) == len(asked)  # each entry asked once
            got = {g: v.tolist() for g, v in topk.top_per_group(group[keep], member[keep], keys[keep], k).items()}
            want = {g: v.tolist() for g, v in topk.top_per_group(group[ok], member[ok], keys[ok], k).items()}
            assert got == want, (n, k)
