"""API benchmark on loopback: requests/s, p50/p99 latency and server CPU per request.

Starts ``plantgraph serve`` (uvicorn, ``--workers`` processes) on 127.0.0.1 over a generated plant
(seed 7, cached under ``--workdir``), then drives it with a bounded asyncio load generator
(``--concurrency`` keep-alive connections, one request in flight on each) for ``--duration`` seconds
per endpoint. The generator writes prepared HTTP/1.1 requests on raw sockets and reads each response
by its Content-Length: a full HTTP client costs about as much CPU per request as the server's own
overhead, and it runs on the same 2 cores (its own CPU per request is reported: ~0.1-0.15 ms, a
twentieth of a computed trace's server CPU). The connections are spread evenly over the workers
(see :func:`connect_balanced`), since a connection stays with the worker that accepted it.

- ``trace``: ``GET /v1/trace/hold/{id}`` rotating over (up to 200 of) the plant's quality holds
- ``trace_scoped``: the same with a key scoped to one plant (redaction on)
- ``ask``: ``POST /v1/ask`` rotating over hold/lot questions (degraded: no vector index is built, so
  this measures linking, routing, the analysis and composition, not the embedding model)
- ``entity``: ``GET /v1/entities/{id}``

Every request goes through authentication and the audit log (one SQLite append per call). Each scale
runs in two modes: ``computed`` (the response cache off: every request runs its analysis) and
``cached`` (the default: a repeated request on an unchanged graph is served from the cache). The
split table times the analysis alone in this process (same holds, same questions) next to the
server's CPU per computed request: the difference is the API's own cost.

Usage::

    .venv/bin/python -m benchmarks.bench_api                       # medium
    .venv/bin/python -m benchmarks.bench_api --scales small,medium --duration 5

Prints tables and writes ``benchmarks/results/api.json`` (earlier runs at other scales are kept).
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from api.keys import KeyStore  # noqa: E402
from graph_loader.generator import generate, named_spec  # noqa: E402
from graph_loader.loader import load_bundle  # noqa: E402
from store.base import GraphStore  # noqa: E402
from store.factory import open_store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "api.json"
MODES = {"computed": "0", "cached": None}  # PLANTGRAPH_RESULT_CACHE_MB per mode (None: the default)
console = Console()


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


def get(path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode()


def post(path: str, key: str, doc: Any) -> bytes:
    data = json.dumps(doc).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One request on a keep-alive connection; returns the status after reading the whole body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    await reader.readexactly(length)
    return status


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def serving_processes(proc: psutil.Process, port: int) -> list[psutil.Process]:
    """The processes that accept connections on ``port``: uvicorn's workers (its children that
    listen), or the server itself when it runs a single worker."""
    listening: list[psutil.Process] = []
    for p in proc.children(recursive=True):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in p.net_connections(kind="tcp")):
                listening.append(p)
        except psutil.NoSuchProcess:
            pass
    return listening or [proc]


def _owner(workers: list[psutil.Process], client_port: int) -> int | None:
    """The worker holding the server side of the connection from ``client_port``, once accepted."""
    for w in workers:
        try:
            if any(c.raddr and c.raddr.port == client_port for c in w.net_connections(kind="tcp")):
                return w.pid
        except psutil.NoSuchProcess:
            pass
    return None


async def connect_balanced(port: int, concurrency: int, workers: list[psutil.Process],
                           attempts: int = 200) -> tuple[list[Conn], list[int]]:
    """``concurrency`` keep-alive connections spread evenly over the worker processes.

    A connection stays with the worker that accepted it, and with a handful of connections opened
    at once the kernel often hands all of them to one worker: the other core then idles and the
    run measures one worker (this halved the computed figures before). So each new connection is
    kept only if its worker holds fewer than its share, else closed and opened again (at most
    ``attempts`` times; after that the spread is what it is and is reported). Returns the
    connections and the number each worker holds."""
    share = -(-concurrency // len(workers))
    held = {w.pid: 0 for w in workers}
    conns: list[Conn] = []
    tries = 0
    while len(conns) < concurrency:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client_port = int(writer.get_extra_info("sockname")[1])
        pid = None
        for _ in range(300):  # until a worker has accepted it (idle workers do so at once)
            pid = _owner(workers, client_port)
            if pid is not None:
                break
            await asyncio.sleep(0.01)
        tries += 1
        if pid is not None and held[pid] >= share and tries < attempts:
            writer.close()
            continue
        if pid is not None:
            held[pid] += 1
        conns.append((reader, writer))
    return conns, sorted(held.values(), reverse=True)


async def warm(conns: list[Conn], requests: list[bytes]) -> None:
    """Every distinct request once on each connection: a connection stays with one worker process,
    so each worker computes (and, in cached mode, keeps) every response before the timed run."""

    async def walk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for r in requests:
            await exchange(reader, writer, r)

    await asyncio.gather(*(walk(r, w) for r, w in conns))


async def drive(conns: list[Conn], requests: list[bytes], duration: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: dict[int, int] = {}
    counter = 0
    stop = time.perf_counter() + duration

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        while time.perf_counter() < stop:
            i = counter
            counter += 1
            t = time.perf_counter()
            status = await exchange(reader, writer, requests[i % len(requests)])
            lat.append((time.perf_counter() - t) * 1000)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    wall = time.perf_counter() - t0
    return {"requests": len(lat), "errors": sum(errors.values()), "error_statuses": errors,
            "rps": round(len(lat) / wall, 1),
            "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2),
            "concurrency": len(conns), "seconds": round(wall, 2)}


async def measure(port: int, requests: list[bytes], duration: float, concurrency: int,
                  server: psutil.Process) -> dict[str, Any]:
    """Balanced connections, a warm-up on them, then the timed run with the server's CPU per
    request (and per process), and this load generator's own CPU per request."""
    conns, spread = await connect_balanced(port, concurrency, serving_processes(server, port))
    try:
        await warm(conns, requests)
        before, client = worker_cpu(server), time.process_time()
        r = await drive(conns, requests, duration)
        client, after = time.process_time() - client, worker_cpu(server)
    finally:
        for _, w in conns:
            w.close()
    n = max(r["requests"], 1)
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    r["server_cpu_ms"] = round(sum(spent.values()) * 1000 / n, 2)
    r["client_cpu_ms"] = round(client * 1000 / n, 3)
    r["connections_per_worker"] = spread
    r["worker_cpu_s"] = sorted((round(v, 2) for v in spent.values() if v >= 0.005), reverse=True)
    return r


