"""The graph (or a bundle) as B2MML V0701 messages that validate against MESA's schemas.

Nouns: Equipment (one SyncEquipment per enterprise tree, nested EquipmentChild), MaterialDefinition
and MaterialLot (SyncMaterialDefinition / SyncMaterialLot, in batches), Person (SyncPerson),
ProductionSchedule (one ProcessOperationsSchedule per order: V07 replaced ProductionSchedule by
OperationsSchedule with OperationsType Production) and ProductionPerformance (one
SyncOperationsPerformance per order that has actuals). Everything the importer maps back is
written, so ``import(export(subgraph)) == subgraph`` for the mapped classes and relations;
facts without a B2MML home are properties named after the ontology field (``plant``,
``source_system``) only when the importer could not derive them.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from graph_loader.b2mml.records import ImportError_
from graph_loader.b2mml.values import CLASS_LEVEL
from store.base import Direction, EdgeRecord, GraphStore, NodeRecord

NS = "http://www.mesa.org/xml/B2MML"
NOUNS = ("Equipment", "MaterialDefinition", "MaterialLot", "Person", "ProductionSchedule", "ProductionPerformance")
VERSIONS = ("V0701",)
EQUIPMENT_CLASSES = ("Enterprise", "Site", "Area", "Line", "Machine")
HIERARCHY = ("HAS_SITE", "HAS_AREA", "HAS_LINE", "HAS_MACHINE")
_REQUEST_STATE = {"planned": "Forecast", "released": "Released", "running": "Running", "completed": "Completed",
                  "cancelled": "Cancelled"}
_RESPONSE_STATE = {"planned": "Waiting", "released": "Ready", "running": "Running", "completed": "Completed",
                   "cancelled": "Aborted"}
_LOT_STATUS = {"released": "Released", "on_hold": "OnHold", "quarantined": "Quarantined", "consumed": "Consumed",
               "shipped": "Shipped", "scrapped": "Scrapped"}
BATCH = 500


class ExportError(ImportError_):
    """The export cannot be made (unknown noun or version, unwritable folder)."""


@dataclass
class ExportResult:
    files: int = 0
    messages: int = 0
    entities: int = 0


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: Any, tag: str, text: Any = None) -> Any:
    el = etree.SubElement(parent, _q(tag))
    if text is not None:
        el.text = text.isoformat() if isinstance(text, datetime) else str(text)
    return el


def _num(x: Any) -> str:
    f = float(x)
    return repr(f) if f != int(f) or abs(f) >= 1e16 else str(int(f)) if f == int(f) else repr(f)


class _Graph:
    """The records an export needs, indexed."""

    def __init__(self, nodes: Iterable[NodeRecord], edges: Iterable[EdgeRecord]) -> None:
        self.nodes: dict[str, NodeRecord] = {n.id: n for n in nodes}
        self.out: dict[str, list[EdgeRecord]] = defaultdict(list)
        self.inc: dict[str, list[EdgeRecord]] = defaultdict(list)
        for e in edges:
            self.out[e.src].append(e)
            self.inc[e.dst].append(e)
        for lst in (*self.out.values(), *self.inc.values()):
            lst.sort(key=lambda e: e.key)

    def of(self, cls: str) -> list[NodeRecord]:
        return sorted((n for n in self.nodes.values() if n.cls == cls), key=lambda n: n.id)

    def targets(self, node: str, rel: str) -> list[EdgeRecord]:
        return [e for e in self.out.get(node, []) if e.rel == rel]

    def sources(self, node: str, rel: str) -> list[EdgeRecord]:
        return [e for e in self.inc.get(node, []) if e.rel == rel]


class _Writer:
    def __init__(self, out: Path, version: str) -> None:
        if version not in VERSIONS:
            raise ExportError(f"B2MML version {version!r} cannot be exported; supported: {', '.join(VERSIONS)}")
        self.out = out
        self.result = ExportResult()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from None

    def message(self, verb: str, noun_root: str, sender: str | None) -> tuple[Any, Any]:
        root = etree.Element(_q(f"{verb}{noun_root}"), nsmap={None: NS})
        root.set("releaseID", "V0701")
        app = _sub(root, "ApplicationArea")
        if sender:
            snd = _sub(app, "Sender")
            _sub(snd, "LogicalID", sender)
        _sub(app, "CreationDateTime", "2000-01-01T00:00:00Z")
        data = _sub(root, "DataArea")
        _sub(data, verb)
        return root, data

    def write(self, root: Any, name: str) -> None:
        path = self.out / name
        etree.ElementTree(root).write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)
        self.result.files += 1
        self.result.messages += 1


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def _common(el: Any, n: NodeRecord, with_dates: bool = True) -> None:
    if n.name is not None:
        _sub(el, "Description", n.name)
    if with_dates:
        if n.valid_from is not None:
            _sub(el, "EffectiveStartDate", n.valid_from)
        if n.valid_to is not None:
            _sub(el, "EffectiveEndDate", n.valid_to)


def _prop(el: Any, tag: str, key: str, value: Any) -> None:
    p = _sub(el, tag)
    _sub(p, "ID", key)
    values = value if isinstance(value, list) else [value]
    for v in values:
        val = _sub(p, "Value")
        _sub(val, "ValueString", v.isoformat() if isinstance(v, datetime) else v)


def _scope(el: Any, site: str | None) -> None:
    if site:
        hs = _sub(el, "HierarchyScope")
        _sub(hs, "EquipmentID", site)
        _sub(hs, "EquipmentLevel", "Site")


def _sender(nodes: Sequence[NodeRecord]) -> str | None:
    c = Counter(n.source_system for n in nodes)
    return c.most_common(1)[0][0] if c else None


# --- nouns -----------------------------------------------------------------------------------------


def _equipment(g: _Graph, w: _Writer) -> None:
    children: dict[str, list[str]] = defaultdict(list)
    has_parent: set[str] = set()
    for n in g.nodes.values():
        for e in g.out.get(n.id, []):
            if e.rel in HIERARCHY and e.dst in g.nodes:
                children[n.id].append(e.dst)
                has_parent.add(e.dst)
    roots = sorted((n for n in g.nodes.values() if n.cls in EQUIPMENT_CLASSES and n.id not in has_parent),
                   key=lambda n: (EQUIPMENT_CLASSES.index(n.cls), n.id))
    for root in roots:
        tree: list[NodeRecord] = []
        todo = [root.id]
        while todo:
            cur = todo.pop()
            tree.append(g.nodes[cur])
            todo.extend(children.get(cur, []))
        sender = _sender(tree)
        msg, data = w.message("Sync", "Equipment", sender)
        _equipment_el(data, "Equipment", root, g, children, sender, None)
        w.result.entities += len(tree)
        w.write(msg, f"equipment-{_safe(root.id)}.xml")


def _equipment_el(parent: Any, tag: str, n: NodeRecord, g: _Graph, children: dict[str, list[str]],
                  sender: str | None, site: str | None) -> None:
    el = _sub(parent, tag)
    _sub(el, "ID", n.id)
    _common(el, n)
    _sub(el, "EquipmentLevel", CLASS_LEVEL[n.cls])
    derived = n.id if n.cls == "Site" else (site if n.cls != "Enterprise" else None)
    props = {k: v for k, v in n.props.items() if k != "equipment_class" and v is not None}
    if n.plant != derived and n.plant is not None:
        props["plant"] = n.plant
    if n.source_system != sender:
        props["source_system"] = n.source_system
    for k, v in sorted(props.items()):
        _prop(el, "EquipmentProperty", k, v)
    kids = sorted(children.get(n.id, []))
    for c in kids:
        _equipment_el(el, "EquipmentChild", g.nodes[c], g, children, sender, derived)
    if n.props.get("equipment_class"):
        _sub(el, "EquipmentClassID", n.props["equipment_class"])


def _materials(g: _Graph, w: _Writer) -> None:
    mats = g.of("Material")
    for i in range(0, len(mats), BATCH):
        chunk = mats[i:i + BATCH]
        sender = _sender(chunk)
        msg, data = w.message("Sync", "MaterialDefinition", sender)
        for m in chunk:
            el = _sub(data, "MaterialDefinition")
            _sub(el, "ID", m.id)
            _common(el, m, with_dates=False)
            _scope(el, m.plant)
            props = {k: v for k, v in m.props.items() if k != "material_class" and v not in (None, [])}
            if m.source_system != sender:
                props["source_system"] = m.source_system
            for key, dt in (("valid_from", m.valid_from), ("valid_to", m.valid_to)):
                if dt is not None:
                    props[key] = dt
            for k, v in sorted(props.items()):
                _prop(el, "MaterialDefinitionProperty", k, v)
            if m.props.get("material_class"):
                _sub(el, "MaterialClassID", m.props["material_class"])
        w.result.entities += len(chunk)
        w.write(msg, f"materials-{i // BATCH:05d}.xml")


def _lots(g: _Graph, w: _Writer) -> None:
    lots = g.of("Lot")
    for i in range(0, len(lots), BATCH):
        chunk = lots[i:i + BATCH]
        sender = _sender(chunk)
        msg, data = w.message("Sync", "MaterialLot", sender)
        for lot in chunk:
            el = _sub(data, "MaterialLot")
            _sub(el, "ID", lot.id)
            _common(el, lot)
            _scope(el, lot.plant)
            mats = g.targets(lot.id, "FOR_MATERIAL")
            if mats:
                _sub(el, "MaterialDefinitionID", mats[0].dst)
            if lot.props.get("status"):
                _sub(el, "Status", _LOT_STATUS[lot.props["status"]])
            props = {k: v for k, v in lot.props.items() if k in ("produced_at", "expiry") and v is not None}
            if lot.source_system != sender:
                props["source_system"] = lot.source_system
            for k, v in sorted(props.items()):
                _prop(el, "MaterialLotProperty", k, v)
            q = _sub(el, "Quantity")
            _sub(q, "QuantityString", _num(lot.props["quantity"]))
            if lot.props.get("unit"):
                _sub(q, "UnitOfMeasure", lot.props["unit"])
            for e in g.targets(lot.id, "DERIVED_FROM"):
                a = _sub(el, "AssemblyLot")
                _sub(a, "ID", e.dst)
                aq = _sub(a, "Quantity")
                _sub(aq, "QuantityString", _num(e.props["quantity"]))
                if e.props.get("unit"):
                    _sub(aq, "UnitOfMeasure", e.props["unit"])
        w.result.entities += len(chunk)
        w.write(msg, f"lots-{i // BATCH:05d}.xml")


def _persons(g: _Graph, w: _Writer) -> None:
    people = g.of("Person")
    for i in range(0, len(people), BATCH):
        chunk = people[i:i + BATCH]
        sender = _sender(chunk)
        msg, data = w.message("Sync", "Person", sender)
        for p in chunk:
            el = _sub(data, "Person")
            _sub(el, "ID", p.id)
            works = [e.dst for e in g.targets(p.id, "WORKS_AT")]
            _scope(el, works[0] if works else None)
            if p.name is not None:
                _sub(el, "PersonName", p.name)
            props: dict[str, Any] = {}
            if p.props.get("certifications"):
                props["certifications"] = p.props["certifications"]
            if p.plant != (works[0] if works else None) and p.plant is not None:
                props["plant"] = p.plant
            if p.source_system != sender:
                props["source_system"] = p.source_system
            for key, dt in (("valid_from", p.valid_from), ("valid_to", p.valid_to)):
                if dt is not None:
                    props[key] = dt
            for k, v in sorted(props.items()):
                _prop(el, "PersonProperty", k, v)
            _sub(el, "PersonnelClassID", p.props["role"])
        w.result.entities += len(chunk)
        w.write(msg, f"persons-{i // BATCH:05d}.xml")


def _schedules(g: _Graph, w: _Writer) -> None:
    for o in g.of("ProductionOrder"):
        msg, data = w.message("Process", "OperationsSchedule", o.source_system)
        sched = _sub(data, "OperationsSchedule")
        _sub(sched, "ID", f"SCHED-{o.id}")
        if o.valid_from is not None:
            _sub(sched, "PublishedDate", o.valid_from)
        _scope(sched, o.plant)
        _sub(sched, "OperationsType", "Production")
        req = _sub(sched, "OperationsRequest")
        _sub(req, "ID", o.id)
        if o.name is not None:
            _sub(req, "Description", o.name)
        _sub(req, "StartTime", o.props["planned_start"])
        _sub(req, "EndTime", o.props["planned_end"])
        _sub(req, "OperationsType", "Production")
        _sub(req, "RequestState", _REQUEST_STATE[o.props.get("status", "planned")])
        ops = o.props.get("operations") or [""]
        lines = [e.dst for e in g.targets(o.id, "SCHEDULED_ON")]
        mats = [e.dst for e in g.targets(o.id, "FOR_MATERIAL")]
        for i, op in enumerate(ops):
            seg = _sub(req, "SegmentRequirement")
            _sub(seg, "ID", f"{o.id}-{i + 1}")
            _sub(seg, "ProcessSegmentID", op)
            _sub(seg, "OperationsDefinitionID", mats[0] if mats else "")
            _sub(seg, "OperationsSegmentID", op)
            if i == 0:
                for k, line in enumerate(lines):
                    er = _sub(seg, "EquipmentRequirement")
                    _sub(er, "ID", f"ER-{k + 1}")
                    _sub(er, "EquipmentID", line)
                for k, mat in enumerate(mats):
                    mr = _sub(seg, "MaterialRequirement")
                    _sub(mr, "ID", f"MR-{k + 1}")
                    _sub(mr, "MaterialDefinitionID", mat)
                    _sub(mr, "MaterialUse", "Produced")
                    if k == 0:
                        q = _sub(mr, "Quantity")
                        _sub(q, "QuantityString", _num(o.props["quantity"]))
                        if o.props.get("unit"):
                            _sub(q, "UnitOfMeasure", o.props["unit"])
        w.result.entities += 1
        w.write(msg, f"schedule-{_safe(o.id)}.xml")


def _performance(g: _Graph, w: _Writer) -> None:
    for o in g.of("ProductionOrder"):
        actual = [e for e in g.out.get(o.id, []) if e.rel in ("CONSUMED", "PRODUCED", "RAN_ON", "OPERATED_BY")]
        if o.props.get("actual_start") is None and not actual:
            continue
        msg, data = w.message("Sync", "OperationsPerformance", o.source_system)
        perf = _sub(data, "OperationsPerformance")
        _sub(perf, "ID", f"PERF-{o.id}")
        _sub(perf, "OperationsType", "Production")
        resp = _sub(perf, "OperationsResponse")
        _sub(resp, "ID", f"RESP-{o.id}")
        if o.props.get("actual_start"):
            _sub(resp, "StartTime", o.props["actual_start"])
        if o.props.get("actual_end"):
            _sub(resp, "EndTime", o.props["actual_end"])
        _sub(resp, "OperationsType", "Production")
        _sub(resp, "OperationsRequestID", o.id)
        _sub(resp, "ResponseState", _RESPONSE_STATE[o.props.get("status", "running")])
        runs: list[EdgeRecord | None] = [*g.targets(o.id, "RAN_ON")] or [None]
        for i, run in enumerate(runs):
            seg = _sub(resp, "SegmentResponse")
            _sub(seg, "ID", f"SR-{i + 1}")
            start = run.props.get("start") if run is not None else o.props.get("actual_start")
            end = run.props.get("end") if run is not None else o.props.get("actual_end")
            if start:
                _sub(seg, "ActualStartTime", start)
            if end:
                _sub(seg, "ActualEndTime", end)
            if i == 0:
                for k, e in enumerate(g.targets(o.id, "OPERATED_BY")):
                    pa = _sub(seg, "PersonnelActual")
                    _sub(pa, "ID", f"PA-{k + 1}")
                    _sub(pa, "PersonID", e.dst)
            if run is not None:
                ea = _sub(seg, "EquipmentActual")
                _sub(ea, "ID", "EA-1")
                _sub(ea, "EquipmentID", run.dst)
            if i == 0:
                k = 0
                for rel, use in (("PRODUCED", "Produced"), ("CONSUMED", "Consumed")):
                    for e in g.targets(o.id, rel):
                        k += 1
                        ma = _sub(seg, "MaterialActual")
                        _sub(ma, "ID", f"MA-{k}")
                        _sub(ma, "MaterialLotID", e.dst)
                        _sub(ma, "MaterialUse", use)
                        q = _sub(ma, "Quantity")
                        _sub(q, "QuantityString", _num(e.props["quantity"]))
                        if e.props.get("unit"):
                            _sub(q, "UnitOfMeasure", e.props["unit"])
        w.result.entities += 1
        w.write(msg, f"performance-{_safe(o.id)}.xml")


_BUILDERS = {
    "Equipment": _equipment, "MaterialDefinition": _materials, "MaterialLot": _lots, "Person": _persons,
    "ProductionSchedule": _schedules, "ProductionPerformance": _performance,
}
_CLASSES = {
    "Equipment": EQUIPMENT_CLASSES, "MaterialDefinition": ("Material",), "MaterialLot": ("Lot",),
    "Person": ("Person",), "ProductionSchedule": ("ProductionOrder",), "ProductionPerformance": ("ProductionOrder",),
}


def export_records(nodes: Iterable[NodeRecord], edges: Iterable[EdgeRecord], nouns: Sequence[str], out: Path,
                   version: str = "V0701") -> ExportResult:
    """Write the messages of ``nouns`` for these records into ``out``."""
    bad = [n for n in nouns if n not in _BUILDERS]
    if bad:
        raise ExportError(f"unknown noun(s) {', '.join(bad)}; expected one of {', '.join(NOUNS)}")
    g = _Graph(nodes, edges)
    w = _Writer(out, version)
    for noun in nouns:
        _BUILDERS[noun](g, w)
    return w.result


def export_store(store: GraphStore, noun: str | Sequence[str], out: Path, version: str = "V0701") -> ExportResult:
    """Export the nouns' entities (and the relations they carry) from a store."""
    nouns = [noun] if isinstance(noun, str) else list(noun)
    bad = [n for n in nouns if n not in _BUILDERS]
    if bad:
        raise ExportError(f"unknown noun(s) {', '.join(bad)}; expected one of {', '.join(NOUNS)}")
    classes = {c for n in nouns for c in _CLASSES[n]}
    nodes = [rec for cls in sorted(classes) for rec in store.find_nodes(cls=cls)]
    edges = [e for rec in nodes for e in store.neighbours(rec.id, direction=Direction.OUT)]
    return export_records(nodes, edges, nouns, out, version)


def bundle_to_b2mml(bundle: Path, out: Path, nouns: Sequence[str] = NOUNS, version: str = "V0701") -> ExportResult:
    """A bundle (e.g. the generator's output) as B2MML messages, for ``plantgraph generate --format b2mml``.

    The bundle is validated and loaded into a temporary embedded store first, so the messages
    describe exactly what ``plantgraph load`` would store."""
    from graph_loader.loader import load_bundle
    from store.factory import open_store

    with tempfile.TemporaryDirectory(prefix="pg-b2mml-") as tmp:
        store = open_store("embedded", Path(tmp) / "store")
        try:
            load_bundle(store, bundle)
            return export_store(store, nouns, out, version)
        finally:
            store.close()


__all__ = ["NOUNS", "VERSIONS", "ExportError", "ExportResult", "bundle_to_b2mml", "export_records", "export_store"]
