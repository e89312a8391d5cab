"""B2MML element names and read views of elements.

What the importer needs to know of a tag (its namespace, whether it is B2MML, a noun, a verb
wrapper), worked out once per distinct tag, and :class:`R`, the view through which the noun
handlers read an element while :class:`ReadElements` keeps what they read, so that every element
they did not read can be reported.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from graph_loader.b2mml.plain import clean
from ontology.models import ENTITY_CLASSES, datetime_fields

_NS_RE = re.compile(r"^https?://www\.(wbf|mesa)\.org/xml/(b2mml|batchml)(-v(\d+))?/?$", re.IGNORECASE)
VERBS = ("Sync", "Show", "Process", "Get", "Change", "Cancel", "Acknowledge", "Respond")
VERB_RE = re.compile(r"^(Sync|Show|Process|Get|Change|Cancel|Acknowledge|Respond)([A-Z]\w+)$")

#: Elements mapped as a whole when their end tag is read.
UNITS = frozenset({
    "Equipment", "EquipmentClass", "MaterialClass", "MaterialDefinition", "MaterialLot", "MaterialSubLot",
    "Person", "PersonnelClass", "ProductionRequest", "OperationsRequest", "ProductionResponse",
    "OperationsResponse",
})
#: Elements that only hold units (their own scalar children are read as context).
CONTAINERS = frozenset({
    "DataArea", "EquipmentInformation", "MaterialInformation", "PersonnelInformation",
    "ProductionSchedule", "OperationsSchedule", "ProductionPerformance", "OperationsPerformance",
    "BatchInformation", "BatchProductionRecord", "BatchList", "MasterRecipe", "ControlRecipe",
})
NOUNS = UNITS | CONTAINERS
#: Scalar children of containers, read as context by the units inside them.
CONTEXT = frozenset({
    "ID", "Description", "StartTime", "EndTime", "Endtime", "Location", "HierarchyScope", "PublishedDate",
    "EquipmentElementLevel", "ScheduleState", "PerformanceState", "ProductionScheduleID",
    "OperationsScheduleID", "OperationsType", "ApplicationArea", "ReleaseID", "VersionID",
} | set(VERBS))


@lru_cache(maxsize=256)
def version_of(ns: str) -> str | None:
    """``V0401``, ``V0500``, ``V0600``, ``V07`` (the unversioned MESA namespace) or None."""
    m = _NS_RE.match(ns)
    if not m:
        return None
    num = m.group(4)
    if num is None:
        return "V07"
    return "V" + (num + "00" if len(num) == 2 else num)


class TagFacts:
    """What the walker needs to know about one tag, worked out once per distinct tag."""

    __slots__ = ("b2", "local", "ns", "verb_any", "verb_noun")

    def __init__(self, ns: str, local: str) -> None:
        self.ns = ns
        self.local = local
        self.b2 = ns == "" or _NS_RE.match(ns) is not None
        m = VERB_RE.match(local)
        self.verb_any = m is not None
        #: a verb wrapper of a known noun (SyncMaterialLot, ...), else None
        self.verb_noun: str | None = m.group(1) if m and m.group(2) in NOUNS else None


TAG_FACTS: dict[Any, TagFacts] = {}
#: Tag -> local name of the elements seen (what the child index needs of a tag).
LOCAL_NAMES: dict[str, str] = {}
NO_TAG = TagFacts("", "")


@cache
def field_kinds(cls: str) -> dict[str, str]:
    """Property name -> how a ``*Property`` value is read (datetime, list, number, text), per
    class, worked out once from the ontology model."""
    model = ENTITY_CLASSES[cls]
    dts = datetime_fields(model)
    out: dict[str, str] = {}
    for key, info in model.model_fields.items():
        if key == "id":
            continue
        if key in dts:
            out[key] = "datetime"
        elif "list" in repr(info.annotation):
            out[key] = "list"
        elif info.annotation in (float, float | None) or "float" in repr(info.annotation):
            out[key] = "number"
        else:
            out[key] = "text"
    return out


def tag_facts(tag: Any) -> TagFacts:
    """The cached :class:`TagFacts` of a tag (a file repeats a few dozen tags); comments and the
    like have an empty one."""
    got = TAG_FACTS.get(tag)
    if got is not None:
        return got
    if not isinstance(tag, str):
        return NO_TAG
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        got = TagFacts(ns, local)
    else:
        got = TagFacts("", tag)
    if len(TAG_FACTS) < 50_000:
        TAG_FACTS[tag] = got
        LOCAL_NAMES[tag] = got.local
    return got


def local_name(el: Any) -> str:
    return tag_facts(el.tag).local


#: Element paths made so far, each kept once: an import makes the same few paths for every unit
#: (one string object each, not one per record, in memory and in a helper's pickles).
_PATHS: dict[str, str] = {}


def child_path(head: str, local: str) -> str:
    """``head/local``, the one copy of it."""
    return intern_path(head + "/" + local)


def intern_path(path: str) -> str:
    """The one copy of an element path."""
    got = _PATHS.get(path)
    if got is None:
        if len(_PATHS) < 100_000:
            _PATHS[path] = path
        return path
    return got


def element_path(el: Any) -> str:
    parts = []
    cur = el
    while cur is not None:
        parts.append(local_name(cur))
        cur = cur.getparent()
    return "/" + "/".join(reversed(parts))


class ReadElements:
    """Elements of the current unit that the mapping read, each read element's children indexed
    by local name, and element paths. Elements are kept as set members and dict keys (lxml
    returns the same proxy for a node while one is alive); all of it is dropped with the unit."""

    __slots__ = ("_index", "_paths", "els")

    def __init__(self) -> None:
        self.els: set[Any] = set()
        self._index: dict[Any, dict[str, list[Any]]] = {}
        self._paths: dict[Any, str] = {}

    def mark(self, el: Any) -> None:
        self.els.add(el)

    def __contains__(self, el: Any) -> bool:
        return el in self.els

    def children(self, el: Any) -> dict[str, list[Any]]:
        """Children by local name, each list in document order (the costliest loop of the
        mapping: one pass per element read, so one dict lookup per child)."""
        got = self._index.get(el)
        if got is None:
            got = self._index[el] = {}
            locals_ = LOCAL_NAMES
            for c in el:
                tag = c.tag
                local = locals_.get(tag)
                if local is None:
                    local = tag_facts(tag).local
                    if not local:  # not an element
                        continue
                lst = got.get(local)
                if lst is None:
                    got[local] = [c]
                else:
                    lst.append(c)
        return got

    def path(self, el: Any) -> str:
        """``/Root/.../Local`` of ``el``, sharing the parents' paths."""
        got = self._paths.get(el)
        if got is None:
            parent = el.getparent()
            head = self.path(parent) if parent is not None else ""
            got = self._paths[el] = child_path(head, local_name(el))
        return got


