"""Draft records collected by an importer, validated against the ontology, written all or nothing.

Shared by the B2MML, table and RDF importers. An importer adds nodes and edges as plain dicts,
each with the place it came from (:class:`Origin`); :meth:`ImportBatch.validate` merges them
into rows, types and checks those with the bundle loader's rules (the ontology's pydantic models)
and collects every error with its origin; :func:`write_validated` upserts the typed rows in one
store transaction.

Nodes with the same id are merged (later explicit values win); ``defaults`` only fill what
nothing else set, which is how implicit entities (a lot only named in a production response) are
kept from overwriting what an explicit message or the store already says about them. A node that
already exists in the store is merged over its stored properties, so an import that only knows
some facts of an entity does not erase the others.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ValidationError

from ontology.models import ENTITY_CLASSES, RELATIONS
from store.base import EdgeRecord, GraphStore, NodeRecord

if TYPE_CHECKING:
    from graph_loader.pipeline import RowSink
    from graph_loader.validation import CheckedGroup, RowSchema

#: What gets each checked group as it comes: (is a node group, its schema, its typed rows).
GroupFn = Callable[[bool, "RowSchema", list[Any]], None]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection during a bulk import: an import holds millions of small
    objects that the collector would traverse again and again, and creates no cycles worth
    collecting before it ends. Back on afterwards whatever happens."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class ImportError_(Exception):
    """Base of importer failures a user can act on (bad input, unsafe input, bad mapping)."""


class Origin(NamedTuple):
    """Where a draft came from: file, line (1-based, 0 when unknown), column and element/JSON path.
    A named tuple, not a dataclass: a big import makes one per record, and a tuple is made in half
    the time of a frozen dataclass."""

    file: str
    line: int = 0
    path: str = ""
    column: str | int | None = None

    def where(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        if self.column not in (None, ""):
            loc += f":{self.column}"
        return f"{loc} {self.path}".rstrip()


class Problem(BaseModel):
    """One error or unmapped item, with its place."""

    file: str
    line: int = 0
    column: str | None = None
    path: str = ""
    message: str
    count: int = 1

    def __str__(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        if self.column:
            loc += f":{self.column}"
        more = f" (x{self.count})" if self.count > 1 else ""
        where = f" {self.path}" if self.path else ""
        return f"{loc}{where}: {self.message}{more}"


def problem(origin: Origin, message: str) -> Problem:
    col = None if origin.column in (None, "") else str(origin.column)
    return Problem(file=origin.file, line=origin.line, column=col, path=origin.path, message=message)


class ProblemLog:
    """Problems collected during an import; identical (file, path, message) items are counted once
    so that a million lots with the same vendor extension give one report line, not a million."""

    def __init__(self, cap: int = 10_000) -> None:
        self._items: dict[tuple[str, str, str], Problem] = {}
        self.cap = cap
        self.dropped = 0

    def add(self, origin: Origin, message: str) -> None:
        key = (origin.file, origin.path, message)
        seen = self._items.get(key)
        if seen is not None:
            seen.count += 1
            return
        if len(self._items) >= self.cap:
            self.dropped += 1
            return
        self._items[key] = problem(origin, message)

    def items(self) -> list[Problem]:
        return sorted(self._items.values(), key=lambda p: (p.file, p.line, p.path, p.message))

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class NodeDraft:
    cls: str
    id: str
    origin: Origin
    props: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    explicit: bool = True


@dataclass(slots=True)
class EdgeDraft:
    src: str
    rel: str
    dst: str
    origin: Origin
    props: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DraftRows:
    """The drafts of a batch as the rows the bundle rules check (``(class, row)``, ``(relation,
    row)``), with where each came from and the errors found while merging them."""

    nodes: list[tuple[str, dict[str, Any]]]
    edges: list[tuple[str, dict[str, Any]]]
    errors: list[Problem]
    more_errors: int = 0
    node_origins: list[Origin] = field(default_factory=list)
    edge_origins: list[Origin] = field(default_factory=list)


@dataclass(slots=True)
class Validated:
    """What passed the checks, as typed rows per class and relation (what the store's bulk upserts
    take), and every error. Records are built only for a caller that asks for them."""

    node_groups: list[CheckedGroup]
    edge_groups: list[CheckedGroup]
    errors: list[Problem]
    more_errors: int = 0

    @property
    def nodes(self) -> list[NodeRecord]:
        return [n for schema, typed in self.node_groups for n in schema.to_nodes(typed)]

    @property
    def edges(self) -> list[EdgeRecord]:
        return [e for schema, typed in self.edge_groups for e in schema.to_edges(typed)]

    @property
    def node_count(self) -> int:
        return sum(len(typed) for _, typed in self.node_groups)

    @property
    def edge_count(self) -> int:
        return sum(len(typed) for _, typed in self.edge_groups)

    def entities_by_class(self) -> dict[str, int]:
        return {schema.name: len(typed) for schema, typed in self.node_groups if typed}

    def relations_by_type(self) -> dict[str, int]:
        return {schema.name: len(typed) for schema, typed in self.edge_groups if typed}


_COMMON_ATTRS = ("name", "plant", "source_system", "valid_from", "valid_to")


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (found {got!r})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


class ImportBatch:
    """Everything one import wants to write, before validation."""

    def __init__(self, source_system: str = "import", max_errors: int = 200) -> None:
        self.source_system = source_system
        self.nodes: dict[str, NodeDraft] = {}
        self.edges: dict[tuple[str, str, str], EdgeDraft] = {}
        self.max_errors = max_errors

    # -- building -----------------------------------------------------------------------------
    def add_node(
        self,
        cls: str,
        node_id: str,
        origin: Origin,
        props: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        explicit: bool = True,
    ) -> NodeDraft:
        """Add or merge a node. An implicit node never changes the class of an explicit one."""
        draft = self.nodes.get(node_id)
        clean = {k: v for k, v in props.items() if v is not None} if props else {}
        if draft is None:
            draft = NodeDraft(cls=cls, id=node_id, origin=origin, explicit=explicit)
            self.nodes[node_id] = draft
        elif explicit and not draft.explicit:
            draft.cls, draft.origin, draft.explicit = cls, origin, True
        elif explicit and draft.cls != cls:
            # two explicit definitions disagree: keep the first, validation reports the clash
            draft.defaults.setdefault("__class_clash__", (cls, origin))
            return draft
        if explicit:
            draft.props.update(clean)
        else:  # an implicit mention only fills what nothing else says
            for k, v in clean.items():
                draft.defaults.setdefault(k, v)
        if defaults:
            for k, v in defaults.items():
                if v is not None:
                    draft.defaults.setdefault(k, v)
        return draft

    def add_edge(
        self,
        src: str,
        rel: str,
        dst: str,
        origin: Origin,
        props: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> EdgeDraft:
        key = (src, rel, dst)
        draft = self.edges.get(key)
        if draft is None:
            draft = EdgeDraft(src=src, rel=rel, dst=dst, origin=origin)
            self.edges[key] = draft
        if props:
            draft.props.update({k: v for k, v in props.items() if v is not None})
        if defaults:
            for k, v in defaults.items():
                if v is not None:
                    draft.defaults.setdefault(k, v)
        return draft

    def __len__(self) -> int:
        return len(self.nodes) + len(self.edges)

    # -- validation ---------------------------------------------------------------------------
    def validate(self, store: GraphStore | None = None, on_group: GroupFn | None = None) -> Validated:
        """Validate every draft with the ontology; nothing is written here (``on_group``: as
        :func:`~graph_loader.validation.check_rows` takes it, while the drafts had no error)."""
        return check_like_a_bundle(self.rows(store), store, on_group)

    def rows(self, store: GraphStore | None = None) -> DraftRows:
        """The drafts merged over what the store holds, as rows for the bundle rules; the errors
        only an import can make (class clashes, unknown classes and relations, edge ends in
        neither the import nor the store) are found here."""
        errors: list[Problem] = []
        dropped = 0

        def err(origin: Origin, message: str) -> None:
            nonlocal dropped
            if len(errors) < self.max_errors:
                errors.append(problem(origin, message))
            else:
                dropped += 1

        stored: dict[str, NodeRecord] = {}
        if store is not None and self.nodes:
            stored = store.get_nodes(list(self.nodes))
        nodes: list[tuple[str, dict[str, Any]]] = []
        node_origins: list[Origin] = []
        edge_origins: list[Origin] = []
        classes: dict[str, str] = {}
        source_system = self.source_system
        for draft in self.nodes.values():
            clash = draft.defaults.get("__class_clash__")
            if clash is not None:
                other_cls, other_origin = clash
                err(other_origin, f"id {draft.id!r} is a {other_cls} here but a {draft.cls} at "
                                  f"{draft.origin.where()}")
            base: dict[str, Any] = {}
            old = stored.get(draft.id)
            if old is not None:
                if old.cls != draft.cls:
                    if not draft.explicit:
                        classes[draft.id] = old.cls
                        continue  # an implicit mention of a stored node: nothing to change
                    err(draft.origin, f"id {draft.id!r} is a {old.cls} in the store, not a {draft.cls}")
                    continue
                base = stored_props(old)
            if draft.cls not in ENTITY_CLASSES:
                err(draft.origin, f"unknown class {draft.cls!r}")
                continue
            # defaults under the stored values under this import's values; the id is the
            # record's, never a property (typed and checked by check_like_a_bundle)
            row: dict[str, Any] = {"source_system": source_system}
            if draft.defaults:
                row.update({k: v for k, v in draft.defaults.items() if not k.startswith("__")})
            if base:
                row.update(base)
            row.update(draft.props)
            row["id"] = draft.id
            if not row["source_system"]:
                row["source_system"] = source_system
            node_origins.append(draft.origin)
            nodes.append((draft.cls, _without_none(row)))
            classes[draft.id] = draft.cls

        if store is not None:
            keys = self.edges.keys()
            missing = set(map(itemgetter(0), keys)).union(map(itemgetter(2), keys)).difference(classes)
            if missing:
                classes.update(store.node_classes(sorted(missing)))
        edges: list[tuple[str, dict[str, Any]]] = []
        # the loop below runs once per relation (half a million at the medium plant): the
        # relation's ends are looked up once per relation name, and the errors are worked out
        # only for an edge that has one
        ends = {name: (r.domain, r.range) for name, r in RELATIONS.items()}
        class_of = classes.get
        add_edge, add_origin = edges.append, edge_origins.append
        for d in self.edges.values():
            got = ends.get(d.rel)
            if got is None:
                err(d.origin, f"unknown relation {d.rel!r}")
                continue
            src_cls, dst_cls = class_of(d.src), class_of(d.dst)
            if src_cls not in got[0] or dst_cls not in got[1]:  # None is in neither
                for end, node_id, cls, allowed in (("source", d.src, src_cls, got[0]),
                                                   ("target", d.dst, dst_cls, got[1])):
                    if cls is None:
                        err(d.origin, f"{d.rel}: {end} {node_id!r} is neither in this import nor in the store")
                    elif cls not in allowed:
                        err(d.origin, f"{d.rel}: {end} {node_id!r} is a {cls}, expected {' or '.join(allowed)}")
                continue
            row = {"source_system": source_system, **d.defaults, **d.props}
            if not row["source_system"]:
                row["source_system"] = source_system
            row["src"], row["dst"] = d.src, d.dst
            add_origin(d.origin)
            add_edge((d.rel, _without_none(row)))
        return DraftRows(nodes=nodes, edges=edges, errors=errors, more_errors=dropped,
                         node_origins=node_origins, edge_origins=edge_origins)


def _without_none(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without its None values (the drafts hold none but what resolving links added: one
    scan in C for the many rows that have none)."""
    if None in row.values():
        return {k: v for k, v in row.items() if v is not None}
    return row


