"""A small two-plant graph built by hand for the copilot tests (names, aliases, texts, events).

    SITE-BER: Line 2 (LINE-BER-2) with Mixer 7 (M-7) and Filler 3 (M-3)
    SITE-CHI: Line 2 (LINE-CHI-2) with Mixer 9 (M-9)
    customers: Acme Foods (CUS-1, alias "Acme"), Globex Retail (CUS-2), Acme Logistics (CUS-3)
    SUP-1 Sweet Supply Co supplies LOT-100 (sugar) -> MO-1 (on M-7, 2026-03-02 06-10) -> LOT-200
    LOT-200 allocated to SOL-1 (SO-1, Acme Foods)
    INC-1 nonconformance on M-7 at 2026-03-02T08:00Z concerning LOT-200, with a narrative text
    DT-1 downtime on M-7 2026-03-02T22:00Z..2026-03-03T02:00Z ("bearing overheated")
    SOP-1 "Syrup blending" applies to M-7; SOPV-1 (v1, 2026-01-01..2026-03-01), SOPV-2 (v2, from 2026-03-01)
"""

from __future__ import annotations

from store.base import GraphStore
from tests.graphs import build_graph

NOW = "2026-03-03T12:00:00+00:00"

SOPV2_TEXT = (
    "Blend the syrup at 65 degrees for twenty minutes.\n\n"
    "Check the Brix value before transfer. Reject the batch when Brix is below 10.5."
)
INC1_TEXT = "Foreign particles were found in the syrup. The mixer seal was worn and shed fragments."


def build_plant(store: GraphStore) -> None:
    ber, chi = {"plant": "SITE-BER"}, {"plant": "SITE-CHI"}
    build_graph(
        store,
        nodes=[
            ("SITE-BER", "Site", {"country": "DE"}, {"name": "Berlin plant"}),
            ("SITE-CHI", "Site", {"country": "US"}, {"name": "Chicago plant"}),
            ("AREA-BER", "Area", {}, {"name": "Berlin syrup area", **ber}),
            ("AREA-CHI", "Area", {}, {"name": "Chicago syrup area", **chi}),
            ("LINE-BER-2", "Line", {}, {"name": "Line 2", **ber}),
            ("LINE-CHI-2", "Line", {}, {"name": "Line 2", **chi}),
            ("M-7", "Machine", {"machine_type": "mixer"}, {"name": "Mixer 7", **ber}),
            ("M-3", "Machine", {"machine_type": "filler"}, {"name": "Filler 3", **ber}),
            ("M-9", "Machine", {"machine_type": "mixer"}, {"name": "Mixer 9", **chi}),
            ("CUS-1", "Customer", {"country": "DE", "aliases": ["Acme"]}, {"name": "Acme Foods"}),
            ("CUS-2", "Customer", {"country": "US"}, {"name": "Globex Retail"}),
            ("CUS-3", "Customer", {"country": "US"}, {"name": "Acme Logistics"}),
            ("SUP-1", "Supplier", {"country": "FR"}, {"name": "Sweet Supply Co"}),
            ("MAT-SUGAR", "Material", {"kind": "raw", "aliases": ["sugar"]}, {"name": "Cane sugar"}),
            ("MAT-SYRUP", "Material", {"kind": "finished"}, {"name": "Lemon syrup"}),
            ("LOT-100", "Lot", {"quantity": 500.0, "status": "consumed"}, ber),
            ("LOT-200", "Lot", {"quantity": 300.0, "status": "on_hold"}, ber),
            ("MO-1", "ProductionOrder", {"quantity": 300.0, "status": "completed",
                                         "planned_start": "2026-03-02T06:00:00+00:00",
                                         "planned_end": "2026-03-02T10:00:00+00:00",
                                         "actual_start": "2026-03-02T06:00:00+00:00",
                                         "actual_end": "2026-03-02T10:00:00+00:00"}, ber),
            ("SO-1", "SalesOrder", {"order_date": "2026-02-20T00:00:00+00:00"}, ber),
            ("SOL-1", "SalesOrderLine", {"quantity": 300.0, "due_date": "2026-03-06T00:00:00+00:00"}, ber),
            ("INC-1", "Incident", {"kind": "nonconformance", "severity": "high",
                                   "occurred_at": "2026-03-02T08:00:00+00:00",
                                   "title": "Foreign particles in syrup", "text": INC1_TEXT}, ber),
            ("DT-1", "DowntimeEvent", {"start": "2026-03-02T22:00:00+00:00",
                                       "end": "2026-03-03T02:00:00+00:00", "reason": "bearing overheated"}, ber),
            ("SOP-1", "SOP", {"title": "Syrup blending", "operation": "blending"}, ber),
            ("SOPV-1", "SOPVersion", {"version": "1", "effective_from": "2026-01-01T00:00:00+00:00",
                                      "effective_to": "2026-03-01T00:00:00+00:00",
                                      "text": "Blend the syrup at 60 degrees."}, ber),
            ("SOPV-2", "SOPVersion", {"version": "2", "effective_from": "2026-03-01T00:00:00+00:00",
                                      "text": SOPV2_TEXT}, ber),
            ("HOLD-1", "QualityHold", {"reason": "foreign particles", "placed_at": "2026-03-02T09:00:00+00:00"},
             ber),
        ],
        edges=[
            ("SITE-BER", "HAS_AREA", "AREA-BER"), ("SITE-CHI", "HAS_AREA", "AREA-CHI"),
            ("AREA-BER", "HAS_LINE", "LINE-BER-2"), ("AREA-CHI", "HAS_LINE", "LINE-CHI-2"),
            ("LINE-BER-2", "HAS_MACHINE", "M-7"), ("LINE-BER-2", "HAS_MACHINE", "M-3"),
            ("LINE-CHI-2", "HAS_MACHINE", "M-9"),
            ("SUP-1", "SUPPLIES", "MAT-SUGAR"), ("LOT-100", "SUPPLIED_BY", "SUP-1"),
            ("LOT-100", "FOR_MATERIAL", "MAT-SUGAR"), ("LOT-200", "FOR_MATERIAL", "MAT-SYRUP"),
            ("MO-1", "CONSUMED", "LOT-100", {"quantity": 500.0}), ("MO-1", "PRODUCED", "LOT-200", {"quantity": 300.0}),
            ("MO-1", "RAN_ON", "M-7", {"start": "2026-03-02T06:00:00+00:00", "end": "2026-03-02T10:00:00+00:00"}),
            ("MO-1", "USED_SOP", "SOPV-2"),
            ("SO-1", "PLACED_BY", "CUS-1"), ("SO-1", "HAS_SO_LINE", "SOL-1"),
            ("LOT-200", "ALLOCATED_TO", "SOL-1", {"quantity": 300.0}),
            ("INC-1", "OCCURRED_ON", "M-7"), ("INC-1", "CONCERNS", "LOT-200"),
            ("DT-1", "OCCURRED_ON", "M-7"),
            ("SOPV-1", "VERSION_OF", "SOP-1"), ("SOPV-2", "VERSION_OF", "SOP-1"), ("SOP-1", "APPLIES_TO", "M-7"),
            ("HOLD-1", "HOLDS", "LOT-200"),
        ],
    )
