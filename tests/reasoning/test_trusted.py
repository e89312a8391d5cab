"""reasoning/trusted.py builds the models the validating constructors build: same values, same
fields set, same JSON; values of any other type go through validation (and fail as before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from reasoning import trusted
from reasoning.results import EntityRef, EvidencePath, EvidenceStep, ReachedEntity
from store.base import Direction

T = datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=1)))


def check(built: BaseModel, model: type[BaseModel], **kw: Any) -> None:
    assert trusted.same(built, model(**kw))
    assert built == model(**kw)


def test_the_self_check_passed() -> None:
    assert trusted._ON


@pytest.mark.parametrize("times", [{}, {"edge.shipped_at": T}, {"edge.valid_from": T, "node.at": T.astimezone(UTC)}])
@pytest.mark.parametrize("direction", ["out", "in"])
def test_steps(times: dict[str, datetime], direction: Any) -> None:
    check(trusted.step("A", "SHIPPED_TO", "B", direction, times), EvidenceStep,
          src="A", rel="SHIPPED_TO", dst="B", direction=direction, times=times)


def test_paths_entities_and_reached() -> None:
    s = trusted.step("A", "R", "B", "in", {"edge.valid_to": T})
    for rule in (None, "lots_to_customers"):
        for steps in ([], [s], [s, s]):
            check(trusted.path(rule, list(steps)), EvidencePath, rule=rule, steps=list(steps))
    for name, plant, status in ((None, None, None), ("Lot 1", "SITE-A", "on_hold"), ("", "", "")):
        check(trusted.entity("L1", "Lot", name, plant, status), EntityRef,
              id="L1", cls="Lot", name=name, plant=plant, status=status)
    e = trusted.entity("L1", "Lot", None, "P", "ok")
    p = trusted.path("r", [s])
    for q, u, via, shipped in ((None, None, None, None), (2.5, "kg", "shipped", True), (0.0, "", "allocated", False)):
        for evidence in ([], [p], [p, p]):
            check(trusted.reached(e, 3, q, u, via, shipped, list(evidence)), ReachedEntity,
                  entity=e, depth=3, quantity=q, unit=u, via=via, shipped=shipped, evidence=list(evidence))


def test_other_types_are_validated() -> None:
    """What validation converts, it still converts; what it refuses, it still refuses."""
    s = trusted.step("A", "R", "B", Direction.OUT, {})  # type: ignore[arg-type]
    assert trusted.same(s, EvidenceStep(src="A", rel="R", dst="B", direction=Direction.OUT, times={}))
    r = trusted.reached(trusted.entity("L", "Lot", None, None, None), 1, 5, None, None, None, [])
    assert type(r.quantity) is float and r.quantity == 5.0
    with pytest.raises(ValidationError):
        trusted.entity("L", "Lot", 7, None, None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        trusted.step("A", "R", "B", "sideways", {})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        trusted.step("A", "R", "B", "out", {"t": "not a time"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        trusted.path("r", [{"src": "A"}])  # type: ignore[list-item]


def test_built_models_behave_like_validated_ones() -> None:
    """Assignment, copies and the fields set work on them as on validated models."""
    r = trusted.reached(trusted.entity("L", "Lot", None, None, None), 1, None, None, None, None, [])
    r.via = "supplier_lot"
    assert r.via == "supplier_lot" and "via" in r.model_fields_set
    c = r.model_copy(update={"depth": 2})
    assert c.depth == 2 and r.depth == 1
    assert ReachedEntity.model_validate_json(r.model_dump_json()) == r
