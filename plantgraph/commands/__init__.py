"""CLI command groups. Each module here has ``register(app)``; add new modules to the list."""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: list[str] = [
    "plantgraph.commands.copilot",  # ask, docs add, index build, eval (GraphRAG copilot)
    "plantgraph.commands.api",  # serve, keys, audit (API)
    "plantgraph.commands.reasoning",  # trace, risk, rootcause, sop, rules (reasoning)
    "plantgraph.commands.rules_explain",  # rules explain (Cypher compilation; after reasoning)
    "plantgraph.commands.generate",  # generate (synthetic plant generator)
    "plantgraph.commands.data",  # validate, load, stats, get, export rdf (foundation)
    "plantgraph.commands.interop",  # import b2mml|table|rdf, export b2mml (interop)
    "plantgraph.commands.neo4j",  # neo4j init, status (Neo4j backend)
]


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
