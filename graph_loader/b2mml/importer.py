"""B2MML (ISA-95) messages -> ontology entities and relations.

Reads files or folders of B2MML V0401 ... V0701 messages (WBF and MESA namespaces, versioned or
not, any prefix, bare nouns or verb wrappers, B2MML nouns inside BatchML or a foreign root) as a
stream: each *unit* element (an Equipment tree, a MaterialLot, a ProductionRequest, ...) is
mapped when its end tag is read and then dropped from memory. docs/b2mml.md lists the mapping
noun by noun, element by element.

Every element of a unit that the mapping did not read is reported (file, line, element path,
reason); what was mapped is validated with the ontology models and written all or nothing.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from graph_loader.b2mml import native as N
from graph_loader.b2mml import plain as P
from graph_loader.b2mml import values as V
from graph_loader.b2mml.elements import (
    CONTAINERS,
    CONTEXT,
    NO_TAG,
    NOUNS,
    TAG_FACTS,
    UNITS,
    VERB_RE,
    VERBS,
    R,
    ReadElements,
    child_path,
    element_path,
    field_kinds,
    intern_path,
    local_name,
    tag_facts,
    version_of,
)
from graph_loader.b2mml.parallel import add_files
from graph_loader.b2mml.plain import clean as _clean
from graph_loader.b2mml.records import (
    ImportBatch,
    Origin,
    Problem,
    ProblemLog,
    paused_gc,
    send_group,
    write_validated,
)
from graph_loader.b2mml.safexml import XMLInputError, safe_iterparse, safe_parse
from graph_loader.pipeline import PIPELINE_MIN_BYTES, RowSink, run_beside, usable_cpus
from store.base import GraphStore

#: The only elements whose parse events reach Python (lxml patterns, any namespace).
EVENT_TAGS = tuple(sorted({"{*}" + n for n in NOUNS} | {"{*}" + v + n for v in VERBS for n in NOUNS}
                          | {"{*}ApplicationArea"}))

#: Files up to this size are parsed whole (lxml's parser is several times faster than iterparse
#: with a tag filter); larger ones are streamed. Either way one file's tree at a time.
TREE_BYTES = 8 * 1024 * 1024
#: Files the compiled reader's threads read and map ahead of the one being added, at most.
AHEAD_FILES = 256
#: How often (in files) reading ahead checks that the reader still takes most files.
AHEAD_CHECK = 512
#: ``add_file``'s "not read ahead".
_UNREAD: Any = object()


def _tree_events(root: Any) -> Iterator[tuple[str, Any]]:
    """The events ``safe_iterparse(..., EVENT_TAGS)`` would give, from a parsed tree: start and
    end of nouns, verb wrappers and ApplicationArea (B2MML namespaces), never entering a unit;
    then ``("done", root)``."""
    tags = TAG_FACTS
    stack: list[tuple[Any, Any]] = [(root, None)]
    while stack:
        el, kids = stack[-1]
        if kids is None:  # first visit
            t = tags.get(el.tag) or tag_facts(el.tag)
            event = t.b2 and (t.verb_noun is not None or t.local in NOUNS or t.local == "ApplicationArea")
            if event:
                yield "start", el
            if t.b2 and t.local in UNITS:
                stack.pop()
                yield "end", el
                continue
            # a snapshot: the walk removes mapped units from their parent
            stack[-1] = (el, iter(list(el)))
            continue
        nxt = next(kids, None)
        if nxt is not None:
            stack.append((nxt, None))
            continue
        stack.pop()
        t = tags.get(el.tag) or tag_facts(el.tag)
        if t.b2 and (t.verb_noun is not None or t.local in NOUNS or t.local == "ApplicationArea"):
            yield "end", el
    yield "done", root




_BAR = re.compile(r"\s*\|\s*")
#: Distinct date-time texts whose ISO form an importer keeps (then it starts again).
_ISO_CACHE = 100_000


@lru_cache(maxsize=4096)
def _snake(name: str) -> str:
    return V.snake(name)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


class FileSummary(BaseModel):
    file: str
    version: str | None = None
    messages: int = 0
    units: int = 0
    error: str | None = None


class ImportReport(BaseModel):
    """What an import read, wrote, could not map, and why it failed (if it did)."""

    kind: str = "b2mml"
    files: list[FileSummary] = Field(default_factory=list)
    messages: int = 0
    entities: int = 0
    relations: int = 0
    entities_by_class: dict[str, int] = Field(default_factory=dict)
    relations_by_type: dict[str, int] = Field(default_factory=dict)
    written: bool = False
    dry_run: bool = False
    errors: list[Problem] = Field(default_factory=list)
    more_errors: int = 0
    unmapped: list[Problem] = Field(default_factory=list)
    notes: list[Problem] = Field(default_factory=list)
    xsd_violations: list[Problem] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    file: str
    version: str | None = None
    verb: str | None = None
    sender: str | None = None
    summary: FileSummary = field(default_factory=lambda: FileSummary(file=""))
    #: views of the containers the units read context from, kept for the file when it is parsed
    #: whole (its tree does not change; streamed, a container still grows): None when streamed
    holders: dict[Any, R] | None = None


@dataclass
class _EquipRef:
    order: str
    equipment: str
    origin: Origin
    actual: bool
    start: str | None = None
    end: str | None = None


#: A material use read: (use, quantity, unit, material, lots, origin).
_MaterialUse = tuple[str, float | None, str | None, str | None, list[str], Origin]
#: A segment requirement read: (material uses as in a response, equipment as (ids, origin)).
_RequiredSegment = tuple[
    list[_MaterialUse],
    list[tuple[list[str], Origin]],
]
#: A segment response read: (start, end, material uses as (use, quantity, unit, material, lots,
#: origin), equipment as (ids, origin), personnel as (ids, origin)).
_ActualSegment = tuple[
    str | None, str | None,
    list[_MaterialUse],
    list[tuple[list[str], Origin]],
    list[tuple[list[str], Origin]],
]


#: One level of an equipment chain as written: (EquipmentID, its level, origin).
_ScopeLevel = tuple[str | None, str | None, Origin]
#: A lot property read: (ID, field, its kind or None when the lot has no such field, whether it had
#: values, value, line).
_LotProperty = tuple[str | None, str, str | None, bool, Any, int]


class _LotPlan(NamedTuple):
    """A plain lot (or assembly lot) as read, before any call is made for it."""

    line: int
    id: str
    name: str | None
    valid_from: str | None
    valid_to: str | None
    material: str | None
    status: str | None
    quantity: float | None
    unit: str | None
    properties: list[_LotProperty]
    #: (equipment id, class, line) of its HierarchyScope
    scope: tuple[str, str, int] | None
    components: list[_LotPlan]
    #: an assembly lot that gives its quantity and material is an entity of its own
    whole: bool


@dataclass
class _Patch:
    node: str
    cls: str
    props: dict[str, Any]
    origin: Origin
    what: str


class B2MMLImporter:
    """Collects B2MML files into one :class:`ImportBatch`, then validates and writes it."""

    def __init__(self, source_system: str = "B2MML", default_tz: tzinfo = UTC,
                 progress: Callable[[int], None] | None = None, native: bool | None = None) -> None:
        self.batch = ImportBatch(source_system=source_system)
        self.default_tz = default_tz
        self.unmapped = ProblemLog()
        self.notes = ProblemLog()
        self.errors: list[Problem] = []
        self.report = ImportReport()
        self.progress = progress
        self._equip_refs: list[_EquipRef] = []
        self._patches: list[_Patch] = []
        self._assembly: list[tuple[str, str, Origin]] = []
        self._sublots: list[tuple[str, str, Origin]] = []
        self._ctx = _Ctx(file="")
        self._used = ReadElements()
        self._isos: dict[str, str] = {}
        #: the compiled reader and mapper of plain messages, when installed and wanted
        #: (``native``: None follows PLANTGRAPH_B2MML_NATIVE), and the default zone as it takes it
        self._native = N.mapper(native)
        self._ahead = N.mapper_ahead(native)
        self._tz_minutes = N.offset_minutes(default_tz)

    # -- file walking ---------------------------------------------------------------------------
    def add_paths(self, paths: Iterable[Path]) -> None:
        for f in iter_b2mml_files(paths):
            self.add_file(f)

    @property
    def reads_ahead(self) -> bool:
        """Whether :meth:`add_files_ahead` can read files ahead (the compiled reader is in use)."""
        return self._ahead is not None

    def add_files_ahead(self, files: Sequence[Path], workers: int) -> int:
        """Adds ``files`` in order as :meth:`add_file` does, each read and mapped ahead by the
        compiled reader's ``workers`` threads while the calls for the ones before are made here.
        Returns how many it added: all of them, or fewer once the reader has left more than half
        of them to lxml, since those are better mapped in two processes
        (:func:`~graph_loader.b2mml.parallel.add_files` goes on with the rest)."""
        assert self._ahead is not None
        ahead = self._ahead([str(f) for f in files], TREE_BYTES, self._tz_minutes, workers, AHEAD_FILES)
        taken = 0
        try:
            for i, (path, (got,)) in enumerate(zip(files, ahead, strict=False), start=1):
                taken += got is not None
                self.add_file(path, got)
                if i % AHEAD_CHECK == 0 and 2 * taken < i:
                    return i
        finally:
            ahead.close()
        return len(files)

    def add_file(self, path: Path, read: Any = _UNREAD) -> None:
        """Map one file; ``read``: what the compiled reader made of it ahead (``native.Mapped``
        or None), when it did."""
        name = str(path)
        summary = FileSummary(file=name)
        self.report.files.append(summary)
        self._ctx = _Ctx(file=name, summary=summary)
        try:
            if self._native is not None and self._native_message(name, read):
                pass  # (the compiled reader reads only files of up to TREE_BYTES)
            elif os.stat(name).st_size <= TREE_BYTES:
                self._ctx.holders = {}
                root = safe_parse(path, name, blank_text=False).getroot()
                if not self._plain_message(root):
                    self._walk(_tree_events(root), streamed=False)
            else:
                self._walk(safe_iterparse(path, name, EVENT_TAGS))
        except XMLInputError as exc:
            summary.error = str(exc)
            self.errors.append(Problem(file=exc.file, line=exc.line, column=str(exc.column),
                                       message=str(exc).split(": ", 1)[1]))
        except OSError as exc:
            summary.error = str(exc)
            self.errors.append(Problem(file=name, message=f"cannot read file: {exc.strerror or exc}"))
        if self.progress is not None:
            self.progress(1)

    def _plain_message(self, root: Any) -> bool:
        """A file that is one message in the usual envelope, read without the general walk: a
        verb wrapper (SyncMaterialLot, ...) of an ApplicationArea and a DataArea, the DataArea
        holding empty verb elements, units and containers of context values and units, every
        element in the wrapper's namespace. What the walk does for it: the version, one
        message, its verb and sender, then each unit in turn (nothing is left to report).
        False, having done nothing, for any other file."""
        t = tag_facts(root.tag)
        if not (t.b2 and t.ns and t.verb_noun is not None) or len(root) != 2:
            return False
        ns = "{" + t.ns + "}"
        app, data = root
        if app.tag != ns + "ApplicationArea" or data.tag != ns + "DataArea" or not _plain_context(app, ns):
            return False
        units: list[Any] = []
        for c in data:
            local = _local_in(c, ns)
            if local in UNITS:
                units.append(c)
            elif local in VERBS:
                if len(c):
                    return False
            elif local in CONTAINERS:
                for k in c:
                    klocal = _local_in(k, ns)
                    if klocal in UNITS:
                        units.append(k)
                    elif klocal not in CONTEXT or not _plain_context(k, ns):
                        return False
            else:
                return False
        sender = None
        first = next((c for c in app if c.tag == ns + "Sender"), None)
        if first is not None:
            ids = [c for c in first if c.tag == ns + "LogicalID"]
            if any(len(c) for c in ids):
                return False
            sender = next((v for c in ids if (v := _clean(c.text))), None)
        ctx = self._ctx
        ctx.version = ctx.summary.version = version_of(t.ns)
        ctx.summary.messages += 1
        ctx.verb, ctx.sender = t.verb_noun, sender
        for u in units:
            self._unit(u)
            ctx.summary.units += 1
        return True

    def _walk(self, events: Iterable[tuple[str, Any]], streamed: bool = True) -> None:
        """Map each unit at its end tag, report what is not mapped, free memory as it goes.

        ``events`` are those of :data:`EVENT_TAGS` only (nouns, verb wrappers, ApplicationArea):
        lxml does not hand the elements inside a unit to Python one by one. What else sits in
        a container or verb wrapper (context values, unmapped B2MML elements, vendor extensions)
        is swept when that holder ends, and what is outside every holder when the file ends.
        """
        ctx = self._ctx
        unit: Any = None
        open_: set[Any] = set()  # container / verb elements being read (not inside a skipped one)
        tags = TAG_FACTS
        for event, el in events:
            if event == "done":  # the root, after the last element
                self._sweep(el, False, True)
                break
            if unit is not None:
                if el is unit:  # its end: a unit's start is what set it
                    self._unit(el)
                    ctx.summary.units += 1
                    unit = None
                    if streamed:  # a whole tree is dropped with its file (detaching costs a subtree walk)
                        parent = el.getparent()
                        if parent is not None:
                            parent.remove(el)
                continue
            t = tags.get(el.tag) or tag_facts(el.tag)
            if not t.b2:
                continue
            if event == "start":
                if self._skipped(el, open_):
                    continue
                if t.ns and ctx.version is None:
                    ctx.version = ctx.summary.version = version_of(t.ns)
                if t.verb_noun is None and t.local not in NOUNS:
                    continue  # ApplicationArea: read at its end
                if not open_:
                    ctx.summary.messages += 1
                    ctx.verb, ctx.sender = t.verb_noun, None
                elif t.verb_noun is not None:
                    ctx.verb, ctx.sender = t.verb_noun, None
                if t.local in UNITS:
                    unit = el
                else:
                    open_.add(el)
                continue
            # end
            if el in open_:
                open_.discard(el)
                self._sweep_children(el, True)
                if streamed:
                    parent = el.getparent()
                    if parent is not None:
                        parent.remove(el)
            elif t.local == "ApplicationArea" and not self._skipped(el, open_):
                sender = R(el, ReadElements()).kid("Sender")
                ctx.sender = sender.text("LogicalID") if sender else None

    def _skipped(self, el: Any, open_: set[Any]) -> bool:
        """Whether ``el`` is inside (or is) an element the walk does not read: a B2MML element
        that is neither a noun nor a context value of its container, or the non-noun root."""
        cur = el
        while cur is not None and cur not in open_:
            parent = cur.getparent()
            t = tag_facts(cur.tag)
            if t.b2 and t.verb_noun is None and t.local not in NOUNS:
                if parent is None:
                    return True
                pt = tag_facts(parent.tag)
                if (not pt.b2 or pt.local in CONTAINERS or pt.verb_any) and t.local not in CONTEXT:
                    return True
            cur = parent
        return False

    def _sweep_children(self, el: Any, holder: bool) -> None:
        for c in el:
            self._sweep(c, holder, False)

    def _sweep(self, el: Any, parent_holder: bool, is_root: bool) -> None:
        """Report what is left of a holder once its nouns were mapped: B2MML elements that are
        not nouns (skipped whole) and foreign leaves with text."""
        t = tag_facts(el.tag)
        if t is NO_TAG:
            return
        ctx = self._ctx
        if t.b2:
            if t.ns and ctx.version is None:
                ctx.version = ctx.summary.version = version_of(t.ns)
            if t.verb_noun is not None or t.local in NOUNS:
                return  # read already (or inside an element reported as skipped)
            if is_root or (parent_holder and t.local not in CONTEXT):
                self.unmapped.add(Origin(ctx.file, el.sourceline or 0, element_path(el)),
                                  f"B2MML element {t.local!r} is not a mapped noun")
                return
            holder = t.local in CONTAINERS or t.verb_any
        else:
            if not len(el) and el.text and el.text.strip():
                self.unmapped.add(Origin(ctx.file, el.sourceline or 0, element_path(el)),
                                  f"element in foreign namespace {t.ns!r} outside B2MML: not mapped")
            holder = True
        self._sweep_children(el, holder)

    # -- units ------------------------------------------------------------------------------------
    def _origin(self, r: R | Any) -> Origin:
        el = r.el if isinstance(r, R) else r
        return Origin(self._ctx.file, el.sourceline or 0, self._used.path(el))

    def _holder(self, el: Any) -> R:
        """A view of the container ``el`` around a unit, for its context values: marks in it
        are not reported (the container is swept when it ends). One per container and file when
        the file is parsed whole, so a container of many units is indexed once, not per unit."""
        cache = self._ctx.holders
        if cache is None:
            return R(el, ReadElements())
        got = cache.get(el)
        if got is None:
            got = cache[el] = R(el, ReadElements())
        return got

    def _unit(self, el: Any) -> None:
        local = local_name(el)
        verb = self._ctx.verb
        if verb not in ("Get", "Acknowledge", "Cancel"):
            plain = _PLAIN.get(local)
            if plain is not None and plain(self, el):
                return  # read as a plain-shaped unit: the same calls as the handler below
        self._used = ReadElements()
        r = R(el, self._used)
        if verb in ("Get", "Acknowledge"):
            self.notes.add(self._origin(r), f"{verb} message: a query or acknowledgement, no data imported")
            self._mark_all(el)
            return
        if verb == "Cancel" and local not in ("ProductionRequest", "OperationsRequest"):
            self.unmapped.add(self._origin(r), f"Cancel{local}: cancelling a {local} is not mapped "
                                               "(end the entity with valid_to in a bundle instead)")
            self._mark_all(el)
            return
        handler = getattr(self, "_u_" + local)
        try:
            handler(r)
        except V.ValueProblem as exc:  # pragma: no cover - handlers catch their own value problems
            self.errors.append(Problem(file=self._ctx.file, line=r.line, path=element_path(el), message=str(exc)))
        self._report_unused(el)

    def _mark_all(self, el: Any) -> None:
        self._used.els.update(el.iter())

    def _report_unused(self, el: Any) -> None:
        """Every element of the unit the mapping did not read, at the top of its unread subtree,
        in document order."""
        used = self._used.els
        for c in el.iter():
            if c in used:
                continue
            parent = c.getparent()
            if parent not in used:
                continue  # inside an unread element already reported
            t = tag_facts(c.tag)
            if t is NO_TAG:
                continue
            if not t.b2:
                why = f"vendor extension element (namespace {t.ns!r}): no ontology counterpart"
            elif t.local in ("Extension", "Any"):
                why = "extension element: no ontology counterpart"
            else:
                why = f"B2MML element {t.local!r} has no counterpart in the ontology mapping"
            self.unmapped.add(Origin(self._ctx.file, c.sourceline or 0, self._used.path(c)), why)

    # shared readers --------------------------------------------------------------------------
    def _iso(self, text: str) -> str:
        """``parse_datetime(text, default_tz).isoformat()``, once per distinct text (about a third
        of the date-times of a corpus repeat); a text that does not parse raises every time."""
        got = self._isos.get(text)
        if got is None:
            got = V.parse_datetime(text, self.default_tz).isoformat()
            if len(self._isos) >= _ISO_CACHE:
                self._isos.clear()
            self._isos[text] = got
        return got

    def _dt(self, r: R | None, *names: str) -> str | None:
        if r is None:
            return None
        el = r.kid_el(*names)
        if el is None:
            return None
        t = R(el, r.used).value() if len(el) else _clean(el.text)
        if t is None:
            return None
        try:
            return self._iso(t)
        except V.ValueProblem as exc:
            self.errors.append(Problem(file=self._ctx.file, line=int(el.sourceline or 0), path=element_path(el),
                                       message=str(exc)))
            return None

    def _quantity(self, r: R) -> tuple[float | None, str | None]:
        for q in r.kids("Quantity"):
            s = q.text("QuantityString")
            unit = q.text("UnitOfMeasure")
            q.mark("DataType", "Key")
            if s is None:
                s = V.clean_id(q.el.text) if not len(q.el) else None
            if s is None:
                continue
            try:
                return V.parse_quantity(s), unit
            except V.ValueProblem as exc:
                self.errors.append(Problem(file=self._ctx.file, line=q.line, path=element_path(q.el),
                                           message=str(exc)))
                return None, unit
        return None, None

    def _scope(self, r: R) -> list[_ScopeLevel]:
        """The equipment chain of a Location / HierarchyScope, top-down, as written."""
        out: list[_ScopeLevel] = []
        node = r.kid("HierarchyScope", "Location")
        while node is not None:
            out.append((node.text("EquipmentID"), node.text("EquipmentElementLevel", "EquipmentLevel"),
                        self._origin(node)))
            node = node.kid("HierarchyScopeChild", "Location", "HierarchyScope")
        return out

    def _chain(self, r: R) -> tuple[str | None, tuple[str, str] | None]:
        """Registers the equipment named by a Location/HierarchyScope chain (implicitly) and
        returns (plant site id, the deepest (id, class))."""
        return self._chain_of(self._scope(r))

    def _chain_of(self, scope: list[_ScopeLevel]) -> tuple[str | None, tuple[str, str] | None]:
        """``_chain`` of a chain as written (``_scope``)."""
        chain: list[tuple[str, str | None, Origin]] = []
        for eid, lvl, origin in scope:
            if eid:
                cls = V.level_class(lvl)
                if cls is None and lvl:
                    self.unmapped.add(origin, f"equipment level {lvl!r} has no ontology class")
                chain.append((eid, cls, origin))
        site = None
        prev: tuple[str, str] | None = None
        for eid, cls, origin in chain:
            if cls is None:
                prev = None
                continue
            if cls == "Site":
                site = eid
            plant = site if cls != "Enterprise" else None
            self.batch.add_node(cls, eid, origin, props={"plant": plant}, explicit=False)
            if prev is not None:
                rel = V.HIERARCHY_REL.get((prev[1], cls))
                if rel is not None:
                    self._edge(prev[0], rel, eid, origin)
            prev = (eid, cls)
        return site, prev

    def _props(self, r: R, names: Sequence[str], cls: str, out: dict[str, Any]) -> None:
        """``*Property`` elements whose ID names an ontology field of ``cls`` -> ``out``."""
        kinds = field_kinds(cls)
        for p in r.kids(*names):
            pid = p.text("ID")
            vals = p.texts("Value")
            p.mark("Description")
            key = _snake(pid) if pid else ""
            kind = kinds.get(key)
            if kind is None:
                self.unmapped.add(self._origin(p), f"{cls} has no property {pid!r}")
                continue
            if not vals:
                continue
            try:
                if kind == "datetime":
                    out[key] = self._iso(vals[0])
                elif kind == "list":
                    out[key] = [x for v in vals for x in _BAR.split(v) if x]
                elif kind == "number":
                    out[key] = V.parse_quantity(vals[0])
                else:
                    out[key] = vals[0]
            except V.ValueProblem as exc:
                self.errors.append(Problem(file=self._ctx.file, line=p.line, path=element_path(p.el),
                                           message=f"property {pid}: {exc}"))

    def _common(self, r: R, props: dict[str, Any]) -> None:
        props["name"] = r.text("Description")
        r.mark("Description")
        props["valid_from"] = self._dt(r, "EffectiveStartDate")
        props["valid_to"] = self._dt(r, "EffectiveEndDate")
        if self._ctx.sender:
            props["source_system"] = self._ctx.sender

    def _edge(self, src: str, rel: str, dst: str, origin: Origin, props: dict[str, Any] | None = None) -> None:
        """An edge, attributed to the message's sender when it names one."""
        p = dict(props) if props else {}
        if self._ctx.sender:
            p.setdefault("source_system", self._ctx.sender)
        self.batch.add_edge(src, rel, dst, origin, props=p)

    def _need_id(self, r: R, what: str) -> str | None:
        i = r.text("ID")
        if i is None:
            self.errors.append(Problem(file=self._ctx.file, line=r.line, path=element_path(r.el),
                                       message=f"{what} without an ID: expected a non-empty <ID>"))
        return i

    # equipment ------------------------------------------------------------------------------------
    def _u_Equipment(self, r: R, parent: tuple[str, str] | None = None, plant: str | None = None) -> None:
        eid = self._need_id(r, "Equipment")
        if eid is None:
            return
        props: dict[str, Any] = {}
        self._common(r, props)
        level = r.text("EquipmentLevel", "EquipmentElementLevel")
        site, deepest = self._chain(r)
        if parent is None and deepest is not None and deepest[0] != eid:
            parent = deepest
        plant = plant or site
        cls = V.level_class(level)
        if cls is None and level is None and parent is not None and parent[1] in V.CHILD_CLASS:
            cls = V.CHILD_CLASS[parent[1]]
            self.notes.add(self._origin(r), f"equipment level not given: inferred {cls} from its parent")
        if cls is None:
            why = (f"equipment level {level!r} has no ontology class" if level
                   else "equipment level not given and no parent to infer it from")
            self.unmapped.add(self._origin(r), why)
            self._mark_all(r.el)
            return
        classes = r.texts("EquipmentClassID")
        if cls == "Machine" and classes:
            props["equipment_class"] = classes[0]
        elif classes:
            self.unmapped.add(self._origin(r), f"EquipmentClassID on a {cls}: only machines carry a class")
        self._props(r, ("EquipmentProperty",), cls, props)
        if cls == "Site":
            plant = eid
        props["plant"] = plant if cls != "Enterprise" else None
        self.batch.add_node(cls, eid, self._origin(r), props=props)
        if parent is not None:
            rel = V.HIERARCHY_REL.get((parent[1], cls))
            if rel is None:
                self.unmapped.add(self._origin(r), f"a {cls} cannot sit directly under a {parent[1]} "
                                                   f"({parent[0]!r}) in the ontology hierarchy")
            else:
                self._edge(parent[0], rel, eid, self._origin(r))
        for child in r.kids("EquipmentChild", "Equipment"):
            self._u_Equipment(child, (eid, cls), plant)

    def _u_EquipmentClass(self, r: R) -> None:
        cid = self._need_id(r, "EquipmentClass")
        if cid is None:
            return
        for eid in r.texts("EquipmentID", "EquipmentSourceID"):
            self._patches.append(_Patch(eid, "Machine", {"equipment_class": cid}, self._origin(r),
                                        f"EquipmentClass {cid!r} lists equipment"))
        for child in r.kids("EquipmentClassChild"):
            self._u_EquipmentClass(child)
        self.notes.add(self._origin(r), "EquipmentClass: kept as Machine.equipment_class of its members")

    # material ---------------------------------------------------------------------------------------
    def _u_MaterialClass(self, r: R) -> None:
        cid = self._need_id(r, "MaterialClass")
        if cid is None:
            return
        for mid in r.texts("MaterialDefinitionID", "MaterialDefinitionSourceID"):
            self._patches.append(_Patch(mid, "Material", {"material_class": cid}, self._origin(r),
                                        f"MaterialClass {cid!r} lists material"))
        for md in r.kids("MaterialDefinition"):
            self._u_MaterialDefinition(md, material_class=cid)
        self.notes.add(self._origin(r), "MaterialClass: kept as Material.material_class of its members")

    def _u_MaterialDefinition(self, r: R, material_class: str | None = None) -> None:
        mid = self._need_id(r, "MaterialDefinition")
        if mid is None:
            return
        props: dict[str, Any] = {}
        self._common(r, props)
        classes = r.texts("MaterialClassID")
        props["material_class"] = classes[0] if classes else material_class
        self._props(r, ("MaterialDefinitionProperty",), "Material", props)
        if "kind" in props:
            k = V.material_kind(str(props["kind"]))
            if k is None:
                self.unmapped.add(self._origin(r), f"material kind {props['kind']!r} not one of raw, "
                                                   "intermediate, finished")
                del props["kind"]
            else:
                props["kind"] = k
        defaults: dict[str, Any] = {}
        if "kind" not in props:
            guess = next((k for c in classes if (k := V.material_kind(c))), None)
            defaults["kind"] = guess or "raw"
            if guess is None:
                self.notes.add(self._origin(r), "material kind not given: assumed raw")
        site, _ = self._chain(r)
        props["plant"] = site
        self.batch.add_node("Material", mid, self._origin(r), props=props, defaults=defaults)
        for lot_id in r.texts("MaterialLotID"):
            self._edge(lot_id, "FOR_MATERIAL", mid, self._origin(r))
        for lot in r.kids("MaterialLot"):
            self._u_MaterialLot(lot, material=mid)

    def _u_MaterialLot(self, r: R, material: str | None = None, parent_lot: str | None = None,
                       explicit: bool = True) -> str | None:
        lid = self._need_id(r, "MaterialLot" if parent_lot is None else "MaterialSubLot")
        if lid is None:
            return None
        props: dict[str, Any] = {}
        self._common(r, props)
        material = r.text("MaterialDefinitionID") or material
        for sk in r.kids("Status", "Disposition"):
            s = sk.value()
            if s is None:
                continue
            try:
                props["status"] = V.lot_status(s)
                break
            except V.ValueProblem as exc:
                self.unmapped.add(self._origin(sk), f"{exc}: status left unchanged")
        qty, unit = self._quantity(r)
        props["quantity"], props["unit"] = qty, unit
        self._props(r, ("MaterialLotProperty", "MaterialSublotProperty", "MaterialSubLotProperty"), "Lot", props)
        site, _ = self._chain(r)
        props["plant"] = site
        origin = self._origin(r)
        self.batch.add_node("Lot", lid, origin, props=props, explicit=explicit)
        if material:
            self._edge(lid, "FOR_MATERIAL", material, origin)
        parent_lot = parent_lot or (r.text("MaterialLotID") if parent_lot is None and local_name(r.el) ==
                                    "MaterialSubLot" else None)
        if parent_lot:
            self._edge(lid, "DERIVED_FROM", parent_lot, origin,
                                props={"quantity": qty, "unit": unit})
            if qty is None:
                self._assembly.append((lid, parent_lot, origin))
        for sub in r.kids("MaterialSubLot", "MaterialSubLotChild"):
            sid = self._u_MaterialLot(sub, parent_lot=lid)
            if sid is not None:
                self._sublots.append((sid, lid, self._origin(sub)))
        for comp in r.texts("AssemblyLotID", "AssemblySubLotID"):
            self._edge(lid, "DERIVED_FROM", comp, origin)
            self._assembly.append((lid, comp, origin))
        for comp_r in r.kids("AssemblyLot", "AssemblySubLot"):
            has_qty = comp_r.kid("Quantity") is not None
            cid = self._u_MaterialLot(comp_r, explicit=has_qty and comp_r.kid("MaterialDefinitionID") is not None)
            if cid is not None:
                cq, cu = self._quantity(comp_r)
                self._edge(lid, "DERIVED_FROM", cid, self._origin(comp_r),
                                    props={"quantity": cq, "unit": cu})
                if cq is None:
                    self._assembly.append((lid, cid, self._origin(comp_r)))
        r.mark("AssemblyType", "AssemblyRelationship")
        return lid

    def _u_MaterialSubLot(self, r: R) -> None:
        parent = r.text("MaterialLotID")
        if parent is None:
            self.unmapped.add(self._origin(r), "MaterialSubLot without MaterialLotID outside its lot: "
                                               "imported as a lot without a parent")
        self._u_MaterialLot(r, parent_lot=parent)

    # personnel --------------------------------------------------------------------------------------
    def _u_Person(self, r: R) -> None:
        pid = self._need_id(r, "Person")
        if pid is None:
            return
        props: dict[str, Any] = {}
        self._common(r, props)
        props["name"] = r.text("PersonName") or props.get("name")
        classes = r.texts("PersonnelClassID")
        self._props(r, ("PersonProperty",), "Person", props)
        defaults: dict[str, Any] = {}
        if "role" not in props:
            if classes:
                props["role"] = classes[0]
            else:
                defaults["role"] = "unspecified"
                self.notes.add(self._origin(r), "person without role or PersonnelClassID: role 'unspecified'")
        site, _ = self._chain(r)
        props["plant"] = site
        self.batch.add_node("Person", pid, self._origin(r), props=props, defaults=defaults)
        if site:
            self._edge(pid, "WORKS_AT", site, self._origin(r))

    def _u_PersonnelClass(self, r: R) -> None:
        cid = self._need_id(r, "PersonnelClass")
        if cid is None:
            return
        for pid in r.texts("PersonID"):
            self._patches.append(_Patch(pid, "Person", {"role": cid}, self._origin(r),
                                        f"PersonnelClass {cid!r} lists person"))
        self.notes.add(self._origin(r), "PersonnelClass: kept as Person.role of its members")

    # production ----------------------------------------------------------------------------------------
    def _operations_type_ok(self, r: R) -> bool:
        ot = r.text("OperationsType")
        if ot is not None and ot.lower() not in ("production", "mixed"):
            self.unmapped.add(self._origin(r), f"OperationsType {ot!r}: only production operations are mapped")
            self._mark_all(r.el)
            return False
        return True

    def _segments(self, r: R, *names: str) -> list[R]:
        out: list[R] = []
        todo = r.kids(*names)
        while todo:
            s = todo.pop(0)
            out.append(s)
            todo.extend(s.kids(*names, "SegmentRequirementChild", "SegmentResponseChild"))
        return out

    def _material_uses(self, seg: R) -> list[tuple[str, R]]:
        out: list[tuple[str, R]] = []
        for m in seg.kids("MaterialProducedRequirement", "MaterialProducedActual"):
            out.append(("produced", m))
        for m in seg.kids("MaterialConsumedRequirement", "MaterialConsumedActual"):
            out.append(("consumed", m))
        for m in seg.kids("MaterialRequirement", "MaterialActual"):
            out.append((P.use_of(m.text("MaterialUse") or ""), m))
        return out

    def _u_ProductionRequest(self, r: R) -> None:
        if not self._operations_type_ok(r):
            return
        oid = self._need_id(r, "ProductionRequest")
        if oid is None:
            return
        origin = self._origin(r)
        container = r.el.getparent()
        cr = self._holder(container) if container is not None and local_name(container) in CONTAINERS else None
        props: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        self._common(r, props)
        segs = self._segments(r, "SegmentRequirement")
        starts = [t for s in segs if (t := self._dt(s, "EarliestStartTime"))]
        ends = [t for s in segs if (t := self._dt(s, "LatestEndTime"))]
        props["valid_from"] = props.get("valid_from") or self._dt(cr, "PublishedDate")
        props["planned_start"] = self._dt(r, "StartTime") or _first(starts) or self._dt(cr, "StartTime")
        props["planned_end"] = self._dt(r, "EndTime") or _last(ends) or self._dt(cr, "EndTime", "Endtime")
        state = r.text("RequestState")
        if self._ctx.verb == "Cancel":
            props["status"] = "cancelled"
        elif state:
            try:
                defaults["status"] = V.order_status(state)
            except V.ValueProblem as exc:
                self.unmapped.add(self._origin(r), f"{exc}: status left unchanged")
        if r.text("Priority"):
            self.unmapped.add(self._origin(r.kid("Priority") or r), "Priority: production orders carry no priority")
        ops = [s.texts("ProcessSegmentID", "ProductSegmentID", "OperationsSegmentID") for s in segs]
        site, deepest = self._chain(r)
        if site is None and cr is not None:
            site, deepest2 = self._chain(cr)
            deepest = deepest or deepest2
        self._emit_request(oid, origin, props, defaults, ops, site, deepest,
                           [self._requirement_segment(s) for s in segs])
        for resp in r.kids("SegmentResponse"):
            self._actuals(oid, [resp, *self._segments(resp, "SegmentResponse")], origin)

    _u_OperationsRequest = _u_ProductionRequest

    def _emit_request(self, oid: str, origin: Origin, props: dict[str, Any], defaults: dict[str, Any],
                      ops: list[list[str]], site: str | None, deepest: tuple[str, str] | None,
                      segs: list[_RequiredSegment]) -> None:
        """The planned order, once its times and status are in ``props``/``defaults``: its
        operations (each segment's, in order, once), plant, planned lines, quantity and material."""
        seen: list[str] = []
        for seg_ops in ops:
            for op in seg_ops:
                if op not in seen:
                    seen.append(op)
        if seen:
            props["operations"] = seen
        props["plant"] = site
        qty, unit, material = self._emit_requirements(oid, segs)
        if qty > 0:
            props["quantity"] = qty
        props["unit"] = unit
        if deepest is not None and deepest[1] in ("Line", "Machine"):
            self._equip_refs.append(_EquipRef(oid, deepest[0], origin, actual=False))
        self.batch.add_node("ProductionOrder", oid, origin, props=props, defaults=defaults)
        if material:
            self._edge(oid, "FOR_MATERIAL", material, origin)

    def _requirement_segment(self, s: R) -> _RequiredSegment:
        """What a segment requirement asks for: material uses (only a produced one's quantity,
        material and lots are read) and equipment."""
        materials: list[tuple[str, float | None, str | None, str | None, list[str], Origin]] = []
        for use, m in self._material_uses(s):
            if use == "produced":
                q, u = self._quantity(m)
                mat = m.text("MaterialDefinitionID")
                m.mark("MaterialUse", "Description", "ID")
                materials.append((use, q, u, mat, m.texts("MaterialLotID", "MaterialSubLotID"), self._origin(m)))
            else:
                materials.append((use, None, None, None, [], self._origin(m)))
        equipment = []
        for eq in s.kids("EquipmentRequirement"):
            equipment.append((eq.texts("EquipmentID"), self._origin(eq)))
            eq.mark("ID", "Description", "EquipmentLevel", "EquipmentUse")
        s.mark("ID", "Description", "EarliestStartTime", "LatestEndTime", "Duration", "OperationsDefinitionID",
               "SegmentState", "OperationsType")
        return materials, equipment

    def _emit_requirements(self, oid: str, segs: list[_RequiredSegment]) -> tuple[float, str | None, str | None]:
        """The planned lines of an order; returns its quantity, unit and material."""
        qty = 0.0
        unit = None
        material = None
        for materials, equipment in segs:
            for use, q, u, mat, lots, mo in materials:
                if use != "produced":
                    self.unmapped.add(mo, f"material requirement ({use}): the ontology has no planned-consumption "
                                          "relation")
                    continue
                if q is not None:
                    qty += q
                unit = unit or u
                if mat and material is None:
                    material = mat
                elif mat and mat != material:
                    self.unmapped.add(mo, f"second produced material {mat!r}: an order makes one material")
                for lot in lots:
                    self.unmapped.add(mo, f"planned output lot {lot!r}: planned lots are not mapped")
            for eids, eo in equipment:
                for eid in eids:
                    self._equip_refs.append(_EquipRef(oid, eid, eo, actual=False))
        return qty, unit, material


    def _u_ProductionResponse(self, r: R) -> None:
        if not self._operations_type_ok(r):
            return
        rid = self._need_id(r, "ProductionResponse")
        if rid is None:
            return
        oid = r.text("ProductionRequestID", "OperationsRequestID") or rid
        origin = self._origin(r)
        segs = self._segments(r, "SegmentResponse")
        starts = [t for s in segs if (t := self._dt(s, "ActualStartTime"))]
        ends = [t for s in segs if (t := self._dt(s, "ActualEndTime"))]
        props: dict[str, Any] = {}
        r.mark("Description")
        props["actual_start"] = self._dt(r, "StartTime") or _first(starts)
        props["actual_end"] = self._dt(r, "EndTime") or _last(ends)
        state = r.text("ResponseState")
        if state:
            try:
                props["status"] = V.order_status(state)
            except V.ValueProblem as exc:
                self.unmapped.add(self._origin(r), f"{exc}: status inferred from the actual times")
        if "status" not in props:
            props["status"] = "completed" if props["actual_end"] else "running"
        site, _ = self._chain(r)
        container = r.el.getparent()
        if site is None and container is not None and local_name(container) in CONTAINERS:
            site, _ = self._chain(self._holder(container))
        produced_qty, unit = self._actuals(oid, segs, origin)
        defaults: dict[str, Any] = {
            "planned_start": props["actual_start"], "planned_end": props["actual_end"] or props["actual_start"],
            "quantity": produced_qty or None, "unit": unit, "plant": site,
        }
        if self._ctx.sender:
            props["source_system"] = self._ctx.sender
        self.batch.add_node("ProductionOrder", oid, origin, props=props, defaults=defaults)

    _u_OperationsResponse = _u_ProductionResponse

    def _actuals(self, oid: str, segs: list[R], origin: Origin) -> tuple[float, str | None]:
        return self._emit_actuals(oid, [self._actual_segment(s) for s in segs])

    def _actual_segment(self, s: R) -> _ActualSegment:
        """What a segment response says: its times, material uses, equipment and personnel."""
        s_start = self._dt(s, "ActualStartTime")
        s_end = self._dt(s, "ActualEndTime")
        s.mark("ID", "Description", "ProcessSegmentID", "ProductSegmentID", "OperationsSegmentID",
               "SegmentState", "PostingDate", "OperationsType", "OperationsDefinitionID")
        materials = []
        for use, m in self._material_uses(s):
            q, u = self._quantity(m)
            mat = m.text("MaterialDefinitionID")
            lots = m.texts("MaterialLotID", "MaterialSubLotID")
            m.mark("MaterialUse", "Description", "ID")
            materials.append((use, q, u, mat, lots, self._origin(m)))
        equipment = []
        for eq in s.kids("EquipmentActual"):
            equipment.append((eq.texts("EquipmentID"), self._origin(eq)))
            eq.mark("ID", "Description", "EquipmentLevel", "EquipmentUse")
        personnel = []
        for pa in s.kids("PersonnelActual"):
            personnel.append((pa.texts("PersonID"), self._origin(pa)))
            pa.mark("ID", "Description", "PersonnelUse")
        return s_start, s_end, materials, equipment, personnel

    def _emit_actuals(self, oid: str, segs: list[_ActualSegment]) -> tuple[float, str | None]:
        """The order's produced and consumed lots, machines run and people, segment by segment;
        returns the quantity produced and its unit."""
        produced_qty = 0.0
        unit: str | None = None
        edge = self._edge
        for s_start, s_end, materials, equipment, personnel in segs:
            for use, q, u, mat, lots, mo in materials:
                if use not in ("produced", "consumed"):
                    self.unmapped.add(mo, f"material actual ({use}): only produced and consumed are mapped")
                    continue
                if not lots:
                    self.unmapped.add(mo, f"{use} material without MaterialLotID: genealogy is lot-based")
                    continue
                if use == "produced":
                    produced_qty += q or 0.0
                    unit = unit or u
                    if mat:
                        edge(oid, "FOR_MATERIAL", mat, mo)
                rel = "PRODUCED" if use == "produced" else "CONSUMED"
                for lot in lots:
                    self.batch.add_node("Lot", lot, mo, explicit=False, defaults={
                        "quantity": q, "unit": u,
                        "__produced_at": s_end if use == "produced" else None,
                    })
                    if mat:
                        edge(lot, "FOR_MATERIAL", mat, mo)
                    edge(oid, rel, lot, mo, props={"quantity": q, "unit": u})
            for eids, eo in equipment:
                for eid in eids:
                    self._equip_refs.append(_EquipRef(oid, eid, eo, True, s_start, s_end))
            for pids, po in personnel:
                for pid in pids:
                    edge(oid, "OPERATED_BY", pid, po)
        return produced_qty, unit

    # -- plain-shaped units ---------------------------------------------------------------------------
    # Most of a big import is a few nouns written the same way each time. A unit of one of them
    # whose every element is one the handler reads, in the form it reads it (a leaf where it
    # reads text, one element where it reads one, one namespace), is read here straight off the
    # tree: the same calls as the handler, in the same order, without the element views and the
    # read-element bookkeeping (nothing is left to report). Anything else, and the reader returns
    # False before its first call; the handler then reads the unit.

    def _plain_response(self, el: Any) -> bool:
        """A ProductionResponse / OperationsResponse of segment responses with material,
        equipment and personnel actuals (what :meth:`_u_ProductionResponse` reads)."""
        top = _production_kids(el, P.RESPONSE)
        if top is None:
            return False
        rid = P.leaf_text(top, "ID")
        if rid is None or ("ProductionRequestID" in top and "OperationsRequestID" in top):
            return False
        oid = P.leaf_text(top, "ProductionRequestID") or P.leaf_text(top, "OperationsRequestID") or rid
        state = P.leaf_text(top, "ResponseState")
        self._used = ReadElements()
        path = self._used.path(el)
        try:
            status = V.order_status(state) if state else None
            start = self._plain_time(top, "StartTime")
            end = self._plain_time(top, "EndTime")
            seg_path = child_path(path, "SegmentResponse")
            segs = [self._plain_segment(s, seg_path) for s in top.get("SegmentResponse", ())]
        except (V.ValueProblem, P.NotPlain):
            return False
        origin = Origin(self._ctx.file, el.sourceline or 0, path)
        container = el.getparent()
        site = None
        if container is not None and local_name(container) in CONTAINERS:
            site, _ = self._chain(self._holder(container))
        self._emit_response(oid, origin, status, start, end, segs, site)
        return True

    def _emit_response(self, oid: str, origin: Origin, status: str | None, start: str | None, end: str | None,
                       segs: list[_ActualSegment], site: str | None) -> None:
        """The calls ``_u_ProductionResponse`` makes for a response read, once its site is known."""
        produced_qty, unit = self._emit_actuals(oid, segs)
        props: dict[str, Any] = {}
        props["actual_start"] = start or _first([t for t, *_ in segs if t])
        props["actual_end"] = end or _last([t for _, t, *_ in segs if t])
        if status is not None:
            props["status"] = status
        else:
            props["status"] = "completed" if props["actual_end"] else "running"
        defaults: dict[str, Any] = {
            "planned_start": props["actual_start"], "planned_end": props["actual_end"] or props["actual_start"],
            "quantity": produced_qty or None, "unit": unit, "plant": site,
        }
        if self._ctx.sender:
            props["source_system"] = self._ctx.sender
        self.batch.add_node("ProductionOrder", oid, origin, props=props, defaults=defaults)

    def _plain_request(self, el: Any) -> bool:
        """A ProductionRequest / OperationsRequest of segment requirements with produced
        material and equipment requirements, scoped by its container (what
        :meth:`_u_ProductionRequest` reads)."""
        top = _production_kids(el, P.REQUEST)
        if top is None:
            return False
        oid = P.leaf_text(top, "ID")
        if oid is None:
            return False
        state = P.leaf_text(top, "RequestState")
        self._used = ReadElements()
        path = self._used.path(el)
        try:
            status = V.order_status(state) if state else None
            valid_from = self._plain_time(top, "EffectiveStartDate")
            valid_to = self._plain_time(top, "EffectiveEndDate")
            start = self._plain_time(top, "StartTime")
            end = self._plain_time(top, "EndTime")
            segs = [self._plain_requirement(s, child_path(path, "SegmentRequirement"))
                    for s in top.get("SegmentRequirement", ())]
        except (V.ValueProblem, P.NotPlain):
            return False
        origin = Origin(self._ctx.file, el.sourceline or 0, path)
        container = el.getparent()
        cr = self._holder(container) if container is not None and local_name(container) in CONTAINERS else None
        valid_from = valid_from or self._dt(cr, "PublishedDate")
        planned_start = start or _first([t for t, *_ in segs if t]) or self._dt(cr, "StartTime")
        planned_end = end or _last([t for _, t, *_ in segs if t]) or self._dt(cr, "EndTime", "Endtime")
        self._emit_plain_request(oid, origin, P.leaf_text(top, "Description"), valid_from, valid_to, planned_start,
                                 planned_end, status, segs, self._scope(cr) if cr is not None else [])
        return True

    def _emit_plain_request(self, oid: str, origin: Origin, name: str | None, valid_from: str | None,
                            valid_to: str | None, planned_start: str | None, planned_end: str | None,
                            status: str | None, segs: list[tuple[str | None, str | None, list[str], _RequiredSegment]],
                            scope: list[_ScopeLevel]) -> None:
        """The calls ``_u_ProductionRequest`` makes for a plain request read (by either reader),
        once its times are resolved against its container: the order, its container's equipment
        chain, its operations, lines and material."""
        props: dict[str, Any] = {"name": name, "valid_from": valid_from, "valid_to": valid_to}
        if self._ctx.sender:
            props["source_system"] = self._ctx.sender
        props["planned_start"] = planned_start
        props["planned_end"] = planned_end
        defaults: dict[str, Any] = {} if status is None else {"status": status}
        site, deepest = self._chain_of(scope)
        self._emit_request(oid, origin, props, defaults, [seg[2] for seg in segs], site, deepest,
                           [seg[3] for seg in segs])

    def _plain_requirement(self, seg: Any, path: str) -> tuple[str | None, str | None, list[str], _RequiredSegment]:
        """(earliest start, latest end, operations, ``_requirement_segment``) of a plain segment
        requirement at ``path``; raises :class:`~graph_loader.b2mml.plain.NotPlain` (or a value
        problem) for any other."""
        kids = P.children(seg, P.SEGMENT_REQUIREMENT)
        if kids is None:
            raise P.NotPlain
        ops = [t for c in seg if P.OPERATION_TAGS[c.tag] and (t := _clean(c.text))]
        materials = [self._plain_material(m, child_path(path, "MaterialRequirement"))
                     for m in kids.get("MaterialRequirement", ())]
        if any(use != "produced" for use, *_ in materials):
            raise P.NotPlain  # (what is not read of another use is reported element by element)
        equipment = self._plain_named(kids.get("EquipmentRequirement", ()), P.EQUIPMENT, "EquipmentID",
                                      child_path(path, "EquipmentRequirement"))
        return (self._plain_time(kids, "EarliestStartTime"), self._plain_time(kids, "LatestEndTime"), ops,
                (materials, equipment))

    def _plain_material(self, m: Any, path: str) -> tuple[str, float | None, str | None, str | None, list[str], Origin]:
        """A plain material requirement or actual at ``path``: (use, quantity, unit, material,
        lots, origin)."""
        mk = P.children(m, P.MATERIAL)
        if mk is None:
            raise P.NotPlain
        q, u = self._plain_quantity(mk)
        return (P.use_of(P.leaf_text(mk, "MaterialUse") or ""), q, u, P.leaf_text(mk, "MaterialDefinitionID"),
                P.lots(mk), Origin(self._ctx.file, m.sourceline or 0, path))

    def _plain_named(self, els: Sequence[Any], shape: P.Shape, name: str,
                     path: str) -> list[tuple[list[str], Origin]]:
        """(the ids each element names in its ``name`` children, its origin) of plain equipment
        or personnel elements at ``path``."""
        out = []
        for e in els:
            kids = P.children(e, shape)
            if kids is None:
                raise P.NotPlain
            out.append(([t for c in kids.get(name, ()) if (t := _clean(c.text))],
                        Origin(self._ctx.file, e.sourceline or 0, path)))
        return out

    def _plain_quantity(self, kids: dict[str, list[Any]]) -> tuple[float | None, str | None]:
        """``_quantity`` of a plain element: its one Quantity with a QuantityString."""
        quantity = kids.get("Quantity")
        if quantity is None:
            return None, None
        qk = P.children(quantity[0], P.QUANTITY)
        qs = None if qk is None else P.leaf_text(qk, "QuantityString")
        if qk is None or qs is None:
            raise P.NotPlain
        return V.parse_quantity(qs), P.leaf_text(qk, "UnitOfMeasure")

    def _plain_lot(self, el: Any) -> bool:
        """A MaterialLot with its properties, site and assembly lots (what :meth:`_u_MaterialLot`
        reads of a lot that is a unit of its own)."""
        try:
            plan = self._lot_plan(el)
        except (V.ValueProblem, P.NotPlain):
            return False
        self._used = used = ReadElements()
        self._emit_lot(plan, used.path(el), explicit=True)
        return True

    def _lot_plan(self, el: Any) -> _LotPlan:
        """What a plain lot (or assembly lot) says, read and checked before any call is made;
        raises :class:`~graph_loader.b2mml.plain.NotPlain` (or a value problem) when it is not plain."""
        kids = P.children(el, P.LOT)
        if kids is None:
            raise P.NotPlain
        lid = P.leaf_text(kids, "ID")
        if lid is None:
            raise P.NotPlain  # (reported as an error by the handler)
        status = None
        text = P.leaf_text(kids, "Status")
        if text is not None:
            status = V.lot_status(text)
        q, u = self._plain_quantity(kids)
        properties = []
        for p in kids.get("MaterialLotProperty", ()):
            pk = P.children(p, P.PROPERTY)
            if pk is None:
                raise P.NotPlain
            vals = [t for v in pk.get("Value", ()) if (t := P.value(v)) is not None]
            properties.append(self._lot_property(P.leaf_text(pk, "ID"), vals, p.sourceline or 0))
        scope = None
        hs = kids.get("HierarchyScope")
        if hs is not None:
            hk = P.children(hs[0], P.SCOPE)
            if hk is None or ("EquipmentLevel" in hk and "EquipmentElementLevel" in hk):
                raise P.NotPlain
            eid = P.leaf_text(hk, "EquipmentID")
            cls = V.level_class(P.leaf_text(hk, "EquipmentElementLevel") or P.leaf_text(hk, "EquipmentLevel"))
            if eid is None or cls is None:
                raise P.NotPlain
            scope = (eid, cls, hs[0].sourceline or 0)
        components = [self._lot_plan(c) for c in kids.get("AssemblyLot", ())]
        # (an assembly lot is an entity of its own when it says its quantity and material)
        whole = "Quantity" in kids and "MaterialDefinitionID" in kids
        return _LotPlan(el.sourceline or 0, lid, P.leaf_text(kids, "Description"),
                        self._plain_time(kids, "EffectiveStartDate"), self._plain_time(kids, "EffectiveEndDate"),
                        P.leaf_text(kids, "MaterialDefinitionID"), status, q, u, properties, scope, components, whole)

    def _lot_property(self, pid: str | None, vals: list[str], line: int) -> _LotProperty:
        """A ``MaterialLotProperty`` as read (by either reader): its ID, the field it names, that
        field's kind (None: the lot has no such field), whether it had values, the value, its line."""
        key = _snake(pid) if pid else ""
        kind = field_kinds("Lot").get(key)
        return pid, key, kind, bool(vals), self._property_value(kind, vals), line

    def _property_value(self, kind: str | None, vals: list[str]) -> Any:
        """A lot property's value as its field's kind reads it (None for no field or values)."""
        if kind is None or not vals:
            return None
        if kind == "datetime":
            return self._iso(vals[0])
        if kind == "list":
            return [x for v in vals for x in _BAR.split(v) if x]
        if kind == "number":
            return V.parse_quantity(vals[0])
        return vals[0]

    def _emit_lot(self, plan: _LotPlan, path: str, explicit: bool) -> str:
        """The calls ``_u_MaterialLot`` makes for the lot ``plan`` describes, in its order."""
        line, lid, name, valid_from, valid_to, material, status, q, u, properties, scope, components, _ = plan
        file = self._ctx.file
        props: dict[str, Any] = {"name": name, "valid_from": valid_from, "valid_to": valid_to}
        if self._ctx.sender:
            props["source_system"] = self._ctx.sender
        if status is not None:
            props["status"] = status
        props["quantity"], props["unit"] = q, u
        for pid, key, kind, has_vals, value, pline in properties:
            if kind is None:
                self.unmapped.add(Origin(file, pline, child_path(path, "MaterialLotProperty")),
                                  f"Lot has no property {pid!r}")
            elif has_vals:
                props[key] = value
        site = None
        if scope is not None:
            eid, cls, scope_line = scope
            site = eid if cls == "Site" else None
            self.batch.add_node(cls, eid, Origin(file, scope_line, child_path(path, "HierarchyScope")),
                                props={"plant": site if cls != "Enterprise" else None}, explicit=False)
        props["plant"] = site
        origin = Origin(file, line, path)
        self.batch.add_node("Lot", lid, origin, props=props, explicit=explicit)
        if material:
            self._edge(lid, "FOR_MATERIAL", material, origin)
        for comp in components:
            cpath = child_path(path, "AssemblyLot")
            cid = self._emit_lot(comp, cpath, explicit=comp.whole)
            co = Origin(file, comp.line, cpath)
            self._edge(lid, "DERIVED_FROM", cid, co, props={"quantity": comp.quantity, "unit": comp.unit})
            if comp.quantity is None:
                self._assembly.append((lid, cid, co))
        return lid

    def _plain_time(self, kids: dict[str, list[Any]], name: str) -> str | None:
        t = P.leaf_text(kids, name)
        return None if t is None else self._iso(t)

    def _plain_segment(self, seg: Any, path: str) -> _ActualSegment:
        """``_actual_segment`` of a plain segment response at ``path``; raises
        :class:`~graph_loader.b2mml.plain.NotPlain` (or a value problem) for any other."""
        kids = P.children(seg, P.SEGMENT_RESPONSE)
        if kids is None:
            raise P.NotPlain
        materials = [self._plain_material(m, child_path(path, "MaterialActual"))
                     for m in kids.get("MaterialActual", ())]
        equipment = self._plain_named(kids.get("EquipmentActual", ()), P.EQUIPMENT, "EquipmentID",
                                      child_path(path, "EquipmentActual"))
        personnel = self._plain_named(kids.get("PersonnelActual", ()), P.PERSONNEL, "PersonID",
                                      child_path(path, "PersonnelActual"))
        return (self._plain_time(kids, "ActualStartTime"), self._plain_time(kids, "ActualEndTime"),
                materials, equipment, personnel)

    # -- files the compiled reader read ----------------------------------------------------------------
    # The compiled reader (graph_loader/b2mml/native.py) reads a whole file as the plain readers
    # above would, and maps it as the emitters would: its calls are then only made here
    # (``_native_ops``). Where its mapping declines, it hands back what it read, texts and lines:
    # here those values are converted as the plain readers convert theirs, every unit before any
    # call is made, and the calls are made through the same emitters. A value that does not
    # convert, or a unit the Python reader would not take, and the file goes to lxml instead,
    # with nothing done yet.

    def _native_message(self, name: str, got: Any = _UNREAD) -> bool:
        """Reads the file ``name`` with the compiled reader (``got``: what it read ahead); False,
        having done nothing, when that reader does not take it or the plain readers would not
        read all of it."""
        assert self._native is not None
        if got is _UNREAD:
            got = self._native(name, TREE_BYTES, self._tz_minutes)
        if got is None:
            return False
        kind, ns, root, sender, body = got
        t = tag_facts("{" + ns + "}" + root)
        if not (t.b2 and t.ns and t.verb_noun is not None) or t.verb_noun in ("Get", "Acknowledge", "Cancel"):
            return False
        calls: list[Callable[[], Any]] = []
        if kind == "raw":
            units, contexts = body
            try:
                calls = [self._native_unit(k, path, line, contexts[i], unit) for k, path, line, i, unit in units]
            except (V.ValueProblem, P.NotPlain):
                return False
        ctx = self._ctx
        ctx.version = ctx.summary.version = version_of(t.ns)
        ctx.summary.messages += 1
        ctx.verb, ctx.sender = t.verb_noun, sender
        if kind == "ops":
            self._native_ops(body)
        for call in calls:
            call()
            ctx.summary.units += 1
        return True

    def _native_ops(self, ops: Any) -> None:
        """Makes the calls the compiled reader worked out for a message (``native.Mapped``)."""
        units, raw_paths, raw_origins, nodes, edges, refs, assembly = ops
        file = self._ctx.file
        paths = [intern_path(p) for p in raw_paths]
        origins = [Origin(file, line, paths[i]) for line, i in raw_origins]
        add_node, add_edge = self.batch.add_node, self.batch.add_edge
        for cls, node_id, o, props, defaults, explicit in nodes:
            add_node(cls, node_id, origins[o], props, defaults, explicit)
        for src, rel, dst, o, props in edges:
            add_edge(src, rel, dst, origins[o], props)
        self._equip_refs.extend(_EquipRef(order, eq, origins[o], actual, start, end)
                                for order, eq, o, actual, start, end in refs)
        self._assembly.extend((lot, comp, origins[o]) for lot, comp, o in assembly)
        self._ctx.summary.units += units

    def _native_unit(self, kind: str, path: str, line: int, context: Any, body: Any) -> Callable[[], Any]:
        """The calls for one unit the compiled reader read, its values converted now."""
        path = intern_path(path)
        file = self._ctx.file
        origin = Origin(file, line, path)
        if kind == "lot":
            plan = self._native_lot(body)
            return lambda: self._emit_lot(plan, path, explicit=True)
        published, ctx_start, ctx_end, chain = context
        scope = [(eid, lvl, Origin(file, ln, intern_path(p))) for eid, lvl, ln, p in chain]
        time = self._native_time
        if kind == "response":
            _rid, oid, state, start, end, raw_segs = body
            status = V.order_status(state) if state else None
            seg_path = child_path(path, "SegmentResponse")
            segs = [self._native_segment(s, seg_path) for s in raw_segs]
            start, end = time(start), time(end)
            return lambda: self._emit_response(oid, origin, status, start, end, segs, self._chain_of(scope)[0])
        oid, state, name, valid_from, valid_to, start, end, raw_reqs = body
        status = V.order_status(state) if state else None
        req_path = child_path(path, "SegmentRequirement")
        reqs = [self._native_requirement(s, req_path) for s in raw_reqs]
        valid_from = time(valid_from) or time(published)
        valid_to = time(valid_to)
        planned_start = time(start) or _first([t for t, *_ in reqs if t]) or time(ctx_start)
        planned_end = time(end) or _last([t for _, t, *_ in reqs if t]) or time(ctx_end)
        return lambda: self._emit_plain_request(oid, origin, name, valid_from, valid_to, planned_start, planned_end,
                                                status, reqs, scope)

    def _native_time(self, text: str | None) -> str | None:
        """``_plain_time`` of a text read (the cache looked up here first: most times repeat)."""
        if text is None:
            return None
        got = self._isos.get(text)
        return got if got is not None else self._iso(text)

    def _native_material(self, m: Any, path: str) -> _MaterialUse:
        use, qs, unit, material, lots, line = m
        return (P.use_of(use), None if qs is None else V.parse_quantity(qs), unit, material, lots,
                Origin(self._ctx.file, line, path))

    def _native_named(self, named: list[tuple[list[str], int]], path: str) -> list[tuple[list[str], Origin]]:
        file = self._ctx.file
        return [(ids, Origin(file, line, path)) for ids, line in named]

    def _native_segment(self, seg: Any, path: str) -> _ActualSegment:
        """``_plain_segment`` of a segment response the compiled reader read."""
        start, end, materials, equipment, personnel = seg
        mpath = child_path(path, "MaterialActual")
        return (self._native_time(start), self._native_time(end),
                [self._native_material(m, mpath) for m in materials],
                self._native_named(equipment, child_path(path, "EquipmentActual")),
                self._native_named(personnel, child_path(path, "PersonnelActual")))

    def _native_requirement(self, seg: Any, path: str) -> tuple[str | None, str | None, list[str], _RequiredSegment]:
        """``_plain_requirement`` of a segment requirement the compiled reader read."""
        earliest, latest, ops, materials, equipment = seg
        mpath = child_path(path, "MaterialRequirement")
        uses = [self._native_material(m, mpath) for m in materials]
        if any(use != "produced" for use, *_ in uses):
            raise P.NotPlain
        return (self._native_time(earliest), self._native_time(latest), ops,
                (uses, self._native_named(equipment, child_path(path, "EquipmentRequirement"))))

    def _native_lot(self, raw: Any) -> _LotPlan:
        """``_lot_plan`` of a lot the compiled reader read."""
        line, lid, name, valid_from, valid_to, material, status, (qs, unit), raw_props, raw_scope, comps, whole = raw
        properties = [self._lot_property(pid, vals, pline) for pid, vals, pline in raw_props]
        scope = None
        if raw_scope is not None:
            eid, level, scope_line = raw_scope
            cls = V.level_class(level)
            if cls is None:
                raise P.NotPlain
            scope = (eid, cls, scope_line)
        return _LotPlan(line, lid, name, self._native_time(valid_from), self._native_time(valid_to), material,
                        None if status is None else V.lot_status(status),
                        None if qs is None else V.parse_quantity(qs), unit, properties, scope,
                        [self._native_lot(c) for c in comps], whole)

    # -- finishing ----------------------------------------------------------------------------------
    def _class_of(self, ids: Iterable[str], store: GraphStore | None) -> dict[str, str]:
        out: dict[str, str] = {}
        rest = []
        for i in ids:
            d = self.batch.nodes.get(i)
            if d is not None:
                out[i] = d.cls
            else:
                rest.append(i)
        if store is not None and rest:
            out.update(store.node_classes(rest))
        return out

    def _finish(self, store: GraphStore | None) -> None:
        b = self.batch
        # patches from class nouns
        stored = store.get_nodes([p.node for p in self._patches if p.node not in b.nodes]) if store else {}
        for p in self._patches:
            d = b.nodes.get(p.node)
            if d is not None and d.cls == p.cls:
                for k, v in p.props.items():
                    if d.props.get(k) is None:
                        d.props[k] = v
            elif p.node in stored and stored[p.node].cls == p.cls:
                if all(stored[p.node].props.get(k) is None for k in p.props):
                    b.add_node(p.cls, p.node, p.origin, props=p.props)
            else:
                self.unmapped.add(p.origin, f"{p.what} {p.node!r}, which is neither in this import nor in "
                                            f"the store as a {p.cls}")
        # equipment references of orders
        classes = self._class_of({r.equipment for r in self._equip_refs}, store)
        for ref in self._equip_refs:
            cls = classes.get(ref.equipment)
            if cls == "Line":
                b.add_edge(ref.order, "SCHEDULED_ON", ref.equipment, ref.origin)
            elif cls == "Machine" and ref.actual:
                b.add_edge(ref.order, "RAN_ON", ref.equipment, ref.origin,
                           props={"start": ref.start, "end": ref.end})
            elif cls is None:
                self.unmapped.add(ref.origin, f"equipment {ref.equipment!r} is neither in this import nor "
                                              "in the store: link not made")
            else:
                kind = "actual" if ref.actual else "planned"
                self.unmapped.add(ref.origin, f"{kind} equipment {ref.equipment!r} is a {cls}: only "
                                              f"{'machines and lines' if ref.actual else 'lines'} are linked")
        # assembly links without quantity: the whole component lot
        comp_ids = {c for _, c, _ in self._assembly}
        comp_store = store.get_nodes([c for c in comp_ids if c not in b.nodes]) if store else {}
        for lot, comp, origin in self._assembly:
            e = b.edges.get((lot, "DERIVED_FROM", comp))
            if e is None or e.props.get("quantity") is not None:
                continue
            d = b.nodes.get(comp)
            q = None
            if d is not None:
                q = d.props.get("quantity", d.defaults.get("quantity"))
                e.defaults.setdefault("unit", d.props.get("unit", d.defaults.get("unit")))
            elif comp in comp_store:
                q = comp_store[comp].props.get("quantity")
                e.defaults.setdefault("unit", comp_store[comp].props.get("unit"))
            if q is not None:
                e.defaults.setdefault("quantity", q)
                self.notes.add(origin, "assembly link without quantity: the whole component lot's quantity used")
        # a lot only known from a production response was made when its segment ended
        for d in b.nodes.values():
            made = d.defaults.pop("__produced_at", None)
            if made is not None and not d.explicit:
                d.defaults.setdefault("produced_at", made)
        # sub lots are of their lot's material
        material_of: dict[str, str] = {}
        for (src, rel, dst) in b.edges:
            if rel == "FOR_MATERIAL":
                material_of.setdefault(src, dst)
        for sub, lot, origin in self._sublots:
            if sub not in material_of and lot in material_of:
                b.add_edge(sub, "FOR_MATERIAL", material_of[lot], origin)
                material_of[sub] = material_of[lot]
        # plants of equipment, orders and lots from the hierarchy
        parent: dict[str, str] = {}
        for (src, rel, dst) in b.edges:
            if rel in ("HAS_SITE", "HAS_AREA", "HAS_LINE", "HAS_MACHINE"):
                parent[dst] = src
        for d in b.nodes.values():
            if d.cls in ("Area", "Line", "Machine") and d.props.get("plant") is None:
                cur, seen = d.id, set()
                while cur in parent and cur not in seen:
                    seen.add(cur)
                    cur = parent[cur]
                top = b.nodes.get(cur)
                if top is not None and top.cls == "Site":
                    d.props["plant"] = top.id
                elif top is not None and top.props.get("plant"):
                    d.props["plant"] = top.props["plant"]
                elif store is not None and cur != d.id:
                    rec = store.get_node(cur)
                    if rec is not None:
                        d.props["plant"] = rec.id if rec.cls == "Site" else rec.plant
        for (src, rel, dst) in b.edges:
            if rel == "SCHEDULED_ON":
                o, line = b.nodes.get(src), b.nodes.get(dst)
                if o is not None and o.props.get("plant") is None and o.defaults.get("plant") is None \
                        and line is not None and line.props.get("plant"):
                    o.defaults["plant"] = line.props["plant"]

    def run(self, store: GraphStore | None, dry_run: bool = False, sink: RowSink | None = None) -> ImportReport:
        """Links, checks and (unless ``dry_run``) the write, all or nothing. With ``sink`` (the pipe
        to the transaction of the process that writes), the checked rows go there as each group
        passes instead of being written here; ``written`` then says that all of them went, and
        when it is False the writer must drop what it got."""
        t0 = time.perf_counter()
        self._finish(store)
        rep = self.report
        send = partial(send_group, sink) if sink is not None and not dry_run and not self.errors else None
        validated = self.batch.validate(store, send)
        rep.errors = [*self.errors, *validated.errors]
        rep.more_errors = validated.more_errors
        rep.unmapped = self.unmapped.items()
        rep.notes = self.notes.items()
        rep.messages = sum(f.messages for f in rep.files)
        rep.entities = validated.node_count
        rep.relations = validated.edge_count
        rep.entities_by_class = validated.entities_by_class()
        rep.relations_by_type = validated.relations_by_type()
        rep.dry_run = dry_run
        if not rep.errors and not dry_run and sink is not None:
            rep.written = True  # every group went to the sink
        elif not rep.errors and not dry_run and store is not None:
            write_validated(store, validated)
            rep.written = True
        rep.seconds += time.perf_counter() - t0
        return rep


