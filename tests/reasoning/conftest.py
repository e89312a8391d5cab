"""A generated plant shared by the reasoning tests that compare a fast path with the plain one:
the tiny plant (seed 7) loaded once per session into an embedded store. Tests only read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from graph_loader.generator import generate, load_truth, named_spec
from graph_loader.generator.truth import Truth
from graph_loader.loader import load_bundle
from store.embedded import EmbeddedStore


@dataclass(frozen=True)
class TinyPlant:
    store: EmbeddedStore
    bundle: Path
    truth: Truth


@pytest.fixture(scope="session")
def tiny_plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyPlant]:
    root = tmp_path_factory.mktemp("tiny-plant")
    generate(named_spec("tiny"), 7, root / "bundle")
    store = EmbeddedStore(root / "store")
    try:
        load_bundle(store, root / "bundle")
        yield TinyPlant(store, root / "bundle", load_truth(root / "bundle" / "truth.json"))
    finally:
        store.close()
