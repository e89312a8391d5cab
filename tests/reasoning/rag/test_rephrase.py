"""Optional LLM rephrasing keeps the grounded facts: a rewording that drops an id is rejected."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from reasoning.rag.copilot import Copilot
from reasoning.rag.models import Answer
from store.base import GraphStore


def test_rephrasing_keeps_ids_and_citations(plant: GraphStore, plant_path: Path, now: datetime) -> None:
    def good(a: Answer) -> str:
        return "In short: " + a.text

    def drops_ids(a: Answer) -> str:
        return "Some customers are affected."

    def broken(a: Answer) -> str:
        raise ConnectionError("endpoint down")

    q = "Lot LOT-100 is contaminated, which customers are affected?"
    plain = Copilot(plant, now=now).ask(q)
    ok = Copilot(plant, now=now, rephraser=good).ask(q)
    assert ok.rephrased and ok.text.startswith("In short:")
    assert ok.citations == plain.citations and ok.claims == plain.claims
    for bad in (drops_ids, broken):
        kept = Copilot(plant, now=now, rephraser=bad).ask(q)
        assert not kept.rephrased and kept.text == plain.text
