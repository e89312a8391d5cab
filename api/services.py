"""What the app holds for its lifetime: the key, audit and proposal databases, the graph store
(opened lazily, so an API started before its store exists recovers without a restart), the
analyses facade and the copilot."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.audit import AuditLog
from api.cache import ResponseCache
from api.events import EventLedger
from api.keys import KeyStore
from api.problems import ProblemError
from api.proposals import ProposalStore
from api.schemas import IndexState, StoreState
from api.scope import PlantMemo
from api.search import NameIndex
from config.settings import Settings
from store.base import GraphStore

log = logging.getLogger("plantgraph.api")

StoreOpener = Callable[[Settings], GraphStore]
CopilotFactory = Callable[[GraphStore, Settings, Any], Any]


def default_store_opener(settings: Settings) -> GraphStore:
    """The configured store (config.runtime decides backend and path)."""
    runtime = importlib.import_module("config.runtime")
    store: GraphStore = runtime.open_configured_store(settings)
    return store


def default_copilot_factory(store: GraphStore, settings: Settings, analyses: Any) -> Any:
    """The copilot with the persisted vector index beside the store; without a usable index it
    runs degraded (ids, names and rules only) and says why."""
    copilot_mod = importlib.import_module("reasoning.rag.copilot")
    return copilot_mod.Copilot.open(store, index_base(settings), model_path=settings.embedding_model_path,
                                    analyses=analyses)


def index_base(settings: Settings) -> Path:
    """Where the copilot's vector index lives, as ``<this>.rag``: beside an embedded store, and for
    a server backend under the data folder (``data/neo4j.rag``), where ``plantgraph index build``
    writes it too."""
    return settings.store_path if settings.backend == "embedded" else settings.data_dir / settings.backend


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        store: GraphStore | None = None,
        store_opener: StoreOpener | None = None,
        copilot_factory: CopilotFactory | None = None,
    ) -> None:
        self.settings = settings
        self._keys: KeyStore | None = None
        self._audit: AuditLog | None = None
        self._proposals: ProposalStore | None = None
        self._ledger: EventLedger | None = None
        self.names = NameIndex()
        self._store = store
        self._owns_store = store is None
        self._opener = store_opener or default_store_opener
        self._copilot_factory = copilot_factory or default_copilot_factory
        self._copilot: Any = None
        self._copilot_error: str | None = None
        self._copilot_stale = False
        self.store_error: str | None = None
        self._lock = threading.RLock()
        self._analyses: Any = None
        self._analyses_at = 0.0
        self._versions = 0  # bumped whenever the analyses facade or the copilot is replaced
        self.responses = ResponseCache(int(settings.result_cache_mb * 2**20))
        self.plants = PlantMemo()

    # -- the API's own databases (opened on first use, closed at shutdown, reopened after) ---
    @property
    def keys(self) -> KeyStore:
        with self._lock:
            if self._keys is None:
                self._keys = KeyStore(self.settings.keys_path)
            return self._keys

    @property
    def audit(self) -> AuditLog:
        with self._lock:
            if self._audit is None:
                self._audit = AuditLog(self.settings.audit_path)
            return self._audit

    @property
    def proposals(self) -> ProposalStore:
        with self._lock:
            if self._proposals is None:
                self._proposals = ProposalStore(self.settings.api_state_path, self.settings.outbox_path)
            return self._proposals

    @property
    def ledger(self) -> EventLedger:
        with self._lock:
            if self._ledger is None:
                self._ledger = EventLedger(self.settings.api_state_path)
            return self._ledger

    # -- store -------------------------------------------------------------------------------
    def try_open_store(self) -> GraphStore | None:
        with self._lock:
            if self._store is not None:
                return self._store
            try:
                self._store = self._opener(self.settings)
                self.store_error = None
            except Exception as exc:  # any failure to open is reported, never crashes the API
                self.store_error = f"{type(exc).__name__}: {exc}"
                log.warning("graph store unavailable: %s", self.store_error)
            return self._store

    def store(self) -> GraphStore:
        st = self.try_open_store()
        if st is None:
            raise ProblemError(
                503,
                f"the graph store at {self.settings.store_path} cannot be opened ({self.store_error}); "
                "load a bundle or fix the store settings, then retry",
                slug="store-unavailable", headers={"Retry-After": "30"},
            )
        return st

    def store_state(self) -> StoreState:
        st = self.try_open_store()
        return StoreState(
            open=st is not None, backend=getattr(st, "backend", None) if st is not None else None,
            path=str(self.settings.store_path), error=self.store_error,
        )

    # -- analyses ----------------------------------------------------------------------------
    def analyses(self) -> Any:
        """The reasoning facade over the store. Its ``now`` is ``settings.now`` when set (demo,
        replay), else the clock: then the facade is rebuilt once a minute so "now" stays current."""
        from reasoning.service import Analyses

        store = self.store()
        with self._lock:
            stale = self._analyses is None or self._analyses.store is not store or (
                self.settings.now is None and time.monotonic() - self._analyses_at > 60)
            if stale:
                rules_dir = getattr(self.settings, "rules_dir", None)
                self._analyses = Analyses(store, now=self.settings.now or datetime.now(UTC),
                                          rules_dirs=[rules_dir] if rules_dir is not None else [],
                                          max_results=self.settings.max_results)
                self._analyses_at = time.monotonic()
                self._versions += 1
            return self._analyses

    def graph_epoch(self, store: GraphStore) -> tuple[int, int] | None:
        """The graph state: the store's commit counter and the facade/copilot version; None for
        stores that do not count their commits (nothing may then be remembered across calls).
        Read it before computing, so nothing is ever filed under a newer state."""
        generation = getattr(store, "generation", None)
        if not isinstance(generation, int):
            return None
        return generation, self._versions

    def cache_epoch(self, store: GraphStore) -> tuple[int, int] | None:
        """The graph state a cached response belongs to; None when the response cache is off."""
        return self.graph_epoch(store) if self.responses.enabled else None

    # -- copilot -----------------------------------------------------------------------------
    def copilot(self) -> Any:
        store = self.store()
        analyses = self.analyses()
        with self._lock:
            if self._copilot is None and self._copilot_error is None:
                try:
                    self._copilot = self._copilot_factory(store, self.settings, analyses)
                    self._versions += 1
                except Exception as exc:
                    self._copilot_error = f"{type(exc).__name__}: {exc}"
                    log.warning("copilot unavailable: %s", self._copilot_error)
            if self._copilot is None:
                raise ProblemError(503, f"the copilot is not available ({self._copilot_error})",
                                   slug="copilot-unavailable")
            if self._copilot_stale:
                self._copilot_stale = False
                self._refresh_copilot(store)
            return self._copilot

    def _refresh_copilot(self, store: GraphStore) -> None:
        """After the API's own writes: relink names and re-embed changed cards (incremental)."""
        cp = self._copilot
        try:
            linker = getattr(cp, "linker", None)
            if linker is not None:
                linker.refresh()
            index = getattr(cp, "index", None)
            if index is not None and index.is_stale(store):
                index.build(store)
        except Exception as exc:
            log.warning("copilot refresh after a write failed: %s", exc)

    def index_state(self) -> IndexState:
        if self._store is None:
            return IndexState(state="unavailable", reason="the graph store is not open")
        if self._copilot is not None:
            if getattr(self._copilot, "degraded", False):
                reason = getattr(self._copilot, "index_error", None) or "the vector index is unavailable"
                return IndexState(state="degraded", reason=f"{reason}; answers use ids, names and rules only")
            return IndexState(state="ready")
        if self._copilot_error is not None:
            return IndexState(state="unavailable", reason=self._copilot_error)
        base = index_base(self.settings)
        folder = base.with_name(base.name + ".rag")
        if not (folder / "manifest.json").exists():
            return IndexState(state="degraded", reason=f"no vector index at {folder}; run `plantgraph index "
                              "build` (answers use ids, names and rules only)")
        return IndexState(state="not_loaded", reason="the copilot and its index load on the first question")

    def graph_changed(self, ids: list[str]) -> None:
        """Keep search and the copilot's index in step with a write the API just made."""
        st = self._store
        if st is None or not ids:
            self.names.invalidate()
        else:
            self.names.written(st, ids)
        self.responses.clear()
        self._copilot_stale = True

    def close(self) -> None:
        self.responses.clear()
        with self._lock:
            for db in (self._keys, self._audit, self._proposals, self._ledger):
                if db is not None:
                    db.close()
            self._keys = self._audit = self._proposals = self._ledger = None
            if self._store is not None and self._owns_store:
                self._store.close()
                self._store = None
                self._analyses = None
                self._copilot = None
