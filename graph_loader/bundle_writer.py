"""A small streaming writer for bundles (see docs/bundle-format.md).

Importers and the synthetic plant generator write through this one class, so every bundle on disk
has the same column order and cell encoding: the Entity common fields then the class's own fields
in pydantic model order; an empty cell for None; lists joined with ``|``; timestamps ISO-8601 with
offset. Files are opened lazily and appended to, so a caller can write a class in many batches
without holding all rows in memory.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from ontology.models import ENTITY_CLASSES, RELATIONS, datetime_fields

BUNDLE_FORMAT = "plantgraph-bundle"
BUNDLE_FORMAT_VERSION = "1.0"

FileFormat = Literal["csv", "jsonl"]


class BundleWriteError(ValueError):
    """A row or name does not fit the bundle contract; names the file and what was expected."""


def node_columns(cls_name: str) -> list[str]:
    """Column order of a class file: common fields then class fields, in model order."""
    try:
        model = ENTITY_CLASSES[cls_name]
    except KeyError:
        raise BundleWriteError(
            f"{cls_name}: unknown entity class; expected one of {', '.join(sorted(ENTITY_CLASSES))}"
        ) from None
    return list(model.model_fields)


def edge_columns(rel_name: str) -> list[str]:
    """Column order of a relation file: src, dst, then the relation's edge property fields."""
    try:
        rel = RELATIONS[rel_name]
    except KeyError:
        raise BundleWriteError(
            f"{rel_name}: unknown relation; expected one of {', '.join(sorted(RELATIONS))}"
        ) from None
    return ["src", "dst", *rel.props.model_fields]


def format_timestamp(value: datetime) -> str:
    """ISO-8601 with offset; naive datetimes are refused because the contract needs a zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BundleWriteError(f"timestamp {value.isoformat()} has no time zone; expected an offset")
    return value.isoformat()


def csv_cell(value: Any) -> str:
    """Encode one value as a CSV cell per the bundle contract."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        parts = [csv_cell(v) for v in value]
        for p in parts:
            if "|" in p:
                raise BundleWriteError(f"list item {p!r} contains '|', the list separator")
        return "|".join(parts)
    raise BundleWriteError(f"cannot encode {type(value).__name__} value {value!r} as a CSV cell")


