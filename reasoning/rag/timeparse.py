"""Time expressions in questions ("last night", "this week", "next 14 days", ISO dates), resolved
against the plant's reference time ``now``. Transparent regular expressions, no guessing: an
expression that is not recognised leaves the window empty and the analysis uses its default."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from reasoning.rag.models import TimeWindow

_NUM_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "twenty": 20, "thirty": 30, "a": 1, "an": 1,
}
_UNIT_HOURS = {"hour": 1, "hours": 1, "day": 24, "days": 24, "week": 168, "weeks": 168, "shift": 8, "shifts": 8}
_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_NUM = r"(\d+|" + "|".join(_NUM_WORDS) + r")"


def _num(tok: str) -> int:
    return int(tok) if tok.isdigit() else _NUM_WORDS[tok.lower()]


def _at(d: date, now: datetime, hour: int = 0) -> datetime:
    return datetime.combine(d, time(hour), tzinfo=now.tzinfo)


def parse_iso(text: str, now: datetime) -> datetime:
    dt = datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=now.tzinfo)


def find_window(question: str, now: datetime) -> TimeWindow | None:
    """The time window a question names, or None."""
    q = question.lower()
    today = now.date()
    m = re.search(rf"(?:between|from)\s+({_ISO})\s+(?:and|to|until|till)\s+({_ISO})", question, re.I)
    if m:
        start, end = parse_iso(m.group(1), now), parse_iso(m.group(2), now)
        if len(m.group(2)) == 10:  # a bare end date includes that day
            end += timedelta(days=1)
        return TimeWindow(start=start, end=end, expression=m.group(0))
    m = re.search(rf"\b(?:on|at|since)?\s*({_ISO})", question)
    if m:
        start = parse_iso(m.group(1), now)
        if "since" in m.group(0).lower():
            return TimeWindow(start=start, end=now, expression=m.group(0).strip())
        end = start + (timedelta(days=1) if len(m.group(1)) == 10 else timedelta(hours=1))
        return TimeWindow(start=start, end=end, expression=m.group(0).strip())
    m = re.search(rf"\b(?:last|past|previous)\s+{_NUM}\s+(hours?|days?|weeks?|shifts?)\b", q)
    if m:
        return TimeWindow(start=now - timedelta(hours=_num(m.group(1)) * _UNIT_HOURS[m.group(2)]), end=now,
                          expression=m.group(0))
    m = re.search(rf"\b(?:next|coming|within(?: the next)?|in the next)\s+{_NUM}\s+(hours?|days?|weeks?)\b", q)
    if m:
        return TimeWindow(start=now, end=now + timedelta(hours=_num(m.group(1)) * _UNIT_HOURS[m.group(2)]),
                          expression=m.group(0))
    monday = today - timedelta(days=today.weekday())
    fixed: list[tuple[str, datetime, datetime]] = [
        (r"\blast night\b|\bovernight\b", *_last_night(now)),
        (r"\byesterday\b", _at(today - timedelta(days=1), now), _at(today, now)),
        (r"\btoday\b|\bthis morning\b", _at(today, now), _at(today + timedelta(days=1), now)),
        (r"\btomorrow\b", _at(today + timedelta(days=1), now), _at(today + timedelta(days=2), now)),
        (r"\b(?:last|previous) shift\b", now - timedelta(hours=8), now),
        (r"\bthis week\b", _at(monday, now), _at(monday + timedelta(days=7), now)),
        (r"\bnext week\b", _at(monday + timedelta(days=7), now), _at(monday + timedelta(days=14), now)),
        (r"\blast week\b", _at(monday - timedelta(days=7), now), _at(monday, now)),
        (r"\b(?:this|the coming|next) fortnight\b|\bnext two weeks\b",
         now, now + timedelta(days=14)),
        (r"\bthis month\b", _at(today.replace(day=1), now), _at(_next_month(today), now)),
    ]
    for pattern, start, end in fixed:
        m = re.search(pattern, q)
        if m:
            return TimeWindow(start=start, end=end, expression=m.group(0))
    return None


def _last_night(now: datetime) -> tuple[datetime, datetime]:
    today = now.date()
    end_day = today if now.hour >= 6 else today - timedelta(days=1)
    return _at(end_day - timedelta(days=1), now, 18), _at(end_day, now, 6)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def horizon_days(window: TimeWindow | None, now: datetime) -> float | None:
    """Days from ``now`` to the end of a forward-looking window (delivery-risk horizon)."""
    if window is None or window.end <= now:
        return None
    return round((window.end - now).total_seconds() / 86400, 4)