def check_like_a_bundle(drafted: DraftRows, store: GraphStore | None, on_group: GroupFn | None = None) -> Validated:
    """Run the bundle loader's row checks (the same rules as ``plantgraph load``) on the rows an
    importer built, mapping each error back to the place the row came from. ``on_group`` gets
    the checked groups as they come while nothing has failed (:func:`check_rows`)."""
    from graph_loader.validation import check_rows

    node_groups, edge_groups, collector = check_rows(drafted.nodes, drafted.edges, store,
                                                     on_group=None if drafted.errors else on_group)
    errors = list(drafted.errors)
    for e in collector.errors:
        pool = drafted.node_origins if e.file == "<nodes>" else drafted.edge_origins
        origin = pool[e.line - 1] if 0 < e.line <= len(pool) else Origin(e.file, 0)
        detail = f"{e.column}: {e.message}"
        if e.expected is not None:
            detail += f" (expected {e.expected}, found {e.found})"
        errors.append(problem(origin, detail))
    return Validated(node_groups=node_groups, edge_groups=edge_groups, errors=errors,
                     more_errors=drafted.more_errors + collector.more)


def write_validated(store: GraphStore, validated: Validated, progress: Callable[[int], None] | None = None) -> None:
    """Write nodes then edges in one bulk transaction (as the bundle loader's: into an empty store
    it may hold it alone), all or nothing, as typed rows: no record object per row."""
    from graph_loader.pipeline import TxSink

    with store.bulk_transaction() as tx:
        sink = TxSink(tx)
        for groups, is_nodes in ((validated.node_groups, True), (validated.edge_groups, False)):
            for schema, typed in groups:
                send_group(sink, is_nodes, schema, typed, progress)


