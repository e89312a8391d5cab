"""Evaluation of the copilot on a question set, with a plain vector-retrieval baseline.

Question-set format (JSON Lines, one object per line; see docs/evaluation.md)::

    {"id": "q001", "question": "...", "intent": "trace_impact", "expected_ids": ["CUS-1"],
     "match": "exact", "deterministic": true, "now": "2026-03-10T12:00:00+00:00", "tags": ["typo"]}

``match`` is ``exact`` (the answer's id set must equal ``expected_ids``) or ``contains`` (it must
include them). Deterministic questions have one correct answer set, computed from truth.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from reasoning.rag.copilot import Copilot
from reasoning.rag.errors import QuestionSetError
from reasoning.rag.models import Answer, GraphPathCitation, Intent, PassageCitation
from store.base import Direction, GraphStore


class QuestionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1, max_length=2000)
    intent: Intent
    expected_ids: list[str] = Field(default_factory=list)
    match: Literal["exact", "contains"] = "exact"
    deterministic: bool = True
    now: AwareDatetime | None = None
    as_of: AwareDatetime | None = None
    plant_scope: list[str] | None = None
    tags: list[str] = Field(default_factory=list)


def load_question_set(path: Path) -> list[QuestionItem]:
    """Read and validate a question set; errors name ``file:line`` and the JSON path."""
    if not path.is_file():
        raise QuestionSetError(f"{path}: no such file")
    items: list[QuestionItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuestionSetError(f"{path}:{n}:{exc.colno}: invalid JSON: {exc.msg}") from None
            try:
                item = QuestionItem.model_validate(raw)
            except ValidationError as exc:
                e = exc.errors()[0]
                where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
                raise QuestionSetError(f"{path}:{n}: {where}: {e['msg']}") from None
            if item.id in seen:
                raise QuestionSetError(f"{path}:{n}: $.id: duplicate question id {item.id!r}")
            seen.add(item.id)
            items.append(item)
    if not items:
        raise QuestionSetError(f"{path}: the question set is empty")
    return items


# -- citation validity --------------------------------------------------------------------------
def citation_problems(store: GraphStore, answer: Answer, doc_text: Callable[[str], str | None]) -> list[str]:
    """Every cited node and edge must exist in the store; every passage span must match its
    document's text. Returns one message per problem (empty when all citations are valid)."""
    problems: list[str] = []
    node_ids = {n for c in answer.citations if isinstance(c, GraphPathCitation) for n in c.nodes}
    existing = store.node_classes(node_ids)
    for c in answer.citations:
        if isinstance(c, GraphPathCitation):
            if not c.nodes:
                problems.append("empty graph path")
                continue
            if len(c.rels) != len(c.nodes) - 1 or len(c.directions) != len(c.rels):
                problems.append(f"path {c.nodes}: {len(c.rels)} relations for {len(c.nodes)} nodes")
                continue
            missing = [n for n in c.nodes if n not in existing]
            if missing:
                problems.append(f"path {c.nodes}: unknown node(s) {missing}")
                continue
            for src, rel, dst in c.edge_keys():
                if not any(e.dst == dst for e in store.neighbours(src, [rel], Direction.OUT)):
                    problems.append(f"path {c.nodes}: no edge ({src})-[{rel}]->({dst})")
        elif isinstance(c, PassageCitation):
            text = doc_text(c.doc_id)
            if text is None:
                problems.append(f"passage {c.doc_id}: unknown document")
            elif not (0 <= c.start < c.end <= len(text)) or (c.text and text[c.start:c.end] != c.text):
                problems.append(f"passage {c.doc_id}[{c.start}:{c.end}]: span does not match the document")
    return problems


def document_text(copilot: Copilot) -> Callable[[str], str | None]:
    def get(doc_id: str) -> str | None:
        if copilot.index is not None:
            t = copilot.index.docs.text(doc_id)
            if t is not None:
                return t
        node = copilot.store.get_node(doc_id)
        if node is None:
            return None
        return str(node.props.get("text") or "") or None

    return get


