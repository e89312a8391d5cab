"""Copilot benchmark: ``ask`` latency per intent, index build cost, vector search scaling.

For each scale it generates a plant (seed 7) and loads it into an embedded store once (cached
under ``--workdir``), writes the plant's public question set from truth.json, and then:

- index: counts the cards and chunks and the distinct texts to embed, times card collection, and
  measures the embedding rate on ``--embed-sample`` distinct texts; with ``--build-index`` it
  builds the whole index (only texts not cached yet are embedded), else an index already present
  beside the store is used, and without one the copilot runs degraded (ids, names and rules only);
- ask: every question of the set (plus a few free questions) ``--reps`` times after a warm-up,
  p50/p95 per intent and overall, wall and CPU (``time.process_time``: the machine is shared, so
  wall times are noisy), with the plant's ``now``; the query-vector cache is emptied before each
  question (a new question is never cached), and the slowest questions are listed with the
  copilot's own phases (link, route, answer);
- search: exact cosine top-10 over synthetic normalised matrices of ``--search-sizes`` rows (the
  same code path as the index), to show how the numpy search scales.

The full (generation 2) garbage collections that fall into the measured asks are counted with
their CPU time (``gc_full_collections``; ``--freeze-gc`` shows the asks without them). A build
records its CPU seconds, peak RSS and folder size; ``--threads`` sets its torch threads.

Usage::

    .venv/bin/python -m benchmarks.bench_ask --scales small --build-index
    .venv/bin/python -m benchmarks.bench_ask --scales small medium --search-sizes 10000 100000

Prints a table and writes ``benchmarks/results/ask.json`` (earlier scales are kept).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.procstats import peak_rss_mb  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from graph_loader.generator import generate, named_spec  # noqa: E402
from graph_loader.loader import load_bundle  # noqa: E402
from graph_loader.question_set import write_question_set  # noqa: E402
from reasoning.rag.cards import IndexItem  # noqa: E402
from reasoning.rag.copilot import Copilot  # noqa: E402
from reasoning.rag.embedder import FloatMatrix, SentenceTransformerEmbedder  # noqa: E402
from reasoning.rag.evaluation import load_question_set  # noqa: E402
from reasoning.rag.index import VectorIndex, index_dir_for  # noqa: E402
from store.factory import open_store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ask.json"
FREE_QUESTIONS = [
    "How should the syrup be blended?",
    "Which machine had bearing problems?",
    "What does the cleaning procedure say about rinsing?",
]
console = Console()


def pct(xs: list[float], q: int) -> float:
    if len(xs) == 1:
        return round(xs[0], 2)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[q - 1], 2)


def prepare(scale: str, workdir: Path) -> tuple[Path, Path, Path]:
    bundle, store_dir = workdir / f"{scale}-bundle", workdir / f"{scale}-store"
    if not (bundle / "truth.json").exists():
        console.print(f"generating {scale} plant ...")
        generate(named_spec(scale), 7, bundle)
    if not store_dir.exists():
        console.print(f"loading {scale} plant ...")
        store = open_store("embedded", store_dir)
        try:
            load_bundle(store, bundle)
        finally:
            store.close()
    questions = workdir / f"{scale}-questions.jsonl"
    write_question_set(bundle / "truth.json", questions)
    return bundle, store_dir, questions


def _folder_mb(folder: Path) -> dict[str, float]:
    """Size of the index folder and of its main files, in MB."""
    sizes = {p.name: p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    out: dict[str, float] = {name: round(sizes[name] / 2**20, 1)
                             for name in ("vectors.npy", "items.jsonl", "hashes.json") if name in sizes}
    return {"total": round(sum(sizes.values()) / 2**20, 1), **out}


class _GcPauses:
    """CPU time of the cyclic collector's full (generation 2) collections during the measured asks.

    A full collection walks every tracked object of the process: ~490k of them after importing
    torch, transformers and llama-index, ~650k with the large plant's index and name dictionary,
    so one costs ~250-300 ms CPU there, and lands in whichever question happens to trigger it.
    ``--freeze-gc`` moves the objects alive after the warm-up out of the collector's reach
    (``gc.freeze()``, as a server would after start-up) to show the asks without those pauses."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self.current = 0.0
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.process_time()
        else:
            ms = (time.process_time() - self._started) * 1000
            self.full.append(ms)
            self.current += ms


