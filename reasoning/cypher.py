"""Compiles a declarative :class:`~reasoning.rule_model.Rule` to ONE parameterised Cypher query and
maps its answer back to the engine's :class:`~reasoning.engine.RuleResult`, evidence included.

Why: on the Neo4j backend the interpreter (:mod:`reasoning.engine`) costs a round trip per BFS
level and per node; compiled, the whole search runs in the server, in one round trip.

How: the query runs the engine's own search inside the server. The rule becomes the engine's
automaton (positions are node patterns, transitions are steps: ``reasoning.engine._compile``), and
the breadth-first search over states ``(node, position, referenced bindings)`` is a Cypher
``reduce`` over ``range(1, $levels)``. Each level expands the frontier with one pattern
comprehension per transition group: the direction-specific pattern with the target's labels, its
property filters, ``without_edge``, the step's edge filters and time window, and as-of validity, all
in its ``WHERE``. States seen at an earlier level are dropped; every hop that reaches a new state is
kept (all of them, not one per state). Python then replays the levels in the engine's order
(frontier order, then transition order, then edge key; or, for rules the engine runs on the store's
traversal fast path, the traversal's smallest-edge-key parent), so ids, depths, evidence paths and
flags are the engine's. When the replay meets a repeat bound (a loop past ``max``) it gives up and
the interpreter answers instead (:attr:`CompiledStats.fallbacks`).

Why not quantified path patterns: Neo4j 5.26 inlines only single-entity predicates (labels, one
node's or one relationship's properties) into its shortest-path search. A hop whose allowed
direction depends on its relationship type (``CONSUMED`` in, ``PRODUCED`` out) needs a predicate on
two variables, which the planner checks on whole paths after enumerating them: on a generated
plant's genealogy that never finished. Cypher 5 has no union of alternatives and no nested
quantifier inside a quantified path pattern either. Unrolling the levels as ``CALL`` subqueries
is exact but took 20 s to plan at 20 levels (a repeat allows 100). A level loop inside one
expression plans in about a second, whatever the bound, and is then cached by the server.

Values (ids, times, filter literals, offsets, the level bound) are parameters; labels, relationship
types and property names come from the validated rule and are quoted identifiers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ontology.models import ENTITY_CLASSES, RELATIONS, datetime_fields
from reasoning.engine import (
    EdgeCache,
    Match,
    NodeCache,
    RuleEngine,
    RuleResult,
    _check_params,
    _compile,
    _Compiled,
    _fast_plan,
    _FastPlan,
    as_time,
    edge_times,
    edge_value,
    node_value,
)
from reasoning.errors import ReasoningError
from reasoning.results import EvidenceStep
from reasoning.rule_model import NodePattern, PropFilter, Rule, Step, TimeRef, Window
from store.base import EdgeRecord, NodeRecord

ENTITY_LABEL = "Entity"
_EDGE_TIME_PROPS: dict[str, frozenset[str]] = {
    name: frozenset(datetime_fields(rd.props)) - {"valid_from", "valid_to"} for name, rd in RELATIONS.items()
}
_NODE_TIME_PROPS: dict[str, frozenset[str]] = {
    name: frozenset(datetime_fields(m)) for name, m in ENTITY_CLASSES.items()
}


class CypherCompileError(ReasoningError):
    """The rule uses a construct this compiler cannot express exactly in one Cypher query."""


@dataclass(frozen=True)
class _Group:
    """One pattern comprehension per level: ``step`` followed from ``sources`` to ``target``."""

    step: Step
    target: int
    sources: tuple[int, ...]


@dataclass(frozen=True)
class CompiledQuery:
    """One Cypher query and its parameters (values never appear in ``cypher``), with what the
    replay needs to turn its rows into the engine's answer."""

    cypher: str
    parameters: dict[str, Any]
    rule: Rule = field(repr=False)
    automaton: _Compiled = field(repr=False)
    groups: tuple[_Group, ...] = field(repr=False)
    #: (source position, group index) -> index of that transition in ``automaton.transitions``
    transition_of: dict[tuple[int, int], int] = field(repr=False)
    #: levels the server searches: the deepest state the automaton allows, plus one to see a bound
    levels: int = 0


@dataclass
class CompiledStats:
    """How compiled runs went (per :class:`CompiledRuleEngine`): queries sent, answers that needed
    the interpreter because a repeat bound was reached."""

    queries: int = 0
    fallbacks: int = 0


