"""Root-cause candidates: factors over-represented in bad lots' backward histories.

For every lot (bad, and comparable good lots of the same materials) the history is the set of
factors its backward genealogy reaches: supplier lots, suppliers, machines, lines, SOP versions,
shifts, operators and input materials. Each factor found in some bad lot is scored by support
(share of bad lots having it), lift against the good lots and a one-sided Fisher's exact test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from reasoning.analyses.common import Context, ref
from reasoning.analyses.trace import trace_incident
from reasoning.engine import EdgeCache, NodeCache
from reasoning.results import EvidencePath, EvidenceStep, RootCauseFactor, RootCauseResult
from store.base import Direction, NodeRecord

#: Most comparable good lots compared (an evenly spaced sample by id); sampling is reported in caps.
MAX_GOOD_LOTS = 400
#: Evidence paths kept per factor (one per bad lot, the lowest lot ids first).
MAX_EVIDENCE = 5
FACTOR_CLASSES = ("Machine", "SOPVersion", "Lot", "Supplier", "Shift", "Person", "Line", "Material")
BAD_INCIDENT_KINDS = ("nonconformance",)


@dataclass
class History:
    lot: str
    factors: dict[tuple[str, str], list[EvidenceStep]] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)


@dataclass
class Reads:
    """Node and neighbour reads shared by the lot histories of one analysis (same ``as_of``):
    bad and good lots share most of their machines, lines, SOPs and suppliers."""

    nodes: NodeCache = field(default_factory=dict)
    edges: EdgeCache = field(default_factory=dict)


def lot_history(ctx: Context, lot: str, as_of: datetime | None, own_material: str | None,
                reads: Reads | None = None) -> History:
    """The factors of one lot's backward history, each with the first path that reached it."""
    caps = ctx.new_caps()
    h = History(lot)
    r = reads if reads is not None else Reads()
    gen = ctx.run("backward_genealogy", as_of, caps, r.edges, r.nodes, lots=[lot])
    lot_paths: dict[str, list[EvidenceStep]] = {lot: []}
    for lid, m in gen.bindings["lot"].items():
        if lid != lot:
            lot_paths.setdefault(lid, list(m.steps))
    order_paths = {oid: list(m.steps) for oid, m in gen.bindings["order"].items()}

    def add(node: NodeRecord, steps: list[EvidenceStep]) -> None:
        key = (node.cls, node.id)
        if node.cls in FACTOR_CLASSES and key not in h.factors:
            h.factors[key] = steps
            h.nodes[node.id] = node

    if order_paths:
        res = ctx.run("order_context", as_of, caps, r.edges, r.nodes, orders=sorted(order_paths))
        for m in res.matches("factor"):
            if m.node.cls == "Material":
                continue  # the materials made along the way are not causes; input materials are
            add(m.node, [*order_paths[m.start], *m.steps])
    src = ctx.run("lot_sources", as_of, caps, r.edges, r.nodes, lots=sorted(lot_paths))
    supplier_lots = {m.start for m in src.matches("source") if m.node.cls == "Supplier"}
    for lid in sorted(supplier_lots):
        lm = gen.bindings["lot"].get(lid)
        if lm is not None:
            add(lm.node, lot_paths[lid])
    for m in src.matches("source"):
        if m.node.cls == "Material" and m.node.id == own_material:
            continue
        add(m.node, [*lot_paths[m.start], *m.steps])
    return h


def _material(ctx: Context, lot: str, as_of: datetime | None) -> str | None:
    for e in ctx.store.neighbours(lot, ["FOR_MATERIAL"], Direction.OUT, as_of):
        return e.dst
    return None


def _is_bad(ctx: Context, lot: str, as_of: datetime | None) -> bool:
    edges = ctx.store.neighbours(lot, ["CONCERNS"], Direction.IN, as_of)
    incs = ctx.store.get_nodes([e.src for e in edges], as_of)
    return any(n.props.get("kind") in BAD_INCIDENT_KINDS for n in incs.values())


