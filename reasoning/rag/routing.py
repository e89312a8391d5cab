"""Question routing: which analysis answers a question, decided transparently.

Each intent has weighted regular expressions (listed below, and reported back in
``Route.reasons``), a few example questions (fuzzy token similarity, so it also works without the
embedding model) and cues from the classes of the linked entities. The highest total wins; below
a threshold the question is a free question answered from retrieved context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from rapidfuzz import fuzz, process

from reasoning.rag.models import Intent, LinkResult, Route
from reasoning.rag.timeparse import find_window, horizon_days

PATTERNS: dict[Intent, list[tuple[str, float]]] = {
    Intent.trace_impact: [
        (r"\baffect(?:ed|s)?\b|\bimpact(?:ed|s)?\b", 2.0),
        (r"\bwhich (?:customers?|sales orders?|order lines?|lots?|production orders?|deliveries)\b", 1.0),
        (r"\b(?:reached|recall|downstream|forward|contaminat\w*|where did .* go|who (?:got|received))\b", 2.0),
        (r"\bon hold\b|\bhold\b|\bquarantin\w*", 0.5),
        (r"\bconsumed\b|\bmade (?:with|from)\b.*\bsupplier lot\b", 1.0),
    ],
    Intent.backward_trace: [
        (r"\bwhere (?:did|does) .* come from\b|\bcome from\b|\borigin\w*\b", 3.0),
        (r"\bbackward\w*\b|\bupstream\b|\bwhere-from\b|\bwhat went into\b|\binputs?\b", 3.0),
        (r"\bwhich (?:supplier|raw material|input) lots?\b|\bwhich suppliers?\b", 1.0),
    ],
    Intent.delivery_risk: [
        (r"\bat risk\b|\brisk\w*\b", 3.0),
        (r"\bdeliver(?:y|ies)\b|\blate\b|\bdelay\w*|\bon time\b|\bdue\b|\bshort(?:age)?\b", 1.5),
    ],
    Intent.root_cause: [
        (r"\broot[- ]?cause\w*\b|\bcause[sd]?\b|\bin common\b|\bshare\b|\bculprit\b", 3.0),
        (r"\bwhy\b", 1.0),
        (r"\bbad\b|\bdefect\w*|\bscrap\w*|\bnonconform\w*|\bfail\w*", 1.0),
    ],
    Intent.sop_in_effect: [
        (r"\bsops?\b|\bwork instructions?\b|\bprocedure\b|\bstandard operating\b", 3.0),
        (r"\bin effect\b|\bapplied\b|\bapplies\b|\bwhich version\b|\bsuperseded\b", 1.5),
    ],
    Intent.history: [
        (r"\bwhat happened\b|\bhistory\b|\bevents?\b|\bgoing on\b", 3.0),
        (r"\bincidents?\b|\bdowntimes?\b|\bmaintenance\b|\bbreakdowns?\b|\banomal\w*|\balarms?\b", 1.5),
        (r"\blast night\b|\blast shift\b|\byesterday\b|\bovernight\b", 1.0),
    ],
    Intent.entity_lookup: [
        (r"^\s*(?:what|who) (?:is|are)\b|\btell me about\b|\bdetails\b|\bstatus of\b|\blook ?up\b|\bshow me\b", 2.5),
        (r"\bwhat do (?:we|you) know about\b|\binfo(?:rmation)? (?:on|about)\b", 2.5),
    ],
}

EXAMPLES: dict[Intent, list[str]] = {
    Intent.trace_impact: [
        "Lot L-1042 is on hold, which customers are affected?",
        "Which sales order lines are impacted by supplier lot LOT-7?",
        "Machine M-7 had a fault last night, which customers did it affect?",
        "Trace the contaminated lot forward to the customers",
    ],
    Intent.backward_trace: [
        "Where did lot LOT-99 come from?",
        "Which supplier lots went into finished lot LOT-3?",
        "Trace lot LOT-5 backward to its inputs",
    ],
    Intent.delivery_risk: [
        "Why are deliveries for Acme at risk this week?",
        "Which deliveries are at risk in the next 14 days?",
        "Which customer orders will be late?",
    ],
    Intent.root_cause: [
        "Why do we keep scrapping on line 3?",
        "What is the root cause of incident INC-4?",
        "What do the bad lots have in common?",
    ],
    Intent.sop_in_effect: [
        "Which work instruction applied to order PO-88 on line 2?",
        "Which SOP version was in effect for production order MO-1?",
    ],
    Intent.history: [
        "What happened on machine M-7 last night?",
        "Show the incidents and maintenance history of machine M-3",
    ],
    Intent.entity_lookup: [
        "Tell me about customer Acme",
        "What is machine M-7?",
        "Status of lot LOT-12",
    ],
}

#: Linked classes that hint at an intent (weight added once per intent).
CLASS_CUES: dict[Intent, tuple[tuple[str, ...], float]] = {
    Intent.sop_in_effect: (("ProductionOrder", "SOP", "SOPVersion"), 0.5),
    Intent.history: (("Machine", "Line", "Incident"), 0.5),
    Intent.trace_impact: (("Lot", "QualityHold", "Supplier"), 0.5),
    Intent.delivery_risk: (("SalesOrderLine", "Customer", "SalesOrder"), 0.5),
}

MIN_SCORE = 1.5

#: Words the patterns rely on; misspelt words of a question are corrected to these (routing only).
VOCABULARY: frozenset[str] = frozenset(re.split(r"\s+", """
    affected affect affects impact impacted impacts customers customer recall downstream forward
    contaminated contamination received deliveries delivery delayed schedule shortage risk
    backward backwards upstream origin inputs supplier suppliers history happened incidents incident
    downtime maintenance breakdown anomaly anomalies alarms instruction instructions procedure version
    effect applied applies superseded standard operating cause causes caused root common culprit
    defect defects scrapping scrapped nonconformance failed failure inspection production orders
    sales lines shipped quarantine quarantined details status information which where why what
    tell about trace fortnight weeks days hours night yesterday today tomorrow held hold order lines
    there their these those other could would should after before since between during under until
    machine machines material materials batch batches plant plants product products quality check
    """.strip()))


def correct_words(question: str, vocabulary: frozenset[str] = VOCABULARY, cutoff: float = 85.0) -> str:
    """Replace misspelt plain words (5+ letters, not ids) by the closest routing word."""
    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        low = w.lower()
        if low in vocabulary or len(low) < 5:
            return w
        best = process.extractOne(low, vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff)
        return str(best[0]) if best else w

    return re.sub(r"(?<![\w-])[A-Za-z]{5,}(?![\w-])", fix, question)


class Router:
    """Scores every intent; ``route`` returns the winner with its reasons and parameters."""

    def __init__(self, example_weight: float = 1.5) -> None:
        self.example_weight = example_weight
        self._compiled = {i: [(re.compile(p, re.I), w) for p, w in ps] for i, ps in PATTERNS.items()}

    def scores(self, question: str, links: LinkResult | None = None) -> tuple[dict[Intent, float], list[str]]:
        reasons: list[str] = []
        fixed = correct_words(question)
        if fixed != question:
            reasons.append(f"spelling corrected for routing: {fixed!r}")
            question = fixed
        scores: dict[Intent, float] = {i: 0.0 for i in Intent}
        for intent, patterns in self._compiled.items():
            for rx, w in patterns:
                m = rx.search(question)
                if m:
                    scores[intent] += w
                    reasons.append(f"{intent.value}: pattern {m.group(0)!r} (+{w})")
        q = question.lower()
        for intent, examples in EXAMPLES.items():
            sim = max(fuzz.token_set_ratio(q, e.lower()) for e in examples) / 100.0
            bonus = round(self.example_weight * max(0.0, sim - 0.5) * 2, 3)
            if bonus > 0:
                scores[intent] += bonus
        linked_classes = {c for m in (links.linked if links else []) for c in m.classes}
        for intent, (classes, w) in CLASS_CUES.items():
            hit = linked_classes.intersection(classes)
            if hit:
                scores[intent] += w
                reasons.append(f"{intent.value}: linked {', '.join(sorted(hit))} (+{w})")
        return scores, reasons

    def route(self, question: str, now: datetime, links: LinkResult | None = None,
              plants: Sequence[str] = ()) -> Route:
        scores, reasons = self.scores(question, links)
        best = max(scores, key=lambda i: (scores[i], -list(Intent).index(i)))
        if scores[best] < MIN_SCORE:
            has_entity = bool(links and links.linked)
            best = Intent.entity_lookup if has_entity and scores[best] < 1.0 else Intent.free_question
            reasons.append(f"no intent reached {MIN_SCORE}: {best.value}")
        total = sum(scores.values()) or 1.0
        window = find_window(question, now)
        return Route(
            intent=best, confidence=round(scores.get(best, 0.0) / total, 3), reasons=reasons,
            scores={i.value: round(s, 3) for i, s in scores.items()}, window=window,
            horizon_days=horizon_days(window, now), plants=list(plants),
        )
