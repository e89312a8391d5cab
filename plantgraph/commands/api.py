"""CLI for the API: ``serve``, ``keys create|list|revoke`` and ``audit verify|list``.

Keys and the audit log live in the SQLite files named by the settings (``PLANTGRAPH_KEYS_DB``,
``PLANTGRAPH_AUDIT_DB``, by default under ``PLANTGRAPH_DATA``), so the CLI and a running server agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from config.settings import Settings

console = Console()
err = Console(stderr=True)

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log of every API call.", no_args_is_help=True)


def _print_json(model: BaseModel | list[BaseModel]) -> None:
    if isinstance(model, list):
        typer.echo("[" + ",".join(m.model_dump_json() for m in model) + "]")
    else:
        typer.echo(model.model_dump_json(indent=2))


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, max=16, help="uvicorn worker processes (one per core for throughput; each opens the store)."
    )] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    http: Annotated[str, typer.Option(help="HTTP parser: auto (httptools when installed), httptools or h11.")] = "auto",
    loop: Annotated[str, typer.Option(help="Event loop: auto (uvloop when installed), uvloop or asyncio.")] = "auto",
    access_log: Annotated[bool, typer.Option(help="Log every request line (the audit log records them anyway).")]
    = True,
) -> None:
    """Run the HTTP API (uvicorn); OpenAPI docs at http://HOST:PORT/docs."""
    import uvicorn

    for name, value, allowed in (("--http", http, ("auto", "httptools", "h11")),
                                 ("--loop", loop, ("auto", "uvloop", "asyncio"))):
        if value not in allowed:
            err.print(f"[red]error:[/red] {name}: expected one of {', '.join(allowed)}, got {value!r}")
            raise typer.Exit(2)
    console.print(f"plantgraph API on http://{host}:{port}  (docs: /docs, health: /healthz, /readyz; "
                  f"{workers} worker(s))")
    uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, http=http, loop=loop, access_log=access_log)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="The person or system the key is for.")],
    role: Annotated[str, typer.Option("--role", help="viewer, analyst, planner, engineer, approver or admin.")],
    plants: Annotated[str, typer.Option("--plants", help="Comma-separated plant ids, or '*' for every plant.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key (for scripts).")] = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from api.keys import KeyAdminError, KeyStore

    ks = KeyStore(Settings().keys_path)
    try:
        created = ks.create(user, role, plants)
    except KeyAdminError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        ks.close()
    if json_out:
        _print_json(created)
        return
    if quiet:
        typer.echo(created.key)
        return
    plants = ",".join(created.plants)
    console.print(f"key id {created.key_id} for {created.user} ({created.role.value}; plants {plants})")
    console.print("store this key now, it is not shown again:")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never their secrets)."""
    from api.keys import KeyStore

    ks = KeyStore(Settings().keys_path)
    items = ks.list()
    ks.close()
    if json_out:
        _print_json(list(items))
        return
    table = Table("key id", "user", "role", "plants", "created", "revoked")
    for k in items:
        table.add_row(k.key_id, k.user, k.role.value, ",".join(k.plants), k.created_at.isoformat(timespec="seconds"),
                      k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoke a key; it stops working on the next request."""
    from api.keys import KeyAdminError, KeyStore

    ks = KeyStore(Settings().keys_path)
    try:
        info = ks.revoke(key_id)
    except KeyAdminError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        ks.close()
    if json_out:
        _print_json(info)
    else:
        console.print(f"revoked {info.key_id} ({info.user})")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[str | None, typer.Option("--expect-head", help="A head hash exported earlier.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the hash chain; exits 1 and names the first bad record when it is broken."""
    from api.audit import AuditLog

    settings = Settings()
    if not settings.audit_path.exists():
        err.print(f"[red]error:[/red] no audit log at {settings.audit_path}")
        raise typer.Exit(1)
    log = AuditLog(settings.audit_path)
    report = log.verify(expect_head)
    log.close()
    if json_out:
        _print_json(report)
    elif report.ok:
        console.print(f"[green]ok[/green]: {report.records} records, head {report.head_seq} {report.head_hash}")
    else:
        console.print(f"[red]BROKEN[/red] at record {report.first_bad_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind (ask, analysis, event, decision, ...).")] = None,
    since: Annotated[datetime | None, typer.Option(help="From this time (ISO-8601 with offset).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Before this time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Audit records, newest first."""
    from api.audit import AuditLog

    for name, t in (("--since", since), ("--until", until)):
        if t is not None and t.tzinfo is None:
            err.print(f"[red]error:[/red] {name}: expected a time with an offset, e.g. 2026-03-02T06:00:00Z")
            raise typer.Exit(1)
    settings = Settings()
    log = AuditLog(settings.audit_path)
    items, _total = log.query(user=user, kind=kind, since=since, until=until, limit=limit)
    log.close()
    if json_out:
        _print_json(list(items))
        return
    table = Table("seq", "time", "user", "kind", "call", "status", "question / detail")
    for r in items:
        table.add_row(str(r.seq), r.ts.isoformat(timespec="seconds"), r.user or "-", r.kind,
                      f"{r.method} {r.endpoint}", str(r.status), (r.question or r.detail or "")[:60])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