def q(name: str) -> str:
    """A label / relationship type as a quoted Cypher identifier."""
    return "`" + name.replace("`", "``") + "`"


def _fixed(t: datetime) -> datetime:
    """A fixed-offset aware datetime (the driver sends it as a DATETIME with that offset)."""
    off = t.utcoffset()
    if off is None:
        raise ReasoningError(f"time {t.isoformat()} has no time zone")
    return t.astimezone(timezone(off))


class _Ctx:
    """Parameter naming and the condition fragments of the start and of every hop."""

    def __init__(self, rule: Rule, params: Mapping[str, Any], as_of: datetime | None) -> None:
        self.rule = rule
        self.parameters: dict[str, Any] = {}
        for name, kind in rule.params.items():
            v = params[name]
            self.parameters[f"p_{name}"] = _fixed(v) if kind == "datetime" else v
        self.as_of = as_of is not None
        if as_of is not None:
            self.parameters["as_of"] = _fixed(as_of)
        self._n = 0

    def value(self, v: Any) -> str:
        """A new parameter holding a value written in the rule (literal, offset, bound)."""
        self._n += 1
        name = f"v{self._n}"
        self.parameters[name] = v
        return f"${name}"

    def valid(self, var: str) -> list[str]:
        if not self.as_of:
            return []
        return [f"({var}.valid_from IS NULL OR {var}.valid_from <= $as_of) "
                f"AND ({var}.valid_to IS NULL OR $as_of < {var}.valid_to)"]

    # -- filters ----------------------------------------------------------------------------
    def prop_filter(self, var: str, f: PropFilter, time_props: frozenset[str]) -> str:
        ref = f"{var}.{q(f.prop)}"
        if f.op == "exists":
            return f"{ref} IS NOT NULL"
        if f.op == "missing":
            return f"{ref} IS NULL"
        if f.param is not None:
            p = f"$p_{f.param}"
        else:
            lit = f.value
            if f.prop in time_props:  # stored as native DATETIME: compare with a time
                lit = [as_time(x) or x for x in lit] if isinstance(lit, list) else as_time(lit) or lit
                lit = [_fixed(x) if isinstance(x, datetime) else x for x in lit] if isinstance(lit, list) else (
                    _fixed(lit) if isinstance(lit, datetime) else lit)
            p = self.value(lit)
        ops = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
        if f.op in ops:
            return f"{ref} {ops[f.op]} {p}"
        if f.op == "ne":
            return f"({ref} IS NULL OR {ref} <> {p})"
        if f.op == "in":
            return f"{ref} IN {p}"
        return f"({ref} IS NULL OR NOT {ref} IN {p})"  # not_in

    def node_conds(self, var: str, pat: NodePattern, classes: frozenset[str]) -> list[str]:
        out: list[str] = []
        if pat.classes:
            out.append(f"{var}:" + "|".join(q(c) for c in sorted(classes)))
        times = frozenset().union(*(_NODE_TIME_PROPS[c] for c in classes)) if classes else frozenset()
        out.extend(self.prop_filter(var, f, times | {"valid_from", "valid_to"}) for f in pat.where)
        for k, e in enumerate(pat.without_edge):
            arrow = (f"-[x{k}:{q(e.rel)}]->" if e.direction == "out" else f"<-[x{k}:{q(e.rel)}]-")
            cond = " AND ".join([*self.valid(f"x{k}"), *self.valid(f"m{k}")])
            where = f" WHERE {cond}" if cond else ""
            out.append(f"NOT EXISTS {{ MATCH ({var}){arrow}(m{k}:{q(ENTITY_LABEL)}){where} }}")
        out.extend(self.valid(var))
        return out

    def edge_conds(self, evar: str, nvar: str, step: Step, bound: Mapping[str, str]) -> list[str]:
        out = list(self.valid(evar))
        times = frozenset().union(*(_EDGE_TIME_PROPS[r] for r in step.rels)) | {"valid_from", "valid_to"}
        out.extend(self.prop_filter(evar, f, times) for f in step.edge_where)
        if step.window is not None:
            out.append(self.window(step.window, evar, nvar, bound))
        return out

    # -- time windows -----------------------------------------------------------------------
    def time_ref(self, ref: TimeRef, bound: Mapping[str, str]) -> str:
        if ref.param is not None:
            base = f"$p_{ref.param}"
        else:
            assert ref.var is not None and ref.prop is not None
            if ref.var not in bound:
                raise CypherCompileError(
                    f"rule {self.rule.name!r}: a window refers to variable {ref.var!r}, which the "
                    "automaton does not carry (not compilable to Cypher)")
            base = f"({bound[ref.var]}).{q(ref.prop)}"
        if ref.offset:
            return f"({base} + {self.value(ref.offset_delta)})"
        return base

    @staticmethod
    def first(refs: Sequence[str], evar: str, nvar: str) -> str:
        parts = [f"{evar if r.startswith('edge.') else nvar}.{q(r.split('.', 1)[1])}" for r in refs]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"

    def window(self, w: Window, evar: str, nvar: str, bound: Mapping[str, str]) -> str:
        conds: list[str] = []
        lo = self.time_ref(w.from_, bound) if w.from_ is not None else None
        hi = self.time_ref(w.to, bound) if w.to is not None else None
        for x in (lo, hi):
            if x is not None:
                conds.append(f"{x} IS NOT NULL")
        if w.kind == "within":
            t = self.first(w.time, evar, nvar)
            conds.append(f"{t} IS NOT NULL")
            if lo is not None:
                conds.append(f"{t} >= {lo}")
            if hi is not None:
                conds.append(f"{t} < {hi}")
            return "(" + " AND ".join(conds) + ")"
        s = self.first(w.start, evar, nvar)
        e = self.first(w.end, evar, nvar) if w.end else None
        conds.append(f"{s} IS NOT NULL")
        open_end = "" if e is None else f"{e} IS NULL OR "
        if w.kind == "contains":
            assert w.at is not None
            at = self.time_ref(w.at, bound)
            conds += [f"{at} IS NOT NULL", f"{s} <= {at}"]
            if e is not None:
                conds.append(f"({open_end}{at} < {e})")
            return "(" + " AND ".join(conds) + ")"
        if hi is not None:
            conds.append(f"{s} < {hi}")
        if lo is not None and e is not None:
            conds.append(f"({open_end}{e} > {lo})")
        return "(" + " AND ".join(conds) + ")"




