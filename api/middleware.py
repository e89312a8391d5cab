"""Pure ASGI middleware: the request body limit and the audit record of every call.

Pure ASGI (not BaseHTTPMiddleware) so the response streams through untouched while its bytes are
hashed for the audit digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.audit import AuditEntry, AuditLog
from api.problems import Problem

log = logging.getLogger("plantgraph.api.audit")

UNAUDITED = frozenset({"/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})


def _problem_bytes(status: int, detail: str, path: str, title: str = "Content Too Large") -> bytes:
    body = Problem(title=title, status=status, detail=detail, instance=path,
                   type="https://plantgraph.dev/problems/" + ("too-large" if status == 413 else "audit-unavailable"))
    return json.dumps(body.model_dump(exclude_none=True)).encode()


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = _problem_bytes(413, f"request body larger than {self.max_bytes} bytes", scope.get("path", ""))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class AuditMiddleware:
    """Appends one audit record per call (health and docs excepted) after the response is sent."""

    def __init__(self, app: ASGIApp, audit: Callable[[], AuditLog]) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNAUDITED:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        # The response is held until its audit record is written: if the log cannot be written the
        # caller gets a 503, not an unaudited answer (fail closed).
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(msg: Message) -> None:
            nonlocal start
            if msg["type"] == "http.response.start":
                start = msg
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body", False):
                    await self._finish(scope, send, start, b"".join(chunks))
            else:
                await send(msg)

        try:
            await self.app(scope, receive, hold)
        except Exception:
            # the server-error handler outside this middleware answers 500; the call is still recorded
            try:
                self._record(scope, 500, hashlib.sha256(b"").hexdigest())
            except Exception:
                log.exception("could not append the audit record for a failed call")
            raise

    async def _finish(self, scope: Scope, send: Send, start: Message | None, body: bytes) -> None:
        status = int(start["status"]) if start is not None else 500
        try:
            self._record(scope, status, hashlib.sha256(body).hexdigest())
        except Exception:
            log.exception("could not append the audit record for %s %s", scope.get("method"), scope.get("path"))
            body = _problem_bytes(503, "the audit log cannot be written; the call was not answered",
                                  scope.get("path", ""), title="Service Unavailable")
            start = {"type": "http.response.start", "status": 503,
                     "headers": [(b"content-type", b"application/problem+json"),
                                 (b"content-length", str(len(body)).encode())]}
        assert start is not None
        await send(start)
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, digest: str) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        ctx = state.get("audit")
        params: dict[str, Any] = {}
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            params["query"] = query
        kind = "request"
        question = detail = None
        entity_ids: list[str] = []
        if ctx is not None:
            kind = ctx.kind
            params.update(ctx.params)
            question = ctx.question
            entity_ids = sorted(ctx.entity_ids)
            detail = ctx.detail
        if status in (401, 403):
            kind = "denied"
        self.audit().record(AuditEntry(
            user=getattr(principal, "user", None), key_id=getattr(principal, "key_id", None),
            role=getattr(getattr(principal, "role", None), "value", None), kind=kind,
            method=scope.get("method", ""), endpoint=scope.get("path", ""), status=status, params=params,
            question=question, entity_ids=entity_ids, digest=digest, detail=detail,
        ))
