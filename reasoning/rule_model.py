"""Rules as data: the declarative path-pattern model, its YAML loader and its ontology validation.

A rule is a path pattern over ontology relations, written in YAML (see docs/rules.md)::

    name: forward_genealogy
    params: {lots: ids}
    start: {var: start, class: Lot, ids: lots}
    path:
      - repeat:
          max: 50
          any_of:
            - - {rel: CONSUMED, direction: in, node: {var: order, class: ProductionOrder}}
              - {rel: PRODUCED, direction: out, node: {var: lot, class: Lot}}
            - - {rel: DERIVED_FROM, direction: in, node: {var: lot, class: Lot}}
    return: [order, lot]

This module knows nothing about how a rule is evaluated: :mod:`reasoning.engine` interprets it
on any :class:`~store.base.GraphStore`, and :mod:`reasoning.cypher` compiles the same model to
Cypher. Semantics both must honour (documented in docs/rules.md):

- ``start`` binds the nodes whose ids are given by the ``ids`` parameter (and pass its filters).
- ``path`` is a sequence of segments. A *step* follows one of ``rel`` in ``direction`` (``out``:
  the stored edge points away from the current node; ``in``: towards it) to a node matching
  ``node``. A *repeat* follows one of its ``any_of`` sub-paths between ``min`` (0 or 1) and
  ``max`` times; ``max`` is the explicit bound of variable-length genealogy.
- Node patterns filter on class (any of), on properties (``where``) and on the absence of an edge
  (``without_edge``); steps filter on edge properties (``edge_where``) and on a time ``window``.
- A variable names a position. Returning a variable yields every distinct node that occupies its
  position in some match of the pattern *up to that position* (prefix semantics), each with its
  first (shortest, then lowest edge key) path from a start node as evidence.
- Every node and edge must be valid at the query's ``as_of`` time when one is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ontology.models import COMMON_FIELDS, ENTITY_CLASSES, RELATIONS, EdgeProps, datetime_fields
from reasoning.errors import RuleError

BUILTIN_RULES_DIR = Path(__file__).parent / "rules"

ParamType = Literal["ids", "datetime", "number", "string", "strings"]
FilterOp = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "exists", "missing"]

_DURATION = re.compile(r"^\s*(-)?\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``14d``, ``-2h``, ``30m``, ``1w``, ``45s`` -> timedelta; ValueError otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like '14d', '-2h' or '30m', got {text!r}")
    value = float(m.group(2)) * (-1 if m.group(1) else 1)
    return timedelta(**{_UNITS[m.group(3)]: value})


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ParamRef(_M):
    """A value taken from a query parameter at evaluation time."""

    param: str


class TimeRef(_M):
    """A time: a parameter, or a timestamp property of an earlier variable, plus an offset."""

    param: str | None = None
    var: str | None = None
    prop: str | None = None
    offset: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TimeRef:
        if (self.param is None) == (self.var is None):
            raise ValueError("a time reference needs exactly one of 'param' or 'var'")
        if self.var is not None and self.prop is None:
            raise ValueError("a time reference to a variable needs 'prop'")
        if self.offset is not None:
            parse_duration(self.offset)
        return self

    @property
    def offset_delta(self) -> timedelta:
        return parse_duration(self.offset) if self.offset else timedelta(0)


class PropFilter(_M):
    """``prop op value``; ``value`` is a literal or ``{param: name}``."""

    prop: str
    op: FilterOp = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> PropFilter:
        if self.op in ("exists", "missing"):
            return self
        if self.value is None:
            raise ValueError(f"operator {self.op!r} needs a 'value'")
        if isinstance(self.value, dict):
            ParamRef.model_validate(self.value)
        if self.op in ("in", "not_in") and not isinstance(self.value, (list, dict)):
            raise ValueError(f"operator {self.op!r} needs a list value or a parameter")
        return self

    @property
    def param(self) -> str | None:
        return self.value["param"] if isinstance(self.value, dict) else None


class EdgeAbsent(_M):
    """The node must have no edge of ``rel`` in ``direction`` (valid at as_of)."""

    rel: str
    direction: Literal["out", "in"] = "out"


class NodePattern(_M):
    var: str | None = None
    classes: tuple[str, ...] = Field(default=(), alias="class")
    where: tuple[PropFilter, ...] = ()
    without_edge: tuple[EdgeAbsent, ...] = ()

    @field_validator("classes", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class StartPattern(NodePattern):
    ids: str = Field(description="Name of the 'ids' parameter holding the start node ids.")


class Window(_M):
    """A time condition on a step.

    ``within``: the first present of ``time`` (``edge.<prop>`` or ``node.<prop>``) lies in
    ``[from, to)``. ``overlaps``: the interval [first present of ``start``, first present of ``end``)
    intersects ``[from, to)``; a missing start fails, a missing end means "still going".
    ``contains``: that interval contains the instant ``at``.
    A missing ``from`` or ``to`` leaves that side open.
    """

    kind: Literal["within", "overlaps", "contains"]
    time: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    end: tuple[str, ...] = ()
    from_: TimeRef | None = Field(default=None, alias="from")
    to: TimeRef | None = None
    at: TimeRef | None = None

    @field_validator("time", "start", "end", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _shape(self) -> Window:
        if self.kind == "within" and not self.time:
            raise ValueError("a 'within' window needs 'time'")
        if self.kind in ("overlaps", "contains") and not self.start:
            raise ValueError(f"an {self.kind!r} window needs 'start' (and usually 'end')")
        if self.kind == "contains" and self.at is None:
            raise ValueError("a 'contains' window needs 'at'")
        for ref in (*self.time, *self.start, *self.end):
            if not re.fullmatch(r"(edge|node)\.[A-Za-z_][A-Za-z0-9_]*", ref):
                raise ValueError(f"time property {ref!r} must be 'edge.<prop>' or 'node.<prop>'")
        return self


class Step(_M):
    rels: tuple[str, ...] = Field(alias="rel")
    direction: Literal["out", "in"]
    node: NodePattern = NodePattern()
    edge_where: tuple[PropFilter, ...] = ()
    window: Window | None = None

    @field_validator("rels", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class Repeat(_M):
    min: int = Field(default=1, ge=0, le=1)
    max: int = Field(ge=1, le=10_000)
    any_of: tuple[tuple[Step, ...], ...] = Field(min_length=1)

    @field_validator("any_of")
    @classmethod
    def _non_empty(cls, v: tuple[tuple[Step, ...], ...]) -> tuple[tuple[Step, ...], ...]:
        if any(len(alt) == 0 for alt in v):
            raise ValueError("every 'any_of' alternative needs at least one step")
        return v


class RepeatSegment(_M):
    repeat: Repeat


def _segment_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "RepeatSegment" if "repeat" in v else "Step"
    return "RepeatSegment" if isinstance(v, RepeatSegment) else "Step"


Segment = Annotated[
    Annotated[Step, Tag("Step")] | Annotated[RepeatSegment, Tag("RepeatSegment")],
    Discriminator(_segment_kind),
]


class Rule(_M):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    params: dict[str, ParamType] = Field(default_factory=dict)
    start: StartPattern
    path: tuple[Segment, ...] = Field(min_length=1)
    returns: tuple[str, ...] = Field(alias="return", min_length=1)
    # where the rule came from (filled by the loader)
    source: str | None = None
    line: int | None = None

    def steps(self) -> Iterator[Step]:
        for seg in self.path:
            if isinstance(seg, Step):
                yield seg
            else:
                for alt in seg.repeat.any_of:
                    yield from alt

    def variables(self) -> list[str]:
        out: list[str] = []
        if self.start.var:
            out.append(self.start.var)
        for st in self.steps():
            if st.node.var and st.node.var not in out:
                out.append(st.node.var)
        return out


# ---------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass
class _Located:
    data: Any
    marks: dict[Loc, tuple[int, int]]


def _compose(text: str, file: str) -> _Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        raise RuleError(f"invalid YAML: {e.problem}", file,
                        mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    marks: dict[Loc, tuple[int, int]] = {}

    def conv(node: yaml.Node, loc: Loc) -> Any:
        marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                key = str(k.value)
                out[key] = conv(v, (*loc, key))
                # a key's own line is where errors about the key belong
                marks[(*loc, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [conv(v, (*loc, i)) for i, v in enumerate(node.value)]
        # scalars: let PyYAML resolve the type (int, float, bool, null, str)
        return loader.construct_object(node, deep=True)

    loader = yaml.SafeLoader("")
    try:
        data = conv(root, ()) if root is not None else None
    finally:
        loader.dispose()
    return _Located(data, marks)


def _line_of(marks: Mapping[Loc, tuple[int, int]], loc: Loc) -> tuple[int | None, int | None]:
    """The line of the deepest located prefix of ``loc``."""
    cur = tuple(loc)
    while True:
        if cur in marks:
            return marks[cur]
        if not cur:
            return (None, None)
        cur = cur[:-1]


def _yaml_loc(pyd_loc: Sequence[int | str]) -> Loc:
    """Map a pydantic error location to the YAML location (drop union tags, map aliases)."""
    alias = {"rels": "rel", "classes": "class", "returns": "return", "from_": "from"}
    out: list[str | int] = []
    for part in pyd_loc:
        if isinstance(part, str) and (part in ("Step", "RepeatSegment") or part.startswith("function-")):
            continue
        out.append(alias.get(part, part) if isinstance(part, str) else part)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Ontology validation
# ---------------------------------------------------------------------------------------------

_EDGE_COMMON = frozenset(EdgeProps.model_fields)


def _class_props(cls: str) -> set[str]:
    return set(ENTITY_CLASSES[cls].model_fields)


def _class_time_props(cls: str) -> set[str]:
    return set(datetime_fields(ENTITY_CLASSES[cls]))


class _Validator:
    def __init__(self, rule: Rule, file: str, marks: Mapping[Loc, tuple[int, int]], base: Loc) -> None:
        self.rule, self.file, self.marks, self.base = rule, file, marks, base

    def fail(self, msg: str, loc: Loc) -> RuleError:
        line, col = _line_of(self.marks, (*self.base, *loc))
        return RuleError(f"rule {self.rule.name!r}: {msg}", self.file, line, col)

    def run(self) -> None:
        r = self.rule
        bound: dict[str, frozenset[str]] = {}
        if r.start.ids not in r.params or r.params[r.start.ids] != "ids":
            raise self.fail(f"start.ids names {r.start.ids!r}, which must be a parameter of type 'ids'",
                            ("start", "ids"))
        start_classes = self.check_classes(r.start.classes, frozenset(ENTITY_CLASSES), ("start",))
        self.check_node(r.start, start_classes, ("start",))
        if r.start.var:
            bound[r.start.var] = start_classes
        current = [start_classes]
        for i, seg in enumerate(r.path):
            if isinstance(seg, Step):
                current = [self.check_step(seg, current, ("path", i), bound)]
            else:
                entry = current
                ends: list[frozenset[str]] = []
                # a repeat may start from its own end classes: iterate to a fixpoint
                seen = frozenset().union(*entry)
                for _ in range(4):
                    ends = []
                    for a, alt in enumerate(seg.repeat.any_of):
                        cur = [seen]
                        for s, st in enumerate(alt):
                            cur = [self.check_step(st, cur, ("path", i, "repeat", "any_of", a, s), bound)]
                        ends.extend(cur)
                    grown = seen.union(*ends)
                    if grown == seen:
                        break
                    seen = grown
                current = [*ends, *(entry if seg.repeat.min == 0 else [])]
        for v in r.returns:
            if v not in bound:
                raise self.fail(f"returns unknown variable {v!r}; variables: {sorted(bound)}", ("return",))

    def check_classes(self, names: Sequence[str], possible: frozenset[str], loc: Loc) -> frozenset[str]:
        for j, c in enumerate(names):
            if c not in ENTITY_CLASSES:
                raise self.fail(f"unknown class {c!r}; known classes: {', '.join(sorted(ENTITY_CLASSES))}",
                                (*loc, "class", j) if len(names) > 1 else (*loc, "class"))
        chosen = frozenset(names) & possible if names else possible
        if not chosen:
            raise self.fail(f"class {list(names)} can never be reached here (possible: {sorted(possible)})",
                            (*loc, "class"))
        return chosen

    def check_node(self, node: NodePattern, classes: frozenset[str], loc: Loc) -> None:
        props = set(COMMON_FIELDS).union(*(_class_props(c) for c in classes))
        for j, f in enumerate(node.where):
            if f.prop not in props:
                raise self.fail(f"unknown property {f.prop!r} for class {sorted(classes)}",
                                (*loc, "where", j, "prop"))
            self.check_param(f.param, (*loc, "where", j, "value"))
        for j, e in enumerate(node.without_edge):
            if e.rel not in RELATIONS:
                raise self.fail(f"unknown relation {e.rel!r}", (*loc, "without_edge", j, "rel"))

    def check_param(self, name: str | None, loc: Loc) -> None:
        if name is not None and name not in self.rule.params:
            raise self.fail(f"unknown parameter {name!r}; declared: {sorted(self.rule.params)}", loc)

    def check_time(self, ref: TimeRef | None, bound: Mapping[str, frozenset[str]], loc: Loc) -> None:
        if ref is None:
            return
        if ref.param is not None:
            self.check_param(ref.param, (*loc, "param"))
            if self.rule.params.get(ref.param) != "datetime":
                raise self.fail(f"parameter {ref.param!r} must be of type 'datetime'", (*loc, "param"))
            return
        assert ref.var is not None and ref.prop is not None
        if ref.var not in bound:
            raise self.fail(f"time refers to variable {ref.var!r}, not bound before this step", (*loc, "var"))
        ok = set().union(*(_class_time_props(c) for c in bound[ref.var])) | {"valid_from", "valid_to"}
        if ref.prop not in ok:
            raise self.fail(f"{ref.prop!r} is not a timestamp property of {sorted(bound[ref.var])}",
                            (*loc, "prop"))

    def check_step(self, st: Step, current: list[frozenset[str]], loc: Loc,
                   bound: dict[str, frozenset[str]]) -> frozenset[str]:
        here = frozenset().union(*current)
        possible: set[str] = set()
        edge_props: set[str] = set(_EDGE_COMMON)
        edge_times: set[str] = {"valid_from", "valid_to"}
        for j, rel in enumerate(st.rels):
            if rel not in RELATIONS:
                raise self.fail(f"unknown relation {rel!r}; known relations: {', '.join(sorted(RELATIONS))}",
                                (*loc, "rel", j) if len(st.rels) > 1 else (*loc, "rel"))
            rd = RELATIONS[rel]
            near, far = (rd.domain, rd.range) if st.direction == "out" else (rd.range, rd.domain)
            if not here & set(near):
                raise self.fail(f"relation {rel!r} ({st.direction}) cannot leave {sorted(here)}; "
                                f"it leaves {sorted(near)}", (*loc, "rel"))
            possible |= set(far)
            edge_props |= set(rd.props.model_fields)
            edge_times |= set(datetime_fields(rd.props))
        classes = self.check_classes(st.node.classes, frozenset(possible), (*loc, "node"))
        self.check_node(st.node, classes, (*loc, "node"))
        for j, f in enumerate(st.edge_where):
            if f.prop not in edge_props:
                raise self.fail(f"unknown edge property {f.prop!r} for {list(st.rels)}",
                                (*loc, "edge_where", j, "prop"))
            self.check_param(f.param, (*loc, "edge_where", j, "value"))
        if st.window is not None:
            w = st.window
            node_times = set().union(*(_class_time_props(c) for c in classes)) | {"valid_from", "valid_to"}
            for field_name in ("time", "start", "end"):
                for j, ref in enumerate(getattr(w, field_name)):
                    kind, prop = ref.split(".", 1)
                    ok = edge_times if kind == "edge" else node_times
                    if prop not in ok:
                        raise self.fail(f"{ref!r} is not a timestamp property "
                                        f"({kind} props: {sorted(ok)})", (*loc, "window", field_name, j))
            self.check_time(w.from_, bound, (*loc, "window", "from"))
            self.check_time(w.to, bound, (*loc, "window", "to"))
            self.check_time(w.at, bound, (*loc, "window", "at"))
        if st.node.var:
            bound[st.node.var] = bound.get(st.node.var, frozenset()) | classes
        return classes


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def parse_rules(text: str, file: str = "<string>") -> list[Rule]:
    """Parse and validate a rule file's text: one rule mapping, or ``{rules: [...]}``."""
    located = _compose(text, file)
    data = located.data
    if isinstance(data, dict) and "rules" in data:
        items = data["rules"]
        if not isinstance(items, list):
            raise RuleError("'rules' must be a list of rules", file, *_line_of(located.marks, ("rules",)))
        bases: list[Loc] = [("rules", i) for i in range(len(items))]
    elif isinstance(data, dict):
        items, bases = [data], [()]
    else:
        raise RuleError("a rule file holds one rule (a mapping) or 'rules: [...]'", file,
                        *_line_of(located.marks, ()))
    out: list[Rule] = []
    for item, base in zip(items, bases, strict=True):
        if not isinstance(item, dict):
            raise RuleError("a rule must be a mapping", file, *_line_of(located.marks, base))
        try:
            rule = Rule.model_validate(item)
        except ValidationError as e:
            err = e.errors()[0]
            loc = (*base, *_yaml_loc(err["loc"]))
            line, col = _line_of(located.marks, loc)
            name = item.get("name", "?")
            where = ".".join(str(p) for p in _yaml_loc(err["loc"])) or "rule"
            raise RuleError(f"rule {name!r}: {where}: {err['msg']}", file, line, col) from None
        line, _ = _line_of(located.marks, base)
        rule = rule.model_copy(update={"source": file, "line": line})
        _Validator(rule, file, located.marks, base).run()
        out.append(rule)
    return out


