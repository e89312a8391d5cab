"""``plantgraph neo4j init|status``: the Neo4j backend's schema and health.

``init`` creates the uniqueness constraint on ``:Entity(id)``, per-class id indexes and indexes on
the properties the rules filter on; it is idempotent, so deployments run it at every start
(docker-compose does). Connection settings come from ``NEO4J_URI`` / ``NEO4J_USER`` /
``NEO4J_PASSWORD`` / ``NEO4J_DATABASE`` unless given as options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.console import Console

from config.settings import get_settings
from store.base import StoreError

if TYPE_CHECKING:
    from store.neo4j_store import Neo4jStore

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

UriOpt = Annotated[str | None, typer.Option("--uri", help="Bolt/neo4j URI (default: NEO4J_URI).")]
UserOpt = Annotated[str | None, typer.Option("--user", help="User (default: NEO4J_USER).")]
DbOpt = Annotated[str | None, typer.Option("--database", help="Database name (default: NEO4J_DATABASE).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


class Neo4jInitResult(BaseModel):
    uri: str
    database: str | None
    statements: list[str]


class Neo4jStatus(BaseModel):
    uri: str
    database: str | None
    schema_ok: bool
    nodes: int
    edges: int
    nodes_by_class: dict[str, int]
    edges_by_relation: dict[str, int]


def rule_filter_indexes() -> list[tuple[str, str]]:
    """(class, property) pairs the built-in rules filter on, so that each gets an index.

    Read from the rule files; when the rules cannot be loaded the store's own list suffices.
    """
    try:
        from reasoning.rule_model import load_rules
    except ImportError:
        return []
    out: list[tuple[str, str]] = []
    try:
        for rule in load_rules():
            patterns = [rule.start, *(st.node for st in rule.steps())]
            for node in patterns:
                for f in node.where:
                    out.extend((cls, f.prop) for cls in node.classes)
    except Exception:  # a broken rule file must not block schema creation
        return []
    return list(dict.fromkeys(out))


def _open(uri: str | None, user: str | None, database: str | None, require_schema: bool) -> Neo4jStore:
    from store.neo4j_store import Neo4jStore  # the driver loads only for these commands

    s = get_settings()
    return Neo4jStore(
        uri or s.neo4j_uri, user or s.neo4j_user, s.neo4j_password, database or s.neo4j_database,
        require_schema=require_schema,
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The Neo4j backend: schema and status.", no_args_is_help=True)
    app.add_typer(group, name="neo4j")

    @group.command("init")
    def init(uri: UriOpt = None, user: UserOpt = None, database: DbOpt = None, json: JsonOpt = False) -> None:
        """Create constraints and indexes (idempotent) and wait until they are online."""
        try:
            store = _open(uri, user, database, require_schema=False)
            try:
                stmts = store.init_schema(rule_filter_indexes())
            finally:
                store.close()
        except StoreError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        result = Neo4jInitResult(uri=store.uri, database=store.database, statements=stmts)
        if json:
            print(result.model_dump_json(indent=2))
        else:
            console.print(f"Neo4j schema ready at {result.uri}: {len(stmts)} constraints/indexes in place")

    @group.command("status")
    def status(uri: UriOpt = None, user: UserOpt = None, database: DbOpt = None, json: JsonOpt = False) -> None:
        """Reachability, schema and counts of the configured Neo4j database."""
        try:
            store = _open(uri, user, database, require_schema=False)
            try:
                counts = store.counts()
                result = Neo4jStatus(
                    uri=store.uri, database=store.database, schema_ok=store.schema_ok(),
                    nodes=counts.nodes, edges=counts.edges, nodes_by_class=counts.nodes_by_class,
                    edges_by_relation=counts.edges_by_relation,
                )
            finally:
                store.close()
        except StoreError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        if json:
            print(result.model_dump_json(indent=2))
        else:
            schema = "ok" if result.schema_ok else "MISSING (run `plantgraph neo4j init`)"
            console.print(f"{result.uri}: {result.nodes} nodes, {result.edges} edges, schema {schema}")
