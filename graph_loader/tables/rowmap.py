"""A table mapping applied to rows: per-column readers compiled once per mapping, and the drafts
(entities, relations, business-key lookups) each row contributes. Shared by the full import
(``importer.py``) and the streaming path (``fast.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from graph_loader.b2mml import values as V
from graph_loader.b2mml.importer import ImportReport
from graph_loader.b2mml.records import Origin
from graph_loader.tables.mapping import (
    Mapping,
    RelationSpec,
    TargetSpec,
    ValueSpec,
    ValueType,
    edge_field_kind,
    field_kind,
    unit_factor,
)
from graph_loader.tables.readers import RowBatch


class TableImportReport(ImportReport):
    kind: str = "table"
    mapping: str = ""
    format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    rows_read: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0
    reject_file: str | None = None


class _RowError(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        self.column = column
        super().__init__(message)


@dataclass
class _Lookup:
    src: str
    rel: str
    cls: str
    key: str
    value: Any
    origin: Origin
    props: dict[str, Any]
    reverse: bool  # the looked-up entity is the source


@dataclass
class _RowDrafts:
    nodes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    edges: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    lookups: list[_Lookup] = field(default_factory=list)


_FIELD = re.compile(r"\{([^{}]+)\}")
_PLAIN = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
#: newline-joined quantities that are all plain ASCII digits with at most one point
_PLAIN_NUMBERS = re.compile(f"{_PLAIN}(?:\n{_PLAIN})*")
_INF = float("inf")


class _Template:
    """A compiled ``{column}`` template; column names may contain dots and spaces."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = _FIELD.split(text)  # literal, field, literal, field, ...

    def render(self, row: dict[str, Any], value: Any = None) -> str:
        out = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(part)
                continue
            if part == "value":
                raw = value
            else:
                if part not in row:
                    raise _RowError(part, f"column {part!r} (used in template {self.text!r}) is missing")
                raw = row[part]
            s = "" if raw is None else str(raw).strip()
            if not s:
                raise _RowError(part if part != "value" else None,
                                f"empty value for {{{part}}} in template {self.text!r}")
            out.append(s)
        return "".join(out)


