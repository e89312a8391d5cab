"""Entities: get by id, search (id, name, alias, fuzzy), neighbourhood; all within the key's plants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import AuditDep, Reader, ServicesDep, StoreDep
from api.problems import PROBLEM_RESPONSES, ProblemError, not_found
from api.schemas import (
    EdgeOut,
    EntityOut,
    EntityResponse,
    NeighbourhoodResponse,
    Page,
    SearchHit,
    SearchResponse,
    edge_out,
    entity_out,
)
from api.scope import scope_note
from ontology.models import ENTITY_CLASSES, RELATIONS
from store.base import Direction, TraversalStep

router = APIRouter(prefix="/v1/entities", tags=["entities"], responses=PROBLEM_RESPONSES)

EntityId = Annotated[str, Path(min_length=1, max_length=200, description="entity id")]
AsOf = Annotated[datetime | None, Query(description="the graph as it was at this time (ISO-8601 with offset)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size (also capped by the server's max_results)")]


def _aware(t: datetime | None, name: str) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise ProblemError(422, f"{name} needs a time zone offset, e.g. 2026-03-02T06:00:00+01:00",
                           slug="validation")
    return t


@router.get("/{entity_id}", response_model=EntityResponse, summary="One entity by id")
async def get_entity(entity_id: EntityId, principal: Reader, store: StoreDep, audit: AuditDep,
                     as_of: AsOf = None) -> EntityResponse:
    audit.kind = "entity"
    n = store.get_node(entity_id, _aware(as_of, "as_of"))
    if n is None or not principal.sees_plant(n.plant):
        raise not_found("entity", entity_id)
    audit.entity_ids.add(n.id)
    return EntityResponse(entity=entity_out(n), scope=scope_note(principal, 0))


@router.get("", response_model=SearchResponse, summary="Search by id, name, alias or fuzzy name")
async def search(
    principal: Reader, store: StoreDep, services: ServicesDep, audit: AuditDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="an id, a name or part of one")],
    cls: Annotated[str | None, Query(description="only this ontology class")] = None,
    plant: Annotated[str | None, Query(max_length=200, description="only this plant")] = None,
    fuzzy: Annotated[bool, Query(description="also match misspellings (rapidfuzz WRatio)")] = True,
    min_score: Annotated[float, Query(ge=0, le=100)] = 75.0,
    offset: Offset = 0,
    limit: Limit = 20,
) -> SearchResponse:
    audit.kind = "search"
    audit.params = {"q": q, "cls": cls, "plant": plant, "fuzzy": fuzzy}
    if cls is not None and cls not in ENTITY_CLASSES:
        raise ProblemError(422, f"unknown class {cls!r}; expected one of {', '.join(sorted(ENTITY_CLASSES))}",
                           slug="validation")
    if plant is not None and not principal.sees_plant(plant):
        raise ProblemError(403, f"plant {plant!r} is outside this key's scope", slug="forbidden")
    limit = min(limit, services.settings.max_results)
    matches = services.names.search(store, principal, q, cls, plant, fuzzy, min_score, offset + limit)
    page = matches[offset:offset + limit]
    nodes = store.get_nodes([m.id for m in page])
    items = [
        SearchHit(entity=entity_out(nodes[m.id]), match=m.match, score=round(min(m.score, 100.0), 2))
        for m in page if m.id in nodes and principal.sees_plant(nodes[m.id].plant)
    ]
    audit.entity_ids.update(h.entity.id for h in items)
    total = len(matches)
    return SearchResponse(
        query=q, items=items, offset=offset, limit=limit, total=total,
        next_offset=offset + limit if offset + limit < total else None, scope=scope_note(principal, 0),
    )


@router.get("/{entity_id}/neighbourhood", response_model=NeighbourhoodResponse,
            summary="Entities around one entity, by relation type, direction and depth")
async def neighbourhood(
    entity_id: EntityId, principal: Reader, store: StoreDep, services: ServicesDep, audit: AuditDep,
    rels: Annotated[list[str] | None, Query(description="relation types to follow (default: all)")] = None,
    direction: Annotated[Literal["out", "in", "both"], Query()] = "both",
    depth: Annotated[int, Query(ge=1, le=6)] = 1,
    as_of: AsOf = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> NeighbourhoodResponse:
    audit.kind = "neighbourhood"
    as_of = _aware(as_of, "as_of")
    unknown = [r for r in rels or [] if r not in RELATIONS]
    if unknown:
        raise ProblemError(422, f"unknown relation(s) {unknown}; expected some of {', '.join(sorted(RELATIONS))}",
                           slug="validation")
    center = store.get_node(entity_id, as_of)
    if center is None or not principal.sees_plant(center.plant):
        raise not_found("entity", entity_id)
    rel_names = sorted(set(rels)) if rels else sorted(RELATIONS)
    steps = [TraversalStep(r, Direction(direction)) for r in rel_names]
    max_nodes = services.settings.max_results
    trav = store.traverse([center.id], steps, depth, as_of=as_of, max_nodes=max_nodes)
    reached = [h for nid, h in trav.hops.items() if nid != center.id]
    nodes = store.get_nodes([h.node for h in reached], as_of)
    allowed = {center.id}
    withheld = 0
    # BFS order: parents come before children, so "cut at the boundary" is one pass
    for h in sorted(reached, key=lambda h: (h.depth, h.node)):
        n = nodes.get(h.node)
        if n is not None and principal.sees_plant(n.plant) and h.parent in allowed:
            allowed.add(h.node)
        else:
            withheld += 1
    visible = sorted((nodes[i] for i in allowed if i != center.id), key=lambda n: (trav.hops[n.id].depth, n.id))
    limit = min(limit, services.settings.max_results)
    page_nodes = visible[offset:offset + limit]
    shown = {center.id} | {n.id for n in page_nodes}
    edges: list[EdgeOut] = [
        edge_out(trav.hops[n.id].edge) for n in page_nodes  # type: ignore[arg-type]
        if trav.hops[n.id].edge is not None and trav.hops[n.id].parent in shown
    ]
    audit.entity_ids.update(shown)
    total = len(visible)
    return NeighbourhoodResponse(
        center=entity_out(center), depth=depth, direction=direction, rels=rel_names, as_of=as_of,
        nodes=Page[EntityOut](items=[entity_out(n) for n in page_nodes], offset=offset, limit=limit, total=total,
                              next_offset=offset + limit if offset + limit < total else None),
        edges=edges, truncated=trav.truncated, truncated_reason=trav.truncated_reason,
        scope=scope_note(principal, withheld),
    )
