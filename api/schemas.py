"""Request and response models of the API that are not reasoning results (those come from
reasoning.results and reasoning.rag.models). Kept apart from storage code: routes convert
store records with :func:`entity_out` / :func:`edge_out`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from api.scope import ScopeNote
from store.base import EdgeRecord, NodeRecord

T = TypeVar("T")


class EntityOut(BaseModel):
    id: str
    cls: str = Field(description="ontology class name, e.g. Lot")
    name: str | None = None
    plant: str | None = Field(None, description="plant (Site id); empty = enterprise-wide")
    source_system: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    props: dict[str, Any] = Field(default_factory=dict, description="class-specific properties")


class EdgeOut(BaseModel):
    src: str
    rel: str
    dst: str
    source_system: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class EntityResponse(BaseModel):
    entity: EntityOut
    scope: ScopeNote


class SearchHit(BaseModel):
    entity: EntityOut
    match: Literal["id", "name", "alias", "fuzzy"]
    score: float = Field(description="100 for exact matches; rapidfuzz WRatio for fuzzy ones")


class Page(BaseModel, Generic[T]):
    items: list[T]
    offset: int
    limit: int
    total: int
    next_offset: int | None = Field(None, description="pass as offset= for the next page; null on the last")


class SearchResponse(Page[SearchHit]):
    query: str
    scope: ScopeNote


class NeighbourhoodResponse(BaseModel):
    center: EntityOut
    depth: int
    direction: str
    rels: list[str]
    as_of: datetime | None = None
    nodes: Page[EntityOut]
    edges: list[EdgeOut] = Field(description="edges among the returned center + nodes page")
    truncated: bool = False
    truncated_reason: str | None = None
    scope: ScopeNote


class AnalysisResponse(BaseModel, Generic[T]):
    """A reasoning result, redacted to the key's plant scope."""

    result: T
    scope: ScopeNote


def envelope_json(field: str, inner_json: str, scope: ScopeNote) -> str:
    """The compact JSON of an envelope ``{field: inner, "scope": scope}`` (AnalysisResponse,
    AskResponse) written around the inner model's own JSON, instead of serialising that model a
    second time as a field. Byte for byte the envelope model's ``model_dump_json()`` when the
    inner value is exactly the field's declared class (a subclass would serialise differently as
    a field: callers check ``type(x) is Model`` and otherwise use the envelope model)."""
    return f'{{"{field}":{inner_json},"scope":{scope.model_dump_json()}}}'


class StoreState(BaseModel):
    open: bool
    backend: str | None = None
    path: str | None = None
    error: str | None = None


class IndexState(BaseModel):
    state: Literal["ready", "degraded", "not_loaded", "unavailable"]
    reason: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    ready: bool
    store: StoreState
    index: IndexState


def _jsonable_props(props: Any) -> dict[str, Any]:
    return dict(props) if props else {}


def entity_out(n: NodeRecord) -> EntityOut:
    return EntityOut(
        id=n.id, cls=n.cls, name=n.name, plant=n.plant, source_system=n.source_system,
        valid_from=n.valid_from, valid_to=n.valid_to, props=_jsonable_props(n.props),
    )


def edge_out(e: EdgeRecord) -> EdgeOut:
    return EdgeOut(
        src=e.src, rel=e.rel, dst=e.dst, source_system=e.source_system, valid_from=e.valid_from,
        valid_to=e.valid_to, props=_jsonable_props(e.props),
    )
