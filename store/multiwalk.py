"""Many starts walked at once, each with its own reached set: root cause compares hundreds of
lots' backward histories and only needs, per lot, which nodes it reaches.

A walk is a repeated choice among alternatives of plain steps (relations, direction, far-node
classes), the shape of the genealogy rules. The result keeps, per node and per step variable,
a bitset of the starts that reach it, so shared ancestry is walked once for all starts. On the
embedded store the walk runs over its in-memory topology arrays (:mod:`store.adjacency`), one
vectorised expansion per level; on any other store it loops over :meth:`neighbour_links`. Both
give the same sets (tested).

Bounded repeats: a start is left ``complete=False`` when its walk had a node to repeat from
at a step level ``d`` with ``d + 1 >= max_repeats``: a level counts steps, which is at least the
repeats along the path, so a complete start never came near the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from store.base import Direction, GraphStore

if TYPE_CHECKING:
    from store.embedded import EmbeddedStore

I64 = NDArray[np.int64]
Bits = NDArray[np.uint64]


@dataclass(frozen=True)
class WalkStep:
    """One plain step: relations, direction, the far node's classes (None: any) and the
    variable it binds (None: walked, not reported)."""

    rels: tuple[str, ...]
    direction: Direction
    classes: frozenset[str] | None = None
    var: str | None = None


@dataclass(frozen=True)
class Hop:
    """One step taken once from every node bound to ``from_vars`` (and the starts themselves
    with ``with_starts``); ``only`` keeps the edges to those far ids."""

    name: str
    from_vars: tuple[str, ...]
    step: WalkStep
    with_starts: bool = False
    only: frozenset[str] | None = None


@dataclass
class Reach:
    """Which starts reach which nodes. Nodes are integer keys local to this result (translate
    with :attr:`key_of` / :attr:`id_of`); start ``i`` is bit ``i % 64`` of word ``i // 64``."""

    n_starts: int
    start_keys: I64  # per start; -1 when it does not exist (as of the time asked)
    complete: NDArray[np.bool_]  # per start; False also when it does not exist
    keys: dict[str, I64]  # var -> node keys bound to it by some start
    bits: dict[str, Bits]  # var -> (len(keys[var]), words) starts binding each node
    hops: dict[str, tuple[I64, I64]]  # hop -> (near key, far key) per edge
    key_of: Callable[[Sequence[str]], dict[str, int]]
    id_of: Callable[[Sequence[int]], list[str]]
    cls_of: Callable[[I64], list[str]]

    @property
    def words(self) -> int:
        return words_for(self.n_starts)

    def bits_of(self, var: str, keys: I64) -> Bits:
        """Rows of ``var``'s bitsets for these node keys (zeros where none reaches them)."""
        have = self.keys.get(var)
        out = np.zeros((len(keys), self.words), dtype=np.uint64)
        if have is None or not len(have) or not len(keys):
            return out
        order = np.argsort(have, kind="stable")
        pos = np.searchsorted(have[order], keys)
        pos_c = np.minimum(pos, len(have) - 1)
        hit = have[order][pos_c] == keys
        out[hit] = self.bits[var][order[pos_c[hit]]]
        return out

    def start_bits(self, keys: I64) -> Bits:
        """Per node key, the bits of the starts that are that node."""
        out = np.zeros((len(keys), self.words), dtype=np.uint64)
        order = np.argsort(self.start_keys, kind="stable")
        sk = self.start_keys[order]
        lo, hi = np.searchsorted(sk, keys, "left"), np.searchsorted(sk, keys, "right")
        cnt = hi - lo  # starts holding each row's key (a start may be given twice)
        total = int(cnt.sum())
        if total:
            rows = np.repeat(np.arange(len(keys)), cnt)
            pos = np.repeat(lo, cnt) + np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            idx = order[pos]
            np.bitwise_or.at(out, (rows, idx // 64), np.left_shift(np.uint64(1), (idx % 64).astype(np.uint64)))
        return out


def words_for(n: int) -> int:
    return max(1, (n + 63) // 64)


def popcount(bits: Bits) -> NDArray[np.int64]:
    """Set bits per row."""
    if not bits.size:
        return np.zeros(len(bits), dtype=np.int64)
    return np.unpackbits(np.ascontiguousarray(bits).view(np.uint8), axis=1).sum(axis=1).astype(np.int64)


def or_by(keys: I64, bits: Bits) -> tuple[I64, Bits]:
    """Rows with equal keys OR-ed together; keys come back sorted and unique."""
    if not len(keys):
        return keys, bits
    order = np.argsort(keys, kind="stable")
    k, b = keys[order], bits[order]
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return k[first], np.bitwise_or.reduceat(b, first, axis=0)


def spread(near: I64, far: I64, near_keys: I64, near_bits: Bits) -> tuple[I64, Bits]:
    """Per far key, the OR of the bits of the near keys that have an edge to it."""
    if not len(near) or not len(near_keys):
        return np.empty(0, dtype=np.int64), np.zeros((0, near_bits.shape[1]), dtype=np.uint64)
    order = np.argsort(near_keys, kind="stable")
    pos = np.minimum(np.searchsorted(near_keys[order], near), len(near_keys) - 1)
    hit = near_keys[order][pos] == near
    return or_by(far[hit], near_bits[order[pos[hit]]])


#: (frontier node keys, step) -> (near key, far key) per live edge of the step
Expand = Callable[[I64, WalkStep], tuple[I64, I64]]


def walk(start_keys: I64, alternatives: Sequence[Sequence[WalkStep]], max_repeats: int,
         expand: Expand) -> tuple[NDArray[np.bool_], dict[str, I64], dict[str, Bits]]:
    """The level-by-level walk over node keys with per-start bitsets (see the module doc):
    complete flags, and per variable the node keys bound and their bitsets of starts."""
    n = len(start_keys)
    w = words_for(n)
    one = np.zeros((n, w), dtype=np.uint64)
    for i in range(n):
        one[i, i // 64] = np.uint64(1 << (i % 64))
    ok = start_keys >= 0
    bailed = np.zeros(w, dtype=np.uint64)
    # reached state per (alt, step): node key -> bits; the boundary is shared by final steps
    state: dict[tuple[int, int], tuple[I64, Bits]] = {}
    boundary_seen: tuple[I64, Bits] = (np.empty(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64))
    boundary = or_by(start_keys[ok], one[ok])
    inner: dict[tuple[int, int], tuple[I64, Bits]] = {}
    level = 0

    def arrive(pos: tuple[int, int], k: I64, b: Bits) -> tuple[I64, Bits]:
        k, b = or_by(k, b)
        old_k, old_b = state.get(pos, (np.empty(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64)))
        fresh, merged = _merge(old_k, old_b, k, b)
        state[pos] = merged
        return fresh

    def step_from(front: tuple[I64, Bits], st: WalkStep) -> tuple[I64, Bits]:
        keys, bits = front
        near, far = expand(keys, st)
        return spread(near, far, keys, bits)

    while len(boundary[0]) or inner:
        arrivals: dict[tuple[int, int], tuple[I64, Bits]] = {}
        if len(boundary[0]):
            if level + 1 >= max_repeats:
                bailed |= np.bitwise_or.reduce(boundary[1], axis=0)
            else:
                for a, alt in enumerate(alternatives):
                    arrivals[(a, 0)] = step_from(boundary, alt[0])
        for (a, j), front in inner.items():
            arrivals[(a, j + 1)] = step_from(front, alternatives[a][j + 1])
        level += 1
        finals_k: list[I64] = []
        finals_b: list[Bits] = []
        inner = {}
        for pos, (k, b) in arrivals.items():
            if bailed.any():
                b = b & ~bailed
            fk, fb = arrive(pos, k, b)
            if not len(fk):
                continue
            if pos[1] == len(alternatives[pos[0]]) - 1:
                finals_k.append(fk)
                finals_b.append(fb)
            else:
                inner[pos] = (fk, fb)
        if finals_k:
            bk, bb = or_by(np.concatenate(finals_k), np.concatenate(finals_b))
            boundary, boundary_seen = _merge(boundary_seen[0], boundary_seen[1], bk, bb)
        else:
            boundary = (np.empty(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64))
    unpacked = np.unpackbits(bailed.view(np.uint8), bitorder="little")[:n].astype(bool)
    complete = ok & ~unpacked
    keep = ~bailed
    by_var: dict[str, tuple[list[I64], list[Bits]]] = {}
    for (a, j), (k, b) in state.items():
        var = alternatives[a][j].var
        if var is not None:
            lists = by_var.setdefault(var, ([], []))
            lists[0].append(k)
            lists[1].append(b & keep)
    keys: dict[str, I64] = {}
    bits: dict[str, Bits] = {}
    for var, (ks, bs) in by_var.items():
        k, b = or_by(np.concatenate(ks), np.concatenate(bs))
        nz = b.any(axis=1)
        keys[var], bits[var] = k[nz], b[nz]
    return complete, keys, bits


def _hop_starts(hop: Hop, keys: dict[str, I64], start_keys: I64) -> I64:
    """The node keys a hop steps from."""
    parts = [keys[v] for v in hop.from_vars if v in keys]
    if hop.with_starts:
        parts.append(start_keys[start_keys >= 0])
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _merge(old_k: I64, old_b: Bits, k: I64, b: Bits) -> tuple[tuple[I64, Bits], tuple[I64, Bits]]:
    """(the bits of ``k`` not yet in the old state, the old state with them added); both inputs
    sorted unique by key."""
    if not len(old_k):
        nz = b.any(axis=1)
        return (k[nz], b[nz]), (k, b)
    pos = np.minimum(np.searchsorted(old_k, k), len(old_k) - 1)
    hit = old_k[pos] == k
    fresh = b.copy()
    fresh[hit] &= ~old_b[pos[hit]]
    nz = fresh.any(axis=1)
    merged_b = old_b.copy()
    merged_b[pos[hit]] |= b[hit]
    new_k = np.concatenate([old_k, k[~hit]])
    new_b = np.concatenate([merged_b, b[~hit]])
    order = np.argsort(new_k, kind="stable")
    return (k[nz], fresh[nz]), (new_k[order], new_b[order])


# -- stores -----------------------------------------------------------------------------------


def reach_many(store: GraphStore, starts: Sequence[str], alternatives: Sequence[Sequence[WalkStep]],
               max_repeats: int, as_of: datetime | None = None, hops: Sequence[Hop] = ()) -> Reach:
    """The walk from every start (see the module doc), on the embedded store's topology index
    when it can answer, else through :meth:`GraphStore.neighbour_links`."""
    from store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        got = index_reach(store, starts, alternatives, max_repeats, as_of, hops)
        if got is not None:
            return got
    return links_reach(store, starts, alternatives, max_repeats, as_of, hops)


@dataclass
class _Keys:
    """Integer keys for node ids (the generic path has no node ids of its own)."""

    of: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    cls: list[str] = field(default_factory=list)

    def key(self, node_id: str, cls: str) -> int:
        k = self.of.get(node_id)
        if k is None:
            k = self.of[node_id] = len(self.ids)
            self.ids.append(node_id)
            self.cls.append(cls)
        return k


def links_reach(store: GraphStore, starts: Sequence[str], alternatives: Sequence[Sequence[WalkStep]],
                max_repeats: int, as_of: datetime | None = None, hops: Sequence[Hop] = ()) -> Reach:
    """:func:`reach_many` on any store: the same walk, each expansion one ``neighbour_links``."""
    names = _Keys()
    found = store.get_nodes(list(dict.fromkeys(starts)), as_of)
    start_keys = np.array([names.key(s, found[s].cls) if s in found else -1 for s in starts], dtype=np.int64)

    def expand(keys: I64, st: WalkStep) -> tuple[I64, I64]:
        ids = [names.ids[k] for k in keys.tolist()]
        links = store.neighbour_links(ids, list(st.rels), st.direction, as_of,
                                      classes=sorted(st.classes) if st.classes is not None else None)
        near: list[int] = []
        far: list[int] = []
        for k, i in zip(keys.tolist(), ids, strict=True):
            for lk in links.get(i, []):
                near.append(k)
                far.append(names.key(lk.far, lk.far_cls))
        return np.array(near, dtype=np.int64), np.array(far, dtype=np.int64)

    complete, keys, bits = walk(start_keys, alternatives, max_repeats, expand)
    hop_edges = {h.name: _only(expand(_hop_starts(h, keys, start_keys), h.step), h.only, names.of) for h in hops}
    return Reach(n_starts=len(starts), start_keys=start_keys, complete=complete, keys=keys, bits=bits,
                 hops=hop_edges, key_of=lambda ids: {i: names.of[i] for i in ids if i in names.of},
                 id_of=lambda ks: [names.ids[k] for k in ks], cls_of=lambda ks: [names.cls[k] for k in ks.tolist()])


def _only(edges: tuple[I64, I64], only: frozenset[str] | None, key_of: dict[str, int]) -> tuple[I64, I64]:
    if only is None:
        return edges
    allowed = np.array(sorted(key_of[i] for i in only if i in key_of), dtype=np.int64)
    keep = np.isin(edges[1], allowed)
    return edges[0][keep], edges[1][keep]


def index_reach(store: EmbeddedStore, starts: Sequence[str], alternatives: Sequence[Sequence[WalkStep]],
                max_repeats: int, as_of: datetime | None = None, hops: Sequence[Hop] = ()) -> Reach | None:
    """:func:`reach_many` over the embedded store's topology index, node keys being its node
    rowids; None inside a write transaction or when the index is behind (the caller then loops)."""
    from store import embedded as emb

    if getattr(store._local, "tx", None) is not None:
        return None
    view = store._index_view(dict.fromkeys(starts), as_of)
    if view is None:  # a start committed after the index was read
        return None
    conn, t, adj, nids = view
    start_keys = np.array([nids.get(s, -1) for s in starts], dtype=np.int64)

    def expand(keys: I64, st: WalkStep, only: I64 | None = None) -> tuple[I64, I64]:
        edges = emb._index_edges(adj, keys, st.rels, Direction(st.direction), st.classes)
        if edges is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        here, there, _, eid, _ = edges
        if only is not None:
            keep = np.isin(there, only)
            here, there, eid = here[keep], there[keep], eid[keep]
        if t is not None and len(eid):
            keep = emb._valid_at_mask(conn, eid, there, t)
            here, there = here[keep], there[keep]
        return here, there

    def key_of(ids: Sequence[str]) -> dict[str, int]:
        return emb._nids_of(conn, ids)

    complete, keys, bits = walk(start_keys, alternatives, max_repeats, expand)
    hop_edges: dict[str, tuple[I64, I64]] = {}
    for h in hops:
        only = None if h.only is None else np.array(sorted(key_of(sorted(h.only)).values()), dtype=np.int64)
        hop_edges[h.name] = expand(_hop_starts(h, keys, start_keys), h.step, only)
    return Reach(n_starts=len(starts), start_keys=start_keys, complete=complete, keys=keys, bits=bits,
                 hops=hop_edges, key_of=key_of, id_of=lambda ks: [adj.node_id(k) for k in ks],
                 cls_of=lambda ks: [adj.node_cls(k) for k in ks.tolist()])