def _first(times: list[str]) -> str | None:
    return min(times, key=datetime.fromisoformat) if times else None


def _last(times: list[str]) -> str | None:
    return max(times, key=datetime.fromisoformat) if times else None


def _production_kids(el: Any, shape: P.Shape) -> dict[str, list[Any]] | None:
    """The children of a plain request or response (``P.children``) that is of production
    operations (``_operations_type_ok``), else None."""
    top = P.children(el, shape)
    if top is None:
        return None
    ot = P.leaf_text(top, "OperationsType")
    if ot is not None and ot.lower() not in ("production", "mixed"):
        return None
    return top


def _local_in(el: Any, ns: str) -> str | None:
    """The local name of ``el`` when it is an element in namespace ``ns`` (``{uri}``), else None."""
    tag = el.tag
    if not isinstance(tag, str) or tag[:len(ns)] != ns:
        return None
    return tag[len(ns):]


def _plain_context(el: Any, ns: str) -> bool:
    """Whether ``el`` and all inside it are in ``ns`` and none of them is a noun or a verb
    wrapper (what the walk would read or report there)."""
    for d in el.iter():
        local = _local_in(d, ns)
        if local is None or local in NOUNS or VERB_RE.match(local):
            return False
    return True


#: Readers of plain-shaped units, by noun.
_PLAIN: dict[str, Callable[[B2MMLImporter, Any], bool]] = {
    "ProductionResponse": B2MMLImporter._plain_response, "OperationsResponse": B2MMLImporter._plain_response,
    "ProductionRequest": B2MMLImporter._plain_request, "OperationsRequest": B2MMLImporter._plain_request,
    "MaterialLot": B2MMLImporter._plain_lot,
}