def server_cpu(proc: psutil.Process) -> float:
    """CPU seconds of the server and its worker processes so far."""
    return sum(worker_cpu(proc).values())


def worker_cpu(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds so far per process of the server (the supervisor and each worker)."""
    out: dict[int, float] = {}
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


@dataclass
class Plant:
    store_dir: Path
    now: str
    holds: list[str]
    scoped_holds: list[str]
    plant: str
    lots: list[str]
    entities: int
    relations: int

    @property
    def questions(self) -> list[str]:
        return [f"Lot {x} is on hold. Which customers are affected?" for x in self.lots[:50]]


def plant_of(scale: str, workdir: Path) -> Plant:
    bundle, store_dir = prepare(scale, workdir)
    truth = json.loads((bundle / "truth.json").read_text())
    st = open_store("embedded", store_dir)
    try:
        holds = [n.id for n in st.find_nodes("QualityHold", limit=200)]
        hold_plant = {n.id: n.plant for n in st.get_nodes(holds).values()}
        lots = [n.id for n in st.find_nodes("Lot", limit=200)]
        counts = st.counts()
    finally:
        st.close()
    plant = next(p for p in hold_plant.values() if p)
    return Plant(store_dir, truth["now"], holds, [h for h in holds if hold_plant[h] == plant], plant, lots,
                 counts.nodes, counts.edges)


def analysis_cpu(pl: Plant) -> dict[str, float]:
    """CPU ms per call of the analysis alone (trace_hold; the degraded copilot's ask), in this
    process, after one warm-up pass: the part of a request the API does not own. Timed with the
    collector set as in a serving process (``api.app.tune_gc``), so the split compares like with like."""
    import gc

    from api.app import tune_gc
    from reasoning.rag.copilot import Copilot
    from reasoning.service import Analyses

    st: GraphStore = open_store("embedded", pl.store_dir)
    out: dict[str, float] = {}
    threshold = gc.get_threshold()
    tune_gc()
    try:
        a = Analyses(st, now=datetime.fromisoformat(pl.now))
        cp = Copilot(st, analyses=a, index=None, index_error="benchmark: no vector index")
        jobs: dict[str, tuple[list[str], Callable[[str], Any]]] = {
            "trace": (pl.holds, a.trace_hold), "trace_scoped": (pl.scoped_holds, a.trace_hold),
            "ask": (pl.questions, cp.ask)}
        for name, (items, fn) in jobs.items():
            for x in items:
                fn(x)
            t = time.process_time()
            for x in items:
                fn(x)
            out[name] = round((time.process_time() - t) * 1000 / len(items), 2)
    finally:
        gc.set_threshold(*threshold)
        st.close()
    return out


def run_mode(pl: Plant, mode: str, duration: float, concurrency: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="plantgraph-bench-api-") as tmp:
        data = Path(tmp)
        ks = KeyStore(data / "keys.sqlite")
        key = ks.create("bench", "analyst", "*").key
        scoped = ks.create("bench-scoped", "analyst", pl.plant).key
        ks.close()
        env = {**os.environ, "PLANTGRAPH_DATA": str(data), "PLANTGRAPH_STORE": str(pl.store_dir),
               "PLANTGRAPH_NOW": pl.now, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYTHONPATH": str(ROOT)}
        cache_mb = MODES[mode]
        if cache_mb is not None:
            env["PLANTGRAPH_RESULT_CACHE_MB"] = cache_mb
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "plantgraph", "serve", "--port", str(port),
                                 "--workers", str(workers), "--log-level", "warning",
                                 "--no-access-log"], env=env, cwd=ROOT,
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
            plan: dict[str, list[bytes]] = {
                "trace": [get(f"/v1/trace/hold/{h}", key) for h in pl.holds],
                "trace_scoped": [get(f"/v1/trace/hold/{h}", scoped) for h in pl.scoped_holds],
                "ask": [post("/v1/ask", key, {"question": q}) for q in pl.questions],
                "entity": [get(f"/v1/entities/{x}", key) for x in pl.lots],
            }
            ps = psutil.Process(proc.pid)
            out: dict[str, Any] = {}
            with Progress(console=console, transient=True) as prog:
                task = prog.add_task(f"{mode}: driving the API", total=len(plan))
                for name, reqs in plan.items():
                    r = asyncio.run(measure(port, reqs, duration, concurrency, ps))
                    r["load_average_1m"] = round(os.getloadavg()[0], 2)
                    out[name] = r
                    prog.advance(task)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return out


def run_scale(scale: str, workdir: Path, duration: float, concurrency: int, workers: int,
              modes: list[str]) -> dict[str, Any]:
    pl = plant_of(scale, workdir)
    split = analysis_cpu(pl)
    result: dict[str, Any] = {"scale": scale, "entities": pl.entities, "relations": pl.relations,
                              "workers": workers, "analysis_cpu_ms": split, "modes": {}}
    for mode in modes:
        result["modes"][mode] = run_mode(pl, mode, duration, concurrency, workers)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="medium", help="comma-separated: tiny, small, medium, large")
    ap.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench-api")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    ap.add_argument("--concurrency", type=int, default=4, help="connections, one request in flight on each")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--modes", default="computed,cached", help="computed (cache off), cached (default server)")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"--modes: unknown {', '.join(bad)}; expected some of {', '.join(MODES)}")
    previous: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = {r["scale"]: r for r in previous.get("runs", []) if "modes" in r}
    table = Table("scale", "mode", "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "server CPU ms/req",
                  "client CPU ms/req", "conns/worker", "errors", "load 1m",
                  title=f"API on loopback ({args.workers} worker(s), {args.concurrency} in flight)")
    split = Table("scale", "endpoint", "analysis CPU ms", "server CPU ms/req (computed)", "API overhead ms",
                  title="where a computed request's CPU goes")
    for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
        run = run_scale(scale, args.workdir, args.duration, args.concurrency, args.workers, modes)
        runs[scale] = run
        for mode, endpoints in run["modes"].items():
            for name, r in endpoints.items():
                table.add_row(scale, mode, name, str(r["requests"]), f"{r['rps']:.1f}", f"{r['p50_ms']:.1f}",
                              f"{r['p99_ms']:.1f}", f"{r['server_cpu_ms']:.2f}", f"{r['client_cpu_ms']:.2f}",
                              "/".join(map(str, r["connections_per_worker"])),
                              str(r["errors"]) + (f" {r['error_statuses']}" if r["errors"] else ""),
                              f"{r['load_average_1m']:.1f}")
        computed = run["modes"].get("computed", {})
        for name, ms in run["analysis_cpu_ms"].items():
            if name in computed:
                srv = computed[name]["server_cpu_ms"]
                split.add_row(scale, name, f"{ms:.2f}", f"{srv:.2f}", f"{srv - ms:.2f}")
    console.print(table)
    console.print(split)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.machine(), "cores": os.cpu_count()},
        "runs": sorted(runs.values(), key=lambda r: r["entities"]),
    }, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
