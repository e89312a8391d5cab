"""A bounded cache of finished analysis and copilot responses, valid for one graph state.

An analysis is a pure function of the graph, its parameters, the facade's reference "now" and the
caller's plant scope; the embedded store counts its committed transactions (``generation``, also
bumped by other processes such as a CLI load). So a response computed at one generation can be
served again, byte for byte, until the generation (or the facade) changes: then the whole cache is
dropped at once. Stores without a generation counter (Neo4j) are never cached, since writes made
outside this process could not be seen. The cache holds the serialised body, the entity ids for the
audit record and the withheld count, so a hit still produces the same audit record as a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    entity_ids: frozenset[str]
    detail: str | None = None


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0
    clears: int = 0


class ResponseCache:
    """LRU by total body bytes; every entry belongs to the current ``epoch`` (graph state)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._lock = threading.Lock()
        self._epoch: Hashable = None
        self._items: OrderedDict[Hashable, CachedResponse] = OrderedDict()
        self._bytes = 0
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, epoch: Hashable, key: Hashable) -> CachedResponse | None:
        """The entry for ``key`` if it was stored at this ``epoch``; a new epoch empties the cache."""
        if not self.enabled or epoch is None:
            return None
        with self._lock:
            if epoch != self._epoch:
                self._reset(epoch)
            hit = self._items.get(key)
            if hit is None:
                self.stats.misses += 1
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return hit

    def put(self, epoch: Hashable, key: Hashable, value: CachedResponse) -> None:
        """Store a response computed at ``epoch`` (read *before* computing it). Dropped if the
        graph has moved on since, or if the body alone is larger than a quarter of the cache."""
        if not self.enabled or epoch is None or len(value.body) > self.max_bytes // 4:
            return
        with self._lock:
            if epoch != self._epoch:
                return
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._items[key] = value
            self._bytes += len(value.body)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.body)
            self.stats.entries, self.stats.bytes = len(self._items), self._bytes

    def clear(self) -> None:
        with self._lock:
            self._reset(None)

    def _reset(self, epoch: Hashable) -> None:
        self._epoch = epoch
        if self._items:
            self.stats.clears += 1
        self._items.clear()
        self._bytes = 0
        self.stats.entries = self.stats.bytes = 0
