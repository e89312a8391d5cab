"""CLI for data in and out: ``validate``, ``load``, ``stats``, ``get`` and ``export rdf``.

The store is ``--store PATH`` (an embedded store folder), else ``PLANTGRAPH_STORE``, else
``<PLANTGRAPH_DATA>/store`` (see :mod:`config.settings`). Commands that return data take
``--json`` and print a pydantic model. Bad input exits 1 with every error as
``FILE:LINE:COLUMN: message (expected X, found Y)`` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from config.settings import Settings
from graph_loader.errors import BundleError, BundleValidationError
from graph_loader.loader import LoadReport, load_bundle, validate_bundle
from store.base import Direction, GraphStore, StoreError

console = Console()
err_console = Console(stderr=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Embedded store folder (default: PLANTGRAPH_STORE, else <data dir>/store)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (a pydantic model).")]
BundleArg = Annotated[Path, typer.Argument(help="The bundle folder (manifest.json + one file per class/relation).")]


class _Fail(Exception):
    """A user-facing failure: printed in red, exit code 1."""


# ---------------------------------------------------------------------------------------------
# Store resolution
# ---------------------------------------------------------------------------------------------


def store_path(option: Path | None) -> Path:
    """``--store``, else ``PLANTGRAPH_STORE``, else ``<data dir>/store`` (read fresh from the environment)."""
    return option if option is not None else Settings().store_path


def store_label(option: Path | None) -> str:
    """What the user should see as "the store": the folder, or the Neo4j URI when that backend is set."""
    settings = Settings()
    if option is None and settings.backend == "neo4j":
        return settings.neo4j_uri
    return str(store_path(option))


def _uses_neo4j(option: Path | None) -> bool:
    return option is None and Settings().backend == "neo4j"


def _open(option: Path | None, *, create: bool) -> GraphStore:
    settings = Settings()
    if option is None and settings.backend == "neo4j":
        from config.runtime import open_configured_store

        return open_configured_store(settings)
    path = store_path(option)
    if not create and not path.exists():
        raise _Fail(f"no store at {path}; load a bundle first (plantgraph load BUNDLE --store {path})")
    from store.factory import open_store

    return open_store("embedded", path)


@contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except _Fail as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    except (StoreError, BundleError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


def _print_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


# ---------------------------------------------------------------------------------------------
# validate / load
# ---------------------------------------------------------------------------------------------


def _byte_progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.description}"), console=err_console, transient=True,
    )


#: Shown once every byte is read: a big load still writes its last rows, commits (the deferred
#: index rebuild, the WAL sync) and builds the topology index, ~10 s at the large plant.
LOAD_TAIL = "writing the last rows, committing, indexing"


def _counts_table(title: str, report: LoadReport) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("kind")
    table.add_column("name")
    table.add_column("rows", justify="right")
    for cls, n in report.nodes_by_class.items():
        table.add_row("class", cls, f"{n:,}")
    for rel, n in report.edges_by_relation.items():
        table.add_row("relation", rel, f"{n:,}")
    return table


def _print_errors(report_errors: list[str]) -> None:
    for line in report_errors:
        typer.echo(line)


def validate_cmd(
    bundle: BundleArg,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a bundle without writing: exit 0 with a summary, or 1 with every error.

    Edge endpoints may exist in the store (``--store``, or the configured store when it exists).
    """
    with _failures():
        path = store_path(store)
        use_store = store is not None or _uses_neo4j(store) or path.exists()
        gs = _open(store, create=False) if use_store else None
        try:
            with _byte_progress("validating") as bar:
                task = bar.add_task("", total=None)
                report = validate_bundle(
                    bundle, gs, progress=lambda done, total: bar.update(task, completed=done, total=total)
                )
        finally:
            if gs is not None:
                gs.close()
        if as_json:
            _print_json(report)
        elif report.valid:
            where = f" (endpoints also checked against {store_label(store)})" if gs is not None else ""
            typer.echo(
                f"OK: {bundle} is valid: {report.nodes:,} entities in {len(report.nodes_by_class)} classes, "
                f"{report.edges:,} relations in {len(report.edges_by_relation)} types, "
                f"{report.nodes_deleted} node and {report.edges_deleted} edge deletions{where}"
            )
        else:
            _print_errors(report.error_lines())
            err_console.print(f"[red]{report.error_count} error(s); the bundle would not load[/red]")
        if not report.valid:
            raise typer.Exit(1)


