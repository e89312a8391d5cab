"""The question-set writer (graph_loader/question_set.py) and the reader (reasoning/rag/evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graph_loader.question_set import QuestionSetWriteError, build_questions, write_question_set
from reasoning.rag.errors import QuestionSetError
from reasoning.rag.evaluation import load_question_set

TRUTH: dict[str, Any] = {
    "seed": 7, "scale": "small", "now": "2026-03-20T12:00:00+00:00",
    "scenarios": {
        "contaminated_supplier_lot": {
            "supplier_lot": "LOT-1", "supplier": "SUP-1", "reached_lots": ["LOT-2", "LOT-3"],
            "reached_production_orders": ["MO-1"], "reached_sales_order_lines": ["SOL-1"],
            "reached_customers": ["CUS-1"], "shipped_lots": ["LOT-3"], "in_house_lots": ["LOT-2"]},
        "machine_fault": {"machine": "M-1", "incident": "INC-1", "from": "2026-03-18T06:00:00+00:00",
                          "to": "2026-03-18T14:00:00+00:00", "affected_production_orders": ["MO-2"],
                          "affected_lots": ["LOT-4"], "reached_sales_order_lines": ["SOL-2"],
                          "reached_customers": ["CUS-2"]},
        "quality_hold": {"hold": "HOLD-1", "lot": "LOT-5", "placed_at": "2026-03-19T00:00:00+00:00",
                         "reached_lots": [], "reached_sales_order_lines": ["SOL-3"], "affected_customers": ["CUS-3"]},
        "root_cause": {"bad_lots": ["LOT-6", "LOT-7"], "incident": "INC-2", "factor_class": "Machine",
                       "factor": "M-2"},
        "deliveries_at_risk": {"horizon_days": 14,
                               "lines": {"SOL-4": [{"kind": "downtime", "entity": "DT-1"}]},
                               "lines_with_held_allocations": ["SOL-3"]},
        "sop_in_effect": [{"order": "MO-3", "machine": "M-1", "at": "2026-03-17T08:00:00+00:00",
                           "sop_version": "SOPV-2", "superseded": True}],
    },
}


def test_questions_come_from_truth(tmp_path: Path) -> None:
    (tmp_path / "Customer.csv").write_text("id,name\nCUS-1,Acme Foods\nCUS-2,Globex Retail\n", "utf-8")
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps(TRUTH), "utf-8")
    out = tmp_path / "questions.jsonl"
    n = write_question_set(truth, out)
    items = load_question_set(out)  # the reader accepts what the writer wrote
    assert len(items) == n > 20
    by_expect = {(i.intent.value, tuple(i.expected_ids)) for i in items}
    assert ("trace_impact", ("CUS-1",)) in by_expect
    assert ("trace_impact", ("LOT-2",)) in by_expect  # in-house lots
    assert ("root_cause", ("M-2",)) in by_expect
    assert ("delivery_risk", ("SOL-3",)) in by_expect
    assert ("sop_in_effect", ("SOPV-2",)) in by_expect
    assert ("entity_lookup", ("CUS-2",)) in by_expect
    assert all(str(i.now).startswith("2026-03-20") for i in items)
    tags = {t for i in items for t in i.tags}
    assert {"typo", "paraphrase", "time"} <= tags
    assert write_question_set(truth, tmp_path / "again.jsonl") == n
    assert (tmp_path / "again.jsonl").read_text() == out.read_text()  # deterministic for a seed


def test_typo_questions_differ_but_keep_ids() -> None:
    qs = build_questions(TRUTH)
    typos = [q for q in qs if "typo" in q["tags"]]
    assert typos
    plain = {q["question"] for q in qs if not q["tags"]}
    for q in typos:
        assert q["question"] not in plain
    hold = next(q for q in typos if "HOLD-1" in q["question"])
    assert "HOLD-1" in hold["question"]


def test_writer_names_missing_truth_keys(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(TRUTH))
    del bad["scenarios"]["root_cause"]
    p = tmp_path / "truth.json"
    p.write_text(json.dumps(bad), "utf-8")
    with pytest.raises(QuestionSetWriteError, match=r"\$\.root_cause"):
        write_question_set(p, tmp_path / "q.jsonl")
    assert not (tmp_path / "q.jsonl").exists()
    p.write_text('{"seed": 7,\n "now": }', "utf-8")
    with pytest.raises(QuestionSetWriteError, match=r"truth.json:2:9: invalid JSON"):
        write_question_set(p, tmp_path / "q.jsonl")


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "q1", "question": "x", "intent": "trace"}', r"q.jsonl:2: \$\.intent: Input should be"),
    ('{"id": "q1", "question": "x", "intent": "history", "expected_ids": [1]}', r"q.jsonl:2: \$\.expected_ids\[0\]"),
    ('{"id": "q1", "question": "x"', r"q.jsonl:2:\d+: invalid JSON"),
    ('{"id": "q0", "question": "x", "intent": "history"}', r"q.jsonl:2: \$\.id: duplicate"),
])
def test_reader_errors_name_line_and_path(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "q.jsonl"
    p.write_text('{"id": "q0", "question": "ok?", "intent": "history"}\n' + line + "\n", "utf-8")
    with pytest.raises(QuestionSetError, match=message):
        load_question_set(p)