# -- reports ------------------------------------------------------------------------------------
class QuestionOutcome(BaseModel):
    id: str
    question: str
    expected_intent: str
    intent: str
    intent_ok: bool
    deterministic: bool
    expected_ids: list[str]
    answer_ids: list[str]
    correct: bool
    dont_know: bool
    invalid_citations: list[str] = Field(default_factory=list)
    citations: int
    latency_ms: float
    baseline_ids: list[str] | None = None
    baseline_correct: bool | None = None
    tags: list[str] = Field(default_factory=list)


class BaselineReport(BaseModel):
    name: str = "llama-index VectorStoreIndex over the same cards and chunks, same embedding model, no LLM"
    exact_accuracy_deterministic: float
    accuracy_all: float
    latency_p50_ms: float
    latency_p95_ms: float
    how_scored: str = ("answer set = entity ids of the top-k retrieved nodes, k = number of expected ids "
                       "(an oracle k, generous to the baseline)")


class EvalReport(BaseModel):
    questions: int
    deterministic: int
    intent_accuracy: float
    exact_accuracy_deterministic: float
    accuracy_all: float
    citations_checked: int
    invalid_citations: int
    dont_know_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    degraded: bool
    degraded_reason: str | None = None
    by_intent: dict[str, dict[str, float]] = Field(default_factory=dict)
    by_tag: dict[str, dict[str, float]] = Field(default_factory=dict)
    baseline: BaselineReport | None = None
    margin_over_baseline_points: float | None = None
    outcomes: list[QuestionOutcome] = Field(default_factory=list)


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def is_correct(expected: Sequence[str], got: Sequence[str], match: str) -> bool:
    e, g = set(expected), set(got)
    return e == g if match == "exact" else e <= g


class Baseline:
    """LlamaIndex ``VectorStoreIndex`` over the copilot's own cards and chunks (vectors reused, so
    it uses the same embedding model), retrieval only, ``Settings.llm = None``."""

    def __init__(self, copilot: Copilot) -> None:
        from llama_index.core import Settings, VectorStoreIndex
        from llama_index.core.schema import TextNode

        from reasoning.rag.llamaindex import LocalSentenceEmbedding

        if copilot.index is None:
            raise QuestionSetError("the baseline needs the vector index; run `plantgraph index build` first")
        index = copilot.index
        with contextlib.redirect_stdout(io.StringIO()):  # llama-index prints a notice about MockLLM
            Settings.llm = None
        self.embed_model = LocalSentenceEmbedding(index.embedder)
        nodes = []
        for it in index.items:
            row = index._row_of[it.hash]
            nodes.append(TextNode(id_=it.item_id, text=it.text, embedding=index.vectors[row].tolist(),
                                  metadata={"entity_id": it.entity_id or it.doc_id or ""}))
        self.index = VectorStoreIndex(nodes, embed_model=self.embed_model, show_progress=False)

    def answer(self, question: str, k: int) -> list[str]:
        retriever = self.index.as_retriever(similarity_top_k=max(k * 3, 5))
        ids: list[str] = []
        for hit in retriever.retrieve(question):
            eid = str(hit.node.metadata.get("entity_id") or "")
            if eid and eid not in ids:
                ids.append(eid)
            if len(ids) >= k:
                break
        return ids


