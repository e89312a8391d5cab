"""The ``plantgraph`` command line. Each area registers its commands from plantgraph.commands."""

from __future__ import annotations

import typer

from plantgraph.commands import register_all

app = typer.Typer(
    name="plantgraph",
    help="A knowledge-graph copilot for manufacturing execution.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
register_all(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
