"""SOP in effect: the SOP version whose effective window contained an order's production time."""

from __future__ import annotations

from datetime import datetime

from reasoning.analyses.common import Context, compose, prop_time, ref
from reasoning.engine import Match
from reasoning.results import EntityRef, EvidencePath, EvidenceStep, SopInEffectResult, SopMatch
from store.base import Direction

EXCERPT_CHARS = 240
_VIA_ORDER = {"material": 0, "machine": 1, "line": 2, "operation": 3}


def _excerpt(text: object) -> str:
    raw = str(text or "")
    # whitespace-normalising a prefix of the text gives a prefix of the normalised text: when
    # that is already longer than the excerpt, the rest of a long SOP text need not be split
    head = " ".join(raw[: 4 * EXCERPT_CHARS].split())
    s = head if len(head) > EXCERPT_CHARS else " ".join(raw.split())
    return s if len(s) <= EXCERPT_CHARS else s[: EXCERPT_CHARS - 1].rstrip() + "…"


def sop_in_effect(ctx: Context, order: str, machine: str | None, at: datetime | None,
                  as_of: datetime | None) -> SopInEffectResult:
    """Versions in effect at ``at`` (default: the order's actual start, else now) for the order's
    material, its machines (or ``machine``), its planned line and its operations.

    The primary version is the first by (material, machine, line, operation), then SOP id. The
    order ran on a superseded version when the version it recorded (USED_SOP) is not the one of
    the same SOP in effect at that time (or, if that SOP has none in effect, not the primary one).
    """
    po = ctx.require(order, "ProductionOrder", as_of)
    if machine is not None:
        ctx.require(machine, "Machine", as_of)
    when = at or prop_time(po, "actual_start") or ctx.now
    caps = ctx.new_caps()
    targets: dict[str, tuple[str, list[EvidenceStep]]] = {}
    for e in ctx.store.neighbours(order, ["FOR_MATERIAL", "RAN_ON", "SCHEDULED_ON"], Direction.OUT, as_of):
        if e.rel == "RAN_ON" and machine is not None and e.dst != machine:
            continue
        via = {"FOR_MATERIAL": "material", "RAN_ON": "machine", "SCHEDULED_ON": "line"}[e.rel]
        targets.setdefault(e.dst, (via, [EvidenceStep(src=order, rel=e.rel, dst=e.dst, direction="out")]))
    if machine is not None and machine not in targets:
        targets[machine] = ("machine", [])  # asked for explicitly: the machine it will run on
    matches: list[SopMatch] = []
    seen: set[str] = set()
    if targets:
        res = ctx.run("sop_versions_for", as_of, caps, targets=sorted(targets), at=when)
        by_version: dict[str, Match] = res.bindings["version"]
        sops = ctx.store.get_nodes(sorted({m.steps[0].dst for m in by_version.values()}), as_of)
        for vid, m in sorted(by_version.items()):
            via, prefix = targets[m.start]
            sop = sops.get(m.steps[0].dst)
            if sop is None:
                continue
            matches.append(_match(sop_ref=ref(sop), version=m, via=via, target=m.start,
                                  evidence=compose(prefix, m, "sop_versions_for")))
            seen.add(vid)
    # operations: SOPs written for an operation the order performs
    by_op = [(op, list(ctx.store.find_nodes("SOP", where={"operation": op}, as_of=as_of)))
             for op in po.props.get("operations") or []]
    # the versions of all those SOPs in one batch read and one node read
    vedges_of = ctx.store.neighbours_many([s.id for _, sops_of in by_op for s in sops_of], ["VERSION_OF"],
                                          Direction.IN, as_of)
    versions = ctx.store.get_nodes(sorted({e.src for es in vedges_of.values() for e in es}), as_of)
    for op, sops_of in by_op:
        for sop in sops_of:
            for e in vedges_of[sop.id]:
                v = versions.get(e.src)
                if v is None or v.id in seen:
                    continue
                start = prop_time(v, "effective_from")
                if start is None or start > when:
                    continue  # not yet in effect: its end need not be read
                end = prop_time(v, "effective_to")
                if end is not None and when >= end:
                    continue
                times = {"node.effective_from": start, **({"node.effective_to": end} if end else {})}
                step = EvidenceStep(src=sop.id, rel="VERSION_OF", dst=v.id, direction="in", times=times)
                matches.append(SopMatch(
                    sop=ref(sop), version=ref(v), applies_via="operation", applies_to=str(op),
                    effective_from=start, effective_to=end, text_excerpt=_excerpt(v.props.get("text")),
                    evidence=[EvidencePath(rule=None, steps=[step], note=f"SOP operation {op!r}")]))
                seen.add(v.id)
    matches.sort(key=lambda mt: (_VIA_ORDER[mt.applies_via], mt.sop.id, mt.version.id))
    used = ctx.run("order_sop_used", as_of, caps, orders=[order])
    used_m = used.matches("version")
    used_ref: EntityRef | None = ref(used_m[0].node) if used_m else None
    primary = matches[0].version.id if matches else None
    superseded, detail = False, None
    evidence: list[EvidencePath] = []
    if used_m:
        um = used_m[0]
        evidence.append(compose([], um, "order_sop_used"))
        used_sop = um.steps[1].dst if len(um.steps) > 1 else None
        if used_sop is None:
            for e in ctx.store.neighbours(um.node.id, ["VERSION_OF"], Direction.OUT, as_of):
                used_sop = e.dst
        same = [mt for mt in matches if mt.sop.id == used_sop]
        expected = same[0].version.id if same else primary
        if expected is not None and expected != um.node.id:
            superseded = True
            detail = (f"order {order} ran under {um.node.id}, but {expected} was in effect at "
                      f"{when.isoformat()}")
    return SopInEffectResult(
        order=ref(po), machine=machine, at=when, in_effect=matches, sop_version=primary,
        used_version=used_ref, superseded=superseded, superseded_detail=detail, evidence=evidence,
    )


def _match(sop_ref: EntityRef, version: Match, via: str, target: str, evidence: EvidencePath) -> SopMatch:
    v = version.node
    start = prop_time(v, "effective_from")
    assert start is not None
    return SopMatch(
        sop=sop_ref, version=ref(v), applies_via=via, applies_to=target,
        effective_from=start, effective_to=prop_time(v, "effective_to"),
        text_excerpt=_excerpt(v.props.get("text")), evidence=[evidence],
    )
