"""Shared fixtures. ``store`` is a fresh, empty store, parametrised over every backend.

Use it from any test folder (tests/store, tests/reasoning, ...); a test that takes ``store``
runs once per backend. The ``neo4j`` parameter carries ``pytest.mark.neo4j`` and needs a
server: ``tools/run_tests.sh`` (``make test``) starts one and sets ``NEO4J_URI``. It is skipped,
loudly, only when ``PLANTGRAPH_SKIP_NEO4J=1`` or ``NEO4J_URI`` is unset.

Contract for ``store.neo4j_store.Neo4jStore``: it must offer ``clear()``, which deletes every
node and relationship of its database; the fixture calls it before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.base import GraphStore, StoreUnavailableError
from store.factory import open_store

BACKEND_PARAMS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("neo4j", id="neo4j", marks=pytest.mark.neo4j),
]

_neo4j_skips: list[str] = []


def neo4j_skip_reason() -> str | None:
    """Why the Neo4j tests cannot run here, or None when they must."""
    if os.environ.get("PLANTGRAPH_SKIP_NEO4J") == "1":
        return "SKIPPING NEO4J TESTS: PLANTGRAPH_SKIP_NEO4J=1 is set (CI never sets it)"
    if not os.environ.get("NEO4J_URI"):
        return "SKIPPING NEO4J TESTS: NEO4J_URI is unset (run `make test`, or `make neo4j-up` and export NEO4J_URI)"
    return None


def open_backend(backend: str, tmp_path: Path) -> GraphStore:
    """A fresh, empty store of ``backend`` (the embedded one under ``tmp_path``)."""
    if backend == "embedded":
        return open_store("embedded", tmp_path / "store")
    reason = neo4j_skip_reason()
    if reason is not None:
        _neo4j_skips.append(reason)
        pytest.skip(reason)
    uri = os.environ["NEO4J_URI"]
    user = os.environ.get("NEO4J_USER", "neo4j")
    password = os.environ.get("NEO4J_PASSWORD")
    database = os.environ.get("NEO4J_DATABASE")
    try:
        store = open_store("neo4j", uri=uri, user=user, password=password, database=database)
    except StoreUnavailableError as exc:
        if "schema" not in str(exc).lower() and "constraint" not in str(exc).lower():
            raise
        # a fresh test server: create the constraints once (what `plantgraph neo4j init` does)
        from store.neo4j_store import Neo4jStore

        bare = Neo4jStore(uri, user, password, database, require_schema=False)
        try:
            bare.init_schema()
        finally:
            bare.close()
        store = open_store("neo4j", uri=uri, user=user, password=password, database=database)
    clear = getattr(store, "clear", None)
    if clear is None:
        store.close()
        pytest.fail("Neo4jStore must offer clear() so that every test starts from an empty database")
    clear()
    return store


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name of the current parameter ("embedded" or "neo4j")."""
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[GraphStore]:
    s = open_backend(backend, tmp_path)
    try:
        yield s
    finally:
        s.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _neo4j_skips:
        terminalreporter.write_sep("!", f"{_neo4j_skips[0]} ({len(_neo4j_skips)} tests skipped)", red=True)