def run_scale(scale: str, workdir: Path, reps: int, embed_sample: int, build_index: bool,
              threads: int | None = None, freeze_gc: bool = False) -> dict[str, Any]:
    _, store_dir, qfile = prepare(scale, workdir)
    store = open_store("embedded", store_dir)
    emb = SentenceTransformerEmbedder(batch_threads=threads)
    emb.embed(["warm up"])
    index = VectorIndex(index_dir_for(store_dir), emb)
    out: dict[str, Any] = {"scale": scale, "entities": store.counts().nodes}
    t0 = time.perf_counter()
    items = index.collect(store)
    collect_s = time.perf_counter() - t0
    distinct = sorted({it.embed_text for it in items})
    sample = distinct[:: max(1, len(distinct) // embed_sample)][:embed_sample] if embed_sample > 0 else []
    t0 = time.perf_counter()
    emb.embed(sample)
    rate = len(sample) / max(time.perf_counter() - t0, 1e-9) if sample else float("nan")
    out["index"] = {
        "items": len(items), "cards": sum(it.kind == "card" for it in items),
        "chunks": sum(it.kind == "chunk" for it in items), "distinct_texts": len(distinct),
        "embedded_share_of_entities": round(len(distinct) / max(1, out["entities"]), 4),
        "collect_seconds": round(collect_s, 2), "embed_rate_texts_per_s": round(rate, 1),
        "embed_sample": len(sample),
        "estimated_full_build_seconds": round(collect_s + len(distinct) / rate, 1) if sample else None,
    }
    if build_index:
        c0 = time.process_time()
        report = index.build(store, show_progress=True)
        out["index"]["build"] = {**report.model_dump(), "cpu_seconds": round(time.process_time() - c0, 1),
                                 "threads": threads, "peak_rss_mb": round(peak_rss_mb(), 1),
                                 "folder_mb": _folder_mb(index.folder)}
    copilot = Copilot.open(store, store_dir, embedder=emb)
    out["index"]["available"] = not copilot.degraded
    items_q = load_question_set(qfile)
    copilot.set_now(items_q[0].now or copilot.now)
    questions = [(q.intent.value, q.question) for q in items_q] + [("free_question", q) for q in FREE_QUESTIONS]
    for _, q in questions:  # warm-up: caches, first model call, SQLite pages
        copilot.ask(q)
    if freeze_gc:  # what a server would do once after start-up (see _GcPauses)
        gc.collect()
        gc.freeze()
    pauses = _GcPauses()
    gc.callbacks.append(pauses.callback)
    by_intent: dict[str, list[float]] = {}
    cpu_by_intent: dict[str, list[float]] = {}
    phases: dict[str, dict[str, list[float]]] = {}
    slowest: dict[str, tuple[float, float, str, dict[str, float]]] = {}
    for _ in range(reps):
        for intent, q in questions:
            if copilot.index is not None:  # a new question is never in the query-vector cache
                copilot.index._query_cache.clear()
            pauses.current = 0.0
            c0, t0 = time.process_time(), time.perf_counter()
            answer = copilot.ask(q)
            wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
            gc_ms = pauses.current
            by_intent.setdefault(intent, []).append(wall)
            cpu_by_intent.setdefault(intent, []).append(cpu)
            for phase, ms in answer.timings_ms.items():
                phases.setdefault(intent, {}).setdefault(phase, []).append(ms)
            if q not in slowest or cpu > slowest[q][1]:
                slowest[q] = (wall, cpu, intent, {**answer.timings_ms, "gc_full_cpu": round(gc_ms, 1)})
    gc.callbacks.remove(pauses.callback)
    if freeze_gc:
        gc.unfreeze()

    def stats(xs: list[float]) -> dict[str, float]:
        return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95)}

    every = [x for xs in by_intent.values() for x in xs]
    every_cpu = [x for xs in cpu_by_intent.values() for x in xs]
    out["ask_ms"] = {"all": stats(every), **{k: stats(v) for k, v in sorted(by_intent.items())}}
    out["ask_cpu_ms"] = {"all": stats(every_cpu), **{k: stats(v) for k, v in sorted(cpu_by_intent.items())}}
    out["ask_phase_p95_ms"] = {k: {ph: pct(xs, 95) for ph, xs in v.items()} for k, v in sorted(phases.items())}
    out["gc_full_collections"] = {"frozen_after_warm_up": freeze_gc, "count": len(pauses.full),
                                  "cpu_ms": [round(x, 1) for x in pauses.full]}
    tail = sorted(slowest.items(), key=lambda kv: -kv[1][1])[:8]
    out["slowest_questions"] = [{"question": q, "intent": it, "cpu_ms": round(c, 1), "wall_ms": round(w, 1),
                                 "phases_ms": ph} for q, (w, c, it, ph) in tail]
    store.close()
    return out


