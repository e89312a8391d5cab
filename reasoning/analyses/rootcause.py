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

import numpy as np

from reasoning.analyses.common import Context, ref
from reasoning.analyses.comparison import Plan, fast_counts, walk_step
from reasoning.analyses.trace import trace_incident
from reasoning.engine import EdgeCache, NodeCache, edge_times
from reasoning.results import EvidencePath, EvidenceStep, RootCauseFactor, RootCauseResult
from reasoning.rule_model import RepeatSegment, Rule, Step
from store.base import Direction, EdgeRecord, NodeRecord

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


#: (far node, edge) per start of a one-hop rule, in the engine's visiting order
_Hops = dict[str, list[tuple[NodeRecord, EdgeRecord]]]
#: (start, far node, edge) per node a one-hop rule binds
_Reach = list[tuple[str, NodeRecord, EdgeRecord]]


def _one_hop_step(rule: Rule, var: str) -> Step | None:
    """The rule's single step when it is a plain one-hop rule binding ``var`` (no filters,
    windows or edge conditions), which :func:`_one_hop` can evaluate for many starts at once."""
    if len(rule.path) != 1 or not isinstance(rule.path[0], Step) or rule.start.where or rule.start.without_edge:
        return None
    st = rule.path[0]
    if st.node.where or st.node.without_edge or st.edge_where or st.window is not None:
        return None
    if st.node.var != var or var not in rule.returns or var == rule.start.var:
        return None
    return st


def _one_hop(ctx: Context, rule: Rule, step: Step, starts: Sequence[str], as_of: datetime | None,
             r: Reads) -> _Hops:
    """Per start, every node the rule's one step reaches and the edge the engine would walk
    (same edges in the same order): one batch neighbour read and one node read for all the lot
    histories, instead of one rule run per lot."""
    rels, direction = tuple(step.rels), step.direction
    uniq = list(dict.fromkeys(starts))
    want = [s for s in uniq if (s, rels, direction) not in r.edges]
    if want:
        got = ctx.store.neighbours_many(want, list(rels), Direction(direction), as_of)
        for s in want:
            r.edges[(s, rels, direction)] = got.get(s, [])
    out_dir = direction == "out"
    _fetch(ctx, r, [*uniq, *(e.dst if out_dir else e.src for s in uniq for e in r.edges[(s, rels, direction)])],
           as_of)
    out: _Hops = {}
    start_cls, far_cls = rule.start.classes, step.node.classes
    for s in uniq:
        rec = r.nodes.get(s)
        if rec is None or (start_cls and rec.cls not in start_cls):
            continue
        hops: list[tuple[NodeRecord, EdgeRecord]] = []
        for e in r.edges[(s, rels, direction)]:
            node = r.nodes.get(e.dst if out_dir else e.src)
            if node is not None and (not far_cls or node.cls in far_cls):
                hops.append((node, e))
        out[s] = hops
    return out


def _hop_step(start: str, node: NodeRecord, e: EdgeRecord, direction: str, as_of: datetime | None) -> EvidenceStep:
    """The evidence step the rule engine records for a one-hop match (edge times; validity with as_of)."""
    return EvidenceStep(src=start, rel=e.rel, dst=node.id, direction="out" if direction == "out" else "in",
                        times=edge_times(e, as_of, {}))


def _first_reach(hops: _Hops, starts: Sequence[str]) -> _Reach:
    """(start, node, edge) per reached node as one rule run from ``starts`` binds it: the first
    start (in order) and edge that reach it; sorted by node id like ``RuleResult.matches``."""
    first: dict[str, tuple[str, NodeRecord, EdgeRecord]] = {}
    start_set = set(starts)
    for s in dict.fromkeys(starts):
        for node, e in hops.get(s, ()):
            if node.id not in first and node.id not in start_set:
                first[node.id] = (s, node, e)
    return [first[k] for k in sorted(first)]


