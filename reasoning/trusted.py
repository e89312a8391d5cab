"""Result models built from values that already have their fields' types, without validation.

Why: a wide trace builds thousands of result models (an evidence step per reached node, and an
entity, a path and a reached entity per result row); pydantic's validation of values that are
already what the fields declare is about half of what building them costs. Each builder here
returns what the validating constructor would: the same field values, the same set of fields
given and so the same JSON. A value of any other type goes through the validating constructor, so
odd data is still checked or refused exactly as before. At import, one instance of each model is
built both ways and compared; if they differ (say, a pydantic upgrade that changes how models are
laid out) every builder validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from reasoning.results import EntityRef, EvidencePath, EvidenceStep, ReachedEntity, StepDirection

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
# the slots every pydantic model has, set through their descriptors (what object.__setattr__ does)
_set_dict, _set_given, _set_extra, _set_private = (
    BaseModel.__dict__[k].__set__
    for k in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))
_STEP_FIELDS = frozenset(EvidenceStep.model_fields)
_REF_FIELDS = frozenset(EntityRef.model_fields)
_REACHED_FIELDS = frozenset(ReachedEntity.model_fields)
_PATH_GIVEN = frozenset({"rule", "steps"})


def _make(cls: type[_M], values: dict[str, Any], given: frozenset[str]) -> _M:
    """An instance of ``cls`` holding ``values`` (every field, in declaration order) with
    ``given`` as the fields set explicitly, laid out as pydantic lays out a validated one."""
    m = _new(cls)
    _set_dict(m, values)
    _set_given(m, set(given))
    _set_extra(m, None)
    _set_private(m, None)
    return m


# type sets for the checks below: ``type(x) in _OPT_STR``, and ``set(map(type, xs)) <= _STEPS`` for
# every item of a list (both in C, cheaper than a Python-level loop per item)
_OPT_STR = frozenset({str, type(None)})
_STR = frozenset({str})
_TIME = frozenset({datetime})
_STEPS = frozenset({EvidenceStep})
_PATHS = frozenset({EvidencePath})
_DIRECTIONS = frozenset({"out", "in"})


def step(src: str, rel: str, dst: str, direction: StepDirection, times: dict[str, datetime]) -> EvidenceStep:
    """``EvidenceStep(src=..., rel=..., dst=..., direction=..., times=times)``; ``times`` is kept
    (not copied), so the caller must not change it afterwards."""
    if (_ON and type(src) is str and type(rel) is str and type(dst) is str and type(direction) is str
            and direction in _DIRECTIONS and type(times) is dict
            and (not times or (set(map(type, times)) <= _STR and set(map(type, times.values())) <= _TIME))):
        return _make(EvidenceStep, {"src": src, "rel": rel, "dst": dst, "direction": direction, "times": times},
                     _STEP_FIELDS)
    return EvidenceStep(src=src, rel=rel, dst=dst, direction=direction, times=times)


def path(rule: str | None, steps: list[EvidenceStep]) -> EvidencePath:
    """``EvidencePath(rule=rule, steps=steps)``; ``steps`` is kept (not copied)."""
    if _ON and type(rule) in _OPT_STR and type(steps) is list and set(map(type, steps)) <= _STEPS:
        return _make(EvidencePath, {"rule": rule, "steps": steps, "note": None}, _PATH_GIVEN)
    return EvidencePath(rule=rule, steps=steps)


def entity(ident: str, cls: str, name: str | None, plant: str | None, status: str | None) -> EntityRef:
    """``EntityRef(id=ident, cls=..., name=..., plant=..., status=...)``."""
    if (_ON and type(ident) is str and type(cls) is str and type(name) in _OPT_STR and type(plant) in _OPT_STR
            and type(status) in _OPT_STR):
        return _make(EntityRef, {"id": ident, "cls": cls, "name": name, "plant": plant, "status": status},
                     _REF_FIELDS)
    return EntityRef(id=ident, cls=cls, name=name, plant=plant, status=status)


def reached(entity: EntityRef, depth: int, quantity: float | None, unit: str | None, via: str | None,
            shipped: bool | None, evidence: list[EvidencePath]) -> ReachedEntity:
    """``ReachedEntity(...)`` with every field given; ``evidence`` is kept (not copied)."""
    if (_ON and type(entity) is EntityRef and type(depth) is int and (quantity is None or type(quantity) is float)
            and type(unit) in _OPT_STR and type(via) in _OPT_STR and (shipped is None or type(shipped) is bool)
            and type(evidence) is list and set(map(type, evidence)) <= _PATHS):
        return _make(ReachedEntity, {"entity": entity, "depth": depth, "quantity": quantity, "unit": unit,
                                     "via": via, "shipped": shipped, "evidence": evidence}, _REACHED_FIELDS)
    return ReachedEntity(entity=entity, depth=depth, quantity=quantity, unit=unit, via=via, shipped=shipped,
                         evidence=evidence)


def same(a: BaseModel, b: BaseModel) -> bool:
    """Whether two instances are indistinguishable: class, values, fields set, extra, private, JSON."""
    return (type(a) is type(b) and a.__dict__ == b.__dict__ and a.model_fields_set == b.model_fields_set
            and a.__pydantic_extra__ == b.__pydantic_extra__
            and a.__pydantic_private__ == b.__pydantic_private__
            and a.model_dump_json() == b.model_dump_json())


def _self_check() -> bool:
    t = datetime.fromisoformat("2026-01-02T03:04:05+01:00")
    s = step("A", "R", "B", "out", {"edge.at": t})
    p = path("rule", [s])
    e = entity("A", "Lot", None, "P", "ok")
    r = reached(e, 1, 2.5, "kg", None, True, [p])
    twins: list[tuple[BaseModel, Mapping[str, Any]]] = [
        (s, {"src": "A", "rel": "R", "dst": "B", "direction": "out", "times": {"edge.at": t}}),
        (p, {"rule": "rule", "steps": [s]}),
        (e, {"id": "A", "cls": "Lot", "name": None, "plant": "P", "status": "ok"}),
        (r, {"entity": e, "depth": 1, "quantity": 2.5, "unit": "kg", "via": None, "shipped": True, "evidence": [p]}),
    ]
    return all(same(m, type(m)(**kw)) for m, kw in twins)


_ON = True
_ON = _self_check()
