"""The analyses read through the store's batch reads (``neighbours_many``, ``neighbour_links``,
``find_nodes_in``): the answers equal those computed with the one-id-at-a-time defaults of
``GraphStore``, and the rule engine reads a level's neighbours in one call, not one per node."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reasoning.service import Analyses
from store.base import GraphStore
from store.factory import open_store
from tests.graphs import build_graph, count_calls, ts
from tests.reasoning import hand
from tests.reasoning.test_risk_rootcause_sop_hand import RISK_EDGES, RISK_NODES, d

BATCH_READS = ("neighbours_many", "neighbour_links", "find_nodes_in")


def _defaults_only(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the backend's batch reads by the base class's defaults (built from single reads)."""
    for name in BATCH_READS:
        monkeypatch.setattr(store, name, getattr(GraphStore, name).__get__(store))


def _dump(results: list[Any]) -> list[str]:
    return [r.model_dump_json() for r in results]


def _all(a: Analyses) -> list[Any]:
    now = ts(d(1))
    return [
        a.risk(14), a.risk(14, as_of=now - timedelta(days=1)), a.risk(14, plant="SITE-NONE"),
        a.trace_hold("HA"), a.trace_hold("HR", as_of=now), a.trace_lot("LF"), a.backward("LA"),
    ]


@pytest.fixture
def embedded(tmp_path: Path) -> GraphStore:
    return open_store("embedded", tmp_path / "store")


def test_risk_and_traces_equal_with_and_without_batch_reads(
        embedded: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    build_graph(embedded, RISK_NODES, RISK_EDGES)
    a = Analyses(embedded, now=ts(d(1)), rules_dirs=[])
    batched = _dump(_all(a))
    assert any('"kind":"hold"' in x for x in batched)  # the board found its causes
    _defaults_only(embedded, monkeypatch)
    assert _dump(_all(a)) == batched


def test_hand_plant_traces_equal_with_and_without_batch_reads(
        embedded: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    hand.build(embedded)
    a = Analyses(embedded, now=ts(hand.t(11)), rules_dirs=[])

    def run() -> list[str]:
        return _dump([a.trace_lot("RL1"), a.trace_lot("RL1", lot_precise=True), a.backward("FL1"),
                      a.backward("FL1", lot_precise=True), a.trace_lot("RL1", as_of=ts(hand.t(5)))])

    batched = run()
    _defaults_only(embedded, monkeypatch)
    assert run() == batched


def test_engine_reads_a_level_in_one_batch_call(embedded: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = embedded
    hand.build(store)
    a = Analyses(store, now=ts(hand.t(11)), rules_dirs=[])
    calls = count_calls(store, monkeypatch, ["neighbours", "neighbours_many"])
    res = a.ctx.run_params("lots_to_customers", {"lots": ["FL1", "FL2"]})
    assert res.bindings["customer"]
    # three steps: lots -> lines -> sales orders -> customers, one batch read each
    assert calls["neighbours_many"] == 3
    assert calls["neighbours"] == 0