def _fetch(ctx: Context, r: Reads, ids: Sequence[str], as_of: datetime | None) -> None:
    missing = sorted({i for i in ids if i not in r.nodes})
    if missing:
        got = ctx.store.get_nodes(missing, as_of)
        for i in missing:
            r.nodes[i] = got.get(i)


@dataclass
class _Genealogy:
    lot_paths: dict[str, list[EvidenceStep]]
    order_paths: dict[str, list[EvidenceStep]]
    lot_nodes: dict[str, NodeRecord]


def _genealogy(ctx: Context, lot: str, as_of: datetime | None, r: Reads) -> _Genealogy:
    gen = ctx.run("backward_genealogy", as_of, ctx.new_caps(), r.edges, r.nodes, lots=[lot])
    lot_paths: dict[str, list[EvidenceStep]] = {lot: []}
    for lid, m in gen.bindings["lot"].items():
        if lid != lot:
            lot_paths.setdefault(lid, list(m.steps))
    order_paths = {oid: list(m.steps) for oid, m in gen.bindings["order"].items()}
    return _Genealogy(lot_paths, order_paths, {lid: m.node for lid, m in gen.bindings["lot"].items()})


def _plain_repeat(rule: Rule) -> tuple[tuple[Step, ...], ...] | None:
    """The alternatives of a rule that is one repeat (min 1) of plain steps (classes only: no
    filters, windows or edge conditions): what :func:`_reached` can walk for many lots at once."""
    if len(rule.path) != 1 or not isinstance(rule.path[0], RepeatSegment) or rule.start.where \
            or rule.start.without_edge or rule.path[0].repeat.min != 1:
        return None
    alts = rule.path[0].repeat.any_of
    for alt in alts:
        for st in alt:
            if st.node.where or st.node.without_edge or st.edge_where or st.window is not None:
                return None
    return alts


def _reached(ctx: Context, rule: Rule, lots: Sequence[str], as_of: datetime | None,
             r: Reads) -> list[_Genealogy | None]:
    """The orders and lots the genealogy rule binds from each lot (the sets only, no evidence
    steps), for all lots in one level-by-level walk: one ids-only batch read per level and step
    instead of one rule run per lot. A lot whose walk comes near the repeat bound or the result
    cap gets None (its rule run decides: there the bound's bookkeeping matters)."""
    alts = _plain_repeat(rule)
    if alts is None:
        return [None] * len(lots)
    bound = min(rule.path[0].repeat.max, ctx.max_depth) if isinstance(rule.path[0], RepeatSegment) else 0
    _fetch(ctx, r, lots, as_of)
    links: dict[tuple[str, int, int], list[str]] = {}  # (node, alt, step) -> far ids passing the class filter
    out: list[_Genealogy | None] = []
    # per lot: visited (node, alt, step); frontier of (node, alt, step, count); step -1 is a boundary
    visited: list[set[tuple[str, int, int]]] = []
    frontier: list[tuple[int, str, int, int, int]] = []
    bailed: set[int] = set()
    for i, lot in enumerate(lots):
        rec = r.nodes.get(lot)
        visited.append(set())
        if rec is not None and (not rule.start.classes or rec.cls in rule.start.classes):
            frontier.append((i, lot, -1, -1, 0))
    while frontier:
        # the moves of every state: (lot index, node, alt, next step index, count)
        moves: list[tuple[int, str, int, int, int]] = []
        for i, node, a, j, count in frontier:
            if i in bailed:
                continue
            if a < 0 or j == len(alts[a]) - 1:  # at a boundary: a new iteration of any alternative
                if count + 1 >= bound:
                    bailed.add(i)
                    continue
                moves.extend((i, node, b, 0, count + 1) for b in range(len(alts)))
            else:
                moves.append((i, node, a, j + 1, count))
        need: dict[tuple[int, int], list[str]] = {}
        for _, node, a, j, _ in moves:
            if (node, a, j) not in links:
                need.setdefault((a, j), []).append(node)
        for (a, j), nodes in need.items():
            st = alts[a][j]
            got = ctx.store.neighbour_links(list(dict.fromkeys(nodes)), list(st.rels), Direction(st.direction),
                                            as_of, classes=st.node.classes or None)
            for n in nodes:
                links[(n, a, j)] = [lk.far for lk in got.get(n, [])]
        _fetch(ctx, r, [f for _, node, a, j, _ in moves for f in links[(node, a, j)]], as_of)
        nxt: list[tuple[int, str, int, int, int]] = []
        for i, node, a, j, count in moves:
            seen = visited[i]
            for far in links[(node, a, j)]:
                if (far, a, j) in seen or r.nodes.get(far) is None:
                    continue
                seen.add((far, a, j))
                nxt.append((i, far, a, j, count))
        frontier = nxt
    for i, lot in enumerate(lots):
        if i in bailed or r.nodes.get(lot) is None:
            out.append(None)
            continue
        bound_to: dict[str, dict[str, NodeRecord]] = {}
        for far, a, j in visited[i]:
            var = alts[a][j].node.var
            rec = r.nodes.get(far)
            if var is not None and rec is not None and far != lot:
                bound_to.setdefault(var, {})[far] = rec
        lot_b, order_b = bound_to.get("lot", {}), bound_to.get("order", {})
        if len(lot_b) >= ctx.max_results or len(order_b) >= ctx.max_results:
            out.append(None)
            continue
        lot_paths: dict[str, list[EvidenceStep]] = {lot: [], **{k: [] for k in lot_b}}
        out.append(_Genealogy(lot_paths, {k: [] for k in order_b}, lot_b))
    return out


