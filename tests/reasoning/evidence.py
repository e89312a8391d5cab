"""Walk evidence paths in the store: every step's edge must exist and the steps must chain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from reasoning.results import EvidencePath
from store.base import Direction, GraphStore


def assert_paths_exist(store: GraphStore, paths: Iterable[EvidencePath], as_of: datetime | None = None) -> int:
    """Check every path; return how many steps were walked (so callers can assert it is > 0)."""
    walked = 0
    cache: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        assert path.steps, f"empty evidence path: {path}"
        for i, step in enumerate(path.steps):
            if i:
                assert path.steps[i - 1].dst == step.src, f"broken chain at step {i}: {path}"
            src, rel, dst = step.edge_key()
            key = (src, rel)
            if key not in cache:
                cache[key] = {e.dst for e in store.neighbours(src, [rel], Direction.OUT, as_of)}
            assert dst in cache[key], f"edge {src} -{rel}-> {dst} is not in the store (path {path.nodes})"
            walked += 1
    return walked
