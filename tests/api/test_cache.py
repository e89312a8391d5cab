"""The response cache: a repeated analysis is served byte for byte and audited the same; a write
(through the API or straight into the store) is seen by the next call; scopes never share entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.audit import AuditLog
from api.cache import CachedResponse, ResponseCache
from config.settings import Settings
from store.base import GraphStore
from tests.api.conftest import Keys, _degraded_copilot
from tests.graphs import build_graph


def _reached_sols(body: dict[str, Any]) -> set[str]:
    return {x["entity"]["id"] for x in body["result"]["sales_order_lines"]}


def _services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


def test_repeat_is_served_from_cache_and_audited_alike(client: TestClient, keys: Keys, settings: Settings) -> None:
    first = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst"))
    second = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst"))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert _services(client).responses.stats.hits >= 1
    records, _ = AuditLog(settings.audit_path).query(kind="analysis")
    a, b = records[0], records[1]  # newest first
    assert a.entity_ids == b.entity_ids and "SOL-A1" in a.entity_ids
    assert a.digest == b.digest
    assert AuditLog(settings.audit_path).verify().ok


def test_write_into_the_store_is_seen_by_the_next_call(client: TestClient, keys: Keys,
                                                       plant_store: GraphStore) -> None:
    before = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst")).json()
    assert "SOL-NEW" not in _reached_sols(before)
    # someone else (a CLI load) writes: no API call tells the cache, the store's generation does
    site = {"plant": "SITE-A"}
    build_graph(plant_store, [("SO-NEW", "SalesOrder", {"order_date": "2026-03-02T06:00:00+00:00"}, site),
                              ("SOL-NEW", "SalesOrderLine", {"quantity": 5.0, "due_date": "2026-03-12T00:00:00+00:00"},
                               site)],
                [("SO-NEW", "HAS_SO_LINE", "SOL-NEW"), ("SO-NEW", "PLACED_BY", "CUST-2"),
                 ("SOL-NEW", "FOR_MATERIAL", "MAT-FG"), ("L-A2", "ALLOCATED_TO", "SOL-NEW", {"quantity": 5.0})])
    after = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst")).json()
    assert "SOL-NEW" in _reached_sols(after)


def test_event_through_the_api_is_seen_by_the_next_call(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/trace/lot/L-A2", headers=keys.h("analyst"))
    assert r.status_code == 200
    ev = {"type": "quality_hold_placed", "event_id": "EC1", "hold_id": "QH-C1", "lot_ids": ["L-A2"],
          "reason": "cache test", "occurred_at": "2026-03-03T08:00:00+00:00"}
    assert client.post("/v1/events", json={"event": ev}, headers=keys.h("engineer")).status_code == 200
    trace = client.get("/v1/trace/hold/QH-C1", headers=keys.h("analyst"))
    assert trace.status_code == 200 and "SOL-A1" in _reached_sols(trace.json())


def test_scopes_do_not_share_entries(client: TestClient, keys: Keys) -> None:
    wide = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst"))
    narrow = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst_a"))
    again = client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst_a"))
    assert wide.status_code == narrow.status_code == 200
    assert "SOL-B1" in wide.text and "SOL-B1" not in narrow.text
    assert narrow.json()["scope"]["withheld"] > 0
    assert narrow.content == again.content
    # a key of the other plant still gets 404 for this hold, cached entries or not
    assert client.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst_b")).status_code == 404


def test_ask_repeat_is_identical(client: TestClient, keys: Keys) -> None:
    q = {"question": "Lot L-A1 is on hold. Which customers are affected?"}
    a = client.post("/v1/ask", json=q, headers=keys.h("analyst"))
    b = client.post("/v1/ask", json=q, headers=keys.h("analyst"))
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    narrow = client.post("/v1/ask", json=q, headers=keys.h("analyst_a"))
    assert narrow.status_code == 200 and "CUST-1" not in narrow.text


def test_cache_off_answers_the_same(tmp_path: Path, plant_store: GraphStore) -> None:
    settings = Settings(PLANTGRAPH_DATA=tmp_path / "off", store=tmp_path / "store", result_cache_mb=0)
    from tests.api.conftest import make_keys

    keys = make_keys(settings)
    app = create_app(settings, store=plant_store, copilot_factory=_degraded_copilot)
    with TestClient(app) as c:
        a = c.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst"))
        b = c.get("/v1/trace/hold/QH-A1", headers=keys.h("analyst"))
        assert a.content == b.content
        stats = app.state.services.responses.stats
        assert stats.hits == stats.misses == 0


def test_cache_bounds_and_epochs() -> None:
    cache = ResponseCache(max_bytes=400)
    entry = CachedResponse(b"x" * 100, frozenset({"A"}))
    cache.put(1, "k", entry)  # no epoch seen yet: a put alone never starts one
    assert cache.get(1, "k") is None
    cache.put(1, "k", entry)
    assert cache.get(1, "k") == entry
    cache.put(0, "old", entry)  # computed at an older state: dropped
    assert cache.get(1, "old") is None
    cache.put(1, "big", CachedResponse(b"y" * 101, frozenset()))  # over a quarter of the cache
    assert cache.get(1, "big") is None
    for i in range(5):
        cache.put(1, i, entry)
    assert cache.stats.bytes <= 400 and cache.get(1, "k") is None  # least recently used went first
    assert cache.get(2, 4) is None  # a new graph state empties it
    assert cache.stats.entries == 0
