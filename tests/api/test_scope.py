"""The redactor on hand-made documents: paths go whole, emptied evidence takes its item, top-level id
lists lose members, prose is scrubbed, and the count says how much was withheld."""

from __future__ import annotations

from api.keys import Principal
from api.roles import Role
from api.scope import Redactor, entity_ref_ids, json_candidates
from store.base import GraphStore
from tests.graphs import build_graph

STEP = {"src": "A1", "rel": "CONSUMED", "dst": "B1", "direction": "in"}


def test_path_with_a_forbidden_node_goes_whole() -> None:
    doc = {"reached": {"Lot": [
        {"entity": {"id": "A2", "cls": "Lot"},
         "evidence": [{"steps": [{"src": "A1", "rel": "R", "dst": "A2", "direction": "out"}]},
                      {"steps": [STEP, {"src": "B1", "rel": "R", "dst": "A2", "direction": "out"}]}]},
        {"entity": {"id": "C9", "cls": "Customer"}, "evidence": [{"steps": [STEP]}]},
    ]}}
    red = Redactor({"B1"})
    out = red.redact(doc)
    lots = out["reached"]["Lot"]
    # A2 keeps its clean path and loses the one through B1 (not a path with a hole)
    assert [e["entity"]["id"] for e in lots] == ["A2"]
    assert lots[0]["evidence"] == [{"steps": [{"src": "A1", "rel": "R", "dst": "A2", "direction": "out"}]}]
    # C9 had only the B1 path: it goes, though C9 itself is not forbidden
    # withheld counts every removed piece: A2's B1 path, C9's path, C9 itself
    assert red.withheld == 3


def test_non_evidence_lists_shrink_without_taking_their_owner() -> None:
    doc = {"lines": [{"line": {"id": "SOL-1", "cls": "SalesOrderLine"},
                      "causes": [{"entity": {"id": "B-HOLD", "cls": "QualityHold"}}]}]}
    out = Redactor({"B-HOLD"}).redact(doc)
    assert out["lines"][0]["line"]["id"] == "SOL-1" and out["lines"][0]["causes"] == []


def test_top_level_ids_and_prose() -> None:
    doc = {"start_lots": ["A1", "B1"], "anchor": "B1", "note": "lot B1 was consumed by A1"}
    red = Redactor({"B1"})
    out = red.redact(doc)
    assert out == {"start_lots": ["A1"], "anchor": "[withheld]", "note": "lot [withheld] was consumed by A1"}
    assert red.withheld == 2


def test_nothing_forbidden_is_identity() -> None:
    doc = {"a": [{"steps": [STEP]}]}
    red = Redactor(set())
    assert red.redact(doc) is doc and red.withheld == 0


def test_json_candidates_and_refs() -> None:
    text = '{"entity":{"id":"L-\\"1","cls":"Lot"},"note":"from SUP-7 via PO-2","t":"x"}'
    cands = json_candidates(text)
    assert {'L-"1', "SUP-7", "PO-2", "Lot"} <= cands
    assert entity_ref_ids('{"a":[{"id":"L-1","cls":"Lot"},{"id":"C-2","cls":"Customer"}]}') == {"L-1", "C-2"}


def test_json_candidates_without_escapes_match_the_strings() -> None:
    # no escaped quote: the fast split path; every string counts, prose gives its id-like tokens
    text = '{"items":[{"id":"L-1","cls":"Lot"}],"why":"held by QH-9 since Monday","n":3,"e":"","u":"caf\\u00e9"}'
    assert json_candidates(text) == {"items", "id", "L-1", "cls", "Lot", "why", "held", "by", "QH-9", "since",
                                     "Monday", "n", "e", "u", "café"}


def test_plant_memo_follows_the_graph_state(plant_store: GraphStore) -> None:
    from api.scope import PlantMemo, forbidden_ids

    memo = PlantMemo()
    a_only = Principal(key_id="k", user="u", role=Role.analyst, plants=frozenset({"SITE-A"}))
    cands = ["L-A1", "L-B1", "CUST-1", "not-an-entity"]
    assert forbidden_ids(plant_store, a_only, cands, memo, (1, 0)) == {"L-B1"}
    # the lot moves to plant A; at the same state the memo still answers from memory...
    build_graph(plant_store, [("L-B1", "Lot", {"quantity": 1.0, "unit": "kg", "status": "released"},
                               {"plant": "SITE-A"})])
    assert forbidden_ids(plant_store, a_only, cands, memo, (1, 0)) == {"L-B1"}
    # ...and at the new state it reads again
    assert forbidden_ids(plant_store, a_only, cands, memo, (2, 0)) == set()
    assert forbidden_ids(plant_store, a_only, cands) == set()  # without a memo: always a fresh read
