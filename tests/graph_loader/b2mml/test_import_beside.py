"""A big import maps and checks in a second process, and this one writes each group as it passes
(``importer._import_beside``): the same store and the same report as one process, all or
nothing still."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graph_loader.b2mml import importer
from graph_loader.b2mml.importer import ImportReport, import_b2mml
from store.factory import open_store

from .conftest import FIXTURES
from .test_export import _snapshot


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[ImportReport, Any]]:
    """Imports ``paths`` into the store at ``where`` (first with the v0701 fixtures, one process,
    when ``preloaded``), in two processes or one; returns the report and the store's snapshot."""
    calls: list[int] = []
    beside = importer._import_beside

    def spy(*args: Any, **kwargs: Any) -> ImportReport:
        calls.append(1)
        return beside(*args, **kwargs)

    monkeypatch.setattr(importer, "_import_beside", spy)
    monkeypatch.setattr(importer, "usable_cpus", lambda: 2)

    def go(paths: list[Path], where: Path, preloaded: bool, two: bool = True) -> tuple[ImportReport, Any]:
        store = open_store("embedded", where)
        try:
            if preloaded:
                monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 1 << 62)
                assert import_b2mml([FIXTURES / "v0701"], store).written
            monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 0 if two else 1 << 62)
            before = len(calls)
            rep = import_b2mml(paths, store)
            assert len(calls) - before == (1 if two else 0)
            return rep, _snapshot(store)
        finally:
            store.close()

    return go


def _alike(a: ImportReport, b: ImportReport) -> None:
    assert a.model_dump(exclude={"seconds"}) == b.model_dump(exclude={"seconds"})


@pytest.mark.parametrize("preloaded", [False, True])
def test_same_store_and_report(run: Any, tiny_b2mml: Path, tmp_path: Path, preloaded: bool) -> None:
    # empty: the import holds the store alone and the other process opens none; preloaded: it
    # reads the store while this one writes
    two, two_snap = run([tiny_b2mml], tmp_path / "two", preloaded)
    one, one_snap = run([tiny_b2mml], tmp_path / "one", preloaded, two=False)
    assert two.written and two.entities > 0
    _alike(two, one)
    assert two_snap == one_snap


@pytest.mark.parametrize("preloaded", [False, True])
def test_a_failed_check_writes_nothing(run: Any, tiny_b2mml: Path, tmp_path: Path, preloaded: bool) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_b2mml, corpus)
    # a lot with a negative quantity: the checks fail on the Lot group, after the groups of the
    # equipment (read first) have gone to the writer
    lots = next(f for f in sorted(corpus.iterdir()) if f.name.startswith("lots"))
    lots.write_text(re.sub(r"<QuantityString>[^<]*</QuantityString>", "<QuantityString>-5</QuantityString>",
                           lots.read_text(), count=1))
    two, two_snap = run([corpus], tmp_path / "two", preloaded)
    one, one_snap = run([corpus], tmp_path / "one", preloaded, two=False)
    assert not two.written and any("quantity" in str(e) for e in two.errors)
    _alike(two, one)
    assert two_snap == one_snap  # what the store held before, nothing more
    if not preloaded:
        assert two_snap == ({}, {})


def _drafted(files: list[Path]) -> Any:
    imp = importer.B2MMLImporter()
    for f in importer.iter_b2mml_files(files):
        imp.add_file(f)
    imp._finish(None)
    return imp.batch.rows(None)


def test_checks_in_parts_are_the_checks_whole(tiny_b2mml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graph_loader import validation
    from graph_loader.bundle import DEFAULT_BATCH

    assert validation.CHECK_CHUNK % DEFAULT_BATCH == 0
    drafted = _drafted([tiny_b2mml])
    whole = validation.check_rows(drafted.nodes, drafted.edges)
    monkeypatch.setattr(validation, "CHECK_CHUNK", 7)
    got: list[tuple[bool, str, list[Any]]] = []
    parts = validation.check_rows(drafted.nodes, drafted.edges,
                                  on_group=lambda is_nodes, schema, typed: got.append((is_nodes, schema.name, typed)))
    assert [(s.name, t) for s, t in parts[0]] == [(s.name, t) for s, t in whole[0]]
    assert [(s.name, t) for s, t in parts[1]] == [(s.name, t) for s, t in whole[1]]
    assert not whole[2] and not parts[2]
    # every part went out as it passed, in order, nodes first
    assert len(got) > len(whole[0]) + len(whole[1])
    assert [t for is_nodes, _, typed in got if is_nodes for t in typed] == [t for _, g in whole[0] for t in g]
    assert [t for is_nodes, _, typed in got if not is_nodes for t in typed] == [t for _, g in whole[1] for t in g]


def test_no_part_goes_out_after_an_error(tiny_b2mml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graph_loader import validation

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_b2mml, corpus)
    # the last lot of the last lots file: parts of the Lot group pass before it
    last = sorted(f for f in corpus.iterdir() if f.name.startswith("lots"))[-1]
    text = last.read_text()
    at = [m.span() for m in re.finditer(r"<QuantityString>[^<]*</QuantityString>", text)][-1]
    last.write_text(text[:at[0]] + "<QuantityString>-5</QuantityString>" + text[at[1]:])
    drafted = _drafted([corpus])
    monkeypatch.setattr(validation, "CHECK_CHUNK", 7)
    got: list[tuple[bool, str]] = []
    _, _, errors = validation.check_rows(drafted.nodes, drafted.edges,
                                         on_group=lambda is_nodes, schema, _typed: got.append((is_nodes, schema.name)))
    assert errors
    order = list(dict.fromkeys(cls for cls, _ in drafted.nodes))  # node groups in the order they are checked
    lot_rows = sum(1 for cls, _ in drafted.nodes if cls == "Lot")
    sent = [name for _, name in got]
    assert all(is_nodes for is_nodes, _ in got)  # no relation went out
    assert 0 < sent.count("Lot") < -(-lot_rows // 7)  # the Lot parts up to the bad row, not after it
    assert set(sent) <= set(order[:order.index("Lot") + 1])  # nor any class checked after Lot


def test_progress_counts_every_file(tiny_b2mml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "usable_cpus", lambda: 2)
    monkeypatch.setattr(importer, "PIPELINE_MIN_BYTES", 0)
    counted: list[int] = []
    store = open_store("embedded", tmp_path / "store")
    try:
        rep = import_b2mml([tiny_b2mml], store, progress=counted.append)
    finally:
        store.close()
    assert rep.written
    assert sum(counted) == len(importer.iter_b2mml_files([tiny_b2mml])) == len(rep.files)
    assert len(counted) > 1  # told as it goes, not once at the end
