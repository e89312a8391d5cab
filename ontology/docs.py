"""Write docs/ontology.md from the models: a Mermaid diagram and a table per class and relation.

``python -m ontology.docs`` regenerates it; a test checks the committed page is current.
"""

from __future__ import annotations

from pathlib import Path

from ontology.introspect import FieldShape, class_property_shapes, edge_property_shapes, model_shapes
from ontology.models import ENTITY_CLASSES, RELATIONS, Entity
from ontology.rdf import prop_iri, rel_iri

DOC = Path(__file__).resolve().parent.parent / "docs" / "ontology.md"

INTRO = """# The plantgraph ontology

One schema for every part. The pydantic models in `ontology/models.py` are the source; the OWL/RDFS
ontology (`ontology/plantgraph.ttl`) and the SHACL shapes (`ontology/shapes.ttl`) are generated from
them with `python -m ontology.build`, and this page with `python -m ontology.docs`. Tests fail when
any of the three is stale, so Python, Turtle and docs cannot drift.

- Namespace: `pg:` = `https://plantgraph.example/ontology#`; entity IRIs are
  `https://plantgraph.example/id/<url-encoded id>`.
- ISA-95 alignment: Enterprise > Site (plant) > Area > Line (work center) > Machine (equipment unit);
  Material (definition) > Lot (material lot); ProductionOrder (work order); Person. Each class's
  B2MML counterpart is written as `skos:closeMatch` (to `http://www.mesa.org/xml/B2MML#<Noun>`) and
  `pg:isa95Path` (the element path, with the equipment level where it applies).
- Every entity has `id`, `name`, `source_system`, `plant` (the Site id; empty for enterprise-wide
  materials, suppliers and customers), `valid_from` and `valid_to` (for as-of queries). Every
  timestamp carries a time zone (SHACL checks it with a pattern; pydantic with `AwareDatetime`).
- Relations are directed edges keyed by (source, relation, target). Edge properties (quantities,
  run windows, shipment times) live on a qualified `pg:RelationInstance` node in RDF.
- Datatype property IRIs are the camelCase field names; `placed_by` of QualityHold is
  `pg:holdPlacedBy` because `pg:placedBy` is the relation PLACED_BY.
"""


def _type(shape: FieldShape) -> str:
    t: str = shape.kind
    if shape.enum:
        t = " \\| ".join(shape.enum)
    if shape.many:
        t = f"list of {t}"
    limits = []
    if shape.min_exclusive is not None:
        limits.append(f"> {shape.min_exclusive:g}")
    if shape.min_inclusive is not None:
        limits.append(f">= {shape.min_inclusive:g}")
    if shape.max_inclusive is not None:
        limits.append(f"<= {shape.max_inclusive:g}")
    return t + (f" ({', '.join(limits)})" if limits else "")


def render() -> str:
    lines = [INTRO, "## Relations at a glance", "", "```mermaid", "flowchart LR"]
    for rel in RELATIONS.values():
        for d in rel.domain:
            for r in rel.range:
                lines.append(f"    {d} -->|{rel.name}| {r}")
    lines += ["```", "", "## Common fields", "", "| field | type | required |", "| --- | --- | --- |"]
    for shape in model_shapes(Entity):
        lines.append(f"| `{shape.name}` | {_type(shape)} | {'yes' if shape.required else 'no'} |")
    lines += ["", "## Classes", ""]
    for name, model in ENTITY_CLASSES.items():
        lines.append(f"### {name}")
        lines.append("")
        lines.append(f"{model.description} IRI `pg:{name}`"
                     + (f"; ISA-95/B2MML: `{model.isa95}`." if model.isa95 else "."))
        lines.append("")
        own = class_property_shapes(model)
        if own:
            lines += ["| property | IRI | type | required |", "| --- | --- | --- | --- |"]
            for shape in own:
                iri = str(prop_iri(shape.name)).split("#")[-1]
                lines.append(f"| `{shape.name}` | `pg:{iri}` | {_type(shape)} | "
                             f"{'yes' if shape.required else 'no'} |")
            lines.append("")
    lines += ["## Relations", "", "| relation | IRI | from | to | edge properties | meaning |",
              "| --- | --- | --- | --- | --- | --- |"]
    for rel in RELATIONS.values():
        props = ", ".join(f"`{s.name}` ({_type(s)}{', required' if s.required else ''})"
                          for s in edge_property_shapes(rel.name)) or "-"
        iri = str(rel_iri(rel.name)).split("#")[-1]
        lines.append(f"| `{rel.name}` | `pg:{iri}` | {', '.join(rel.domain)} | {', '.join(rel.range)} | "
                     f"{props} | {rel.description} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")
