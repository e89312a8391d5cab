"""Root cause's comparison lots counted from one walk (reasoning/analyses/comparison.py) give
the counts their histories give: per factor, as many good lots as :func:`lot_histories` finds,
and whole root-cause results equal to the ones built history by history."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from graph_loader.generator.truth import load_truth
from reasoning.analyses import rootcause as rc
from reasoning.service import Analyses
from store.base import GraphStore
from tests.reasoning import hand
from tests.reasoning.conftest import TinyPlant

NOW = datetime.fromisoformat(hand.t(11))


def _keys(a: Analyses, lots: list[str], as_of: datetime | None) -> list[tuple[str, str]]:
    hist = rc.lot_histories(a.ctx, lots, as_of, [None] * len(lots), with_paths=0)
    return sorted({k for h in hist for k in h.factors})


def _slow_counts(a: Analyses, lots: list[str], own: list[str | None], keys: list[tuple[str, str]],
                 as_of: datetime | None) -> list[int]:
    hist = rc.lot_histories(a.ctx, lots, as_of, own, with_paths=0)
    return [sum(1 for h in hist if k in h.factors) for k in keys]


@pytest.mark.parametrize("max_depth", [50, 2, 1])
@pytest.mark.parametrize("as_of", [None, datetime.fromisoformat(hand.t(5))])
def test_good_counts_equal_histories_hand(store: GraphStore, max_depth: int, as_of: datetime | None) -> None:
    hand.build(store)
    a = Analyses(store, now=NOW, rules_dirs=[], max_depth=max_depth)
    lots = sorted(n.id for n in store.find_nodes("Lot"))
    keys = [*_keys(a, lots, None), ("Machine", "NOPE")]
    mats = sorted({k[1] for k in keys if k[0] == "Material"})
    for own in ([None] * len(lots), [mats[0] if mats else None] * len(lots)):
        assert rc.good_counts(a.ctx, lots, own, keys, as_of) == _slow_counts(a, lots, own, keys, as_of)
    assert any(rc.good_counts(a.ctx, lots, [None] * len(lots), keys, None))


@pytest.fixture(scope="module")
def tiny(tiny_plant: TinyPlant) -> tuple[Analyses, Path]:
    return Analyses(tiny_plant.store, now=tiny_plant.truth.now, rules_dirs=[]), tiny_plant.bundle


def test_good_counts_equal_histories_generated(tiny: tuple[Analyses, Path]) -> None:
    a, _ = tiny
    lots = sorted(n.id for n in a.store.find_nodes("Lot"))[::3][:150]  # > 64: several words of bits
    keys = _keys(a, lots, None)
    assert len(keys) > 20
    own = [None] * len(lots)
    for as_of in (None, a.now - timedelta(days=3)):
        got = rc.good_counts(a.ctx, lots, own, keys, as_of)
        assert got == _slow_counts(a, lots, own, keys, as_of)
        assert sum(got) > 0


def test_rootcause_equals_history_by_history(tiny: tuple[Analyses, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    a, bundle = tiny
    truth = load_truth(bundle / "truth.json")
    s = truth.scenarios
    cases: list[dict[str, object]] = [
        {"incident": s.root_cause.incident},
        {"lots": s.root_cause.bad_lots, "as_of": a.now},
        {"lots": s.contaminated_supplier_lot.reached_lots},
        {"lots": [s.contaminated_supplier_lot.supplier_lot]},
        {"lots": s.machine_fault.affected_lots},
    ]
    fast = [a.rootcause(**c).model_dump_json() for c in cases]  # type: ignore[arg-type]
    monkeypatch.setattr(rc, "_plan", lambda ctx: None)
    slow = [a.rootcause(**c).model_dump_json() for c in cases]  # type: ignore[arg-type]
    assert fast == slow
