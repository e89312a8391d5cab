"""The persisted vector index: dedupe, cache by content hash, restart without re-embedding,
incremental updates, documents, clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from reasoning.rag.cards import chunk_text
from reasoning.rag.documents import DocumentRegistry
from reasoning.rag.embedder import SentenceTransformerEmbedder
from reasoning.rag.errors import DocumentError, VectorIndexError
from reasoning.rag.index import PER_ROW, VectorIndex, index_dir_for
from store.base import GraphStore
from tests.graphs import build_graph
from tests.reasoning.rag.fakes import HashEmbedder


def test_index_lives_beside_the_store(plant_path: Path) -> None:
    assert index_dir_for(plant_path) == plant_path.parent / "store.rag"


def test_restart_does_not_re_embed(plant: GraphStore, plant_path: Path) -> None:
    first = HashEmbedder()
    report = VectorIndex(index_dir_for(plant_path), first).build(plant)
    assert report.embedded == report.distinct_texts > 0
    assert first.texts_embedded == report.embedded

    again = HashEmbedder()  # a new process: fresh embedder, index read from disk
    index = VectorIndex(index_dir_for(plant_path), again).load()
    assert len(index.items) == report.items
    rebuilt = index.build(plant)
    assert rebuilt.embedded == 0 and again.calls == 0
    hits = index.search("bearing overheated", k=3, kinds=["card"])
    assert hits[0].entity_id == "DT-1"
    assert again.calls == 1  # the query only


def test_incremental_update_embeds_only_new_texts(plant: GraphStore, plant_path: Path) -> None:
    emb = HashEmbedder()
    index = VectorIndex(index_dir_for(plant_path), emb)
    index.build(plant)
    before = emb.texts_embedded
    build_graph(plant, nodes=[("INC-2", "Incident", {
        "kind": "deviation", "severity": "low", "occurred_at": "2026-03-03T01:00:00+00:00",
        "title": "Label misprint", "text": "Labels were printed with the wrong date code."},
        {"plant": "SITE-BER"})], edges=[("INC-2", "OCCURRED_ON", "M-3")])
    assert index.is_stale(plant)
    report = index.build(plant)
    assert report.embedded == emb.texts_embedded - before == 2  # one card, one chunk
    assert not index.is_stale(plant)
    assert index.search("wrong date code on labels", k=1)[0].entity_id == "INC-2"


def test_identical_cards_share_one_vector(plant: GraphStore, plant_path: Path) -> None:
    build_graph(plant, nodes=[
        (f"DT-{n}", "DowntimeEvent", {"start": f"2026-03-0{n}T01:00:00+00:00", "reason": "bearing overheated"},
         {"plant": "SITE-BER"}) for n in (2, 3, 4)
    ], edges=[(f"DT-{n}", "OCCURRED_ON", "M-7") for n in (2, 3, 4)])
    emb = HashEmbedder()
    index = VectorIndex(index_dir_for(plant_path), emb)
    report = index.build(plant)
    assert report.items - report.distinct_texts == 3  # DT-1..DT-4 have one text
    hits = index.search("bearing overheated on Mixer 7", k=5, kinds=["card"])
    shared = [h.entity_id for h in hits if h.text == hits[0].text]
    # one shared text returns at most PER_ROW of its entities, so the rest of the top-k is other things
    assert len(shared) == PER_ROW and set(shared) <= {"DT-1", "DT-2", "DT-3", "DT-4"}
    assert len(hits) == 5 and len({h.text for h in hits}) == 3


def test_event_cards_are_templates_and_chunks_embed_without_ids(plant: GraphStore, plant_path: Path) -> None:
    build_graph(plant, nodes=[
        ("MNT-1", "MaintenanceOrder", {"kind": "preventive", "status": "completed",
                                       "text": "Planned service of M-7: lubrication."}, {"name": "Service M-7"}),
        ("MNT-2", "MaintenanceOrder", {"kind": "preventive", "status": "open",
                                       "text": "Planned service of M-3: lubrication."}, {"name": "Service M-3"}),
    ], edges=[("MNT-1", "OCCURRED_ON", "M-7"), ("MNT-2", "OCCURRED_ON", "M-3")])
    index = VectorIndex(index_dir_for(plant_path), HashEmbedder())
    index.build(plant)
    items = {it.item_id: it for it in index.items}
    c1, c2 = items["card:MNT-1"], items["card:MNT-2"]
    assert c1.text == c2.text and "M-7" not in c1.text and "completed" not in c1.text
    k1, k2 = items["chunk:MNT-1:text:0"], items["chunk:MNT-2:text:0"]
    assert (k1.text, k2.text) == ("Planned service of M-7: lubrication.", "Planned service of M-3: lubrication.")
    assert k1.hash == k2.hash and k1.embed_text == "Planned service of: lubrication."
    hit = next(h for h in index.search("planned service lubrication", k=10, kinds=["chunk"]) if h.doc_id == "MNT-2")
    assert hit.text == "Planned service of M-3: lubrication." and (hit.start, hit.end) == (0, len(hit.text))


def test_model_change_is_refused_on_load(plant: GraphStore, plant_path: Path) -> None:
    VectorIndex(index_dir_for(plant_path), HashEmbedder(64)).build(plant)
    with pytest.raises(VectorIndexError, match="built with model"):
        VectorIndex(index_dir_for(plant_path), HashEmbedder(32)).load()


def test_corrupt_manifest_names_the_file(plant: GraphStore, plant_path: Path) -> None:
    folder = index_dir_for(plant_path)
    VectorIndex(folder, HashEmbedder()).build(plant)
    (folder / "manifest.json").write_text("{", "utf-8")
    with pytest.raises(VectorIndexError, match=r"manifest\.json"):
        VectorIndex(folder, HashEmbedder()).load()


def test_plant_filter_on_search(plant: GraphStore, plant_path: Path) -> None:
    index = VectorIndex(index_dir_for(plant_path), HashEmbedder())
    index.build(plant)
    hits = index.search("mixer", k=10, plants=["SITE-CHI"])
    assert hits and all(h.plant in (None, "SITE-CHI") for h in hits)


def test_chunks_are_exact_spans() -> None:
    text = "First sentence. Second one!\n\nNew paragraph here. " + "word " * 200
    spans = chunk_text(text, max_chars=120)
    assert spans[0] == (0, len("First sentence. Second one!"))
    for s, e in spans:
        assert text[s:e] == text[s:e].strip() and len(text[s:e]) > 0
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_documents_are_indexed_and_cited_by_span(plant: GraphStore, plant_path: Path, tmp_path: Path) -> None:
    doc = tmp_path / "cleaning guide.md"
    doc.write_text("# Cleaning\n\nFlush the mixer with hot water after every lemon batch.\n", "utf-8")
    index = VectorIndex(index_dir_for(plant_path), HashEmbedder())
    info = index.docs.add(doc, plant="SITE-BER")
    assert info.doc_id == "doc:cleaning-guide"
    index.build(plant)
    hit = index.search("flush the mixer with hot water", k=1, kinds=["chunk"])[0]
    assert hit.doc_id == "doc:cleaning-guide"
    stored = index.docs.text(hit.doc_id)
    assert stored is not None and hit.start is not None and stored[hit.start:hit.end] == hit.text


def test_bad_documents_are_refused_and_change_nothing(tmp_path: Path) -> None:
    reg = DocumentRegistry(tmp_path / "docs")
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"line one\nab\xffcd\n")
    with pytest.raises(DocumentError, match=r"notes.txt:2:3: not UTF-8"):
        reg.add(bad)
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(b"%PDF")
    with pytest.raises(DocumentError, match="unsupported document type"):
        reg.add(pdf)
    with pytest.raises(DocumentError, match="no such file"):
        reg.add(tmp_path / "missing.md")
    assert reg.list() == []


def test_registry_replaces_a_document_with_the_same_name(tmp_path: Path) -> None:
    reg = DocumentRegistry(tmp_path / "docs")
    p = tmp_path / "sop.md"
    p.write_text("old text", "utf-8")
    reg.add(p)
    p.write_text("new text", "utf-8")
    reg.add(p)
    assert [d.doc_id for d in reg.list()] == ["doc:sop"]
    assert reg.text("doc:sop") == "new text"
    assert json.loads((tmp_path / "docs" / "docs.json").read_text())[0]["chars"] == len("new text")


def test_store_vector_index_is_used_when_offered(tmp_path: Path) -> None:
    """A backend with ``capabilities.vector_search`` (Neo4j) gets the vectors and answers the
    searches; results equal the local matrix's."""
    from typing import ClassVar

    import numpy as np

    from store.base import StoreCapabilities
    from store.embedded import EmbeddedStore
    from tests.reasoning.rag.plant import build_plant

    class VectorStore(EmbeddedStore):
        capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(vector_search=True)

        def __init__(self, path: Path) -> None:
            super().__init__(path)
            self.vectors: dict[str, list[float]] = {}
            self.searches = 0

        def vector_upsert(self, namespace: str, items: object) -> None:
            self.vectors.update(dict(items))  # type: ignore[call-overload]

        def vector_search(self, namespace: str, vector: object, k: int = 10) -> list[tuple[str, float]]:
            self.searches += 1
            q = np.asarray(vector)
            scored = sorted(((float(np.dot(v, q)), key) for key, v in self.vectors.items()), reverse=True)
            return [(key, s) for s, key in scored[:k]]

    store = VectorStore(tmp_path / "store")
    try:
        build_plant(store)
        index = VectorIndex(index_dir_for(tmp_path / "store"), HashEmbedder())
        index.build(store)
        assert set(store.vectors) == set(index.hashes)
        local = [h.item_id for h in index.search("bearing overheated", k=3)]
        via_store = [h.item_id for h in index.search("bearing overheated", k=3, store=store)]
        assert store.searches == 1 and via_store == local
        reopened = VectorIndex(index_dir_for(tmp_path / "store"), HashEmbedder()).load()
        reopened.attach_store(store)  # probe finds the vectors already there
        assert reopened.search("bearing overheated", k=3, store=store)[0].item_id == local[0]
        assert store.searches == 3
    finally:
        store.close()


def test_queries_embed_on_one_thread_and_batches_on_the_configured_threads(
        st_embedder: SentenceTransformerEmbedder) -> None:
    import torch

    before = torch.get_num_threads()
    saved = st_embedder.batch_threads
    try:
        st_embedder.batch_threads = 2
        one = st_embedder.embed(["which machine had bearing problems?"])
        assert torch.get_num_threads() == 1
        batch = st_embedder.embed(["which machine had bearing problems?", "a", "b", "c", "d"])
        assert torch.get_num_threads() == 2
        # the thread count changes the speed, never the vector
        assert np.allclose(one[0], batch[0], atol=1e-5)
    finally:
        st_embedder.batch_threads = saved
        torch.set_num_threads(before)
