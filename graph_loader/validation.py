"""Validation of rows and records against the ontology, before anything is written.

Two layers, both reusable by every importer (bundle, B2MML, tables, events):

* :class:`RowSchema` turns raw rows (dicts of strings or JSON values) of one class or relation into
  typed :class:`~store.base.NodeRecord` / :class:`~store.base.EdgeRecord` objects. It validates a
  whole batch in one pydantic-core call against a ``TypedDict`` built from the class's pydantic
  model (same annotations, same constraints, no model instances), which is what makes validation
  fast. The SHACL shapes in ``ontology/`` are generated from the same models, so a row that passes
  here also satisfies the SHACL constraints (required properties, datatypes, value ranges, allowed
  statuses); a test proves it on a row that breaks one.
* :class:`GraphValidator` checks what needs more than one row: ids unique across the input, ids not
  changing class, edge endpoints present (in the input or the store, looked up in batches with
  ``store.node_classes``) and of a class the relation's domain/range allows, time windows in order,
  SOP version windows of one SOP not overlapping, and deletions not contradicting upserts.

Every problem becomes a :class:`~graph_loader.errors.LoadError` naming the place.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from graph_loader.errors import ErrorCollector, LoadError, show
from ontology.models import (
    COMMON_FIELDS,
    ENTITY_CLASSES,
    RELATIONS,
    EdgeProps,
    datetime_fields,
)
from store.base import Direction, EdgeRecord, EdgeRow, GraphStore, NodeRecord, NodeRow

COMMON_EDGE_FIELDS: frozenset[str] = frozenset(EdgeProps.model_fields)

#: Pairs of (start, end) fields whose end may not come before the start, per class.
TIME_WINDOWS: dict[str, tuple[tuple[str, str], ...]] = {
    "SOPVersion": (("effective_from", "effective_to"),),
    "Shift": (("start", "end"),),
    "DowntimeEvent": (("start", "end"),),
    "ProductionOrder": (("planned_start", "planned_end"), ("actual_start", "actual_end")),
    "QualityHold": (("placed_at", "released_at"),),
    "MaintenanceOrder": (("created_at", "completed_at"),),
}
EDGE_TIME_WINDOWS: tuple[tuple[str, str], ...] = (("start", "end"),)

#: How many ids one ``store.node_classes`` call asks for.
LOOKUP_BATCH = 2000


class _FilePlace(tuple[Any, int]):
    """Where each id of a whole file recorded at once (:meth:`GraphValidator.accept_node_columns`)
    was defined: one object for the file, its source and line 0; the line of an id, row i on line
    i + 2, is looked up only when an error names it. Saves a tuple per id (~1M at ``large``)."""

    ids: Sequence[str]

    def __new__(cls, src: Source, ids: Sequence[str]) -> _FilePlace:
        place = super().__new__(cls, (src, 0))
        place.ids = ids
        return place

    def line_of(self, node_id: str) -> int:
        return list(self.ids).index(node_id) + 2


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """Where rows come from: a file name shown in errors and, for CSV, the header (field name to
    1-based column number). JSON rows have no columns; their errors name the field path."""

    name: str
    columns: Mapping[str, int] | None = None

    def error(
        self,
        line: int,
        column: str,
        message: str,
        expected: str | None = None,
        found: str | None = None,
    ) -> LoadError:
        index = None
        if self.columns is not None:
            index = self.columns.get(column.split("[", 1)[0])
        return LoadError(
            file=self.name, line=line, column=column, message=message,
            expected=expected, found=found, column_index=index,
        )


# ---------------------------------------------------------------------------------------------
# Row -> typed record
# ---------------------------------------------------------------------------------------------


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if origin is Annotated:
        return _unwrap_optional(typing.get_args(annotation)[0])
    return annotation


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(_unwrap_optional(annotation)) is list


def _fast_path_ok(model: type[BaseModel]) -> bool:
    """A TypedDict mirrors a model exactly only when the model has no custom validators."""
    d = model.__pydantic_decorators__
    return not (d.validators or d.field_validators or d.root_validators or d.model_validators)


def _row_typed_dict(name: str, fields: Sequence[tuple[str, Any, bool]], config: ConfigDict) -> Any:
    """A TypedDict with the given (name, annotation, required) fields: a row without a model."""
    annotations = {fname: ann if required else NotRequired[ann] for fname, ann, required in fields}
    td = TypedDict(name, annotations)  # type: ignore[misc]
    return with_config(config)(td)


@dataclass(slots=True)
class RowSchema:
    """How rows of one class (``kind='node'``) or relation (``kind='edge'``) are validated."""

    kind: str
    name: str
    fields: tuple[str, ...]
    required: frozenset[str]
    list_fields: frozenset[str]
    datetime_fields: frozenset[str]
    defaults: dict[str, Any]
    factories: dict[str, Callable[[], Any]]
    common: frozenset[str]
    windows: tuple[tuple[str, str], ...] = ()
    _single: TypeAdapter[dict[str, Any]] | None = field(default=None)
    #: defaults merged under every raw row before validation (static defaults and factory values)
    prefill: dict[str, Any] = field(default_factory=dict)
    #: ``exclude`` for dumping a batch of typed rows to property documents (drops common fields)
    dump_exclude: dict[str, Any] = field(default_factory=dict)
    #: whether the class/relation has properties besides the common fields
    has_props: bool = True
    #: ``exclude`` for the bulk write's dump: the common fields except the two validity times
    rows_exclude: dict[str, Any] = field(default_factory=dict)
    _batch: TypeAdapter[list[dict[str, Any]]] | None = field(default=None)

    @property
    def window_ends(self) -> tuple[str, ...]:
        return tuple(end for _, end in self.windows)

    @property
    def batch_adapter(self) -> TypeAdapter[list[dict[str, Any]]]:
        """Types (and dumps) a whole batch in one pydantic-core call; built on first use (~10 ms of
        CPU a schema), so a bundle pays only for the classes and relations it holds."""
        if self._batch is None:
            self._batch = TypeAdapter(list[_row_type(self.kind, self.name)])  # type: ignore[arg-type,misc]
        return self._batch

    @property
    def single_adapter(self) -> TypeAdapter[dict[str, Any]]:
        if self._single is None:
            self._single = TypeAdapter(_row_type(self.kind, self.name))
        return self._single

    # -- conversion ---------------------------------------------------------------------------
    def validate(
        self, rows: Sequence[dict[str, Any]], places: Sequence[tuple[Source, int]], errors: ErrorCollector,
        suppress_missing: frozenset[str] = frozenset(),
    ) -> tuple[list[dict[str, Any] | None], set[int]]:
        """Typed values of each row (None where a row failed) and the indexes that failed.

        Defaults are filled in before validation (a TypedDict has none of its own), so the typed
        rows are complete entities."""
        if self.prefill:
            base = self.prefill
            rows = [{**base, **r} for r in rows]
        try:
            return list(self.batch_adapter.validate_python(rows)), set()
        except ValidationError as exc:
            bad: set[int] = set()
            for err in exc.errors(include_url=False):
                loc = err["loc"]
                i = loc[0]
                assert isinstance(i, int)
                bad.add(i)
                if err["type"] == "missing" and len(loc) > 1 and loc[1] in suppress_missing:
                    continue  # already reported once at the CSV header
                src, line = places[i]
                errors.add(_pydantic_error(src, line, loc[1:], err, self))
        out: list[dict[str, Any] | None] = [None] * len(rows)
        good = [i for i in range(len(rows)) if i not in bad]
        if good:
            typed = self.batch_adapter.validate_python([rows[i] for i in good])
            for i, value in zip(good, typed, strict=True):
                out[i] = value
        return out, bad

    def _props_of(self, typed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """JSON-ready property documents (timestamps as ISO-8601 strings), in one pydantic-core call
        (measured: ~1.8 µs a row, about half of building the same dicts in Python)."""
        if not self.has_props:
            return [{} for _ in typed]
        out: list[dict[str, Any]] = self.batch_adapter.dump_python(
            list(typed), mode="json", exclude=self.dump_exclude, exclude_none=True)
        return out

    def to_nodes(self, typed: Sequence[dict[str, Any]]) -> list[NodeRecord]:
        cls = self.name
        # positional arguments: (id, cls, props, name, plant, source_system, valid_from, valid_to)
        return [
            NodeRecord(d["id"], cls, p, d.get("name"), d.get("plant"), d.get("source_system", "plantgraph"),
                       d.get("valid_from"), d.get("valid_to"))
            for d, p in zip(typed, self._props_of(typed), strict=True)
        ]

    def to_edges(self, typed: Sequence[dict[str, Any]]) -> list[EdgeRecord]:
        rel = self.name
        # positional arguments: (src, rel, dst, props, source_system, valid_from, valid_to)
        return [
            EdgeRecord(d["src"], rel, d["dst"], p, d.get("source_system", "plantgraph"),
                       d.get("valid_from"), d.get("valid_to"))
            for d, p in zip(typed, self._props_of(typed), strict=True)
        ]

    def _docs_and_times(self, typed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Property documents as :meth:`_props_of` makes them, plus ``valid_from``/``valid_to``
        as ISO text from the same pydantic-core call (cheaper than ``isoformat`` per row)."""
        out: list[dict[str, Any]] = self.batch_adapter.dump_python(
            list(typed), mode="json", exclude=self.rows_exclude, exclude_none=True)
        return out

    def to_node_rows(self, typed: Sequence[dict[str, Any]]) -> list[NodeRow]:
        """Rows for :meth:`~store.base.WriteTransaction.upsert_node_rows`: the same nodes as
        :meth:`to_nodes` without a record object per row."""
        out: list[NodeRow] = []
        add = out.append
        for d, p in zip(typed, self._docs_and_times(typed), strict=True):
            add((d["id"], d.get("name"), d.get("plant"), d.get("source_system", "plantgraph"),
                 p.pop("valid_from", None), p.pop("valid_to", None), p))
        return out

    def to_edge_rows(self, typed: Sequence[dict[str, Any]]) -> list[EdgeRow]:
        """Rows for :meth:`~store.base.WriteTransaction.upsert_edge_rows` (as :meth:`to_node_rows`)."""
        if not self.has_props and not any(
                d.get("valid_from") is not None or d.get("valid_to") is not None for d in typed):
            # half the edges of a plant: nothing to dump, so no pydantic call (~1 µs a row)
            return [(d["src"], d["dst"], d.get("source_system", "plantgraph"), None, None, {}) for d in typed]
        out: list[EdgeRow] = []
        add = out.append
        for d, p in zip(typed, self._docs_and_times(typed), strict=True):
            add((d["src"], d["dst"], d.get("source_system", "plantgraph"),
                 p.pop("valid_from", None), p.pop("valid_to", None), p))
        return out

    def to_node(self, d: dict[str, Any]) -> NodeRecord:
        return self.to_nodes([d])[0]

    def to_edge(self, d: dict[str, Any]) -> EdgeRecord:
        return self.to_edges([d])[0]


