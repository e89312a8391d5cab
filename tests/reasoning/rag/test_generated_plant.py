"""The public question set of a generated small plant (written from its truth.json) answered by
the copilot: every deterministic answer set equals the known one and every citation exists.

Runs without the vector index (degraded mode): the scenario questions name their entities by id
or name, so the rules alone must answer them; the index is exercised in the other tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph_loader.generator import generate, named_spec
from graph_loader.loader import load_bundle
from graph_loader.question_set import write_question_set
from reasoning.rag.copilot import Copilot
from reasoning.rag.evaluation import QuestionItem, evaluate, load_question_set
from store.base import GraphStore
from store.factory import open_store
from tests.reasoning.rag.fakes import HashEmbedder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GraphStore, Path, list[QuestionItem]]]:
    root = tmp_path_factory.mktemp("rag-generated")
    bundle = root / "bundle"
    generate(named_spec("small"), 7, bundle)
    store = open_store("embedded", root / "store")
    load_bundle(store, bundle)
    write_question_set(bundle / "truth.json", root / "questions.jsonl")
    try:
        yield store, root / "store", load_question_set(root / "questions.jsonl")
    finally:
        store.close()


def test_question_set_answered_exactly(generated: tuple[GraphStore, Path, list[QuestionItem]]) -> None:
    store, path, items = generated
    copilot = Copilot.open(store, path, embedder=HashEmbedder())
    assert copilot.degraded  # no index was built
    report = evaluate(copilot, items)
    wrong = [(o.id, o.question, o.intent, o.answer_ids[:5], o.expected_ids[:5])
             for o in report.outcomes if o.deterministic and not o.correct]
    assert wrong == []
    assert report.intent_accuracy == 100.0
    assert report.invalid_citations == 0 and report.citations_checked > len(items)
    assert all(o.citations > 0 for o in report.outcomes)


def test_plant_scope_hides_the_other_plants(generated: tuple[GraphStore, Path, list[QuestionItem]]) -> None:
    store, path, items = generated
    copilot = Copilot.open(store, path, embedder=HashEmbedder())
    item = next(i for i in items if i.intent.value == "sop_in_effect")
    assert item.now is not None
    copilot.set_now(item.now)
    order = item.question.split("order ")[1].split(" ")[0].rstrip("?")
    node = store.get_node(order)
    assert node is not None and node.plant is not None
    others = [n.id for n in store.find_nodes(cls="Site") if n.id != node.plant]
    hidden = copilot.ask(item.question, plant_scope=others)
    assert hidden.answer_ids == [] and order in hidden.not_found
    shown = copilot.ask(item.question, plant_scope=[node.plant])
    assert shown.answer_ids == item.expected_ids


def test_ids_written_short_give_the_same_answers(generated: tuple[GraphStore, Path, list[QuestionItem]]) -> None:
    """"lot 3767" for LOT-0003767 and "order 2243" for MO-0002243: the scenario questions of the
    plant's truth, with each id written as its class word and bare number, answer the same."""
    store, path, items = generated
    copilot = Copilot.open(store, path, embedder=HashEmbedder())
    checked = 0
    for intent, prefix, word in (("trace_impact", "LOT-", "lot"), ("sop_in_effect", "MO-", "production order")):
        item = next(i for i in items if i.intent.value == intent and i.deterministic
                    and re.search(rf"\b{prefix}\d+", i.question))
        assert item.now is not None
        copilot.set_now(item.now)
        full = re.search(rf"\b{prefix}(\d+)", item.question)
        assert full is not None
        short = item.question.replace(full.group(0), f"{word} {int(full.group(1))}")
        assert full.group(0) not in short
        answer = copilot.ask(short)
        assert full.group(0) in answer.links.ids_of(), short
        assert sorted(answer.answer_ids) == sorted(item.expected_ids), short
        checked += 1
    assert checked == 2
