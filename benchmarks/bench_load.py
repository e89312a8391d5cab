"""Load benchmark: generate + validate + load a synthetic plant, against a plain SQLite floor.

For each scale (tiny, small, medium; large with ``--large``) and each phase in its own subprocess,
so that peak RSS is per phase:

- ``generate``: ``graph_loader.generator.generate`` writes the bundle (seed 7)
- ``validate``: ``validate_bundle`` (every check, no store): entities/s and rows/s
- ``load``: ``load_bundle`` into a fresh embedded store, one durable transaction: entities/s,
  relations/s, store size on disk; its CPU time includes the validating process of a pipelined
  load (bundles of 16 MiB and more)
- ``floor``: the same rows (read and JSON-encoded beforehand, untimed) written with a plain SQLite
  ``executemany`` (WAL, synchronous=NORMAL, text primary keys), committed: the speed floor
- ``floor_rj``: the same with a rollback journal instead of the WAL, as a first load into an empty
  store writes (``store.bulk_transaction``): the like-for-like floor of such a load
- ``write_only``: the load's writer alone: the checked columns a pipelined first load's second
  process sends (made beforehand, untimed, by ``check_bundle_into``) replayed into a fresh store in
  one bulk transaction, commit and index build included: what the load costs with its checks free

Usage::

    .venv/bin/python -m benchmarks.bench_load                    # tiny, small, medium
    .venv/bin/python -m benchmarks.bench_load --large            # also large (~1M entities)
    .venv/bin/python -m benchmarks.bench_load --scales tiny small

Prints a table and writes ``benchmarks/results/load.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
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

from benchmarks.procstats import PhaseClock  # noqa: E402

PHASES = ("generate", "validate", "load", "floor", "floor_rj", "write_only")
SEED = 7


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# -- phases (each runs in a child process) ----------------------------------------------------


def phase_generate(scale: str, work: Path) -> dict[str, Any]:
    from graph_loader.generator import generate, named_spec

    bundle = work / "bundle"
    t = time.perf_counter()
    report = generate(named_spec(scale), SEED, bundle)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "entities": report.entities, "relations": report.relations,
            "bundle_mb": _dir_mb(bundle)}


def phase_validate(scale: str, work: Path) -> dict[str, Any]:
    from graph_loader.loader import validate_bundle

    t, c = time.perf_counter(), time.process_time()
    report = validate_bundle(work / "bundle")
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    if not report.valid:
        raise SystemExit("the generated bundle is invalid:\n" + "\n".join(report.error_lines()[:20]))
    return {"seconds": seconds, "cpu_seconds": cpu, "entities": report.nodes, "relations": report.edges,
            "entities_per_s": report.nodes / seconds, "rows_per_s": (report.nodes + report.edges) / seconds}


def phase_load(scale: str, work: Path) -> dict[str, Any]:
    from graph_loader.loader import load_bundle
    from store.factory import open_store

    path = work / "store"
    shutil.rmtree(path, ignore_errors=True)
    store = open_store("embedded", path)
    try:
        with PhaseClock() as clock:
            report = load_bundle(store, work / "bundle")
        seconds = clock.seconds
        counts = store.counts()
    finally:
        store.close()
    return {"seconds": seconds, "cpu_seconds": clock.cpu, "cpu_seconds_writer": clock.cpu_self,
            "cpu_seconds_validator": clock.cpu_children, "peak_rss_validator_mb": clock.children_peak_rss_mb,
            "entities": report.nodes, "relations": report.edges,
            "entities_per_s": report.nodes / seconds, "relations_per_s": report.edges / seconds,
            "stored_nodes": counts.nodes, "stored_edges": counts.edges, "store_mb": _dir_mb(path)}


def phase_floor(scale: str, work: Path, journal: str = "WAL") -> dict[str, Any]:
    """A plain executemany of the same rows: what writing them costs with nothing else."""
    from graph_loader.bundle import FileKind, open_bundle, typed_batches
    from graph_loader.errors import ErrorCollector

    bundle = open_bundle(work / "bundle")
    errors = ErrorCollector()
    nodes: list[tuple[Any, ...]] = []
    edges: list[tuple[Any, ...]] = []
    for bf in bundle.files:
        if bf.kind not in (FileKind.NODES, FileKind.EDGES):
            continue
        for batch in typed_batches(bf, errors):
            if bf.kind == FileKind.NODES:
                for n in batch.schema.to_nodes(batch.typed):
                    nodes.append((n.id, n.cls, n.name, n.plant, n.source_system, json.dumps(n.props)))
            else:
                for e in batch.schema.to_edges(batch.typed):
                    edges.append((e.src, e.rel, e.dst, e.source_system, json.dumps(e.props)))
    path = work / "floor.sqlite"
    for p in work.glob("floor.sqlite*"):
        p.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, cls TEXT, name TEXT, plant TEXT, src TEXT, props TEXT)")
    conn.execute("CREATE TABLE edges (src TEXT, rel TEXT, dst TEXT, sys TEXT, props TEXT, "
                 "PRIMARY KEY (src, rel, dst))")
    t, c = time.perf_counter(), time.process_time()
    conn.execute("BEGIN")
    conn.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?)", nodes)
    conn.executemany("INSERT OR REPLACE INTO edges VALUES (?, ?, ?, ?, ?)", edges)
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    conn.close()
    db_mb = sum(p.stat().st_size for p in work.glob("floor.sqlite*")) / 1e6
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": len(nodes) + len(edges), "db_mb": db_mb}


class _Recorder:
    """A row sink that keeps the calls the checks make, to replay them into a store later."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def nodes(self, cls: str, rows: Any) -> None:
        self.calls.append(("nodes", cls, rows))

    def edges(self, rel: str, rows: Any) -> None:
        self.calls.append(("edges", rel, rows))

    def prepared_nodes(self, cls: str, prepared: Any) -> None:
        self.calls.append(("prepared_nodes", cls, prepared))

    def prepared_edges(self, rel: str, prepared: Any) -> None:
        self.calls.append(("prepared_edges", rel, prepared))

    def deletions(self, edges: list[tuple[str, str, str]], nodes: list[str]) -> None:
        raise SystemExit("a generated bundle has no deletions")

    def progress(self, done: int, total: int) -> None:
        pass