def _model_of(kind: str, name: str) -> type[BaseModel]:
    return ENTITY_CLASSES[name] if kind == "node" else RELATIONS[name].props


_ROW_TYPES: dict[tuple[str, str], Any] = {}
#: How a row's values are typed (the column path types single fields with the same settings).
ROW_CONFIG = ConfigDict(extra="forbid", use_enum_values=True, str_strip_whitespace=True)
_ENDPOINT = Annotated[str, Field(min_length=1, max_length=200)]


def field_annotation(kind: str, name: str, fname: str) -> Any:
    """The annotation (with its constraints) a row of class/relation ``name`` types ``fname`` by."""
    if kind == "edge" and fname in ("src", "dst"):
        return _ENDPOINT
    info = _model_of(kind, name).model_fields[fname]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _row_type(kind: str, name: str) -> Any:
    key = (kind, name)
    if key not in _ROW_TYPES:
        model = _model_of(kind, name)
        fields: list[tuple[str, Any, bool]] = []
        if kind == "edge":
            fields += [("src", _ENDPOINT, True), ("dst", _ENDPOINT, True)]
        for fname, info in model.model_fields.items():
            fields.append((fname, field_annotation(kind, name, fname), info.is_required()))
        _ROW_TYPES[key] = _row_typed_dict(f"{name}Row", fields, ROW_CONFIG)
    return _ROW_TYPES[key]


