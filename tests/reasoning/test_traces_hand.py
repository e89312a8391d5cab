"""Known answers on the hand-built plant of tests/reasoning/hand.py (worked out on paper)."""

from __future__ import annotations

from datetime import datetime

import pytest

from reasoning.errors import NotFoundError
from reasoning.results import TraceResult
from reasoning.service import Analyses
from store.base import GraphStore
from tests.reasoning import hand
from tests.reasoning.evidence import assert_paths_exist


def T(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.fromisoformat(hand.t(day, hour)).replace(minute=minute)


@pytest.fixture
def plant(store: GraphStore) -> Analyses:
    hand.build(store)
    return Analyses(store, now=T(11), rules_dirs=[])


def ids(items: list) -> set[str]:  # type: ignore[type-arg]
    return {x.entity.id for x in items}


def check_evidence(a: Analyses, r: TraceResult) -> None:
    every = [r for group in r.reached.values() for r in group]
    assert all(e.evidence for e in every), "every reached entity carries evidence"
    assert assert_paths_exist(a.store, r.all_evidence(), r.as_of) > 0


def test_forward_conservative_split_merge_cycle(plant: Analyses) -> None:
    r = plant.trace_lot("RL1")
    assert r.mode == "conservative" and r.direction == "forward"
    assert set(r.ids("Lot")) == {"IL1", "IL2", "FL1", "FL2", "RW1"}
    assert set(r.ids("ProductionOrder")) == {"PO1", "PO2", "PO3", "PO4", "PO5"}
    assert ids(r.sales_order_lines) == {"SOL1", "SOL2"}
    assert ids(r.customers) == {"C1", "C2"}
    assert set(r.shipped_lots) == {"FL2"}
    assert set(r.in_house_lots) == {"IL1", "IL2", "FL1", "RW1"}
    assert not r.caps.truncated
    via = {x.entity.id: x.via for x in r.sales_order_lines}
    assert via == {"SOL1": "allocated", "SOL2": "shipped"}
    check_evidence(plant, r)


def test_forward_lot_precise_narrows(plant: Analyses) -> None:
    r = plant.trace_lot("RL1", lot_precise=True)
    assert r.mode == "lot_precise"
    assert set(r.ids("Lot")) == {"IL1", "FL1"}
    assert set(r.ids("ProductionOrder")) == {"PO1", "PO2"}
    assert ids(r.customers) == {"C1"}
    check_evidence(plant, r)


def test_merge_only_reaches_downstream(plant: Analyses) -> None:
    r = plant.trace_lot("RL3")
    assert set(r.ids("Lot")) == {"FL1"}
    assert set(r.ids("ProductionOrder")) == {"PO2"}
    assert ids(r.sales_order_lines) == {"SOL1"}
    assert r.shipped_lots == [] and r.in_house_lots == ["FL1"]


def test_cycle_terminates_and_excludes_start(plant: Analyses) -> None:
    r = plant.trace_lot("FL2")
    assert set(r.ids("Lot")) == {"RW1"}
    assert set(r.ids("ProductionOrder")) == {"PO4", "PO5"}
    assert r.shipped_lots == ["FL2"]  # the start lot itself is at the customer
    assert r.in_house_lots == ["RW1"]
    assert ids(r.customers) == {"C2"}
    check_evidence(plant, r)


def test_as_of_before_shipment(plant: Analyses) -> None:
    r = plant.trace_lot("RL1", as_of=T(6))
    assert set(r.ids("Lot")) == {"IL1", "IL2", "FL1", "FL2", "RW1"}
    assert r.shipped_lots == []  # the SHIPPED_TO edge is valid only from 03-10
    assert ids(r.sales_order_lines) == {"SOL1"}
    assert ids(r.customers) == {"C1"}
    check_evidence(plant, r)


def test_hold_trace_and_status_before_and_after_release(plant: Analyses) -> None:
    r = plant.trace_hold("H1")
    assert r.start_lots == ["RL1"]
    assert set(r.ids("Lot")) == {"IL1", "IL2", "FL1", "FL2", "RW1"}
    for path in r.all_evidence():
        assert path.steps[0].rel == "HOLDS" and path.steps[0].src == "H1"
    check_evidence(plant, r)
    during = plant.backward("IL1", as_of=T(3))
    after = plant.backward("IL1", as_of=T(6))
    status = {e.entity.id: e.entity.status for e in during.reached["Lot"]}
    assert status["RL1"] == "on_hold"
    status = {e.entity.id: e.entity.status for e in after.reached["Lot"]}
    assert status["RL1"] == "released"


@pytest.mark.parametrize(
    ("start", "end", "orders", "lots"),
    [
        ((2, 9), (2, 11), {"PO1"}, {"IL1", "IL2"}),
        ((2, 10), (2, 12), set(), set()),  # half-open windows: PO1 ends at 10:00, PO3 starts at 12:00
        ((2, 13), (2, 14), {"PO3"}, {"FL2"}),  # PO3 has no RAN_ON times: actual start/end are used
        ((1, 0), (5, 0), {"PO1", "PO3"}, {"IL1", "IL2", "FL2"}),
    ],
)
def test_machine_window(plant: Analyses, start: tuple[int, int], end: tuple[int, int],
                        orders: set[str], lots: set[str]) -> None:
    r = plant.trace_machine("M1", T(*start), T(*end))
    assert set(r.start_orders) == orders
    assert set(r.start_lots) == lots
    if lots:
        check_evidence(plant, r)


def test_machine_window_reaches_customers(plant: Analyses) -> None:
    r = plant.trace_machine("M1", T(2, 9), T(2, 11))
    assert set(r.ids("Lot")) >= {"FL1", "FL2", "RW1"}
    assert ids(r.customers) == {"C1", "C2"}


def test_incident_without_concerns_uses_machine_window(plant: Analyses) -> None:
    r = plant.trace_incident("INC2")  # 11:00 on M1, no downtime event: 24 h from the incident
    assert r.window_from == T(2, 11)
    assert set(r.start_orders) == {"PO3"}
    assert set(r.start_lots) == {"FL2"}
    check_evidence(plant, r)


def test_backward(plant: Analyses) -> None:
    r = plant.backward("FL1")
    got = {cls: {e.entity.id for e in g} for cls, g in r.reached.items()}
    assert got["Lot"] == {"IL1", "RL1", "RL2", "RL3"}
    assert got["ProductionOrder"] == {"PO1", "PO2"}
    assert got["Supplier"] == {"SUP1", "SUP2"}
    assert got["Machine"] == {"M1", "M2"}
    assert got["SOPVersion"] == {"SOPV1"}
    assert got["Shift"] == {"SH1"} and got["Person"] == {"OP1"}
    assert got["Incident"] == {"INC1"}  # INC1 at 09:00 is inside PO1's run; INC2 at 11:00 is not
    supplier_lots = {e.entity.id for e in r.reached["Lot"] if e.via == "supplier_lot"}
    assert supplier_lots == {"RL1", "RL2", "RL3"}
    check_evidence(plant, r)


def test_depth_cap_is_reported(store: GraphStore) -> None:
    hand.build(store)
    a = Analyses(store, now=T(11), rules_dirs=[], max_depth=1)
    r = a.trace_lot("RL1")
    assert r.caps.depth_limit_hit and r.caps.truncated and r.caps.notes
    assert set(r.ids("Lot")) == {"IL1", "IL2"}


def test_result_cap_is_reported(store: GraphStore) -> None:
    hand.build(store)
    a = Analyses(store, now=T(11), rules_dirs=[], max_results=2)
    r = a.trace_lot("RL1")
    assert r.caps.result_limit_hit
    assert len(r.ids("Lot")) == 2


def test_unknown_or_wrong_class_start(plant: Analyses) -> None:
    with pytest.raises(NotFoundError, match="no Lot with id 'NOPE'"):
        plant.trace_lot("NOPE")
    with pytest.raises(NotFoundError, match="is a ProductionOrder, expected Lot"):
        plant.trace_lot("PO1")


def test_results_are_deterministic(plant: Analyses) -> None:
    assert plant.trace_lot("RL1").model_dump_json() == plant.trace_lot("RL1").model_dump_json()


@pytest.mark.parametrize("rule", ["forward_genealogy", "backward_genealogy"])
@pytest.mark.parametrize("start", ["RL1", "RL2", "RL3", "IL1", "FL1", "FL2", "RW1"])
def test_fast_path_gives_the_automaton_answers(plant: Analyses, rule: str, start: str) -> None:
    from reasoning.engine import RuleEngine

    fast = RuleEngine(plant.store).evaluate(plant.rules[rule], {"lots": [start]})
    slow = RuleEngine(plant.store, fast_path=False).evaluate(plant.rules[rule], {"lots": [start]})
    assert {v: set(b) for v, b in fast.bindings.items()} == {v: set(b) for v, b in slow.bindings.items()}
    for m in fast.matches("lot") + slow.matches("lot"):
        assert m.steps[-1].dst == m.node.id
    if fast.matches("lot"):
        assert assert_paths_exist(plant.store, [m.evidence() for m in fast.matches("lot")]) > 0


def test_incident_window_ends_when_the_fix_is_completed(store: GraphStore) -> None:
    from tests.graphs import build_graph

    hand.build(store)
    build_graph(store, [("MNT1", "MaintenanceOrder", {"kind": "corrective", "status": "completed",
                                                       "created_at": hand.t(2, 11),
                                                       "completed_at": "2026-03-02T11:30:00+00:00"})],
                [("MNT1", "ADDRESSES", "INC2"), ("MNT1", "OCCURRED_ON", "M1")])
    a = Analyses(store, now=T(11), rules_dirs=[])
    r = a.trace_incident("INC2")
    assert (r.window_from, r.window_to) == (T(2, 11), T(2, 11, 30))
    assert r.start_orders == [] and r.start_lots == []  # PO3 starts at 12:00, after the fix
