"""Mapping in a second process (graph_loader/b2mml/parallel.py) gives exactly the one-process
import: same report, same store rows in the same order, whoever maps which chunk. (Reading ahead
in the compiled reader's threads, which comes first for big imports, is off here: it has its own
tests, test_read_ahead.py.)"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest

import graph_loader.b2mml.parallel as par
from graph_loader.b2mml.importer import B2MMLImporter, import_b2mml, iter_b2mml_files
from store.factory import open_store

from .conftest import FIXTURES

#: Every fixture set, the unsafe and malformed files included (errors are part of the result).
ALL = [FIXTURES / "messy", FIXTURES / "v0401", FIXTURES / "v0500", FIXTURES / "v0600", FIXTURES / "v0701",
       FIXTURES / "unsafe"]


@pytest.fixture(autouse=True)
def no_read_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(par, "READ_AHEAD_MIN_FILES", 1 << 60)


@pytest.fixture
def every_file_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two-process path for any import, one file per chunk."""
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNKS", 1 << 30)


def _rows(store_dir: Path) -> list[Any]:
    con = sqlite3.connect(store_dir / "graph.sqlite")
    try:
        out: list[Any] = []
        for table in ("nodes", "edges", "node_counts", "edge_counts"):
            out.extend((table, *r) for r in con.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        return out
    finally:
        con.close()


def _imports(tmp: Path, steps: list[list[Path]]) -> tuple[str, list[Any]]:
    """The reports (JSON, without timings) and the store rows after importing ``steps`` in turn."""
    store = open_store("embedded", tmp)
    try:
        reps = [import_b2mml(p, store).model_dump_json(exclude={"seconds"}) for p in steps]
    finally:
        store.close()
    return "\n".join(reps), _rows(tmp)


STEPS: dict[str, list[list[Path]]] = {
    "all fixtures": [ALL],
    "every version": [[FIXTURES / "v0401", FIXTURES / "v0500", FIXTURES / "v0600", FIXTURES / "v0701"]],
    "orders after their equipment, in a second import": [
        [FIXTURES / "v0701" / n for n in ("equipment.xml", "material.xml", "personnel.xml", "schedule.xml")],
        [FIXTURES / "v0701" / "performance.xml", FIXTURES / "messy" / "assembly.xml",
         FIXTURES / "messy" / "implicit_lot.xml"],
    ],
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_fixtures_same_in_one_and_two_processes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _imports(tmp_path / "one", STEPS[name])
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNKS", 1 << 30)
    two = _imports(tmp_path / "two", STEPS[name])
    assert one == two


def _dry(paths: list[Path]) -> str:
    return import_b2mml(paths, None, dry_run=True).model_dump_json(exclude={"seconds"})


def _claim_nothing_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(par._Claims, "take", lambda self, i: False)
    monkeypatch.setattr(par._Claims, "take_last", lambda self: None)


def _helper_maps_everything(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """This process claims nothing, so the other process maps every chunk (deterministic);
    returns a counter of the chunks it did."""
    helped: list[int] = []
    real = par.map_files_in_two

    def spy(imp: Any, chunks: list[list[Path]]) -> int:
        n = real(imp, chunks)
        helped.append(n)
        assert n == len(chunks)
        return n

    _claim_nothing_here(monkeypatch)
    monkeypatch.setattr(par, "map_files_in_two", spy)
    return lambda: sum(helped)


def test_generated_plant_mapped_by_the_other_process(tiny_b2mml: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    one = _imports(tmp_path / "one", [[tiny_b2mml]])
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNKS", 16)
    monkeypatch.setattr(par, "CHUNK_MIN_BYTES", 0)
    helped = _helper_maps_everything(monkeypatch)
    two = _imports(tmp_path / "two", [[tiny_b2mml]])
    assert helped() > 1
    assert json.loads(one[0])["entities"] > 500
    assert one == two


def test_fixtures_mapped_by_the_other_process(every_file_a_chunk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
    one = _dry([*ALL, FIXTURES / "v0701"])  # every file twice: merges across chunks
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    helped = _helper_maps_everything(monkeypatch)
    assert _dry([*ALL, FIXTURES / "v0701"]) == one
    assert helped() == len(iter_b2mml_files([*ALL, FIXTURES / "v0701"]))


def test_without_a_helper_everything_is_mapped_here(every_file_a_chunk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
    one = _dry(ALL)
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    _claim_nothing_here(monkeypatch)  # leave every chunk to the helper...
    for broken in ("/bin/false", "/nonexistent/python"):  # ...which dies at once / never starts
        monkeypatch.setattr(sys, "executable", broken)
        assert _dry(ALL) == one


def test_recorded_chunks_replay_to_the_same_batch() -> None:
    """Recording and replaying in one process (no pickling) equals mapping directly."""
    files = iter_b2mml_files([*ALL, FIXTURES / "v0600"])
    direct = B2MMLImporter()
    for f in files:
        direct.add_file(f)
    rec = par.recording_importer(B2MMLImporter, "B2MML", direct.default_tz)
    merged = B2MMLImporter()
    for f in files:
        rec.add_file(f)
        par.replay(merged, par.take_recorded(rec))
    assert merged.report == direct.report
    assert merged.batch.nodes == direct.batch.nodes and merged.batch.edges == direct.batch.edges
    assert list(merged.batch.nodes) == list(direct.batch.nodes) and list(merged.batch.edges) == list(direct.batch.edges)
    assert merged.unmapped.items() == direct.unmapped.items() and merged.notes.items() == direct.notes.items()
    assert merged.errors == direct.errors
    assert (merged._equip_refs, merged._patches, merged._assembly, merged._sublots) == \
        (direct._equip_refs, direct._patches, direct._assembly, direct._sublots)


def test_chunks_keep_file_order_and_claims_never_overlap(tmp_path: Path) -> None:
    files = [Path(f"f{i}") for i in range(10)]
    chunks = par.chunked(files, [300_000] * 10)
    assert [f for c in chunks for f in c] == files and len(chunks) > 1
    here = par._Claims.create(tmp_path / "claims", 6)
    helper = par._Claims(tmp_path / "claims")
    try:
        assert here.take(0) and not here.take(0)
        assert [helper.take_for_helper(3), helper.take_for_helper(3)] == [3, 4]
        assert not here.take(3)
        assert here.take_last() == 5
        assert helper.take_for_helper(3) == 2  # nothing left from the middle on: the front's last
        assert here.take(1) and here.take_last() is None and helper.take_for_helper(3) is None
    finally:
        here.close()
        helper.close()


def test_any_interleaving_merges_as_one_process(every_file_a_chunk: None, monkeypatch: pytest.MonkeyPatch,
                                                       tiny_b2mml: Path) -> None:
    """Here maps the front, the helper the middle on, here takes from the back while waiting:
    whatever the interleaving, the merge is the one-process one."""
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
    paths = [tiny_b2mml, FIXTURES / "v0701", FIXTURES / "messy"]
    one = _dry(paths)
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par, "CHUNKS", 24)
    for _ in range(2):
        assert _dry(paths) == one


def test_chunks_taken_from_the_back_here_merge_in_order(every_file_a_chunk: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the helper has the next chunk, this process maps later ones (recorded, merged in
    their turn): here with a helper that never maps anything, so every chunk goes that way."""
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
    one = _dry(ALL)
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(par._Claims, "take", lambda self, i: False)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    recorded: list[int] = []
    real = par.take_recorded

    def spy(imp: Any) -> par.MappedChunk:
        part = real(imp)
        recorded.append(len(part.files))
        return part

    monkeypatch.setattr(par, "take_recorded", spy)
    assert _dry(ALL) == one
    assert sum(recorded) == len(iter_b2mml_files(ALL))


@pytest.fixture
def _no_leftovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    yield tmp_path


def test_temporary_folder_is_removed(every_file_a_chunk: None, _no_leftovers: Path) -> None:
    _dry([FIXTURES / "v0701"])
    assert list(_no_leftovers.iterdir()) == []


class _LocalTz(tzinfo):
    """A time zone that cannot be sent to another process (it holds a lambda)."""

    def __init__(self) -> None:
        self.offset = lambda: timedelta(hours=2)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self.offset()

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "local"


def test_a_time_zone_that_does_not_pickle_keeps_the_import_here(every_file_a_chunk: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tz = _LocalTz()

    def dry(paths: list[Path]) -> str:
        return import_b2mml(paths, None, dry_run=True, default_tz=tz).model_dump_json(exclude={"seconds"})

    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 1 << 60)
    one = dry(ALL)
    monkeypatch.setattr(par, "PARALLEL_MIN_BYTES", 0)
    assert dry(ALL) == one
