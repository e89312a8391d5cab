"""Plain descriptions of the pydantic fields, so Turtle, SHACL, readers and docs share one reading.

Pydantic keeps a field's type and its constraints in different places depending on how it was
written (``Annotated`` alias, ``X | None``, enum); this module flattens that into a
:class:`FieldShape` once.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from ontology.models import COMMON_FIELDS, RELATIONS, EdgeProps, Entity

ScalarKind = Literal["string", "integer", "double", "boolean", "datetime", "date"]


@dataclass(frozen=True, slots=True)
class FieldShape:
    """What a field holds: its scalar kind, whether required, whether a list, and its limits."""

    name: str
    kind: ScalarKind
    required: bool
    many: bool = False
    enum: tuple[str, ...] | None = None
    min_exclusive: float | None = None
    min_inclusive: float | None = None
    max_inclusive: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    text: bool = False
    description: str | None = None


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, bool, list[Any]]:
    """Strip Optional and Annotated layers; return (base type, optional?, constraints)."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            base, *extra = get_args(annotation)
            for item in extra:
                if isinstance(item, FieldInfo):
                    metadata.extend(item.metadata)
                    if item.json_schema_extra:
                        metadata.append(item.json_schema_extra)
                else:
                    metadata.append(item)
            annotation = base
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != len(get_args(annotation)):
                optional = True
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, optional, metadata


def _kind_of(tp: Any) -> tuple[ScalarKind, tuple[str, ...] | None]:
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "string", tuple(str(m.value) for m in tp)
    if tp is bool:
        return "boolean", None
    if tp is int:
        return "integer", None
    if tp is float:
        return "double", None
    if tp is datetime or tp is AwareDatetime:
        return "datetime", None
    if tp is date:
        return "date", None
    if tp is str:
        return "string", None
    # AwareDatetime is an Annotated alias in some pydantic versions
    if "datetime" in repr(tp).lower():
        return "datetime", None
    raise TypeError(f"unsupported field type {tp!r}")


def field_shape(name: str, info: FieldInfo) -> FieldShape:
    meta0: list[Any] = list(info.metadata)
    if isinstance(info.json_schema_extra, dict):
        meta0.append(info.json_schema_extra)
    base, optional, meta = _unwrap(info.annotation, meta0)
    many = False
    if get_origin(base) in (list, tuple, set, frozenset):
        many = True
        (inner,) = get_args(base)[:1]
        base, _, meta = _unwrap(inner, meta)
    kind, enum = _kind_of(base)
    shape: dict[str, Any] = {}
    text = False
    for m in meta:
        if isinstance(m, annotated_types.Gt):
            shape["min_exclusive"] = float(m.gt)  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.Ge):
            shape["min_inclusive"] = float(m.ge)  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.Le):
            shape["max_inclusive"] = float(m.le)  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.MaxLen):
            shape["max_length"] = m.max_length
        elif isinstance(m, annotated_types.MinLen):
            shape["min_length"] = m.min_length
        elif isinstance(m, dict) and m.get("text"):
            text = True
    required = info.is_required() and not optional
    return FieldShape(
        name=name, kind=kind, required=required, many=many, enum=enum, text=text,
        description=info.description, **shape,
    )


def model_shapes(model: type[BaseModel], include_common: bool = True) -> list[FieldShape]:
    """Field shapes of a model in declaration order (common Entity fields first)."""
    out = []
    for name, info in model.model_fields.items():
        if not include_common and name in COMMON_FIELDS:
            continue
        out.append(field_shape(name, info))
    return out


def class_property_shapes(model: type[Entity]) -> list[FieldShape]:
    """Only the class's own properties (not the common Entity fields)."""
    return model_shapes(model, include_common=False)


def edge_property_shapes(rel: str) -> list[FieldShape]:
    """Properties of a relation's edges beyond the common EdgeProps fields."""
    common = set(EdgeProps.model_fields)
    props = RELATIONS[rel].props
    return [field_shape(n, i) for n, i in props.model_fields.items() if n not in common]
