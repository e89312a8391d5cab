"""Loading a bundle into a store: validate everything, write all of it or nothing.

Public API
----------
``load_bundle(store, path, progress=None) -> LoadReport``
    Reads the bundle in one streaming pass. Every batch is typed and checked before it is handed
    to ``store.bulk_transaction()``; the transaction is committed only when the whole bundle passed, and
    is rolled back otherwise, raising :class:`~graph_loader.errors.BundleValidationError` with every
    error (capped at 200, with the count of the rest). Once an error is seen no further batch is
    written, and nothing is ever committed from an invalid bundle. Upserts are keyed by id (nodes)
    and by ``(src, rel, dst)`` (edges), so loading the same bundle twice changes nothing; a later
    bundle updates properties, adds relations, ends entities (``valid_to``) and deletes
    (``_deleted_nodes.csv`` / ``_deleted_edges.csv``). A big bundle is read and checked in a second
    process while this one writes (:mod:`graph_loader.pipeline`; same store, same errors).

``validate_bundle(path, store=None, progress=None) -> LoadReport``
    The same checks without writing (``plantgraph validate``). With a store, edge endpoints may
    also exist there.

For other importers (B2MML, tables, events) that build records themselves:

``validate_records(nodes, edges, store=None, deletions=None) -> list[LoadError]``
    The same row and graph checks on :class:`~store.base.NodeRecord` / ``EdgeRecord`` objects.
``write_records(store, nodes, edges, deletions=None, progress=None) -> WriteReport``
    Writes already validated records in one transaction, in batches (no checks).
``load_records(store, nodes, edges, deletions=None) -> WriteReport``
    Validates, then writes; raises ``BundleValidationError`` and writes nothing on bad input.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from graph_loader import columnar
from graph_loader.bundle import (
    DEFAULT_BATCH,
    Bundle,
    FileKind,
    Manifest,
    open_bundle,
    read_deletions,
    typed_batches,
)
from graph_loader.columnar import edge_columns, node_columns
from graph_loader.errors import DEFAULT_ERROR_CAP, BundleValidationError, ErrorCollector, LoadError
from graph_loader.pipeline import PIPELINE_MIN_BYTES, RowSink, TxSink, run_beside, usable_cpus
from graph_loader.validation import Deletions, GraphValidator, check_records, row_schema, validate_records
from store.base import ColumnPreparer, EdgeRecord, GraphStore, NodeRecord, WriteReport, WriteTransaction

LoadProgress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as the bundle is read."""

T = TypeVar("T")


