"""The bulk form of the upserts (``upsert_node_rows`` / ``upsert_edge_rows``): the same graph as the
record form, on every backend, and the same refusals.

Expected answers come from the rows written here by hand.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.base import (
    Direction,
    EdgeRecord,
    EdgeRow,
    GraphStore,
    IntegrityError,
    NodeRecord,
    NodeRow,
    StoreError,
)
from store.embedded import DB_FILE, MULTI_ROWS, EmbeddedStore
from tests.graphs import ts


def node_rows(prefix: str) -> list[NodeRow]:
    return [
        (f"{prefix}L1", "Lot one", "SITE-A", "MES", "2026-03-01T06:00:00+01:00", None, {"quantity": 2.5, "unit": "kg"}),
        # UTC written as Z, microseconds, an end time, no name or plant
        (f"{prefix}L2", None, None, "ERP", "2026-03-01T05:00:00.250000Z", "2026-04-01T00:00:00-05:00", {}),
        # an empty and a numeric-looking name stay text, not NULL
        (f"{prefix}L3", "", "0", "MES", None, None, {"tags": ["a", "b"], "nested": {"k": 1}}),
        (f"{prefix}M1", "Press", "SITE-A", "MES", None, None, {"machine_type": "press"}),
    ]


def edge_rows(prefix: str) -> list[EdgeRow]:
    return [
        (f"{prefix}L1", f"{prefix}L2", "MES", "2026-03-02T00:00:00+00:00", None, {"quantity": 1.0}),
        (f"{prefix}L2", f"{prefix}L3", "MES", None, "2026-03-05T00:00:00+02:00", {}),
    ]


def as_records(prefix: str) -> tuple[list[NodeRecord], list[EdgeRecord]]:
    def t(text: str | None) -> Any:
        return None if text is None else ts(text.replace("Z", "+00:00"))

    classes = {"L1": "Lot", "L2": "Lot", "L3": "Lot", "M1": "Machine"}
    nodes = [NodeRecord(i, classes[i[len(prefix):]], p, n, pl, s, t(vf), t(vt)) for i, n, pl, s, vf, vt, p in
             node_rows(prefix)]
    edges = [EdgeRecord(s, "DERIVED_FROM", d, p, sy, t(vf), t(vt)) for s, d, sy, vf, vt, p in edge_rows(prefix)]
    return nodes, edges


def write_rows(store: GraphStore, prefix: str) -> None:
    rows = node_rows(prefix)
    with store.transaction() as tx:
        tx.upsert_node_rows("Lot", rows[:3])
        tx.upsert_node_rows("Machine", rows[3:])
        tx.upsert_edge_rows("DERIVED_FROM", edge_rows(prefix))


def unprefixed(store: GraphStore, prefix: str) -> list[Any]:
    """Every node and outgoing edge with this id prefix, ids without it."""
    out: list[Any] = []
    for n in sorted(store.find_nodes(), key=lambda n: n.id):
        if not n.id.startswith(prefix):
            continue
        out.append((n.id[len(prefix):], n.cls, dict(n.props), n.name, n.plant, n.source_system,
                    n.valid_from, n.valid_to))
        for e in store.neighbours(n.id, direction=Direction.OUT):
            out.append((e.src[len(prefix):], e.rel, e.dst[len(prefix):], dict(e.props), e.source_system,
                        e.valid_from, e.valid_to))
    return out


def test_rows_write_what_they_say(store: GraphStore) -> None:
    write_rows(store, "")
    l1, l2, l3 = (store.get_node(i) for i in ("L1", "L2", "L3"))
    assert l1 is not None and l2 is not None and l3 is not None
    assert (l1.cls, l1.name, l1.plant, l1.source_system) == ("Lot", "Lot one", "SITE-A", "MES")
    assert dict(l1.props) == {"quantity": 2.5, "unit": "kg"}
    assert l1.valid_from == ts("2026-03-01T06:00:00+01:00") and l1.valid_to is None
    assert l1.valid_from is not None and l1.valid_from.utcoffset() is not None
    assert l1.valid_from.isoformat() == "2026-03-01T06:00:00+01:00"  # the offset as written
    assert (l2.name, l2.plant, dict(l2.props)) == (None, None, {})
    assert l2.valid_from == ts("2026-03-01T05:00:00.250000+00:00")
    assert l2.valid_to == ts("2026-04-01T00:00:00-05:00")
    assert (l3.name, l3.plant) == ("", "0")
    assert dict(l3.props) == {"tags": ["a", "b"], "nested": {"k": 1}}
    [e] = store.neighbours("L1", ["DERIVED_FROM"])
    assert (e.dst, dict(e.props), e.valid_from) == ("L2", {"quantity": 1.0}, ts("2026-03-02T00:00:00+00:00"))
    [e2] = store.neighbours("L3", ["DERIVED_FROM"], Direction.IN)
    assert (e2.src, e2.valid_from, e2.valid_to) == ("L2", None, ts("2026-03-05T00:00:00+02:00"))
    counts = store.counts()
    assert counts.nodes_by_class == {"Lot": 3, "Machine": 1}
    assert counts.edges_by_relation == {"DERIVED_FROM": 2}
    # as-of filters see the times of the rows
    assert store.get_node("L2", as_of=ts("2026-03-01T05:00:00+00:00")) is None
    assert store.get_node("L2", as_of=ts("2026-03-01T05:00:00.250000+00:00")) is not None


def test_rows_and_records_give_the_same_graph(store: GraphStore) -> None:
    write_rows(store, "B-")
    nodes, edges = as_records("R-")
    with store.transaction() as tx:
        tx.upsert_nodes(nodes)
        tx.upsert_edges(edges)
    assert unprefixed(store, "B-") == unprefixed(store, "R-")
    assert len(unprefixed(store, "B-")) == 6


def test_repeated_rows_update_in_order(store: GraphStore) -> None:
    """More rows than one multi-row statement holds, each id and edge key several times: the last
    row of each wins and counts count each once."""
    n = MULTI_ROWS * 2 + 7
    with store.transaction() as tx:
        tx.upsert_node_rows("Lot", [(f"N{i % 50}", f"v{i}", None, "MES", None, None, {"i": i}) for i in range(n)])
        tx.upsert_edge_rows("DERIVED_FROM", [(f"N{i % 7}", f"N{7 + i % 5}", "MES", None, None, {"i": i})
                                             for i in range(n)])
    counts = store.counts()
    assert counts.nodes_by_class == {"Lot": 50}
    assert counts.edges_by_relation == {"DERIVED_FROM": 35}  # 7 sources x 5 targets, all pairs met
    last = {i % 50: i for i in range(n)}
    for k, i in last.items():
        got = store.get_node(f"N{k}")
        assert got is not None and got.name == f"v{i}" and dict(got.props) == {"i": i}
    last_edge = {(i % 7, 7 + i % 5): i for i in range(n)}
    got_edges = {(e.src, e.dst): dict(e.props) for k in range(7) for e in store.neighbours(f"N{k}")}
    assert got_edges == {(f"N{a}", f"N{b}"): {"i": i} for (a, b), i in last_edge.items()}


def test_rows_reloaded_change_nothing(store: GraphStore) -> None:
    write_rows(store, "")
    before = unprefixed(store, "")
    write_rows(store, "")
    assert unprefixed(store, "") == before
    assert store.counts().nodes == 4 and store.counts().edges == 2


@pytest.mark.parametrize(("row", "words"), [
    (("N1", None, None, "MES", "yesterday", None, {}), ["N1", "valid_from", "yesterday"]),
    (("N1", None, None, "MES", None, "2026-03-01T00:00:00", {}), ["N1", "valid_to"]),  # no time zone
    (("N1", None, None, "MES", None, None, {"bad": {1, 2}}), ["N1", "bad"]),
])
def test_bad_node_row_is_refused_and_nothing_written(store: GraphStore, row: NodeRow, words: list[str]) -> None:
    with pytest.raises(StoreError) as err, store.transaction() as tx:
        tx.upsert_node_rows("Lot", [("OK", None, None, "MES", None, None, {}), row])
    for w in words:
        assert w in str(err.value)
    assert store.counts().nodes == 0


def test_bad_edge_rows_are_refused(store: GraphStore) -> None:
    with store.transaction() as tx:
        tx.upsert_node_rows("Lot", [("A", None, None, "MES", None, None, {}), ("B", None, None, "MES", None, None, {})])
    before = (store.counts().nodes, store.counts().edges)
    with pytest.raises(IntegrityError, match="GHOST"), store.transaction() as tx:
        tx.upsert_edge_rows("DERIVED_FROM", [("A", "B", "MES", None, None, {}), ("B", "GHOST", "MES", None, None, {})])
    with pytest.raises(IntegrityError, match="valid_from"), store.transaction() as tx:
        tx.upsert_edge_rows("DERIVED_FROM", [("A", "B", "MES", "not a time", None, {})])
    assert (store.counts().nodes, store.counts().edges) == before


def test_class_change_by_rows_is_refused(store: GraphStore) -> None:
    with store.transaction() as tx:
        tx.upsert_node_rows("Lot", [("X1", None, None, "MES", None, None, {})])
    with pytest.raises(IntegrityError, match="X1"), store.transaction() as tx:
        tx.upsert_node_rows("Machine", [("X1", None, None, "MES", None, None, {})])
    got = store.get_node("X1")
    assert got is not None and got.cls == "Lot"


# -- embedded: the very same rows in SQLite as the record form ------------------------------------


def _tables(path: Path) -> list[Any]:
    conn = sqlite3.connect(path / DB_FILE)
    try:
        return [conn.execute(q).fetchall() for q in (
            "SELECT * FROM nodes ORDER BY nid", "SELECT * FROM edges ORDER BY eid",
            "SELECT * FROM node_counts ORDER BY cls", "SELECT * FROM edge_counts ORDER BY rel",
        )]
    finally:
        conn.close()


def test_embedded_rows_store_the_same_text_as_records(tmp_path: Path) -> None:
    nodes, edges = as_records("")
    with EmbeddedStore(tmp_path / "records") as a, a.transaction() as tx:
        tx.upsert_nodes(nodes)
        tx.upsert_edges(edges)
    with EmbeddedStore(tmp_path / "rows") as b:
        write_rows(b, "")
    got = _tables(tmp_path / "rows")
    assert got == _tables(tmp_path / "records")
    # the UTC time written as Z is stored as isoformat() writes it, so the record form finds it unchanged
    assert ("L2", "2026-03-01T05:00:00.250000+00:00") in [(r[1], r[6]) for r in got[0]]


def test_vectorised_timestamps_match_isoformat_and_exact_microseconds() -> None:
    """The column parser gives what ``datetime.isoformat`` and exact timedelta arithmetic give, for
    random times and offsets, the UTC ``Z`` form, and the shapes it leaves to the slow path."""
    import calendar
    import random
    from datetime import UTC, datetime, timedelta, timezone

    from store.embedded import _stamp_columns

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rnd = random.Random(7)
    texts: list[str | None] = []
    for _ in range(3000):
        year, month = rnd.randint(1, 9999), rnd.randint(1, 12)
        day = rnd.choice([1, rnd.randint(1, 28), calendar.monthrange(year, month)[1]])  # month ends, Feb 29
        t = datetime(year, month, day, rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59),
                     rnd.choice([0, rnd.randint(1, 999_999)]))
        off = timedelta(minutes=rnd.randint(-(23 * 60 + 59), 23 * 60 + 59))
        text = t.replace(tzinfo=timezone(off)).isoformat()
        texts.append(text)
        if off == timedelta(0):
            texts.append(text.replace("+00:00", "Z"))
    texts += [
        None, "2026-03-01T06:00:00Z", "2026-03-01T06:00:00.120000Z", "2024-02-29T23:59:59+01:00",
        "2026-03-01T06:00:00.000000+01:00", "2026-03-01T06:00:00-00:00", "2026-03-01 06:00:00+01:00",
        "2026-03-01T06:00+01:00", "2026-03-01T06:00:00.5+01:00", "0001-01-01T00:00:00+05:00", None,
        "9999-12-31T23:59:59.999999-23:59", "2026-03-01T06:00:00+0100",
    ]
    iso, us = _stamp_columns(texts)
    for text, got_iso, got_us in zip(texts, iso, us, strict=True):
        if text is None:
            assert (got_iso, got_us) == (0, "")  # the sentinels that NULLIF turns into NULL
            continue
        want = datetime.fromisoformat(text)
        assert got_iso == want.isoformat(), text
        assert got_us == (want - epoch) // timedelta(microseconds=1), text


@pytest.mark.parametrize("bad", [
    "2026-02-30T00:00:00+01:00", "2026-13-01T00:00:00+01:00", "2026-03-01T24:00:00+01:00",
    "2026-03-01T00:00:00+24:00", "2026-03-01T00:00:00", "yesterday", "2026-03-01T00:00:60Z",
])
def test_vectorised_timestamps_refuse_what_datetime_refuses(bad: str) -> None:
    from store.embedded import _stamp_columns

    with pytest.raises(ValueError):
        _stamp_columns(["2026-03-01T00:00:00+01:00", bad])


def test_column_fragments_are_the_per_value_json() -> None:
    """The props JSON of a column written by one encoder call equals one ``_fragment`` a value."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from store.embedded import _fragment, _fragments

    scalars = st.one_of(st.none(), st.text(), st.booleans(), st.integers(),
                        st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=2))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(scalars, max_size=20))
    def check(values: list[object]) -> None:
        assert _fragments('"k":', values) == [None if v is None else '"k":' + _fragment(v) for v in values]

    check()
