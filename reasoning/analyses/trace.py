"""Forward impact traces (lot, hold, machine window, incident) and backward genealogy."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal, ParamSpec, TypeVar

from reasoning import trusted
from reasoning.analyses.common import Context, compose, prop_time, ref
from reasoning.engine import EdgeCache, Match, NodeCache, as_time
from reasoning.gcpause import paused_gc
from reasoning.results import (
    Caps,
    EvidencePath,
    EvidenceStep,
    QuantityTotal,
    ReachedEntity,
    TraceResult,
)
from store.base import Direction, NodeRecord

Analysis = Literal["trace_lot", "trace_hold", "trace_machine", "trace_incident", "backward"]

#: How long after an incident on a machine its output is suspect when nothing else bounds it.
INCIDENT_WINDOW_BEFORE = timedelta(hours=0)
INCIDENT_WINDOW_AFTER = timedelta(hours=24)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a trace with the cyclic collector paused (:mod:`reasoning.gcpause`): a wide trace
    allocates thousands of records, steps and result models that all live until it returns, and
    the collector's repeated walks over them were about a sixth of a large hold trace's CPU."""
    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with paused_gc():
            return fn(*args, **kwargs)
    return run


def _reached(node: NodeRecord, depth: int, evidence: list[EvidencePath], status: str | None = None,
             via: str | None = None, shipped: bool | None = None) -> ReachedEntity:
    """The reached entity, with its quantity and unit (as the validating constructors would build it)."""
    q = node.props.get("quantity")
    u = node.props.get("unit")
    return trusted.reached(ref(node, status), depth, float(q) if isinstance(q, (int, float)) else None,
                           str(u) if u is not None else None, via, shipped, evidence)


def _totals(reached: Mapping[str, list[ReachedEntity]]) -> list[QuantityTotal]:
    acc: dict[tuple[str, str | None], tuple[float, int]] = {}
    for cls, group in reached.items():
        for r in group:
            if r.quantity is None:
                continue
            q, n = acc.get((cls, r.unit), (0.0, 0))
            acc[(cls, r.unit)] = (q + r.quantity, n + 1)
    return [QuantityTotal(cls=c, unit=u, quantity=round(q, 6), count=n)
            for (c, u), (q, n) in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]


def lot_statuses(ctx: Context, lots: Sequence[NodeRecord], as_of: datetime | None) -> dict[str, str | None]:
    """``common.lot_status`` of many lots with three batch reads instead of two reads per lot: the
    hold edges as of the time, those holds, and (for a stored ``on_hold`` with no hold active
    then) whether the lot was ever held."""
    def stored(lot: NodeRecord) -> str | None:
        st = lot.props.get("status")
        return str(st) if st is not None else None

    if as_of is None or not lots:
        return {lot.id: stored(lot) for lot in lots}
    edges = ctx.store.neighbours_many([lot.id for lot in lots], ["HOLDS"], Direction.IN, as_of)
    holds = ctx.store.get_nodes(sorted({e.src for lst in edges.values() for e in lst}), as_of)

    def active(lot: str) -> bool:  # common.active_holds(store, lot, as_of, as_of) is not empty
        for e in edges.get(lot, []):
            h = holds.get(e.src)
            if h is None or h.cls != "QualityHold":
                continue
            placed, released = prop_time(h, "placed_at"), prop_time(h, "released_at")
            if (placed is None or placed <= as_of) and (released is None or released > as_of):
                return True
        return False

    out: dict[str, str | None] = {}
    maybe_released: list[str] = []
    for lot in lots:
        if active(lot.id):
            out[lot.id] = "on_hold"
        elif lot.props.get("status") == "on_hold":
            maybe_released.append(lot.id)
        else:
            out[lot.id] = stored(lot)
    ever = ctx.store.neighbours_many(maybe_released, ["HOLDS"], Direction.IN, None) if maybe_released else {}
    for lid in maybe_released:
        out[lid] = "released" if ever.get(lid) else "on_hold"
    return out


def _shipped(ctx: Context, lot: str, as_of: datetime | None, cache: EdgeCache) -> bool:
    """A SHIPPED_TO edge (shipped by as_of); reuses the edges lots_to_customers read."""
    key = (lot, ("ALLOCATED_TO", "SHIPPED_TO"), "out")
    edges = cache.get(key)
    if edges is None:
        edges = ctx.store.neighbours(lot, ["SHIPPED_TO"], Direction.OUT, as_of)
    for e in edges:
        if e.rel != "SHIPPED_TO":
            continue
        t = as_time(e.props.get("shipped_at"))
        if as_of is None or t is None or t <= as_of:
            return True
    return False


