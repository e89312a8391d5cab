"""Root cause's comparison lots counted without building their histories.

A comparison (good) lot only adds one to a factor's ``good_with`` when the factor is in its
history, so for hundreds of good lots it is enough to know, per candidate factor, which good
lots have it. The genealogy of all of them is one walk with per-lot bitsets
(:mod:`store.multiwalk`), and each way a factor enters a history (see ``rootcause._assemble``)
becomes bitset algebra over that walk:

- the context of the orders reached (``order_context``): any lot reaching such an order has the
  far node (materials excepted: those are the products made along the way);
- the sources of the lots reached and of the lot itself (``lot_sources``): suppliers, and input
  materials other than the lot's own;
- supplier lots: for each supplier a lot reaches, the first lot (by id) of its history with an
  edge to that supplier is a factor itself, unless it is the lot itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from reasoning.rule_model import Step
from store.base import Direction, GraphStore
from store.multiwalk import I64, Bits, Hop, Reach, WalkStep, popcount, reach_many, spread


@dataclass(frozen=True)
class Plan:
    """The rules' shapes the counting needs (built by the caller from the rule set)."""

    alternatives: tuple[tuple[WalkStep, ...], ...]  # the genealogy repeat, binding "lot" and "order"
    max_repeats: int
    order_step: WalkStep  # order_context's one step
    source_step: WalkStep  # lot_sources' one step
    supplier_class: str = "Supplier"
    skip_order_class: str = "Material"


def walk_step(st: Step) -> WalkStep:
    """A rule step as a walk step (classes only; the caller checked it has no conditions)."""
    return WalkStep(tuple(st.rels), Direction(st.direction), frozenset(st.node.classes) or None, st.node.var)


def fast_counts(store: GraphStore, plan: Plan, lots: Sequence[str], own: Sequence[str | None],
                keys: Sequence[tuple[str, str]], as_of: datetime | None,
                max_results: int) -> tuple[list[int], list[int]]:
    """Per key, how many of ``lots`` have it in their history; and the indexes of the lots this
    could not decide (walk near the repeat bound, result cap, missing lot), whose histories the
    caller builds the usual way (they are not counted here)."""
    if not lots or not keys:
        return [0] * len(keys), []
    ids = sorted({k[1] for k in keys})
    order_only = frozenset(k[1] for k in keys if k[0] != plan.skip_order_class)
    hops = [
        Hop("order", ("order",), plan.order_step, only=order_only),
        Hop("source", ("lot",), plan.source_step, with_starts=True),
    ]
    reach = reach_many(store, lots, [list(a) for a in plan.alternatives], plan.max_repeats, as_of, hops)
    ok = reach.complete.copy()
    _cap(reach, ok, max_results)
    fallback = [i for i in range(len(lots)) if not ok[i]]
    mask = _mask(ok, reach.words)
    nid = reach.key_of(ids)
    key_nid = np.array([nid.get(k[1], -1) for k in keys], dtype=np.int64)
    bits = np.zeros((len(keys), reach.words), dtype=np.uint64)
    # order context
    o_near, o_far = reach.hops["order"]
    fk, fb = spread(o_near, o_far, reach.keys.get("order", _empty()), reach.bits.get("order", _bits(0, reach)))
    _or_into(bits, key_nid, fk, fb, [k[0] != plan.skip_order_class for k in keys])
    # sources of the lots reached and of the lots themselves
    s_near, s_far = reach.hops["source"]
    near_keys = np.unique(s_near)
    near_bits = reach.bits_of("lot", near_keys) | reach.start_bits(near_keys)
    sk, sb = spread(s_near, s_far, near_keys, near_bits)
    own_clear = _own_material_clear(reach, keys, key_nid, own)
    src_bits = np.zeros_like(bits)
    _or_into(src_bits, key_nid, sk, sb, [True] * len(keys))
    bits |= src_bits & ~own_clear
    # supplier lots
    lot_keys = np.flatnonzero((key_nid >= 0) & np.isin(key_nid, near_keys))
    if len(lot_keys):
        bits[lot_keys] |= _supplier_lot_bits(reach, plan, key_nid[lot_keys], s_near, s_far, near_keys, near_bits)
    return popcount(bits & mask).tolist(), fallback


