"""Pause Python's cyclic garbage collector around one large analysis.

Why: the full risk board builds hundreds of thousands of small objects (records, edges, result
models) that stay alive until it returns; every few hundred allocations the collector walks the
young ones and, as they pile up, the older generations again. At the medium bench plant that was
about a fifth of the board's CPU time. The analysis creates no reference cycles that need
collecting before it ends, so reference counting frees its garbage as before.

Nested and concurrent pauses (API threads) are counted: the collector is switched back on when
the last one ends, and only if it was on when the first one started. Pauses that keep overlapping
(a busy server) never reach zero, so a pause that ends after the collector has been off for
``MAX_OFF_SECONDS`` runs one collection itself: cyclic garbage cannot pile up without bound.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Longest time the collector stays off while pauses overlap, before one ending pause collects.
MAX_OFF_SECONDS = 5.0

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_off_since = 0.0


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside the block (back as it was afterwards, also on error)."""
    global _depth, _was_enabled, _off_since
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            _off_since = time.monotonic()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        collect = False
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
            elif _depth > 0 and _was_enabled and time.monotonic() - _off_since > MAX_OFF_SECONDS:
                _off_since = time.monotonic()
                collect = True
        if collect:
            gc.collect()
