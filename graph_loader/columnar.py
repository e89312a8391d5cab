"""Edge files checked column by column: the bundle loader's fast path for clean CSV edge files.

Why: a plant's edges are most of its rows (4.3M of 5.3M at ``large``), and the row path spends
~6 µs of Python on each (the csv reader, a dict a row, pydantic a row, a dump a row). Here pyarrow
reads the file, the *distinct* values of each column are typed and dumped by the same pydantic
field validators the row path uses, and what is left per row is indexing.

The path only answers files it can prove clean. Anything else returns None before a single row
is handed on, and the row path reads the file as before: a header or parse problem, a value
pydantic refuses, a missing required value, an endpoint absent from the bundle and the store or
of the wrong class, a time window out of order, a bundle with deletions, ``VERSION_OF`` (whose
rows feed the SOP window check). So every error message, and every value written, stays the row
path's; ``tests/graph_loader/test_columnar.py`` compares the two.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv
from pydantic import TypeAdapter, ValidationError

from graph_loader.bundle import BundleFile
from graph_loader.validation import ROW_CONFIG, GraphValidator, RowSchema, field_annotation
from store.base import Coded, EdgeColumns

#: Rows per :class:`EdgeColumns` handed on (the embedded writer's batch).
EMIT_ROWS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_TIMES = ("valid_from", "valid_to")


class _NotClean(Exception):
    """The file needs the row path."""


@cache
def _adapter(rel: str, fname: str) -> TypeAdapter[list[Any]]:
    """Types a list of one field's values as a row of ``rel`` types that field."""
    ann = field_annotation("edge", rel, fname)
    return TypeAdapter(list[ann], config=ROW_CONFIG)  # type: ignore[valid-type]


def _read(bf: BundleFile, schema: RowSchema) -> pa.Table:
    """The file as string columns (an empty cell: null, as the row path treats it: absent)."""
    data = bf.path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    # quoting and NUL bytes are where csv readers differ: those files take the row path
    if b'"' in data or b"\0" in data:
        raise _NotClean
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = first.decode("utf-8").split(",")
    except UnicodeDecodeError:
        raise _NotClean from None
    if (len(set(header)) < len(header) or any(h != h.strip() or h not in schema.fields for h in header)
            or not schema.required <= set(header)):
        raise _NotClean
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _NotClean from None


