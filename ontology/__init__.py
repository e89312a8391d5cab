"""The one typed schema of plantgraph: pydantic models, generated OWL/RDFS and SHACL Turtle."""

from ontology.models import (
    COMMON_FIELDS,
    ENTITY_CLASSES,
    RELATIONS,
    EdgeProps,
    Entity,
    RelationDef,
    entity_model,
    relation_def,
)

__all__ = [
    "COMMON_FIELDS",
    "ENTITY_CLASSES",
    "RELATIONS",
    "EdgeProps",
    "Entity",
    "RelationDef",
    "entity_model",
    "relation_def",
]
