"""Python and Turtle agree, and SHACL catches what the models forbid."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyshacl import validate
from rdflib import OWL, RDF, RDFS, Graph
from rdflib.collection import Collection
from rdflib.compare import isomorphic

from ontology.build import ONTOLOGY_TTL, SHAPES_TTL, build_ontology, build_shapes
from ontology.introspect import class_property_shapes
from ontology.models import ENTITY_CLASSES, RELATIONS
from ontology.rdf import class_iri, graph_from_records, prop_iri, records_from_graph, rel_iri, xsd_of
from store.base import EdgeRecord, NodeRecord

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _members(g: Graph, node: object) -> set[object]:
    """A class expression's members: the class itself or its owl:unionOf list."""
    union = g.value(node, OWL.unionOf)  # type: ignore[arg-type]
    if union is None:
        return {node}
    return set(Collection(g, union))


@pytest.fixture(scope="module")
def committed() -> Graph:
    return Graph().parse(ONTOLOGY_TTL)


def test_committed_turtle_is_what_the_models_generate() -> None:
    assert isomorphic(Graph().parse(ONTOLOGY_TTL), build_ontology()), "run python -m ontology.build"
    assert isomorphic(Graph().parse(SHAPES_TTL), build_shapes()), "run python -m ontology.build"


def test_every_class_and_property_is_in_the_turtle(committed: Graph) -> None:
    owl_classes = {c for c in committed.subjects(RDF.type, OWL.Class) if str(c).startswith("https")}
    for name, model in ENTITY_CLASSES.items():
        c = class_iri(name)
        assert c in owl_classes, name
        for shape in class_property_shapes(model):
            p = prop_iri(shape.name)
            assert (p, RDF.type, OWL.DatatypeProperty) in committed, (name, shape.name)
            assert c in _members(committed, committed.value(p, RDFS.domain)), (name, shape.name)
            assert committed.value(p, RDFS.range) == xsd_of(shape.kind), (name, shape.name)


def test_every_relation_has_its_domain_and_range(committed: Graph) -> None:
    for rel in RELATIONS.values():
        p = rel_iri(rel.name)
        assert (p, RDF.type, OWL.ObjectProperty) in committed
        assert _members(committed, committed.value(p, RDFS.domain)) == {class_iri(c) for c in rel.domain}
        assert _members(committed, committed.value(p, RDFS.range)) == {class_iri(c) for c in rel.range}
    # and nothing in the Turtle that Python does not know
    turtle_rels = {str(p) for p in committed.subjects(RDF.type, OWL.ObjectProperty)}
    python_rels = {str(rel_iri(r)) for r in RELATIONS}
    assert turtle_rels - python_rels <= {str(prop_iri("subject")), str(prop_iri("object")),
                                          str(prop_iri("predicate"))}


def _small_plant() -> tuple[list[NodeRecord], list[EdgeRecord]]:
    nodes = [
        NodeRecord("SITE-1", "Site", {"timezone": "Europe/Berlin"}, name="Plant 1", plant="SITE-1"),
        NodeRecord("MAT-1", "Material", {"kind": "raw", "unit": "kg", "aliases": ["resin", "PP"]}),
        NodeRecord("LOT-1", "Lot", {"quantity": 10.0, "status": "on_hold",
                                    "produced_at": "2026-03-02T06:00:00+01:00"}, plant="SITE-1",
                   valid_from=T0),
        NodeRecord("MO-1", "ProductionOrder", {"quantity": 5.0, "planned_start": "2026-03-02T06:00:00Z",
                                               "planned_end": "2026-03-02T14:00:00Z"}, plant="SITE-1"),
    ]
    edges = [
        EdgeRecord("LOT-1", "FOR_MATERIAL", "MAT-1"),
        EdgeRecord("MO-1", "CONSUMED", "LOT-1", {"quantity": 4.0, "unit": "kg"}),
    ]
    return nodes, edges


def _shacl(data: Graph) -> tuple[bool, str]:
    conforms, _, text = validate(data, shacl_graph=Graph().parse(SHAPES_TTL),
                                 inference="none")
    return bool(conforms), str(text)


def test_a_valid_graph_conforms_to_the_shapes() -> None:
    conforms, text = _shacl(graph_from_records(*_small_plant()))
    assert conforms, text


@pytest.mark.parametrize(
    ("breakage", "expected_in_report"),
    [
        (lambda n, e: n.__setitem__(2, NodeRecord("LOT-1", "Lot", {"quantity": -1.0})), "minExclusive"),
        (lambda n, e: n.__setitem__(2, NodeRecord("LOT-1", "Lot", {"quantity": 1.0, "status": "lost"})),
         "In"),
        (lambda n, e: n.__setitem__(2, NodeRecord("LOT-1", "Lot", {"quantity": 1.0,
                                                                   "produced_at": "2026-03-02T06:00:00"})),
         "time zone"),
        (lambda n, e: n.__setitem__(3, NodeRecord("MO-1", "ProductionOrder", {"quantity": 5.0})), "MinCount"),
        (lambda n, e: e.append(EdgeRecord("LOT-1", "FOR_MATERIAL", "SITE-1")), "Class"),
    ],
    ids=["negative-quantity", "unknown-status", "naive-timestamp", "missing-required", "wrong-range"],
)
def test_shacl_reports_what_the_models_forbid(breakage, expected_in_report: str) -> None:  # type: ignore[no-untyped-def]
    nodes, edges = _small_plant()
    breakage(nodes, edges)
    conforms, text = _shacl(graph_from_records(nodes, edges))
    assert not conforms
    assert expected_in_report.lower() in text.lower()
    assert "Focus Node" in text


def test_rdf_round_trip_keeps_rows() -> None:
    nodes, edges = _small_plant()
    node_rows, edge_rows = records_from_graph(graph_from_records(nodes, edges))
    by_id = {r["id"]: r for r in node_rows}
    assert by_id["LOT-1"]["quantity"] == 10.0 and by_id["LOT-1"]["status"] == "on_hold"
    assert by_id["MAT-1"]["aliases"] == ["PP", "resin"]
    assert by_id["LOT-1"]["valid_from"] == T0.isoformat()
    assert {(r["rel"], r["src"], r["dst"]) for r in edge_rows} == {(e.rel, e.src, e.dst) for e in edges}
    consumed = next(r for r in edge_rows if r["rel"] == "CONSUMED")
    assert consumed["quantity"] == 4.0 and consumed["unit"] == "kg"


def test_no_datatype_property_shares_an_iri_with_a_relation() -> None:
    fields = {str(prop_iri(s.name)) for m in ENTITY_CLASSES.values() for s in class_property_shapes(m)}
    assert fields.isdisjoint({str(rel_iri(r)) for r in RELATIONS})


def test_docs_page_is_current() -> None:
    from ontology.docs import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), "run python -m ontology.docs"
