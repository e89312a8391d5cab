"""Neo4j vs embedded store, in the same run: load rate, hold -> customers trace, risk board.

Needs a Neo4j server (``make neo4j-up``, or any server) given by ``NEO4J_URI`` / ``NEO4J_USER`` /
``NEO4J_PASSWORD``; its database is CLEARED first. For each scale, the generator's plant (seed 7)
is loaded into a fresh embedded store and into Neo4j (one transaction each), then the same
analyses run with the same rules and clock on three set-ups, and their answers are compared:

- ``embedded``: the embedded store (the interpreter with its traversal fast path);
- ``neo4j-interp``: Neo4j, rules evaluated by the interpreter (a few reads per search level);
- ``neo4j``: Neo4j as the analyses use it, every rule sent as its one compiled Cypher query
  (``reasoning.cypher.CompiledRuleEngine``), the interpreter only where an analysis shares its
  neighbour reads.

Besides wall time it records the client's CPU time (``time.process_time``: the machine is shared, so
wall time mostly measures waiting) and, on Neo4j, the round trips (queries sent) per analysis.

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
from functools import partial
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
from reasoning.cypher import CompiledRuleEngine  # noqa: E402
from reasoning.engine import RuleEngine  # noqa: E402
from reasoning.service import Analyses  # noqa: E402
from store.base import GraphStore  # noqa: E402
from store.factory import open_store  # noqa: E402

console = Console()
SETUPS = ("embedded", "neo4j-interp", "neo4j")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


class Counter:
    """Counts the Neo4j store's queries (each is one round trip to the server)."""

    def __init__(self, store: GraphStore) -> None:
        self.n = 0
        inner = getattr(store, "_read_rows", None)
        if inner is None:
            self.enabled = False
            return
        self.enabled = True

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.n += 1
            return inner(*args, **kwargs)

        store._read_rows = counted  # type: ignore[attr-defined]


def timed(fn: Callable[[], Any], reps: int, counter: Counter) -> tuple[list[float], list[float], list[int]]:
    """(wall ms, CPU ms, round trips) per repetition."""
    wall, cpu, trips = [], [], []
    for _ in range(reps):
        counter.n = 0
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        trips.append(counter.n)
    return wall, cpu, trips


def load(store: GraphStore, bundle: Path) -> dict[str, Any]:
    c, t = time.process_time(), time.perf_counter()
    report = load_bundle(store, bundle)
    load_s, load_cpu = time.perf_counter() - t, time.process_time() - c
    return {"entities": report.nodes, "relations": report.edges, "load_s": round(load_s, 2),
            "load_client_cpu_s": round(load_cpu, 2), "load_entities_per_s": round(report.nodes / load_s),
            "load_rows_per_s": round((report.nodes + report.edges) / load_s)}


