"""The embedded store's property index is kept in a file beside the database: a store opened
later at the same generation answers its property and time-window filters without scanning a
class, and a file of another generation, of another store or unreadable is not used."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from store import propindex
from store.base import NodeRecord
from store.embedded import EmbeddedStore
from tests.graphs import build_graph, ts

T1 = ts("2026-02-01T00:00Z")
NODES: list[Any] = [
    ("L1", "Lot", {"status": "released"}), ("L2", "Lot", {"status": "on_hold"}), ("L3", "Lot", {"status": 1}),
    ("L4", "Lot", {}), ("D1", "DowntimeEvent", {"end": "2026-01-01T00:00Z"}), ("D2", "DowntimeEvent", {}),
    ("D3", "DowntimeEvent", {"end": "2026-03-01T00:00+01:00"}),
]


def _answers(store: EmbeddedStore) -> list[list[str]]:
    return [
        [n.id for n in store.find_nodes("Lot", where={"status": "released"})],
        [n.id for n in store.find_nodes_in("Lot", "status", ["on_hold", 1, None])],
        [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)],
    ]


def _no_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("scanned a class")

    monkeypatch.setattr(propindex.PropertyIndex, "_fill", refuse)
    monkeypatch.setattr(propindex.PropertyIndex, "_time_column", refuse)


def test_a_later_store_starts_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store"
    with EmbeddedStore(path) as s:
        build_graph(s, NODES)
        first = _answers(s)
    assert first == [["L1"], ["L2", "L3", "L4"], ["D2", "D3"]]
    assert (path / propindex.CACHE_FILE).exists()
    with monkeypatch.context() as m:
        _no_scans(m)
        with EmbeddedStore(path) as s:
            assert _answers(s) == first
    # a commit makes the file stale: the next store scans again and sees the new data
    with EmbeddedStore(path) as s, s.transaction() as tx:
        tx.upsert_nodes([NodeRecord("L4", "Lot", {"status": "released"}),
                         NodeRecord("D1", "DowntimeEvent", {"end": "2026-05-01T00:00Z"})])
    with EmbeddedStore(path) as s:
        assert _answers(s) == [["L1", "L4"], ["L2", "L3"], ["D1", "D2", "D3"]]


def test_a_file_of_another_store_or_unreadable_is_ignored(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    with EmbeddedStore(a) as s:
        build_graph(s, NODES)
        _answers(s)
    with EmbeddedStore(b) as s:  # same generation, other data and identity
        build_graph(s, [("L9", "Lot", {"status": "released"}), ("D9", "DowntimeEvent", {})])
    shutil.copy(a / propindex.CACHE_FILE, b / propindex.CACHE_FILE)
    with EmbeddedStore(b) as s:
        assert _answers(s) == [["L9"], [], ["D9"]]
    (a / propindex.CACHE_FILE).write_bytes(b"not a cache")
    with EmbeddedStore(a) as s:
        assert _answers(s) == [["L1"], ["L2", "L3", "L4"], ["D2", "D3"]]