def iter_b2mml_files(paths: Iterable[Path]) -> list[Path]:
    """Files given, plus every ``*.xml`` under given folders, sorted for determinism."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(_xml_files_under(p))
        else:
            out.append(p)
    return out


def _xml_files_under(top: Path) -> list[Path]:
    """``sorted(q for q in top.rglob("*") if q.is_file() and q.suffix.lower() == ".xml")``, with
    one ``scandir`` per folder and the sort on name tuples (3x faster for 70k files): symbolic
    links to folders are not entered, unreadable folders are skipped, as ``rglob`` does."""
    found: list[tuple[str, ...]] = []
    todo: list[tuple[str, ...]] = [()]
    while todo:
        rel = todo.pop()
        try:
            with os.scandir(top.joinpath(*rel)) as it:
                entries = list(it)
        except PermissionError:
            continue
        for e in entries:
            name = e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    todo.append((*rel, name))
                    continue
                # Path.suffix of "x.xml" is ".xml", of ".xml" (a hidden file) nothing
                if len(name) > 4 and name[-4:].lower() == ".xml" and e.is_file():
                    found.append((*rel, name))
            except OSError:
                continue
    found.sort()  # the order of the Paths: same leading parts, then these
    return [top.joinpath(*r) for r in found]


def import_b2mml(
    paths: Sequence[Path],
    store: GraphStore | None,
    dry_run: bool = False,
    source_system: str = "B2MML",
    default_tz: tzinfo = UTC,
    xsd: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import B2MML files/folders into ``store`` (all or nothing); returns the report."""
    with paused_gc():
        return _import_b2mml(paths, store, dry_run, source_system, default_tz, xsd, progress)


