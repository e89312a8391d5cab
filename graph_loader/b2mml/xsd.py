"""Validation of B2MML files against MESA's published V0701 schemas (``xmlschema``).

Schema violations are reported, never fatal: real exports often bend their schema, and the
importer maps what it can either way. Files of other versions are listed as not checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from graph_loader.b2mml.records import Problem
from graph_loader.b2mml.safexml import XMLInputError, safe_parse

SCHEMA_DIR = Path(__file__).parent / "schemas" / "V0701"
V0701_NAMESPACE = "http://www.mesa.org/xml/B2MML"


@lru_cache(maxsize=1)
def v0701_schema() -> Any:
    """The V0701 schema set, loaded once per process (a few seconds), never from the network."""
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMA_DIR / "AllSchemas.xsd"), allow="local")


def validate_tree(root: Any, name: str, limit: int = 50) -> list[Problem]:
    """Schema violations of one parsed document (at most ``limit``)."""
    schema = v0701_schema()
    out: list[Problem] = []
    for err in schema.iter_errors(root):
        if len(out) >= limit:
            out.append(Problem(file=name, message=f"more schema violations not listed (limit {limit})"))
            break
        elem = getattr(err, "elem", None)
        line = int(getattr(elem, "sourceline", 0) or 0) if elem is not None else 0
        reason = err.reason or str(err.message)
        out.append(Problem(file=name, line=line, path=str(err.path or ""), message=f"XSD V0701: {reason}"))
    return out


def validate_files(files: Iterable[Path]) -> list[Problem]:
    """Violations of every file whose root is in the V0701 (unversioned MESA) namespace."""
    out: list[Problem] = []
    for f in files:
        try:
            tree = safe_parse(f)
        except XMLInputError:
            continue  # the importer reports it
        root = tree.getroot()
        tag = root.tag if isinstance(root.tag, str) else ""
        if not tag.startswith("{" + V0701_NAMESPACE + "}"):
            out.append(Problem(file=str(f), line=int(root.sourceline or 0),
                               message="not a V0701 document (root outside the MESA B2MML namespace): "
                                       "not checked against the V0701 schemas"))
            continue
        out.extend(validate_tree(root, str(f)))
    return out


__all__ = ["SCHEMA_DIR", "V0701_NAMESPACE", "v0701_schema", "validate_files", "validate_tree"]
