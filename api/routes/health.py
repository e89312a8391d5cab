"""Liveness and readiness (unauthenticated, unaudited: probes call them every few seconds)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import __version__
from api.deps import ServicesDep
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(version=__version__)


@router.get(
    "/readyz", response_model=Readiness, summary="Store open? Backend? Vector index state?",
    responses={503: {"model": Readiness, "description": "the store cannot be opened"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    store = services.store_state()
    ready = Readiness(ready=store.open, store=store, index=services.index_state())
    return JSONResponse(ready.model_dump(mode="json"), status_code=200 if ready.ready else 503)
