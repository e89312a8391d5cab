"""Timestamps read from property documents, for the store's time-window filter
(:meth:`store.base.GraphStore.find_nodes_after`).

A property is a timestamp when it is ISO-8601 text with a UTC offset (``Z`` allowed), as the
analyses read it (``reasoning.engine.as_time``); anything else (missing, null, empty, a number,
text that does not parse, a time without an offset) is "not a timestamp", which the filter keeps:
a caller that reads such a value as "no end yet" must see the node.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def instant(value: Any) -> datetime | None:
    """The aware timestamp ``value`` holds, or None when it holds none."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.utcoffset() is not None else None


def later_than(value: Any, t: datetime) -> bool:
    """Whether ``value`` is not a timestamp at or before ``t`` (later, or not a timestamp)."""
    got = instant(value)
    return got is None or got > t