def _step_classes(step: Step) -> frozenset[str]:
    """The classes a step can reach (ontology ranges, narrowed by the step's classes)."""
    far: set[str] = set()
    for r in step.rels:
        rd = RELATIONS[r]
        far |= set(rd.range if step.direction == "out" else rd.domain)
    out = frozenset(far)
    return out & frozenset(step.node.classes) if step.node.classes else out


def _max_depth(rule: Rule, max_depth: int) -> int:
    """The deepest level a state can have: one per fixed step, and a repeat's longest alternative
    as many times as its bound allows."""
    out = 0
    for seg in rule.path:
        if isinstance(seg, Step):
            out += 1
        else:
            out += min(seg.repeat.max, max_depth) * max(len(alt) for alt in seg.repeat.any_of)
    return out


def compile_rule(rule: Rule, params: Mapping[str, Any], as_of: datetime | None = None,
                 max_depth: int = 50) -> CompiledQuery:
    """The rule as one parameterised Cypher query (see the module docstring for its shape).

    ``params`` are checked like the engine checks them; ``max_depth`` caps every repeat's ``max``
    (as the engine's ``max_depth`` does)."""
    checked = _check_params(rule, params)
    auto = _compile(rule, max_depth)
    ctx = _Ctx(rule, checked, as_of)
    refs = auto.referenced
    ref_index = {v: i for i, v in enumerate(refs)}
    bound = {v: f"st[2][{i}]" for v, i in ref_index.items()}
    start_classes = frozenset(rule.start.classes) if rule.start.classes else frozenset(ENTITY_CLASSES)
    head = [f"s.id IN $p_{rule.start.ids}", *ctx.node_conds("s", rule.start, start_classes)]

    # group the transitions by (step, target): one pattern comprehension each
    groups: list[_Group] = []
    index: dict[tuple[int, int], int] = {}
    transition_of: dict[tuple[int, int], int] = {}
    for src in sorted(auto.transitions):
        for t_idx, tr in enumerate(auto.transitions[src]):
            gkey = (id(tr.step), tr.target)
            if gkey not in index:
                index[gkey] = len(groups)
                groups.append(_Group(tr.step, tr.target, ()))
            gi = index[gkey]
            if (src, gi) in transition_of:
                raise CypherCompileError(f"rule {rule.name!r}: two transitions from one position share a step "
                                         "and a target (not compilable to Cypher)")
            transition_of[(src, gi)] = t_idx
            groups[gi] = _Group(groups[gi].step, groups[gi].target, (*groups[gi].sources, src))

    def key(node: str, pos: str, refs_expr: str) -> str:
        tail = f" + [z IN {refs_expr} | coalesce(elementId(z), 0)]" if refs else ""
        return f"[elementId({node}), {pos}]{tail}"

    parts = []
    for g in groups:
        st = g.step
        types = "|".join(q(r) for r in st.rels)
        arrow = f"-[r:{types}]->" if st.direction == "out" else f"<-[r:{types}]-"
        conds = [*ctx.node_conds("y", st.node, _step_classes(st)), *ctx.edge_conds("r", "y", st, bound)]
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        var = st.node.var
        if var is not None and var in ref_index:
            new_refs = "[" + ", ".join("y" if i == ref_index[var] else f"st[2][{i}]" for i in range(len(refs))) + "]"
        else:
            new_refs = "st[2]"
        src_cond = f"st[1] = {g.sources[0]}" if len(g.sources) == 1 else f"st[1] IN {list(g.sources)}"
        parts.append(
            f"CASE WHEN {src_cond} THEN [(cur){arrow}(y:{q(ENTITY_LABEL)}){where} | "
            f"[st, r, y, {g.target}, {new_refs}, {key('y', str(g.target), new_refs)}]] ELSE [] END")
    cands = f"[cur IN [st[0]] | {' + '.join(parts) if parts else '[]'}][0]"
    init_refs = "[" + ", ".join("s" if v == rule.start.var else "null" for v in refs) + "]"
    level = (
        f"[x IN [reduce(a = {{front: [], seen: acc.seen, lvl: [], old: acc.seen}}, "
        f"c IN reduce(l = [], st IN acc.front | l + {cands}) | "
        "CASE WHEN c[5] IN a.old THEN a "
        "WHEN c[5] IN a.seen THEN {front: a.front, seen: a.seen, old: a.old, lvl: a.lvl + [c]} "
        "ELSE {front: a.front + [[c[2], c[3], c[4]]], seen: a.seen + [c[5]], old: a.old, lvl: a.lvl + [c]} END)] | "
        "{front: x.front, seen: x.seen, hops: acc.hops + [x.lvl]}][0]"
    )
    cypher = (
        f"MATCH (s:{q(ENTITY_LABEL)}) WHERE {' AND '.join(head)} "
        f"WITH collect(s) AS ss "
        f"WITH ss, [s IN ss | [s, 0, {init_refs}]] AS starts "
        f"WITH ss, reduce(acc = {{front: starts, seen: [st IN starts | {key('st[0]', '0', 'st[2]')}], hops: []}}, "
        f"i IN range(1, $levels) | CASE WHEN size(acc.front) = 0 THEN acc ELSE {level} END) AS res "
        f"RETURN [s IN ss | {_node_proj('s')}] AS starts, "
        # (map projections need a variable: one-element list comprehensions bind the hop's parts)
        f"[lv IN res.hops | [c IN lv | [e IN [c[1]] | [y IN [c[2]] | [c[0][0].id, c[0][1], [z IN c[0][2] | z.id], "
        f"{{src: startNode(e).id, rel: type(e), dst: endNode(e).id, p: {_edge_proj('e')}}}, "
        f"{_node_proj('y')}, c[3], [z IN c[4] | z.id]]][0]][0]]] AS levels"
    )
    levels = _max_depth(rule, max_depth) + 1
    ctx.parameters["levels"] = levels
    return CompiledQuery(cypher=cypher, parameters=ctx.parameters, rule=rule, automaton=auto,
                         groups=tuple(groups), transition_of=transition_of, levels=levels)


