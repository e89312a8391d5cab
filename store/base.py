"""The store interface every backend implements (embedded default, Neo4j).

One small surface, in the spirit of rdflib's ``Store``: writes happen inside a transaction that is
all or nothing; reads are by id, by neighbourhood and by bounded typed traversal, each with an
optional ``as_of`` time. Backends say what else they can do through :class:`StoreCapabilities`.

Time semantics (shared by all backends): a node or edge is *valid at* ``t`` when
``valid_from is None or valid_from <= t`` and ``valid_to is None or t < valid_to``. Without
``as_of`` every record that was not deleted is visible, ended or not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

import numpy as np

from store.timeprops import later_than


class StoreError(Exception):
    """Base of every store failure a caller can act on."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or reached (missing path, server down, wrong password)."""


class IntegrityError(StoreError):
    """A write would break the graph (an edge to a missing node, a wrong class); nothing was written."""


class CapabilityError(StoreError):
    """The backend does not offer the requested capability (see :class:`StoreCapabilities`)."""


class Direction(StrEnum):
    OUT = "out"
    IN = "in"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class StoreCapabilities:
    """What a backend can do beyond the core interface."""

    durable: bool = True
    transactions: bool = True
    vector_search: bool = False
    cypher: bool = False
    concurrent_writers: bool = False


@dataclass(slots=True)
class NodeRecord:
    """One entity as stored. ``props`` holds the class-specific properties, JSON-compatible
    (timestamps as ISO-8601 strings with offset); the common fields are attributes.

    Not frozen (nor is EdgeRecord): loads build millions of them and frozen instances cost ~3x more."""

    id: str
    cls: str
    props: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    plant: str | None = None
    source_system: str = "plantgraph"
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def valid_at(self, t: datetime | None) -> bool:
        return _valid_at(self.valid_from, self.valid_to, t)


@dataclass(slots=True)
class EdgeRecord:
    """One relation instance; ``(src, rel, dst)`` is its key, so upserting it again updates it."""

    src: str
    rel: str
    dst: str
    props: Mapping[str, Any] = field(default_factory=dict)
    source_system: str = "plantgraph"
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.rel, self.dst)

    def valid_at(self, t: datetime | None) -> bool:
        return _valid_at(self.valid_from, self.valid_to, t)


def _valid_at(start: datetime | None, end: datetime | None, t: datetime | None) -> bool:
    if t is None:
        return True
    if start is not None and t < start:
        return False
    return not (end is not None and t >= end)


@dataclass(frozen=True, slots=True)
class Hop:
    """How a traversal reached a node: its depth and the edge it came through from ``parent``."""

    node: str
    depth: int
    parent: str | None
    edge: EdgeRecord | None


@dataclass(slots=True)
class Traversal:
    """The BFS tree of a bounded traversal. ``truncated`` says a depth or node cap was hit."""

    hops: dict[str, Hop]
    truncated: bool = False
    truncated_reason: str | None = None

    def path_to(self, node: str) -> list[Hop]:
        """The hops from a start node to ``node`` in order (the start node first)."""
        out: list[Hop] = []
        cur: str | None = node
        while cur is not None:
            hop = self.hops[cur]
            out.append(hop)
            cur = hop.parent
        out.reverse()
        return out


class Link(NamedTuple):
    """An edge seen from one of its ends, without its properties (see
    :meth:`GraphStore.neighbour_links`): its key, and the id and class of the node at the far end."""

    src: str
    rel: str
    dst: str
    far: str
    far_cls: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.rel, self.dst)


@dataclass(frozen=True, slots=True)
class TraversalStep:
    """A relation type that a traversal may follow, and in which direction."""

    rel: str
    direction: Direction = Direction.OUT


@dataclass(slots=True)
class StoreCounts:
    nodes_by_class: dict[str, int]
    edges_by_relation: dict[str, int]

    @property
    def nodes(self) -> int:
        return sum(self.nodes_by_class.values())

    @property
    def edges(self) -> int:
        return sum(self.edges_by_relation.values())


@dataclass(slots=True)
class WriteReport:
    nodes_upserted: int = 0
    edges_upserted: int = 0
    nodes_deleted: int = 0
    edges_deleted: int = 0
    seconds: float = 0.0


ProgressCallback = Callable[[int], None]
"""Called with the number of records just written, so callers can drive a progress bar."""

