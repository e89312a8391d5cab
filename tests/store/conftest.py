"""Fixtures for the embedded-only store tests (the backend-parametrised ``store`` lives in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.embedded import EmbeddedStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def embedded(store_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(store_path)
    try:
        yield s
    finally:
        s.close()
