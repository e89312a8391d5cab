"""Neo4j vs embedded store, in the same run: load rate, hold -> customers trace, risk board.

Needs a Neo4j server (``make neo4j-up``, or any server) given by ``NEO4J_URI`` / ``NEO4J_USER`` /
``NEO4J_PASSWORD``; its database is CLEARED first. For each scale, the generator's plant (seed 7)
is loaded into a fresh embedded store and into Neo4j (one transaction each), then the same
analyses run on both with the same rules and clock, and the answers are compared.

Usage::

    .venv/bin/python -m benchmarks.bench_neo4j                  # small
    .venv/bin/python -m benchmarks.bench_neo4j --scales small medium

Prints a table and writes ``benchmarks/results/neo4j.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from graph_loader.generator import generate, load_truth, named_spec  # noqa: E402
from graph_loader.loader import load_bundle  # noqa: E402
from reasoning.service import Analyses  # noqa: E402
from store.base import GraphStore  # noqa: E402
from store.factory import open_store  # noqa: E402

console = Console()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(store: GraphStore, bundle: Path, samples: int, reps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, answers) for one backend; answers are compared across backends."""
    t = time.perf_counter()
    report = load_bundle(store, bundle)
    load_s = time.perf_counter() - t
    truth = load_truth(bundle / "truth.json")
    a = Analyses(store, now=truth.now, rules_dirs=[])
    holds = sorted(n.id for n in store.find_nodes("QualityHold"))[:samples]
    for h in holds:  # warm-up (plan caches, page cache)
        a.trace_hold(h)
    trace = [x for h in holds for x in timed(lambda h=h: a.trace_hold(h), reps)]
    horizon = truth.scenarios.deliveries_at_risk.horizon_days
    a.risk(horizon)
    risk = timed(lambda: a.risk(horizon), max(1, reps // 2))
    figures = {
        "entities": report.nodes, "relations": report.edges, "load_s": round(load_s, 2),
        "load_entities_per_s": round(report.nodes / load_s),
        "load_rows_per_s": round((report.nodes + report.edges) / load_s),
        "trace_hold_p50_ms": round(pct(trace, 0.5), 2), "trace_hold_p95_ms": round(pct(trace, 0.95), 2),
        "risk_board_ms": round(pct(risk, 0.5), 1), "holds": len(holds),
    }
    answers = {
        "holds": {h: a.trace_hold(h).model_dump(mode="json", exclude={"seconds", "elapsed_ms"}) for h in holds},
        "risk": a.risk(horizon).model_dump(mode="json", exclude={"seconds", "elapsed_ms"}),
    }
    return figures, answers


def run_scale(scale: str, workdir: Path, samples: int, reps: int) -> dict[str, Any]:
    bundle = workdir / f"{scale}-bundle"
    if not (bundle / "truth.json").exists():
        console.print(f"generating {scale} plant ...")
        generate(named_spec(scale), 7, bundle)
    out: dict[str, Any] = {"scale": scale}
    answers: dict[str, Any] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(scale, total=2)
        emb = open_store("embedded", workdir / f"{scale}-store-{time.time_ns()}")
        try:
            out["embedded"], answers["embedded"] = measure(emb, bundle, samples, reps)
        finally:
            emb.close()
        progress.advance(task)
        neo = open_store("neo4j", uri=os.environ["NEO4J_URI"], user=os.environ.get("NEO4J_USER", "neo4j"),
                         password=os.environ.get("NEO4J_PASSWORD"), database=os.environ.get("NEO4J_DATABASE"))
        try:
            neo.clear()  # type: ignore[attr-defined]
            out["neo4j"], answers["neo4j"] = measure(neo, bundle, samples, reps)
        finally:
            neo.close()
        progress.advance(task)
    out["same_answers"] = answers["embedded"] == answers["neo4j"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["small"])
    ap.add_argument("--samples", type=int, default=20, help="holds traced per scale")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if not os.environ.get("NEO4J_URI"):
        sys.exit("bench_neo4j: set NEO4J_URI (and NEO4J_PASSWORD); `make neo4j-up` starts a local server")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="plantgraph-bench-neo4j-"))
    rows = [run_scale(s, workdir, args.samples, args.reps) for s in args.scales]

    table = Table(title="embedded vs Neo4j (same run, same plant, same analyses)")
    for col in ("scale", "backend", "entities", "relations", "load s", "entities/s", "rows/s",
                "hold trace p50 ms", "p95 ms", "risk board ms", "same answers"):
        table.add_column(col)
    for r in rows:
        for b in ("embedded", "neo4j"):
            f = r[b]
            table.add_row(r["scale"], b, str(f["entities"]), str(f["relations"]), str(f["load_s"]),
                          str(f["load_entities_per_s"]), str(f["load_rows_per_s"]), str(f["trace_hold_p50_ms"]),
                          str(f["trace_hold_p95_ms"]), str(f["risk_board_ms"]), str(r["same_answers"]))
    console.print(table)
    result = {
        "benchmark": "neo4j",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
        "seed": 7,
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results" / "neo4j.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