def evaluate(copilot: Copilot, items: Sequence[QuestionItem], baseline: bool = False,
             progress: Callable[[int], None] | None = None) -> EvalReport:
    doc_text = document_text(copilot)
    base = Baseline(copilot) if baseline else None
    outcomes: list[QuestionOutcome] = []
    base_lat: list[float] = []
    if copilot.index is not None:
        copilot.index.embedder.embed(["warm up"])  # model loading is not a question's latency
    for item in items:
        if item.now is not None:
            copilot.set_now(item.now)
        t0 = time.perf_counter()
        ans = copilot.ask(item.question, as_of=item.as_of, plant_scope=item.plant_scope)
        ms = (time.perf_counter() - t0) * 1000
        problems = citation_problems(copilot.store, ans, doc_text)
        o = QuestionOutcome(
            id=item.id, question=item.question, expected_intent=item.intent.value, intent=ans.intent.value,
            intent_ok=ans.intent == item.intent, deterministic=item.deterministic,
            expected_ids=sorted(item.expected_ids), answer_ids=sorted(ans.answer_ids),
            correct=is_correct(item.expected_ids, ans.answer_ids, item.match) and not ans.dont_know,
            dont_know=ans.dont_know, invalid_citations=problems, citations=len(ans.citations),
            latency_ms=round(ms, 2), tags=item.tags,
        )
        if base is not None:
            t1 = time.perf_counter()
            got = base.answer(item.question, max(1, len(item.expected_ids)))
            base_lat.append((time.perf_counter() - t1) * 1000)
            o.baseline_ids = sorted(got)
            o.baseline_correct = is_correct(item.expected_ids, got, item.match)
        outcomes.append(o)
        if progress is not None:
            progress(1)
    return summarise(outcomes, copilot, base_lat if base is not None else None)


def summarise(outcomes: list[QuestionOutcome], copilot: Copilot, base_lat: list[float] | None) -> EvalReport:
    n = len(outcomes) or 1
    det = [o for o in outcomes if o.deterministic]
    lat = [o.latency_ms for o in outcomes]

    def share(xs: Sequence[bool]) -> float:
        return round(100.0 * sum(xs) / len(xs), 2) if xs else 0.0

    def group(key: Callable[[QuestionOutcome], list[str]]) -> dict[str, dict[str, float]]:
        out: dict[str, list[QuestionOutcome]] = {}
        for o in outcomes:
            for k in key(o):
                out.setdefault(k, []).append(o)
        return {k: {"n": len(v), "intent_accuracy": share([o.intent_ok for o in v]),
                    "accuracy": share([o.correct for o in v]),
                    **({"baseline_accuracy": share([bool(o.baseline_correct) for o in v])}
                       if base_lat is not None else {})}
                for k, v in sorted(out.items())}

    report = EvalReport(
        questions=len(outcomes), deterministic=len(det),
        intent_accuracy=share([o.intent_ok for o in outcomes]),
        exact_accuracy_deterministic=share([o.correct for o in det]),
        accuracy_all=share([o.correct for o in outcomes]),
        citations_checked=sum(o.citations for o in outcomes),
        invalid_citations=sum(len(o.invalid_citations) for o in outcomes),
        dont_know_rate=round(100.0 * sum(o.dont_know for o in outcomes) / n, 2),
        latency_p50_ms=_pct(lat, 50), latency_p95_ms=_pct(lat, 95),
        degraded=copilot.degraded, degraded_reason=copilot.index_error,
        by_intent=group(lambda o: [o.expected_intent]), by_tag=group(lambda o: o.tags or ["plain"]),
        outcomes=outcomes,
    )
    if base_lat is not None:
        report.baseline = BaselineReport(
            exact_accuracy_deterministic=share([bool(o.baseline_correct) for o in det]),
            accuracy_all=share([bool(o.baseline_correct) for o in outcomes]),
            latency_p50_ms=_pct(base_lat, 50), latency_p95_ms=_pct(base_lat, 95),
        )
        report.margin_over_baseline_points = round(
            report.exact_accuracy_deterministic - report.baseline.exact_accuracy_deterministic, 2)
    return report


def report_dict(report: EvalReport, with_outcomes: bool = True) -> dict[str, Any]:
    data = report.model_dump(mode="json")
    if not with_outcomes:
        data.pop("outcomes", None)
    return data