NodeRow = tuple[str, str | None, str | None, str, str | None, str | None, Mapping[str, Any]]
"""One node of a class for :meth:`WriteTransaction.upsert_node_rows`:
``(id, name, plant, source_system, valid_from, valid_to, props)``, the times as ISO-8601 text with
an offset (or None), ``props`` JSON-compatible."""

EdgeRow = tuple[str, str, str, str | None, str | None, Mapping[str, Any]]
"""One edge of a relation for :meth:`WriteTransaction.upsert_edge_rows`:
``(src, dst, source_system, valid_from, valid_to, props)``, as :data:`NodeRow`."""


@dataclass(slots=True)
class Coded:
    """A column as its distinct values and, per row, the index of its value: a plant's few source
    systems and units, and times shared by many rows, are then converted once, not once a row."""

    values: list[Any]
    codes: Any  # a numpy integer array, one index into ``values`` per row

    def decode(self) -> list[Any]:
        """The value of every row."""
        # fromiter: list values stay values (np.array would read them as a second dimension)
        table = np.fromiter(self.values, dtype=object, count=len(self.values))
        out: list[Any] = table[self.codes].tolist()
        return out


def _documents(props: dict[str, Coded], rows: int) -> list[dict[str, Any]]:
    """Each row's properties as a dict (absent ones left out)."""
    if not props:
        return [{} for _ in range(rows)]
    names = sorted(props)
    cols = [props[k].decode() for k in names]
    return [{k: v for k, v in zip(names, vals, strict=True) if v is not None} for vals in zip(*cols, strict=True)]


@dataclass(slots=True)
class NodeColumns:
    """Checked nodes of one class, column by column (as :class:`EdgeColumns`)."""

    ids: list[str]
    name: Coded
    plant: Coded
    source_system: Coded
    valid_from: Coded
    valid_to: Coded
    props: dict[str, Coded]

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[NodeRow]:
        """The same nodes as rows."""
        return list(zip(self.ids, self.name.decode(), self.plant.decode(), self.source_system.decode(),
                        self.valid_from.decode(), self.valid_to.decode(), _documents(self.props, len(self.ids)),
                        strict=True))


@dataclass(slots=True)
class EdgeColumns:
    """Checked edges of one relation, column by column (a loader's columnar fast path): the same
    values as :data:`EdgeRow` holds, with None for an absent time or property."""

    src: list[str]
    dst: list[str]
    source_system: Coded
    valid_from: Coded
    valid_to: Coded
    #: property name -> its values (JSON-compatible; None: the row has no such property)
    props: dict[str, Coded]

    def __len__(self) -> int:
        return len(self.src)

    def rows(self) -> list[EdgeRow]:
        """The same edges as rows."""
        return list(zip(self.src, self.dst, self.source_system.decode(), self.valid_from.decode(),
                        self.valid_to.decode(), _documents(self.props, len(self.src)), strict=True))


def _row_time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        t = None
    if t is None or t.utcoffset() is None:
        raise IntegrityError(f"{what}: {text!r} is not an ISO-8601 timestamp with a time zone offset")
    return t


