"""Interop benchmark: B2MML import and table import, each beside the bundle loader on the same data.

- ``b2mml``: the generated plant (seed 7) converted to B2MML V0701 messages (untimed), then
  ``import_b2mml`` into a fresh embedded store: messages/s, entities/s, relations/s, peak RSS.
- ``bundle``: the same plant's bundle with ``load_bundle`` into a fresh store, same run.
- ``table``: a lot-master CSV of N rows (default 1,000,000; ``;``-delimited, decimal commas, a
  status code map and a date format, one Lot per row, distinct batch ids) with ``import_table``:
  rows/s; beside it ``bundle_rows``: the same lots as a bundle ``Lot.csv`` loaded with
  ``load_bundle``.

Each phase runs in its own subprocess so that the peak RSS is the phase's own. Every phase records
wall seconds and CPU seconds (``time.process_time`` of the phase's process plus the processes it
started: big imports read and check in a second process while the first writes).

Usage::

    .venv/bin/python -m benchmarks.bench_interop                       # tiny + small, 1M rows
    .venv/bin/python -m benchmarks.bench_interop --scales small medium --rows 100000

Prints a table and writes ``benchmarks/results/interop.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.procstats import PhaseClock, peak_rss_mb  # noqa: E402

SEED = 7
MAPPING = """
csv: {delimiter: ";", encoding: utf-8}
defaults: {source_system: ERP, timezone: Europe/Berlin, decimal_comma: true}
entity:
  class: Lot
  id: "LOT-{batch}"
  properties:
    quantity: qty
    unit: {column: uom, map: {KG: kg, L: l}}
    status: {column: status, map: {FREI: released, GESPERRT: on_hold}}
    produced_at: {column: produced, format: "%d.%m.%Y %H:%M"}
"""


def prepare_plant(scale: str, work: Path) -> dict[str, Any]:
    from graph_loader.b2mml.export import bundle_to_b2mml
    from graph_loader.generator import generate, named_spec

    generate(named_spec(scale), SEED, work / "bundle")
    res = bundle_to_b2mml(work / "bundle", work / "b2mml")
    return {"files": res.files}


def phase_b2mml(work: Path) -> dict[str, Any]:
    from graph_loader.b2mml.importer import import_b2mml
    from store.factory import open_store

    store = open_store("embedded", work / "store-b2mml")
    with PhaseClock() as clock:
        rep = import_b2mml([work / "b2mml"], store)
    seconds, cpu = clock.seconds, clock.cpu
    store.close()
    if not rep.written:
        raise SystemExit("B2MML import failed: " + "; ".join(str(e) for e in rep.errors[:5]))
    return {**clock.figures(), "messages": rep.messages, "entities": rep.entities,
            "relations": rep.relations, "messages_per_s": rep.messages / seconds,
            "entities_per_s": rep.entities / seconds, "relations_per_s": rep.relations / seconds,
            "messages_per_cpu_s": rep.messages / cpu, "entities_per_cpu_s": rep.entities / cpu,
            "relations_per_cpu_s": rep.relations / cpu}


def phase_bundle(work: Path) -> dict[str, Any]:
    from graph_loader.loader import load_bundle
    from store.factory import open_store

    store = open_store("embedded", work / "store-bundle")
    with PhaseClock() as clock:
        rep = load_bundle(store, work / "bundle")
    seconds, cpu = clock.seconds, clock.cpu
    store.close()
    return {**clock.figures(), "entities": rep.nodes, "relations": rep.edges,
            "entities_per_s": rep.nodes / seconds, "relations_per_s": rep.edges / seconds,
            "entities_per_cpu_s": rep.nodes / cpu, "relations_per_cpu_s": rep.edges / cpu}


def prepare_table(rows: int, work: Path) -> dict[str, Any]:
    """The lot master CSV and the same lots as a bundle (Lot.csv + manifest)."""
    rnd = random.Random(SEED)
    (work / "lots-bundle").mkdir(parents=True, exist_ok=True)
    with (work / "lots.csv").open("w", encoding="utf-8") as fh, \
            (work / "lots-bundle" / "Lot.csv").open("w", encoding="utf-8") as bf:
        fh.write("batch;qty;uom;status;produced\n")
        bf.write("id,name,source_system,plant,valid_from,valid_to,quantity,unit,status,produced_at,expiry\n")
        for i in range(rows):
            q = rnd.randint(1, 2_000_000) / 100
            day, minute = 1 + i % 28, i % 1440
            status = "FREI" if i % 7 else "GESPERRT"
            fh.write(f"{i:07d};{str(q).replace('.', ',')};KG;{status};"
                     f"{day:02d}.03.2026 {minute // 60:02d}:{minute % 60:02d}\n")
            bf.write(f"LOT-{i:07d},,ERP,,,,{q},kg,{'released' if i % 7 else 'on_hold'},"
                     f"2026-03-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00+01:00,\n")
    (work / "lots-bundle" / "manifest.json").write_text(json.dumps({
        "format": "plantgraph-bundle", "format_version": "1.0", "source_systems": ["ERP"], "plants": [],
        "exported_at": "2026-03-01T00:00:00+00:00"}), encoding="utf-8")
    (work / "lots.yaml").write_text(MAPPING, encoding="utf-8")
    return {"rows": rows}


def phase_table(work: Path) -> dict[str, Any]:
    from graph_loader.tables import import_table, load_mapping
    from store.factory import open_store

    store = open_store("embedded", work / "store-table")
    with PhaseClock() as clock:
        rep = import_table(work / "lots.csv", load_mapping(work / "lots.yaml"), store)
    seconds, cpu = clock.seconds, clock.cpu
    store.close()
    if not rep.written:
        raise SystemExit("table import failed: " + "; ".join(str(e) for e in rep.errors[:5]))
    return {**clock.figures(), "rows": rep.rows_read, "rows_per_s": rep.rows_read / seconds,
            "rows_per_cpu_s": rep.rows_read / cpu}


def phase_bundle_rows(work: Path) -> dict[str, Any]:
    from graph_loader.loader import load_bundle
    from store.factory import open_store

    store = open_store("embedded", work / "store-lots")
    with PhaseClock() as clock:
        rep = load_bundle(store, work / "lots-bundle")
    seconds, cpu = clock.seconds, clock.cpu
    store.close()
    return {**clock.figures(), "rows": rep.nodes, "rows_per_s": rep.nodes / seconds,
            "rows_per_cpu_s": rep.nodes / cpu}


PHASES = {"b2mml": phase_b2mml, "bundle": phase_bundle, "table": phase_table, "bundle_rows": phase_bundle_rows}


def _rss(phase: dict[str, Any]) -> str:
    """Peak RSS of the phase's process, and of its second process when it started one."""
    second = phase.get("peak_rss_children_mb", 0.0)
    return f"{phase['peak_rss_mb']:.0f}" + (f" (+{second:.0f})" if second else "")


