"""The Neo4j backend: the :class:`~store.base.GraphStore` interface on the official ``neo4j`` driver.

Layout in the database:

- every entity is a node with the common label ``:Entity`` plus one label per ontology class
  (``:Lot``, ``:Machine``...). Its properties are the common fields (``id``, ``cls``, ``name``,
  ``plant``, ``source_system``, ``valid_from``, ``valid_to``), the class-specific properties as
  native Neo4j values (timestamps of the class model as temporal ``DATETIME`` with their offset,
  so Cypher can compare them), and ``_props``: the exact JSON document of ``NodeRecord.props``,
  which is what reads return, so a record round-trips byte for byte whatever its values are.
- every relation is a relationship whose type is the relation name, with the same scheme.
- vectors live on separate ``:PlantgraphVector`` nodes, one extra label and one Neo4j vector
  index per namespace.

Writes: :meth:`Neo4jStore.transaction` is one explicit Neo4j transaction. Batches go in as
``UNWIND $rows ... MERGE`` (values only as parameters); on any failure the transaction is rolled
back, so a bundle load is all or nothing. With ``neo4j://`` URIs reads go through ``execute_read``
(managed, retried), so routing sends them to readers and writes to the leader; with ``bolt://``
(one server) reads are auto-commit queries, one round trip each, retried on transient errors. A
named database and TLS URIs (``neo4j+s://``) need nothing else.

Semantics (time validity, BFS tie-breaking, ``find_nodes`` filters) follow store/base.py and
match :mod:`store.embedded`; the conformance suite in tests/store runs against both.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

import neo4j
from neo4j import Driver, GraphDatabase, ManagedTransaction, Transaction
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from ontology.models import ENTITY_CLASSES, RELATIONS, datetime_fields
from store.base import (
    Direction,
    EdgeRecord,
    GraphStore,
    Hop,
    IntegrityError,
    Link,
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

#: Rows per UNWIND statement.
BATCH = 5_000
#: Ids per look-up statement.
_CHUNK = 20_000
ENTITY_LABEL = "Entity"
VECTOR_LABEL = "PlantgraphVector"
ENTITY_ID_CONSTRAINT = "pg_entity_id"
VECTOR_KEY_CONSTRAINT = "pg_vector_key"
_VECTOR_INDEX_PREFIX = "pg_vec_"
_RESERVED = frozenset(
    {"id", "cls", "name", "plant", "source_system", "valid_from", "valid_to", "_props"}
)
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_EDGE_RESERVED = frozenset({"source_system", "valid_from", "valid_to", "_props"})

#: Properties the impact rules filter on (status, due dates, event times...): indexed by
#: :meth:`Neo4jStore.init_schema` in addition to ``:Entity(cls)``, ``(plant)`` and ``(name)``.
RULE_INDEXES: tuple[tuple[str, str], ...] = (
    ("Lot", "status"),
    ("Lot", "produced_at"),
    ("ProductionOrder", "status"),
    ("ProductionOrder", "actual_start"),
    ("SalesOrderLine", "due_date"),
    ("SalesOrderLine", "status"),
    ("SalesOrder", "status"),
    ("PurchaseOrder", "status"),
    ("PurchaseOrderLine", "promised_date"),
    ("QualityHold", "released_at"),
    ("Incident", "occurred_at"),
    ("Incident", "kind"),
    ("DowntimeEvent", "start"),
    ("MaintenanceOrder", "created_at"),
    ("Anomaly", "detected_at"),
    ("SOPVersion", "effective_from"),
)

T = TypeVar("T")

_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode

# Timestamp properties per class / relation: these become native DATETIME values.
_NODE_TIME_FIELDS: dict[str, frozenset[str]] = {
    name: datetime_fields(model) - _RESERVED for name, model in ENTITY_CLASSES.items()
}
_ALL_NODE_TIME_FIELDS: frozenset[str] = frozenset().union(*_NODE_TIME_FIELDS.values())
_EDGE_TIME_FIELDS: dict[str, frozenset[str]] = {
    name: datetime_fields(r.props) - _EDGE_RESERVED for name, r in RELATIONS.items()
}


# -- names and values ---------------------------------------------------------------------------


def quote_name(name: str) -> str:
    """A label / relationship type / index name as a Cypher identifier (backticks escaped), so any
    stored name is safe to put in query text; values always go in as parameters."""
    return "`" + name.replace("`", "``") + "`"


def _fixed(t: datetime) -> datetime:
    """An aware datetime with a fixed-offset tzinfo (the driver sends it as DATETIME with offset;
    a ZoneInfo would be sent as a zone id)."""
    off = t.utcoffset()
    assert off is not None
    return t.astimezone(timezone(off)) if not isinstance(t.tzinfo, timezone) else t


def _aware(t: datetime | None, what: str) -> datetime | None:
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise IntegrityError(f"{what}: timestamp {t.isoformat()} has no time zone")
    return _fixed(t)


def _as_of(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise StoreError(f"as_of {t.isoformat()} has no time zone; pass an aware datetime")
    return _fixed(t)


def _from_text(v: str | None) -> datetime | None:
    """A DATETIME read back (as Cypher ``toString``) as an aware Python datetime."""
    if v is None:
        return None
    return datetime.fromisoformat(v)


def _iso_time(v: Any) -> str | None:
    """A timestamp property value in canonical ISO form when it is one with an offset, else None
    (then it is kept as a plain property). Sent as text and converted by Cypher ``datetime()``:
    the driver packs Python datetimes an order of magnitude slower than strings."""
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return t.isoformat() if t.tzinfo is not None and t.utcoffset() is not None else None


def _primitive(v: Any) -> bool:
    return isinstance(v, str | bool | int) or (isinstance(v, float) and math.isfinite(v))


def _native_value(v: Any) -> Any:
    """The value as a native Neo4j property, or None when only the JSON document can hold it."""
    if _primitive(v):
        return v
    if isinstance(v, list) and v and all(_primitive(x) for x in v) and len({type(x) for x in v}) == 1:
        return v
    return None


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


def _record_maps(
    what: str, props: Mapping[str, Any], times: frozenset[str], reserved: frozenset[str],
    valid_from: datetime | None, valid_to: datetime | None,
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(plain properties, ISO texts of the DATETIME properties) of one node or edge."""
    vf, vt = _aware(valid_from, what), _aware(valid_to, what)
    plain: dict[str, Any] = {"_props": _props_json(props, what)}
    texts: dict[str, str | None] = {
        "valid_from": vf.isoformat() if vf else None, "valid_to": vt.isoformat() if vt else None,
    }
    for k, v in props.items():
        if k in reserved:
            continue
        if k in times:
            iso = _iso_time(v)
            if iso is not None:
                texts[k] = iso
                continue
        nv = _native_value(v)
        if nv is not None:
            plain[k] = nv
    return plain, texts


