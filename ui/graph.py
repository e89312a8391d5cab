"""Evidence paths as an interactive graph (Cytoscape through the st-link-analysis component).

st-link-analysis ships its Cytoscape build inside the wheel, so the graph works offline; a click on
a node comes back to Python, which shows that entity's properties and neighbours.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CLASS_COLOURS: dict[str, str] = {
    "Lot": "#2f7ed8", "ProductionOrder": "#8e44ad", "SalesOrderLine": "#16a085", "SalesOrder": "#1abc9c",
    "Customer": "#27ae60", "QualityHold": "#c0392b", "Machine": "#d35400", "Incident": "#e74c3c",
    "Supplier": "#7f8c8d", "Material": "#95a5a6", "SOPVersion": "#f39c12", "Shift": "#34495e",
    "Person": "#2c3e50", "DowntimeEvent": "#e67e22", "PurchaseOrderLine": "#bdc3c7", "Line": "#a04000",
}
HELD = {"on_hold", "quarantined"}


@dataclass
class GraphModel:
    """Nodes and edges gathered from evidence paths, deduplicated, in first-seen order."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def add_node(self, node_id: str, cls: str | None = None, name: str | None = None,
                 status: str | None = None) -> None:
        cur = self.nodes.setdefault(node_id, {"id": node_id, "label": cls or "Entity", "name": node_id})
        if cls:
            cur["label"] = cls
        if name:
            cur["title"] = name
        if status:
            cur["status"] = status
            if status in HELD:
                cur["name"] = f"{node_id} [{status.upper()}]"

    def add_path(self, path: dict[str, Any]) -> None:
        for step in path.get("steps") or []:
            src, rel, dst = step["src"], step["rel"], step["dst"]
            self.add_node(src)
            self.add_node(dst)
            key = (src, rel, dst) if step.get("direction", "out") == "out" else (dst, rel, src)
            self.edges.setdefault(key, {"id": "|".join(key), "source": key[0], "target": key[2], "label": rel})

    def limited(self, max_nodes: int, keep: Iterable[str] = ()) -> GraphModel:
        """The first ``max_nodes`` nodes (plus ``keep``) and the edges among them."""
        keep_set = set(keep)
        chosen = [n for n in self.nodes if n in keep_set]
        for n in self.nodes:
            if len(chosen) >= max_nodes:
                break
            if n not in keep_set:
                chosen.append(n)
        ids = set(chosen)
        return GraphModel(
            nodes={n: self.nodes[n] for n in chosen},
            edges={k: e for k, e in self.edges.items() if k[0] in ids and k[2] in ids},
        )

    def elements(self) -> dict[str, list[dict[str, Any]]]:
        return {"nodes": [{"data": d} for d in self.nodes.values()],
                "edges": [{"data": d} for d in self.edges.values()]}


def from_trace(result: dict[str, Any], start_cls: str | None = None) -> GraphModel:
    """All evidence paths of a TraceResult, with classes, names and statuses of reached entities."""
    g = GraphModel()
    for sid in result.get("start_ids", []):
        g.add_node(sid, start_cls)
    for lot in result.get("start_lots", []):
        g.add_node(lot, "Lot")
    groups = list((result.get("reached") or {}).values())
    groups += [result.get("sales_order_lines") or [], result.get("customers") or []]
    for group in groups:
        for item in group:
            for path in item.get("evidence") or []:
                g.add_path(path)
    for group in groups:
        for item in group:
            ent = item["entity"]
            g.add_node(ent["id"], ent.get("cls"), ent.get("name"), ent.get("status"))
    return g


def from_paths(paths: Iterable[dict[str, Any]]) -> GraphModel:
    g = GraphModel()
    for p in paths:
        g.add_path(p)
    return g


def render(model: GraphModel, key: str, height: int = 480) -> str | None:
    """Draw the graph; the id of the node the user clicked last, if any."""
    from st_link_analysis import EdgeStyle, Event, NodeStyle, st_link_analysis

    labels = sorted({n["label"] for n in model.nodes.values()})
    node_styles = [NodeStyle(lb, CLASS_COLOURS.get(lb, "#555555"), "name") for lb in labels]
    with warnings.catch_warnings():  # the component warns about a deprecated flag we do not pass
        warnings.simplefilter("ignore")
        edge_styles = [EdgeStyle(r, caption="label", directed=True)
                       for r in sorted({e["label"] for e in model.edges.values()})]
    events = [Event("node_click", "click tap", "node")]
    out = st_link_analysis(model.elements(), layout="cose", node_styles=node_styles,
                           edge_styles=edge_styles, height=height, key=key, events=events)
    if isinstance(out, dict):
        data = out.get("data") or {}
        target = data.get("target_id") or data.get("id")
        if isinstance(target, str):
            return target
    return None
