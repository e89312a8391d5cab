"""Pydantic models at the copilot's boundary: answers, citations, links and routing decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Intent(StrEnum):
    trace_impact = "trace_impact"
    backward_trace = "backward_trace"
    delivery_risk = "delivery_risk"
    root_cause = "root_cause"
    sop_in_effect = "sop_in_effect"
    history = "history"
    entity_lookup = "entity_lookup"
    free_question = "free_question"


class GraphPathCitation(_Model):
    """A path in the graph: ``nodes[i] -rels[i]-> nodes[i+1]``; ``directions[i]`` says whether the
    stored edge points that way (``out``) or the other way (``in``). One node and no rels cites a
    single entity."""

    kind: Literal["graph_path"] = "graph_path"
    nodes: list[str]
    rels: list[str] = Field(default_factory=list)
    directions: list[Literal["out", "in"]] = Field(default_factory=list)

    def edge_keys(self) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for i, rel in enumerate(self.rels):
            a, b = self.nodes[i], self.nodes[i + 1]
            out.append((a, rel, b) if self.directions[i] == "out" else (b, rel, a))
        return out


class PassageCitation(_Model):
    """A character span ``[start, end)`` of chunk ``chunk`` of a document (an entity's text
    property such as ``SOPV-1#text`` or a document added with ``plantgraph docs add``)."""

    kind: Literal["passage"] = "passage"
    doc_id: str
    chunk: int
    start: int
    end: int
    text: str = ""


Citation = GraphPathCitation | PassageCitation


class Claim(_Model):
    """One sentence of the answer and the citations (indexes into ``Answer.citations``) behind it."""

    text: str
    citations: list[int] = Field(default_factory=list)


class Mention(_Model):
    """A piece of the question linked to entities of the graph."""

    text: str
    start: int
    end: int
    method: Literal["id", "name", "alias", "fuzzy", "embedding"]
    ids: list[str]
    classes: list[str] = Field(default_factory=list)
    score: float = 1.0

    @property
    def ambiguous(self) -> bool:
        return len(self.ids) > 1


class LinkResult(_Model):
    linked: list[Mention] = Field(default_factory=list)
    ambiguous: list[Mention] = Field(default_factory=list)
    not_found: list[str] = Field(default_factory=list)

    def ids_of(self, *classes: str) -> list[str]:
        out: list[str] = []
        for m in self.linked:
            for i, c in zip(m.ids, m.classes, strict=False):
                if (not classes or c in classes) and i not in out:
                    out.append(i)
        return out


class TimeWindow(_Model):
    start: datetime
    end: datetime
    expression: str


class Route(_Model):
    """Which analysis a question goes to, why, and with which parameters."""

    intent: Intent
    confidence: float
    reasons: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    window: TimeWindow | None = None
    horizon_days: float | None = None
    plants: list[str] = Field(default_factory=list)


class RetrievedItem(_Model):
    """A vector-search hit: an entity card or a document chunk."""

    item_id: str
    kind: Literal["card", "chunk"]
    score: float
    text: str
    entity_id: str | None = None
    doc_id: str | None = None
    chunk: int | None = None
    start: int | None = None
    end: int | None = None
    plant: str | None = None


class Answer(_Model):
    question: str
    text: str
    intent: Intent
    route: Route | None = None
    result: dict[str, Any] | None = Field(default=None, description="The structured analysis result.")
    answer_ids: list[str] = Field(
        default_factory=list, description="The entity ids the answer names (the set an evaluator checks)."
    )
    claims: list[Claim] = Field(default_factory=list)
    citations: list[GraphPathCitation | PassageCitation] = Field(default_factory=list)
    links: LinkResult = Field(default_factory=LinkResult)
    ambiguous: list[Mention] = Field(default_factory=list)
    not_found: list[str] = Field(default_factory=list)
    dont_know: bool = False
    degraded: bool = False
    degraded_reason: str | None = None
    as_of: datetime | None = None
    plant_scope: list[str] | None = None
    rephrased: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)