def _node_row(n: NodeRecord) -> dict[str, Any]:
    what = f"node {n.id!r}"
    if not n.id:
        raise IntegrityError("node with an empty id")
    if not n.cls:
        raise IntegrityError(f"{what}: empty class")
    plain, texts = _record_maps(
        what, n.props, _NODE_TIME_FIELDS.get(n.cls, frozenset()), _RESERVED, n.valid_from, n.valid_to
    )
    plain.update(id=n.id, cls=n.cls, name=n.name, plant=n.plant, source_system=n.source_system)
    return {"id": n.id, "cls": n.cls, "p": plain, "t": texts}


def _edge_row(e: EdgeRecord) -> dict[str, Any]:
    what = f"edge ({e.src!r}, {e.rel!r}, {e.dst!r})"
    if not e.rel:
        raise IntegrityError(f"{what}: empty relation name")
    plain, texts = _record_maps(
        what, e.props, _EDGE_TIME_FIELDS.get(e.rel, frozenset()), _EDGE_RESERVED, e.valid_from, e.valid_to
    )
    plain["source_system"] = e.source_system
    return {"src": e.src, "dst": e.dst, "p": plain, "t": texts}


def _set_times(var: str, fields: Iterable[str]) -> str:
    """``SET`` items turning the ISO texts in ``r.t`` into DATETIME properties (``datetime(null)``
    is null, so an absent time stays absent). Field names come from the ontology, quoted."""
    return ", ".join(
        f"{var}.{quote_name(f)} = datetime(r.t[{json.dumps(f)}])"
        for f in ("valid_from", "valid_to", *sorted(fields))
    )


def _node_from(r: Mapping[str, Any]) -> NodeRecord:
    return NodeRecord(
        id=r["id"], cls=r["cls"], name=r["name"], plant=r["plant"],
        source_system=r["source_system"] if r["source_system"] is not None else "plantgraph",
        valid_from=_from_text(r["valid_from"]), valid_to=_from_text(r["valid_to"]),
        props=json.loads(r["_props"]) if r["_props"] else {},
    )


def _edge_from(src: str, rel: str, dst: str, p: Mapping[str, Any]) -> EdgeRecord:
    return EdgeRecord(
        src=src, rel=rel, dst=dst,
        source_system=p["source_system"] if p["source_system"] is not None else "plantgraph",
        valid_from=_from_text(p["valid_from"]), valid_to=_from_text(p["valid_to"]),
        props=json.loads(p["_props"]) if p["_props"] else {},
    )


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _valid(var: str) -> str:
    """The Cypher condition "``var`` is valid at ``$t``" (same rule as store/base.py)."""
    return f"({var}.valid_from IS NULL OR {var}.valid_from <= $t) AND ({var}.valid_to IS NULL OR $t < {var}.valid_to)"


def _node_proj(v: str) -> str:
    """Map projection of a node for :func:`_node_from` (times as text: cheap to unpack)."""
    return (
        f"{v} {{.id, .cls, .name, .plant, .source_system, ._props, "
        f"valid_from: toString({v}.valid_from), valid_to: toString({v}.valid_to)}}"
    )


def _edge_proj(v: str) -> str:
    return (
        f"{v} {{.source_system, ._props, valid_from: toString({v}.valid_from), "
        f"valid_to: toString({v}.valid_to)}}"
    )


def _plain(record: neo4j.Record) -> dict[str, Any]:
    """A record as a dict. Every query here returns maps, lists and scalars (never graph entities),
    which the driver already delivers as Python values; ``Record.data()`` would walk each value
    again looking for nodes to convert (a third of a risk board's client CPU)."""
    return dict(zip(record.keys(), record.values(), strict=True))


def _one_line(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())


# -- transaction ------------------------------------------------------------------------------