def lot_histories(ctx: Context, lots: Sequence[str], as_of: datetime | None,
                  own_materials: Sequence[str | None], reads: Reads | None = None,
                  with_paths: int | None = None) -> list[History]:
    """:func:`lot_history` of many lots, with the one-hop context rules (``order_context``,
    ``lot_sources``) read once for all of them when they are plain one-hop rules.

    Only the first ``with_paths`` lots (default: all) get their factors' evidence steps; the
    others' factors map to empty lists (a comparison lot needs only which factors it has)."""
    r = reads if reads is not None else Reads()
    oc_rule, src_rule = ctx.rules["order_context"], ctx.rules["lot_sources"]
    oc_step, src_step = _one_hop_step(oc_rule, "factor"), _one_hop_step(src_rule, "source")
    n_paths = len(lots) if with_paths is None else with_paths
    if oc_step is None or src_step is None or ctx.store.capabilities.cypher:
        hs = [lot_history(ctx, lot, as_of, m, r) for lot, m in zip(lots, own_materials, strict=True)]
        for h in hs[n_paths:]:
            h.factors = {k: [] for k in h.factors}
        return hs
    gen_rule = ctx.rules["backward_genealogy"]
    quick = [None] * n_paths + _reached(ctx, gen_rule, lots[n_paths:], as_of, r)
    gens = [q if q is not None else _genealogy(ctx, lot, as_of, r) for lot, q in zip(lots, quick, strict=True)]
    oc = _one_hop(ctx, oc_rule, oc_step, [o for g in gens for o in sorted(g.order_paths)], as_of, r)
    src = _one_hop(ctx, src_rule, src_step, [x for g in gens for x in sorted(g.lot_paths)], as_of, r)
    return [_assemble(lot, g, m, _first_reach(oc, sorted(g.order_paths)) if g.order_paths else [],
                      _first_reach(src, sorted(g.lot_paths)), oc_step.direction, src_step.direction,
                      as_of, i < n_paths)
            for i, (lot, g, m) in enumerate(zip(lots, gens, own_materials, strict=True))]