def _import_b2mml(paths: Sequence[Path], store: GraphStore | None, dry_run: bool, source_system: str,
                  default_tz: tzinfo, xsd: bool, progress: Callable[[int], None] | None) -> ImportReport:
    t0 = time.perf_counter()
    files = iter_b2mml_files(paths)
    opener = store.process_opener() if store is not None and not dry_run else None
    if opener is not None and usable_cpus() > 1 and _travels(default_tz) and _at_least(files, PIPELINE_MIN_BYTES):
        assert store is not None
        return _import_beside(files, store, opener, source_system, default_tz, xsd, progress, t0)
    imp = B2MMLImporter(source_system=source_system, default_tz=default_tz, progress=progress)
    add_files(imp, files)
    if xsd:
        from graph_loader.b2mml.xsd import validate_files

        imp.report.xsd_violations = validate_files(files)
    imp.report.seconds = time.perf_counter() - t0
    return imp.run(store, dry_run=dry_run)


def _at_least(files: Sequence[Path], size: int) -> bool:
    """Whether ``files`` hold ``size`` bytes or more (stops counting there)."""
    total = 0
    for f in files:
        with contextlib.suppress(OSError):  # (reported when the file is read)
            total += f.stat().st_size
        if total >= size:
            return True
    return False


def _travels(value: Any) -> bool:
    """Whether ``value`` pickles (a time zone handed to the second process)."""
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


