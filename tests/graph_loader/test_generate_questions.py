"""`plantgraph generate` writes the copilot's public question set beside the bundle."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from plantgraph.cli import app


def _ids(bundle: Path) -> set[str]:
    out: set[str] = set()
    for f in bundle.glob("*.csv"):
        if f.stem.isupper():
            continue
        with f.open(newline="", encoding="utf-8") as fh:
            out.update(row["id"] for row in csv.DictReader(fh))
    for f in bundle.glob("*.jsonl"):
        if f.stem.isupper() or f.name == "questions.jsonl":
            continue
        out.update(json.loads(line)["id"] for line in f.read_text(encoding="utf-8").splitlines() if line)
    return out


def test_question_set_is_written_deterministic_and_grounded(tmp_path: Path) -> None:
    runner = CliRunner()
    texts = []
    for name in ("a", "b"):
        res = runner.invoke(app, ["generate", "--scale", "tiny", "--seed", "3", "--out", str(tmp_path / name), "-q"])
        assert res.exit_code == 0, res.output
        texts.append((tmp_path / name / "questions.jsonl").read_bytes())
    assert texts[0] == texts[1]
    questions = [json.loads(line) for line in texts[0].decode().splitlines()]
    assert len(questions) >= 20
    intents = {q["intent"] for q in questions}
    assert {"trace_impact", "delivery_risk", "root_cause", "sop_in_effect"} <= intents
    known = _ids(tmp_path / "a")
    for q in questions:
        for eid in q.get("expected_ids") or []:
            assert eid in known, (q["question"], eid)
    # the question set does not disturb the bundle: it still validates
    res = runner.invoke(app, ["validate", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