def rootcause(ctx: Context, lots: Sequence[str], incident: str | None,
              as_of: datetime | None) -> RootCauseResult:
    caps = ctx.new_caps()
    bad = sorted(set(lots))
    if incident is not None:
        tr = trace_incident(ctx, incident, as_of, lot_precise=False)
        bad = sorted(set(bad) | set(tr.start_lots))
    if not bad:
        raise ValueError("root cause needs bad lots: give --lots or an incident that concerns lots")
    for lid in bad:
        ctx.require(lid, "Lot", as_of)
    materials: dict[str, str | None] = {lid: _material(ctx, lid, as_of) for lid in bad}
    mats = sorted({m for m in materials.values() if m is not None})
    # comparable good lots: same materials, produced (not supplier lots) when the bad ones were
    produced_bad = any(ctx.store.neighbours(lid, ["PRODUCED"], Direction.IN, as_of) for lid in bad)
    good: list[str] = []
    for mat in mats:
        for e in ctx.store.neighbours(mat, ["FOR_MATERIAL"], Direction.IN, as_of):
            lid = e.src
            if lid in materials or lid in good:
                continue
            node = ctx.store.get_node(lid, as_of)
            if node is None or node.cls != "Lot":
                continue
            if produced_bad and not ctx.store.neighbours(lid, ["PRODUCED"], Direction.IN, as_of):
                continue
            if _is_bad(ctx, lid, as_of):
                continue
            good.append(lid)
    good.sort()
    if len(good) > MAX_GOOD_LOTS:
        caps.result_limit_hit = True
        caps.notes.append(f"compared an evenly spaced sample of {MAX_GOOD_LOTS} of {len(good)} comparable "
                          f"good lots (by id)")
        step = len(good) / MAX_GOOD_LOTS
        good = [good[int(i * step)] for i in range(MAX_GOOD_LOTS)]
    reads = Reads()
    bad_h = [lot_history(ctx, lid, as_of, materials[lid], reads) for lid in bad]
    good_h = [lot_history(ctx, lid, as_of, materials.get(lid) or (mats[0] if len(mats) == 1 else None), reads)
              for lid in good]
    candidates: dict[tuple[str, str], NodeRecord] = {}
    for h in bad_h:
        for key in h.factors:
            candidates.setdefault(key, h.nodes[key[1]])
    nb, ng = len(bad_h), len(good_h)
    factors: list[RootCauseFactor] = []
    for key, node in candidates.items():
        bw = sum(1 for h in bad_h if key in h.factors)
        gw = sum(1 for h in good_h if key in h.factors)
        from scipy.stats import fisher_exact  # imported here: scipy.stats costs seconds at CLI start

        _, p = fisher_exact([[bw, nb - bw], [gw, ng - gw]], alternative="greater")
        table_or = (bw * (ng - gw)) / ((nb - bw) * gw) if (nb - bw) * gw else None
        support = bw / nb
        good_share = gw / ng if ng else 0.0
        lift = support / ((gw + 1) / (ng + 1))
        evidence = [
            EvidencePath(rule="backward_genealogy", steps=h.factors[key], note=f"in the history of bad lot {h.lot}")
            for h in bad_h if key in h.factors
        ][:MAX_EVIDENCE]
        factors.append(RootCauseFactor(
            factor=ref(node), factor_class=key[0], rank=0, bad_with=bw, bad_total=nb, good_with=gw,
            good_total=ng, support=round(support, 6), good_share=round(good_share, 6), lift=round(lift, 6),
            odds_ratio=round(table_or, 6) if table_or is not None else None, p_value=float(p),
            evidence=evidence,
        ))
    factors.sort(key=lambda f: (f.p_value, -f.lift, -f.support, FACTOR_CLASSES.index(f.factor_class),
                                f.factor.id))
    ranked = [f.model_copy(update={"rank": i + 1}) for i, f in enumerate(factors)]
    return RootCauseResult(bad_lots=bad, incident=incident, materials=mats, good_lots=good,
                           factors=ranked, as_of=as_of, caps=caps)
