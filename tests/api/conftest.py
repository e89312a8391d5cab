"""API test fixtures: an embedded store with the two-plant graph, an app over it, keys per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from config.settings import Settings
from store.base import GraphStore
from store.factory import open_store
from tests.api.plant import build_two_plants


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(PLANTGRAPH_DATA=tmp_path / "data", store=tmp_path / "store")


@pytest.fixture
def plant_store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", tmp_path / "store")
    build_two_plants(s)
    try:
        yield s
    finally:
        s.close()


@dataclass
class Keys:
    """Keys by name: ``<role>`` (all plants), ``<role>_a`` / ``<role>_b`` (one plant)."""

    raw: dict[str, str]

    def h(self, name: str) -> dict[str, str]:
        return {"X-API-Key": self.raw[name]}


def make_keys(settings: Settings) -> Keys:
    ks = KeyStore(settings.keys_path)
    raw: dict[str, str] = {}
    for role in ("viewer", "analyst", "planner", "engineer", "approver", "admin"):
        raw[role] = ks.create(f"{role}-all", role, "*").key
        raw[f"{role}_a"] = ks.create(f"{role}-a", role, "SITE-A").key
        raw[f"{role}_b"] = ks.create(f"{role}-b", role, "SITE-B").key
    raw["approver2"] = ks.create("approver-two", "approver", "*").key
    ks.close()
    return Keys(raw)


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, plant_store: GraphStore, keys: Keys) -> Iterator[TestClient]:
    app = create_app(settings, store=plant_store, copilot_factory=_degraded_copilot)
    with TestClient(app) as c:
        yield c


def _degraded_copilot(store: GraphStore, settings: Settings, analyses: Any) -> Any:
    """The real copilot without a vector index (no model load in unit tests): degraded mode."""
    from reasoning.rag.copilot import Copilot

    return Copilot(store, analyses=analyses, index=None, index_error="no vector index (test)")
