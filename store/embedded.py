"""The embedded default store: a folder with one SQLite file and a topology cache, no server.

SQLite (WAL, ``synchronous=FULL``) is the record: atomic, crash-safe transactions, several
processes (the loader, the API) on one store, nothing to rebuild at start-up. Traversals run on
an in-memory CSR index of the topology (:mod:`store.adjacency`), kept exact through rowids that
only grow, a tombstone log and a generation counter, and persisted next to the database. The
measurements behind this shape are in docs/store.md.

Layout (``<path>/graph.sqlite``):

- ``nodes``: integer ``nid`` (AUTOINCREMENT rowid) plus the unique text ``id``, the common
  fields, the class-specific ``props`` as JSON text, and validity times twice: as ISO-8601 text
  (so the offset round-trips) and as integer microseconds since the epoch (exact ``as_of``
  comparisons in SQL).
- ``edges``: ``eid`` rowid, ``(src, rel, dst)`` over node ``nid`` s (unique index, the edge key)
  and an index ``(dst, rel, src)`` for incoming edges, payload as for nodes. Endpoints are
  resolved before insert, so an edge to a missing node is refused with its name and the whole
  transaction is undone.
- ``node_counts`` / ``edge_counts``: exact counts, updated by each commit's deltas.
- ``edge_tombstones``: rowids of deleted edges with the generation that deleted them.
- ``meta``: schema version and ``generation``, bumped by every committed transaction.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from store import adjacency, propindex, topk
from store.base import (
    Coded,
    ColumnPreparer,
    Direction,
    EdgeColumns,
    EdgeRecord,
    EdgeRow,
    GraphStore,
    Hop,
    IntegrityError,
    Link,
    NodeColumns,
    NodeRecord,
    NodeRow,
    StoreCapabilities,
    StoreCounts,
    StoreError,
    StoreUnavailableError,
    Traversal,
    TraversalStep,
    WriteReport,
    WriteTransaction,
)
from store.timeprops import later_than

_log = logging.getLogger(__name__)

DB_FILE = "graph.sqlite"
SCHEMA_VERSION = "3"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_CLASS_CHANGE = "plantgraph:class-change"
#: Page cache of each reading connection (one per thread); the writer gets ``cache_mb``. The OS
#: page cache keeps hot pages anyway, so readers need little of their own.
READER_CACHE_MB = 32
#: How long a connection waits for another one's lock (a bulk load holding the store alone).
BUSY_MS = 60_000
#: Rows per executemany call; also the granularity of progress callbacks.
BATCH = 50_000
#: Ids per ``json_each`` look-up when resolving large id lists.
_CHUNK = 20_000

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
    nid INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TRIGGER IF NOT EXISTS nodes_class_guard BEFORE UPDATE OF cls ON nodes
    WHEN OLD.cls IS NOT NEW.cls BEGIN SELECT RAISE(ABORT, '{_CLASS_CHANGE}');
END;
CREATE TABLE IF NOT EXISTS edges(
    eid INTEGER PRIMARY KEY AUTOINCREMENT,
    src INTEGER NOT NULL,
    rel TEXT NOT NULL,
    dst INTEGER NOT NULL,
    source_system TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    vf INTEGER,
    vt INTEGER,
    props TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS edges_out ON edges(src, rel, dst);
CREATE INDEX IF NOT EXISTS edges_in ON edges(dst, rel, src);
CREATE TABLE IF NOT EXISTS edge_tombstones(gen INTEGER NOT NULL, eid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS edge_tombstones_gen ON edge_tombstones(gen);
CREATE TABLE IF NOT EXISTS node_counts(cls TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edge_counts(rel TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""

_NODE_COLS = "id, cls, name, plant, source_system, valid_from, valid_to, vf, vt, props"
#: A missing text value is sent as the integer 0 and a missing integer as '' (``NULLIF`` turns
#: them into NULL): binding Python's None costs the sqlite3 module an adapter look-up, ~1 µs a
#: value on the development machine, and a row has two to four of them (measured at medium: node
#: and edge inserts 14.1 -> 11.4 CPU s). No real value is confused with its sentinel: text columns
#: never hold the integer 0 (nor integer columns text).
_NO_TEXT = 0
_NO_INT = ""
_NODE_VALUES = "(?, ?, NULLIF(?, 0), NULLIF(?, 0), ?, NULLIF(?, 0), NULLIF(?, 0), NULLIF(?, ''), NULLIF(?, ''), ?)"
_EDGE_VALUES = "(?, ?, ?, ?, NULLIF(?, 0), NULLIF(?, 0), NULLIF(?, ''), NULLIF(?, ''), ?)"
#: Rows per INSERT statement in bulk writes: one statement per row pays the statement's fixed
#: cost (reset, step, the AUTOINCREMENT counter read and written) per row; 128 rows per
#: statement halved the insert CPU at medium (11.4 -> ~6.8 s for 1.4M rows).
MULTI_ROWS = 128
_UPSERT_NODE = f"""
INSERT INTO nodes({_NODE_COLS}) VALUES {{values}}
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
VALUES {values}
ON CONFLICT(src, rel, dst) DO UPDATE SET
    source_system = excluded.source_system, valid_from = excluded.valid_from,
    valid_to = excluded.valid_to, vf = excluded.vf, vt = excluded.vt, props = excluded.props
WHERE edges.source_system IS NOT excluded.source_system
    OR edges.valid_from IS NOT excluded.valid_from OR edges.valid_to IS NOT excluded.valid_to
    OR edges.props IS NOT excluded.props
