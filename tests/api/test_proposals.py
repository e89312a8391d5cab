"""Proposals: create per kind and role, list/detail, approve by another approver (applied + outbox),
reject, self-approval refused, decided twice refused, stale targets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from tests.api.conftest import Keys


def propose(client: TestClient, keys: Keys, action: dict[str, Any], key: str = "engineer") -> Any:
    return client.post("/v1/proposals", json={"action": action, "comment": "please"}, headers=keys.h(key))


def decide(client: TestClient, keys: Keys, pid: str, verb: str, key: str = "approver") -> Any:
    return client.post(f"/v1/proposals/{pid}/{verb}", json={"comment": f"{verb}d after review"}, headers=keys.h(key))


def entity(client: TestClient, keys: Keys, i: str) -> dict[str, Any]:
    return client.get(f"/v1/entities/{i}", headers=keys.h("viewer")).json()["entity"]  # type: ignore[no-any-return]


def outbox(settings: Settings) -> list[dict[str, Any]]:
    p = settings.outbox_path
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_maintenance_request_approved_is_applied_and_outboxed(client: TestClient, keys: Keys,
                                                               settings: Settings) -> None:
    r = propose(client, keys, {"kind": "maintenance_request", "machine_id": "M-A1", "text": "replace die",
                               "addresses": ["INC-A1", "DT-A1"]})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "pending" and p["plants"] == ["SITE-A"] and p["proposed_by"] == "engineer-all"
    mo = f"MO-{p['id']}"
    # nothing applied and nothing in the outbox before approval
    assert client.get(f"/v1/entities/{mo}", headers=keys.h("viewer")).status_code == 404
    assert outbox(settings) == []
    r = decide(client, keys, p["id"], "approve")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "approved" and done["decided_by"] == "approver-all"
    assert mo in done["applied_ids"]
    assert entity(client, keys, mo)["props"]["text"] == "replace die"
    lines = outbox(settings)
    assert len(lines) == 1
    assert lines[0]["proposal_id"] == p["id"] and lines[0]["target_system"] == "CMMS"
    assert lines[0]["approved_by"] == "approver-all" and lines[0]["proposed_by"] == "engineer-all"


def test_quality_hold_proposal(client: TestClient, keys: Keys) -> None:
    p = propose(client, keys, {"kind": "quality_hold", "lot_ids": ["L-A2"], "reason": "suspect"}, key="analyst").json()
    assert entity(client, keys, "L-A2")["props"]["status"] == "released"
    decide(client, keys, p["id"], "approve")
    assert entity(client, keys, "L-A2")["props"]["status"] == "on_hold"
    assert entity(client, keys, f"QH-{p['id']}")["props"]["placed_by"] == "analyst-all"


def test_escalate_incident(client: TestClient, keys: Keys) -> None:
    p = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "reason": "recurs"}).json()
    decide(client, keys, p["id"], "approve")
    assert entity(client, keys, "INC-A1")["props"]["severity"] == "medium"  # one level up from low
    r = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "severity": "low",
                               "reason": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "body.action.severity"


def test_expedite_sales_order(client: TestClient, keys: Keys, settings: Settings) -> None:
    p = propose(client, keys, {"kind": "expedite_sales_order", "sales_order_id": "SO-A1", "reason": "vip"},
                key="planner").json()
    decide(client, keys, p["id"], "approve")
    assert entity(client, keys, "SOL-A1")["props"]["priority"] == "urgent"
    assert outbox(settings)[-1]["target_system"] == "ERP"


def test_reject_changes_nothing(client: TestClient, keys: Keys, settings: Settings) -> None:
    p = propose(client, keys, {"kind": "quality_hold", "lot_ids": ["L-A2"], "reason": "suspect"}).json()
    r = decide(client, keys, p["id"], "reject")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["decision_comment"] == "rejectd after review"
    assert entity(client, keys, "L-A2")["props"]["status"] == "released"
    assert outbox(settings) == []


def test_self_approval_refused(client: TestClient, keys: Keys) -> None:
    p = propose(client, keys, {"kind": "quality_hold", "lot_ids": ["L-A2"], "reason": "suspect"}, key="approver").json()
    r = decide(client, keys, p["id"], "approve", key="approver")
    assert r.status_code == 403
    assert "other than" in r.json()["detail"]
    # the same person with another key is still the same person
    from api.keys import KeyStore

    ks = KeyStore(client.app.state.services.settings.keys_path)  # type: ignore[attr-defined]
    second_key = ks.create("approver-all", "approver", "*").key
    ks.close()
    r = client.post(f"/v1/proposals/{p['id']}/approve", json={"comment": "me again"},
                    headers={"X-API-Key": second_key})
    assert r.status_code == 403
    assert entity(client, keys, "L-A2")["props"]["status"] == "released"
    assert decide(client, keys, p["id"], "approve", key="approver2").status_code == 200


@pytest.mark.parametrize("key", ["viewer", "analyst", "engineer", "admin"])
def test_only_approvers_decide(client: TestClient, keys: Keys, key: str) -> None:
    action = {"kind": "escalate_incident", "incident_id": "INC-A1", "reason": "x"}
    p = propose(client, keys, action, key="planner").json()
    assert decide(client, keys, p["id"], "approve", key=key).status_code == 403


def test_decided_twice_is_409(client: TestClient, keys: Keys) -> None:
    p = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "reason": "x"}).json()
    assert decide(client, keys, p["id"], "reject").status_code == 200
    assert decide(client, keys, p["id"], "approve", key="approver2").status_code == 409


@pytest.mark.parametrize(("key", "kind", "status"), [
    ("planner", {"kind": "maintenance_request", "machine_id": "M-A1", "text": "t"}, 403),
    ("analyst", {"kind": "expedite_sales_order", "sales_order_id": "SO-A1", "reason": "r"}, 403),
    ("engineer", {"kind": "expedite_sales_order", "sales_order_id": "SO-A1", "reason": "r"}, 403),
    ("viewer", {"kind": "escalate_incident", "incident_id": "INC-A1", "reason": "r"}, 403),
    ("planner", {"kind": "expedite_sales_order", "sales_order_id": "SOL-A1", "reason": "r"}, 201),
])
def test_per_kind_roles(client: TestClient, keys: Keys, key: str, kind: dict[str, Any], status: int) -> None:
    assert propose(client, keys, kind, key=key).status_code == status


def test_bad_targets(client: TestClient, keys: Keys) -> None:
    r = propose(client, keys, {"kind": "maintenance_request", "machine_id": "L-A1", "text": "t"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "body.action.machine_id"
    r = propose(client, keys, {"kind": "maintenance_request", "machine_id": "M-NOPE", "text": "t"})
    assert r.status_code == 404
    r = propose(client, keys, {"kind": "quality_hold", "lot_ids": ["L-A1", "L-B1"], "reason": "mixed plants"})
    assert r.status_code == 422
    r = client.post("/v1/proposals", json={"action": {"kind": "launch_rocket"}}, headers=keys.h("engineer"))
    assert r.status_code == 422
    empty_comment = client.post("/v1/proposals/PRP-x/approve", json={"comment": ""}, headers=keys.h("approver"))
    assert empty_comment.status_code == 422


def test_list_and_detail(client: TestClient, keys: Keys) -> None:
    a = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "reason": "x"}).json()
    b = propose(client, keys, {"kind": "quality_hold", "lot_ids": ["L-A2"], "reason": "y"}).json()
    decide(client, keys, b["id"], "reject")
    listed = client.get("/v1/proposals", headers=keys.h("analyst")).json()
    assert {p["id"] for p in listed["items"]} == {a["id"], b["id"]}
    pending = client.get("/v1/proposals", params={"status": "pending"}, headers=keys.h("analyst")).json()
    assert [p["id"] for p in pending["items"]] == [a["id"]]
    holds = client.get("/v1/proposals", params={"kind": "quality_hold"}, headers=keys.h("analyst")).json()
    assert [p["id"] for p in holds["items"]] == [b["id"]]
    detail = client.get(f"/v1/proposals/{a['id']}", headers=keys.h("analyst")).json()
    assert detail["action"]["incident_id"] == "INC-A1"
    assert client.get("/v1/proposals", headers=keys.h("viewer")).status_code == 403


def test_stale_target_fails_at_approval(client: TestClient, keys: Keys) -> None:
    p = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "severity": "medium",
                               "reason": "x"}).json()
    q = propose(client, keys, {"kind": "escalate_incident", "incident_id": "INC-A1", "severity": "high",
                               "reason": "y"}).json()
    assert decide(client, keys, q["id"], "approve").status_code == 200
    r = decide(client, keys, p["id"], "approve", key="approver2")
    assert r.status_code == 422  # already high: escalating to medium no longer raises it
    assert client.get(f"/v1/proposals/{p['id']}", headers=keys.h("analyst")).json()["status"] == "pending"