class LoadReport(BaseModel):
    """What a validation or load found and did."""

    bundle: str
    valid: bool
    written: bool
    nodes: int = 0
    edges: int = 0
    nodes_by_class: dict[str, int]
    edges_by_relation: dict[str, int]
    nodes_deleted: int = 0
    edges_deleted: int = 0
    #: edge rows whose (src, rel, dst) appeared earlier in the same bundle (they update that edge)
    repeated_edges: int = 0
    seconds: float
    entities_per_s: float
    relations_per_s: float
    error_count: int = 0
    errors: list[LoadError]
    manifest: Manifest | None = None

    def error_lines(self) -> list[str]:
        out = [str(e) for e in self.errors]
        if self.error_count > len(self.errors):
            out.append(f"... and {self.error_count - len(self.errors)} more error(s) not shown")
        return out


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk pass.

    Why: a load allocates millions of small dicts and tuples, and every so many allocations the
    collector walks all tracked objects that are alive (the id index, the batch in flight); at the
    medium plant that was 38% of validation's CPU time (22.0 s with it, 13.5 s without). The rows
    hold no reference cycles, so reference counting frees them as before; the collector is
    switched back on (if it was on) when the pass ends, also on error, and collects then.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run(
    path: str | Path,
    store: GraphStore | None,
    sink: RowSink | None,
    progress: LoadProgress | None,
    batch_size: int,
    cap: int,
    preparer: ColumnPreparer | None = None,
) -> LoadReport:
    """One streaming pass: check everything; while no error has been seen, hand the checked rows
    to ``sink`` (None: validate only), whole files of columns as ``preparer`` makes them."""
    t0 = time.perf_counter()
    bundle: Bundle = open_bundle(path)
    errors = ErrorCollector(cap)
    errors.extend(bundle.errors)
    total = bundle.total_bytes
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    deletions = read_deletions(bundle, errors, advance)
    by_columns = total >= columnar.MIN_BUNDLE_BYTES  # else the row path reads every file
    gv = GraphValidator(errors, store, deletions)
    by_class: dict[str, int] = {}
    by_rel: dict[str, int] = {}
    for bf in bundle.of_kind(FileKind.NODES):
        node_cols = node_columns(bf, row_schema("node", bf.name), gv, advance) if by_columns else None
        for ncols in node_cols or ():
            by_class[bf.name] = by_class.get(bf.name, 0) + len(ncols)
            if sink is not None and not errors:
                sink.prepared_nodes(bf.name, preparer.nodes(ncols) if preparer is not None else ncols)
        if node_cols is not None:
            continue
        for batch in typed_batches(bf, errors, batch_size, advance):
            for row, (src, line) in batch.failed:
                gv.note_node_id(row.get("id"), bf.name, src, line)
            good = gv.accept_nodes(batch.schema, batch.typed, batch.places)
            by_class[bf.name] = by_class.get(bf.name, 0) + len(good)
            # records only when they will be written (not for validate, not after an error)
            if sink is not None and not errors and good:
                sink.nodes(batch.schema.name, batch.schema.to_node_rows(good))
    repeated = 0
    seen_rel, seen = "", set[int]()
    for bf in bundle.of_kind(FileKind.EDGES):
        if bf.name != seen_rel:  # files are sorted by relation: one key set per relation at a time
            seen_rel, seen = bf.name, set[int]()
        columns = edge_columns(bf, row_schema("edge", bf.name), gv, advance) if by_columns else None
        for cols in columns or ():
            by_rel[bf.name] = by_rel.get(bf.name, 0) + len(cols)
            before = len(seen)
            seen.update(map(hash, zip(cols.src, cols.dst, strict=True)))
            repeated += len(cols) - (len(seen) - before)
            if sink is not None and not errors:
                sink.prepared_edges(bf.name, preparer.edges(cols) if preparer is not None else cols)
        if columns is not None:
            continue
        for ebatch in typed_batches(bf, errors, batch_size, advance):
            egood = gv.accept_edges(ebatch.schema, ebatch.typed, ebatch.places)
            by_rel[bf.name] = by_rel.get(bf.name, 0) + len(egood)
            # a repeated (src, dst) is an update of the same edge: the later row wins
            before = len(seen)
            seen.update(map(hash, zip([e["src"] for e in egood], [e["dst"] for e in egood], strict=True)))
            repeated += len(egood) - (len(seen) - before)
            if sink is not None and not errors and egood:
                sink.edges(ebatch.schema.name, ebatch.schema.to_edge_rows(egood))
    gv.finish()
    if errors:
        raise BundleValidationError.from_collector(errors)
    if sink is not None and deletions:
        # after the upserts: validation guarantees no upserted record touches a deleted one
        sink.deletions(list(deletions.edges), list(deletions.nodes))
    seconds = time.perf_counter() - t0
    n_nodes, n_edges = sum(by_class.values()), sum(by_rel.values())
    return LoadReport(
        bundle=str(bundle.root), valid=True, written=sink is not None,
        nodes=n_nodes, edges=n_edges, nodes_by_class=dict(sorted(by_class.items())),
        edges_by_relation=dict(sorted(by_rel.items())),
        nodes_deleted=len(deletions.nodes), edges_deleted=len(deletions.edges), repeated_edges=repeated,
        seconds=seconds,
        entities_per_s=n_nodes / seconds if seconds else 0.0,
        relations_per_s=n_edges / seconds if seconds else 0.0,
        manifest=bundle.manifest, errors=[],
    )


def _failed_report(path: str | Path, exc: BundleValidationError, seconds: float) -> LoadReport:
    return LoadReport(
        bundle=str(path), valid=False, written=False, nodes_by_class={}, edges_by_relation={},
        seconds=seconds, entities_per_s=0.0, relations_per_s=0.0, error_count=exc.total,
        errors=exc.errors,
    )


def validate_bundle(
    path: str | Path,
    store: GraphStore | None = None,
    progress: LoadProgress | None = None,
    batch_size: int = DEFAULT_BATCH,
    cap: int = DEFAULT_ERROR_CAP,
) -> LoadReport:
    """Check a bundle without writing; ``report.valid`` says whether it would load."""
    t0 = time.perf_counter()
    try:
        with _no_cyclic_gc():
            return _run(path, store, None, progress, batch_size, cap)
    except BundleValidationError as exc:
        return _failed_report(path, exc, time.perf_counter() - t0)


def _produce(
    path: str | Path, opener: Callable[[], GraphStore] | None, preparer: ColumnPreparer, batch_size: int,
    cap: int, sink: RowSink,
) -> LoadReport:
    """The second process's part of a pipelined load: every check, sending the rows to write.

    Its store connection sees the committed state, not this load's uncommitted rows (which a
    one-process load's checks can see). The checks give the same answers either way: a bundle's
    ids are unique, so no row is ever looked up in the store after this load wrote it, and the
    SOP window check counts the bundle's own versions from the bundle. No ``opener``: the store
    is empty (and held by the writer), so the checks look nothing up, as with an empty store."""
    store = opener() if opener is not None else None
    try:
        with _no_cyclic_gc():
            return _run(path, store, sink, sink.progress, batch_size, cap, preparer)
    finally:
        if store is not None:
            store.close()


