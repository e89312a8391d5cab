"""The mapping's shortcuts give what the plain reading gives: the element views (child index,
``mark``, ``kid_el``, several names at once) on generated trees, and the batch validation's
edge loop against a plain re-statement of its rules (errors in the same order, same rows)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from lxml import etree

from graph_loader.b2mml.elements import R, ReadElements
from graph_loader.b2mml.records import ImportBatch, Origin, Problem, problem
from ontology.models import RELATIONS

NS = ["{http://www.mesa.org/xml/B2MML}", "{urn:vendor}", ""]
NAMES = ["ID", "Description", "Value", "Quantity", "MaterialLotID", "Extension"]


def _tree(rng: random.Random, depth: int = 3) -> Any:
    """A small random element tree: names repeat, namespaces mix, comments sit between
    children, leaves carry texts with stray whitespace (or none)."""
    root = etree.Element(NS[0] + "Unit")
    todo = [(root, depth)]
    while todo:
        el, d = todo.pop()
        for _ in range(rng.randint(0, 5) if d else 0):
            if rng.random() < 0.1:
                el.append(etree.Comment("note"))
                continue
            c = etree.SubElement(el, rng.choice(NS) + rng.choice(NAMES))
            c.text = rng.choice([None, "", "  ", " a  b ", "x"])
            todo.append((c, d - 1))
    return root


def _local(el: Any) -> str | None:
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def _plain_matching(el: Any, names: tuple[str, ...]) -> list[Any]:
    return [c for c in el if _local(c) in names]


def _plain_clean(text: str | None) -> str | None:
    return " ".join(text.split()) or None if text else None


def _plain_value(el: Any) -> str | None:
    if not len(el):
        return _plain_clean(el.text)
    inner = next((c for n in ("ValueString", "QuantityString") for c in el if _local(c) == n), None)
    return _plain_clean(inner.text if inner is not None else el.text)


NAME_SETS = [("ID",), ("Value",), ("ID", "Description"), ("Description", "ID", "Extension"), ("Nope",),
             ("Nope", "Quantity"), tuple(NAMES)]


@pytest.mark.parametrize("seed", range(40))
def test_views_read_and_mark_what_the_plain_reading_does(seed: int) -> None:
    rng = random.Random(seed)
    root = _tree(rng)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for names in NAME_SETS:
            expected = _plain_matching(el, names)
            used = ReadElements()
            got = R(el, used).kids(*names)
            assert [k.el for k in got] == expected  # document order, even across names
            assert used.els == {el, *expected}
            marked = ReadElements()
            R(el, marked).mark(*names)
            assert marked.els == used.els
            first = next((c for n in names for c in el if _local(c) == n), None)
            one = ReadElements()
            assert R(el, one).kid_el(*names) is first
            view = R(el, ReadElements()).kid(*names)
            assert (view.el if view is not None else None) is first
            texts = [t for c in expected if (t := _plain_value(c)) is not None]
            assert R(el, ReadElements()).texts(*names) == texts
            assert R(el, ReadElements()).text(*names) == (texts[0] if texts else None)


def test_a_view_sees_children_added_to_the_index_once() -> None:
    """Two views of one element share the unit's index (built once per element)."""
    root = etree.fromstring(b"<a><ID>1</ID><ID>2</ID><Description> d </Description></a>")
    used = ReadElements()
    first, second = R(root, used), R(root, used)
    assert first.texts("ID") == ["1", "2"]
    assert second.text("Description") == "d"
    assert used.children(root) is used.children(root)


# --- batch validation: the edge loop --------------------------------------------------------------


def _plain_edge_errors(batch: ImportBatch, classes: dict[str, str]) -> list[Problem]:
    """The rules of the edge loop, stated plainly (unknown relation; each end missing or of a
    class the relation does not allow, source before target)."""
    out = []
    for d in batch.edges.values():
        rdef = RELATIONS.get(d.rel)
        if rdef is None:
            out.append(problem(d.origin, f"unknown relation {d.rel!r}"))
            continue
        for end, node_id, allowed in (("source", d.src, rdef.domain), ("target", d.dst, rdef.range)):
            cls = classes.get(node_id)
            if cls is None:
                out.append(problem(d.origin, f"{d.rel}: {end} {node_id!r} is neither in this import nor in the store"))
            elif cls not in allowed:
                out.append(problem(d.origin, f"{d.rel}: {end} {node_id!r} is a {cls}, expected {' or '.join(allowed)}"))
    return out


@pytest.mark.parametrize("seed", range(10))
def test_edge_loop_errors_and_rows_match_the_plain_rules(seed: int) -> None:
    # the merge stage alone (``rows``): the bundle rules run after it (and drop rows they refuse)
    rng = random.Random(seed)
    batch = ImportBatch(source_system="test")
    nodes = {f"L{i}": "Lot" for i in range(4)} | {f"M{i}": "Material" for i in range(3)} | {"S": "Site"}
    for nid, cls in nodes.items():
        batch.add_node(cls, nid, Origin("f.xml", 1, f"/{nid}"), props={"quantity": 1.0, "unit": "kg"}
                       if cls == "Lot" else {})
    ids = [*nodes, "ghost"]
    for i in range(30):
        rel = rng.choice(["FOR_MATERIAL", "DERIVED_FROM", "NO_SUCH_REL"])
        props: dict[str, Any] = {"quantity": rng.choice([None, 2.0])}
        if rng.random() < 0.5:
            props["source_system"] = rng.choice(["MES", None])
        batch.add_edge(rng.choice(ids), rel, rng.choice(ids), Origin("f.xml", i + 2, f"/e{i}"), props=props,
                       defaults={"valid_from": None})
    v = batch.rows(None)
    plain = _plain_edge_errors(batch, nodes)
    assert [p.model_dump() for p in v.errors] == [p.model_dump() for p in plain]
    good = [d for d in batch.edges.values() if d.rel in RELATIONS
            and nodes.get(d.src) in RELATIONS[d.rel].domain and nodes.get(d.dst) in RELATIONS[d.rel].range]
    assert len(v.edges) == len(good)
    for (rel, row), d in zip(v.edges, good, strict=True):
        assert (row["src"], rel, row["dst"]) == (d.src, d.rel, d.dst)
        assert row["source_system"] == (d.props.get("source_system") or "test")
        assert {k: x for k, x in row.items() if k not in ("src", "dst", "source_system")} == \
            {k: x for k, x in d.props.items() if k != "source_system"}
    assert v.edge_origins == [d.origin for d in good]


