"""The compiled reader of plain messages (``native/b2mml_reader``, a Rust extension), when installed.

Why: parsing a file with lxml and walking it from Python is most of a big import's CPU; for the
files most of a corpus is made of (one message in the usual envelope, every unit plain-shaped)
the compiled reader does both and hands back what the Python plain readers would read, as raw
texts and line numbers. The importer converts those values and makes its calls as it does for a
plain unit it read itself; a file the reader does not take (None) is read with lxml as before.
The reader takes only certainly well-formed files of a narrow kind (its module docstring), so
it never has a problem to report: every error and report entry still comes from the lxml path.

The shapes and names it checks against are this package's (``plain`` and ``elements``), handed
over once by :func:`reader`. ``PLANTGRAPH_B2MML_NATIVE=0`` turns it off (the pure-Python path).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

from graph_loader.b2mml import plain as P
from graph_loader.b2mml.elements import CONTAINERS, CONTEXT, UNITS, VERBS

#: What the reader hands back for a file (see native/b2mml_reader/src/lib.rs for the tuples):
#: (namespace, root local name, sender, units, container contexts), each unit being
#: (kind, path, line, context index, body).
RawMessage = tuple[str, str, str | None, list[tuple[str, str, int, int, Any]], list[Any]]
ReadFn = Callable[[str], RawMessage | None]

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
    return mod


def available() -> bool:
    """Whether the compiled reader is installed."""
    return _module() is not None


def reader(use: bool | None = None) -> ReadFn | None:
    """The compiled reader's ``read(path)``, or None: when it is not installed, when ``use`` is
    False, or (``use`` None) when ``PLANTGRAPH_B2MML_NATIVE`` turns it off."""
    if use is False or (use is None and not wanted()):
        return None
    mod = _module()
    return None if mod is None else mod.read


def read_bytes(data: bytes) -> RawMessage | None:
    """What the compiled reader reads of a file's bytes (for tests); it must be installed."""
    mod = _module()
    if mod is None:
        raise RuntimeError("the compiled B2MML reader (native/b2mml_reader) is not installed")
    return mod.read_bytes(data)


__all__ = ["RawMessage", "ReadFn", "available", "read_bytes", "reader", "wanted"]