def forward(
    ctx: Context,
    analysis: Analysis,
    start_ids: Sequence[str],
    start_lots: Mapping[str, list[EvidenceStep]],
    as_of: datetime | None,
    lot_precise: bool,
    caps: Caps,
    pre_reached: Mapping[str, list[ReachedEntity]] | None = None,
    start_orders: Sequence[str] = (),
    window: tuple[datetime | None, datetime | None] = (None, None),
    node_cache: NodeCache | None = None,
) -> TraceResult:
    """Forward genealogy from ``start_lots`` (each with the evidence prefix that led to it);
    ``node_cache`` shares node reads the caller made with the same ``as_of``."""
    rule = "forward_genealogy_lot_precise" if lot_precise else "forward_genealogy"
    lots = sorted(start_lots)
    # the lots the genealogy reads are the starts of lots_to_customers
    nodes: NodeCache = node_cache if node_cache is not None else {}
    gen = ctx.run(rule, as_of, caps, None, nodes, lots=lots)
    lot_matches: dict[str, Match] = gen.bindings["lot"]
    reached_lot_ids = sorted(set(lot_matches) - set(lots))

    # every lot the walk touched (start lots too) and its evidence path from the analysis start
    lot_paths: dict[str, list[EvidenceStep]] = {lid: list(start_lots[lid]) for lid in lots}
    for lid in reached_lot_ids:
        m = lot_matches[lid]
        lot_paths[lid] = [*start_lots.get(m.start, ()), *m.steps]

    all_lots = lots + reached_lot_ids
    cache: EdgeCache = {}
    cust = ctx.run("lots_to_customers", as_of, caps, cache, nodes, lots=all_lots)
    shipped = {lid for lid in all_lots if _shipped(ctx, lid, as_of, cache)}
    reached: dict[str, list[ReachedEntity]] = defaultdict(list)
    for cls, group in (pre_reached or {}).items():
        reached[cls].extend(group)
    statuses = lot_statuses(ctx, [lot_matches[lid].node for lid in reached_lot_ids], as_of)
    path = trusted.path
    group = reached["Lot"]
    for lid in reached_lot_ids:
        # the lot's evidence is its path from the analysis start (the list is not changed later)
        steps = lot_paths[lid]
        group.append(_reached(lot_matches[lid].node, len(steps), [path(rule, steps)], statuses[lid], None,
                              lid in shipped))

    seen_orders = {r.entity.id for r in reached.get("ProductionOrder", [])}
    group = reached["ProductionOrder"]
    for oid, m in sorted(gen.bindings["order"].items()):
        if oid in seen_orders:
            continue
        pre = start_lots.get(m.start, ())
        group.append(_reached(m.node, len(pre) + m.depth, [compose(pre, m, rule)]))

    # sales order lines and customers reached from any lot (start lots included)
    lines: list[ReachedEntity] = []
    for _lid, m in sorted(cust.bindings["line"].items()):
        via = "shipped" if m.steps and m.steps[0].rel == "SHIPPED_TO" else "allocated"
        ev = compose(lot_paths[m.start], m, "lots_to_customers")
        lines.append(_reached(m.node, len(ev.steps), [ev], None, via))
    group = reached["SalesOrder"]
    for m in cust.matches("sales_order"):
        ev = compose(lot_paths[m.start], m, "lots_to_customers")
        group.append(_reached(m.node, len(ev.steps), [ev]))
    customers: list[ReachedEntity] = []
    for m in cust.matches("customer"):
        ev = compose(lot_paths[m.start], m, "lots_to_customers")
        customers.append(_reached(m.node, len(ev.steps), [ev]))
    reached["SalesOrderLine"] = lines
    reached["Customer"] = customers
    grouped = {cls: sorted(g, key=lambda r: r.entity.id) for cls, g in sorted(reached.items()) if g}
    return TraceResult(
        analysis=analysis, start_ids=list(start_ids), start_lots=lots,
        start_orders=sorted(start_orders), direction="forward",
        mode="lot_precise" if lot_precise else "conservative", as_of=as_of,
        window_from=window[0], window_to=window[1], reached=grouped, totals=_totals(grouped),
        sales_order_lines=lines, customers=customers,
        shipped_lots=sorted(shipped), in_house_lots=sorted(set(reached_lot_ids) - shipped),
        caps=caps, rules=[rule, "lots_to_customers"],
    )


