"""The many-start walk (store/multiwalk.py): on the embedded store's topology index and through
``neighbour_links`` it gives, per start, the sets a plain per-start breadth-first walk gives, on
random genealogy-shaped graphs with cycles, validity windows (as_of) and tight repeat bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from store.base import Direction, EdgeRecord, GraphStore, NodeRecord
from store.embedded import EmbeddedStore
from store.multiwalk import Hop, Reach, WalkStep, index_reach, links_reach, or_by, popcount, reach_many, spread

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALTS = [
    [WalkStep(("PRODUCED",), Direction.IN, frozenset({"ProductionOrder"}), "order"),
     WalkStep(("CONSUMED",), Direction.OUT, frozenset({"Lot"}), "lot")],
    [WalkStep(("DERIVED_FROM",), Direction.OUT, frozenset({"Lot"}), "lot")],
]
HOPS = [
    Hop("src", ("lot",), WalkStep(("SUPPLIED_BY", "FOR_MATERIAL"), Direction.OUT, frozenset({"Supplier", "Material"})),
        with_starts=True),
    Hop("ctx", ("order",), WalkStep(("RAN_ON", "FOR_MATERIAL"), Direction.OUT), only=frozenset({"M0", "MAT0"})),
]


def _window(rng: random.Random) -> tuple[datetime | None, datetime | None]:
    if rng.random() < 0.8:
        return None, None
    return T0 + timedelta(days=rng.randint(0, 5)), (T0 + timedelta(days=rng.randint(6, 12))
                                                   if rng.random() < 0.5 else None)


def _graph(store: GraphStore, seed: int) -> list[str]:
    rng = random.Random(seed)
    lots = [f"L{i:02d}" for i in range(70)]  # more than 64 starts: two words of bits
    orders = [f"O{i:02d}" for i in range(28)]
    nodes = [NodeRecord(x, "Lot", valid_from=w[0], valid_to=w[1]) for x in lots for w in [_window(rng)]]
    nodes += [NodeRecord(x, "ProductionOrder") for x in orders]
    nodes += [NodeRecord(f"S{i}", "Supplier") for i in range(3)] + [NodeRecord(f"MAT{i}", "Material") for i in range(3)]
    nodes += [NodeRecord(f"M{i}", "Machine") for i in range(3)]
    edges: dict[tuple[str, str, str], EdgeRecord] = {}

    def edge(src: str, rel: str, dst: str) -> None:
        vf, vt = _window(rng)
        edges[(src, rel, dst)] = EdgeRecord(src, rel, dst, valid_from=vf, valid_to=vt)

    for o in orders:
        for lot in rng.sample(lots, rng.randint(1, 3)):
            edge(o, "PRODUCED", lot)
        for lot in rng.sample(lots, rng.randint(0, 3)):
            edge(o, "CONSUMED", lot)  # cycles allowed
        edge(o, "RAN_ON", f"M{rng.randint(0, 2)}")
        edge(o, "FOR_MATERIAL", f"MAT{rng.randint(0, 2)}")
    for lot in lots:
        if rng.random() < 0.3:
            edge(lot, "DERIVED_FROM", rng.choice(lots))
        if rng.random() < 0.4:
            edge(lot, "SUPPLIED_BY", f"S{rng.randint(0, 2)}")
        edge(lot, "FOR_MATERIAL", f"MAT{rng.randint(0, 2)}")
        if rng.random() < 0.1:
            edge(lot, "PRODUCED", rng.choice(lots))  # a Lot where an order is expected: class filter
    with store.transaction() as tx:
        tx.upsert_nodes(nodes)
        tx.upsert_edges(list(edges.values()))
    return lots


def _naive(store: GraphStore, start: str, max_repeats: int, as_of: datetime | None
           ) -> tuple[bool, dict[str, set[str]]] | None:
    """Per-start BFS over (node, alt, step) states with step levels; None when the start is
    missing; the flag says complete (no repeat from a level d with d + 1 >= max_repeats)."""
    if store.get_node(start, as_of) is None:
        return None
    bound: dict[str, set[str]] = {}
    seen: set[tuple[str, int, int]] = set()
    frontier: list[tuple[str, int, int]] = [(start, -1, -1)]
    level, complete = 0, True
    while frontier:
        nxt: list[tuple[str, int, int]] = []
        for node, a, j in frontier:
            if a < 0 or j == len(ALTS[a]) - 1:
                if level + 1 >= max_repeats:
                    complete = False
                    continue
                moves = [(b, 0) for b in range(len(ALTS))]
            else:
                moves = [(a, j + 1)]
            for b, k in moves:
                st = ALTS[b][k]
                links = store.neighbour_links([node], list(st.rels), st.direction, as_of,
                                              classes=sorted(st.classes) if st.classes else None)[node]
                for lk in links:
                    if (lk.far, b, k) not in seen:
                        seen.add((lk.far, b, k))
                        nxt.append((lk.far, b, k))
                        if st.var:
                            bound.setdefault(st.var, set()).add(lk.far)
        frontier = nxt
        level += 1
    return complete, bound


def _sets(r: Reach, i: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for var, keys in r.keys.items():
        col = (r.bits[var][:, i // 64] >> np.uint64(i % 64)) & np.uint64(1)
        got = set(r.id_of(keys[col.astype(bool)].tolist()))
        if got:
            out[var] = got
    return out


def _hop_pairs(r: Reach, name: str) -> set[tuple[str, str]]:
    near, far = r.hops[name]
    return set(zip(r.id_of(near.tolist()), r.id_of(far.tolist()), strict=True))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("as_of", [None, T0 + timedelta(days=7)])
@pytest.mark.parametrize("max_repeats", [50, 3, 1])
def test_walk_equals_per_start_bfs(embedded: EmbeddedStore, seed: int, as_of: datetime | None,
                                   max_repeats: int) -> None:
    lots = _graph(embedded, seed)
    starts = [*lots, "NOPE", lots[0]]  # a missing start and a repeated one
    via_index = index_reach(embedded, starts, ALTS, max_repeats, as_of, HOPS)
    assert via_index is not None
    via_links = links_reach(embedded, starts, ALTS, max_repeats, as_of, HOPS)
    checked = 0
    for r in (via_index, via_links):
        for i, s in enumerate(starts):
            want = _naive(embedded, s, max_repeats, as_of)
            if want is None:
                assert not r.complete[i]
                continue
            assert bool(r.complete[i]) == want[0], (s, i)
            if want[0]:
                assert _sets(r, i) == want[1], (s, i)
                checked += bool(want[1])
    assert checked > (5 if max_repeats > 1 else -1)
    assert via_index.complete.sum() < len(starts) - 1 if max_repeats < 50 else via_index.complete.sum() > 60
    assert _hop_pairs(via_index, "src") == _hop_pairs(via_links, "src")
    assert _hop_pairs(via_index, "ctx") == _hop_pairs(via_links, "ctx")
    assert {far for _, far in _hop_pairs(via_index, "ctx")} <= {"M0", "MAT0"}
    # the src hop steps from every node bound to "lot" and from the starts
    near = {n for n, _ in _hop_pairs(via_index, "src")}
    reached = {x for i in range(len(starts)) for x in _sets(via_index, i).get("lot", set())} | set(lots)
    want_near = {n for n in reached
                 if embedded.neighbour_links([n], ["SUPPLIED_BY", "FOR_MATERIAL"], Direction.OUT, as_of,
                                             classes=["Supplier", "Material"])[n]}
    assert near == want_near


def test_reach_many_falls_back_inside_a_transaction(embedded: EmbeddedStore) -> None:
    lots = _graph(embedded, 4)
    outside = reach_many(embedded, lots, ALTS, 50)
    with embedded.transaction():
        assert index_reach(embedded, lots, ALTS, 50) is None
        inside = reach_many(embedded, lots, ALTS, 50)
    assert [_sets(inside, i) for i in range(len(lots))] == [_sets(outside, i) for i in range(len(lots))]


def test_bit_helpers() -> None:
    keys = np.array([5, 3, 5, 1], dtype=np.int64)
    bits = np.array([[1], [2], [4], [8]], dtype=np.uint64)
    k, b = or_by(keys, bits)
    assert k.tolist() == [1, 3, 5] and b[:, 0].tolist() == [8, 2, 5]
    fk, fb = spread(np.array([1, 3, 9], dtype=np.int64), np.array([7, 7, 8], dtype=np.int64), k, b)
    assert fk.tolist() == [7] and fb[:, 0].tolist() == [10]
    assert popcount(np.array([[0xFF, 1], [0, 0]], dtype=np.uint64)).tolist() == [9, 0]


def test_start_bits_with_repeated_and_missing_starts() -> None:
    starts = np.array([7, -1, 3, 7, *range(100, 170)], dtype=np.int64)  # 74 starts: two words
    r = Reach(n_starts=len(starts), start_keys=starts, complete=starts >= 0, keys={}, bits={}, hops={},
              key_of=lambda ids: {}, id_of=lambda ks: [], cls_of=lambda ks: [])
    got = r.start_bits(np.array([3, 7, 5, 169, 7], dtype=np.int64))
    want = np.zeros((5, 2), dtype=np.uint64)
    want[0, 0] = 1 << 2
    want[1, 0] = want[4, 0] = (1 << 0) | (1 << 3)
    want[3, 1] = np.uint64(1 << (73 - 64))
    assert (got == want).all()
