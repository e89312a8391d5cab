"""The embedded store's in-memory topology index: CSR arrays over integer node ids.

SQLite stays the record; this index only answers "which edges leave / enter these nodes" for
traversals, in numpy, without a query per level. It holds no properties and no validity
times (those are read from SQLite for the few rows a traversal returns), only what never
changes for a stored row: an edge's endpoints, relation and rowid, a node's id and class.
That makes it cheap to keep current:

- rowids only grow (AUTOINCREMENT), so rows added since the index was built are
  ``eid > edge_mark`` / ``nid > node_mark``; they go to a small overlay;
- deleted edges are logged in ``edge_tombstones`` with the generation that deleted them;
- the index is stamped with the store generation it reflects, and persisted as
  ``adjacency.npz`` (written atomically) so a restarted process maps it instead of reading
  every edge. A stale or unreadable file is rebuilt from SQLite; a file older than the
  database is brought forward with the deltas above.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

CACHE_FILE = "adjacency.npz"
CACHE_VERSION = 2
#: Overlay size (edges) above which the overlay is merged into new CSR arrays.
MERGE_AT = 200_000
_FETCH = 200_000

I64 = NDArray[np.int64]


@dataclass(slots=True)
class Csr:
    """Edges grouped by one endpoint: for node ``v``, ``nbr[ptr[v]:ptr[v+1]]``."""

    ptr: I64
    nbr: I64
    rel: NDArray[np.int16]
    eid: I64

    @staticmethod
    def build(here: I64, there: I64, rel: NDArray[np.int16], eid: I64, n: int) -> Csr:
        order = np.argsort(here, kind="stable")
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(here, minlength=n), out=ptr[1:])
        return Csr(ptr=ptr, nbr=there[order], rel=rel[order], eid=eid[order])

    def gather(self, frontier: I64) -> tuple[I64, I64, NDArray[np.int16], I64]:
        """All (here, there, rel, eid) rows of the frontier nodes, vectorised (array methods,
        not numpy's module functions: a traversal calls this per level, on small frontiers,
        where the functions' Python wrappers cost as much as the work). One node's rows are
        slices: views of the index, which callers must not modify."""
        if len(frontier) == 1:
            v = int(frontier[0])
            if v < len(self.ptr) - 1:
                a, b = int(self.ptr[v]), int(self.ptr[v + 1])
                return np.full(b - a, v, dtype=np.int64), self.nbr[a:b], self.rel[a:b], self.eid[a:b]
        inside = frontier[frontier < len(self.ptr) - 1]
        starts = self.ptr[inside]
        lens = self.ptr[inside + 1] - starts
        cum = lens.cumsum()
        total = int(cum[-1]) if len(cum) else 0
        if total == 0:
            e = np.empty(0, dtype=np.int64)
            return e, e, np.empty(0, dtype=np.int16), e
        pos = (starts - (cum - lens)).repeat(lens) + np.arange(total, dtype=np.int64)
        return inside.repeat(lens), self.nbr[pos], self.rel[pos], self.eid[pos]


@dataclass(slots=True)
class Adjacency:
    """One immutable snapshot of the topology at ``generation`` (replaced, never mutated)."""

    store_id: str  # meta.store_id of the database it was read from
    generation: int
    edge_mark: int
    node_mark: int
    rel_names: list[str]
    out: Csr
    inc: Csr
    # overlay: edges with eid > the CSR's own mark, added since the CSR was built
    ov_src: I64
    ov_dst: I64
    ov_rel: NDArray[np.int16]
    ov_eid: I64
    dead: NDArray[np.bool_]  # by eid
    cls_code: NDArray[np.int16]  # by nid; -1 where no node
    cls_names: list[str]
    ids_blob: bytes
    ids_off: I64  # by nid: ids_blob[ids_off[nid]:ids_off[nid + 1]]
    extra_ids: dict[int, str] = field(default_factory=dict)  # nodes newer than the blob
    masks: dict[tuple[str, ...], NDArray[np.bool_]] = field(default_factory=dict)  # rel_mask cache

    # -- lookups ----------------------------------------------------------------------------
    def node_id(self, nid: int) -> str:
        got = self.extra_ids.get(nid)
        if got is not None:
            return got
        return self.ids_blob[int(self.ids_off[nid]) : int(self.ids_off[nid + 1])].decode("utf-8")

    def node_cls(self, nid: int) -> str:
        code = int(self.cls_code[nid]) if nid < len(self.cls_code) else -1
        return self.cls_names[code] if code >= 0 else ""

    @property
    def size(self) -> int:
        return len(self.cls_code)

    def rel_mask(self, rels: Sequence[str]) -> NDArray[np.bool_]:
        key = tuple(rels)
        mask = self.masks.get(key)
        if mask is None:  # cached: the same few relation sets come back at every level
            mask = np.zeros(len(self.rel_names) + 1, dtype=bool)
            index = {r: i for i, r in enumerate(self.rel_names)}
            for r in rels:
                if r in index:
                    mask[index[r]] = True
            self.masks[key] = mask
        return mask

    def edges_of(
        self, frontier: I64, out_rels: Sequence[str], in_rels: Sequence[str],
        seen: NDArray[np.bool_] | None = None,
    ) -> list[tuple[I64, I64, NDArray[np.int16], I64, bool]]:
        """Live edges of allowed relations at the frontier nodes (to nodes not ``seen``, when
        given), per direction: (here, there, rel code, eid, outgoing)."""
        out: list[tuple[I64, I64, NDArray[np.int16], I64, bool]] = []
        for rels, csr, ov_here, ov_there, outgoing in (
            (out_rels, self.out, self.ov_src, self.ov_dst, True),
            (in_rels, self.inc, self.ov_dst, self.ov_src, False),
        ):
            if not rels:
                continue
            mask = self.rel_mask(rels)
            here, there, rel, eid = csr.gather(frontier)
            if len(ov_here):
                pick = np.isin(ov_here, frontier)
                if pick.any():
                    here = np.concatenate([here, ov_here[pick]])
                    there = np.concatenate([there, ov_there[pick]])
                    rel = np.concatenate([rel, self.ov_rel[pick]])
                    eid = np.concatenate([eid, self.ov_eid[pick]])
            keep = mask[rel] & ~self.dead[eid]
            if seen is not None:
                keep &= ~seen[there]
            (at,) = keep.nonzero()
            if len(at):
                out.append((here[at], there[at], rel[at], eid[at], outgoing))
        return out

    def expand(
        self, frontier: I64, out_rels: Sequence[str], in_rels: Sequence[str], seen: NDArray[np.bool_]
    ) -> list[tuple[I64, I64, NDArray[np.int16], I64, bool]]:
        """Edges of allowed relations from the frontier to unseen nodes, per direction:
        (here, there, rel code, eid, outgoing)."""
        return self.edges_of(frontier, out_rels, in_rels, seen)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) with the overlay merged in."""
        merged = self.merged()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                stamp=np.array([CACHE_VERSION, merged.generation, merged.edge_mark, merged.node_mark]),
                store_id=np.array([merged.store_id]),
                rel_names=np.array(merged.rel_names, dtype=object).astype(str),
                cls_names=np.array(merged.cls_names, dtype=object).astype(str),
                out_ptr=merged.out.ptr, out_nbr=merged.out.nbr, out_rel=merged.out.rel, out_eid=merged.out.eid,
                in_ptr=merged.inc.ptr, in_nbr=merged.inc.nbr, in_rel=merged.inc.rel, in_eid=merged.inc.eid,
                dead=merged.dead, cls_code=merged.cls_code,
                ids_blob=np.frombuffer(merged.ids_blob, dtype=np.uint8), ids_off=merged.ids_off,
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> Adjacency:
        """Read a cache file; raises ValueError (or OSError) when it is unusable."""
        with np.load(path, allow_pickle=False) as z:
            stamp = z["stamp"]
            if int(stamp[0]) != CACHE_VERSION:
                raise ValueError(f"cache version {int(stamp[0])}")
            out = Csr(z["out_ptr"], z["out_nbr"], z["out_rel"], z["out_eid"])
            inc = Csr(z["in_ptr"], z["in_nbr"], z["in_rel"], z["in_eid"])
            cls_code = z["cls_code"]
            ids_off = z["ids_off"]
            if not (len(out.ptr) == len(inc.ptr) == len(cls_code) + 1 == len(ids_off)):
                raise ValueError("inconsistent array sizes")
            empty = np.empty(0, dtype=np.int64)
            return Adjacency(
                store_id=str(z["store_id"][0]),
                generation=int(stamp[1]), edge_mark=int(stamp[2]), node_mark=int(stamp[3]),
                rel_names=[str(x) for x in z["rel_names"]], out=out, inc=inc,
                ov_src=empty, ov_dst=empty, ov_rel=np.empty(0, dtype=np.int16), ov_eid=empty,
                dead=z["dead"], cls_code=cls_code, cls_names=[str(x) for x in z["cls_names"]],
                ids_blob=z["ids_blob"].tobytes(), ids_off=ids_off,
            )

    def merged(self) -> Adjacency:
        """The same snapshot with the overlay folded into the CSR arrays and new ids in the blob."""
        if not len(self.ov_eid) and not self.extra_ids:
            return self
        n = self.size
        src_all = np.concatenate([_csr_here(self.out), self.ov_src])
        dst_all = np.concatenate([self.out.nbr, self.ov_dst])
        rel_all = np.concatenate([self.out.rel, self.ov_rel])
        eid_all = np.concatenate([self.out.eid, self.ov_eid])
        alive = ~self.dead[eid_all]
        src_all, dst_all, rel_all, eid_all = src_all[alive], dst_all[alive], rel_all[alive], eid_all[alive]
        blob, off = self.ids_blob, self.ids_off
        if self.extra_ids:
            parts = [blob]
            lens = np.zeros(n - (len(off) - 1), dtype=np.int64)
            base = len(off) - 1
            for nid in range(base, n):
                b = self.extra_ids.get(nid, "").encode("utf-8")
                parts.append(b)
                lens[nid - base] = len(b)
            blob = b"".join(parts)
            off = np.concatenate([off, off[-1] + np.cumsum(lens)])
        return Adjacency(
            store_id=self.store_id,
            generation=self.generation, edge_mark=self.edge_mark, node_mark=self.node_mark,
            rel_names=self.rel_names,
            out=Csr.build(src_all, dst_all, rel_all, eid_all, n),
            inc=Csr.build(dst_all, src_all, rel_all, eid_all, n),
            ov_src=np.empty(0, dtype=np.int64), ov_dst=np.empty(0, dtype=np.int64),
            ov_rel=np.empty(0, dtype=np.int16), ov_eid=np.empty(0, dtype=np.int64),
            dead=self.dead, cls_code=self.cls_code, cls_names=self.cls_names, ids_blob=blob, ids_off=off,
        )


def _csr_here(csr: Csr) -> I64:
    return np.repeat(np.arange(len(csr.ptr) - 1, dtype=np.int64), np.diff(csr.ptr))


# -- building and refreshing from SQLite ---------------------------------------------------------


def _codes(names: list[str], values: Sequence[str]) -> NDArray[np.int16]:
    index = {r: i for i, r in enumerate(names)}
    out = np.empty(len(values), dtype=np.int16)
    for i, v in enumerate(values):
        code = index.get(v)
        if code is None:
            code = index[v] = len(names)
            names.append(v)
        out[i] = code
    return out


def _case(column: str, names: list[str]) -> str:
    """SQL mapping the known names to their codes (unknown -> -1), so rows arrive as integers
    and numpy converts them in C instead of a Python look-up per row."""
    if not names:
        return "-1"
    whens = " ".join(f"WHEN {_quote(n)} THEN {i}" for i, n in enumerate(names))
    return f"CASE {column} {whens} ELSE -1 END"


def _quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _read_edges(
    conn: sqlite3.Connection, after: int, rel_names: list[str]
) -> tuple[I64, I64, I64, NDArray[np.int16]]:
    """(eid, src, dst, rel code) of the edges with ``eid > after`` (the counted relations already
    registered in ``rel_names``, by :func:`_read_since`)."""
    cur = conn.execute(f"SELECT eid, src, dst, {_case('rel', rel_names)} FROM edges WHERE eid > ?", (after,))
    chunks: list[NDArray[np.int64]] = []
    while rows := cur.fetchmany(_FETCH):
        arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
        unknown = np.flatnonzero(arr[:, 3] < 0)
        if len(unknown):  # a relation the counts did not list (should not happen; stay correct)
            eids = arr[unknown, 0].tolist()
            names = dict(conn.execute(
                "SELECT eid, rel FROM edges WHERE eid IN (SELECT value FROM json_each(?))", (json.dumps(eids),)
            ))
            arr[unknown, 3] = _codes(rel_names, [names[e] for e in eids])
        chunks.append(arr)
    if not chunks:
        e0 = np.empty(0, dtype=np.int64)
        return e0, e0, e0, np.empty(0, dtype=np.int16)
    allrows = np.concatenate(chunks)
    return (
        np.ascontiguousarray(allrows[:, 0]), np.ascontiguousarray(allrows[:, 1]),
        np.ascontiguousarray(allrows[:, 2]), allrows[:, 3].astype(np.int16),
    )


def _read_nodes(
    conn: sqlite3.Connection, after: int, cls_names: list[str]
) -> tuple[I64, list[str], NDArray[np.int16]]:
    """(nid, id, class code) of the nodes with ``nid > after``."""
    cur = conn.execute("SELECT nid, id, cls FROM nodes WHERE nid > ?", (after,))
    nids: list[I64] = []
    ids: list[str] = []
    classes: list[NDArray[np.int16]] = []
    while rows := cur.fetchmany(_FETCH):
        n, i, c = zip(*rows, strict=True)
        nids.append(np.array(n, dtype=np.int64))
        ids.extend(i)
        classes.append(_codes(cls_names, c))
    if not nids:
        return np.empty(0, dtype=np.int64), [], np.empty(0, dtype=np.int16)
    return np.concatenate(nids), ids, np.concatenate(classes)


class Written:
    """The rows one transaction added, kept by its writer so that the index refreshed after its
    commit need not read them back from SQLite (at the large plant that read is ~7 of the
    load's seconds). Complete or nothing: rows with ``eid > edge_after`` / ``nid > node_after``
    in rowid order; the writer calls :meth:`lose_edges` as soon as it cannot vouch for that (a
    batch that updated rows or left rowid gaps, any deletion), and :meth:`rows_since` then
    answers None, as it does when the database holds more than was kept (another writer)."""

    def __init__(self, edge_after: int, node_after: int) -> None:
        self.edge_after = edge_after
        self.node_after = node_after
        self.edge_end = edge_after  # the last rowid kept
        self.node_end = node_after
        self._edges: list[tuple[I64, I64, I64, str | list[str]]] | None = []
        self._nodes: list[tuple[I64, list[str], list[str]]] | None = []

    def lose_edges(self) -> None:
        self._edges = None

    def lose_nodes(self) -> None:
        self._nodes = None

    def add_edges(self, first_eid: int, src: I64, dst: I64, rel: str | list[str]) -> None:
        """Edges that took rowids ``first_eid, first_eid + 1, ...`` in order."""
        if self._edges is None:
            return
        if first_eid != self.edge_end + 1:
            self._edges = None
            return
        self._edges.append((np.arange(first_eid, first_eid + len(src), dtype=np.int64), src, dst, rel))
        self.edge_end = first_eid + len(src) - 1

    def relations(self) -> set[str] | None:
        """The relations of the edges kept (None when they are not all kept)."""
        if self._edges is None:
            return None
        return {r for *_, rel in self._edges for r in ([rel] if isinstance(rel, str) else set(rel))}

    def add_nodes(self, nids: I64, ids: list[str], classes: list[str]) -> None:
        """Every node with a rowid above the previous ones kept, in rowid order."""
        if self._nodes is None:
            return
        if len(nids):
            self._nodes.append((nids, ids, classes))
            self.node_end = int(nids[-1])

    def rows_since(
        self, edge_after: int, node_after: int, edge_mark: int, node_mark: int,
        rel_names: list[str], cls_names: list[str],
    ) -> tuple[tuple[I64, I64, I64, NDArray[np.int16]], tuple[I64, list[str], NDArray[np.int16]]] | None:
        """What :func:`_read_edges` and :func:`_read_nodes` would read after these marks (names
        registered in the same order), or None when this record does not cover exactly that."""
        if self._edges is None or self._nodes is None:
            return None
        if (edge_after, node_after) != (self.edge_after, self.node_after):
            return None
        if (edge_mark, node_mark) != (self.edge_end, self.node_end):
            return None
        e0 = np.empty(0, dtype=np.int64)
        edges: tuple[I64, I64, I64, NDArray[np.int16]] = (e0, e0, e0, np.empty(0, dtype=np.int16))
        if self._edges:
            codes = []
            for eids, _, _, rel in self._edges:
                codes.append(_codes(rel_names, [rel] * len(eids) if isinstance(rel, str) else rel))
            edges = (np.concatenate([c[0] for c in self._edges]), np.concatenate([c[1] for c in self._edges]),
                     np.concatenate([c[2] for c in self._edges]), np.concatenate(codes))
        nodes: tuple[I64, list[str], NDArray[np.int16]] = (e0, [], np.empty(0, dtype=np.int16))
        if self._nodes:
            ids = [i for c in self._nodes for i in c[1]]
            cls = _codes(cls_names, [k for c in self._nodes for k in c[2]])
            nodes = (np.concatenate([c[0] for c in self._nodes]), ids, cls)
        return edges, nodes


def _edge_names(conn: sqlite3.Connection, rel_names: list[str]) -> None:
    for (name,) in conn.execute("SELECT rel FROM edge_counts WHERE n > 0 ORDER BY rel"):
        if name not in rel_names:
            rel_names.append(name)


def _read_since(
    conn: sqlite3.Connection, edge_after: int, node_after: int, marks: tuple[str, int, int, int],
    rel_names: list[str], cls_names: list[str], written: Written | None,
) -> tuple[tuple[I64, I64, I64, NDArray[np.int16]], tuple[I64, list[str], NDArray[np.int16]]]:
    """Edges and nodes added after the marks: from the writer's record when it covers them,
    else read from SQLite."""
    _edge_names(conn, rel_names)  # both ways code relations in this order
    if written is not None:
        got = written.rows_since(edge_after, node_after, marks[2], marks[3], rel_names, cls_names)
        if got is not None:
            return got
    return _read_edges(conn, edge_after, rel_names), _read_nodes(conn, node_after, cls_names)


def store_id(conn: sqlite3.Connection) -> str:
    """The database's ``meta.store_id`` ("" before it has one): what ties a cache file to it."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    return "" if row is None else str(row[0])


def generation(conn: sqlite3.Connection) -> int:
    """The committed generation (``meta.generation``) as ``conn`` sees it."""
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def _marks(conn: sqlite3.Connection) -> tuple[str, int, int, int]:
    sid, gen = store_id(conn), generation(conn)
    edge_mark = int(conn.execute("SELECT coalesce(max(eid), 0) FROM edges").fetchone()[0])
    node_mark = int(conn.execute("SELECT coalesce(max(nid), 0) FROM nodes").fetchone()[0])
    seq = dict(conn.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN ('edges', 'nodes')"))
    return sid, gen, max(edge_mark, int(seq.get("edges", 0))), max(node_mark, int(seq.get("nodes", 0)))


def build(conn: sqlite3.Connection, written: Written | None = None) -> Adjacency:
    """A full snapshot read in one SQLite read transaction (or taken from ``written`` when the
    transaction that wrote them left the store's every row there)."""
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        marks = _marks(conn)
        rel_names: list[str] = []
        cls_names: list[str] = []
        rows = _read_since(conn, 0, 0, marks, rel_names, cls_names, written)
    finally:
        if own_tx:
            conn.execute("COMMIT")
    return _assemble(marks, rel_names, cls_names, rows)


def speculate(written: Written, store_id: str, generation: int) -> Adjacency | None:
    """The snapshot :func:`build` will make from ``written`` once its transaction commits as
    ``generation``, made before that commit (beside the secondary index rebuild, which leaves a
    core free); None unless the store held no row before the transaction and ``written`` kept
    them all. The caller adopts it only when :func:`is_current` says so after the commit."""
    kept = written.relations()
    if written.edge_after or written.node_after or kept is None:
        return None
    rel_names = sorted(kept)
    cls_names: list[str] = []
    marks = (store_id, generation, written.edge_end, written.node_end)
    rows = written.rows_since(0, 0, written.edge_end, written.node_end, rel_names, cls_names)
    if rows is None:
        return None
    return _assemble(marks, rel_names, cls_names, rows)


def is_current(adj: Adjacency, conn: sqlite3.Connection) -> bool:
    """Whether ``adj`` is the snapshot :func:`build` would read from ``conn`` now."""
    return _marks(conn) == (adj.store_id, adj.generation, adj.edge_mark, adj.node_mark) and (
        _names_in_order(conn) == adj.rel_names)


def _names_in_order(conn: sqlite3.Connection) -> list[str]:
    names: list[str] = []
    _edge_names(conn, names)
    return names


def _assemble(
    marks: tuple[str, int, int, int], rel_names: list[str], cls_names: list[str],
    rows: tuple[tuple[I64, I64, I64, NDArray[np.int16]], tuple[I64, list[str], NDArray[np.int16]]],
) -> Adjacency:
    store_id, gen, edge_mark, node_mark = marks
    (eid, src, dst, rel), (nids, ids, cls) = rows
    n = max(node_mark, int(nids.max()) if len(nids) else 0) + 1
    cls_code = np.full(n, -1, dtype=np.int16)
    cls_code[nids] = cls
    # ids packed as one UTF-8 blob with offsets by nid (gaps left by deleted nodes are empty)
    lens = np.zeros(n, dtype=np.int64)
    raw = [s.encode("utf-8") for s in ids]
    lens[nids] = np.fromiter((len(b) for b in raw), dtype=np.int64, count=len(raw))
    order = np.argsort(nids, kind="stable")
    blob = b"".join(raw[i] for i in order.tolist())
    del raw
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    empty = np.empty(0, dtype=np.int64)
    return Adjacency(
        store_id=store_id, generation=gen, edge_mark=edge_mark, node_mark=node_mark, rel_names=rel_names,
        out=Csr.build(src, dst, rel, eid, n), inc=Csr.build(dst, src, rel, eid, n),
        ov_src=empty, ov_dst=empty, ov_rel=np.empty(0, dtype=np.int16), ov_eid=empty,
        dead=np.zeros(edge_mark + 1, dtype=bool), cls_code=cls_code, cls_names=cls_names,
        ids_blob=blob, ids_off=off,
    )


def refresh(adj: Adjacency, conn: sqlite3.Connection, written: Written | None = None) -> Adjacency | None:
    """``adj`` brought forward to the database's current generation, or None when it cannot
    be (the database is older than the snapshot: a restored backup, a foreign cache file).
    The rows added since come from ``written`` when it holds exactly them."""
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        marks = _marks(conn)
        store_id, gen, edge_mark, node_mark = marks
        if store_id != adj.store_id:  # another database (recreated, replaced) under the same path
            return None
        if gen == adj.generation:
            return adj
        if gen < adj.generation or edge_mark < adj.edge_mark or node_mark < adj.node_mark:
            return None
        rel_names = list(adj.rel_names)
        cls_names = list(adj.cls_names)
        (eid, src, dst, rel), (nids, ids, cls) = _read_since(
            conn, adj.edge_mark, adj.node_mark, marks, rel_names, cls_names, written)
        dead_eids = [r[0] for r in conn.execute("SELECT eid FROM edge_tombstones WHERE gen > ?", (adj.generation,))]
    finally:
        if own_tx:
            conn.execute("COMMIT")
    n = max(adj.size, node_mark + 1)
    cls_code = adj.cls_code
    extra = dict(adj.extra_ids)
    if n > adj.size or len(nids):
        cls_code = np.concatenate([adj.cls_code, np.full(n - adj.size, -1, dtype=np.int16)])
        cls_code[nids] = cls
        extra.update(zip(nids.tolist(), ids, strict=True))
    dead = adj.dead
    if edge_mark + 1 > len(dead) or dead_eids:
        dead = np.concatenate([adj.dead, np.zeros(max(0, edge_mark + 1 - len(adj.dead)), dtype=bool)])
        dead[np.array(dead_eids, dtype=np.int64)] = True
    out, inc = adj.out, adj.inc
    if n > len(out.ptr) - 1:  # new nodes: extend the pointers (they have no CSR edges yet)
        pad = np.full(n - (len(out.ptr) - 1), out.ptr[-1], dtype=np.int64)
        out = Csr(np.concatenate([out.ptr, pad]), out.nbr, out.rel, out.eid)
        pad = np.full(n - (len(inc.ptr) - 1), inc.ptr[-1], dtype=np.int64)
        inc = Csr(np.concatenate([inc.ptr, pad]), inc.nbr, inc.rel, inc.eid)
    new = Adjacency(
        store_id=store_id, generation=gen, edge_mark=edge_mark, node_mark=node_mark, rel_names=rel_names,
        out=out, inc=inc,
        ov_src=np.concatenate([adj.ov_src, src]), ov_dst=np.concatenate([adj.ov_dst, dst]),
        ov_rel=np.concatenate([adj.ov_rel, rel]), ov_eid=np.concatenate([adj.ov_eid, eid]),
        dead=dead, cls_code=cls_code, cls_names=cls_names, ids_blob=adj.ids_blob, ids_off=adj.ids_off,
        extra_ids=extra,
    )
    return new


def stats(adj: Adjacency) -> dict[str, Any]:
    arrays: list[np.ndarray[Any, Any]] = [
        adj.out.ptr, adj.out.nbr, adj.out.rel, adj.out.eid, adj.inc.ptr, adj.inc.nbr, adj.inc.rel,
        adj.inc.eid, adj.dead, adj.cls_code, adj.ids_off,
    ]
    return {
        "generation": adj.generation, "nodes": adj.size, "edges": len(adj.out.nbr) + len(adj.ov_eid),
        "overlay": len(adj.ov_eid), "bytes": sum(a.nbytes for a in arrays) + len(adj.ids_blob),
    }
