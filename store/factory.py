"""``open_store()``: the one way every part opens a graph store, by backend name.

Takes explicit arguments (the store never reads config.settings; see
:func:`config.runtime.open_configured_store` for the settings-driven variant).
"""

from __future__ import annotations

from pathlib import Path

from store.base import GraphStore, StoreUnavailableError

BACKENDS = ("embedded", "neo4j")


def open_store(
    backend: str = "embedded",
    path: Path | str | None = None,
    *,
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> GraphStore:
    """Open (creating if needed) the store of ``backend``.

    ``embedded`` needs ``path`` (a folder; created when missing). ``neo4j`` needs ``uri``; its
    module is imported only here so that the embedded path never loads the Neo4j driver.
    """
    if backend == "embedded":
        if path is None:
            raise StoreUnavailableError("the embedded store needs a path (a folder for graph.sqlite)")
        from store.embedded import EmbeddedStore

        return EmbeddedStore(Path(path))
    if backend == "neo4j":
        if not uri:
            raise StoreUnavailableError("the neo4j store needs a uri, e.g. bolt://127.0.0.1:7687")
        try:
            from store.neo4j_store import Neo4jStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise StoreUnavailableError(f"the neo4j backend is not available: {exc}") from None
        store: GraphStore = Neo4jStore(uri, user, password, database)
        return store
    raise StoreUnavailableError(
        f"unknown store backend {backend!r}; expected one of: {', '.join(BACKENDS)}"
    )
