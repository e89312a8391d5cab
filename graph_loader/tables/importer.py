"""Rows of a tabular export -> ontology entities and relations, with a declarative mapping.

Every row error names file, line and column; errors are collected. Without ``skip_bad_rows``
nothing is written when any row fails; with it the good rows are written and each bad row goes to
a reject file (the row's own columns plus ``_line`` and ``_reason``).

A writing import into the embedded store first tries the streaming path (``fast.py``: batches
mapped column-wise and written into an open transaction while reading); anything that path
cannot answer rolls back and runs the full path below, which holds the whole file.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from graph_loader.b2mml.records import ImportBatch, Origin, Problem, paused_gc, problem, write_validated
from graph_loader.pipeline import PIPELINE_MIN_BYTES, PipelineError, TxSink, run_beside, usable_cpus
from graph_loader.tables.mapping import Mapping
from graph_loader.tables.readers import Table, TableInputError, open_table
from graph_loader.tables.rowmap import RowMapper, TableImportReport, _Lookup, _RowDrafts, _RowErrors
from store.base import GraphStore


def _resolve_lookups(lookups: list[_Lookup], batch: ImportBatch, store: GraphStore | None) -> list[Problem]:
    """Business-key lookups against this import's entities and the store; each miss is a problem."""
    problems: list[Problem] = []
    index: dict[tuple[str, str], dict[Any, list[str]]] = {}

    def idx(cls: str, key: str) -> dict[Any, list[str]]:
        got = index.get((cls, key))
        if got is not None:
            return got
        d: dict[Any, list[str]] = {}
        for n in batch.nodes.values():
            if n.cls == cls:
                v = n.props.get(key, n.defaults.get(key)) if key != "id" else n.id
                if v is not None:
                    d.setdefault(v, []).append(n.id)
        if store is not None:
            for rec in store.find_nodes(cls=cls):
                v = rec.id if key == "id" else (rec.name if key == "name" else rec.props.get(key))
                if key == "plant":
                    v = rec.plant
                if v is not None and rec.id not in d.get(v, []):
                    d.setdefault(v, []).append(rec.id)
        index[(cls, key)] = d
        return d

    for lk in lookups:
        hits = sorted(set(idx(lk.cls, lk.key).get(lk.value, [])))
        if len(hits) == 1:
            src, dst = (hits[0], lk.src) if lk.reverse else (lk.src, hits[0])
            batch.add_edge(src, lk.rel, dst, lk.origin, props=lk.props)
        elif not hits:
            problems.append(problem(lk.origin, f"{lk.rel}: no {lk.cls} with {lk.key} = {lk.value!r} in this "
                                               "import or the store"))
        else:
            problems.append(problem(lk.origin, f"{lk.rel}: {len(hits)} {lk.cls} entities have {lk.key} = "
                                               f"{lk.value!r} ({', '.join(hits[:5])}): ambiguous"))
    return problems


def import_table(
    path: Path,
    mapping: Mapping,
    store: GraphStore | None,
    skip_bad_rows: bool = False,
    reject_path: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    max_errors: int = 200,
) -> TableImportReport:
    """Import one table file with ``mapping`` into ``store`` (all or nothing unless skipping)."""
    with paused_gc():
        return _import_table(path, mapping, store, skip_bad_rows, reject_path, dry_run, progress, max_errors)


