"""Known answers for delivery risk, root cause and SOP in effect on small hand-built graphs."""

from __future__ import annotations

from datetime import datetime

import pytest
from scipy.stats import fisher_exact

from reasoning.results import RiskBoard
from reasoning.service import Analyses
from store.base import GraphStore
from tests.graphs import build_graph, ts
from tests.reasoning import hand
from tests.reasoning.evidence import assert_paths_exist


def d(day: int, month: int = 4, hour: int = 0) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+00:00"


# ---------------------------------------------------------------------------------------------
# Delivery risk. now = 04-01. Pool order (by due date): SOLF (04-03), SOLA (04-05), SOLG (04-06),
# SOLB (04-08), SOLE (04-09). Free FG stock: LF 20. Open order POB: 50 FG, planned 03-30..04-02.
#   SOLF  2 FG, allocated LFQ (quarantined, no hold)      -> quarantine LFQ; 2 drawn from LF (18 left)
#   SOLA 10 FG, allocated LA held by HA (placed 03-30)     -> hold HA; 10 from LF (8 left)
#   SOLG  4 FG, allocated LR, hold HR released 03-31       -> no cause now; hold HR as of 03-30
#   SOLB 30 FG, nothing allocated                          -> 8 from LF, 22 from POB: POB is behind
#        schedule (planned, start passed), downtime DT1 (no end) on its line's machine, and RAW has no
#        stock while its PO line POL1 (promised 03-28) is overdue -> behind_schedule, downtime, late_supplier
#   SOLE 1000 FG                                           -> 28 from POB, 972 short -> shortage FG (+POB's)
#   SOLC due 04-20 (outside 14 d), SOLD shipped: not on the board.
# ---------------------------------------------------------------------------------------------

def lot(lid: str, qty: float, status: str = "released") -> tuple:  # type: ignore[type-arg]
    return (lid, "Lot", {"quantity": qty, "status": status})


def sol(sid: str, qty: float, due: str, status: str = "open") -> tuple:  # type: ignore[type-arg]
    return (sid, "SalesOrderLine", {"quantity": qty, "due_date": due, "status": status})


RISK_NODES = [
    ("FG", "Material", {"kind": "finished"}), ("RAW", "Material", {"kind": "raw"}),
    ("RAW2", "Material", {"kind": "raw"}), ("B1", "BomItem", {"quantity": 1.0}),
    ("CUST", "Customer"), ("SO", "SalesOrder", {"order_date": d(1, 3)}),
    sol("SOLF", 2, d(3)), sol("SOLA", 10, d(5)), sol("SOLG", 4, d(6)), sol("SOLB", 30, d(8)),
    sol("SOLE", 1000, d(9)), sol("SOLC", 5, d(20)), sol("SOLD", 5, d(10), "shipped"),
    lot("LFQ", 2, "quarantined"), lot("LA", 10, "on_hold"), lot("LR", 4), lot("LF", 20), lot("RS1", 100),
    ("HA", "QualityHold", {"reason": "pH out of spec", "placed_at": d(30, 3)}),
    ("HR", "QualityHold", {"reason": "label check", "placed_at": d(20, 3), "released_at": d(31, 3)}),
    ("POB", "ProductionOrder", {"quantity": 50.0, "status": "planned", "planned_start": d(30, 3),
                                "planned_end": d(2)}),
    ("POOLD", "ProductionOrder", {"quantity": 50.0, "status": "completed", "planned_start": d(1, 3),
                                  "planned_end": d(2, 3)}),
    ("LINE-A", "Line"), ("LINE-B", "Line"), ("MA", "Machine"),
    ("DT1", "DowntimeEvent", {"start": d(31, 3), "reason": "gearbox"}),
    ("PUR", "PurchaseOrder", {"order_date": d(1, 3)}),
    ("POL1", "PurchaseOrderLine", {"quantity": 100.0, "promised_date": d(28, 3)}),
]
RISK_EDGES = [
    *[("SO", "HAS_SO_LINE", s) for s in ("SOLF", "SOLA", "SOLG", "SOLB", "SOLE", "SOLC", "SOLD")],
    *[(s, "FOR_MATERIAL", "FG") for s in ("SOLF", "SOLA", "SOLG", "SOLB", "SOLE", "SOLC", "SOLD")],
    ("SO", "PLACED_BY", "CUST"),
    *[(x, "FOR_MATERIAL", "FG") for x in ("LFQ", "LA", "LR", "LF", "POB", "POOLD")],
    ("RS1", "FOR_MATERIAL", "RAW2"), ("POL1", "FOR_MATERIAL", "RAW"), ("PUR", "HAS_PO_LINE", "POL1"),
    ("LFQ", "ALLOCATED_TO", "SOLF", {"quantity": 2.0}), ("LA", "ALLOCATED_TO", "SOLA", {"quantity": 10.0}),
    ("LR", "ALLOCATED_TO", "SOLG", {"quantity": 4.0}),
    ("HA", "HOLDS", "LA"), ("HR", "HOLDS", "LR"),
    ("FG", "HAS_BOM_ITEM", "B1"), ("B1", "COMPONENT", "RAW"), ("B1", "APPROVED_SUBSTITUTE", "RAW2"),
    ("POB", "SCHEDULED_ON", "LINE-A"), ("POOLD", "SCHEDULED_ON", "LINE-B"), ("LINE-A", "HAS_MACHINE", "MA"),
    ("DT1", "OCCURRED_ON", "MA"),
]