_SCHEMAS: dict[tuple[str, str], RowSchema] = {}


def row_schema(kind: str, name: str) -> RowSchema:
    """The (cached) schema of an ontology class (``kind='node'``) or relation (``kind='edge'``)."""
    key = (kind, name)
    if key in _SCHEMAS:
        return _SCHEMAS[key]
    model = _model_of(kind, name)
    if not _fast_path_ok(model):  # pragma: no cover - models have no custom validators today
        raise NotImplementedError(f"{name} has custom validators; the TypedDict fast path would miss them")
    mf = model.model_fields
    fields = (("src", "dst") if kind == "edge" else ()) + tuple(mf)
    required = frozenset(n for n, i in mf.items() if i.is_required()) | (
        frozenset({"src", "dst"}) if kind == "edge" else frozenset()
    )
    defaults = {
        n: i.default for n, i in mf.items()
        if not i.is_required() and i.default_factory is None and i.default is not None
    }
    factories: dict[str, Callable[[], Any]] = {
        n: typing.cast(Callable[[], Any], i.default_factory) for n, i in mf.items()
        if i.default_factory is not None
    }
    common = COMMON_FIELDS if kind == "node" else COMMON_EDGE_FIELDS
    # enum defaults are stored as their values, as ``use_enum_values`` does for given values;
    # common fields are record attributes, not properties
    defaults = {n: getattr(v, "value", v) for n, v in defaults.items() if n not in common}
    factories = {n: f for n, f in factories.items() if n not in common}
    schema = RowSchema(
        kind=kind, name=name, fields=fields, required=required,
        list_fields=frozenset(n for n, i in mf.items() if _is_list(i.annotation)),
        datetime_fields=datetime_fields(model), defaults=defaults, factories=factories,
        common=common | ({"src", "dst"} if kind == "edge" else set()),
        windows=(TIME_WINDOWS.get(name, ()) if kind == "node" else EDGE_TIME_WINDOWS)
        + (("valid_from", "valid_to"),),
    )
    schema.prefill = {**defaults, **{n: f() for n, f in factories.items()}}
    schema.dump_exclude = {"__all__": set(schema.common)}
    schema.rows_exclude = {"__all__": set(schema.common) - {"valid_from", "valid_to"}}
    schema.has_props = any(f not in schema.common for f in fields)
    _SCHEMAS[key] = schema
    return schema