def _empty() -> I64:
    return np.empty(0, dtype=np.int64)


def _bits(n: int, reach: Reach) -> Bits:
    return np.zeros((n, reach.words), dtype=np.uint64)


def _mask(ok: np.ndarray, words: int) -> Bits:
    m = np.zeros(words, dtype=np.uint64)
    for i in np.flatnonzero(ok).tolist():
        m[i // 64] |= np.uint64(1 << (i % 64))
    return m


def _or_into(bits: Bits, key_nid: I64, fk: I64, fb: Bits, use: Sequence[bool]) -> None:
    if not len(fk):
        return
    pos = np.minimum(np.searchsorted(fk, key_nid), len(fk) - 1)
    hit = (fk[pos] == key_nid) & np.array(use, dtype=bool) & (key_nid >= 0)
    bits[hit] |= fb[pos[hit]]


def _own_material_clear(reach: Reach, keys: Sequence[tuple[str, str]], key_nid: I64,
                        own: Sequence[str | None]) -> Bits:
    """Per key, the lots whose own material it is (a lot's own material is not its factor)."""
    out = np.zeros((len(keys), reach.words), dtype=np.uint64)
    row = {k[1]: i for i, k in enumerate(keys) if k[0] == "Material"}
    for i, m in enumerate(own):
        r = row.get(m) if m is not None else None
        if r is not None:
            out[r, i // 64] |= np.uint64(1 << (i % 64))
    return out


def _cap(reach: Reach, ok: np.ndarray, max_results: int) -> None:
    """Lots binding ``max_results`` lots or orders or more are left to their rule runs."""
    for var in ("lot", "order"):
        b = reach.bits.get(var)
        if b is None or len(b) < max_results:
            continue
        per_start = np.unpackbits(np.ascontiguousarray(b).view(np.uint8), axis=1, bitorder="little")
        counts = per_start[:, : reach.n_starts].sum(axis=0).astype(np.int64)
        if var == "lot":  # the lot itself is not among the lots it binds
            selfs = reach.start_bits(reach.keys[var])
            own = np.unpackbits(np.ascontiguousarray(selfs).view(np.uint8), axis=1, bitorder="little")
            counts -= (own[:, : reach.n_starts] & per_start[:, : reach.n_starts]).sum(axis=0)
        ok &= counts < max_results


def _supplier_lot_bits(reach: Reach, plan: Plan, lots: I64, s_near: I64, s_far: I64, near_keys: I64,
                       near_bits: Bits) -> Bits:
    """Per lot key, the starts for which it is a supplier lot factor: for some supplier it has an
    edge to, it is the first lot (by id) of the start's history with such an edge, and it is
    not the start itself."""
    out = np.zeros((len(lots), reach.words), dtype=np.uint64)
    far_u = np.unique(s_far)
    cls = dict(zip(far_u.tolist(), reach.cls_of(far_u), strict=True))
    sup = np.array([cls[f] == plan.supplier_class for f in s_far.tolist()], dtype=bool)
    near_s, far_s = s_near[sup], s_far[sup]
    order = np.argsort(near_keys, kind="stable")
    sorted_near = near_keys[order]

    def bits_at(k: I64) -> Bits:
        return near_bits[order[np.searchsorted(sorted_near, k)]]

    lot_bits = reach.bits_of("lot", lots) & ~reach.start_bits(lots)
    for i, lk in enumerate(lots.tolist()):
        for s in np.unique(far_s[near_s == lk]).tolist():
            others = np.unique(near_s[far_s == s])
            oid = reach.id_of(others.tolist())
            mine = reach.id_of([lk])[0]
            before = others[[o < mine for o in oid]] if len(others) else others
            taken = np.bitwise_or.reduce(bits_at(before), axis=0) if len(before) else np.zeros(
                reach.words, dtype=np.uint64)
            out[i] |= bits_at(np.array([lk], dtype=np.int64))[0] & ~taken
        out[i] &= lot_bits[i]
    return out

