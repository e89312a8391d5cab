"""Fast rendering of epoch seconds as ISO-8601 local time with the plant's UTC offset.

The simulation keeps every time as integer epoch seconds (UTC); rendering goes through cached
tables so millions of timestamps cost a few look-ups each instead of a datetime round trip, while
daylight-saving changes are still honoured through zoneinfo.

Inside the ``span`` given to the clock (the simulated period with room either side), a time is
rendered from flat lists indexed by its hour and day since the start of the span: the UTC offset
of its hour (with the 1,440 "HH:MM:00+hh:mm" endings of that offset) and its local date. Those
lists are small and the indices are small integers, so there is no per-time string cache to
search. That matters at scale: a cache of rendered strings keyed by the time grew to hundreds of
thousands of entries per zone, and its look-ups missed the CPU caches more often than not. Times
outside the span (and every time when no span is given) take the general path, which keeps
rendered strings in a bounded per-zone cache.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: "HH:MM:00" for every minute of a day.
_HHMM = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

#: Rendered strings kept per zone by the general path before that zone's cache is emptied (the
#: simulation runs in time order, so recent times are the ones asked again; the bound keeps memory
#: flat at any scale).
_STR_CACHE = 1 << 17

#: An hour's entry in the span tables: (offset seconds, "+HH:MM", the day's 1,440 minute endings).
_Hour = tuple[int, str, list[str]]


class Clock:
    """Renders times for a fixed list of IANA zones, addressed by their index in that list."""

    def __init__(self, zones: list[str], cache_size: int = _STR_CACHE, span: tuple[int, int] | None = None) -> None:
        if len(zones) > 64:
            raise ValueError("at most 64 zones")
        if cache_size < 1:
            raise ValueError(f"cache_size {cache_size}: expected at least 1")
        self.cache_size = cache_size
        self.zones = [ZoneInfo(z) for z in zones]
        self._off: list[dict[int, tuple[int, str]]] = [{} for _ in zones]
        self._days: dict[int, str] = {}
        self._str: list[dict[int, str]] = [{} for _ in zones]
        # span tables: hour k and day j counted from _base, a UTC midnight two days before the span
        # (local days then never fall before it: offsets are under a day)
        self._base = 0
        self._hours: list[list[_Hour | None]] = [[] for _ in zones]
        self._n_hours = 0
        self._dates: list[str | None] = []
        self._entries: dict[tuple[int, str], _Hour] = {}  # one per distinct offset
        if span is not None:
            lo, hi = span
            if hi < lo:
                raise ValueError(f"span {span}: expected (first, last) epoch seconds")
            self._base = (lo // 86400 - 2) * 86400
            self._n_hours = (hi - self._base) // 3600 + 1
            self._hours = [[None] * self._n_hours for _ in zones]
            self._dates = [None] * (self._n_hours // 24 + 3)

    def _exact(self, t: int, z: int) -> tuple[int, str]:
        off = datetime.fromtimestamp(t, tz=UTC).astimezone(self.zones[z]).utcoffset() or timedelta(0)
        secs = int(off.total_seconds())
        sign = "+" if secs >= 0 else "-"
        a = abs(secs)
        return secs, f"{sign}{a // 3600:02d}:{a % 3600 // 60:02d}"

    def offset(self, t: int, z: int) -> tuple[int, str]:
        """(offset seconds, "+HH:MM") of zone ``z`` at epoch second ``t``."""
        h = t // 3600
        cache = self._off[z]
        hit = cache.get(h)
        if hit is None:
            # Fill the whole UTC day at once: when its first and last second share an offset there
            # is no change inside it (zones change at most twice a year), else every hour is asked.
            d0 = h - h % 24
            first, last = self._exact(d0 * 3600, z), self._exact(d0 * 3600 + 86399, z)
            for k in range(24):
                cache[d0 + k] = first if first == last else self._exact((d0 + k) * 3600, z)
            hit = cache[h]
        return hit

    def fmt(self, t: int, z: int) -> str:
        """ISO-8601 of epoch second ``t`` in zone ``z``, e.g. ``2026-03-02T06:00:00+01:00``."""
        u = t - self._base
        k = u // 3600
        if 24 <= k < self._n_hours:  # from the second day: a local date is then never before _base
            hours = self._hours[z]
            hour = hours[k]
            if hour is None:
                hour = self._fill_day(k, z)
            d, rem = divmod(u + hour[0], 86400)
            date = self._dates[d]
            if date is None:
                date = self._dates[d] = self._date(d + self._base // 86400)
            if rem % 60 == 0:
                return date + hour[2][rem // 60]
            return f"{date}{rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}{hour[1]}"
        return self._fmt_general(t, z)

    def _fill_day(self, k: int, z: int) -> _Hour:
        """Fill the table for the UTC day of span hour ``k`` and return hour ``k``'s entry (the
        offsets as :meth:`offset` finds them, without keeping its per-hour dict for the span)."""
        hours = self._hours[z]
        k0 = k - k % 24
        midnight = self._base + k0 * 3600  # _base is a UTC midnight
        first, last = self._exact(midnight, z), self._exact(midnight + 86399, z)
        for j in range(k0, min(k0 + 24, self._n_hours)):
            off = first if first == last else self._exact(self._base + j * 3600, z)
            entry = self._entries.get(off)
            if entry is None:
                entry = self._entries[off] = (off[0], off[1], [hhmm + off[1] for hhmm in _HHMM])
            hours[j] = entry
        hour = hours[k]
        assert hour is not None
        return hour

    @staticmethod
    def _date(d: int) -> str:
        return (datetime(1970, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%dT")

    def _fmt_general(self, t: int, z: int) -> str:
        cache = self._str[z]
        s = cache.get(t)
        if s is not None:
            return s
        off = self._off[z].get(t // 3600)
        if off is None:
            off = self.offset(t, z)
        d, rem = divmod(t + off[0], 86400)
        day = self._days.get(d)
        if day is None:
            day = self._days[d] = self._date(d)
        if rem % 60 == 0:
            s = day + _HHMM[rem // 60] + off[1]
        else:
            s = f"{day}{rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}{off[1]}"
        if len(cache) >= self.cache_size:
            cache.clear()
        cache[t] = s
        return s

    def local_day_slot(self, t: int, z: int, first_hour: int = 6, hours: int = 8) -> tuple[int, int, int]:
        """(local day number, shift slot, local seconds) for shift look-up: slots start at 06:00."""
        secs, _ = self.offset(t, z)
        local = t + secs - first_hour * 3600
        d, s = divmod(local, 86400)
        return d, s // (hours * 3600), secs

    def date_str(self, day: int) -> str:
        """YYYYMMDD of a local day number."""
        return (datetime(1970, 1, 1) + timedelta(days=day)).strftime("%Y%m%d")
