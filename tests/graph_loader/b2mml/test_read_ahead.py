"""Reading ahead in the compiled reader's threads (``B2MMLImporter.add_files_ahead``, through
``parallel.add_files``) gives exactly the import of one file after another: same report, same
store rows, whatever the number of threads and how far ahead they read; and it leaves the rest to
the two processes once the reader stops taking most files."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

import graph_loader.b2mml.importer as importer
import graph_loader.b2mml.parallel as par
from graph_loader.b2mml import native as N
from graph_loader.b2mml.importer import B2MMLImporter, import_b2mml, iter_b2mml_files
from graph_loader.b2mml.parallel import recording_importer, take_recorded

from .conftest import FIXTURES
from .test_parallel import _imports

pytestmark = pytest.mark.skipif(not N.available(), reason="the compiled reader is not installed")


def _imported(tmp: Path, paths: list[Path]) -> tuple[str, list[Any]]:
    """The report and store rows of importing ``paths`` (``test_parallel._imports``)."""
    return _imports(tmp, [paths])


def _one_by_one(tmp: Path, paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[Any]]:
    """:func:`_imported` with neither reading ahead nor a second process: one file after another."""
    with monkeypatch.context() as m:
        m.setattr(par, "READ_AHEAD_MIN_FILES", 1 << 60)
        m.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
        return _imported(tmp, paths)


def test_read_ahead_is_used_for_big_imports(tiny_b2mml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = B2MMLImporter.add_files_ahead

    def spy(self: B2MMLImporter, files: Any, workers: int) -> int:
        calls.append(len(files))
        return real(self, files, workers)

    monkeypatch.setattr(par, "usable_cpus", lambda: 2)
    monkeypatch.setattr(B2MMLImporter, "add_files_ahead", spy)
    rep = import_b2mml([tiny_b2mml], None, dry_run=True)
    assert calls == [len(iter_b2mml_files([tiny_b2mml]))] and rep.entities > 500


@pytest.mark.parametrize("workers,window", [(1, 1), (2, 3), (3, 256)])
def test_same_as_one_file_after_another(tiny_b2mml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        workers: int, window: int) -> None:
    paths = [tiny_b2mml, FIXTURES / "messy", FIXTURES / "v0701"]
    one = _one_by_one(tmp_path / "one", paths, monkeypatch)
    monkeypatch.setattr(par, "READ_AHEAD_MIN_FILES", 0)
    monkeypatch.setattr(par, "usable_cpus", lambda: workers + 1)
    monkeypatch.setattr(importer, "AHEAD_FILES", window)
    ahead = _imported(tmp_path / "ahead", paths)
    assert one == ahead
    assert '"written":true' in one[0]


def test_missing_and_big_files_as_one_by_one(tiny_b2mml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file gone before it is read is reported as before; one over TREE_BYTES is streamed."""
    files = [*iter_b2mml_files([tiny_b2mml])[:20], tmp_path / "gone.xml", FIXTURES / "v0701" / "performance.xml"]
    monkeypatch.setattr(importer, "TREE_BYTES", (FIXTURES / "v0701" / "performance.xml").stat().st_size - 1)
    out = []
    for ahead in (False, True):
        imp = recording_importer(B2MMLImporter, "B2MML", UTC)
        if ahead:
            assert imp.add_files_ahead(files, workers=2) == len(files)
        else:
            for f in files:
                imp.add_file(f)
        out.append(take_recorded(imp))
    assert out[0] == out[1]
    assert any("cannot read file" in e.message for e in out[1].errors)


def test_gives_up_when_most_files_go_to_lxml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures are mostly of other kinds than the reader's: after the first check it stops,
    and the rest is mapped in two processes, with the same result."""
    paths = [FIXTURES / "messy", FIXTURES / "v0401", FIXTURES / "v0500", FIXTURES / "v0600", FIXTURES / "v0701"]
    one = _one_by_one(tmp_path / "one", paths, monkeypatch)
    added: list[int] = []
    real = B2MMLImporter.add_files_ahead
    monkeypatch.setattr(B2MMLImporter, "add_files_ahead", lambda self, files, workers: added.append(
        real(self, files, workers)) or added[-1])
    helped: list[int] = []
    real_two = par.map_files_in_two
    monkeypatch.setattr(par, "map_files_in_two",
                        lambda imp, chunks: helped.append(len(chunks)) or real_two(imp, chunks))
    monkeypatch.setattr(par, "usable_cpus", lambda: 2)
    monkeypatch.setattr(par, "READ_AHEAD_MIN_FILES", 0)
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNKS", 1 << 30)
    monkeypatch.setattr(importer, "AHEAD_CHECK", 4)
    total = len(iter_b2mml_files(paths))
    assert _imported(tmp_path / "two", paths) == one
    assert added == [4] and helped == [total - 4]


def test_closing_stops_it(tiny_b2mml: Path) -> None:
    files = [str(f) for f in iter_b2mml_files([tiny_b2mml]) if f.name.startswith("schedule")]
    ahead = N.mapper_ahead()
    assert ahead is not None
    it = ahead(files, 8 << 20, 0, 2, 4)
    first = next(it)
    assert first[0] is not None and first[0][0] == "ops"
    it.close()
    assert list(it) == []
