from __future__ import annotations

import re
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


@pytest.fixture(scope="session")
def tiny_b2mml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tiny plant as B2MML messages (a few hundred files; read only)."""
    from graph_loader.b2mml.export import bundle_to_b2mml
    from graph_loader.generator import generate
    from graph_loader.generator.spec import named_spec

    tmp = tmp_path_factory.mktemp("tiny-b2mml")
    generate(named_spec("tiny"), 7, tmp / "bundle")
    bundle_to_b2mml(tmp / "bundle", tmp / "b2mml")
    return tmp / "b2mml"


def perturbed(tiny_b2mml: Path, tmp_path: Path, prefix: str, pattern: str, repl: str) -> Path:
    """A copy in ``tmp_path`` of the first generated message whose name starts with ``prefix``
    and that ``pattern`` matches, with its first match replaced by ``repl`` (written as UTF-8)."""
    source = next(f for f in sorted(tiny_b2mml.iterdir()) if f.name.startswith(prefix)
                  and re.search(pattern, f.read_text(), re.S))
    text = source.read_text()
    changed = re.sub(pattern, repl, text, count=1, flags=re.S)
    assert changed != text
    target = tmp_path / source.name
    target.write_bytes(changed.encode("utf-8"))
    return target