def load_cmd(
    bundle: BundleArg,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per write batch.")] = 5000,
) -> None:
    """Validate and load a bundle into the store, all or nothing (idempotent upserts by id)."""
    with _failures():
        if not bundle.is_dir():
            raise _Fail(f"{bundle}: not a bundle folder (expected a folder with a manifest.json)")
        gs = _open(store, create=True)
        try:
            with _byte_progress("loading") as bar:
                task = bar.add_task("", total=None)
                try:
                    report = load_bundle(
                        gs, bundle, batch_size=batch_size,
                        progress=lambda done, total: bar.update(
                            task, completed=done, total=total, description=LOAD_TAIL if done >= total else ""),
                    )
                except BundleValidationError as exc:
                    bar.stop()
                    failed = LoadReport(
                        bundle=str(bundle), valid=False, written=False, nodes_by_class={},
                        edges_by_relation={}, seconds=0.0, entities_per_s=0.0, relations_per_s=0.0,
                        error_count=exc.total, errors=exc.errors,
                    )
                    if as_json:
                        _print_json(failed)
                    else:
                        _print_errors(failed.error_lines())
                        err_console.print(f"[red]{exc.total} error(s); nothing was written[/red]")
                    raise typer.Exit(1) from None
            totals = gs.counts()
        finally:
            gs.close()
        if as_json:
            _print_json(report)
            return
        console.print(_counts_table(f"Loaded {bundle}", report))
        typer.echo(
            f"loaded {report.nodes:,} entities ({report.entities_per_s:,.0f}/s) and {report.edges:,} relations "
            f"({report.relations_per_s:,.0f}/s) in {report.seconds:.2f} s; deleted {report.nodes_deleted} "
            f"nodes and {report.edges_deleted} edges"
        )
        if report.repeated_edges:
            typer.echo(f"note: {report.repeated_edges:,} relation rows repeated an earlier (src, rel, dst) of the "
                       "bundle; each updated that edge (the later row won)")
        typer.echo(f"store {store_label(store)} now holds {totals.nodes:,} entities and {totals.edges:,} relations")


# ---------------------------------------------------------------------------------------------
# stats / get
# ---------------------------------------------------------------------------------------------


class StoreStats(BaseModel):
    """Counts of a store, per class and per relation."""

    store: str
    nodes: int
    edges: int
    nodes_by_class: dict[str, int]
    edges_by_relation: dict[str, int]


