"""The rule interpreter: evaluates a :class:`~reasoning.rule_model.Rule` on any GraphStore.

It only uses the store's public reads (``get_nodes`` and ``neighbours``), so it runs on the
embedded store and on Neo4j alike (a Neo4j deployment may instead run the rule compiled to Cypher).

How it works: the rule's path is compiled to a small automaton whose *positions* are the node
patterns of the rule (a repeat's positions loop back to its first steps). Evaluation is a
breadth-first search over states ``(node, position, referenced bindings)``; a state is visited
once, so cycles in the data end there, and the first path that reaches a state (shortest, ties
broken by the store's edge-key order) is its evidence. Bounds are explicit: a repeat's ``max``
(capped by the engine's ``max_depth``) and ``max_results`` distinct nodes per returned variable;
hitting either sets a flag in the :class:`RuleResult`, never silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ontology.models import RELATIONS, datetime_fields
from reasoning import trusted
from reasoning.errors import ReasoningError
from reasoning.results import EvidencePath, EvidenceStep
from reasoning.rule_model import NodePattern, PropFilter, RepeatSegment, Rule, Step, TimeRef, Window
from store.base import Direction, EdgeRecord, GraphStore, Hop, NodeRecord, Traversal, TraversalStep

_NODE_ATTRS = ("id", "name", "plant", "source_system", "valid_from", "valid_to")
_EDGE_ATTRS = ("source_system", "valid_from", "valid_to")
_EDGE_TIME_PROPS: dict[str, tuple[str, ...]] = {
    name: tuple(sorted(datetime_fields(rd.props) - {"valid_from", "valid_to"})) for name, rd in RELATIONS.items()
}


def edge_times(edge: EdgeRecord, as_of: datetime | None, times: dict[str, datetime]) -> dict[str, datetime]:
    """The times an evidence step records for ``edge``, added to ``times``: the relation's own
    timestamp properties (a time already there is kept), and with ``as_of`` its validity window.
    Every producer of evidence steps (engine, compiled rules, batch analyses) uses this one."""
    for tname in _EDGE_TIME_PROPS.get(edge.rel, ()):
        t = as_time(edge.props.get(tname))
        if t is not None:
            times.setdefault(f"edge.{tname}", t)
    if as_of is not None:
        for attr in ("valid_from", "valid_to"):
            t = getattr(edge, attr)
            if t is not None:
                times[f"edge.{attr}"] = t
    return times


def untimed(rels: Iterable[str], as_of: datetime | None) -> bool:
    """Whether :func:`edge_times` adds nothing for any edge of ``rels`` (no timestamp properties,
    no ``as_of``): a hot loop then gives each step a fresh empty dict without the call."""
    return as_of is None and not any(_EDGE_TIME_PROPS.get(r) for r in rels)


def as_time(value: Any) -> datetime | None:
    """A stored timestamp (ISO string or datetime) as an aware datetime; None when absent."""
    if isinstance(value, str):  # the common case first (stored props are JSON strings)
        if not value:
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def node_value(node: NodeRecord, prop: str) -> Any:
    if prop in _NODE_ATTRS:
        return getattr(node, prop)
    return node.props.get(prop)


def edge_value(edge: EdgeRecord, prop: str) -> Any:
    if prop in _EDGE_ATTRS:
        return getattr(edge, prop)
    return edge.props.get(prop)


# ---------------------------------------------------------------------------------------------
# Compilation to positions and transitions
# ---------------------------------------------------------------------------------------------

CountMode = Literal["reset", "start", "keep", "loop"]


@dataclass(frozen=True, slots=True)
class _Transition:
    step: Step
    target: int
    count: CountMode
    bound: int  # the repeat's max (0 outside repeats)


@dataclass
class _Compiled:
    vars: list[str | None]
    transitions: dict[int, list[_Transition]]
    referenced: tuple[str, ...]  # variables later steps refer to (kept in the state key)


def _compile(rule: Rule, max_depth: int) -> _Compiled:
    vars_: list[str | None] = [rule.start.var]
    trans: dict[int, list[_Transition]] = {}
    exits = [0]

    def new_pos(var: str | None) -> int:
        vars_.append(var)
        return len(vars_) - 1

    for seg in rule.path:
        if isinstance(seg, Step):
            p = new_pos(seg.node.var)
            for e in exits:
                trans.setdefault(e, []).append(_Transition(seg, p, "reset", 0))
            exits = [p]
            continue
        assert isinstance(seg, RepeatSegment)
        rep = seg.repeat
        bound = min(rep.max, max_depth)
        alt_pos: list[list[int]] = []
        for alt in rep.any_of:
            alt_pos.append([new_pos(st.node.var) for st in alt])
        for a, alt in enumerate(rep.any_of):
            for e in exits:
                trans.setdefault(e, []).append(_Transition(alt[0], alt_pos[a][0], "start", bound))
            for j in range(1, len(alt)):
                trans.setdefault(alt_pos[a][j - 1], []).append(
                    _Transition(alt[j], alt_pos[a][j], "keep", bound))
        ends = [ps[-1] for ps in alt_pos]
        for end in ends:
            for b, alt in enumerate(rep.any_of):
                trans.setdefault(end, []).append(_Transition(alt[0], alt_pos[b][0], "loop", bound))
        exits = ends + (exits if rep.min == 0 else [])

    referenced: list[str] = []
    for st in rule.steps():
        refs: list[TimeRef | None] = []
        if st.window is not None:
            refs += [st.window.from_, st.window.to, st.window.at]
        for r in refs:
            if r is not None and r.var is not None and r.var not in referenced:
                referenced.append(r.var)
    return _Compiled(vars_, trans, tuple(referenced))


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """One node bound to a returned variable, with the first path that reached it."""

    node: NodeRecord
    depth: int
    start: str
    steps: tuple[EvidenceStep, ...]

    def evidence(self, rule: str | None = None) -> EvidencePath:
        return EvidencePath(rule=rule, steps=list(self.steps))


@dataclass
class RuleResult:
    rule: str
    bindings: dict[str, dict[str, Match]]
    starts: list[str]
    missing_starts: list[str] = field(default_factory=list)
    depth_limit_hit: bool = False
    result_limit_hit: bool = False
    notes: list[str] = field(default_factory=list)
    states_visited: int = 0

    def ids(self, var: str) -> list[str]:
        return sorted(self.bindings.get(var, {}))

    def matches(self, var: str) -> list[Match]:
        b = self.bindings.get(var, {})
        return [b[k] for k in sorted(b)]


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

_StateKey = tuple[str, int, tuple[str | None, ...]]
EdgeCache = dict[tuple[str, tuple[str, ...], str], list[EdgeRecord]]
#: Node records by id (None: absent), shareable across evaluations with the same ``as_of``.
NodeCache = dict[str, NodeRecord | None]


@dataclass(slots=True)
class _State:
    key: _StateKey
    count: int
    depth: int
    start: str


class RuleEngine:
    """Evaluates rules on one store. Cheap to create; holds no per-query state between calls."""

    def __init__(self, store: GraphStore, max_depth: int = 50, max_results: int = 100_000,
                 fast_path: bool = True) -> None:
        self.store = store
        self.max_depth = max_depth
        self.max_results = max_results
        #: use the store's own traversal for rules whose state is the node's class, and the chain
        #: path for rules that are a fixed sequence of plain steps (same answers as the automaton)
        self.fast_path = fast_path
        self._plans: dict[tuple[int, int], _FastPlan | None] = {}
        self._chains: dict[int, tuple[Step, ...] | None] = {}

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
        """Evaluate ``rule`` with ``params``; ``edge_cache`` (optional) shares the neighbour reads
        of this evaluation with the caller, keyed ``(node, rels, direction)``, and ``node_cache``
        the node reads. Share them only between evaluations with the same ``as_of``, on a store
        that does not change in between (one analysis)."""
        params = _check_params(rule, params)
        depth_cap = self.max_depth if max_depth is None else max_depth
        result_cap = self.max_results if max_results is None else max_results
        plan = None
        if self.fast_path:
            pkey = (id(rule), depth_cap)
            if pkey not in self._plans:
                self._plans[pkey] = _fast_plan(rule, depth_cap)
            plan = self._plans[pkey]
        if plan is not None:
            fast = _run_fast(self.store, rule, plan, params, as_of, result_cap, node_cache)
            if fast is not None:
                return fast
        chain = None
        if self.fast_path:
            if id(rule) not in self._chains:
                self._chains[id(rule)] = _chain_plan(rule)
            chain = self._chains[id(rule)]
        if chain is not None:
            return _run_chain(self.store, rule, chain, params, as_of, result_cap,
                              edge_cache if edge_cache is not None else {},
                              node_cache if node_cache is not None else {})
        compiled = _compile(rule, depth_cap)
        run = _Run(self.store, rule, compiled, params, as_of, result_cap)
        if edge_cache is not None:
            run.nbr_cache = edge_cache
        if node_cache is not None:
            run.nodes = node_cache
        return run.run()


# ---------------------------------------------------------------------------------------------
# Fast path: a rule whose automaton state is determined by the node's class
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FastPlan:
    steps: tuple[TraversalStep, ...]
    var_of_class: dict[str, str | None]
    hop_bound: int  # traverse this many hops at most
    exact_within: int  # results are exact when no node is deeper than this


def _fast_plan(rule: Rule, depth_cap: int) -> _FastPlan | None:
    """A plan for the store's own bounded traversal, or None when the rule needs the automaton.

    Eligible: the path is one repeat (min 1) without filters, windows or edge conditions, every
    step names its classes and they cover the relation's whole range, and each class has the same
    outgoing steps and the same variable wherever it occurs. Then "which position is this node in"
    is its class, and a plain BFS over the union of steps is the automaton's search.
    """
    if len(rule.path) != 1 or not isinstance(rule.path[0], RepeatSegment) or rule.start.where:
        return None
    rep = rule.path[0].repeat
    if rep.min != 1:
        return None
    out_of: dict[str, set[tuple[str, str]]] = {}
    var_of: dict[str, str | None] = {}

    def outgoing(cls: str, steps: set[tuple[str, str]]) -> bool:
        prev = out_of.setdefault(cls, steps)
        return prev == steps

    first: set[tuple[str, str]] = {(r, alt[0].direction) for alt in rep.any_of for r in alt[0].rels}
    start_classes = rule.start.classes
    if not start_classes:
        return None
    for c in start_classes:
        if not outgoing(c, first):
            return None
    for alt in rep.any_of:
        for j, st in enumerate(alt):
            if st.node.where or st.node.without_edge or st.edge_where or st.window is not None or not st.node.classes:
                return None
            far: set[str] = set()
            for r in st.rels:
                rd = RELATIONS[r]
                far |= set(rd.range if st.direction == "out" else rd.domain)
            if not far <= set(st.node.classes):
                return None
            nxt: set[tuple[str, str]] = (
                first if j == len(alt) - 1 else {(r, alt[j + 1].direction) for r in alt[j + 1].rels})
            for c in far:
                if not outgoing(c, nxt):
                    return None
                if c in var_of and var_of[c] != st.node.var:
                    return None
                var_of[c] = st.node.var
    lens = [len(alt) for alt in rep.any_of]
    bound = min(rep.max, depth_cap)
    steps = tuple(TraversalStep(r, Direction(d)) for r, d in sorted({x for v in out_of.values() for x in v}))
    return _FastPlan(steps=steps, var_of_class=var_of, hop_bound=bound * max(lens),
                     exact_within=bound * min(lens))


def _fetch_into(store: GraphStore, cache: NodeCache, ids: Iterable[str], as_of: datetime | None) -> None:
    """Read the ids not in ``cache`` yet in one call; absent ones are cached as None."""
    missing = sorted({i for i in ids if i not in cache})
    if missing:
        got = store.get_nodes(missing, as_of)
        for i in missing:
            cache[i] = got.get(i)


def _neighbours_into(store: GraphStore, cache: EdgeCache, nodes: Iterable[str], rels: tuple[str, ...],
                     direction: str, as_of: datetime | None) -> None:
    """Read the neighbour lists of ``nodes`` not in ``cache`` yet in one call (in the order
    given; a node without edges is cached with an empty list)."""
    todo = [n for n in nodes if (n, rels, direction) not in cache]
    if todo:
        got = store.neighbours_many(todo, list(rels), Direction(direction), as_of)
        for n in todo:
            cache[(n, rels, direction)] = got.get(n, [])


def _present(cache: NodeCache, ids: Iterable[str]) -> dict[str, NodeRecord]:
    return {i: n for i in ids if (n := cache.get(i)) is not None}


def _run_fast(store: GraphStore, rule: Rule, plan: _FastPlan, params: dict[str, Any], as_of: datetime | None,
              result_cap: int, node_cache: NodeCache | None = None) -> RuleResult | None:
    """Evaluate with ``store.traverse``; None when the walk went too deep to be exact (use the automaton)."""
    cache: NodeCache = node_cache if node_cache is not None else {}
    start_ids = list(dict.fromkeys(params[rule.start.ids]))
    _fetch_into(store, cache, start_ids, as_of)
    recs = _present(cache, start_ids)
    starts = [i for i in start_ids if i in recs and (not rule.start.classes or recs[i].cls in rule.start.classes)]
    # the cap is on results per variable; the traversal's node cap is a superset guard
    no_times = untimed({st.rel for st in plan.steps}, as_of)
    # without times, evidence steps need only the edges' keys: the store may leave their rows unread
    tr = store.traverse(starts, plan.steps, plan.hop_bound, as_of=as_of, max_nodes=result_cap * 4 + len(starts),
                        edge_payloads=not no_times)
    if tr.truncated and tr.truncated_reason != "max_depth":
        return None
    deepest = max((h.depth for h in tr.hops.values()), default=0)
    if deepest > plan.exact_within or (tr.truncated and plan.exact_within < plan.hop_bound):
        return None
    start_set = set(starts)
    result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=starts,
                        missing_starts=[i for i in start_ids if i not in start_set])
    result.depth_limit_hit = bool(tr.truncated)
    reached = [h for h in tr.hops.values() if h.depth > 0]
    _fetch_into(store, cache, (h.node for h in reached), as_of)
    for sid in starts:
        if rule.start.var in result.bindings:
            result.bindings[rule.start.var][sid] = Match(recs[sid], 0, sid, ())
    # a node's path is its parent's plus one step: built once per node, shared by its descendants;
    # nodes come by depth, so the parent's path is usually memoised already (else _path_steps)
    memo: dict[str, tuple[str, tuple[EvidenceStep, ...]]] = {h.node: (h.node, ()) for h in tr.hops.values()
                                                            if h.parent is None}
    make_step = trusted.step
    bindings = result.bindings
    var_of_class = plan.var_of_class
    reached.sort(key=_by_depth)
    for h in reached:
        here = h.node
        node = cache.get(here)
        if node is None:
            continue
        var = var_of_class.get(node.cls)
        if var is None or var not in bindings:
            continue
        slot = bindings[var]
        if len(slot) >= result_cap:
            result.result_limit_hit = True
            continue
        parent, e = h.parent, h.edge
        got = memo.get(parent) if parent is not None else None
        if got is None or e is None or parent is None:
            start, steps = _path_steps(tr, here, as_of, memo)
        else:
            start = got[0]
            direction: Literal["out", "in"] = "out" if e.src == parent else "in"
            steps = (*got[1], make_step(parent, e.rel, here, direction, {} if no_times else edge_times(e, as_of, {})))
            memo[here] = (start, steps)
        slot[here] = Match(node, h.depth, start, steps)
    if result.depth_limit_hit:
        result.notes.append(f"rule {rule.name}: a repeat bound stopped the walk")
    if result.result_limit_hit:
        result.notes.append(f"rule {rule.name}: stopped at {result_cap} results for one variable")
    result.states_visited = len(tr.hops)
    return result


def _by_depth(h: Hop) -> tuple[int, str]:
    return (h.depth, h.node)


def _path_steps(tr: Traversal, node: str, as_of: datetime | None,
                memo: dict[str, tuple[str, tuple[EvidenceStep, ...]]]) -> tuple[str, tuple[EvidenceStep, ...]]:
    """(start, evidence steps) of the traversal's path to ``node``, memoised per node."""
    got = memo.get(node)
    if got is not None:
        return got
    chain: list[Hop] = []  # the hops up to the nearest node already memoised (or the start)
    cur: str | None = node
    while cur is not None and cur not in memo:
        hop = tr.hops[cur]
        chain.append(hop)
        cur = hop.parent
    start, steps = memo[cur] if cur is not None else (chain[-1].node, ())
    for hop in reversed(chain):
        if hop.parent is None:  # a start
            memo[hop.node] = (hop.node, ())
            start, steps = hop.node, ()
            continue
        e = hop.edge
        assert e is not None
        times = edge_times(e, as_of, {})
        direction: Literal["out", "in"] = "out" if e.src == hop.parent else "in"
        steps = (*steps, trusted.step(hop.parent, e.rel, hop.node, direction, times))
        memo[hop.node] = (start, steps)
    return memo[node]


