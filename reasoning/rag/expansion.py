"""Graph expansion: a bounded typed neighbourhood around seed entities, ranked with personalised
PageRank (networkx) on that small subgraph only, so cost does not grow with the plant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import networkx as nx

from reasoning.rag.models import GraphPathCitation
from store.base import Direction, GraphStore, TraversalStep

#: Relations followed in both directions when expanding (everything except the bulky hierarchy
#: edges from a plant, which would pull in the whole site).
EXPAND_RELATIONS: tuple[str, ...] = (
    "HAS_MACHINE", "RAN_ON", "USED_SOP", "CONSUMED", "PRODUCED", "DERIVED_FROM", "SUPPLIED_BY",
    "DELIVERED_AS", "FOR_MATERIAL", "ALLOCATED_TO", "SHIPPED_TO", "HAS_SO_LINE", "PLACED_BY",
    "VERSION_OF", "APPLIES_TO", "OCCURRED_ON", "CONCERNS", "HOLDS", "ADDRESSES", "RAISED_BY",
)


@dataclass(frozen=True, slots=True)
class RankedNode:
    id: str
    cls: str
    name: str | None
    score: float
    path: GraphPathCitation


class GraphExpander:
    def __init__(self, store: GraphStore, max_depth: int = 2, max_nodes: int = 200) -> None:
        self.store = store
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.steps = [TraversalStep(r, d) for r in EXPAND_RELATIONS for d in (Direction.OUT, Direction.IN)]

    def expand(self, seeds: Sequence[str], as_of: datetime | None = None, top: int = 15,
               plants: Sequence[str] | None = None) -> list[RankedNode]:
        seeds = list(dict.fromkeys(seeds))
        if not seeds:
            return []
        trav = self.store.traverse(seeds, self.steps, self.max_depth, as_of=as_of, max_nodes=self.max_nodes)
        g: nx.DiGraph = nx.DiGraph()
        g.add_nodes_from(trav.hops)
        for hop in trav.hops.values():
            if hop.edge is not None:
                g.add_edge(hop.edge.src, hop.edge.dst)
                g.add_edge(hop.edge.dst, hop.edge.src)
        personal = {s: 1.0 for s in seeds if s in g}
        if not personal:
            return []
        ranks = nx.pagerank(g, alpha=0.85, personalization=personal) if g.number_of_edges() else personal
        nodes = self.store.get_nodes(list(trav.hops), as_of)
        out: list[RankedNode] = []
        for node_id, score in sorted(ranks.items(), key=lambda kv: (-kv[1], kv[0])):
            node = nodes.get(node_id)
            if node is None or (plants is not None and node.plant is not None and node.plant not in plants):
                continue
            hops = trav.path_to(node_id)
            path = GraphPathCitation(nodes=[hops[0].node], rels=[], directions=[])
            for h in hops[1:]:
                assert h.edge is not None
                path.nodes.append(h.node)
                path.rels.append(h.edge.rel)
                path.directions.append("out" if h.edge.src == h.parent else "in")
            out.append(RankedNode(node_id, node.cls, node.name, round(float(score), 6), path))
            if len(out) >= top:
                break
        return out
