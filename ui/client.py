"""The UI's only way to the data: the plantgraph HTTP API, with the user's key.

The UI sees exactly what an API consumer sees, so roles and plant scopes apply to it unchanged.
Errors come back as :class:`ApiError` carrying the problem+json title and detail, which pages show
as readable messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx


class ApiError(Exception):
    """An error answer from the API (or no answer at all), ready to show to a person."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail

    @property
    def message(self) -> str:
        if self.status == 0:
            return f"{self.title}. {self.detail}".strip()
        return f"{self.title} ({self.status}): {self.detail}" if self.detail else f"{self.title} ({self.status})"


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


class ApiClient:
    """Thin typed wrapper over the /v1 endpoints; returns the JSON documents as dicts."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json: Any = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            resp = self._http.request(method, path, params=clean, json=json)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"The API at {self.base_url} cannot be reached",
                           f"{type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            title, detail = resp.reason_phrase or "Error", resp.text[:500]
            try:
                doc = resp.json()
                title = str(doc.get("title") or title)
                detail = str(doc.get("detail") or "")
            except ValueError:
                pass
            raise ApiError(resp.status_code, title, detail)
        return resp.json() if resp.content else None

    # -- identity and health -----------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        try:
            return dict(self._call("GET", "/readyz"))
        except ApiError as err:
            if err.status == 503:
                return {"ready": False, "detail": err.detail}
            raise

    def me(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/me"))

    # -- entities ---------------------------------------------------------------------------
    def entity(self, entity_id: str, as_of: datetime | None = None) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/entities/{entity_id}", params={"as_of": _iso(as_of)}))

    def search(self, q: str, cls: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        doc = self._call("GET", "/v1/entities", params={"q": q, "cls": cls, "limit": limit, "fuzzy": "true"})
        return list(doc.get("items", []))

    def neighbourhood(self, entity_id: str, depth: int = 1, limit: int = 200,
                      as_of: datetime | None = None) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/entities/{entity_id}/neighbourhood",
                               params={"depth": depth, "limit": limit, "as_of": _iso(as_of),
                                       "direction": "both"}))

    # -- analyses -----------------------------------------------------------------------------
    def trace(self, kind: str, entity_id: str, *, backward: bool = False, as_of: datetime | None = None,
              window_from: datetime | None = None, window_to: datetime | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"as_of": _iso(as_of)}
        if kind == "lot":
            params["backward"] = "true" if backward else None
        if kind == "machine":
            params["from"] = _iso(window_from)
            params["to"] = _iso(window_to)
        return dict(self._call("GET", f"/v1/trace/{kind}/{entity_id}", params=params))

    def risk(self, horizon_days: float = 14, plant: str | None = None,
             as_of: datetime | None = None) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/risk", params={"horizon_days": horizon_days, "plant": plant,
                                                          "as_of": _iso(as_of)}))

    def rootcause(self, lots: list[str] | None = None, incident: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/rootcause", json={"lots": lots or [], "incident": incident}))

    def sop(self, order: str, machine: str | None = None, at: datetime | None = None) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/sop", params={"order": order, "machine": machine, "at": _iso(at)}))

    def ask(self, question: str, as_of: datetime | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/ask", json={"question": question, "as_of": _iso(as_of)}))

    # -- governance ---------------------------------------------------------------------------
    def proposals(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        doc = self._call("GET", "/v1/proposals", params={"status": status, "limit": limit})
        return list(doc.get("items", []))

    def create_proposal(self, action: dict[str, Any], comment: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/proposals", json={"action": action, "comment": comment}))

    def decide(self, proposal_id: str, approve: bool, comment: str) -> dict[str, Any]:
        verb = "approve" if approve else "reject"
        return dict(self._call("POST", f"/v1/proposals/{proposal_id}/{verb}", json={"comment": comment}))

    def audit(self, user: str | None = None, kind: str | None = None, since: datetime | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        doc = self._call("GET", "/v1/audit", params={"user": user, "kind": kind, "since": _iso(since),
                                                     "limit": limit})
        return list(doc.get("items", []))

    def verify_audit(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/audit/verify"))