# ---------------------------------------------------------------------------------------------
# Chain path: a rule that is a fixed sequence of plain steps
# ---------------------------------------------------------------------------------------------


def _chain_plan(rule: Rule) -> tuple[Step, ...] | None:
    """The steps of a rule the chain path evaluates, or None when it needs the automaton.

    Eligible: no repeat, and no condition beyond classes (no ``where``, ``without_edge``, edge
    filter or window, on the start or any step). Then a state's position is its depth, no
    variable is referenced, and the automaton's search is a level-by-level walk that this path
    repeats without its general machinery (same reads, same visiting order, same evidence)."""
    if rule.start.where or rule.start.without_edge:
        return None
    steps: list[Step] = []
    for seg in rule.path:
        if not isinstance(seg, Step):
            return None
        if seg.node.where or seg.node.without_edge or seg.edge_where or seg.window is not None:
            return None
        steps.append(seg)
    return tuple(steps)


def _admits_all(step: Step) -> bool:
    """Whether the step's node pattern admits every node its relations can reach (no classes, or
    classes covering the relations' far side): then only an absent node stops the chain there."""
    want = step.node.classes
    if not want:
        return True
    far: set[str] = set()
    for r in step.rels:
        rd = RELATIONS.get(r)
        if rd is None:
            return False
        far.update(rd.range if step.direction == "out" else rd.domain)
    return far <= set(want)