def _node_proj(v: str) -> str:
    return (f"{v} {{.id, .cls, .name, .plant, .source_system, ._props, "
            f"valid_from: toString({v}.valid_from), valid_to: toString({v}.valid_to)}}")


def _edge_proj(v: str) -> str:
    return (f"{v} {{.source_system, ._props, valid_from: toString({v}.valid_from), "
            f"valid_to: toString({v}.valid_to)}}")


def _time_text(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _node_rec(r: Mapping[str, Any]) -> NodeRecord:
    return NodeRecord(id=r["id"], cls=r["cls"], name=r["name"], plant=r["plant"],
                      source_system=r["source_system"] if r["source_system"] is not None else "plantgraph",
                      valid_from=_time_text(r["valid_from"]), valid_to=_time_text(r["valid_to"]),
                      props=json.loads(r["_props"]) if r["_props"] else {})


def _edge_rec(e: Mapping[str, Any]) -> EdgeRecord:
    p = e["p"]
    return EdgeRecord(src=e["src"], rel=e["rel"], dst=e["dst"],
                      source_system=p["source_system"] if p["source_system"] is not None else "plantgraph",
                      valid_from=_time_text(p["valid_from"]), valid_to=_time_text(p["valid_to"]),
                      props=json.loads(p["_props"]) if p["_props"] else {})


def _window_times(w: Window, edge: EdgeRecord, node: NodeRecord) -> dict[str, datetime]:
    """The timestamps that made a window match (the first present of each list, as the engine)."""
    out: dict[str, datetime] = {}
    groups = [w.time] if w.kind == "within" else [w.start, w.end]
    for refs in groups:
        for ref in refs:
            kind, prop = ref.split(".", 1)
            t = as_time(edge_value(edge, prop) if kind == "edge" else node_value(node, prop))
            if t is not None:
                out[ref] = t
                break
    return out


_Key = tuple[str, int, tuple[str | None, ...]]


@dataclass(frozen=True, slots=True)
class _Hop:
    parent: _Key
    group: int
    edge: EdgeRecord
    node: NodeRecord
    target: _Key


class _NeedEngine(Exception):
    """The replay reached a case only the interpreter decides (a repeat bound)."""


def _parse_levels(cq: CompiledQuery, rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, NodeRecord],
                                                                                 list[list[_Hop]]]:
    row = rows[0]
    starts = {n.id: n for n in (_node_rec(x) for x in row["starts"])}
    group_of = {(g.target, id(g.step)): i for i, g in enumerate(cq.groups)}
    levels: list[list[_Hop]] = []
    for lv in row["levels"]:
        hops = []
        for pid, ppos, prefs, e, y, tpos, trefs in lv:
            edge = _edge_rec(e)
            node = _node_rec(y)
            # the group of this hop: the one from this source position to this target whose step
            # has this edge's relation and direction
            g = _hop_group(cq, ppos, tpos, edge, pid, group_of)
            hops.append(_Hop((pid, ppos, tuple(prefs)), g, edge, node, (node.id, tpos, tuple(trefs))))
        levels.append(hops)
    return starts, levels


