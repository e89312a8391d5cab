"""``plantgraph rules explain RULE``: the rule compiled to one parameterised Cypher query.

On the neo4j backend the analyses and ``rules run`` send each rule as this query (see docs/rules.md,
"Cypher compilation"); the interpreter answers only where an analysis shares its neighbour reads,
and when a repeat's bound is reached.

Attached to the ``rules`` group that :mod:`plantgraph.commands.reasoning` builds (so it must be
registered after it in COMMAND_MODULES)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from plantgraph.commands.reasoning import parse_rule_params, parse_time
from reasoning.errors import ReasoningError


def _rules_group(app: typer.Typer) -> typer.Typer:
    for info in app.registered_groups:
        if info.name == "rules" and info.typer_instance is not None:
            return info.typer_instance
    raise RuntimeError("the 'rules' command group is not registered; list "
                       "plantgraph.commands.reasoning before plantgraph.commands.rules_explain")


def _sample(kind: str) -> Any:
    return ["<id>"] if kind in ("ids", "strings") else (
        datetime.fromisoformat("2000-01-01T00:00:00+00:00") if kind == "datetime" else 0 if kind == "number" else "")


def _shown(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "total_seconds"):
        return f"{v.total_seconds()}s"
    return v


def register(app: typer.Typer) -> None:
    rules_app = _rules_group(app)

    @rules_app.command("explain")
    def rules_explain(
        name: str,
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="NAME=VALUE; ids are comma-separated (placeholders when omitted).")] = None,
        as_of: Annotated[str | None, typer.Option("--as-of", help="Compile an as-of query (ISO time).")] = None,
        rules_dir: Annotated[list[Path] | None, typer.Option("--rules-dir", help="Extra folder of rule files.")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print {cypher, parameters} as JSON.")] = False,
    ) -> None:
        """Print the one Cypher query RULE runs as on the neo4j backend, and its parameters."""
        from plantgraph.commands.reasoning import configured_rules_dirs
        from reasoning.cypher import compile_rule
        from reasoning.rule_model import load_rules

        t = parse_time(as_of, "--as-of")
        try:
            rule = load_rules(configured_rules_dirs(rules_dir))[name]
            values: dict[str, Any] = {k: _sample(kind) for k, kind in rule.params.items()}
            values.update(parse_rule_params(rule.params, param))
            cq = compile_rule(rule, values, t)
        except ReasoningError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        params = {k: _shown(v) for k, v in cq.parameters.items()}
        if json_out:
            typer.echo(json.dumps({"rule": name, "cypher": cq.cypher, "parameters": params}, indent=2))
            return
        text = cq.cypher
        for kw in (" WITH ", " RETURN ", " CASE WHEN st[1]"):
            text = text.replace(kw, "\n" + kw.lstrip() if kw != " CASE WHEN st[1]" else "\n    CASE WHEN st[1]")
        typer.echo(f"// rule {name}: one query on the neo4j backend; a breadth-first search over "
                   f"{cq.parameters['levels']} levels at most, in the server")
        typer.echo(text)
        typer.echo("\nparameters:")
        for k, v in params.items():
            typer.echo(f"  {k} = {v!r}")
