"""A serving process (``app_from_env``) collects its youngest generation less often; building an
app for tests or embedding leaves the process's collector alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import GC_GEN0_THRESHOLD, app_from_env, create_app
from config.settings import Settings


@pytest.fixture
def default_gc() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, saved[1], saved[2])
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*saved)


def test_serving_raises_the_first_threshold(default_gc: tuple[int, int, int], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path))
    create_app(Settings())
    assert gc.get_threshold() == default_gc
    app_from_env()
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *default_gc[1:])
    assert gc.isenabled()


def test_a_larger_threshold_is_kept(default_gc: tuple[int, int, int], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path))
    gc.set_threshold(50_000, *default_gc[1:])
    app_from_env()
    assert gc.get_threshold()[0] == 50_000


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_serving_freezes_the_startup_heap_once_open(unfrozen: None, default_gc: tuple[int, int, int],
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path))
    with TestClient(create_app(Settings())) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0
    with TestClient(app_from_env()) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
