"""Retrievers in the style of neo4j-graphrag: the public ``search()`` validates its input with
pydantic and calls one small protected ``_search()``; failures are domain exceptions.

:class:`GraphRAGRetriever` returns the grounded answer of the routed analysis first (with all its
citations), then vector hits and the ranked graph neighbourhood, each with the paths and passages
that back it. The LlamaIndex adapter (:mod:`reasoning.rag.llamaindex`) wraps it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from reasoning.rag.copilot import Copilot, node_citation
from reasoning.rag.errors import RetrieverInputError
from reasoning.rag.models import GraphPathCitation, PassageCitation


class RetrieverQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_text: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=100)
    as_of: AwareDatetime | None = None
    plant_scope: list[str] | None = None
    include_answer: bool = True


class RetrievedContext(BaseModel):
    content: str
    score: float
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    citations: list[GraphPathCitation | PassageCitation] = Field(default_factory=list)


class RetrieverResult(BaseModel):
    items: list[RetrievedContext]
    metadata: dict[str, Any] = Field(default_factory=dict)


class Retriever(ABC):
    """Validate, then search. Subclasses implement :meth:`_search` only."""

    def search(self, **kwargs: Any) -> RetrieverResult:
        try:
            query = RetrieverQuery.model_validate(kwargs)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise RetrieverInputError(f"invalid retriever input: {where}") from None
        return self._search(query)

    @abstractmethod
    def _search(self, query: RetrieverQuery) -> RetrieverResult: ...


class GraphRAGRetriever(Retriever):
    def __init__(self, copilot: Copilot) -> None:
        self.copilot = copilot

    def _search(self, query: RetrieverQuery) -> RetrieverResult:
        cp = self.copilot
        items: list[RetrievedContext] = []
        answer = cp.ask(query.query_text, as_of=query.as_of, plant_scope=query.plant_scope)
        if query.include_answer and not answer.dont_know:
            items.append(RetrievedContext(
                content=answer.text, score=1.0, kind="answer", citations=answer.citations,
                metadata={"intent": answer.intent.value, "answer_ids": answer.answer_ids},
            ))
        for hit in cp.search(query.query_text, query.top_k, query.plant_scope):
            if hit.kind == "chunk" and hit.doc_id is not None and hit.start is not None and hit.end is not None:
                cites: list[GraphPathCitation | PassageCitation] = [PassageCitation(
                    doc_id=hit.doc_id, chunk=hit.chunk or 0, start=hit.start, end=hit.end, text=hit.text)]
            else:
                cites = [node_citation(hit.entity_id)] if hit.entity_id else []
            items.append(RetrievedContext(content=hit.text, score=hit.score, kind=hit.kind, citations=cites,
                                          metadata={"item_id": hit.item_id, "entity_id": hit.entity_id}))
        seeds = answer.answer_ids[:5] or [i for m in answer.links.linked for i in m.ids]
        for r in cp.expander.expand(seeds, query.as_of, top=query.top_k, plants=query.plant_scope):
            items.append(RetrievedContext(
                content=f"{r.cls} {r.name or r.id} ({r.id})", score=r.score, kind="graph",
                citations=[r.path], metadata={"entity_id": r.id, "cls": r.cls},
            ))
        return RetrieverResult(items=items, metadata={
            "intent": answer.intent.value, "degraded": answer.degraded,
            "degraded_reason": answer.degraded_reason, "ambiguous": [m.model_dump() for m in answer.ambiguous],
            "not_found": answer.not_found,
        })
