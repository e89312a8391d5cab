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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reasoning.analyses.common import HELD_STATUSES, Context, EdgeKey, edge_step, prop_time, ref
from reasoning.gcpause import paused_gc
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
from store.base import Direction, EdgeRecord, Link, NodeRecord

WEIGHTS: dict[str, float] = {
    "hold": 0.6,
    "quarantine": 0.7,
    "behind_schedule": 0.35,
    "downtime": 0.4,
    "late_supplier": 0.4,
    "shortage": 0.6,
}
#: An overdue purchase-order line whose component is still covered by stock: a weak signal.
COVERED_LATE_SUPPLIER_WEIGHT = 0.15
NEGATIVE_SLACK_BONUS = 0.2
UNKNOWN_SLACK_BONUS = 0.1
PRIORITY_BONUS = {"urgent": 0.1, "high": 0.05}
LEVELS: tuple[tuple[float, RiskLevel], ...] = ((0.75, "critical"), (0.5, "high"), (0.25, "medium"), (0.0, "low"))
OPEN_LINE = ("open", "partially_shipped")
OPEN_ORDER = ("planned", "released", "running")
MAX_OPTIONS = 5
#: Edges that use up a lot's quantity.
USED_RELS = ("CONSUMED", "ALLOCATED_TO", "SHIPPED_TO")
#: The edges of a sales order line that scoring looks at.
LINE_RELS = ("HAS_SO_LINE", "ALLOCATED_TO", "SHIPPED_TO", "FOR_MATERIAL")
#: Most recent orders of a material looked at to find the lines that make it.
MAKER_ORDERS = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


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
class _Stock:
    lot: NodeRecord
    free: float
    edge: EdgeKey  # lot -FOR_MATERIAL-> material


@dataclass
class _Supply:
    order: NodeRecord
    left: float
    edge: EdgeKey  # order -FOR_MATERIAL-> material


