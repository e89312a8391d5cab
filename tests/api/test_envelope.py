"""The per-request shortcuts of computed responses give the same bytes and audit ids as the long
way: the envelope written around a result's own JSON, and entity lookups through the plant memo."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.keys import Principal
from api.roles import Role
from api.routes.ask import AskResponse
from api.schemas import AnalysisResponse, envelope_json
from api.scope import PlantMemo, mentioned_entities, redact_answer, scope_note
from reasoning.rag.copilot import Copilot
from reasoning.results import TraceResult
from reasoning.service import Analyses
from store.base import GraphStore
from tests.api.conftest import Keys

QUESTIONS = [
    "Lot L-A1 is on hold. Which customers are affected?",
    "Lot L-B1 is on hold. Which customers are affected?",
    "Which orders ran on M-A1?",
    "What is the SOP for PO-B1?",
]


def principal(plants: str) -> Principal:
    return Principal(key_id="k", user="u", role=Role.analyst, plants=frozenset(plants.split(",")))


@pytest.mark.parametrize("plants", ["*", "SITE-A", "SITE-B"])
def test_envelope_equals_the_envelope_models(plant_store: GraphStore, plants: str) -> None:
    a = Analyses(plant_store)
    cp = Copilot(plant_store, analyses=a, index=None, index_error="no index (test)")
    for withheld in (0, 2):
        note = scope_note(principal(plants), withheld)
        for result in (a.trace_hold("QH-A1"), a.trace_lot("L-A1"), a.backward("L-B1")):
            assert envelope_json("result", result.model_dump_json(), note) == \
                AnalysisResponse[TraceResult](result=result, scope=note).model_dump_json()
        for q in QUESTIONS:
            answer = cp.ask(q)
            assert envelope_json("answer", answer.model_dump_json(), note) == \
                AskResponse(answer=answer, scope=note).model_dump_json()


def test_trace_response_bytes(client: TestClient, keys: Keys) -> None:
    """What the route sends (all plants, nothing to redact) is the envelope model's JSON."""
    body = client.get("/v1/trace/hold/QH-B1", headers=keys.h("analyst")).content
    result = client.app.state.services.analyses().trace_hold("QH-B1")  # type: ignore[attr-defined]
    note = scope_note(principal("*"), 0)
    assert body == AnalysisResponse[TraceResult](result=result, scope=note).model_dump_json().encode()


def test_scoped_responses_still_redact(client: TestClient, keys: Keys) -> None:
    wide = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).json()
    narrow = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst_a"))
    doc = narrow.json()
    assert doc["scope"]["withheld"] > 0 and "L-B1" not in narrow.text
    assert doc["result"].keys() == wide["result"].keys()


def _answer_docs(store: GraphStore) -> list[tuple[dict[str, Any], str]]:
    cp = Copilot(store, analyses=Analyses(store), index=None, index_error="no index (test)")
    out = []
    for q in QUESTIONS:
        text = cp.ask(q).model_dump_json()
        out.append((json.loads(text), text))
    return out


def test_memo_lookups_equal_store_lookups(plant_store: GraphStore) -> None:
    memo = PlantMemo()
    epoch = ("state", 1)
    docs = _answer_docs(plant_store)
    for _ in range(2):  # the second round is answered from the memo
        for doc, text in docs:
            assert mentioned_entities(plant_store, text, memo, epoch) == mentioned_entities(plant_store, text)
            for plants in ("*", "SITE-A", "SITE-B", "SITE-A,SITE-B"):
                p = principal(plants)
                assert redact_answer(plant_store, p, doc, text, memo, epoch) == redact_answer(plant_store, p, doc, text)
    assert mentioned_entities(plant_store, '{"a":"L-A1","b":"not an id L-B1","c":"NOPE"}', memo, epoch) == \
        {"L-A1", "L-B1"}


def test_memo_without_a_graph_state_reads_the_store(plant_store: GraphStore) -> None:
    memo = PlantMemo()
    text = '{"x":"L-A1","y":"SITE-B"}'
    assert mentioned_entities(plant_store, text, memo, None) == {"L-A1", "SITE-B"}
    assert mentioned_entities(plant_store, text, None, None) == {"L-A1", "SITE-B"}