def send_group(sink: RowSink, is_nodes: bool, schema: RowSchema, typed: list[Any],
               progress: Callable[[int], None] | None = None) -> None:
    """One checked group to a writer (a transaction, or the pipe to one), as store rows in
    batches of the bundle loader's size."""
    from graph_loader.loader import DEFAULT_BATCH

    for i in range(0, len(typed), DEFAULT_BATCH):
        part = typed[i:i + DEFAULT_BATCH]
        if is_nodes:
            sink.nodes(schema.name, schema.to_node_rows(part))
        else:
            sink.edges(schema.name, schema.to_edge_rows(part))
        if progress is not None:
            progress(len(part))


def stored_props(node: NodeRecord) -> dict[str, Any]:
    """A stored node as the flat properties an import merges over: its props, then the common
    fields it has (times as ISO text)."""
    out = dict(node.props)
    for attr in _COMMON_ATTRS:
        val = getattr(node, attr)
        if val is not None:
            out[attr] = val.isoformat() if isinstance(val, datetime) else val
    return out


def records_to_rows(nodes: Iterable[NodeRecord]) -> list[dict[str, Any]]:
    """NodeRecords as flat dicts (common fields + props), for comparisons and exports."""
    return [{"cls": n.cls, "id": n.id, **stored_props(n)} for n in nodes]


__all__ = [
    "DraftRows", "EdgeDraft", "ImportBatch", "ImportError_", "NodeDraft", "Origin", "Problem", "ProblemLog",
    "Validated", "check_like_a_bundle", "paused_gc", "problem", "records_to_rows", "send_group", "stored_props",
    "write_validated",
]
