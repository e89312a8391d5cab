"""Reasoning benchmark: p50/p95 latency of every built-in analysis on generated plants, with a bare
networkx BFS over the same hops as the floor.

For each scale it generates a plant (seed 7) and loads it into an embedded store once (cached under
``--workdir``), then times, with the plant's ``now`` from truth.json:

- ``trace_hold``: hold -> lots -> ... -> customers, for every quality hold (up to ``--samples``)
- ``trace_lot``: forward from supplier lots; ``backward``: from finished lots
- ``trace_machine`` / ``trace_incident``: the injected machine fault
- ``risk``: the full delivery-risk board (14 days); ``rootcause``: the injected incident
- ``sop``: SOP in effect for the truth's orders
- ``floor_hold_bfs``: a networkx DiGraph of the relations the hold trace walks (HOLDS, CONSUMED,
  PRODUCED, DERIVED_FROM, ALLOCATED_TO, SHIPPED_TO, HAS_SO_LINE, PLACED_BY), built from the bundle
  files; plain BFS from the same holds over the same directions (no evidence, no records)
- ``models_hold``: only the building of each hold trace's result models (entity, evidence path,
  reached entity; each distinct evidence step once), with the unvalidated builders the engine
  uses (:mod:`reasoning.trusted`), from values already at hand: no walk, no store read. What
  the trace's answer costs to build as objects, however it is computed: its distance to the
  floor is the part of the floor ratio that no faster walk can remove

Usage::

    .venv/bin/python -m benchmarks.bench_reasoning                      # small and medium
    .venv/bin/python -m benchmarks.bench_reasoning --scales large --samples 10

Wall and CPU (this process) time are both recorded. Prints a table and writes
``benchmarks/results/reasoning.json`` (results of earlier runs at other
scales are kept).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from graph_loader.generator import generate, load_truth, named_spec  # noqa: E402
from graph_loader.loader import load_bundle  # noqa: E402
from reasoning import trusted  # noqa: E402
from reasoning.results import EvidenceStep, ReachedEntity, TraceResult  # noqa: E402
from reasoning.service import Analyses  # noqa: E402
from store.base import Direction  # noqa: E402
from store.factory import open_store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "reasoning.json"
#: (relation, direction walked) of the hold -> customers trace
HOLD_HOPS = [("HOLDS", "out"), ("CONSUMED", "in"), ("PRODUCED", "out"), ("DERIVED_FROM", "in"),
             ("ALLOCATED_TO", "out"), ("SHIPPED_TO", "out"), ("HAS_SO_LINE", "in"), ("PLACED_BY", "out")]
console = Console()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def prepare(scale: str, workdir: Path) -> tuple[Path, Path]:
    bundle, store_dir = workdir / f"{scale}-bundle", workdir / f"{scale}-store"
    if not (bundle / "truth.json").exists():
        console.print(f"generating {scale} plant ...")
        generate(named_spec(scale), 7, bundle)
    marker = store_dir / ".loaded"
    if not marker.exists():
        console.print(f"loading {scale} plant into {store_dir} ...")
        if store_dir.exists():
            import shutil

            shutil.rmtree(store_dir)
        s = open_store("embedded", store_dir)
        try:
            load_bundle(s, bundle)
        finally:
            s.close()
        marker.write_text("ok")
    return bundle, store_dir


def read_edges(bundle: Path, rel: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    csv_path, jsonl_path = bundle / f"{rel}.csv", bundle / f"{rel}.jsonl"
    if csv_path.exists():
        with csv_path.open(encoding="utf-8", newline="") as f:
            out = [(r["src"], r["dst"]) for r in csv.DictReader(f)]
    elif jsonl_path.exists():
        with jsonl_path.open(encoding="utf-8") as f:
            out = [(d["src"], d["dst"]) for d in map(json.loads, f) if d]
    return out


def floor_graph(bundle: Path) -> nx.DiGraph:
    """Edges oriented the way the trace walks them, so the floor is a plain successor BFS."""
    g = nx.DiGraph()
    for rel, direction in HOLD_HOPS:
        for src, dst in read_edges(bundle, rel):
            if direction == "out":
                g.add_edge(src, dst)
            else:
                g.add_edge(dst, src)
    return g


def bfs(g: nx.DiGraph, start: str) -> int:
    seen = {start}
    q = deque([start])
    while q:
        n = q.popleft()
        for m in g.successors(n) if n in g else ():
            if m not in seen:
                seen.add(m)
                q.append(m)
    return len(seen)


def rebuild_models(result: TraceResult) -> Callable[[], list[ReachedEntity]]:
    """A call that builds ``result``'s reached entities again from plain values, as the engine's
    fast builders do (each distinct step once, shared by the paths through it, as the trace
    shares a parent's steps); ``result`` is read beforehand, so the call times only the building."""
    rows = [(x.entity.id, x.entity.cls, x.entity.name, x.entity.plant, x.entity.status, x.depth, x.quantity,
             x.unit, x.via, x.shipped,
             [(p.rule, [(st.src, st.rel, st.dst, st.direction, st.times) for st in p.steps]) for p in x.evidence])
            for group in result.reached.values() for x in group]

    def build() -> list[ReachedEntity]:
        steps: dict[tuple[str, str, str], EvidenceStep] = {}
        out = []
        for ident, cls, name, plant, status, depth, qty, unit, via, shipped, paths in rows:
            evidence = []
            for rule, path in paths:
                built = []
                for src, rel, dst, direction, times in path:
                    st = steps.get((src, rel, dst))
                    if st is None:
                        st = steps[(src, rel, dst)] = trusted.step(src, rel, dst, direction, times)
                    built.append(st)
                evidence.append(trusted.path(rule, built))
            out.append(trusted.reached(trusted.entity(ident, cls, name, plant, status), depth, qty, unit, via,
                                       shipped, evidence))
        return out

    return build


def timed(fn: Callable[[], Any], reps: int, cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds per call; with ``cpu``, this process's CPU milliseconds are appended
    to it too (on a shared, loaded machine CPU time is the steadier before/after measure)."""
    out = []
    for _ in range(reps):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c) * 1000)
    return out


def run_scale(scale: str, workdir: Path, samples: int, reps: int) -> dict[str, Any]:
    bundle, store_dir = prepare(scale, workdir)
    truth = load_truth(bundle / "truth.json")
    sc = truth.scenarios
    store = open_store("embedded", store_dir)
    counts = store.counts()
    a = Analyses(store, now=truth.now, rules_dirs=[])
    holds = sorted(n.id for n in store.find_nodes("QualityHold"))[:samples]
    supplier_lots = sorted({sc.contaminated_supplier_lot.supplier_lot,
                            *(e.dst for h in holds[:1] for e in store.neighbours(h, ["HOLDS"], Direction.OUT))})
    lots = [n.id for n, _ in zip(store.find_nodes("Lot", where={"status": "shipped"}), range(samples), strict=False)]
    cases: list[tuple[str, list[Callable[[], Any]], int]] = [
        ("trace_hold", [lambda h=h: a.trace_hold(h) for h in holds], reps),
        ("trace_lot", [lambda x=x: a.trace_lot(x) for x in supplier_lots], reps),
        ("backward", [lambda x=x: a.backward(x) for x in lots], reps),
        ("trace_machine", [lambda: a.trace_machine(sc.machine_fault.machine, sc.machine_fault.from_,
                                                   sc.machine_fault.to)], reps),
        ("trace_incident", [lambda: a.trace_incident(sc.machine_fault.incident)], reps),
        ("sop", [lambda e=e: a.sop_in_effect(e.order, e.machine, e.at) for e in sc.sop_in_effect], reps),
        ("rootcause", [lambda: a.rootcause(incident=sc.root_cause.incident)], max(1, reps // 5)),
        ("risk", [lambda: a.risk(sc.deliveries_at_risk.horizon_days)], max(1, reps // 5)),
    ]
    rows: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{scale}", total=len(cases) + 2)
        for name, fns, r in cases:
            for fn in fns:  # warm-up (caches, first SQLite page reads)
                fn()
            cpu: list[float] = []
            ms = [x for fn in fns for x in timed(fn, r, cpu)]
            rows[name] = {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 3), "p95_ms": round(pct(ms, 0.95), 3),
                          "cpu_p50_ms": round(pct(cpu, 0.5), 3), "cpu_p95_ms": round(pct(cpu, 0.95), 3)}
            progress.advance(task)
        t = time.perf_counter()
        g = floor_graph(bundle)
        build_s = time.perf_counter() - t
        cpu = []
        ms = [x for h in holds for x in timed(lambda h=h: bfs(g, h), reps, cpu)]
        rows["floor_hold_bfs"] = {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 4), "p95_ms": round(pct(ms, 0.95), 4),
                                  "cpu_p50_ms": round(pct(cpu, 0.5), 4), "cpu_p95_ms": round(pct(cpu, 0.95), 4),
                                  "graph_build_s": round(build_s, 2)}
        progress.advance(task)
        cpu = []
        builds = [rebuild_models(a.trace_hold(h)) for h in holds]
        for fn in builds:  # warm-up, as above
            fn()
        ms = [x for fn in builds for x in timed(fn, reps, cpu)]
        rows["models_hold"] = {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 4), "p95_ms": round(pct(ms, 0.95), 4),
                               "cpu_p50_ms": round(pct(cpu, 0.5), 4), "cpu_p95_ms": round(pct(cpu, 0.95), 4)}
        progress.advance(task)
    reached = statistics.median([len(a.trace_hold(h).all_evidence()) for h in holds]) if holds else 0
    store.close()
    hold, floor = rows["trace_hold"]["p95_ms"], rows["floor_hold_bfs"]["p95_ms"]
    return {"scale": scale, "entities": counts.nodes, "relations": counts.edges, "analyses": rows,
            "trace_hold_p95_over_floor_p95": round(hold / floor, 1) if floor else None,
            "models_hold_p95_over_floor_p95": round(rows["models_hold"]["p95_ms"] / floor, 1) if floor else None,
            "evidence_paths_per_hold_median": reached}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="small,medium", help="comma-separated: tiny, small, medium, large")
    ap.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench-reasoning")
    ap.add_argument("--samples", type=int, default=20, help="start entities per trace kind")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per start entity")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            previous = {r["scale"]: r for r in json.loads(RESULTS.read_text())["runs"]}
        except (ValueError, KeyError):
            previous = {}
    for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
        previous[scale] = run_scale(scale, args.workdir, args.samples, args.reps)
        previous[scale]["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    order = {"tiny": 0, "small": 1, "medium": 2, "large": 3}
    runs = sorted(previous.values(), key=lambda r: order.get(r["scale"], 9))
    table = Table("scale", "entities", "analysis", "n", "p50 ms", "p95 ms", "cpu p50 ms", "cpu p95 ms")
    for r in runs:
        for name, row in r["analyses"].items():
            table.add_row(r["scale"], f"{r['entities']:,}", name, str(row["n"]), f"{row['p50_ms']:.2f}",
                          f"{row['p95_ms']:.2f}", f"{row.get('cpu_p50_ms', float('nan')):.2f}",
                          f"{row.get('cpu_p95_ms', float('nan')):.2f}")
    console.print(table)
    for r in runs:
        console.print(f"{r['scale']}: trace_hold p95 / floor p95 = {r['trace_hold_p95_over_floor_p95']}; "
                      f"building its result models alone: {r.get('models_hold_p95_over_floor_p95')} x the floor")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": {"python": platform.python_version(), "cpu": platform.processor()
                                               or platform.machine()}, "runs": runs}, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