"""
#: (one row, MULTI_ROWS rows) per statement
_UPSERT_NODES = tuple(_UPSERT_NODE.format(values=",".join([_NODE_VALUES] * k)) for k in (1, MULTI_ROWS))
_UPSERT_EDGES = tuple(_UPSERT_EDGE.format(values=",".join([_EDGE_VALUES] * k)) for k in (1, MULTI_ROWS))
#: Rows a transaction must write into a table before its secondary index is rebuilt at commit
#: instead of maintained per row (see ``_EmbeddedTransaction._maybe_defer``).
DEFER_AT = 100_000
#: Edges a transaction must write for its commit to refresh and persist the topology index.
INDEX_AT = 100_000
#: Ids of nodes inserted by a transaction remembered for its edges (saves one index probe per
#: endpoint in a full load); beyond this many the rest are looked up in SQLite.
NID_CACHE = 5_000_000
_SECONDARY = {
    "nodes": ("nodes_by_class", "CREATE INDEX IF NOT EXISTS nodes_by_class ON nodes(cls, id)"),
    "edges": ("edges_in", "CREATE INDEX IF NOT EXISTS edges_in ON edges(dst, rel, src)"),
}
_NID_OF = "SELECT id, nid FROM nodes WHERE id IN (SELECT value FROM json_each(:ids))"
_EDGE_BY_KEY = "SELECT eid, rel FROM edges WHERE src = ? AND rel = ? AND dst = ?"
_NODE_SELECT = "SELECT id, cls, name, plant, source_system, valid_from, valid_to, props FROM nodes n"
_NODE_VALID = "(n.vf IS NULL OR n.vf <= :t) AND (n.vt IS NULL OR :t < n.vt)"
_EDGE_VALID = "(e.vf IS NULL OR e.vf <= :t) AND (e.vt IS NULL OR :t < e.vt)"


# -- conversions ------------------------------------------------------------------------------


def _us(t: datetime | None) -> int | None:
    """Exact integer microseconds since the epoch; a naive datetime raises ValueError."""
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"timestamp {t.isoformat()} has no time zone")
    return (t - _EPOCH) // _US


def _as_of(t: datetime | None) -> int | None:
    try:
        return _us(t)
    except ValueError:
        raise StoreError(f"as_of {t}: has no time zone; pass an aware datetime") from None


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _not_json(o: Any) -> Any:
    raise TypeError(f"{type(o).__name__} is not JSON-compatible")


def _make_dumps() -> Callable[[Any], str]:
    """Compact, key-sorted JSON. Uses the C encoder directly when present: the public
    ``JSONEncoder.encode`` builds a new one on every call, which doubles the cost per record."""
    c_make = getattr(json.encoder, "c_make_encoder", None)
    if c_make is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode
    enc = c_make(None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False)

    def dumps(o: Any) -> str:
        return "".join(enc(o, 0))

    return dumps


_dumps = _make_dumps()


def _json_ok(v: Any) -> bool:
    try:
        _dumps(v)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _node_row(n: NodeRecord) -> tuple[Any, ...]:
    if not n.id or not n.cls:
        raise ValueError("empty id or class")
    vf, vt = n.valid_from, n.valid_to
    name = _NO_TEXT if n.name is None else n.name
    plant = _NO_TEXT if n.plant is None else n.plant
    if vf is None and vt is None:  # the common case, without four calls
        return (n.id, n.cls, name, plant, n.source_system, _NO_TEXT, _NO_TEXT, _NO_INT, _NO_INT, _dumps(n.props))
    a, b = _stamp(vf), _stamp(vt)
    return (n.id, n.cls, name, plant, n.source_system, a[0], b[0], a[1], b[1], _dumps(n.props))


def _edge_row(e: EdgeRecord, src: int, dst: int) -> tuple[Any, ...]:
    if not e.rel:
        raise ValueError("empty relation name")
    vf, vt = e.valid_from, e.valid_to
    if vf is None and vt is None:
        return (src, e.rel, dst, e.source_system, _NO_TEXT, _NO_TEXT, _NO_INT, _NO_INT, _dumps(e.props))
    a, b = _stamp(vf), _stamp(vt)
    return (src, e.rel, dst, e.source_system, a[0], b[0], a[1], b[1], _dumps(e.props))


def _stamp(t: datetime | None) -> tuple[Any, Any]:
    """(ISO text, epoch microseconds) of a time, or the two sentinels of a missing one."""
    if t is None:
        return (_NO_TEXT, _NO_INT)
    return (t.isoformat(), _us(t))


def _upsert_flat(conn: sqlite3.Connection, sqls: tuple[str, ...], flat: list[Any], width: int) -> None:
    """Run a one-row upsert over rows given as one flat list of their values (``width`` a row),
    MULTI_ROWS rows per statement, in order."""
    one, multi = sqls
    n = len(flat) // width
    full = n - n % MULTI_ROWS
    step = MULTI_ROWS * width
    if full:
        conn.executemany(multi, [tuple(flat[j:j + step]) for j in range(0, full * width, step)])
    if full < n:
        conn.executemany(one, [tuple(flat[j:j + width]) for j in range(full * width, n * width, width)])


def _spread(flat: list[Any], width: int, columns: Sequence[list[Any]]) -> None:
    """Fill ``flat`` row by row from ``columns`` (one slice assignment a column, in C)."""
    for k, col in enumerate(columns):
        flat[k::width] = col


@dataclass(slots=True)
class PreparedEdges:
    """Edges of one relation as the writer binds them, built where they were checked (see
    :class:`EmbeddedPreparer`): only the node ids are left to resolve."""

    src: list[str]
    dst: list[str]
    #: source_system, valid_from text, valid_to text, valid_from µs, valid_to µs, props JSON
    tail: list[list[Any]]


@dataclass(slots=True)
class PreparedNodes:
    """Nodes of one class as the writer binds them, but for the class (see :class:`PreparedEdges`)."""

    ids: list[str]
    #: name, plant, source_system, valid_from text, valid_to text, valid_from µs, valid_to µs, props JSON
    tail: list[list[Any]]


def _fragment(v: Any) -> str:
    """``_dumps(v)``, with a shortcut for the usual scalars (one C call instead of an encoder)."""
    t = type(v)
    if t is str:
        return _encode_str(v)
    if t is float and math.isfinite(v):
        return float.__repr__(v)
    return _dumps(v)


_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # what _dumps uses
_SCALARS = frozenset({str, int, float, bool})


def _make_split_dumps() -> Callable[[list[Any]], list[str]] | None:
    """``[_dumps(v) for v in values]`` of scalars in one call of the C encoder: the list written
    with NUL between items (inside a string the encoder escapes NUL, so it splits exactly)."""
    c_make = getattr(json.encoder, "c_make_encoder", None)
    if c_make is None:  # pragma: no cover - CPython always has it
        return None
    enc = c_make(None, _not_json, _encode_str, None, ":", "\0", True, False, False)

    def split_dumps(values: list[Any]) -> list[str]:
        return "".join(enc(values, 0))[1:-1].split("\0") if values else []

    return split_dumps


_split_dumps = _make_split_dumps()


def _fragments(key: str, values: list[Any]) -> list[str | None]:
    """``key + _fragment(v)`` for each value (None stays None): for a column of scalars, the JSON
    comes from one encoder call instead of one call a value (~0.5 µs each, ~1M at ``large``)."""
    present = [v for v in values if v is not None]
    if _split_dumps is None or not set(map(type, present)) <= _SCALARS:
        return [None if v is None else key + _fragment(v) for v in values]
    done = iter(_split_dumps(present))
    return [None if v is None else key + next(done) for v in values]


def _bound_tail(system: Coded, valid_from: Coded, valid_to: Coded, props: dict[str, Coded], n: int) -> list[list[Any]]:
    """The writer's per-row conversions (:func:`_stamp_columns`, the props JSON) done for the
    distinct values of each column, then spread over the rows."""
    vf_iso, vf_us = _stamp_columns(valid_from.values)
    vt_iso, vt_us = _stamp_columns(valid_to.values)
    tail = [system.decode()]
    for values, coded in ((vf_iso, valid_from), (vt_iso, valid_to), (vf_us, valid_from), (vt_us, valid_to)):
        tail.append(Coded(values, coded.codes).decode())
    if not props:
        tail.append(["{}"] * n)
    else:
        # the props document as _dumps writes it: keys sorted, "key":value joined by commas
        parts = [Coded(_fragments(key, c.values), c.codes).decode()
                 for _, key, c in sorted((k, _dumps(k) + ":", c) for k, c in props.items())]
        if all(None not in c.values for c in props.values()):
            tail.append(["{" + ",".join(t) + "}" for t in zip(*parts, strict=True)])
        else:
            tail.append(["{" + ",".join([p for p in t if p is not None]) + "}" for t in zip(*parts, strict=True)])
    return tail


class EmbeddedPreparer(ColumnPreparer):
    """Binds checked columns as the writer's statements take them, in the checking process."""

    def edges(self, cols: EdgeColumns) -> PreparedEdges:
        return PreparedEdges(cols.src, cols.dst,
                             _bound_tail(cols.source_system, cols.valid_from, cols.valid_to, cols.props, len(cols)))

    def nodes(self, cols: NodeColumns) -> PreparedNodes:
        texts = [Coded([_NO_TEXT if v is None else v for v in c.values], c.codes).decode()
                 for c in (cols.name, cols.plant)]
        return PreparedNodes(cols.ids, texts + _bound_tail(
            cols.source_system, cols.valid_from, cols.valid_to, cols.props, len(cols)))


def _bad_record(what: str, valid_from: Any, valid_to: Any, props: Mapping[str, Any]) -> IntegrityError:
    """The precise complaint about a record whose conversion failed."""
    for field_name, t in (("valid_from", valid_from), ("valid_to", valid_to)):
        if t is not None and not isinstance(t, datetime):
            return IntegrityError(f"{what}: {field_name} must be a datetime, got {type(t).__name__}")
        if isinstance(t, datetime) and (t.tzinfo is None or t.utcoffset() is None):
            return IntegrityError(f"{what}: {field_name} {t.isoformat()} has no time zone")
    if not isinstance(props, Mapping):
        return IntegrityError(f"{what}: props must be a mapping, got {type(props).__name__}")
    for k, v in props.items():
        if not isinstance(k, str):
            return IntegrityError(f"{what}: property name {k!r} is not a string")
        if not _json_ok(v):
            return IntegrityError(
                f"{what}: property {k!r} is not JSON-compatible ({type(v).__name__}); "
                "use str, int, float, bool, None, lists and dicts (timestamps as ISO-8601 text)"
            )
    return IntegrityError(f"{what}: cannot be stored (empty id, class or relation?)")


def _stamp_text(text: str | None) -> tuple[Any, Any]:
    """(the time as ``datetime.isoformat`` writes it, epoch microseconds) of ISO-8601 text, or the
    two sentinels for None; TypeError / ValueError for anything that is not a time with an offset."""
    if text is None:
        return (_NO_TEXT, _NO_INT)
    t = datetime.fromisoformat(text)
    return (t.isoformat(), _us(t))


_TEXT_WIDTH = 32  # the longest text the vectorised path reads: YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM
_DATE_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _stamp_columns(texts: Sequence[str | None]) -> tuple[list[Any], list[Any]]:
    """:func:`_stamp_text` of a whole column, the usual shapes parsed at once with numpy.

    Why: ``isoformat`` and the exact microsecond arithmetic cost 10-20 µs a timestamp in CPython on
    the development machine (most of the store's Python time at medium, where ~370k of ~1.37M times
    are distinct); this is ~0.7 µs a row. Vectorised: ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` followed by
    ``±HH:MM`` (already as ``isoformat`` writes it, so kept as is) or ``Z`` (written ``+00:00``),
    with every field in range. Anything else (a ``.000000`` or ``-00:00``, other ISO shapes, bad
    text) goes through :func:`_stamp_text` one by one, which also raises for bad values; a test
    compares both on random times."""
    n = len(texts)
    idx = [i for i, t in enumerate(texts) if t is not None] if None in texts else range(n)
    if not idx:
        return [_NO_TEXT] * n, [_NO_INT] * n
    vals: list[Any] = [texts[i] for i in idx] if len(idx) < n else list(texts)
    # all ASCII text (two scans in C, not a Python test a value)
    lens = np.fromiter(map(len, vals), dtype=np.int64, count=len(vals)) if (
        set(map(type, vals)) == {str} and "".join(vals).isascii()) else None
    if lens is None or int(lens.max()) > _TEXT_WIDTH:
        got = [_stamp_text(t) for t in texts]
        return [g[0] for g in got], [g[1] for g in got]
    u = np.array(vals, dtype=f"S{_TEXT_WIDTH}").view(np.uint8).reshape(-1, _TEXT_WIDTH)
    rows = np.arange(len(vals))
    zulu = u[rows, lens - 1] == 90  # "Z"
    short = (lens == 20) | (lens == 25)  # no fraction
    frac = ((lens == 32) | (lens == 27)) & (u[:, 19] == 46)  # "."
    ok = (short | frac) & (zulu == ((lens == 20) | (lens == 27)))
    ok &= (u[:, 4] == 45) & (u[:, 7] == 45) & (u[:, 10] == 84) & (u[:, 13] == 58) & (u[:, 16] == 58)  # - - T : :
    o = np.where(zulu, 0, lens - 6)  # where an offset starts
    sign = u[rows, o]
    ok &= zulu | (((sign == 43) | (sign == 45)) & (u[rows, o + 3] == 58))
    # digits: the date and time, the fraction, the offset (garbage where ``ok`` is already False)
    dc = np.concatenate([u[:, _DATE_DIGITS], u[:, 20:26], np.stack([u[rows, o + k] for k in (1, 2, 4, 5)], axis=1)],
                        axis=1) - np.uint8(48)  # uint8: anything below "0" wraps above 9
    ok &= dc[:, :14].max(axis=1) <= 9
    ok &= ~frac | ((dc[:, 14:20].max(axis=1) <= 9) & dc[:, 14:20].any(axis=1))
    ok &= zulu | (dc[:, 20:].max(axis=1) <= 9)
    d = dc.astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute, second = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    micro = np.where(frac, d[:, 14:20] @ np.array([100000, 10000, 1000, 100, 10, 1]), 0)
    off_h, off_m = d[:, 20] * 10 + d[:, 21], d[:, 22] * 10 + d[:, 23]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= zulu | ((off_h <= 23) & (off_m <= 59) & ~((sign == 45) & (off_h == 0) & (off_m == 0)))
    # days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    offset = np.where(zulu, 0, np.where(sign == 45, -1, 1) * (off_h * 3600 + off_m * 60))
    micros: list[Any] = ((days * 86400 + hour * 3600 + minute * 60 + second - offset) * 1_000_000 + micro).tolist()
    if not ok.all() or zulu.any():  # the few others one by one
        for j in np.flatnonzero(~ok | zulu).tolist():
            vals[j], micros[j] = _stamp_text(vals[j])
    if len(idx) == n:
        return vals, micros
    iso: list[Any] = [_NO_TEXT] * n
    us: list[Any] = [_NO_INT] * n
    for i, a, b in zip(idx, vals, micros, strict=True):
        iso[i] = a
        us[i] = b
    return iso, us


