"""Fast rendering of epoch seconds as ISO-8601 local time with the plant's UTC offset.

The simulation keeps every time as integer epoch seconds (UTC); rendering goes through cached
tables (UTC offset per zone and hour, date per day, "HH:MM:00" per minute) so millions of
timestamps cost a few look-ups each instead of a datetime round trip, while daylight-saving
changes are still honoured through zoneinfo. Finished strings are cached per zone as well: about
two thirds of the generator's calls repeat a recent time (an order's start on all its edges, a
sales order's date on its lines), and a hit is one dict look-up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: "HH:MM:00" for every minute of a day.
_HHMM = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

#: Rendered strings kept per zone before that zone's cache is emptied (the simulation runs in time
#: order, so recent times are the ones asked again; the bound keeps memory flat at any scale).
_STR_CACHE = 1 << 17


class Clock:
    """Renders times for a fixed list of IANA zones, addressed by their index in that list."""

    def __init__(self, zones: list[str], cache_size: int = _STR_CACHE) -> None:
        if len(zones) > 64:
            raise ValueError("at most 64 zones")
        if cache_size < 1:
            raise ValueError(f"cache_size {cache_size}: expected at least 1")
        self.cache_size = cache_size
        self.zones = [ZoneInfo(z) for z in zones]
        self._off: list[dict[int, tuple[int, str]]] = [{} for _ in zones]
        self._days: dict[int, str] = {}
        self._str: list[dict[int, str]] = [{} for _ in zones]

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
            day = (datetime(1970, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%dT")
            self._days[d] = day
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
