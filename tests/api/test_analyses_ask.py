"""Analysis endpoints and the copilot endpoint: results, parameters and every error path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from store.base import GraphStore
from tests.api.conftest import Keys

WINDOW = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"}


def reached(body: dict[str, Any]) -> set[str]:
    return {x["entity"]["id"] for v in body["result"]["reached"].values() for x in v}


def test_trace_lot_forward_and_backward(client: TestClient, keys: Keys) -> None:
    fwd = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).json()
    assert fwd["result"]["direction"] == "forward"
    assert {"PO-A1", "L-A2", "PO-B1", "L-B1", "SOL-A1", "SOL-B1", "CUST-1", "CUST-2"} <= reached(fwd)
    assert fwd["result"]["shipped_lots"] == ["L-B1"]
    back = client.get("/v1/trace/lot/L-B1", params={"backward": True}, headers=keys.h("analyst")).json()
    assert back["result"]["direction"] == "backward"
    assert {"PO-B1", "L-A2", "PO-A1", "L-A1", "SUP-1"} <= reached(back)
    same = client.get("/v1/trace/backward/L-B1", headers=keys.h("analyst")).json()
    assert same["result"] == back["result"]


def test_trace_hold_machine_incident(client: TestClient, keys: Keys) -> None:
    h = keys.h("engineer")
    hold = client.get("/v1/trace/hold/QH-B1", headers=h).json()
    assert hold["result"]["start_lots"] == ["L-B1"]
    assert {x["entity"]["id"] for x in hold["result"]["customers"]} == {"CUST-1"}
    machine = client.get("/v1/trace/machine/M-A1", params=WINDOW, headers=h).json()
    assert machine["result"]["start_orders"] == ["PO-A1"]
    empty = client.get("/v1/trace/machine/M-A1", params={"from": "2025-01-01T00:00:00Z",
                                                         "to": "2025-01-02T00:00:00Z"}, headers=h).json()
    assert reached(empty) == set()
    inc = client.get("/v1/trace/incident/INC-A1", headers=h).json()
    assert inc["result"]["start_lots"] == ["L-A2"]


def test_evidence_paths_exist_in_the_store(client: TestClient, keys: Keys, plant_store: GraphStore) -> None:
    body = client.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).json()
    for group in body["result"]["reached"].values():
        for item in group:
            for path in item["evidence"]:
                for step in path["steps"]:
                    src, dst = (step["src"], step["dst"]) if step["direction"] == "out" else (step["dst"], step["src"])
                    assert any(e.dst == dst for e in plant_store.neighbours(src, [step["rel"]])), step


def test_risk_rootcause_sop(client: TestClient, keys: Keys) -> None:
    h = keys.h("planner")
    risk = client.get("/v1/risk", params={"horizon_days": 30, "now": "2026-03-03T00:00:00Z"}, headers=h)
    assert risk.status_code == 200
    lines = {ln["line"]["id"]: ln for ln in risk.json()["result"]["lines"]}
    assert "SOL-A1" in lines
    # SOL-A1 is fed by L-A2 whose input L-A1 is held: a cause must be given
    rc = client.post("/v1/rootcause", json={"lots": ["L-A2"]}, headers=h)
    assert rc.status_code == 200 and rc.json()["result"]["bad_lots"] == ["L-A2"]
    sop = client.get("/v1/sop", params={"order": "PO-A1"}, headers=h)
    assert sop.status_code == 200 and sop.json()["result"]["order"]["id"] == "PO-A1"


@pytest.mark.parametrize(("method", "path", "params"), [
    ("get", "/v1/trace/machine/M-A1", {"from": "2026-03-03T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
    ("get", "/v1/trace/machine/M-A1", {"from": "2026-03-01T00:00:00", "to": "2026-03-03T00:00:00Z"}),
    ("get", "/v1/trace/machine/M-A1", {"from": "yesterday", "to": "2026-03-03T00:00:00Z"}),
    ("get", "/v1/trace/machine/M-A1", {}),
    ("get", "/v1/trace/lot/L-A1", {"as_of": "2026-03-01T00:00:00"}),
    ("get", "/v1/risk", {"horizon_days": 0}),
    ("get", "/v1/risk", {"horizon_days": "soon"}),
    ("get", "/v1/sop", {}),
    ("get", "/v1/sop", {"order": "PO-A1", "at": "2026-03-02T00:00:00"}),
])
def test_bad_parameters_are_422(client: TestClient, keys: Keys, method: str, path: str,
                                params: dict[str, Any]) -> None:
    r = getattr(client, method)(path, params=params, headers=keys.h("analyst"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("body", [{}, {"lots": []}, {"lots": ["L-A2"], "extra": 1}, {"lots": "L-A2"}])
def test_rootcause_bad_body_422(client: TestClient, keys: Keys, body: dict[str, Any]) -> None:
    assert client.post("/v1/rootcause", json=body, headers=keys.h("analyst")).status_code == 422


@pytest.mark.parametrize("path", ["/v1/trace/lot/NOPE", "/v1/trace/hold/NOPE", "/v1/trace/incident/NOPE",
                                  "/v1/sop?order=NOPE"])
def test_unknown_starts_404(client: TestClient, keys: Keys, path: str) -> None:
    assert client.get(path, headers=keys.h("analyst")).status_code == 404


def test_wrong_class_start_is_404_or_422(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/trace/hold/L-A1", headers=keys.h("analyst"))
    assert r.status_code in (404, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("get", "/v1/trace/lot/L-A1", {}),
    ("get", "/v1/risk", {}),
    ("post", "/v1/rootcause", {"json": {"lots": ["L-A2"]}}),
    ("get", "/v1/sop", {"params": {"order": "PO-A1"}}),
    ("post", "/v1/ask", {"json": {"question": "trace L-A1"}}),
])
def test_viewer_cannot_run_analyses(client: TestClient, keys: Keys, method: str, path: str,
                                    kwargs: dict[str, Any]) -> None:
    assert getattr(client, method)(path, headers=keys.h("viewer"), **kwargs).status_code == 403


def test_ask_degraded_mode(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/ask", json={"question": "Lot L-A1 is on hold. Which customers are affected?"},
                    headers=keys.h("analyst"))
    assert r.status_code == 200
    a = r.json()["answer"]
    assert a["degraded"] is True and "index" in a["degraded_reason"]
    assert a["intent"] == "trace_impact"
    assert {"CUST-1", "CUST-2"} <= set(a["answer_ids"])
    n = len(a["citations"])
    assert n > 0 and all(0 <= i < n for cl in a["claims"] for i in cl["citations"])
    ready = client.get("/readyz").json()
    assert ready["index"]["state"] == "degraded" and "index" in ready["index"]["reason"]


@pytest.mark.parametrize("body", [{}, {"question": ""}, {"question": "x" * 2001}, {"question": 3},
                                  {"question": "q", "as_of": "2026-03-02T00:00:00"}])
def test_ask_bad_input_422(client: TestClient, keys: Keys, body: dict[str, Any]) -> None:
    r = client.post("/v1/ask", json=body, headers=keys.h("analyst"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"].startswith("body")


def test_ask_with_copilot_failing_to_load_is_503(settings: Settings, plant_store: GraphStore, keys: Keys) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("model folder missing")

    with TestClient(create_app(settings, store=plant_store, copilot_factory=broken)) as c:
        r = c.post("/v1/ask", json={"question": "trace L-A1"}, headers=keys.h("analyst"))
        assert r.status_code == 503 and "model folder missing" in r.json()["detail"]
        ready = c.get("/readyz").json()
        assert ready["ready"] is True and ready["index"]["state"] == "unavailable"
        # the rest of the API keeps working
        assert c.get("/v1/trace/lot/L-A1", headers=keys.h("analyst")).status_code == 200


def test_store_opened_later_recovers(tmp_path: Path, keys: Keys, settings: Settings) -> None:
    calls: list[int] = []

    def opener(s: Settings) -> GraphStore:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk not mounted yet")
        from store.factory import open_store

        return open_store("embedded", tmp_path / "late-store")

    with TestClient(create_app(settings, store_opener=opener)) as c:
        assert calls == [1]
        assert c.get("/v1/entities/X", headers=keys.h("viewer")).status_code == 404  # reopened, empty store
        assert c.get("/readyz").json()["ready"] is True


def test_broken_vector_index_degrades_with_reason(settings: Settings, plant_store: GraphStore, keys: Keys) -> None:
    """The real copilot factory over a store whose index folder holds a corrupt manifest."""
    rag = settings.store_path.with_name(settings.store_path.name + ".rag")
    rag.mkdir(parents=True, exist_ok=True)
    (rag / "manifest.json").write_text("{not json")
    with TestClient(create_app(settings, store=plant_store)) as c:
        assert c.get("/readyz").json()["index"]["state"] == "not_loaded"  # present, not yet opened
        r = c.post("/v1/ask", json={"question": "Which customers does lot L-A1 reach?"}, headers=keys.h("analyst"))
        assert r.status_code == 200
        a = r.json()["answer"]
        assert a["degraded"] is True and "manifest" in a["degraded_reason"]
        assert "CUST-2" in a["answer_ids"]  # ids, names and rules still answer
        ready = c.get("/readyz").json()
        assert ready["index"]["state"] == "degraded" and "manifest" in ready["index"]["reason"]