def _distinct(column: pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """(distinct values, index of each row's value); a null's index is len(values) - 1, whose
    value is None, when the column has nulls."""
    enc = pc.dictionary_encode(column.combine_chunks())
    values: list[Any] = enc.dictionary.to_pylist()
    codes = enc.indices
    if codes.null_count:
        values.append(None)
        codes = pc.fill_null(codes, len(values) - 1)
    return values, codes.to_numpy(zero_copy_only=False)


def _typed(rel: str, fname: str, values: list[Any]) -> list[Any]:
    """The typed values (None stays None), or _NotClean when pydantic refuses one."""
    gap = None in values
    present = [v for v in values if v is not None] if gap else values
    try:
        typed: list[Any] = _adapter(rel, fname).validate_python(present)
    except ValidationError:
        raise _NotClean from None
    return _refill(values, typed) if gap else typed


def _dumped(rel: str, fname: str, typed: list[Any]) -> list[Any]:
    """The values as the row path's JSON dump writes them (None stays None)."""
    gap = None in typed
    present = [v for v in typed if v is not None] if gap else typed
    dumped: list[Any] = _adapter(rel, fname).dump_python(present, mode="json")
    return _refill(typed, dumped) if gap else dumped


def _refill(values: list[Any], present: list[Any]) -> list[Any]:
    """``present`` (one value for each non-None entry of ``values``) with the Nones put back."""
    it = iter(present)
    return [None if v is None else next(it) for v in values]


def _micros(typed: list[Any]) -> np.ndarray:
    """Epoch microseconds of typed times (absent: the minimum int64, never compared)."""
    low = np.iinfo(np.int64).min
    return np.array([low if t is None else (t - _EPOCH) // _US for t in typed], dtype=np.int64)


def _present(values: list[Any]) -> np.ndarray:
    return np.array([v is not None for v in values], dtype=bool)


class _Columns:
    """One file's checked columns, before they are cut into batches."""

    def __init__(self, bf: BundleFile, schema: RowSchema, gv: GraphValidator) -> None:
        rel = schema.name
        table = _read(bf, schema)
        self.rows = table.num_rows
        raw = {name: _distinct(table.column(name)) for name in table.column_names}
        typed = {name: (_typed(rel, name, vals), codes) for name, (vals, codes) in raw.items()}
        ends: dict[str, list[Any]] = {}
        for end in ("src", "dst"):
            vals, codes = typed[end]
            if None in vals:
                raise _NotClean
            ends[end] = vals
        self._check_windows(schema, typed)
        self.props: dict[str, Coded] = {}
        for name in schema.fields:
            if name in schema.common:
                continue
            coded = self._json(rel, name, typed, schema.prefill.get(name))
            if name in schema.required and None in coded.values:
                raise _NotClean
            if coded.values != [None]:
                self.props[name] = coded
        self.times = {t: self._json(rel, t, typed, None) for t in _TIMES}
        vals, codes = typed.get("source_system", ([None], np.zeros(self.rows, dtype=np.int64)))
        self.system = Coded(["plantgraph" if v is None else v for v in vals], codes)
        # last: once it accepts, the file's edges are counted as checked
        if not gv.accept_edge_columns(rel, ends["src"], ends["dst"], self.rows):
            raise _NotClean
        self.src = Coded(*typed["src"]).decode()
        self.dst = Coded(*typed["dst"]).decode()

    def _json(self, rel: str, name: str, typed: dict[str, tuple[list[Any], np.ndarray]], default: Any) -> Coded:
        """A column's JSON-ready values, an absent cell taking the field's default."""
        vals, codes = typed.get(name, ([None], np.zeros(self.rows, dtype=np.int64)))
        if default is not None and None in vals:
            vals = [_typed(rel, name, [default])[0] if v is None else v for v in vals]
        return Coded(_dumped(rel, name, vals), codes)

    @staticmethod
    def _check_windows(schema: RowSchema, typed: dict[str, tuple[list[Any], np.ndarray]]) -> None:
        for start, end in schema.windows:
            if start not in typed or end not in typed:
                continue
            (a_vals, a_codes), (b_vals, b_codes) = typed[start], typed[end]
            a, b = _micros(a_vals)[a_codes], _micros(b_vals)[b_codes]
            both = _present(a_vals)[a_codes] & _present(b_vals)[b_codes]
            if bool(np.any(both & (b < a))):
                raise _NotClean

    def batches(self) -> Iterator[EdgeColumns]:
        for i in range(0, self.rows, EMIT_ROWS):
            cut = slice(i, i + EMIT_ROWS)
            yield EdgeColumns(
                self.src[cut], self.dst[cut], _part(self.system, cut),
                _part(self.times["valid_from"], cut), _part(self.times["valid_to"], cut),
                {k: _part(c, cut) for k, c in self.props.items()},
            )


def _part(coded: Coded, cut: slice) -> Coded:
    """Rows ``cut`` of a column, with only the distinct values they use (what is pickled)."""
    used, codes = np.unique(coded.codes[cut], return_inverse=True)
    return Coded([coded.values[i] for i in used.tolist()], codes.astype(np.int32))


def edge_columns(
    bf: BundleFile, schema: RowSchema, gv: GraphValidator, advance: Callable[[int], None] | None = None,
) -> Iterator[EdgeColumns] | None:
    """The file's edges as batches of columns, all checked; None when the row path must read it
    (then nothing was counted or reported). ``advance`` gets the file's bytes as batches go."""
    if bf.fmt != "csv" or schema.kind != "edge":
        return None
    try:
        cols = _Columns(bf, schema, gv)
    except _NotClean:
        return None
    return _emit(cols, bf.size, advance)


def _emit(cols: _Columns, size: int, advance: Callable[[int], None] | None) -> Iterator[EdgeColumns]:
    done = sent = 0
    for batch in cols.batches():
        done += len(batch)
        if advance is not None:
            share = size * done // cols.rows
            advance(share - sent)
            sent = share
        yield batch
    if advance is not None and sent < size:
        advance(size - sent)