@_gc_paused
def trace_lot(ctx: Context, lot: str, as_of: datetime | None, lot_precise: bool) -> TraceResult:
    ctx.require(lot, "Lot", as_of)
    return forward(ctx, "trace_lot", [lot], {lot: []}, as_of, lot_precise, ctx.new_caps())


@_gc_paused
def trace_hold(ctx: Context, hold: str, as_of: datetime | None, lot_precise: bool) -> TraceResult:
    nodes: NodeCache = {hold: ctx.require(hold, "QualityHold", as_of)}  # reads shared by the three rules
    caps = ctx.new_caps()
    res = ctx.run("hold_lots", as_of, caps, None, nodes, holds=[hold])
    starts = {lid: list(m.steps) for lid, m in res.bindings["lot"].items()}
    out = forward(ctx, "trace_hold", [hold], starts, as_of, lot_precise, caps, node_cache=nodes)
    return out.model_copy(update={"rules": ["hold_lots", *out.rules]})


@_gc_paused
def trace_machine(ctx: Context, machine: str, start: datetime, end: datetime, as_of: datetime | None,
                  lot_precise: bool, analysis: Analysis = "trace_machine",
                  start_ids: Sequence[str] | None = None,
                  prefix: Sequence[EvidenceStep] = ()) -> TraceResult:
    ctx.require(machine, "Machine", as_of)
    if end <= start:
        raise ValueError(f"the window end {end.isoformat()} must be after its start {start.isoformat()}")
    caps = ctx.new_caps()
    res = ctx.run_params("machine_window", {"machines": [machine], "from": start, "to": end}, as_of, caps)
    starts = {lid: [*prefix, *m.steps] for lid, m in res.bindings["lot"].items()}
    orders = {
        "ProductionOrder": [
            _reached(m.node, len(prefix) + m.depth, [compose(prefix, m, "machine_window")])
            for m in res.matches("order")
        ]
    }
    out = forward(ctx, analysis, list(start_ids or [machine]), starts, as_of, lot_precise, caps,
                  pre_reached=orders, start_orders=res.ids("order"), window=(start, end))
    return out.model_copy(update={"rules": ["machine_window", *out.rules]})


def incident_window(ctx: Context, incident: NodeRecord, machine: str, as_of: datetime | None
                    ) -> tuple[datetime, datetime]:
    """The suspect window of an incident on a machine.

    From the incident time until the completion of a maintenance order that ADDRESSES it (the
    fix); else a downtime event on the same machine whose [start, end) contains the incident time;
    else INCIDENT_WINDOW_AFTER from the incident time.
    """
    t = prop_time(incident, "occurred_at")
    if t is None:
        raise ValueError(f"incident {incident.id} has no occurred_at")
    fixes = ctx.store.neighbours(incident.id, ["ADDRESSES"], Direction.IN, as_of)
    done = [c for mo in ctx.store.get_nodes([e.src for e in fixes], as_of).values()
            if (c := prop_time(mo, "completed_at")) is not None and c > t]
    if done:
        return t, min(done)
    edges = ctx.store.neighbours(machine, ["OCCURRED_ON"], Direction.IN, as_of)
    events = ctx.store.get_nodes([e.src for e in edges], as_of)
    for e in edges:
        ev = events.get(e.src)
        if ev is None or ev.cls != "DowntimeEvent":
            continue
        s, en = prop_time(ev, "start"), prop_time(ev, "end")
        if s is not None and s <= t and (en is None or t < en):
            return s, en if en is not None else t + INCIDENT_WINDOW_AFTER
    return t - INCIDENT_WINDOW_BEFORE, t + INCIDENT_WINDOW_AFTER


