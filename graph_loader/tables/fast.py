"""The streaming path of a table import: batches of rows mapped column by column, validated with
the bundle loader's rules and written into one open transaction while the file is read.

It only ever answers for an import that succeeds. At the first sign of trouble (a row error, a
validation error, a business-key lookup, a class clash) it raises :class:`SlowPath`; the caller
rolls the transaction back and runs the full import, which holds the whole file and reports
every error exactly as before. So errors, reject files and lookups keep one implementation, and
a clean file is written with memory bounded by the batch (plus one small entry per id, as in the
bundle loader).

Same records as the full path: props are merged per id in row order (later values win), an id
that already exists in the store is merged over its stored record, edges are merged per
(source, relation, target), and the typed rows go through the same ``RowSchema`` and
``GraphValidator`` checks that ``check_rows`` applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from graph_loader.b2mml.records import paused_gc, stored_props
from graph_loader.errors import ErrorCollector
from graph_loader.pipeline import RowSink
from graph_loader.tables.mapping import Mapping, ValueSpec
from graph_loader.tables.readers import RowBatch, Table
from graph_loader.tables.rowmap import RowMapper, TableImportReport, _RowError
from graph_loader.validation import GraphValidator, Source, row_schema
from store.base import GraphStore, NodeRecord

#: Rows mapped, validated and written together.
BATCH_ROWS = 10_000
#: The report fields a streamed import fills.
COUNTS = ("rows_read", "rows_ok", "entities", "entities_by_class", "relations", "relations_by_type")


def _batches(table: Table, size: int) -> Iterator[RowBatch]:
    if table.batches is not None:
        yield from table.batches(size)
        return
    while True:
        chunk = list(islice(table.rows, size))
        if not chunk:
            return
        yield RowBatch([ln for ln, _ in chunk], rows=[r for _, r in chunk])


class SlowPath(Exception):
    """The streaming path cannot give the full path's answer (an error, a lookup, a clash)."""


class NeedsOwnWrites(SlowPath):
    """A second process met an id written earlier in this import: merging it needs the open
    transaction's view, which only the writing process has (the one-process stream does)."""


def applies(mapping: Mapping, store: GraphStore | None, dry_run: bool) -> bool:
    """Whether the streaming path may try: a writing import into the embedded store (whose reads
    in the writing thread see the open transaction), without business-key lookups (they need
    the whole file) and without SOP versions (their window checks span ids across batches)."""
    from store.embedded import EmbeddedStore

    if dry_run or not isinstance(store, EmbeddedStore):
        return False
    if any(e.class_ == "SOPVersion" for e in mapping.entities):
        return False
    return not any(r.type == "VERSION_OF" or r.from_.lookup is not None or r.to.lookup is not None
                   for r in mapping.relations)


class _Entity:
    def __init__(self, mapper: RowMapper, as_: str, cls: str, id_spec: ValueSpec,
                 props: list[tuple[str, ValueSpec]]) -> None:
        self.as_, self.cls = as_, cls
        self.read_id = mapper.column_reader(id_spec, "string")
        self.names = [n for n, _ in props]
        self.readers = [mapper.column_reader(s, mapper._kinds[(cls, n)]) for n, s in props]