def _assemble(lot: str, g: _Genealogy, own_material: str | None, oc: _Reach, src: _Reach, oc_dir: str,
              src_dir: str, as_of: datetime | None, paths: bool) -> History:
    """A lot's history from its genealogy and its context rules' matches (as :func:`lot_history`);
    without ``paths`` the factors' step lists are left empty."""
    h = History(lot)
    factors, nodes = h.factors, h.nodes
    for start, node, e in oc:
        key = (node.cls, node.id)
        if node.cls == "Material" or node.cls not in FACTOR_CLASSES or key in factors:
            continue
        factors[key] = [*g.order_paths[start], _hop_step(start, node, e, oc_dir, as_of)] if paths else []
        nodes[node.id] = node
    supplier_lots = {start for start, node, _ in src if node.cls == "Supplier"}
    for lid in sorted(supplier_lots):
        ln = g.lot_nodes.get(lid)
        if ln is not None and ln.cls in FACTOR_CLASSES and (ln.cls, ln.id) not in factors:
            factors[(ln.cls, ln.id)] = g.lot_paths[lid] if paths else []
            nodes[ln.id] = ln
    for start, node, e in src:
        key = (node.cls, node.id)
        if (node.cls == "Material" and node.id == own_material) or node.cls not in FACTOR_CLASSES or key in factors:
            continue
        factors[key] = [*g.lot_paths[start], _hop_step(start, node, e, src_dir, as_of)] if paths else []
        nodes[node.id] = node
    return h


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


def _plan(ctx: Context) -> Plan | None:
    """The shapes :func:`comparison.fast_counts` needs, when the rules have them: the genealogy a
    plain repeat binding ``lot`` and ``order`` (classes only), the context rules plain one-hop
    rules whose start classes hold whatever the genealogy binds; None otherwise (and on Neo4j,
    where rules run compiled), and the histories are built one by one."""
    if ctx.store.capabilities.cypher:
        return None
    oc_rule, src_rule = ctx.rules["order_context"], ctx.rules["lot_sources"]
    oc_step, src_step = _one_hop_step(oc_rule, "factor"), _one_hop_step(src_rule, "source")
    alts = _plain_repeat(ctx.rules["backward_genealogy"])
    if oc_step is None or src_step is None or alts is None:
        return None
    gen = ctx.rules["backward_genealogy"]
    if gen.start.classes and "Lot" not in gen.start.classes:
        return None
    for alt in alts:
        for st in alt:
            cls = set(st.node.classes)
            for var, rule in (("order", oc_rule), ("lot", src_rule)):
                if st.node.var == var and rule.start.classes and (not cls or not cls <= set(rule.start.classes)):
                    return None
    if src_rule.start.classes and "Lot" not in src_rule.start.classes:
        return None
    bound = min(gen.path[0].repeat.max, ctx.max_depth) if isinstance(gen.path[0], RepeatSegment) else 0
    return Plan(tuple(tuple(walk_step(st) for st in alt) for alt in alts), bound, walk_step(oc_step),
                walk_step(src_step))


def good_counts(ctx: Context, lots: Sequence[str], own: Sequence[str | None], keys: Sequence[tuple[str, str]],
                as_of: datetime | None, reads: Reads | None = None) -> list[int]:
    """Per factor key, how many of the (comparison) ``lots`` have it in their history: as many
    as :func:`lot_histories` would find, counted from one walk over all of them where the
    rules allow (:mod:`reasoning.analyses.comparison`); the lots it cannot decide get their
    histories built."""
    plan = _plan(ctx)
    rest = list(range(len(lots)))
    counts = [0] * len(keys)
    if plan is not None:
        counts, rest = fast_counts(ctx.store, plan, lots, own, keys, as_of, ctx.max_results)
    if rest:
        hist = lot_histories(ctx, [lots[i] for i in rest], as_of, [own[i] for i in rest], reads, with_paths=0)
        counts = [c + sum(1 for h in hist if key in h.factors) for c, key in zip(counts, keys, strict=True)]
    return counts