@_gc_paused
def trace_incident(ctx: Context, incident: str, as_of: datetime | None, lot_precise: bool) -> TraceResult:
    """Lots and orders the incident concerns; when it concerns none, its machine's suspect window."""
    inc = ctx.require(incident, "Incident", as_of)
    caps = ctx.new_caps()
    direct = ctx.run("incident_lots", as_of, caps, incidents=[incident])
    via_orders = ctx.run("incident_orders", as_of, caps, incidents=[incident])
    starts: dict[str, list[EvidenceStep]] = {}
    for lid, m in direct.bindings["lot"].items():
        starts[lid] = list(m.steps)
    for lid, m in via_orders.bindings["lot"].items():
        starts.setdefault(lid, list(m.steps))
    if starts or via_orders.bindings["order"]:
        pre = {"ProductionOrder": [
            _reached(m.node, m.depth, [compose([], m, "incident_orders")]) for m in via_orders.matches("order")
        ]}
        out = forward(ctx, "trace_incident", [incident], starts, as_of, lot_precise, caps, pre_reached=pre,
                      start_orders=via_orders.ids("order"))
        return out.model_copy(update={"rules": ["incident_lots", "incident_orders", *out.rules]})
    eq = ctx.run("incident_equipment", as_of, caps, incidents=[incident])
    machines = [m for m in eq.matches("equipment") if m.node.cls == "Machine"]
    if not machines:
        return forward(ctx, "trace_incident", [incident], {}, as_of, lot_precise, caps)
    m = machines[0]
    lo, hi = incident_window(ctx, inc, m.node.id, as_of)
    out = trace_machine(ctx, m.node.id, lo, hi, as_of, lot_precise, analysis="trace_incident",
                        start_ids=[incident], prefix=list(m.steps))
    return out.model_copy(update={"rules": ["incident_equipment", *out.rules]})


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------

@_gc_paused
def backward(ctx: Context, lot: str, as_of: datetime | None, lot_precise: bool) -> TraceResult:
    """Where-from: input lots to supplier lots and suppliers, orders, their machines, lines,
    SOP versions, shifts, operators and materials, and incidents during production."""
    nodes: NodeCache = {lot: ctx.require(lot, "Lot", as_of)}  # node reads shared by the six rules
    caps = ctx.new_caps()
    rule = "backward_genealogy_lot_precise" if lot_precise else "backward_genealogy"
    gen = ctx.run(rule, as_of, caps, None, nodes, lots=[lot])
    lot_paths: dict[str, list[EvidenceStep]] = {lot: []}
    for lid, m in gen.bindings["lot"].items():
        if lid != lot:
            lot_paths[lid] = list(m.steps)
    order_paths: dict[str, list[EvidenceStep]] = {oid: list(m.steps) for oid, m in gen.bindings["order"].items()}
    reached: dict[str, dict[str, ReachedEntity]] = defaultdict(dict)

    def add(node: NodeRecord, steps: list[EvidenceStep], rule_name: str, via: str | None = None,
            status: str | None = None) -> None:
        group = reached[node.cls]
        if node.id in group or node.id == lot:
            return
        group[node.id] = _reached(node, len(steps), [compose(steps, None, rule_name)], status=status, via=via)

    lot_ms = [m for lid, m in sorted(gen.bindings["lot"].items()) if lid != lot]
    statuses = lot_statuses(ctx, [m.node for m in lot_ms], as_of)
    for m in lot_ms:
        add(m.node, lot_paths[m.node.id], rule, status=statuses[m.node.id])
    for _oid, m in sorted(gen.bindings["order"].items()):
        add(m.node, list(m.steps), rule)
    orders = sorted(order_paths)
    all_lots = sorted(lot_paths)
    rules = [rule]
    if orders:
        for rname in ("order_context", "order_incidents", "incidents_during_production"):
            res = ctx.run(rname, as_of, caps, None, nodes, orders=orders)
            var = "factor" if rname == "order_context" else "incident"
            for m in res.matches(var):
                add(m.node, [*order_paths[m.start], *m.steps], rname)
            rules.append(rname)
    for rname, var in (("lot_sources", "source"), ("lot_incidents", "incident")):
        res = ctx.run(rname, as_of, caps, None, nodes, lots=all_lots)
        for m in res.matches(var):
            add(m.node, [*lot_paths[m.start], *m.steps], rname)
        rules.append(rname)
    # supplier lots: reached lots with a SUPPLIED_BY edge
    reached_lots = reached.get("Lot", {})
    supplied = ctx.store.neighbours_many(list(reached_lots), ["SUPPLIED_BY"], Direction.OUT, as_of)
    for lid, r in reached_lots.items():
        if supplied.get(lid):
            r.via = "supplier_lot"
    grouped = {cls: [g[k] for k in sorted(g)] for cls, g in sorted(reached.items()) if g}
    return TraceResult(
        analysis="backward", start_ids=[lot], start_lots=[lot], direction="backward",
        mode="lot_precise" if lot_precise else "conservative", as_of=as_of, reached=grouped,
        totals=_totals(grouped), caps=caps, rules=rules,
    )