def _hop_group(cq: CompiledQuery, ppos: int, tpos: int, edge: EdgeRecord, pid: str,
               group_of: Mapping[tuple[int, int], int]) -> int:
    for i, g in enumerate(cq.groups):
        if g.target != tpos or ppos not in g.sources or edge.rel not in g.step.rels:
            continue
        if (g.step.direction == "out") == (edge.src == pid):
            return i
    raise ReasoningError(f"rule {cq.rule.name}: the server returned a hop no transition explains "
                         f"({edge.src} -{edge.rel}-> {edge.dst})")


def _replay_automaton(cq: CompiledQuery, start_ids: list[str], starts: Mapping[str, NodeRecord],
                      levels: Sequence[Sequence[_Hop]], as_of: datetime | None, result_cap: int) -> RuleResult:
    """The engine's BFS (reasoning.engine._Run.run) over the hops the server found."""
    rule, auto = cq.rule, cq.automaton
    returns = set(rule.returns)
    start_set = set(start_ids)
    result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=[])
    parents: dict[_Key, tuple[_Key, EvidenceStep] | None] = {}
    info: dict[_Key, tuple[int, int, str]] = {}  # count, depth, start
    nodes: dict[str, NodeRecord] = dict(starts)

    def path(key: _Key) -> tuple[EvidenceStep, ...]:
        out: list[EvidenceStep] = []
        cur: _Key | None = key
        while cur is not None:
            parent = parents[cur]
            if parent is None:
                break
            cur, step = parent
            out.append(step)
        out.reverse()
        return tuple(out)

    def bind(key: _Key) -> None:
        var = auto.vars[key[1]]
        if var is None or var not in returns:
            return
        if key[1] != 0 and key[0] in start_set:
            return
        slot = result.bindings[var]
        if key[0] in slot:
            return
        if len(slot) >= result_cap:
            result.result_limit_hit = True
            return
        _count, depth, start = info[key]
        slot[key[0]] = Match(node=nodes[key[0]], depth=depth, start=start, steps=path(key))

    frontier: list[_Key] = []
    for sid in start_ids:
        if sid not in starts:
            result.missing_starts.append(sid)
            continue
        result.starts.append(sid)
        refs = tuple(sid if v == rule.start.var else None for v in auto.referenced)
        key: _Key = (sid, 0, refs)
        if key in parents:
            continue
        parents[key] = None
        info[key] = (0, 0, sid)
        bind(key)
        frontier.append(key)

    level = 0
    while frontier and not result.result_limit_hit:
        if level >= len(levels):
            raise _NeedEngine("the server's levels ran out before the search ended")
        by_parent: dict[_Key, list[_Hop]] = defaultdict(list)
        for h in levels[level]:
            by_parent[h.parent].append(h)
        level += 1
        cands: list[_Hop] = []
        for key in frontier:
            hs = by_parent.get(key, [])
            hs.sort(key=lambda h, k=key: (cq.transition_of[(k[1], h.group)], h.edge.key))  # type: ignore[misc]
            cands.extend(hs)
        nxt: list[_Key] = []
        for h in cands:
            if h.target in parents:
                continue
            tr = auto.transitions[h.parent[1]][cq.transition_of[(h.parent[1], h.group)]]
            count, depth, start = info[h.parent]
            count = {"reset": 0, "start": 1, "keep": count, "loop": count + 1}[tr.count]
            if tr.count == "loop" and count > tr.bound:
                raise _NeedEngine(f"a repeat bound (max {tr.bound}) was reached")
            nodes[h.node.id] = h.node
            times = _window_times(tr.step.window, h.edge, h.node) if tr.step.window is not None else {}
            step = EvidenceStep(src=h.parent[0], rel=h.edge.rel, dst=h.node.id, direction=tr.step.direction,
                                times=edge_times(h.edge, as_of, times))
            parents[h.target] = (h.parent, step)
            info[h.target] = (count, depth + 1, start)
            bind(h.target)
            if result.result_limit_hit:
                break
            nxt.append(h.target)
        frontier = nxt
    if result.result_limit_hit:
        result.notes.append(f"rule {rule.name}: stopped at {result_cap} results for one variable")
    result.states_visited = len(parents)
    return result


