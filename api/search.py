"""Entity search by id, name, alias and fuzzy name (rapidfuzz), always within a plant scope.

The store answers lookups by id; names need an index. It is built on the first search from
``find_nodes`` (ids, names, aliases, class and plant only: a few hundred bytes per entity). A write
made by the API itself patches it (the written entities' old entries are retired, their new ones
appended) when the store's commit counter shows that write was the only commit since the index was
built; any other change of the counter (a CLI load, another API process) means a full rebuild on
the next search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from api.keys import Principal
from store.base import GraphStore, NodeRecord


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    cls: str
    plant: str | None
    label: str
    match: str  # "id", "name" or "alias"


@dataclass(frozen=True, slots=True)
class Match:
    id: str
    match: str
    score: float


class NameIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] | None = None
        self._labels: list[str] = []
        self._by_id: dict[str, list[int]] = {}
        self._dead: set[int] = set()
        self._generation: object = None
        self.rebuilds = 0  # full builds so far (tests and /readyz-style introspection)

    def invalidate(self) -> None:
        with self._lock:
            self._entries = None

    def _build(self, store: GraphStore) -> list[_Entry]:
        entries: list[_Entry] = []
        for n in store.find_nodes():
            entries.extend(_entries(n))
        return entries

    def _ensure(self, store: GraphStore) -> tuple[list[_Entry], list[str], set[int]]:
        # a store that counts its commits (embedded) tells us when someone else (a CLI load) wrote
        generation = getattr(store, "generation", None)
        with self._lock:
            if self._entries is None or generation != self._generation:
                self._generation = generation
                self._entries = self._build(store)
                self._labels = [e.label.casefold() for e in self._entries]
                self._by_id = {}
                for i, e in enumerate(self._entries):
                    self._by_id.setdefault(e.id, []).append(i)
                self._dead = set()
                self.rebuilds += 1
            return self._entries, self._labels, self._dead

    def written(self, store: GraphStore, ids: Iterable[str]) -> None:
        """After the API committed one write touching ``ids``: patch the index if that write is
        the only commit since it was built (the commit counter moved by exactly one), else drop it."""
        wanted = sorted(set(ids))
        generation = getattr(store, "generation", None)
        with self._lock:
            if (self._entries is None or not wanted or not isinstance(generation, int)
                    or not isinstance(self._generation, int) or generation != self._generation + 1):
                self._entries = None
                return
            nodes = store.get_nodes(wanted)
            for i in wanted:
                self._dead.update(self._by_id.pop(i, ()))
            for n in nodes.values():
                for e in _entries(n):
                    self._by_id.setdefault(e.id, []).append(len(self._entries))
                    self._entries.append(e)
                    self._labels.append(e.label.casefold())
            self._generation = generation
            if len(self._dead) > len(self._entries) // 4:
                self._entries = None  # mostly retired entries: rebuild on the next search

    def search(
        self,
        store: GraphStore,
        principal: Principal,
        q: str,
        cls: str | None,
        plant: str | None,
        fuzzy: bool,
        cutoff: float,
        limit: int,
    ) -> list[Match]:
        """Exact id first, then exact names/aliases, then substring, then fuzzy; best score per id."""
        needle = q.strip().casefold()
        best: dict[str, Match] = {}

        def visible(entry_cls: str, entry_plant: str | None) -> bool:
            return (
                principal.sees_plant(entry_plant)
                and (cls is None or entry_cls == cls)
                and (plant is None or entry_plant == plant)
            )

        def offer(m: Match) -> None:
            cur = best.get(m.id)
            if cur is None or m.score > cur.score:
                best[m.id] = m

        exact = store.get_node(q.strip())
        if exact is not None and visible(exact.cls, exact.plant):
            offer(Match(exact.id, "id", 101.0))
        entries, labels, dead = self._ensure(store)
        for i, label in enumerate(labels):
            if needle and needle in label and i not in dead:
                e = entries[i]
                if visible(e.cls, e.plant):
                    score = 100.0 if label == needle else 90.0 + 10.0 * len(needle) / max(len(label), 1) - 0.01
                    offer(Match(e.id, e.match, min(score, 100.0)))
        if fuzzy and needle:
            hits = process.extract(needle, labels, scorer=fuzz.WRatio, score_cutoff=cutoff, limit=limit * 5 + 50)
            for _label, score, idx in hits:
                if idx in dead:
                    continue
                e = entries[idx]
                if visible(e.cls, e.plant):
                    offer(Match(e.id, "fuzzy", min(float(score), 89.99)))
        return sorted(best.values(), key=lambda m: (-m.score, m.id))


def _entries(n: NodeRecord) -> list[_Entry]:
    out = []
    if n.name:
        out.append(_Entry(n.id, n.cls, n.plant, n.name, "name"))
    aliases = n.props.get("aliases") if n.props else None
    if isinstance(aliases, list):
        out.extend(_Entry(n.id, n.cls, n.plant, str(a), "alias") for a in aliases if a)
    out.append(_Entry(n.id, n.cls, n.plant, n.id, "id"))
    return out