class _Board:
    """One board computation: caches and the supply pools shared by lines, drawn in due order.

    Reads are kept few on purpose: active holds (not released by now) and current downtime come
    from the store's time-window read (``find_nodes_after``), open purchase-order lines from a
    property filter, once per board; so are the materials of released lots and open orders (from
    the lot's or order's side: a material's FOR_MATERIAL edges list every line, lot and order ever
    made of it, ~100k at medium), each kind with one batch read instead of one read per node.
    Edges whose properties are not used are read ids only (``neighbour_links``); the recent
    orders of the lines' materials come in one ``top_neighbours`` read. A lot's used quantity,
    each neighbour list, each evidence step without times, each entity reference and each
    timestamp are read or built at most once per board.
    """

    def __init__(self, ctx: Context, now: datetime, as_of: datetime | None, horizon_end: datetime) -> None:
        self.ctx, self.store, self.now, self.as_of = ctx, ctx.store, now, as_of
        self._nodes: dict[str, NodeRecord | None] = {}
        self._edges: dict[tuple[str, tuple[str, ...], Direction], list[EdgeRecord]] = {}
        self._links: dict[tuple[str, tuple[str, ...], Direction], list[Link]] = {}
        self._steps: dict[tuple[str, str, str, str], EvidenceStep] = {}
        self._refs: dict[str, EntityRef] = {}
        self._times: dict[tuple[str, str], datetime | None] = {}
        self._promised: dict[str, list[tuple[NodeRecord, EdgeKey, datetime]]] = {}
        self._stock: dict[tuple[str, str | None], list[_Stock]] = {}
        self._orders: dict[tuple[str, str | None], list[_Supply]] = {}
        self._demand: dict[tuple[str, str | None], float] = {}
        self.plant: str | None = None  # the plant of the line being scored: pools are per plant
        self._makers: dict[str, list[tuple[EdgeKey, EdgeKey]]] = {}
        self._recent: dict[str, list[str]] = {}
        # released lots and open orders: what stock and supply are made of (one query each)
        self.released: dict[str, NodeRecord] = {
            n.id: n for n in ctx.store.find_nodes("Lot", where={"status": "released"}, as_of=as_of)}
        self.open_orders: dict[str, NodeRecord] = {
            n.id: n for n in ctx.store.find_nodes_in("ProductionOrder", "status", OPEN_ORDER, as_of=as_of)}
        # their materials, read from their side (a few edges each, ids only) rather than from
        # the material's side, which lists every line, lot and order ever made of it; the edges
        # that use up a lot's quantity are read in prefetch, for the lots of the materials the
        # lines can draw on
        self._lots_of: dict[str, dict[str, EdgeKey]] = defaultdict(dict)
        self._used: dict[str, float] = {}
        self.nbrs_many(self.released, ("FOR_MATERIAL",), Direction.OUT)
        for lid in self.released:
            for le in self.nbrs(lid, ("FOR_MATERIAL",), Direction.OUT):
                self._lots_of[le.dst][lid] = le
        self._orders_of: dict[str, dict[str, EdgeKey]] = defaultdict(dict)
        self.nbrs_many(self.open_orders, ("FOR_MATERIAL", "SCHEDULED_ON"), Direction.OUT)
        for oid in self.open_orders:
            both = self.nbrs(oid, ("FOR_MATERIAL", "SCHEDULED_ON"), Direction.OUT)
            # seed the SCHEDULED_ON reads order_causes makes (a sorted list stays sorted filtered)
            self._links[(oid, ("SCHEDULED_ON",), Direction.OUT)] = [x for x in both if x.rel == "SCHEDULED_ON"]
            for oe in both:
                if oe.rel == "FOR_MATERIAL":
                    self._orders_of[oe.dst][oid] = oe
        # holds active at now, and (for as_of) every lot that was ever held
        self.active: dict[str, list[tuple[NodeRecord, EdgeKey]]] = defaultdict(list)
        self.ever_held: set[str] = set()
        holds: list[tuple[NodeRecord, bool]] = []
        # without as_of only the holds active at now count: those not released by now (a few
        # hundred of thousands) come from the store's time-window read
        all_holds = ctx.store.find_nodes("QualityHold", as_of=as_of) if as_of is not None \
            else ctx.store.find_nodes_after("QualityHold", "released_at", now)
        for h in all_holds:
            placed, released = prop_time(h, "placed_at"), prop_time(h, "released_at")
            is_active = (placed is None or placed <= now) and (released is None or released > now)
            if not is_active and as_of is None:
                continue
            holds.append((h, is_active))
        self.nbrs_many([h.id for h, _ in holds], ("HOLDS",), Direction.OUT)
        for h, is_active in holds:
            for he in self.nbrs(h.id, ("HOLDS",), Direction.OUT):
                self.ever_held.add(he.dst)
                if is_active:
                    self.active[he.dst].append((h, he))
        # downtime still going on (or starting) within the horizon, by machine or line
        self.downtime: dict[str, list[tuple[NodeRecord, EdgeKey]]] = defaultdict(list)
        events = []
        for dt in ctx.store.find_nodes_after("DowntimeEvent", "end", now, as_of=as_of):
            s, e = prop_time(dt, "start"), prop_time(dt, "end")
            if s is None or s > horizon_end or (e is not None and e <= now):
                continue
            events.append(dt)
        self.nbrs_many([dt.id for dt in events], ("OCCURRED_ON",), Direction.OUT)
        for dt in events:
            for oe in self.nbrs(dt.id, ("OCCURRED_ON",), Direction.OUT):
                self.downtime[oe.dst].append((dt, oe))
        # purchase-order lines not delivered yet, by material; the store filters on the missing
        # delivered_at (a loaded one is a validated timestamp), so delivered lines are not decoded
        self.open_pol: dict[str, list[tuple[NodeRecord, EdgeKey]]] = defaultdict(list)
        pols = [pol for pol in ctx.store.find_nodes("PurchaseOrderLine", where={"delivered_at": None}, as_of=as_of)
                if prop_time(pol, "delivered_at") is None]
        self.nbrs_many([pol.id for pol in pols], ("FOR_MATERIAL",), Direction.OUT)
        for pol in pols:
            for fe in self.nbrs(pol.id, ("FOR_MATERIAL",), Direction.OUT):
                self.open_pol[fe.dst].append((pol, fe))

    # -- cached reads --------------------------------------------------------------------
    def edges(self, node: str, rels: tuple[str, ...], d: Direction) -> list[EdgeRecord]:
        """Edges with their properties (quantities), for the few reads that need them."""
        key = (node, rels, d)
        if key not in self._edges:
            self._edges[key] = self.store.neighbours(node, list(rels), d, self.as_of)
        return self._edges[key]

    def edges_many(self, nodes: Iterable[str], rels: tuple[str, ...], d: Direction) -> None:
        """Read the edge lists of ``nodes`` not cached yet, in one batch read."""
        missing = [n for n in nodes if (n, rels, d) not in self._edges]
        if missing:
            got = self.store.neighbours_many(missing, list(rels), d, self.as_of)
            for n in missing:
                self._edges[(n, rels, d)] = got[n]

    def nbrs(self, node: str, rels: tuple[str, ...], d: Direction) -> list[Link]:
        """Edges by key only (the same edges, in the same order, as :meth:`edges`)."""
        key = (node, rels, d)
        if key not in self._links:
            self._links[key] = self.store.neighbour_links([node], list(rels), d, self.as_of)[node]
        return self._links[key]

    def nbrs_many(self, nodes: Iterable[str], rels: tuple[str, ...], d: Direction) -> None:
        """Read the ids-only neighbour lists of ``nodes`` not cached yet, in one batch read."""
        missing = [n for n in nodes if (n, rels, d) not in self._links]
        if missing:
            got = self.store.neighbour_links(missing, list(rels), d, self.as_of)
            for n in missing:
                self._links[(n, rels, d)] = got[n]

    def step(self, edge: EdgeKey, from_node: str, times: dict[str, datetime] | None = None) -> EvidenceStep:
        """:func:`_walk`, one instance per step without times (steps are shared by the paths of a
        board; nothing mutates them)."""
        if times:
            return edge_step(edge, from_node, times)
        key = (edge.src, edge.rel, edge.dst, from_node)
        got = self._steps.get(key)
        if got is None:
            got = self._steps[key] = edge_step(edge, from_node)
        return got

    def ref(self, node: NodeRecord) -> EntityRef:
        """``common.ref``, once per node of the board (a node's records agree within a board), built
        without re-validating values that already have the fields' types (:mod:`reasoning.trusted`)."""
        got = self._refs.get(node.id)
        if got is None:
            got = self._refs[node.id] = ref(node)
        return got

    def time(self, node: NodeRecord, prop: str) -> datetime | None:
        """``prop_time``, parsed once per node and property of the board."""
        key = (node.id, prop)
        if key in self._times:
            return self._times[key]
        got = self._times[key] = prop_time(node, prop)
        return got

    def nodes(self, ids: list[str]) -> dict[str, NodeRecord]:
        missing = [i for i in ids if i not in self._nodes]
        if missing:
            got = self.store.get_nodes(missing, self.as_of)
            for i in missing:
                self._nodes[i] = got.get(i)
        return {i: n for i in ids if (n := self._nodes.get(i)) is not None}

    def node(self, nid: str) -> NodeRecord | None:
        return self.nodes([nid]).get(nid)

    def held(self, lot: NodeRecord) -> tuple[str | None, list[tuple[NodeRecord, EdgeKey]]]:
        """('hold' | 'quarantine' | None, the holds active at now) for a lot.

        With as_of, a stored on_hold whose holds are all outside their window reads released."""
        holds = self.active.get(lot.id, [])
        status = lot.props.get("status")
        if self.as_of is not None and status == "on_hold" and not holds and lot.id in self.ever_held:
            status = "released"
        kind = "quarantine" if status == "quarantined" else "hold"
        if holds or status in HELD_STATUSES:
            return kind, holds
        return None, []

    def used(self, lot: str) -> float:
        """Quantity of the lot consumed, allocated and shipped (read once per board)."""
        if lot not in self._used:
            self.used_many([lot])
        return self._used[lot]

    def used_many(self, lots: Iterable[str]) -> None:
        """:meth:`used` of many lots, their edges in one batch read."""
        missing = [lot for lot in lots if lot not in self._used]
        if missing:
            got = self.store.neighbours_many(missing, list(USED_RELS), Direction.BOTH, self.as_of)
            for lot in missing:
                used = 0.0
                for e in got[lot]:
                    used += _qty(e.props.get("quantity"))
                self._used[lot] = used

    def _here(self, node: NodeRecord) -> bool:
        return self.plant is None or node.plant is None or node.plant == self.plant

    def stock(self, material: str) -> list[_Stock]:
        """Released, unheld lots of the material at the line's plant with quantity left (quantity
        minus consumed, allocated and shipped), by id. The list is a pool: lines draw from it."""
        key = (material, self.plant)
        if key not in self._stock:
            edges = self._lots_of.get(material, {})
            pool: list[_Stock] = []
            for lid in sorted(edges):
                lot = self.released[lid]
                if not self._here(lot) or self.held(lot)[0] is not None:
                    continue
                free = _qty(lot.props.get("quantity")) - self.used(lid)
                if free > 1e-9:
                    pool.append(_Stock(lot, free, edges[lid]))
            self._stock[key] = pool
        return self._stock[key]

    def orders(self, material: str) -> list[_Supply]:
        """Open production orders of the material, by planned end: a pool lines draw from."""
        key = (material, self.plant)
        if key not in self._orders:
            edges = self._orders_of.get(material, {})
            pool = [_Supply(self.open_orders[oid], _qty(self.open_orders[oid].props.get("quantity")), e)
                    for oid, e in sorted(edges.items()) if self._here(self.open_orders[oid])]
            pool.sort(key=lambda x: (_micros(self.time(x.order, "planned_end") or self.now), x.order.id))
            self._orders[key] = pool
        return self._orders[key]

    def makers(self, material: str) -> list[tuple[EdgeKey, EdgeKey]]:
        """(order -FOR_MATERIAL-> material, order -SCHEDULED_ON-> line) for up to MAX_OPTIONS lines
        that made the material, most recent orders first."""
        if material not in self._makers:
            out: list[tuple[EdgeKey, EdgeKey]] = []
            seen: set[str] = set()
            # the material's FOR_MATERIAL list is long (every lot, line and order of it): the
            # store keeps the greatest order ids (read for all the lines' materials in prefetch)
            if material not in self._recent:
                self._recent.update(self.recent_orders([material]))
            recent = self._recent[material]
            # the few edges used, read from the order's side (ids only)
            rels = ("FOR_MATERIAL", "SCHEDULED_ON")
            self.nbrs_many(recent, rels, Direction.OUT)
            for oid in recent:
                oe = next((e for e in self.nbrs(oid, rels, Direction.OUT)
                           if e.rel == "FOR_MATERIAL" and e.dst == material), None)
                if oe is None:  # gone since the ids were read
                    continue
                for le in self.nbrs(oid, rels, Direction.OUT):
                    if le.rel != "SCHEDULED_ON":
                        continue
                    if le.dst not in seen:
                        seen.add(le.dst)
                        out.append((oe, le))
            self._makers[material] = out
        return self._makers[material]

    def recent_orders(self, materials: Iterable[str]) -> dict[str, list[str]]:
        """The MAKER_ORDERS most recent (greatest id) production orders of each material."""
        return self.store.top_neighbours(materials, "FOR_MATERIAL", Direction.IN, MAKER_ORDERS,
                                         classes=["ProductionOrder"], as_of=self.as_of)

    # -- causes --------------------------------------------------------------------------
    def line_downtime(self, line: str, steps: list[EvidenceStep], lo: datetime, hi: datetime,
                      expected: datetime | None) -> tuple[list[RiskCause], datetime | None]:
        """Downtime on the line or its machines overlapping [lo, hi]; pushes ``expected`` back."""
        causes: list[RiskCause] = []
        places: list[tuple[str, list[EvidenceStep]]] = [(line, steps)]
        for me in self.nbrs(line, ("HAS_MACHINE",), Direction.OUT):
            places.append((me.dst, [*steps, self.step(me, line)]))
        for place, psteps in places:
            for dt, de in self.downtime.get(place, []):
                s, e = self.time(dt, "start"), self.time(dt, "end")
                assert s is not None
                if s > hi or (e is not None and e <= lo):
                    continue
                if e is None:
                    expected = None
                elif expected is not None:
                    expected = expected + (e - max(s, lo))
                times = {"node.start": s, **({"node.end": e} if e else {})}
                causes.append(RiskCause(
                    kind="downtime", entity=self.ref(dt), weight=WEIGHTS["downtime"] + (0.1 if e is None else 0),
                    detail=f"downtime {dt.id} on {place} ({dt.props.get('reason', '')}) from {s.isoformat()} "
                           f"{'until ' + e.isoformat() if e else '(no end yet)'}",
                    expected_available=expected,
                    evidence=[EvidencePath(steps=[*psteps, self.step(de, place, times)])]))
        return causes, expected

    def promised(self, comp: str) -> list[tuple[NodeRecord, EdgeKey, datetime]]:
        """The component's open purchase-order lines that have a promised date, by id (once per
        board: component causes filter them by the date each order needs them)."""
        got = self._promised.get(comp)
        if got is None:
            got = self._promised[comp] = sorted(
                [(p, fe, t) for p, fe in self.open_pol.get(comp, [])
                 if (t := self.time(p, "promised_date")) is not None],
                key=lambda x: x[0].id)
        return got

    def component_causes(self, material: str, quantity: float, steps: list[EvidenceStep], need_by: datetime,
                         duration: timedelta, expected: datetime | None) -> tuple[list[RiskCause], datetime | None]:
        """Late purchase-order lines for BOM components that stock does not cover."""
        causes: list[RiskCause] = []
        for be in self.nbrs(material, ("HAS_BOM_ITEM",), Direction.OUT):
            for ce in self.nbrs(be.dst, ("COMPONENT",), Direction.OUT):
                comp = ce.dst
                late = [x for x in self.promised(comp) if x[2] < self.now or x[2] > need_by]
                if not late:
                    continue
                bom = self.node(be.dst)
                need = _qty(bom.props.get("quantity") if bom else 0) * quantity
                covered = need > 0 and sum(x.free for x in self.stock(comp)) >= need
                for pol, fe, promised in late:
                    overdue = promised < self.now
                    if covered and not overdue:
                        continue  # arrives late but stock covers the need
                    arrives = promised if not overdue else None
                    if not covered:
                        if arrives is None:
                            expected = None
                        elif expected is not None:
                            expected = max(expected, arrives + duration)
                    state = "overdue" if overdue else "after the material is needed"
                    causes.append(RiskCause(
                        kind="late_supplier", entity=self.ref(pol),
                        weight=WEIGHTS["late_supplier"] if not covered else COVERED_LATE_SUPPLIER_WEIGHT,
                        detail=f"purchase order line {pol.id} for component {comp} was promised "
                               f"{promised.isoformat()} and is not delivered ({state})"
                               + ("; stock on hand still covers this need" if covered else ""),
                        expected_available=(arrives + duration) if arrives and not covered else None,
                        evidence=[EvidencePath(steps=[*steps, self.step(be, material), self.step(ce, be.dst),
                                                      self.step(fe, comp, {"node.promised_date": promised})])]))
        return causes, expected

    def order_causes(self, sup: _Supply, prefix: list[EvidenceStep], take: float
                     ) -> tuple[list[RiskCause], datetime | None]:
        """Causes that delay a supplying order, and when it is expected to finish (None: unknown)."""
        po = sup.order
        causes: list[RiskCause] = []
        ps, pe = self.time(po, "planned_start"), self.time(po, "planned_end")
        status = po.props.get("status")
        duration = (pe - ps) if ps and pe else timedelta(0)
        expected = pe
        steps = [*prefix, self.step(sup.edge, sup.edge.dst)]
        if status in ("planned", "released") and ps is not None and ps < self.now:
            expected = self.now + duration
            causes.append(RiskCause(
                kind="behind_schedule", entity=self.ref(po), weight=WEIGHTS["behind_schedule"],
                detail=f"order {po.id} is {status} but was planned to start at {ps.isoformat()}",
                expected_available=expected, evidence=[EvidencePath(steps=steps)]))
        elif status == "running" and pe is not None and pe < self.now:
            expected = self.now + duration / 4
            causes.append(RiskCause(
                kind="behind_schedule", entity=self.ref(po), weight=WEIGHTS["behind_schedule"],
                detail=f"order {po.id} is still running but was planned to end at {pe.isoformat()}",
                expected_available=expected, evidence=[EvidencePath(steps=steps)]))
        lo = min(self.now, ps or self.now)
        hi = max(expected or self.now, pe or self.now)
        for le in self.nbrs(po.id, ("SCHEDULED_ON",), Direction.OUT):
            dc, expected = self.line_downtime(le.dst, [*steps, self.step(le, po.id)], lo, hi, expected)
            causes.extend(dc)
        if status in ("planned", "released"):
            need_by = ps if ps is not None and ps > self.now else self.now
            cc, expected = self.component_causes(sup.edge.dst, _qty(po.props.get("quantity")),
                                                 [*steps, self.step(sup.edge, po.id)], need_by, duration,
                                                 expected)
            causes.extend(cc)
        del take
        return causes, expected

    def options(self, material: str, mat_steps: list[EvidenceStep], planned_lines: set[str],
                kinds: set[str]) -> list[UnblockOption]:
        """Options that address the causes found: other lots for holds and supply problems,
        substitutes for component problems, other lines for production problems."""
        out: list[UnblockOption] = []
        lots_help = bool(kinds & {"hold", "quarantine", "behind_schedule", "downtime", "shortage"})
        subs_help = bool(kinds & {"late_supplier", "shortage"})
        lines_help = bool(kinds & {"behind_schedule", "downtime", "shortage", "late_supplier"})
        for st in self.stock(material)[:MAX_OPTIONS] if lots_help else []:
            out.append(UnblockOption(kind="alternative_lot", entity=self.ref(st.lot), quantity=round(st.free, 6),
                                     unit=st.lot.props.get("unit"),
                                     detail=f"released lot {st.lot.id} with {st.free:g} left",
                                     evidence=[EvidencePath(steps=[*mat_steps, self.step(st.edge, material)])]))
        for be in self.nbrs(material, ("HAS_BOM_ITEM",), Direction.OUT) if subs_help else []:
            for se in self.nbrs(be.dst, ("APPROVED_SUBSTITUTE",), Direction.OUT):
                free = sum(x.free for x in self.stock(se.dst))
                sub = self.node(se.dst)
                if free <= 0 or sub is None:
                    continue
                comps = [c.dst for c in self.nbrs(be.dst, ("COMPONENT",), Direction.OUT)]
                out.append(UnblockOption(
                    kind="substitute", entity=self.ref(sub), quantity=round(free, 6), unit=sub.props.get("unit"),
                    detail=f"{sub.id} is an approved substitute for {', '.join(comps) or 'a component'} "
                           f"({free:g} in stock)",
                    evidence=[EvidencePath(steps=[*mat_steps, self.step(be, material), self.step(se, be.dst)])]))
        for oe, le in self.makers(material) if lines_help else []:
            if le.dst in planned_lines:
                continue
            ln = self.node(le.dst)
            if ln is None:
                continue
            out.append(UnblockOption(
                kind="alternative_line", entity=self.ref(ln),
                detail=f"line {ln.id} has made {material} (order {oe.src})",
                evidence=[EvidencePath(steps=[*mat_steps, self.step(oe, material), self.step(le, oe.src)])]))
        return out

    # -- one line ------------------------------------------------------------------------
    def prefetch(self, lines: list[NodeRecord]) -> None:
        """Read the lines' edges, then their sales orders, allocated lots and materials, then the
        customers, in a few batch node reads instead of several reads per line."""
        ids: list[str] = []
        orders: list[str] = []
        materials: list[str] = []
        self.edges_many([sol.id for sol in lines], LINE_RELS, Direction.BOTH)
        for sol in lines:
            for e in self.edges(sol.id, LINE_RELS, Direction.BOTH):
                if e.rel == "HAS_SO_LINE" and e.dst == sol.id:
                    orders.append(e.src)
                elif e.rel == "ALLOCATED_TO" and e.dst == sol.id:
                    ids.append(e.src)
                elif e.rel == "FOR_MATERIAL" and e.src == sol.id:
                    ids.append(e.dst)
                    materials.append(e.dst)
        found = self.nodes(list(dict.fromkeys(orders + ids)))
        self.nbrs_many([so for so in dict.fromkeys(orders) if so in found], ("PLACED_BY",), Direction.OUT)
        self.nodes(list(dict.fromkeys(ce.dst for so in dict.fromkeys(orders) if so in found
                                      for ce in self.nbrs(so, ("PLACED_BY",), Direction.OUT))))
        # what component causes and options read: the materials' BOM items, their components and
        # substitutes; and the machines of the lines open orders are planned on
        self.nbrs_many(dict.fromkeys(materials), ("HAS_BOM_ITEM",), Direction.OUT)
        boms = list(dict.fromkeys(be.dst for m in dict.fromkeys(materials)
                                  for be in self.nbrs(m, ("HAS_BOM_ITEM",), Direction.OUT)))
        self.nbrs_many(boms, ("COMPONENT",), Direction.OUT)
        self.nbrs_many(boms, ("APPROVED_SUBSTITUTE",), Direction.OUT)
        self.nodes(boms)
        # the used-up quantities of the released lots of every material the lines can draw on
        # (theirs, their components and substitutes); any other lot is read when asked
        drawn = dict.fromkeys(materials)
        for b in boms:
            drawn.update(dict.fromkeys(e.dst for rels in (("COMPONENT",), ("APPROVED_SUBSTITUTE",))
                                       for e in self.nbrs(b, rels, Direction.OUT)))
        self.used_many(lid for m in drawn for lid in self._lots_of.get(m, {}))
        # the most recent orders of the materials (alternative lines) and where they ran
        self._recent.update(self.recent_orders(dict.fromkeys(materials)))
        recent = list(dict.fromkeys(o for m in dict.fromkeys(materials) for o in self._recent[m]))
        self.nbrs_many(recent, ("FOR_MATERIAL", "SCHEDULED_ON"), Direction.OUT)
        # the records options name: those lines, and the substitutes
        self.nodes(list(dict.fromkeys(
            [e.dst for o in recent for e in self.nbrs(o, ("FOR_MATERIAL", "SCHEDULED_ON"), Direction.OUT)
             if e.rel == "SCHEDULED_ON"]
            + [e.dst for b in boms for e in self.nbrs(b, ("APPROVED_SUBSTITUTE",), Direction.OUT)])))
        planned = dict.fromkeys(e.dst for oid in self.open_orders
                                for e in self.nbrs(oid, ("SCHEDULED_ON",), Direction.OUT))
        self.nbrs_many(planned, ("HAS_MACHINE",), Direction.OUT)

    def line(self, sol: NodeRecord) -> RiskLine:
        due = self.time(sol, "due_date")
        assert due is not None
        self.plant = sol.plant
        causes: list[RiskCause] = []
        edges = self.edges(sol.id, LINE_RELS, Direction.BOTH)
        so = cust = None
        mat_edge: EdgeRecord | None = None
        needed = _qty(sol.props.get("quantity"))
        covered = 0.0
        allocated: list[EdgeRecord] = []
        for e in edges:
            if e.rel == "HAS_SO_LINE" and e.dst == sol.id:
                so = self.node(e.src)
                if so is not None:
                    for ce in self.nbrs(so.id, ("PLACED_BY",), Direction.OUT):
                        cust = self.node(ce.dst)
            elif e.rel == "SHIPPED_TO" and e.dst == sol.id:
                covered += _qty(e.props.get("quantity"))
            elif e.rel == "ALLOCATED_TO" and e.dst == sol.id:
                allocated.append(e)
            elif e.rel == "FOR_MATERIAL" and e.src == sol.id and mat_edge is None:
                mat_edge = e
        lots = self.nodes([e.src for e in allocated])
        for ae in allocated:
            lot = lots.get(ae.src)
            if lot is None:
                continue
            q = _qty(ae.props.get("quantity")) or _qty(lot.props.get("quantity"))
            kind, holds = self.held(lot)
            if kind is None:
                covered += q
                continue
            assert kind in ("hold", "quarantine")
            if holds:
                for hold, he in holds:
                    placed = self.time(hold, "placed_at")
                    causes.append(RiskCause(
                        kind=kind, entity=self.ref(hold), weight=WEIGHTS[kind],
                        detail=f"allocated lot {lot.id} ({q:g}) is held by {hold.id}: "
                               f"{hold.props.get('reason', '')}",
                        evidence=[EvidencePath(steps=[
                            self.step(ae, sol.id),
                            self.step(he, lot.id, {"node.placed_at": placed} if placed else {})])]))
            else:
                causes.append(RiskCause(
                    kind=kind, entity=self.ref(lot), weight=WEIGHTS[kind],
                    detail=f"allocated lot {lot.id} ({q:g}) is {lot.props.get('status')}",
                    evidence=[EvidencePath(steps=[self.step(ae, sol.id)])]))
        remaining = max(0.0, needed - covered)
        material = mat_edge.dst if mat_edge is not None else None
        mat_node = self.node(material) if material else None
        expected: datetime | None = self.now
        planned_lines: set[str] = set()
        mat_steps = [self.step(mat_edge, sol.id)] if mat_edge is not None else []
        if remaining > 1e-9 and material is not None:
            # netting, first come first served: this line needs the plant's stock and the open
            # orders (by planned end, ending by its due date) up to the cumulative demand of the
            # lines of this material due before it plus its own
            key = (material, self.plant)
            demand = self._demand.get(key, 0.0) + remaining
            self._demand[key] = demand
            need = demand - sum(st.free for st in self.stock(material))
            remaining = 0.0
            if need > 1e-9:
                supplied = 0.0
                for sup in self.orders(material):
                    if supplied >= need - 1e-9:
                        break
                    pe = self.time(sup.order, "planned_end")
                    if pe is not None and pe > due:
                        continue
                    supplied += sup.left
                    planned_lines |= {e.dst for e in self.nbrs(sup.order.id, ("SCHEDULED_ON",), Direction.OUT)}
                    oc, o_expected = self.order_causes(sup, mat_steps, sup.left)
                    causes.extend(oc)
                    if o_expected is None:
                        expected = None
                    elif expected is not None:
                        expected = max(expected, o_expected)
                remaining = max(0.0, min(need - supplied, needed - covered))
            if remaining > 1e-9:
                expected = None
                causes.append(RiskCause(
                    kind="shortage", entity=self.ref(mat_node) if mat_node else EntityRef(id=material, cls="Material"),
                    weight=WEIGHTS["shortage"],
                    detail=f"{remaining:g} {sol.props.get('unit') or ''} of {material} not covered by stock "
                           f"or open orders ending by {due.isoformat()}",
                    evidence=[EvidencePath(steps=mat_steps)]))
                # making more: the lines that make it, and components it would need
                for oe, le in self.makers(material)[:1]:
                    dc, _ = self.line_downtime(
                        le.dst, [*mat_steps, self.step(oe, material), self.step(le, oe.src)], self.now, due, None)
                    causes.extend(dc)
                cc, _ = self.component_causes(material, remaining, mat_steps, self.now, timedelta(0), None)
                causes.extend(cc)
        if any(c.kind in ("hold", "quarantine") for c in causes):
            expected = None  # a hold has no planned release time
        product = 1.0
        for c in causes:
            product *= 1 - c.weight
        score = 1 - product if causes else 0.0
        slack = (due - expected).total_seconds() / 3600 if expected is not None else None
        if causes:
            if slack is None:
                score += UNKNOWN_SLACK_BONUS
            elif slack < 0:
                score += NEGATIVE_SLACK_BONUS
            score += PRIORITY_BONUS.get(str(sol.props.get("priority")), 0.0)
        score = round(min(1.0, score), 4)
        opts = self.options(material, mat_steps, planned_lines, {c.kind for c in causes}) \
            if causes and material else []
        uniq: dict[tuple[str, str], RiskCause] = {}
        for c in causes:
            uniq.setdefault((c.kind, c.entity.id), c)
        return RiskLine(
            line=self.ref(sol), sales_order=self.ref(so) if so else None, customer=self.ref(cust) if cust else None,
            material=self.ref(mat_node) if mat_node else None, quantity=needed, unit=sol.props.get("unit"),
            due_date=due, priority=str(sol.props.get("priority") or "normal"),
            level=level_of(score, bool(causes)), score=score,
            causes=sorted(uniq.values(), key=lambda c: (-c.weight, c.kind, c.entity.id)),
            expected_available=expected, slack_hours=round(slack, 3) if slack is not None else None,
            options=opts,
        )


