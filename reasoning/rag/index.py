"""The persisted vector index over entity cards and document chunks.

Layout of ``<store path>.rag/`` (a folder beside the store, so it moves with it):

- ``manifest.json``: format version, model id, dimension, row count, graph fingerprint.
- ``vectors.npy``: one L2-normalised float32 row per *distinct* text; ``hashes.json``: the content
  hash of each row. Together they are the embedding cache: a text whose hash is known is never
  embedded again, across rebuilds and restarts.
- ``items.jsonl``: every searchable item (card or chunk) with the hash of its text.
- ``docs/``: documents added with ``plantgraph docs add``.

Search is exact cosine similarity as one matrix-vector product (numpy): a few ms per query up to
~100k distinct texts. When the store offers ``vector_search`` (Neo4j), vectors are also upserted
there and queries go to the store instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reasoning.rag.cards import IndexItem, entity_items
from reasoning.rag.documents import DocumentRegistry
from reasoning.rag.embedder import Embedder, FloatMatrix
from reasoning.rag.errors import VectorIndexError
from reasoning.rag.models import RetrievedItem
from store.base import CapabilityError, GraphStore, StoreError

FORMAT_VERSION = 1
VECTOR_NAMESPACE = "plantgraph_rag"
EMBED_BATCH = 256
#: Items returned per distinct text: a templated card shared by thousands of events (see cards.py)
#: must not fill the whole top-k with copies of itself.
PER_ROW = 3


class IndexManifest(BaseModel):
    format_version: int
    model_id: str
    dim: int
    rows: int
    items: int
    fingerprint: str
    built_at: datetime
    embedded_last_build: int = 0
    seconds_last_build: float = 0.0


class BuildReport(BaseModel):
    items: int
    distinct_texts: int
    embedded: int
    reused: int
    seconds: float
    texts_per_second: float | None
    folder: str


def index_dir_for(store_path: Path) -> Path:
    """The index folder beside a store path: ``data/store`` -> ``data/store.rag``."""
    return store_path.with_name(store_path.name + ".rag")


def graph_fingerprint(store: GraphStore) -> str:
    """Cheap change detector: the store's commit generation when it has one (catches property
    changes too), plus node and edge counts per class and relation."""
    c = store.counts()
    generation = getattr(store, "generation", None)
    return json.dumps([generation if isinstance(generation, int) else None,
                       sorted(c.nodes_by_class.items()), sorted(c.edges_by_relation.items())])


class VectorIndex:
    """Cards and chunks, their distinct texts' vectors, and exact cosine search."""

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        self.folder = folder
        self.embedder = embedder
        self.docs = DocumentRegistry(folder / "docs")
        self.items: list[IndexItem] = []
        self.hashes: list[str] = []
        self.vectors: FloatMatrix = np.zeros((0, embedder.dim), dtype=np.float32)
        self.manifest: IndexManifest | None = None
        self._row_of: dict[str, int] = {}
        self._row_items: list[list[int]] = []
        self._item_plants: np.ndarray[Any, Any] = np.zeros(0, dtype=object)
        self._query_cache: dict[str, FloatMatrix] = {}
        self._store_vectors = False

    # -- persistence ------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.folder / "manifest.json").exists()

    def load(self) -> VectorIndex:
        """Read the persisted index; :class:`VectorIndexError` names the broken file."""
        mpath = self.folder / "manifest.json"
        if not mpath.exists():
            raise VectorIndexError(f"{self.folder}: no vector index here; run `plantgraph index build`")
        try:
            manifest = IndexManifest.model_validate_json(mpath.read_text("utf-8"))
        except (ValidationError, ValueError) as exc:
            raise VectorIndexError(f"{mpath}: unreadable manifest: {exc}") from exc
        if manifest.format_version != FORMAT_VERSION:
            raise VectorIndexError(f"{mpath}: format_version {manifest.format_version}, expected {FORMAT_VERSION}")
        if manifest.model_id != self.embedder.model_id:
            raise VectorIndexError(
                f"{mpath}: built with model {manifest.model_id!r}, current model is {self.embedder.model_id!r}; "
                "rebuild with `plantgraph index build`"
            )
        current = "vectors.npy"
        try:
            vectors = np.load(self.folder / current, allow_pickle=False)
            current = "hashes.json"
            hashes = json.loads((self.folder / current).read_text("utf-8"))
            current = "items.jsonl"
            items = []
            with (self.folder / current).open(encoding="utf-8") as fh:
                for line in fh:
                    items.append(IndexItem(**json.loads(line)))
        except (OSError, ValueError, TypeError) as exc:
            raise VectorIndexError(f"{self.folder / current}: unreadable index file: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape != (manifest.rows, manifest.dim) or len(hashes) != manifest.rows:
            raise VectorIndexError(
                f"{self.folder}/vectors.npy: shape {vectors.shape} and {len(hashes)} hashes do not match "
                f"the manifest ({manifest.rows} rows of {manifest.dim})"
            )
        if len(items) != manifest.items:
            raise VectorIndexError(f"{self.folder}/items.jsonl: {len(items)} items, manifest says {manifest.items}")
        self.manifest = manifest
        self._set(items, hashes, vectors.astype(np.float32, copy=False))
        return self

    def _set(self, items: list[IndexItem], hashes: list[str], vectors: FloatMatrix) -> None:
        self.items, self.hashes, self.vectors = items, hashes, vectors
        self._row_of = {h: i for i, h in enumerate(hashes)}
        self._row_items = [[] for _ in hashes]
        for n, it in enumerate(items):
            row = self._row_of.get(it.hash)
            if row is None:
                raise VectorIndexError(f"{self.folder}: item {it.item_id} has no vector")
            self._row_items[row].append(n)
        self._item_plants = np.array([it.plant for it in items], dtype=object)

    def _save(self, manifest: IndexManifest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

        def write(name: str, writer: Callable[[Path], object]) -> None:
            tmp = self.folder / (name + ".tmp")
            writer(tmp)
            os.replace(tmp, self.folder / name)

        def write_vectors(p: Path) -> None:
            with p.open("wb") as fh:
                np.save(fh, self.vectors, allow_pickle=False)

        write("vectors.npy", write_vectors)
        write("hashes.json", lambda p: p.write_text(json.dumps(self.hashes), "utf-8"))
        write("items.jsonl", lambda p: p.write_text(
            "".join(json.dumps(asdict(it), ensure_ascii=False) + "\n" for it in self.items), "utf-8"))
        write("manifest.json", lambda p: p.write_text(manifest.model_dump_json(indent=1), "utf-8"))
        self.manifest = manifest

    # -- building ---------------------------------------------------------------------------
    def collect(self, store: GraphStore) -> list[IndexItem]:
        return [*entity_items(store), *self.docs.items()]

    def build(self, store: GraphStore, show_progress: bool = False) -> BuildReport:
        """(Re)build incrementally: only texts whose hash is not cached yet are embedded."""
        t0 = time.perf_counter()
        if not self.items and self.exists:
            with contextlib.suppress(VectorIndexError):  # a broken index is rebuilt from scratch
                self.load()
        items = self.collect(store)
        wanted: dict[str, str] = {}
        for it in items:
            wanted.setdefault(it.hash, it.embed_text)
        missing = [h for h in wanted if h not in self._row_of]
        new_vectors = self._embed([wanted[h] for h in missing], show_progress)
        keep = [h for h in self.hashes if h in wanted]
        keep_rows = [self._row_of[h] for h in keep]
        vectors = np.vstack([self.vectors[keep_rows], new_vectors]) if keep_rows else new_vectors
        hashes = keep + missing
        self._set(items, hashes, vectors.astype(np.float32, copy=False))
        seconds = time.perf_counter() - t0
        self._save(IndexManifest(
            format_version=FORMAT_VERSION, model_id=self.embedder.model_id, dim=self.embedder.dim,
            rows=len(hashes), items=len(items), fingerprint=graph_fingerprint(store),
            built_at=datetime.now(UTC), embedded_last_build=len(missing), seconds_last_build=seconds,
        ))
        self.sync_store(store, only=set(missing))
        return BuildReport(
            items=len(items), distinct_texts=len(hashes), embedded=len(missing),
            reused=len(hashes) - len(missing), seconds=round(seconds, 3),
            texts_per_second=round(len(missing) / seconds, 1) if missing and seconds > 0 else None,
            folder=str(self.folder),
        )

    def _embed(self, texts: Sequence[str], show_progress: bool) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        parts: list[FloatMatrix] = []
        with Progress(
            TextColumn("embedding texts"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            disable=not show_progress, transient=True,
        ) as progress:
            task = progress.add_task("embed", total=len(texts))
            for i in range(0, len(texts), EMBED_BATCH):
                batch = texts[i:i + EMBED_BATCH]
                parts.append(self.embedder.embed(batch))
                progress.advance(task, len(batch))
        return np.vstack(parts).astype(np.float32, copy=False)

    def is_stale(self, store: GraphStore) -> bool:
        return self.manifest is None or self.manifest.fingerprint != graph_fingerprint(store)

    def sync_store(self, store: GraphStore, only: set[str] | None = None) -> None:
        """Mirror vectors into a store that has its own vector index (Neo4j)."""
        if not store.capabilities.vector_search:
            return
        rows = [(h, self.vectors[i].tolist()) for i, h in enumerate(self.hashes) if only is None or h in only]
        try:
            if rows:
                store.vector_upsert(VECTOR_NAMESPACE, rows)
            self._store_vectors = True
        except (CapabilityError, StoreError):
            self._store_vectors = False

    def attach_store(self, store: GraphStore) -> None:
        """Use the store's vector index when it has one: probe it, and fill it when empty."""
        if not store.capabilities.vector_search or not self.hashes:
            return
        try:
            probe = store.vector_search(VECTOR_NAMESPACE, self.vectors[0].tolist(), k=1)
        except StoreError:
            self._store_vectors = False
            return
        if probe and probe[0][0] == self.hashes[0]:
            self._store_vectors = True
        else:
            self.sync_store(store)

    # -- search -----------------------------------------------------------------------------
    def embed_query(self, text: str) -> FloatMatrix:
        vec = self._query_cache.get(text)
        if vec is None:
            vec = self.embedder.embed([text])[0]
            if len(self._query_cache) > 2048:
                self._query_cache.clear()
            self._query_cache[text] = vec
        return vec

    def search(
        self,
        query: str | FloatMatrix,
        k: int = 10,
        kinds: Iterable[str] | None = None,
        plants: Sequence[str] | None = None,
        store: GraphStore | None = None,
    ) -> list[RetrievedItem]:
        """Top ``k`` items by cosine similarity; ``plants`` keeps items of those plants (and
        enterprise-wide items without a plant)."""
        if not self.items:
            return []
        q = self.embed_query(query) if isinstance(query, str) else query
        kind_set = set(kinds) if kinds is not None else None
        plant_set = set(plants) if plants is not None else None

        def ok(it: IndexItem) -> bool:
            if kind_set is not None and it.kind not in kind_set:
                return False
            return plant_set is None or it.plant is None or it.plant in plant_set

        # the local scores are computed once per search: the fallback ranking below reuses them
        # (at 15k rows the product is ~5 ms CPU, a third of a free question's search)
        scores: FloatMatrix | None = None
        ranked: Iterable[tuple[int, float]] | None = None
        if store is not None and self._store_vectors:
            ranked = self._store_rows(q, max(k * 4, 32), store)
        if ranked is None:
            scores = query_scores(self.vectors, q)
            ranked = _top_rows(scores, max(k * 4, 32))
        first_len = len(ranked) if isinstance(ranked, list) else 0
        out: list[RetrievedItem] = []
        seen_rows: set[int] = set()
        for attempt in range(2):
            for row, score in ranked:
                if row in seen_rows:
                    continue
                seen_rows.add(row)
                taken = 0
                for n in self._row_items[row]:
                    if taken >= PER_ROW or len(out) >= k:
                        break
                    it = self.items[n]
                    if ok(it):
                        taken += 1
                        out.append(RetrievedItem(
                            item_id=it.item_id, kind=it.kind, score=round(float(score), 5), text=it.text,
                            entity_id=it.entity_id, doc_id=it.doc_id, chunk=it.chunk, start=it.start,
                            end=it.end, plant=it.plant,
                        ))
                if len(out) >= k:
                    return out[:k]
            if attempt == 0 and first_len < len(self.hashes):
                if scores is None:
                    scores = query_scores(self.vectors, q)
                ranked = _all_rows(scores)
        return out[:k]

    def _store_rows(self, q: FloatMatrix, n: int, store: GraphStore) -> list[tuple[int, float]] | None:
        """The store's own top ``n`` rows, or None when it fails (then the local matrix answers)."""
        try:
            hits = store.vector_search(VECTOR_NAMESPACE, q.tolist(), k=n)
        except StoreError:
            self._store_vectors = False
            return None
        return [(self._row_of[h], s) for h, s in hits if h in self._row_of]

    def _ranked_rows(self, q: FloatMatrix, n: int, store: GraphStore | None) -> list[tuple[int, float]]:
        if store is not None and self._store_vectors:
            rows = self._store_rows(q, n, store)
            if rows is not None:
                return rows
        return _top_rows(query_scores(self.vectors, q), n)


_BLAS_LOCK = threading.Lock()
_BLAS: list[Any] = []  # [threadpoolctl controller or None], created on first use


def query_scores(vectors: FloatMatrix, q: FloatMatrix) -> FloatMatrix:
    """Cosine scores of one query against every row, with numpy's BLAS on one thread.

    Same reason as the query embedding's single torch thread (embedder.py): on the busy shared
    2-core machine OpenBLAS's second thread spins waiting for a core: at 5k rows the product took
    4.2 ms CPU on two threads and 0.4 ms on one while the machine was busy (0.9 / 0.45 ms idle;
    at 15k rows ~5 / ~1.2 ms). One thread may round the rows where OpenBLAS
    would have split the work differently in the last bit (1 float32 ulp, ~1e-8; scores are
    rounded to 5 decimals). threadpoolctl comes with sentence-transformers' dependencies; without
    it the product runs as numpy is configured. The lock keeps concurrent searches from restoring
    each other's thread count."""
    with _BLAS_LOCK:
        if not _BLAS:
            try:
                from threadpoolctl import ThreadpoolController

                _BLAS.append(ThreadpoolController())
            except Exception:  # not installed, or no BLAS found: plain product
                _BLAS.append(None)
        ctl = _BLAS[0]
        if ctl is None:
            return vectors @ q
        with ctl.limit(limits=1, user_api="blas"):
            return vectors @ q


def _top_rows(scores: FloatMatrix, n: int) -> list[tuple[int, float]]:
    """The ``n`` best rows, best first (ties in the order numpy's partition leaves them)."""
    n = min(n, len(scores))
    if n <= 0:
        return []
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top]


def _all_rows(scores: FloatMatrix) -> Iterator[tuple[int, float]]:
    """Every row, best first, ties in row order (what ``_top_rows`` gives for n = all rows),
    produced lazily: a search stops after a few, so 15k (row, score) pairs are not built."""
    for i in np.argsort(-scores, kind="stable").tolist():
        yield i, float(scores[i])
