"""The copilot's speed changes answer as before: one score vector per search (the fallback reuses
it), the lazy full ranking, the one-thread query product, entity lookups from ids-only links and
citations capped without building the rest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from reasoning.rag.cards import IndexItem
from reasoning.rag.copilot import MAX_PATHS_PER_CLAIM, Copilot, _capped, path_citation
from reasoning.rag.index import PER_ROW, VectorIndex, _all_rows, _top_rows, query_scores
from reasoning.rag.models import GraphPathCitation, RetrievedItem
from reasoning.results import EvidencePath, EvidenceStep
from store.base import Direction, GraphStore, NodeRecord
from tests.reasoning.rag.fakes import HashEmbedder


def _old_ranked_rows(vectors: np.ndarray, q: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ranking as it was written before the fast path (numpy product, partition, stable sort)."""
    scores = vectors @ q
    n = min(n, len(scores))
    if n <= 0:
        return []
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top]


def _old_search(index: VectorIndex, q: np.ndarray, k: int, kinds: Iterable[str] | None,
                plants: Sequence[str] | None) -> list[RetrievedItem]:
    """``VectorIndex.search`` as it was before (second full ranking recomputed the product)."""
    kind_set = set(kinds) if kinds is not None else None
    plant_set = set(plants) if plants is not None else None

    def ok(it: IndexItem) -> bool:
        if kind_set is not None and it.kind not in kind_set:
            return False
        return plant_set is None or it.plant is None or it.plant in plant_set

    ranked = _old_ranked_rows(index.vectors, q, max(k * 4, 32))
    out: list[RetrievedItem] = []
    seen_rows: set[int] = set()
    for attempt in range(2):
        for row, score in ranked:
            if row in seen_rows:
                continue
            seen_rows.add(row)
            taken = 0
            for n in index._row_items[row]:
                if taken >= PER_ROW or len(out) >= k:
                    break
                it = index.items[n]
                if ok(it):
                    taken += 1
                    out.append(RetrievedItem(
                        item_id=it.item_id, kind=it.kind, score=round(float(score), 5), text=it.text,
                        entity_id=it.entity_id, doc_id=it.doc_id, chunk=it.chunk, start=it.start,
                        end=it.end, plant=it.plant))
            if len(out) >= k:
                return out[:k]
        if attempt == 0 and len(ranked) < len(index.hashes):
            ranked = _old_ranked_rows(index.vectors, q, len(index.hashes))
    return out[:k]