def _prefetch_chain(store: GraphStore, steps: Sequence[Step], frontier: list[str], as_of: datetime | None,
                    nbr_cache: EdgeCache, cache: NodeCache) -> None:
    """Warm the chain's caches for its leading steps that admit every node (:func:`_admits_all`):
    their levels' neighbour lists, one batch read per level as the chain makes them, and the
    nodes of all those levels in one read instead of one per level. The chain then runs
    unchanged on warm caches, so its answers are the same (at worst it reads a list it would
    not have needed, past a node that turns out to be absent)."""
    lead = 0
    while lead < len(steps) and _admits_all(steps[lead]):
        lead += 1
    if lead < 2:  # one level: the chain's own read is already one call
        return
    ids = list(dict.fromkeys(frontier))
    far_all: list[str] = []
    for step in steps[:lead]:
        rels, direction = step.rels, step.direction
        _neighbours_into(store, nbr_cache, ids, rels, direction, as_of)
        out = direction == "out"
        ids = list(dict.fromkeys(e.dst if out else e.src for n in ids for e in nbr_cache[(n, rels, direction)]))
        if not ids:
            break
        far_all.extend(ids)
    _fetch_into(store, cache, far_all, as_of)


def _run_chain(store: GraphStore, rule: Rule, steps: tuple[Step, ...], params: dict[str, Any],
               as_of: datetime | None, result_cap: int, nbr_cache: EdgeCache,
               cache: NodeCache) -> RuleResult:
    """Evaluate a chain rule (see :func:`_chain_plan`): what ``_Run.run`` does for it, step by
    step, with the neighbour lists and nodes read per level in one batch call each."""
    start_ids: list[str] = list(dict.fromkeys(params[rule.start.ids]))
    start_set = set(start_ids)
    _fetch_into(store, cache, start_ids, as_of)
    result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=[])
    classes = rule.start.classes
    start_var = rule.start.var
    start_slot = result.bindings.get(start_var) if start_var is not None else None
    # a level's states in visiting order: (node, start, evidence steps)
    frontier: list[tuple[str, str, tuple[EvidenceStep, ...]]] = []
    visited = 0
    for sid in start_ids:
        rec = cache.get(sid)
        if rec is None or (classes and rec.cls not in classes):
            result.missing_starts.append(sid)
            continue
        result.starts.append(sid)
        visited += 1
        if start_slot is not None:
            if len(start_slot) >= result_cap:
                result.result_limit_hit = True
            else:
                start_slot[sid] = Match(node=rec, depth=0, start=sid, steps=())
        frontier.append((sid, sid, ()))
    _prefetch_chain(store, steps, [n for n, _, _ in frontier], as_of, nbr_cache, cache)
    depth = 0
    for step in steps:
        if not frontier or result.result_limit_hit:
            break
        depth += 1
        rels, direction = step.rels, step.direction
        _neighbours_into(store, nbr_cache, (n for n, _, _ in frontier), rels, direction, as_of)
        out = direction == "out"
        cands = [(st, e, e.dst if out else e.src) for st in frontier for e in nbr_cache[(st[0], rels, direction)]]
        _fetch_into(store, cache, (o for _, _, o in cands), as_of)
        want = step.node.classes
        var = step.node.var
        slot = result.bindings.get(var) if var is not None else None
        seen: set[str] = set()
        nxt: list[tuple[str, str, tuple[EvidenceStep, ...]]] = []
        no_times = untimed(rels, as_of)
        make_step = trusted.step
        for (here, start, path), edge, other in cands:
            rec = cache.get(other)
            if rec is None or (want and rec.cls not in want) or other in seen:
                continue
            seen.add(other)
            visited += 1
            ev = (*path, make_step(here, edge.rel, other, direction, {} if no_times else edge_times(edge, as_of, {})))
            if slot is not None and other not in start_set and other not in slot:
                if len(slot) >= result_cap:
                    result.result_limit_hit = True
                    break
                slot[other] = Match(rec, depth, start, ev)
            nxt.append((other, start, ev))
        frontier = nxt
    if result.result_limit_hit:
        result.notes.append(f"rule {rule.name}: stopped at {result_cap} results for one variable")
    result.states_visited = visited
    return result