def phase_write_only(scale: str, work: Path) -> dict[str, Any]:
    """The writer of a first load with its checks done beforehand: the part no checking speed-up
    can remove from the load's wall time."""
    import gc

    from graph_loader.loader import check_bundle_into
    from graph_loader.pipeline import TxSink
    from store.factory import open_store

    path = work / "store-write-only"
    shutil.rmtree(path, ignore_errors=True)
    store = open_store("embedded", path)
    try:
        recorder = _Recorder()
        check_bundle_into(work / "bundle", recorder, store.column_preparer())  # raises if invalid
        gc.disable()  # as the load's writer runs
        try:
            t, c = time.perf_counter(), time.process_time()
            with store.bulk_transaction() as tx:
                sink = TxSink(tx)
                for call, name, rows in recorder.calls:
                    getattr(sink, call)(name, rows)
                rows_s = time.perf_counter() - t
            seconds, cpu = time.perf_counter() - t, time.process_time() - c
        finally:
            gc.enable()
        counts = store.counts()
    finally:
        store.close()
    shutil.rmtree(path, ignore_errors=True)
    return {"seconds": seconds, "cpu_seconds": cpu, "rows_seconds": rows_s, "entities": counts.nodes,
            "relations": counts.edges}


def child(phase: str, scale: str, work: Path) -> None:
    phases: dict[str, Callable[[str, Path], dict[str, Any]]] = {
        "generate": phase_generate, "validate": phase_validate, "load": phase_load, "floor": phase_floor,
        "floor_rj": partial(phase_floor, journal="DELETE"), "write_only": phase_write_only}
    fn = phases[phase]
    out = fn(scale, work)
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def run_child(phase: str, scale: str, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_load", "--child", phase, "--scale", scale, "--work", str(work)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"{phase} at {scale} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- parent -----------------------------------------------------------------------------------


def summarise(scale: str, r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    g, v, ld, fl = r["generate"], r["validate"], r["load"], r["floor"]
    return {
        "scale": scale,
        "entities": g["entities"],
        "relations": g["relations"],
        "bundle_mb": round(g["bundle_mb"], 1),
        "generate_s": round(g["seconds"], 2),
        "validate_s": round(v["seconds"], 2),
        "validate_entities_per_s": round(v["entities_per_s"]),
        "validate_rows_per_s": round(v["rows_per_s"]),
        "load_s": round(ld["seconds"], 2),
        "load_entities_per_s": round(ld["entities_per_s"]),
        "load_relations_per_s": round(ld["relations_per_s"]),
        "floor_s": round(fl["seconds"], 2),
        "load_vs_floor": round(fl["seconds"] / ld["seconds"], 3) if ld["seconds"] else None,
        "floor_rj_s": round(r["floor_rj"]["seconds"], 2),
        "load_vs_floor_rj": round(r["floor_rj"]["seconds"] / ld["seconds"], 3) if ld["seconds"] else None,
        "write_only_s": round(r["write_only"]["seconds"], 2),
        "write_only_rows_s": round(r["write_only"]["rows_seconds"], 2),
        "write_only_entities_per_s": round(g["entities"] / r["write_only"]["seconds"]),
        # CPU seconds of the process (user + sys): on a shared machine wall time mostly measures
        # the queue for a core, CPU time what the work itself costs
        "validate_cpu_s": round(v["cpu_seconds"], 2),
        "validate_cpu_rows_per_s": round((v["entities"] + v["relations"]) / v["cpu_seconds"]),
        # writer and validating processes together (the validator is only there for big bundles)
        "load_cpu_s": round(ld["cpu_seconds"], 2),
        "load_cpu_writer_s": round(ld.get("cpu_seconds_writer", ld["cpu_seconds"]), 2),
        "load_cpu_validator_s": round(ld.get("cpu_seconds_validator", 0.0), 2),
        "peak_rss_load_validator_mb": round(ld.get("peak_rss_validator_mb", 0.0)),
        "load_cpu_entities_per_s": round(ld["entities"] / ld["cpu_seconds"]),
        "floor_cpu_s": round(fl["cpu_seconds"], 2),
        "load_vs_floor_cpu": round(fl["cpu_seconds"] / ld["cpu_seconds"], 3) if ld["cpu_seconds"] else None,
        "peak_rss_validate_mb": round(v["peak_rss_mb"]),
        "peak_rss_load_mb": round(ld["peak_rss_mb"]),
        "peak_rss_floor_mb": round(fl["peak_rss_mb"]),
        "store_mb": round(ld["store_mb"], 1),
        "stored_nodes": ld["stored_nodes"],
        "stored_edges": ld["stored_edges"],
    }


COLUMNS = [
    ("scale", "scale"), ("entities", "entities"), ("relations", "relations"), ("generate_s", "generate s"),
    ("validate_s", "validate s"), ("validate_entities_per_s", "validate ent/s"), ("load_s", "load s"),
    ("load_entities_per_s", "load ent/s"), ("load_relations_per_s", "load rel/s"), ("floor_s", "floor s"),
    ("load_vs_floor", "load / floor speed"), ("floor_rj_s", "floor (rollback journal) s"),
    ("load_vs_floor_rj", "load / that floor"), ("write_only_s", "writer alone s"),
    ("write_only_entities_per_s", "writer alone ent/s"), ("validate_cpu_s", "validate CPU s"),
    ("validate_cpu_rows_per_s", "validate rows/CPU-s"), ("load_cpu_s", "load CPU s"),
    ("load_cpu_entities_per_s", "load ent/CPU-s"), ("floor_cpu_s", "floor CPU s"),
    ("load_vs_floor_cpu", "load / floor CPU"), ("load_cpu_validator_s", "of it validator CPU s"),
    ("peak_rss_load_mb", "peak RSS load MB"), ("peak_rss_load_validator_mb", "peak RSS validator MB"),
    ("peak_rss_validate_mb", "peak RSS validate MB"), ("store_mb", "store MB"), ("bundle_mb", "bundle MB"),
    ("load_average_1min", "machine load avg"),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    sep = "| " + " | ".join("---" for _ in COLUMNS) + " |"
    body = []
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            v = row.get(key, "?")
            cells.append(f"{v:,}" if isinstance(v, int) else (f"{v:.2f}" if isinstance(v, float) else str(v)))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate + validate + load benchmark with a SQLite floor.")
    ap.add_argument("--scales", nargs="+", default=["tiny", "small", "medium"],
                    choices=["tiny", "small", "medium", "large"])
    ap.add_argument("--large", action="store_true", help="also run the large scale (~1M entities)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "load.json")
    ap.add_argument("--keep", type=Path, default=None, help="keep bundles and stores under this folder")
    ap.add_argument("--child", choices=PHASES, help=argparse.SUPPRESS)
    ap.add_argument("--scale", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.scale, args.work)
        return

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    scales = list(dict.fromkeys([*args.scales, *(["large"] if args.large else [])]))
    base = args.keep if args.keep is not None else Path(tempfile.mkdtemp(prefix="bench-load-"))
    console = Console(width=max(200, Console().width))
    rows: list[dict[str, Any]] = []
    try:
        with Progress(TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("load benchmark", total=len(scales) * len(PHASES))
            for scale in scales:
                work = base / scale
                work.mkdir(parents=True, exist_ok=True)
                results: dict[str, dict[str, Any]] = {}
                for phase in PHASES:
                    bar.update(task, description=f"{scale}: {phase}")
                    results[phase] = run_child(phase, scale, work)
                    bar.advance(task)
                row = summarise(scale, results)
                row["load_average_1min"] = round(os.getloadavg()[0], 1)  # how busy the machine was
                rows.append(row)
                if args.keep is None:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    table = Table(title="plantgraph load benchmark (generate + validate + load vs SQLite executemany floor)")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for row in rows:
        table.add_row(*[f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k, _ in COLUMNS])
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # keep the rows of scales not run this time (e.g. large, run once), replace the others
    order = ["tiny", "small", "medium", "large"]
    if args.out.exists():
        old_rows = {r["scale"]: r for r in json.loads(args.out.read_text()).get("rows", [])}
        old_rows.update({r["scale"]: r for r in rows})
        rows = [old_rows[s] for s in order if s in old_rows]
    for r in rows:
        r.setdefault("load_average_1min", None)
    payload = {
        "benchmark": "load",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": os.getloadavg()},
        "seed": SEED,
        "rows": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(markdown(rows), flush=True)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
