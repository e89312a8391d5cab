"""Opening the configured store from :mod:`config.settings` (CLI, API and tools share this)."""

from __future__ import annotations

from config.settings import Settings, get_settings
from store.base import GraphStore
from store.factory import open_store


def open_configured_store(settings: Settings | None = None) -> GraphStore:
    """The store named by ``PLANTGRAPH_BACKEND`` (embedded at ``store_path``, or Neo4j)."""
    s = settings if settings is not None else get_settings()
    if s.backend == "neo4j":
        return open_store(
            "neo4j",
            uri=s.neo4j_uri,
            user=s.neo4j_user,
            password=s.neo4j_password,
            database=s.neo4j_database,
        )
    return open_store("embedded", s.store_path)
