"""A load validated in a second process while this one writes: the same store, the same errors,
nothing written when anything fails on either side."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest

from graph_loader import loader
from graph_loader.errors import BundleValidationError
from graph_loader.generator import generate, named_spec
from graph_loader.loader import load_bundle
from graph_loader.pipeline import PipelineError, RowSink, run_beside
from store.base import GraphStore, WriteTransaction
from store.factory import open_store
from tests.graph_loader.bundles import EXAMPLE, copy_example, store_tables, write_bundle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = open_store("embedded", tmp_path / "store")
    yield s
    s.close()


_tables = store_tables


def _no_children_left() -> bool:
    return not [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_a_pipelined_load_writes_exactly_what_a_one_process_load_writes(tmp_path: Path) -> None:
    plant = tmp_path / "plant"
    generate(named_spec("tiny"), 7, plant)
    update = write_bundle(tmp_path / "inc", {
        "Lot.csv": "id,name,source_system,plant,quantity,unit,status\nLOT-NEW,n,MES,SITE-1,5,kg,released\n",
        "_deleted_nodes.csv": "id\n" + (plant / "Anomaly.csv").read_text().splitlines()[1].split(",")[0] + "\n",
    })
    reports = []
    for name, pipeline in (("one", False), ("two", True)):
        with open_store("embedded", tmp_path / name) as s:
            first = load_bundle(s, plant, pipeline=pipeline)
            second = load_bundle(s, update, pipeline=pipeline)  # endpoints and deletions against the store
            reports.append([r.model_dump(exclude={"seconds", "entities_per_s", "relations_per_s", "bundle"})
                            for r in (first, second)])
    assert reports[0] == reports[1]
    assert reports[1][0]["nodes"] > 1000 and reports[1][1]["nodes_deleted"] == 1
    assert _tables(tmp_path / "one") == _tables(tmp_path / "two")
    assert _no_children_left()


def test_a_first_load_holds_the_store_alone_and_its_checks_open_no_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Into an empty store the load holds the database alone (a rollback journal, no WAL), so the
    checking process must not open it: it is handed no opener, and writes the same tables."""
    plant = tmp_path / "plant"
    generate(named_spec("tiny"), 7, plant)
    openers: list[object] = []
    real = loader.run_beside

    def spy(produce: Any, tx: WriteTransaction, *args: Any) -> Any:
        openers.append((tx.sole, produce.args[1]))
        return real(produce, tx, *args)

    monkeypatch.setattr(loader, "run_beside", spy)
    for name, exclusive in (("alone", True), ("shared", False)):
        with open_store("embedded", tmp_path / name) as s:
            load_bundle(s, plant, pipeline=True, exclusive=exclusive)
            load_bundle(s, plant, pipeline=True)  # a second load finds data: shared, with look-ups
    assert [(sole, opener is None) for sole, opener in openers] == [
        (True, True), (False, False), (False, False), (False, False)]
    assert _tables(tmp_path / "alone") == _tables(tmp_path / "shared")
    assert not (tmp_path / "alone" / "graph.sqlite-journal").exists()


def _bad(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "bad")
    # a change to an existing entity, so a partial write would show, then a late error
    (root / "Lot.csv").write_text((root / "Lot.csv").read_text().replace("120,l,on_hold", "120,l,scrapped"))
    with (root / "WORKS_AT.csv").open("a") as f:
        f.write("P-ANNA,SITE-NOWHERE\n")
    with (root / "Lot.csv").open("a") as f:
        f.write("LOT-BAD,Bad lot,MES,SITE-LYON,-10,kg,released,,\n")
    return root


def test_errors_found_in_the_second_process_are_the_same_and_nothing_is_written(
    tmp_path: Path, store: GraphStore
) -> None:
    load_bundle(store, EXAMPLE)
    before = _tables(tmp_path / "store")
    root = _bad(tmp_path)
    found = []
    for pipeline in (False, True):
        with pytest.raises(BundleValidationError) as info:
            load_bundle(store, root, pipeline=pipeline, batch_size=2)
        found.append(([str(e) for e in info.value.errors], info.value.total))
        assert _tables(tmp_path / "store") == before
    assert found[0] == found[1]
    assert [e.split(": ")[0] for e in found[1][0]] == ["Lot.csv:5:quantity", "WORKS_AT.csv:4:dst"]


