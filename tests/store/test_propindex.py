"""Property filters (``find_nodes`` with ``where``, ``find_nodes_in``) answer the same through the
embedded store's in-memory property index as by filtering every node of the class, and follow
writes: a later commit, and a transaction's own uncommitted writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from store import propindex
from store.base import GraphStore, NodeRecord
from tests.graphs import build_graph, node, ts

T0, T1, T2 = ts("2026-01-01T00:00Z"), ts("2026-02-01T00:00Z"), ts("2026-03-01T00:00Z")
VALUES: list[Any] = ["released", "on_hold", None, True, 1, 1.0, "1", "nope", {"a": 1}]


def _graph(store: GraphStore) -> None:
    build_graph(store, nodes=[
        ("L1", "Lot", {"status": "released"}),
        ("L2", "Lot", {"status": "on_hold"}, {"plant": "P2"}),
        ("L3", "Lot", {"status": "released"}, {"valid_from": T1, "plant": "P2"}),
        ("L4", "Lot", {}),
        ("L5", "Lot", {"status": None}),
        ("L6", "Lot", {"status": True}),
        ("L7", "Lot", {"status": 1}),
        ("L8", "Lot", {"status": "1"}),
        ("L9", "Lot", {"status": {"a": 1}}),
        ("O1", "ProductionOrder", {"status": "released"}),
    ])


def _same(props: Mapping[str, Any], value: Any) -> bool:
    got = props.get("status")
    if isinstance(got, bool) or isinstance(value, bool):
        return isinstance(got, bool) and isinstance(value, bool) and got == value
    return bool(got == value)


def _expected(store: GraphStore, values: list[Any], **kw: Any) -> list[str]:
    return [n.id for n in store.find_nodes("Lot", **kw) if any(_same(n.props, v) for v in values)]


def _ids(nodes: Any) -> list[str]:
    return [n.id for n in nodes]


def _assert_filters(store: GraphStore) -> None:
    for kw in ({}, {"plant": "P2"}, {"as_of": T0}, {"as_of": T2}):
        for v in VALUES:
            assert _ids(store.find_nodes("Lot", where={"status": v}, **kw)) == _expected(store, [v], **kw), (v, kw)
        for vs in (["released", "on_hold"], ["released", None], [None], ["1", 1], ["released", {"a": 1}]):
            assert _ids(store.find_nodes_in("Lot", "status", vs, **kw)) == _expected(store, vs, **kw), (vs, kw)


def test_filters_equal_a_full_filter(store: GraphStore) -> None:
    _graph(store)
    _assert_filters(store)
    # the hand-known answers (not just agreement of two paths)
    assert _ids(store.find_nodes("Lot", where={"status": "released"})) == ["L1", "L3"]
    assert _ids(store.find_nodes("Lot", where={"status": "released"}, as_of=T0)) == ["L1"]
    assert _ids(store.find_nodes("Lot", where={"status": None})) == ["L4", "L5"]
    assert _ids(store.find_nodes("Lot", where={"status": 1})) == ["L7"]
    assert _ids(store.find_nodes("Lot", where={"status": True})) == ["L6"]
    assert _ids(store.find_nodes_in("Lot", "status", ["on_hold", "1"])) == ["L2", "L8"]


def test_filters_follow_commits_and_open_transactions(store: GraphStore) -> None:
    _graph(store)
    assert _ids(store.find_nodes("Lot", where={"status": "released"})) == ["L1", "L3"]  # fills the index
    with store.transaction() as tx:
        tx.upsert_nodes([NodeRecord("L4", "Lot", {"status": "released"}),
                         NodeRecord("L1", "Lot", {"status": "shipped"})])
        # the transaction sees its own writes
        assert _ids(store.find_nodes("Lot", where={"status": "released"})) == ["L3", "L4"]
        assert _ids(store.find_nodes_in("Lot", "status", ["released", "shipped"])) == ["L1", "L3", "L4"]
    assert _ids(store.find_nodes("Lot", where={"status": "released"})) == ["L3", "L4"]
    assert _ids(store.find_nodes_in("Lot", "status", ["shipped", None])) == ["L1", "L5"]
    with store.transaction() as tx:
        tx.upsert_nodes([node(("L10", "Lot", {"status": "released"}))])
    assert _ids(store.find_nodes("Lot", where={"status": "released"})) == ["L10", "L3", "L4"]
    with store.transaction() as tx:
        tx.delete_nodes(["L3"])
    assert _ids(store.find_nodes_in("Lot", "status", ["released"])) == ["L10", "L4"]
    _assert_filters(store)


def test_many_candidates_scan_the_class(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the candidate bound the class is scanned: the same answers."""
    monkeypatch.setattr(propindex, "MAX_CANDIDATES", 1)
    _graph(store)
    _assert_filters(store)
    assert _ids(store.find_nodes_in("Lot", "status", ["released", None])) == ["L1", "L3", "L4", "L5"]