class _Synthetic:
    """Stands in for the model: the search benchmark never embeds."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.model_id = "synthetic"

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> FloatMatrix:
        raise RuntimeError("the search benchmark does not embed")


def search_scaling(sizes: list[int], dim: int = 384, queries: int = 50) -> list[dict[str, Any]]:
    """Top-10 search over synthetic normalised rows through ``VectorIndex._ranked_rows``."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []

    for n in sizes:
        vecs = rng.standard_normal((n, dim), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        index = VectorIndex(Path("/nonexistent"), _Synthetic(dim))
        hashes = [f"h{i}" for i in range(n)]
        items = [IndexItem(item_id=f"i{i}", kind="card", text=f"t{i}") for i in range(n)]
        index.items, index.hashes, index.vectors = items, hashes, vecs
        index._row_of = {h: i for i, h in enumerate(hashes)}
        index._row_items = [[i] for i in range(n)]
        qs = rng.standard_normal((queries, dim), dtype=np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        lat = []
        for q in qs:
            t0 = time.perf_counter()
            index._ranked_rows(q, 40, None)
            lat.append((time.perf_counter() - t0) * 1000)
        rows.append({"rows": n, "matrix_mb": round(vecs.nbytes / 2**20, 1), "p50_ms": pct(lat, 50),
                     "p95_ms": pct(lat, 95)})
        del vecs, index
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scales", nargs="+", default=["small"])
    ap.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench-ask")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--embed-sample", type=int, default=256)
    ap.add_argument("--build-index", action="store_true", help="Build (or update) the full index first.")
    ap.add_argument("--threads", type=int, default=None,
                    help="Torch threads for the index build (default: torch's choice).")
    ap.add_argument("--freeze-gc", action="store_true",
                    help="gc.freeze() after the warm-up: asks without full collections of the start-up heap.")
    ap.add_argument("--search-sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--out", type=Path, default=RESULTS, help="Where to write the JSON results.")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    scales: dict[str, Any] = previous.get("scales", {})
    for scale in args.scales:
        scales[scale] = run_scale(scale, args.workdir, args.reps, args.embed_sample, args.build_index,
                                   args.threads, args.freeze_gc)
    search = search_scaling(args.search_sizes) if args.search_sizes else previous.get("search", [])
    data = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_avg_1m": round(os.getloadavg()[0], 1)},
            "scales": scales, "search": search}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")

    t = Table(title="copilot ask latency (ms) and index cost")
    for col in ("scale", "entities", "texts to embed", "share", "embed rate/s", "est. build s", "index",
                "ask p50", "ask p95"):
        t.add_column(col, justify="right")
    for name, r in scales.items():
        ix = r["index"]
        t.add_row(name, f"{r['entities']:,}", f"{ix['distinct_texts']:,}", f"{ix['embedded_share_of_entities']:.1%}",
                  f"{ix['embed_rate_texts_per_s']:.0f}", f"{ix['estimated_full_build_seconds'] or 0:.0f}",
                  "yes" if ix["available"] else "no (degraded)",
                  f"{r['ask_ms']['all']['p50']:.1f}", f"{r['ask_ms']['all']['p95']:.1f}")
    console.print(t)
    t2 = Table(title="ask latency by intent (ms, p50 / p95; wall, then CPU)")
    t2.add_column("intent")
    for name in scales:
        t2.add_column(f"{name} wall", justify="right")
        t2.add_column(f"{name} CPU", justify="right")
    intents = sorted({k for r in scales.values() for k in r["ask_ms"] if k != "all"})
    for intent in intents:
        cells: list[str] = []
        for r in scales.values():
            for key in ("ask_ms", "ask_cpu_ms"):
                part = r.get(key, {}).get(intent)
                cells.append(f"{part['p50']:.1f} / {part['p95']:.1f}" if part else "-")
        t2.add_row(intent, *cells)
    console.print(t2)
    for name in args.scales:
        for row in scales[name].get("slowest_questions", [])[:5]:
            console.print(f"[{name}] {row['cpu_ms']:.0f} ms CPU ({row['intent']}; {row['phases_ms']}): "
                          f"{row['question']}")
    if search:
        t3 = Table(title="exact cosine top-10 over synthetic rows (numpy)")
        for col in ("rows", "matrix MB", "p50 ms", "p95 ms"):
            t3.add_column(col, justify="right")
        for s in search:
            t3.add_row(f"{s['rows']:,}", f"{s['matrix_mb']}", f"{s['p50_ms']}", f"{s['p95_ms']}")
        console.print(t3)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
