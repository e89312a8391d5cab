"""Reading plain-shaped B2MML elements: the children an element may have, checked and indexed
by local name in one pass.

The importer's plain readers (``_plain_*`` in :mod:`graph_loader.b2mml.importer`) take a unit
only when every element of it is one its noun's mapping reads, in the form it reads it; a shape
here says which children an element may have, how many of each, and which may have children of
their own. :func:`children` answers with the element's children by local name, or None when the
element is not of its shape.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_PRODUCED = {"produced", "materialproduced", "coproductproduced", "byproductproduced", "yieldproduced"}
_CONSUMED = {"consumed", "materialconsumed"}
_NOT_LETTER = re.compile(r"[^a-z]")


def clean(text: str | None) -> str | None:
    """:func:`values.clean_id` without the regular expression (the hot path of every value)."""
    if not text:
        return None
    out = " ".join(text.split())
    return out or None


class NotPlain(Exception):
    """A unit that is not of the plain shape its reader takes (the handler reads it)."""


#: Children a plain unit's element may have: local name -> at most one of it (True) or any
#: number (False); an element of a name with a trailing "+" may have children, the rest are leaves.
RESPONSE = {"ID": True, "Description": False, "StartTime": True, "EndTime": True, "OperationsType": True,
            "ProductionRequestID": True, "OperationsRequestID": True, "ResponseState": True,
            "SegmentResponse+": False}
SEGMENT_RESPONSE = {"ID": False, "Description": False, "ProcessSegmentID": False, "ProductSegmentID": False,
                    "OperationsSegmentID": False, "SegmentState": False, "PostingDate": False, "OperationsType": False,
                    "OperationsDefinitionID": False, "ActualStartTime": True, "ActualEndTime": True,
                    "MaterialActual+": False, "EquipmentActual+": False, "PersonnelActual+": False}
MATERIAL = {"ID": False, "Description": False, "MaterialUse": True, "MaterialDefinitionID": True,
            "MaterialLotID": False, "MaterialSubLotID": False, "Quantity+": True}
REQUEST = {"ID": True, "Description": True, "EffectiveStartDate": True, "EffectiveEndDate": True,
           "StartTime": True, "EndTime": True, "OperationsType": True, "RequestState": True,
           "SegmentRequirement+": False}
SEGMENT_REQUIREMENT = {"ID": False, "Description": False, "EarliestStartTime": True, "LatestEndTime": True,
                       "Duration": False, "OperationsDefinitionID": False, "SegmentState": False,
                       "OperationsType": False, "ProcessSegmentID": False, "ProductSegmentID": False,
                       "OperationsSegmentID": False, "MaterialRequirement+": False, "EquipmentRequirement+": False}
LOT = {"ID": True, "Description": True, "EffectiveStartDate": True, "EffectiveEndDate": True,
       "MaterialDefinitionID": True, "Status": True, "Quantity+": True, "MaterialLotProperty+": False,
       "HierarchyScope+": True, "AssemblyLot+": False, "AssemblyType": False, "AssemblyRelationship": False}
PROPERTY = {"ID": True, "Description": False, "Value+": False}
VALUE = {"ValueString": True, "DataType": False, "UnitOfMeasure": False, "Key": False}
SCOPE = {"EquipmentID": True, "EquipmentLevel": True, "EquipmentElementLevel": True}
QUANTITY = {"QuantityString": True, "UnitOfMeasure": True, "DataType": False, "Key": False}
EQUIPMENT = {"ID": False, "Description": False, "EquipmentLevel": False, "EquipmentUse": False,
             "EquipmentID": False}
PERSONNEL = {"ID": False, "Description": False, "PersonnelUse": False, "PersonID": False}

#: per shape and parent tag: child tag -> (local name, at most one, may have children), worked
#: out once (a child's tag is then one dictionary lookup, its namespace included)
_RULES: dict[tuple[int, str], dict[str, tuple[str, bool, bool]]] = {}


def _rules(kids: dict[str, bool], tag: str) -> dict[str, tuple[str, bool, bool]]:
    ns = tag[:tag.find("}") + 1] if tag[:1] == "{" else ""
    out = {}
    for k, one in kids.items():
        local = k.rstrip("+")
        out[ns + local] = (local, one, k.endswith("+"))
    if len(_RULES) < 1000:
        _RULES[(id(kids), tag)] = out
    return out


def children(el: Any, kids: dict[str, bool]) -> dict[str, list[Any]] | None:
    """``el``'s children by local name when each is one of ``kids``, in ``el``'s namespace, as
    often and with children as ``kids`` allows; else None."""
    tag = el.tag
    rules = _RULES.get((id(kids), tag)) or _rules(kids, tag)
    out: dict[str, list[Any]] = {}
    for c in el:
        rule = rules.get(c.tag)
        if rule is None:
            return None
        local, one, nested = rule
        if not nested and len(c):
            return None
        got = out.get(local)
        if got is None:
            out[local] = [c]
        elif one:
            return None
        else:
            got.append(c)
    return out


class _OperationTags(dict[str, bool]):
    """Whether a tag names an operation of a segment (ProcessSegmentID, ProductSegmentID or
    OperationsSegmentID, any namespace): ``texts`` of the three, in document order."""

    def __missing__(self, tag: Any) -> bool:
        got = isinstance(tag, str) and tag.rpartition("}")[2] in (
            "ProcessSegmentID", "ProductSegmentID", "OperationsSegmentID")
        if len(self) < 1000:
            self[tag] = got
        return got


OPERATION_TAGS = _OperationTags()


def lots(kids: dict[str, list[Any]]) -> list[str]:
    """``texts("MaterialLotID", "MaterialSubLotID")`` of a plain element."""
    if "MaterialLotID" in kids and "MaterialSubLotID" in kids:
        raise NotPlain  # (their texts would be read in document order)
    return [t for c in kids.get("MaterialLotID") or kids.get("MaterialSubLotID") or () if (t := clean(c.text))]


def value(v: Any) -> str | None:
    """``R.value`` of a property's Value: its own text, or that of its one ValueString."""
    if not len(v):
        return clean(v.text)
    vk = children(v, VALUE)
    if vk is None or "ValueString" not in vk:
        raise NotPlain
    return leaf_text(vk, "ValueString")


def leaf_text(kids: dict[str, list[Any]], name: str) -> str | None:
    """The cleaned text of the one leaf ``name`` (``R.text`` of a plain element)."""
    got = kids.get(name)
    if got is None:
        return None
    t = got[0].text
    return (" ".join(t.split()) or None) if t else None


@lru_cache(maxsize=1024)
def use_of(use: str) -> str:
    """What a MaterialUse text says: ``produced``, ``consumed``, or ``use <text>`` for any other
    use (reported as not mapped)."""
    key = _NOT_LETTER.sub("", use.lower())
    if key in _PRODUCED:
        return "produced"
    if key in _CONSUMED:
        return "consumed"
    return f"use {use or '(none)'}"


__all__ = [
    "EQUIPMENT", "LOT", "MATERIAL", "OPERATION_TAGS", "PERSONNEL", "PROPERTY", "QUANTITY", "REQUEST", "RESPONSE",
    "SCOPE", "SEGMENT_REQUIREMENT", "SEGMENT_RESPONSE", "VALUE", "NotPlain", "children", "clean", "leaf_text", "lots",
    "use_of", "value",
]
