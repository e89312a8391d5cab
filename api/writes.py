"""Shared helpers for the API's graph writes (events and approved proposals).

Both resolve referenced entities under the caller's plant scope (an invisible entity is reported
exactly like a missing one), build typed records checked against the ontology model, and write
everything in one store transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from api.keys import Principal
from api.problems import FieldError, ProblemError
from ontology.models import entity_model
from store.base import EdgeRecord, GraphStore, NodeRecord


class Resolver:
    """Looks up referenced entities once, collecting every problem with its JSON path."""

    def __init__(self, store: GraphStore, principal: Principal) -> None:
        self.store = store
        self.principal = principal
        self.errors: list[FieldError] = []
        self.not_found: list[FieldError] = []

    def get(self, loc: str, node_id: str, cls: str | tuple[str, ...]) -> NodeRecord | None:
        classes = (cls,) if isinstance(cls, str) else cls
        n = self.store.get_node(node_id)
        if n is None or not self.principal.sees_plant(n.plant):
            self.not_found.append(FieldError(loc=loc, msg=f"no {' or '.join(classes)} with id {node_id!r}",
                                             type="not_found"))
            return None
        if n.cls not in classes:
            self.errors.append(FieldError(loc=loc, msg=f"{node_id!r} is a {n.cls}, expected {' or '.join(classes)}",
                                          type="wrong_class"))
            return None
        return n

    def new_id(self, loc: str, node_id: str, cls: str) -> NodeRecord | None:
        """An id the write will create (or update when it already is an entity of ``cls``)."""
        n = self.store.get_node(node_id)
        if n is None:
            return None
        if n.cls != cls or not self.principal.sees_plant(n.plant):
            self.errors.append(FieldError(loc=loc, msg=f"id {node_id!r} is already used by another entity",
                                          type="id_conflict"))
            return None
        return n

    def fail(self, loc: str, msg: str, type_: str = "value_error") -> None:
        self.errors.append(FieldError(loc=loc, msg=msg, type=type_))

    def raise_if_any(self) -> None:
        """404 when every problem is a missing reference (nothing else to say), else 422 listing all."""
        if self.not_found and not self.errors:
            first = self.not_found[0]
            raise ProblemError(404, f"{first.msg} (at {first.loc})", slug="not-found", errors=self.not_found)
        problems = self.errors + self.not_found
        if problems:
            first = problems[0]
            raise ProblemError(422, f"invalid input at {first.loc}: {first.msg}", slug="validation",
                               errors=problems)


def iso(t: datetime) -> str:
    return t.isoformat()


def node(
    cls: str, node_id: str, *, plant: str | None, source_system: str, name: str | None = None,
    props: Mapping[str, Any],
) -> NodeRecord:
    """A new node, validated against its ontology model (a bug here is a 500, never bad data)."""
    rec = NodeRecord(id=node_id, cls=cls, props=dict(props), name=name, plant=plant, source_system=source_system)
    check(rec)
    return rec


def updated(n: NodeRecord, **props: Any) -> NodeRecord:
    rec = dataclasses.replace(n, props={**dict(n.props), **props})
    check(rec)
    return rec


def check(n: NodeRecord) -> None:
    model = entity_model(n.cls)
    try:
        model.model_validate({"id": n.id, "name": n.name, "plant": n.plant, "source_system": n.source_system,
                              "valid_from": n.valid_from, "valid_to": n.valid_to, **dict(n.props)})
    except ValidationError as exc:
        raise ProblemError(
            422, f"the change would make {n.cls} {n.id!r} invalid: {exc.errors()[0]['msg']}", slug="validation",
            errors=[FieldError(loc=".".join(str(p) for p in e["loc"]), msg=e["msg"], type=e["type"])
                    for e in exc.errors()],
        ) from None


def edge(src: str, rel: str, dst: str, source_system: str, **props: Any) -> EdgeRecord:
    return EdgeRecord(src=src, rel=rel, dst=dst, props=props, source_system=source_system)


def write(store: GraphStore, nodes: Sequence[NodeRecord], edges: Sequence[EdgeRecord]) -> tuple[int, int]:
    """One all-or-nothing transaction."""
    with store.transaction() as tx:
        if nodes:
            tx.upsert_nodes(list(nodes))
        if edges:
            tx.upsert_edges(list(edges))
    return len(nodes), len(edges)
