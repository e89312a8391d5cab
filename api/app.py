"""The app factory: ``create_app(settings)`` builds the FastAPI app and its services.

Run it with ``plantgraph serve`` (uvicorn) or ``uvicorn --factory api.app:app_from_env``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import __version__
from api.middleware import AuditMiddleware, BodyLimitMiddleware
from api.problems import install_problem_handlers
from api.routes import analyses, entities, governance, health, me
from api.services import CopilotFactory, Services, StoreOpener
from config.settings import Settings, get_settings
from store.base import GraphStore

log = logging.getLogger("plantgraph.api")

DESCRIPTION = """
plantgraph over HTTP: entities, traces, delivery risk, root cause, SOP in effect, the copilot,
event ingestion, write-back proposals and the audit log.

Every `/v1` call needs an API key (`X-API-Key: pgk_...` or `Authorization: Bearer pgk_...`),
created with `plantgraph keys create`. Roles and plant scopes are checked on every call; errors
are RFC 9457 `application/problem+json`. See docs/api.md for the permission matrix.
"""


def create_app(
    settings: Settings | None = None,
    *,
    store: GraphStore | None = None,
    store_opener: StoreOpener | None = None,
    copilot_factory: CopilotFactory | None = None,
    serving: bool = False,
) -> FastAPI:
    """Build the app. ``store`` / ``store_opener`` / ``copilot_factory`` let tests inject parts;
    by default the store comes from the settings and opens on startup (lazily retried if it fails).
    ``serving``: this process exists to serve the app (``app_from_env``), so its start-up heap is
    frozen once the store is open (see :func:`freeze_startup_heap`)."""
    settings = settings if settings is not None else get_settings()
    services = Services(settings, store=store, store_opener=store_opener, copilot_factory=copilot_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services.try_open_store() is None:
            log.error("starting without a graph store: %s", services.store_error)
        if serving:
            freeze_startup_heap()
        yield
        services.close()

    app = FastAPI(
        title="plantgraph API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.services = services
    install_problem_handlers(app)
    for module in (health, me, entities, analyses, governance):
        app.include_router(module.router)
    _include_optional(app)
    # Outermost first: CORS answers preflights, the body limit stops big uploads before anything
    # reads them, the audit middleware sees every call that reaches the routes.
    app.add_middleware(AuditMiddleware, audit=lambda: services.audit)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )
    return app


def _include_optional(app: FastAPI) -> None:
    """Routes whose backing parts (copilot, bundle loader) may still be missing in a checkout."""
    from api.routes import ask, bundles

    app.include_router(ask.router)
    app.include_router(bundles.router)


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory api.app:app_from_env``: settings from PLANTGRAPH_* variables. This
    is how a serving process starts (``plantgraph serve``, each worker), so it also tunes the
    collector for serving; the app factory alone (tests, embedding) leaves the process as it is."""
    tune_gc()
    return create_app(Settings(), serving=True)


GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect the youngest generation every 10,000 net allocations instead of 700. A computed
    trace builds and drops tens of thousands of small objects (its result models): at 700 the
    collector ran several times per request and promoted half-built results, whose later full
    collections walked them again (medium, in-process: ~0.5 of 3.0 CPU ms per trace, and pauses
    of tens of ms). Garbage without cycles is freed by reference counting either way."""
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0_THRESHOLD:
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def freeze_startup_heap() -> None:
    """Move every object alive at start-up (imported modules, the store's index) out of the
    collector's reach. They live as long as the process, yet each full collection walked them
    all: ~650k objects once the copilot's libraries are imported, ~300 ms of CPU landing on one
    request in a few hundred. Objects made later are collected as before."""
    gc.collect()
    gc.freeze()
