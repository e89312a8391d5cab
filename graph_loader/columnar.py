"""Clean CSV files checked column by column: the bundle loader's fast path.

Why: the row path spends ~6 µs of Python on each row (the csv reader, a dict a row, pydantic a
row, a dump a row), and a plant has millions (5.3M rows at ``large``). Here pyarrow reads the
file, the *distinct* values of each column are typed and dumped by the same pydantic field
validators the row path uses, the checks run on those distinct values (or on numpy arrays of
them), and what is left per row is indexing.

The path only answers files it can prove clean. Anything else returns None before a single row
is handed on or an id is recorded, and the row path reads the file as before: a header or parse
problem, a value pydantic refuses, a missing required value, a time window out of order, an id
repeated or already seen or of another class in the store, an edge endpoint absent from the
bundle and the store or of the wrong class, a bundle with deletions, and the SOP version check's
inputs (``SOPVersion``, ``VERSION_OF``), which the row path keeps row by row. So every error
message, and every value written, stays the row path's; ``tests/graph_loader/test_columnar.py``
compares the two.
"""

from __future__ import annotations

import codecs
import typing
from collections.abc import Callable, Iterator
from functools import cache
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from graph_loader.bundle import LIST_SEPARATOR, BundleFile
from graph_loader.validation import ROW_CONFIG, GraphValidator, RowSchema, Source, field_annotation
from store.base import Coded, EdgeColumns, NodeColumns

B = TypeVar("B", EdgeColumns, NodeColumns)

#: Smaller bundles take the row path (the caller checks): importing pyarrow (~0.2 s, ~100 MB)
#: costs them more than the path saves (measured: the small plant, 8.6 MB, 0.39 -> 0.56 s).
MIN_BUNDLE_BYTES = 16 * 2**20
#: Rows per :class:`EdgeColumns` handed on (the embedded writer's batch).
EMIT_ROWS = 50_000
_TIMES = ("valid_from", "valid_to")


class _NotClean(Exception):
    """The file needs the row path."""


@cache
def _adapter(kind: str, name: str, fname: str) -> TypeAdapter[list[Any]]:
    """Types a list of one field's values as a row of class/relation ``name`` types that field."""
    ann = field_annotation(kind, name, fname)
    return TypeAdapter(list[ann], config=ROW_CONFIG)  # type: ignore[valid-type]


def _read(bf: BundleFile, schema: RowSchema) -> tuple[Any, list[str], bool]:
    """The file as string columns (an empty cell: null, as the row path treats it: absent), its
    header, and (for node files) whether row i is on line i + 2."""
    import pyarrow as pa  # here: ~0.2 s to import, paid only by big bundles
    from pyarrow import csv as pacsv

    data = bf.path.read_bytes()
    at = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    # quoting and NUL bytes are where csv readers differ: those files take the row path
    if b'"' in data or b"\0" in data:
        raise _NotClean
    end = data.find(b"\n")
    try:
        header = data[at:end if end >= 0 else len(data)].rstrip(b"\r").decode("utf-8").split(",")
    except UnicodeDecodeError:
        raise _NotClean from None
    if (len(set(header)) < len(header) or any(h != h.strip() or h not in schema.fields for h in header)
            or not schema.required <= set(header)):
        raise _NotClean
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data)[at:],
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _NotClean from None
    exact = schema.kind == "node" and _lines_exact(data, table.num_rows)
    return table, header, exact


def _lines_exact(data: bytes, rows: int) -> bool:
    """Whether each of ``rows`` rows took one line after the header (no blank line skipped, no
    lone CR line end), so that row i is on line i + 2."""
    lone_cr = b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
    return not lone_cr and rows + 1 == data.count(b"\n") + (not data.endswith(b"\n"))