def _synthetic_index(rows: int, seed: int, dim: int = 16) -> VectorIndex:
    """Rows with exact duplicates (ties), items of two kinds in three plants, several per row."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((max(1, rows // 3), dim)).astype(np.float32)
    vecs = base[rng.integers(0, len(base), rows)]  # many exact ties
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(Path("/nonexistent"), HashEmbedder(dim))
    hashes = [f"h{i}" for i in range(rows)]
    items: list[IndexItem] = []
    for i in range(rows):
        for j in range(int(rng.integers(1, 5))):
            items.append(IndexItem(
                item_id=f"i{i}.{j}", kind="chunk" if rng.random() < 0.8 else "card", text=f"t{i}",
                entity_id=f"E{i}", plant=[None, "P1", "P2", "P3"][int(rng.integers(0, 4))]))
    index.items = items
    index.hashes = hashes
    index.vectors = np.ascontiguousarray(vecs)
    index._row_of = {h: i for i, h in enumerate(hashes)}
    index._row_items = [[] for _ in hashes]
    for n, it in enumerate(items):
        index._row_items[int(it.item_id[1:].split(".")[0])].append(n)
    return index


@pytest.mark.parametrize("seed", range(6))
def test_search_equals_the_old_search_including_the_fallback(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    index = _synthetic_index(int(rng.integers(20, 300)), seed)
    for _ in range(20):
        q = index.vectors[int(rng.integers(0, len(index.vectors)))].copy()
        k = int(rng.integers(1, 12))
        kinds = [None, ["card"], ["chunk"]][int(rng.integers(0, 3))]
        plants = [None, ["P1"], ["P3"], ["nowhere"]][int(rng.integers(0, 4))]
        # "card" and one plant leave most rows without a fitting item: the fallback ranks all rows
        got = index.search(q, k=k, kinds=kinds, plants=plants)
        want = _old_search(index, q, k, kinds, plants)
        assert [h.model_dump() for h in got] == [h.model_dump() for h in want]


@pytest.mark.parametrize("rows", [1, 2, 7, 50, 333])
def test_lazy_full_ranking_is_the_old_full_ranking(rows: int) -> None:
    index = _synthetic_index(rows, rows)
    q = index.vectors[0].copy()
    scores = index.vectors @ q
    assert list(_all_rows(scores)) == _old_ranked_rows(index.vectors, q, rows)
    assert _top_rows(scores, 5) == _old_ranked_rows(index.vectors, q, 5)


def test_one_thread_product_equals_numpy_to_the_last_bits() -> None:
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((4000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for q in vecs[:5]:
        got, want = query_scores(vecs, q), vecs @ q
        assert got.dtype == want.dtype and got.shape == want.shape
        # OpenBLAS on two threads splits the rows in two, which can round a row next to the
        # split in the last bit; one thread does not split
        assert np.max(np.abs(got - want)) <= 1e-6
        assert (got != want).sum() <= 8


def test_lookup_connections_from_links_equal_the_full_edges(plant: GraphStore, now: datetime) -> None:
    copilot = Copilot(plant, now=now)
    hubs = sorted(plant.find_nodes(cls="Customer"), key=lambda n: n.id) + sorted(
        plant.find_nodes(cls="Machine"), key=lambda n: n.id)
    assert hubs
    for node in hubs:
        answer = copilot.ask(f"Tell me about {node.id}")
        edges = plant.neighbours(node.id, None, Direction.BOTH)
        if not edges:
            continue
        claim = next(c for c in answer.claims if c.text.startswith("Connections: "))
        by_rel: dict[str, list[str]] = {}
        for e in edges:
            by_rel.setdefault(e.rel, []).append(e.dst if e.src == node.id else e.src)
        for rel, xs in by_rel.items():
            assert f"{rel}: {xs[0]}" in claim.text
        cited = [answer.citations[i] for i in claim.citations]
        want = [GraphPathCitation(nodes=[e.src, e.dst], rels=[e.rel], directions=["out"])
                for e in edges][:MAX_PATHS_PER_CLAIM]
        assert cited == want


def test_lookup_of_a_node_with_more_edges_than_cited(tmp_path: Path, now: datetime) -> None:
    from store.base import EdgeRecord
    from store.factory import open_store

    store = open_store("embedded", tmp_path / "s")
    try:
        with store.transaction() as tx:
            tx.upsert_nodes([NodeRecord(id="CUST-1", cls="Customer", name="Hub", props={})]
                            + [NodeRecord(id=f"SO-{i:03d}", cls="SalesOrder", props={}) for i in range(60)])
            tx.upsert_edges([EdgeRecord(src=f"SO-{i:03d}", rel="PLACED_BY", dst="CUST-1", props={"n": i})
                             for i in range(60)])
        answer = Copilot(store, now=now).ask("Tell me about CUST-1")
        claim = next(c for c in answer.claims if c.text.startswith("Connections: "))
        assert "PLACED_BY: SO-000, SO-001, SO-002, SO-003, SO-004 and 55 more" in claim.text
        assert [answer.citations[i] for i in claim.citations] == [
            GraphPathCitation(nodes=[f"SO-{i:03d}", "CUST-1"], rels=["PLACED_BY"], directions=["out"])
            for i in range(MAX_PATHS_PER_CLAIM)]
    finally:
        store.close()


def test_capped_citations_equal_the_sliced_list() -> None:
    paths = [EvidencePath(steps=[EvidenceStep(src=f"A{i}", rel="R", dst=f"B{i}", direction="out")] if i % 3 else [])
             for i in range(80)]
    for n in (0, 5, 25, 26, 80):
        want = [path_citation(p) for p in paths[:n] if p.steps][:MAX_PATHS_PER_CLAIM]
        assert _capped(path_citation(p) for p in paths[:n] if p.steps) == want


def test_cached_lines_at_risk_answer_as_a_fresh_board(plant: GraphStore, now: datetime) -> None:
    questions = ["Which deliveries are at risk in the next 14 days?",
                 "Which deliveries are at risk in the next 14 days because of held lots?",
                 "Which deliveries are at risk in the next 14 days?"]
    warm = Copilot(plant, now=now)
    for q in questions:
        got = warm.ask(q).model_dump(exclude={"timings_ms"})
        fresh = Copilot(plant, now=now).ask(q).model_dump(exclude={"timings_ms"})
        assert got == fresh
    assert len(warm._risk_cache) == 1
    board, at_risk = next(iter(warm._risk_cache.values()))
    assert at_risk == board.at_risk
