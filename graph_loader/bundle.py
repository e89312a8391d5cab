"""Reading a bundle folder: the manifest, one CSV or JSON Lines file per class and relation, and
the optional deletion lists. See docs/bundle-format.md for the format itself.

The reader streams: each file is read in batches of rows, so memory holds one batch per file, not
the bundle. Every row keeps its place (file, line, and the CSV header or JSON field), so later
errors can point at it. Typing of rows is done by :mod:`graph_loader.validation`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from graph_loader.errors import BundleNotFoundError, ErrorCollector, LoadError, show
from graph_loader.validation import Deletions, RowSchema, Source, row_schema
from ontology.models import ENTITY_CLASSES, RELATIONS

FORMAT = "plantgraph-bundle"
FORMAT_VERSION = "1.0"
#: Major versions of the format this reader understands (minor versions only add optional things).
SUPPORTED_MAJOR = "1"
MANIFEST = "manifest.json"
DELETED_NODES = "_deleted_nodes.csv"
DELETED_EDGES = "_deleted_edges.csv"
#: Files a bundle folder may hold that are not data: the generator writes truth.json (known answers)
#: and questions.jsonl (the copilot's public question set) beside the bundle.
IGNORED_FILES = frozenset({MANIFEST, "truth.json", "questions.jsonl", "README.md", "README.txt"})
LIST_SEPARATOR = "|"
DEFAULT_BATCH = 5000

ProgressFn = Callable[[int], None]
"""Called with the number of bytes just read, so a caller can drive a progress bar."""


class Manifest(BaseModel):
    """``manifest.json``: what the bundle is and where it came from. Extra keys are kept."""

    model_config = ConfigDict(extra="allow")

    format: Literal["plantgraph-bundle"]
    format_version: str = Field(pattern=r"^\d+\.\d+$")
    source_systems: list[str] = Field(default_factory=list)
    plants: list[str] = Field(default_factory=list)
    exported_at: AwareDatetime


class FileKind(StrEnum):
    NODES = "nodes"
    EDGES = "edges"
    DELETED_NODES = "deleted_nodes"
    DELETED_EDGES = "deleted_edges"


@dataclass(frozen=True, slots=True)
class BundleFile:
    """One data file of a bundle: which class or relation it holds, and in which format."""

    path: Path
    kind: FileKind
    name: str
    fmt: Literal["csv", "jsonl"]
    size: int

    @property
    def label(self) -> str:
        return self.path.name


@dataclass(slots=True)
class Bundle:
    """An opened bundle: its manifest, its data files, and the problems found so far."""

    root: Path
    manifest: Manifest | None
    files: list[BundleFile]
    errors: list[LoadError] = field(default_factory=list)

    def of_kind(self, kind: FileKind) -> list[BundleFile]:
        return [f for f in self.files if f.kind == kind]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _manifest_errors(path: Path) -> tuple[Manifest | None, list[LoadError]]:
    name = MANIFEST
    if not path.is_file():
        return None, [LoadError(file=name, line=0, message="the bundle has no manifest.json",
                                expected="a manifest.json file", found="nothing")]
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [LoadError(file=name, line=exc.lineno, column=f"col {exc.colno}",
                                message=f"invalid JSON: {exc.msg}", expected="a JSON object", found=None)]
    if not isinstance(data, dict):
        return None, [LoadError(file=name, line=1, message="the manifest is not a JSON object",
                                expected="a JSON object", found=type(data).__name__)]
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        errs = []
        for err in exc.errors(include_url=False):
            col = ".".join(str(p) for p in err["loc"]) or "-"
            expected = {
                "format": f"{FORMAT!r}", "format_version": f"a version like {FORMAT_VERSION!r}",
                "exported_at": "an ISO-8601 timestamp with a time zone offset",
            }.get(col, str(err["msg"]))
            found = "nothing" if err["type"] == "missing" else show(err.get("input"))
            errs.append(LoadError(file=name, line=1, column=col, message=str(err["msg"]),
                                  expected=expected, found=found))
        return None, errs
    if manifest.format_version.split(".")[0] != SUPPORTED_MAJOR:
        return manifest, [LoadError(
            file=name, line=1, column="format_version", message="unsupported bundle format version",
            expected=f"{SUPPORTED_MAJOR}.x (this reader writes {FORMAT_VERSION})",
            found=repr(manifest.format_version))]
    return manifest, []


def _classify(path: Path) -> BundleFile | LoadError | None:
    name = path.name
    if name in IGNORED_FILES or name.startswith("."):
        return None
    size = path.stat().st_size
    if name == DELETED_NODES:
        return BundleFile(path, FileKind.DELETED_NODES, "_deleted_nodes", "csv", size)
    if name == DELETED_EDGES:
        return BundleFile(path, FileKind.DELETED_EDGES, "_deleted_edges", "csv", size)
    stem, dot, ext = name.rpartition(".")
    if dot and ext in ("csv", "jsonl"):
        fmt: Literal["csv", "jsonl"] = "csv" if ext == "csv" else "jsonl"
        if stem in ENTITY_CLASSES:
            return BundleFile(path, FileKind.NODES, stem, fmt, size)
        if stem in RELATIONS:
            return BundleFile(path, FileKind.EDGES, stem, fmt, size)
        return LoadError(
            file=name, line=0, message=f"unknown class or relation {stem!r} in the file name",
            expected="a class (" + ", ".join(sorted(ENTITY_CLASSES)) + ") or a relation ("
            + ", ".join(sorted(RELATIONS)) + f"), or {DELETED_NODES} / {DELETED_EDGES}",
            found=repr(stem))
    return LoadError(
        file=name, line=0, message="not a bundle data file",
        expected="<Class>.csv, <Class>.jsonl, <RELATION>.csv, <RELATION>.jsonl, manifest.json",
        found=repr(name))


def open_bundle(path: str | Path) -> Bundle:
    """Read the manifest and list the data files. Problems are collected in ``Bundle.errors``;
    only a missing folder raises (:class:`BundleNotFoundError`)."""
    root = Path(path)
    if not root.is_dir():
        raise BundleNotFoundError(f"{root}: not a bundle folder (expected a folder with a {MANIFEST})")
    manifest, errors = _manifest_errors(root / MANIFEST)
    files: list[BundleFile] = []
    for p in sorted(root.iterdir()):
        if not p.is_file():
            continue
        got = _classify(p)
        if isinstance(got, LoadError):
            errors.append(got)
        elif got is not None:
            files.append(got)
    # node files first (so edges can find their endpoints), then edges, each in name order
    order = {FileKind.DELETED_NODES: 0, FileKind.DELETED_EDGES: 1, FileKind.NODES: 2, FileKind.EDGES: 3}
    files.sort(key=lambda f: (order[f.kind], f.name, f.fmt))
    return Bundle(root=root, manifest=manifest, files=files, errors=errors)


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RawBatch:
    """Rows of one file as read (strings for CSV, JSON values for JSONL) with their places."""

    rows: list[dict[str, Any]]
    places: list[tuple[Source, int]]


@dataclass(slots=True)
class TypedBatch:
    """Rows that passed typing (``typed``) with their places; ``failed`` holds the raw rows
    that did not, so their ids still count for endpoint checks."""

    schema: RowSchema
    typed: list[dict[str, Any]]
    places: list[tuple[Source, int]]
    failed: list[tuple[dict[str, Any], tuple[Source, int]]]


def _csv_batches(
    bf: BundleFile, fields: tuple[str, ...], required: frozenset[str], list_fields: frozenset[str],
    errors: ErrorCollector, batch_size: int, progress: ProgressFn | None, missing_out: set[str],
) -> Iterator[RawBatch]:
    with bf.path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.add(LoadError(file=bf.label, line=1, message=f"unreadable header: {exc}",
                                 expected="a UTF-8 CSV header row", found=None))
            return
        if header is None:
            errors.add(LoadError(file=bf.label, line=1, message="empty file",
                                 expected="a header row: " + ",".join(fields), found="nothing"))
            return
        header = [h.strip() for h in header]
        columns = {h: i + 1 for i, h in enumerate(header)}
        src = Source(bf.label, columns)
        allowed = set(fields)
        keep: list[tuple[int, str]] = []
        seen: set[str] = set()
        for i, h in enumerate(header):
            if h in seen:
                errors.add(src.error(1, h, f"duplicate column {h!r}", "each column once", repr(h)))
            elif h not in allowed:
                errors.add(src.error(1, h or f"#{i + 1}", f"unknown column {h!r} for {bf.name}",
                                     "one of " + ", ".join(fields), repr(h)))
            else:
                keep.append((i, h))
            seen.add(h)
        for name in sorted(required - seen):
            errors.add(src.error(1, name, f"missing required column {name!r}",
                                 f"a header with {name!r}", ",".join(header)))
            missing_out.add(name)
        names: list[str | None] = [None] * len(header)
        for i, h in keep:
            names[i] = h
        all_known = len(keep) == len(header)
        list_cols = [h for _, h in keep if h in list_fields]
        width = len(header)
        rows: list[dict[str, Any]] = []
        places: list[tuple[Source, int]] = []
        last_line = reader.line_num
        raw: Any = f.buffer  # its position tells the progress bar how far the bytes go
        reported = 0
        try:
            for row in reader:
                line = last_line + 1
                last_line = reader.line_num
                if len(row) != width:
                    if not any(row):
                        continue  # a blank line
                    errors.add(src.error(line, "-", f"row has {len(row)} cells, the header has {width}",
                                         f"{width} cells", f"{len(row)} cells"))
                    continue
                if all_known:
                    d: dict[str, Any] = {k: v for k, v in zip(header, row, strict=False) if v}
                else:
                    d = {k: v for k, v in zip(names, row, strict=False) if v and k is not None}
                for lc in list_cols:
                    v = d.get(lc)
                    if v is not None:
                        d[lc] = v.split(LIST_SEPARATOR)
                rows.append(d)
                places.append((src, line))
                if len(rows) >= batch_size:
                    if progress is not None:
                        pos = raw.tell()
                        progress(pos - reported)
                        reported = pos
                    yield RawBatch(rows, places)
                    rows, places = [], []
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.add(src.error(last_line + 1, "-", f"unreadable CSV: {exc}",
                                 "UTF-8 text with RFC 4180 quoting", None))
        if progress is not None:
            progress(bf.size - reported)
        if rows:
            yield RawBatch(rows, places)


def _jsonl_batches(
    bf: BundleFile, list_fields: frozenset[str], errors: ErrorCollector, batch_size: int,
    progress: ProgressFn | None,
) -> Iterator[RawBatch]:
    src = Source(bf.label)
    rows: list[dict[str, Any]] = []
    places: list[tuple[Source, int]] = []
    read = reported = 0
    line = 0
    with bf.path.open(encoding="utf-8") as f:
        try:
            for line, text in enumerate(f, start=1):
                read += len(text)
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    errors.add(src.error(line, f"col {exc.colno}", f"invalid JSON: {exc.msg}",
                                         "one JSON object per line", show(text.strip(), 60)))
                    continue
                if not isinstance(obj, dict):
                    errors.add(src.error(line, "-", "the line is not a JSON object", "a JSON object",
                                         type(obj).__name__))
                    continue
                # null means absent, like an empty CSV cell
                rows.append({k: v for k, v in obj.items() if v is not None})
                places.append((src, line))
                if len(rows) >= batch_size:
                    if progress is not None:
                        progress(read - reported)
                        reported = read
                    yield RawBatch(rows, places)
                    rows, places = [], []
        except UnicodeDecodeError as exc:
            errors.add(src.error(line + 1, "-", f"not UTF-8: {exc.reason}", "UTF-8 text", None))
    if progress is not None:
        # the file's bytes, as the CSV reader reports: ``read`` counts characters, fewer than
        # bytes in UTF-8 text, and the bar would stop short of its total
        progress(bf.size - reported)
    if rows:
        yield RawBatch(rows, places)


def raw_batches(
    bf: BundleFile, errors: ErrorCollector, batch_size: int = DEFAULT_BATCH,
    progress: ProgressFn | None = None, missing_out: set[str] | None = None,
) -> Iterator[RawBatch]:
    """The rows of one data file in batches, as read. Header problems (unknown or missing
    columns) are reported once; ``missing_out`` receives the required columns the header lacks."""
    if bf.kind in (FileKind.NODES, FileKind.EDGES):
        schema = row_schema("node" if bf.kind == FileKind.NODES else "edge", bf.name)
        fields, required, lists = schema.fields, schema.required, schema.list_fields
    elif bf.kind == FileKind.DELETED_NODES:
        fields, required, lists = ("id",), frozenset({"id"}), frozenset()
    else:
        fields, required, lists = ("src", "rel", "dst"), frozenset({"src", "rel", "dst"}), frozenset()
    sink = missing_out if missing_out is not None else set()
    if bf.fmt == "csv":
        yield from _csv_batches(bf, fields, required, lists, errors, batch_size, progress, sink)
    else:
        yield from _jsonl_batches(bf, lists, errors, batch_size, progress)


def typed_batches(
    bf: BundleFile, errors: ErrorCollector, batch_size: int = DEFAULT_BATCH,
    progress: ProgressFn | None = None,
) -> Iterator[TypedBatch]:
    """The rows of one class or relation file, typed by the ontology, with their places."""
    schema = row_schema("node" if bf.kind == FileKind.NODES else "edge", bf.name)
    missing: set[str] = set()
    for raw in raw_batches(bf, errors, batch_size, progress, missing):
        values, bad = schema.validate(raw.rows, raw.places, errors, frozenset(missing))
        if not bad:
            yield TypedBatch(schema, values, raw.places, [])  # type: ignore[arg-type]
            continue
        typed: list[dict[str, Any]] = []
        places: list[tuple[Source, int]] = []
        failed: list[tuple[dict[str, Any], tuple[Source, int]]] = []
        for v, row, place in zip(values, raw.rows, raw.places, strict=True):
            if v is None:
                failed.append((row, place))
            else:
                typed.append(v)
                places.append(place)
        yield TypedBatch(schema, typed, places, failed)


def read_deletions(bundle: Bundle, errors: ErrorCollector, progress: ProgressFn | None = None) -> Deletions:
    """The ids and edge keys a bundle deletes (small files, read whole)."""
    out = Deletions()
    for bf in bundle.of_kind(FileKind.DELETED_NODES):
        for batch in raw_batches(bf, errors, DEFAULT_BATCH, progress):
            for row, (src, line) in zip(batch.rows, batch.places, strict=True):
                node_id = str(row.get("id", "")).strip()
                if not node_id:
                    errors.add(src.error(line, "id", "empty id", "the id of a node to delete", "an empty cell"))
                else:
                    out.nodes.setdefault(node_id, (src, line))
    for bf in bundle.of_kind(FileKind.DELETED_EDGES):
        for batch in raw_batches(bf, errors, DEFAULT_BATCH, progress):
            for row, (src, line) in zip(batch.rows, batch.places, strict=True):
                parts = {k: str(row.get(k, "")).strip() for k in ("src", "rel", "dst")}
                bad = [k for k, v in parts.items() if not v]
                if bad:
                    errors.add(src.error(line, bad[0], f"empty {bad[0]}", f"a value for {bad[0]}", "an empty cell"))
                elif parts["rel"] not in RELATIONS:
                    errors.add(src.error(line, "rel", "unknown relation",
                                         "one of " + ", ".join(sorted(RELATIONS)), repr(parts["rel"])))
                else:
                    out.edges.setdefault((parts["src"], parts["rel"], parts["dst"]), (src, line))
    return out


# ---------------------------------------------------------------------------------------------
# Column reference (docs/bundle-format.md embeds this; a test keeps the page in step)
# ---------------------------------------------------------------------------------------------


def _rules(shape: Any, default: Any) -> str:
    parts: list[str] = []
    if shape.enum:
        parts.append("one of " + ", ".join(f"`{v}`" for v in shape.enum))
    if shape.min_exclusive is not None:
        parts.append(f"> {shape.min_exclusive:g}")
    if shape.min_inclusive is not None:
        parts.append(f">= {shape.min_inclusive:g}")
    if shape.max_inclusive is not None:
        parts.append(f"<= {shape.max_inclusive:g}")
    if shape.min_length:
        parts.append(f"at least {shape.min_length} character(s)")
    if shape.max_length:
        parts.append(f"at most {shape.max_length} characters")
    if default is not None:
        parts.append(f"default `{default}`")
    return "; ".join(parts)


def column_reference() -> str:
    """Markdown tables of every class's and relation's columns, from the ontology models."""
    from ontology.introspect import class_property_shapes, edge_property_shapes

    kinds = {"string": "text", "double": "number", "integer": "integer", "boolean": "true/false",
             "datetime": "timestamp with offset", "date": "date"}
    out = ["| class | column | type | required | rules |", "| --- | --- | --- | --- | --- |"]
    for name, model in ENTITY_CLASSES.items():
        schema = row_schema("node", name)
        for shape in class_property_shapes(model):
            kind = kinds[shape.kind] + (" list (joined with `\\|` in CSV)" if shape.many else "")
            default = schema.defaults.get(shape.name)
            out.append(f"| {name} | `{shape.name}` | {kind} | {'yes' if shape.required else ''} | "
                       f"{_rules(shape, default)} |")
    out += ["", "| relation | src (domain) | dst (range) | property columns |", "| --- | --- | --- | --- |"]
    for name, rel in RELATIONS.items():
        eschema = row_schema("edge", name)
        cols = []
        for shape in edge_property_shapes(name):
            if shape.name in ("source_system", "valid_from", "valid_to"):
                continue
            extra = _rules(shape, eschema.defaults.get(shape.name))
            req = "required" if shape.required else ""
            note = "; ".join(p for p in (kinds[shape.kind], req, extra) if p)
            cols.append(f"`{shape.name}` ({note})")
        out.append(f"| {name} | {' / '.join(rel.domain)} | {' / '.join(rel.range)} | {', '.join(cols) or '—'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - prints the docs' column reference
    print(column_reference(), end="")
