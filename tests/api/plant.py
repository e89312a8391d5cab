"""A hand-made two-plant graph for the API tests, with one genealogy path that crosses plants.

Plant A: supplier lot L-A1 (held by QH-A1) -> PO-A1 on M-A1 -> L-A2, allocated to SOL-A1 (SO-A1,
customer CUST-2). Plant B: PO-B1 on M-B1 consumes L-A2 (the cross-plant step) -> L-B1, held by
QH-B1 and shipped to SOL-B1 (SO-B1, customer CUST-1). So from plant A, CUST-1 is reachable only
through plant B. Materials, suppliers and customers have no plant (enterprise-wide).
"""

from __future__ import annotations

from store.base import GraphStore
from tests.graphs import build_graph

T0 = "2026-03-02T06:00:00+00:00"
T1 = "2026-03-02T14:00:00+00:00"
DUE = "2026-03-10T00:00:00+00:00"

A = {"plant": "SITE-A"}
B = {"plant": "SITE-B"}


def lot(i: str, common: dict[str, str], status: str = "released", name: str | None = None) -> tuple[object, ...]:
    return (i, "Lot", {"quantity": 100.0, "unit": "kg", "status": status, "produced_at": T0},
            {**common, "name": name or f"Lot {i}"})


def build_two_plants(store: GraphStore) -> None:
    nodes = [
        ("SITE-A", "Site", {"timezone": "UTC"}, {**A, "name": "Plant Alpha"}),
        ("SITE-B", "Site", {"timezone": "UTC"}, {**B, "name": "Plant Bravo"}),
        ("MAT-RAW", "Material", {"kind": "raw", "unit": "kg"}, {"name": "Resin"}),
        ("MAT-FG", "Material", {"kind": "finished", "unit": "kg", "aliases": ["Widget"]}, {"name": "Blue Widget"}),
        ("SUP-1", "Supplier", {"country": "DE"}, {"name": "Polymer Supply GmbH"}),
        ("CUST-1", "Customer", {}, {"name": "Acme Corporation"}),
        ("CUST-2", "Customer", {}, {"name": "Globex"}),
        ("LINE-A1", "Line", {}, {**A, "name": "Line A1"}),
        ("M-A1", "Machine", {"machine_type": "press"}, {**A, "name": "Press A1"}),
        ("M-B1", "Machine", {"machine_type": "press"}, {**B, "name": "Press B1"}),
        lot("L-A1", A, "on_hold", "Resin lot A1"),
        lot("L-A2", A),
        lot("L-B1", B, "on_hold", "Widget lot B1"),
        ("PO-A1", "ProductionOrder", {"quantity": 100.0, "status": "completed", "planned_start": T0,
                                      "planned_end": T1, "actual_start": T0, "actual_end": T1}, {**A}),
        ("PO-B1", "ProductionOrder", {"quantity": 100.0, "status": "planned", "planned_start": T0,
                                      "planned_end": T1}, {**B}),
        ("SO-A1", "SalesOrder", {"order_date": T0}, {**A}),
        ("SOL-A1", "SalesOrderLine", {"quantity": 10.0, "due_date": DUE}, {**A}),
        ("SO-B1", "SalesOrder", {"order_date": T0}, {**B}),
        ("SOL-B1", "SalesOrderLine", {"quantity": 10.0, "due_date": DUE}, {**B}),
        ("QH-A1", "QualityHold", {"reason": "contamination", "placed_at": T0}, {**A}),
        ("QH-B1", "QualityHold", {"reason": "dimension", "placed_at": T0}, {**B}),
        ("INC-A1", "Incident", {"kind": "deviation", "severity": "low", "occurred_at": T0,
                                "title": "Pressure drop"}, {**A}),
        ("INC-B1", "Incident", {"kind": "deviation", "severity": "medium", "occurred_at": T0,
                                "title": "Burr on edge"}, {**B}),
        ("DT-A1", "DowntimeEvent", {"start": T0, "reason": "jam"}, {**A}),
        ("P-A1", "Person", {"role": "operator"}, {**A, "name": "Ann Operator"}),
    ]
    edges = [
        ("LINE-A1", "HAS_MACHINE", "M-A1"),
        ("L-A1", "FOR_MATERIAL", "MAT-RAW"),
        ("L-A1", "SUPPLIED_BY", "SUP-1"),
        ("PO-A1", "FOR_MATERIAL", "MAT-FG"),
        ("PO-B1", "FOR_MATERIAL", "MAT-FG"),
        ("PO-A1", "CONSUMED", "L-A1", {"quantity": 50.0}),
        ("PO-A1", "PRODUCED", "L-A2", {"quantity": 100.0}),
        ("PO-A1", "RAN_ON", "M-A1"),
        ("PO-B1", "CONSUMED", "L-A2", {"quantity": 40.0}),
        ("PO-B1", "PRODUCED", "L-B1", {"quantity": 40.0}),
        ("PO-B1", "RAN_ON", "M-B1"),
        ("L-A2", "ALLOCATED_TO", "SOL-A1", {"quantity": 10.0}),
        ("L-B1", "SHIPPED_TO", "SOL-B1", {"quantity": 10.0, "shipped_at": T1}),
        ("SO-A1", "HAS_SO_LINE", "SOL-A1"),
        ("SO-B1", "HAS_SO_LINE", "SOL-B1"),
        ("SO-A1", "PLACED_BY", "CUST-2"),
        ("SO-B1", "PLACED_BY", "CUST-1"),
        ("SOL-A1", "FOR_MATERIAL", "MAT-FG"),
        ("SOL-B1", "FOR_MATERIAL", "MAT-FG"),
        ("QH-A1", "HOLDS", "L-A1"),
        ("QH-B1", "HOLDS", "L-B1"),
        ("INC-A1", "OCCURRED_ON", "M-A1"),
        ("INC-A1", "CONCERNS", "L-A2"),
        ("INC-B1", "OCCURRED_ON", "M-B1"),
        ("INC-B1", "CONCERNS", "L-B1"),
        ("DT-A1", "OCCURRED_ON", "M-A1"),
        ("P-A1", "WORKS_AT", "SITE-A"),
    ]
    build_graph(store, nodes, edges)
