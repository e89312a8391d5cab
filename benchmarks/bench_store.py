"""Store benchmark: the measurements behind the embedded store's design (docs/store.md).

On one synthetic random graph (N nodes, ~3N directed edges, six relation types, small property
documents) it measures, each in its own subprocess so peak RSS is per contender:

- ``floor``: a plain SQLite ``executemany`` of the same rows (WAL, synchronous=NORMAL, text keys)
- ``embedded-load``: :class:`store.embedded.EmbeddedStore` loading the same records in one
  durable transaction; store size on disk
- ``embedded-open``: reopening that store in a fresh process (open + counts + first trace)
- ``embedded-trace``: 6-hop outgoing ``traverse`` and ``neighbours`` p50/p95 on the reopened store
- ``sql-bfs``: the same BFS as bare SQL on the store file (no record building): the SQL floor
- ``networkx``: a MultiDiGraph with attribute dicts built from the same rows; BFS p50/p95
- ``csr``: scipy CSR adjacency over integer ids; BFS p50/p95

Usage::

    .venv/bin/python -m benchmarks.bench_store --nodes 100000          # medium, ~1 minute
    .venv/bin/python -m benchmarks.bench_store --nodes 1000000         # full size (several minutes)

Prints a table and writes ``benchmarks/results/store.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RELS = ["CONSUMED", "PRODUCED", "DERIVED_FROM", "SHIPPED_TO", "FOR_MATERIAL", "RAN_ON"]
CLASSES = ["Lot", "ProductionOrder", "Material", "Machine", "SalesOrderLine"]
BATCH = 50_000
HOPS = 6


# -- the synthetic graph (deterministic; rebuilt identically in every subprocess) -------------


class Graph:
    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.ids = [f"N{i:08d}" for i in range(n)]
        self.cls = rng.integers(0, len(CLASSES), n)
        m = 3 * n
        src = rng.integers(0, n, m, dtype=np.int64)
        dst = rng.integers(0, n, m, dtype=np.int64)
        rel = rng.integers(0, len(RELS), m, dtype=np.int64)
        keep = src != dst
        key = np.unique((src[keep] * len(RELS) + rel[keep]) * n + dst[keep])
        # shuffle so inserts do not arrive in key order (real bundles do not either)
        key = key[rng.permutation(len(key))]
        self.dst = key % n
        sr = key // n
        self.rel = sr % len(RELS)
        self.src = sr // len(RELS)
        self.m = len(key)
        self.starts = rng.integers(0, n, 200)

    def node_props(self, i: int) -> dict[str, Any]:
        return {"quantity": float(i % 97 + 1), "status": "released"}

    def edge_props(self, j: int) -> dict[str, Any]:
        return {"quantity": float(j % 13 + 1)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def pcts(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1000, s[int(0.95 * (len(s) - 1))] * 1000


# -- phases (each runs in a subprocess) ------------------------------------------------------


def phase_floor(g: Graph, work: Path) -> dict[str, Any]:
    db = work / "floor.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE nodes(id TEXT PRIMARY KEY, cls TEXT NOT NULL, props TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE edges(src TEXT, rel TEXT, dst TEXT, props TEXT, PRIMARY KEY(src, rel, dst))"
    )
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    ids, cls = g.ids, g.cls
    for a in range(0, g.n, BATCH):
        conn.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?)",
            [(ids[i], CLASSES[cls[i]], json.dumps(g.node_props(i))) for i in range(a, min(a + BATCH, g.n))],
        )
    src, rel, dst = g.src.tolist(), g.rel.tolist(), g.dst.tolist()
    for a in range(0, g.m, BATCH):
        conn.executemany(
            "INSERT INTO edges VALUES (?, ?, ?, ?)",
            [(ids[src[j]], RELS[rel[j]], ids[dst[j]], json.dumps(g.edge_props(j)))
             for j in range(a, min(a + BATCH, g.m))],
        )
    conn.execute("COMMIT")
    secs = time.perf_counter() - t0
    conn.close()
    return {"seconds": secs, "peak_rss_mb": peak_rss_mb(), "size_mb": dir_size_mb(work) }


def _records(g: Graph) -> tuple[Iterator[list[Any]], Iterator[list[Any]]]:
    from store.base import EdgeRecord, NodeRecord

    ids, cls = g.ids, g.cls.tolist()

    def nodes() -> Iterator[list[Any]]:
        for a in range(0, g.n, BATCH):
            yield [NodeRecord(id=ids[i], cls=CLASSES[cls[i]], props=g.node_props(i), source_system="MES")
                   for i in range(a, min(a + BATCH, g.n))]

    def edges() -> Iterator[list[Any]]:
        src, rel, dst = g.src.tolist(), g.rel.tolist(), g.dst.tolist()
        for a in range(0, g.m, BATCH):
            yield [EdgeRecord(src=ids[src[j]], rel=RELS[rel[j]], dst=ids[dst[j]], props=g.edge_props(j),
                              source_system="MES") for j in range(a, min(a + BATCH, g.m))]

    return nodes(), edges()


def phase_embedded_load(g: Graph, work: Path) -> dict[str, Any]:
    import store.embedded as embedded_module
    from store.embedded import EmbeddedStore

    # time the load and the topology index build apart (a bulk commit would otherwise build it)
    embedded_module.INDEX_AT = 1 << 62

    path = work / "store"
    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    store = EmbeddedStore(path)
    nodes, edges = _records(g)
    with store.transaction() as tx:
        for batch in nodes:
            tx.upsert_nodes(batch)
        t_nodes = time.perf_counter() - t0
        for batch in edges:
            tx.upsert_edges(batch)
    secs = time.perf_counter() - t0
    counts = store.counts()
    t_idx = time.perf_counter()
    index = store.build_index()  # what a loader does after a big load so the API opens fast
    idx_secs = time.perf_counter() - t_idx
    store.close()
    assert counts.nodes == g.n and counts.edges == g.m, (counts.nodes, counts.edges)
    # an idempotent re-upsert of the first node batch: measures the no-change path
    store = EmbeddedStore(path)
    first, _ = _records(g)
    t1 = time.perf_counter()
    with store.transaction() as tx:
        tx.upsert_nodes(next(first))
    reupsert = time.perf_counter() - t1
    store.close()
    return {
        "seconds": secs, "nodes_seconds": t_nodes, "peak_rss_mb": peak_rss_mb(),
        "input_rss_mb": base_rss, "size_mb": dir_size_mb(path),
        "reupsert_50k_seconds": reupsert, "index_seconds": idx_secs, "index_mb": index["bytes"] / 1e6,
    }


def phase_embedded_open(g: Graph, work: Path) -> dict[str, Any]:
    from store.base import TraversalStep
    from store.embedded import EmbeddedStore

    t0 = time.perf_counter()
    store = EmbeddedStore(work / "store")
    counts = store.counts()
    t_open = time.perf_counter() - t0
    # the first traversal maps the persisted topology index (adjacency.npz)
    store.traverse([g.ids[int(g.starts[0])]], [TraversalStep(r) for r in RELS], HOPS)
    t_first = time.perf_counter() - t0
    store.close()
    return {"seconds": t_open, "first_trace_seconds": t_first, "nodes": counts.nodes, "edges": counts.edges,
            "peak_rss_mb": peak_rss_mb()}


def phase_embedded_trace(g: Graph, work: Path) -> dict[str, Any]:
    from store.base import Direction, TraversalStep
    from store.embedded import EmbeddedStore

    store = EmbeddedStore(work / "store")
    steps = [TraversalStep(r) for r in RELS]
    times, reached = [], []
    for s in g.starts.tolist():
        t0 = time.perf_counter()
        tr = store.traverse([g.ids[s]], steps, HOPS)
        times.append(time.perf_counter() - t0)
        reached.append(len(tr.hops))
    # the same walk level by level in SQL (what the store does inside a write transaction)
    stimes = []
    for s in g.starts.tolist()[:50]:
        t0 = time.perf_counter()
        store._traverse_sql([g.ids[s]], steps, HOPS)
        stimes.append(time.perf_counter() - t0)
    ntimes = []
    for s in g.starts.tolist():
        t0 = time.perf_counter()
        store.neighbours(g.ids[s], direction=Direction.BOTH)
        ntimes.append(time.perf_counter() - t0)
    store.close()
    p50, p95 = pcts(times)
    n50, n95 = pcts(ntimes)
    s50, s95 = pcts(stimes)
    return {"p50_ms": p50, "p95_ms": p95, "reached_median": statistics.median(reached),
            "sql_walk_p50_ms": s50, "sql_walk_p95_ms": s95,
            "neighbours_p50_ms": n50, "neighbours_p95_ms": n95, "peak_rss_mb": peak_rss_mb()}


def phase_sql_bfs(g: Graph, work: Path) -> dict[str, Any]:
    """Bare level-by-level SQL BFS over the store file: what the store costs above SQLite."""
    conn = sqlite3.connect(work / "store" / "graph.sqlite")
    nid = {r[0]: r[1] for r in conn.execute(
        "SELECT id, nid FROM nodes WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps([g.ids[s] for s in g.starts.tolist()]),))}
    times = []
    sql = "SELECT dst FROM edges WHERE src IN (SELECT value FROM json_each(?))"
    for s in g.starts.tolist():
        t0 = time.perf_counter()
        seen = {nid[g.ids[s]]}
        frontier = list(seen)
        for _ in range(HOPS):
            nxt = [d for (d,) in conn.execute(sql, (json.dumps(frontier),)) if d not in seen]
            seen.update(nxt)
            frontier = list(set(nxt))
            if not frontier:
                break
        times.append(time.perf_counter() - t0)
    conn.close()
    p50, p95 = pcts(times)
    return {"p50_ms": p50, "p95_ms": p95, "peak_rss_mb": peak_rss_mb()}


def phase_networkx(g: Graph, work: Path) -> dict[str, Any]:
    import networkx as nx

    t0 = time.perf_counter()
    G = nx.MultiDiGraph()
    ids, cls = g.ids, g.cls.tolist()
    G.add_nodes_from((ids[i], {"cls": CLASSES[cls[i]], **g.node_props(i)}) for i in range(g.n))
    src, rel, dst = g.src.tolist(), g.rel.tolist(), g.dst.tolist()
    G.add_edges_from(
        (ids[src[j]], ids[dst[j]], RELS[rel[j]], g.edge_props(j)) for j in range(g.m)
    )
    build = time.perf_counter() - t0
    times = []
    for s in g.starts.tolist():
        t0 = time.perf_counter()
        nx.single_source_shortest_path_length(G, ids[s], cutoff=HOPS)
        times.append(time.perf_counter() - t0)
    p50, p95 = pcts(times)
    return {"build_seconds": build, "p50_ms": p50, "p95_ms": p95, "peak_rss_mb": peak_rss_mb()}


def phase_csr(g: Graph, work: Path) -> dict[str, Any]:
    from scipy import sparse

    t0 = time.perf_counter()
    A = sparse.csr_matrix(
        (np.ones(g.m, dtype=np.int8), (g.src.astype(np.int32), g.dst.astype(np.int32))), shape=(g.n, g.n)
    )
    indptr, indices = A.indptr, A.indices
    build = time.perf_counter() - t0
    times = []
    for s in g.starts.tolist():
        t0 = time.perf_counter()
        seen = np.zeros(g.n, dtype=bool)
        seen[s] = True
        frontier = np.array([s])
        for _ in range(HOPS):
            if frontier.size == 0:
                break
            nbrs = np.concatenate([indices[indptr[v]:indptr[v + 1]] for v in frontier.tolist()])
            nbrs = np.unique(nbrs[~seen[nbrs]])
            seen[nbrs] = True
            frontier = nbrs
        times.append(time.perf_counter() - t0)
    p50, p95 = pcts(times)
    return {"build_seconds": build, "p50_ms": p50, "p95_ms": p95, "peak_rss_mb": peak_rss_mb()}


PHASES = {
    "floor": phase_floor,
    "embedded-load": phase_embedded_load,
    "embedded-open": phase_embedded_open,
    "embedded-trace": phase_embedded_trace,
    "sql-bfs": phase_sql_bfs,
    "networkx": phase_networkx,
    "csr": phase_csr,
}


def run_child(phase: str, nodes: int, seed: int, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_store", "--phase", phase, "--nodes", str(nodes),
           "--seed", str(seed), "--work", str(work)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--phase", choices=sorted(PHASES))
    ap.add_argument("--work", type=Path)
    ap.add_argument("--skip", action="append", default=[], help="phases to leave out (e.g. networkx)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "store.json")
    args = ap.parse_args()

    if args.phase:  # child mode: one phase, one JSON line
        g = Graph(args.nodes, args.seed)
        res = PHASES[args.phase](g, args.work)
        res.setdefault("edges_in_graph", g.m)
        print(json.dumps(res))
        return

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    results: dict[str, dict[str, Any]] = {}
    order = [p for p in PHASES if p not in args.skip]
    try:
        with Progress(console=console) as progress:
            task = progress.add_task(f"store benchmark at {args.nodes:,} nodes", total=len(order))
            for phase in order:
                progress.update(task, description=f"{phase} at {args.nodes:,} nodes")
                results[phase] = run_child(phase, args.nodes, args.seed, work)
                progress.advance(task)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    m = next(iter(results.values()))["edges_in_graph"]
    n = args.nodes
    table = Table(title=f"store benchmark: {n:,} nodes, {m:,} edges, {HOPS}-hop BFS from 200 random starts")
    for col in ("contender", "build / load s", "entities/s", "vs floor", "open+first trace s", "peak RSS MB",
                "BFS p50 ms", "BFS p95 ms", "notes"):
        table.add_column(col)
    fl = results.get("floor")
    if fl:
        table.add_row("SQLite executemany floor", f"{fl['seconds']:.1f}", f"{n / fl['seconds']:,.0f}", "1.00",
                      "", f"{fl['peak_rss_mb']:.0f}", "", "", f"{fl['size_mb']:.0f} MB on disk")
    ld = results.get("embedded-load")
    if ld:
        ratio = f"{fl['seconds'] / ld['seconds']:.2f}" if fl else ""
        op = results.get("embedded-open", {})
        tr = results.get("embedded-trace", {})
        table.add_row(
            "EmbeddedStore (SQLite WAL, FULL)", f"{ld['seconds']:.1f}", f"{n / ld['seconds']:,.0f}", ratio,
            f"{op.get('first_trace_seconds', float('nan')):.2f}",
            f"{max(ld['peak_rss_mb'], tr.get('peak_rss_mb', 0)):.0f}",
            f"{tr.get('p50_ms', float('nan')):.2f}", f"{tr.get('p95_ms', float('nan')):.2f}",
            f"{ld['size_mb']:.0f} MB; index build {ld['index_seconds']:.1f} s; "
            f"reached median {tr.get('reached_median', 0):.0f}; "
            f"neighbours p50 {tr.get('neighbours_p50_ms', float('nan')):.2f} ms",
        )
    if walk := results.get("embedded-trace"):
        table.add_row("EmbeddedStore, SQL walk (inside a transaction)", "", "", "", "", "",
                      f"{walk['sql_walk_p50_ms']:.2f}", f"{walk['sql_walk_p95_ms']:.2f}", "same typed result")
    for key, label in (("sql-bfs", "bare SQL BFS on the store file"), ("networkx", "networkx MultiDiGraph"),
                       ("csr", "scipy CSR (ints only)")):
        r = results.get(key)
        if r:
            table.add_row(label, f"{r['build_seconds']:.1f}" if "build_seconds" in r else "", "", "", "",
                          f"{r['peak_rss_mb']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", "")
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "store", "nodes": n, "edges": m, "hops": HOPS, "seed": args.seed,
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count()},
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