def _distinct(column: Any) -> tuple[list[Any], np.ndarray]:
    """(distinct values, index of each row's value) of a pyarrow column; a null's index is
    len(values) - 1, whose value is None, when the column has nulls."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(column.combine_chunks())
    values: list[Any] = enc.dictionary.to_pylist()
    codes = enc.indices
    if codes.null_count:
        values.append(None)
        codes = pc.fill_null(codes, len(values) - 1)
    return values, codes.to_numpy(zero_copy_only=False)


def _typed(schema: RowSchema, fname: str, values: list[Any]) -> list[Any]:
    """The typed values (None stays None), or _NotClean when pydantic refuses one."""
    gap = None in values
    present = [v for v in values if v is not None] if gap else values
    try:
        typed: list[Any] = _adapter(schema.kind, schema.name, fname).validate_python(present)
    except ValidationError:
        raise _NotClean from None
    if _takes_float(schema.kind, schema.name, fname) and not np.isfinite(
            np.fromiter((v for v in typed if type(v) is float), dtype=np.float64)).all():
        raise _NotClean  # "inf" passes the field's check; the store refuses it, the row path says how
    return _refill(values, typed) if gap else typed


@cache
def _takes_float(kind: str, name: str, fname: str) -> bool:
    """Whether the field's annotation admits a float (anywhere in its unions and constraints)."""
    stack = [field_annotation(kind, name, fname)]
    while stack:
        ann = stack.pop()
        if ann is float:
            return True
        stack.extend(a for a in typing.get_args(ann) if not isinstance(a, str | int | float))
    return False


def _dumped(schema: RowSchema, fname: str, typed: list[Any]) -> list[Any]:
    """The values as the row path's JSON dump writes them (None stays None)."""
    gap = None in typed
    present = [v for v in typed if v is not None] if gap else typed
    dumped: list[Any] = _adapter(schema.kind, schema.name, fname).dump_python(present, mode="json")
    return _refill(typed, dumped) if gap else dumped


#: A time exactly as pydantic dumps an aware datetime: years 1-9999, seconds always, a fraction of
#: six digits only when it is not zero, "Z" for UTC (never +00:00 or -00:00). Such a value that
#: pyarrow also reads as a time (which checks the calendar) is its own dump: no pydantic call.
_DUMPED_TIME = (
    r"^(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d\d\d)-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.(?:[1-9]\d{5}|0[1-9]\d{4}|00[1-9]\d{3}|000[1-9]\d\d|0000[1-9]\d|00000[1-9]))?"
    r"(?:Z|[+-](?:0[1-9]|1\d|2[0-3]):[0-5]\d|[+-]00:(?:0[1-9]|[1-5]\d))$"
)


@cache
def _is_time(kind: str, name: str, fname: str) -> bool:
    """Whether the field is an aware datetime (optional or not), and nothing else."""
    ann = field_annotation(kind, name, fname)
    return ann is AwareDatetime or set(typing.get_args(ann)) == {AwareDatetime, type(None)}


