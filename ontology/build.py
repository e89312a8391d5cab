"""Generate the OWL/RDFS ontology and the SHACL shapes (Turtle) from the pydantic models.

Run ``python -m ontology.build`` after changing ontology/models.py; tests/ontology checks that the
committed Turtle files are what this produces, so Python and Turtle cannot drift.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rdflib import OWL, RDF, RDFS, SH, SKOS, XSD, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from ontology.introspect import FieldShape, class_property_shapes, edge_property_shapes, model_shapes
from ontology.models import ENTITY_CLASSES, RELATIONS, EdgeProps, Entity
from ontology.rdf import B2MML, PG, bind_prefixes, class_iri, prop_iri, rel_iri, xsd_of

HERE = Path(__file__).parent
ONTOLOGY_TTL = HERE / "plantgraph.ttl"
SHAPES_TTL = HERE / "shapes.ttl"
ONTOLOGY_IRI = URIRef(str(PG).rstrip("#"))

#: xsd:dateTime values must carry a zone: Z or +hh:mm / -hh:mm.
TZ_PATTERN = r"(Z|[+-][0-9]{2}:[0-9]{2})$"


def _union(g: Graph, members: list[URIRef]) -> Node:
    if len(members) == 1:
        return members[0]
    node = BNode()
    lst = BNode()
    Collection(g, lst, list(members))
    g.add((node, RDF.type, OWL.Class))
    g.add((node, OWL.unionOf, lst))
    return node


def build_ontology() -> Graph:
    g = Graph()
    bind_prefixes(g)
    g.bind("skos", SKOS)
    g.add((ONTOLOGY_IRI, RDF.type, OWL.Ontology))
    g.add((ONTOLOGY_IRI, RDFS.label, Literal("plantgraph manufacturing ontology", lang="en")))
    g.add((ONTOLOGY_IRI, RDFS.comment, Literal(
        "ISA-95 aligned classes and relations for MES and ERP data; generated from the pydantic "
        "models in ontology/models.py.", lang="en")))
    g.add((PG.Entity, RDF.type, OWL.Class))
    g.add((PG.Entity, RDFS.label, Literal("Entity", lang="en")))
    g.add((PG.Entity, RDFS.comment, Literal((Entity.__doc__ or "").split("\n")[0].strip(), lang="en")))
    g.add((PG.RelationInstance, RDF.type, OWL.Class))
    g.add((PG.RelationInstance, RDFS.comment, Literal(
        "A relation with properties, qualified by pg:subject, pg:predicate and pg:object.", lang="en")))
    for p in (PG.subject, PG.object):
        g.add((p, RDF.type, OWL.ObjectProperty))
        g.add((p, RDFS.domain, PG.RelationInstance))
    g.add((PG.predicate, RDF.type, OWL.ObjectProperty))
    g.add((PG.predicate, RDFS.domain, PG.RelationInstance))
    g.add((PG.isa95Path, RDF.type, OWL.AnnotationProperty))

    # classes
    for name, model in ENTITY_CLASSES.items():
        c = class_iri(name)
        g.add((c, RDF.type, OWL.Class))
        g.add((c, RDFS.subClassOf, PG.Entity))
        g.add((c, RDFS.label, Literal(name, lang="en")))
        if model.description:
            g.add((c, RDFS.comment, Literal(model.description, lang="en")))
        if model.isa95:
            g.add((c, PG.isa95Path, Literal(model.isa95)))
            noun = model.isa95.split("[")[0].split("/")[0].strip()
            g.add((c, SKOS.closeMatch, B2MML[noun]))

    # datatype properties: one IRI per field name, domain = the classes that use it
    users: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for name, model in ENTITY_CLASSES.items():
        for shape in class_property_shapes(model):
            users[shape.name].append(name)
            kinds[shape.name] = shape.kind
    for shape in model_shapes(Entity):
        p = prop_iri(shape.name)
        g.add((p, RDF.type, OWL.DatatypeProperty))
        g.add((p, RDFS.domain, PG.Entity))
        g.add((p, RDFS.range, xsd_of(shape.kind)))
    for field, classes in sorted(users.items()):
        p = prop_iri(field)
        g.add((p, RDF.type, OWL.DatatypeProperty))
        g.add((p, RDFS.label, Literal(field, lang="en")))
        g.add((p, RDFS.domain, _union(g, [class_iri(c) for c in classes])))
        g.add((p, RDFS.range, xsd_of(kinds[field])))
    # edge property fields live on RelationInstance nodes
    edge_fields: dict[str, str] = {}
    for rel_name in RELATIONS:
        for shape in edge_property_shapes(rel_name):
            edge_fields[shape.name] = shape.kind
    for shape in model_shapes(EdgeProps):
        edge_fields.setdefault(shape.name, shape.kind)
    for field, kind in sorted(edge_fields.items()):
        p = prop_iri(field)
        if (p, RDF.type, OWL.DatatypeProperty) not in g:
            g.add((p, RDF.type, OWL.DatatypeProperty))
            g.add((p, RDFS.range, xsd_of(kind)))

    # object properties
    for rel in RELATIONS.values():
        p = rel_iri(rel.name)
        g.add((p, RDF.type, OWL.ObjectProperty))
        g.add((p, RDFS.label, Literal(rel.name, lang="en")))
        g.add((p, RDFS.comment, Literal(rel.description, lang="en")))
        g.add((p, RDFS.domain, _union(g, [class_iri(c) for c in rel.domain])))
        g.add((p, RDFS.range, _union(g, [class_iri(c) for c in rel.range])))
        if rel.isa95:
            g.add((p, PG.isa95Path, Literal(rel.isa95)))
    return g


def _property_shape(g: Graph, owner: Node, shape: FieldShape) -> None:
    ps = BNode()
    g.add((owner, SH.property, ps))
    g.add((ps, SH.path, prop_iri(shape.name)))
    g.add((ps, SH.datatype, xsd_of(shape.kind)))
    if shape.required:
        g.add((ps, SH.minCount, Literal(1)))
    if not shape.many:
        g.add((ps, SH.maxCount, Literal(1)))
    if shape.enum:
        lst = BNode()
        Collection(g, lst, [Literal(v, datatype=XSD.string) for v in shape.enum])
        g.add((ps, SH["in"], lst))
    if shape.min_exclusive is not None:
        g.add((ps, SH.minExclusive, Literal(shape.min_exclusive)))
    if shape.min_inclusive is not None:
        g.add((ps, SH.minInclusive, Literal(shape.min_inclusive)))
    if shape.max_inclusive is not None:
        g.add((ps, SH.maxInclusive, Literal(shape.max_inclusive)))
    if shape.min_length is not None:
        g.add((ps, SH.minLength, Literal(shape.min_length)))
    if shape.max_length is not None:
        g.add((ps, SH.maxLength, Literal(shape.max_length)))
    if shape.kind == "datetime":
        g.add((ps, SH.pattern, Literal(TZ_PATTERN)))
        g.add((ps, SH.message, Literal(f"{shape.name}: a timestamp with a time zone")))


def build_shapes() -> Graph:
    g = Graph()
    bind_prefixes(g)
    g.bind("sh", SH)
    for name, model in ENTITY_CLASSES.items():
        ns = PG[f"{name}Shape"]
        g.add((ns, RDF.type, SH.NodeShape))
        g.add((ns, SH.targetClass, class_iri(name)))
        for shape in model_shapes(model):
            _property_shape(g, ns, shape)
        # relations leaving this class: the object must be of an allowed class
        for rel in RELATIONS.values():
            if name not in rel.domain:
                continue
            ps = BNode()
            g.add((ns, SH.property, ps))
            g.add((ps, SH.path, rel_iri(rel.name)))
            if len(rel.range) == 1:
                g.add((ps, SH["class"], class_iri(rel.range[0])))
            else:
                alts: list[Node] = []
                for r in rel.range:
                    alt = BNode()
                    g.add((alt, SH["class"], class_iri(r)))
                    alts.append(alt)
                lst = BNode()
                Collection(g, lst, alts)
                g.add((ps, SH["or"], lst))
    # qualified relation instances: their properties per relation type
    for rel in RELATIONS.values():
        _relation_instance_shape(g, rel.name, edge_property_shapes(rel.name))
    return g


def camel_upper(rel: str) -> str:
    return "".join(p.title() for p in rel.lower().split("_"))


def _relation_instance_shape(g: Graph, rel: str, shapes: list[FieldShape]) -> None:
    """Constraints on the qualified nodes of one relation type. ``sh:targetSubjectsOf
    pg:predicate`` selects every relation instance, so the shape reads: either the node is not
    an instance of ``rel``, or it satisfies ``rel``'s property shapes."""
    if not shapes:
        return
    rs = PG[f"{camel_upper(rel)}InstanceShape"]
    g.add((rs, RDF.type, SH.NodeShape))
    g.add((rs, SH.targetSubjectsOf, PG.predicate))
    # "either this node is not an instance of rel, or it satisfies the property shapes"
    not_rel = BNode()
    g.add((not_rel, SH["not"], _has_predicate(g, rel)))
    satisfies = BNode()
    for shape in shapes:
        _property_shape(g, satisfies, shape)
    lst = BNode()
    Collection(g, lst, [not_rel, satisfies])
    g.add((rs, SH["or"], lst))


def _has_predicate(g: Graph, rel: str) -> Node:
    node = BNode()
    ps = BNode()
    g.add((node, SH.property, ps))
    g.add((ps, SH.path, PG.predicate))
    g.add((ps, SH.hasValue, rel_iri(rel)))
    return node


def write() -> None:
    build_ontology().serialize(ONTOLOGY_TTL, format="turtle")
    build_shapes().serialize(SHAPES_TTL, format="turtle")


if __name__ == "__main__":
    write()
    print(f"wrote {ONTOLOGY_TTL} and {SHAPES_TTL}")