def _replay_fast(cq: CompiledQuery, plan: _FastPlan, start_ids: list[str], starts: Mapping[str, NodeRecord],
                 levels: Sequence[Sequence[_Hop]], as_of: datetime | None, result_cap: int) -> RuleResult | None:
    """The store traversal's BFS tree (the engine's fast path, reasoning.engine._run_fast) over the
    same hops: a node's depth is its first level, its parent edge the smallest key from the level
    before. None when the engine would leave the fast path (the walk went deeper than it is exact)."""
    rule = cq.rule
    cls_ok = set(rule.start.classes)
    start_list = [i for i in start_ids if i in starts and (not cls_ok or starts[i].cls in cls_ok)]
    depth: dict[str, int] = {i: 0 for i in start_list}
    parent: dict[str, tuple[tuple[str, str, str], str, EdgeRecord]] = {}
    nodes: dict[str, NodeRecord] = dict(starts)
    for lvl, hops in enumerate(levels, start=1):
        fresh: dict[str, tuple[tuple[str, str, str], str, EdgeRecord]] = {}
        for h in hops:
            v = h.node.id
            if v in depth:
                continue
            if lvl > plan.hop_bound:
                raise _NeedEngine("the traversal bound was reached")
            cand = (h.edge.key, h.parent[0], h.edge)
            cur = fresh.get(v)
            if cur is None or cand[0] < cur[0]:
                fresh[v] = cand
            nodes[v] = h.node
        for v, cand in fresh.items():
            depth[v] = lvl
            parent[v] = cand
    if len(depth) > result_cap * 4 + len(start_list):
        raise _NeedEngine("the traversal's node cap was reached")
    deepest = max(depth.values(), default=0)
    if deepest > plan.exact_within:
        return None
    result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=start_list,
                        missing_starts=[i for i in start_ids if i not in set(start_list)])
    if rule.start.var in result.bindings:
        for sid in start_list:
            result.bindings[rule.start.var][sid] = Match(node=nodes[sid], depth=0, start=sid, steps=())
    for v in sorted((v for v, d in depth.items() if d > 0), key=lambda x: (depth[x], x)):
        node = nodes[v]
        var = plan.var_of_class.get(node.cls)
        if var is None or var not in result.bindings:
            continue
        slot = result.bindings[var]
        if len(slot) >= result_cap:
            result.result_limit_hit = True
            continue
        chain: list[tuple[str, str, EdgeRecord]] = []
        walk = v
        while walk in parent:
            _k, prev, e = parent[walk]
            chain.append((prev, walk, e))
            walk = prev
        chain.reverse()
        steps = tuple(
            EvidenceStep(src=prev, rel=e.rel, dst=nxt, direction="out" if e.src == prev else "in",
                         times=edge_times(e, as_of, {}))
            for prev, nxt, e in chain)
        slot[v] = Match(node=node, depth=depth[v], start=walk, steps=steps)
    if result.result_limit_hit:
        result.notes.append(f"rule {rule.name}: stopped at {result_cap} results for one variable")
    result.states_visited = len(depth)
    return result


