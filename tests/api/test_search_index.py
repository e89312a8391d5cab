"""The search index follows writes: the API's own write patches it, anyone else's rebuilds it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from store.base import GraphStore
from tests.api.conftest import Keys
from tests.graphs import build_graph


def _ids(client: TestClient, keys: Keys, q: str, key: str = "viewer") -> set[str]:
    r = client.get("/v1/entities", params={"q": q, "fuzzy": False}, headers=keys.h(key))
    assert r.status_code == 200, r.text
    return {h["entity"]["id"] for h in r.json()["items"]}


def _names(client: TestClient) -> Any:
    return client.app.state.services.names  # type: ignore[attr-defined]


def test_api_write_patches_the_index(client: TestClient, keys: Keys) -> None:
    assert _ids(client, keys, "QH-") == {"QH-A1", "QH-B1"}
    assert _names(client).rebuilds == 1
    ev = {"type": "quality_hold_placed", "event_id": "ES1", "hold_id": "QH-PATCHED", "lot_ids": ["L-A2"],
          "reason": "search test", "occurred_at": "2026-03-03T08:00:00+00:00"}
    assert client.post("/v1/events", json={"event": ev}, headers=keys.h("engineer")).status_code == 200
    # found by substring (not the exact-id lookup), without rebuilding the whole index
    assert _ids(client, keys, "QH-") == {"QH-A1", "QH-B1", "QH-PATCHED"}
    assert _names(client).rebuilds == 1
    # the scope still applies to patched entries
    assert "QH-PATCHED" not in _ids(client, keys, "QH-", "viewer_b")


def test_outside_write_rebuilds_the_index(client: TestClient, keys: Keys, plant_store: GraphStore) -> None:
    assert _ids(client, keys, "Zebra") == set()
    zebra = ("M-A9", "Machine", {"machine_type": "press"}, {"plant": "SITE-A", "name": "Zebra press"})
    build_graph(plant_store, [zebra])
    assert _ids(client, keys, "Zebra") == {"M-A9"}
    assert _names(client).rebuilds == 2


def test_patched_rename_retires_the_old_name(client: TestClient, keys: Keys, plant_store: GraphStore) -> None:
    assert _ids(client, keys, "Press A1") == {"M-A1"}
    # a write the API made itself (one commit), reported to the index as such
    build_graph(plant_store, [("M-A1", "Machine", {"machine_type": "press"}, {"plant": "SITE-A", "name": "Stamper"})])
    _names(client).written(plant_store, ["M-A1"])
    assert _ids(client, keys, "Press A1") == set()
    assert _ids(client, keys, "Stamper") == {"M-A1"}
    assert _names(client).rebuilds == 1