def _child(phase: str, work: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_interop", "--phase", phase, "--work", str(work)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", nargs="+", default=["tiny", "small"])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the lot-master CSV (0: no table run)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "interop.json")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        res = PHASES[args.phase](args.work)
        res["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(res))
        return

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    results: dict[str, Any] = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                           "load_avg_1m": os.getloadavg()[0]}, "b2mml": [], "table": None}
    steps = len(args.scales) * 3 + (3 if args.rows > 0 else 0)
    with tempfile.TemporaryDirectory(prefix="pg-bench-interop-") as tmp, Progress() as bar:
        task = bar.add_task("interop benchmark", total=steps)
        for scale in args.scales:
            work = Path(tmp) / scale
            work.mkdir()
            prep = prepare_plant(scale, work)
            bar.advance(task)
            b2 = _child("b2mml", work)
            bar.advance(task)
            bl = _child("bundle", work)
            bar.advance(task)
            results["b2mml"].append({"scale": scale, "files": prep["files"], "b2mml": b2, "bundle": bl,
                                     "load_avg_1m": os.getloadavg()[0]})
        if args.rows > 0:
            work = Path(tmp) / "table"
            work.mkdir()
            prepare_table(args.rows, work)
            bar.advance(task)
            tb = _child("table", work)
            bar.advance(task)
            br = _child("bundle_rows", work)
            bar.advance(task)
            results["table"] = {"rows": args.rows, "table": tb, "bundle": br, "load_avg_1m": os.getloadavg()[0]}
        # before the temporary folder goes (deleting ~100k message files takes minutes)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")

    console = Console(width=max(200, Console().width))
    t1 = Table(title="B2MML import vs bundle load (same plant, same run; CPU of all processes of a phase)")
    for col in ("scale", "messages", "entities", "relations", "b2mml wall s", "b2mml ent/s", "b2mml CPU s",
                "b2mml ent/CPU-s", "bundle wall s", "bundle ent/s", "bundle CPU s", "bundle ent/CPU-s",
                "RSS b2mml MB (+2nd)", "RSS bundle MB (+2nd)"):
        t1.add_column(col, justify="right")
    for r in results["b2mml"]:
        b2, bl = r["b2mml"], r["bundle"]
        t1.add_row(r["scale"], f"{b2['messages']:,}", f"{b2['entities']:,}", f"{b2['relations']:,}",
                   f"{b2['seconds']:.2f}", f"{b2['entities_per_s']:,.0f}", f"{b2['cpu_seconds']:.2f}",
                   f"{b2['entities_per_cpu_s']:,.0f}", f"{bl['seconds']:.2f}", f"{bl['entities_per_s']:,.0f}",
                   f"{bl['cpu_seconds']:.2f}", f"{bl['entities_per_cpu_s']:,.0f}", _rss(b2), _rss(bl))
    console.print(t1)
    t = results["table"]
    if t is not None:
        t2 = Table(title=f"table import vs bundle load ({t['rows']:,} lot rows; CPU of all processes of a phase)")
        for col in ("table wall s", "table rows/s", "table CPU s", "table rows/CPU-s", "bundle wall s",
                    "bundle rows/s", "bundle CPU s", "bundle rows/CPU-s", "RSS table MB (+2nd)",
                    "RSS bundle MB (+2nd)"):
            t2.add_column(col, justify="right")
        tb, br = t["table"], t["bundle"]
        t2.add_row(f"{tb['seconds']:.2f}", f"{tb['rows_per_s']:,.0f}", f"{tb['cpu_seconds']:.2f}",
                   f"{tb['rows_per_cpu_s']:,.0f}", f"{br['seconds']:.2f}", f"{br['rows_per_s']:,.0f}",
                   f"{br['cpu_seconds']:.2f}", f"{br['rows_per_cpu_s']:,.0f}", _rss(tb), _rss(br))
        console.print(t2)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
