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


class ServerCpu:
    """CPU seconds (user + system) the Neo4j server's JVM has used, from /proc (a local server
    started by tools/neo4j.sh: its launcher.pid); 0 when unknown."""

    def __init__(self, pidfile: Path | None) -> None:
        self.pid = int(pidfile.read_text().strip()) if pidfile is not None and pidfile.exists() else None

    def __call__(self) -> float:
        if self.pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def load(store: GraphStore, bundle: Path, server: ServerCpu | None = None) -> dict[str, Any]:
    s0 = server() if server is not None else 0.0
    c, t = time.process_time(), time.perf_counter()
    report = load_bundle(store, bundle)
    load_s, load_cpu = time.perf_counter() - t, time.process_time() - c
    out = {"entities": report.nodes, "relations": report.edges, "load_s": round(load_s, 2),
           "load_client_cpu_s": round(load_cpu, 2), "load_entities_per_s": round(report.nodes / load_s),
           "load_rows_per_s": round((report.nodes + report.edges) / load_s)}
    if server is not None and server.pid is not None:
        out["load_server_cpu_s"] = round(server() - s0, 2)
    return out


def measure(store: GraphStore, bundle: Path, samples: int, reps: int, engine: str,
            server: ServerCpu | None = None) -> tuple[dict[str, Any], Any]:
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
    s0 = server() if server is not None else 0.0
    for h in holds:
        w, c, n = timed(partial(a.trace_hold, h), reps, counter)
        tw += w
        tc += c
        tt += n
    trace_server = (server() - s0) / max(1, len(tw)) if server is not None else 0.0
    horizon = truth.scenarios.deliveries_at_risk.horizon_days
    rw, _rc, _rt = timed(lambda: a.risk(horizon), 1, counter)  # the first board plans the queries
    s1 = server() if server is not None else 0.0
    w2, c2, n2 = timed(lambda: a.risk(horizon), max(1, reps // 2), counter)
    risk_server = (server() - s1) / max(1, len(w2)) if server is not None else 0.0
    figures: dict[str, Any] = {
        "trace_hold_p50_ms": round(pct(tw, 0.5), 2), "trace_hold_p95_ms": round(pct(tw, 0.95), 2),
        "trace_hold_cpu_p50_ms": round(pct(tc, 0.5), 2), "trace_hold_cpu_p95_ms": round(pct(tc, 0.95), 2),
        "risk_board_first_ms": round(rw[0], 1),
        "risk_board_ms": round(pct(w2, 0.5), 1), "risk_board_cpu_ms": round(pct(c2, 0.5), 1),
        "holds": len(holds),
    }
    if server is not None and server.pid is not None:
        figures["trace_hold_server_cpu_mean_ms"] = round(trace_server * 1000, 1)
        figures["risk_board_server_cpu_ms"] = round(risk_server * 1000, 1)
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


def run_scale(scale: str, workdir: Path, samples: int, reps: int, setups: list[str],
              server: ServerCpu, preloaded: Path | None, embedded_from_saved: bool = False) -> dict[str, Any]:
    bundle = workdir / f"{scale}-bundle"
    if not (bundle / "truth.json").exists():
        console.print(f"generating {scale} plant ...")
        generate(named_spec(scale), 7, bundle)
    out: dict[str, Any] = {"scale": scale, "setups": setups}
    answers: dict[str, Any] = {}
    saved = workdir / f"{scale}-embedded.json"  # the embedded half, for a split run (--embedded-from)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(scale, total=2 + len(setups))
        if embedded_from_saved:
            kept = json.loads(saved.read_text())
            out["load_embedded"], out["embedded"], answers["embedded"] = kept["load"], kept["figures"], kept["answers"]
            out["embedded"]["measured_in_a_separate_process"] = True
        else:
            emb = open_store("embedded", workdir / f"{scale}-store-{time.time_ns()}")
            try:
                out["load_embedded"] = load(emb, bundle)
                progress.advance(task)
                out["embedded"], answers["embedded"] = measure(emb, bundle, samples, reps, "default")
            finally:
                emb.close()
            saved.write_text(json.dumps({"load": out["load_embedded"], "figures": out["embedded"],
                                         "answers": answers["embedded"]}))
        progress.advance(task)
        if setups == ["embedded"]:
            return out
        neo = open_store("neo4j", uri=os.environ["NEO4J_URI"], user=os.environ.get("NEO4J_USER", "neo4j"),
                         password=os.environ.get("NEO4J_PASSWORD"), database=os.environ.get("NEO4J_DATABASE"))
        try:
            if preloaded is not None:
                # loaded beforehand by the same code (load_bundle), with its figures in this file
                out["load_neo4j"] = json.loads(preloaded.read_text())
                out["load_neo4j"]["preloaded"] = True
                counts = neo.counts()
                if (counts.nodes, counts.edges) != (out["load_neo4j"]["entities"], out["load_neo4j"]["relations"]):
                    sys.exit(f"bench_neo4j: the Neo4j database does not hold the {scale} plant of {preloaded}")
            else:
                neo.clear()  # type: ignore[attr-defined]
                out["load_neo4j"] = load(neo, bundle, server)
            progress.advance(task)
            for setup in setups:
                if setup != "embedded":
                    engine = "interp" if setup == "neo4j-interp" else "default"
                    out[setup], answers[setup] = measure(neo, bundle, samples, reps, engine, server)
                    progress.advance(task)
        finally:
            neo.close()
    # (through JSON, so a saved embedded half compares like a fresh one)
    ref = json.loads(json.dumps(answers["embedded"]))
    out["same_answers"] = {s: json.loads(json.dumps(answers[s])) == ref for s in setups if s != "embedded"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["small"])
    ap.add_argument("--samples", type=int, default=20, help="holds traced per scale")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    ap.add_argument("--neo4j-pid", type=Path, default=None,
                    help="pid file of a local Neo4j (tools/neo4j.sh: $PLANTGRAPH_NEO4J_HOME/launcher.pid) to "
                         "record the server's CPU time")
    ap.add_argument("--neo4j-preloaded", type=Path, default=None,
                    help="the database already holds the (single) scale's plant; take its load figures from "
                         "this JSON instead of loading again")
    ap.add_argument("--merge", action="store_true", help="keep the other scales' rows of the results file")
    ap.add_argument("--embedded-from", action="store_true",
                    help="take the embedded half from the workdir (an earlier `--setups embedded` run of the "
                         "same plant, e.g. while Neo4j was still loading) instead of measuring it again")
    args = ap.parse_args()
    if not os.environ.get("NEO4J_URI"):
        sys.exit("bench_neo4j: set NEO4J_URI (and NEO4J_PASSWORD); `make neo4j-up` starts a local server")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="plantgraph-bench-neo4j-"))
    setups = ["embedded", *[s for s in args.setups if s != "embedded"]]
    server = ServerCpu(args.neo4j_pid)
    out = ROOT / "benchmarks" / "results" / "neo4j.json"
    rows = []
    for s in args.scales:
        rows.append(run_scale(s, workdir, args.samples, args.reps, setups, server, args.neo4j_preloaded,
                              args.embedded_from))
        console.print(json.dumps(rows[-1]))
    if args.merge and out.exists():
        kept = [r for r in json.loads(out.read_text())["rows"] if r["scale"] not in args.scales]
        rows = sorted(kept + rows, key=lambda r: ["tiny", "small", "medium", "large"].index(r["scale"]))

    load_table = Table(title="load (one all-or-nothing transaction per backend)")
    for col in ("scale", "backend", "entities", "relations", "load s", "client CPU s", "server CPU s", "entities/s",
                "rows/s"):
        load_table.add_column(col)
    table = Table(title="analyses: embedded vs Neo4j (same run, same plant, same answers)")
    for col in ("scale", "set-up", "hold p50 / p95 ms", "hold CPU p50 / p95 ms", "hold server CPU ms",
                "hold round trips", "risk board ms", "risk CPU ms", "risk server CPU ms", "risk round trips",
                "same answers"):
        table.add_column(col)
    for r in rows:
        for b in ("embedded", "neo4j"):
            if f"load_{b}" not in r:
                continue
            f = r[f"load_{b}"]
            load_table.add_row(r["scale"], b, f"{f['entities']:,}", f"{f['relations']:,}", str(f["load_s"]),
                               str(f["load_client_cpu_s"]), str(f.get("load_server_cpu_s", "-")),
                               f"{f['load_entities_per_s']:,}",
                               f"{f['load_rows_per_s']:,}")
        for s in r.get("setups", SETUPS):
            f = r[s]
            table.add_row(r["scale"], s, f"{f['trace_hold_p50_ms']} / {f['trace_hold_p95_ms']}",
                          f"{f['trace_hold_cpu_p50_ms']} / {f['trace_hold_cpu_p95_ms']}",
                          str(f.get("trace_hold_server_cpu_mean_ms", "-")),
                          str(f.get("trace_hold_round_trips_p50", "-")), str(f["risk_board_ms"]),
                          str(f["risk_board_cpu_ms"]), str(f.get("risk_board_server_cpu_ms", "-")),
                          str(f.get("risk_board_round_trips", "-")),
                          "-" if s == "embedded" else str(r.get("same_answers", {}).get(s, "-")))
    console.print(load_table)
    console.print(table)
    result = {
        "benchmark": "neo4j",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
        "seed": 7,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
