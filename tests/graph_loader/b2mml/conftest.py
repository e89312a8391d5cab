from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.base import GraphStore
from store.factory import open_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "b2mml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", tmp_path / "store")
    yield s
    s.close()
