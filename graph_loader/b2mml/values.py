"""Lenient readers for the scalar values found in B2MML and table exports.

Each returns a clean Python value or raises :class:`ValueProblem` with a message that says what
was expected, so callers can attach the place (file, line, element path).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ValueProblem(ValueError):
    """A value could not be read; the message says what was expected."""


_WS = re.compile(r"\s+")


def clean_id(text: str | None) -> str | None:
    """An identifier with surrounding whitespace removed (inner runs collapse to one space)."""
    if text is None:
        return None
    out = _WS.sub(" ", text).strip()
    return out or None


def parse_quantity(text: str, decimal_comma: bool = False) -> float:
    """Any xsd:decimal or xsd:double lexical form: ``12``, ``+12.50``, ``.5``, ``1.5E3``, ``1e-2``.

    ``decimal_comma`` reads ``1.234,5`` (thousands dot, decimal comma). Infinity and NaN are
    refused: a quantity must be a finite number.
    """
    s = text.strip()
    if decimal_comma:
        s = s.replace(".", "").replace("\u202f", "").replace(" ", "").replace(",", ".")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueProblem(f"expected a number (xsd:decimal or xsd:double), found {text!r}") from None
    f = float(value)
    if not math.isfinite(f):
        raise ValueProblem(f"expected a finite number, found {text!r}")
    return f


def zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueProblem(f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin)") from None


_FRACTION = re.compile(r"(\.\d{6})\d+")


#: strptime directives read by :func:`_compiled_format`, with the patterns ``_strptime`` uses for them.
_DIRECTIVE_RE = {
    "Y": r"(?P<Y>\d\d\d\d)",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "d": r"(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
    "f": r"(?P<f>[0-9]{1,6})",
}


@lru_cache(maxsize=64)
def _compiled_format(fmt: str) -> tuple[re.Pattern[str], tuple[int, ...]] | None:
    """A regular expression for a strptime format made only of %Y %m %d %H %M %S %f, literal
    text and whitespace (the usual export formats), and for each of Y m d H M S f the number of
    its group (0: absent); else None. ``datetime.strptime`` does the same matching but costs
    several times more per value, which shows at a million rows."""
    parts: list[str] = []
    order: list[str] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            d = fmt[i + 1:i + 2]
            if d == "%":
                parts.append("%")
            elif d in _DIRECTIVE_RE and d not in order:
                parts.append(_DIRECTIVE_RE[d])
                order.append(d)
            else:
                return None
            i += 2
        elif ch.isspace():
            j = i
            while j < len(fmt) and fmt[j].isspace():
                j += 1
            parts.append(r"\s+")
            i = j
        else:
            parts.append(re.escape(ch))
            i += 1
    slots = tuple(order.index(d) + 1 if d in order else 0 for d in "YmdHMSf")
    return re.compile("".join(parts), re.IGNORECASE), slots


def _strptime(s: str, fmt: str, tz: tzinfo | None = None) -> datetime:
    """``datetime.strptime(s, fmt)`` (with ``tzinfo=tz``), through :func:`_compiled_format` when
    it applies."""
    compiled = _compiled_format(fmt)
    if compiled is None:
        dt = datetime.strptime(s, fmt)
        return dt if tz is None or dt.tzinfo is not None else dt.replace(tzinfo=tz)
    rx, (y, mo, d, h, mi, sec, f) = compiled
    m = rx.fullmatch(s)
    if m is None:
        raise ValueError(f"{s!r} does not match format {fmt!r}")
    g = ("", *m.groups())
    return datetime(int(g[y]) if y else 1900, int(g[mo]) if mo else 1, int(g[d]) if d else 1,
                    int(g[h]) if h else 0, int(g[mi]) if mi else 0, int(g[sec]) if sec else 0,
                    int(g[f].ljust(6, "0")) if f else 0, tzinfo=tz)


def parse_datetime(text: str, default_tz: tzinfo = UTC, fmt: str | None = None) -> datetime:
    """An xsd:dateTime (or a date, or ``fmt`` for strptime) as an aware datetime.

    Values without an offset get ``default_tz``. Fractions beyond microseconds are cut.
    """
    s = text.strip()
    if not s:
        raise ValueProblem("expected a date-time, found an empty value")
    try:
        if fmt:
            dt = _strptime(s, fmt, default_tz)
        else:
            s2 = _FRACTION.sub(r"\1", s) if "." in s else s
            if s2.endswith(("Z", "z")):
                s2 = s2[:-1] + "+00:00"
            dt = datetime.combine(date.fromisoformat(s2), time(0)) if len(s2) == 10 else datetime.fromisoformat(s2)
    except ValueError:
        expected = f"format {fmt!r}" if fmt else "ISO-8601 / xsd:dateTime such as 2026-03-02T06:00:00+01:00"
        raise ValueProblem(f"expected a date-time ({expected}), found {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)
    return dt


def iso(dt: datetime) -> str:
    return dt.isoformat()


# --- B2MML code lists -> ontology enums ---------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    """Lower case, letters and digits only (code list values repeat: one per lot, order, level)."""
    return _NOT_ALNUM.sub("", text.lower())


#: Equipment levels of every B2MML version (EquipmentElementLevel in V0401/V05, EquipmentLevel
#: from V0600) -> ontology class. Levels below a machine have no ontology class.
LEVEL_CLASS: dict[str, str] = {
    "enterprise": "Enterprise",
    "site": "Site",
    "area": "Area",
    "processcell": "Line",
    "productionline": "Line",
    "productionunit": "Line",
    "workcenter": "Line",
    "storagezone": "Line",
    "line": "Line",
    "unit": "Machine",
    "workcell": "Machine",
    "workunit": "Machine",
    "storageunit": "Machine",
    "machine": "Machine",
}
CLASS_LEVEL: dict[str, str] = {
    "Enterprise": "Enterprise", "Site": "Site", "Area": "Area", "Line": "ProductionLine", "Machine": "Unit",
}
HIERARCHY_REL: dict[tuple[str, str], str] = {
    ("Enterprise", "Site"): "HAS_SITE",
    ("Site", "Area"): "HAS_AREA",
    ("Area", "Line"): "HAS_LINE",
    ("Line", "Machine"): "HAS_MACHINE",
}
CHILD_CLASS: dict[str, str] = {"Enterprise": "Site", "Site": "Area", "Area": "Line", "Line": "Machine"}


def level_class(level: str | None) -> str | None:
    if not level:
        return None
    return LEVEL_CLASS.get(_norm(level))


LOT_STATUS = {
    "released": "released", "release": "released", "available": "released", "approved": "released",
    "unrestricted": "released", "active": "released", "produced": "released",
    "onhold": "on_hold", "hold": "on_hold", "held": "on_hold", "blocked": "on_hold",
    "quarantine": "quarantined", "quarantined": "quarantined", "qualityinspection": "quarantined",
    "consumed": "consumed", "used": "consumed", "depleted": "consumed",
    "shipped": "shipped", "delivered": "shipped",
    "scrapped": "scrapped", "scrap": "scrapped", "rejected": "scrapped", "destroyed": "scrapped",
}


def lot_status(text: str) -> str:
    s = LOT_STATUS.get(_norm(text))
    if s is None:
        raise ValueProblem(
            f"unknown lot status {text!r} (expected one of released, on hold, quarantined, consumed, "
            "shipped, scrapped or a common synonym)")
    return s


ORDER_STATUS = {
    "forecast": "planned", "planned": "planned", "waitingforapproval": "planned", "waiting": "planned",
    "ready": "released", "suspended": "running",
    "released": "released", "running": "running", "inprocess": "running", "started": "running",
    "active": "running", "held": "running", "paused": "running",
    "completed": "completed", "complete": "completed", "closed": "completed", "finished": "completed",
    "ended": "completed", "aborted": "cancelled", "cancelled": "cancelled", "canceled": "cancelled",
}


def order_status(text: str) -> str:
    s = ORDER_STATUS.get(_norm(text))
    if s is None:
        raise ValueProblem(
            f"unknown request/response state {text!r} (expected Forecast, Released, Ready, Running, "
            "Held, Completed, Aborted or a synonym)")
    return s


_KIND = {
    "raw": "raw", "rawmaterial": "raw", "purchased": "raw", "roh": "raw",
    "intermediate": "intermediate", "semifinished": "intermediate", "wip": "intermediate",
    "halb": "intermediate", "subassembly": "intermediate",
    "finished": "finished", "finishedgood": "finished", "finishedgoods": "finished",
    "product": "finished", "fert": "finished",
}


def material_kind(text: str) -> str | None:
    return _KIND.get(_norm(text))


def snake(name: str) -> str:
    """``ProducedAt`` / ``produced-at`` / ``Produced At`` -> ``produced_at``."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


__all__ = [
    "CHILD_CLASS", "CLASS_LEVEL", "HIERARCHY_REL", "LEVEL_CLASS", "LOT_STATUS", "ORDER_STATUS", "ValueProblem",
    "clean_id", "iso", "level_class", "lot_status", "material_kind", "order_status", "parse_datetime", "parse_quantity",
    "snake", "zone",
]