class _Neo4jTransaction(WriteTransaction):
    """Writes run inside one explicit Neo4j transaction; a failed write poisons it so that nothing
    of it can be committed."""

    def __init__(self, store: Neo4jStore, tx: Transaction) -> None:
        self._store = store
        self.tx = tx
        self._report = WriteReport()
        self.failure: StoreError | None = None

    @property
    def report(self) -> WriteReport:
        return self._report

    def _check(self) -> None:
        if self.failure is not None:
            raise StoreError(f"transaction already failed and will be rolled back: {self.failure}")

    def _run(self, query: str, **params: Any) -> list[neo4j.Record]:
        try:
            return list(self.tx.run(query, params))
        except (Neo4jError, DriverError) as exc:
            err = self._store._translate(exc, "write")
            self.failure = err
            raise err from None

    def _guard(self, fn: Callable[[], None]) -> None:
        self._check()
        t0 = time.perf_counter()
        try:
            fn()
        except StoreError as exc:
            self.failure = exc
            raise
        finally:
            self._report.seconds += time.perf_counter() - t0

    def upsert_nodes(self, nodes: Sequence[NodeRecord]) -> None:
        self._guard(lambda: self._upsert_nodes(nodes))

    def _upsert_nodes(self, nodes: Sequence[NodeRecord]) -> None:
        for batch in _chunks(nodes, BATCH):
            by_cls: dict[str, list[dict[str, Any]]] = defaultdict(list)
            order: list[str] = []
            for n in batch:
                row = _node_row(n)
                if n.cls not in by_cls:
                    order.append(n.cls)
                by_cls[n.cls].append(row)
            for cls in order:
                rows = by_cls[cls]
                # ON CREATE sets the class; an existing node of another class is left untouched
                # and counted as refused, so the common path is one round trip.
                recs = self._run(
                    f"UNWIND $rows AS r MERGE (n:{ENTITY_LABEL} {{id: r.id}}) "
                    "ON CREATE SET n.cls = r.cls "
                    "WITH n, r WHERE n.cls = r.cls "
                    f"SET n = r.p, n:{quote_name(cls)}, {_set_times('n', _NODE_TIME_FIELDS.get(cls, ()))} "
                    "RETURN count(n) AS ok",
                    rows=rows,
                )
                if recs[0]["ok"] != len(rows):
                    raise self._class_change_error(cls, [r["id"] for r in rows])
            self._report.nodes_upserted += len(batch)

    def _class_change_error(self, cls: str, ids: Sequence[str]) -> IntegrityError:
        recs = self._run(
            f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}) WHERE n.cls <> $cls "
            "RETURN n.id AS id, n.cls AS cls LIMIT 1",
            ids=list(ids), cls=cls,
        )
        if recs:
            return IntegrityError(f"node {recs[0]['id']!r} is a {recs[0]['cls']}; cannot change its class to {cls}")
        return IntegrityError("a node upsert tried to change a node's class")

    def upsert_edges(self, edges: Sequence[EdgeRecord]) -> None:
        self._guard(lambda: self._upsert_edges(edges))

    def _upsert_edges(self, edges: Sequence[EdgeRecord]) -> None:
        for batch in _chunks(edges, BATCH):
            by_rel: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for e in batch:
                by_rel[e.rel].append(_edge_row(e))
            for rel, rows in by_rel.items():
                recs = self._run(
                    f"UNWIND $rows AS r MATCH (a:{ENTITY_LABEL} {{id: r.src}}) "
                    f"MATCH (b:{ENTITY_LABEL} {{id: r.dst}}) "
                    f"MERGE (a)-[e:{quote_name(rel)}]->(b) "
                    f"SET e = r.p, {_set_times('e', _EDGE_TIME_FIELDS.get(rel, ()))} RETURN count(e) AS ok",
                    rows=rows,
                )
                if recs[0]["ok"] != len(rows):
                    raise self._missing_endpoint_error(rel, rows)
            self._report.edges_upserted += len(batch)

    def _missing_endpoint_error(self, rel: str, rows: Sequence[Mapping[str, Any]]) -> IntegrityError:
        ends = list({x for r in rows for x in (r["src"], r["dst"])})
        found = {
            rec["id"]
            for rec in self._run(
                f"MATCH (n:{ENTITY_LABEL}) WHERE n.id IN $ids RETURN n.id AS id", ids=ends
            )
        }
        for r in rows:
            for end, role in ((r["src"], "source"), (r["dst"], "target")):
                if end not in found:
                    return IntegrityError(
                        f"edge ({r['src']!r}, {rel!r}, {r['dst']!r}): {role} node {end!r} does not exist "
                        "in the store or earlier in this transaction"
                    )
        return IntegrityError(f"edge upsert of {rel} refused")

    def delete_nodes(self, ids: Sequence[str]) -> None:
        self._guard(lambda: self._delete_nodes(ids))

    def _delete_nodes(self, ids: Sequence[str]) -> None:
        for batch in _chunks(list(dict.fromkeys(ids)), _CHUNK):
            recs = self._run(
                # distinct relationships: an edge between two deleted nodes, or a loop, counts once
                f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}) OPTIONAL MATCH (n)-[r]-() "
                "WITH collect(DISTINCT n) AS ns, count(DISTINCT r) AS edges "
                "FOREACH (x IN ns | DETACH DELETE x) RETURN size(ns) AS nodes, edges",
                ids=list(batch),
            )
            self._report.nodes_deleted += recs[0]["nodes"]
            self._report.edges_deleted += recs[0]["edges"] or 0

    def delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self._guard(lambda: self._delete_edges(keys))

    def _delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None:
        by_rel: dict[str, list[dict[str, str]]] = defaultdict(list)
        for src, rel, dst in keys:
            by_rel[rel].append({"src": src, "dst": dst})
        for rel, rows in by_rel.items():
            for batch in _chunks(rows, BATCH):
                recs = self._run(
                    f"UNWIND $rows AS r MATCH (a:{ENTITY_LABEL} {{id: r.src}})-[e:{quote_name(rel)}]->"
                    f"(b:{ENTITY_LABEL} {{id: r.dst}}) DELETE e RETURN count(e) AS n",
                    rows=list(batch),
                )
                self._report.edges_deleted += recs[0]["n"]


# -- store ------------------------------------------------------------------------------------