#: The index of an element without children (shared, never changed).
_LEAF: dict[str, list[Any]] = {}


class R:
    """A read view of one element that records which children the mapping used.

    The readers below are the hot path of the mapping (a few calls per element read), so the
    element's child index is kept on the view and the common cases (one name, a leaf's text)
    are written out inline rather than through helper calls."""

    __slots__ = ("_by", "el", "used")

    def __init__(self, el: Any, used: ReadElements) -> None:
        self.el = el
        self.used = used
        self._by: dict[str, list[Any]] | None = None
        used.els.add(el)

    @property
    def line(self) -> int:
        return int(self.el.sourceline or 0)

    def _index(self) -> dict[str, list[Any]]:
        """Children by local name, from the unit's index."""
        el = self.el
        by = self._by = self.used.children(el) if len(el) else _LEAF
        return by

    def _matching(self, names: tuple[str, ...]) -> list[Any]:
        """Children named ``names`` in document order, marked as read."""
        by = self._by
        if by is None:
            by = self._index()
        found: list[Any] | None = None
        for n in names:
            got = by.get(n)
            if got:
                if found is not None:  # children of two of the names: in document order
                    found = [c for c in self.el if tag_facts(c.tag).local in names]
                    break
                found = got
        if found is None:
            return []
        self.used.els.update(found)
        return found

    def kids(self, *names: str) -> list[R]:
        used = self.used
        return [R(c, used) for c in self._matching(names)]

    def mark(self, *names: str) -> None:
        """Mark the children named ``names`` as read (what ``kids`` does, without the views)."""
        by = self._by
        if by is None:
            by = self._index()
        update = self.used.els.update
        for n in names:
            got = by.get(n)
            if got:
                update(got)

    def _first(self, names: tuple[str, ...]) -> Any | None:
        """The first child named by the first of ``names`` that has one."""
        by = self._by
        if by is None:
            by = self._index()
        for n in names:
            got = by.get(n)
            if got:
                return got[0]
        return None

    def kid_el(self, *names: str) -> Any | None:
        """The element ``kid`` would view (marked as read), without the view."""
        el = self._first(names)
        if el is not None:
            self.used.els.add(el)
        return el

    def kid(self, *names: str) -> R | None:
        el = self._first(names)
        return None if el is None else R(el, self.used)

    def text(self, *names: str) -> str | None:
        """First non-empty (whitespace-stripped) text among children named ``names``."""
        for c in self._matching(names):
            if len(c):
                t = R(c, self.used).value()
            else:  # clean(c.text), inline
                t = c.text
                t = (" ".join(t.split()) or None) if t else None
            if t is not None:
                return t
        return None

    def texts(self, *names: str) -> list[str]:
        out = []
        for c in self._matching(names):
            if len(c):
                t = R(c, self.used).value()
            else:
                t = c.text
                t = (" ".join(t.split()) or None) if t else None
            if t is not None:
                out.append(t)
        return out

    def value(self) -> str | None:
        """The element's own text; for typed wrappers (Value/ValueString) the inner string."""
        el = self.el
        if not len(el):
            return clean(el.text)
        inner = self.kid("ValueString", "QuantityString")
        if inner is not None:
            self.mark("DataType", "UnitOfMeasure", "Key")
            return clean(inner.el.text)
        return clean(el.text)


__all__ = [
    "CONTAINERS", "CONTEXT", "LOCAL_NAMES", "NOUNS", "NO_TAG", "TAG_FACTS", "UNITS", "VERBS", "VERB_RE", "R",
    "ReadElements", "TagFacts", "child_path", "element_path", "field_kinds", "intern_path", "local_name", "tag_facts",
    "version_of",
]
