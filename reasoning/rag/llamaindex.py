"""LlamaIndex integration: a ``BaseRetriever`` over the copilot and a local embedding wrapper.

Everything runs offline: the embedding wrapper calls the same local sentence-transformers model
as the copilot, and no LLM is needed (``Settings.llm = None``).
"""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

from reasoning.rag.embedder import Embedder
from reasoning.rag.retriever import GraphRAGRetriever


class PlantGraphRetriever(BaseRetriever):
    """Returns ``NodeWithScore`` items; each node's metadata carries ``citations`` (graph paths
    and passages, as JSON-compatible dicts), ``kind`` and the routed ``intent``."""

    def __init__(self, retriever: GraphRAGRetriever, top_k: int = 5, plant_scope: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inner = retriever
        self._top_k = top_k
        self._plant_scope = plant_scope

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        res = self._inner.search(query_text=query_bundle.query_str, top_k=self._top_k,
                                 plant_scope=self._plant_scope)
        out: list[NodeWithScore] = []
        for n, item in enumerate(res.items):
            cites = [c.model_dump(mode="json") for c in item.citations]
            node = TextNode(
                id_=f"plantgraph-{n}-{item.kind}",
                text=item.content,
                metadata={"kind": item.kind, "intent": res.metadata.get("intent"), "citations": cites,
                          **{k: v for k, v in item.metadata.items() if isinstance(v, str | int | float)}},
                excluded_embed_metadata_keys=["citations"],
                excluded_llm_metadata_keys=["citations"],
            )
            out.append(NodeWithScore(node=node, score=item.score))
        return out


class LocalSentenceEmbedding(BaseEmbedding):
    """A LlamaIndex embedding backed by the copilot's local sentence-transformers embedder."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.model_id, embed_batch_size=64, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LocalSentenceEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed([query])[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed(texts)]


def citations_of(node: NodeWithScore) -> list[dict[str, Any]]:
    """The citations a retrieved node carries (helper for users and tests)."""
    raw = node.node.metadata.get("citations", [])
    return list(raw) if isinstance(raw, list) else json.loads(str(raw))