def check_bundle_into(
    path: str | Path, sink: RowSink, preparer: ColumnPreparer | None = None,
    batch_size: int = DEFAULT_BATCH, cap: int = DEFAULT_ERROR_CAP,
) -> LoadReport:
    """Every check of a load into an empty store, handing ``sink`` the checked rows as the
    load's writer gets them (whole files of columns as ``preparer`` makes them); nothing is
    looked up or written. What a pipelined first load's checking process does: the benchmark
    records it to time the writer alone. Rows go to ``sink`` until the first error; then it raises
    BundleValidationError, as a load does, and what the sink got must be dropped (a load rolls
    it back)."""
    with _no_cyclic_gc():
        return _run(path, None, sink, sink.progress, batch_size, cap, preparer)


def load_bundle(
    store: GraphStore,
    path: str | Path,
    progress: LoadProgress | None = None,
    batch_size: int = DEFAULT_BATCH,
    cap: int = DEFAULT_ERROR_CAP,
    pipeline: bool | None = None,
    exclusive: bool = True,
) -> LoadReport:
    """Validate and write a bundle in one transaction; raises BundleValidationError (nothing
    written) when anything is wrong.

    ``exclusive``: write in a :meth:`~store.base.GraphStore.bulk_transaction`, which may hold an
    empty store alone until the commit (other connections wait); False keeps it shared (a server
    that goes on answering reads meanwhile).

    ``pipeline``: read and validate in a second process while this one writes
    (:mod:`graph_loader.pipeline`); the store ends up the same either way. None (the default)
    chooses it when the store offers :meth:`~store.base.GraphStore.process_opener`, the process
    may use two CPUs and the bundle is at least ``PIPELINE_MIN_BYTES``."""
    t0 = time.perf_counter()
    opener = store.process_opener() if pipeline is not False else None
    # opened here once: its size decides, and a missing folder fails before a process is started
    size = open_bundle(path).total_bytes if opener is not None else 0
    if pipeline is None:
        pipeline = usable_cpus() > 1 and size >= PIPELINE_MIN_BYTES
    scope = store.bulk_transaction() if exclusive else store.transaction()
    with _no_cyclic_gc(), scope as tx:
        preparer = store.column_preparer()
        if pipeline and opener is not None:
            # a store the load holds alone held nothing: the other process need not open it
            job = partial(_produce, path, None if tx.sole else opener, preparer, batch_size, cap)
            report = run_beside(job, tx, progress)
        else:
            report = _run(path, store, TxSink(tx), progress, batch_size, cap, preparer)
    # count the commit in the rate, since that is when the data is durable
    seconds = time.perf_counter() - t0
    report.seconds = seconds
    report.entities_per_s = report.nodes / seconds if seconds else 0.0
    report.relations_per_s = report.edges / seconds if seconds else 0.0
    return report


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def write_records(
    store: GraphStore,
    nodes: Sequence[NodeRecord],
    edges: Sequence[EdgeRecord],
    deletions: Deletions | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    tx: WriteTransaction | None = None,
) -> WriteReport:
    """Write validated records in one transaction (or into ``tx`` when given): nodes, then edges,
    then deletions. ``progress`` is called with the number of records just written."""
    ctx: AbstractContextManager[Any] = nullcontext(tx) if tx is not None else store.transaction()
    with ctx as t:
        for nb in _batches(nodes, batch_size):
            t.upsert_nodes(nb)
            if progress is not None:
                progress(len(nb))
        for eb in _batches(edges, batch_size):
            t.upsert_edges(eb)
            if progress is not None:
                progress(len(eb))
        if deletions:
            t.delete_edges(list(deletions.edges))
            t.delete_nodes(list(deletions.nodes))
        report: WriteReport = t.report
    return report


def load_records(
    store: GraphStore,
    nodes: Iterable[NodeRecord],
    edges: Iterable[EdgeRecord],
    deletions: Deletions | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> WriteReport:
    """Validate records from an importer, then write them all or nothing."""
    with _no_cyclic_gc():
        good_nodes, good_edges, errors = check_records(nodes, edges, store, deletions)
        if errors:
            raise BundleValidationError.from_collector(errors)
        return write_records(store, good_nodes, good_edges, deletions, batch_size)


__all__ = [
    "LoadReport", "check_bundle_into", "load_bundle", "load_records", "validate_bundle", "validate_records",
    "write_records",
]
