"""MES/ERP events: each type's effect, validation with field paths, idempotency, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Keys

T = "2026-03-03T08:00:00+00:00"


def post(client: TestClient, keys: Keys, event: dict[str, Any], key: str = "engineer") -> Any:
    return client.post("/v1/events", json={"event": {"occurred_at": T, **event}}, headers=keys.h(key))


def entity(client: TestClient, keys: Keys, i: str) -> dict[str, Any]:
    r = client.get(f"/v1/entities/{i}", headers=keys.h("viewer"))
    assert r.status_code == 200, r.text
    return r.json()["entity"]  # type: ignore[no-any-return]


def neighbours(client: TestClient, keys: Keys, i: str, rel: str, direction: str = "out") -> set[str]:
    r = client.get(f"/v1/entities/{i}/neighbourhood", params={"rels": [rel], "direction": direction},
                   headers=keys.h("viewer"))
    return {n["id"] for n in r.json()["nodes"]["items"]}


def test_lot_status_changed(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "lot_status_changed", "event_id": "E1", "lot_id": "L-A2", "status": "quarantined"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "applied"
    assert entity(client, keys, "L-A2")["props"]["status"] == "quarantined"


def test_hold_placed_and_released(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "quality_hold_placed", "event_id": "E2", "hold_id": "QH-NEW",
                            "lot_ids": ["L-A2"], "reason": "porosity", "placed_by": "P-A1"})
    assert r.status_code == 200, r.text
    hold = entity(client, keys, "QH-NEW")
    assert hold["plant"] == "SITE-A" and hold["props"]["reason"] == "porosity"
    assert entity(client, keys, "L-A2")["props"]["status"] == "on_hold"
    assert neighbours(client, keys, "QH-NEW", "HOLDS") == {"L-A2"}
    assert neighbours(client, keys, "QH-NEW", "RAISED_BY") == {"P-A1"}
    # the next analysis sees the new hold
    trace = client.get("/v1/trace/hold/QH-NEW", headers=keys.h("analyst"))
    assert trace.status_code == 200
    assert "SOL-A1" in {x["entity"]["id"] for x in trace.json()["result"]["sales_order_lines"]}
    r = post(client, keys, {"type": "quality_hold_released", "event_id": "E3", "hold_id": "QH-NEW"})
    assert r.status_code == 200, r.text
    assert entity(client, keys, "QH-NEW")["props"]["released_at"]
    assert entity(client, keys, "L-A2")["props"]["status"] == "released"


def test_release_keeps_lot_held_by_another_open_hold(client: TestClient, keys: Keys) -> None:
    post(client, keys, {"type": "quality_hold_placed", "event_id": "E4", "hold_id": "QH-2",
                        "lot_ids": ["L-A1"], "reason": "second look"})
    post(client, keys, {"type": "quality_hold_released", "event_id": "E5", "hold_id": "QH-2"})
    # QH-A1 still holds L-A1
    assert entity(client, keys, "L-A1")["props"]["status"] == "on_hold"


def test_production_order_started_and_completed(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "production_order_started", "event_id": "E6", "order_id": "PO-B1",
                            "machine_id": "M-B1"})
    assert r.status_code == 200, r.text
    assert entity(client, keys, "PO-B1")["props"]["status"] == "running"
    r = post(client, keys, {"type": "production_order_completed", "event_id": "E7", "order_id": "PO-B1",
                            "consumed": [{"lot_id": "L-A1", "quantity": 5}],
                            "produced": [{"lot_id": "L-NEW", "quantity": 12.5}]})
    assert r.status_code == 200, r.text
    assert entity(client, keys, "PO-B1")["props"]["status"] == "completed"
    new = entity(client, keys, "L-NEW")
    assert new["plant"] == "SITE-B" and new["props"]["quantity"] == 12.5
    assert neighbours(client, keys, "L-NEW", "FOR_MATERIAL") == {"MAT-FG"}
    assert neighbours(client, keys, "PO-B1", "PRODUCED") == {"L-B1", "L-NEW"}
    assert "L-A1" in neighbours(client, keys, "PO-B1", "CONSUMED")
    # genealogy now runs through the new lot
    trace = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).json()
    assert "L-NEW" in {x["entity"]["id"] for x in trace["result"]["reached"]["Lot"]}


def test_downtime_started_and_ended(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "downtime_started", "event_id": "E8", "downtime_id": "DT-9",
                            "machine_id": "M-A1", "reason": "hydraulics"})
    assert r.status_code == 200, r.text
    assert neighbours(client, keys, "DT-9", "OCCURRED_ON") == {"M-A1"}
    r = client.post("/v1/events", headers=keys.h("engineer"), json={"event": {
        "type": "downtime_ended", "event_id": "E9", "downtime_id": "DT-9", "occurred_at": "2026-03-03T07:00:00Z"}})
    assert r.status_code == 422  # ends before it started
    r = post(client, keys, {"type": "downtime_ended", "event_id": "E10", "downtime_id": "DT-9"})
    assert r.status_code == 200
    assert entity(client, keys, "DT-9")["props"]["end"].startswith("2026-03-03T08:00:00")


def test_incident_raised(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "incident_raised", "event_id": "E11", "incident_id": "INC-9",
                            "kind": "nonconformance", "severity": "high", "title": "Crack", "machine_id": "M-A1",
                            "lot_ids": ["L-A2"]})
    assert r.status_code == 200, r.text
    inc = entity(client, keys, "INC-9")
    assert inc["plant"] == "SITE-A" and inc["props"]["severity"] == "high"
    assert neighbours(client, keys, "INC-9", "CONCERNS") == {"L-A2"}


def test_replayed_event_changes_nothing(client: TestClient, keys: Keys) -> None:
    ev = {"type": "quality_hold_placed", "event_id": "E-R", "hold_id": "QH-R", "lot_ids": ["L-A2"], "reason": "r"}
    first = post(client, keys, ev)
    assert first.json()["status"] == "applied"
    # someone releases the lot in between; the replay must not put it back on hold
    post(client, keys, {"type": "lot_status_changed", "event_id": "E-S", "lot_id": "L-A2", "status": "released"})
    before = entity(client, keys, "L-A2"), entity(client, keys, "QH-R")
    second = post(client, keys, ev)
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert second.json()["entity_ids"] == first.json()["entity_ids"]
    assert (entity(client, keys, "L-A2"), entity(client, keys, "QH-R")) == before


def test_reused_event_id_with_other_payload_is_409(client: TestClient, keys: Keys) -> None:
    post(client, keys, {"type": "lot_status_changed", "event_id": "E-C", "lot_id": "L-A2", "status": "quarantined"})
    r = post(client, keys, {"type": "lot_status_changed", "event_id": "E-C", "lot_id": "L-A2", "status": "scrapped"})
    assert r.status_code == 409
    assert entity(client, keys, "L-A2")["props"]["status"] == "quarantined"


def test_bad_reference_changes_nothing(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "production_order_completed", "event_id": "E-B", "order_id": "PO-A1",
                            "consumed": [{"lot_id": "L-A1", "quantity": 1}, {"lot_id": "M-A1", "quantity": 1}],
                            "produced": [{"lot_id": "L-X", "quantity": 1}]})
    assert r.status_code == 422
    errs = r.json()["errors"]
    assert errs[0]["loc"] == "body.event.consumed[1].lot_id" and "Machine" in errs[0]["msg"]
    client.get("/v1/entities/L-X", headers=keys.h("viewer"))
    assert client.get("/v1/entities/L-X", headers=keys.h("viewer")).status_code == 404
    assert entity(client, keys, "PO-A1")["props"]["status"] == "completed"
    # the failed event's id is not burnt: a corrected event with the same id applies
    ok = post(client, keys, {"type": "production_order_completed", "event_id": "E-B", "order_id": "PO-A1",
                             "produced": [{"lot_id": "L-X", "quantity": 1}]})
    assert ok.status_code == 200 and ok.json()["status"] == "applied"


@pytest.mark.parametrize("event", [
    {"type": "lot_status_changed", "event_id": "E", "lot_id": "L-A1", "status": "melted"},
    {"type": "teleported", "event_id": "E", "lot_id": "L-A1"},
    {"type": "lot_status_changed", "lot_id": "L-A1", "status": "released"},
    {"type": "quality_hold_placed", "event_id": "E", "hold_id": "H", "lot_ids": [], "reason": "r"},
    {"type": "lot_status_changed", "event_id": "E", "lot_id": "L-A1", "status": "released", "extra": 1},
])
def test_schema_errors_are_422_with_paths(client: TestClient, keys: Keys, event: dict[str, Any]) -> None:
    r = post(client, keys, event)
    assert r.status_code == 422
    assert all(e["loc"].startswith("body.event") for e in r.json()["errors"])


def test_naive_time_is_422(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/events", headers=keys.h("engineer"), json={"event": {
        "type": "lot_status_changed", "event_id": "E", "occurred_at": "2026-03-03T08:00:00", "lot_id": "L-A1",
        "status": "released"}})
    assert r.status_code == 422


def test_new_id_colliding_with_other_class_is_422(client: TestClient, keys: Keys) -> None:
    r = post(client, keys, {"type": "downtime_started", "event_id": "E-D", "downtime_id": "L-A1",
                            "machine_id": "M-A1", "reason": "x"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "body.event.downtime_id"


def test_event_is_visible_to_search_and_the_copilot(client: TestClient, keys: Keys) -> None:
    # warm both up first, so the test proves they are refreshed, not built after the write
    client.get("/v1/entities", params={"q": "Lot"}, headers=keys.h("viewer"))
    client.post("/v1/ask", json={"question": "What is lot L-A2?"}, headers=keys.h("analyst"))
    r = post(client, keys, {"type": "production_order_completed", "event_id": "E-V", "order_id": "PO-A1",
                            "produced": [{"lot_id": "L-FRESH", "quantity": 3, "name": "Fresh batch"}]})
    assert r.status_code == 200
    hits = client.get("/v1/entities", params={"q": "Fresh batch"}, headers=keys.h("viewer")).json()["items"]
    assert hits and hits[0]["entity"]["id"] == "L-FRESH"
    ans = client.post("/v1/ask", json={"question": "Where did lot L-FRESH come from?"}, headers=keys.h("analyst"))
    linked = {i for m in ans.json()["answer"]["links"]["linked"] for i in m["ids"]}
    assert "L-FRESH" in linked
