"""How entities and relations become RDF triples (and back), with the ontology's IRIs.

Used by ``plantgraph export rdf``, the SHACL check of exported plants, and RDF import. Works on
any record object with the attributes of ``store.base.NodeRecord`` / ``EdgeRecord`` (a Protocol,
so the ontology does not depend on the store).

Edges become a direct triple ``src pg:rel dst``; an edge with properties also gets a qualified
node (``pg:RelationInstance``) carrying ``pg:subject``, ``pg:predicate``, ``pg:object`` and the
properties, because plain RDF triples cannot hold properties.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote, unquote

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from ontology.introspect import FieldShape, class_property_shapes, edge_property_shapes
from ontology.models import ENTITY_CLASSES, RELATIONS

PG = Namespace("https://plantgraph.example/ontology#")
ID = Namespace("https://plantgraph.example/id/")
EDGE = Namespace("https://plantgraph.example/edge/")
B2MML = Namespace("http://www.mesa.org/xml/B2MML#")

Triple = tuple[Node, Node, Node]

COMMON_NODE_FIELDS = ("name", "source_system", "plant", "valid_from", "valid_to")
COMMON_EDGE_FIELDS = ("source_system", "valid_from", "valid_to")


class NodeLike(Protocol):
    id: str
    cls: str
    props: Mapping[str, Any]
    name: str | None
    plant: str | None
    source_system: str
    valid_from: datetime | None
    valid_to: datetime | None


class EdgeLike(Protocol):
    src: str
    rel: str
    dst: str
    props: Mapping[str, Any]
    source_system: str
    valid_from: datetime | None
    valid_to: datetime | None


def camel(name: str) -> str:
    """``planned_start`` -> ``plannedStart``; ``HAS_SITE`` -> ``hasSite``."""
    parts = name.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def snake_from_camel(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def class_iri(cls: str) -> URIRef:
    return PG[cls]


#: Datatype properties whose camelCase name would clash with a relation's IRI.
FIELD_IRI_OVERRIDES: dict[str, str] = {"placed_by": "holdPlacedBy"}


def prop_iri(field: str) -> URIRef:
    return PG[FIELD_IRI_OVERRIDES.get(field) or camel(field)]


def rel_iri(rel: str) -> URIRef:
    return PG[camel(rel)]


def entity_iri(entity_id: str) -> URIRef:
    return ID[quote(entity_id, safe="")]


def id_from_iri(iri: str) -> str:
    prefix = str(ID)
    if not iri.startswith(prefix):
        raise ValueError(f"{iri} is not a plantgraph entity IRI (expected prefix {prefix})")
    return unquote(iri[len(prefix):])


def edge_iri(src: str, rel: str, dst: str) -> URIRef:
    return EDGE[f"{quote(src, safe='')}/{rel}/{quote(dst, safe='')}"]


_XSD_OF: dict[str, URIRef] = {
    "string": XSD.string,
    "integer": XSD.integer,
    # Quantities are written as xsd:decimal with the float's shortest exact text: rdflib's Turtle
    # writer shortens xsd:double to 7 significant digits, which would lose data on a round trip.
    "double": XSD.decimal,
    "boolean": XSD.boolean,
    "datetime": XSD.dateTime,
    "date": XSD.date,
}


def xsd_of(kind: str) -> URIRef:
    return _XSD_OF[kind]


def to_literal(value: Any, kind: str) -> Literal:
    if kind == "datetime":
        if isinstance(value, datetime):
            return Literal(value.isoformat(), datatype=XSD.dateTime)
        return Literal(str(value), datatype=XSD.dateTime)
    if kind == "double":
        return Literal(format(Decimal(repr(float(value))), "f"), datatype=XSD.decimal)
    if kind == "integer":
        return Literal(int(value), datatype=XSD.integer)
    if kind == "boolean":
        return Literal(bool(value), datatype=XSD.boolean)
    return Literal(str(value), datatype=XSD.string)


def from_literal(lit: Literal, kind: str) -> Any:
    if kind == "datetime":
        return str(lit)
    if kind == "double":
        return float(lit)
    if kind == "integer":
        return int(lit)
    if kind == "boolean":
        return bool(lit.toPython())
    return str(lit)


_SHAPES_CACHE: dict[str, list[FieldShape]] = {}


def _class_shapes(cls: str) -> list[FieldShape]:
    if cls not in _SHAPES_CACHE:
        _SHAPES_CACHE[cls] = class_property_shapes(ENTITY_CLASSES[cls])
    return _SHAPES_CACHE[cls]


def _edge_shapes(rel: str) -> list[FieldShape]:
    key = "rel:" + rel
    if key not in _SHAPES_CACHE:
        _SHAPES_CACHE[key] = edge_property_shapes(rel)
    return _SHAPES_CACHE[key]


def _common_triples(subject: URIRef, record: Any, fields: Iterable[str]) -> Iterator[Triple]:
    for f in fields:
        value = getattr(record, f)
        if value is None:
            continue
        kind = "datetime" if f.startswith("valid_") else "string"
        yield subject, prop_iri(f), to_literal(value, kind)


def _prop_triples(subject: URIRef, props: Mapping[str, Any], shapes: list[FieldShape]) -> Iterator[Triple]:
    for shape in shapes:
        value = props.get(shape.name)
        if value is None:
            continue
        values = value if shape.many else [value]
        for v in values:
            yield subject, prop_iri(shape.name), to_literal(v, shape.kind)


def node_triples(node: NodeLike) -> Iterator[Triple]:
    s = entity_iri(node.id)
    yield s, RDF.type, class_iri(node.cls)
    yield s, prop_iri("id"), Literal(node.id, datatype=XSD.string)
    yield from _common_triples(s, node, COMMON_NODE_FIELDS)
    yield from _prop_triples(s, node.props, _class_shapes(node.cls))


def edge_triples(edge: EdgeLike) -> Iterator[Triple]:
    s, o = entity_iri(edge.src), entity_iri(edge.dst)
    yield s, rel_iri(edge.rel), o
    shapes = _edge_shapes(edge.rel)
    has_props = any(edge.props.get(sh.name) is not None for sh in shapes) or any(
        getattr(edge, f) is not None for f in ("valid_from", "valid_to")
    ) or edge.source_system != "plantgraph"
    if not has_props:
        return
    q = edge_iri(edge.src, edge.rel, edge.dst)
    yield q, RDF.type, PG.RelationInstance
    yield q, PG.subject, s
    yield q, PG.predicate, rel_iri(edge.rel)
    yield q, PG.object, o
    yield from _common_triples(q, edge, COMMON_EDGE_FIELDS)
    yield from _prop_triples(q, edge.props, shapes)


def graph_from_records(nodes: Iterable[NodeLike], edges: Iterable[EdgeLike]) -> Graph:
    g = Graph()
    bind_prefixes(g)
    for n in nodes:
        for t in node_triples(n):
            g.add(t)
    for e in edges:
        for t in edge_triples(e):
            g.add(t)
    return g


def bind_prefixes(g: Graph) -> None:
    g.bind("pg", PG)
    g.bind("pgid", ID)
    g.bind("b2mml", B2MML)


# ---------------------------------------------------------------------------------------------
# RDF -> plain dicts (the inverse, for RDF import)
# ---------------------------------------------------------------------------------------------

_CLASS_BY_IRI = {str(class_iri(c)): c for c in ENTITY_CLASSES}
_REL_BY_IRI = {str(rel_iri(r)): r for r in RELATIONS}


def records_from_graph(g: Graph) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entities and relations in ``g`` as bundle-style rows. RDF values of a property are a set, so
    list fields (aliases, operations, certifications) come back sorted: their order is not kept.

    Entities and relations as bundle-style rows (``{"cls", "id", ...props}`` and
    ``{"rel", "src", "dst", ...props}``), sorted for determinism. Values stay strings/numbers as
    in a bundle; the caller validates them with the ontology models."""
    nodes: list[dict[str, Any]] = []
    for s, _, c in g.triples((None, RDF.type, None)):
        cls = _CLASS_BY_IRI.get(str(c))
        if cls is None or not isinstance(s, URIRef):
            continue
        row: dict[str, Any] = {"cls": cls, "id": id_from_iri(str(s))}
        for f in COMMON_NODE_FIELDS:
            lit = g.value(s, prop_iri(f))
            if isinstance(lit, Literal):
                row[f] = str(lit)
        for shape in _class_shapes(cls):
            vals = [v for v in g.objects(s, prop_iri(shape.name)) if isinstance(v, Literal)]
            if not vals:
                continue
            conv = sorted(from_literal(v, shape.kind) for v in vals)
            row[shape.name] = conv if shape.many else conv[0]
        nodes.append(row)
    edges: list[dict[str, Any]] = []
    for s, p, o in g:
        rel = _REL_BY_IRI.get(str(p))
        if rel is None or not isinstance(s, URIRef) or not isinstance(o, URIRef):
            continue
        if not str(s).startswith(str(ID)):
            continue
        row = {"rel": rel, "src": id_from_iri(str(s)), "dst": id_from_iri(str(o))}
        q = edge_iri(row["src"], rel, row["dst"])
        for f in COMMON_EDGE_FIELDS:
            lit = g.value(q, prop_iri(f))
            if isinstance(lit, Literal):
                row[f] = str(lit)
        for shape in _edge_shapes(rel):
            lit = g.value(q, prop_iri(shape.name))
            if isinstance(lit, Literal):
                row[shape.name] = from_literal(lit, shape.kind)
        edges.append(row)
    nodes.sort(key=lambda r: (r["cls"], r["id"]))
    edges.sort(key=lambda r: (r["rel"], r["src"], r["dst"]))
    return nodes, edges
