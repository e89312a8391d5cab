"""Routing (intent + parameters) and time expressions; no model needed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from reasoning.rag.models import Intent
from reasoning.rag.routing import Router, correct_words
from reasoning.rag.timeparse import find_window, horizon_days

NOW = datetime.fromisoformat("2026-03-04T10:30:00+01:00")  # a Wednesday


@pytest.mark.parametrize(("question", "intent"), [
    ("Lot L-1042 is on hold, which customers are affected?", Intent.trace_impact),
    ("Which orders did the bad batch from Sweet Supply end up in? Who got it?", Intent.trace_impact),
    ("Where did the finished lot FL-9 come from?", Intent.backward_trace),
    ("Why are deliveries for Acme at risk this week?", Intent.delivery_risk),
    ("Will any customer orders be late in the next 10 days?", Intent.delivery_risk),
    ("What is the root cause of the scrap on line 3?", Intent.root_cause),
    ("Which work instruction applied to order PO-88 on line 2?", Intent.sop_in_effect),
    ("What happened on machine M-7 last night?", Intent.history),
    ("Tell me about supplier Sweet Supply", Intent.entity_lookup),
    ("How warm should the syrup be when blending?", Intent.free_question),
])
def test_intents(question: str, intent: Intent) -> None:
    route = Router().route(question, NOW)
    assert route.intent == intent, route.reasons


def test_route_explains_itself() -> None:
    route = Router().route("Which customers are affected by lot LOT-1?", NOW)
    assert any("affected" in r for r in route.reasons)
    assert route.scores["trace_impact"] == max(route.scores.values())


def test_typos_are_corrected_for_routing_only() -> None:
    assert correct_words("Wich custmers are afected by LOT-1?") == "Wich customers are affected by LOT-1?"
    assert Router().route("Wich custmers are afected by LOT-1?", NOW).intent == Intent.trace_impact


def test_last_night() -> None:
    w = find_window("What happened on M-7 last night?", NOW)
    assert w is not None
    assert (w.start, w.end) == (datetime.fromisoformat("2026-03-03T18:00:00+01:00"),
                                datetime.fromisoformat("2026-03-04T06:00:00+01:00"))


def test_last_night_before_dawn_means_the_night_now_ending() -> None:
    early = datetime.fromisoformat("2026-03-04T03:00:00+01:00")
    w = find_window("last night", early)
    assert w is not None and w.start == datetime.fromisoformat("2026-03-02T18:00:00+01:00")


def test_this_week_runs_monday_to_monday() -> None:
    w = find_window("deliveries at risk this week", NOW)
    assert w is not None
    assert w.start == datetime.fromisoformat("2026-03-02T00:00:00+01:00")
    assert w.end == datetime.fromisoformat("2026-03-09T00:00:00+01:00")
    assert horizon_days(w, NOW) == pytest.approx((w.end - NOW).total_seconds() / 86400)


@pytest.mark.parametrize(("text", "days"), [
    ("in the next 14 days", 14), ("within the next two weeks", 14), ("over the coming fortnight", 14),
    ("next 3 days", 3),
])
def test_forward_horizons(text: str, days: float) -> None:
    w = find_window(text, NOW)
    assert w is not None and horizon_days(w, NOW) == pytest.approx(days)


def test_explicit_iso_window_and_last_hours() -> None:
    w = find_window("fault between 2026-03-02T06:00:00+00:00 and 2026-03-02T14:00:00+00:00", NOW)
    assert w is not None
    assert w.end - w.start == timedelta(hours=8)
    w2 = find_window("anything in the last 6 hours?", NOW)
    assert w2 is not None and (w2.start, w2.end) == (NOW - timedelta(hours=6), NOW)


def test_no_time_expression() -> None:
    assert find_window("Which customers got LOT-1?", NOW) is None
