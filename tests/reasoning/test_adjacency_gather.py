"""The topology index's per-level read ``Csr.gather`` equals a plain loop over the CSR rows:
empty frontiers, nodes without edges and ids past the arrays included (``Adjacency.edges_of``
on top of it is covered by the store's traversal tests against SQL)."""

from __future__ import annotations

import numpy as np

from store.adjacency import Csr


def _naive(csr: Csr, frontier: list[int]) -> list[tuple[int, int, int, int]]:
    rows = []
    for v in frontier:
        if v >= len(csr.ptr) - 1:
            continue
        for j in range(int(csr.ptr[v]), int(csr.ptr[v + 1])):
            rows.append((v, int(csr.nbr[j]), int(csr.rel[j]), int(csr.eid[j])))
    return rows


def test_gather_equals_a_loop() -> None:
    rng = np.random.default_rng(7)
    for n, m in ((1, 0), (5, 3), (40, 120), (200, 50)):
        here = rng.integers(0, n, m).astype(np.int64)
        there = rng.integers(0, n, m).astype(np.int64)
        rel = rng.integers(0, 4, m).astype(np.int16)
        eid = np.arange(m, dtype=np.int64)
        csr = Csr.build(here, there, rel, eid, n)
        for frontier in ([], [0], list(range(n)), sorted(rng.choice(n, min(n, 7), replace=False).tolist()),
                         [n + 3], [0, n + 1]):
            got = csr.gather(np.array(frontier, dtype=np.int64))
            assert [g.dtype for g in got] == [np.int64, np.int64, np.int16, np.int64]
            assert list(zip(*(g.tolist() for g in got), strict=True)) == _naive(csr, frontier)