def risk_board(ctx: Context, horizon_days: float, plant: str | None, as_of: datetime | None,
               now: datetime | None = None) -> RiskBoard:
    """Every open line due in [now, now + horizon], scored; highest score first."""
    if horizon_days <= 0:
        raise ValueError(f"the horizon must be positive, got {horizon_days} days")
    # the board's working data is gone when _board returns, before the collector runs again
    with paused_gc():
        return _board(ctx, horizon_days, plant, as_of, now)


def _micros(t: datetime) -> int:
    """Microseconds since the epoch: sorts as the aware datetimes do, without their slow
    comparisons (each compares UTC offsets)."""
    return (t - _EPOCH) // _US


def _board(ctx: Context, horizon_days: float, plant: str | None, as_of: datetime | None,
           now: datetime | None) -> RiskBoard:
    t_now = now or as_of or ctx.now
    end = t_now + timedelta(days=horizon_days)
    lines: list[NodeRecord] = []
    dues: dict[tuple[str, str], datetime | None] = {}
    # open lines only (a missing status reads "open"), filtered by the store: most lines are shipped
    for sol in ctx.store.find_nodes_in("SalesOrderLine", "status", [*OPEN_LINE, None], plant=plant, as_of=as_of):
        if sol.props.get("status", "open") not in OPEN_LINE:
            continue
        due = dues[(sol.id, "due_date")] = prop_time(sol, "due_date")
        if due is None or due < t_now or due > end:
            continue
        lines.append(sol)
    board = _Board(ctx, t_now, as_of, end)
    board._times.update(dues)
    prio = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    lines.sort(key=lambda s: (_micros(board.time(s, "due_date") or t_now), prio.get(str(s.props.get("priority")), 2),
                              s.id))
    board.prefetch(lines)
    out = [board.line(s) for s in lines]
    out.sort(key=lambda r: (-r.score, _micros(r.due_date), r.line.id))
    return RiskBoard(now=t_now, horizon_days=horizon_days, plant=plant, as_of=as_of,
                     lines_considered=len(lines), lines=out, caps=ctx.new_caps())
