"""docs/bundle-format.md stays in step with the models and the loader."""

from __future__ import annotations

from pathlib import Path

from graph_loader.bundle import column_reference
from ontology.models import COMMON_FIELDS, ENTITY_CLASSES, RELATIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- column-reference:begin -->\n") + len("<!-- column-reference:begin -->\n")
    return text[start:text.index("<!-- column-reference:end -->")]


def test_column_reference_is_current() -> None:
    assert _section() == column_reference(), "regenerate with: python -m graph_loader.bundle"


def test_every_class_field_and_relation_is_documented() -> None:
    section = _section()
    for name, model in ENTITY_CLASSES.items():
        for field in set(model.model_fields) - COMMON_FIELDS:
            assert f"| {name} | `{field}` |" in section, (name, field)
    for rel in RELATIONS:
        assert f"| {rel} |" in section, rel
    text = DOC.read_text(encoding="utf-8")
    for common in COMMON_FIELDS:
        assert f"| `{common}` |" in text, common
