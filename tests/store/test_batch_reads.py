"""Batch reads (``neighbours_many``, ``neighbour_links``) give exactly what one ``neighbours`` call
per id gives, on every backend, including time travel, deletions and uncommitted writes."""

from __future__ import annotations

from itertools import product

from store.base import Direction, GraphStore
from tests.graphs import build_graph, edge, ts

T0, T1, T2 = ts("2026-01-01T00:00Z"), ts("2026-02-01T00:00Z"), ts("2026-03-01T00:00Z")
IDS = ["L1", "L2", "M1", "PO1", "PO2", "L3", "nope", "L1"]
RELS: list[list[str] | None] = [None, ["CONSUMED"], ["CONSUMED", "PRODUCED", "FOR_MATERIAL"], []]


def _graph(store: GraphStore) -> None:
    build_graph(
        store,
        nodes=[("L1", "Lot", {"quantity": 5}), ("L2", "Lot"), ("M1", "Material"),
               ("PO1", "ProductionOrder"), ("PO2", "ProductionOrder"),
               ("L3", "Lot", {}, {"valid_from": T1})],
        edges=[("PO1", "CONSUMED", "L1", {"quantity": 2.5}), ("PO1", "PRODUCED", "L2"),
               ("PO2", "CONSUMED", "L2", {"quantity": 1}, {"valid_to": T1}), ("PO2", "PRODUCED", "L3"),
               ("L1", "FOR_MATERIAL", "M1"), ("L2", "FOR_MATERIAL", "M1"), ("PO1", "FOR_MATERIAL", "M1"),
               ("L3", "FOR_MATERIAL", "M1", {}, {"valid_from": T1})],
    )


def _assert_same_as_single_reads(store: GraphStore) -> None:
    classes = store.node_classes(IDS)
    combos = list(product(RELS, list(Direction), [None, T0, T2]))
    if store.backend != "embedded":  # the others use the base class's defaults (a few cases suffice)
        combos = [(None, Direction.BOTH, None), (["CONSUMED"], Direction.IN, T2)]
    for rels, direction, as_of in combos:
        many = store.neighbours_many(IDS, rels, direction, as_of)
        links = store.neighbour_links(IDS, rels, direction, as_of)
        assert list(many) == list(dict.fromkeys(IDS))
        assert list(links) == list(many)
        for n in many:
            single = store.neighbours(n, rels, direction, as_of)
            assert many[n] == single, (n, rels, direction, as_of)
            assert [x.key for x in links[n]] == [e.key for e in single], (n, rels, direction, as_of)
            fars = [e.dst if e.src == n else e.src for e in single]
            assert [x.far for x in links[n]] == fars
            assert [x.far_cls for x in links[n]] == [classes.get(f) or store.node_classes([f])[f] for f in fars]


def test_batch_reads_equal_single_reads(store: GraphStore) -> None:
    _graph(store)
    _assert_same_as_single_reads(store)
    # not vacuous: the hand-known answer for one case
    assert [e.key for e in store.neighbours_many(["L1"], ["CONSUMED"], Direction.IN)["L1"]] == [
        ("PO1", "CONSUMED", "L1")]
    assert store.neighbours_many(["L1"], ["CONSUMED"], Direction.IN)["L1"][0].props == {"quantity": 2.5}


def test_links_class_filter_and_time(store: GraphStore) -> None:
    _graph(store)
    lots = store.neighbour_links(["M1"], ["FOR_MATERIAL"], Direction.IN, classes=["Lot"])["M1"]
    assert [x.far for x in lots] == ["L1", "L2", "L3"]
    assert {x.far_cls for x in lots} == {"Lot"}
    before = store.neighbour_links(["M1"], ["FOR_MATERIAL"], Direction.IN, as_of=T0, classes=["Lot"])["M1"]
    assert [x.far for x in before] == ["L1", "L2"]  # L3 and its edge begin at T1
    assert store.neighbour_links(["L3"], None, Direction.BOTH, as_of=T0) == {"L3": []}


def test_batch_reads_after_writes_and_inside_a_transaction(store: GraphStore) -> None:
    _graph(store)
    store.traverse(["L1"], [], 1)  # the embedded store builds its topology index here
    with store.transaction() as tx:
        tx.delete_edges([("PO1", "PRODUCED", "L2")])
        tx.delete_nodes(["L3"])
        tx.upsert_edges([edge(("PO2", "PRODUCED", "L1"))])
        inside = store.neighbour_links(["PO2", "PO1"], ["PRODUCED"], Direction.OUT)
        assert [x.key for x in inside["PO2"]] == [("PO2", "PRODUCED", "L1")]
        assert inside["PO1"] == []
        assert [e.key for e in store.neighbours_many(["PO2"], ["PRODUCED"])["PO2"]] == [("PO2", "PRODUCED", "L1")]
    _assert_same_as_single_reads(store)
    assert [x.key for x in store.neighbour_links(["PO2"], ["PRODUCED"])["PO2"]] == [("PO2", "PRODUCED", "L1")]


def test_find_nodes_none_means_missing_or_null(store: GraphStore) -> None:
    build_graph(store, nodes=[("A", "Lot", {"status": "released"}), ("B", "Lot", {}), ("C", "Lot", {"status": None}),
                              ("D", "Lot", {"status": ""}), ("E", "Material", {})])
    assert [n.id for n in store.find_nodes("Lot", where={"status": None})] == ["B", "C"]
    assert [n.id for n in store.find_nodes(where={"status": None})] == ["B", "C", "E"]


def test_find_nodes_in_is_the_union_of_find_nodes(store: GraphStore) -> None:
    build_graph(store, nodes=[("A", "Lot", {"status": "released"}), ("B", "Lot", {}), ("C", "Lot", {"status": None}),
                              ("D", "Lot", {"status": "on_hold"}, {"plant": "P1"}), ("E", "Lot", {"status": True}),
                              ("F", "Lot", {"status": 1}), ("G", "Material", {"status": "released"})])
    for values in (["released", "on_hold"], ["released", None], [None], [1], [True], ["on_hold", 1, None], []):
        expected = sorted({n.id for v in values for n in store.find_nodes("Lot", where={"status": v})})
        assert [n.id for n in store.find_nodes_in("Lot", "status", values)] == expected, values
    assert [n.id for n in store.find_nodes_in("Lot", "status", ["released", "on_hold"])] == ["A", "D"]
    assert [n.id for n in store.find_nodes_in("Lot", "status", ["released", "on_hold"], plant="P1")] == ["D"]