class WriteTransaction(ABC):
    """Writes collected inside ``with store.transaction() as tx:``; committed together on exit,
    undone together if the block raises."""

    #: Whether, until this transaction ends, nothing else reads or writes the store, which held
    #: nothing when it began (see :meth:`GraphStore.bulk_transaction`): checks of what it writes
    #: then need no look-ups in the store, and no other process should open it meanwhile.
    sole: bool = False

    @abstractmethod
    def upsert_nodes(self, nodes: Sequence[NodeRecord]) -> None: ...

    @abstractmethod
    def upsert_edges(self, edges: Sequence[EdgeRecord]) -> None:
        """Insert or update edges; both endpoints must exist (in the store or earlier in this
        transaction), else :class:`IntegrityError`."""

    @abstractmethod
    def delete_nodes(self, ids: Sequence[str]) -> None:
        """Remove nodes and every edge that touches them. Unknown ids are ignored."""

    @abstractmethod
    def delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None: ...

    @property
    @abstractmethod
    def report(self) -> WriteReport: ...

    # -- bulk form of the upserts (optional) --------------------------------------------------
    # A loader holds plain values, not records: these take tuples of one class or relation with
    # the times as ISO text, so a backend can write them without building a record per row. The
    # defaults build the records and call the upserts above (what the Neo4j backend does).
    def upsert_node_rows(self, cls: str, rows: Sequence[NodeRow]) -> None:
        """Same effect as :meth:`upsert_nodes` of the records these rows describe."""
        self.upsert_nodes([
            NodeRecord(r[0], cls, r[6], r[1], r[2], r[3], _row_time(r[4], f"node {r[0]!r} valid_from"),
                       _row_time(r[5], f"node {r[0]!r} valid_to"))
            for r in rows
        ])

    def upsert_edge_rows(self, rel: str, rows: Sequence[EdgeRow]) -> None:
        """Same effect as :meth:`upsert_edges` of the records these rows describe."""
        self.upsert_edges([
            EdgeRecord(r[0], rel, r[1], r[5], r[2], _row_time(r[3], f"edge ({r[0]!r}, {rel!r}, {r[1]!r}) valid_from"),
                       _row_time(r[4], f"edge ({r[0]!r}, {rel!r}, {r[1]!r}) valid_to"))
            for r in rows
        ])

    def upsert_prepared_nodes(self, cls: str, prepared: Any) -> None:
        """Write what :meth:`ColumnPreparer.nodes` made of checked node columns (the
        default: the columns themselves, written as rows)."""
        if not isinstance(prepared, NodeColumns):
            raise TypeError(f"expected NodeColumns, got {type(prepared).__name__}")
        self.upsert_node_rows(cls, prepared.rows())

    def upsert_prepared_edges(self, rel: str, prepared: Any) -> None:
        """Write what :meth:`ColumnPreparer.edges` made of checked edge columns (the
        default: the columns themselves, written as rows)."""
        if not isinstance(prepared, EdgeColumns):
            raise TypeError(f"expected EdgeColumns, got {type(prepared).__name__}")
        self.upsert_edge_rows(rel, prepared.rows())


class ColumnPreparer:
    """Turns checked columns into what :meth:`WriteTransaction.upsert_prepared_nodes` and
    ``upsert_prepared_edges`` write. A loader calls it where it checks rows (the second process
    of a pipelined load), so a backend can move its per-row conversion off the writing process;
    it holds no connection and must be picklable. This default hands the columns on unchanged."""

    def nodes(self, cols: NodeColumns) -> Any:
        return cols

    def edges(self, cols: EdgeColumns) -> Any:
        return cols


