"""The synthetic plant generator: determinism, size, model validity and the truth.json scenarios.

Known answers are recomputed here from the bundle files by the contract's definitions (an
independent reading of the CSV/JSONL files, not the generator's own index), then compared with
truth.json.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graph_loader.bundle_writer import BundleWriteError, BundleWriter, edge_columns, node_columns
from graph_loader.generator import generate, load_truth, named_spec, spec_for
from ontology.models import ENTITY_CLASSES, RELATIONS, entity_model

ENTERPRISE_WIDE = {"Material", "Supplier", "Customer", "Enterprise"}


# ---------------------------------------------------------------------------------------------
# reading a bundle back, independently of the generator
# ---------------------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)
        return
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            yield {k: v for k, v in row.items() if v != ""}


def _typed(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name, info in model.model_fields.items():
        if name in out and isinstance(out[name], str) and "list" in repr(info.annotation):
            out[name] = out[name].split("|")
    return out


@dataclass
class Bundle:
    nodes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # class -> id -> row
    cls_of: dict[str, str] = field(default_factory=dict)
    edges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def out(self, rel: str) -> dict[str, list[str]]:
        d: dict[str, list[str]] = defaultdict(list)
        for e in self.edges.get(rel, []):
            d[e["src"]].append(e["dst"])
        return d

    def inn(self, rel: str) -> dict[str, list[str]]:
        d: dict[str, list[str]] = defaultdict(list)
        for e in self.edges.get(rel, []):
            d[e["dst"]].append(e["src"])
        return d

    def get(self, id_: str) -> dict[str, Any]:
        return self.nodes[self.cls_of[id_]][id_]


def read_bundle(folder: Path) -> Bundle:
    b = Bundle()
    for path in sorted(folder.iterdir()):
        name = path.stem
        if name in ENTITY_CLASSES:
            b.nodes[name] = {r["id"]: r for r in _rows(path)}
            for i in b.nodes[name]:
                b.cls_of[i] = name
        elif name in RELATIONS:
            b.edges[name] = list(_rows(path))
    return b


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "plant"
    generate(named_spec("tiny"), 7, out)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small") / "plant"
    generate(named_spec("small"), 7, out)
    return out


@pytest.fixture(scope="module")
def tiny_bundle(tiny: Path) -> Bundle:
    return read_bundle(tiny)


@pytest.fixture(scope="module")
def small_bundle(small: Path) -> Bundle:
    return read_bundle(small)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------
# determinism and size
# ---------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_bundle(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(named_spec("tiny"), 7, again)
    assert _digest(again) == _digest(tiny)
    assert len(_digest(tiny)) > 40


def test_other_seed_gives_other_bundle(tiny: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate(named_spec("tiny"), 8, other)
    a, b = _digest(tiny), _digest(other)
    assert a["Lot.csv"] != b["Lot.csv"]


def test_regenerating_into_the_same_folder_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "p"
    generate(named_spec("tiny"), 7, out)
    first = _digest(out)
    (out / "Lot.csv").write_text("garbage", encoding="utf-8")
    generate(named_spec("tiny"), 7, out)
    assert _digest(out) == first


@pytest.mark.parametrize(("scale", "fixture"), [("tiny", "tiny_bundle"), ("small", "small_bundle")])
def test_sizes_roughly_as_promised(scale: str, fixture: str, request: pytest.FixtureRequest) -> None:
    b: Bundle = request.getfixturevalue(fixture)
    target = named_spec(scale).target_entities
    entities = sum(len(v) for v in b.nodes.values())
    relations = sum(len(v) for v in b.edges.values())
    assert 0.6 * target <= entities <= 1.6 * target, entities
    assert 2.5 * entities <= relations <= 5 * entities, (entities, relations)
    manifest = json.loads((request.getfixturevalue(scale) / "manifest.json").read_text())
    assert manifest["format"] == "plantgraph-bundle" and manifest["plants"] == sorted(b.nodes["Site"])


def test_entities_option_scales_between_presets() -> None:
    assert spec_for(5_000).history_days > 0
    with pytest.raises(ValueError, match="at least 300"):
        spec_for(10)


# ---------------------------------------------------------------------------------------------
# validity against the ontology
# ---------------------------------------------------------------------------------------------


def test_every_row_passes_the_ontology_models(tiny_bundle: Bundle) -> None:
    b = tiny_bundle
    assert set(b.nodes) == set(ENTITY_CLASSES)
    for cls, rows in b.nodes.items():
        model = entity_model(cls)
        for row in rows.values():
            ent = model.model_validate(_typed(model, row))
            if cls in ENTERPRISE_WIDE:
                assert ent.plant is None, (cls, ent.id)
            else:
                assert ent.plant in b.nodes["Site"], (cls, ent.id, ent.plant)
    assert set(b.edges) == set(RELATIONS)
    for rel, edges in b.edges.items():
        rdef = RELATIONS[rel]
        for e in edges:
            props = {k: v for k, v in e.items() if k not in ("src", "dst")}
            rdef.props.model_validate(props)
            assert b.cls_of[e["src"]] in rdef.domain, (rel, e)
            assert b.cls_of[e["dst"]] in rdef.range, (rel, e)


def test_columns_follow_the_contract_order(tiny: Path) -> None:
    for path in tiny.glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        expected = node_columns(path.stem) if path.stem in ENTITY_CLASSES else edge_columns(path.stem)
        assert header == expected, path.name


def test_times_have_offsets_and_exist_before_now(tiny: Path, tiny_bundle: Bundle) -> None:
    now = load_truth(tiny / "truth.json").now
    for cls, rows in tiny_bundle.nodes.items():
        for row in rows.values():
            if "valid_from" in row:
                assert ts(row["valid_from"]) <= now, (cls, row["id"])
    for lot in tiny_bundle.nodes["Lot"].values():
        assert "valid_from" in lot
    for cls in ("Incident", "DowntimeEvent", "Anomaly", "QualityHold", "SalesOrder", "PurchaseOrder"):
        for row in tiny_bundle.nodes[cls].values():
            assert "valid_from" in row, (cls, row["id"])
    sites = tiny_bundle.nodes["Site"]
    assert len({s["timezone"] for s in sites.values()}) == len(sites) >= 2


def test_sop_version_windows_do_not_overlap(tiny_bundle: Bundle) -> None:
    by_sop = tiny_bundle.out("VERSION_OF")
    versions_of: dict[str, list[str]] = defaultdict(list)
    for v, sops in by_sop.items():
        versions_of[sops[0]].append(v)
    far = datetime.max.replace(tzinfo=ts("2026-01-01T00:00:00Z").tzinfo) - timedelta(days=1)
    for vs in versions_of.values():
        spans = sorted((ts(tiny_bundle.get(v)["effective_from"]),
                        ts(tiny_bundle.get(v)["effective_to"]) if "effective_to" in tiny_bundle.get(v) else far)
                       for v in vs)
        for (_a1, b1), (a2, _b2) in itertools.pairwise(spans):
            assert b1 <= a2


def test_realism_features_present(small_bundle: Bundle) -> None:
    b = small_bundle
    consumers = b.inn("CONSUMED")
    assert any(len(v) >= 2 for v in consumers.values()), "no split (lot consumed by several orders)"
    consumed = b.out("CONSUMED")
    mats = {e["src"]: e["dst"] for e in b.edges["FOR_MATERIAL"]}
    merges = [o for o, lots in consumed.items() if len({mats[x] for x in lots}) < len(lots)]
    assert merges, "no merge (several lots of one material into one order)"
    assert b.edges["DERIVED_FROM"] and b.edges["APPROVED_SUBSTITUTE"]
    kinds = {m["kind"] for m in b.nodes["Material"].values()}
    assert kinds == {"raw", "intermediate", "finished"}
    late = [p for p in b.nodes["PurchaseOrderLine"].values()
            if "delivered_at" in p and ts(p["delivered_at"]) > ts(p["promised_date"]) + timedelta(hours=12)]
    early = [p for p in b.nodes["PurchaseOrderLine"].values()
             if "delivered_at" in p and ts(p["delivered_at"]) < ts(p["promised_date"]) - timedelta(hours=12)]
    assert late and early
    statuses = {lot["status"] for lot in b.nodes["Lot"].values()}
    assert {"released", "consumed", "shipped", "on_hold"} <= statuses
    assert {i["kind"] for i in b.nodes["Incident"].values()} >= {"deviation", "nonconformance"}
    for cls in ("DowntimeEvent", "MaintenanceOrder", "Anomaly", "QualityHold", "Shift", "Person"):
        assert b.nodes[cls], cls
    # readable names everywhere
    for cls, rows in b.nodes.items():
        for row in list(rows.values())[:50]:
            assert row.get("name") and row["name"] != row["id"], (cls, row["id"])


# ---------------------------------------------------------------------------------------------
# truth.json against the bundle, by the contract's definitions
# ---------------------------------------------------------------------------------------------


def forward(b: Bundle, start: list[str]) -> tuple[set[str], set[str], set[str], set[str], set[str]]:
    """(reached lots, orders, sales order lines, customers, shipped lots) by the contract."""
    consumers, produced, derived = b.inn("CONSUMED"), b.out("PRODUCED"), b.inn("DERIVED_FROM")
    seen, orders, todo = set(start), set(), list(start)
    while todo:
        lot = todo.pop()
        nxt = list(derived.get(lot, []))
        for o in consumers.get(lot, []):
            if o not in orders:
                orders.add(o)
                nxt.extend(produced.get(o, []))
        for x in nxt:
            if x not in seen:
                seen.add(x)
                todo.append(x)
    alloc, shipped = b.out("ALLOCATED_TO"), b.out("SHIPPED_TO")
    lines = {s for lot in seen for s in alloc.get(lot, []) + shipped.get(lot, [])}
    so_of = {line: so for so, ls in b.out("HAS_SO_LINE").items() for line in ls}
    cust = {so: c[0] for so, c in b.out("PLACED_BY").items()}
    customers = {cust[so_of[line]] for line in lines}
    return seen - set(start), orders, lines, customers, {lot for lot in seen if lot in shipped}


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_truth_ids_exist(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    raw = json.loads((folder / "truth.json").read_text())
    assert raw["seed"] == 7 and raw["scale"] == which

    def walk(x: Any, key: str = "") -> Iterator[str]:
        if isinstance(x, dict):
            for k, v in x.items():
                if key == "lines" and k.startswith("SOL-"):
                    yield k
                yield from walk(v, k)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v, key)
        elif isinstance(x, str) and key not in ("now", "from", "to", "at", "placed_at", "kind", "factor_class",
                                                "scale"):
            yield x

    ids = list(walk(raw["scenarios"]))
    assert len(ids) > 30
    missing = [i for i in ids if i not in b.cls_of]
    assert not missing


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_contaminated_supplier_lot(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    sc = load_truth(folder / "truth.json").scenarios.contaminated_supplier_lot
    assert b.cls_of[sc.supplier_lot] == "Lot"
    assert b.out("SUPPLIED_BY")[sc.supplier_lot] == [sc.supplier]
    assert b.inn("DELIVERED_AS")[sc.supplier_lot], "a supplier lot arrives on a purchase order line"
    lots, orders, lines, customers, shipped = forward(b, [sc.supplier_lot])
    assert set(sc.reached_lots) == lots and set(sc.reached_production_orders) == orders
    assert set(sc.reached_sales_order_lines) == lines and set(sc.reached_customers) == customers
    assert set(sc.shipped_lots) == shipped and set(sc.in_house_lots) == lots - shipped
    assert len(lots) >= 3 and len(customers) >= 2
    if which == "small":
        assert sc.shipped_lots and sc.in_house_lots


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_machine_fault(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    sc = load_truth(folder / "truth.json").scenarios.machine_fault
    assert b.out("OCCURRED_ON")[sc.incident] == [sc.machine]
    affected = set()
    for e in b.edges["RAN_ON"]:
        if e["dst"] != sc.machine:
            continue
        order = b.get(e["src"])
        start = ts(e.get("start") or order["actual_start"])
        end_s = e.get("end") or order.get("actual_end")
        if start < sc.to and (end_s is None or ts(end_s) > sc.from_):
            affected.add(e["src"])
    assert affected and set(sc.affected_production_orders) == affected
    produced = b.out("PRODUCED")
    lots = {lot for o in affected for lot in produced.get(o, [])}
    assert set(sc.affected_lots) == lots
    _, _, lines, customers, _ = forward(b, sorted(lots))
    assert set(sc.reached_sales_order_lines) == lines and set(sc.reached_customers) == customers
    assert len(customers) >= 2


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_quality_hold(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    truth = load_truth(folder / "truth.json")
    sc = truth.scenarios.quality_hold
    hold = b.get(sc.hold)
    assert b.out("HOLDS")[sc.hold] == [sc.lot] and "released_at" not in hold
    assert ts(hold["placed_at"]) == sc.placed_at <= truth.now
    assert b.get(sc.lot)["status"] == "on_hold"
    lots, _, lines, customers, _ = forward(b, [sc.lot])
    assert set(sc.reached_lots) == lots and set(sc.reached_sales_order_lines) == lines
    assert set(sc.affected_customers) == customers and len(customers) >= 2


def _history(b: Bundle, lot: str) -> set[str]:
    """Machines and SOP versions of the order(s) that produced a lot."""
    producer = b.inn("PRODUCED")
    ran, used = b.out("RAN_ON"), b.out("USED_SOP")
    return {f for o in producer.get(lot, []) for f in ran.get(o, []) + used.get(o, [])}


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_root_cause_is_shared_by_bad_lots_and_rare_among_good(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    sc = load_truth(folder / "truth.json").scenarios.root_cause
    assert b.cls_of[sc.factor] == sc.factor_class
    assert set(b.out("CONCERNS")[sc.incident]) == set(sc.bad_lots)
    assert b.get(sc.incident)["kind"] == "nonconformance"
    assert len(sc.bad_lots) >= 3
    mat_of = {e["src"]: e["dst"] for e in b.edges["FOR_MATERIAL"]}
    materials = {mat_of[lot] for lot in sc.bad_lots}
    assert len(materials) == 1
    good = [lot for lot, m in mat_of.items() if m in materials and b.cls_of[lot] == "Lot"
            and lot not in sc.bad_lots and b.inn("PRODUCED").get(lot)]
    assert len(good) >= max(3, len(sc.bad_lots) // 2)
    bad_hist = [_history(b, lot) for lot in sc.bad_lots]
    shared = set.intersection(*bad_hist)
    assert sc.factor in shared
    good_rate = sum(sc.factor in _history(b, lot) for lot in good) / len(good)
    assert good_rate <= 0.05
    # no other machine or SOP version is as clean a candidate
    for other in shared - {sc.factor}:
        assert sum(other in _history(b, lot) for lot in good) / len(good) > good_rate


def _held(b: Bundle, lot_id: str, now: datetime) -> bool:
    lot = b.get(lot_id)
    if lot["status"] in ("on_hold", "quarantined"):
        return True
    for h in b.inn("HOLDS").get(lot_id, []):
        hold = b.get(h)
        if ts(hold["placed_at"]) <= now and ("released_at" not in hold or ts(hold["released_at"]) > now):
            return True
    return False


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_deliveries_at_risk(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    truth = load_truth(folder / "truth.json")
    sc = truth.scenarios.deliveries_at_risk
    now, hi = truth.now, truth.now + timedelta(days=sc.horizon_days)
    alloc = b.inn("ALLOCATED_TO")
    expected = set()
    for sol in b.nodes["SalesOrderLine"].values():
        if sol["status"] in ("open", "partially_shipped") and now <= ts(sol["due_date"]) <= hi and any(
                _held(b, lot, now) for lot in alloc.get(sol["id"], [])):
            expected.add(sol["id"])
    assert expected and set(sc.lines_with_held_allocations) == expected
    kinds = {c.kind for causes in sc.lines.values() for c in causes}
    assert kinds == {"hold", "downtime", "late_supplier", "behind_schedule", "shortage"}
    mat_of = {e["src"]: e["dst"] for e in b.edges["FOR_MATERIAL"]}
    for sol_id, causes in sc.lines.items():
        sol = b.get(sol_id)
        assert sol["status"] == "open" and now <= ts(sol["due_date"]) <= hi
        for c in causes:
            ent = b.get(c.entity)
            if c.kind == "hold":
                assert b.cls_of[c.entity] == "QualityHold" and "released_at" not in ent
                assert set(b.out("HOLDS")[c.entity]) & set(alloc[sol_id])
            elif c.kind == "downtime":
                assert b.cls_of[c.entity] == "DowntimeEvent" and "end" not in ent
                machine = b.out("OCCURRED_ON")[c.entity][0]
                line = b.inn("HAS_MACHINE")[machine][0]
                planned = [o for o in b.inn("SCHEDULED_ON")[line] if mat_of[o] == mat_of[sol_id]
                           and b.get(o)["status"] in ("planned", "released")]
                assert planned, "the order that should cover the line is planned on the broken line"
            elif c.kind == "late_supplier":
                assert b.cls_of[c.entity] == "PurchaseOrderLine"
                assert "delivered_at" not in ent and ts(ent["promised_date"]) < now
                bom = {comp for item in b.out("HAS_BOM_ITEM")[mat_of[sol_id]] for comp in b.out("COMPONENT")[item]}
                assert mat_of[c.entity] in bom
            elif c.kind == "behind_schedule":
                assert b.cls_of[c.entity] == "ProductionOrder" and mat_of[c.entity] == mat_of[sol_id]
                assert ent["status"] == "running" and ts(ent["planned_end"]) < now
            elif c.kind == "shortage":
                assert c.entity == mat_of[sol_id]
                due = ts(sol["due_date"])
                covering = [o for o, m in mat_of.items() if m == c.entity and b.cls_of[o] == "ProductionOrder"
                            and b.get(o)["status"] != "completed" and ts(b.get(o)["planned_end"]) <= due]
                assert not covering


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_sop_in_effect(which: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(which)
    b: Bundle = request.getfixturevalue(f"{which}_bundle")
    entries = load_truth(folder / "truth.json").scenarios.sop_in_effect
    assert len(entries) >= 3
    applies = b.inn("APPLIES_TO")
    versions = b.inn("VERSION_OF")
    mat_of = {e["src"]: e["dst"] for e in b.edges["FOR_MATERIAL"]}
    for e in entries:
        order = b.get(e.order)
        at = ts(order["actual_start"])
        assert at == e.at and e.machine in b.out("RAN_ON")[e.order]
        sops = set(applies.get(mat_of[e.order], [])) | set(applies.get(e.machine, []))
        eff = [v for s in sops for v in versions[s]
               if ts(b.get(v)["effective_from"]) <= at
               and ("effective_to" not in b.get(v) or at < ts(b.get(v)["effective_to"]))]
        assert eff == [e.sop_version]
        assert e.superseded == (b.out("USED_SOP")[e.order] != [e.sop_version])
    if which == "small":
        assert any(e.superseded for e in entries) and not all(e.superseded for e in entries)


# ---------------------------------------------------------------------------------------------
# the bundle writer and the CLI
# ---------------------------------------------------------------------------------------------


def test_bundle_writer_encodes_per_contract(tmp_path: Path) -> None:
    from datetime import UTC

    t = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    with BundleWriter(tmp_path, ["MES"], ["SITE-X"], exported_at=t, jsonl_classes=["Incident"]) as w:
        w.write_nodes("Material", [{"id": "M1", "name": "Sugar", "kind": "raw", "aliases": ["a", "b"]}])
        w.write_nodes("Incident", [{"id": "I1", "kind": "safety", "severity": "low", "occurred_at": t,
                                    "title": "x", "text": "line one, \"quoted\""}])
        w.write_edges("CONSUMED", [{"src": "O", "dst": "L", "quantity": 2.5, "valid_from": t}])
    lines = (tmp_path / "Material.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",") == node_columns("Material")
    assert lines[1] == "M1,Sugar,,,,,raw,,,a|b"
    inc = json.loads((tmp_path / "Incident.jsonl").read_text(encoding="utf-8"))
    assert inc["occurred_at"] == "2026-03-02T06:00:00+00:00" and "plant" not in inc
    edge = (tmp_path / "CONSUMED.csv").read_text(encoding="utf-8").splitlines()[1]
    assert edge == "O,L,,2026-03-02T06:00:00+00:00,,2.5,"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == "1.0" and manifest["exported_at"] == "2026-03-02T06:00:00+00:00"


def test_bundle_writer_rejects_bad_rows(tmp_path: Path) -> None:
    w = BundleWriter(tmp_path, ["MES"], [])
    with pytest.raises(BundleWriteError, match=r"Lot.csv: row 1: unknown column\(s\) \['colour'\]"):
        w.write_nodes("Lot", [{"id": "L", "colour": "red"}])
    with pytest.raises(BundleWriteError, match="no time zone"):
        w.write_nodes("Shift", [{"id": "S", "start": datetime(2026, 1, 1), "end": datetime(2026, 1, 2)}])
    with pytest.raises(BundleWriteError, match="unknown entity class"):
        w.write_nodes("Widget", [])
    with pytest.raises(BundleWriteError, match=r"row 1 has 2 cells; expected 7"):
        w.write_edge_rows("CONSUMED", [["a", "b"]])
    with pytest.raises(BundleWriteError, match="separator"):
        w.write_nodes("Material", [{"id": "M", "kind": "raw", "aliases": ["a|b"]}])


def test_csv_field_quotes_exactly_like_the_csv_module() -> None:
    import io

    from graph_loader.bundle_writer import csv_field

    cells = ["", "plain", "a,b", 'say "hi"', '"', ",", "line\nbreak", "cr\rhere", "crlf\r\n", " lead", "tail ",
             "semi;colon", "pipe|list", "ümlaut, naïve", '""', "a,\"b\"\nc"]
    for cell in cells:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(["x", cell])
        assert buf.getvalue() == "x," + csv_field(cell) + "\r\n", cell


def test_bundle_writer_lines_match_rows_and_reject_bad_lines(tmp_path: Path) -> None:
    from graph_loader.bundle_writer import csv_field

    rows = [["O1", "L1", "MES", "2026-03-02T06:00:00+01:00", "", "2.5", "kg"],
            ["O2", "L2", "", "", "", "1", "kg"]]
    names = [["M1", "Sugar, white", "ERP", "", "", "", "raw", "kg", "", 'say "hi"|b']]
    with BundleWriter(tmp_path / "rows", ["MES"], []) as w:
        w.write_edge_rows("CONSUMED", rows)
        w.write_node_rows("Material", names)
    with BundleWriter(tmp_path / "lines", ["MES"], []) as w:
        assert w.write_edge_lines("CONSUMED", [",".join(r) for r in rows]) == 2
        assert w.write_node_lines("Material", [",".join(map(csv_field, r)) for r in names]) == 1
        assert w.write_edge_lines("CONSUMED", []) == 0
    for name in ("CONSUMED.csv", "Material.csv"):
        assert (tmp_path / "lines" / name).read_bytes() == (tmp_path / "rows" / name).read_bytes()
    w = BundleWriter(tmp_path / "bad", ["MES"], [], jsonl_classes=["Incident"])
    ok = "O,L,MES,,,1,kg"
    with pytest.raises(BundleWriteError, match=r"CONSUMED.csv: row 2 has 6 cells; expected 7"):
        w.write_edge_lines("CONSUMED", [ok, "O,L,MES,,1,kg", ok + ",x"])
    with pytest.raises(BundleWriteError, match=r"CONSUMED.csv: row 1 holds a line break"):
        w.write_edge_lines("CONSUMED", ["O,L,MES,,,1,k\ng"])
    with pytest.raises(BundleWriteError, match=r"Material.csv: row 1 has 11 cells; expected 10"):
        w.write_node_lines("Material", ['M1,"Sugar, white",ERP,,,,raw,kg,,a,b'])
    with pytest.raises(BundleWriteError, match=r"Incident.jsonl: pre-joined lines are for CSV files"):
        w.write_node_lines("Incident", ["I1"])
    w.close()
    # nothing of the refused batches reached the files
    assert (tmp_path / "bad" / "CONSUMED.csv").read_text(encoding="utf-8").splitlines()[1:] == []


def test_clock_cache_bound_and_hourly_offsets_over_a_year() -> None:
    from zoneinfo import ZoneInfo

    from graph_loader.generator.clock import Clock
    from graph_loader.generator.names import PLANTS

    zones = [*sorted({p.timezone for p in PLANTS}), "UTC"]
    clock = Clock(zones, cache_size=50)  # a tiny cache: emptied again and again on the way
    start = int(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()) - 7 * 3600
    for k in range(0, 366 * 24, 5):
        t = start + k * 3600 + (k % 7) * 601  # every fifth hour of the year (all days), odd minutes too
        for z, name in enumerate(zones):
            assert clock.fmt(t, z) == datetime.fromtimestamp(t, ZoneInfo(name)).isoformat()
    assert max(len(c) for c in clock._str) <= 50
    with pytest.raises(ValueError, match="cache_size 0"):
        Clock(["UTC"], cache_size=0)


def test_cli_generate_json_and_errors(tmp_path: Path) -> None:
    from plantgraph.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["generate", "--entities", "400", "--seed", "3", "--out", str(tmp_path / "p"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["entities"] == sum(v for k, v in report["counts"].items() if k in ENTITY_CLASSES)
    assert (tmp_path / "p" / "truth.json").exists()
    bad = runner.invoke(app, ["generate", "--entities", "5", "--out", str(tmp_path / "q")])
    assert bad.exit_code == 2 and "at least 300" in bad.output
    assert not (tmp_path / "q").exists()
    fmt = runner.invoke(app, ["generate", "--format", "xlsx", "--out", str(tmp_path / "r")])
    assert fmt.exit_code == 2 and "expected one of bundle" in fmt.output
    (tmp_path / "file").write_text("x")
    notdir = runner.invoke(app, ["generate", "--scale", "tiny", "--out", str(tmp_path / "file")])
    assert notdir.exit_code == 2 and "not a directory" in notdir.output


def test_clock_renders_local_time_with_dst_offsets() -> None:
    from zoneinfo import ZoneInfo

    from graph_loader.generator.clock import Clock

    zones = ["Europe/Berlin", "Asia/Kolkata", "America/Chicago", "UTC"]
    clock = Clock(zones)
    # around the EU and US daylight-saving changes of 2026, every 17 minutes
    for start in (1774746000 - 6 * 3600, 1772953200 - 6 * 3600, 1792371600 - 6 * 3600):
        for k in range(80):
            t = start + k * 17 * 60
            for z, name in enumerate(zones):
                assert clock.fmt(t, z) == datetime.fromtimestamp(t, ZoneInfo(name)).isoformat()


class _Fixtures:
    """Stands in for pytest's request so the scenario checks above run on any generated bundle."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def getfixturevalue(self, name: str) -> Any:
        return self.values[name]


@pytest.mark.parametrize("seed", [1, 4, 42, 99])
def test_scenarios_hold_for_other_seeds(seed: int, tmp_path: Path) -> None:
    out = tmp_path / "plant"
    generate(named_spec("tiny"), seed, out)
    b = read_bundle(out)
    req: Any = _Fixtures({"tiny": out, "tiny_bundle": b})
    test_every_row_passes_the_ontology_models(b)
    for check in (test_contaminated_supplier_lot, test_machine_fault, test_quality_hold,
                  test_root_cause_is_shared_by_bad_lots_and_rare_among_good, test_deliveries_at_risk,
                  test_sop_in_effect):
        check("tiny", req)