def stats_cmd(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Counts per class and per relation."""
    with _failures():
        gs = _open(store, create=False)
        try:
            c = gs.counts()
        finally:
            gs.close()
        out = StoreStats(store=store_label(store), nodes=c.nodes, edges=c.edges,
                         nodes_by_class=dict(sorted(c.nodes_by_class.items())),
                         edges_by_relation=dict(sorted(c.edges_by_relation.items())))
        if as_json:
            _print_json(out)
            return
        table = Table(title=f"{out.store}: {out.nodes:,} entities, {out.edges:,} relations")
        table.add_column("class / relation")
        table.add_column("count", justify="right")
        for k, v in out.nodes_by_class.items():
            table.add_row(k, f"{v:,}")
        table.add_section()
        for k, v in out.edges_by_relation.items():
            table.add_row(k, f"{v:,}")
        console.print(table)


class Neighbour(BaseModel):
    """The entity at the other end of a relation, with the relation's properties."""

    id: str
    cls: str | None
    name: str | None
    edge_props: dict[str, Any]
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class RelationGroup(BaseModel):
    relation: str
    direction: Literal["out", "in"]
    total: int
    neighbours: list[Neighbour]


class EntityView(BaseModel):
    """One entity with its properties and its neighbours by relation and direction."""

    id: str
    cls: str
    name: str | None
    plant: str | None
    source_system: str
    valid_from: datetime | None
    valid_to: datetime | None
    props: dict[str, Any]
    relations: list[RelationGroup]


def entity_view(gs: GraphStore, node_id: str, limit: int) -> EntityView | None:
    node = gs.get_node(node_id)
    if node is None:
        return None
    groups: dict[tuple[str, Literal["out", "in"]], list[tuple[str, Any]]] = {}
    for way, side in ((Direction.OUT, "out"), (Direction.IN, "in")):
        for e in gs.neighbours(node_id, None, way):
            other = e.dst if way == Direction.OUT else e.src
            groups.setdefault((e.rel, side), []).append((other, e))  # type: ignore[arg-type]
    shown = {k: v[:limit] for k, v in groups.items()}
    others = gs.get_nodes({o for v in shown.values() for o, _ in v})
    relations = []
    for (rel, direction), items in sorted(shown.items()):
        neighbours = []
        for other, e in items:
            rec = others.get(other)
            neighbours.append(Neighbour(
                id=other, cls=rec.cls if rec else None, name=rec.name if rec else None,
                edge_props=dict(e.props), valid_from=e.valid_from, valid_to=e.valid_to))
        relations.append(RelationGroup(relation=rel, direction=direction,
                                       total=len(groups[(rel, direction)]), neighbours=neighbours))
    return EntityView(
        id=node.id, cls=node.cls, name=node.name, plant=node.plant, source_system=node.source_system,
        valid_from=node.valid_from, valid_to=node.valid_to, props=dict(node.props), relations=relations,
    )


def get_cmd(
    entity_id: Annotated[str, typer.Argument(metavar="ID", help="The entity id, e.g. LOT-SYR-0001.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most neighbours shown per relation.")] = 50,
) -> None:
    """One entity with its properties and its neighbours grouped by relation and direction."""
    with _failures():
        gs = _open(store, create=False)
        try:
            view = entity_view(gs, entity_id, limit)
        finally:
            gs.close()
        if view is None:
            raise _Fail(f"no entity with id {entity_id!r} in {store_label(store)} (ids are case-sensitive)")
        if as_json:
            _print_json(view)
            return
        console.print(f"[bold]{escape(view.id)}[/bold]  {view.cls}  {escape(view.name or '')}")
        props = Table(show_header=False, box=None)
        for k, v in [("plant", view.plant), ("source_system", view.source_system),
                     ("valid_from", view.valid_from), ("valid_to", view.valid_to), *view.props.items()]:
            if v is not None:
                props.add_row(f"  {k}", escape(str(v)))
        console.print(props)
        for g in view.relations:
            arrow = "->" if g.direction == "out" else "<-"
            more = f" (showing {len(g.neighbours)} of {g.total})" if g.total > len(g.neighbours) else ""
            console.print(f"{arrow} [bold]{g.relation}[/bold]{more}")
            for n in g.neighbours:
                extra = ", ".join(f"{k}={v}" for k, v in n.edge_props.items())
                line = f"     {n.id}  {n.cls or '?'}  {n.name or ''}  {extra}".rstrip()
                console.print(escape(line), soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# export rdf
# ---------------------------------------------------------------------------------------------


class RdfFormat(StrEnum):
    turtle = "turtle"
    nt = "nt"
    json_ld = "json-ld"


class ExportReport(BaseModel):
    out: str
    format: str
    nodes: int
    edges: int
    triples: int


def _turtle_term(term: Any, pg_prefix: str) -> str:
    """``pg:local`` for the ontology's own (plain-named) terms, the full ``<IRI>`` otherwise."""
    text = str(term)
    if text.startswith(pg_prefix):
        local = text[len(pg_prefix):]
        if local.isalnum():
            return "pg:" + local
    n3: str = term.n3()
    return n3


def _turtle_block(items: list[Any], pg_prefix: str) -> str:
    """Triples grouped by consecutive subject: ``s p o ; p o .`` (streamable, valid Turtle)."""
    out: list[str] = []
    current = None
    for s, p, o in items:
        po = f"{_turtle_term(p, pg_prefix)} {_turtle_term(o, pg_prefix)}"
        if s == current:
            out.append(f" ;\n    {po}")
        else:
            if current is not None:
                out.append(" .\n")
            out.append(f"{_turtle_term(s, pg_prefix)} {po}")
            current = s
    if current is not None:
        out.append(" .\n")
    return "".join(out)


def export_rdf(gs: GraphStore, out: Path, fmt: RdfFormat, progress: Progress | None = None) -> ExportReport:
    """Write the whole graph as RDF with the ontology's IRIs (ontology/rdf.py). N-Triples and
    Turtle are streamed entity by entity (memory stays flat); JSON-LD is built in memory by
    rdflib first, so use it for small graphs."""
    from rdflib import Graph

    from ontology.rdf import PG, bind_prefixes, edge_triples, node_triples

    total = gs.counts().nodes
    task = progress.add_task("export", total=total) if progress is not None else None
    nodes = edges = triples = 0
    graph: Graph | None = None
    if fmt == RdfFormat.json_ld:
        graph = Graph()
        bind_prefixes(graph)
    pg = str(PG)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        if fmt == RdfFormat.turtle:
            fh.write(f"@prefix pg: <{pg}> .\n\n")
        for node in gs.find_nodes():
            items = list(node_triples(cast(Any, node)))
            nodes += 1
            for e in gs.neighbours(node.id, None, Direction.OUT):
                items.extend(edge_triples(cast(Any, e)))
                edges += 1
            triples += len(items)
            if fmt == RdfFormat.nt:
                fh.write("".join(f"{s.n3()} {p.n3()} {o.n3()} .\n" for s, p, o in items))
            elif fmt == RdfFormat.turtle:
                fh.write(_turtle_block(items, pg))
            else:
                assert graph is not None
                for t in items:
                    graph.add(t)
            if progress is not None and task is not None and nodes % 1000 == 0:
                progress.update(task, completed=nodes)
        if graph is not None:
            fh.write(graph.serialize(format=fmt.value))
            triples = len(graph)
    return ExportReport(out=str(out), format=fmt.value, nodes=nodes, edges=edges, triples=triples)


export_app = typer.Typer(help="Export the graph.", no_args_is_help=True)


@export_app.command("rdf")
def export_rdf_cmd(
    out: Annotated[Path, typer.Option("--out", help="The file to write.")],
    fmt: Annotated[RdfFormat, typer.Option("--format", help="RDF serialisation.")] = RdfFormat.turtle,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The graph as RDF (Turtle, N-Triples or JSON-LD) using the ontology's IRIs."""
    with _failures():
        gs = _open(store, create=False)
        try:
            with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, transient=True) as bar:
                report = export_rdf(gs, out, fmt, bar)
        finally:
            gs.close()
        if as_json:
            _print_json(report)
        else:
            typer.echo(f"wrote {report.triples:,} triples ({report.nodes:,} entities, {report.edges:,} relations) "
                       f"to {out} as {report.format}")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_cmd)
    app.command("load")(load_cmd)
    app.command("stats")(stats_cmd)
    app.command("get")(get_cmd)
    app.add_typer(export_app, name="export")