class StreamImport:
    """One streaming import; :meth:`run` fills the report or raises :class:`SlowPath`."""

    def __init__(self, mapping: Mapping, store: GraphStore, sink: RowSink, file: str,
                 sees_own_writes: bool = True, batch_rows: int | None = None) -> None:
        self.m = mapping
        self.store = store
        self.sink = sink
        self.file = file
        #: False in a second process, whose store connection sees only committed data
        self.sees_own_writes = sees_own_writes
        self.batch_rows = batch_rows or BATCH_ROWS
        self.mapper = RowMapper(mapping)
        self.errors = ErrorCollector(1)
        self.gv = GraphValidator(self.errors, store)
        self.had_data = store.counts().nodes > 0
        self.src_sys = mapping.defaults.source_system
        self.ss_default = mapping.defaults.source_system or "table"
        self.entities = [_Entity(self.mapper, e.as_, e.class_, e.id, list(e.properties.items()))
                         for e in mapping.entities]
        self.sources: dict[str, Source] = {}
        self.by_class: dict[str, int] = {}
        self.edges: dict[tuple[str, str, str], tuple[dict[str, Any], int]] = {}
        self.by_rel: dict[str, int] = {}
        self.distinct = len({e.class_ for e in mapping.entities}) == len(mapping.entities)
        #: every draft already carries its final source system (the mapping's, never a mapped one)
        self.ss_set = bool(self.src_sys) and not any("source_system" in e.properties for e in mapping.entities)

    def _source(self, cls: str) -> Source:
        src = self.sources.get(cls)
        if src is None:
            src = self.sources[cls] = Source(self.file)  # one Source per class, as the validator wants
        return src

    def _check(self) -> None:
        if self.errors:
            raise SlowPath(str(self.errors.errors[0]) if self.errors.errors else "validation error")

    # -- rows -> merged drafts ------------------------------------------------------------------
    def run(self, table: Table, rep: TableImportReport, progress: Callable[[int], None] | None) -> None:
        n = 0
        for batch in _batches(table, self.batch_rows):
            before = n
            n += len(batch)
            if progress is not None and n // 10_000 > before // 10_000:
                progress(10_000 * (n // 10_000 - before // 10_000))
            self._batch(batch)
        if progress is not None:
            progress(n % 10_000)
        self._write_edges()
        self.gv.finish()
        self._check()
        rep.rows_read = rep.rows_ok = n
        rep.entities = sum(self.by_class.values())
        rep.entities_by_class = dict(self.by_class)
        rep.relations = sum(self.by_rel.values())
        rep.relations_by_type = dict(self.by_rel)

    def _batch(self, batch: RowBatch) -> None:
        if batch.ragged:
            raise SlowPath("a row could not be read")
        lines = batch.lines
        groups: dict[str, dict[str, tuple[dict[str, Any], int]]] = {}
        id_cols: list[list[str]] = []
        try:
            for ent in self.entities:
                ids = ent.read_id(batch)
                if any(i is None for i in ids):
                    raise SlowPath(f"{ent.cls} id is empty")
                id_cols.append([str(i) for i in ids])
                groups.setdefault(ent.cls, {})
            cols = [[rd(batch) for rd in ent.readers] for ent in self.entities]
        except _RowError as exc:
            raise SlowPath(str(exc)) from None
        n = len(batch)
        dicts = [self._props(ent.names, ecols, ids)
                 for ent, ecols, ids in zip(self.entities, cols, id_cols, strict=True)]
        unseen: set[str] = set()  # classes whose group holds only ids new to this import
        knows = self.gv.knows
        if self.distinct:
            seen: set[str] = set()
            for ent, ids, ds in zip(self.entities, id_cols, dicts, strict=True):
                id_set = set(ids)
                if len(id_set) == n and id_set.isdisjoint(seen) and not any(map(knows, ids)):
                    groups[ent.cls] = dict(zip(ids, zip(ds, lines, strict=True), strict=True))
                    unseen.add(ent.cls)
                else:
                    for k in range(n):
                        self._merge(groups, ent.cls, ids[k], ds[k], lines[k])
                seen |= id_set
        else:  # two entities of one class may name the same id: merge in the full path's order
            for k in range(n):
                for ent, ids, ds in zip(self.entities, id_cols, dicts, strict=True):
                    self._merge(groups, ent.cls, ids[k], ds[k], lines[k])
        if self.m.relations:
            self._relations(batch.rows(), lines, [dict(zip([e.as_ for e in self.entities], ids, strict=True))
                                          for ids in zip(*id_cols, strict=True)])
        for cls, group in groups.items():
            self._nodes(cls, group, cls in unseen)

    def _props(self, names: list[str], cols: list[list[Any]], ids: list[str]) -> list[dict[str, Any]]:
        """Each row's properties of one entity, as the full path builds them (the mapping's
        source system first, then the mapped values that are not None), and its id."""
        names, cols = [*names, "id"], [*cols, ids]
        if self.src_sys:
            names, cols = ["source_system", *names], [[self.src_sys] * len(ids), *cols]
        if any(None in c for c in cols):
            return [{k: v for k, v in zip(names, vals, strict=True) if v is not None}
                    for vals in zip(*cols, strict=True)]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]

    def _merge(self, groups: dict[str, dict[str, tuple[dict[str, Any], int]]], cls: str, nid: str,
               props: dict[str, Any], line: int) -> None:
        """One draft into its class's group: later values win, as ``ImportBatch.add_node``."""
        group = groups[cls]
        got = group.get(nid)
        if got is not None:
            got[0].update(props)
            return
        known = self.gv.class_of(nid)
        if known is None:
            known = next((c for c, g in groups.items() if c != cls and nid in g), None)
        if known is not None and known != cls:
            raise SlowPath(f"id {nid!r} is a {cls} and a {known}")
        group[nid] = (props, line)

    def _relations(self, rows: list[dict[str, Any]], lines: list[int], row_ids: list[dict[str, str]]) -> None:
        """Edges per row in mapping order (the order the full path adds them), merged by key."""
        mapper, edges = self.mapper, self.edges
        for row, line, ids in zip(rows, lines, row_ids, strict=True):
            for r in self.m.relations:
                try:
                    src, dst, props = mapper.relation(r, row, ids)
                except _RowError as exc:
                    raise SlowPath(str(exc)) from None
                if src is None or dst is None:
                    continue
                if isinstance(src, tuple) or isinstance(dst, tuple):  # pragma: no cover - lookups excluded
                    raise SlowPath("lookup")
                key = (src, r.type, dst)
                got = edges.get(key)
                if got is None:
                    edges[key] = (props, line)
                else:
                    got[0].update(props)

    # -- drafts -> typed rows -> the open transaction -------------------------------------------
    def _raw(self, nid: str, props: dict[str, Any], old: NodeRecord | None) -> dict[str, Any]:
        """The row ``ImportBatch.rows`` makes of this draft, which ``check_rows`` types."""
        row = stored_props(old) if old is not None else {}
        row.update(props)
        row["source_system"] = row.get("source_system") or self.ss_default
        row["id"] = nid
        return {k: v for k, v in row.items() if v is not None}

    def _nodes(self, cls: str, group: dict[str, tuple[dict[str, Any], int]], unseen: bool) -> None:
        if not group:
            return
        schema = row_schema("node", cls)
        src = self._source(cls)
        knows = self.gv.knows
        if not unseen and any(map(knows, group)):
            fresh = [nid for nid in group if not knows(nid)]
            again = [nid for nid in group if knows(nid)]
        else:
            fresh, again = list(group), []
        stored = self.store.get_nodes(fresh) if self.had_data else {}
        if again:  # written by an earlier batch of this import: merge over what was written
            if not self.sees_own_writes:
                raise NeedsOwnWrites(f"{again[0]!r} repeats an id of an earlier batch")
            stored.update(self.store.get_nodes(again))
        out: list[dict[str, Any]] = []
        ssd = self.ss_default
        for ids, gv in ((fresh, self.gv), (again, GraphValidator(self.errors, None))):
            if not ids:
                continue
            if stored:
                raws = [self._raw(nid, group[nid][0], stored.get(nid)) for nid in ids]
            elif self.ss_set and not again:  # the drafts are the rows (no None in them, id set)
                raws = [p for p, _ in group.values()]
            else:
                raws = []
                for nid in ids:
                    row = group[nid][0]
                    row["source_system"] = row.get("source_system") or ssd
                    raws.append(row)
            places = [(src, line) for _, line in group.values()] if not again else [(src, group[nid][1]) for nid in ids]
            typed, _ = schema.validate(raws, places, self.errors)
            self._check()
            good = gv.accept_nodes(schema, [t for t in typed if t is not None], places)
            self._check()
            out.extend(good)
        self.by_class[cls] = self.by_class.get(cls, 0) + len(fresh)
        self.sink.nodes(cls, schema.to_node_rows(out))

    def _write_edges(self) -> None:
        by_rel: dict[str, list[tuple[str, str, dict[str, Any], int]]] = {}
        for (s, rel, d), (props, line) in self.edges.items():
            by_rel.setdefault(rel, []).append((s, d, props, line))
        self.edges = {}
        src = Source(self.file)
        for rel, items in by_rel.items():
            schema = row_schema("edge", rel)
            written = 0
            for i in range(0, len(items), self.batch_rows):
                part = items[i:i + self.batch_rows]
                raws = []
                for s, d, props, _ in part:
                    row = dict(props)
                    row["source_system"] = row.get("source_system") or self.ss_default
                    row["src"], row["dst"] = s, d
                    raws.append({k: v for k, v in row.items() if v is not None})
                places = [(src, line) for *_, line in part]
                typed, _ = schema.validate(raws, places, self.errors)
                self._check()
                good = self.gv.accept_edges(schema, [t for t in typed if t is not None], places)
                self._check()
                self.sink.edges(rel, schema.to_edge_rows(good))
                written += len(good)
            self.by_rel[rel] = written


def produce(path: str, mapping: Mapping, opener: Callable[[], GraphStore], batch_rows: int,
            sink: RowSink) -> dict[str, Any]:
    """The second process's part of a pipelined import (:func:`graph_loader.pipeline.run_beside`):
    read, map and check, sending the rows to write; returns the report's counts. Its store
    connection sees the committed state, which is what the one-process stream sees of every id
    it has not written itself; an id it has written (a repeat across batches) raises
    :class:`NeedsOwnWrites`."""
    from graph_loader.tables.readers import open_table

    store = opener()
    try:
        with paused_gc():
            rep = TableImportReport()
            StreamImport(mapping, store, sink, path, sees_own_writes=False, batch_rows=batch_rows).run(
                open_table(Path(path), mapping), rep, _Cumulative(sink))
            return rep.model_dump(include=set(COUNTS))
    finally:
        store.close()


class _Cumulative:
    """Row counts as the pipe's (done, total) progress messages."""

    def __init__(self, sink: RowSink) -> None:
        self.sink = sink
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.sink.progress(self.done, 0)


__all__ = ["BATCH_ROWS", "NeedsOwnWrites", "SlowPath", "StreamImport", "applies", "produce"]
