"""Delivery risk: open sales order lines due in the horizon, with cause chains, slack and options.

The scoring is explained in docs/rules.md ("Delivery risk"). In short, per line:

1. Allocated lots that are on hold or quarantined at ``now`` are a ``hold`` / ``quarantine`` cause.
2. The quantity not covered by shipments and good allocations is drawn, lines in due-date order,
   from free released stock of the line's material, then from open production orders of the
   material that end by the due date. Orders that are behind schedule, downtime on their planned
   line, and late purchase-order lines for BOM components they need are causes; what is still
   uncovered is a ``shortage``.
3. score = noisy-OR of the cause weights, raised when the slack is negative or unknown, and for
   high/urgent priority; the level follows from the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reasoning.analyses.common import HELD_STATUSES, Context, active_holds, edge_step, lot_status, prop_time, ref
from reasoning.results import (
    EntityRef,
    EvidencePath,
    EvidenceStep,
    RiskBoard,
    RiskCause,
    RiskLevel,
    RiskLine,
    UnblockOption,
)
from store.base import Direction, EdgeRecord, NodeRecord

WEIGHTS: dict[str, float] = {
    "hold": 0.6,
    "quarantine": 0.7,
    "behind_schedule": 0.35,
    "downtime": 0.4,
    "late_supplier": 0.4,
    "shortage": 0.6,
}
NEGATIVE_SLACK_BONUS = 0.2
UNKNOWN_SLACK_BONUS = 0.1
PRIORITY_BONUS = {"urgent": 0.1, "high": 0.05}
LEVELS: tuple[tuple[float, RiskLevel], ...] = ((0.75, "critical"), (0.5, "high"), (0.25, "medium"), (0.0, "low"))
OPEN_LINE = ("open", "partially_shipped")
OPEN_ORDER = ("planned", "released", "running")
MAX_OPTIONS = 5


def level_of(score: float, has_causes: bool) -> RiskLevel:
    if not has_causes:
        return "none"
    for threshold, level in LEVELS:
        if score >= threshold:
            return level
    return "low"


def _qty(x: object) -> float:
    return float(x) if isinstance(x, (int, float)) else 0.0


@dataclass
class _Pools:
    """Supply shared by lines of the same material, drawn in due-date order."""

    free_stock: dict[str, list[tuple[NodeRecord, float]]] = field(default_factory=dict)
    orders: dict[str, list[tuple[NodeRecord, float]]] = field(default_factory=dict)


class _Board:
    def __init__(self, ctx: Context, now: datetime, as_of: datetime | None) -> None:
        self.ctx, self.store, self.now, self.as_of = ctx, ctx.store, now, as_of
        self.pools = _Pools()
        self._nodes: dict[str, NodeRecord | None] = {}
        self._edges: dict[tuple[str, tuple[str, ...], Direction], list[EdgeRecord]] = {}

    # -- cached reads --------------------------------------------------------------------
    def nbrs(self, node: str, rels: tuple[str, ...], d: Direction) -> list[EdgeRecord]:
        key = (node, rels, d)
        if key not in self._edges:
            self._edges[key] = self.store.neighbours(node, list(rels), d, self.as_of)
        return self._edges[key]

    def nodes(self, ids: list[str]) -> dict[str, NodeRecord]:
        missing = [i for i in ids if i not in self._nodes]
        if missing:
            got = self.store.get_nodes(missing, self.as_of)
            for i in missing:
                self._nodes[i] = got.get(i)
        return {i: n for i in ids if (n := self._nodes.get(i)) is not None}

    def node(self, nid: str) -> NodeRecord | None:
        return self.nodes([nid]).get(nid)

    def held(self, lot: NodeRecord) -> tuple[str | None, NodeRecord | None, EdgeRecord | None]:
        """('hold'|'quarantine'|None, the hold, its HOLDS edge) for a lot at ``now``."""
        holds = active_holds(self.store, lot.id, self.now, self.as_of)
        status = lot_status(self.store, lot, self.as_of) if self.as_of is not None else lot.props.get("status")
        if holds:
            h, e = holds[0]
            return ("quarantine" if status == "quarantined" else "hold"), h, e
        if status in HELD_STATUSES:
            return ("quarantine" if status == "quarantined" else "hold"), None, None
        return None, None, None

    def free_lots(self, material: str) -> list[tuple[NodeRecord, float]]:
        """Released lots of the material not allocated, shipped or consumed, by id."""
        if material not in self.pools.free_stock:
            out: list[tuple[NodeRecord, float]] = []
            edges = self.nbrs(material, ("FOR_MATERIAL",), Direction.IN)
            lots = self.nodes([e.src for e in edges])
            for lid in sorted(lots):
                lot = lots[lid]
                if lot.cls != "Lot" or lot.props.get("status") != "released":
                    continue
                if self.held(lot)[0] is not None:
                    continue
                if self.nbrs(lid, ("ALLOCATED_TO", "SHIPPED_TO"), Direction.OUT):
                    continue
                if self.nbrs(lid, ("CONSUMED",), Direction.IN):
                    continue
                out.append((lot, _qty(lot.props.get("quantity"))))
            self.pools.free_stock[material] = out
        return self.pools.free_stock[material]

    def open_orders(self, material: str) -> list[tuple[NodeRecord, float]]:
        if material not in self.pools.orders:
            edges = self.nbrs(material, ("FOR_MATERIAL",), Direction.IN)
            orders = self.nodes([e.src for e in edges])
            out = [(o, _qty(o.props.get("quantity"))) for oid, o in sorted(orders.items())
                   if o.cls == "ProductionOrder" and o.props.get("status") in OPEN_ORDER]
            out.sort(key=lambda oq: (prop_time(oq[0], "planned_end") or self.now, oq[0].id))
            self.pools.orders[material] = out
        return self.pools.orders[material]

    # -- causes --------------------------------------------------------------------------
    def order_causes(self, po: NodeRecord, due: datetime, prefix: list[EvidenceStep]
                     ) -> tuple[list[RiskCause], datetime | None]:
        """Causes that delay a supplying order, and when it is expected to finish (None: unknown)."""
        causes: list[RiskCause] = []
        ps, pe = prop_time(po, "planned_start"), prop_time(po, "planned_end")
        status = po.props.get("status")
        duration = (pe - ps) if ps and pe else timedelta(0)
        expected = pe
        behind = False
        if status in ("planned", "released") and ps is not None and ps < self.now:
            behind, expected = True, self.now + duration
        elif status == "running" and pe is not None and pe < self.now:
            behind, expected = True, self.now + duration / 4
        if behind:
            causes.append(RiskCause(
                kind="behind_schedule", entity=ref(po), weight=WEIGHTS["behind_schedule"],
                detail=f"order {po.id} is {status} but was planned to "
                       f"{'start' if status != 'running' else 'end'} at "
                       f"{(ps if status != 'running' else pe).isoformat() if (ps and pe) else '?'}",
                expected_available=expected, evidence=[EvidencePath(rule=None, steps=list(prefix))]))
        # downtime on the planned line (or its machines) overlapping [now, planned end]
        win_lo, win_hi = min(self.now, ps or self.now), max(expected or self.now, pe or self.now)
        for le in self.nbrs(po.id, ("SCHEDULED_ON",), Direction.OUT):
            line_steps = [*prefix, edge_step(le, po.id)]
            places: list[tuple[str, list[EvidenceStep]]] = [(le.dst, line_steps)]
            for me in self.nbrs(le.dst, ("HAS_MACHINE",), Direction.OUT):
                places.append((me.dst, [*line_steps, edge_step(me, le.dst)]))
            for place, steps in places:
                for de in self.nbrs(place, ("OCCURRED_ON",), Direction.IN):
                    dt = self.node(de.src)
                    if dt is None or dt.cls != "DowntimeEvent":
                        continue
                    s, e = prop_time(dt, "start"), prop_time(dt, "end")
                    if s is None or s >= win_hi or (e is not None and e <= win_lo):
                        continue
                    delay_to: datetime | None = None
                    if e is not None and expected is not None:
                        delay_to = expected + (e - max(s, win_lo))
                    times = {"node.start": s, **({"node.end": e} if e else {})}
                    causes.append(RiskCause(
                        kind="downtime", entity=ref(dt), weight=WEIGHTS["downtime"] + (0.1 if e is None else 0),
                        detail=f"downtime {dt.id} on {place} ({dt.props.get('reason', '')}) "
                               f"from {s.isoformat()} {'until ' + e.isoformat() if e else '(no end yet)'}",
                        expected_available=delay_to,
                        evidence=[EvidencePath(rule=None, steps=[*steps, edge_step(de, place, times)])]))
                    expected = delay_to
        # late purchase-order lines for BOM components the order needs
        mat_edges = self.nbrs(po.id, ("FOR_MATERIAL",), Direction.OUT)
        need_by = ps if ps is not None and ps > self.now else self.now
        for me in mat_edges:
            mat = me.dst
            for be in self.nbrs(mat, ("HAS_BOM_ITEM",), Direction.OUT):
                bom = self.node(be.dst)
                if bom is None:
                    continue
                need = _qty(bom.props.get("quantity")) * _qty(po.props.get("quantity"))
                for ce in self.nbrs(bom.id, ("COMPONENT",), Direction.OUT):
                    comp = ce.dst
                    stock = sum(q for _, q in self.free_lots(comp))
                    if stock >= need > 0:
                        continue
                    for pe_ in self.nbrs(comp, ("FOR_MATERIAL",), Direction.IN):
                        pol = self.node(pe_.src)
                        if pol is None or pol.cls != "PurchaseOrderLine" or prop_time(pol, "delivered_at"):
                            continue
                        promised = prop_time(pol, "promised_date")
                        if promised is None:
                            continue
                        if promised >= need_by or promised < self.now:
                            late_to = promised if promised >= self.now else None
                            steps = [*prefix, edge_step(me, po.id), edge_step(be, mat), edge_step(ce, bom.id),
                                     edge_step(pe_, comp, {"node.promised_date": promised})]
                            causes.append(RiskCause(
                                kind="late_supplier", entity=ref(pol), weight=WEIGHTS["late_supplier"],
                                detail=f"purchase order line {pol.id} for component {comp} was promised "
                                       f"{promised.isoformat()}, "
                                       f"{'overdue' if promised < self.now else 'after the order must start'}",
                                expected_available=(late_to + duration) if late_to else None,
                                evidence=[EvidencePath(rule=None, steps=steps)]))
                            if late_to is None:
                                expected = None
                            elif expected is not None:
                                expected = max(expected, late_to + duration)
        del due
        return causes, expected

    def options(self, material: str | None, line_steps: list[EvidenceStep], planned_lines: set[str],
                mat_edge: EdgeRecord | None) -> list[UnblockOption]:
        if material is None or mat_edge is None:
            return []
        out: list[UnblockOption] = []
        mat_steps = [*line_steps, edge_step(mat_edge, mat_edge.src)]
        # alternative released lots of the material
        for lot, q in self.free_lots(material)[:MAX_OPTIONS]:
            fe = next(e for e in self.nbrs(material, ("FOR_MATERIAL",), Direction.IN) if e.src == lot.id)
            out.append(UnblockOption(kind="alternative_lot", entity=ref(lot), quantity=q,
                                     unit=lot.props.get("unit"), detail=f"released lot {lot.id} ({q:g})",
                                     evidence=[EvidencePath(steps=[*mat_steps, edge_step(fe, material)])]))
        # approved substitutes (with stock) for the material's BOM components
        for be in self.nbrs(material, ("HAS_BOM_ITEM",), Direction.OUT):
            for se in self.nbrs(be.dst, ("APPROVED_SUBSTITUTE",), Direction.OUT):
                stock = sum(q for _, q in self.free_lots(se.dst))
                if stock <= 0:
                    continue
                sub = self.node(se.dst)
                if sub is None:
                    continue
                comps = [c.dst for c in self.nbrs(be.dst, ("COMPONENT",), Direction.OUT)]
                out.append(UnblockOption(
                    kind="substitute", entity=ref(sub), quantity=stock, unit=sub.props.get("unit"),
                    detail=f"{sub.id} is an approved substitute for {', '.join(comps) or 'a component'} "
                           f"({stock:g} in stock)",
                    evidence=[EvidencePath(steps=[*mat_steps, edge_step(be, material), edge_step(se, be.dst)])]))
        # other lines that have made the material
        seen: set[str] = set()
        for oe in self.nbrs(material, ("FOR_MATERIAL",), Direction.IN):
            for le in self.nbrs(oe.src, ("SCHEDULED_ON",), Direction.OUT):
                if le.dst in planned_lines or le.dst in seen:
                    continue
                ln = self.node(le.dst)
                if ln is None or ln.cls != "Line":
                    continue
                seen.add(le.dst)
                out.append(UnblockOption(
                    kind="alternative_line", entity=ref(ln),
                    detail=f"line {ln.id} has made {material} (order {oe.src})",
                    evidence=[EvidencePath(steps=[*mat_steps, edge_step(oe, material), edge_step(le, oe.src)])]))
                if len(seen) >= MAX_OPTIONS:
                    break
        return out

    # -- one line ------------------------------------------------------------------------
    def line(self, sol: NodeRecord) -> RiskLine:
        due = prop_time(sol, "due_date")
        assert due is not None
        causes: list[RiskCause] = []
        so_edges = self.nbrs(sol.id, ("HAS_SO_LINE",), Direction.IN)
        so = self.node(so_edges[0].src) if so_edges else None
        cust: EntityRef | None = None
        if so is not None:
            for ce in self.nbrs(so.id, ("PLACED_BY",), Direction.OUT):
                cnode = self.node(ce.dst)
                cust = ref(cnode) if cnode else None
        needed = _qty(sol.props.get("quantity"))
        covered = 0.0
        for se in self.nbrs(sol.id, ("SHIPPED_TO",), Direction.IN):
            covered += _qty(se.props.get("quantity"))
        for ae in self.nbrs(sol.id, ("ALLOCATED_TO",), Direction.IN):
            lot = self.node(ae.src)
            if lot is None:
                continue
            kind, hold, he = self.held(lot)
            q = _qty(ae.props.get("quantity")) or _qty(lot.props.get("quantity"))
            if kind is None:
                covered += q
                continue
            steps = [edge_step(ae, sol.id)]
            if hold is not None and he is not None:
                placed = prop_time(hold, "placed_at")
                steps.append(edge_step(he, lot.id, {"node.placed_at": placed} if placed else {}))
                entity, detail = ref(hold), f"allocated lot {lot.id} ({q:g}) is held by {hold.id}: " \
                    f"{hold.props.get('reason', '')}"
            else:
                entity, detail = ref(lot), f"allocated lot {lot.id} ({q:g}) is {lot.props.get('status')}"
            assert kind in ("hold", "quarantine")
            causes.append(RiskCause(kind=kind, entity=entity, detail=detail, weight=WEIGHTS[kind],
                                    evidence=[EvidencePath(steps=steps)]))
        remaining = max(0.0, needed - covered)
        mat_edges = self.nbrs(sol.id, ("FOR_MATERIAL",), Direction.OUT)
        material = mat_edges[0].dst if mat_edges else None
        mat_node = self.node(material) if material else None
        expected: datetime | None = self.now
        planned_lines: set[str] = set()
        if remaining > 1e-9 and material is not None:
            mat_step = edge_step(mat_edges[0], sol.id)
            stock = self.free_lots(material)
            while stock and remaining > 1e-9:
                lot, q = stock[0]
                take = min(q, remaining)
                remaining -= take
                if q - take > 1e-9:
                    stock[0] = (lot, q - take)
                else:
                    stock.pop(0)
            pool = self.open_orders(material)
            i = 0
            while remaining > 1e-9 and i < len(pool):
                po, q = pool[i]
                pe = prop_time(po, "planned_end")
                if pe is not None and pe > due:
                    i += 1
                    continue
                oe = next(e for e in self.nbrs(material, ("FOR_MATERIAL",), Direction.IN) if e.src == po.id)
                prefix = [mat_step, edge_step(oe, material)]
                planned_lines |= {e.dst for e in self.nbrs(po.id, ("SCHEDULED_ON",), Direction.OUT)}
                oc, o_expected = self.order_causes(po, due, prefix)
                causes.extend(oc)
                if o_expected is None:
                    expected = None
                elif expected is not None:
                    expected = max(expected, o_expected)
                take = min(q, remaining)
                remaining -= take
                if q - take > 1e-9:
                    pool[i] = (po, q - take)
                else:
                    pool.pop(i)
            if remaining > 1e-9:
                expected = None
                causes.append(RiskCause(
                    kind="shortage", entity=ref(mat_node) if mat_node else EntityRef(id=material, cls="Material"),
                    weight=WEIGHTS["shortage"],
                    detail=f"{remaining:g} {sol.props.get('unit', '')} of {material} not covered by stock "
                           f"or open orders ending by {due.isoformat()}",
                    evidence=[EvidencePath(steps=[mat_step])]))
        if any(c.kind in ("hold", "quarantine") for c in causes):
            expected = None  # a hold has no planned release time
        score = 1.0
        for c in causes:
            score *= 1 - c.weight
        score = 1 - score if causes else 0.0
        slack = (due - expected).total_seconds() / 3600 if expected is not None else None
        if causes:
            if slack is None:
                score += UNKNOWN_SLACK_BONUS
            elif slack < 0:
                score += NEGATIVE_SLACK_BONUS
            score += PRIORITY_BONUS.get(str(sol.props.get("priority")), 0.0)
        score = round(min(1.0, score), 4)
        opts = self.options(material, [], planned_lines, mat_edges[0] if mat_edges else None) if causes else []
        return RiskLine(
            line=ref(sol), sales_order=ref(so) if so else None, customer=cust,
            material=ref(mat_node) if mat_node else None, quantity=needed, unit=sol.props.get("unit"),
            due_date=due, priority=str(sol.props.get("priority") or "normal"),
            level=level_of(score, bool(causes)), score=score,
            causes=sorted(causes, key=lambda c: (-c.weight, c.kind, c.entity.id)),
            expected_available=expected, slack_hours=round(slack, 3) if slack is not None else None,
            options=opts,
        )


def risk_board(ctx: Context, horizon_days: float, plant: str | None, as_of: datetime | None,
               now: datetime | None = None) -> RiskBoard:
    if horizon_days <= 0:
        raise ValueError(f"the horizon must be positive, got {horizon_days} days")
    t_now = now or as_of or ctx.now
    end = t_now + timedelta(days=horizon_days)
    board = _Board(ctx, t_now, as_of)
    lines: list[NodeRecord] = []
    for sol in ctx.store.find_nodes("SalesOrderLine", plant=plant, as_of=as_of):
        if sol.props.get("status", "open") not in OPEN_LINE:
            continue
        due = prop_time(sol, "due_date")
        if due is None or due < t_now or due > end:
            continue
        lines.append(sol)
    prio = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    lines.sort(key=lambda s: (prop_time(s, "due_date") or t_now, prio.get(str(s.props.get("priority")), 2), s.id))
    out = [board.line(s) for s in lines]
    out.sort(key=lambda r: (-r.score, r.due_date, r.line.id))
    caps = ctx.new_caps()
    return RiskBoard(now=t_now, horizon_days=horizon_days, plant=plant, as_of=as_of,
                     lines_considered=len(lines), lines=out, caps=caps)
