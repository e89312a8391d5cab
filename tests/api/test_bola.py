"""Broken object level authorisation: a key scoped to plant A gets nothing of plant B, on every
endpoint that takes an id or returns entities, and cannot tell B's ids from missing ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Keys

B_IDS = {"SITE-B", "M-B1", "L-B1", "PO-B1", "SO-B1", "SOL-B1", "QH-B1", "INC-B1"}


def _mentions_b(body: Any) -> set[str]:
    text = json.dumps(body)
    return {i for i in B_IDS if f'"{i}"' in text or f"{i} " in text or f"({i})" in text}


@pytest.mark.parametrize("path", [
    "/v1/entities/{id}", "/v1/entities/{id}/neighbourhood", "/v1/trace/lot/{id}", "/v1/trace/backward/{id}",
])
def test_b_lot_by_id_is_the_same_404_as_missing(client: TestClient, keys: Keys, path: str) -> None:
    h = keys.h("analyst_a")
    hidden = client.get(path.format(id="L-B1"), headers=h)
    missing = client.get(path.format(id="L-NOPE"), headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("L-B1", "X") == missing.json()["detail"].replace("L-NOPE", "X")


@pytest.mark.parametrize(("path", "params"), [
    ("/v1/trace/hold/QH-B1", {}),
    ("/v1/trace/incident/INC-B1", {}),
    ("/v1/trace/machine/M-B1", {"from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"}),
    ("/v1/sop", {"order": "PO-B1"}),
])
def test_b_starts_are_404(client: TestClient, keys: Keys, path: str, params: dict[str, str]) -> None:
    assert client.get(path, params=params, headers=keys.h("analyst_a")).status_code == 404
    # the same call with plant B's key is allowed
    assert client.get(path, params=params, headers=keys.h("analyst_b")).status_code == 200


def test_rootcause_with_b_lot_is_404(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/rootcause", json={"lots": ["L-A2", "L-B1"]}, headers=keys.h("analyst_a"))
    assert r.status_code == 404


def test_search_never_returns_b(client: TestClient, keys: Keys) -> None:
    for q in ("L-B1", "Widget lot B1", "Press B1", "Press", "B1", "Plant Bravo"):
        r = client.get("/v1/entities", params={"q": q, "limit": 100}, headers=keys.h("viewer_a"))
        assert r.status_code == 200
        assert not _mentions_b(r.json()["items"]), q
    # enterprise-wide entities are visible to every scope
    r = client.get("/v1/entities", params={"q": "Acme Corporation"}, headers=keys.h("viewer_b"))
    assert r.json()["items"][0]["entity"]["id"] == "CUST-1"


def test_search_filter_on_other_plant_is_403(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities", params={"q": "x", "plant": "SITE-B"}, headers=keys.h("viewer_a"))
    assert r.status_code == 403


def test_neighbourhood_cuts_at_boundary(client: TestClient, keys: Keys) -> None:
    # L-A2 -> PO-B1 (plant B) -> L-B1: both are cut for plant A, and so is what lies behind them
    r = client.get("/v1/entities/L-A2/neighbourhood", params={"depth": 3}, headers=keys.h("viewer_a"))
    body = r.json()
    assert r.status_code == 200
    assert not _mentions_b(body)
    assert body["scope"]["withheld"] > 0
    full = client.get("/v1/entities/L-A2/neighbourhood", params={"depth": 3}, headers=keys.h("viewer")).json()
    assert _mentions_b(full)  # the unscoped key sees them: the cut is the scope, not the query


def test_trace_cuts_cross_plant_paths_and_says_so(client: TestClient, keys: Keys) -> None:
    full = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).json()
    assert {"PO-B1", "L-B1", "CUST-1"} <= {x["entity"]["id"] for v in full["result"]["reached"].values() for x in v}
    r = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst_a"))
    body = r.json()
    assert r.status_code == 200
    assert not _mentions_b(body)
    reached = {x["entity"]["id"] for v in body["result"]["reached"].values() for x in v}
    # CUST-1 has no plant, but it is reached only through plant B: withheld with its path
    assert "CUST-1" not in reached
    assert {"PO-A1", "L-A2", "SOL-A1", "CUST-2"} <= reached
    assert body["scope"]["withheld"] > 0 and "withheld" in body["scope"]["note"]
    # every evidence path that is left lies in plant A or is enterprise-wide
    for group in body["result"]["reached"].values():
        for item in group:
            assert item["evidence"], item["entity"]["id"]


def test_backward_from_b_hides_a(client: TestClient, keys: Keys) -> None:
    body = client.get("/v1/trace/backward/L-B1", headers=keys.h("analyst_b")).json()
    text = json.dumps(body)
    for a_id in ("L-A1", "L-A2", "PO-A1", "QH-A1", "M-A1"):
        assert f'"{a_id}"' not in text


def test_risk_scope(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/risk", params={"plant": "SITE-B"}, headers=keys.h("planner_a")).status_code == 403
    r = client.get("/v1/risk", params={"now": "2026-03-03T00:00:00Z"}, headers=keys.h("planner_a"))
    assert r.status_code == 200
    assert not _mentions_b(r.json())


def test_ask_hides_other_plant(client: TestClient, keys: Keys) -> None:
    q = {"question": "Lot L-A1 is on hold. Which customers are affected?"}
    full = client.post("/v1/ask", json=q, headers=keys.h("analyst")).json()
    assert "CUST-1" in full["answer"]["text"]
    r = client.post("/v1/ask", json=q, headers=keys.h("analyst_a"))
    body = r.json()
    assert r.status_code == 200
    assert not _mentions_b(body)
    assert "CUST-1" not in body["answer"]["text"] and "Acme" not in body["answer"]["text"]
    assert body["scope"]["withheld"] > 0
    for c in body["answer"]["citations"]:
        assert not (set(c.get("nodes", [])) & B_IDS)
    n = len(body["answer"]["citations"])
    assert all(0 <= i < n for cl in body["answer"]["claims"] for i in cl["citations"])


def test_ask_about_b_entity_reveals_nothing(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/ask", json={"question": "Trace lot L-B1"}, headers=keys.h("analyst_a"))
    assert r.status_code == 200
    assert not _mentions_b(r.json()["answer"]["result"] or {})
    assert not (set(r.json()["answer"]["answer_ids"]) & B_IDS)


def test_proposals_on_b_targets_are_404(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/proposals", headers=keys.h("engineer_a"), json={
        "action": {"kind": "maintenance_request", "machine_id": "M-B1", "text": "fix"}})
    assert r.status_code == 404


def test_proposals_of_b_invisible_to_a(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/proposals", headers=keys.h("engineer_b"), json={
        "action": {"kind": "maintenance_request", "machine_id": "M-B1", "text": "fix"}})
    assert r.status_code == 201
    pid = r.json()["id"]
    assert client.get(f"/v1/proposals/{pid}", headers=keys.h("engineer_a")).status_code == 404
    assert client.get("/v1/proposals/PRP-nothing", headers=keys.h("engineer_a")).status_code == 404
    listed = client.get("/v1/proposals", headers=keys.h("engineer_a")).json()
    assert pid not in {p["id"] for p in listed["items"]}
    assert client.post(f"/v1/proposals/{pid}/approve", json={"comment": "ok"},
                       headers=keys.h("approver_a")).status_code == 404


def test_events_on_b_entities_are_404(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/events", headers=keys.h("engineer_a"), json={"event": {
        "type": "lot_status_changed", "event_id": "E-x", "occurred_at": "2026-03-02T06:00:00Z",
        "lot_id": "L-B1", "status": "released"}})
    assert r.status_code == 404
    assert client.get("/v1/entities/L-B1", headers=keys.h("viewer")).json()["entity"]["props"]["status"] == "on_hold"


def test_audit_needs_all_plants(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/audit", headers=keys.h("admin_a")).status_code == 403
    assert client.get("/v1/audit/verify", headers=keys.h("approver_a")).status_code == 403
    # a key listing every plant of the graph counts as all plants
    from api.keys import KeyStore

    ks = KeyStore(client.app.state.services.settings.keys_path)  # type: ignore[attr-defined]
    both = ks.create("admin-both", "admin", "SITE-A,SITE-B").key
    ks.close()
    assert client.get("/v1/audit", headers={"X-API-Key": both}).status_code == 200


def test_bundles_need_all_plants(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/bundles", headers=keys.h("admin_a"), files={"file": ("b.zip", b"PK", "application/zip")})
    assert r.status_code == 403
