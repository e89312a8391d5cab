"""Declarative mappings from tabular exports (CSV, JSON Lines, Excel) to ontology entities.

A mapping is a YAML file (docs/mappings.md). It is checked against the ontology before any row is
read: an unknown class, property, relation or endpoint is a :class:`MappingError` naming the
mapping file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graph_loader.b2mml.records import ImportError_
from graph_loader.b2mml.values import ValueProblem, zone
from ontology.models import COMMON_FIELDS, ENTITY_CLASSES, RELATIONS, EdgeProps, datetime_fields

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


class MappingError(ImportError_):
    """The mapping file is wrong; the message names ``file:line``."""


ValueType = Literal["string", "number", "integer", "datetime", "date", "list", "boolean"]

#: Conversion factors to a base unit, per dimension, for ``to_unit``.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "mass": {"mg": 1e-6, "g": 1e-3, "kg": 1.0, "t": 1e3, "lb": 0.45359237},
    "volume": {"ml": 1e-3, "l": 1.0, "hl": 100.0, "m3": 1000.0},
    "count": {"pcs": 1.0, "ea": 1.0, "st": 1.0, "pc": 1.0},
}


def unit_factor(src: str, dst: str) -> float | None:
    s, d = src.strip().lower(), dst.strip().lower()
    for table in UNIT_FACTORS.values():
        if s in table and d in table:
            return table[s] / table[d]
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ValueSpec(_Strict):
    """How one value is read from a row."""

    column: str | None = None
    value: Any = None
    template: str | None = None
    type: ValueType | None = None
    format: str | None = None
    timezone: str | None = None
    decimal_comma: bool | None = None
    split: str | None = None
    map: dict[str, Any] | None = None
    default: Any = None
    required: bool = False
    unit_column: str | None = None
    to_unit: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        given = [k for k in ("column", "value", "template") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of column, value or template")
        return self

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zone(v)
            except ValueProblem as exc:
                raise ValueError(str(exc)) from None
        return v


def _spec(v: Any) -> Any:
    return {"column": v} if isinstance(v, str) else v


class EntitySpec(_Strict):
    """One entity made from each row."""

    as_: str = Field(default="row", alias="as")
    class_: str = Field(alias="class")
    id: ValueSpec
    properties: dict[str, ValueSpec] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"template": v} if "{" in v else {"column": v}
        return v

    @field_validator("properties", mode="before")
    @classmethod
    def _props(cls, v: Any) -> Any:
        return {k: _spec(x) for k, x in (v or {}).items()}

    @field_validator("class_")
    @classmethod
    def _known_class(cls, v: str) -> str:
        if v not in ENTITY_CLASSES:
            raise ValueError(f"unknown class {v!r}; known classes: {', '.join(sorted(ENTITY_CLASSES))}")
        return v

    @model_validator(mode="after")
    def _known_props(self) -> EntitySpec:
        fields = set(ENTITY_CLASSES[self.class_].model_fields) - {"id"}
        for name in self.properties:
            if name not in fields:
                raise ValueError(f"properties.{name}: {self.class_} has no property {name!r}; its properties: "
                                 f"{', '.join(sorted(fields))}")
        return self


class TargetSpec(_Strict):
    """The other end of a relation: an entity of this row (``entity``), or one looked up by
    id or by a business key (``lookup``: a property of the target class, e.g. ``name``)."""

    entity: str | None = None
    class_: str | None = Field(default=None, alias="class")
    column: str | None = None
    id: str | None = None  # template over {value} and row columns, default "{value}"
    lookup: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> TargetSpec:
        if self.entity is None and (self.class_ is None or self.column is None):
            raise ValueError("a target is either `entity: NAME` or `class` + `column` (+ `id` or `lookup`)")
        if self.class_ is not None and self.class_ not in ENTITY_CLASSES:
            raise ValueError(f"unknown class {self.class_!r}")
        if self.lookup is not None and self.class_ is not None:
            fields = set(ENTITY_CLASSES[self.class_].model_fields)
            if self.lookup not in fields:
                raise ValueError(f"{self.class_} has no property {self.lookup!r} to look up by")
        return self


def _target(v: Any) -> Any:
    return {"entity": v} if isinstance(v, str) else v


class RelationSpec(_Strict):
    type: str
    from_: TargetSpec = Field(default_factory=lambda: TargetSpec(entity="row"), alias="from")
    to: TargetSpec
    properties: dict[str, ValueSpec] = Field(default_factory=dict)
    optional: bool = True  # an empty reference cell means no edge (else a row error)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _t(cls, v: Any) -> Any:
        return _target(v)

    @field_validator("properties", mode="before")
    @classmethod
    def _props(cls, v: Any) -> Any:
        return {k: _spec(x) for k, x in (v or {}).items()}

    @field_validator("type")
    @classmethod
    def _known_rel(cls, v: str) -> str:
        if v not in RELATIONS:
            raise ValueError(f"unknown relation {v!r}; known relations: {', '.join(sorted(RELATIONS))}")
        return v

    @model_validator(mode="after")
    def _props_known(self) -> RelationSpec:
        model: type[EdgeProps] = RELATIONS[self.type].props
        for name in self.properties:
            if name not in model.model_fields:
                raise ValueError(f"relation {self.type} has no property {name!r}; its properties: "
                                 f"{', '.join(sorted(model.model_fields))}")
        return self


class CsvOptions(_Strict):
    delimiter: str | None = None
    encoding: str | None = None
    quotechar: str = '"'


class Defaults(_Strict):
    timezone: str = "UTC"
    source_system: str | None = None
    date_format: str | None = None
    decimal_comma: bool = False

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zone(v)
        except ValueProblem as exc:
            raise ValueError(str(exc)) from None
        return v


class Mapping(_Strict):
    """A whole mapping file."""

    format: Literal["csv", "jsonl", "xlsx"] | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    sheet: str | None = None
    header_row: int = 1
    defaults: Defaults = Field(default_factory=Defaults)
    entity: EntitySpec | None = None
    entities: list[EntitySpec] = Field(default_factory=list)
    relations: list[RelationSpec] = Field(default_factory=list)
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        if self.entity is not None:
            self.entities = [self.entity, *self.entities]
            self.entity = None
        if not self.entities:
            raise ValueError("a mapping needs `entity:` or `entities:`")
        names = [e.as_ for e in self.entities]
        if len(set(names)) != len(names):
            raise ValueError(f"entity names (`as`) must be unique, got {names}")
        by_name = {e.as_: e for e in self.entities}
        for i, r in enumerate(self.relations):
            rdef = RELATIONS[r.type]
            for end, t, allowed in (("from", r.from_, rdef.domain), ("to", r.to, rdef.range)):
                if t.entity is not None:
                    if t.entity not in by_name:
                        raise ValueError(f"relations.{i}.{end}: no entity named {t.entity!r} "
                                         f"(entities: {', '.join(names)})")
                    cls = by_name[t.entity].class_
                else:
                    cls = t.class_ or ""
                if cls not in allowed:
                    raise ValueError(f"relations.{i}.{end}: {r.type} {end} must be "
                                     f"{' or '.join(allowed)}, not {cls}")
        return self

    def columns(self) -> set[str]:
        """Every column the mapping reads (for a header check before the rows)."""
        out: set[str] = set()

        def add(spec: ValueSpec) -> None:
            if spec.column:
                out.add(spec.column)
            if spec.unit_column:
                out.add(spec.unit_column)
            if spec.template:
                out.update(f for f in _TEMPLATE_FIELD.findall(spec.template) if f != "value")

        for e in self.entities:
            add(e.id)
            for s in e.properties.values():
                add(s)
        for r in self.relations:
            for t in (r.from_, r.to):
                if t.column:
                    out.add(t.column)
                if t.id:
                    out.update(f for f in _TEMPLATE_FIELD.findall(t.id) if f != "value")
            for s in r.properties.values():
                add(s)
        return out


def field_kind(cls: str, name: str) -> ValueType:
    """The value type an ontology property needs, for specs that do not say."""
    model = ENTITY_CLASSES[cls]
    if name in datetime_fields(model):
        return "datetime"
    ann = repr(model.model_fields[name].annotation)
    if "list" in ann:
        return "list"
    if "float" in ann:
        return "number"
    if "int" in ann and "Point" not in ann:
        return "integer"
    return "string"


def edge_field_kind(rel: str, name: str) -> ValueType:
    model = RELATIONS[rel].props
    if name in datetime_fields(model):
        return "datetime"
    return "number" if "float" in repr(model.model_fields[name].annotation) else "string"


# --- YAML with line numbers ----------------------------------------------------------------------


def _compose(text: str, file: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse YAML keeping the line of every key/item, keyed by its path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise MappingError(f"{file}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(n: Any, path: tuple[str | int, ...]) -> Any:
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in n.value:
                key = str(k.value)
                lines[(*path, key)] = k.start_mark.line + 1
                out[key] = walk(v, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(v, (*path, i)) for i, v in enumerate(n.value)]
        return yaml.SafeLoader(text).construct_object(n) if n.tag != "tag:yaml.org,2002:str" else n.value

    data = walk(node, ()) if node is not None else None
    return data, lines


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[str | int, ...], int], data: Any) -> int:
    path: tuple[str | int, ...] = ()
    best = lines.get((), 1)
    for part in loc:
        key: str | int = part
        if isinstance(part, str) and part.endswith("_") and part[:-1] in ("as", "class", "from"):
            key = part[:-1]
        cand = (*path, key)
        if cand in lines:
            path = cand
            best = lines[cand]
        else:
            break
    return best


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; :class:`MappingError` names ``file:line`` on any problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{file}: cannot read mapping: {exc.strerror or exc}") from None
    data, lines = _compose(text, file)
    if not isinstance(data, dict):
        raise MappingError(f"{file}:1: a mapping is a YAML object with `entity:` or `entities:`")
    if "entity" in data and isinstance(data["entity"], dict):
        data["entities"] = [data.pop("entity"), *data.get("entities", [])]
        lines.update({("entities", 0, *k[1:]): v for k, v in list(lines.items()) if k[:1] == ("entity",)})
        lines[("entities",)] = lines[("entity",)]
    try:
        m = Mapping.model_validate({**data, "source": file})
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = re.sub(r"^Value error, ", "", err["msg"])
            sub = re.match(r"^((?:[A-Za-z_]\w*|\d+)(?:\.(?:[A-Za-z_]\w*|\d+))*): (.*)$", msg, re.S)
            if sub is not None and "." in sub.group(1):
                loc = (*loc, *(int(x) if x.isdigit() else x for x in sub.group(1).split(".")))
                if sub.group(1).startswith(("relations.", "entities.")):
                    loc = tuple(int(x) if x.isdigit() else x for x in sub.group(1).split("."))
                msg = sub.group(2)
            line = _line_of(loc, lines, data)
            where = ".".join(str(p).rstrip("_") for p in loc) or "mapping"
            msgs.append(f"{file}:{line}: {where}: {msg}")
        raise MappingError("\n".join(msgs)) from None
    return m


__all__ = [
    "COMMON_FIELDS", "EntitySpec", "Mapping", "MappingError", "RelationSpec", "TargetSpec", "ValueSpec",
    "edge_field_kind", "field_kind", "load_mapping", "unit_factor",
]