def _comparable_good(ctx: Context, mats: Sequence[str], bad: set[str], produced_bad: bool,
                     as_of: datetime | None) -> list[str]:
    """Lots of the same materials that no nonconformance concerns (and that were produced, when
    the bad ones were), in batch reads: ids and classes first, records only of the lots."""
    links = ctx.store.neighbour_links(mats, ["FOR_MATERIAL"], Direction.IN, as_of, classes=["Lot"])
    cands = [lid for lid in dict.fromkeys(lk.far for m in mats for lk in links.get(m, [])) if lid not in bad]
    if ctx.store.capabilities.cypher:
        nodes = ctx.store.get_nodes(cands, as_of)
        lots = [lid for lid in cands if (n := nodes.get(lid)) is not None and n.cls == "Lot"]
    else:  # the embedded store's links already checked the far node's class and validity
        lots = cands
    if produced_bad:
        made = ctx.store.neighbour_links(lots, ["PRODUCED"], Direction.IN, as_of)
        lots = [lid for lid in lots if made.get(lid)]
    concerns = ctx.store.neighbour_links(lots, ["CONCERNS"], Direction.IN, as_of)
    incs = ctx.store.get_nodes(sorted({lk.far for lks in concerns.values() for lk in lks}), as_of)
    bad_incs = {i for i, n in incs.items() if n.props.get("kind") in BAD_INCIDENT_KINDS}
    return sorted(lid for lid in lots if not any(lk.far in bad_incs for lk in concerns.get(lid, [])))


def fisher_greater(nb: int, ng: int, bad_with: Sequence[int], good_with: Sequence[int]) -> list[float]:
    """One-sided ("greater") Fisher's exact p-values of the tables [[bw, nb-bw], [gw, ng-gw]], all
    factors in one vectorised hypergeometric CDF: the same formula and the same values as
    ``scipy.stats.fisher_exact(table, alternative="greater")`` per table (1.0 when a row or a
    column of the table sums to zero), without its per-call overhead."""
    if not bad_with:
        return []
    from scipy.stats import hypergeom  # imported here: scipy.stats costs seconds at CLI start

    bw, gw = np.asarray(bad_with, dtype=np.int64), np.asarray(good_with, dtype=np.int64)
    c01, c11 = nb - bw, ng - gw
    degenerate = (nb == 0) | (ng == 0) | (bw + gw == 0) | (c01 + c11 == 0)
    p = np.minimum(np.asarray(hypergeom.cdf(c01, nb + ng, nb, c01 + c11), dtype=np.float64), 1.0)
    return [1.0 if d else float(x) for d, x in zip(degenerate.tolist(), p.tolist(), strict=True)]


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
    mat_edges = ctx.store.neighbours_many(bad, ["FOR_MATERIAL"], Direction.OUT, as_of)
    materials: dict[str, str | None] = {lid: (mat_edges[lid][0].dst if mat_edges[lid] else None) for lid in bad}
    mats = sorted({m for m in materials.values() if m is not None})
    # comparable good lots: same materials, produced (not supplier lots) when the bad ones were
    produced_bad = any(ctx.store.neighbours_many(bad, ["PRODUCED"], Direction.IN, as_of).values())
    good = _comparable_good(ctx, mats, set(materials), produced_bad, as_of)
    if len(good) > MAX_GOOD_LOTS:
        caps.result_limit_hit = True
        caps.notes.append(f"compared an evenly spaced sample of {MAX_GOOD_LOTS} of {len(good)} comparable "
                          f"good lots (by id)")
        step = len(good) / MAX_GOOD_LOTS
        good = [good[int(i * step)] for i in range(MAX_GOOD_LOTS)]
    reads = Reads()
    own_good = [materials.get(lid) or (mats[0] if len(mats) == 1 else None) for lid in good]
    bad_h = lot_histories(ctx, bad, as_of, [materials[lid] for lid in bad], reads)
    candidates: dict[tuple[str, str], NodeRecord] = {}
    for h in bad_h:
        for key in h.factors:
            candidates.setdefault(key, h.nodes[key[1]])
    nb, ng = len(bad_h), len(good)
    keys = list(candidates)
    bad_with = [sum(1 for h in bad_h if key in h.factors) for key in keys]
    good_with = good_counts(ctx, good, own_good, keys, as_of, reads)
    p_values = fisher_greater(nb, ng, bad_with, good_with)
    factors: list[RootCauseFactor] = []
    for key, bw, gw, p in zip(keys, bad_with, good_with, p_values, strict=True):
        node = candidates[key]
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
