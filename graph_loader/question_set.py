"""The public question set of a generated plant, written from its truth.json.

Each injected scenario becomes several questions: a plain wording, paraphrases, a version with
typos and versions with time expressions ("next two weeks", "in the last 3 days"). Expected
answers come from truth.json only, so the set checks the copilot against the generator, not
against itself. Format (JSON Lines) is documented in docs/evaluation.md; the copilot's
``plantgraph eval`` reads it.

Run: ``python -m graph_loader.question_set TRUTH.json OUT.jsonl [--seed 7]``; the generator calls
:func:`write_question_set`.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

_WORD = re.compile(r"[A-Za-z]{6,}")


class QuestionSetWriteError(ValueError):
    """truth.json cannot be turned into questions (the message names the JSON path)."""


def _get(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise QuestionSetWriteError(f"truth.json: $.{path}: missing (expected by the question-set writer)")
        cur = cur[part]
    return cur


def typo(text: str, rng: random.Random, protect: set[str], count: int = 2) -> str:
    """Swap two inner letters in up to ``count`` long plain words (never inside ids or names)."""
    words = [m for m in _WORD.finditer(text) if not any(m.group(0) in p for p in protect)]
    rng.shuffle(words)
    chosen = sorted(words[:count], key=lambda m: m.start(), reverse=True)
    for m in chosen:
        w = m.group(0)
        i = rng.randrange(1, len(w) - 2)
        w2 = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        text = text[:m.start()] + w2 + text[m.end():]
    return text


def name_typo(name: str, rng: random.Random) -> str:
    """Drop one inner letter of the longest word of a name (a typical typing slip)."""
    words = name.split(" ")
    k = max(range(len(words)), key=lambda j: len(words[j]))
    w = words[k]
    if len(w) < 5:
        return name
    i = rng.randrange(1, len(w) - 1)
    words[k] = w[:i] + w[i + 1:]
    return " ".join(words)


def _read_entities(bundle: Path, cls: str) -> list[dict[str, Any]]:
    csv_path, jsonl_path = bundle / f"{cls}.csv", bundle / f"{cls}.jsonl"
    if csv_path.exists():
        with csv_path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if jsonl_path.exists():
        with jsonl_path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    return []


def _iso(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()


def build_questions(truth: dict[str, Any], seed: int = 7, bundle: Path | None = None) -> list[dict[str, Any]]:
    """The questions of one plant as JSON-compatible dicts (see docs/evaluation.md)."""
    rng = random.Random(seed)
    now = _iso(str(_get(truth, "now")))
    sc = _get(truth, "scenarios")
    out: list[dict[str, Any]] = []

    def add(question: str, intent: str, expected: list[str], tags: list[str] | None = None,
            match: str = "exact", deterministic: bool = True) -> None:
        out.append({
            "id": f"q{len(out) + 1:03d}", "question": question, "intent": intent,
            "expected_ids": sorted(set(expected)), "match": match, "deterministic": deterministic,
            "now": now, "tags": tags or [],
        })

    def with_typo(question: str, protect: set[str]) -> str:
        return typo(question, rng, protect)

    # contaminated supplier lot -> forward trace
    c = _get(sc, "contaminated_supplier_lot")
    lot = c["supplier_lot"]
    q = f"Supplier lot {lot} is contaminated. Which customers are affected?"
    add(q, "trace_impact", c["reached_customers"])
    add(with_typo(q, {lot}), "trace_impact", c["reached_customers"], ["typo"])
    add(f"Who received product made with {lot}?", "trace_impact", c["reached_customers"], ["paraphrase"])
    add(f"Which sales order lines are affected by supplier lot {lot}?", "trace_impact",
        c["reached_sales_order_lines"], ["paraphrase"])
    add(f"Trace lot {lot} forward: which production orders are impacted?", "trace_impact",
        c["reached_production_orders"], ["paraphrase"])
    add(f"Supplier lot {lot} is contaminated: which lots made from it are still in house?", "trace_impact",
        c["in_house_lots"], ["paraphrase"])
    add(f"Supplier lot {lot} is contaminated: which affected lots were already shipped?", "trace_impact",
        c["shipped_lots"], ["paraphrase"])

    # machine fault window -> machine trace
    m = _get(sc, "machine_fault")
    machine, start, end = m["machine"], _iso(m["from"]), _iso(m["to"])
    q = f"Machine {machine} had a fault between {start} and {end}. Which customers are affected?"
    add(q, "trace_impact", m["reached_customers"], ["time"])
    add(with_typo(q, {machine, start, end}), "trace_impact", m["reached_customers"], ["time", "typo"])
    add(f"Which sales order lines were impacted by the fault on machine {machine} from {start} to {end}?",
        "trace_impact", m["reached_sales_order_lines"], ["time", "paraphrase"])
    now_dt = datetime.fromisoformat(now)
    days = math.ceil((now_dt - datetime.fromisoformat(start)).total_seconds() / 86400)
    if datetime.fromisoformat(end) <= now_dt and days <= 60:
        add(f"What happened on machine {machine} in the last {days} days?", "history", [m["incident"]],
            ["time"], match="contains", deterministic=False)

    # quality hold -> hold trace
    h = _get(sc, "quality_hold")
    add(f"Hold {h['hold']} was placed on lot {h['lot']}. Which customers are affected?", "trace_impact",
        h["affected_customers"])
    add(f"Which sales order lines are impacted by quality hold {h['hold']}?", "trace_impact",
        h["reached_sales_order_lines"], ["paraphrase"])
    q = f"Quality hold {h['hold']}: which customers does it affect?"
    add(with_typo(q, {h["hold"]}), "trace_impact", h["affected_customers"], ["typo"])

    # root cause
    r = _get(sc, "root_cause")
    lots = ", ".join(r["bad_lots"])
    add(f"Lots {lots} failed inspection. What is the root cause?", "root_cause", [r["factor"]])
    add(f"What do the bad lots {lots} have in common?", "root_cause", [r["factor"]], ["paraphrase"])
    add(f"What is the root cause of incident {r['incident']}?", "root_cause", [r["factor"]], ["paraphrase"])
    q = f"Why did lots {lots} fail? Find the root cause."
    add(with_typo(q, set(r["bad_lots"])), "root_cause", [r["factor"]], ["typo"])

    # deliveries at risk
    d = _get(sc, "deliveries_at_risk")
    held = d["lines_with_held_allocations"]
    horizon = int(d["horizon_days"])
    add(f"Which deliveries are at risk in the next {horizon} days because of held lots?", "delivery_risk",
        held, ["time"])
    if horizon == 14:
        add("Which deliveries over the next two weeks are at risk because of a quality hold?", "delivery_risk",
            held, ["time", "paraphrase"])
        add(with_typo("Which customer deliveries are at risk within the coming fortnight because lots are held?",
                      set()), "delivery_risk", held, ["time", "typo"])
    per_kind: dict[str, list[str]] = {}
    for sol, causes in sorted(d["lines"].items()):
        for kind in {x["kind"] for x in causes}:
            per_kind.setdefault(kind, []).append(sol)
    picked_lines: list[str] = []
    for kind in sorted(per_kind):  # up to two lines per injected cause kind
        picked_lines.extend(x for x in per_kind[kind][:2] if x not in picked_lines)
    for sol in picked_lines:
        causes = d["lines"][sol]
        add(f"Why is delivery {sol} at risk?", "delivery_risk", [x["entity"] for x in causes],
            sorted({f"cause:{x['kind']}" for x in causes}), match="contains")

    # SOP in effect
    for s in _get(sc, "sop_in_effect")[:6]:
        add(f"Which SOP version was in effect for order {s['order']} on machine {s['machine']}?",
            "sop_in_effect", [s["sop_version"]])
        add(f"Which work instruction applied to production order {s['order']}?", "sop_in_effect",
            [s["sop_version"]], ["paraphrase"])

    # lookups by name (names read from the bundle beside truth.json), with typos in the name
    if bundle is not None:
        names: Counter[str] = Counter()
        rows: list[tuple[str, str, str]] = []
        for cls, label in (("Customer", "customer"), ("Supplier", "supplier")):
            for row in _read_entities(bundle, cls):
                if row.get("name"):
                    rows.append((str(row["id"]), str(row["name"]), label))
                    names[str(row["name"]).lower()] += 1
        picked = [x for x in rows if names[x[1].lower()] == 1]
        rng.shuffle(picked)
        for eid, name, label in picked[:6]:
            add(f"Tell me about {label} {name}", "entity_lookup", [eid])
            misspelt = name_typo(name, rng)
            if misspelt != name:
                add(f"Tell me about {label} {misspelt}", "entity_lookup", [eid], ["typo"])
    return out


def write_question_set(truth_path: Path, out: Path, seed: int = 7, bundle: Path | None = None) -> int:
    """Write the question set of the plant whose truth.json is ``truth_path``; returns the count.

    ``bundle`` defaults to the folder of truth.json (the generator writes both there)."""
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionSetWriteError(f"{truth_path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise QuestionSetWriteError(f"{truth_path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    bundle_dir = bundle if bundle is not None else truth_path.parent
    questions = build_questions(truth, seed=seed, bundle=bundle_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
    tmp.replace(out)
    return len(questions)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write the public question set of a generated plant.")
    p.add_argument("truth", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--bundle", type=Path, default=None)
    a = p.parse_args(argv)
    try:
        n = write_question_set(a.truth, a.out, a.seed, a.bundle)
    except QuestionSetWriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} questions to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

