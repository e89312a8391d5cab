"""API benchmark on loopback: requests/s and p50/p99 latency of trace, ask and entity lookups.

Starts ``plantgraph serve`` (uvicorn, one worker) on 127.0.0.1 over a generated plant (seed 7,
cached under ``--workdir``), then drives it with a bounded asyncio load generator (httpx, keep-alive,
``--concurrency`` requests in flight) for ``--duration`` seconds per endpoint:

- ``trace``: ``GET /v1/trace/hold/{id}`` rotating over the plant's quality holds
- ``trace_scoped``: the same with a key scoped to one plant (redaction on)
- ``ask``: ``POST /v1/ask`` rotating over hold/lot questions (degraded: no vector index is built, so
  this measures linking, routing, the analysis and composition, not the embedding model)
- ``entity``: ``GET /v1/entities/{id}``

Every request goes through authentication and the audit log (one SQLite append per call). The load
generator runs on the same 2 cores as the server, so the figures are a floor.

Usage::

    .venv/bin/python -m benchmarks.bench_api                       # medium
    .venv/bin/python -m benchmarks.bench_api --scales small --duration 5

Prints a table and writes ``benchmarks/results/api.json`` (earlier runs at other scales are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from api.keys import KeyStore  # noqa: E402
from graph_loader.generator import generate, named_spec  # noqa: E402
from graph_loader.loader import load_bundle  # noqa: E402
from store.factory import open_store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "api.json"
console = Console()

Request = Callable[[httpx.AsyncClient, int], Any]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def prepare(scale: str, workdir: Path) -> tuple[Path, Path]:
    bundle, store_dir = workdir / f"{scale}-bundle", workdir / f"{scale}-store"
    if not (bundle / "truth.json").exists():
        console.print(f"generating {scale} plant ...")
        generate(named_spec(scale), 7, bundle)
    marker = store_dir / ".loaded"
    if not marker.exists():
        console.print(f"loading {scale} plant into {store_dir} ...")
        s = open_store("embedded", store_dir)
        try:
            load_bundle(s, bundle)
        finally:
            s.close()
        marker.write_text("ok")
    return bundle, store_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drive(base: str, key: str, make: Request, duration: float, concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    counter = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop:
            i = counter
            counter += 1
            t = time.perf_counter()
            r = await make(client, i)
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"requests": len(lat), "errors": errors, "rps": round(len(lat) / wall, 1),
            "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2),
            "concurrency": concurrency, "seconds": round(wall, 2)}


def run_scale(scale: str, workdir: Path, duration: float, concurrency: int) -> dict[str, Any]:
    bundle, store_dir = prepare(scale, workdir)
    truth = json.loads((bundle / "truth.json").read_text())
    st = open_store("embedded", store_dir)
    holds = [n.id for n in st.find_nodes("QualityHold", limit=200)]
    hold_plant = {n.id: n.plant for n in st.get_nodes(holds).values()}
    lots = [n.id for n in st.find_nodes("Lot", limit=200)]
    counts = st.counts()
    st.close()
    plant = next(p for p in hold_plant.values() if p)
    scoped_holds = [h for h in holds if hold_plant[h] == plant]
    with tempfile.TemporaryDirectory(prefix="plantgraph-bench-api-") as tmp:
        data = Path(tmp)
        ks = KeyStore(data / "keys.sqlite")
        key = ks.create("bench", "analyst", "*").key
        scoped = ks.create("bench-scoped", "analyst", plant).key
        ks.close()
        env = {**os.environ, "PLANTGRAPH_DATA": str(data), "PLANTGRAPH_STORE": str(store_dir),
               "PLANTGRAPH_NOW": truth["now"], "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYTHONPATH": str(ROOT)}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "plantgraph", "serve", "--port", str(port),
                                 "--log-level", "warning"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the API server did not start")
            questions = [f"Lot {x} is on hold. Which customers are affected?" for x in lots[:50]]
            plan: list[tuple[str, str, Request]] = [
                ("trace", key, lambda c, i: c.get(f"/v1/trace/hold/{holds[i % len(holds)]}")),
                ("trace_scoped", scoped, lambda c, i: c.get(f"/v1/trace/hold/{scoped_holds[i % len(scoped_holds)]}")),
                ("ask", key, lambda c, i: c.post("/v1/ask", json={"question": questions[i % len(questions)]})),
                ("entity", key, lambda c, i: c.get(f"/v1/entities/{lots[i % len(lots)]}")),
            ]
            out: dict[str, Any] = {}
            with Progress(console=console, transient=True) as prog:
                task = prog.add_task(f"{scale}: driving the API", total=len(plan))
                for name, k, make in plan:
                    asyncio.run(drive(base, k, make, min(2.0, duration / 4), concurrency))  # warm-up
                    out[name] = asyncio.run(drive(base, k, make, duration, concurrency))
                    prog.advance(task)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"scale": scale, "entities": counts.nodes, "relations": counts.edges, "endpoints": out,
            "load_average_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="medium", help="comma-separated: tiny, small, medium, large")
    ap.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench-api")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    args = ap.parse_args()
    previous: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = {r["scale"]: r for r in previous.get("runs", [])}
    table = Table("scale", "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors", title="API on loopback")
    for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
        run = run_scale(scale, args.workdir, args.duration, args.concurrency)
        runs[scale] = run
        for name, r in run["endpoints"].items():
            table.add_row(scale, name, str(r["requests"]), f"{r['rps']:.1f}", f"{r['p50_ms']:.1f}",
                          f"{r['p99_ms']:.1f}", str(r["errors"]))
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.machine(), "cores": os.cpu_count()},
        "runs": sorted(runs.values(), key=lambda r: r["entities"]),
    }, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