def run_compiled(store: Any, rule: Rule, params: Mapping[str, Any], as_of: datetime | None = None,
                 max_depth: int = 50, max_results: int = 100_000, fast_path: bool = True,
                 stats: CompiledStats | None = None) -> RuleResult:
    """Compile ``rule``, run it as one read query on a Neo4j store (``store.run_read``) and return
    exactly what ``RuleEngine(store, max_depth, max_results, fast_path).evaluate(rule, params, as_of)``
    returns: the same ids, depths, evidence paths and flags.

    When the search reaches a repeat bound, the interpreter answers instead (``stats.fallbacks``)."""
    run_read = getattr(store, "run_read", None)
    if run_read is None:
        raise ReasoningError(f"{type(store).__name__} cannot run Cypher; compiled rules need the neo4j backend")
    cq = compile_rule(rule, params, as_of, max_depth)
    start_ids = list(dict.fromkeys(str(x) for x in cq.parameters[f"p_{rule.start.ids}"]))
    rows = run_read(cq.cypher, cq.parameters)
    if stats is not None:
        stats.queries += 1
    starts, levels = _parse_levels(cq, rows)
    try:
        plan = _fast_plan(rule, max_depth) if fast_path else None
        if plan is not None:
            fast = _replay_fast(cq, plan, start_ids, starts, levels, as_of, max_results)
            if fast is not None:
                return fast
        return _replay_automaton(cq, start_ids, starts, levels, as_of, max_results)
    except _NeedEngine:
        if stats is not None:
            stats.fallbacks += 1
        return RuleEngine(store, max_depth, max_results, fast_path).evaluate(rule, params, as_of)


class CompiledRuleEngine(RuleEngine):
    """A :class:`~reasoning.engine.RuleEngine` that, on a store that runs Cypher (the Neo4j backend),
    sends each rule to the server as its one compiled query: same answers, one round trip instead
    of a few per search level (measured in docs/benchmarks.md).

    The interpreter still answers when the store has no Cypher, and when the caller passes an
    ``edge_cache``: such callers reuse the neighbour lists the interpreter read (a trace decides
    shipped vs in house from them), which a compiled run does not read. A ``node_cache`` is filled
    with the nodes a compiled run returned, so later rules of the same analysis reuse them."""

    def __init__(self, store: Any, max_depth: int = 50, max_results: int = 100_000,
                 fast_path: bool = True) -> None:
        super().__init__(store, max_depth, max_results, fast_path)
        self.stats = CompiledStats()

    def compiles(self, edge_cache: EdgeCache | None = None) -> bool:
        """Whether a rule evaluated with these arguments goes to the server compiled."""
        return edge_cache is None and callable(getattr(self.store, "run_read", None))

    def evaluate(
        self,
        rule: Rule,
        params: Mapping[str, Any],
        as_of: datetime | None = None,
        max_depth: int | None = None,
        max_results: int | None = None,
        edge_cache: EdgeCache | None = None,
        node_cache: NodeCache | None = None,
    ) -> RuleResult:
        if not self.compiles(edge_cache):
            return super().evaluate(rule, params, as_of, max_depth, max_results, edge_cache, node_cache)
        depth = self.max_depth if max_depth is None else max_depth
        cap = self.max_results if max_results is None else max_results
        result = run_compiled(self.store, rule, params, as_of, depth, cap, self.fast_path, self.stats)
        if node_cache is not None:
            for slot in result.bindings.values():
                for m in slot.values():
                    node_cache.setdefault(m.node.id, m.node)
        return result
