"""CLI for interop: ``import b2mml|table|rdf`` and ``export b2mml``.

Every import is validated with the ontology and written all or nothing; a failed import exits 1
with each error as ``FILE:LINE[:COLUMN] PATH: message`` and writes nothing. ``--report FILE``
writes the whole report (errors, unmapped elements, notes, XSD violations) as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.settings import Settings
from store.base import GraphStore, StoreError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Embedded store folder (default: PLANTGRAPH_STORE, else <data dir>/store)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the full report as JSON to this file.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Read, map and validate; write nothing.")]

import_app = typer.Typer(help="Import B2MML messages, tabular exports (with a mapping) or RDF.", no_args_is_help=True)


class _Fail(Exception):
    """A user-facing failure: printed in red, exit code 1."""


@contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except _Fail as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except StoreError as exc:
        err_console.print(f"[red]store: {exc}[/red]")
        raise typer.Exit(1) from None


def _open(option: Path | None) -> GraphStore:
    settings = Settings()
    if option is None and settings.backend == "neo4j":
        from config.runtime import open_configured_store

        return open_configured_store(settings)
    from store.factory import open_store

    return open_store("embedded", option if option is not None else settings.store_path)


def _progress(label: str) -> Progress:
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


def _finish(report: Any, as_json: bool, report_file: Path | None) -> None:
    """Print the report (table or JSON), write it to ``report_file``, exit 1 on errors."""
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        _print_report(report)
    if report.errors:
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    for e in report.errors:
        err_console.print(str(e), style="red", highlight=False, markup=False)
    more = getattr(report, "more_errors", 0)
    if more:
        err_console.print(f"... and {more} more errors", style="red")
    unmapped = getattr(report, "unmapped", [])
    if unmapped:
        console.print(f"[yellow]{len(unmapped)} unmapped item(s) (listed in --report / --json):[/yellow]")
        for u in unmapped[:20]:
            console.print(str(u), style="yellow", highlight=False, markup=False)
        if len(unmapped) > 20:
            console.print(f"... {len(unmapped) - 20} more", style="yellow")
    xsd = getattr(report, "xsd_violations", [])
    if xsd:
        console.print(f"[yellow]{len(xsd)} XSD V0701 violation(s) (not blocking):[/yellow]")
        for x in xsd[:20]:
            console.print(str(x), style="yellow", highlight=False, markup=False)
    table = Table(title="import")
    table.add_column("what")
    table.add_column("count", justify="right")
    for cls, n in sorted(report.entities_by_class.items()):
        table.add_row(cls, str(n))
    for rel, n in sorted(report.relations_by_type.items()):
        table.add_row(rel, str(n))
    console.print(table)
    state = "written" if report.written else ("dry run: nothing written" if report.dry_run else "NOT written")
    console.print(f"{report.entities} entities, {report.relations} relations: {state} "
                  f"({report.seconds:.2f} s)")


# ---------------------------------------------------------------------------------------------
# import b2mml
# ---------------------------------------------------------------------------------------------


@import_app.command("b2mml")
def import_b2mml_cmd(
    paths: Annotated[list[Path], typer.Argument(help="B2MML files or folders (every *.xml below).")],
    dry_run: DryOpt = False,
    report: ReportOpt = None,
    xsd: Annotated[bool, typer.Option("--xsd", help="Also check V0701 files against MESA's schemas.")] = False,
    store: StoreOpt = None,
    source_system: Annotated[str, typer.Option(help="Source system when a message names no sender.")] = "B2MML",
    timezone: Annotated[str, typer.Option(help="Time zone for timestamps without an offset.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Import B2MML (ISA-95) messages V0401-V0701: all or nothing, unmapped elements reported."""
    from graph_loader.b2mml.importer import import_b2mml, iter_b2mml_files
    from graph_loader.b2mml.values import ValueProblem, zone

    with _failures():
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise _Fail(f"no such file or folder: {', '.join(missing)}")
        try:
            tz = zone(timezone)
        except ValueProblem as exc:
            raise _Fail(f"--timezone: {exc}") from None
        n_files = len(iter_b2mml_files(paths))
        gs = None if dry_run else _open(store)
        try:
            with _progress("reading B2MML") as bar:
                task = bar.add_task("files", total=n_files)
                rep = import_b2mml(paths, gs, dry_run=dry_run, source_system=source_system, default_tz=tz,
                                   xsd=xsd, progress=lambda n: bar.advance(task, n))
        finally:
            if gs is not None:
                gs.close()
        _finish(rep, as_json, report)