def _record_classes(batch: Sequence[NodeRecord]) -> list[tuple[str, str]]:
    return [(n.id, n.cls) for n in batch]


def _row_classes(cls: str, batch: Sequence[NodeRow]) -> list[tuple[str, str]]:
    return [(r[0], cls) for r in batch]


def _id_classes(cls: str, ids: Sequence[str]) -> list[tuple[str, str]]:
    return [(i, cls) for i in ids]


def _empty() -> str:
    raise ValueError("empty id")


def _bad_row(what: str, valid_from: Any, valid_to: Any, props: Any) -> IntegrityError:
    """The precise complaint about a bulk row whose conversion failed."""
    for field_name, text in (("valid_from", valid_from), ("valid_to", valid_to)):
        if text is None:
            continue
        try:
            _stamp_text(text)
        except (TypeError, ValueError):
            return IntegrityError(
                f"{what}: {field_name} {text!r} is not an ISO-8601 timestamp with a time zone offset"
            )
    return _bad_record(what, None, None, props)


def _node_from(row: Sequence[Any]) -> NodeRecord:
    return NodeRecord(
        id=row[0], cls=row[1], name=row[2], plant=row[3], source_system=row[4],
        valid_from=_dt(row[5]), valid_to=_dt(row[6]), props=json.loads(row[7]),
    )


def _nodes_from(rows: Sequence[Sequence[Any]]) -> list[NodeRecord]:
    """Like ``_node_from`` for many rows, with their property documents parsed by one
    ``json.loads`` (the per-call overhead dominates for small documents)."""
    if not rows:
        return []
    props = json.loads("[" + ",".join(r[7] for r in rows) + "]")
    fromiso = datetime.fromisoformat
    return [
        NodeRecord(id=r[0], cls=r[1], name=r[2], plant=r[3], source_system=r[4],
                   valid_from=None if r[5] is None else fromiso(r[5]),
                   valid_to=None if r[6] is None else fromiso(r[6]), props=p)
        for r, p in zip(rows, props, strict=True)
    ]


def _edge_from(src: str, rel: str, dst: str, row: Sequence[Any]) -> EdgeRecord:
    """``row`` = (source_system, valid_from, valid_to, props as JSON text or already parsed)."""
    props = row[3]
    return EdgeRecord(
        src=src, rel=rel, dst=dst, source_system=row[0], valid_from=_dt(row[1]),
        valid_to=_dt(row[2]), props=json.loads(props) if isinstance(props, str) else props,
    )


def _payloads(conn: sqlite3.Connection, eids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """(source_system, valid_from, valid_to, props) by edge rowid; the property documents are
    parsed with one ``json.loads`` per chunk, not one per edge."""
    sql = (
        "SELECT eid, source_system, valid_from, valid_to, props FROM edges "
        "WHERE eid IN (SELECT value FROM json_each(:ids))"
    )
    rows: list[Any] = []
    for batch in _chunks(list(eids), _CHUNK):
        rows.extend(conn.execute(sql, {"ids": json.dumps(list(batch))}).fetchall())
    props = json.loads("[" + ",".join(r[4] for r in rows) + "]")
    return {r[0]: (r[1], r[2], r[3], p) for r, p in zip(rows, props, strict=True)}


def _sides(direction: Direction) -> list[tuple[str, str]]:
    """(near column, far column) of the edges table for each side a read looks at."""
    sides = []
    if direction in (Direction.OUT, Direction.BOTH):
        sides.append(("src", "dst"))
    if direction in (Direction.IN, Direction.BOTH):
        sides.append(("dst", "src"))
    return sides


def _edge_key(e: EdgeRecord) -> tuple[str, str, str]:
    return (e.src, e.rel, e.dst)


def _link_key(link: Link) -> tuple[str, str, str]:
    return (link.src, link.rel, link.dst)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _rows_by_ids(conn: sqlite3.Connection, sql: str, ids: Iterable[Any], **params: Any) -> Iterator[Any]:
    """Run ``sql`` (with ``:ids`` a JSON array) over ``ids`` in chunks."""
    for batch in _chunks(list(ids), _CHUNK):
        yield from conn.execute(sql, {"ids": json.dumps(list(batch)), **params})


def _nids_of(conn: sqlite3.Connection, ids: Iterable[str], t: int | None = None) -> dict[str, int]:
    """Node rowids (the topology index's keys) of the stored ``ids``; with ``t`` (as-of
    microseconds) only of nodes valid then. Ids not stored (or not valid) are left out."""
    node_valid = "" if t is None else f" AND {_NODE_VALID}"
    return dict(_rows_by_ids(
        conn, f"SELECT id, nid FROM nodes n WHERE id IN (SELECT value FROM json_each(:ids)){node_valid}", ids, t=t,
    ))


_EdgeArrays = tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int16], NDArray[np.int64], NDArray[np.bool_]
]


def _join_parts(parts: Sequence[tuple[Any, Any, Any, Any, bool]]) -> _EdgeArrays:
    """The per-direction edge arrays of the topology index as one set: here, there, rel code,
    edge rowid and whether each edge is outgoing."""
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        np.concatenate([np.full(len(p[0]), p[4], dtype=bool) for p in parts]),
    )


def _index_edges(
    adj: adjacency.Adjacency, nids: NDArray[np.int64], rels: Sequence[str], direction: Direction,
    classes: Iterable[str] | None = None,
) -> _EdgeArrays | None:
    """The index's edges of the rowids ``nids`` along ``rels`` in ``direction`` (as
    :func:`_join_parts` gives them), only those whose far node is of ``classes`` when given;
    None when there are none."""
    parts = adj.edges_of(nids, rels if direction in (Direction.OUT, Direction.BOTH) else [],
                         rels if direction in (Direction.IN, Direction.BOTH) else [])
    if not parts:
        return None
    edges = _join_parts(parts)
    if classes is None:
        return edges
    wanted = set(classes)
    codes = np.array([i for i, c in enumerate(adj.cls_names) if c in wanted], dtype=np.int16)
    keep = np.isin(adj.cls_code[edges[1]], codes)
    here, there, rel, eid, outgoing = edges
    return here[keep], there[keep], rel[keep], eid[keep], outgoing[keep]


def _valid_at_mask(
    conn: sqlite3.Connection, eid: NDArray[np.int64], there: NDArray[np.int64], t: int
) -> NDArray[np.bool_]:
    """Which of these index edges, and their far nodes, are valid at ``t``: the index holds
    topology only, so validity windows are read from the rows (two queries, no documents)."""
    valid_edges = [r[0] for r in _rows_by_ids(
        conn, f"SELECT eid FROM edges e WHERE eid IN (SELECT value FROM json_each(:ids)) AND {_EDGE_VALID}",
        eid.tolist(), t=t,
    )]
    valid_nodes = [r[0] for r in _rows_by_ids(
        conn, f"SELECT nid FROM nodes n WHERE nid IN (SELECT value FROM json_each(:ids)) AND {_NODE_VALID}",
        np.unique(there).tolist(), t=t,
    )]
    return np.isin(eid, np.array(valid_edges, dtype=np.int64)) & np.isin(
        there, np.array(valid_nodes, dtype=np.int64)
    )


_Candidate = tuple[tuple[str, str, str], int, str, str, str, int]


# -- transaction ------------------------------------------------------------------------------


