"""The generator's injected scenarios (truth.json, small scale): every analysis returns exactly the
known answer (set equality), and every evidence path of every result exists in the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from graph_loader.generator import generate, named_spec
from graph_loader.generator.truth import Truth, load_truth
from graph_loader.loader import load_bundle
from reasoning.analyses.common import lot_status
from reasoning.results import EvidencePath
from reasoning.service import Analyses
from tests.conftest import BACKEND_PARAMS, open_backend
from tests.reasoning.evidence import assert_paths_exist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("truth") / "bundle"
    generate(named_spec("small"), 7, out)
    return out


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def plant(request: pytest.FixtureRequest, small_bundle: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Analyses, Truth]]:
    store = open_backend(str(request.param), tmp_path_factory.mktemp("truth-store"))
    try:
        load_bundle(store, small_bundle)
        truth = load_truth(small_bundle / "truth.json")
        yield Analyses(store, now=truth.now, rules_dirs=[]), truth
    finally:
        store.close()


def ids(items: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(x.entity.id for x in items)


def test_contaminated_supplier_lot(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    c = truth.scenarios.contaminated_supplier_lot
    r = a.trace_lot(c.supplier_lot)
    assert r.ids("Lot") == sorted(c.reached_lots)
    assert r.ids("ProductionOrder") == sorted(c.reached_production_orders)
    assert ids(r.sales_order_lines) == sorted(c.reached_sales_order_lines)
    assert ids(r.customers) == sorted(c.reached_customers)
    assert r.shipped_lots == sorted(c.shipped_lots)
    assert r.in_house_lots == sorted(c.in_house_lots)
    assert assert_paths_exist(a.store, r.all_evidence()) > 0
    # and backward from any reached lot finds the supplier lot and its supplier
    back = a.backward(c.reached_lots[0])
    assert c.supplier_lot in back.ids("Lot")
    assert c.supplier in back.ids("Supplier")
    assert assert_paths_exist(a.store, back.all_evidence()) > 0


def test_machine_fault(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    m = truth.scenarios.machine_fault
    for r in (a.trace_machine(m.machine, m.from_, m.to), a.trace_incident(m.incident)):
        assert r.start_orders == sorted(m.affected_production_orders)
        assert r.start_lots == sorted(m.affected_lots)
        assert ids(r.sales_order_lines) == sorted(m.reached_sales_order_lines)
        assert ids(r.customers) == sorted(m.reached_customers)
        assert assert_paths_exist(a.store, r.all_evidence()) > 0


def test_quality_hold(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    h = truth.scenarios.quality_hold
    r = a.trace_hold(h.hold)
    assert r.start_lots == [h.lot]
    assert r.ids("Lot") == sorted(h.reached_lots)
    assert ids(r.sales_order_lines) == sorted(h.reached_sales_order_lines)
    assert ids(r.customers) == sorted(h.affected_customers)
    assert assert_paths_exist(a.store, r.all_evidence()) > 0
    # as of just before the hold was placed the lot reads released; just after, on hold
    lot = a.store.get_node(h.lot)
    assert lot is not None
    assert lot_status(a.store, lot, h.placed_at - timedelta(minutes=1)) == "released"
    assert lot_status(a.store, lot, h.placed_at + timedelta(minutes=1)) == "on_hold"


def test_root_cause(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    rc = truth.scenarios.root_cause
    for r in (a.rootcause(incident=rc.incident), a.rootcause(lots=rc.bad_lots)):
        assert r.bad_lots == sorted(rc.bad_lots)
        top = r.factors[0]
        assert (top.factor_class, top.factor.id) == (rc.factor_class, rc.factor)
        assert top.bad_with == len(rc.bad_lots)
        assert top.p_value < 0.01
        assert assert_paths_exist(a.store, [p for f in r.factors[:10] for p in f.evidence]) > 0


def test_deliveries_at_risk(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    dr = truth.scenarios.deliveries_at_risk
    board = a.risk(dr.horizon_days)
    held = sorted(ln.line.id for ln in board.lines if any(c.kind in ("hold", "quarantine") for c in ln.causes))
    assert held == sorted(dr.lines_with_held_allocations)
    found = {ln.line.id: {(c.kind, c.entity.id) for c in ln.causes} for ln in board.lines}
    for line, causes in dr.lines.items():
        for cause in causes:
            assert (cause.kind, cause.entity) in found.get(line, set()), (line, cause)
    paths: list[EvidencePath] = [p for ln in board.lines for c in ln.causes for p in c.evidence]
    paths += [p for ln in board.lines for o in ln.options for p in o.evidence]
    assert assert_paths_exist(a.store, [p for p in paths if p.steps]) > 0


def test_sop_in_effect(plant: tuple[Analyses, Truth]) -> None:
    a, truth = plant
    assert truth.scenarios.sop_in_effect
    for e in truth.scenarios.sop_in_effect:
        r = a.sop_in_effect(e.order, e.machine, e.at)
        assert (r.sop_version, r.superseded) == (e.sop_version, e.superseded), e
        assert assert_paths_exist(a.store, [p for m in r.in_effect for p in m.evidence]) > 0
