"""Entity linking on the hand-built two-plant graph (tests/reasoning/rag/plant.py)."""

from __future__ import annotations

from pathlib import Path

from reasoning.rag.linking import EntityLinker
from store.base import GraphStore
from store.factory import open_store
from tests.graphs import build_graph


def test_exact_id_is_linked_and_checked_in_the_store(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("Lot LOT-200 is on hold, who is affected?")
    assert [(m.ids, m.method) for m in res.linked] == [(["LOT-200"], "id")]
    assert res.linked[0].classes == ["Lot"]
    assert res.not_found == []


def test_lower_case_id_links_to_the_stored_id(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("what happened on m-7?")
    assert res.ids_of("Machine") == ["M-7"]


def test_unknown_id_is_reported_never_invented(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("Which customers got LOT-999?")
    assert res.linked == []
    assert res.not_found == ["LOT-999"]


def test_name_and_alias(plant: GraphStore) -> None:
    linker = EntityLinker(plant)
    by_name = linker.link("Tell me about Globex Retail")
    assert [(m.ids, m.method) for m in by_name.linked] == [(["CUS-2"], "name")]
    by_alias = linker.link("Why are deliveries for Acme at risk?")
    assert [(m.ids, m.method) for m in by_alias.linked] == [(["CUS-1"], "alias")]
    material = linker.link("which lots of sugar do we have")
    assert material.ids_of("Material") == ["MAT-SUGAR"]


def test_typo_in_a_name_is_matched_fuzzily(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("Tell me about Globx Retial")
    assert [(m.ids, m.method) for m in res.linked] == [(["CUS-2"], "fuzzy")]
    assert 0.85 <= res.linked[0].score < 1.0


def test_ambiguous_name_is_reported_with_candidates(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("What ran on Line 2 yesterday?")
    assert res.linked == []
    assert [sorted(m.ids) for m in res.ambiguous] == [["LINE-BER-2", "LINE-CHI-2"]]


def test_ambiguity_resolved_by_a_named_plant(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("What ran on Line 2 in the Chicago plant?")
    assert res.ambiguous == []
    assert res.ids_of("Line") == ["LINE-CHI-2"]
    assert res.ids_of("Site") == ["SITE-CHI"]


def test_ambiguity_resolved_by_plant_scope(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("What ran on Line 2?", plant_scope=["SITE-BER"])
    assert res.ids_of("Line") == ["LINE-BER-2"]


def test_plant_scope_hides_other_plants_entities(plant: GraphStore) -> None:
    res = EntityLinker(plant).link("What happened on M-9 and Mixer 9?", plant_scope=["SITE-BER"])
    assert res.linked == []
    assert res.not_found == ["M-9"]


def test_close_fuzzy_candidates_are_ambiguous_not_guessed(plant: GraphStore) -> None:
    # "Acme Fods" is one edit from "acme foods"; "Acme Logistics" is far: not ambiguous.
    res = EntityLinker(plant).link("orders of Acme Fods")
    assert res.ids_of("Customer") == ["CUS-1"]
    # "Mixer" followed by a number that exists twice as a name prefix is exact, not fuzzy
    res2 = EntityLinker(plant).link("Mixer 7 and Mixer 9")
    assert sorted(res2.ids_of("Machine")) == ["M-7", "M-9"]


def test_refresh_sees_new_names(plant: GraphStore) -> None:
    from tests.graphs import build_graph

    linker = EntityLinker(plant)
    assert linker.link("Tell me about Initech").linked == []
    build_graph(plant, nodes=[("CUS-9", "Customer", {}, {"name": "Initech"})])
    linker.refresh()
    assert linker.link("Tell me about Initech").ids_of("Customer") == ["CUS-9"]


def test_short_id_with_class_word_links_after_checking_the_store(plant: GraphStore) -> None:
    linker = EntityLinker(plant)
    res = linker.link("lot 200 is on hold, who is affected?")
    assert [(m.text, m.ids, m.method) for m in res.linked] == [("lot 200", ["LOT-200"], "id")]
    assert linker.link("what is in batch #100?").ids_of("Lot") == ["LOT-100"]
    assert linker.link("root cause of incident no. 1").ids_of("Incident") == ["INC-1"]
    missing = linker.link("lot 999 is on hold")
    assert missing.linked == [] and missing.not_found == ["lot 999"]


def test_short_id_that_fits_several_classes_is_ambiguous(plant: GraphStore) -> None:
    # MO-1 and SO-1 both exist: "order 1" is not guessed
    res = EntityLinker(plant).link("which SOP applied to order 1?")
    assert res.linked == []
    assert [(m.ids, m.classes) for m in res.ambiguous] == [(["MO-1", "SO-1"], ["ProductionOrder", "SalesOrder"])]
    assert EntityLinker(plant).link("production order 1").ids_of() == ["MO-1"]


def test_prefixed_id_without_padding_links_to_the_padded_id(plant_path: Path) -> None:
    store = open_store("embedded", plant_path.with_name("padded"))
    try:
        build_graph(store, nodes=[(f"LOT-{n:07d}", "Lot", {"quantity": 1.0, "status": "released"}) for n in
                                  (42, 1571, 20000)]
                    + [("MO-0000088", "ProductionOrder", {"status": "completed"})])
        linker = EntityLinker(store)
        assert linker.schemes["Lot"].prefix == "LOT-" and linker.schemes["Lot"].widths == (7,)
        res = linker.link("Lot 1571 and LOT-42 are on hold; what about lot 0020000 and lot 7?")
        assert res.ids_of("Lot") == ["LOT-0001571", "LOT-0000042", "LOT-0020000"]
        assert res.not_found == ["lot 7"]
        assert linker.link("which SOP applied to order 88?").ids_of("ProductionOrder") == ["MO-0000088"]
        # an exact id is still exact, and a number alone is not an id
        assert [m.method for m in linker.link("LOT-0001571").linked] == ["id"]
        assert linker.link("in the next 1571 days").linked == []
    finally:
        store.close()
