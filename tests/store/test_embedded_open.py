"""Opening the embedded store: paths, foreign files, the factory and the settings helper."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from config.runtime import open_configured_store
from config.settings import Settings
from store.base import StoreUnavailableError
from store.embedded import DB_FILE, EmbeddedStore
from store.factory import open_store


def test_missing_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store"
    with EmbeddedStore(path) as s:
        assert s.counts().nodes == 0
    assert (path / DB_FILE).is_file()


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(StoreUnavailableError, match=r"notes\.txt.*is a file"):
        EmbeddedStore(f)
    assert f.read_text() == "hello"


def test_a_foreign_folder_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("x")
    with pytest.raises(StoreUnavailableError, match="not a plantgraph store"):
        EmbeddedStore(tmp_path)
    assert not (tmp_path / DB_FILE).exists()


def test_garbage_database_file(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailableError, match="not a plantgraph store"):
        EmbeddedStore(tmp_path)


def test_other_sqlite_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute("CREATE TABLE invoices(id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreUnavailableError, match="not a plantgraph store"):
        EmbeddedStore(tmp_path)


def test_schema_version_mismatch(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreUnavailableError, match="schema version '999'"):
        EmbeddedStore(tmp_path)


def test_factory(tmp_path: Path) -> None:
    with open_store("embedded", tmp_path / "s") as s:
        assert s.backend == "embedded"
    with pytest.raises(StoreUnavailableError, match="unknown store backend 'mongo'"):
        open_store("mongo", tmp_path)
    with pytest.raises(StoreUnavailableError, match="needs a path"):
        open_store("embedded")
    with pytest.raises(StoreUnavailableError, match="needs a uri"):
        open_store("neo4j")


def test_open_configured_store(tmp_path: Path) -> None:
    settings = Settings(PLANTGRAPH_DATA=tmp_path / "data", store=tmp_path / "custom")
    with open_configured_store(settings) as s:
        assert isinstance(s, EmbeddedStore)
        assert s.path == tmp_path / "custom"
    with open_configured_store(Settings(PLANTGRAPH_DATA=tmp_path / "data")) as s:
        assert isinstance(s, EmbeddedStore) and s.path == tmp_path / "data" / "store"