class Neo4jStore(GraphStore):
    """A plantgraph graph in a Neo4j 5 database (see the module doc for the layout)."""

    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(
        durable=True, transactions=True, vector_search=True, cypher=True, concurrent_writers=True
    )
    backend: ClassVar[str] = "neo4j"

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        require_schema: bool = True,
        connection_timeout: float = 10.0,
    ) -> None:
        """Connect and check the server, the credentials and the schema; any problem is one
        clear :class:`StoreUnavailableError` line. ``require_schema=False`` skips the schema check
        (for :meth:`init_schema` itself)."""
        self.uri = uri
        self.user = user or "neo4j"
        self.database = database or None
        # neo4j:// (cluster, Aura): managed reads routed to readers, with the driver's retries
        self._routing = uri.lower().startswith("neo4j")
        self._local = threading.local()
        self._closed = False
        auth = (self.user, password) if password is not None else None
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in _SCHEMES:
            raise StoreUnavailableError(
                f"Neo4j URI {uri!r} must start with one of {', '.join(s + '://' for s in _SCHEMES)}"
            )
        try:
            self._driver: Driver = GraphDatabase.driver(
                uri, auth=auth, connection_timeout=connection_timeout,
                connection_acquisition_timeout=max(connection_timeout * 3, 30.0),
                max_transaction_retry_time=15.0,
            )
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailableError(f"Neo4j URI {uri!r} is not usable: {_one_line(exc)}") from None
        try:
            self._driver.verify_connectivity()
            self._read_rows("RETURN 1 AS ok")  # reaches the named database, not only the server
            if require_schema:
                self._check_schema()
        except StoreError:
            self._driver.close()
            raise
        except (Neo4jError, DriverError, OSError) as exc:
            self._driver.close()
            raise self._translate(exc, "connect") from None

    # -- errors -------------------------------------------------------------------------------
    def _translate(self, exc: BaseException, doing: str) -> StoreError:
        where = f"Neo4j at {self.uri}" + (f" (database {self.database})" if self.database else "")
        if isinstance(exc, AuthError):
            return StoreUnavailableError(
                f"{where} refused user {self.user!r}: wrong NEO4J_USER/NEO4J_PASSWORD ({_one_line(exc)})"
            )
        if isinstance(exc, ServiceUnavailable | SessionExpired | OSError):
            return StoreUnavailableError(f"{where} is not reachable (server down?): {_one_line(exc)}")
        if isinstance(exc, Neo4jError):
            code = exc.code or ""
            if code.endswith("DatabaseNotFound"):
                return StoreUnavailableError(f"{where}: no such database ({_one_line(exc)})")
            if "ConstraintValidationFailed" in code:
                return IntegrityError(f"{where}: {doing} broke a constraint: {_one_line(exc)}")
            if isinstance(exc, TransientError):
                return StoreError(f"{where}: {doing} hit a transient error, retry it: {_one_line(exc)}")
            return StoreError(f"{where}: {doing} failed: {code} {_one_line(exc)}")
        return StoreUnavailableError(f"{where}: {doing} failed: {_one_line(exc)}")

    def _check_schema(self) -> None:
        rows = self._read_rows(
            "SHOW CONSTRAINTS YIELD labelsOrTypes, properties, type "
            "WHERE type = 'UNIQUENESS' AND labelsOrTypes = [$label] AND properties = ['id'] "
            "RETURN count(*) AS n",
            label=ENTITY_LABEL,
        )
        if not rows or rows[0]["n"] == 0:
            where = f"Neo4j at {self.uri}" + (f" (database {self.database})" if self.database else "")
            raise StoreUnavailableError(
                f"{where} has no uniqueness constraint on :{ENTITY_LABEL}(id); run `plantgraph neo4j init`"
            )

    # -- plumbing -----------------------------------------------------------------------------
    def _session(self, write: bool = False) -> neo4j.Session:
        if self._closed:
            raise StoreError(f"Neo4j store {self.uri} is closed")
        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def _read_rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read query: inside this thread's open write transaction when there is one (so a
        writer sees its own writes, as with the embedded store), else as a managed read
        transaction (retried, routed to a reader)."""
        open_tx: _Neo4jTransaction | None = getattr(self._local, "tx", None)
        if open_tx is not None:
            return [_plain(r) for r in open_tx._run(query, **params)]

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [_plain(r) for r in tx.run(query, params)]

        if self._routing:
            try:
                with self._session() as s:
                    return s.execute_read(work)
            except (Neo4jError, DriverError, OSError) as exc:
                raise self._translate(exc, "read") from None
        # One server (bolt://): an auto-commit read is one round trip instead of three
        # (BEGIN, RUN, COMMIT), which halves the latency of the many small reads a trace makes.
        for attempt in range(3):
            try:
                with self._session() as s:
                    return [_plain(r) for r in s.run(query, params)]
            except (ServiceUnavailable, SessionExpired, TransientError) as exc:
                if attempt == 2:
                    raise self._translate(exc, "read") from None
                time.sleep(0.2 * 2**attempt)
            except (Neo4jError, DriverError, OSError) as exc:
                raise self._translate(exc, "read") from None
        raise AssertionError("unreachable")

    def run_read(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one read-only Cypher query with parameters (used by the rule compiler)."""
        return self._read_rows(query, **dict(params or {}))

    def _write_auto(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """A managed write transaction (retried on transient errors, routed to the leader)."""

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(query, params)]

        try:
            with self._session(write=True) as s:
                return s.execute_write(work)
        except (Neo4jError, DriverError, OSError) as exc:
            raise self._translate(exc, "write") from None

    def _run_autocommit(self, query: str, **params: Any) -> None:
        """Schema commands and ``CALL {} IN TRANSACTIONS`` need an auto-commit transaction."""
        try:
            with self._session(write=True) as s:
                s.run(query, params).consume()
        except (Neo4jError, DriverError, OSError) as exc:
            raise self._translate(exc, "schema change") from None

    # -- schema -------------------------------------------------------------------------------
    def init_schema(self, extra_indexes: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Create the constraints and indexes (idempotent) and wait until they are online.
        Returns the statements run, for display."""
        stmts = [
            f"CREATE CONSTRAINT {ENTITY_ID_CONSTRAINT} IF NOT EXISTS "
            f"FOR (n:{ENTITY_LABEL}) REQUIRE n.id IS UNIQUE",
            f"CREATE CONSTRAINT {VECTOR_KEY_CONSTRAINT} IF NOT EXISTS "
            f"FOR (v:{VECTOR_LABEL}) REQUIRE (v.ns, v.key) IS UNIQUE",
        ]
        # Per-class id indexes give find_nodes(cls=...) its id order without a sort.
        for cls in ENTITY_CLASSES:
            stmts.append(
                f"CREATE INDEX {quote_name('pg_' + cls.lower() + '_id')} IF NOT EXISTS "
                f"FOR (n:{quote_name(cls)}) ON (n.id)"
            )
        for prop in ("cls", "plant", "name"):
            stmts.append(
                f"CREATE INDEX pg_entity_{prop} IF NOT EXISTS FOR (n:{ENTITY_LABEL}) ON (n.{quote_name(prop)})"
            )
        for cls, prop in dict.fromkeys([*RULE_INDEXES, *extra_indexes]):
            name = re.sub(r"[^A-Za-z0-9_]", "_", f"pg_{cls}_{prop}".lower())
            stmts.append(
                f"CREATE INDEX {quote_name(name)} IF NOT EXISTS FOR (n:{quote_name(cls)}) ON (n.{quote_name(prop)})"
            )
        for stmt in stmts:
            self._run_autocommit(stmt)
        self._run_autocommit("CALL db.awaitIndexes(300)")
        return stmts

    def schema_ok(self) -> bool:
        try:
            self._check_schema()
        except StoreUnavailableError:
            return False
        return True

    def clear(self) -> None:
        """Delete every node and relationship of this database and the vector indexes (tests)."""
        self._run_autocommit(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        )
        for row in self._read_rows(
            "SHOW INDEXES YIELD name WHERE name STARTS WITH $p RETURN name", p=_VECTOR_INDEX_PREFIX
        ):
            self._run_autocommit(f"DROP INDEX {quote_name(row['name'])} IF EXISTS")

    # -- writes -------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[WriteTransaction]:
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("a transaction is already open in this thread; nested transactions are not supported")
        session = self._session(write=True)
        try:
            try:
                # metadata shows up in SHOW TRANSACTIONS, so an operator can see who holds locks
                tx = session.begin_transaction(metadata={"app": "plantgraph", "pid": os.getpid()})
            except (Neo4jError, DriverError, OSError) as exc:
                raise self._translate(exc, "begin transaction") from None
            wtx = _Neo4jTransaction(self, tx)
            self._local.tx = wtx
            try:
                yield wtx
                if wtx.failure is not None:
                    raise wtx.failure
                try:
                    tx.commit()
                except (Neo4jError, DriverError, OSError) as exc:
                    raise self._translate(exc, "commit") from None
            except BaseException:
                if not tx.closed():
                    with suppress(Exception):
                        tx.rollback()
                raise
            finally:
                self._local.tx = None
        finally:
            with suppress(Exception):
                session.close()

    # -- reads --------------------------------------------------------------------------------
    def node_classes(self, ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for batch in _chunks(list(ids), _CHUNK):
            for r in self._read_rows(
                f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}) RETURN n.id AS id, n.cls AS cls",
                ids=list(batch),
            ):
                out[r["id"]] = r["cls"]
        return out

    def get_nodes(self, ids: Iterable[str], as_of: datetime | None = None) -> dict[str, NodeRecord]:
        t = _as_of(as_of)
        cond = "" if t is None else f" WHERE {_valid('n')}"
        out: dict[str, NodeRecord] = {}
        for batch in _chunks(list(dict.fromkeys(ids)), _CHUNK):
            for r in self._read_rows(
                f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}){cond} RETURN {_node_proj('n')} AS n",
                ids=list(batch), t=t,
            ):
                node = _node_from(r["n"])
                out[node.id] = node
        return out

    def neighbours(
        self,
        node_id: str,
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> list[EdgeRecord]:
        t = _as_of(as_of)
        direction = Direction(direction)
        rel_list = None if rels is None else list(dict.fromkeys(rels))
        if rel_list is not None and not rel_list:
            return []
        types = "" if rel_list is None else ":" + "|".join(quote_name(r) for r in rel_list)
        node_cond = "" if t is None else f" WHERE {_valid('n')}"
        edge_cond = "" if t is None else f" WHERE {_valid('e')} AND {_valid('m')}"
        parts = []
        if direction in (Direction.OUT, Direction.BOTH):
            parts.append(
                f"MATCH (n)-[e{types}]->(m:{ENTITY_LABEL}){edge_cond} "
                f"RETURN n.id AS src, type(e) AS rel, m.id AS dst, {_edge_proj('e')} AS p"
            )
        if direction in (Direction.IN, Direction.BOTH):
            parts.append(
                f"MATCH (n)<-[e{types}]-(m:{ENTITY_LABEL}){edge_cond} "
                f"RETURN m.id AS src, type(e) AS rel, n.id AS dst, {_edge_proj('e')} AS p"
            )
        body = " UNION ALL ".join(parts)
        query = f"MATCH (n:{ENTITY_LABEL} {{id: $id}}){node_cond} CALL (n) {{ {body} }} RETURN src, rel, dst, p"
        out: dict[tuple[str, str, str], EdgeRecord] = {}
        for r in self._read_rows(query, id=node_id, t=t):
            edge = _edge_from(r["src"], r["rel"], r["dst"], r["p"])
            out[edge.key] = edge
        return [out[k] for k in sorted(out)]

    def _edge_parts(self, rels: Sequence[str] | None, direction: Direction, t: datetime | None,
                    returns: str) -> str | None:
        """The ``CALL (n) { ... }`` body reading ``n``'s edges of ``rels`` in ``direction`` (one
        ``UNION ALL`` branch per direction); ``returns`` is the RETURN list over ``e``, ``m`` and
        ``outgoing``. None when ``rels`` is empty (no edge can match)."""
        rel_list = None if rels is None else list(dict.fromkeys(rels))
        if rel_list is not None and not rel_list:
            return None
        types = "" if rel_list is None else ":" + "|".join(quote_name(r) for r in rel_list)
        edge_cond = "" if t is None else f" WHERE {_valid('e')} AND {_valid('m')}"
        parts = []
        if direction in (Direction.OUT, Direction.BOTH):
            parts.append(f"MATCH (n)-[e{types}]->(m:{ENTITY_LABEL}){edge_cond} WITH e, m, true AS outgoing "
                         f"RETURN {returns}")
        if direction in (Direction.IN, Direction.BOTH):
            parts.append(f"MATCH (n)<-[e{types}]-(m:{ENTITY_LABEL}){edge_cond} WITH e, m, false AS outgoing "
                         f"RETURN {returns}")
        return " UNION ALL ".join(parts)

    def neighbours_many(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> dict[str, list[EdgeRecord]]:
        """One query per 20k ids (instead of one per id): the same lists as :meth:`neighbours`."""
        t = _as_of(as_of)
        direction = Direction(direction)
        ids = list(dict.fromkeys(node_ids))
        found: dict[str, dict[tuple[str, str, str], EdgeRecord]] = {i: {} for i in ids}
        body = self._edge_parts(rels, direction, t, f"outgoing, type(e) AS rel, m.id AS o, {_edge_proj('e')} AS p")
        if body is None or not ids:
            return {i: [] for i in ids}
        node_cond = "" if t is None else f" WHERE {_valid('n')}"
        query = (f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}){node_cond} CALL (n) {{ {body} }} "
                 "RETURN i, outgoing, rel, o, p")
        for batch in _chunks(ids, _CHUNK):
            for r in self._read_rows(query, ids=list(batch), t=t):
                i, o = r["i"], r["o"]
                src, dst = (i, o) if r["outgoing"] else (o, i)
                edge = _edge_from(src, r["rel"], dst, r["p"])
                found[i][edge.key] = edge
        return {i: [es[k] for k in sorted(es)] for i, es in found.items()}

    def neighbour_links(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
        classes: Iterable[str] | None = None,
    ) -> dict[str, list[Link]]:
        """One query per 20k ids, no property documents; the class filter runs in the server."""
        t = _as_of(as_of)
        direction = Direction(direction)
        ids = list(dict.fromkeys(node_ids))
        keep = None if classes is None else sorted(set(classes))
        found: dict[str, dict[tuple[str, str, str], Link]] = {i: {} for i in ids}
        body = self._edge_parts(rels, direction, t, "outgoing, type(e) AS rel, m.id AS o, m.cls AS c")
        if body is None or not ids or keep == []:
            return {i: [] for i in ids}
        node_cond = "" if t is None else f" WHERE {_valid('n')}"
        cls_cond = "" if keep is None else " WHERE c IN $classes"
        query = (f"UNWIND $ids AS i MATCH (n:{ENTITY_LABEL} {{id: i}}){node_cond} CALL (n) {{ {body} }} "
                 f"WITH i, outgoing, rel, o, c{cls_cond} RETURN i, outgoing, rel, o, c")
        for batch in _chunks(ids, _CHUNK):
            for r in self._read_rows(query, ids=list(batch), t=t, classes=keep):
                i, o = r["i"], r["o"]
                src, dst = (i, o) if r["outgoing"] else (o, i)
                link = Link(src, r["rel"], dst, o, r["c"] or "")
                found[i][link.key] = link
        return {i: [ls[k] for k in sorted(ls)] for i, ls in found.items()}

    def find_nodes_in(
        self,
        cls: str,
        prop: str,
        values: Sequence[Any],
        plant: str | None = None,
        as_of: datetime | None = None,
    ) -> list[NodeRecord]:
        """One paged scan of the class for all values (``prop IN $values``, plus ``IS NULL`` for a
        None), checked in Python with the same equality as ``find_nodes``; values the server
        cannot compare natively (booleans, timestamps, lists) use the default, per value."""
        times = _NODE_TIME_FIELDS.get(cls, frozenset())
        plain = [v for v in values if v is not None]
        if (prop in _RESERVED or prop in times or not all(
                isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool)) for v in plain)):
            return super().find_nodes_in(cls, prop, values, plant, as_of)
        t = _as_of(as_of)
        conds = ["n.id > $after", "n.cls = $cls"]
        null = " OR n[$k] IS NULL" if len(plain) < len(values) else ""
        conds.append(f"(n[$k] IN $vals{null})")
        if plant is not None:
            conds.append("n.plant = $plant")
        if t is not None:
            conds.append(_valid("n"))
        query = (f"MATCH (n:{quote_name(cls)}) WHERE {' AND '.join(conds)} "
                 f"RETURN {_node_proj('n')} AS n ORDER BY n.id LIMIT $page")
        out: list[NodeRecord] = []
        after, page = "", 2_000
        while True:
            rows = self._read_rows(query, cls=cls, k=prop, vals=plain, plant=plant, t=t, after=after, page=page)
            for r in rows:
                node = _node_from(r["n"])
                if any(_same(node.props, prop, v) for v in values):
                    out.append(node)
            if len(rows) < page:
                return out
            after = rows[-1]["n"]["id"]

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
        """Level-synchronous BFS: one query per level and direction (like the embedded store).
        Edges always come with their payloads (the same query reads them).

        A node first seen at depth d+1 takes as parent edge the smallest key ``(src, rel, dst)``
        among the edges reaching it from depth d. Starts are always expanded; ``through_classes``
        applies to the nodes reached. When a level would exceed ``max_nodes`` its nodes are
        admitted in parent-edge-key order.
        """
        if max_depth < 0:
            raise StoreError(f"max_depth must be >= 0, got {max_depth}")
        if max_nodes < 1:
            raise StoreError(f"max_nodes must be >= 1, got {max_nodes}")
        t = _as_of(as_of)
        out_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.OUT, Direction.BOTH)})
        in_rels = sorted({s.rel for s in steps if Direction(s.direction) in (Direction.IN, Direction.BOTH)})

        hops: dict[str, Hop] = {}
        start_ids = list(dict.fromkeys(starts))
        present = set(self.get_nodes(start_ids, as_of))
        truncated_reason: str | None = None
        frontier: list[str] = []
        for sid in start_ids:
            if sid not in present:
                continue
            if len(hops) >= max_nodes:
                truncated_reason = "max_nodes"
                break
            hops[sid] = Hop(node=sid, depth=0, parent=None, edge=None)
            frontier.append(sid)

        depth = 0
        while frontier and truncated_reason is None:
            candidates = self._expand(frontier, out_rels, in_rels, t, hops)
            if not candidates:
                break
            if depth >= max_depth:
                truncated_reason = "max_depth"
                break
            depth += 1
            best: dict[str, tuple[tuple[str, str, str], str, str, str, Mapping[str, Any]]] = {}
            for cand in candidates:
                cur = best.get(cand[1])
                if cur is None or cand[0] < cur[0]:
                    best[cand[1]] = cand
            frontier = []
            for key, other, other_cls, parent, payload in sorted(best.values(), key=lambda c: (c[0], c[1])):
                if len(hops) >= max_nodes:
                    truncated_reason = "max_nodes"
                    break
                edge = _edge_from(key[0], key[1], key[2], payload)
                hops[other] = Hop(node=other, depth=depth, parent=parent, edge=edge)
                if through_classes is None or other_cls in through_classes:
                    frontier.append(other)
        return Traversal(hops=hops, truncated=truncated_reason is not None, truncated_reason=truncated_reason)

    def _expand(
        self,
        frontier: Sequence[str],
        out_rels: Sequence[str],
        in_rels: Sequence[str],
        t: datetime | None,
        seen: Mapping[str, Hop],
    ) -> list[tuple[tuple[str, str, str], str, str, str, Mapping[str, Any]]]:
        """Edges from the frontier to nodes not yet seen: (key, other id, other class, frontier id,
        edge payload)."""
        out: list[tuple[tuple[str, str, str], str, str, str, Mapping[str, Any]]] = []
        valid = "" if t is None else f" WHERE {_valid('e')} AND {_valid('o')}"
        parts = []
        for rels, arrow_l, arrow_r, outgoing in ((out_rels, "-", "->", "true"), (in_rels, "<-", "-", "false")):
            if rels:
                types = "|".join(quote_name(r) for r in rels)
                parts.append(
                    f"MATCH (h){arrow_l}[e:{types}]{arrow_r}(o:{ENTITY_LABEL}){valid} "
                    f"RETURN {outgoing} AS outgoing, type(e) AS rel, o.id AS o, o.cls AS ocls, "
                    f"{_edge_proj('e')} AS p"
                )
        if not parts:
            return out
        # both directions in one round trip per level
        query = (
            f"UNWIND $ids AS i MATCH (h:{ENTITY_LABEL} {{id: i}}) "
            f"CALL (h) {{ {' UNION ALL '.join(parts)} }} "
            "RETURN i AS h, outgoing, rel, o, ocls, p"
        )
        for batch in _chunks(frontier, _CHUNK):
            for r in self._read_rows(query, ids=list(batch), t=t):
                o = r["o"]
                if o in seen:
                    continue
                h = r["h"]
                key = (h, r["rel"], o) if r["outgoing"] else (o, r["rel"], h)
                out.append((key, o, r["ocls"], h, r["p"]))
        return out

    def find_nodes(
        self,
        cls: str | None = None,
        plant: str | None = None,
        where: Mapping[str, Any] | None = None,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[NodeRecord]:
        t = _as_of(as_of)
        conds: list[str] = ["n.id > $after"]
        params: dict[str, Any] = {"t": t}
        label = ENTITY_LABEL
        if cls is not None:
            label = quote_name(cls)
            conds.append("n.cls = $cls")
            params["cls"] = cls
        if plant is not None:
            conds.append("n.plant = $plant")
            params["plant"] = plant
        if t is not None:
            conds.append(_valid("n"))
        checks: list[tuple[str, Any]] = []
        times = _NODE_TIME_FIELDS.get(cls, frozenset()) if cls is not None else _ALL_NODE_TIME_FIELDS
        for i, (key, value) in enumerate((where or {}).items()):
            if key in ("name", "source_system", "id"):
                conds.append(f"n.{key} IS NULL" if value is None else f"n.{key} = $w{i}")
                params[f"w{i}"] = value
                continue
            checks.append((key, value))
            if key not in times and key not in _RESERVED and (
                isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))
            ):
                conds.append(f"n[$k{i}] = $w{i}")
                params[f"k{i}"] = key
                params[f"w{i}"] = value
        query = (
            f"MATCH (n:{label}) WHERE {' AND '.join(conds)} "
            f"RETURN {_node_proj('n')} AS n ORDER BY n.id LIMIT $page"
        )
        return self._iter_nodes(query, params, checks, limit)

    def _iter_nodes(
        self, query: str, params: dict[str, Any], checks: Sequence[tuple[str, Any]], limit: int | None
    ) -> Iterator[NodeRecord]:
        """Keyset pagination over the id index, so a scan of a big graph streams."""
        if limit is not None and limit <= 0:
            return
        emitted = 0
        after = ""
        page = 2_000
        while True:
            rows = self._read_rows(query, **params, after=after, page=page)
            for r in rows:
                node = _node_from(r["n"])
                if any(not _same(node.props, k, v) for k, v in checks):
                    continue
                yield node
                emitted += 1
                if limit is not None and emitted >= limit:
                    return
            if len(rows) < page:
                return
            after = rows[-1]["n"]["id"]

    def counts(self) -> StoreCounts:
        """Per class and relation, from Neo4j's count store (constant time per label/type)."""
        labels = [
            r["label"] for r in self._read_rows("CALL db.labels() YIELD label RETURN label")
            if r["label"] != ENTITY_LABEL and not r["label"].startswith(VECTOR_LABEL)
        ]
        types = [r["t"] for r in self._read_rows("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t")]
        nodes: dict[str, int] = {}
        edges: dict[str, int] = {}
        if labels:
            q = " UNION ALL ".join(
                f"MATCH (n:{quote_name(lb)}) RETURN {i} AS i, count(n) AS c" for i, lb in enumerate(labels)
            )
            for r in self._read_rows(q):
                if r["c"] > 0:
                    nodes[labels[r["i"]]] = r["c"]
        if types:
            q = " UNION ALL ".join(
                f"MATCH ()-[e:{quote_name(ty)}]->() RETURN {i} AS i, count(e) AS c" for i, ty in enumerate(types)
            )
            for r in self._read_rows(q):
                if r["c"] > 0:
                    edges[types[r["i"]]] = r["c"]
        return StoreCounts(nodes_by_class=dict(sorted(nodes.items())), edges_by_relation=dict(sorted(edges.items())))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with suppress(Exception):
            self._driver.close()

    def __repr__(self) -> str:
        db = f", database={self.database!r}" if self.database else ""
        return f"Neo4jStore({self.uri!r}{db})"

    # -- vectors ------------------------------------------------------------------------------
    @staticmethod
    def _vector_names(namespace: str) -> tuple[str, str]:
        """(index name, label) of a namespace: readable part plus a hash, so any string works."""
        safe = re.sub(r"[^A-Za-z0-9_]", "_", namespace)[:40]
        digest = hashlib.sha1(namespace.encode()).hexdigest()[:8]
        return f"{_VECTOR_INDEX_PREFIX}{safe}_{digest}", f"{VECTOR_LABEL}_{safe}_{digest}"

    def _vector_dims(self, index: str) -> int | None:
        rows = self._read_rows(
            "SHOW INDEXES YIELD name, type, options WHERE name = $name RETURN options", name=index
        )
        if not rows:
            return None
        cfg = (rows[0]["options"] or {}).get("indexConfig", {})
        dims = cfg.get("vector.dimensions")
        return int(dims) if dims is not None else None

    def vector_upsert(self, namespace: str, items: Sequence[tuple[str, Sequence[float]]]) -> None:
        """Insert or replace vectors by key in the namespace's Neo4j vector index (cosine, without
        quantization, so scores match the in-process index to float32 precision)."""
        if not items:
            return
        dims = len(items[0][1])
        if dims < 1:
            raise StoreError(f"vector namespace {namespace!r}: empty vector for {items[0][0]!r}")
        for key, vec in items:
            if len(vec) != dims:
                raise StoreError(
                    f"vector namespace {namespace!r}: {key!r} has {len(vec)} dimensions, expected {dims}"
                )
        index, label = self._vector_names(namespace)
        have = self._vector_dims(index)
        if have is None:
            self._run_autocommit(
                f"CREATE VECTOR INDEX {quote_name(index)} IF NOT EXISTS FOR (v:{quote_name(label)}) "
                f"ON (v.embedding) OPTIONS {{indexConfig: {{`vector.dimensions`: {int(dims)}, "
                "`vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}}"
            )
            self._run_autocommit("CALL db.awaitIndex($name, 300)", name=index)
        elif have != dims:
            raise StoreError(
                f"vector namespace {namespace!r} holds {have}-dimensional vectors; got {dims} dimensions"
            )
        rows = [{"key": k, "vec": [float(x) for x in v]} for k, v in items]
        for batch in _chunks(rows, 1_000):
            self._write_auto(
                f"UNWIND $rows AS r MERGE (v:{VECTOR_LABEL} {{ns: $ns, key: r.key}}) "
                f"SET v:{quote_name(label)}, v.embedding = r.vec",
                rows=list(batch), ns=namespace,
            )

    def vector_search(
        self, namespace: str, vector: Sequence[float], k: int = 10
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest keys by cosine similarity (in [-1, 1], highest first)."""
        if k <= 0:
            return []
        index, _label = self._vector_names(namespace)
        have = self._vector_dims(index)
        if have is None:
            return []
        if have != len(vector):
            raise StoreError(
                f"vector namespace {namespace!r} holds {have}-dimensional vectors; query has {len(vector)}"
            )
        rows = self._read_rows(
            "CALL db.index.vector.queryNodes($index, $k, $q) YIELD node, score "
            "RETURN node.key AS key, score",
            index=index, k=int(k), q=[float(x) for x in vector],
        )
        # Neo4j reports cosine as (1 + cos) / 2; callers compare with cosine similarity.
        hits = [(str(r["key"]), 2.0 * float(r["score"]) - 1.0) for r in rows]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits


def _same(props: Mapping[str, Any], key: str, value: Any) -> bool:
    """Equality as JSON sees it: ``True`` is not ``1``, a missing key equals ``None``."""
    if key not in props:
        return value is None
    got = props[key]
    if isinstance(got, bool) or isinstance(value, bool):
        return isinstance(got, bool) and isinstance(value, bool) and got == value
    return bool(got == value)


def retry_transient(fn: Callable[[], T], attempts: int = 5, pause: float = 0.2) -> T:
    """Run ``fn`` (a whole ``with store.transaction()`` block) again when Neo4j reports a transient
    error such as a deadlock between concurrent writers; other errors pass through."""
    for i in range(attempts):
        try:
            return fn()
        except StoreError as exc:
            if "transient error" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(pause * (2**i))
    raise AssertionError("unreachable")
