"""Reads shared within one analysis (node and neighbour caches): same answers, fewer store calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from reasoning.analyses.rootcause import Reads, lot_history
from reasoning.engine import EdgeCache, NodeCache, RuleResult
from reasoning.service import Analyses
from store.base import GraphStore
from tests.graphs import count_calls
from tests.reasoning import hand

NOW = datetime.fromisoformat(hand.t(11))


def _answer(res: RuleResult) -> dict[str, dict[str, tuple[str, int, list[tuple[str, str, str]]]]]:
    return {var: {nid: (m.start, m.depth, [(s.src, s.rel, s.dst) for s in m.steps]) for nid, m in b.items()}
            for var, b in res.bindings.items()}


@pytest.mark.parametrize("rule,params", [
    ("backward_genealogy", {"lots": ["FL1"]}),  # store-traversal fast path
    ("lot_sources", {"lots": ["FL1", "IL1", "RL1"]}),  # rule automaton
    ("lots_to_customers", {"lots": ["FL1", "FL2"]}),
])
def test_shared_caches_give_the_same_answer_and_spare_reads(
        store: GraphStore, monkeypatch: pytest.MonkeyPatch, rule: str, params: dict[str, Any]) -> None:
    hand.build(store)
    a = Analyses(store, now=NOW, rules_dirs=[])
    fresh = a.ctx.run_params(rule, params)
    nodes: NodeCache = {}
    edges: EdgeCache = {}
    first = a.ctx.run_params(rule, params, None, None, edges, nodes)
    assert _answer(first) == _answer(fresh)
    assert any(first.bindings.values())
    bound = {nid for b in first.bindings.values() for nid in b}
    assert bound <= {k for k, v in nodes.items() if v is not None}
    calls = count_calls(store, monkeypatch, ["get_nodes", "neighbours"])
    again = a.ctx.run_params(rule, params, None, None, edges, nodes)
    assert _answer(again) == _answer(fresh)
    if rule != "backward_genealogy" or store.backend == "embedded":
        # every node it needs was read by the first run (on Neo4j the store-traversal fast path
        # re-reads one start node through the server, which the cache cannot see)
        assert calls["get_nodes"] == 0
    if rule != "backward_genealogy":  # the automaton reads neighbours through the edge cache too
        assert calls["neighbours"] == 0


def test_lot_histories_with_shared_reads_match_fresh_ones(store: GraphStore) -> None:
    hand.build(store)
    a = Analyses(store, now=NOW, rules_dirs=[])
    reads = Reads()
    shared = [lot_history(a.ctx, lid, None, None, reads) for lid in ("FL1", "FL2", "IL1", "IL2")]
    fresh = [lot_history(a.ctx, lid, None, None) for lid in ("FL1", "FL2", "IL1", "IL2")]
    assert [h.factors for h in shared] == [h.factors for h in fresh]
    assert any(h.factors for h in fresh)
    assert reads.nodes and reads.edges