def csv_field(text: str) -> str:
    """One CSV field exactly as ``csv.writer`` (minimal quoting, doubled quotes) writes it.

    For writers that build whole lines themselves (:meth:`BundleWriter.write_node_lines`): a field
    is quoted only when it holds the delimiter, a quote or a line break.
    """
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def json_value(value: Any) -> Any:
    """Encode one value for a JSONL row (lists stay arrays, timestamps become strings)."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


class _Sink:
    """One open output file of the bundle."""

    def __init__(self, path: Path, columns: list[str], fmt: FileFormat, list_columns: frozenset[str]) -> None:
        self.path = path
        self.columns = columns
        self.fmt = fmt
        self.list_columns = list_columns
        self.rows = 0
        self.fh: IO[str] = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.fh, lineterminator="\r\n") if fmt == "csv" else None
        if self.writer is not None:
            self.writer.writerow(columns)


class BundleWriter:
    """Writes one bundle folder: one file per class and relation, then manifest.json on close().

    ``write_nodes``/``write_edges`` take mappings (missing keys are absent values) and encode
    them; ``write_node_rows``/``write_edge_rows`` take rows already encoded as strings in the
    canonical column order; ``write_node_lines``/``write_edge_lines`` take whole CSV lines, the
    fastest path (no per-row list), used by bulk writers such as the generator.
    """

    def __init__(
        self,
        out_dir: str | Path,
        source_systems: Sequence[str],
        plants: Sequence[str],
        *,
        exported_at: datetime | None = None,
        extra_manifest: Mapping[str, Any] | None = None,
        jsonl_classes: Iterable[str] = (),
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.source_systems = list(source_systems)
        self.plants = list(plants)
        self.exported_at = exported_at
        self.extra_manifest = dict(extra_manifest or {})
        self.jsonl_classes = frozenset(jsonl_classes)
        self._sinks: dict[str, _Sink] = {}
        self._closed = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._close_files()

    # -- sinks -----------------------------------------------------------------------------
    def _sink(self, name: str, kind: Literal["node", "edge"]) -> _Sink:
        if self._closed:
            raise BundleWriteError(f"{self.out_dir}: writer already closed")
        sink = self._sinks.get(name)
        if sink is None:
            if kind == "node":
                columns = node_columns(name)
                model = ENTITY_CLASSES[name]
            else:
                columns = edge_columns(name)
                model = RELATIONS[name].props  # type: ignore[assignment]
            list_cols = frozenset(
                f for f, info in model.model_fields.items() if "list" in repr(info.annotation)
            )
            fmt: FileFormat = "jsonl" if name in self.jsonl_classes else "csv"
            sink = _Sink(self.out_dir / f"{name}.{fmt}", columns, fmt, list_cols)
            self._sinks[name] = sink
        return sink

    def _write_mappings(self, sink: _Sink, rows: Iterable[Mapping[str, Any]]) -> int:
        cols = sink.columns
        allowed = set(cols)
        n = 0
        for row in rows:
            unknown = set(row) - allowed
            if unknown:
                raise BundleWriteError(
                    f"{sink.path.name}: row {sink.rows + n + 1}: unknown column(s) {sorted(unknown)}; "
                    f"expected some of {cols}"
                )
            if sink.writer is not None:
                sink.writer.writerow([csv_cell(row.get(c)) for c in cols])
            else:
                obj = {c: json_value(row[c]) for c in cols if row.get(c) is not None}
                sink.fh.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
            n += 1
        sink.rows += n
        return n

    def _write_encoded(self, sink: _Sink, rows: Iterable[Sequence[str]]) -> int:
        width = len(sink.columns)
        batch = rows if isinstance(rows, list) else list(rows)
        if set(map(len, batch)) - {width}:
            i = next(i for i, row in enumerate(batch) if len(row) != width)
            raise BundleWriteError(
                f"{sink.path.name}: row {sink.rows + i + 1} has {len(batch[i])} cells; "
                f"expected {width} ({', '.join(sink.columns)})"
            )
        if sink.writer is not None:
            # Fast path: when no cell needs RFC 4180 quoting, a plain join gives the same bytes as
            # csv.writer; the counts below prove it (any delimiter, quote or line break inside a
            # cell would change them), else the csv module quotes as usual.
            text = "\r\n".join(map(",".join, batch))
            n = len(batch)
            if (n and '"' not in text and text.count(",") == n * (width - 1)
                    and text.count("\n") == n - 1 and text.count("\r") == n - 1):
                sink.fh.write(text)
                sink.fh.write("\r\n")
            else:
                sink.writer.writerows(batch)
        else:
            for row in batch:
                obj: dict[str, Any] = {}
                for c, v in zip(sink.columns, row, strict=True):
                    if v == "":
                        continue
                    obj[c] = v.split("|") if c in sink.list_columns else v
                sink.fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sink.rows += len(batch)
        return len(batch)

    def _write_lines(self, sink: _Sink, lines: Sequence[str]) -> int:
        if sink.writer is None:
            raise BundleWriteError(f"{sink.path.name}: pre-joined lines are for CSV files; "
                                   f"write JSON Lines classes with write_node_rows")
        n = len(lines)
        if not n:
            return 0
        width = len(sink.columns)
        text = "\r\n".join(lines)
        # A line break inside any line adds to these counts, so equality proves one record per line.
        if text.count("\n") != n - 1 or text.count("\r") != n - 1:
            i = next(i for i, line in enumerate(lines) if "\n" in line or "\r" in line)
            raise BundleWriteError(f"{sink.path.name}: row {sink.rows + i + 1} holds a line break; "
                                   f"expected one record per line")
        if '"' not in text:
            # unquoted: every delimiter separates two cells, so the comma count per line is the width
            if set(map(str.count, lines, itertools.repeat(","))) != {width - 1}:
                i = next(i for i, line in enumerate(lines) if line.count(",") != width - 1)
                raise BundleWriteError(
                    f"{sink.path.name}: row {sink.rows + i + 1} has {lines[i].count(',') + 1} cells; "
                    f"expected {width} ({', '.join(sink.columns)})")
        else:
            # quoted fields: read the lines back as CSV (rare: free-text names with a comma or quote)
            for i, row in enumerate(csv.reader(lines)):
                if len(row) != width:
                    raise BundleWriteError(
                        f"{sink.path.name}: row {sink.rows + i + 1} has {len(row)} cells; "
                        f"expected {width} ({', '.join(sink.columns)})")
        sink.fh.write(text)
        sink.fh.write("\r\n")
        sink.rows += n
        return n

    # -- public API ------------------------------------------------------------------------
    def write_nodes(self, cls_name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append entities of one class (mappings keyed by field name). Returns the row count."""
        return self._write_mappings(self._sink(cls_name, "node"), rows)

    def write_edges(self, rel_name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append edges of one relation (mappings with ``src``, ``dst`` and edge properties)."""
        return self._write_mappings(self._sink(rel_name, "edge"), rows)

    def write_node_rows(self, cls_name: str, rows: Iterable[Sequence[str]]) -> int:
        """Append pre-encoded entity rows in :func:`node_columns` order (cells already strings)."""
        return self._write_encoded(self._sink(cls_name, "node"), rows)

    def write_edge_rows(self, rel_name: str, rows: Iterable[Sequence[str]]) -> int:
        """Append pre-encoded edge rows in :func:`edge_columns` order (cells already strings)."""
        return self._write_encoded(self._sink(rel_name, "edge"), rows)

    def write_node_lines(self, cls_name: str, lines: Sequence[str]) -> int:
        """Append entity rows already joined into CSV lines (no terminator; quote free text with
        :func:`csv_field`), in :func:`node_columns` order. Each line is checked for its cell count."""
        return self._write_lines(self._sink(cls_name, "node"), lines)

    def write_edge_lines(self, rel_name: str, lines: Sequence[str]) -> int:
        """Append edge rows already joined into CSV lines, in :func:`edge_columns` order."""
        return self._write_lines(self._sink(rel_name, "edge"), lines)

    def counts(self) -> dict[str, int]:
        """Rows written so far per class or relation name."""
        return {name: sink.rows for name, sink in sorted(self._sinks.items())}

    def _close_files(self) -> None:
        for sink in self._sinks.values():
            if not sink.fh.closed:
                sink.fh.close()

    def close(self) -> Path:
        """Close every file and write manifest.json; returns the manifest path."""
        if self._closed:
            return self.out_dir / "manifest.json"
        self._close_files()
        exported = self.exported_at or datetime.now().astimezone()
        manifest: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "source_systems": self.source_systems,
            "plants": self.plants,
            "exported_at": format_timestamp(exported),
        }
        manifest.update(self.extra_manifest)
        path = self.out_dir / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self._closed = True
        return path


__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "BundleWriteError",
    "BundleWriter",
    "csv_cell",
    "csv_field",
    "datetime_fields",
    "edge_columns",
    "node_columns",
]