class RowMapper:
    """Applies a :class:`Mapping` to rows."""

    def __init__(self, mapping: Mapping) -> None:
        self.m = mapping
        self.tz: tzinfo = V.zone(mapping.defaults.timezone)
        self._templates: dict[str, _Template] = {}
        self._tzs: dict[str, tzinfo] = {}
        self._readers: dict[tuple[int, str], Callable[[dict[str, Any]], Any]] = {}
        self._kinds: dict[tuple[str, str], ValueType] = {}
        for e in mapping.entities:
            for name in e.properties:
                self._kinds[(e.class_, name)] = field_kind(e.class_, name)
        #: per entity: its spec, its id reader and its (property, reader) pairs
        self._entity_plan = [
            (e, self.reader(e.id, "string"),
             [(name, self.reader(spec, self._kinds[(e.class_, name)])) for name, spec in e.properties.items()])
            for e in mapping.entities
        ]

    def _tpl(self, text: str) -> _Template:
        t = self._templates.get(text)
        if t is None:
            t = self._templates[text] = _Template(text)
        return t

    def value(self, spec: ValueSpec, row: dict[str, Any], kind: ValueType) -> Any:
        """The value ``spec`` reads from ``row`` as ``kind``; raises :class:`_RowError`."""
        return self.reader(spec, kind)(row)

    def reader(self, spec: ValueSpec, kind: ValueType) -> Callable[[dict[str, Any]], Any]:
        """``spec`` compiled once into a function of the row: every choice that depends only on
        the mapping (source, type, format, time zone, decimal comma) is made here, not per row."""
        key = (id(spec), kind)
        got = self._readers.get(key)
        if got is None:
            got = self._readers[key] = self._compile(spec, kind)
        return got

    def _compile(self, spec: ValueSpec, kind: ValueType) -> Callable[[dict[str, Any]], Any]:
        col = spec.column
        const = spec.value
        tpl = self._tpl(spec.template) if spec.template is not None else None
        default, required, choices = spec.default, spec.required, spec.map
        convert = self._converter(spec, spec.type or kind)

        def read(row: dict[str, Any]) -> Any:
            if const is not None:
                raw: Any = const
            elif tpl is not None:
                raw = tpl.render(row)
            else:
                raw = row.get(col) if col is not None else None
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if default is not None:
                    raw = default
                elif required:
                    raise _RowError(col, "a value is required here but the cell is empty")
                else:
                    return None
            if choices is not None:
                k = str(raw).strip()
                if k not in choices:
                    raise _RowError(col, f"value {k!r} is not in the mapping's map (expected one of "
                                         f"{', '.join(map(str, choices))})")
                raw = choices[k]
            try:
                return convert(raw, row)
            except V.ValueProblem as exc:
                raise _RowError(col, str(exc)) from None
            except ValueError:
                raise _RowError(col, f"expected an integer, found {raw!r}") from None

        return read

    def column_reader(self, spec: ValueSpec, kind: ValueType) -> Callable[[RowBatch], list[Any]]:
        """``spec`` over a batch of rows at once: a plain column of non-blank text is converted in
        one loop per column; anything else (blank cells, defaults, constants, non-text cells, a
        value the quick loop refuses) goes through the per-row :meth:`reader` for that batch, so
        values and errors are the per-row ones."""
        read = self.reader(spec, kind)

        def per_row(batch: RowBatch) -> list[Any]:
            return [read(r) for r in batch.rows()]

        t = spec.type or kind
        if spec.value is not None or (t == "number" and spec.to_unit is not None):
            return per_row
        choices = spec.map
        quick = self._quick(spec, t)
        if quick is None or (t != "string" and choices is not None
                             and not all(v.__class__ is str for v in choices.values())):
            return per_row  # the quick loops take text only
        cells_of = self._cells(spec)
        if cells_of is None:
            return per_row

        strip = str.strip

        def columnar(batch: RowBatch) -> list[Any]:
            try:
                cells = list(map(strip, cells_of(batch)))  # TypeError on a cell that is not text
                if not all(cells):
                    return per_row(batch)
                if choices is None:
                    return quick(cells) if t != "string" else cells
                return quick(list(map(choices.__getitem__, cells)))
            except (KeyError, AttributeError, TypeError, ValueError):
                return per_row(batch)

        return columnar

    def _cells(self, spec: ValueSpec) -> Callable[[RowBatch], list[Any]] | None:
        """The raw text of a column, or of a template rendered from non-blank text cells; raises
        KeyError, AttributeError or ValueError where the per-row reader must decide."""
        col = spec.column
        if col is not None:
            return lambda batch: batch.column(col)
        if spec.template is None:
            return None
        parts = self._tpl(spec.template).parts
        fields = parts[1::2]
        if "value" in fields:
            return None

        def rendered(batch: RowBatch) -> list[Any]:
            cols = []
            for f in fields:
                cells = list(map(str.strip, batch.column(f)))
                if not all(cells):
                    raise ValueError("blank cell")
                cols.append(cells)
            if len(fields) == 1:
                pre, post = parts[0], parts[2]
                return [pre + c + post for c in cols[0]]
            out = []
            for vals in zip(*cols, strict=True):
                text = parts[0]
                for v, lit in zip(vals, parts[2::2], strict=True):
                    text += v + lit
                out.append(text)
            return out

        return rendered

    def _quick(self, spec: ValueSpec, t: ValueType) -> Callable[[list[Any]], list[Any]] | None:
        """A loop converting stripped, non-blank text (or mapped text) like :meth:`_converter`;
        raises on any value it does not take (the caller then reads the batch row by row)."""
        if t == "string":
            return lambda vals: [v.strip() if isinstance(v, str) else v for v in vals]
        if t == "number":
            dc = spec.decimal_comma if spec.decimal_comma is not None else self.m.defaults.decimal_comma
            pq = V.parse_quantity

            def numbers(vals: list[Any]) -> list[Any]:
                text = "\n".join(vals)
                if dc:
                    text = text.replace(".", "").replace(",", ".")
                if _PLAIN_NUMBERS.fullmatch(text) is not None:
                    # every value plain ASCII digits with at most one point: float() reads them
                    # exactly as parse_quantity's Decimal does
                    quick = list(map(float, text.split("\n")))
                    if len(quick) == len(vals) and _INF not in quick:
                        return quick
                out: list[Any] = []
                add = out.append
                for v in vals:
                    s = v.replace(".", "").replace(",", ".") if dc else v
                    digits = s.replace(".", "", 1)
                    # plain ASCII digits with at most one point: float() reads them exactly as
                    # parse_quantity's Decimal does; every other form goes through parse_quantity
                    if digits.isdigit() and digits.isascii() and len(digits) < 300:
                        add(float(s))
                    else:
                        add(pq(v, dc))
                return out

            return numbers
        if t in ("datetime", "date"):
            tz = self.tz
            if spec.timezone:
                tz = self._tzs.get(spec.timezone) or self._tzs.setdefault(spec.timezone, V.zone(spec.timezone))
            fmt = spec.format or self.m.defaults.date_format
            pdt = V.parse_datetime

            seen: dict[str, str] = {}  # exports repeat their times (dates, minutes): parse each once

            def stamps(vals: list[Any]) -> list[Any]:
                if len(seen) > 100_000:
                    seen.clear()
                out: list[Any] = []
                add = out.append
                get = seen.get
                for v in vals:
                    iso = get(v)
                    if iso is None:
                        iso = seen[v] = pdt(v, tz, fmt).isoformat()
                    add(iso)
                return out

            return stamps
        return None

    def _converter(self, spec: ValueSpec, t: ValueType) -> Callable[[Any, dict[str, Any]], Any]:
        """raw cell -> typed value for type ``t``; raises ValueProblem, ValueError or _RowError."""
        if t == "number":
            dc = spec.decimal_comma if spec.decimal_comma is not None else self.m.defaults.decimal_comma
            to_unit, unit_column = spec.to_unit, spec.unit_column

            def number(raw: Any, row: dict[str, Any]) -> Any:
                if isinstance(raw, bool):
                    raise V.ValueProblem(f"expected a number, found {raw!r}")
                x = float(raw) if isinstance(raw, int | float) else V.parse_quantity(str(raw), dc)
                if to_unit is not None:
                    src = row.get(unit_column) if unit_column else None
                    if src is None or not str(src).strip():
                        raise _RowError(unit_column, f"unit cell is empty (needed to convert to {to_unit})")
                    f = unit_factor(str(src), to_unit)
                    if f is None:
                        raise _RowError(unit_column, f"cannot convert unit {str(src)!r} to {to_unit!r}")
                    x *= f
                return x

            return number
        if t == "integer":
            return lambda raw, row: int(str(raw).strip())
        if t in ("datetime", "date"):
            tz = self.tz
            if spec.timezone:
                tz = self._tzs.get(spec.timezone) or self._tzs.setdefault(spec.timezone, V.zone(spec.timezone))
            fmt = spec.format or self.m.defaults.date_format

            def when(raw: Any, row: dict[str, Any]) -> Any:
                if isinstance(raw, datetime):
                    dt = raw if raw.tzinfo is not None else raw.replace(tzinfo=tz)
                elif isinstance(raw, date):
                    dt = datetime(raw.year, raw.month, raw.day, tzinfo=tz)
                else:
                    dt = V.parse_datetime(str(raw), tz, fmt)
                return dt.isoformat()

            return when
        if t == "list":
            sep = spec.split or "|"

            def items(raw: Any, row: dict[str, Any]) -> Any:
                if isinstance(raw, list):
                    return [str(x).strip() for x in raw if str(x).strip()]
                return [p.strip() for p in str(raw).split(sep) if p.strip()]

            return items
        if t == "boolean":
            def boolean(raw: Any, row: dict[str, Any]) -> Any:
                s = str(raw).strip().lower()
                if s in ("1", "true", "yes", "y", "x", "ja", "j"):
                    return True
                if s in ("0", "false", "no", "n", "", "nein"):
                    return False
                raise V.ValueProblem(f"expected a boolean (true/false, yes/no, 1/0), found {raw!r}")

            return boolean
        return lambda raw, row: raw.strip() if isinstance(raw, str) else raw

    def row(self, row: dict[str, Any], origin_file: str, line: int) -> _RowDrafts:
        """The drafts of one row; raises a list of :class:`_RowError` as one ExceptionGroup-ish list."""
        out = _RowDrafts()
        errors: list[_RowError] = []
        ids: dict[str, str] = {}
        src_sys = self.m.defaults.source_system
        for e, read_id, readers in self._entity_plan:
            try:
                eid = read_id(row)
            except _RowError as exc:
                errors.append(exc)
                continue
            if eid is None:
                errors.append(_RowError(e.id.column, f"{e.class_} id is empty"))
                continue
            eid = str(eid)
            props: dict[str, Any] = {}
            if src_sys:
                props["source_system"] = src_sys
            for name, read in readers:
                try:
                    v = read(row)
                except _RowError as exc:
                    errors.append(exc)
                    continue
                if v is not None:
                    props[name] = v
            ids[e.as_] = eid
            out.nodes.append((e.class_, eid, props))
        for r in self.m.relations:
            try:
                src, dst, props = self.relation(r, row, ids)
            except _RowError as exc:
                errors.append(exc)
                continue
            if src is None or dst is None:
                continue
            origin = Origin(origin_file, line, "", r.to.column or r.from_.column)
            if isinstance(src, tuple):
                cls, key, value = src
                out.lookups.append(_Lookup(str(dst), r.type, cls, key, value, origin, props, reverse=True))
            elif isinstance(dst, tuple):
                cls, key, value = dst
                out.lookups.append(_Lookup(src, r.type, cls, key, value, origin, props, reverse=False))
            else:
                out.edges.append((src, r.type, dst, props))
        if errors:
            raise _RowErrors(errors)
        return out

    def relation(
        self, r: RelationSpec, row: dict[str, Any], ids: dict[str, str]
    ) -> tuple[str | tuple[str, str, Any] | None, str | tuple[str, str, Any] | None, dict[str, Any]]:
        """(source, target, properties) of relation ``r`` in ``row``, ``ids`` the row's entities by
        their ``as`` name; an end is None when an optional reference is empty, or a (class, key,
        value) lookup. Raises :class:`_RowError`."""
        src_sys = self.m.defaults.source_system
        props: dict[str, Any] = {"source_system": src_sys} if src_sys else {}
        for name, spec in r.properties.items():
            v = self.value(spec, row, edge_field_kind(r.type, name))
            if v is not None:
                props[name] = v
        return self._end(r.from_, row, ids, r.optional), self._end(r.to, row, ids, r.optional), props

    def _end(self, t: TargetSpec, row: dict[str, Any], ids: dict[str, str],
             optional: bool) -> str | tuple[str, str, Any] | None:
        if t.entity is not None:
            return ids.get(t.entity)
        col = t.column or ""
        raw = row.get(col)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if optional:
                return None
            raise _RowError(col, f"reference to a {t.class_} is empty")
        value = raw.strip() if isinstance(raw, str) else raw
        if t.lookup is not None:
            return (t.class_ or "", t.lookup, value)
        return self._tpl(t.id or "{value}").render(row, value)


class _RowErrors(Exception):
    def __init__(self, errors: list[_RowError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))
