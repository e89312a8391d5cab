"""Root cause's batch paths give the answers of the one-lot-at-a-time ones: lot histories read
for many lots at once (context rules in one batch read, comparison lots' genealogy in one walk)
equal :func:`lot_history` per lot, and the vectorised Fisher test equals SciPy's per table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from scipy.stats import fisher_exact

from reasoning.analyses.common import Context
from reasoning.analyses.rootcause import fisher_greater, lot_histories, lot_history
from reasoning.service import Analyses
from store.base import GraphStore
from tests.reasoning import hand

NOW = datetime.fromisoformat(hand.t(11))


def test_fisher_greater_equals_scipy_per_table() -> None:
    tables = [(nb, ng, bw, gw) for nb in range(1, 6) for ng in range(0, 6)
              for bw in range(0, nb + 1) for gw in range(0, ng + 1)]
    for nb in {t[0] for t in tables}:
        for ng in {t[1] for t in tables}:
            sub = [(bw, gw) for n, g, bw, gw in tables if (n, g) == (nb, ng)]
            got = fisher_greater(nb, ng, [bw for bw, _ in sub], [gw for _, gw in sub])
            want = [float(fisher_exact([[bw, nb - bw], [gw, ng - gw]], alternative="greater")[1])
                    for bw, gw in sub]
            assert got == want, (nb, ng)
    assert fisher_greater(3, 4, [], []) == []


def _lots(store: GraphStore) -> list[str]:
    return sorted(n.id for n in store.find_nodes("Lot"))


def _count_rule_runs(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    runs: dict[str, int] = {}
    original = ctx.run

    def counted(rule: str, *args: Any, **kw: Any) -> Any:
        runs[rule] = runs.get(rule, 0) + 1
        return original(rule, *args, **kw)

    monkeypatch.setattr(ctx, "run", counted)
    return runs


@pytest.mark.parametrize("max_depth", [50, 2, 1])
@pytest.mark.parametrize("as_of", [None, datetime.fromisoformat(hand.t(5))])
def test_lot_histories_equal_one_lot_at_a_time(store: GraphStore, monkeypatch: pytest.MonkeyPatch,
                                              max_depth: int, as_of: datetime | None) -> None:
    hand.build(store)
    a = Analyses(store, now=NOW, rules_dirs=[], max_depth=max_depth)
    lots = _lots(store)
    assert len(lots) >= 4
    own = [None] * len(lots)
    single = [lot_history(a.ctx, lid, as_of, None) for lid in lots]
    assert any(h.factors for h in single)
    runs = _count_rule_runs(a.ctx, monkeypatch)
    full = lot_histories(a.ctx, lots, as_of, own)
    assert [(h.lot, h.factors, sorted(h.nodes)) for h in full] == [(h.lot, h.factors, sorted(h.nodes)) for h in single]
    # only the first two with evidence: the rest have the same factors, without steps
    part = lot_histories(a.ctx, lots, as_of, own, with_paths=2)
    assert [h.factors for h in part[:2]] == [h.factors for h in single[:2]]
    assert [sorted(h.factors) for h in part[2:]] == [sorted(h.factors) for h in single[2:]]
    assert all(steps == [] for h in part[2:] for steps in h.factors.values())
    if store.backend == "embedded" and max_depth == 50:
        # the context rules were read in batch, and the comparison lots' genealogy in one walk
        assert runs.get("order_context", 0) == 0 and runs.get("lot_sources", 0) == 0
        assert runs["backward_genealogy"] == len(lots) + 2

