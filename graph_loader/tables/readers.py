"""Row readers for CSV (delimiter and encoding declared or detected), JSON Lines and Excel.

Each yields ``(line, row)`` where ``line`` is the 1-based line of the record in the file (the
spreadsheet row for Excel) and ``row`` maps column names to raw values, streaming.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from graph_loader.b2mml.records import ImportError_
from graph_loader.tables.mapping import Mapping

_SNIFF = 64 * 1024


class TableInputError(ImportError_):
    """The file cannot be read as the declared/detected format; the message names the place."""


class RowBatch:
    """Consecutive rows for column-wise mapping: CSV records stay lists (a column is one pass
    over them, no dict per row); :meth:`rows` gives the same dicts the row iterator yields."""

    def __init__(self, lines: list[int], rows: list[dict[str, Any]] | None = None,
                 header: list[str] | None = None, records: list[list[str]] | None = None,
                 ragged: bool = False) -> None:
        self.lines = lines
        self._rows = rows
        self._header = header or []
        self._records = records or []
        self._index = {h: i for i, h in enumerate(self._header)}  # a repeated name: the last wins
        #: a record with the wrong number of fields (the row iterator reports it as a row error)
        self.ragged = ragged or (rows is not None and any("__error__" in r for r in rows))

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            h = self._header
            self._rows = [dict(zip(h, rec, strict=True)) for rec in self._records]
        return self._rows

    def column(self, name: str) -> list[Any]:
        """The column's cells; KeyError when a row lacks it."""
        if self._rows is None:
            return list(map(itemgetter(self._index[name]), self._records))
        return [r[name] for r in self._rows]


@dataclass
class Table:
    """An open table: its detected settings, header and row iterator (or, for CSV, the same
    records in batches: use one or the other)."""

    path: Path
    format: str
    columns: list[str]
    rows: Iterator[tuple[int, dict[str, Any]]]
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    batches: Callable[[int], Iterator[RowBatch]] | None = None


def detect_encoding(raw: bytes) -> str:
    """BOM first, then UTF-8 if it decodes, else Windows-1252 (the usual ERP export fallback)."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 4:  # a multi-byte character cut by the sniff window
            return "utf-8"
        return "cp1252"


def detect_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(",;\t|", key=first.count) if first else ","


def _format_of(path: Path, mapping: Mapping) -> str:
    if mapping.format:
        return mapping.format
    ext = path.suffix.lower()
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext in (".xlsx", ".xlsm"):
        return "xlsx"
    return "csv"


def open_table(path: Path, mapping: Mapping) -> Table:
    fmt = _format_of(path, mapping)
    if fmt == "csv":
        return _open_csv(path, mapping)
    if fmt == "jsonl":
        return _open_jsonl(path)
    return _open_xlsx(path, mapping)


def _open_csv(path: Path, mapping: Mapping) -> Table:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF)
    enc = mapping.csv.encoding or detect_encoding(head)
    try:
        sample = head.decode(enc, errors="ignore" if len(head) == _SNIFF else "strict")
    except (UnicodeDecodeError, LookupError) as exc:
        raise TableInputError(f"{path}:1: cannot decode as {enc}: {exc}") from None
    delim = mapping.csv.delimiter or detect_delimiter(sample)
    fh2 = path.open("r", encoding=enc, newline="")
    reader = csv.reader(fh2, delimiter=delim, quotechar=mapping.csv.quotechar)
    try:
        header = next(reader)
    except StopIteration:
        fh2.close()
        raise TableInputError(f"{path}:1: the file is empty (expected a header row)") from None
    except UnicodeDecodeError as exc:
        fh2.close()
        raise TableInputError(f"{path}:1: cannot decode as {enc}: {exc.reason}") from None
    header = [h.strip() for h in header]

    def records() -> Generator[tuple[int, list[str]], None, None]:
        """(line, cells) of each record, blank ones skipped; decoding and CSV errors with the line."""
        prev = reader.line_num
        try:
            for rec in reader:
                line = prev + 1
                prev = reader.line_num
                if not rec or (len(rec) == 1 and not rec[0].strip()):
                    continue
                yield line, rec
        except UnicodeDecodeError as exc:
            raise TableInputError(f"{path}:{prev + 1}: cannot decode as {enc}: {exc.reason}") from None
        except csv.Error as exc:
            raise TableInputError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
        finally:
            fh2.close()

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        n = len(header)
        for line, rec in records():
            if len(rec) != n:
                yield line, {"__error__": f"expected {n} fields (the header's), found {len(rec)}"}
                continue
            yield line, dict(zip(header, rec, strict=True))

    def batches(size: int) -> Iterator[RowBatch]:
        """The records of :func:`rows` (same lines, same skipped blank records), ``size`` at a time."""
        n = len(header)
        lines: list[int] = []
        recs: list[list[str]] = []
        source = records()
        try:
            for line, rec in source:
                if len(rec) != n:
                    yield RowBatch(lines, header=header, records=recs, ragged=True)
                    return
                lines.append(line)
                recs.append(rec)
                if len(recs) == size:
                    yield RowBatch(lines, header=header, records=recs)
                    lines, recs = [], []
            if recs:
                yield RowBatch(lines, header=header, records=recs)
        finally:
            source.close()  # closes the file also when a ragged record ends the batches early

    return Table(path=path, format="csv", columns=header, rows=rows(), encoding=enc, delimiter=delim,
                 batches=batches)


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _open_jsonl(path: Path) -> Table:
    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open("r", encoding="utf-8-sig") as fh:
            for i, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield i, {"__error__": f"not valid JSON at column {exc.colno}: {exc.msg}"}
                    continue
                if not isinstance(obj, dict):
                    yield i, {"__error__": f"expected a JSON object, found {type(obj).__name__}"}
                    continue
                yield i, _flatten(obj)

    return Table(path=path, format="jsonl", columns=[], rows=rows(), encoding="utf-8")


def _open_xlsx(path: Path, mapping: Mapping) -> Table:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise TableInputError(f"{path}: not a readable Excel workbook: {exc}") from None
    if mapping.sheet is not None and mapping.sheet not in wb.sheetnames:
        raise TableInputError(f"{path}: no sheet {mapping.sheet!r}; sheets: {', '.join(wb.sheetnames)}")
    ws = wb[mapping.sheet] if mapping.sheet else wb.worksheets[0]
    it = ws.iter_rows(min_row=mapping.header_row, values_only=True)
    try:
        header = [str(h).strip() if h is not None else "" for h in next(it)]
    except StopIteration:
        raise TableInputError(f"{path}: sheet {ws.title!r} is empty (expected a header row)") from None

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            for i, rec in enumerate(it, start=mapping.header_row + 1):
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in rec):
                    continue
                yield i, {h: v for h, v in zip(header, rec, strict=False) if h}
        finally:
            wb.close()

    return Table(path=path, format="xlsx", columns=header, rows=rows())


__all__ = ["RowBatch", "Table", "TableInputError", "detect_delimiter", "detect_encoding", "open_table"]