class _NotWritten(Exception):
    """Rolls the writing transaction back when the checks failed (the report says why)."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("import not written")
        self.report = report


def _import_beside(files: list[Path], store: GraphStore, opener: Callable[[], GraphStore], source_system: str,
                   default_tz: tzinfo, xsd: bool, progress: Callable[[int], None] | None, t0: float) -> ImportReport:
    """A big import with its mapping and checks in a second process (:func:`_produce_import`),
    which sends each checked group here as it passes (:func:`graph_loader.pipeline.run_beside`):
    the checks of the next group overlap the write of the last. The same rows in the same order
    and the same report as one process; all or nothing still (a failed check, or the other
    process failing, rolls the transaction back)."""
    tell = None if progress is None else (lambda done, _total: progress(done))
    try:
        with store.bulk_transaction() as tx:
            # a store the import holds alone held nothing: the other process need not open it
            job = partial(_produce_import, [str(f) for f in files], None if tx.sole else opener, source_system,
                          default_tz, xsd)
            rep, files_done = run_beside(job, tx, tell)
            rep.files = [FileSummary.model_construct(file=f, version=v, messages=m, units=u, error=e)
                         for f, v, m, u, e in files_done]
            if not rep.written:
                raise _NotWritten(rep)
    except _NotWritten as failed:
        rep = failed.report
    rep.seconds = time.perf_counter() - t0
    return rep


def _produce_import(names: list[str], opener: Callable[[], GraphStore] | None, source_system: str,
                    default_tz: tzinfo, xsd: bool, sink: RowSink) -> tuple[ImportReport, list[tuple[Any, ...]]]:
    """The second process's part of :func:`_import_beside`: the whole import but the write.
    Its store connection sees the committed state, the store as it was before this import (the
    rows sent are not committed yet), which is what a one-process import's checks see, since
    they all run before its write. Files done are told in steps of ``_TICK``. The report goes
    back with its file summaries apart, as plain tuples: a big import's tens of thousands of
    models cost ~0.6 s to pickle and unpickle, at the very end."""
    store = opener() if opener is not None else None
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if done >= _TICK:
            sink.progress(done, 0)
            done = 0

    try:
        with paused_gc():
            imp = B2MMLImporter(source_system=source_system, default_tz=default_tz, progress=tick)
            files = [Path(n) for n in names]
            add_files(imp, files)
            if done:
                sink.progress(done, 0)
            if xsd:
                from graph_loader.b2mml.xsd import validate_files

                imp.report.xsd_violations = validate_files(files)
            rep = imp.run(store, sink=sink)
            files_done = [(f.file, f.version, f.messages, f.units, f.error) for f in rep.files]
            rep.files = []
            return rep, files_done
    finally:
        if store is not None:
            store.close()


#: Files mapped between two progress messages of the second process.
_TICK = 256


__all__ = ["B2MMLImporter", "ImportReport", "import_b2mml", "iter_b2mml_files", "version_of"]