# --- date-times read once per distinct text ------------------------------------------------------


def test_iso_cache_gives_what_parse_datetime_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta, timezone

    from graph_loader.b2mml import importer, values
    from graph_loader.b2mml.importer import B2MMLImporter

    monkeypatch.setattr(importer, "_ISO_CACHE", 3)  # the cache starts again while in use
    tz = timezone(timedelta(hours=2))
    imp = B2MMLImporter(default_tz=tz)
    texts = ["2026-03-02T06:00:00+01:00", "2026-03-02", "2026-03-02T06:00:00", "2026-03-02T06:00:00.1234567Z",
             " 2026-03-02T06:00:00Z ", "2026-13-02", "", "yesterday"] * 3
    for t in texts:
        try:
            want: str | None = values.parse_datetime(t, tz).isoformat()
        except values.ValueProblem as exc:
            want = str(exc)
        try:
            got: str | None = imp._iso(t)
        except values.ValueProblem as exc:
            got = str(exc)
        assert got == want
    assert len(imp._isos) <= 3


# --- batch validation: the node loop ---------------------------------------------------------------


def test_node_rows_merge_defaults_store_and_props(store: Any) -> None:
    """Defaults under stored values under this import's values; ``__`` keys and ``id`` never
    become properties; the common fields stay on the row for the bundle rules; unknown classes
    and class clashes are errors."""
    from graph_loader.b2mml.records import write_validated

    first = ImportBatch(source_system="erp")
    first.add_node("Lot", "L1", Origin("a.xml", 1), props={"quantity": 5.0, "unit": "kg", "status": "released",
                                                         "name": "stored name"})
    first.add_node("Material", "M1", Origin("a.xml", 2), props={"kind": "raw"})
    write_validated(store, first.validate(store))

    batch = ImportBatch(source_system="mes")
    batch.add_node("Lot", "L1", Origin("b.xml", 1), props={"quantity": 7.0, "id": "ignored", "plant": "P"},
                   defaults={"unit": "t", "status": "on_hold", "__produced_at": "x"})
    batch.add_node("Lot", "L2", Origin("b.xml", 2), props={"quantity": 1.0}, defaults={"unit": "kg"})
    batch.add_node("Material", "L2", Origin("b.xml", 3))  # a clash: the first class stays
    batch.add_node("Gadget", "G1", Origin("b.xml", 4))
    v = batch.rows(store)
    by_id = {row["id"]: (cls, row) for cls, row in v.nodes}
    assert by_id["L1"] == ("Lot", {"id": "L1", "quantity": 7.0, "unit": "kg", "status": "released",
                                   "name": "stored name", "plant": "P", "source_system": "erp"})
    assert by_id["L2"] == ("Lot", {"id": "L2", "unit": "kg", "quantity": 1.0, "source_system": "mes"})
    assert "G1" not in by_id
    messages = [p.message for p in v.errors]
    assert messages == ["id 'L2' is a Material here but a Lot at b.xml:2", "unknown class 'Gadget'"]
    assert v.node_origins == [Origin("b.xml", 1), Origin("b.xml", 2)]

    # the same batch through the bundle rules: typed rows, records on demand, counts by class
    checked = batch.validate(store)
    assert checked.entities_by_class() == {"Lot": 2} and checked.node_count == 2
    l1 = {n.id: n for n in checked.nodes}["L1"]
    assert (l1.props, l1.name, l1.plant, l1.source_system) == (
        {"quantity": 7.0, "unit": "kg", "status": "released"}, "stored name", "P", "erp")


# --- many units in one container ------------------------------------------------------------------


def test_many_units_in_one_container_read_alike_whole_and_streamed(tmp_path: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file parsed whole keeps its mapped units in the tree and one view of their container
    (its context values); streamed, units are removed as they go. Same report either way."""
    import re

    from graph_loader.b2mml import importer
    from graph_loader.b2mml.importer import import_b2mml

    from .conftest import FIXTURES

    src = (FIXTURES / "v0701" / "schedule.xml").read_text()
    m = re.search(r"      <OperationsRequest>.*?</OperationsRequest>\n", src, re.S)
    assert m is not None
    one = m.group(0)
    many = "".join(one.replace("<ID>WO-1</ID>", f"<ID>WO-{i}</ID>") for i in range(60))
    (tmp_path / "sched.xml").write_text(src.replace(one, many))
    for name in ("equipment.xml", "material.xml"):
        (tmp_path / name).write_text((FIXTURES / "v0701" / name).read_text())

    whole = import_b2mml([tmp_path], None, dry_run=True)
    monkeypatch.setattr(importer, "TREE_BYTES", 0)
    streamed = import_b2mml([tmp_path], None, dry_run=True)
    assert whole.entities_by_class.get("ProductionOrder", 0) >= 60
    assert whole.model_dump(exclude={"seconds"}) == streamed.model_dump(exclude={"seconds"})
