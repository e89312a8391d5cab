"""Compiles a declarative :class:`~reasoning.rule_model.Rule` to ONE parameterised Cypher query.

Why: on the Neo4j backend a rule evaluated by the interpreter (:mod:`reasoning.engine`) costs a
round trip per BFS level and per node; compiled, the whole pattern is one query the server plans.

Shape of the query (see docs/rules.md, "Cypher compilation")::

    MATCH (s:`Entity`) WHERE s.id IN $p_lots AND s:`Lot` ...      -- the start nodes
    CALL (s) {
      RETURN 0 AS branch, s AS n, [s] AS ns, [] AS rs               -- the start itself
      UNION ALL
      MATCH (s)-[r1:`RAN_ON`]->(n1:`Entity`) WHERE ...              -- a chain of steps up to
      ...                                                           -- one returned position
      UNION ALL
      MATCH p = ANY SHORTEST (s)((a)-[r]-(b) WHERE <hop>){1,100}(t:`Lot`)   -- a repeat
      ...
    }
    RETURN branch, start, node, path nodes, path edges

One ``UNION ALL`` branch per position of a returned variable gives the prefix semantics (a node is
returned when the pattern matches up to its position). A repeat becomes a quantified path pattern
over single hops whose predicate allows exactly the rule's (relation, direction, source classes,
target node pattern) combinations; this is exact when the position inside the repeat is decided by
a node's class (true for every built-in rule) and the compiler refuses other repeats with a clear
:class:`CypherCompileError`. Values (ids, times, filter literals, offsets, bounds) are parameters;
labels and relationship types come from the validated rule and are quoted identifiers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from ontology.models import ENTITY_CLASSES, RELATIONS, datetime_fields
from reasoning.engine import Match, RuleResult, _check_params, as_time, edge_value, node_value
from reasoning.errors import ReasoningError
from reasoning.results import EvidenceStep
from reasoning.rule_model import NodePattern, PropFilter, RepeatSegment, Rule, Step, TimeRef, Window
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
class CompiledQuery:
    """One Cypher query and its parameters (values never appear in ``cypher``)."""

    cypher: str
    parameters: dict[str, Any]
    #: branch index -> the returned variable it binds (None: the start rows)
    branches: tuple[str | None, ...] = ()
    #: branch index -> the rule steps / repeat its hops walk (to report the times that matched)
    layouts: tuple[tuple[Step | _RepeatPlan, ...], ...] = field(default=(), repr=False)


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
    """Parameter naming and the text fragments shared by every branch."""

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
                    f"rule {self.rule.name!r}: a window refers to variable {ref.var!r}, which is not "
                    "bound outside a repeat before this step (not compilable to Cypher)")
            base = f"{bound[ref.var]}.{q(ref.prop)}"
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


def _far_classes(step: Step, near: frozenset[str]) -> frozenset[str]:
    """The classes a step can reach from ``near`` (ontology ranges, narrowed by the step's classes)."""
    far: set[str] = set()
    for r in step.rels:
        rd = RELATIONS[r]
        src, dst = (rd.domain, rd.range) if step.direction == "out" else (rd.range, rd.domain)
        if near & set(src):
            far |= set(dst)
    out = frozenset(far)
    return out & frozenset(step.node.classes) if step.node.classes else out


@dataclass
class _RepeatPlan:
    """How a repeat becomes one quantified path pattern over single hops."""

    seg: RepeatSegment
    entry: frozenset[str]
    ends: frozenset[str]  # classes of the positions ending an alternative
    mids: list[frozenset[str]]  # classes of the positions inside an alternative
    pos_classes: dict[tuple[int, int], frozenset[str]]
    hops: list[tuple[Step, frozenset[str], frozenset[str], int, int]]  # step, source, target, alt, idx


def _plan_repeat(rule: Rule, seg: RepeatSegment, entry: frozenset[str]) -> _RepeatPlan:
    rep = seg.repeat
    pos: dict[tuple[int, int], frozenset[str]] = {}
    # classes of each position, to a fixpoint (an alternative may start from any alternative's end)
    exits = entry
    for _ in range(8):
        for a, alt in enumerate(rep.any_of):
            cur = exits
            for j, st in enumerate(alt):
                cur = _far_classes(st, cur)
                pos[(a, j)] = cur
        ends = frozenset().union(*(pos[(a, len(alt) - 1)] for a, alt in enumerate(rep.any_of)))
        grown = exits | ends
        if grown == exits:
            break
        exits = grown
    ends = frozenset().union(*(pos[(a, len(alt) - 1)] for a, alt in enumerate(rep.any_of)))
    mids = [pos[(a, j)] for a, alt in enumerate(rep.any_of) for j in range(len(alt) - 1)]
    group = entry | ends
    why = None
    if group == frozenset(ENTITY_CLASSES) and mids:
        why = "the repeat's entry has no class, so a node's position inside the repeat is unknown"
    for i, m in enumerate(mids):
        if m & group:
            why = f"classes {sorted(m & group)} occur both inside and at the end of an alternative"
        for m2 in mids[i + 1:]:
            if m & m2 and m != m2:
                why = f"classes {sorted(m & m2)} occur at two different positions inside alternatives"
    if why is not None:
        raise CypherCompileError(f"rule {rule.name!r}: {why}; a repeat compiles to Cypher only when a node's "
                                 "class decides its position (use the embedded engine for this rule)")
    hops = []
    for a, alt in enumerate(rep.any_of):
        for j, st in enumerate(alt):
            src = group if j == 0 else pos[(a, j - 1)]
            hops.append((st, src, pos[(a, j)], a, j))
    return _RepeatPlan(seg, entry, ends, mids, pos, hops)


def compile_rule(rule: Rule, params: Mapping[str, Any], as_of: datetime | None = None,
                 max_depth: int = 50) -> CompiledQuery:
    """The rule as one parameterised Cypher query (see the module docstring for its shape).

    ``params`` are checked like the engine checks them; ``max_depth`` caps every repeat's ``max``
    (as the engine's ``max_depth`` does)."""
    checked = _check_params(rule, params)
    if sum(isinstance(seg, RepeatSegment) for seg in rule.path) > 1:
        raise CypherCompileError(f"rule {rule.name!r}: more than one repeat (not compilable to Cypher)")
    ctx = _Ctx(rule, checked, as_of)
    ids = f"$p_{rule.start.ids}"
    start_classes = frozenset(rule.start.classes) if rule.start.classes else frozenset(ENTITY_CLASSES)
    head_conds = [f"s.id IN {ids}", *ctx.node_conds("s", rule.start, start_classes)]
    branches: list[str | None] = [None]
    layouts: list[tuple[Step | _RepeatPlan, ...]] = [()]
    bodies = ["RETURN 0 AS branch, s AS n, [s] AS ns, [] AS rs"]

    # Walk the path once, keeping the clauses of the prefix; a branch is emitted at each position
    # whose variable is returned (prefix semantics).
    clauses: list[str] = []
    ns_parts: list[str] = ["[s]"]
    rs_parts: list[str] = []
    layout: list[Step | _RepeatPlan] = []
    bound: dict[str, str] = {rule.start.var: "s"} if rule.start.var else {}
    cur_var, cur_classes = "s", start_classes
    returns = set(rule.returns)

    def emit(var: str, target: str, lay: list[Step | _RepeatPlan]) -> None:
        idx = len(branches)
        rs = " + ".join(rs_parts) if rs_parts else "[]"
        bodies.append(
            f"{' '.join(clauses)} WITH {target} AS t, {' + '.join(ns_parts)} AS ns, {rs} AS rs "
            f"WHERE NOT t.id IN {ids} WITH t, ns, rs ORDER BY size(rs) "
            f"WITH t, head(collect([ns, rs])) AS best "
            f"RETURN {idx} AS branch, t AS n, best[0] AS ns, best[1] AS rs")
        branches.append(var)
        layouts.append(tuple(lay))

    for k, seg in enumerate(rule.path, start=1):
        if isinstance(seg, Step):
            nvar, evar = f"n{k}", f"r{k}"
            classes = _far_classes(seg, cur_classes)
            types = "|".join(q(r) for r in seg.rels)
            arrow = f"-[{evar}:{types}]->" if seg.direction == "out" else f"<-[{evar}:{types}]-"
            conds = [*ctx.node_conds(nvar, seg.node, classes), *ctx.edge_conds(evar, nvar, seg, bound)]
            where = f" WHERE {' AND '.join(conds)}" if conds else ""
            clauses.append(f"MATCH ({cur_var}){arrow}({nvar}:{q(ENTITY_LABEL)}){where}")
            ns_parts.append(f"[{nvar}]")
            rs_parts.append(f"[{evar}]")
            layout.append(seg)
            if seg.node.var:
                bound[seg.node.var] = nvar
                if seg.node.var in returns:
                    emit(seg.node.var, nvar, layout)
            cur_var, cur_classes = nvar, classes
            continue
        # a repeat: one quantified path pattern over single hops, shortest per (entry, end)
        plan = _plan_repeat(rule, seg, cur_classes)
        rep = seg.repeat
        bound_max = min(rep.max, max_depth)
        longest = max(len(alt) for alt in rep.any_of)
        a, r, b, p = f"a{k}", f"h{k}", f"b{k}", f"p{k}"
        hop_preds = []
        for st, src, tgt, _alt, _j in plan.hops:
            direction = f"startNode({r}) = {a}" if st.direction == "out" else f"endNode({r}) = {a}"
            parts = [f"{r}:" + "|".join(q(x) for x in st.rels), direction,
                     f"{a}:" + "|".join(q(c) for c in sorted(src)),
                     f"{b}:" + "|".join(q(c) for c in sorted(tgt)),
                     *ctx.node_conds(b, st.node, tgt), *ctx.edge_conds(r, b, st, {})]
            hop_preds.append("(" + " AND ".join(dict.fromkeys(parts)) + ")")
        rels = sorted({x for st, *_ in plan.hops for x in st.rels})
        qpp = (f"(({a})-[{r}:{'|'.join(q(x) for x in rels)}]-({b}:{q(ENTITY_LABEL)}) "
               f"WHERE {' OR '.join(hop_preds)}){{{rep.min},{bound_max * longest}}}")
        end_labels = "|".join(q(c) for c in sorted(plan.ends))
        # iterations started = the entry plus every alternative end the path passes through
        iters = (f"size([x IN nodes({p})[1..-1] WHERE x:{end_labels}]) + "
                 f"CASE WHEN length({p}) > 0 THEN 1 ELSE 0 END")
        max_param = ctx.value(bound_max)
        rep_vars = [v for v in dict.fromkeys(st.node.var for st, *_ in plan.hops) if v]
        ns_parts.append(f"nodes({p})[1..]")
        rs_parts.append(f"relationships({p})")
        layout.append(plan)
        for var in [v for v in rep_vars if v in returns]:
            var_classes = frozenset().union(*(tgt for st, _s, tgt, *_ in plan.hops if st.node.var == var))
            other = frozenset().union(*(tgt for st, _s, tgt, *_ in plan.hops if st.node.var != var))
            if var_classes & other:
                raise CypherCompileError(
                    f"rule {rule.name!r}: variable {var!r} shares classes {sorted(var_classes & other)} with "
                    "another position of the repeat (not compilable to Cypher)")
            tv = f"t{k}"
            labels = "|".join(q(c) for c in sorted(var_classes))
            clauses.append(f"MATCH {p} = ANY SHORTEST ({cur_var}){qpp}({tv}:{labels}) "
                           f"WITH * WHERE {iters} <= {max_param}")
            emit(var, tv, layout)
            clauses.pop()
        # the path goes on from the repeat's exits
        ev = f"e{k}"
        exit_cond = f"{ev}:{end_labels}" if rep.min == 1 else f"(length({p}) = 0 OR {ev}:{end_labels})"
        clauses.append(f"MATCH {p} = ANY SHORTEST ({cur_var}){qpp}({ev}:{q(ENTITY_LABEL)}) "
                       f"WITH * WHERE {exit_cond} AND {iters} <= {max_param}")
        cur_var = ev
        cur_classes = plan.ends | (cur_classes if rep.min == 0 else frozenset())
        for var in rep_vars:
            bound.pop(var, None)

    body = " UNION ALL ".join(bodies)
    cypher = (
        f"MATCH (s:{q(ENTITY_LABEL)}) WHERE {' AND '.join(head_conds)} "
        f"CALL (s) {{ {body} }} "
        f"RETURN branch, s.id AS start, [x IN ns | {_node_proj('x')}] AS nodes, "
        f"[x IN rs | {{src: startNode(x).id, rel: type(x), dst: endNode(x).id, p: {_edge_proj('x')}}}] AS edges"
    )
    return CompiledQuery(cypher=cypher, parameters=ctx.parameters, branches=tuple(branches),
                         layouts=tuple(layouts))


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
                      source_system=r["source_system"] or "plantgraph",
                      valid_from=_time_text(r["valid_from"]), valid_to=_time_text(r["valid_to"]),
                      props=json.loads(r["_props"]) if r["_props"] else {})


