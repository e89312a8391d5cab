"""``plantgraph generate``: a seeded synthetic multi-plant factory as a bundle plus truth.json.

Output formats live in :data:`OUTPUT_FORMATS` (name -> writer); a new format (e.g. ``b2mml``)
adds one entry with the same signature and is then accepted by ``--format``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from graph_loader.generator import GenerateReport, ScaleSpec, generate, named_spec, spec_for

ProgressFn = Callable[[str, float, float], None]
#: name -> writer(spec, seed, out, progress) -> report. The bundle writer is the default.
QUESTIONS = "questions.jsonl"


def _generate_bundle(spec: ScaleSpec, seed: int, out: Path, progress: ProgressFn | None) -> GenerateReport:
    """The bundle, truth.json and the copilot's public question set built from it."""
    from graph_loader.question_set import write_question_set

    report = generate(spec, seed, out, progress)
    write_question_set(out / "truth.json", out / QUESTIONS, seed=seed)
    return report


def _generate_b2mml(spec: ScaleSpec, seed: int, out: Path, progress: ProgressFn | None) -> GenerateReport:
    """The same plant as B2MML V0701 messages (plus truth.json), so it can arrive by either route."""
    import shutil
    import tempfile

    from graph_loader.b2mml.export import bundle_to_b2mml

    with tempfile.TemporaryDirectory(prefix="pg-generate-") as tmp:
        bundle = Path(tmp) / "bundle"
        report = generate(spec, seed, bundle, progress)
        out.mkdir(parents=True, exist_ok=True)
        bundle_to_b2mml(bundle, out)
        shutil.copy(bundle / "truth.json", out / "truth.json")
        from graph_loader.question_set import write_question_set

        write_question_set(bundle / "truth.json", out / QUESTIONS, seed=seed, bundle=bundle)
    return report.model_copy(update={"out": str(out), "truth": str(out / "truth.json")})


OUTPUT_FORMATS: dict[str, Callable[[ScaleSpec, int, Path, ProgressFn | None], GenerateReport]] = {
    "bundle": _generate_bundle,
    "b2mml": _generate_b2mml,
}


class Scale(StrEnum):
    tiny = "tiny"
    small = "small"
    medium = "medium"
    large = "large"


def _run_with_progress(fn: Callable[[ProgressFn | None], GenerateReport], show: bool) -> GenerateReport:
    if not show:
        return fn(None)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def tick(phase: str, done: float, total: float) -> None:
            unit = "sim. hours" if phase == "production" else "steps"
            scale = 1 / 3600 if phase == "production" else 1
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=round(total * scale), unit=unit)
            bar.update(tasks[phase], completed=round(done * scale), total=round(total * scale))

        return fn(tick)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate_cmd(
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the bundle and truth.json into.")],
        scale: Annotated[Scale, typer.Option(help="Preset size: tiny ~1k, small ~20k, medium ~200k, "
                                                  "large ~1M entities.")] = Scale.small,
        entities: Annotated[int | None, typer.Option(help="Target entity count (overrides --scale).")] = None,
        seed: Annotated[int, typer.Option(help="Random seed; the same seed and size give identical files.")] = 7,
        fmt: Annotated[str, typer.Option("--format", help=f"Output format: {', '.join(OUTPUT_FORMATS)}.")] = "bundle",
        json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Generate a realistic synthetic multi-plant factory (bundle + truth.json)."""
        writer = OUTPUT_FORMATS.get(fmt)
        if writer is None:
            typer.echo(f"error: --format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}", err=True)
            raise typer.Exit(2)
        try:
            spec = spec_for(entities) if entities is not None else named_spec(scale.value)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if out.exists() and not out.is_dir():
            typer.echo(f"error: --out {out}: exists and is not a directory; expected a folder", err=True)
            raise typer.Exit(2)
        show = not quiet and not json_out and sys.stderr.isatty()
        report = _run_with_progress(lambda tick: writer(spec, seed, out, tick), show)
        if json_out:
            typer.echo(report.model_dump_json(indent=2))
            return
        console = Console()
        table = Table(title=f"plant generated in {out} ({report.seconds:.1f} s)")
        table.add_column("class / relation")
        table.add_column("count", justify="right")
        for name, n in report.counts.items():
            table.add_row(name, f"{n:,}")
        table.add_row("[bold]entities", f"[bold]{report.entities:,}")
        table.add_row("[bold]relations", f"[bold]{report.relations:,}")
        console.print(table)
        console.print(f"truth: {report.truth}")
