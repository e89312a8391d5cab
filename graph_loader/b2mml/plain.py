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

PRODUCED_USES = {"produced", "materialproduced", "coproductproduced", "byproductproduced", "yieldproduced"}
CONSUMED_USES = {"consumed", "materialconsumed"}
_NOT_LETTER = re.compile(r"[^a-z]")


def clean(text: str | None) -> str | None:
    """:func:`values.clean_id` without the regular expression (the hot path of every value)."""
    if not text:
        return None
    out = " ".join(text.split())
    return out or None


class NotPlain(Exception):
    """A unit that is not of the plain shape its reader takes (the handler reads it)."""


class Shape:
    """The children a plain element may have: ``kids`` maps a local name to whether at most one
    of it may be there (True) or any number (False); a name ending in "+" may have children of its
    own, the others must be leaves. Worked out once per parent tag into child tag -> (local name,
    at most one, may have children), so that a child's tag is one dictionary lookup, its
    namespace included."""

    __slots__ = ("_by_tag", "_kids")

    def __init__(self, kids: dict[str, bool]) -> None:
        self._kids = {k.rstrip("+"): (one, k.endswith("+")) for k, one in kids.items()}
        self._by_tag: dict[str, dict[str, tuple[str, bool, bool]]] = {}

    def kids(self) -> dict[str, tuple[bool, bool]]:
        """Local name -> (at most one, may have children): the shape as the compiled reader
        (:mod:`graph_loader.b2mml.native`) takes it."""
        return dict(self._kids)

    def rules(self, tag: str) -> dict[str, tuple[str, bool, bool]]:
        """Child tag -> (local name, at most one, may have children), for a parent tagged ``tag``
        (its children must be in its namespace)."""
        got = self._by_tag.get(tag)
        if got is None:
            ns = tag[:tag.find("}") + 1] if tag[:1] == "{" else ""
            got = {ns + local: (local, one, nested) for local, (one, nested) in self._kids.items()}
            if len(self._by_tag) < 100:
                self._by_tag[tag] = got
        return got


RESPONSE = Shape({"ID": True, "Description": False, "StartTime": True, "EndTime": True, "OperationsType": True,
                  "ProductionRequestID": True, "OperationsRequestID": True, "ResponseState": True,
                  "SegmentResponse+": False})
SEGMENT_RESPONSE = Shape({"ID": False, "Description": False, "ProcessSegmentID": False, "ProductSegmentID": False,
                          "OperationsSegmentID": False, "SegmentState": False, "PostingDate": False,
                          "OperationsType": False, "OperationsDefinitionID": False, "ActualStartTime": True,
                          "ActualEndTime": True, "MaterialActual+": False, "EquipmentActual+": False,
                          "PersonnelActual+": False})
MATERIAL = Shape({"ID": False, "Description": False, "MaterialUse": True, "MaterialDefinitionID": True,
                  "MaterialLotID": False, "MaterialSubLotID": False, "Quantity+": True})
REQUEST = Shape({"ID": True, "Description": True, "EffectiveStartDate": True, "EffectiveEndDate": True,
                 "StartTime": True, "EndTime": True, "OperationsType": True, "RequestState": True,
                 "SegmentRequirement+": False})
SEGMENT_REQUIREMENT = Shape({"ID": False, "Description": False, "EarliestStartTime": True, "LatestEndTime": True,
                             "Duration": False, "OperationsDefinitionID": False, "SegmentState": False,
                             "OperationsType": False, "ProcessSegmentID": False, "ProductSegmentID": False,
                             "OperationsSegmentID": False, "MaterialRequirement+": False,
                             "EquipmentRequirement+": False})
LOT = Shape({"ID": True, "Description": True, "EffectiveStartDate": True, "EffectiveEndDate": True,
             "MaterialDefinitionID": True, "Status": True, "Quantity+": True, "MaterialLotProperty+": False,
             "HierarchyScope+": True, "AssemblyLot+": False, "AssemblyType": False, "AssemblyRelationship": False})
PROPERTY = Shape({"ID": True, "Description": False, "Value+": False})
VALUE = Shape({"ValueString": True, "DataType": False, "UnitOfMeasure": False, "Key": False})
SCOPE = Shape({"EquipmentID": True, "EquipmentLevel": True, "EquipmentElementLevel": True})
QUANTITY = Shape({"QuantityString": True, "UnitOfMeasure": True, "DataType": False, "Key": False})
EQUIPMENT = Shape({"ID": False, "Description": False, "EquipmentLevel": False, "EquipmentUse": False,
                   "EquipmentID": False})
PERSONNEL = Shape({"ID": False, "Description": False, "PersonnelUse": False, "PersonID": False})


def children(el: Any, shape: Shape) -> dict[str, list[Any]] | None:
    """``el``'s children by local name when each is one of ``shape``'s, in ``el``'s namespace,
    as often and with children as ``shape`` allows; else None."""
    rules = shape.rules(el.tag)
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
    if key in PRODUCED_USES:
        return "produced"
    if key in CONSUMED_USES:
        return "consumed"
    return f"use {use or '(none)'}"


__all__ = [
    "CONSUMED_USES", "EQUIPMENT", "LOT", "MATERIAL", "OPERATION_TAGS", "PERSONNEL", "PRODUCED_USES", "PROPERTY",
    "QUANTITY", "REQUEST", "RESPONSE", "SCOPE", "SEGMENT_REQUIREMENT", "SEGMENT_RESPONSE", "VALUE", "NotPlain", "Shape",
    "children", "clean", "leaf_text", "lots", "use_of", "value",
]