@pytest.fixture
def risk_plant(store: GraphStore) -> Analyses:
    build_graph(store, RISK_NODES, RISK_EDGES)
    return Analyses(store, now=ts(d(1)), rules_dirs=[])


def causes(board: RiskBoard) -> dict[str, set[tuple[str, str]]]:
    return {ln.line.id: {(c.kind, c.entity.id) for c in ln.causes} for ln in board.lines}


def test_risk_board_causes(risk_plant: Analyses) -> None:
    b = risk_plant.risk(14)
    got = causes(b)
    assert set(got) == {"SOLF", "SOLA", "SOLG", "SOLB", "SOLE"}
    assert b.lines_considered == 5
    assert got["SOLF"] == {("quarantine", "LFQ")}
    assert got["SOLA"] == {("hold", "HA")}
    assert got["SOLG"] == set()
    assert got["SOLB"] == {("behind_schedule", "POB"), ("downtime", "DT1"), ("late_supplier", "POL1")}
    assert ("shortage", "FG") in got["SOLE"]
    by = {ln.line.id: ln for ln in b.lines}
    assert by["SOLG"].level == "none" and by["SOLG"].score == 0
    assert by["SOLG"].slack_hours == pytest.approx(5 * 24)
    assert by["SOLA"].slack_hours is None  # a hold has no planned release
    assert by["SOLE"].score >= by["SOLA"].score > 0
    assert [ln.score for ln in b.lines] == sorted((ln.score for ln in b.lines), reverse=True)
    opts = {(o.kind, o.entity.id) for o in by["SOLB"].options}
    assert ("substitute", "RAW2") in opts
    assert ("alternative_line", "LINE-B") in opts
    assert ("alternative_lot", "LF") in {(o.kind, o.entity.id) for o in by["SOLA"].options}
    paths = [p for ln in b.lines for c in ln.causes for p in c.evidence]
    paths += [p for ln in b.lines for o in ln.options for p in o.evidence]
    assert assert_paths_exist(risk_plant.store, paths) > 0


def test_risk_as_of_before_and_after_hold_release(risk_plant: Analyses) -> None:
    before = causes(risk_plant.risk(14, as_of=ts(d(30, 3, 12))))
    assert ("hold", "HR") in before["SOLG"]  # HR was placed 03-20 and released 03-31
    assert ("hold", "HA") in before["SOLA"]  # HA placed 03-30 00:00
    earlier = causes(risk_plant.risk(14, as_of=ts(d(29, 3))))
    assert not any(k == "hold" for k, _ in earlier["SOLA"])  # HA not placed yet
    after = causes(risk_plant.risk(14))
    assert not any(k == "hold" for k, _ in after["SOLG"])


def test_risk_plant_filter_and_horizon(risk_plant: Analyses) -> None:
    assert risk_plant.risk(3).lines_considered == 1  # SOLF (04-03)
    assert risk_plant.risk(4).lines_considered == 2  # the horizon end is inclusive: SOLA is due 04-05 00:00
    assert risk_plant.risk(14, plant="SITE-NONE").lines_considered == 0
    with pytest.raises(ValueError, match="horizon"):
        risk_plant.risk(0)


# ---------------------------------------------------------------------------------------------
# Root cause: six lots of material MF, three made on machine MX (all bad), three on MY (good).
# Every order consumed supplier lot RLX; bad orders ran under SOPV-B, good ones under SOPV-A,
# except O3 (bad), which ran under SOPV-A: so MX is shared by all bad lots, SOPV-B by two of three.
# ---------------------------------------------------------------------------------------------