def _times(schema: RowSchema, fname: str, values: list[Any]) -> list[Any]:
    """A time column's values as the row path dumps them (None stays None), what ``_dumped`` of
    ``_typed`` gives: values already in the dump's form stand for themselves, pydantic types and
    dumps the rest (and raises _NotClean as there when it refuses one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(values, type=pa.string())
    as_dumped = pc.match_substring_regex(text, _DUMPED_TIME).fill_null(False)
    keep = np.asarray(as_dumped.to_numpy(zero_copy_only=False), dtype=bool)
    if keep.any():
        try:
            text.filter(as_dumped).cast(pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError, ValueError):
            keep[:] = False  # a date the calendar refuses, or out of pyarrow's range: pydantic says
    rest = np.flatnonzero(~keep).tolist()  # the few others (None among them)
    if not rest:
        return values
    out = list(values)
    for i, dumped in zip(rest, _dumped(schema, fname, _typed(schema, fname, [values[i] for i in rest])),
                         strict=True):
        out[i] = dumped
    return out


def _refill(values: list[Any], present: list[Any]) -> list[Any]:
    """``present`` (one value for each non-None entry of ``values``) with the Nones put back."""
    it = iter(present)
    return [None if v is None else next(it) for v in values]


def _instants(dumped: list[Any]) -> np.ndarray:
    """Microseconds since 1970 of dumped times (ISO text with an offset; None: 0), parsed by
    pyarrow in one call: exact, so they order as the datetimes do. Anything it does not read as
    a time (a field of another type): the row path."""
    import pyarrow as pa

    try:
        stamps = pa.array(dumped, type=pa.string()).cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise _NotClean from None
    return np.asarray(stamps.cast(pa.int64()).fill_null(0).to_numpy(), dtype=np.int64)


def _present(values: list[Any]) -> np.ndarray:
    return np.array([v is not None for v in values], dtype=bool)


Typed = dict[str, tuple[list[Any], np.ndarray]]


class _File:
    """One file's typed, checked columns (what does not depend on the rest of the bundle)."""

    def __init__(self, bf: BundleFile, schema: RowSchema) -> None:
        table, self.header, self.lines_exact = _read(bf, schema)
        self.rows = table.num_rows
        self.typed: Typed = {}
        self._dumps: dict[str, list[Any]] = {}
        for name in table.column_names:
            vals, codes = _distinct(table.column(name))
            if name in schema.list_fields:
                vals = [None if v is None else v.split(LIST_SEPARATOR) for v in vals]
            if _is_time(schema.kind, schema.name, name):  # only ever dumped: kept as the dump
                self._dumps[name] = _times(schema, name, vals)
                self.typed[name] = (self._dumps[name], codes)
            else:
                self.typed[name] = (_typed(schema, name, vals), codes)
        self.props: dict[str, Coded] = {}
        for name in schema.fields:
            if name in schema.common:
                continue
            coded = self._json(schema, name, schema.prefill.get(name))
            if name in schema.required and None in coded.values:
                raise _NotClean
            if coded.values != [None]:
                self.props[name] = coded
        self.times = {t: self._json(schema, t, None) for t in _TIMES}
        self._check_windows(schema)
        self.system = self.plain("source_system", "plantgraph")

    def _absent(self) -> tuple[list[Any], np.ndarray]:
        return [None], np.zeros(self.rows, dtype=np.int64)

    def plain(self, name: str, default: Any = None) -> Coded:
        """A column's typed values (an absent cell: ``default``)."""
        vals, codes = self.typed.get(name) or self._absent()
        return Coded([default if v is None else v for v in vals], codes)

    def required(self, name: str) -> list[Any]:
        """The typed value of each row of a column no row may leave empty."""
        vals, codes = self.typed[name]
        if None in vals:
            raise _NotClean
        return Coded(vals, codes).decode()

    def _dumped(self, schema: RowSchema, name: str) -> list[Any]:
        """A typed column's distinct values as the JSON dump writes them (None: absent)."""
        if name not in self._dumps:
            self._dumps[name] = _dumped(schema, name, self.typed[name][0])
        return self._dumps[name]

    def _json(self, schema: RowSchema, name: str, default: Any) -> Coded:
        """A column's JSON-ready values, an absent cell taking the field's default."""
        vals, codes = self.typed.get(name) or self._absent()
        dumped = self._dumped(schema, name) if name in self.typed else vals
        if default is not None and None in vals:
            filled = _dumped(schema, name, _typed(schema, name, [default]))[0]
            dumped = [filled if v is None else v for v in dumped]
        return Coded(dumped, codes)

    def _check_windows(self, schema: RowSchema) -> None:
        """Starts after their ends, compared on the values as given (before any default)."""
        for start, end in schema.windows:
            if start not in self.typed or end not in self.typed:
                continue
            a_vals, b_vals = self._dumped(schema, start), self._dumped(schema, end)
            a_codes, b_codes = self.typed[start][1], self.typed[end][1]
            both = _present(a_vals)[a_codes] & _present(b_vals)[b_codes]
            if not both.any():
                continue
            a_codes, b_codes = a_codes[both], b_codes[both]
            if bool(np.any(_instants(a_vals)[a_codes] > _instants(b_vals)[b_codes])):
                raise _NotClean

    def cuts(self) -> Iterator[slice]:
        return (slice(i, i + EMIT_ROWS) for i in range(0, self.rows, EMIT_ROWS))


