"""The compiled reader of plain messages (``native/b2mml_reader``, a Rust extension), when installed.

Why: parsing a file with lxml and walking it from Python is most of a big import's CPU; for the
files most of a corpus is made of (one message in the usual envelope, every unit plain-shaped)
the compiled reader does both, reading what the Python plain readers would read, and maps it
(:func:`mapper`): the calls the importer's emitters would make, for the importer to make on its
batch. It maps only what it reads exactly as Python does, and declines anything else (a value of
another form, anything reported as not mapped): it then hands back what it read, as raw texts
and line numbers, which the importer converts and maps as for a plain unit it read itself (its
``_native_*`` methods). A file the reader does not take (None) is read with lxml as before. The
reader takes only certainly well-formed files of a narrow kind (its module docstring), so it
never has a problem to report: every error and report entry still comes from the Python path.

The shapes, names and code lists it checks against are this package's (``plain``, ``elements``,
``values``), handed over once. ``PLANTGRAPH_B2MML_NATIVE=0`` turns it off (the pure-Python path).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta, timezone, tzinfo
from functools import cache
from typing import Any

from graph_loader.b2mml import plain as P
from graph_loader.b2mml import values as V
from graph_loader.b2mml.elements import CONTAINERS, CONTEXT, UNITS, VERBS, field_kinds

#: What the reader read of a message it declined to map (see native/b2mml_reader/src/lib.rs for
#: the tuples): (units, container contexts), each unit being (kind, path, line, context index,
#: body).
RawMessage = tuple[list[tuple[str, str, int, int, Any]], list[Any]]
#: What the mapper hands back for a file: ("ops", namespace, root, sender, ops) when it mapped the
#: message, ("raw", namespace, root, sender, RawMessage) when it declined;
#: ops being (units, paths, origins as (line, path index), node calls as (class, id, origin index,
#: props, defaults, explicit), edge calls as (src, rel, dst, origin index, props), equipment links
#: as (order, equipment, origin index, actual, start, end), assembly links as (lot, component,
#: origin index)).
Mapped = tuple[str, str, str, str | None, Any]
#: ``map(path, max_bytes, tz)``: None when the reader does not take the file (or it is bigger).
MapFn = Callable[[str, int, int | None], Mapped | None]
#: ``map_files(paths, max_bytes, tz, workers, window)``: an iterator of ``(map(path, ...),)`` for
#: each path in turn, read and mapped ahead by worker threads (its ``close()`` stops them).
AheadFn = Callable[[list[str], int, int | None, int, int], Any]

#: The shapes the compiled reader asks for, by the names it uses.
_SHAPES = {
    "RESPONSE": P.RESPONSE, "SEGMENT_RESPONSE": P.SEGMENT_RESPONSE, "MATERIAL": P.MATERIAL, "QUANTITY": P.QUANTITY,
    "EQUIPMENT": P.EQUIPMENT, "PERSONNEL": P.PERSONNEL, "REQUEST": P.REQUEST,
    "SEGMENT_REQUIREMENT": P.SEGMENT_REQUIREMENT, "LOT": P.LOT, "PROPERTY": P.PROPERTY, "VALUE": P.VALUE,
    "SCOPE": P.SCOPE,
}


def wanted() -> bool:
    """Whether the compiled reader is to be used when installed (``PLANTGRAPH_B2MML_NATIVE``)."""
    return os.environ.get("PLANTGRAPH_B2MML_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


@cache
def _module() -> Any | None:
    try:
        import plantgraph_b2mml_reader as mod
    except ImportError:
        return None
    mod.configure({name: shape.kids() for name, shape in _SHAPES.items()}, sorted(UNITS), sorted(CONTAINERS),
                  sorted(CONTEXT), list(VERBS))
    mod.configure_mapping(V.LEVEL_CLASS, V.LOT_STATUS, V.ORDER_STATUS, V.HIERARCHY_REL, P.PRODUCED_USES,
                          P.CONSUMED_USES, field_kinds("Lot"))
    return mod


def available() -> bool:
    """Whether the compiled reader is installed."""
    return _module() is not None


def _entry(use: bool | None, name: str) -> Any | None:
    """The compiled reader's function ``name``, or None: when it is not installed, when ``use``
    is False, or (``use`` None) when ``PLANTGRAPH_B2MML_NATIVE`` turns it off."""
    if use is False or (use is None and not wanted()):
        return None
    mod = _module()
    return None if mod is None else getattr(mod, name)


def mapper(use: bool | None = None) -> MapFn | None:
    """The compiled reader's ``map_file(path, max_bytes, tz)``, or None (:func:`_entry`)."""
    fn: MapFn | None = _entry(use, "map_file")
    return fn


def mapper_ahead(use: bool | None = None) -> AheadFn | None:
    """The compiled reader's ``map_files``, or None (:func:`_entry`)."""
    fn: AheadFn | None = _entry(use, "map_files")
    return fn


def offset_minutes(tz: tzinfo) -> int | None:
    """A default time zone as the mapper takes it: its offset in minutes when it is one fixed
    offset of whole minutes (UTC, ``timezone(...)``), else None (a zone with daylight saving
    time: the mapper then declines a time without an offset)."""
    if not isinstance(tz, timezone):
        return None
    off = tz.utcoffset(None)
    if off % timedelta(minutes=1):
        return None
    return off // timedelta(minutes=1)


def _installed() -> Any:
    mod = _module()
    if mod is None:
        raise RuntimeError("the compiled B2MML reader (native/b2mml_reader) is not installed")
    return mod


def map_bytes(data: bytes, tz: int | None = 0) -> Mapped | None:
    """What the mapper makes of a file's bytes (for tests); it must be installed."""
    got: Mapped | None = _installed().map_bytes(data, tz)
    return got


__all__ = [
    "AheadFn", "MapFn", "Mapped", "RawMessage", "available", "map_bytes", "mapper", "mapper_ahead", "offset_minutes",
    "wanted",
]
