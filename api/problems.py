"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Routes raise :class:`ProblemError` (or let FastAPI's validation fail); the handlers registered by
:func:`install_problem_handlers` turn both into one body shape, so a client parses errors once.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://plantgraph.dev/problems/"


class FieldError(BaseModel):
    """One invalid input: where (a JSON path such as ``body.lots[2].quantity``) and what was expected."""

    loc: str = Field(description="JSON path of the offending value, e.g. body.events[0].lot_id")
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with ``errors`` for validation problems."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from anywhere below a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.errors = errors
        self.headers = headers


def problem_response(
    status: int,
    detail: str | None,
    *,
    instance: str | None = None,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = Problem(
        type=PROBLEM_BASE + slug if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def json_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "events", 0, "lot_id")`` -> ``body.events[0].lot_id``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "$"


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        # discriminated unions put the tag name in the path (body.event.lot_status_changed.x): keep it,
        # it tells the client which variant was checked.
        errors.append(FieldError(loc=json_path(loc), msg=str(err.get("msg", "")), type=err.get("type")))
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status, exc.detail, instance=request.url.path, slug=exc.slug, errors=exc.errors,
            headers=exc.headers,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        first = errors[0] if errors else None
        detail = f"invalid input at {first.loc}: {first.msg}" if first else "invalid input"
        return problem_response(422, detail, instance=request.url.path, slug="validation", errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, str(exc.detail), instance=request.url.path, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            500, f"internal error ({type(exc).__name__}); see the server log", instance=request.url.path
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def not_found(what: str, ident: str) -> ProblemError:
    """The one 404 for both missing and out-of-scope objects, so existence never leaks."""
    return ProblemError(404, f"{what} {ident!r} not found", slug="not-found")


#: OpenAPI ``responses=`` entries so every route documents its problem shapes.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": desc}
    for code, desc in (
        (401, "missing or invalid API key"),
        (403, "the key's role or plant scope does not allow this call"),
        (404, "not found (or outside the key's plant scope; the two are indistinguishable)"),
        (413, "request body too large"),
        (422, "invalid input; `errors` lists each field path"),
        (503, "the graph store is not available"),
    )
}