def _edge_rec(e: Mapping[str, Any]) -> EdgeRecord:
    p = e["p"]
    return EdgeRecord(src=e["src"], rel=e["rel"], dst=e["dst"], source_system=p["source_system"] or "plantgraph",
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


def _hop_steps(layout: Sequence[Step | _RepeatPlan], nodes: Sequence[NodeRecord],
               edges: Sequence[EdgeRecord]) -> list[Step | None]:
    """The rule step each hop of a path walked (None when it cannot be told apart)."""
    fixed = sum(isinstance(x, Step) for x in layout)
    out: list[Step | None] = []
    for item in layout:
        if isinstance(item, Step):
            out.append(item)
            continue
        for i in range(len(out), len(out) + len(edges) - fixed):
            e, src, dst = edges[i], nodes[i], nodes[i + 1]
            direction = "out" if e.src == src.id else "in"
            cands = [st for st, s_cls, t_cls, *_ in item.hops
                     if e.rel in st.rels and st.direction == direction and src.cls in s_cls and dst.cls in t_cls]
            out.append(cands[0] if cands else None)
    return out


def run_compiled(store: Any, rule: Rule, params: Mapping[str, Any], as_of: datetime | None = None,
                 max_depth: int = 50, max_results: int = 100_000) -> RuleResult:
    """Compile ``rule``, run it as one read query on a Neo4j store (``store.run_read``) and map
    the rows to the engine's :class:`~reasoning.engine.RuleResult` (matches with evidence paths).

    Per node the evidence is the shortest path found (ties broken by edge keys, then start id);
    where several shortest paths exist it may differ from the engine's choice, but every step of
    it is an edge of the store that satisfies the rule."""
    run_read = getattr(store, "run_read", None)
    if run_read is None:
        raise ReasoningError(f"{type(store).__name__} cannot run Cypher; compiled rules need the neo4j backend")
    cq = compile_rule(rule, params, as_of, max_depth)
    rows = run_read(cq.cypher, cq.parameters)
    start_ids = list(dict.fromkeys(str(x) for x in params[rule.start.ids]))
    found: dict[str, NodeRecord] = {}
    best: dict[str, dict[str, tuple[tuple[Any, ...], Match]]] = {v: {} for v in rule.returns}
    for row in rows:
        nodes = [_node_rec(n) for n in row["nodes"]]
        if row["branch"] == 0:
            found[row["start"]] = nodes[0]
            continue
        var = cq.branches[row["branch"]]
        assert var is not None
        edges = [_edge_rec(e) for e in row["edges"]]
        hop_rules = _hop_steps(cq.layouts[row["branch"]], nodes, edges)
        steps: list[EvidenceStep] = []
        for i, (e, rule_step) in enumerate(zip(edges, hop_rules, strict=True)):
            src, dst = nodes[i].id, nodes[i + 1].id
            direction: Literal["out", "in"] = "out" if e.src == src and e.dst == dst else "in"
            times: dict[str, datetime] = {}
            if rule_step is not None and rule_step.window is not None:
                times.update(_window_times(rule_step.window, e, nodes[i + 1]))
            for tname in sorted(_EDGE_TIME_PROPS.get(e.rel, ())):
                t = as_time(e.props.get(tname))
                if t is not None:
                    times.setdefault(f"edge.{tname}", t)
            if as_of is not None:
                for attr in ("valid_from", "valid_to"):
                    t = getattr(e, attr)
                    if t is not None:
                        times[f"edge.{attr}"] = t
            steps.append(EvidenceStep(src=src, rel=e.rel, dst=dst, direction=direction, times=times))
        target = nodes[-1]
        rank = (len(steps), tuple(s.edge_key() for s in steps), row["start"])
        slot = best[var]
        if target.id not in slot or rank < slot[target.id][0]:
            slot[target.id] = (rank, Match(node=target, depth=len(steps), start=row["start"], steps=tuple(steps)))
    starts = [i for i in start_ids if i in found]
    result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=starts,
                        missing_starts=[i for i in start_ids if i not in found])
    if rule.start.var in result.bindings:
        for sid in starts:
            result.bindings[rule.start.var][sid] = Match(node=found[sid], depth=0, start=sid, steps=())
    for var, slot in best.items():
        if var == rule.start.var:
            continue
        ordered = sorted(slot.values(), key=lambda x: (x[1].depth, x[1].node.id))
        if len(ordered) > max_results:
            result.result_limit_hit = True
            result.notes.append(f"rule {rule.name}: stopped at {max_results} results for one variable")
        for _rank, m in ordered[:max_results]:
            result.bindings[var][m.node.id] = m
    return result