def _part(coded: Coded, cut: slice) -> Coded:
    """Rows ``cut`` of a column, with only the distinct values they use (what is pickled)."""
    used, codes = np.unique(coded.codes[cut], return_inverse=True)
    picked = used.tolist()
    # itemgetter gathers in C; with one index it returns the value itself, not a tuple
    values = list(itemgetter(*picked)(coded.values)) if len(picked) > 1 else [coded.values[i] for i in picked]
    return Coded(values, codes.astype(np.int32))


def _parts(coded: dict[str, Coded], cut: slice) -> dict[str, Coded]:
    return {k: _part(c, cut) for k, c in coded.items()}


Advance = Callable[[int], None]


def edge_columns(bf: BundleFile, schema: RowSchema, gv: GraphValidator, advance: Advance | None = None,
                 ) -> Iterator[EdgeColumns] | None:
    """The file's edges as batches of columns, all checked; None when the row path must read it
    (then nothing was counted or reported). ``advance`` gets the file's bytes as batches go."""
    if bf.fmt != "csv" or schema.kind != "edge":
        return None
    try:
        f = _File(bf, schema)
        ends = {end: f.typed[end][0] for end in ("src", "dst")}
        if None in ends["src"] or None in ends["dst"]:
            raise _NotClean
        # last: once it accepts, the file's edges are counted as checked
        if not gv.accept_edge_columns(schema.name, ends["src"], ends["dst"], f.rows):
            raise _NotClean
    except _NotClean:
        return None
    src, dst = f.required("src"), f.required("dst")
    batches = (EdgeColumns(src[cut], dst[cut], _part(f.system, cut), _part(f.times["valid_from"], cut),
                           _part(f.times["valid_to"], cut), _parts(f.props, cut)) for cut in f.cuts())
    return _advancing(batches, f.rows, bf.size, advance)


def node_columns(bf: BundleFile, schema: RowSchema, gv: GraphValidator, advance: Advance | None = None,
                 ) -> Iterator[NodeColumns] | None:
    """As :func:`edge_columns`, for a class's nodes; their ids are recorded with their lines."""
    if bf.fmt != "csv" or schema.kind != "node":
        return None
    try:
        f = _File(bf, schema)
        if not f.lines_exact:  # ids are recorded with their line, for later duplicates' errors
            raise _NotClean
        ids = f.required("id")
        source = Source(bf.label, {h: i + 1 for i, h in enumerate(f.header)})
        if not gv.accept_node_columns(schema.name, source, ids):
            raise _NotClean
    except _NotClean:
        return None
    name, plant = f.plain("name"), f.plain("plant")
    batches = (NodeColumns(ids[cut], _part(name, cut), _part(plant, cut), _part(f.system, cut),
                           _part(f.times["valid_from"], cut), _part(f.times["valid_to"], cut), _parts(f.props, cut))
               for cut in f.cuts())
    return _advancing(batches, f.rows, bf.size, advance)


def _advancing(batches: Iterator[B], rows: int, size: int, advance: Advance | None) -> Iterator[B]:
    """``batches``, telling ``advance`` the file's bytes in proportion to the rows handed on."""
    done = sent = 0
    for batch in batches:
        done += len(batch)
        if advance is not None:
            share = size * done // rows
            advance(share - sent)
            sent = share
        yield batch
    if advance is not None and sent < size:
        advance(size - sent)
