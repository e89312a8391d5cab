"""The embedded default store: one SQLite file, no server, durable on disk.

Why SQLite and why no in-memory graph index: see docs/store.md (measured at 1M nodes / 3M edges).
In short, SQLite in WAL mode gives atomic, crash-safe transactions and lets several processes
(the loader, the API) share one store, and its B-tree indexes answer neighbourhood queries in
microseconds, so bounded traversals run level by level in SQL with nothing to rebuild at start-up.

Layout (``<path>/graph.sqlite``):

- ``nodes``: integer ``nid`` (rowid) plus the unique text ``id``, the common fields, the
  class-specific ``props`` as JSON text, and validity times twice: as ISO-8601 text (so the
  offset round-trips) and as integer microseconds since the epoch (so ``as_of`` compares in SQL).
- ``edges``: keyed ``(src, rel, dst)`` over node ``nid`` s (a WITHOUT ROWID table, so the key
  is the storage order for outgoing edges) with a second index ``(dst, rel, src)`` for incoming
  ones. An edge is inserted through sub-selects that resolve the text ids, so a missing
  endpoint yields NULL, violates NOT NULL, and the whole transaction is undone.
- ``node_counts`` / ``edge_counts``: kept exact by triggers, so :meth:`counts` is instant.
- ``meta``: schema version and a ``generation`` counter bumped by every committed transaction
  (callers may use it to invalidate their own caches).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from store.base import (
    Direction,
    EdgeRecord,
    GraphStore,
    Hop,
    IntegrityError,
    NodeRecord,
    StoreCapabilities,
    StoreCounts,
    StoreError,
    StoreUnavailableError,
    Traversal,
    TraversalStep,
    WriteReport,
    WriteTransaction,
)

DB_FILE = "graph.sqlite"
SCHEMA_VERSION = "1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_CLASS_CHANGE = "plantgraph:class-change"
#: Rows per executemany call; also the granularity of progress callbacks.
BATCH = 50_000
#: Ids per ``json_each`` look-up when resolving large id lists.
_CHUNK = 20_000

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
    nid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    cls TEXT NOT NULL,
    name TEXT,
    plant TEXT,
    source_system TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    vf INTEGER,
    vt INTEGER,
    props TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_class ON nodes(cls, id);
CREATE TABLE IF NOT EXISTS edges(
    src INTEGER NOT NULL,
    rel TEXT NOT NULL,
    dst INTEGER NOT NULL,
    source_system TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    vf INTEGER,
    vt INTEGER,
    props TEXT NOT NULL,
    PRIMARY KEY (src, rel, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_in ON edges(dst, rel, src);
CREATE TABLE IF NOT EXISTS node_counts(cls TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edge_counts(rel TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS nodes_count_ins AFTER INSERT ON nodes BEGIN
    INSERT INTO node_counts(cls, n) VALUES (NEW.cls, 1) ON CONFLICT(cls) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS nodes_count_del AFTER DELETE ON nodes BEGIN
    UPDATE node_counts SET n = n - 1 WHERE cls = OLD.cls;
END;
CREATE TRIGGER IF NOT EXISTS nodes_class_guard BEFORE UPDATE OF cls ON nodes
    WHEN OLD.cls IS NOT NEW.cls BEGIN SELECT RAISE(ABORT, '{_CLASS_CHANGE}');
END;
CREATE TRIGGER IF NOT EXISTS edges_count_ins AFTER INSERT ON edges BEGIN
    INSERT INTO edge_counts(rel, n) VALUES (NEW.rel, 1) ON CONFLICT(rel) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS edges_count_del AFTER DELETE ON edges BEGIN
    UPDATE edge_counts SET n = n - 1 WHERE rel = OLD.rel;
END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""

_NODE_COLS = "id, cls, name, plant, source_system, valid_from, valid_to, vf, vt, props"
_UPSERT_NODE = f"""
INSERT INTO nodes({_NODE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    cls = excluded.cls, name = excluded.name, plant = excluded.plant,
    source_system = excluded.source_system, valid_from = excluded.valid_from,
    valid_to = excluded.valid_to, vf = excluded.vf, vt = excluded.vt, props = excluded.props
WHERE nodes.cls IS NOT excluded.cls OR nodes.name IS NOT excluded.name
    OR nodes.plant IS NOT excluded.plant OR nodes.source_system IS NOT excluded.source_system
    OR nodes.valid_from IS NOT excluded.valid_from OR nodes.valid_to IS NOT excluded.valid_to
    OR nodes.props IS NOT excluded.props
"""
_UPSERT_EDGE = """
INSERT INTO edges(src, rel, dst, source_system, valid_from, valid_to, vf, vt, props)
SELECT (SELECT nid FROM nodes WHERE id = ?1), ?2, (SELECT nid FROM nodes WHERE id = ?3),
       ?4, ?5, ?6, ?7, ?8, ?9
WHERE true
ON CONFLICT(src, rel, dst) DO UPDATE SET
    source_system = excluded.source_system, valid_from = excluded.valid_from,
    valid_to = excluded.valid_to, vf = excluded.vf, vt = excluded.vt, props = excluded.props
WHERE edges.source_system IS NOT excluded.source_system
    OR edges.valid_from IS NOT excluded.valid_from OR edges.valid_to IS NOT excluded.valid_to
    OR edges.props IS NOT excluded.props
"""
_DELETE_EDGE = """
DELETE FROM edges WHERE src = (SELECT nid FROM nodes WHERE id = ?1) AND rel = ?2
    AND dst = (SELECT nid FROM nodes WHERE id = ?3)
"""
_IDS = "(SELECT value FROM json_each(?))"
_NODE_SELECT = "SELECT id, cls, name, plant, source_system, valid_from, valid_to, props FROM nodes n"
_NODE_VALID = "(n.vf IS NULL OR n.vf <= :t) AND (n.vt IS NULL OR :t < n.vt)"
_EDGE_VALID = "(e.vf IS NULL OR e.vf <= :t) AND (e.vt IS NULL OR :t < e.vt)"


# -- conversions ------------------------------------------------------------------------------


def _micros(t: datetime | None, what: str) -> int | None:
    """Exact integer microseconds since the epoch; naive datetimes are refused."""
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise IntegrityError(f"{what}: timestamp {t.isoformat()} has no time zone")
    return (t - _EPOCH) // _US


def _as_of(t: datetime | None) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise StoreError(f"as_of {t.isoformat()} has no time zone; pass an aware datetime")
    return (t - _EPOCH) // _US


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def _props_json(props: Mapping[str, Any], what: str) -> str:
    try:
        return _dumps(props)
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in props.items() if not _json_ok(v)]
        where = f" property {bad[0]!r}" if bad else ""
        raise IntegrityError(f"{what}:{where} is not JSON-compatible ({exc})") from None


def _json_ok(v: Any) -> bool:
    try:
        _dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def _node_row(n: NodeRecord) -> tuple[Any, ...]:
    what = f"node {n.id!r}"
    if not n.id:
        raise IntegrityError("node with an empty id")
    if not n.cls:
        raise IntegrityError(f"{what}: empty class")
    return (
        n.id, n.cls, n.name, n.plant, n.source_system, _iso(n.valid_from), _iso(n.valid_to),
        _micros(n.valid_from, what), _micros(n.valid_to, what), _props_json(n.props, what),
    )


def _edge_row(e: EdgeRecord) -> tuple[Any, ...]:
    what = f"edge ({e.src!r}, {e.rel!r}, {e.dst!r})"
    if not e.rel:
        raise IntegrityError(f"{what}: empty relation name")
    return (
        e.src, e.rel, e.dst, e.source_system, _iso(e.valid_from), _iso(e.valid_to),
        _micros(e.valid_from, what), _micros(e.valid_to, what), _props_json(e.props, what),
    )


def _node_from(row: Sequence[Any]) -> NodeRecord:
    return NodeRecord(
        id=row[0], cls=row[1], name=row[2], plant=row[3], source_system=row[4],
        valid_from=_dt(row[5]), valid_to=_dt(row[6]), props=json.loads(row[7]),
    )


def _edge_from(src: str, rel: str, dst: str, row: Sequence[Any]) -> EdgeRecord:
    """``row`` = (source_system, valid_from, valid_to, props)."""
    return EdgeRecord(
        src=src, rel=rel, dst=dst, source_system=row[0], valid_from=_dt(row[1]),
        valid_to=_dt(row[2]), props=json.loads(row[3]),
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_Candidate = tuple[tuple[str, str, str], int, str, str, str, tuple[Any, ...]]


# -- transaction ------------------------------------------------------------------------------


class _EmbeddedTransaction(WriteTransaction):
    """Writes go straight into the open SQLite transaction (so a load never sits in memory);
    any failed write poisons the transaction so that nothing of it can be committed."""

    def __init__(self, store: EmbeddedStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self._report = WriteReport()
        self.failure: StoreError | None = None
        self.progress: Any = None

    @property
    def report(self) -> WriteReport:
        return self._report

    def _check(self) -> None:
        if self.failure is not None:
            raise StoreError(f"transaction already failed and will be rolled back: {self.failure}")

    def _fail(self, err: StoreError) -> StoreError:
        self.failure = err
        return err

    def upsert_nodes(self, nodes: Sequence[NodeRecord]) -> None:
        self._check()
        t0 = time.perf_counter()
        for batch in _chunks(nodes, BATCH):
            try:
                rows = [_node_row(n) for n in batch]
                self._conn.executemany(_UPSERT_NODE, rows)
            except IntegrityError as exc:
                raise self._fail(exc) from None
            except sqlite3.IntegrityError as exc:
                if _CLASS_CHANGE in str(exc):
                    raise self._fail(self._class_change_error(batch)) from None
                raise self._fail(IntegrityError(f"node upsert refused: {exc}")) from None
            self._report.nodes_upserted += len(batch)
        self._report.seconds += time.perf_counter() - t0

    def _class_change_error(self, batch: Sequence[NodeRecord]) -> IntegrityError:
        # The failing row was not applied, so the stored class is still the old one.
        known = self._store._classes_on(self._conn, [n.id for n in batch])
        for n in batch:
            old = known.get(n.id)
            if old is not None and old != n.cls:
                return IntegrityError(f"node {n.id!r} is a {old}; cannot change its class to {n.cls}")
        return IntegrityError("a node upsert tried to change a node's class")

    def upsert_edges(self, edges: Sequence[EdgeRecord]) -> None:
        self._check()
        t0 = time.perf_counter()
        for batch in _chunks(edges, BATCH):
            try:
                rows = [_edge_row(e) for e in batch]
                self._conn.executemany(_UPSERT_EDGE, rows)
            except IntegrityError as exc:
                raise self._fail(exc) from None
            except sqlite3.IntegrityError as exc:
                raise self._fail(self._missing_endpoint_error(batch, exc)) from None
            self._report.edges_upserted += len(batch)
        self._report.seconds += time.perf_counter() - t0

    def _missing_endpoint_error(self, batch: Sequence[EdgeRecord], exc: Exception) -> IntegrityError:
        known = self._store._classes_on(self._conn, {x for e in batch for x in (e.src, e.dst)})
        for e in batch:
            for end, role in ((e.src, "source"), (e.dst, "target")):
                if end not in known:
                    return IntegrityError(
                        f"edge ({e.src!r}, {e.rel!r}, {e.dst!r}): {role} node {end!r} does not exist "
                        "in the store or earlier in this transaction"
                    )
        return IntegrityError(f"edge upsert refused: {exc}")

    def delete_nodes(self, ids: Sequence[str]) -> None:
        self._check()
        t0 = time.perf_counter()
        for batch in _chunks(list(dict.fromkeys(ids)), _CHUNK):
            arg = (json.dumps(list(batch)),)
            nids = f"(SELECT nid FROM nodes WHERE id IN {_IDS})"
            self._report.edges_deleted += self._conn.execute(
                f"DELETE FROM edges WHERE src IN {nids}", arg
            ).rowcount
            self._report.edges_deleted += self._conn.execute(
                f"DELETE FROM edges WHERE dst IN {nids}", arg
            ).rowcount
            self._report.nodes_deleted += self._conn.execute(
                f"DELETE FROM nodes WHERE id IN {_IDS}", arg
            ).rowcount
        self._report.seconds += time.perf_counter() - t0

    def delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self._check()
        t0 = time.perf_counter()
        before = self._conn.total_changes
        self._conn.executemany(_DELETE_EDGE, [tuple(k) for k in keys])
        # total_changes also counts trigger work (one count update per deleted edge).
        self._report.edges_deleted += (self._conn.total_changes - before) // 2
        self._report.seconds += time.perf_counter() - t0


# -- store ------------------------------------------------------------------------------------


class EmbeddedStore(GraphStore):
    """The default backend: a directory holding one SQLite database (see the module doc)."""

    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(
        durable=True, transactions=True, vector_search=False, cypher=False, concurrent_writers=False
    )
    backend: ClassVar[str] = "embedded"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", cache_mb: int = 256) -> None:
        self.path = Path(path)
        self._db = self.path / DB_FILE
        self._synchronous = synchronous
        self._cache_mb = cache_mb
        self._check_path()
        self._closed = False
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreUnavailableError(f"{self._db}: not a plantgraph store ({exc})") from None

    # -- opening ------------------------------------------------------------------------------
    def _check_path(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise StoreUnavailableError(
                f"{self.path}: is a file, not a store directory (expected a folder holding {DB_FILE})"
            )
        if self.path.is_dir() and not self._db.exists():
            foreign = [p.name for p in self.path.iterdir() if not p.name.startswith(DB_FILE)]
            if foreign:
                raise StoreUnavailableError(
                    f"{self.path}: not a plantgraph store (no {DB_FILE}, but holds {sorted(foreign)[:3]}); "
                    "choose an empty or new folder"
                )
        if self._db.exists() and self._db.is_dir():
            raise StoreUnavailableError(f"{self._db}: expected a SQLite file, found a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"{self.path}: cannot create the store folder ({exc})") from None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._db, isolation_level=None, check_same_thread=False, timeout=60.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA cache_size=-{self._cache_mb * 1024}")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA journal_size_limit=67108864")
            conn.execute("PRAGMA foreign_keys=OFF")
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(f"{self._db}: not a plantgraph store ({exc})") from None
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _init_schema(self) -> None:
        conn = self._writer
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if not has_meta and tables:
            raise StoreUnavailableError(f"{self._db}: a SQLite database, but not a plantgraph store")
        if has_meta:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                found = None if row is None else row[0]
                raise StoreUnavailableError(
                    f"{self._db}: store schema version {found!r}, this plantgraph expects {SCHEMA_VERSION!r}"
                )
            return
        conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")

    def _read(self) -> sqlite3.Connection:
        """The connection for reads: the open transaction's one in the writing thread (so it sees
        its own writes), otherwise this thread's reader (which sees committed data only)."""
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            return tx._conn
        conn: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if conn is None:
            conn = self._connect()
            self._local.reader = conn
        return conn

    @property
    def generation(self) -> int:
        """Committed transactions so far (persisted); changes whenever the graph may have."""
        row = self._read().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    # -- writes -------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[WriteTransaction]:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("a transaction is already open in this thread; nested transactions are not supported")
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"{self._db}: cannot start a write ({exc})") from None
            tx = _EmbeddedTransaction(self, conn)
            self._local.tx = tx
            try:
                yield tx
                if tx.failure is not None:
                    raise tx.failure
                conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.tx = None

    # -- reads --------------------------------------------------------------------------------
    def _classes_on(self, conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for batch in _chunks(list(ids), _CHUNK):
            out.update(
                conn.execute(f"SELECT id, cls FROM nodes WHERE id IN {_IDS}", (json.dumps(list(batch)),))
            )
        return out

    def node_classes(self, ids: Iterable[str]) -> dict[str, str]:
        return self._classes_on(self._read(), ids)

    def get_nodes(self, ids: Iterable[str], as_of: datetime | None = None) -> dict[str, NodeRecord]:
        conn = self._read()
        t = _as_of(as_of)
        cond = "" if t is None else f" AND {_NODE_VALID}"
        out: dict[str, NodeRecord] = {}
        for batch in _chunks(list(ids), _CHUNK):
            sql = f"{_NODE_SELECT} WHERE n.id IN (SELECT value FROM json_each(:ids)){cond}"
            for row in conn.execute(sql, {"ids": json.dumps(list(batch)), "t": t}):
                out[row[0]] = _node_from(row)
        return out

    def neighbours(
        self,
        node_id: str,
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> list[EdgeRecord]:
        conn = self._read()
        t = _as_of(as_of)
        direction = Direction(direction)
        row = conn.execute(
            f"SELECT nid FROM nodes n WHERE id = :id{'' if t is None else ' AND ' + _NODE_VALID}",
            {"id": node_id, "t": t},
        ).fetchone()
        if row is None:
            return []
        nid = row[0]
        rel_list = None if rels is None else list(dict.fromkeys(rels))
        if rel_list is not None and not rel_list:
            return []
        out: dict[tuple[str, str, str], EdgeRecord] = {}
        sides = []
        if direction in (Direction.OUT, Direction.BOTH):
            sides.append(("src", "dst"))
        if direction in (Direction.IN, Direction.BOTH):
            sides.append(("dst", "src"))
        for here, there in sides:
            conds = [f"e.{here} = :nid"]
            params: dict[str, Any] = {"nid": nid, "t": t}
            if rel_list is not None:
                conds.append("e.rel IN (SELECT value FROM json_each(:rels))")
                params["rels"] = json.dumps(rel_list)
            if t is not None:
                conds.append(_EDGE_VALID)
                conds.append(_NODE_VALID)
            sql = (
                "SELECT e.rel, n.id, e.source_system, e.valid_from, e.valid_to, e.props "
                f"FROM edges e JOIN nodes n ON n.nid = e.{there} WHERE {' AND '.join(conds)}"
            )
            for r in conn.execute(sql, params):
                src, dst = (node_id, r[1]) if here == "src" else (r[1], node_id)
                edge = _edge_from(src, r[0], dst, r[2:])
                out[edge.key] = edge
        return [out[k] for k in sorted(out)]

    def traverse(
        self,
        starts: Sequence[str],
        steps: Sequence[TraversalStep],
        max_depth: int,
        as_of: datetime | None = None,
        max_nodes: int = 100_000,
        through_classes: frozenset[str] | None = None,
    ) -> Traversal:
        """Level-synchronous BFS in SQL: one indexed query per level and direction.

        A node first seen at depth d+1 takes as parent edge the smallest key ``(src, rel, dst)``
        among the edges reaching it from depth d, so the tree does not depend on scan order.
        Starts are always expanded; ``through_classes`` applies to the nodes reached. When a
        level would exceed ``max_nodes`` its nodes are admitted in parent-edge-key order.
        """
        if max_depth < 0:
            raise StoreError(f"max_depth must be >= 0, got {max_depth}")
        if max_nodes < 1:
            raise StoreError(f"max_nodes must be >= 1, got {max_nodes}")
        conn = self._read()
        t = _as_of(as_of)
        out_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.OUT, Direction.BOTH)})
        in_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.IN, Direction.BOTH)})

        hops: dict[str, Hop] = {}
        seen: set[int] = set()
        frontier: dict[int, str] = {}  # nid -> id of the nodes to expand next
        start_ids = list(dict.fromkeys(starts))
        start_rows: dict[str, tuple[int, str]] = {}
        for batch in _chunks(start_ids, _CHUNK):
            sql = (
                f"SELECT id, nid, cls FROM nodes n WHERE id IN (SELECT value FROM json_each(:ids))"
                f"{'' if t is None else ' AND ' + _NODE_VALID}"
            )
            for sid, nid, cls in conn.execute(sql, {"ids": json.dumps(list(batch)), "t": t}):
                start_rows[sid] = (nid, cls)
        truncated_reason: str | None = None
        for sid in start_ids:
            if sid not in start_rows:
                continue
            if len(hops) >= max_nodes:
                truncated_reason = "max_nodes"
                break
            nid, _cls = start_rows[sid]
            hops[sid] = Hop(node=sid, depth=0, parent=None, edge=None)
            seen.add(nid)
            frontier[nid] = sid

        depth = 0
        while frontier and truncated_reason is None:
            candidates = self._expand(conn, frontier, out_rels, in_rels, t, seen)
            if not candidates:
                break
            if depth >= max_depth:
                truncated_reason = "max_depth"
                break
            depth += 1
            # best parent edge per newly reached node
            best: dict[int, _Candidate] = {}
            for cand in candidates:
                cur = best.get(cand[1])
                if cur is None or cand[0] < cur[0]:
                    best[cand[1]] = cand
            frontier = {}
            for key, other_nid, other_id, other_cls, parent, payload in sorted(best.values()):
                if len(hops) >= max_nodes:
                    truncated_reason = "max_nodes"
                    break
                edge = _edge_from(key[0], key[1], key[2], payload)
                hops[other_id] = Hop(node=other_id, depth=depth, parent=parent, edge=edge)
                seen.add(other_nid)
                if through_classes is None or other_cls in through_classes:
                    frontier[other_nid] = other_id
        return Traversal(hops=hops, truncated=truncated_reason is not None, truncated_reason=truncated_reason)

    def _expand(
        self,
        conn: sqlite3.Connection,
        frontier: Mapping[int, str],
        out_rels: Sequence[str],
        in_rels: Sequence[str],
        t: int | None,
        seen: set[int],
    ) -> list[_Candidate]:
        """Edges from the frontier to nodes not yet seen: (key, other nid, other id, other class,
        frontier id, (source_system, valid_from, valid_to, props))."""
        out: list[_Candidate] = []
        nids = list(frontier)
        valid = "" if t is None else f" AND {_EDGE_VALID} AND {_NODE_VALID}"
        for rels, here, there in ((out_rels, "src", "dst"), (in_rels, "dst", "src")):
            if not rels:
                continue
            sql = (
                f"SELECT e.{here}, e.rel, e.{there}, n.id, n.cls, e.source_system, e.valid_from, "
                f"e.valid_to, e.props FROM edges e JOIN nodes n ON n.nid = e.{there} "
                f"WHERE e.{here} IN (SELECT value FROM json_each(:nids)) "
                f"AND e.rel IN (SELECT value FROM json_each(:rels)){valid}"
            )
            for batch in _chunks(nids, _CHUNK):
                params = {"nids": json.dumps(list(batch)), "rels": json.dumps(list(rels)), "t": t}
                for h, rel, o, oid, ocls, *payload in conn.execute(sql, params):
                    if o in seen:
                        continue
                    hid = frontier[h]
                    key = (hid, rel, oid) if here == "src" else (oid, rel, hid)
                    out.append((key, o, oid, ocls, hid, tuple(payload)))
        return out

    def find_nodes(
        self,
        cls: str | None = None,
        plant: str | None = None,
        where: Mapping[str, Any] | None = None,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[NodeRecord]:
        conn = self._read()
        t = _as_of(as_of)
        conds: list[str] = []
        params: dict[str, Any] = {"t": t}
        if cls is not None:
            conds.append("n.cls = :cls")
            params["cls"] = cls
        if plant is not None:
            conds.append("n.plant = :plant")
            params["plant"] = plant
        if t is not None:
            conds.append(_NODE_VALID)
        checks: list[tuple[str, Any]] = []
        for i, (key, value) in enumerate((where or {}).items()):
            if key in ("name", "source_system", "id"):
                conds.append(f"n.{key} IS :w{i}")
                params[f"w{i}"] = value
                continue
            checks.append((key, value))
            if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
                conds.append(f"json_extract(n.props, :p{i}) = :w{i}")
                params[f"p{i}"] = '$."' + key.replace('"', '\\"') + '"'
                params[f"w{i}"] = value
        sql = f"{_NODE_SELECT}{' WHERE ' + ' AND '.join(conds) if conds else ''} ORDER BY n.id"
        return self._iter_nodes(conn, sql, params, checks, limit)

    @staticmethod
    def _iter_nodes(
        conn: sqlite3.Connection,
        sql: str,
        params: Mapping[str, Any],
        checks: Sequence[tuple[str, Any]],
        limit: int | None,
    ) -> Iterator[NodeRecord]:
        if limit is not None and limit <= 0:
            return
        emitted = 0
        cur = conn.execute(sql, params)
        try:
            while rows := cur.fetchmany(1000):
                for row in rows:
                    node = _node_from(row)
                    if any(not _same(node.props, k, v) for k, v in checks):
                        continue
                    yield node
                    emitted += 1
                    if limit is not None and emitted >= limit:
                        return
        finally:
            cur.close()

    def counts(self) -> StoreCounts:
        conn = self._read()
        nodes = dict(conn.execute("SELECT cls, n FROM node_counts WHERE n > 0 ORDER BY cls"))
        edges = dict(conn.execute("SELECT rel, n FROM edge_counts WHERE n > 0 ORDER BY rel"))
        return StoreCounts(nodes_by_class=nodes, edges_by_relation=edges)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        with self._conns_lock:
            for conn in self._all_conns:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r})"


def _same(props: Mapping[str, Any], key: str, value: Any) -> bool:
    """Equality as JSON sees it: ``True`` is not ``1``, a missing key equals ``None``."""
    if key not in props:
        return value is None
    got = props[key]
    if isinstance(got, bool) or isinstance(value, bool):
        return isinstance(got, bool) and isinstance(value, bool) and got == value
    return bool(got == value)
