"""The Neo4j backend's own batch reads (one query per batch instead of one per id) give exactly
what its single reads give: ``neighbours_many`` and ``neighbour_links`` against ``neighbours`` for
every relation filter, direction and time, and ``find_nodes_in`` against one ``find_nodes`` per
value, with a None value meaning "missing". On the embedded backend these tests only check that
the backend is not the one under test (its own tests live in test_batch_reads.py)."""

from __future__ import annotations

from itertools import product

import pytest

from store.base import Direction, GraphStore
from tests.graphs import build_graph, ts

T0, T1, T2 = ts("2026-01-01T00:00Z"), ts("2026-02-01T00:00Z"), ts("2026-03-01T00:00Z")
IDS = ["L1", "L2", "M1", "PO1", "PO2", "L3", "L4", "nope", "L1"]


def _graph(store: GraphStore) -> None:
    build_graph(
        store,
        nodes=[("L1", "Lot", {"quantity": 5, "status": "released"}), ("L2", "Lot", {"status": "on_hold"}),
               ("M1", "Material"), ("PO1", "ProductionOrder"), ("PO2", "ProductionOrder"),
               ("L3", "Lot", {"status": "released"}, {"valid_from": T1, "plant": "P2"}),
               ("L4", "Lot", {"quantity": 1})],
        edges=[("PO1", "CONSUMED", "L1", {"quantity": 2.5}), ("PO1", "PRODUCED", "L2"),
               ("PO2", "CONSUMED", "L2", {"quantity": 1}, {"valid_to": T1}), ("PO2", "PRODUCED", "L3"),
               ("L2", "DERIVED_FROM", "L1"), ("L1", "FOR_MATERIAL", "M1"), ("L2", "FOR_MATERIAL", "M1"),
               ("PO1", "FOR_MATERIAL", "M1"), ("L3", "FOR_MATERIAL", "M1", {}, {"valid_from": T1})],
    )


def test_neo4j_batch_neighbour_reads_equal_single_reads(store: GraphStore, backend: str) -> None:
    if backend != "neo4j":
        assert store.backend == "embedded"
        return
    _graph(store)
    classes = store.node_classes(IDS)
    rel_sets: list[list[str] | None] = [None, ["CONSUMED"], ["CONSUMED", "PRODUCED", "FOR_MATERIAL"], []]
    for rels, direction, as_of in product(rel_sets, list(Direction), [None, T0, T2]):
        many = store.neighbours_many(IDS, rels, direction, as_of)
        links = store.neighbour_links(IDS, rels, direction, as_of)
        lots = store.neighbour_links(IDS, rels, direction, as_of, classes=["Lot"])
        assert list(many) == list(links) == list(dict.fromkeys(IDS))
        for n in many:
            single = store.neighbours(n, rels, direction, as_of)
            assert many[n] == single, (n, rels, direction, as_of)
            fars = [e.dst if e.src == n else e.src for e in single]
            assert [(x.key, x.far) for x in links[n]] == [(e.key, f) for e, f in zip(single, fars, strict=True)]
            assert [x.far_cls for x in links[n]] == [classes.get(f) or store.node_classes([f])[f] for f in fars]
            assert [x.key for x in lots[n]] == [x.key for x in links[n] if x.far_cls == "Lot"]
    # not vacuous: known answers from the picture above
    assert [e.key for e in store.neighbours_many(["L1"], ["CONSUMED", "DERIVED_FROM"], Direction.IN)["L1"]] == [
        ("L2", "DERIVED_FROM", "L1"), ("PO1", "CONSUMED", "L1")]
    assert store.neighbours_many(["PO2"], ["CONSUMED"], Direction.OUT, T2)["PO2"] == []
    assert store.neighbour_links(["M1"], ["FOR_MATERIAL"], Direction.IN, T0, classes=["Lot"])["M1"] == [
        x for x in store.neighbour_links(["M1"], ["FOR_MATERIAL"], Direction.IN, T0)["M1"] if x.far in ("L1", "L2")]


@pytest.mark.parametrize("values", [["released"], ["released", "on_hold"], ["released", None], [None], []])
def test_neo4j_find_nodes_in_equals_one_find_per_value(store: GraphStore, backend: str,
                                                       values: list[str | None]) -> None:
    if backend != "neo4j":
        assert store.backend == "embedded"
        return
    _graph(store)
    for plant, as_of in product([None, "P2"], [None, T0]):
        want = {n.id: n for v in values for n in store.find_nodes("Lot", plant, {"status": v}, as_of)}
        got = store.find_nodes_in("Lot", "status", values, plant, as_of)
        assert got == [want[k] for k in sorted(want)], (values, plant, as_of)
    if values == ["released", None]:
        assert [n.id for n in store.find_nodes_in("Lot", "status", values)] == ["L1", "L3", "L4"]
    # numbers compare as JSON does; a boolean takes the per-value path and still answers
    assert [n.id for n in store.find_nodes_in("Lot", "quantity", [5, 1.0])] == ["L1", "L4"]
    assert store.find_nodes_in("Lot", "quantity", [True]) == []