# ---------------------------------------------------------------------------------------------
# import table
# ---------------------------------------------------------------------------------------------


@import_app.command("table")
def import_table_cmd(
    file: Annotated[Path, typer.Argument(help="A CSV, JSON Lines or Excel (.xlsx) file.")],
    mapping: Annotated[Path, typer.Option("--mapping", help="The YAML mapping (see docs/mappings.md).")],
    skip_bad_rows: Annotated[bool, typer.Option(
        "--skip-bad-rows", help="Write the good rows; bad rows go to a reject file with their reasons.")] = False,
    reject: Annotated[Path | None, typer.Option(help="Reject file (default: FILE.rejects.csv).")] = None,
    dry_run: DryOpt = False,
    report: ReportOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a tabular MES/ERP export with a declarative mapping: all or nothing by default."""
    from graph_loader.tables import MappingError, import_table, load_mapping

    with _failures():
        if not file.exists():
            raise _Fail(f"no such file: {file}")
        try:
            m = load_mapping(mapping)
        except MappingError as exc:
            raise _Fail(str(exc)) from None
        gs = None if dry_run else _open(store)
        try:
            with _progress("reading rows") as bar:
                task = bar.add_task("rows", total=None)
                rep = import_table(file, m, gs, skip_bad_rows=skip_bad_rows, reject_path=reject,
                                   dry_run=dry_run, progress=lambda n: bar.advance(task, n))
        except MappingError as exc:
            raise _Fail(str(exc)) from None
        finally:
            if gs is not None:
                gs.close()
        if rep.reject_file:
            console.print(f"{rep.rows_rejected} bad row(s) written to {rep.reject_file}")
        _finish(rep, as_json, report)


# ---------------------------------------------------------------------------------------------
# import rdf
# ---------------------------------------------------------------------------------------------


@import_app.command("rdf")
def import_rdf_cmd(
    file: Annotated[Path, typer.Argument(help="Turtle (.ttl), N-Triples (.nt) or JSON-LD (.jsonld) file.")],
    fmt: Annotated[str | None, typer.Option("--format", help="turtle, nt or json-ld (default: by extension).")]
    = None,
    dry_run: DryOpt = False,
    report: ReportOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import RDF that uses the plantgraph ontology, checked with its SHACL shapes first."""
    from graph_loader.rdf_import import import_rdf

    with _failures():
        if not file.exists():
            raise _Fail(f"no such file: {file}")
        gs = None if dry_run else _open(store)
        try:
            rep = import_rdf(file, gs, fmt=fmt, dry_run=dry_run)
        finally:
            if gs is not None:
                gs.close()
        _finish(rep, as_json, report)


# ---------------------------------------------------------------------------------------------
# export b2mml
# ---------------------------------------------------------------------------------------------


class ExportSummary(BaseModel):
    noun: str
    version: str
    out: str
    files: int
    messages: int
    entities: int


def export_b2mml_cmd(
    noun: Annotated[list[str], typer.Option(
        "--noun", help="Equipment, MaterialLot, ProductionPerformance or ProductionSchedule (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the messages.")],
    version: Annotated[str, typer.Option("--version", help="B2MML version (V0701).")] = "V0701",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the graph as B2MML V0701 messages (valid against MESA's V0701 schemas; see docs/b2mml.md)."""
    from graph_loader.b2mml.export import NOUNS, ExportError, export_store

    with _failures():
        bad = [n for n in noun if n not in NOUNS]
        if bad:
            raise _Fail(f"unknown noun(s) {', '.join(bad)}; expected one of {', '.join(NOUNS)}")
        gs = _open(store)
        try:
            results: list[ExportSummary] = []
            for n in noun:
                try:
                    res = export_store(gs, n, out, version=version)
                except ExportError as exc:
                    raise _Fail(str(exc)) from None
                results.append(ExportSummary(noun=n, version=version, out=str(out), files=res.files,
                                             messages=res.messages, entities=res.entities))
        finally:
            gs.close()
        if as_json:
            print("[" + ",".join(r.model_dump_json() for r in results) + "]")
        else:
            for r in results:
                console.print(f"{r.noun}: {r.entities} entities in {r.messages} message(s), {r.files} file(s) "
                              f"-> {r.out}")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    try:
        from plantgraph.commands.data import export_app
    except ImportError:  # pragma: no cover - the data commands define the export group
        export_app = typer.Typer(help="Export the graph.", no_args_is_help=True)
        app.add_typer(export_app, name="export")
    export_app.command("b2mml")(export_b2mml_cmd)
