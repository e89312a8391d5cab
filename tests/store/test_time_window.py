"""``find_nodes_after`` (nodes whose time property is not at or before t) answers the same as a
full filter of the class, on both backends (the embedded store through its decoded time column,
Neo4j through the default), and follows commits and open transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from store import propindex
from store.base import GraphStore, NodeRecord
from store.timeprops import instant, later_than
from tests.graphs import build_graph, ts

T0, T1, T2, T3 = (ts(x) for x in ("2026-01-01T00:00Z", "2026-02-01T00:00Z", "2026-03-01T00:00Z",
                                  "2026-04-01T00:00Z"))
ENDS: list[Any] = [
    "2026-01-15T00:00:00Z", "2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00+02:00",  # = T1 - 1 h
    "2026-02-01T00:00:00.000001+00:00", "2026-03-15T08:00:00-05:00", None, "", "soon", 5, 1.5, True,
    "2026-02-20T00:00:00", {"at": "2026-02-20T00:00:00Z"}, ["2026-02-20T00:00:00Z"], "9999-12-31T23:00:00-05:00",
]


def _graph(store: GraphStore) -> None:
    nodes: list[tuple[Any, ...]] = [(f"D{i:02d}", "DowntimeEvent", {"end": v}) for i, v in enumerate(ENDS)]
    nodes += [
        ("D90", "DowntimeEvent", {}),
        ("D91", "DowntimeEvent", {"end": "2026-05-01T00:00Z"}, {"plant": "P2"}),
        ("D92", "DowntimeEvent", {"end": "2026-05-01T00:00Z"}, {"valid_from": T2}),
        ("D93", "DowntimeEvent", {"end": "2026-01-01T00:00Z"}, {"plant": "P2"}),
        ("X1", "QualityHold", {"end": "2026-05-01T00:00Z"}),
    ]
    build_graph(store, nodes)


def _expected(store: GraphStore, t: datetime, **kw: Any) -> list[str]:
    return [n.id for n in store.find_nodes("DowntimeEvent", **kw) if later_than(n.props.get("end"), t)]


def _assert_same(store: GraphStore) -> None:
    for t in (T0, T1, T2, T3, ts("2026-01-31T23:00Z")):
        for kw in ({}, {"plant": "P2"}, {"as_of": T1}, {"as_of": T3}):
            got = [n.id for n in store.find_nodes_after("DowntimeEvent", "end", t, **kw)]
            assert got == _expected(store, t, **kw), (t, kw)


def test_timestamp_reading() -> None:
    assert instant("2026-01-01T00:00Z") == T0
    assert instant("2026-01-01T01:00:00+01:00") == T0
    for v in (None, "", "soon", 5, True, "2026-01-01T00:00:00", {"a": 1}):
        assert instant(v) is None and later_than(v, T0)
    assert not later_than("2026-01-01T00:00Z", T0)
    assert later_than("2026-01-01T00:00:00.000001Z", T0)


def test_after_equals_a_full_filter(store: GraphStore) -> None:
    _graph(store)
    _assert_same(store)
    # the hand-known answer at T1: D00 ended before; D01 and D02 end at T1 or an hour before
    got = [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)]
    assert got == ["D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10", "D11", "D12", "D13", "D14",
                   "D90", "D91", "D92"]
    assert [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1, plant="P2")] == ["D91"]
    assert [n.id for n in store.find_nodes_after("QualityHold", "end", T1)] == ["X1"]


def test_after_follows_commits_and_open_transactions(store: GraphStore) -> None:
    _graph(store)
    assert "D00" not in [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)]  # fills the column
    with store.transaction() as tx:
        tx.upsert_nodes([NodeRecord("D00", "DowntimeEvent", {"end": "2026-06-01T00:00Z"}),
                         NodeRecord("D04", "DowntimeEvent", {"end": "2026-01-02T00:00Z"})])
        inside = [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)]
        assert "D00" in inside and "D04" not in inside
    after = [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)]
    assert "D00" in after and "D04" not in after
    with store.transaction() as tx:
        tx.delete_nodes(["D00"])
    assert "D00" not in [n.id for n in store.find_nodes_after("DowntimeEvent", "end", T1)]
    _assert_same(store)


def test_many_candidates_use_the_default(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(propindex, "MAX_CANDIDATES", 1)
    _graph(store)
    _assert_same(store)
