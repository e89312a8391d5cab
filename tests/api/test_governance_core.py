"""Keys, roles, problem+json, health, body limit, CORS."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyAdminError, KeyStore
from api.roles import matrix_markdown
from config.settings import Settings
from tests.api.conftest import Keys


def test_healthz_needs_no_key(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readyz_reports_store_and_index(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    assert body["store"]["open"] is True
    assert body["store"]["backend"] == "embedded"
    # no vector index beside the test store: degraded, with the reason
    assert body["index"]["state"] == "degraded"
    assert "index" in body["index"]["reason"]


def test_missing_key_is_401_problem(client: TestClient) -> None:
    r = client.get("/v1/entities/L-A1")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 401 and "X-API-Key" in body["detail"]
    assert "WWW-Authenticate" in r.headers


@pytest.mark.parametrize("bad", ["nonsense", "pgk_abc_def", "pgk__x", ""])
def test_invalid_key_is_401(client: TestClient, bad: str) -> None:
    r = client.get("/v1/entities/L-A1", headers={"X-API-Key": bad})
    assert r.status_code == 401


def test_bearer_token_works(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities/L-A1", headers={"Authorization": f"Bearer {keys.raw['viewer']}"})
    assert r.status_code == 200


def test_wrong_secret_for_real_key_id_is_401(client: TestClient, keys: Keys) -> None:
    _, key_id, secret = keys.raw["admin"].split("_", 2)
    r = client.get("/v1/entities/L-A1", headers={"X-API-Key": f"pgk_{key_id}_{secret[:-2]}xx"})
    assert r.status_code == 401


def test_revoked_key_is_401(client: TestClient, settings: Settings) -> None:
    ks = KeyStore(settings.keys_path)
    created = ks.create("temp", "viewer", "*")
    assert client.get("/v1/entities/L-A1", headers={"X-API-Key": created.key}).status_code == 200
    ks.revoke(created.key_id)
    ks.close()
    assert client.get("/v1/entities/L-A1", headers={"X-API-Key": created.key}).status_code == 401


def test_keys_are_stored_hashed(settings: Settings) -> None:
    ks = KeyStore(settings.keys_path)
    created = ks.create("u", "analyst", "SITE-A,SITE-B")
    ks.close()
    raw = Path(settings.keys_path).read_bytes()
    secret = created.key.split("_", 2)[2]
    assert secret.encode() not in raw
    assert created.plants == ["SITE-A", "SITE-B"]


@pytest.mark.parametrize(("user", "role", "plants"), [
    ("", "viewer", "*"), ("u", "superuser", "*"), ("u", "viewer", ""), ("u", "viewer", "*,SITE-A"),
])
def test_key_creation_rejects_bad_input(settings: Settings, user: str, role: str, plants: str) -> None:
    ks = KeyStore(settings.keys_path)
    with pytest.raises(KeyAdminError):
        ks.create(user, role, plants)
    assert ks.list() == []
    ks.close()


def test_revoke_unknown_key(settings: Settings) -> None:
    ks = KeyStore(settings.keys_path)
    with pytest.raises(KeyAdminError, match="no key"):
        ks.revoke("nope")
    ks.close()


def test_role_without_permission_is_403(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/events", headers=keys.h("viewer"), json={"event": {
        "type": "lot_status_changed", "event_id": "E1", "occurred_at": "2026-03-02T06:00:00Z",
        "lot_id": "L-A1", "status": "released"}})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "events:write" in r.json()["detail"]


def test_validation_error_names_field_path(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/events", headers=keys.h("engineer"), json={"event": {
        "type": "production_order_completed", "event_id": "E1", "occurred_at": "2026-03-02T06:00:00Z",
        "order_id": "PO-A1", "consumed": [{"lot_id": "L-A1", "quantity": -3}]}})
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    locs = [e["loc"] for e in body["errors"]]
    assert any(loc.startswith("body.event.production_order_completed.consumed[0].quantity") for loc in locs), locs


def test_unknown_route_is_problem_404(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/nothing-here", headers=keys.h("admin"))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_body_limit_413(settings: Settings, plant_store: object, keys: Keys) -> None:
    small = settings.model_copy(update={"max_body_bytes": 200})
    app = create_app(small, store=plant_store)  # type: ignore[arg-type]
    with TestClient(app) as c:
        r = c.post("/v1/ask", headers=keys.h("analyst"), json={"question": "x" * 500})
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("application/problem+json")
        # nothing was answered, but the refusal is still a problem document
        assert r.json()["status"] == 413


def test_cors_from_settings(settings: Settings, plant_store: object) -> None:
    s = settings.model_copy(update={"cors_origins": ["http://ui.example"]})
    with TestClient(create_app(s, store=plant_store)) as c:  # type: ignore[arg-type]
        r = c.options("/v1/entities/L-A1", headers={"Origin": "http://ui.example",
                                                     "Access-Control-Request-Method": "GET"})
        assert r.headers.get("access-control-allow-origin") == "http://ui.example"
        r2 = c.options("/v1/entities/L-A1", headers={"Origin": "http://evil.example",
                                                      "Access-Control-Request-Method": "GET"})
        assert r2.headers.get("access-control-allow-origin") is None


def test_store_unavailable_is_503_not_a_crash(tmp_path: Path, keys: Keys, settings: Settings) -> None:
    bad = tmp_path / "not-a-dir"
    bad.write_text("I am a file")
    s = settings.model_copy(update={"store": bad})
    with TestClient(create_app(s)) as c:
        r = c.get("/v1/entities/L-A1", headers=keys.h("admin"))
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert str(bad) in r.json()["detail"]
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["store"]["open"] is False
        assert "file" in ready.json()["store"]["error"]
        assert c.get("/healthz").status_code == 200


def test_permission_matrix_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    assert matrix_markdown() in doc


def test_openapi_published(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/ask" in spec["paths"] and "/v1/events" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_me(client: TestClient, keys: Keys) -> None:
    me = client.get("/v1/me", headers=keys.h("planner_a")).json()
    assert me["user"] == "planner-a" and me["role"] == "planner" and me["plants"] == ["SITE-A"]
    assert "analyses:run" in me["permissions"] and "proposals:decide" not in me["permissions"]
    assert me["may_propose"] == ["escalate_incident", "expedite_sales_order"]
    assert client.get("/v1/me").status_code == 401