_FILE_CACHE: dict[tuple[str, int, int], list[Rule]] = {}


def load_rule_file(path: Path) -> list[Rule]:
    """Parse and validate one rule file (cached by path, size and modification time)."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key in _FILE_CACHE:
            return list(_FILE_CACHE[key])
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RuleError(f"cannot read rule file: {e.strerror}", str(path)) from None
    rules = parse_rules(text, str(path))
    _FILE_CACHE[key] = rules
    return list(rules)


@dataclass
class RuleSet:
    """Rules by name, from the built-in folder and any user folders (later folders may not
    redefine a name silently: a duplicate is an error naming both files)."""

    rules: dict[str, Rule]

    def __getitem__(self, name: str) -> Rule:
        try:
            return self.rules[name]
        except KeyError:
            raise RuleError(f"unknown rule {name!r}; known rules: {', '.join(sorted(self.rules))}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(sorted(self.rules.values(), key=lambda r: r.name))


def load_rules(extra_dirs: Sequence[Path] = (), include_builtin: bool = True) -> RuleSet:
    dirs = ([BUILTIN_RULES_DIR] if include_builtin else []) + [Path(d) for d in extra_dirs]
    rules: dict[str, Rule] = {}
    for d in dirs:
        if not d.is_dir():
            raise RuleError("rules directory does not exist", str(d))
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            for rule in load_rule_file(path):
                if rule.name in rules:
                    other = rules[rule.name]
                    raise RuleError(f"rule {rule.name!r} is already defined in {other.source}:{other.line}",
                                    str(path), rule.line)
                rules[rule.name] = rule
    return RuleSet(rules)
