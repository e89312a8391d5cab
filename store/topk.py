"""The greatest-id neighbours of many nodes, on the embedded store's topology index, in numpy.

Why: "the most recent production orders of a material" (ids grow with time) is a handful of the
thousands of edges a material has (every lot, line and order ever made of it). Building a Python
object per edge to sort them and keep a dozen cost ~0.1 s per risk board at the large bench plant;
here the ids are compared as UTF-8 bytes in numpy and only the kept ones are decoded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from store.adjacency import Adjacency

I64 = NDArray[np.int64]


def id_keys(adj: Adjacency, nids: I64) -> NDArray[np.bytes_] | None:
    """The ids of ``nids`` as fixed-width byte strings that sort as the ids do (UTF-8 byte order
    is code point order, and shorter strings are padded with NUL, which sorts first); None when
    some id is not in the index's id blob or holds a NUL byte (then the caller sorts in Python)."""
    if len(nids) == 0:
        return np.empty(0, dtype="S1")
    if int(nids.max()) >= len(adj.ids_off) - 1:
        return None
    if adj.extra_ids and bool(np.isin(nids, np.fromiter(adj.extra_ids, dtype=np.int64)).any()):
        return None
    start = adj.ids_off[nids]
    length = adj.ids_off[nids + 1] - start
    width = max(1, int(length.max()))
    blob = np.frombuffer(adj.ids_blob, dtype=np.uint8)
    cols = np.arange(width, dtype=np.int64)
    inside = cols[None, :] < length[:, None]
    pos = np.where(inside, start[:, None] + cols[None, :], 0)
    mat = np.where(inside, blob[pos], 0).astype(np.uint8)
    if bool((mat[inside] == 0).any()):
        return None
    return np.ascontiguousarray(mat).view(f"S{width}").ravel()


def top_per_group(group: I64, member: I64, keys: NDArray[np.bytes_], k: int) -> dict[int, I64]:
    """Per ``group`` value, the ``member`` values with the ``k`` greatest ``keys``, greatest first
    (a member listed twice in a group counts once)."""
    if len(group) == 0 or k <= 0:
        return {}
    if int(member.min()) < 0 or int(member.max()) >= 1 << 32:
        raise ValueError("member values must fit in 32 bits")
    pairs = np.unique((group << 32) | member, return_index=True)[1]
    group, member, keys = group[pairs], member[pairs], keys[pairs]
    order = np.lexsort((keys, group))  # by group, then key ascending
    g = group[order]
    bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
    out: dict[int, I64] = {}
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        out[int(g[lo])] = member[order[max(lo, hi - k):hi][::-1]]
    return out


def valid_top(group: I64, keys: NDArray[np.bytes_], k: int,
              check: Callable[[I64], NDArray[np.bool_]]) -> NDArray[np.bool_]:
    """Which entries to keep so that every group keeps its ``k`` greatest-key valid entries,
    asking ``check`` (the validity of the entries at these positions) for as few as needed: from
    the greatest key down, a window per group that grows until ``k`` are valid or the group is
    exhausted. Each member must appear once per group (one relation, one direction). Why: with
    ``as_of`` the validity of every candidate (70k orders of 500 materials at the large bench
    plant) cost more than the rest of the read."""
    n = len(group)
    if n == 0 or k <= 0:
        return np.zeros(n, dtype=bool)
    order = np.lexsort((keys, group))[::-1]  # by group, then key, both descending
    g = group[order]
    first = np.r_[True, g[1:] != g[:-1]]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.r_[starts, n])
    gid = np.cumsum(first) - 1
    rank = np.arange(n) - np.repeat(starts, sizes)
    valid = np.zeros(n, dtype=bool)
    checked = np.zeros(n, dtype=bool)
    done = np.zeros(len(starts), dtype=bool)
    window = 2 * k
    while True:
        pick = ~checked & (rank < window) & ~done[gid]
        if pick.any():
            valid[pick] = check(order[pick])
            checked |= pick
        found = np.bincount(gid, weights=valid, minlength=len(starts))
        done = (found >= k) | (sizes <= window)
        if done.all():
            break
        window *= 4
    keep = np.zeros(n, dtype=bool)
    keep[order[valid]] = True
    return keep