def measure(store: GraphStore, bundle: Path, samples: int, reps: int, engine: str) -> tuple[dict[str, Any], Any]:
    """(figures, answers) of the analyses on one set-up; answers are compared across set-ups."""
    truth = load_truth(bundle / "truth.json")
    a = Analyses(store, now=truth.now, rules_dirs=[])
    if engine == "interp":
        a.ctx.engine = RuleEngine(store, a.max_depth, a.max_results)
    counter = Counter(store)
    holds = sorted(n.id for n in store.find_nodes("QualityHold"))[:samples]
    for h in holds:  # warm-up (plan caches, page cache)
        a.trace_hold(h)
    tw, tc, tt = [], [], []
    for h in holds:
        w, c, n = timed(partial(a.trace_hold, h), reps, counter)
        tw += w
        tc += c
        tt += n
    horizon = truth.scenarios.deliveries_at_risk.horizon_days
    rw, _rc, _rt = timed(lambda: a.risk(horizon), 1, counter)  # the first board plans the queries
    w2, c2, n2 = timed(lambda: a.risk(horizon), max(1, reps // 2), counter)
    figures: dict[str, Any] = {
        "trace_hold_p50_ms": round(pct(tw, 0.5), 2), "trace_hold_p95_ms": round(pct(tw, 0.95), 2),
        "trace_hold_cpu_p50_ms": round(pct(tc, 0.5), 2), "trace_hold_cpu_p95_ms": round(pct(tc, 0.95), 2),
        "risk_board_first_ms": round(rw[0], 1),
        "risk_board_ms": round(pct(w2, 0.5), 1), "risk_board_cpu_ms": round(pct(c2, 0.5), 1),
        "holds": len(holds),
    }
    if counter.enabled:
        figures["trace_hold_round_trips_p50"] = pct([float(x) for x in tt], 0.5)
        figures["risk_board_round_trips"] = n2[0]
    if isinstance(a.ctx.engine, CompiledRuleEngine):
        figures["compiled_queries"] = a.ctx.engine.stats.queries
        figures["compiled_fallbacks"] = a.ctx.engine.stats.fallbacks
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
        task = progress.add_task(scale, total=5)
        emb = open_store("embedded", workdir / f"{scale}-store-{time.time_ns()}")
        try:
            out["load_embedded"] = load(emb, bundle)
            progress.advance(task)
            out["embedded"], answers["embedded"] = measure(emb, bundle, samples, reps, "default")
        finally:
            emb.close()
        progress.advance(task)
        neo = open_store("neo4j", uri=os.environ["NEO4J_URI"], user=os.environ.get("NEO4J_USER", "neo4j"),
                         password=os.environ.get("NEO4J_PASSWORD"), database=os.environ.get("NEO4J_DATABASE"))
        try:
            neo.clear()  # type: ignore[attr-defined]
            out["load_neo4j"] = load(neo, bundle)
            progress.advance(task)
            out["neo4j-interp"], answers["neo4j-interp"] = measure(neo, bundle, samples, reps, "interp")
            progress.advance(task)
            out["neo4j"], answers["neo4j"] = measure(neo, bundle, samples, reps, "default")
        finally:
            neo.close()
        progress.advance(task)
    out["same_answers"] = {s: answers[s] == answers["embedded"] for s in SETUPS[1:]}
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
    rows = []
    for s in args.scales:
        rows.append(run_scale(s, workdir, args.samples, args.reps))
        console.print(json.dumps(rows[-1]))

    load_table = Table(title="load (one all-or-nothing transaction per backend)")
    for col in ("scale", "backend", "entities", "relations", "load s", "client CPU s", "entities/s", "rows/s"):
        load_table.add_column(col)
    table = Table(title="analyses: embedded vs Neo4j (same run, same plant, same answers)")
    for col in ("scale", "set-up", "hold p50 / p95 ms", "hold CPU p50 / p95 ms", "hold round trips",
                "risk board ms", "risk CPU ms", "risk round trips", "same answers"):
        table.add_column(col)
    for r in rows:
        for b in ("embedded", "neo4j"):
            f = r[f"load_{b}"]
            load_table.add_row(r["scale"], b, f"{f['entities']:,}", f"{f['relations']:,}", str(f["load_s"]),
                               str(f["load_client_cpu_s"]), f"{f['load_entities_per_s']:,}",
                               f"{f['load_rows_per_s']:,}")
        for s in SETUPS:
            f = r[s]
            table.add_row(r["scale"], s, f"{f['trace_hold_p50_ms']} / {f['trace_hold_p95_ms']}",
                          f"{f['trace_hold_cpu_p50_ms']} / {f['trace_hold_cpu_p95_ms']}",
                          str(f.get("trace_hold_round_trips_p50", "-")), str(f["risk_board_ms"]),
                          str(f["risk_board_cpu_ms"]), str(f.get("risk_board_round_trips", "-")),
                          "-" if s == "embedded" else str(r["same_answers"][s]))
    console.print(load_table)
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
