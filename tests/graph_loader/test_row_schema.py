"""Typed rows -> the bulk write's plain rows: the shortcut for relations without properties gives
what the general path gives."""

from __future__ import annotations

import dataclasses

import pytest

from graph_loader.validation import known_relations, row_schema

NO_PROPS = [r for r in known_relations() if not row_schema("edge", r).has_props]


def test_some_relations_have_no_properties() -> None:
    assert "HAS_LINE" in NO_PROPS and "CONSUMED" not in NO_PROPS


@pytest.mark.parametrize("rel", NO_PROPS[:6])
@pytest.mark.parametrize("times", [{}, {"valid_from": "2026-03-01T06:00:00+01:00"},
                                   {"valid_to": "2026-03-02T00:00:00Z"}])
def test_edge_rows_without_properties_match_the_general_path(rel: str, times: dict[str, str]) -> None:
    schema = row_schema("edge", rel)
    raw = [{"src": "A-1", "dst": "B-1", **times}, {"src": "A-2", "dst": "B-2", "source_system": "ERP"}]
    typed = schema.batch_adapter.validate_python(raw)
    general = dataclasses.replace(schema, has_props=True)  # forces the pydantic dump
    assert schema.to_edge_rows(typed) == general.to_edge_rows(typed)
    rows = schema.to_edge_rows(typed)
    assert rows[1] == ("A-2", "B-2", "ERP", None, None, {})
    assert (rows[0][3] is not None or rows[0][4] is not None) == bool(times)
