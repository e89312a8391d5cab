"""The copilot's personalised PageRank equals networkx's on hand-made graphs."""

from __future__ import annotations

import networkx as nx
import pytest

from reasoning.rag.expansion import GraphExpander, personalised_pagerank
from store.base import GraphStore


@pytest.mark.parametrize("seeds", [["a"], ["a", "e"], ["f"]])
def test_pagerank_matches_networkx(seeds: list[str]) -> None:
    # a star, a chain and an isolated node (f has no edges: it is dangling)
    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("d", "e"), ("e", "g")]
    nodes = ["a", "b", "c", "d", "e", "f", "g"]
    edges = {(x, y) for p, q in pairs for x, y in ((p, q), (q, p))}
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    personal = {s: 1.0 for s in seeds}
    expected = nx.pagerank(g, alpha=0.85, personalization=personal)
    got = personalised_pagerank(nodes, edges, personal)
    assert got.keys() == expected.keys()
    assert all(got[n] == pytest.approx(expected[n], abs=1e-12) for n in nodes)


def test_expansion_ranks_the_seed_first_and_cites_walkable_paths(plant: GraphStore) -> None:
    ranked = GraphExpander(plant).expand(["LOT-200"], top=5)
    assert ranked[0].id == "LOT-200" and ranked[0].path.nodes == ["LOT-200"]
    assert len(ranked) == 5 and len({r.id for r in ranked}) == 5
    for r in ranked[1:]:
        assert r.path.nodes[0] == "LOT-200" and r.path.nodes[-1] == r.id
        for src, rel, dst in r.path.edge_keys():
            assert any(e.dst == dst for e in plant.neighbours(src, [rel]))
