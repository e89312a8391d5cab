"""plantgraph's HTTP API (FastAPI): build it with :func:`api.app.create_app`."""

__version__ = "1.0.0"
