"""Entities: get, search, neighbourhood, pagination and as_of."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Keys


def test_get_entity(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities/L-A1", headers=keys.h("viewer"))
    assert r.status_code == 200
    e = r.json()["entity"]
    assert (e["id"], e["cls"], e["plant"], e["props"]["status"]) == ("L-A1", "Lot", "SITE-A", "on_hold")


def test_get_missing_entity_404(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities/NOPE", headers=keys.h("viewer"))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_get_entity_as_of_naive_time_is_422(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities/L-A1", params={"as_of": "2026-03-02T06:00:00"}, headers=keys.h("viewer"))
    assert r.status_code == 422


def test_search_exact_id_first(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities", params={"q": "M-A1"}, headers=keys.h("viewer"))
    assert r.status_code == 200
    hits = r.json()["items"]
    assert hits[0]["entity"]["id"] == "M-A1" and hits[0]["match"] == "id"


def test_search_by_name_alias_and_typo(client: TestClient, keys: Keys) -> None:
    by_name = client.get("/v1/entities", params={"q": "acme corporation"}, headers=keys.h("viewer")).json()
    assert by_name["items"][0]["entity"]["id"] == "CUST-1"
    by_alias = client.get("/v1/entities", params={"q": "widget", "cls": "Material"}, headers=keys.h("viewer")).json()
    assert [h["entity"]["id"] for h in by_alias["items"]] == ["MAT-FG"]
    typo = client.get("/v1/entities", params={"q": "Acme Corporaton"}, headers=keys.h("viewer")).json()
    assert typo["items"][0]["entity"]["id"] == "CUST-1"
    assert typo["items"][0]["match"] == "fuzzy"
    strict = client.get("/v1/entities", params={"q": "Acme Corporaton", "fuzzy": False}, headers=keys.h("viewer"))
    assert strict.json()["items"] == []


def test_search_paginates(client: TestClient, keys: Keys) -> None:
    first = client.get("/v1/entities", params={"q": "L-", "limit": 2, "fuzzy": False}, headers=keys.h("viewer")).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    rest = client.get("/v1/entities", params={"q": "L-", "limit": 50, "offset": 2, "fuzzy": False},
                      headers=keys.h("viewer")).json()
    ids = [h["entity"]["id"] for h in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == first["total"]
    assert rest["next_offset"] is None


def test_search_unknown_class_422(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities", params={"q": "x", "cls": "Spaceship"}, headers=keys.h("viewer"))
    assert r.status_code == 422


def test_neighbourhood(client: TestClient, keys: Keys) -> None:
    r = client.get("/v1/entities/PO-A1/neighbourhood", headers=keys.h("viewer"))
    assert r.status_code == 200
    body = r.json()
    ids = {n["id"] for n in body["nodes"]["items"]}
    assert ids == {"L-A1", "L-A2", "M-A1", "MAT-FG"}
    assert all(e["src"] in ids | {"PO-A1"} and e["dst"] in ids | {"PO-A1"} for e in body["edges"])


def test_neighbourhood_filters_relations_direction_depth(client: TestClient, keys: Keys) -> None:
    h = keys.h("viewer")
    out = client.get("/v1/entities/PO-A1/neighbourhood", params={"rels": ["PRODUCED"], "direction": "out"}, headers=h)
    assert {n["id"] for n in out.json()["nodes"]["items"]} == {"L-A2"}
    inn = client.get("/v1/entities/L-A2/neighbourhood", params={"rels": ["PRODUCED"], "direction": "in"}, headers=h)
    assert {n["id"] for n in inn.json()["nodes"]["items"]} == {"PO-A1"}
    deep = client.get("/v1/entities/L-A1/neighbourhood",
                      params={"rels": ["CONSUMED", "PRODUCED"], "direction": "both", "depth": 2}, headers=h)
    assert {n["id"] for n in deep.json()["nodes"]["items"]} == {"PO-A1", "L-A2"}


def test_neighbourhood_bad_input(client: TestClient, keys: Keys) -> None:
    h = keys.h("viewer")
    assert client.get("/v1/entities/PO-A1/neighbourhood", params={"rels": ["NOPE"]}, headers=h).status_code == 422
    assert client.get("/v1/entities/PO-A1/neighbourhood", params={"depth": 99}, headers=h).status_code == 422
    assert client.get("/v1/entities/NOPE/neighbourhood", headers=h).status_code == 404


def test_neighbourhood_pagination(client: TestClient, keys: Keys) -> None:
    h = keys.h("viewer")
    page = client.get("/v1/entities/PO-A1/neighbourhood", params={"limit": 1}, headers=h).json()
    assert len(page["nodes"]["items"]) == 1 and page["nodes"]["total"] == 4 and page["nodes"]["next_offset"] == 1
