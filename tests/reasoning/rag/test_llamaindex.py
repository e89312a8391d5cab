"""The LlamaIndex retriever, the neo4j-graphrag-style input validation, and the documented
offline example in docs/copilot.md (run as written, with the real local model)."""

from __future__ import annotations

import contextlib
import io
import re
from datetime import datetime
from pathlib import Path

import pytest
from llama_index.core.schema import NodeWithScore

from reasoning.rag.copilot import Copilot
from reasoning.rag.errors import RetrieverInputError
from reasoning.rag.index import VectorIndex, index_dir_for
from reasoning.rag.llamaindex import PlantGraphRetriever, citations_of
from reasoning.rag.retriever import GraphRAGRetriever
from store.base import Direction, GraphStore
from tests.reasoning.rag.fakes import HashEmbedder

DOC = Path(__file__).resolve().parents[3] / "docs" / "copilot.md"


@pytest.fixture
def retriever(plant: GraphStore, plant_path: Path, now: datetime) -> GraphRAGRetriever:
    emb = HashEmbedder()
    VectorIndex(index_dir_for(plant_path), emb).build(plant)
    return GraphRAGRetriever(Copilot.open(plant, plant_path, embedder=emb, now=now))


def test_retriever_returns_nodes_with_checkable_citations(retriever: GraphRAGRetriever, plant: GraphStore) -> None:
    nodes = PlantGraphRetriever(retriever, top_k=3).retrieve("Which customers are affected by lot LOT-100?")
    assert nodes and all(isinstance(n, NodeWithScore) for n in nodes)
    first = nodes[0]
    assert first.node.metadata["kind"] == "answer" and first.node.metadata["intent"] == "trace_impact"
    assert "CUS-1" in first.node.get_content()
    kinds = {n.node.metadata["kind"] for n in nodes}
    assert {"card", "graph"} & kinds
    for n in nodes:
        cites = citations_of(n)
        assert cites
        for c in cites:
            if c["kind"] == "graph_path":
                assert set(plant.node_classes(c["nodes"])) == set(c["nodes"])
                for i, rel in enumerate(c["rels"]):
                    a, b = c["nodes"][i], c["nodes"][i + 1]
                    src, dst = (a, b) if c["directions"][i] == "out" else (b, a)
                    assert any(e.dst == dst for e in plant.neighbours(src, [rel], Direction.OUT))


def test_retriever_validates_input(retriever: GraphRAGRetriever) -> None:
    with pytest.raises(RetrieverInputError, match="top_k"):
        retriever.search(query_text="LOT-100", top_k=0)
    with pytest.raises(RetrieverInputError, match="query_text"):
        retriever.search(query_text="")
    with pytest.raises(RetrieverInputError, match="unknown_arg"):
        retriever.search(query_text="LOT-100", unknown_arg=1)


def test_documented_example_runs_offline(plant: GraphStore, plant_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, st_embedder: object) -> None:
    text = DOC.read_text("utf-8")
    m = re.search(r"<!-- example: llamaindex -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/copilot.md lost its LlamaIndex example"
    monkeypatch.setenv("PLANTGRAPH_STORE", str(plant_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(m.group(1), str(DOC), "exec"), {"__name__": "example"})
    printed = out.getvalue()
    assert "answer" in printed and "CUS-1" in printed
    assert "cites" in printed
    assert (index_dir_for(plant_path) / "manifest.json").exists()