def _check_params(rule: Rule, params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in rule.params.items():
        if name not in params:
            raise ReasoningError(f"rule {rule.name!r} needs parameter {name!r} ({kind})")
        v = params[name]
        if kind == "ids":
            if isinstance(v, str) or not isinstance(v, Iterable):
                raise ReasoningError(f"rule {rule.name!r}: parameter {name!r} must be a list of ids")
            v = [str(x) for x in v]
        elif kind == "datetime":
            t = as_time(v)
            if t is None or t.tzinfo is None:
                raise ReasoningError(
                    f"rule {rule.name!r}: parameter {name!r} must be a timezone-aware time, got {v!r}")
            v = t
        out[name] = v
    return out


class _Run:
    def __init__(self, store: GraphStore, rule: Rule, compiled: _Compiled, params: dict[str, Any],
                 as_of: datetime | None, result_cap: int) -> None:
        self.store, self.rule, self.c, self.params = store, rule, compiled, params
        self.as_of, self.result_cap = as_of, result_cap
        self.nodes: dict[str, NodeRecord | None] = {}
        self.nbr_cache: EdgeCache = {}
        self.parents: dict[_StateKey, tuple[_StateKey, EvidenceStep] | None] = {}
        self.returns = set(rule.returns)
        self.ref_index = {v: i for i, v in enumerate(compiled.referenced)}
        self.start_set: set[str] = set()
        # per search, not per edge: a state's bound variables, and a step's window anchors for
        # them (they depend on the state, so every edge of a node with thousands shares them)
        self._bound: dict[tuple[str | None, ...], dict[str, str]] = {}
        self._anchors: dict[tuple[int, tuple[str | None, ...]], tuple[datetime | None, ...] | None] = {}

    # -- store access with per-query caches ------------------------------------------------
    def neighbours(self, node: str, rels: tuple[str, ...], direction: str) -> list[EdgeRecord]:
        key = (node, rels, direction)
        hit = self.nbr_cache.get(key)
        if hit is None:
            hit = self.store.neighbours(node, list(rels), Direction(direction), self.as_of)
            self.nbr_cache[key] = hit
        return hit

    def fetch(self, ids: Iterable[str]) -> None:
        _fetch_into(self.store, self.nodes, ids, self.as_of)

    def prefetch_neighbours(self, wanted: Iterable[tuple[str, tuple[str, ...], str]]) -> None:
        """Read the neighbour lists not cached yet in one batch read per (relations, direction):
        a level of the search costs a few store calls instead of one per node."""
        groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
        for key in wanted:
            if key not in self.nbr_cache:
                groups.setdefault((key[1], key[2]), []).append(key[0])
        for (rels, direction), nodes in groups.items():
            _neighbours_into(self.store, self.nbr_cache, nodes, rels, direction, self.as_of)

    # -- filters ------------------------------------------------------------------------------
    def node_ok(self, node: NodeRecord, pat: NodePattern) -> bool:
        if pat.classes and node.cls not in pat.classes:
            return False
        for f in pat.where:
            if not self.filter_ok(node_value(node, f.prop), f):
                return False
        return all(not self.neighbours(node.id, (a.rel,), a.direction) for a in pat.without_edge)

    def filter_ok(self, actual: Any, f: PropFilter) -> bool:
        if f.op == "exists":
            return actual is not None
        if f.op == "missing":
            return actual is None
        expected = self.params[f.param] if f.param is not None else f.value
        if actual is None:
            return f.op in ("ne", "not_in")
        if f.op in ("in", "not_in"):
            found = any(_equal(actual, e) for e in expected)
            return found if f.op == "in" else not found
        if f.op == "eq":
            return _equal(actual, expected)
        if f.op == "ne":
            return not _equal(actual, expected)
        a, b = _comparable(actual, expected)
        try:
            if f.op == "lt":
                return bool(a < b)
            if f.op == "le":
                return bool(a <= b)
            if f.op == "gt":
                return bool(a > b)
            return bool(a >= b)
        except TypeError:
            return False

    def time_ref(self, ref: TimeRef | None, bound: Mapping[str, str]) -> datetime | None:
        if ref is None:
            return None
        if ref.param is not None:
            base = self.params[ref.param]
        else:
            assert ref.var is not None and ref.prop is not None
            node_id = bound.get(ref.var)
            rec = self.nodes.get(node_id) if node_id is not None else None
            base = as_time(node_value(rec, ref.prop)) if rec is not None else None
        if base is None:
            return None
        return base + ref.offset_delta

    def window_ok(self, w: Window, edge: EdgeRecord, node: NodeRecord, bound: Mapping[str, str],
                  times: dict[str, datetime]) -> bool:
        def first(refs: Sequence[str]) -> tuple[str | None, datetime | None]:
            for ref in refs:
                kind, prop = ref.split(".", 1)
                v = as_time(edge_value(edge, prop) if kind == "edge" else node_value(node, prop))
                if v is not None:
                    return ref, v
            return None, None

        lo = self.time_ref(w.from_, bound)
        hi = self.time_ref(w.to, bound)
        if (w.from_ is not None and lo is None) or (w.to is not None and hi is None):
            return False  # the anchor itself is unknown (e.g. an order that never started)
        if w.kind == "within":
            name, t = first(w.time)
            if t is None or name is None:
                return False
            times[name] = t
            return (lo is None or t >= lo) and (hi is None or t < hi)
        sname, s = first(w.start)
        if s is None or sname is None:
            return False
        ename, e = first(w.end)
        times[sname] = s
        if e is not None and ename is not None:
            times[ename] = e
        if w.kind == "contains":
            at = self.time_ref(w.at, bound)
            if at is None:
                return False
            return s <= at and (e is None or at < e)
        # overlaps: [s, e) ∩ [lo, hi) non-empty; an open end means still going
        if hi is not None and s >= hi:
            return False
        return not (lo is not None and e is not None and e <= lo)

    def edge_precheck(self, step: Step, edge: EdgeRecord, key: _StateKey) -> bool:
        """False when the step's edge conditions, or a window whose times come from the edge
        alone, already fail (saves fetching the node at the other end)."""
        if step.edge_where and not all(self.filter_ok(edge_value(edge, f.prop), f) for f in step.edge_where):
            return False
        w = step.window
        if w is None:
            return True

        if w.kind == "within":
            ok, t = _from_edge(edge, w.time)
            if not ok:
                return True
            anchors = self.anchors(step, w, key)
            if anchors is None:
                return True
            lo, hi = anchors
            return t is not None and (lo is None or t >= lo) and (hi is None or t < hi)
        ok_s, s = _from_edge(edge, w.start)
        ok_e, e = _from_edge(edge, w.end) if w.end else (True, None)
        if not (ok_s and ok_e):
            return True
        anchors = self.anchors(step, w, key)
        if anchors is None:
            return True
        if s is None:
            return False
        if w.kind == "contains":
            (at,) = anchors
            return at is not None and s <= at and (e is None or at < e)
        lo, hi = anchors
        if hi is not None and s >= hi:
            return False
        return not (lo is not None and e is not None and e <= lo)

    def anchors(self, step: Step, w: Window, key: _StateKey) -> tuple[datetime | None, ...] | None:
        """The window's anchors from state ``key``: ``(at,)`` for ``contains``, else ``(from,
        to)``; None when one refers to a variable the state has not bound (then the edge alone
        cannot decide). Memoised per step and bound variables."""
        mkey = (id(step), key[2])
        if mkey in self._anchors:
            return self._anchors[mkey]
        bound = self.bound_vars(key)
        got: tuple[datetime | None, ...] | None
        if any(r is not None and r.var is not None and r.var not in bound for r in (w.from_, w.to, w.at)):
            got = None
        elif w.kind == "contains":
            got = (self.time_ref(w.at, bound),)
        else:
            got = (self.time_ref(w.from_, bound), self.time_ref(w.to, bound))
        self._anchors[mkey] = got
        return got

    # -- the search ---------------------------------------------------------------------------
    def bound_vars(self, key: _StateKey) -> dict[str, str]:
        """The state's bound variables (memoised: shared, so callers must not change it)."""
        got = self._bound.get(key[2])
        if got is None:
            got = {v: n for v, n in zip(self.c.referenced, key[2], strict=True) if n is not None}
            self._bound[key[2]] = got
        return got

    def run(self) -> RuleResult:
        rule, c = self.rule, self.c
        start_ids: list[str] = list(dict.fromkeys(self.params[rule.start.ids]))
        self.start_set = set(start_ids)
        self.fetch(start_ids)
        result = RuleResult(rule=rule.name, bindings={v: {} for v in rule.returns}, starts=[])
        frontier: list[_State] = []
        for sid in start_ids:
            rec = self.nodes.get(sid)
            if rec is None or not self.node_ok(rec, rule.start):
                result.missing_starts.append(sid)
                continue
            result.starts.append(sid)
            refs = tuple(sid if v == rule.start.var else None for v in c.referenced)
            key: _StateKey = (sid, 0, refs)
            if key in self.parents:
                continue
            self.parents[key] = None
            self.bind(key, _State(key, 0, 0, sid), result)
            frontier.append(_State(key, 0, 0, sid))

        while frontier and not result.result_limit_hit:
            nxt: list[_State] = []
            # phase 1: candidate edges of every state in the level
            self.prefetch_neighbours((st.key[0], tr.step.rels, tr.step.direction)
                                     for st in frontier for tr in c.transitions.get(st.key[1], []))
            # conditions the edge alone decides are checked before fetching nodes (a step
            # without edge conditions or window passes every edge: no call per edge)
            cands: list[tuple[_State, _Transition, EdgeRecord, str]] = []
            check = self.edge_precheck
            for st in frontier:
                node_id, pos, _ = st.key
                for tr in c.transitions.get(pos, []):
                    rstep = tr.step
                    out = rstep.direction == "out"
                    edges = self.neighbours(node_id, rstep.rels, rstep.direction)
                    if rstep.edge_where or rstep.window is not None:
                        skey = st.key
                        cands.extend((st, tr, e, e.dst if out else e.src) for e in edges if check(rstep, e, skey))
                    else:
                        cands.extend((st, tr, e, e.dst if out else e.src) for e in edges)
            # phase 2: fetch the nodes reached, in one call
            self.fetch(o for *_, o in cands)
            # the edges 'without_edge' conditions look at, for the nodes that reach that check
            self.prefetch_neighbours(
                (other, (a.rel,), a.direction) for _, tr, _, other in cands if tr.step.node.without_edge
                and (rec := self.nodes.get(other)) is not None
                and (not tr.step.node.classes or rec.cls in tr.step.node.classes)
                for a in tr.step.node.without_edge)
            # phase 3: filter and visit in a deterministic order
            for st, tr, edge, other in cands:
                rec = self.nodes.get(other)
                if rec is None or not self.node_ok(rec, tr.step.node):
                    continue
                if tr.step.edge_where and not all(
                        self.filter_ok(edge_value(edge, f.prop), f) for f in tr.step.edge_where):
                    continue
                times: dict[str, datetime] = {}
                if tr.step.window is not None and not self.window_ok(
                        tr.step.window, edge, rec, self.bound_vars(st.key), times):
                    continue
                mode = tr.count
                count = 0 if mode == "reset" else 1 if mode == "start" else st.count if mode == "keep" else st.count + 1
                refs = st.key[2]
                var = c.vars[tr.target]
                if var is not None and var in self.ref_index:
                    lst = list(refs)
                    lst[self.ref_index[var]] = other
                    refs = tuple(lst)
                key = (other, tr.target, refs)
                if key in self.parents:
                    continue
                if tr.count == "loop" and count > tr.bound:
                    result.depth_limit_hit = True
                    continue
                edge_times(edge, self.as_of, times)
                step = trusted.step(st.key[0], edge.rel, other, tr.step.direction, times)
                self.parents[key] = (st.key, step)
                new = _State(key, count, st.depth + 1, st.start)
                self.bind(key, new, result)
                if result.result_limit_hit:
                    break
                nxt.append(new)
            frontier = nxt
        if result.depth_limit_hit:
            result.notes.append(f"rule {rule.name}: a repeat bound (max {self.depth_bound()}) stopped the walk")
        if result.result_limit_hit:
            result.notes.append(f"rule {rule.name}: stopped at {self.result_cap} results for one variable")
        result.states_visited = len(self.parents)
        return result

    def depth_bound(self) -> int:
        bounds = [t.bound for ts in self.c.transitions.values() for t in ts if t.bound]
        return max(bounds) if bounds else 0

    def bind(self, key: _StateKey, st: _State, result: RuleResult) -> None:
        var = self.c.vars[key[1]]
        if var is None or var not in self.returns:
            return
        if key[1] != 0 and key[0] in self.start_set:
            return  # a start node reached again (a cycle) is reported as a start only
        slot = result.bindings[var]
        if key[0] in slot:
            return
        if len(slot) >= self.result_cap:
            result.result_limit_hit = True
            return
        node = self.nodes[key[0]]
        assert node is not None
        slot[key[0]] = Match(node=node, depth=st.depth, start=st.start, steps=tuple(self.path(key)))

    def path(self, key: _StateKey) -> list[EvidenceStep]:
        out: list[EvidenceStep] = []
        cur: _StateKey | None = key
        while cur is not None:
            parent = self.parents[cur]
            if parent is None:
                break
            cur, step = parent
            out.append(step)
        out.reverse()
        return out


_REF_PARTS: dict[str, tuple[str, str]] = {}


def _from_edge(edge: EdgeRecord, refs: Sequence[str]) -> tuple[bool, datetime | None]:
    """(decided, value) of a window's time references on ``edge``: decided when the first present
    ref is an edge property (a node property needs the node: undecided)."""
    for ref in refs:
        parts = _REF_PARTS.get(ref)
        if parts is None:
            kind, prop = ref.split(".", 1)
            parts = _REF_PARTS[ref] = (kind, prop)
        if parts[0] == "node":
            return False, None
        v = as_time(edge_value(edge, parts[1]))
        if v is not None:
            return True, v
    return True, None


def _equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    ta, tb = as_time(a), as_time(b)
    if isinstance(b, datetime) or isinstance(a, datetime):
        return ta is not None and tb is not None and ta == tb
    return str(a) == str(b) if isinstance(a, str) or isinstance(b, str) else False


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, datetime) or isinstance(b, datetime):
        return as_time(a), as_time(b)
    return a, b