class _EmbeddedTransaction(WriteTransaction):
    """Writes go straight into the open SQLite transaction (so a load never sits in memory);
    any failed write poisons the transaction so that nothing of it can be committed.

    Counts are kept as deltas and written at commit: new rows are those whose rowid is above
    the largest rowid before the batch (SQLite allocates rowids upwards), which is much cheaper
    than a counting trigger per row.
    """

    def __init__(self, conn: sqlite3.Connection, generation: int) -> None:
        self._conn = conn
        self.generation = generation  # the generation this transaction commits as
        self._report = WriteReport()
        self.failure: StoreError | None = None
        self.node_delta: Counter[str] = Counter()
        self._written: Counter[str] = Counter()
        self._nids: dict[str, int] = {}  # id -> nid of nodes inserted by this transaction
        self._deferred: set[str] = set()
        self.committed_counts: dict[str, int] = {
            "nodes": int(conn.execute("SELECT coalesce(sum(n), 0) FROM node_counts").fetchone()[0]),
            "edges": int(conn.execute("SELECT coalesce(sum(n), 0) FROM edge_counts").fetchone()[0]),
        }
        self.edge_delta: Counter[str] = Counter()
        seq = dict(conn.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN ('edges', 'nodes')"))
        #: what this transaction added, for the index refresh after a bulk commit
        self.written = adjacency.Written(max(self._max("edges", "eid"), int(seq.get("edges", 0))),
                                         max(self._max("nodes", "nid"), int(seq.get("nodes", 0))))

    @property
    def report(self) -> WriteReport:
        return self._report

    def _check(self) -> None:
        if self.failure is not None:
            raise StoreError(f"this transaction already failed and will be rolled back: {self.failure}")

    def _fail(self, err: StoreError) -> StoreError:
        self.failure = err
        return err

    def _max(self, table: str, key: str) -> int:
        row = self._conn.execute(f"SELECT max({key}) FROM {table}").fetchone()
        return int(row[0] or 0)

    def upsert_nodes(self, nodes: Sequence[NodeRecord]) -> None:
        self._check()
        t0 = time.perf_counter()
        for batch in _chunks(nodes, BATCH):
            try:
                rows = [_node_row(n) for n in batch]
            except (TypeError, ValueError, AttributeError, RecursionError):
                raise self._fail(self._first_bad_node(batch)) from None
            self._write_nodes(list(chain.from_iterable(rows)), len(rows), partial(_record_classes, batch))
        self._report.seconds += time.perf_counter() - t0

    def upsert_node_rows(self, cls: str, rows: Sequence[NodeRow]) -> None:
        """The bulk form: plain tuples of one class, no record objects; the timestamps of a batch
        converted together (:func:`_stamp_columns`). Same rows in SQLite as :meth:`upsert_nodes`."""
        self._check()
        if not cls:
            raise self._fail(IntegrityError("node rows: empty class"))
        t0 = time.perf_counter()
        dumps = _dumps
        for batch in _chunks(rows, BATCH):
            out: list[tuple[Any, ...]] = []
            add = out.append
            try:
                vf_iso, vf_us = _stamp_columns([r[4] for r in batch])
                vt_iso, vt_us = _stamp_columns([r[5] for r in batch])
                for (i, name, plant, system, _, _, props), a, b, c, d in zip(
                    batch, vf_iso, vt_iso, vf_us, vt_us, strict=True
                ):
                    add((i or _empty(), cls, _NO_TEXT if name is None else name, _NO_TEXT if plant is None else plant,
                         system, a, b, c, d, dumps(props)))
            except (TypeError, ValueError, IndexError, RecursionError):
                raise self._fail(self._first_bad_node_row(batch)) from None
            self._write_nodes(list(chain.from_iterable(out)), len(out), partial(_row_classes, cls, batch))
        self._report.seconds += time.perf_counter() - t0

    def upsert_prepared_nodes(self, cls: str, prepared: Any) -> None:
        """Write :class:`PreparedNodes` (from :class:`EmbeddedPreparer`): the
        rows :meth:`upsert_node_rows` writes, bound as they came."""
        if not isinstance(prepared, PreparedNodes):
            super().upsert_prepared_nodes(cls, prepared)
            return
        self._check()
        if not cls:
            raise self._fail(IntegrityError("node rows: empty class"))
        t0 = time.perf_counter()
        width = 10
        for start in range(0, len(prepared.ids), BATCH):
            ids = prepared.ids[start:start + BATCH]
            m = len(ids)
            flat: list[Any] = [None] * (width * m)
            _spread(flat, width, [ids, [cls] * m, *(col[start:start + BATCH] for col in prepared.tail)])
            self._write_nodes(flat, m, partial(_id_classes, cls, ids))
        self._report.seconds += time.perf_counter() - t0

    def _write_nodes(self, flat: list[Any], n: int, classes: Callable[[], list[tuple[str, str]]]) -> None:
        """Upsert ``n`` prepared node rows given flat (:func:`_upsert_flat`); ``classes`` gives
        (id, class) of each row for the error message when one would change a stored node's class."""
        conn = self._conn
        self._maybe_defer("nodes", n)
        before = self._max("nodes", "nid")
        try:
            _upsert_flat(conn, _UPSERT_NODES, flat, 10)
        except sqlite3.IntegrityError as exc:
            if _CLASS_CHANGE in str(exc):
                raise self._fail(self._class_change_error(classes())) from None
            raise self._fail(IntegrityError(f"node upsert refused: {exc}")) from None
        new = conn.execute("SELECT id, nid, cls FROM nodes WHERE nid > ? ORDER BY nid", (before,)).fetchall()
        self.node_delta.update(r[2] for r in new)
        if new:
            self.written.add_nodes(np.fromiter((r[1] for r in new), dtype=np.int64, count=len(new)),
                                   [r[0] for r in new], [r[2] for r in new])
        if len(self._nids) < NID_CACHE:
            self._nids.update((r[0], r[1]) for r in new)
        self._report.nodes_upserted += n

    def _first_bad_node(self, batch: Sequence[NodeRecord]) -> IntegrityError:
        for n in batch:
            try:
                _node_row(n)
            except (TypeError, ValueError, AttributeError, RecursionError):
                return _bad_record(f"node {getattr(n, 'id', n)!r}", n.valid_from, n.valid_to, n.props)
        return IntegrityError("a node could not be stored")

    def _first_bad_node_row(self, batch: Sequence[Any]) -> IntegrityError:
        for r in batch:
            if not isinstance(r, tuple) or len(r) != 7:
                return IntegrityError(f"node row {r!r}: expected (id, name, plant, source_system, "
                                      "valid_from, valid_to, props)")
            if not r[0]:
                return IntegrityError(f"node row {r!r}: empty id")
            try:
                _stamp_text(r[4]), _stamp_text(r[5]), _dumps(r[6])
            except (TypeError, ValueError, RecursionError):
                return _bad_row(f"node {r[0]!r}", r[4], r[5], r[6])
        return IntegrityError("a node row could not be stored")

    def _class_change_error(self, batch: Sequence[tuple[str, str]]) -> IntegrityError:
        # The failing row was not applied, so the stored class is still the old one.
        known = _classes_on(self._conn, [i for i, _ in batch])
        for node_id, cls in batch:
            old = known.get(node_id)
            if old is not None and old != cls:
                return IntegrityError(f"node {node_id!r} is a {old}; cannot change its class to {cls}")
        return IntegrityError("a node upsert tried to change a node's class")

    def upsert_edges(self, edges: Sequence[EdgeRecord]) -> None:
        self._check()
        t0 = time.perf_counter()
        conn = self._conn
        for batch in _chunks(edges, BATCH):
            # endpoints written earlier in this transaction are known; look up only the others
            known = self._nids
            ends = {x for e in batch for x in (e.src, e.dst) if x not in known}
            found = dict(_rows_by_ids(conn, _NID_OF, ends)) if ends else {}
            nid: Mapping[str, int] = ChainMap(found, known) if found else known
            try:
                rows = [_edge_row(e, nid[e.src], nid[e.dst]) for e in batch]
            except KeyError:
                raise self._fail(self._missing_endpoint_error([(e.src, e.rel, e.dst) for e in batch], nid)) from None
            except (TypeError, ValueError, AttributeError, RecursionError):
                raise self._fail(self._first_bad_edge(batch, nid)) from None
            self._write_edge_rows(rows)
        self._report.seconds += time.perf_counter() - t0

    def upsert_edge_rows(self, rel: str, rows: Sequence[EdgeRow]) -> None:
        """The bulk form: plain tuples of one relation, no record objects (as
        :meth:`upsert_node_rows`). Endpoints written by this transaction are found in memory;
        only when one is not is the batch's endpoint set looked up in SQLite."""
        self._check()
        if not rel:
            raise self._fail(IntegrityError("edge rows: empty relation name"))
        t0 = time.perf_counter()
        for batch in _chunks(rows, BATCH):
            known = self._nids
            try:
                out = self._edge_rows(rel, batch, known)
            except KeyError:
                ends = {x for r in batch for x in (r[0], r[1]) if x not in known}
                nid = ChainMap(dict(_rows_by_ids(self._conn, _NID_OF, ends)), known)
                try:
                    out = self._edge_rows(rel, batch, nid)
                except KeyError:
                    raise self._fail(self._missing_endpoint_error([(r[0], rel, r[1]) for r in batch], nid)) from None
            self._write_edge_rows(out, rel)
        self._report.seconds += time.perf_counter() - t0

    def _edge_rows(self, rel: str, batch: Sequence[EdgeRow], nid: Mapping[str, int]) -> list[tuple[Any, ...]]:
        dumps = _dumps
        out: list[tuple[Any, ...]] = []
        add = out.append
        try:
            vf_iso, vf_us = _stamp_columns([r[3] for r in batch])
            vt_iso, vt_us = _stamp_columns([r[4] for r in batch])
            for (s, d, system, _, _, props), a, b, c, e in zip(batch, vf_iso, vt_iso, vf_us, vt_us, strict=True):
                add((nid[s], rel, nid[d], system, a, b, c, e, dumps(props) if props else "{}"))
        except (TypeError, ValueError, IndexError, RecursionError):
            raise self._fail(self._first_bad_edge_row(rel, batch)) from None
        return out

    def _first_bad_edge_row(self, rel: str, batch: Sequence[Any]) -> IntegrityError:
        for r in batch:
            if not isinstance(r, tuple) or len(r) != 6:
                return IntegrityError(f"edge row {r!r}: expected (src, dst, source_system, valid_from, "
                                      "valid_to, props)")
            try:
                _stamp_text(r[3]), _stamp_text(r[4]), _dumps(r[5])
            except (TypeError, ValueError, RecursionError):
                return _bad_row(f"edge ({r[0]!r}, {rel!r}, {r[1]!r})", r[3], r[4], r[5])
        return IntegrityError("an edge row could not be stored")

    def upsert_prepared_edges(self, rel: str, prepared: Any) -> None:
        """Write :class:`PreparedEdges` (from :class:`EmbeddedPreparer`): the
        rows as :meth:`upsert_edge_rows` writes them, with only the node ids resolved here."""
        if not isinstance(prepared, PreparedEdges):
            super().upsert_prepared_edges(rel, prepared)
            return
        self._check()
        if not rel:
            raise self._fail(IntegrityError("edge rows: empty relation name"))
        t0 = time.perf_counter()
        width = 9
        for start in range(0, len(prepared.src), BATCH):
            src, dst = prepared.src[start:start + BATCH], prepared.dst[start:start + BATCH]
            known = self._nids
            nid: Mapping[str, int] = known
            try:
                s_nids, d_nids = [nid[x] for x in src], [nid[x] for x in dst]
            except KeyError:
                ends = {x for x in chain(src, dst) if x not in known}
                nid = ChainMap(dict(_rows_by_ids(self._conn, _NID_OF, ends)), known)
                try:
                    s_nids, d_nids = [nid[x] for x in src], [nid[x] for x in dst]
                except KeyError:
                    keys = [(s, rel, d) for s, d in zip(src, dst, strict=True)]
                    raise self._fail(self._missing_endpoint_error(keys, nid)) from None
            m = len(src)
            flat: list[Any] = [None] * (width * m)
            _spread(flat, width, [s_nids, [rel] * m, d_nids,
                                  *(col[start:start + BATCH] for col in prepared.tail)])
            self._write_edges(flat, m, s_nids, d_nids, rel)
        self._report.seconds += time.perf_counter() - t0

    def _write_edges(self, flat: list[Any], n: int, src: Sequence[int], dst: Sequence[int],
                     rel: str | list[str]) -> None:
        """Upsert ``n`` prepared edge rows given flat (see :func:`_upsert_flat`); ``src``/``dst``
        their endpoint ids, ``rel`` their relation (one for all, or one a row)."""
        conn = self._conn
        self._maybe_defer("edges", n)
        before = self._max("edges", "eid")
        try:
            _upsert_flat(conn, _UPSERT_EDGES, flat, 9)
        except sqlite3.IntegrityError as exc:
            raise self._fail(IntegrityError(f"edge upsert refused: {exc}")) from None
        added = dict(conn.execute("SELECT rel, count(*) FROM edges WHERE eid > ? GROUP BY rel", (before,)))
        self.edge_delta.update(added)
        self._report.edges_upserted += n
        # all inserted, none updated, rowids without a gap: they took before+1, before+2, ... in order
        if sum(added.values()) == n and self._max("edges", "eid") == before + n:
            self.written.add_edges(before + 1, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), rel)
        else:
            self.written.lose_edges()

    def _write_edge_rows(self, rows: list[tuple[Any, ...]], rel: str | None = None) -> None:
        """:meth:`_write_edges` of whole row tuples."""
        self._write_edges(list(chain.from_iterable(rows)), len(rows), [r[0] for r in rows], [r[2] for r in rows],
                          rel if rel is not None else [r[1] for r in rows])

    @staticmethod
    def _missing_endpoint_error(keys: Sequence[tuple[str, str, str]], known: Mapping[str, int]) -> IntegrityError:
        for s, rel, d in keys:
            for end, role in ((s, "source"), (d, "target")):
                if end not in known:
                    return IntegrityError(
                        f"edge ({s!r}, {rel!r}, {d!r}): {role} node {end!r} does not exist "
                        "in the store or earlier in this transaction"
                    )
        return IntegrityError("an edge endpoint does not exist")

    @staticmethod
    def _first_bad_edge(batch: Sequence[EdgeRecord], nid: Mapping[str, int]) -> IntegrityError:
        for e in batch:
            try:
                _edge_row(e, nid[e.src], nid[e.dst])
            except (TypeError, ValueError, AttributeError, RecursionError):
                return _bad_record(f"edge ({e.src!r}, {e.rel!r}, {e.dst!r})", e.valid_from, e.valid_to, e.props)
        return IntegrityError("an edge could not be stored")

    def delete_nodes(self, ids: Sequence[str]) -> None:
        self._check()
        self.written.lose_edges()  # the index refresh reads what is left from SQLite
        self.written.lose_nodes()
        t0 = time.perf_counter()
        conn = self._conn
        for batch in _chunks(list(dict.fromkeys(ids)), _CHUNK):
            arg = {"ids": json.dumps(list(batch))}
            nids = "(SELECT nid FROM nodes WHERE id IN (SELECT value FROM json_each(:ids)))"
            touching = f"src IN {nids} OR dst IN {nids}"
            gone_edges = dict(conn.execute(f"SELECT rel, count(*) FROM edges WHERE {touching} GROUP BY rel", arg))
            gone_nodes = dict(conn.execute(
                "SELECT cls, count(*) FROM nodes WHERE id IN (SELECT value FROM json_each(:ids)) GROUP BY cls", arg
            ))
            conn.execute(
                f"INSERT INTO edge_tombstones(gen, eid) SELECT :gen, eid FROM edges WHERE {touching}",
                {**arg, "gen": self.generation},
            )
            conn.execute(f"DELETE FROM edges WHERE {touching}", arg)
            conn.execute("DELETE FROM nodes WHERE id IN (SELECT value FROM json_each(:ids))", arg)
            self.edge_delta.subtract(gone_edges)
            self.node_delta.subtract(gone_nodes)
            for x in batch:
                self._nids.pop(x, None)
            self._report.edges_deleted += sum(gone_edges.values())
            self._report.nodes_deleted += sum(gone_nodes.values())
        self._report.seconds += time.perf_counter() - t0

    def delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self._check()
        self.written.lose_edges()
        self.written.lose_nodes()
        t0 = time.perf_counter()
        conn = self._conn
        for batch in _chunks(list(keys), BATCH):
            nid = dict(_rows_by_ids(conn, _NID_OF, {x for k in batch for x in (k[0], k[2])}))
            rows = [(nid[s], r, nid[d]) for s, r, d in batch if s in nid and d in nid]
            eids = [
                (eid, rel) for s, r, d in rows
                for eid, rel in conn.execute(_EDGE_BY_KEY, (s, r, d))
            ]
            conn.executemany("DELETE FROM edges WHERE eid = ?", [(e,) for e, _ in eids])
            conn.executemany(
                "INSERT INTO edge_tombstones(gen, eid) VALUES (?, ?)", [(self.generation, e) for e, _ in eids]
            )
            self.edge_delta.subtract(Counter(rel for _, rel in eids))
            self._report.edges_deleted += len(eids)
        self._report.seconds += time.perf_counter() - t0

    def _maybe_defer(self, table: str, rows: int) -> None:
        """Bulk loads: once this transaction has written more rows into ``table`` than the table
        held before (and at least DEFER_AT), drop its secondary index; :meth:`finish` rebuilds
        it by one sort at commit, which beats keeping it sorted row by row. Inside the
        transaction, so a rollback or a crash restores the index with everything else."""
        self._written[table] += rows
        if table == "edges" and "nodes" in self._deferred:
            # a loader writes its nodes first: their index is rebuilt now, while a pipelined
            # load's other process is still checking edges, instead of after the last edge
            self._conn.execute(_SECONDARY["nodes"][1])
            self._deferred.discard("nodes")
        if table in self._deferred or self._written[table] < DEFER_AT:
            return
        held = self.committed_counts[table]
        if self._written[table] <= held:
            return
        name = _SECONDARY[table][0]
        self._conn.execute(f"DROP INDEX IF EXISTS {name}")
        self._deferred.add(table)

    def finish(self) -> None:
        """Work due at commit: rebuild deferred indexes, fold in the count deltas."""
        for table in sorted(self._deferred):
            self._conn.execute(_SECONDARY[table][1])
        self._deferred.clear()
        self.write_counts()

    @property
    def bulk(self) -> bool:
        """Whether this transaction wrote enough edges to refresh the topology index at commit."""
        return self._written["edges"] >= INDEX_AT

    def write_counts(self) -> None:
        """Fold the count deltas into the persisted counts (inside the transaction)."""
        for table, col, delta in (("node_counts", "cls", self.node_delta), ("edge_counts", "rel", self.edge_delta)):
            rows = [(k, n) for k, n in delta.items() if n]
            self._conn.executemany(
                f"INSERT INTO {table}({col}, n) VALUES (?, ?) ON CONFLICT({col}) DO UPDATE SET n = n + excluded.n",
                rows,
            )


