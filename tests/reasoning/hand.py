"""A small plant built by hand, with every expected answer worked out on paper (see the picture).

Genealogy (CONSUMED / PRODUCED), with a split, a merge and a rework cycle::

    RL1 (SUP1) --+                     +--> IL1 --+
                 +--> PO1 (M1, 08-10) -+          +--> PO2 (M2) --> FL1 --allocated--> SOL1 (SO1, C1)
    RL2 (SUP2) --+                     +--> IL2 --+   ^
                                       |          |   RL3 (SUP1)
                                       |          +--> PO3 (M1, 12-14) --> FL2 --shipped--> SOL2 (SO2, C2)
                                       |                                   ^  |
                                       |                 PO5 <-- RW1 <-- PO4 <-+   (rework cycle FL2 -> RW1 -> FL2)

Lot-precise links: IL1 DERIVED_FROM RL1, IL2 DERIVED_FROM RL2.
Hold H1 on RL1: placed 2026-03-01, released 2026-03-05 (RL1's stored status is still on_hold).
FL2 was shipped to SOL2 at 2026-03-10 (the edge is valid from then).
"""

from __future__ import annotations

from store.base import GraphStore
from tests.graphs import build_graph


def t(day: int, hour: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00+00:00"


def lot(lid: str, qty: float = 10.0, status: str = "released", material: str | None = None) -> tuple:  # type: ignore[type-arg]
    return (lid, "Lot", {"quantity": qty, "unit": "kg", "status": status})


def order(oid: str, start: str | None, end: str | None, status: str = "completed",
          planned: tuple[str, str] = (t(1), t(2))) -> tuple:  # type: ignore[type-arg]
    props: dict[str, object] = {"quantity": 10.0, "status": status, "planned_start": planned[0],
                                "planned_end": planned[1]}
    if start:
        props["actual_start"] = start
    if end:
        props["actual_end"] = end
    return (oid, "ProductionOrder", props)


NODES = [
    ("SUP1", "Supplier"), ("SUP2", "Supplier"),
    ("C1", "Customer"), ("C2", "Customer"),
    ("MAT-R", "Material", {"kind": "raw"}), ("MAT-I", "Material", {"kind": "intermediate"}),
    ("MAT-F", "Material", {"kind": "finished"}),
    ("LINE1", "Line"), ("M1", "Machine"), ("M2", "Machine"),
    lot("RL1", 100, "on_hold"), lot("RL2", 50), lot("RL3", 20),
    lot("IL1", 40), lot("IL2", 60), lot("FL1", 30), lot("FL2", 25, "shipped"), lot("RW1", 5),
    order("PO1", t(2, 8), t(2, 10)), order("PO2", t(3, 8), t(3, 9)),
    order("PO3", t(2, 12), t(2, 14)), order("PO4", t(4, 8), t(4, 9)), order("PO5", t(4, 10), t(4, 11)),
    ("SO1", "SalesOrder", {"order_date": t(1)}), ("SO2", "SalesOrder", {"order_date": t(1)}),
    ("SOL1", "SalesOrderLine", {"quantity": 30.0, "due_date": t(20)}),
    ("SOL2", "SalesOrderLine", {"quantity": 25.0, "due_date": t(12), "status": "shipped"}),
    ("H1", "QualityHold", {"reason": "supplier CoA mismatch", "placed_at": t(1), "released_at": t(5)}),
    ("SH1", "Shift", {"start": t(2, 6), "end": t(2, 14)}),
    ("OP1", "Person", {"role": "operator"}),
    ("SOP1", "SOP", {"title": "Mixing"}),
    ("SOPV1", "SOPVersion", {"version": "1", "effective_from": t(1), "effective_to": t(3), "text": "v1"}),
    ("SOPV2", "SOPVersion", {"version": "2", "effective_from": t(3), "text": "v2"}),
    ("INC1", "Incident", {"kind": "deviation", "severity": "low", "occurred_at": t(2, 9), "title": "jam"}),
    ("INC2", "Incident", {"kind": "deviation", "severity": "low", "occurred_at": t(2, 11), "title": "idle"}),
]

EDGES = [
    ("RL1", "SUPPLIED_BY", "SUP1"), ("RL2", "SUPPLIED_BY", "SUP2"), ("RL3", "SUPPLIED_BY", "SUP1"),
    ("PO1", "CONSUMED", "RL1", {"quantity": 40.0}), ("PO1", "CONSUMED", "RL2", {"quantity": 50.0}),
    ("PO1", "PRODUCED", "IL1", {"quantity": 40.0}), ("PO1", "PRODUCED", "IL2", {"quantity": 60.0}),
    ("PO2", "CONSUMED", "IL1", {"quantity": 20.0}), ("PO2", "CONSUMED", "RL3", {"quantity": 10.0}),
    ("PO2", "PRODUCED", "FL1", {"quantity": 30.0}),
    ("PO3", "CONSUMED", "IL2", {"quantity": 25.0}), ("PO3", "PRODUCED", "FL2", {"quantity": 25.0}),
    ("PO4", "CONSUMED", "FL2", {"quantity": 5.0}), ("PO4", "PRODUCED", "RW1", {"quantity": 5.0}),
    ("PO5", "CONSUMED", "RW1", {"quantity": 5.0}), ("PO5", "PRODUCED", "FL2", {"quantity": 5.0}),
    ("IL1", "DERIVED_FROM", "RL1", {"quantity": 40.0}), ("IL2", "DERIVED_FROM", "RL2", {"quantity": 60.0}),
    ("FL1", "ALLOCATED_TO", "SOL1", {"quantity": 30.0}),
    ("FL2", "SHIPPED_TO", "SOL2", {"quantity": 25.0, "shipped_at": t(10)}, {"valid_from": t(10)}),
    ("SO1", "HAS_SO_LINE", "SOL1"), ("SO2", "HAS_SO_LINE", "SOL2"),
    ("SO1", "PLACED_BY", "C1"), ("SO2", "PLACED_BY", "C2"),
    ("H1", "HOLDS", "RL1"),
    ("PO1", "RAN_ON", "M1", {"start": t(2, 8), "end": t(2, 10)}), ("PO3", "RAN_ON", "M1"),
    ("PO2", "RAN_ON", "M2"),
    ("PO1", "DURING_SHIFT", "SH1"), ("PO1", "OPERATED_BY", "OP1"),
    ("PO1", "USED_SOP", "SOPV1"), ("PO2", "USED_SOP", "SOPV1"),
    ("SOPV1", "VERSION_OF", "SOP1"), ("SOPV2", "VERSION_OF", "SOP1"), ("SOP1", "APPLIES_TO", "MAT-F"),
    ("PO2", "FOR_MATERIAL", "MAT-F"), ("PO1", "FOR_MATERIAL", "MAT-I"),
    ("INC1", "OCCURRED_ON", "M1"), ("INC2", "OCCURRED_ON", "M1"),
]


def build(store: GraphStore) -> None:
    from datetime import datetime

    def fix(common: dict[str, str]) -> dict[str, datetime]:
        return {k: datetime.fromisoformat(v) for k, v in common.items()}

    edges = [(*e[:4], fix(e[4])) if len(e) == 5 else e for e in EDGES]  # type: ignore[misc]
    build_graph(store, NODES, edges)
