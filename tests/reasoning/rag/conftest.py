"""Fixtures of the copilot tests: a hand-built two-plant store, a fake embedder, and the real
local model loaded once per session (only a few tests use it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from reasoning.rag.embedder import SentenceTransformerEmbedder
from store.base import GraphStore
from store.factory import open_store
from tests.reasoning.rag.fakes import HashEmbedder
from tests.reasoning.rag.plant import NOW, build_plant


@pytest.fixture
def plant_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def plant(plant_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", plant_path)
    build_plant(s)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def now() -> datetime:
    return datetime.fromisoformat(NOW)


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def st_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded from its local folder (offline)."""
    emb = SentenceTransformerEmbedder()
    emb.embed(["warm up"])
    return emb