def _note(out: list[tuple[int, int]], done: int, total: int) -> None:
    out.append((done, total))


def test_progress_comes_through_the_pipe_as_in_one_process(tmp_path: Path) -> None:
    seen: dict[bool, list[tuple[int, int]]] = {}
    for pipeline in (False, True):
        with open_store("embedded", tmp_path / str(pipeline)) as s:
            calls: list[tuple[int, int]] = []
            seen[pipeline] = calls
            load_bundle(s, EXAMPLE, progress=partial(_note, calls),
                        pipeline=pipeline)
    assert seen[True] == seen[False]
    assert seen[True][-1][0] == seen[True][-1][1] > 0


def test_large_bundles_take_the_pipeline_and_small_ones_stay_in_process(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = loader.run_beside

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "run_beside", spy)
    load_bundle(store, EXAMPLE)  # a few kB: not worth a process
    assert calls == []
    monkeypatch.setattr(loader, "PIPELINE_MIN_BYTES", 0)
    monkeypatch.setattr(loader, "usable_cpus", lambda: 2)
    load_bundle(store, EXAMPLE)
    assert calls == [1]
    monkeypatch.setattr(loader, "usable_cpus", lambda: 1)
    load_bundle(store, EXAMPLE)
    assert calls == [1]


# -- producers run in the second process (module level, so it can import them) -------------------

_LOT = {"id": "LOT-P", "source_system": "MES", "quantity": "1", "unit": "kg", "status": "released"}


def _rows(n: int = 1) -> list[Any]:
    from graph_loader.validation import row_schema

    schema = row_schema("node", "Lot")
    return schema.to_node_rows(schema.batch_adapter.validate_python([_LOT] * n))


def _sends_then_raises(sink: RowSink) -> None:
    sink.nodes("Lot", _rows())
    raise BundleValidationError([], 3)


def _dies(sink: RowSink) -> None:
    sink.nodes("Lot", _rows())
    os._exit(3)


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling passes one argument back: fails
        super().__init__(f"{a}/{b}")


def _raises_unpicklable(sink: RowSink) -> None:
    raise _Unpicklable(1, 2)


def _sends_forever(sink: RowSink) -> None:
    batch = _rows(100)
    while True:
        sink.nodes("Lot", batch)


def test_a_producer_error_comes_back_as_itself_and_the_rows_it_sent_roll_back(store: GraphStore) -> None:
    with pytest.raises(BundleValidationError) as info, store.transaction() as tx:
        run_beside(_sends_then_raises, tx)
    assert info.value.total == 3
    assert any("raised in the validating process" in n for n in getattr(info.value, "__notes__", []))
    assert store.counts().nodes == 0 and store.get_node("LOT-P") is None
    assert _no_children_left()


def test_a_producer_that_dies_is_reported_with_its_exit_code_and_nothing_is_written(store: GraphStore) -> None:
    with pytest.raises(PipelineError, match="exit code 3"), store.transaction() as tx:
        run_beside(_dies, tx)
    assert store.counts().nodes == 0
    with pytest.raises(PipelineError, match="_Unpicklable: 1/2"), store.transaction() as tx:
        run_beside(_raises_unpicklable, tx)
    assert _no_children_left()


class _FailingTx(WriteTransaction):
    """A transaction whose first write fails, as a store refusing a row would."""

    def upsert_nodes(self, nodes: Sequence[Any]) -> None:
        raise RuntimeError("refused")

    def upsert_node_rows(self, cls: str, rows: Sequence[Any]) -> None:
        raise RuntimeError("refused")

    def upsert_edges(self, edges: Sequence[Any]) -> None:  # pragma: no cover - not reached
        raise RuntimeError("refused")

    def delete_nodes(self, ids: Sequence[str]) -> None:  # pragma: no cover - not reached
        raise RuntimeError("refused")

    def delete_edges(self, keys: Sequence[tuple[str, str, str]]) -> None:  # pragma: no cover
        raise RuntimeError("refused")

    @property
    def report(self) -> Any:  # pragma: no cover - not reached
        return None


def test_a_failed_write_here_stops_the_producer(store: GraphStore) -> None:
    with pytest.raises(RuntimeError, match="refused"):
        run_beside(partial(_sends_forever), _FailingTx())
    assert _no_children_left()
