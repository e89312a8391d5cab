"""The CLI end to end on the hand-built plant with the real local model: index build, ask --json,
docs add and eval --json --baseline (expected answers worked out on paper)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantgraph.cli import app
from reasoning.rag.evaluation import QuestionItem
from reasoning.rag.index import index_dir_for
from store.base import GraphStore
from tests.reasoning.rag.plant import NOW

QUESTIONS = [
    ("Lot LOT-100 is contaminated. Which customers are affected?", "trace_impact", ["CUS-1"]),
    ("Which sales order lines are impacted by quality hold HOLD-1?", "trace_impact", ["SOL-1"]),
    ("Which work instruction applied to production order MO-1?", "sop_in_effect", ["SOPV-2"]),
    ("What happened on machine M-7 last night?", "history", ["DT-1"]),
    ("Tell me about customer Globex Retial", "entity_lookup", ["CUS-2"]),
    ("Which deliveries are at risk in the next 14 days because of held lots?", "delivery_risk", ["SOL-1"]),
]


@pytest.fixture
def question_file(tmp_path: Path) -> Path:
    p = tmp_path / "questions.jsonl"
    p.write_text("".join(
        json.dumps(QuestionItem(id=f"q{n}", question=q, intent=i, expected_ids=e, now=NOW).model_dump(mode="json"))
        + "\n" for n, (q, i, e) in enumerate(QUESTIONS)), "utf-8")
    return p


def test_cli_index_ask_docs_eval(plant: GraphStore, plant_path: Path, question_file: Path, tmp_path: Path,
                                 st_embedder: object) -> None:
    runner = CliRunner()
    built = runner.invoke(app, ["index", "build", "--store", str(plant_path), "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout)
    assert report["embedded"] == report["distinct_texts"] > 0

    again = runner.invoke(app, ["index", "build", "--store", str(plant_path), "--json", "--threads", "1"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["embedded"] == 0  # nothing new to embed

    asked = runner.invoke(app, ["ask", "Which customers are affected by lot LOT-100?", "--store", str(plant_path),
                                "--json", "--now", NOW])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["intent"] == "trace_impact" and answer["answer_ids"] == ["CUS-1"]
    assert answer["citations"] and not answer["degraded"]

    doc = tmp_path / "cleaning.md"
    doc.write_text("Flush the mixer with hot water after every lemon batch.\n", "utf-8")
    added = runner.invoke(app, ["docs", "add", str(doc), "--store", str(plant_path), "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["index"]["embedded"] == 1

    ev = runner.invoke(app, ["eval", str(question_file), "--store", str(plant_path), "--json", "--baseline"])
    assert ev.exit_code == 0, ev.output
    rep = json.loads(ev.stdout)
    wrong = [(o["question"], o["answer_ids"], o["intent"]) for o in rep["outcomes"] if not o["correct"]]
    assert wrong == []
    assert rep["intent_accuracy"] == 100.0 and rep["exact_accuracy_deterministic"] == 100.0
    assert rep["invalid_citations"] == 0 and rep["citations_checked"] > 0
    assert rep["baseline"]["exact_accuracy_deterministic"] < 100.0
    assert rep["margin_over_baseline_points"] > 0
    assert rep["latency_p95_ms"] >= rep["latency_p50_ms"] > 0


def test_cli_errors_are_clear(plant_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "q1", "question": "x", "intent": "nope"}\n', "utf-8")
    res = runner.invoke(app, ["eval", str(bad), "--store", str(plant_path)])
    assert res.exit_code == 2 and "q.jsonl:1: $.intent" in res.output
    res = runner.invoke(app, ["ask", "LOT-1?", "--store", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no store at" in res.output
    res = runner.invoke(app, ["ask", "LOT-1?", "--store", str(plant_path), "--now", "2026-03-01"])
    assert res.exit_code == 2 and "time zone" in res.output
    res = runner.invoke(app, ["index", "build", "--store", str(plant_path), "--threads", "0"])
    assert res.exit_code == 2 and "--threads" in res.output and not index_dir_for(plant_path).exists()