def _import_table(
    path: Path,
    mapping: Mapping,
    store: GraphStore | None,
    skip_bad_rows: bool,
    reject_path: Path | None,
    dry_run: bool,
    progress: Callable[[int], None] | None,
    max_errors: int,
) -> TableImportReport:
    t0 = time.perf_counter()
    rep = TableImportReport(mapping=mapping.source, dry_run=dry_run)
    file = str(path)
    try:
        table = open_table(path, mapping)
    except (TableInputError, OSError) as exc:
        rep.errors.append(Problem(file=file, message=str(exc)))
        return rep
    rep.format, rep.encoding, rep.delimiter = table.format, table.encoding, table.delimiter
    if table.columns:
        missing = sorted(c for c in mapping.columns() if c not in table.columns)
        if missing:
            rep.errors.append(Problem(file=file, line=mapping.header_row, message=(
                f"column(s) {', '.join(repr(c) for c in missing)} used by the mapping {mapping.source} are not "
                f"in the header (found: {', '.join(table.columns)})")))
            return rep
    from graph_loader.tables import fast

    if store is not None and fast.applies(mapping, store, dry_run):
        told = _Told(progress)
        counts = _stream(path, mapping, store, table, told)
        if counts is not None:
            for key, value in counts.items():
                setattr(rep, key, value)
            rep.written = True
            rep.seconds = time.perf_counter() - t0
            return rep
        # rolled back; the full path reads the file again and reports what went wrong
        table = open_table(path, mapping)
        progress = told.restart() if progress is not None else None
    mapper = RowMapper(mapping)
    batch = ImportBatch(source_system=mapping.defaults.source_system or "table", max_errors=max_errors)
    bad: dict[int, list[str]] = {}
    row_errors: list[Problem] = []
    lookups: list[_Lookup] = []
    per_row: dict[int, _RowDrafts] = {}
    contributions: dict[int, _RowDrafts] = per_row
    n = 0
    try:
        for line, row in table.rows:
            n += 1
            if progress is not None and n % 10_000 == 0:
                progress(10_000)
            if "__error__" in row:
                msg = str(row["__error__"])
                bad.setdefault(line, []).append(msg)
                if len(row_errors) < max_errors:
                    row_errors.append(Problem(file=file, line=line, message=msg))
                continue
            try:
                drafts = mapper.row(row, file, line)
            except _RowErrors as exc:
                for e in exc.errors:
                    bad.setdefault(line, []).append(f"{e.column}: {e}" if e.column else str(e))
                    if len(row_errors) < max_errors:
                        row_errors.append(Problem(file=file, line=line, column=e.column, message=str(e)))
                continue
            for cls, nid, props in drafts.nodes:
                batch.add_node(cls, nid, Origin(file, line), props=props)
            for src, rel, dst, props in drafts.edges:
                batch.add_edge(src, rel, dst, Origin(file, line), props=props)
            lookups.extend(drafts.lookups)
            if skip_bad_rows:
                contributions[line] = drafts
    except TableInputError as exc:
        rep.errors.append(Problem(file=file, message=str(exc)))
        return rep
    if progress is not None:
        progress(n % 10_000)
    rep.rows_read = n
    look_problems = _resolve_lookups(lookups, batch, store)
    for p in look_problems:
        bad.setdefault(p.line, []).append(p.message)
    row_errors.extend(look_problems)

    if skip_bad_rows:
        validated = None
        for _ in range(5):
            batch = _rebuild(contributions, bad, file, mapping, max_errors)
            _resolve_lookups([lk for ln, d in contributions.items() if ln not in bad for lk in d.lookups],
                             batch, store)
            validated = batch.validate(store)
            if not validated.errors:
                break
            for verr in validated.errors:
                bad.setdefault(verr.line, []).append(f"{verr.column}: {verr.message}" if verr.column else verr.message)
        if validated is None:  # pragma: no cover - the loop runs at least once
            raise RuntimeError("validation did not run")
        if validated.errors:
            rep.errors = validated.errors
        rep.rows_rejected = len(bad)
        rep.rows_ok = n - len(bad)
        if bad:
            rp = reject_path or path.with_name(path.name + ".rejects.csv")
            _write_rejects(path, mapping, bad, rp)
            rep.reject_file = str(rp)
            rep.notes = [Problem(file=file, line=ln, message="; ".join(msgs)) for ln, msgs in sorted(bad.items())][:50]
    else:
        validated = batch.validate(store)
        rep.errors = [*row_errors, *validated.errors]
        rep.more_errors = validated.more_errors + max(0, len(bad) - len(row_errors))
        rep.rows_ok = n - len(bad)
    rep.entities = validated.node_count
    rep.relations = validated.edge_count
    rep.entities_by_class = validated.entities_by_class()
    rep.relations_by_type = validated.relations_by_type()
    if not rep.errors and not dry_run and store is not None:
        write_validated(store, validated)
        rep.written = True
    rep.seconds = time.perf_counter() - t0
    return rep


class _Told:
    """Progress over attempts at one file: a second reading (the one-process stream after the
    pipelined one, the full path after either) reports only rows beyond those already counted."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.told = 0  # rows reported so far
        self.pos = 0  # rows of the current attempt

    def __call__(self, n: int) -> None:
        self.pos += n
        if self.pos > self.told:
            if self.progress is not None:
                self.progress(self.pos - self.told)
            self.told = self.pos
        elif n == 0 and self.progress is not None and self.pos == self.told:
            self.progress(0)

    def at(self, done: int, total: int) -> None:
        """The pipe's form: the rows done so far."""
        self(done - self.pos)

    def restart(self) -> _Told:
        self.pos = 0
        return self


def _stream(path: Path, mapping: Mapping, store: GraphStore, table: Table, told: _Told) -> dict[str, Any] | None:
    """A clean file's import through the streaming path (in two processes for a big file),
    committed; None when it was rolled back and the full path must answer."""
    from graph_loader.tables import fast

    opener = store.process_opener()
    piped = opener is not None and usable_cpus() > 1 and path.stat().st_size >= PIPELINE_MIN_BYTES
    if piped and opener is not None:
        try:
            with store.transaction() as tx:
                return run_beside(partial(fast.produce, str(path), mapping, opener, fast.BATCH_ROWS), tx, told.at)
        except fast.NeedsOwnWrites:
            told.restart()  # ids repeat across batches: the one-process stream merges them
        except (fast.SlowPath, TableInputError, PipelineError):
            return None
    rep = TableImportReport()
    try:
        with store.transaction() as tx:
            fast.StreamImport(mapping, store, TxSink(tx), str(path)).run(
                open_table(path, mapping) if piped else table, rep, told)
    except (fast.SlowPath, TableInputError):
        return None
    return rep.model_dump(include=set(fast.COUNTS))


def _rebuild(contributions: dict[int, _RowDrafts], bad: dict[int, list[str]], file: str, mapping: Mapping,
             max_errors: int) -> ImportBatch:
    batch = ImportBatch(source_system=mapping.defaults.source_system or "table", max_errors=max_errors)
    for line, d in contributions.items():
        if line in bad:
            continue
        for cls, nid, props in d.nodes:
            batch.add_node(cls, nid, Origin(file, line), props=props)
        for src, rel, dst, props in d.edges:
            batch.add_edge(src, rel, dst, Origin(file, line), props=props)
    return batch


def _write_rejects(path: Path, mapping: Mapping, bad: dict[int, list[str]], out: Path) -> None:
    """The bad rows as CSV: their own columns, then ``_line`` and ``_reason``."""
    table = open_table(path, mapping)
    cols = list(table.columns)
    rows = []
    for line, row in table.rows:
        if line in bad:
            if not cols:
                cols = [k for k in row if k != "__error__"]
            rows.append((line, row))
    for _, row in rows:
        for k in row:
            if k not in cols and k != "__error__":
                cols.append(k)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*cols, "_line", "_reason"])
        for line, row in rows:
            w.writerow([*("" if row.get(c) is None else row.get(c) for c in cols), line, "; ".join(bad[line])])


__all__ = ["RowMapper", "TableImportReport", "import_table"]
