"""The risk board through the embedded store's fast reads (time-window candidates, ids-only
neighbours, greatest-id neighbours, batch reads, property index) equals the board through the
plain defaults of ``GraphStore``, on the hand-built risk plant and on a generated tiny plant, now,
as of earlier, per plant and with a short horizon; and it reads each thing once per board."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reasoning.results import RiskBoard
from reasoning.service import Analyses
from store.base import GraphStore
from store.embedded import EmbeddedStore
from tests.graphs import build_graph, count_calls, ts
from tests.reasoning.conftest import TinyPlant
from tests.reasoning.test_risk_rootcause_sop_hand import RISK_EDGES, RISK_NODES, d

FAST_READS = ("neighbours_many", "neighbour_links", "find_nodes_in", "find_nodes_after", "top_neighbours")


def _defaults_only(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAST_READS:
        monkeypatch.setattr(store, name, getattr(GraphStore, name).__get__(store))


def _boards(a: Analyses, horizon: float, plant: str | None) -> list[str]:
    now = a.now
    return [b.model_dump_json() for b in (
        a.risk(horizon), a.risk(horizon, as_of=now - timedelta(days=2)), a.risk(3),
        a.risk(horizon, plant=plant), a.risk(horizon, now=now + timedelta(days=1)))]


def test_hand_plant_board_equals_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddedStore(tmp_path / "store")
    try:
        build_graph(store, RISK_NODES, RISK_EDGES)
        a = Analyses(store, now=ts(d(1)), rules_dirs=[])
        fast = _boards(a, 14, "SITE-NONE")
        assert any('"kind":"downtime"' in x for x in fast) and any('"kind":"hold"' in x for x in fast)
        _defaults_only(store, monkeypatch)
        assert _boards(a, 14, "SITE-NONE") == fast
    finally:
        store.close()


@pytest.fixture(scope="module")
def tiny(tiny_plant: TinyPlant) -> tuple[Analyses, float, str]:
    store, truth = tiny_plant.store, tiny_plant.truth
    site = sorted(n.id for n in store.find_nodes("Site"))[0]
    return Analyses(store, now=truth.now, rules_dirs=[]), truth.scenarios.deliveries_at_risk.horizon_days, site


def test_generated_board_equals_defaults(tiny: tuple[Analyses, float, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, horizon, site = tiny
    board = a.risk(horizon)
    # the models built without validation (shared steps and refs) equal validated ones
    assert board == RiskBoard.model_validate(board.model_dump())
    fast = _boards(a, horizon, site)
    kinds = "".join(fast)
    for kind in ("alternative_line", "alternative_lot", "behind_schedule", "shortage"):
        assert f'"{kind}"' in kinds, kind  # the board exercised the reads it makes
    _defaults_only(a.store, monkeypatch)
    assert _boards(a, horizon, site) == fast


def test_board_reads_in_a_few_batch_calls(tiny: tuple[Analyses, float, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, horizon, _ = tiny
    calls = count_calls(a.store, monkeypatch, ["neighbours", "neighbour_links", "neighbours_many", "top_neighbours",
                                               "find_nodes", "find_nodes_after"])
    a.risk(horizon)
    assert calls["top_neighbours"] == 1  # the recent orders of every line's material at once
    assert calls["find_nodes_after"] == 2  # holds not released and downtime not ended by now
    assert calls["neighbours"] == 0
    assert calls["neighbours_many"] <= 3