def _loc_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "-"


def _expected(err: Any, schema: RowSchema, field_name: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"a value for required field {field_name!r}"
    if kind == "extra_forbidden":
        return "one of " + ", ".join(schema.fields)
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"a number {op} {bound:g}" if isinstance(bound, int | float) else f"a number {op} {bound}"
    if kind == "timezone_aware":
        return "a timestamp with a time zone offset such as +01:00 or Z"
    if kind.startswith("datetime") or kind.startswith("date_"):
        return "an ISO-8601 timestamp with a time zone offset, e.g. 2026-03-02T06:00:00+01:00"
    if kind.startswith("float") or kind.startswith("int"):
        return "a number"
    if kind in ("enum", "literal_error"):
        return f"one of {ctx.get('expected', '?')}"
    if kind == "string_too_short":
        return f"at least {ctx.get('min_length', 1)} character(s)"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind.startswith("string"):
        return "a string"
    if kind.startswith("list"):
        return "a list"
    if kind.startswith("bool"):
        return "true or false"
    return str(err.get("msg", "a valid value"))


def _pydantic_error(src: Source, line: int, loc: Sequence[int | str], err: Any, schema: RowSchema) -> LoadError:
    path = _loc_path(loc)
    fname = str(loc[0]) if loc else "-"
    if err["type"] == "missing":
        found = "an empty cell" if src.columns is not None else "nothing"
    else:
        found = show(err.get("input"))
    return src.error(line, path, str(err["msg"]), _expected(err, schema, fname), found)


# ---------------------------------------------------------------------------------------------
# Cross-row checks
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Deletions:
    """What an input removes: node ids and edge keys, each with the place it was asked for."""

    nodes: dict[str, tuple[Source, int]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], tuple[Source, int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.edges)


def _parse_ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class GraphValidator:
    """Checks spanning rows: feed node batches first, then edge batches, then call :meth:`finish`.

    Memory: one small entry per node id of the input (for uniqueness and endpoint classes) and the
    windows of SOP versions; records themselves are not kept.
    """

    def __init__(
        self, errors: ErrorCollector, store: GraphStore | None = None, deletions: Deletions | None = None
    ) -> None:
        self.errors = errors
        self.store = store
        self.deletions = deletions or Deletions()
        # id -> (source, line) of its first row; the class comes from the source (one per class)
        self._ids: dict[str, tuple[Source, int]] = {}
        self._src_cls: dict[Source, str] = {}
        self._store_has_data = store is not None and store.counts().nodes > 0
        #: id -> class of every id above, for whole files of edges (:meth:`accept_edge_columns`)
        self._class_by_id: dict[str, str] | None = None
        self._sop_versions: dict[str, tuple[datetime, datetime | None, Source, int]] = {}
        self._version_of: dict[str, list[tuple[str, Source, int]]] = {}
        self.nodes_seen = 0
        self.edges_seen = 0

    def _class_of_source(self, src: Source, cls: str) -> None:
        known = self._src_cls.setdefault(src, cls)
        if known != cls:
            raise ValueError(f"source {src.name} was used for {known} and {cls}; use one Source per class")

    def class_of(self, node_id: str) -> str | None:
        """The class of an id seen in the input so far (None when unseen)."""
        hit = self._ids.get(node_id)
        return None if hit is None else self._src_cls[hit[0]]

    # -- nodes -------------------------------------------------------------------------------
    def note_node_id(self, node_id: Any, cls: str, src: Source, line: int) -> None:
        """Remember the id of a row that failed typing, so edges to it are not reported too."""
        self._class_of_source(src, cls)
        if isinstance(node_id, str) and node_id.strip() and node_id.strip() not in self._ids:
            self._ids[node_id.strip()] = (src, line)
            self._class_by_id = None

    def check_nodes(self, schema: RowSchema, typed: Sequence[dict[str, Any]], places: Sequence[tuple[Source, int]]
                    ) -> list[NodeRecord]:
        """Records of the rows that pass; problems go to the error collector."""
        return schema.to_nodes(self.accept_nodes(schema, typed, places))

    def accept_nodes(self, schema: RowSchema, typed: Sequence[dict[str, Any]],
                     places: Sequence[tuple[Source, int]]) -> list[dict[str, Any]]:
        """The typed rows that pass (no records built: a validation without a write needs none)."""
        good: list[dict[str, Any]] = []
        ids = self._ids
        deleted = self.deletions.nodes
        cls = schema.name
        ends = schema.window_ends
        is_sop = cls == "SOPVersion"
        for src in {p[0] for p in places}:
            self._class_of_source(src, cls)
        self.nodes_seen += len(typed)
        self._class_by_id = None
        for d, place in zip(typed, places, strict=True):
            nid = d["id"]
            ok = True
            first = ids.get(nid)
            if first is None:
                ids[nid] = place
            else:
                ok = False
                src, line = place
                fsrc, fline = first
                if isinstance(first, _FilePlace):
                    fline = first.line_of(nid)
                self.errors.add(src.error(
                    line, "id", f"duplicate id {nid!r}; first defined at {fsrc.name}:{fline} as "
                    f"{self._src_cls[fsrc]}", "ids unique across the bundle", show(nid)))
            if deleted and nid in deleted:
                ok = False
                dsrc, dline = deleted[nid]
                self.errors.add(place[0].error(
                    place[1], "id", f"{nid!r} is both upserted here and deleted at {dsrc.name}:{dline}",
                    "an id not listed in _deleted_nodes", show(nid)))
            for end in ends:
                if end in d:
                    ok = self._check_windows(schema, d, *place) and ok
                    break
            if is_sop:
                self._sop_versions[nid] = (d["effective_from"], d.get("effective_to"), *place)
            if ok:
                good.append(d)
        if self._store_has_data and good:
            assert self.store is not None
            known = self.store.node_classes([d["id"] for d in good])
            if known:
                keep: list[dict[str, Any]] = []
                for d in good:
                    had = known.get(d["id"])
                    if had is not None and had != cls:
                        src, line = ids[d["id"]]
                        self.errors.add(src.error(
                            line, "id", f"id {d['id']!r} already exists in the store as a {had}; "
                            "an id cannot change class", had, cls))
                    else:
                        keep.append(d)
                good = keep
        return good

    def accept_node_columns(self, cls: str, src: Source, ids: Sequence[str]) -> bool:
        """For a whole file of nodes whose values are already typed and checked row by row
        (``ids``: one a row, the first on line 2 of ``src``): whether the ids are new to the
        input and do not change a stored node's class, and nothing needs a row-by-row check
        (deletions, SOP versions). True records the ids as the row path does; False changes
        nothing, and the caller checks the rows one by one."""
        if self.deletions or cls == "SOPVersion":
            return False
        seen = self._ids
        if len(set(ids)) < len(ids) or not seen.keys().isdisjoint(ids):
            return False
        if any(had != cls for had in self._store_classes(ids).values()):
            return False
        self._class_of_source(src, cls)
        seen.update(zip(ids, itertools.repeat(_FilePlace(src, ids)), strict=False))
        self.nodes_seen += len(ids)
        self._class_by_id = None
        return True

    def _check_windows(self, schema: RowSchema, d: Mapping[str, Any], src: Source, line: int) -> bool:
        ok = True
        for start, end in schema.windows:
            a, b = d.get(start), d.get(end)
            if a is not None and b is not None and b < a:
                ok = False
                self.errors.add(src.error(
                    line, end, f"{end} is before {start}", f"a time at or after {start}={a.isoformat()}",
                    b.isoformat()))
        return ok

    # -- edges -------------------------------------------------------------------------------
    def check_edges(self, schema: RowSchema, typed: Sequence[dict[str, Any]], places: Sequence[tuple[Source, int]]
                    ) -> list[EdgeRecord]:
        """Records of the edge rows that pass; problems go to the error collector."""
        return schema.to_edges(self.accept_edges(schema, typed, places))

    def accept_edges(self, schema: RowSchema, typed: Sequence[dict[str, Any]],
                     places: Sequence[tuple[Source, int]]) -> list[dict[str, Any]]:
        """The typed edge rows that pass, without building records."""
        rel = schema.name
        rdef = RELATIONS[rel]
        domain, range_ = frozenset(rdef.domain), frozenset(rdef.range)
        ids = self._ids
        src_cls = self._src_cls
        missing: set[str] = set()
        if self._store_has_data:
            for d in typed:
                if d["src"] not in ids:
                    missing.add(d["src"])
                if d["dst"] not in ids:
                    missing.add(d["dst"])
        from_store = self._store_classes(missing)
        deleted_nodes = self.deletions.nodes
        deleted_edges = self.deletions.edges
        has_deletions = bool(deleted_nodes or deleted_edges)
        ends = schema.window_ends
        is_version_of = rel == "VERSION_OF"
        good: list[dict[str, Any]] = []
        self.edges_seen += len(typed)
        for d, place in zip(typed, places, strict=True):
            s, t = d["src"], d["dst"]
            hs, ht = ids.get(s), ids.get(t)
            cs = src_cls[hs[0]] if hs is not None else from_store.get(s)
            ct = src_cls[ht[0]] if ht is not None else from_store.get(t)
            ok = cs in domain and ct in range_
            if not ok:
                self._endpoint_errors(rel, place, (("src", s, cs, rdef.domain), ("dst", t, ct, rdef.range)))
            for end in ends:
                if end in d:
                    ok = self._check_windows(schema, d, *place) and ok
                    break
            if has_deletions:
                ok = self._deletion_errors(rel, s, t, place) and ok
            if is_version_of:
                self._version_of.setdefault(s, []).append((t, *place))
            if ok:
                good.append(d)
        return good

    def _endpoint_errors(self, rel: str, place: tuple[Source, int],
                         ends: Iterable[tuple[str, str, str | None, tuple[str, ...]]]) -> None:
        src, line = place
        for column, node_id, node_cls, allowed in ends:
            if node_cls is None:
                if node_id in self.deletions.nodes:
                    continue  # reported by the deletion check
                self.errors.add(src.error(
                    line, column, f"{rel} {column} {node_id!r} is neither in the bundle nor in the store",
                    f"the id of an existing {' or '.join(allowed)}", show(node_id)))
            elif node_cls not in allowed:
                side = "source (domain)" if column == "src" else "target (range)"
                self.errors.add(src.error(
                    line, column, f"{rel} {side} {node_id!r} has the wrong class", " or ".join(allowed), node_cls))

    def _deletion_errors(self, rel: str, s: str, t: str, place: tuple[Source, int]) -> bool:
        src, line = place
        ok = True
        for column, node_id in (("src", s), ("dst", t)):
            hit = self.deletions.nodes.get(node_id)
            if hit is not None:
                ok = False
                self.errors.add(src.error(
                    line, column, f"{rel} {column} {node_id!r} is deleted at {hit[0].name}:{hit[1]}",
                    "an id that stays in the graph", show(node_id)))
        key = (s, rel, t)
        ehit = self.deletions.edges.get(key)
        if ehit is not None:
            ok = False
            self.errors.add(src.error(
                line, "-", f"edge {key} is both upserted here and deleted at {ehit[0].name}:{ehit[1]}",
                "an edge not listed in _deleted_edges", "both"))
        return ok

    def accept_edge_columns(self, rel: str, src: Sequence[str], dst: Sequence[str], rows: int) -> bool:
        """For a whole file of edges whose values are already typed (``src``/``dst``: its
        distinct endpoint ids): whether every endpoint exists with a class the relation allows,
        and nothing needs a row-by-row check (deletions, VERSION_OF). True also counts the
        file's edges as seen; False changes nothing, and the caller checks the rows one by one."""
        if self.deletions or rel == "VERSION_OF":
            return False
        rdef = RELATIONS[rel]
        if self._class_by_id is None:  # built once, after the node files
            src_cls = self._src_cls
            self._class_by_id = {i: src_cls[place[0]] for i, place in self._ids.items()}
        known = self._class_by_id.get
        for ids, allowed in ((src, frozenset(rdef.domain)), (dst, frozenset(rdef.range))):
            classes = set(map(known, ids))
            if None in classes:
                missing = [x for x in ids if known(x) is None]
                found = self._store_classes(missing)
                if len(found) < len(missing):
                    return False
                classes = (classes - {None}) | set(found.values())
            if not allowed.issuperset(classes):
                return False
        self.edges_seen += rows
        return True

    def _store_classes(self, ids: Iterable[str]) -> dict[str, str]:
        if not self._store_has_data:
            return {}
        assert self.store is not None
        pending = list(ids)
        found: dict[str, str] = {}
        for i in range(0, len(pending), LOOKUP_BATCH):
            found.update(self.store.node_classes(pending[i:i + LOOKUP_BATCH]))
        return found

    # -- whole-input checks ------------------------------------------------------------------
    def finish(self) -> None:
        """SOP version windows: versions of one SOP (grouped by VERSION_OF, from the input and
        the store) may not overlap."""
        versions = dict(self._sop_versions)
        groups: dict[str, set[str]] = {}
        for ver, targets in self._version_of.items():
            for sop, _, _ in targets:
                groups.setdefault(sop, set()).add(ver)
        store = self.store if self._store_has_data else None
        if store is not None:
            deleted_edges = self.deletions.edges
            for ver in self._sop_versions:
                if ver not in self._version_of:
                    for e in store.neighbours(ver, ["VERSION_OF"], Direction.OUT):
                        if e.key not in deleted_edges:
                            groups.setdefault(e.dst, set()).add(ver)
            for sop in list(groups):
                others = [e.src for e in store.neighbours(sop, ["VERSION_OF"], Direction.IN)
                          if e.key not in deleted_edges and e.src not in self.deletions.nodes]
                unseen = [v for v in others if v not in versions]
                for v, rec in store.get_nodes(unseen).items():
                    start = _parse_ts(rec.props.get("effective_from"))
                    if start is not None:
                        versions[v] = (start, _parse_ts(rec.props.get("effective_to")), Source("<store>"), 0)
                groups[sop].update(others)
        for sop, members in sorted(groups.items()):
            windows = sorted((versions[v][0], v) for v in members if v in versions)
            for (_, a_id), (b_from, b_id) in itertools.pairwise(windows):
                a_to = versions[a_id][1]
                both_stored = versions[a_id][2].name == versions[b_id][2].name == "<store>"
                if (a_to is None or a_to > b_from) and not both_stored:
                    # report on whichever of the two rows comes from the input
                    vid = b_id if versions[b_id][2].name != "<store>" else a_id
                    other = a_id if vid == b_id else b_id
                    _, _, src, line = versions[vid]
                    self.errors.add(src.error(
                        line, "effective_from" if vid == b_id else "effective_to",
                        f"SOP {sop!r}: version {vid!r} overlaps version {other!r}",
                        f"windows of one SOP that do not overlap ({a_id} ends "
                        f"{a_to.isoformat() if a_to else 'never'})",
                        f"{b_id} starts {b_from.isoformat()}"))

    def knows(self, node_id: str) -> bool:
        return node_id in self._ids


# ---------------------------------------------------------------------------------------------
# Record-level API for importers
# ---------------------------------------------------------------------------------------------


def node_to_row(rec: NodeRecord) -> dict[str, Any]:
    row: dict[str, Any] = dict(rec.props)
    row.update(id=rec.id, name=rec.name, plant=rec.plant, source_system=rec.source_system,
               valid_from=rec.valid_from, valid_to=rec.valid_to)
    return {k: v for k, v in row.items() if v is not None}


def edge_to_row(rec: EdgeRecord) -> dict[str, Any]:
    row: dict[str, Any] = dict(rec.props)
    row.update(src=rec.src, dst=rec.dst, source_system=rec.source_system,
               valid_from=rec.valid_from, valid_to=rec.valid_to)
    return {k: v for k, v in row.items() if v is not None}


def _group_by(items: Iterable[Any], key: Callable[[Any], str]) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = {}
    for i, item in enumerate(items, start=1):
        out.setdefault(key(item), []).append((i, item))
    return out


#: Checked rows of one class or relation: its schema and the typed rows that passed, in input order.
CheckedGroup = tuple[RowSchema, list[dict[str, Any]]]


#: Rows of one class or relation checked at a time by :func:`check_rows`: a multiple of the
#: writers' batch (``bundle.DEFAULT_BATCH``), so that a group is written in the same batches
#: whether it is checked in parts or whole.
CHECK_CHUNK = 50_000
_Item = typing.TypeVar("_Item")


def _chunks(group: list[_Item]) -> Iterator[list[_Item]]:
    if len(group) <= CHECK_CHUNK:
        yield group
        return
    for k in range(0, len(group), CHECK_CHUNK):
        yield group[k:k + CHECK_CHUNK]


def _checked_parts(
    schema: RowSchema, group: list[tuple[int, tuple[str, dict[str, Any]]]], src: Source, errors: ErrorCollector,
    accept: Callable[[RowSchema, list[Any], list[tuple[Source, int]]], list[Any]],
    on_bad: Callable[[dict[str, Any], int], None] | None = None,
) -> Iterator[list[Any]]:
    """Each part of one class's or relation's rows (``CHECK_CHUNK`` at a time) typed, then the
    rows of it that ``accept`` passes; ``on_bad(row, line)`` for each row that does not type."""
    for part in _chunks(group):
        rows = [r for _, (_, r) in part]
        places = [(src, i) for i, _ in part]
        typed, bad = schema.validate(rows, places, errors)
        if on_bad is not None:
            for j in bad:
                on_bad(rows[j], places[j][1])
        good = [(t, p) for t, p in zip(typed, places, strict=True) if t is not None]
        yield accept(schema, [t for t, _ in good], [p for _, p in good])


def _hand_out(parts: Iterator[list[Any]], is_nodes: bool, schema: RowSchema, errors: ErrorCollector,
              on_group: Callable[[bool, RowSchema, list[Any]], None] | None) -> list[Any]:
    """All the rows ``parts`` pass, each part given to ``on_group`` as it passes while no error
    has been seen."""
    accepted: list[Any] = []
    for passed in parts:
        accepted.extend(passed)
        if on_group is not None and not errors:
            on_group(is_nodes, schema, passed)
    return accepted


def check_rows(
    nodes: Iterable[tuple[str, dict[str, Any]]],
    edges: Iterable[tuple[str, dict[str, Any]]],
    store: GraphStore | None = None,
    deletions: Deletions | None = None,
    cap: int = 200,
    on_group: Callable[[bool, RowSchema, list[Any]], None] | None = None,
) -> tuple[list[CheckedGroup], list[CheckedGroup], ErrorCollector]:
    """Type and check an importer's rows (``(class, row)`` and ``(relation, row)``, each row as
    :func:`node_to_row` / :func:`edge_to_row` make them) with the bundle rules; returns the rows
    that pass, grouped by class and relation in order of first appearance, and the errors.

    ``on_group(is_nodes, schema, typed)`` gets the rows of each group as soon as they are checked
    (a group in parts of ``CHECK_CHUNK`` rows), while no error has been seen (nodes first, then
    edges): a writer can start before the last check, and must drop what it got when the errors
    returned are not empty.

    Errors name ``<nodes>`` / ``<edges>`` and the 1-based position of the row in its input. The
    typed rows go to the store's bulk upserts as they are (``RowSchema.to_node_rows``), so an
    import builds no record object per row."""
    errors = ErrorCollector(cap)
    gv = GraphValidator(errors, store, deletions)
    out_nodes: list[CheckedGroup] = []
    out_edges: list[CheckedGroup] = []
    src_e = Source("<edges>")
    for cls, group in _group_by(nodes, itemgetter(0)).items():
        src_n = Source("<nodes>")  # one Source per class: the validator reads classes from it
        if cls not in ENTITY_CLASSES:
            for i, _ in group:
                errors.add(src_n.error(i, "cls", "unknown class", "one of " + ", ".join(ENTITY_CLASSES), cls))
            continue
        schema = row_schema("node", cls)

        def note(row: dict[str, Any], line: int, cls: str = cls, src: Source = src_n) -> None:
            gv.note_node_id(row.get("id"), cls, src, line)

        parts = _checked_parts(schema, group, src_n, errors, gv.accept_nodes, note)
        out_nodes.append((schema, _hand_out(parts, True, schema, errors, on_group)))
    for rel, egroup in _group_by(edges, itemgetter(0)).items():
        if rel not in RELATIONS:
            for i, _ in egroup:
                errors.add(src_e.error(i, "rel", "unknown relation", "one of " + ", ".join(RELATIONS), rel))
            continue
        schema = row_schema("edge", rel)
        eparts = _checked_parts(schema, egroup, src_e, errors, gv.accept_edges)
        out_edges.append((schema, _hand_out(eparts, False, schema, errors, on_group)))
    gv.finish()
    return out_nodes, out_edges, errors


def check_records(
    nodes: Iterable[NodeRecord],
    edges: Iterable[EdgeRecord],
    store: GraphStore | None = None,
    deletions: Deletions | None = None,
    cap: int = 200,
) -> tuple[list[NodeRecord], list[EdgeRecord], ErrorCollector]:
    """Validate records built by an importer; returns normalised records and the errors
    (:func:`check_rows` of the records' rows)."""
    node_groups, edge_groups, errors = check_rows(
        ((r.cls, node_to_row(r)) for r in nodes), ((r.rel, edge_to_row(r)) for r in edges), store, deletions, cap)
    out_nodes = [n for schema, typed in node_groups for n in schema.to_nodes(typed)]
    out_edges = [e for schema, typed in edge_groups for e in schema.to_edges(typed)]
    return out_nodes, out_edges, errors


def validate_records(
    nodes: Iterable[NodeRecord],
    edges: Iterable[EdgeRecord],
    store: GraphStore | None = None,
    deletions: Deletions | None = None,
    cap: int = 200,
) -> list[LoadError]:
    """Every problem with records an importer built (capped at ``cap``); empty when they are fine."""
    return check_rows(((r.cls, node_to_row(r)) for r in nodes), ((r.rel, edge_to_row(r)) for r in edges),
                      store, deletions, cap)[2].errors


def known_classes() -> list[str]:
    return sorted(ENTITY_CLASSES)


def known_relations() -> list[str]:
    return sorted(RELATIONS)


__all__ = [
    "CheckedGroup", "Deletions", "GraphValidator", "RowSchema", "Source", "check_records", "check_rows", "row_schema",
    "validate_records",
]