RC_NODES = [
    ("MF", "Material", {"kind": "finished"}), ("MR", "Material", {"kind": "raw"}),
    ("MX", "Machine"), ("MY", "Machine"), ("SUPX", "Supplier"), lot("RLX", 500),
    ("SOP", "SOP", {"title": "fill"}),
    ("SOPV-A", "SOPVersion", {"version": "A", "effective_from": d(1, 1), "text": "a"}),
    ("SOPV-B", "SOPVersion", {"version": "B", "effective_from": d(1, 1), "text": "b"}),
    ("INCX", "Incident", {"kind": "nonconformance", "severity": "high", "occurred_at": d(5, 3), "title": "leak"}),
    *[lot(f"L{i}", 10) for i in range(1, 7)],
    *[(f"O{i}", "ProductionOrder", {"quantity": 10.0, "status": "completed", "planned_start": d(1, 3),
                                    "planned_end": d(2, 3)}) for i in range(1, 7)],
]
RC_EDGES = [
    ("RLX", "SUPPLIED_BY", "SUPX"), ("RLX", "FOR_MATERIAL", "MR"),
    *[(f"O{i}", "CONSUMED", "RLX", {"quantity": 1.0}) for i in range(1, 7)],
    *[(f"O{i}", "PRODUCED", f"L{i}", {"quantity": 10.0}) for i in range(1, 7)],
    *[(f"L{i}", "FOR_MATERIAL", "MF") for i in range(1, 7)],
    *[(f"O{i}", "RAN_ON", "MX") for i in (1, 2, 3)], *[(f"O{i}", "RAN_ON", "MY") for i in (4, 5, 6)],
    ("O1", "USED_SOP", "SOPV-B"), ("O2", "USED_SOP", "SOPV-B"), ("O3", "USED_SOP", "SOPV-A"),
    *[(f"O{i}", "USED_SOP", "SOPV-A") for i in (4, 5, 6)],
    *[("INCX", "CONCERNS", f"L{i}") for i in (1, 2, 3)],
]


@pytest.fixture
def rc_plant(store: GraphStore) -> Analyses:
    build_graph(store, RC_NODES, RC_EDGES)
    return Analyses(store, now=ts(d(1)), rules_dirs=[])


@pytest.mark.parametrize("by_incident", [False, True])
def test_rootcause_ranks_shared_machine_first(rc_plant: Analyses, by_incident: bool) -> None:
    r = rc_plant.rootcause(incident="INCX") if by_incident else rc_plant.rootcause(lots=["L1", "L2", "L3"])
    assert r.bad_lots == ["L1", "L2", "L3"]
    assert r.good_lots == ["L4", "L5", "L6"]
    top = r.factors[0]
    assert (top.factor_class, top.factor.id) == ("Machine", "MX")
    assert (top.bad_with, top.bad_total, top.good_with, top.good_total) == (3, 3, 0, 3)
    assert top.support == 1.0
    assert top.p_value == pytest.approx(fisher_exact([[3, 0], [0, 3]], alternative="greater")[1])
    by = {f.factor.id: f for f in r.factors}
    assert (by["SOPV-B"].bad_with, by["SOPV-B"].good_with) == (2, 0)
    assert (by["RLX"].bad_with, by["RLX"].good_with) == (3, 3) and by["RLX"].p_value == pytest.approx(1.0)
    assert by["SUPX"].lift < top.lift
    assert "MY" not in by  # only factors of bad lots are candidates
    assert [f.rank for f in r.factors] == list(range(1, len(r.factors) + 1))
    assert assert_paths_exist(rc_plant.store, [p for f in r.factors for p in f.evidence]) > 0


def test_rootcause_needs_lots(rc_plant: Analyses) -> None:
    with pytest.raises(ValueError, match="bad lots"):
        rc_plant.rootcause(lots=[])


# ---------------------------------------------------------------------------------------------
# SOP in effect (hand plant: SOP1 applies to MAT-F; SOPV1 effective 03-01..03-03, SOPV2 from 03-03)
# ---------------------------------------------------------------------------------------------

def test_sop_in_effect_flags_superseded(store: GraphStore) -> None:
    hand.build(store)
    a = Analyses(store, now=ts(hand.t(11)), rules_dirs=[])
    r = a.sop_in_effect("PO2")  # started 03-03 08:00, recorded SOPV1
    assert r.at == ts(hand.t(3, 8))
    assert r.sop_version == "SOPV2"
    assert r.used_version is not None and r.used_version.id == "SOPV1"
    assert r.superseded and r.superseded_detail and "SOPV2" in r.superseded_detail
    assert [(m.sop.id, m.applies_via, m.applies_to) for m in r.in_effect] == [("SOP1", "material", "MAT-F")]
    early = a.sop_in_effect("PO2", at=ts(hand.t(2, 12)))
    assert early.sop_version == "SOPV1" and not early.superseded
    boundary = a.sop_in_effect("PO2", at=ts(hand.t(3)))  # effective_to is exclusive
    assert boundary.sop_version == "SOPV2"
    none = a.sop_in_effect("PO1")  # no SOP applies to MAT-I or M1
    assert none.sop_version is None and none.in_effect == [] and not none.superseded
    assert assert_paths_exist(store, [p for m in r.in_effect for p in m.evidence] + r.evidence) > 0


def test_sop_unknown_order(store: GraphStore) -> None:
    hand.build(store)
    a = Analyses(store, now=ts(hand.t(11)), rules_dirs=[])
    from reasoning.errors import NotFoundError

    with pytest.raises(NotFoundError):
        a.sop_in_effect("NOPE")


_ = datetime
