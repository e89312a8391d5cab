"""Helpers to write small bundles by hand in tests."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

from store.embedded import DB_FILE

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tiny-bundle"

MANIFEST = {
    "format": "plantgraph-bundle",
    "format_version": "1.0",
    "source_systems": ["MES"],
    "plants": ["SITE-1"],
    "exported_at": "2026-03-02T06:00:00+01:00",
}


def write_bundle(root: Path, files: dict[str, str], manifest: dict[str, object] | None = None) -> Path:
    """A bundle folder with ``manifest.json`` and the given files (name -> text)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest if manifest is not None else MANIFEST))
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest)
    return dest


def data_rows(path: Path) -> int:
    """Rows of a CSV (minus the header) or JSONL file, counted without the loader."""
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            return sum(1 for row in csv.reader(f) if row) - 1
        return sum(1 for line in f if line.strip())


def store_tables(path: Path) -> list[list[tuple[object, ...]]]:
    """Every table of an embedded store, in key order (the random store id left out): two
    stores that hold the same graph, written in the same order, give equal lists."""
    conn = sqlite3.connect(path / DB_FILE)
    try:
        return [conn.execute(q).fetchall() for q in (
            "SELECT * FROM nodes ORDER BY nid", "SELECT * FROM edges ORDER BY eid",
            "SELECT * FROM node_counts ORDER BY cls", "SELECT * FROM edge_counts ORDER BY rel",
            "SELECT * FROM edge_tombstones ORDER BY rowid", "SELECT * FROM meta WHERE key != 'store_id' ORDER BY key")]
    finally:
        conn.close()
