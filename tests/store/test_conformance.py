"""Behaviour every GraphStore backend must show; runs once per backend (see tests/conftest.py).

Graphs are built by hand here, so every expected answer is written from the graph, not from
what a backend returned.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from store.base import (
    Direction,
    EdgeRecord,
    GraphStore,
    IntegrityError,
    NodeRecord,
    StoreError,
    TraversalStep,
)
from tests.graphs import build_graph, chain, ts

T0 = ts("2026-03-01T00:00:00+00:00")
T1 = ts("2026-03-10T00:00:00+01:00")
T2 = ts("2026-03-20T00:00:00+00:00")


def snapshot(store: GraphStore) -> tuple[object, ...]:
    """Everything observable about a small store: counts, every node, every edge."""
    counts = store.counts()
    nodes = sorted(store.find_nodes(), key=lambda n: n.id)
    edges = sorted(
        (e for n in nodes for e in store.neighbours(n.id, direction=Direction.OUT)), key=lambda e: e.key
    )
    return (counts.nodes_by_class, counts.edges_by_relation, nodes, edges)


# -- upsert / get ------------------------------------------------------------------------------


def test_upsert_and_get_round_trip(store: GraphStore) -> None:
    lot = NodeRecord(
        id="LOT-1", cls="Lot", props={"quantity": 12.5, "status": "released", "tags": ["a", "b"]},
        name="Lot one", plant="SITE-A", source_system="MES", valid_from=T1, valid_to=None,
    )
    with store.transaction() as tx:
        tx.upsert_nodes([lot])
    got = store.get_node("LOT-1")
    assert got is not None
    assert (got.id, got.cls, got.name, got.plant, got.source_system) == ("LOT-1", "Lot", "Lot one", "SITE-A", "MES")
    assert dict(got.props) == {"quantity": 12.5, "status": "released", "tags": ["a", "b"]}
    assert got.valid_from == T1 and got.valid_to is None
    assert store.get_node("NOPE") is None
    assert store.node_classes(["LOT-1", "NOPE"]) == {"LOT-1": "Lot"}


def test_upsert_existing_id_replaces_record(store: GraphStore) -> None:
    build_graph(store, nodes=[("M1", "Machine", {"machine_type": "press", "old": 1}, {"name": "Press"})])
    build_graph(store, nodes=[("M1", "Machine", {"machine_type": "lathe"}, {"name": "Lathe"})])
    got = store.get_node("M1")
    assert got is not None
    assert dict(got.props) == {"machine_type": "lathe"}
    assert got.name == "Lathe"
    assert store.counts().nodes_by_class == {"Machine": 1}


def test_class_change_is_refused_and_changes_nothing(store: GraphStore) -> None:
    build_graph(store, nodes=[("X1", "Lot", {"q": 1})])
    before = snapshot(store)
    with pytest.raises(IntegrityError, match="X1"), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="X2", cls="Lot")])
        tx.upsert_nodes([NodeRecord(id="X1", cls="Machine")])
    assert snapshot(store) == before


def test_reupsert_is_idempotent(store: GraphStore) -> None:
    nodes = [("A", "Lot", {"q": 1}), ("B", "Lot"), ("PO", "ProductionOrder")]
    edges = [("PO", "CONSUMED", "A", {"quantity": 2.0}), ("PO", "PRODUCED", "B")]
    build_graph(store, nodes, edges)
    first = snapshot(store)
    build_graph(store, nodes, edges)
    assert snapshot(store) == first
    assert store.counts().nodes == 3 and store.counts().edges == 2


def test_edge_upsert_updates_props(store: GraphStore) -> None:
    build_graph(store, [("PO", "ProductionOrder"), ("A", "Lot")], [("PO", "CONSUMED", "A", {"quantity": 1.0})])
    build_graph(store, edges=[("PO", "CONSUMED", "A", {"quantity": 3.0})])
    [e] = store.neighbours("PO")
    assert dict(e.props) == {"quantity": 3.0}
    assert store.counts().edges_by_relation == {"CONSUMED": 1}


def test_edge_to_node_written_earlier_in_same_transaction(store: GraphStore) -> None:
    with store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="A", cls="Lot")])
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="B")])
    assert [e.key for e in store.neighbours("A")] == [("A", "DERIVED_FROM", "B")]


# -- integrity and rollback --------------------------------------------------------------------


def test_missing_endpoint_raises_and_writes_nothing(store: GraphStore) -> None:
    build_graph(store, [("A", "Lot")])
    before = snapshot(store)
    with pytest.raises(IntegrityError, match="GHOST"), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="B", cls="Lot")])
        tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="B")])
        tx.upsert_edges([EdgeRecord(src="B", rel="DERIVED_FROM", dst="GHOST")])
    assert snapshot(store) == before
    assert store.get_node("B") is None


def test_exception_inside_transaction_rolls_back(store: GraphStore) -> None:
    build_graph(store, [("A", "Lot", {"v": 1})])
    before = snapshot(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="A", cls="Lot", props={"v": 2}), NodeRecord(id="B", cls="Lot")])
        tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="B")])
        tx.delete_nodes(["A"])
        raise Boom()
    assert snapshot(store) == before


def test_naive_timestamp_is_refused(store: GraphStore) -> None:
    naive = ts("2026-03-01T00:00:00+00:00").replace(tzinfo=None)
    with pytest.raises(IntegrityError, match="N1"), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="N1", cls="Lot", valid_from=naive)])
    assert store.counts().nodes == 0


def test_non_json_property_is_refused(store: GraphStore) -> None:
    with pytest.raises(IntegrityError, match="bad"), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="N1", cls="Lot", props={"bad": {1, 2}})])
    assert store.counts().nodes == 0


# -- neighbours --------------------------------------------------------------------------------


@pytest.fixture
def small(store: GraphStore) -> GraphStore:
    """PO1 consumed L1, L2 and produced L3; PO2 consumed L3; L3 shipped to SOL1."""
    build_graph(
        store,
        nodes=[("PO1", "ProductionOrder"), ("PO2", "ProductionOrder"), ("L1", "Lot"), ("L2", "Lot"),
               ("L3", "Lot"), ("SOL1", "SalesOrderLine")],
        edges=[("PO1", "CONSUMED", "L2", {"quantity": 2.0}), ("PO1", "CONSUMED", "L1", {"quantity": 1.0}),
               ("PO1", "PRODUCED", "L3"), ("PO2", "CONSUMED", "L3"), ("L3", "SHIPPED_TO", "SOL1")],
    )
    return store


def test_neighbours_by_relation_and_direction(small: GraphStore) -> None:
    out = small.neighbours("PO1")
    assert [e.key for e in out] == [("PO1", "CONSUMED", "L1"), ("PO1", "CONSUMED", "L2"), ("PO1", "PRODUCED", "L3")]
    assert [e.props["quantity"] for e in out[:2]] == [1.0, 2.0]
    assert [e.key for e in small.neighbours("PO1", rels=["PRODUCED"])] == [("PO1", "PRODUCED", "L3")]
    assert [e.key for e in small.neighbours("L3", direction=Direction.IN)] == [
        ("PO1", "PRODUCED", "L3"), ("PO2", "CONSUMED", "L3")]
    assert [e.key for e in small.neighbours("L3", direction=Direction.BOTH)] == [
        ("L3", "SHIPPED_TO", "SOL1"), ("PO1", "PRODUCED", "L3"), ("PO2", "CONSUMED", "L3")]
    assert [e.key for e in small.neighbours("L3", rels=["CONSUMED"], direction=Direction.BOTH)] == [
        ("PO2", "CONSUMED", "L3")]
    assert small.neighbours("L1") == []
    assert small.neighbours("MISSING") == []
    assert small.neighbours("PO1", rels=[]) == []


# -- time ------------------------------------------------------------------------------------


def test_as_of_filters_nodes_and_edges(store: GraphStore) -> None:
    build_graph(
        store,
        nodes=[("S1", "SOP"), ("V1", "SOPVersion", {}, {"valid_from": T0, "valid_to": T1}),
               ("V2", "SOPVersion", {}, {"valid_from": T1})],
        edges=[("V1", "VERSION_OF", "S1"), ("V2", "VERSION_OF", "S1"),
               ("S1", "APPLIES_TO", "S1", {}, {"valid_to": T0})],
    )
    mid = T0 + timedelta(days=2)
    assert set(store.get_nodes(["V1", "V2"], as_of=mid)) == {"V1"}
    assert set(store.get_nodes(["V1", "V2"], as_of=T1)) == {"V2"}  # valid_to is exclusive
    assert set(store.get_nodes(["V1", "V2"], as_of=T0 - timedelta(seconds=1))) == set()
    assert set(store.get_nodes(["V1", "V2"])) == {"V1", "V2"}  # ended entities stay visible without as_of
    assert [e.src for e in store.neighbours("S1", rels=["VERSION_OF"], direction=Direction.IN, as_of=mid)] == ["V1"]
    assert [e.src for e in store.neighbours("S1", rels=["VERSION_OF"], direction=Direction.IN, as_of=T2)] == ["V2"]
    assert store.neighbours("S1", rels=["APPLIES_TO"], as_of=mid) == []
    assert len(store.neighbours("S1", rels=["APPLIES_TO"])) == 1
    assert store.neighbours("V1", as_of=T2) == []  # the node itself has ended
    assert [n.id for n in store.find_nodes(cls="SOPVersion", as_of=T2)] == ["V2"]


def test_as_of_limits_traversal(store: GraphStore) -> None:
    build_graph(
        store,
        nodes=[("A", "Lot"), ("B", "Lot", {}, {"valid_from": T1}), ("C", "Lot"), ("D", "Lot")],
        edges=[("A", "DERIVED_FROM", "B"), ("A", "DERIVED_FROM", "C", {}, {"valid_from": T1}),
               ("C", "DERIVED_FROM", "D")],
    )
    step = [TraversalStep("DERIVED_FROM")]
    assert set(store.traverse(["A"], step, 5).hops) == {"A", "B", "C", "D"}
    assert set(store.traverse(["A"], step, 5, as_of=T0).hops) == {"A"}
    assert set(store.traverse(["A"], step, 5, as_of=T2).hops) == {"A", "B", "C", "D"}
    assert store.traverse(["B"], step, 5, as_of=T0).hops == {}  # a start not valid then is absent


# -- traversal -----------------------------------------------------------------------------


def test_traversal_follows_steps_and_records_paths(small: GraphStore) -> None:
    steps = [TraversalStep("CONSUMED", Direction.IN), TraversalStep("PRODUCED"), TraversalStep("SHIPPED_TO")]
    tr = small.traverse(["L1"], steps, max_depth=10)
    assert not tr.truncated
    # L3 is also consumed by PO2 (an incoming CONSUMED edge), so PO2 is reached too.
    assert {h: tr.hops[h].depth for h in tr.hops} == {"L1": 0, "PO1": 1, "L3": 2, "SOL1": 3, "PO2": 3}
    path = tr.path_to("SOL1")
    assert [h.node for h in path] == ["L1", "PO1", "L3", "SOL1"]
    assert [h.edge.key if h.edge else None for h in path] == [
        None, ("PO1", "CONSUMED", "L1"), ("PO1", "PRODUCED", "L3"), ("L3", "SHIPPED_TO", "SOL1")]
    assert tr.hops["PO1"].edge is not None and tr.hops["PO1"].edge.props == {"quantity": 1.0}


def test_traversal_depth_cap_is_reported(store: GraphStore) -> None:
    build_graph(store, [(x, "Lot") for x in "ABCDE"], chain("ABCDE", "DERIVED_FROM"))
    step = [TraversalStep("DERIVED_FROM")]
    tr = store.traverse(["A"], step, max_depth=2)
    assert set(tr.hops) == {"A", "B", "C"}
    assert tr.truncated and tr.truncated_reason == "max_depth"
    exact = store.traverse(["A"], step, max_depth=4)
    assert set(exact.hops) == set("ABCDE") and not exact.truncated
    assert set(store.traverse(["A"], step, max_depth=0).hops) == {"A"}


def test_traversal_cycles_end(store: GraphStore) -> None:
    build_graph(store, [(x, "Lot") for x in "ABC"], [*chain("ABCA", "DERIVED_FROM"), ("B", "DERIVED_FROM", "B")])
    tr = store.traverse(["A"], [TraversalStep("DERIVED_FROM", Direction.BOTH)], max_depth=10)
    assert {h: tr.hops[h].depth for h in tr.hops} == {"A": 0, "B": 1, "C": 1}
    assert not tr.truncated


def test_traversal_node_cap_is_reported_and_deterministic(store: GraphStore) -> None:
    leaves = [f"L{i:02d}" for i in range(10)]
    build_graph(store, [("R", "Lot"), *[(x, "Lot") for x in leaves]],
                [("R", "DERIVED_FROM", x) for x in reversed(leaves)])
    tr = store.traverse(["R"], [TraversalStep("DERIVED_FROM")], max_depth=3, max_nodes=4)
    assert tr.truncated and tr.truncated_reason == "max_nodes"
    assert set(tr.hops) == {"R", "L00", "L01", "L02"}  # admitted in edge-key order


def test_traversal_tie_broken_by_smallest_edge_key(store: GraphStore) -> None:
    # X is reached at depth 2 through both P and Q; (P, DERIVED_FROM, X) < (Q, DERIVED_FROM, X).
    build_graph(store, [(x, "Lot") for x in ("S", "Q", "P", "X")],
                [("S", "DERIVED_FROM", "Q"), ("S", "DERIVED_FROM", "P"),
                 ("Q", "DERIVED_FROM", "X"), ("P", "DERIVED_FROM", "X")])
    for _ in range(3):
        tr = store.traverse(["S"], [TraversalStep("DERIVED_FROM")], max_depth=5)
        assert tr.hops["X"].parent == "P" and tr.hops["X"].depth == 2
    # A direct edge from S shortens X's path to one hop and wins over the depth-2 parents.
    build_graph(store, [("A", "Lot")], [("S", "DERIVED_FROM", "A"), ("A", "DERIVED_FROM", "X")])
    tr = store.traverse(["S"], [TraversalStep("DERIVED_FROM")], max_depth=5)
    assert tr.hops["X"].parent == "A" and tr.hops["X"].depth == 2
    build_graph(store, edges=[("S", "DERIVED_FROM", "X")])
    tr = store.traverse(["S"], [TraversalStep("DERIVED_FROM")], max_depth=5)
    assert tr.hops["X"].parent == "S" and tr.hops["X"].depth == 1


def test_traversal_through_classes(small: GraphStore) -> None:
    steps = [TraversalStep("CONSUMED", Direction.IN), TraversalStep("PRODUCED"), TraversalStep("SHIPPED_TO")]
    tr = small.traverse(["L1"], steps, max_depth=10, through_classes=frozenset({"Lot"}))
    # PO1 is reached but not expanded; the start is always expanded.
    assert set(tr.hops) == {"L1", "PO1"}
    assert not tr.truncated


def test_traversal_multiple_starts_and_unknown(small: GraphStore) -> None:
    tr = small.traverse(["L3", "NOPE", "L1"], [TraversalStep("SHIPPED_TO")], max_depth=2)
    assert set(tr.hops) == {"L3", "L1", "SOL1"}
    assert tr.hops["L1"].depth == 0 and tr.hops["L1"].parent is None


# -- deletes ---------------------------------------------------------------------------------


def test_delete_node_removes_touching_edges(small: GraphStore) -> None:
    with small.transaction() as tx:
        tx.delete_nodes(["L3", "UNKNOWN"])
    assert small.get_node("L3") is None
    assert [e.key for e in small.neighbours("PO1")] == [("PO1", "CONSUMED", "L1"), ("PO1", "CONSUMED", "L2")]
    assert small.neighbours("PO2") == [] and small.neighbours("SOL1", direction=Direction.IN) == []
    c = small.counts()
    assert c.nodes_by_class == {"ProductionOrder": 2, "Lot": 2, "SalesOrderLine": 1}
    assert c.edges_by_relation == {"CONSUMED": 2}


def test_delete_edges(small: GraphStore) -> None:
    with small.transaction() as tx:
        tx.delete_edges([("PO1", "CONSUMED", "L1"), ("PO1", "CONSUMED", "NOPE")])
    assert [e.key for e in small.neighbours("PO1", rels=["CONSUMED"])] == [("PO1", "CONSUMED", "L2")]
    assert small.counts().edges_by_relation == {"CONSUMED": 2, "PRODUCED": 1, "SHIPPED_TO": 1}
    assert small.get_node("L1") is not None


# -- find / counts -------------------------------------------------------------------------


def test_find_nodes_filters_and_orders(store: GraphStore) -> None:
    build_graph(store, [
        ("L3", "Lot", {"status": "on_hold", "qty": 5}, {"plant": "P1"}),
        ("L1", "Lot", {"status": "released", "qty": 5}, {"plant": "P1"}),
        ("L2", "Lot", {"status": "on_hold", "qty": 7, "flag": True}, {"plant": "P2"}),
        ("M1", "Machine", {"status": "on_hold"}, {"plant": "P1"}),
    ])
    ids = lambda it: [n.id for n in it]  # noqa: E731
    assert ids(store.find_nodes(cls="Lot")) == ["L1", "L2", "L3"]
    assert ids(store.find_nodes(plant="P1")) == ["L1", "L3", "M1"]
    assert ids(store.find_nodes(cls="Lot", where={"status": "on_hold"})) == ["L2", "L3"]
    assert ids(store.find_nodes(where={"status": "on_hold", "qty": 5})) == ["L3"]
    assert ids(store.find_nodes(where={"flag": True})) == ["L2"]
    assert ids(store.find_nodes(cls="Lot", limit=2)) == ["L1", "L2"]
    assert ids(store.find_nodes(cls="Nothing")) == []
    assert ids(store.find_nodes()) == ["L1", "L2", "L3", "M1"]


def test_counts_per_class_and_relation(small: GraphStore) -> None:
    c = small.counts()
    assert c.nodes_by_class == {"ProductionOrder": 2, "Lot": 3, "SalesOrderLine": 1}
    assert c.edges_by_relation == {"CONSUMED": 3, "PRODUCED": 1, "SHIPPED_TO": 1}
    assert (c.nodes, c.edges) == (6, 5)


def test_empty_store_counts(store: GraphStore) -> None:
    c = store.counts()
    assert (c.nodes, c.edges) == (0, 0)


def test_bad_traversal_arguments(store: GraphStore) -> None:
    with pytest.raises(StoreError):
        store.traverse(["A"], [TraversalStep("X")], max_depth=-1)


def test_edge_to_node_deleted_in_same_transaction(store: GraphStore) -> None:
    build_graph(store, [("A", "Lot")])
    with pytest.raises(IntegrityError, match="'C'"), store.transaction() as tx:
        tx.upsert_nodes([NodeRecord(id="C", cls="Lot")])
        tx.delete_nodes(["C"])
        tx.upsert_edges([EdgeRecord(src="A", rel="DERIVED_FROM", dst="C")])
    assert store.counts().nodes == 1 and store.get_node("C") is None