class GraphStore(ABC):
    """The typed property graph. Implementations: :mod:`store.embedded`, :mod:`store.neo4j_store`."""

    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities()
    backend: ClassVar[str] = "abstract"

    # -- writes -------------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        """All-or-nothing write scope."""

    def bulk_transaction(self) -> AbstractContextManager[WriteTransaction]:
        """A :meth:`transaction` for one large load. A backend may trade concurrency for speed
        in it (then its ``tx.sole`` says so); the default is a plain :meth:`transaction`."""
        return self.transaction()

    # -- reads --------------------------------------------------------------------------------
    @abstractmethod
    def get_nodes(self, ids: Iterable[str], as_of: datetime | None = None) -> dict[str, NodeRecord]:
        """The nodes among ``ids`` that exist (and are valid at ``as_of``), keyed by id."""

    def get_node(self, node_id: str, as_of: datetime | None = None) -> NodeRecord | None:
        return self.get_nodes([node_id], as_of).get(node_id)

    @abstractmethod
    def node_classes(self, ids: Iterable[str]) -> dict[str, str]:
        """Class of each id that exists, ignoring time; cheap, used by validation."""

    @abstractmethod
    def neighbours(
        self,
        node_id: str,
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> list[EdgeRecord]:
        """Edges at ``node_id`` of the given relation types (all when None), sorted by key."""

    # -- batch reads: one call for many ids. The defaults are built from the single reads, so
    # every backend has them; a backend overrides them with one query (the embedded store does).
    def neighbours_many(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
    ) -> dict[str, list[EdgeRecord]]:
        """:meth:`neighbours` of every id, keyed by id (each id given is a key; [] when it has no
        such edges or does not exist); the same lists, in the same order, as one call per id."""
        return {n: self.neighbours(n, rels, direction, as_of) for n in dict.fromkeys(node_ids)}

    def neighbour_links(
        self,
        node_ids: Iterable[str],
        rels: Sequence[str] | None = None,
        direction: Direction = Direction.OUT,
        as_of: datetime | None = None,
        classes: Iterable[str] | None = None,
    ) -> dict[str, list[Link]]:
        """Like :meth:`neighbours_many` with ids only: per id, its edges as :class:`Link` (key, far
        node and its class), no property documents. With ``classes``, only edges whose far node is
        of one of those classes. Same edges, same order (by key) as :meth:`neighbours_many`."""
        edges = self.neighbours_many(node_ids, rels, direction, as_of)
        fars = {e.dst if e.src == n else e.src for n, es in edges.items() for e in es}
        cls_of = self.node_classes(fars)
        keep = None if classes is None else frozenset(classes)
        out: dict[str, list[Link]] = {}
        for n, es in edges.items():
            links = []
            for e in es:
                far = e.dst if e.src == n else e.src
                c = cls_of.get(far, "")
                if keep is None or c in keep:
                    links.append(Link(e.src, e.rel, e.dst, far, c))
            out[n] = links
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
        """Per id, the ids of the nodes at the far end of its ``rel`` edges (of ``classes`` when
        given) with the ``k`` greatest ids, greatest first (ids compared as strings): "the most
        recent k" where ids grow with time, without listing every neighbour. Each id given is a
        key; the same far nodes as :meth:`neighbour_links`."""
        links = self.neighbour_links(node_ids, [rel], direction, as_of, classes)
        return {n: sorted({x.far for x in ls}, reverse=True)[:max(k, 0)] for n, ls in links.items()}

    @abstractmethod
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
        """Breadth-first traversal from ``starts`` along ``steps`` up to ``max_depth`` hops.

        Each node appears once (cycles end there), reached by its first shortest path with ties
        broken by edge key so results are deterministic. ``through_classes`` limits which
        classes the walk may continue from (others are reached but not expanded).
        ``edge_payloads=False``: a caller that needs only the tree's shape allows the hops'
        edges to carry their key alone (no properties, times or source system); a backend may
        still fill them.
        """

    @abstractmethod
    def find_nodes(
        self,
        cls: str | None = None,
        plant: str | None = None,
        where: Mapping[str, Any] | None = None,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[NodeRecord]:
        """Nodes of a class (and plant), with property equality filters, ordered by id."""

    def find_nodes_in(
        self,
        cls: str,
        prop: str,
        values: Sequence[Any],
        plant: str | None = None,
        as_of: datetime | None = None,
    ) -> list[NodeRecord]:
        """Nodes of ``cls`` (and ``plant``) whose property ``prop`` equals one of ``values`` (as
        in ``find_nodes``' ``where``: ``None`` is missing or null), ordered by id: one scan
        where the backend can, instead of one ``find_nodes`` per value."""
        found: dict[str, NodeRecord] = {}
        for v in values:
            for n in self.find_nodes(cls, plant=plant, where={prop: v}, as_of=as_of):
                found[n.id] = n
        return [found[k] for k in sorted(found)]

    def find_nodes_after(
        self,
        cls: str,
        prop: str,
        t: datetime,
        plant: str | None = None,
        as_of: datetime | None = None,
    ) -> list[NodeRecord]:
        """Nodes of ``cls`` (and ``plant``) whose ``prop`` is not a timestamp at or before ``t``
        (an aware datetime): later than ``t``, or not a timestamp at all (missing, null, not
        ISO-8601 text with an offset; see :mod:`store.timeprops`); ordered by id. For "still going
        on at t" filters (no end yet, or ending later), which an equality filter cannot serve."""
        return [n for n in self.find_nodes(cls, plant=plant, as_of=as_of) if later_than(n.props.get(prop), t)]

    @abstractmethod
    def counts(self) -> StoreCounts: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- optional capabilities ---------------------------------------------------------------
    def process_opener(self) -> Callable[[], GraphStore] | None:
        """A picklable callable that opens this same store in another process, for reads beside
        a write here (a bulk load validates in a second process), or None when the backend
        cannot be shared that way. The default: None."""
        return None

    def column_preparer(self) -> ColumnPreparer:
        """What a loader's checking side hands checked columns to (see :class:`ColumnPreparer`)."""
        return ColumnPreparer()

    def vector_upsert(self, namespace: str, items: Sequence[tuple[str, Sequence[float]]]) -> None:
        raise CapabilityError(f"{self.backend} store has no vector index")

    def vector_search(
        self, namespace: str, vector: Sequence[float], k: int = 10
    ) -> list[tuple[str, float]]:
        raise CapabilityError(f"{self.backend} store has no vector index")
