"""The seeded plant simulation: master data, production, purchasing, sales, events, scenarios.

How it works, in one paragraph: master data (plants, lines, machines, materials with BOMs,
suppliers, customers, people, shifts, SOPs) is drawn first. Then each plant is simulated line by
line in time order with a heap: processing lines make intermediates from raw materials, packaging
lines make finished goods from intermediates and packaging; consumption takes lots FIFO (so one
lot feeds several orders and one order eats several lots: splits and merges), raw materials are
replenished just in time by purchase order lines that arrive (late or early against their promise)
as supplier lots. Finished lots then feed sales order lines (shipped in the past, allocated for the
future). Background events (downtime, anomalies, maintenance, incidents, holds) follow at
plausible rates. Finally the scenarios of truth.json are injected and their answers computed from
the emitted edges (see :mod:`graph_loader.generator.truth`).

Everything random goes through one seeded ``random.Random`` (and a seeded numpy Generator for
bulk draws), and all containers are iterated in insertion order, so a seed gives a byte-identical
bundle.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from graph_loader.bundle_writer import BundleWriter, csv_field, edge_columns, node_columns
from graph_loader.generator import names as N
from graph_loader.generator.clock import Clock
from graph_loader.generator.spec import ScaleSpec
from graph_loader.generator.truth import (
    TRACKED_RELATIONS,
    ContaminatedSupplierLot,
    DeliveriesAtRisk,
    EdgeIndex,
    MachineFault,
    QualityHoldScenario,
    RiskCause,
    RootCause,
    Scenarios,
    SopInEffect,
    Truth,
    forward_trace,
)
from ontology.models import COMMON_FIELDS, ENTITY_CLASSES

HOUR = 3600
DAY = 86400
EPS = 1e-6

#: The plant's "current time": analyses use truth.now as now. A Monday morning.
NOW = int(datetime(2026, 11, 16, 7, 0, tzinfo=UTC).timestamp())

SOURCE_SYSTEMS = ["MES", "ERP", "QMS", "CMMS", "IIoT"]
JSONL_CLASSES = ("SOPVersion", "Incident", "MaintenanceOrder")

EDGE_SOURCE = {
    "HAS_SITE": "ERP", "HAS_AREA": "MES", "HAS_LINE": "MES", "HAS_MACHINE": "MES",
    "HAS_BOM_ITEM": "ERP", "COMPONENT": "ERP", "APPROVED_SUBSTITUTE": "ERP", "ORDERED_FROM": "ERP",
    "HAS_PO_LINE": "ERP", "FOR_MATERIAL": "ERP", "DELIVERED_AS": "ERP", "SUPPLIED_BY": "ERP",
    "SUPPLIES": "ERP", "SCHEDULED_ON": "MES", "RAN_ON": "MES", "USED_SOP": "MES", "CONSUMED": "MES",
    "PRODUCED": "MES", "DERIVED_FROM": "MES", "DURING_SHIFT": "MES", "OPERATED_BY": "MES",
    "PLACED_BY": "ERP", "HAS_SO_LINE": "ERP", "ALLOCATED_TO": "ERP", "SHIPPED_TO": "ERP",
    "VERSION_OF": "QMS", "APPLIES_TO": "QMS", "OCCURRED_ON": "MES", "CONCERNS": "QMS", "HOLDS": "QMS",
    "RAISED_BY": "QMS", "ADDRESSES": "CMMS", "WORKS_AT": "MES", "SHIFT_AT": "MES",
}


def q(x: float) -> str:
    """A quantity cell: at most 3 decimals, no trailing zeros."""
    i = int(x)
    if i == x and i > 0:
        return str(i)
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def round3(v: float) -> float:
    """``round(v, 3)``, the same float, without its decimal-string round trip (~1 µs a call).

    ``round(v, 3)`` is the float nearest to ``r / 1000``, where ``r`` is the exact ``v * 1000``
    rounded half to even; the float division ``r / 1000`` is exactly that nearest float. ``y``
    (the rounded product) is within 1e-4 of the exact one for any ``|y| < 1e12``, so unless ``y``
    lies within 1e-3 of a half, rounding ``y`` gives the same ``r``; near a half, for huge values
    and around zero ``round`` itself decides.
    """
    y = v * 1000.0
    r = round(y)
    if r and abs(abs(y - r) - 0.5) > 1e-3 and -1e12 < y < 1e12:  # r == 0: round keeps the sign of zero
        return r / 1000
    return round(v, 3)


def rmin(t: float) -> int:
    """Round epoch seconds down to the minute (all generated times are whole minutes)."""
    return int(t) // 60 * 60


# ---------------------------------------------------------------------------------------------
# Records kept in memory until the end (their status changes as the simulation runs)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Mat:
    id: str
    name: str
    kind: str  # raw / intermediate / finished
    unit: str
    cls: str  # material_class
    aliases: list[str]
    z: int = -1  # home plant of produced materials
    category: str = ""  # ingredient / flavour / packaging / label (raw)
    pack_size: float = 1000.0
    shelf_days: int = 365
    bom: list[tuple[str, float]] = field(default_factory=list)
    suppliers: list[str] = field(default_factory=list)
    sop: str = ""
    kg_per_unit: float = 1.0


@dataclass(slots=True)
class LineInfo:
    id: str
    name: str
    z: int
    kind: str  # proc / pack
    machines: list[str]
    materials: list[str]
    rate: float  # kg/h (proc) or cases/h (pack)


@dataclass(slots=True)
class Lot:
    id: str
    name: str
    z: int
    material: str
    qty: float
    unit: str
    produced_at: int
    valid_from: int
    source: str
    free: float
    avail: int
    status: str = "released"
    consumed_q: float = 0.0
    shipped_q: float = 0.0
    expiry: int | None = None
    held: bool = False  # never available (unreleased hold at production, scrapped)
    last_used: int = 0
    supplier: str = ""
    # the orders that consumed it, in order (CONSUMED edges; into the truth index after the run)
    consumers: list[str] | None = None


@dataclass(slots=True)
class Order:
    """What later steps ask of a production order (its row is written when it is created)."""

    id: str
    z: int
    line: str
    material: str
    status: str
    as_: int | None
    ae: int | None
    sopv: str = ""
    outputs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class POLine:
    id: str
    z: int
    material: str
    supplier: str
    qty: float
    unit: str
    promised: int
    delivered: int | None
    order_date: int
    lots: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class SOLine:
    id: str
    z: int
    material: str
    qty: float
    unit: str
    due: int
    priority: str
    status: str = "open"
    shipments: list[tuple[str, float, int]] = field(default_factory=list)  # lot, qty, shipped_at
    allocations: list[tuple[str, float, int]] = field(default_factory=list)  # lot, qty, from
    so: str = ""
    created: int = 0


@dataclass
class Designs:
    """Decisions taken before the simulation so the scenarios are clean by construction."""

    rc_material: str = ""
    rc_window: tuple[int, int] = (0, 0)
    rc_sop: str = ""
    rc_bad_version: str = ""
    behind: tuple[int, str, str] | None = None  # plant, line, material
    behind_order: str = ""
    downtime: tuple[int, str, str] | None = None
    downtime_event: str = ""
    downtime_order: str = ""
    shortage: tuple[int, str] | None = None
    late_supplier: tuple[int, str] | None = None
    excluded: dict[str, tuple[int, str]] = field(default_factory=dict)  # material -> (from t, except line)


class PlantBuilder:
    """Builds one synthetic enterprise and writes it as a bundle plus truth.json."""

    def __init__(
        self,
        spec: ScaleSpec,
        seed: int,
        out: Path,
        tick: Callable[[str, float, float], None] | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.out = out
        self.rng = random.Random(seed)
        self.nprng = np.random.default_rng(seed)
        self.tick = tick or (lambda phase, done, total: None)
        self.now = NOW
        self.t0 = NOW - spec.history_days * DAY
        self.t_end = NOW + spec.future_days * DAY
        infos = [N.PLANTS[i] for i in range(spec.plants)]
        self.plants = infos
        self.site_ids = [f"SITE-{p.code}" for p in infos]
        # the table span covers every time the plant renders (SOP versions start up to ~470 days
        # before the history, lots expire up to 540 days after the plan); others still render
        self.clock = Clock([p.timezone for p in infos] + ["UTC"],
                           span=(self.t0 - 500 * DAY, self.t_end + 560 * DAY))
        self.utc = len(infos)
        self.writer = BundleWriter(
            out, SOURCE_SYSTEMS, self.site_ids, exported_at=datetime.fromtimestamp(NOW, tz=UTC),
            extra_manifest={"generator": {"name": "plantgraph-synthetic", "seed": seed, "scale": spec.name,
                                          "spec": spec.model_dump()}},
            jsonl_classes=JSONL_CLASSES,
        )
        self._pcols = {c: [f for f in node_columns(c) if f not in COMMON_FIELDS] for c in ENTITY_CLASSES}
        self._pcolset = {c: frozenset(cols) for c, cols in self._pcols.items()}
        self._ecols = {r: len(edge_columns(r)) for r in EDGE_SOURCE}
        # Rows are buffered as finished CSV lines (one string, no per-row list: the cheapest form
        # for a million rows); only the JSON Lines classes keep cell lists.
        self._nbuf: dict[str, list[str]] = defaultdict(list)
        self._jbuf: dict[str, list[list[str]]] = defaultdict(list)
        self._ebuf: dict[str, list[str]] = {r: [] for r in EDGE_SOURCE}
        self._pending_rows = 0
        self.counts: dict[str, int] = defaultdict(int)
        self.index = EdgeIndex()
        # data the truth definitions need beyond the genealogy index
        self.applies_to: dict[str, list[str]] = defaultdict(list)  # target -> SOPs
        self.versions: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
        self.hold_lots: dict[str, list[str]] = defaultdict(list)  # lot -> holds
        self.hold_times: dict[str, tuple[int, int | None]] = {}
        # state
        self.mats: dict[str, Mat] = {}
        self.lines: list[LineInfo] = []
        self.machine_line: dict[str, LineInfo] = {}
        self.line_by_id: dict[str, LineInfo] = {}
        # lot number n (id "LOT-" + n) at index n - 1: appending costs less than a dict insert, and
        # look-ups by id are few (after the simulation)
        self.lots: list[Lot] = []
        self.orders: list[Order] = []  # in creation order (never looked up by id)
        self.polines: list[POLine] = []
        self.solines: list[SOLine] = []
        self.suppliers: dict[str, str] = {}  # id -> category
        self.customers: list[str] = []
        self.customer_weights: list[float] = []
        self._cum_weights: list[float] = []
        self.persons: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self.shift_ids: dict[tuple[int, int, int], str] = {}
        self.seq: dict[str, int] = defaultdict(int)
        self.designs = Designs()
        self._rc_done: set[tuple[str, int]] = set()
        self._ops: dict[tuple[int, str], str] = {}  # (plant, line kind) -> operations cell
        self._vstart: dict[str, int] = {}
        self.inventory: dict[tuple[int, str], deque[Lot]] = defaultdict(deque)
        self.level: dict[tuple[int, str], float] = defaultdict(float)
        self.sop_texts: dict[str, str] = {}

    # -----------------------------------------------------------------------------------------
    # low-level emitters
    # -----------------------------------------------------------------------------------------

    def next_id(self, prefix: str, width: int = 7) -> str:
        n = self.seq[prefix] = self.seq[prefix] + 1
        return prefix + "-" + str(n).zfill(width)

    def ts(self, t: int | None, z: int) -> str:
        return "" if t is None else self.clock.fmt(t, z)

    def node(self, cls: str, id_: str, name: str, ss: str, plant: str, vf: str, **props: str | None) -> None:
        cols = self._pcols[cls]
        if not props.keys() <= self._pcolset[cls]:
            raise KeyError(f"{cls}: unknown properties {sorted(props.keys() - self._pcolset[cls])}")
        get = props.get
        row = [id_, name, ss, plant, vf, ""]
        row.extend(["" if (v := get(c)) is None else v for c in cols])
        if cls in JSONL_CLASSES:
            self._jbuf[cls].append(row)
        else:
            line = ",".join(row)
            if '"' in line or line.count(",") != len(row) - 1 or "\n" in line or "\r" in line:
                line = ",".join(map(csv_field, row))
            self._nbuf[cls].append(line)
        self._pending_rows += 1
        if self._pending_rows >= 50_000:
            self.flush()

    def edge(self, rel: str, src: str, dst: str, vf: str = "", *extra: str) -> None:
        # ids, times and quantities never need CSV quoting (the writer checks every line's cells)
        self._ebuf[rel].append(",".join((src, dst, EDGE_SOURCE[rel], vf, "", *extra)))
        if rel in TRACKED_RELATIONS:
            self.index.add(rel, src, dst)
        self._pending_rows += 1
        if self._pending_rows >= 50_000:
            self.flush()

    def flush(self) -> None:
        self._pending_rows = 0
        for cls, buf in self._nbuf.items():
            if buf:
                self.writer.write_node_lines(cls, buf)
                buf.clear()
        for cls, rows in self._jbuf.items():
            if rows:
                self.writer.write_node_rows(cls, rows)
                rows.clear()
        for rel, ebuf in self._ebuf.items():
            if ebuf:
                self.writer.write_edge_lines(rel, ebuf)
                ebuf.clear()

    def pick(self, seq: Sequence[str]) -> str:
        return seq[int(self.rng.random() * len(seq))]

    def person(self, z: int, role: str) -> str:
        return self.pick(self.persons[z][role])

    # -----------------------------------------------------------------------------------------
    # master data
    # -----------------------------------------------------------------------------------------

    def build_master(self) -> None:
        rng = self.rng
        ent = "ENT-NW"
        self.node("Enterprise", ent, "Northwind Process Industries", "ERP", "", "")
        n_target = self.spec.target_entities
        for z, p in enumerate(self.plants):
            site = self.site_ids[z]
            self.node("Site", site, f"{p.city} Plant", "ERP", site, "", timezone=p.timezone, country=p.country)
            self.edge("HAS_SITE", ent, site)
        # suppliers
        n_sup = max(6, min(400, n_target // 900))
        kinds = list(N.SUPPLIER_KINDS)
        used_names: set[str] = set()
        for i in range(n_sup):
            cat = kinds[i % len(kinds)]
            while True:
                name = (f"{self.pick(N.SUPPLIER_STEMS)} {self.pick(N.SUPPLIER_KINDS[cat])} "
                        f"{self.pick(N.LEGAL_FORMS)}")
                if name not in used_names:
                    break
                name = f"{name} ({rng.randint(2, 99)})"
                if name not in used_names:
                    break
            used_names.add(name)
            sid = f"SUP-{i + 1:04d}"
            self.suppliers[sid] = cat
            self.node("Supplier", sid, name, "ERP", "", "", country=self.pick(N.COUNTRIES),
                      rating=q(round(0.55 + 0.45 * rng.random(), 2)))
        # customers (a few big ones carry most orders)
        n_cust = max(8, min(600, n_target // 500))
        used_names.clear()
        for i in range(n_cust):
            base = f"{N.CUSTOMER_STEMS[i % len(N.CUSTOMER_STEMS)]} {self.pick(N.CUSTOMER_KINDS)}"
            name = base
            k = 2
            while name in used_names:
                name = f"{base} {self.pick(('North', 'South', 'East', 'West', 'Central'))} {k}"
                k += 1
            used_names.add(name)
            cid = f"CUST-{i + 1:04d}"
            words = name.split()
            alias = "".join(w[0] for w in words if w[0].isalpha()).upper() + f"-{i + 1}"
            self.node("Customer", cid, name, "ERP", "", "", country=self.pick(N.COUNTRIES),
                      aliases="|".join([alias, name.lower()]))
            self.customers.append(cid)
            self.customer_weights.append(1.0 / (1 + i % 11))
        self._build_equipment_and_materials()
        self._build_people_and_shifts()

    def _raw(self, name: str, category: str, unit: str, pack: float, cls: str) -> str:
        for m in self.mats.values():
            if m.kind == "raw" and m.name == name:
                return m.id
        mid = self.next_id("MAT-RM", 4)
        alias = "RM" + "".join(w[:3].upper() for w in name.replace("-", " ").split()[:3] if w[:1].isalnum())
        mat = Mat(id=mid, name=name, kind="raw", unit=unit, cls=cls, aliases=[alias, name.lower()],
                  category=category, pack_size=pack, shelf_days=540 if category != "flavour" else 270)
        cats = [s for s, c in self.suppliers.items() if c == ("flavour" if category == "flavour" else
                                                               "packaging" if category in ("packaging", "label")
                                                               else "ingredient")]
        k = 1 + int(self.rng.random() * 3)
        start = int(self.rng.random() * len(cats))
        mat.suppliers = [cats[(start + j * 7) % len(cats)] for j in range(min(k, len(cats)))]
        mat.suppliers = list(dict.fromkeys(mat.suppliers))
        self.mats[mid] = mat
        return mid

    def _build_equipment_and_materials(self) -> None:
        rng = self.rng
        spec = self.spec
        used_fin: set[str] = set()
        fam_flavour_cursor: dict[str, int] = defaultdict(int)
        for z, p in enumerate(self.plants):
            site = self.site_ids[z]
            fam = N.FAMILIES[z % len(N.FAMILIES)]
            avg_case_kg = sum(s[1] * s[2] for s in fam.sizes) / len(fam.sizes)
            # areas and lines
            areas = []
            for kind, n_lines, label in (("proc", spec.proc_lines, "Processing"),
                                         ("pack", spec.pack_lines, "Packaging")):
                per_area = 6
                n_areas = max(1, math.ceil(n_lines / per_area))
                for a in range(n_areas):
                    aid = f"AREA-{p.code}-{'PR' if kind == 'proc' else 'PK'}{a + 1}"
                    aname = f"{p.city} {label}" + (f" Hall {a + 1}" if n_areas > 1 else "")
                    self.node("Area", aid, aname, "MES", site, "")
                    self.edge("HAS_AREA", site, aid)
                    areas.append((kind, aid))
                for i in range(n_lines):
                    aid = [a for k, a in areas if k == kind][i // per_area]
                    num = len([ln for ln in self.lines if ln.z == z]) + 1
                    lid = f"LINE-{p.code}-{num:02d}"
                    rate = (4500 + 1500 * rng.random()) if kind == "proc" else round(
                        1300 / avg_case_kg * (0.85 + 0.3 * rng.random()))
                    unit_rate = "kg/h" if kind == "proc" else "cases/h"
                    lname = f"{p.city} {label} Line {num}"
                    line = LineInfo(lid, lname, z, kind, [], [], rate)
                    self.node("Line", lid, lname, "MES", site, "", capacity_per_hour=q(round(rate)))
                    self.edge("HAS_LINE", aid, lid)
                    for j, (mtype, code, eqclass) in enumerate(N.MACHINE_TYPES[kind]):
                        if kind == "proc" and j == 2 and rng.random() < 0.5:
                            continue
                        mid = f"M-{p.code}-{num:02d}{j + 1}"
                        self.node("Machine", mid, f"{mtype} {code}-{num}{j + 1} ({p.city} line {num})", "MES",
                                  site, "", machine_type=mtype, equipment_class=eqclass)
                        self.edge("HAS_MACHINE", lid, mid)
                        line.machines.append(mid)
                        self.machine_line[mid] = line
                    self.lines.append(line)
                    self.line_by_id[lid] = line
                    _ = unit_rate
            # products of this plant
            plines = [ln for ln in self.lines if ln.z == z]
            proc = [ln for ln in plines if ln.kind == "proc"]
            pack = [ln for ln in plines if ln.kind == "pack"]
            n_fin = len(pack) * 3
            fin_ids: list[str] = []
            inter_of_flavour: dict[tuple[str, str], str] = {}
            guard = 0
            while len(fin_ids) < n_fin and guard < 10000:
                guard += 1
                cur = fam_flavour_cursor[fam.key]
                fam_flavour_cursor[fam.key] += 1
                flavour = fam.flavours[cur % len(fam.flavours)]
                brand = fam.brands[(cur // len(fam.flavours)) % len(fam.brands)]
                rnd = cur // (len(fam.flavours) * len(fam.brands))
                sizes = list(fam.sizes)
                rng.shuffle(sizes)
                for size, kg, per_case in sizes[: 1 + int(rng.random() * 2) + 1]:
                    fname = f"{brand} {flavour} {fam.product} {size}" + (f" (recipe {rnd + 1})" if rnd else "")
                    if fname in used_fin or len(fin_ids) >= n_fin:
                        continue
                    used_fin.add(fname)
                    key = (brand, flavour)
                    inter = inter_of_flavour.get(key)
                    if inter is None:
                        inter = self._make_intermediate(z, fam, brand, flavour, rnd)
                        inter_of_flavour[key] = inter
                    fid = self.next_id("MAT-FG", 4)
                    code = "".join(w[0] for w in f"{brand} {flavour}".split()).upper()
                    fmat = Mat(id=fid, name=fname, kind="finished", unit="cs", cls=f"{fam.key} finished goods",
                               aliases=[f"{code}-{size.replace(' ', '').upper()}-{fid[-4:]}",
                                        f"{flavour} {fam.product} {size}".lower()],
                               z=z, shelf_days=270, kg_per_unit=kg * per_case)
                    bom = [(inter, round(kg * per_case, 3))]
                    for pk in fam.packaging:
                        pname = pk.format(size=size)
                        is_unit = pk.startswith(("PET bottle", "Glass jar", "HDPE bottle", "PET closure",
                                                 "Twist-off", "Dosing cap"))
                        rid = self._raw(pname, "packaging", "pcs", 20000 if is_unit else 5000,
                                        "packaging")
                        bom.append((rid, float(per_case) if is_unit else 1.0))
                    lid = self._raw(f"Label {fname}", "label", "pcs", 30000, "labels")
                    bom.append((lid, float(per_case)))
                    fmat.bom = bom
                    self.mats[fid] = fmat
                    fin_ids.append(fid)
            # capable lines
            for i, fid in enumerate(fin_ids):
                first = pack[i % len(pack)]
                second = pack[(i + 1 + i // len(pack)) % len(pack)]
                for pl in ([first] if first is second else [first, second]):
                    pl.materials.append(fid)
            inters = list(dict.fromkeys(inter_of_flavour.values()))
            for i, iid in enumerate(inters):
                proc[i % len(proc)].materials.append(iid)
                if len(proc) > 1 and rng.random() < 0.4:
                    proc[(i + 1) % len(proc)].materials.append(iid)
            # opening stock of intermediates so the first packaging orders have input
            for iid in inters:
                self._opening_lot(z, iid)
        # BOM entities, substitutes, supplier qualification
        for mat in list(self.mats.values()):
            if mat.kind == "raw":
                continue
            fam = N.FAMILIES[mat.z % len(N.FAMILIES)]
            for k, (comp, qty) in enumerate(mat.bom, start=1):
                bid = f"BOM-{mat.id[4:]}-{k:02d}"
                cm = self.mats[comp]
                self.node("BomItem", bid, f"{mat.name} / {cm.name}", "ERP", self.site_ids[mat.z], "",
                          quantity=q(qty), unit=cm.unit)
                self.edge("HAS_BOM_ITEM", mat.id, bid)
                self.edge("COMPONENT", bid, comp)
                approved: set[str] = set()  # one edge per (BOM item, substitute): it is the edge's key
                for orig, alt in fam.substitutes:
                    for size, _kg, _n in fam.sizes:
                        if cm.name == orig.format(size=size):
                            sub = self._raw(alt.format(size=size), cm.category, cm.unit, cm.pack_size,
                                            cm.cls)
                            vf = self.t0 - int(self.rng.random() * 200) * DAY
                            vt = "" if self.rng.random() < 0.7 else self.ts(NOW + int(60 + self.rng.random()
                                                                                      * 300) * DAY, self.utc)
                            ratio = q(round(1.0 + 0.05 * self.rng.random(), 3))
                            # the random draws above happen either way, so the rest of the plant is unchanged
                            if sub not in approved:
                                approved.add(sub)
                                self._ebuf_sub(bid, sub, self.ts(vf, self.utc), vt, ratio)
        for mat in self.mats.values():
            if mat.kind == "raw":
                self.node("Material", mat.id, mat.name, "ERP", "", "", kind="raw", unit=mat.unit,
                          material_class=mat.cls, aliases="|".join(mat.aliases))
                for s in mat.suppliers:
                    self.edge("SUPPLIES", s, mat.id)
            else:
                self.node("Material", mat.id, mat.name, "ERP", "", "", kind=mat.kind, unit=mat.unit,
                          material_class=mat.cls, aliases="|".join(mat.aliases))

    def _ebuf_sub(self, bom: str, sub: str, vf: str, vt: str, ratio: str) -> None:
        self._ebuf["APPROVED_SUBSTITUTE"].append(",".join((bom, sub, EDGE_SOURCE["APPROVED_SUBSTITUTE"], vf, vt,
                                                           ratio)))

    def _make_intermediate(self, z: int, fam: N.Family, brand: str, flavour: str, rnd: int) -> str:
        rng = self.rng
        iid = self.next_id("MAT-IM", 4)
        name = f"{flavour} {fam.intermediate} ({brand} formula {iid[-4:]})"
        mat = Mat(id=iid, name=name, kind="intermediate", unit="kg", cls=f"{fam.key} intermediate",
                  aliases=[f"IM-{iid[-4:]}", f"{flavour} {fam.intermediate}".lower()], z=z, shelf_days=30)
        ingr = list(fam.ingredients)
        rng.shuffle(ingr)
        chosen = ingr[: 2 + int(rng.random() * 3)]
        fractions = [0.45 + 0.2 * rng.random()] + [0.04 + 0.2 * rng.random() for _ in chosen[1:]]
        total = sum(fractions)
        scale = (0.9 + 0.08 * rng.random()) / total
        bom = [(self._raw(n, "ingredient", "kg", 1000.0, "ingredients"), round(f * scale, 4))
               for n, f in zip(chosen, fractions, strict=True)]
        bom.append((self._raw(fam.flavour_raw.format(flavour=flavour), "flavour", "kg", 200.0, "flavours"),
                    round(0.01 + 0.02 * rng.random(), 4)))
        mat.bom = bom
        self.mats[iid] = mat
        return iid

    def _opening_lot(self, z: int, iid: str) -> None:
        mat = self.mats[iid]
        t = self.t0 - DAY
        for _ in range(2):
            lot = self._new_lot(z, iid, 15000.0, t, "MES", name_hint="opening stock")
            lot.avail = t
            self.edge("FOR_MATERIAL", lot.id, iid, self.ts(t, z))
            self.inventory[(z, iid)].append(lot)
            self.level[(z, iid)] += lot.qty
        _ = mat

    def _new_lot(self, z: int, mid: str, qty: float, produced: int, source: str, name_hint: str = "",
                 valid_from: int | None = None) -> Lot:
        mat = self.mats[mid]
        seq = self.seq
        n = seq["LOT"] = seq["LOT"] + 1
        # == next_id("LOT"), inlined: one call fewer per lot (zfill: same text as a 07d format spec,
        # at about half its cost)
        lid = "LOT-" + str(n).zfill(7)
        name = f"{mat.aliases[0]} {name_hint or self.plants[z].code} {lid[-6:]}"
        # positional, in Lot's field order: id name z material qty unit produced_at valid_from source
        # free avail status consumed_q shipped_q expiry
        lot = Lot(lid, name, z, mid, qty, mat.unit, produced, produced if valid_from is None else valid_from,
                  source, qty, produced, "released", 0.0, 0.0, produced + mat.shelf_days * DAY)
        self.lots.append(lot)
        return lot

    def lot(self, lot_id: str) -> Lot:
        """The lot with this id."""
        n = int(lot_id[4:])
        if not 0 < n <= len(self.lots) or (lot := self.lots[n - 1]).id != lot_id:
            raise KeyError(lot_id)
        return lot

    def _build_people_and_shifts(self) -> None:
        rng = self.rng
        for z, p in enumerate(self.plants):
            site = self.site_ids[z]
            n_lines = self.spec.proc_lines + self.spec.pack_lines
            roles = [("operator", n_lines * 3), ("shift supervisor", 3), ("quality analyst", 2 + n_lines // 6),
                     ("maintenance technician", 2 + n_lines // 5), ("process engineer", 1 + n_lines // 10),
                     ("production planner", 1 + n_lines // 12)]
            for role, count in roles:
                for i in range(count):
                    pid = f"P-{p.code}-{self.seq['P-' + p.code] + 1:04d}"
                    self.seq["P-" + p.code] += 1
                    name = f"{self.pick(N.FIRST_NAMES)} {self.pick(N.LAST_NAMES)}"
                    certs = {
                        "operator": ["GMP basics", "Forklift"] if rng.random() < 0.4 else ["GMP basics"],
                        "quality analyst": ["GMP advanced", "HACCP", "Internal auditor"],
                        "maintenance technician": ["Electrical safety", "Lockout-tagout"],
                        "shift supervisor": ["GMP advanced", "First aid"],
                    }.get(role, ["GMP basics"])
                    self.node("Person", pid, name, "MES", site, "", role=role, certifications="|".join(certs))
                    self.edge("WORKS_AT", pid, site)
                    key = f"{role}:{i % 3}" if role == "operator" else role
                    self.persons[z][key].append(pid)
            # shifts, local 06-14, 14-22, 22-06
            d0, _, _ = self.clock.local_day_slot(self.t0 - DAY, z)
            d1, _, _ = self.clock.local_day_slot(self.t_end + DAY, z)
            for d in range(d0, d1 + 1):
                for slot, letter, label in ((0, "E", "early"), (1, "L", "late"), (2, "N", "night")):
                    local = d * DAY + (6 + 8 * slot) * HOUR
                    start = local - self.clock.offset(local - self.clock.offset(local, z)[0], z)[0]
                    end = start + 8 * HOUR
                    sid = f"SHIFT-{p.code}-{self.clock.date_str(d)}-{letter}"
                    self.shift_ids[(z, d, slot)] = sid
                    vf = min(start - 14 * DAY, NOW - HOUR)
                    self.node("Shift", sid, f"{p.city} {label} shift {self.clock.date_str(d)}", "MES", site,
                              self.ts(vf, z), start=self.ts(start, z), end=self.ts(end, z))
                    self.edge("SHIFT_AT", sid, site)

    # -----------------------------------------------------------------------------------------
    # SOPs and designs
    # -----------------------------------------------------------------------------------------

    def choose_designs(self) -> None:
        rng = self.rng
        d = self.designs
        H = self.spec.history_days * DAY
        used: set[str] = set()

        def fin_on(line: LineInfo) -> list[str]:
            return [m for m in line.materials if m not in used]

        # root cause: a finished material made on two packaging lines of plant 0
        z0_pack = [ln for ln in self.lines if ln.z == 0 and ln.kind == "pack"]
        cand = [m for m in z0_pack[0].materials if sum(m in ln.materials for ln in z0_pack) >= 2]
        d.rc_material = cand[0] if cand else z0_pack[0].materials[0]
        used.add(d.rc_material)
        ta = rmin(NOW - int(0.6 * H))
        length = max(2 * DAY, min(5 * DAY, int(0.15 * H)))
        d.rc_window = (ta, ta + length)
        # delivery-risk designs
        zb = 0
        zl = 1 % self.spec.plants
        pack_b = [ln for ln in self.lines if ln.z == zb and ln.kind == "pack"]
        pack_l = [ln for ln in self.lines if ln.z == zl and ln.kind == "pack"]
        line_b = pack_b[-1]
        mb = fin_on(line_b)[0]
        used.add(mb)
        d.behind = (zb, line_b.id, mb)
        line_d = pack_l[0] if zl != zb else pack_b[0]
        md = fin_on(line_d)[-1]
        used.add(md)
        d.downtime = (zl, line_d.id, md)
        d.excluded[md] = (NOW - 2 * DAY, line_d.id)
        ms = [m for ln in pack_b for m in fin_on(ln)]
        ms_choice = ms[len(ms) // 2]
        used.add(ms_choice)
        d.shortage = (zb, ms_choice)
        d.excluded[ms_choice] = (NOW - 3 * DAY, "")
        ml = [m for ln in pack_l for m in fin_on(ln)]
        ml_choice = ml[len(ml) // 3]
        used.add(ml_choice)
        d.late_supplier = (zl, ml_choice)
        _ = rng

    def build_sops(self) -> None:
        rng = self.rng
        d = self.designs
        groups: list[tuple[int, str, list[str]]] = []  # plant, title, materials
        by_inter: dict[str, list[str]] = defaultdict(list)
        for mm in self.mats.values():
            if mm.kind == "finished":
                if mm.id == d.rc_material:
                    groups.append((mm.z, f"Filling and packing {mm.name}", [mm.id]))
                else:
                    by_inter[mm.bom[0][0]].append(mm.id)
            elif mm.kind == "intermediate":
                groups.append((mm.z, f"Batch preparation of {mm.name}", [mm.id]))
        for inter, fins in by_inter.items():
            im = self.mats[inter]
            flavour = im.name.split(" (")[0]
            groups.append((im.z, f"Filling and packing of {flavour} products", fins))
        groups.sort(key=lambda g: (g[0], g[2][0]))
        for n, (z, title, mats) in enumerate(groups, start=1):
            sop = f"SOP-{n:04d}"
            site = self.site_ids[z]
            kind = self.mats[mats[0]].kind
            op = "filling" if kind == "finished" else "batching"
            first_from = rmin(self.t0 - int(60 + rng.random() * 400) * DAY)
            self.node("SOP", sop, title, "QMS", site, self.ts(first_from - 7 * DAY, z), title=title, operation=op)
            for m in mats:
                self.mats[m].sop = sop
                self.edge("APPLIES_TO", sop, m)
                self.applies_to[m].append(sop)
            if mats[0] == d.rc_material:
                a, b = d.rc_window
                changes = [rmin(self.t0 - 20 * DAY), a, b]
            else:
                k = int(self.nprng.poisson(self.spec.history_days / 40.0))
                span = NOW + 10 * DAY - (self.t0 - 30 * DAY)
                changes = sorted({rmin(self.t0 - 30 * DAY + int(rng.random() * span)) for _ in range(k)})
            bounds = [first_from, *changes]
            for i, start in enumerate(bounds):
                end = bounds[i + 1] if i + 1 < len(bounds) else None
                vid = f"SOPV-{n:04d}-{i + 1}"
                if mats[0] == d.rc_material and start == d.rc_window[0]:
                    d.rc_sop, d.rc_bad_version = sop, vid
                text = self._sop_text(title, kind, i + 1, mats[0] == d.rc_material and start == d.rc_window[0],
                                      mats[0] == d.rc_material and start == d.rc_window[1])
                self.sop_texts[vid] = text
                self.node("SOPVersion", vid, f"{title} v{i + 1}", "QMS", site,
                          self.ts(min(start - 7 * DAY, NOW - DAY), z), version=f"{i + 1}.0",
                          effective_from=self.ts(start, z), effective_to=self.ts(end, z), text=text)
                self.edge("VERSION_OF", vid, sop)
                self.versions[sop].append((vid, start, end))
        # equipment SOPs (cleaning), on lines so they never compete with product SOPs
        n = len(groups)
        for line in self.lines:
            if rng.random() < 0.5:
                continue
            n += 1
            sop = f"SOP-{n:04d}"
            z = line.z
            title = f"Cleaning in place (CIP) of {line.name}"
            self.node("SOP", sop, title, "QMS", self.site_ids[z], "", title=title, operation="cleaning")
            self.edge("APPLIES_TO", sop, line.id)
            start = rmin(self.t0 - int(100 + rng.random() * 300) * DAY)
            vid = f"SOPV-{n:04d}-1"
            text = (f"Cleaning of {line.name}: pre-rinse with potable water 5 min, caustic wash 1.5% at 75 °C "
                    f"for 20 min, intermediate rinse, acid wash 0.8% at 60 °C for 10 min, final rinse until "
                    f"conductivity below 50 µS/cm. Record all steps in the MES cleaning log.")
            self.node("SOPVersion", vid, f"{title} v1", "QMS", self.site_ids[z], self.ts(start - 7 * DAY, z),
                      version="1.0", effective_from=self.ts(start, z), effective_to="", text=text)
            self.edge("VERSION_OF", vid, sop)
        # machine operating instructions (labellers of some packaging lines), one or two versions
        for line in self.lines:
            if line.kind != "pack" or len(line.machines) < 3 or rng.random() < 0.7:
                continue
            n += 1
            sop = f"SOP-{n:04d}"
            z = line.z
            machine = line.machines[2]
            title = f"Operating instruction: label reel change on {machine}"
            self.node("SOP", sop, title, "QMS", self.site_ids[z], "", title=title, operation="labelling")
            self.edge("APPLIES_TO", sop, machine)
            self.applies_to[machine].append(sop)
            start = rmin(self.t0 - int(100 + rng.random() * 300) * DAY)
            bounds = [start] + ([rmin(self.t0 + rng.random() * (NOW - self.t0))] if rng.random() < 0.5 else [])
            for i, v_from in enumerate(bounds):
                v_to = bounds[i + 1] if i + 1 < len(bounds) else None
                vid = f"SOPV-{n:04d}-{i + 1}"
                text = (f"Label reel change on {machine}: stop the labeller from the HMI, open the guard only "
                        f"after the drive shows zero speed, splice the new reel with the tape template, check "
                        f"label position on the first {10 + 10 * i} units and record the reel lot in the MES.")
                self.node("SOPVersion", vid, f"{title} v{i + 1}", "QMS", self.site_ids[z],
                          self.ts(min(v_from - 7 * DAY, NOW - DAY), z), version=f"{i + 1}.0",
                          effective_from=self.ts(v_from, z), effective_to=self.ts(v_to, z), text=text)
                self.edge("VERSION_OF", vid, sop)
                self.versions[sop].append((vid, v_from, v_to))

    def _sop_text(self, title: str, kind: str, version: int, bad: bool, fix: bool) -> str:
        rng = self.rng
        if kind == "finished":
            temp = 4 + int(rng.random() * 4)
            checks = 15 + 5 * int(rng.random() * 4)
            body = (f"{title}. 1. Verify line clearance and the allergen matrix. 2. Set filler product "
                    f"temperature to {temp}-{temp + 2} °C. 3. Check fill weight every {checks} minutes on five "
                    f"consecutive units. 4. Verify closure torque and label position at start and after "
                    f"every stop. 5. Release pallets only after the QA checklist is signed.")
        else:
            minutes = 10 + int(rng.random() * 10)
            body = (f"{title}. 1. Charge ingredients in BOM order and confirm each weighing in the MES. "
                    f"2. Mix for {minutes} minutes at {55 + int(rng.random() * 20)} rpm. 3. Take a sample for "
                    f"pH and viscosity; adjust only within the limits of the specification. 4. Transfer "
                    f"through the 200 µm filter to the buffer tank.")
        if bad:
            body += (" Change in this version: the fill weight check interval was extended to 60 minutes and "
                     "the closure torque check after stops was removed to increase line speed.")
        elif fix:
            body += (" Change in this version: after complaint investigation the fill weight check interval "
                     "and the torque check after every stop were restored.")
        elif version > 1:
            body += f" Version {version}: wording clarified, no change to process parameters."
        return body

    def version_at(self, sop: str, t: int) -> tuple[str, str]:
        """(version in effect at t, previous version or '')."""
        vs = self.versions[sop]
        prev = ""
        for vid, a, b in vs:
            if a <= t and (b is None or t < b):
                return vid, prev
            prev = vid
        return vs[0][0], ""

    # -----------------------------------------------------------------------------------------
    # production simulation
    # -----------------------------------------------------------------------------------------

    def simulate(self) -> None:
        # version id -> effective from, for the superseded-version draw of every order
        self._vstart = {v: a for vs in self.versions.values() for v, a, _b in vs}
        total = self.spec.plants * (self.t_end - self.t0)
        for z in range(self.spec.plants):
            span = self.t_end - self.t0

            def progress(t: int, z: int = z, span: int = span) -> None:
                self.tick("production", z * span + (t - self.t0), total)

            self._simulate_plant(z, progress)
        # CONSUMED and PRODUCED edges are written only by _order, which keeps each lot's consumers
        # on the lot and each order's output lots on the order
        consumers = self.index.consumers
        for lot in self.lots:
            if lot.consumers is not None:
                consumers[lot.id] = lot.consumers
        produced = self.index.produced
        for o in self.orders:
            if o.outputs:
                produced[o.id] = o.outputs

    def _simulate_plant(self, z: int, progress: Callable[[int], None]) -> None:
        rng = self.rng
        d = self.designs
        lines = [ln for ln in self.lines if ln.z == z]
        heap: list[tuple[int, int]] = [(rmin(self.t0 + rng.random() * 4 * HOUR), i) for i in range(len(lines))]
        heapq.heapify(heap)
        pending: list[tuple[int, int, Lot]] = []
        pcount = 0
        behind_done = d.behind is None or d.behind[0] != z
        down_state = 0 if (d.downtime is not None and d.downtime[0] == z) else 2
        heappop, heappush = heapq.heappop, heapq.heappush
        random = rng.random
        t_end = self.t_end
        inventory = self.inventory
        order = self._order
        while heap:
            t, li = heappop(heap)
            if t >= t_end:
                continue
            line = lines[li]
            pcount += 1
            if pcount % 400 == 0:
                progress(min(t, t_end))
                if sum(map(len, self._ebuf.values())) >= 50_000:
                    self.flush()
            while pending and pending[0][0] <= t:
                lot = heappop(pending)[2]
                inventory[(z, lot.material)].append(lot)
            # designed disruptions
            if not behind_done and d.behind is not None and line.id == d.behind[1] and t >= NOW - 16 * HOUR:
                behind_done = True
                self._designed_behind_order(line, t, d.behind[2])
                heapq.heappush(heap, (rmin(NOW + 6 * HOUR), li))
                continue
            if down_state == 0 and d.downtime is not None and line.id == d.downtime[1] and t >= NOW - 14 * HOUR:
                down_state = 1
                start = rmin(min(max(t, NOW - 10 * HOUR) + rng.random() * HOUR, NOW - 2 * HOUR))
                self._designed_downtime(line, start)
                heapq.heappush(heap, (rmin(NOW + DAY), li))
                continue
            forced = ""
            if down_state == 1 and d.downtime is not None and line.id == d.downtime[1]:
                down_state = 2
                forced = d.downtime[2]
            if line.kind == "proc":
                mat_id = self._choose_intermediate(z, line)
                if not mat_id:
                    heapq.heappush(heap, (rmin(t + 2 * HOUR), li))
                    continue
                qty = float(rng.choice((10000, 12000, 15000, 18000)))
                dur = qty / line.rate * HOUR
                gap = (0.75 + random() * 0.75) * HOUR
            else:
                mat_id = forced or self._choose_finished(line, t)
                if not mat_id:
                    heapq.heappush(heap, (rmin(t + 4 * HOUR), li))
                    continue
                qty = float(rng.choice((900, 1200, 1500, 1800, 2400, 3000)))
                dur = qty / line.rate * HOUR
                gap = (0.5 + random()) * HOUR
            end = int(t + dur) // 60 * 60  # rmin, inlined
            order(line, mat_id, qty, t, end, pending)
            heappush(heap, (int(end + gap) // 60 * 60, li))
        progress(self.t_end)

    def _choose_intermediate(self, z: int, line: LineInfo) -> str:
        best = ""
        best_level = 0.0
        for m in line.materials:
            lv = self.level[(z, m)]
            if not best or lv < best_level:
                best, best_level = m, lv
        return best if best_level < 40000 else ""

    def _choose_finished(self, line: LineInfo, t: int) -> str:
        d = self.designs
        if d.rc_material in line.materials:
            # each line able to make the root-cause material makes it at least once before, during
            # and after the bad SOP window: bad lots come from two lines (no machine is shared by
            # all of them) and good lots of the same material exist on both lines
            a, b = d.rc_window
            phase = 0 if t < a - 12 * HOUR else 1 if a <= t < b else 2 if b <= t < NOW - 12 * HOUR else -1
            if phase >= 0 and (line.id, phase) not in self._rc_done:
                self._rc_done.add((line.id, phase))
                return d.rc_material
        cands: list[str] = []
        weights: list[float] = []
        for m in line.materials:
            ex = d.excluded.get(m)
            if ex is not None and t >= ex[0] and line.id != ex[1]:
                continue
            if ex is not None and t >= ex[0] and line.id == ex[1]:
                continue  # only the designed order may make it there
            w = 1.0
            if m == d.rc_material:
                a, b = d.rc_window
                w = max(3.0, len(line.materials) - 1.0) if a - 6 * HOUR <= t < b else 1.0
            cands.append(m)
            weights.append(w)
        if not cands:
            return ""
        x = self.rng.random() * sum(weights)
        for m, w in zip(cands, weights, strict=True):
            x -= w
            if x <= 0:
                return m
        return cands[-1]

    def _order(self, line: LineInfo, mat_id: str, qty: float, start: int, end: int,
               pending: list[tuple[int, int, Lot]], *, status: str | None = None,
               actual_end: int | bool | None = True, planned: tuple[int, int] | None = None) -> Order:
        """Create one production order whose actual run is [start, end) (planned if in the future).

        ``planned`` replaces the drawn planned start and end in the order's row (the draws still
        happen, so the rest of the plant is unchanged)."""
        # the hottest function of a run (once per production order): rmin and next_id are inlined
        rng = self.rng
        random = rng.random
        z = line.z
        kind = line.kind
        mat = self.mats[mat_id]
        seq = self.seq
        n = seq["MO"] = seq["MO"] + 1
        oid = "MO-" + str(n).zfill(7)
        delay = int(rng.gauss(0.3, 0.6) * HOUR) // 60 * 60
        ps = start - delay
        pe = int(ps + (end - start) * (0.9 + 0.2 * random())) // 60 * 60
        if start >= NOW:
            ps, pe = start, end
        created = int(min(ps - (2 + random() * 5) * DAY, NOW - (1 + random() * 40) * HOUR)) // 60 * 60
        ops = self._ops.get((z, kind))
        if ops is None:
            fam = N.FAMILIES[z % len(N.FAMILIES)]
            ops = self._ops[(z, kind)] = csv_field("|".join(fam.process_ops if kind == "proc" else fam.pack_ops))
        if status is None:
            if start >= NOW:
                status = "released" if start < NOW + 2 * DAY else "planned"
            elif end > NOW:
                status = "running"
            else:
                status = "completed"
        as_ = start if status in ("running", "completed") else None
        ae = end if status == "completed" else None
        # positional, in Order's field order
        order = Order(oid, z, line.id, mat_id, status, as_, ae)
        self.orders.append(order)
        fmt = self.clock.fmt
        vf_o = fmt(created, z)
        ebuf = self._ebuf
        ebuf["FOR_MATERIAL"].append(f"{oid},{mat_id},ERP,{vf_o},")
        ebuf["SCHEDULED_ON"].append(f"{oid},{line.id},MES,{vf_o},")
        # SOP version used: the one in effect, sometimes the superseded one right after a change
        anchor = as_ if as_ is not None else ps
        vid, prev = self.version_at(mat.sop, anchor)
        if prev and mat.sop != self.designs.rc_sop:
            changed_at = self._vstart[vid]
            if anchor - changed_at < 36 * HOUR and random() < 0.35:
                vid = prev
        order.sopv = vid
        ebuf["USED_SOP"].append(f"{oid},{vid},MES,{vf_o},")
        # the order's row, final already: nothing later changes an order's status or times
        s_as = "" if as_ is None else fmt(as_, z)
        s_end = "" if ae is None else fmt(ae, z)
        if planned is not None:
            ps, pe = planned
        qty_s = q(qty)
        unit = mat.unit
        self._nbuf["ProductionOrder"].append(
            f"{oid},{csv_field(f'{mat.aliases[0]} {qty_s} {unit} on {line.id}')},MES,{self.site_ids[z]},{vf_o},,"
            f"{qty_s},{unit},{status},{fmt(ps, z)},{fmt(pe, z)},{s_as},{s_end},{ops}")
        if as_ is None:
            # planned: book the planned material need against the level so processing keeps planning
            if kind == "pack":
                comp, per = mat.bom[0]
                self.level[(z, comp)] -= per * qty
            else:
                self.level[(z, mat_id)] += qty
            return order
        # it ran: machines, shift, operators, consumption
        ran_on = ebuf["RAN_ON"]
        tail = f",MES,{s_as},,{s_as},{s_end}"
        for m in line.machines:
            ran_on.append(oid + "," + m + tail)
        day, slot, _ = self.clock.local_day_slot(as_, z)
        sid = self.shift_ids.get((z, day, slot))
        if sid:
            ebuf["DURING_SHIFT"].append(f"{oid},{sid},MES,{s_as},")
            crew = self.persons[z][f"operator:{slot}"]
            ops_n = 1 if random() < 0.7 else 2
            first = crew[int(random() * len(crew))]
            ebuf["OPERATED_BY"].append(f"{oid},{first},MES,{s_as},")
            if ops_n == 2:
                second = crew[int(random() * len(crew))]
                if second != first:
                    ebuf["OPERATED_BY"].append(f"{oid},{second},MES,{s_as},")
        consumed: list[tuple[Lot, float]] = []
        consume = self._consume
        for comp, per in mat.bom:
            consume(z, comp, per * qty * (0.99 + 0.04 * random()), as_, consumed)
        cons_buf = ebuf["CONSUMED"]
        head = oid + ","
        mid = f",MES,{s_as},,"
        for lot, qq in consumed:
            cons_buf.append(f"{head}{lot.id}{mid}{q(qq)},{lot.unit}")
            # kept on the lot (already at hand) rather than looked up by id in a dict of every lot
            cl = lot.consumers
            if cl is None:
                lot.consumers = [oid]
            else:
                cl.append(oid)
        if ae is None:
            return order
        # outputs
        proc = kind == "proc"
        n_out = (1 if random() < 0.9 else 2) if proc else 1 + int(random() * 3)
        out_qty = qty * (0.97 + 0.03 * random())
        # round(x, 0) is float(round(x)) (both round the exact value half to even)
        share = (round3(out_qty / n_out) if mat.unit == "kg" else float(round(out_qty / n_out))) or 1.0
        release = ae + (2 * HOUR if proc else HOUR)
        outs: list[Lot] = []
        prod_buf, for_mat = ebuf["PRODUCED"], ebuf["FOR_MATERIAL"]
        prod_tail = f"{q(share)},{mat.unit}"  # every output lot has quantity share and the material's unit
        outputs = order.outputs  # the PRODUCED edges' lots (into the truth index after the simulation)
        for _ in range(n_out):
            lot = self._new_lot(z, mat_id, share, ae, "MES")
            lot_no = seq["LOT"]  # the number in lot.id, the heap's tie-break below
            lot.avail = release
            lid = lot.id
            outs.append(lot)
            prod_buf.append(f"{oid},{lid},MES,{s_end},,{prod_tail}")
            for_mat.append(f"{lid},{mat_id},ERP,{s_end},")
            outputs.append(lid)
            r = random()
            if r <= 0.02:
                self._production_hold(lot, z, r)
            if not lot.held:
                heapq.heappush(pending, (lot.avail, lot_no, lot))
                if proc:
                    self.level[(z, mat_id)] += lot.qty
        # lot-precise genealogy where the plant records it (plant 0: assembly data from the MES)
        if z == 0 and not proc:
            inter = [(lt, qq) for lt, qq in consumed if self.mats[lt.material].kind == "intermediate"]
            total = sum(qq for _, qq in inter)
            if inter and total > 0:
                bounds = [total * k / len(outs) for k in range(len(outs) + 1)]
                acc = 0.0
                spans = []
                for lt, qq in inter:
                    spans.append((lt, acc, acc + qq))
                    acc += qq
                for k, out in enumerate(outs):
                    lo, hi = bounds[k], bounds[k + 1]
                    for lt, a, b in spans:
                        ov = min(b, hi) - max(a, lo)
                        if ov > EPS:
                            self.edge("DERIVED_FROM", out.id, lt.id, s_end, q(ov), lt.unit)
        return order

    def _consume(self, z: int, comp: str, need: float, t: int, taken: list[tuple[Lot, float]]) -> None:
        """Take ``need`` of ``comp`` FIFO from the plant's stock (replenishing raw materials just in
        time); appends (lot, quantity) to ``taken``."""
        key = (z, comp)
        inv = self.inventory[key]
        mat = self.mats[comp]
        if mat.kind == "intermediate":
            self.level[key] -= need
        pcs = mat.unit == "pcs"
        if inv and need > EPS and inv[0].free > need:
            # the common case, one step of the loop below: the first lot covers the need and stays open
            lot = inv[0]
            free = lot.free - need
            if free > EPS and not (pcs and free < 1):
                lot.free = free
                lot.consumed_q += need
                lot.last_used = t
                taken.append((lot, need))
                return
        while need > EPS:
            if not inv:
                if mat.kind != "raw":
                    break
                self._replenish(z, comp, need, t)
                if not inv:
                    break
            lot = inv[0]
            free = lot.free
            take = free if free < need else need
            if take * 1000 < need and free < EPS:
                inv.popleft()
                continue
            lot.free = free = free - take
            lot.consumed_q += take
            lot.last_used = t
            need -= take
            if take > EPS:
                taken.append((lot, take))
            if free <= EPS or (pcs and free < 1):
                lot.free = 0.0
                inv.popleft()

    def _replenish(self, z: int, rid: str, need: float, t: int) -> None:
        """A just-in-time delivery: a PO line that arrived before t as one or two supplier lots."""
        rng = self.rng
        mat = self.mats[rid]
        pack = mat.pack_size
        qty = math.ceil(need * (5 + 8 * rng.random()) / pack) * pack
        delivered = rmin(t - (2 + rng.random() * 70) * HOUR)
        supplier = self.pick(mat.suppliers)
        r = rng.random()
        if r < 0.15:  # late against the promise
            promised = delivered - int((1 + rng.random() * 4) * DAY)
        elif r < 0.3:  # early
            promised = delivered + int((1 + rng.random() * 3) * DAY)
        else:
            promised = delivered + int((rng.random() - 0.5) * 24 * HOUR)
        promised = promised // HOUR * HOUR
        order_date = rmin(min(promised, delivered) - (7 + rng.random() * 14) * DAY)
        # positional, in POLine's field order: id z material supplier qty unit promised delivered order_date
        pol = POLine(self.next_id("POL"), z, rid, supplier, qty, mat.unit, promised, delivered, order_date)
        self.polines.append(pol)
        n = 1 if rng.random() < 0.75 or qty < 2 * pack else 2
        parts = [qty] if n == 1 else [math.ceil(qty / 2 / pack) * pack, qty - math.ceil(qty / 2 / pack) * pack]
        for part in parts:
            if part <= 0:
                continue
            lot = self._supplier_lot(z, pol, part, delivered)
            quarantine = rng.random() < 0.03 and t - delivered > 6 * HOUR
            if quarantine:
                rel = rmin(delivered + (t - delivered) * (0.3 + 0.6 * rng.random()))
                self._hold(z, [lot], "Incoming inspection: certificate of analysis missing", delivered + 30 * 60,
                           rel, "quality analyst")
            self.inventory[(z, rid)].append(lot)

    def _supplier_lot(self, z: int, pol: POLine, qty: float, delivered: int) -> Lot:
        rng = self.rng
        lot = self._new_lot(z, pol.material, qty, rmin(delivered - (5 + rng.random() * 40) * DAY), "ERP",
                            name_hint=f"{pol.supplier[-4:]}-B{int(rng.random() * 90000) + 10000}",
                            valid_from=delivered)
        lot.avail = delivered
        lot.supplier = pol.supplier
        pol.lots.append((lot.id, qty))
        s_del = self.clock.fmt(delivered, z)
        self._ebuf["FOR_MATERIAL"].append(f"{lot.id},{pol.material},ERP,{s_del},")
        self._ebuf["SUPPLIED_BY"].append(f"{lot.id},{pol.supplier},ERP,{s_del},")
        self._pending_rows += 2
        return lot

    def _production_hold(self, lot: Lot, z: int, r: float) -> None:
        """A freshly produced lot: scrapped (r < 0.4%) or put on hold (r < 2%); ``r`` is the draw
        the caller made (it skips the call for the other 98%)."""
        rng = self.rng
        if r < 0.004:
            lot.status = "scrapped"
            lot.held = True
            lot.free = 0.0
            return
        if r > 0.02:
            return
        placed = rmin(lot.produced_at + (0.5 + rng.random() * 8) * HOUR)
        if placed > NOW - HOUR:
            return
        released: int | None = rmin(placed + (1 + rng.random() * 5) * DAY)
        if released is not None and released > NOW:
            released = None
            lot.held = True
            lot.status = "on_hold"
        else:
            lot.avail = max(lot.avail, released or lot.avail)
        self._hold(z, [lot], self.pick(N.HOLD_REASONS), placed, released, "quality analyst")

    def _hold(self, z: int, lots: list[Lot], reason: str, placed: int, released: int | None, role: str) -> str:
        hid = self.next_id("HOLD", 6)
        by = self.person(z, role)
        s_placed = self.ts(placed, z)
        self.node("QualityHold", hid, f"Hold: {reason}", "QMS", self.site_ids[z], s_placed,
                  reason=reason, placed_at=s_placed, released_at=self.ts(released, z), placed_by=by)
        for lot in lots:
            self.edge("HOLDS", hid, lot.id, s_placed)
            self.hold_lots[lot.id].append(hid)
            if released is None:
                lot.status = "quarantined" if reason.startswith("Incoming") else "on_hold"
        self.hold_times[hid] = (placed, released)
        self.edge("RAISED_BY", hid, by, s_placed)
        return hid

    def _designed_behind_order(self, line: LineInfo, t: int, mat_id: str) -> None:
        """A packaging order that should have finished hours ago and is still running."""
        ps = min(t, NOW - 9 * HOUR)
        start = rmin(ps + 90 * 60)
        order = self._order(line, mat_id, 600.0, start, NOW + 6 * HOUR, [], status="running",
                            planned=(ps, rmin(ps + 5 * HOUR)))
        self.designs.behind_order = order.id

    def _designed_downtime(self, line: LineInfo, start: int) -> None:
        """An ongoing breakdown on the filler of a line, open at now (end unknown)."""
        z = line.z
        mid = line.machines[0]
        did = self.next_id("DT", 6)
        reason = "Servo drive failure on filler, waiting for spare part"
        self.node("DowntimeEvent", did, f"Breakdown of {mid}", "MES", self.site_ids[z], self.ts(start, z),
                  start=self.ts(start, z), end=None, reason=reason)
        self.edge("OCCURRED_ON", did, mid, self.ts(start, z))
        self.designs.downtime_event = did
        mo = self.next_id("MNT", 6)
        self.node("MaintenanceOrder", mo, f"Replace servo drive on {mid}", "CMMS", self.site_ids[z],
                  self.ts(start + 20 * 60, z), kind="corrective", status="in_progress",
                  created_at=self.ts(start + 20 * 60, z), completed_at=None,
                  text=f"Servo drive of {mid} failed; spare part ordered, expected delivery in 2-3 days.")
        self.edge("OCCURRED_ON", mo, mid, self.ts(start + 20 * 60, z))
        self.edge("ADDRESSES", mo, did, self.ts(start + 20 * 60, z))

    # -----------------------------------------------------------------------------------------
    # sales: finished lots feed sales order lines (shipped in the past, allocated for the future)
    # -----------------------------------------------------------------------------------------

    def build_sales(self) -> None:
        rng = self.rng
        by_mat: dict[tuple[int, str], list[Lot]] = defaultdict(list)
        for lot in self.lots:
            if lot.held or lot.source != "MES" or self.mats[lot.material].kind != "finished":
                continue
            by_mat[(lot.z, lot.material)].append(lot)
        sizes = (300, 480, 600, 900, 1200, 1500, 1800, 2400)
        random = rng.random
        solines = self.solines
        priority = self._priority
        for (z, m), lots in by_mat.items():
            lots.sort(key=lambda lt: (lt.avail, lt.id))
            queue = deque(lt for lt in lots if lt.avail <= NOW - HOUR and lt.free > EPS)
            popleft = queue.popleft
            mat = self.mats[m]
            unit = mat.unit
            while queue:
                if queue[0].avail > NOW - 36 * HOUR and random() < 0.35:
                    break  # recent production stays in stock, free
                left = float(rng.choice(sizes))
                taken: list[tuple[Lot, float]] = []
                last = 0
                while left > EPS and queue:
                    lot = queue[0]
                    free = lot.free
                    take = free if free < left else left  # min(), first on ties as min() is
                    lot.free = free = free - take
                    left -= take
                    taken.append((lot, take))
                    if lot.avail > last:
                        last = lot.avail
                    if free <= EPS:
                        lot.free = 0.0
                        popleft()
                if not taken:
                    break
                qty = sum(t for _, t in taken)
                due = (last + int((1 + random() * 7) * DAY)) // HOUR * HOUR
                # rmin inlined below: int(x) // 60 * 60
                ship = int(max(last + (4 + random() * 26) * HOUR, due - random() * 2 * DAY)) // 60 * 60
                if random() < 0.08:
                    ship = int(due + (0.5 + random() * 2.5) * DAY) // 60 * 60
                seq = self.seq
                n = seq["SOL"] = seq["SOL"] + 1
                sol = SOLine("SOL-" + str(n).zfill(7), z, m, qty, unit, due, priority())
                if ship <= NOW - HOUR:
                    sol.status = "shipped"
                    shipments = sol.shipments
                    for lot, take in taken:
                        lot.shipped_q += take
                        shipments.append((lot.id, take, ship))
                else:
                    alloc = int(min(NOW - 30 * 60, last + (1 + random() * 11) * HOUR)) // 60 * 60
                    allocations = sol.allocations
                    for lot, take in taken:
                        allocations.append((lot.id, take, alloc))
                solines.append(sol)
                if random() < 0.02:
                    cancelled = SOLine(id=self.next_id("SOL"), z=z, material=m, qty=float(rng.choice(sizes)),
                                       unit=mat.unit, due=due, priority="normal", status="cancelled")
                    self.solines.append(cancelled)
            # open demand that planned production will have to cover
            for _ in range(1 + int(self.nprng.poisson(1.0))):
                due = (NOW + int((1 + rng.random() * (self.spec.future_days - 2)) * DAY)) // HOUR * HOUR
                self.solines.append(SOLine(id=self.next_id("SOL"), z=z, material=m,
                                           qty=float(rng.choice(sizes)), unit=mat.unit, due=due,
                                           priority=self._priority()))

    def _priority(self) -> str:
        r = self.rng.random()
        return "normal" if r < 0.7 else "high" if r < 0.85 else "low" if r < 0.95 else "urgent"

    def _customer(self) -> str:
        if len(self._cum_weights) != len(self.customer_weights):
            self._cum_weights = list(itertools.accumulate(self.customer_weights))
        return self.rng.choices(self.customers, cum_weights=self._cum_weights)[0]

    def _new_so(self, z: int, lines: list[SOLine], customer: str | None = None) -> None:
        rng = self.rng
        so = self.next_id("SO")
        cust = customer or self._customer()
        od = rmin(min(sol.due for sol in lines) - (5 + rng.random() * 20) * DAY)
        od = min(od, rmin(NOW - (1 + rng.random() * 20) * HOUR))
        st = [sol.status for sol in lines]
        status = ("shipped" if all(s in ("shipped", "cancelled") for s in st) and "shipped" in st
                  else "partially_shipped" if "shipped" in st else "cancelled" if all(s == "cancelled" for s in st)
                  else "open")
        site = self.site_ids[z]
        fmt = self.clock.fmt
        s_od = fmt(od, z)
        if self._pcols["SalesOrder"] != ["order_date", "status"]:
            raise RuntimeError("ontology columns of SalesOrder changed; update _new_so")
        self._nbuf["SalesOrder"].append(f"{so},{so} ({len(lines)} lines),ERP,{site},{s_od},,{s_od},{status}")
        # the edges go straight into the buffers and the truth index (hundreds of thousands of them)
        ebuf = self._ebuf
        index = self.index
        ebuf["PLACED_BY"].append(f"{so},{cust},ERP,{s_od},")
        index.so_customer[so] = cust
        has_line, for_mat = ebuf["HAS_SO_LINE"], ebuf["FOR_MATERIAL"]
        shipped_to, allocated_to = ebuf["SHIPPED_TO"], ebuf["ALLOCATED_TO"]
        n = 1 + 2 * len(lines)
        for sol in lines:
            sol.so = so
            sol.created = od
            sid = sol.id
            has_line.append(f"{so},{sid},ERP,{s_od},")
            index.sol_order[sid] = so
            for_mat.append(f"{sid},{sol.material},ERP,{s_od},")
            tail = "," + sol.unit
            for lot, qq, shipped in sol.shipments:
                s_sh = fmt(shipped, z)
                shipped_to.append(f"{lot},{sid},ERP,{s_sh},,{q(qq)}{tail},{s_sh}")
                index.shipped[lot].append(sid)
            for lot, qq, frm in sol.allocations:
                allocated_to.append(f"{lot},{sid},ERP,{fmt(max(frm, od), z)},,{q(qq)}{tail}")
                index.allocated[lot].append(sid)
                index.allocated_lots[sid].append(lot)
            n += len(sol.shipments) + len(sol.allocations)
        self._pending_rows += n
        if self._pending_rows >= 50_000:
            self.flush()

    def group_sales_orders(self) -> None:
        rng = self.rng
        for z in range(self.spec.plants):
            todo = sorted((s for s in self.solines if s.z == z and not s.so), key=lambda s: (s.due, s.id))
            i = 0
            while i < len(todo):
                k = 1 + int(rng.random() * 4)
                self._new_so(z, todo[i:i + k])
                i += k

    def post_allocation_holds(self) -> None:
        """Some allocated lots go on hold after allocation (found in a later check)."""
        rng = self.rng
        for sol in self.solines:
            for lot_id, _qq, frm in sol.allocations:
                lot = self.lot(lot_id)
                if lot.status != "released" or rng.random() > 0.012:
                    continue
                start = max(frm, sol.created) + HOUR
                if start > NOW - 2 * HOUR:
                    continue
                placed = rmin(start + rng.random() * (NOW - HOUR - start))
                self._hold(lot.z, [lot], self.pick(N.HOLD_REASONS), placed, None, "quality analyst")

    # -----------------------------------------------------------------------------------------
    # background events
    # -----------------------------------------------------------------------------------------

    def build_events(self) -> None:
        rng = self.rng
        days = self.spec.history_days
        for mid, line in self.machine_line.items():
            z = line.z
            site = self.site_ids[z]
            n_dt = int(self.nprng.poisson(0.1 * days))
            for _ in range(n_dt):
                start = rmin(self.t0 + rng.random() * (NOW - 4 * HOUR - self.t0))
                dur = min(6 * HOUR, max(10 * 60, int(rng.lognormvariate(math.log(45 * 60), 0.8))))
                end = rmin(min(start + dur, NOW - 10 * 60))
                reason = self.pick(N.DOWNTIME_REASONS)
                did = self.next_id("DT", 6)
                self.node("DowntimeEvent", did, f"{reason} on {mid}", "MES", site, self.ts(start, z),
                          start=self.ts(start, z), end=self.ts(end, z), reason=reason)
                self.edge("OCCURRED_ON", did, mid, self.ts(start, z))
                if rng.random() < 0.35:
                    created = start + 10 * 60
                    done = rmin(end + rng.random() * 2 * HOUR)
                    mo = self.next_id("MNT", 6)
                    by = self.person(z, "maintenance technician")
                    self.node("MaintenanceOrder", mo, f"Repair after {reason.lower()} on {mid}", "CMMS", site,
                              self.ts(created, z), kind="corrective",
                              status="completed" if done <= NOW else "in_progress",
                              created_at=self.ts(created, z), completed_at=self.ts(done if done <= NOW else None, z),
                              text=f"{reason} on {mid}. Root cause checked, parts inspected, machine returned "
                                   f"to production after a test run.")
                    self.edge("OCCURRED_ON", mo, mid, self.ts(created, z))
                    self.edge("ADDRESSES", mo, did, self.ts(created, z))
                    self.edge("RAISED_BY", mo, by, self.ts(created, z))
            n_an = int(self.nprng.poisson(0.2 * days))
            if n_an:
                scores = 0.55 + 0.45 * self.nprng.beta(2.0, 4.0, size=n_an)
                for s in scores:
                    t = rmin(self.t0 + rng.random() * (NOW - self.t0 - HOUR))
                    sig = self.pick(N.ANOMALY_SIGNALS)
                    aid = self.next_id("ANO", 6)
                    self.node("Anomaly", aid, f"{N.SIGNALS_TEXT[sig]} anomaly on {mid}", "IIoT", site,
                              self.ts(t, z), signal=sig, score=q(round(float(s), 3)), detected_at=self.ts(t, z))
                    self.edge("OCCURRED_ON", aid, mid, self.ts(t, z))
                    if s > 0.85 and rng.random() < 0.5:
                        mo = self.next_id("MNT", 6)
                        created = t + HOUR
                        done = rmin(created + (1 + rng.random() * 3) * DAY)
                        self.node("MaintenanceOrder", mo, f"Inspect {N.SIGNALS_TEXT[sig]} on {mid}", "CMMS",
                                  site, self.ts(created, z), kind="predictive",
                                  status="completed" if done <= NOW else "open",
                                  created_at=self.ts(created, z),
                                  completed_at=self.ts(done if done <= NOW else None, z),
                                  text=f"Condition monitoring flagged {N.SIGNALS_TEXT[sig]} on {mid} "
                                       f"(score {s:.2f}). Inspect and trend for one week.")
                        self.edge("OCCURRED_ON", mo, mid, self.ts(created, z))
                        self.edge("ADDRESSES", mo, aid, self.ts(created, z))
            t = rmin(self.t0 + rng.random() * 21 * DAY)
            while t < NOW + 14 * DAY:
                mo = self.next_id("MNT", 6)
                created = min(t - 3 * DAY, NOW - HOUR)
                done = t + rmin((2 + rng.random() * 6) * HOUR)
                status = "completed" if done <= NOW else "open"
                self.node("MaintenanceOrder", mo, f"Preventive maintenance {mid}", "CMMS", site,
                          self.ts(created, z), kind="preventive", status=status, created_at=self.ts(created, z),
                          completed_at=self.ts(done if status == "completed" else None, z),
                          text=f"Planned {21}-day service of {mid}: lubrication, wear parts check, sensor "
                               f"calibration.")
                self.edge("OCCURRED_ON", mo, mid, self.ts(created, z))
                t += 21 * DAY
        # incidents on orders that ran
        ran = [o for o in self.orders if o.status == "completed" and o.as_ is not None]
        if not ran:
            return
        n_inc = int(self.nprng.poisson(0.06 * len(self.lines) * days))
        kinds = ("deviation", "nonconformance", "safety", "downtime")
        for _ in range(n_inc):
            o = ran[int(rng.random() * len(ran))]
            kind = rng.choices(kinds, weights=(0.45, 0.25, 0.1, 0.2))[0]
            severity = rng.choices(("low", "medium", "high", "critical"), weights=(0.4, 0.35, 0.2, 0.05))[0]
            assert o.as_ is not None and o.ae is not None
            t = rmin(o.as_ + rng.random() * (o.ae - o.as_))
            machine = self.pick(self.line_by_id[o.line].machines)
            role = "quality analyst" if kind == "nonconformance" else f"operator:{int(rng.random() * 3)}"
            who = self.person(o.z, role)
            title_t, text_t = rng.choice(N.INCIDENT_TEMPLATES[kind])
            fmt = {"machine": machine, "order": o.id, "material": self.mats[o.material].name,
                   "param": self.pick(N.PARAMS), "minutes": str(5 + int(rng.random() * 55)), "person": who,
                   "defect": self.pick(N.DEFECTS), "reason": self.pick(N.DOWNTIME_REASONS).lower()}
            self._incident(o.z, kind, severity, t, title_t.format(**fmt), text_t.format(**fmt), who,
                           on=machine, concerns=[o.id] + (o.outputs[:1] if kind == "nonconformance" else []))

    def _incident(self, z: int, kind: str, severity: str, t: int, title: str, text: str, who: str,
                  on: str | None, concerns: list[str]) -> str:
        iid = self.next_id("INC", 6)
        s_t = self.ts(t, z)
        self.node("Incident", iid, title, "QMS", self.site_ids[z], s_t, kind=kind, severity=severity,
                  occurred_at=s_t, title=title, text=text)
        if on:
            self.edge("OCCURRED_ON", iid, on, s_t)
        for c in concerns:
            self.edge("CONCERNS", iid, c, s_t)
        self.edge("RAISED_BY", iid, who, s_t)
        return iid

    # -----------------------------------------------------------------------------------------
    # scenarios with known answers
    # -----------------------------------------------------------------------------------------

    def _dt(self, t: int, z: int) -> datetime:
        return datetime.fromisoformat(self.ts(t, z))

    def scenario_machine_fault(self) -> MachineFault:
        rng = self.rng
        H = self.spec.history_days * DAY
        cands = [o for o in self.orders
                 if o.ae is not None and o.as_ is not None and self.line_by_id[o.line].kind == "proc"
                 and NOW - 0.6 * H <= o.ae <= NOW - 0.2 * H]
        rng.shuffle(cands)
        lines = {o.line for o in cands[:40]}
        runs: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
        for o in self.orders:
            if o.line in lines and o.as_ is not None:
                runs[o.line].append((o.id, o.as_, o.ae))
        best: tuple[tuple[int, int], Any] | None = None
        for o in cands[:40]:
            assert o.as_ is not None
            m = self.line_by_id[o.line].machines[0]
            frm = o.as_ + 30 * 60
            to = frm + 6 * HOUR
            affected = sorted(oid for oid, s, e in runs[o.line] if s < to and (e is None or e > frm))
            lots = sorted({lt for oid in affected for lt in self.index.produced.get(oid, ())})
            tr = forward_trace(self.index, lots)
            score = (min(len(tr.reached_customers), 2) + min(len(tr.reached_lots), 3), -len(tr.reached_lots))
            if best is None or score > best[0]:
                best = (score, (o, m, frm, to, affected, lots, tr))
            if score[0] >= 5:
                break
        assert best is not None, "no processing order to hang the machine fault on"
        o, m, frm, to, affected, lots, tr = best[1]
        z = o.z
        tech = self.person(z, "maintenance technician")
        inc = self._incident(
            z, "deviation", "high", frm, f"Temperature controller drift on {m}",
            f"The product temperature controller of {m} drifted by up to 8 °C from about "
            f"{self.ts(frm, z)[11:16]} until it was replaced at {self.ts(to, z)[11:16]}. Batches processed in "
            f"this window may be under-processed and must be assessed.", tech, on=m, concerns=affected)
        mo = self.next_id("MNT", 6)
        self.node("MaintenanceOrder", mo, f"Replace temperature controller on {m}", "CMMS", self.site_ids[z],
                  self.ts(to - HOUR, z), kind="corrective", status="completed", created_at=self.ts(to - HOUR, z),
                  completed_at=self.ts(to, z), text=f"Controller of {m} replaced and loop retuned.")
        self.edge("OCCURRED_ON", mo, m, self.ts(to - HOUR, z))
        self.edge("ADDRESSES", mo, inc, self.ts(to - HOUR, z))
        return MachineFault.model_validate({
            "machine": m, "incident": inc, "from": self._dt(frm, z), "to": self._dt(to, z),
            "affected_production_orders": affected, "affected_lots": lots,
            "reached_sales_order_lines": tr.reached_sales_order_lines, "reached_customers": tr.reached_customers})

    def scenario_contaminated(self) -> ContaminatedSupplierLot:
        rng = self.rng
        H = self.spec.history_days * DAY
        every = [lt for lt in self.lots
                 if lt.source == "ERP" and self.mats[lt.material].category in ("ingredient", "flavour")
                 and len(self.index.consumers.get(lt.id, ())) >= 2]
        cands = [lt for lt in every if NOW - 0.75 * H <= lt.valid_from <= NOW - 0.3 * H]
        rng.shuffle(cands)
        rng.shuffle(every)
        # mid-history lots first; any consumed-twice lot when none of those qualifies (short histories)
        ok: list[tuple[int, str, Any]] = []
        fallback: tuple[tuple[int, int, int], Lot, Any] | None = None
        tried: set[str] = set()
        for lt in [*cands[:60], *every[:120]]:
            if len(ok) >= 3:
                break
            if lt.id in tried:
                continue
            tried.add(lt.id)
            tr = forward_trace(self.index, [lt.id])
            good = (len(tr.reached_lots) >= 3 and len(tr.reached_customers) >= 2 and tr.shipped_lots
                    and tr.in_house_lots)
            if good:
                ok.append((len(tr.reached_lots), lt.id, (lt, tr)))
            key = (len(tr.reached_customers), len(tr.shipped_lots) > 0, len(tr.reached_lots))
            if fallback is None or key > fallback[0]:
                fallback = (key, lt, tr)
        if ok:
            ok.sort(key=lambda x: (x[0], x[1]))
            lot, tr = ok[len(ok) // 3][2]
        else:
            assert fallback is not None, "no supplier lot was consumed twice"
            lot, tr = fallback[1], fallback[2]
        return ContaminatedSupplierLot(
            supplier_lot=lot.id, supplier=lot.supplier, reached_lots=tr.reached_lots,
            reached_production_orders=tr.reached_production_orders,
            reached_sales_order_lines=tr.reached_sales_order_lines, reached_customers=tr.reached_customers,
            shipped_lots=tr.shipped_lots, in_house_lots=tr.in_house_lots)

    def scenario_quality_hold(self) -> QualityHoldScenario:
        rng = self.rng
        H = self.spec.history_days * DAY
        cands = [lt for lt in self.lots
                 if lt.source == "MES" and self.mats[lt.material].kind == "intermediate" and not lt.held
                 and lt.status == "released" and lt.last_used
                 and NOW - 0.8 * H <= lt.produced_at <= NOW - DAY and lt.last_used < NOW - 3 * HOUR]
        rng.shuffle(cands)
        best: tuple[tuple[int, int, int], Lot, Any] | None = None
        for lt in cands[:80]:
            tr = forward_trace(self.index, [lt.id])
            key = (min(len(tr.reached_customers), 2), min(len(tr.reached_sales_order_lines), 3),
                   int(lt.free > EPS))
            if best is None or key > best[0]:
                best = (key, lt, tr)
            if key == (2, 3, 1):
                break
        assert best is not None, "no intermediate lot to place the scenario hold on"
        _, lot, tr = best
        placed = rmin(min(NOW - HOUR, lot.last_used + (1 + rng.random() * 2) * HOUR))
        hid = self._hold(lot.z, [lot], "Foreign matter suspected: metal detector reject rate above limit", placed,
                         None, "quality analyst")
        return QualityHoldScenario(hold=hid, lot=lot.id, placed_at=self._dt(placed, lot.z),
                                   reached_lots=tr.reached_lots,
                                   reached_sales_order_lines=tr.reached_sales_order_lines,
                                   affected_customers=tr.reached_customers)

    def scenario_root_cause(self) -> RootCause:
        d = self.designs
        bad_orders = sorted(o.id for o in self.orders
                            if o.sopv == d.rc_bad_version and o.ae is not None
                            and o.material == d.rc_material)
        bad_lots = sorted({lt for oid in bad_orders for lt in self.index.produced.get(oid, ())})
        z = self.mats[d.rc_material].z
        t = rmin(min(NOW - 2 * HOUR, d.rc_window[1] + 2 * DAY))
        who = self.person(z, "quality analyst")
        name = self.mats[d.rc_material].name
        inc = self._incident(
            z, "nonconformance", "high", t, f"Customer complaints: short fill and loose closures on {name}",
            f"Several customers reported short-filled units and loose closures on {name}. Retained samples "
            f"of the affected lots confirm fill weights below the declared quantity and closure torque below "
            f"specification. Investigation of the production history is open.", who, on=None, concerns=bad_lots)
        return RootCause(bad_lots=bad_lots, incident=inc, factor_class="SOPVersion", factor=d.rc_bad_version)

    def _free_stock(self, z: int, m: str) -> list[Lot]:
        return [lt for lt in self.lots
                if lt.z == z and lt.material == m and lt.status == "released" and not lt.held
                and lt.free > EPS and lt.avail <= NOW - HOUR and lt.source == "MES"]

    def _designed_line(self, z: int, m: str, extra: float, due_days: float) -> SOLine:
        rng = self.rng
        mat = self.mats[m]
        sol = SOLine(id=self.next_id("SOL"), z=z, material=m, qty=extra, unit=mat.unit,
                     due=(NOW + int(due_days * DAY)) // HOUR * HOUR, priority=rng.choice(("high", "urgent")))
        for lot in self._free_stock(z, m):
            sol.allocations.append((lot.id, lot.free, rmin(NOW - (2 + rng.random() * 20) * HOUR)))
            sol.qty += lot.free
            lot.free = 0.0
        self.solines.append(sol)
        self._new_so(z, [sol])
        return sol

    def scenario_risk(self) -> dict[str, list[RiskCause]]:
        rng = self.rng
        d = self.designs
        causes: dict[str, list[RiskCause]] = {}
        designed = {d.rc_material} | {x[2] for x in (d.behind, d.downtime) if x} | {
            x[1] for x in (d.shortage, d.late_supplier) if x}
        # hold: a lot allocated to an open line due soon, found defective yesterday
        open_lines = [s for s in self.solines
                      if s.status == "open" and s.allocations and s.material not in designed
                      and NOW + 2 * DAY <= s.due <= NOW + 12 * DAY
                      and all(self.lot(a[0]).status == "released" for a in s.allocations)]
        if open_lines:
            sol = open_lines[int(rng.random() * len(open_lines))]
            lot = self.lot(sol.allocations[0][0])
        else:
            stock = [lt for lt in self.lots
                     if lt.source == "MES" and self.mats[lt.material].kind == "finished"
                     and lt.material not in designed and lt.status == "released" and not lt.held
                     and lt.free > EPS and lt.avail <= NOW - 2 * HOUR]
            lot = stock[int(rng.random() * len(stock))]
            sol = SOLine(id=self.next_id("SOL"), z=lot.z, material=lot.material, qty=lot.free, unit=lot.unit,
                         due=(NOW + int((2 + rng.random() * 7) * DAY)) // HOUR * HOUR, priority="high")
            sol.allocations.append((lot.id, lot.free, rmin(NOW - 2 * HOUR)))
            lot.free = 0.0
            self.solines.append(sol)
            self._new_so(lot.z, [sol])
        placed = rmin(max(NOW - 20 * HOUR, max(a[2] for a in sol.allocations) + HOUR))
        hid = self._hold(lot.z, [lot], "Seal integrity check failed on retained samples",
                         min(placed, NOW - 30 * 60), None, "quality analyst")
        causes[sol.id] = [RiskCause(kind="hold", entity=hid)]
        if d.behind:
            z, _line, m = d.behind
            sol = self._designed_line(z, m, 600.0, 3 + rng.random() * 4)
            causes[sol.id] = [RiskCause(kind="behind_schedule", entity=d.behind_order)]
        if d.downtime:
            z, _line, m = d.downtime
            sol = self._designed_line(z, m, 480.0, 2 + rng.random() * 3)
            causes[sol.id] = [RiskCause(kind="downtime", entity=d.downtime_event)]
        if d.shortage:
            z, m = d.shortage
            sol = self._designed_line(z, m, 720.0, 4 + rng.random() * 5)
            causes[sol.id] = [RiskCause(kind="shortage", entity=m)]
        if d.late_supplier:
            z, m = d.late_supplier
            label = self.mats[m].bom[-1][0]
            rm = self.mats[label]
            pol = POLine(id=self.next_id("POL"), z=z, material=label, supplier=rm.suppliers[0], qty=30000.0,
                         unit=rm.unit, promised=(NOW - 2 * DAY) // HOUR * HOUR, delivered=None,
                         order_date=rmin(NOW - 20 * DAY))
            self.polines.append(pol)
            sol = self._designed_line(z, m, 600.0, 5 + rng.random() * 5)
            causes[sol.id] = [RiskCause(kind="late_supplier", entity=pol.id)]
        return causes

    def _hold_active(self, hold: str) -> bool:
        placed, released = self.hold_times[hold]
        return placed <= NOW and (released is None or released > NOW)

    def lines_with_held_allocations(self, horizon_days: int) -> list[str]:
        """Exactly the contract's definition, over the emitted edges and final statuses."""
        out = []
        hi = NOW + horizon_days * DAY
        for sol in self.solines:
            if sol.status not in ("open", "partially_shipped") or not (NOW <= sol.due <= hi):
                continue
            for lot_id in self.index.allocated_lots.get(sol.id, ()):
                lot = self.lot(lot_id)
                held = lot.status in ("on_hold", "quarantined") or any(
                    self._hold_active(h) for h in self.hold_lots.get(lot_id, ()))
                if held:
                    out.append(sol.id)
                    break
        return sorted(out)

    def scenario_sop(self) -> list[SopInEffect]:
        rng = self.rng
        ran = [o for o in self.orders if o.status == "completed" and o.as_ is not None]
        sup: list[tuple[Order, str, bool]] = []
        normal: list[tuple[Order, str, bool]] = []
        sops_of: dict[tuple[str, str], set[str]] = {}  # (material, line) -> SOPs that apply
        for o in ran:
            assert o.as_ is not None
            sops = sops_of.get((o.material, o.line))
            if sops is None:
                sops = sops_of[(o.material, o.line)] = {
                    s for tgt in [o.material, *self.line_by_id[o.line].machines] for s in self.applies_to.get(tgt, ())}
            at = o.as_
            # only a single version in effect is used below, so the set's order does not matter
            eff = [v for s in sops for v, a, b in self.versions[s] if a <= at and (b is None or at < b)]
            if len(eff) != 1:
                continue
            entry = (o, eff[0], o.sopv != eff[0])
            (sup if entry[2] else normal).append(entry)
        picks = rng.sample(sup, min(3, len(sup))) + rng.sample(normal, min(6, len(normal)))
        picks.sort(key=lambda e: e[0].id)
        out = []
        for o, v, superseded in picks:
            assert o.as_ is not None
            out.append(SopInEffect(order=o.id, machine=self.line_by_id[o.line].machines[0], at=self._dt(o.as_, o.z),
                                   sop_version=v, superseded=superseded))
        return out

    # -----------------------------------------------------------------------------------------
    # purchasing: future open lines, then purchase orders grouped by supplier and week
    # -----------------------------------------------------------------------------------------

    def build_purchasing(self) -> None:
        rng = self.rng
        for z in range(self.spec.plants):
            raws: dict[str, None] = {}
            for m in self.mats.values():
                if m.z == z:
                    for comp, _ in m.bom:
                        if self.mats[comp].kind == "raw":
                            raws[comp] = None
            for rid in raws:
                r = rng.random()
                if r > 0.55:
                    continue
                mat = self.mats[rid]
                promised = (NOW + int((1 + rng.random() * 14) * DAY)) // HOUR * HOUR
                if r < 0.015:
                    promised = (NOW - int((1 + rng.random() * 3) * DAY)) // HOUR * HOUR
                self.polines.append(POLine(id=self.next_id("POL"), z=z, material=rid, supplier=self.pick(mat.suppliers),
                                           qty=mat.pack_size * (2 + int(rng.random() * 6)), unit=mat.unit,
                                           promised=promised, delivered=None,
                                           order_date=rmin(min(NOW - HOUR, promised - (7 + rng.random() * 14) * DAY))))
        groups: dict[tuple[int, str, int], list[POLine]] = {}
        for pol in self.polines:
            groups.setdefault((pol.z, pol.supplier, (pol.order_date - self.t0) // (7 * DAY)), []).append(pol)
        if (self._pcols["PurchaseOrder"] != ["order_date", "status"]
                or self._pcols["PurchaseOrderLine"] != ["quantity", "unit", "promised_date", "delivered_at"]):
            raise RuntimeError("ontology columns of PurchaseOrder/PurchaseOrderLine changed; update build_purchasing")
        # rows straight into the line buffers (tens of thousands of lines and their edges)
        fmt = self.clock.fmt
        ebuf = self._ebuf
        po_rows, pol_rows = self._nbuf["PurchaseOrder"], self._nbuf["PurchaseOrderLine"]
        ordered_from, has_line = ebuf["ORDERED_FROM"], ebuf["HAS_PO_LINE"]
        for_mat, delivered_as = ebuf["FOR_MATERIAL"], ebuf["DELIVERED_AS"]
        for (z, supplier, _w), pols in groups.items():
            po = self.next_id("PO")
            od = min(p.order_date for p in pols)
            delivered = [p.delivered is not None for p in pols]
            status = "received" if all(delivered) else "partially_received" if any(delivered) else "open"
            site = self.site_ids[z]
            s_od = fmt(od, z)
            po_rows.append(f"{po},{csv_field(f'{po} to {supplier}')},ERP,{site},{s_od},,{s_od},{status}")
            ordered_from.append(f"{po},{supplier},ERP,{s_od},")
            for pol in pols:
                mat = self.mats[pol.material]
                pid = pol.id
                s_order = fmt(pol.order_date, z)
                s_deliv = "" if pol.delivered is None else fmt(pol.delivered, z)
                has_line.append(f"{po},{pid},ERP,{s_od},")
                pol_rows.append(f"{pid},{csv_field(f'{mat.name} from {supplier}')},ERP,{site},{s_order},,"
                                f"{q(pol.qty)},{pol.unit},{fmt(pol.promised, z)},{s_deliv}")
                for_mat.append(f"{pid},{pol.material},ERP,{s_order},")
                for lot_id, qq in pol.lots:
                    delivered_as.append(f"{pid},{lot_id},ERP,{s_deliv},,{q(qq)},{pol.unit}")
            if len(for_mat) >= 50_000:
                self.flush()

    # -----------------------------------------------------------------------------------------
    # final write
    # -----------------------------------------------------------------------------------------

    def write_records(self) -> None:
        """Lots, orders and sales lines, whose status is final only now; rows built directly in
        the contract's column order (checked once) because there are hundreds of thousands."""
        lot_cols = ["quantity", "unit", "status", "produced_at", "expiry"]
        order_cols = ["quantity", "unit", "status", "planned_start", "planned_end", "actual_start", "actual_end",
                      "operations"]
        if self._pcols["Lot"] != lot_cols or self._pcols["ProductionOrder"] != order_cols:
            raise RuntimeError("ontology columns of Lot/ProductionOrder changed; update write_records")
        fmt = self.clock.fmt
        sites = self.site_ids
        rows = self._nbuf["Lot"]
        for lot in self.lots:
            status = lot.status
            if status == "released":
                done = lot.shipped_q + lot.consumed_q
                if done >= lot.qty * (1 - 1e-9) - 1e-3:
                    status = "shipped" if lot.shipped_q > 0 and lot.consumed_q == 0 else "consumed"
                lot.status = status
            z = lot.z
            expiry = "" if lot.expiry is None else fmt(lot.expiry, z)
            vf = fmt(lot.valid_from, z)
            made = vf if lot.produced_at == lot.valid_from else fmt(lot.produced_at, z)
            rows.append(f"{lot.id},{csv_field(lot.name)},{lot.source},{sites[z]},{vf},,"
                        f"{q(lot.qty)},{lot.unit},{status},{made},{expiry}")
            if len(rows) >= 50_000:
                self.flush()
        self.flush()
        # production order rows were written as the orders were made (see _order)
        sol_cols = ["quantity", "unit", "due_date", "priority", "status"]
        if self._pcols["SalesOrderLine"] != sol_cols:
            raise RuntimeError("ontology columns of SalesOrderLine changed; update write_records")
        rows = self._nbuf["SalesOrderLine"]
        mats = self.mats
        for sol in self.solines:
            z = sol.z
            name = csv_field(f"{mats[sol.material].name} for {sol.so}")
            rows.append(f"{sol.id},{name},ERP,{sites[z]},{fmt(sol.created, z)},,{q(sol.qty)},{sol.unit},"
                        f"{fmt(sol.due, z)},{sol.priority},{sol.status}")
            if len(rows) >= 50_000:
                self.flush()
        self.flush()

    def run(self) -> Truth:
        self.tick("master data", 0, 1)
        self.build_master()
        self.choose_designs()
        self.build_sops()
        self.tick("master data", 1, 1)
        self.simulate()
        self.tick("sales and events", 0, 3)
        self.build_sales()
        risk = self.scenario_risk()
        self.group_sales_orders()
        self.post_allocation_holds()
        self.tick("sales and events", 1, 3)
        self.build_events()
        self.tick("sales and events", 2, 3)
        fault = self.scenario_machine_fault()
        contaminated = self.scenario_contaminated()
        hold = self.scenario_quality_hold()
        root = self.scenario_root_cause()
        sop = self.scenario_sop()
        self.build_purchasing()
        self.tick("sales and events", 3, 3)
        self.tick("writing", 0, 1)
        self.write_records()
        horizon = 14
        held = self.lines_with_held_allocations(horizon)
        lines = dict(risk)
        for sol_id in held:
            hs = [h for lot in self.index.allocated_lots[sol_id] for h in self.hold_lots.get(lot, ())
                  if self._hold_active(h)]
            existing = lines.setdefault(sol_id, [])
            for h in hs:
                if all(c.entity != h for c in existing):
                    existing.append(RiskCause(kind="hold", entity=h))
        truth = Truth(
            seed=self.seed, scale=self.spec.name, now=datetime.fromtimestamp(NOW, tz=UTC),
            scenarios=Scenarios(
                contaminated_supplier_lot=contaminated, machine_fault=fault, quality_hold=hold,
                root_cause=root,
                deliveries_at_risk=DeliveriesAtRisk(horizon_days=horizon, lines=dict(sorted(lines.items())),
                                                    lines_with_held_allocations=held),
                sop_in_effect=sop))
        self.writer.close()
        self.counts = defaultdict(int, self.writer.counts())
        truth.dump(self.out / "truth.json")
        self.tick("writing", 1, 1)
        return truth
