"""The greatest-id neighbours of many nodes, on the embedded store's topology index, in numpy.

Why: "the most recent production orders of a material" (ids grow with time) is a handful of the
thousands of edges a material has (every lot, line and order ever made of it). Building a Python
object per edge to sort them and keep a dozen cost ~0.1 s per risk board at the large bench plant;
here the ids are compared as UTF-8 bytes in numpy and only the kept ones are decoded.
"""

from __future__ import annotations

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