class _Speculation:
    """The topology index of a bulk transaction built in a thread while its writer rebuilds the
    secondary indexes and commits (SQLite runs without the GIL, so both cores work): at large,
    ~2.3 s that would otherwise follow the commit. Only a guess until :func:`adjacency.is_current`
    confirms it after the commit; any failure here just means the usual build."""

    def __init__(self, written: adjacency.Written, conn: sqlite3.Connection, generation: int) -> None:
        self._args = (written, adjacency.store_id(conn), generation)
        self._result: adjacency.Adjacency | None = None
        self._thread = threading.Thread(target=self._run, name="index-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = adjacency.speculate(*self._args)
        except (ValueError, MemoryError) as exc:
            _log.warning("building the topology index ahead of the commit failed (%s)", exc)

    def result(self) -> adjacency.Adjacency | None:
        self._thread.join()
        return self._result


def _classes_on(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, str]:
    return dict(_rows_by_ids(conn, "SELECT id, cls FROM nodes WHERE id IN (SELECT value FROM json_each(:ids))", ids))


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
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._cache_mb = cache_mb
        self._check_path()
        self._closed = False
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._adj: adjacency.Adjacency | None = None
        self._adj_lock = threading.Lock()
        self._props = propindex.PropertyIndex(self.path / propindex.CACHE_FILE)
        self._writer = self._connect(self._cache_mb)
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
            ours = (DB_FILE, adjacency.CACHE_FILE, propindex.CACHE_FILE)
            foreign = [p.name for p in self.path.iterdir() if not p.name.startswith(ours)]
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

    def _connect(self, cache_mb: int = READER_CACHE_MB) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self._db, isolation_level=None, check_same_thread=False, timeout=BUSY_MS / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA journal_size_limit=67108864")
            conn.execute("PRAGMA foreign_keys=OFF")
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if "locked" in str(exc):
                raise StoreUnavailableError(
                    f"{self._db}: another process held the store for {BUSY_MS / 1000:g} s (a first load "
                    "into an empty store holds it alone until it commits); try again when it is done"
                ) from None
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
            self._ensure_store_id()
            return
        conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
        self._ensure_store_id()

    def _ensure_store_id(self) -> None:
        """A random identity for this database, stamped into the topology cache so a cache can
        never be taken for another database's (one recreated or restored under the same path)."""
        conn = self._writer
        if conn.execute("SELECT 1 FROM meta WHERE key = 'store_id'").fetchone() is None:
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,))

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
        return adjacency.generation(self._read())

    # -- writes -------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        return self._transaction()

    def bulk_transaction(self) -> AbstractContextManager[WriteTransaction]:
        """A transaction for one large load. Into an empty store that no other connection has
        open, the load holds the database alone (``tx.sole``) and writes it with a rollback
        journal instead of the WAL: each page is then written once, into the database, where
        WAL mode writes it twice (into the log, then at the checkpoint). Other processes that
        open the store meanwhile wait for the commit. Otherwise a plain :meth:`transaction`."""
        return self._transaction(bulk=True)

    @contextmanager
    def _transaction(self, bulk: bool = False) -> Iterator[WriteTransaction]:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("a transaction is already open in this thread; nested transactions are not supported")
        with self._write_lock:
            conn = self._writer
            sole = bulk and self._begin_sole(conn)
            if not sole:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise StoreUnavailableError(f"{self._db}: cannot start a write ({exc})") from None
            tx = _EmbeddedTransaction(conn, adjacency.generation(conn) + 1)
            tx.sole = sole
            self._local.tx = tx
            speculation: _Speculation | None = None
            try:
                yield tx
                if tx.failure is not None:
                    raise tx.failure
                if tx.bulk:
                    speculation = _Speculation(tx.written, conn, tx.generation)
                tx.finish()
                conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(tx.generation),))
                if tx.bulk and not sole:  # its checkpoint runs beside the index refresh below, not in COMMIT
                    conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.tx = None
                if sole:
                    self._back_to_wal(conn)
                ready = speculation.result() if speculation is not None else None
        if tx.bulk:
            # A large load just committed: bring the topology index and its cache file up to date
            # here, where a progress bar is already shown, not in the next process's first query.
            # The data is committed whatever happens here; a failure only costs that later build.
            # In WAL mode another thread meanwhile copies the load's pages from the WAL into the
            # database (SQLite works without the GIL): ~3 s at large, which COMMIT would otherwise
            # spend. A sole load wrote them into the database already.
            checkpoint = None if sole else threading.Thread(target=self._checkpoint, name="wal-checkpoint")
            if checkpoint is not None:
                checkpoint.start()
            try:
                self._index(self._read(), force_save=True, written=tx.written, ready=ready)
            except (OSError, sqlite3.Error, ValueError, MemoryError) as exc:
                _log.warning("%s: could not refresh the topology index after a bulk load (%s)", self.path, exc)
            finally:
                if checkpoint is not None:
                    checkpoint.join()

    def _begin_sole(self, conn: sqlite3.Connection) -> bool:
        """Begin an exclusive rollback-journal transaction on an empty store; False (nothing
        begun, WAL mode kept) when the store holds data or another connection has it open."""
        if not self._empty(conn):
            return False
        own = getattr(self._local, "reader", None)
        if own is not None:  # this thread's idle reader would keep the WAL open too
            self._local.reader = None
            with self._conns_lock:
                self._all_conns.remove(own)
            own.close()
        conn.execute("PRAGMA busy_timeout=0")  # another connection: give up at once
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        except sqlite3.OperationalError:
            mode = "wal"
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        if mode != "delete":
            return False
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            self._back_to_wal(conn)
            return False
        if not self._empty(conn):  # another process wrote between the check and the lock
            conn.execute("ROLLBACK")
            self._back_to_wal(conn)
            return False
        return True

    @staticmethod
    def _empty(conn: sqlite3.Connection) -> bool:
        return not conn.execute("SELECT EXISTS (SELECT 1 FROM nodes) OR EXISTS (SELECT 1 FROM edges)").fetchone()[0]

    def _back_to_wal(self, conn: sqlite3.Connection) -> None:
        """WAL mode again after a sole transaction; should that fail, every connection that
        opens the store (the next one included) sets it anyway."""
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            _log.warning("%s: could not return to WAL mode after a bulk load (%s)", self.path, exc)

    def _checkpoint(self) -> None:
        """The WAL checkpoint a bulk commit skipped, then automatic checkpoints again."""
        with self._write_lock:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next automatic checkpoint tries again
                _log.warning("%s: WAL checkpoint after a bulk load failed (%s)", self.path, exc)
            finally:
                self._writer.execute("PRAGMA wal_autocheckpoint=1000")

    def column_preparer(self) -> EmbeddedPreparer:
        return EmbeddedPreparer()

    def process_opener(self) -> Callable[[], GraphStore]:
        """Another process opens the same directory: SQLite in WAL mode lets it read the committed
        state while this process holds a write transaction."""
        return partial(EmbeddedStore, self.path)

    # -- reads --------------------------------------------------------------------------------
    def node_classes(self, ids: Iterable[str]) -> dict[str, str]:
        return _classes_on(self._read(), ids)

    def get_nodes(self, ids: Iterable[str], as_of: datetime | None = None) -> dict[str, NodeRecord]:
        conn = self._read()
        t = _as_of(as_of)
        cond = "" if t is None else f" AND {_NODE_VALID}"
        out: dict[str, NodeRecord] = {}
        for batch in _chunks(list(ids), _CHUNK):
            sql = f"{_NODE_SELECT} WHERE n.id IN (SELECT value FROM json_each(:ids)){cond}"
            for node in _nodes_from(conn.execute(sql, {"ids": json.dumps(list(batch)), "t": t}).fetchall()):
                out[node.id] = node
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

    def neighbours_many(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> dict[str, list[EdgeRecord]]:
        """:meth:`neighbours` of many ids in one SQL query per direction (per 20k ids), with the
        property documents parsed by one ``json.loads`` per query instead of one per edge."""
        ids = list(dict.fromkeys(node_ids))
        out: dict[str, list[EdgeRecord]] = {n: [] for n in ids}
        rel_list = None if rels is None else list(dict.fromkeys(rels))
        if not ids or (rel_list is not None and not rel_list):
            return out
        conn = self._read()
        t = _as_of(as_of)
        direction = Direction(direction)
        conds = ["h.id IN (SELECT value FROM json_each(:ids))"]
        params: dict[str, Any] = {"t": t}
        if rel_list is not None:
            conds.append("e.rel IN (SELECT value FROM json_each(:rels))")
            params["rels"] = json.dumps(rel_list)
        if t is not None:
            conds += [_EDGE_VALID, _NODE_VALID, _NODE_VALID.replace("n.", "h.")]
        fromiso = datetime.fromisoformat
        for here, there in _sides(direction):
            sql = (
                "SELECT h.id, e.rel, n.id, e.source_system, e.valid_from, e.valid_to, e.props "
                f"FROM nodes h JOIN edges e ON e.{here} = h.nid JOIN nodes n ON n.nid = e.{there} "
                f"WHERE {' AND '.join(conds)}"
            )
            for batch in _chunks(ids, _CHUNK):
                rows = conn.execute(sql, {**params, "ids": json.dumps(list(batch))}).fetchall()
                if not rows:
                    continue
                props = json.loads("[" + ",".join(r[6] for r in rows) + "]")
                for r, p in zip(rows, props, strict=True):
                    src, dst = (r[0], r[2]) if here == "src" else (r[2], r[0])
                    out[r[0]].append(EdgeRecord(
                        src, r[1], dst, p, r[3],
                        None if r[4] is None else fromiso(r[4]), None if r[5] is None else fromiso(r[5])))
        for n, lst in out.items():
            if len(lst) > 1:
                if direction == Direction.BOTH:  # a loop edge is found from both sides
                    lst = list({e.key: e for e in lst}.values())
                lst.sort(key=_edge_key)
                out[n] = lst
        return out

    def _index_view(
        self, ids: Iterable[str], as_of: datetime | None
    ) -> tuple[sqlite3.Connection, int | None, adjacency.Adjacency, dict[str, int]] | None:
        """What a read served by the topology index starts from: the read connection, ``as_of`` in
        microseconds, the index and the rowids of the stored ``ids`` (valid then). None when one
        of them was committed after the index was read: the caller then answers without it.
        Outside a write transaction only (the callers check: it must see its own rows)."""
        conn = self._read()
        t = _as_of(as_of)
        adj = self._index(conn)
        nids = _nids_of(conn, ids, t)
        if nids and max(nids.values()) >= adj.size:
            return None
        return conn, t, adj, nids

    def neighbour_links(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
        classes: Iterable[str] | None = None,
    ) -> dict[str, list[Link]]:
        """Ids-only neighbours from the in-memory topology index: no edge rows are read (with
        ``as_of``, one validity look-up of the edges and far nodes found). Inside a write
        transaction, or when the index is behind, the SQL default of the base class answers."""
        ids = list(dict.fromkeys(node_ids))
        if getattr(self._local, "tx", None) is not None:
            return super().neighbour_links(ids, rels, direction, as_of, classes)
        out: dict[str, list[Link]] = {n: [] for n in ids}
        rel_list = None if rels is None else list(dict.fromkeys(rels))
        if not ids or (rel_list is not None and not rel_list):
            return out
        direction = Direction(direction)
        view = self._index_view(ids, as_of)
        if view is None:
            return super().neighbour_links(ids, rels, direction, as_of, classes)
        conn, t, adj, nids = view
        if not nids:
            return out
        edges = _index_edges(adj, np.array(sorted(nids.values()), dtype=np.int64),
                             adj.rel_names if rel_list is None else rel_list, direction, classes)
        if edges is None:
            return out
        here, there, rel, eid, outgoing = edges
        if t is not None and len(eid):
            keep = _valid_at_mask(conn, eid, there, t)
            here, there, rel, outgoing = here[keep], there[keep], rel[keep], outgoing[keep]
        near_of = {v: k for k, v in nids.items()}
        names = adj.rel_names
        far_of: dict[int, tuple[str, str]] = {}
        for o in np.unique(there).tolist():
            far_of[o] = (adj.node_id(o), adj.node_cls(o))
        for h, o, r, d in zip(here.tolist(), there.tolist(), rel.tolist(), outgoing.tolist(), strict=True):
            near = near_of[h]
            far, cls = far_of[o]
            if d:
                out[near].append(Link(near, names[r], far, far, cls))
            else:
                out[near].append(Link(far, names[r], near, far, cls))
        for n, lst in out.items():
            if len(lst) > 1:
                if direction == Direction.BOTH:
                    lst = list(dict.fromkeys(lst))
                lst.sort(key=_link_key)
                out[n] = lst
        return out

    def top_neighbours(
        self,
        node_ids: Iterable[str],
        rel: str,
        direction: Direction = Direction.OUT,
        k: int = 10,
        classes: Iterable[str] | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, list[str]]:
        """From the topology index: the far nodes' ids are compared as bytes in numpy
        (:mod:`store.topk`) and only the kept ones decoded. Inside a write transaction, when the
        index is behind, or for ids the index cannot compare, the default answers."""
        ids = list(dict.fromkeys(node_ids))
        if getattr(self._local, "tx", None) is not None:
            return super().top_neighbours(ids, rel, direction, k, classes, as_of)
        out: dict[str, list[str]] = {n: [] for n in ids}
        if not ids or k <= 0:
            return out
        direction = Direction(direction)
        view = self._index_view(ids, as_of)
        if view is None:
            return super().top_neighbours(ids, rel, direction, k, classes, as_of)
        conn, t, adj, nids = view
        if not nids:
            return out
        edges = _index_edges(adj, np.array(sorted(nids.values()), dtype=np.int64), [rel], direction, classes)
        if edges is None:
            return out
        here, there, _, eid, _ = edges
        if t is not None and len(eid) and direction == Direction.BOTH:  # a far node may come twice
            keep = _valid_at_mask(conn, eid, there, t)
            here, there = here[keep], there[keep]
        keys = topk.id_keys(adj, there)
        if keys is None:
            return super().top_neighbours(ids, rel, direction, k, classes, as_of)
        if t is not None and len(eid) and direction != Direction.BOTH:  # validity of the top ones only
            keep = topk.valid_top(here, keys, k, lambda at: _valid_at_mask(conn, eid[at], there[at], t))
            here, there, keys = here[keep], there[keep], keys[keep]
        near_of = {v: n for n, v in nids.items()}
        for h, far in topk.top_per_group(here, there, keys, k).items():
            out[near_of[h]] = [adj.node_id(o) for o in far.tolist()]
        return out

    # -- topology index -------------------------------------------------------------------------
    def build_index(self) -> dict[str, Any]:
        """Bring the in-memory topology index up to date now (and persist it), instead of on the
        first traversal; loaders call this after a large load. Returns its size figures."""
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("build_index() inside a write transaction; call it after the commit")
        return adjacency.stats(self._index(self._read(), force_save=True))

    def _index(
        self, conn: sqlite3.Connection, force_save: bool = False, written: adjacency.Written | None = None,
        ready: adjacency.Adjacency | None = None,
    ) -> adjacency.Adjacency:
        """The topology index at the database's generation (``ready``: one built ahead, taken
        when it is exactly what a build would read now)."""
        adj = self._adj
        if adj is not None and not force_save and adjacency.generation(conn) == adj.generation:
            return adj
        cache = self.path / adjacency.CACHE_FILE
        with self._adj_lock:
            adj = self._adj
            save = force_save
            if adj is None and ready is not None and adjacency.is_current(ready, conn):
                adj, save = ready, True
            elif adj is None and cache.exists():
                try:
                    adj = adjacency.Adjacency.load(cache)
                except (OSError, ValueError, KeyError, EOFError) as exc:
                    _log.warning("%s: unreadable adjacency cache (%s); rebuilding it", cache, exc)
                    adj = None
            if adj is not None:
                fresh = adjacency.refresh(adj, conn, written)
                if fresh is None:
                    _log.warning("%s: adjacency cache is newer than the database; rebuilding it", cache)
                adj = fresh
            if adj is None:
                adj = adjacency.build(conn, written)
                save = True
            elif len(adj.ov_eid) > adjacency.MERGE_AT:
                adj = adj.merged()
                save = True
            if save:
                try:
                    adj = adj.merged()
                    adj.save(cache)
                except OSError as exc:  # a read-only store still works, just slower to open
                    _log.warning("%s: cannot write the adjacency cache (%s)", cache, exc)
            self._adj = adj
            return adj

    def traverse(
        self,
        starts: Sequence[str],
        steps: Sequence[TraversalStep],
        max_depth: int,
        as_of: datetime | None = None,
        max_nodes: int = 100_000,
        through_classes: frozenset[str] | None = None,
        edge_payloads: bool = True,
    ) -> Traversal:
        """Breadth-first traversal on the in-memory topology index (see :mod:`store.adjacency`).

        A node first seen at depth d+1 takes as parent edge the smallest key ``(src, rel, dst)``
        among the edges reaching it from depth d, so the tree does not depend on scan order.
        Starts are always expanded; ``through_classes`` applies to the nodes reached. When a
        level would exceed ``max_nodes`` its nodes are admitted in parent-edge-key order.
        ``truncated_reason`` is ``"max_depth"`` when nodes at ``max_depth`` still have edges to
        unreached nodes, ``"max_nodes"`` when the node cap cut a level short. Inside a write
        transaction (which sees its own uncommitted rows) the same walk runs in SQL instead.
        Without ``edge_payloads`` the edges' rows are not read (~8 % of a big trace), unless a
        commit landed during the walk: then they are read as usual, and a deleted edge's missing
        row sends the walk to SQL.
        """
        if max_depth < 0:
            raise StoreError(f"max_depth must be >= 0, got {max_depth}")
        if max_nodes < 1:
            raise StoreError(f"max_nodes must be >= 1, got {max_nodes}")
        if getattr(self._local, "tx", None) is not None:
            return self._traverse_sql(starts, steps, max_depth, as_of, max_nodes, through_classes)
        conn = self._read()
        t = _as_of(as_of)
        adj = self._index(conn)
        out_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.OUT, Direction.BOTH)})
        in_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.IN, Direction.BOTH)})
        start_ids = list(dict.fromkeys(starts))
        start_rows = _nids_of(conn, start_ids, t)
        if any(nid >= adj.size for nid in start_rows.values()):  # committed after the index was read
            return self._traverse_sql(starts, steps, max_depth, as_of, max_nodes, through_classes)

        hops: dict[str, Hop] = {}
        ids: dict[int, str] = {}
        seen = np.zeros(adj.size, dtype=bool)
        frontier: list[int] = []
        reason: str | None = None
        for sid in start_ids:
            if sid not in start_rows:
                continue
            if len(hops) >= max_nodes:
                reason = "max_nodes"
                break
            nid = start_rows[sid]
            hops[sid] = Hop(node=sid, depth=0, parent=None, edge=None)
            ids[nid] = sid
            seen[nid] = True
            frontier.append(nid)

        tree: list[tuple[str, int, str, tuple[str, str, str]]] = []
        eids: list[int] = []
        depth = 0
        while frontier and reason is None:
            if depth >= max_depth:  # only ask whether the walk would have gone on
                if self._expand_index(conn, adj, frontier, out_rels, in_rels, t, seen, ids, probe=True):
                    reason = "max_depth"
                break
            candidates = self._expand_index(conn, adj, frontier, out_rels, in_rels, t, seen, ids)
            if not candidates:
                break
            depth += 1
            best: dict[int, _Candidate] = {}
            for cand in candidates:
                cur = best.get(cand[1])
                if cur is None or cand[0] < cur[0]:
                    best[cand[1]] = cand
            frontier = []
            admitted: list[int] = []
            for key, other, other_id, other_cls, parent, eid in sorted(best.values()):
                if len(ids) >= max_nodes:
                    reason = "max_nodes"
                    break
                ids[other] = other_id
                admitted.append(other)
                tree.append((other_id, depth, parent, key))
                eids.append(eid)
                if through_classes is None or other_cls in through_classes:
                    frontier.append(other)
            seen[np.array(admitted, dtype=np.int64)] = True
        if tree and not edge_payloads and adjacency.generation(conn) == adj.generation:
            for node_id, d, parent, key in tree:
                hops[node_id] = Hop(node=node_id, depth=d, parent=parent, edge=EdgeRecord(*key))
        elif tree:
            payload = _payloads(conn, eids)
            for (node_id, d, parent, key), eid in zip(tree, eids, strict=True):
                row = payload.get(eid)
                if row is None:  # deleted by a commit that landed during this walk
                    return self._traverse_sql(starts, steps, max_depth, as_of, max_nodes, through_classes)
                hops[node_id] = Hop(node=node_id, depth=d, parent=parent, edge=_edge_from(*key, row))
        return Traversal(hops=hops, truncated=reason is not None, truncated_reason=reason)

    def _expand_index(
        self,
        conn: sqlite3.Connection,
        adj: adjacency.Adjacency,
        frontier: Sequence[int],
        out_rels: Sequence[str],
        in_rels: Sequence[str],
        t: int | None,
        seen: np.ndarray[Any, np.dtype[np.bool_]],
        ids: Mapping[int, str],
        probe: bool = False,
    ) -> list[_Candidate]:
        """The best (smallest-key) edge to each node reachable from the frontier and unseen
        (with ``probe``, any one such edge)."""
        parts = adj.expand(np.array(frontier, dtype=np.int64), out_rels, in_rels, seen)
        if not parts:
            return []
        here, there, rel, eid, outgoing = _join_parts(parts)
        if t is not None:
            keep = _valid_at_mask(conn, eid, there, t)
            here, there, rel, eid, outgoing = here[keep], there[keep], rel[keep], eid[keep], outgoing[keep]
            if not len(there):
                return []
        if probe:
            return [(("", "", ""), int(there[0]), "", "", "", int(eid[0]))]
        # one candidate per target unless several edges reach it: only those need key comparisons
        order = np.argsort(there, kind="stable")
        here, there, rel, eid, outgoing = here[order], there[order], rel[order], eid[order], outgoing[order]
        _, first, counts = np.unique(there, return_index=True, return_counts=True)
        names = adj.rel_names
        out: list[_Candidate] = []
        h_l, o_l, r_l, e_l, d_l = here.tolist(), there.tolist(), rel.tolist(), eid.tolist(), outgoing.tolist()
        for i, c in zip(first.tolist(), counts.tolist(), strict=True):
            o = o_l[i]
            oid = adj.node_id(o)
            best: tuple[tuple[str, str, str], str, int] | None = None
            for j in range(i, i + c):
                hid = ids[h_l[j]]
                key = (hid, names[r_l[j]], oid) if d_l[j] else (oid, names[r_l[j]], hid)
                if best is None or key < best[0]:
                    best = (key, hid, e_l[j])
            assert best is not None
            out.append((best[0], o, oid, adj.node_cls(o), best[1], best[2]))
        return out

    def _traverse_sql(
        self,
        starts: Sequence[str],
        steps: Sequence[TraversalStep],
        max_depth: int,
        as_of: datetime | None = None,
        max_nodes: int = 100_000,
        through_classes: frozenset[str] | None = None,
    ) -> Traversal:
        """Level-synchronous BFS in SQL: per level one index-only query per direction, one
        rowid look-up of the newly reached nodes, and at the end one look-up of the tree edges'
        payloads.

        A node first seen at depth d+1 takes as parent edge the smallest key ``(src, rel, dst)``
        among the edges reaching it from depth d, so the tree does not depend on scan order.
        Starts are always expanded; ``through_classes`` applies to the nodes reached. When a
        level would exceed ``max_nodes`` its nodes are admitted in parent-edge-key order.
        ``truncated_reason`` is ``"max_depth"`` when nodes at ``max_depth`` still have edges to
        unreached nodes, ``"max_nodes"`` when the node cap cut a level short.
        """
        if max_depth < 0:
            raise StoreError(f"max_depth must be >= 0, got {max_depth}")
        if max_nodes < 1:
            raise StoreError(f"max_nodes must be >= 1, got {max_nodes}")
        conn = self._read()
        t = _as_of(as_of)
        out_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.OUT, Direction.BOTH)})
        in_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.IN, Direction.BOTH)})
        start_ids = list(dict.fromkeys(starts))
        start_rows = _nids_of(conn, start_ids, t)
        hops: dict[str, Hop] = {}
        ids: dict[int, str] = {}  # nid -> id of every node reached
        frontier: list[int] = []
        reason: str | None = None
        for sid in start_ids:
            if sid not in start_rows:
                continue
            if len(hops) >= max_nodes:
                reason = "max_nodes"
                break
            hops[sid] = Hop(node=sid, depth=0, parent=None, edge=None)
            ids[start_rows[sid]] = sid
            frontier.append(start_rows[sid])

        tree: list[tuple[str, int, str, tuple[str, str, str]]] = []  # (node, depth, parent, key)
        eids: list[int] = []
        depth = 0
        while frontier and reason is None:
            candidates = self._expand(conn, frontier, out_rels, in_rels, t, ids)
            if not candidates:
                break
            if depth >= max_depth:
                reason = "max_depth"
                break
            depth += 1
            best: dict[int, _Candidate] = {}
            for cand in candidates:
                cur = best.get(cand[1])
                if cur is None or cand[0] < cur[0]:
                    best[cand[1]] = cand
            frontier = []
            for key, other, other_id, other_cls, parent, eid in sorted(best.values()):
                if len(ids) >= max_nodes:
                    reason = "max_nodes"
                    break
                ids[other] = other_id
                tree.append((other_id, depth, parent, key))
                eids.append(eid)
                if through_classes is None or other_cls in through_classes:
                    frontier.append(other)

        if tree:
            payload = _payloads(conn, eids)
            for (node_id, d, parent, key), eid in zip(tree, eids, strict=True):
                hops[node_id] = Hop(node=node_id, depth=d, parent=parent, edge=_edge_from(*key, payload[eid]))
        return Traversal(hops=hops, truncated=reason is not None, truncated_reason=reason)

    def _expand(
        self,
        conn: sqlite3.Connection,
        frontier: Sequence[int],
        out_rels: Sequence[str],
        in_rels: Sequence[str],
        t: int | None,
        ids: Mapping[int, str],
    ) -> list[_Candidate]:
        """Edges from the frontier to nodes not reached yet (and valid at ``t``):
        (key, other nid, other id, other class, frontier id, edge rowid)."""
        found: list[tuple[int, str, int, int, bool]] = []  # (here, rel, other, eid, outgoing)
        edge_valid = "" if t is None else f" AND {_EDGE_VALID}"
        for rels, here, there in ((out_rels, "src", "dst"), (in_rels, "dst", "src")):
            if not rels:
                continue
            sql = (
                f"SELECT e.{here}, e.rel, e.{there}, e.eid FROM edges e "
                f"WHERE e.{here} IN (SELECT value FROM json_each(:ids)) "
                f"AND e.rel IN (SELECT value FROM json_each(:rels)){edge_valid}"
            )
            outgoing = here == "src"
            for h, rel, o, eid in _rows_by_ids(conn, sql, frontier, rels=json.dumps(list(rels)), t=t):
                if o not in ids:
                    found.append((h, rel, o, eid, outgoing))
        if not found:
            return []
        node_valid = "" if t is None else f" AND {_NODE_VALID}"
        others = {
            nid: (nid_id, cls)
            for nid, nid_id, cls in _rows_by_ids(
                conn,
                f"SELECT nid, id, cls FROM nodes n WHERE nid IN (SELECT value FROM json_each(:ids)){node_valid}",
                {f[2] for f in found},
                t=t,
            )
        }
        out: list[_Candidate] = []
        for h, rel, o, eid, outgoing in found:
            hit = others.get(o)
            if hit is None:
                continue
            hid = ids[h]
            key = (hid, rel, hit[0]) if outgoing else (hit[0], rel, hid)
            out.append((key, o, hit[0], hit[1], hid, eid))
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
        keyed = False  # narrowed by the property index: the class condition must not pick an index
        for i, (key, value) in enumerate((where or {}).items()):
            if key in ("name", "source_system", "id"):
                conds.append(f"n.{key} IS :w{i}")
                params[f"w{i}"] = value
                continue
            checks.append((key, value))
            # (not with a limit: the class's id index then stops early, the candidates would be sorted)
            if not keyed and cls is not None and limit is None \
                    and (nids := self._candidates(conn, cls, key, [value])) is not None:
                conds.append("n.nid IN (SELECT value FROM json_each(:nids))")
                params["nids"] = nids
                keyed = True
            if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
                conds.append(f"json_extract(n.props, :p{i}) = :w{i}")
                params[f"p{i}"] = '$."' + key.replace('"', '\\"') + '"'
                params[f"w{i}"] = value
            elif value is None:  # missing or JSON null, both SQL NULL (the check below agrees)
                conds.append(f"json_extract(n.props, :p{i}) IS NULL")
                params[f"p{i}"] = '$."' + key.replace('"', '\\"') + '"'
        if keyed:
            conds[0] = "+n.cls = :cls"
        sql = f"{_NODE_SELECT}{' WHERE ' + ' AND '.join(conds) if conds else ''} ORDER BY n.id"
        return self._iter_nodes(conn, sql, params, checks, limit)

    def find_nodes_in(
        self,
        cls: str,
        prop: str,
        values: Sequence[Any],
        plant: str | None = None,
        as_of: datetime | None = None,
    ) -> list[NodeRecord]:
        """One scan of the class for all ``values`` (SQL narrows by the JSON value, then the
        exact JSON equality of ``find_nodes`` decides)."""
        if prop in ("name", "source_system", "id"):
            return super().find_nodes_in(cls, prop, values, plant, as_of)
        if not values:
            return []
        conn = self._read()
        t = _as_of(as_of)
        path = '$."' + prop.replace('"', '\\"') + '"'
        conds = ["n.cls = :cls"]
        params: dict[str, Any] = {"cls": cls, "t": t, "p": path, "plant": plant}
        if plant is not None:
            conds.append("n.plant = :plant")
        if t is not None:
            conds.append(_NODE_VALID)
        plain = [v for v in values if isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool))]
        alts = []
        if plain:
            alts.append("json_extract(n.props, :p) IN (SELECT value FROM json_each(:vals))")
            params["vals"] = json.dumps(plain)
        if any(v is None for v in values):
            alts.append("json_extract(n.props, :p) IS NULL")
        if len(plain) + sum(v is None for v in values) < len(values):  # other values: checked in Python only
            alts = []
        if alts:
            conds.append("(" + " OR ".join(alts) + ")")
        if (nids := self._candidates(conn, cls, prop, values)) is not None:
            conds[0] = "+n.cls = :cls"  # look the candidates up by key, not the class by index
            conds.append("n.nid IN (SELECT value FROM json_each(:nids))")
            params["nids"] = nids
        sql = f"{_NODE_SELECT} WHERE {' AND '.join(conds)} ORDER BY n.id"
        return [n for n in self._iter_nodes(conn, sql, params, (), None)
                if any(_same(n.props, prop, v) for v in values)]

    def find_nodes_after(
        self,
        cls: str,
        prop: str,
        t: datetime,
        plant: str | None = None,
        as_of: datetime | None = None,
    ) -> list[NodeRecord]:
        """The candidates come from the property index's decoded time column (one scan of the
        class per generation); their rows are read by key and checked exactly as the default."""
        if getattr(self._local, "tx", None) is not None:
            return super().find_nodes_after(cls, prop, t, plant, as_of)
        conn = self._read()
        gen = adjacency.generation(conn)
        nids = self._props.later(conn, gen, cls, prop, t)
        if len(nids) > propindex.MAX_CANDIDATES:
            return super().find_nodes_after(cls, prop, t, plant, as_of)
        ta = _as_of(as_of)
        conds = ["n.nid IN (SELECT value FROM json_each(:nids))", "+n.cls = :cls"]
        if plant is not None:
            conds.append("n.plant = :plant")
        if ta is not None:
            conds.append(_NODE_VALID)
        sql = f"{_NODE_SELECT} WHERE {' AND '.join(conds)} ORDER BY n.id"
        params = {"nids": json.dumps(nids.tolist()), "cls": cls, "plant": plant, "t": ta}
        return [n for n in self._iter_nodes(conn, sql, params, (), None) if later_than(n.props.get(prop), t)]

    def _candidates(self, conn: sqlite3.Connection, cls: str, prop: str, values: Sequence[Any]) -> str | None:
        """The keys of the class's nodes whose ``prop`` may equal one of ``values``, as a JSON
        list for ``json_each``, from the in-memory property index (:mod:`store.propindex`); None
        where it does not apply (a value it does not index, more than ``MAX_CANDIDATES`` of them,
        or inside a write transaction, which must see its own writes), and the caller scans the
        class."""
        if not values or getattr(self._local, "tx", None) is not None:
            return None
        if not all(propindex.indexable(v) for v in values):
            return None
        gen = adjacency.generation(conn)
        nids = self._props.candidates(conn, gen, cls, prop, values)
        return json.dumps(nids.tolist()) if len(nids) <= propindex.MAX_CANDIDATES else None

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
                for node in _nodes_from(rows):
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
