"""In-memory candidate sets for property filters of the embedded store (``find_nodes`` /
``find_nodes_in`` with a class and a property value, e.g. lots whose status is "released").

Why: properties live in one JSON document per node, so such a filter is a scan of the whole class
with ``json_extract`` on every row (394k lots for 6.3k released ones at the large bench plant,
~0.6 s CPU per scan). The risk board asks the same few filters every time. This keeps, per
``(class, property, value)``, the node keys (``nodes.nid``) whose stored value SQL finds equal, as
computed by the first query that asked; the caller reads those rows by key and still applies its
exact JSON check, so a candidate set only has to be a superset of the answer.

Nothing is computed at load time (loads pay nothing): a set is filled by the first query that
asks for it and dropped, with all others, when the store's generation changes (any committed
write). Queries inside a write transaction do not use it (they must see their own writes).
Values indexed: text, and numbers that are not booleans or NaN, and "missing or null" (``None``);
anything else goes the old way.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from store.adjacency import store_id
from store.timeprops import instant

#: Above this many candidates a query scans the class instead: reading the candidates by key
#: and sorting them by id costs about as much as the scan then, and a scan in id order streams
#: (a caller that stops after a few rows, e.g. the first ten shipped lots, pays for those only).
MAX_CANDIDATES = 50_000
#: Sets kept per store before the cache is emptied (a safety bound for callers that filter on
#: many distinct values; the risk board uses fewer than ten).
MAX_SETS = 256

_log = logging.getLogger(__name__)

#: The sets and columns of one generation, kept beside the database so that the next process
#: that opens the store at that generation starts with them instead of scanning the classes again.
CACHE_FILE = "propindex.npz"
CACHE_VERSION = 1

Key = tuple[str, str, Any]
#: A class's timestamps of one property: node keys (sorted), microseconds since the epoch, and
#: whether the value is a timestamp at all (see :mod:`store.timeprops`).
TimeColumn = tuple[np.ndarray, np.ndarray, np.ndarray]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(t: datetime) -> int:
    """Exact integer microseconds since the epoch of an aware datetime."""
    return (t - _EPOCH) // _US


def indexable(value: Any) -> bool:
    """Whether a filter value has a candidate set here (else: the caller's SQL scan)."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def json_path(prop: str) -> str:
    return '$."' + prop.replace('"', '\\"') + '"'


class PropertyIndex:
    """Candidate node keys per (class, property, value) at one store generation.

    With ``cache`` (a file path), what was computed is also written there, stamped with the
    store's identity and generation, and read back by the next index that starts at that same
    generation (a later process opening the store): its first risk board then scans nothing.
    A file for another store or generation, or one that cannot be read, is ignored (and replaced
    at the next fill); one that cannot be written (read-only folder) only costs that speed-up."""

    def __init__(self, cache: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._sets: dict[Key, np.ndarray] = {}
        self._times: dict[tuple[str, str], TimeColumn] = {}
        self._cache = cache

    def candidates(self, conn: sqlite3.Connection, generation: int, cls: str, prop: str,
                   values: Sequence[Any]) -> np.ndarray:
        """Sorted ``nid`` of the nodes of ``cls`` whose ``prop`` SQL finds equal to one of
        ``values`` (all :func:`indexable`); ``None`` stands for missing or JSON null.

        ``generation`` is the store's generation read before this call: sets computed now are
        labelled with it, so a write committed meanwhile only makes the next call rebuild."""
        with self._lock:
            self._at(conn, generation)
            missing = list(dict.fromkeys(v for v in values if (cls, prop, v) not in self._sets))
            if missing:
                if len(self._sets) + len(missing) > MAX_SETS:
                    self._sets.clear()
                self._fill(conn, cls, prop, missing)
                self._save(conn)
            parts = [self._sets[(cls, prop, v)] for v in dict.fromkeys(values)]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))

    def later(self, conn: sqlite3.Connection, generation: int, cls: str, prop: str, t: datetime) -> np.ndarray:
        """Sorted ``nid`` of the nodes of ``cls`` whose ``prop`` is not a timestamp at or before
        ``t`` (aware): later, or not a timestamp at all (:func:`store.timeprops.later_than`).

        Why: "what is still going on at t" (downtime without an end or ending later, holds not
        released yet) is a few hundred of the class's nodes; the decoded column answers it without
        reading the others' documents. Kept per generation like the equality sets."""
        with self._lock:
            self._at(conn, generation)
            col = self._times.get((cls, prop))
            if col is None:
                col = self._times[(cls, prop)] = self._time_column(conn, cls, prop)
                self._save(conn)
        nids, us, known = col
        return nids[~known | (us > micros(t))]

    def _at(self, conn: sqlite3.Connection, generation: int) -> None:
        if self._generation != generation:
            self._sets.clear()
            self._times.clear()
            self._generation = generation
            self._load(conn, generation)

    # -- the cache file ---------------------------------------------------------------------------
    def _load(self, conn: sqlite3.Connection, generation: int) -> None:
        if self._cache is None or not self._cache.exists():
            return
        try:
            with np.load(self._cache, allow_pickle=False) as z:
                stamp = z["stamp"]
                if int(stamp[0]) != CACHE_VERSION or int(stamp[1]) != generation \
                        or str(z["store_id"][0]) != store_id(conn):
                    return
                keys, offs, nids = json.loads(str(z["keys"][0])), z["offs"], z["nids"]
                sets = {(c, p, v): nids[offs[i]:offs[i + 1]] for i, (c, p, v) in enumerate(keys)}
                times = {(c, p): (z[f"t{i}_nids"], z[f"t{i}_us"], z[f"t{i}_known"])
                         for i, (c, p) in enumerate(json.loads(str(z["tkeys"][0])))}
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            _log.warning("%s: unreadable property index cache (%s); ignoring it", self._cache, exc)
            return
        self._sets.update(sets)
        self._times.update(times)

    def _save(self, conn: sqlite3.Connection) -> None:
        """Write everything this generation has (atomically: a temp file renamed over the old)."""
        if self._cache is None or self._generation is None:
            return
        keys = list(self._sets)
        parts = [self._sets[k] for k in keys]
        offs = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in parts], out=offs[1:])
        tkeys = list(self._times)
        arrays: dict[str, Any] = {}
        for i, k in enumerate(tkeys):
            arrays[f"t{i}_nids"], arrays[f"t{i}_us"], arrays[f"t{i}_known"] = self._times[k]
        tmp = self._cache.with_name(f"{self._cache.name}.tmp{os.getpid()}-{threading.get_ident()}")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, stamp=np.array([CACHE_VERSION, self._generation], dtype=np.int64),
                         store_id=np.array([store_id(conn)]), keys=np.array([json.dumps(keys)]),
                         offs=offs, nids=np.concatenate(parts) if parts else np.empty(0, dtype=np.int64),
                         tkeys=np.array([json.dumps(tkeys)]), **arrays)
            os.replace(tmp, self._cache)
        except OSError as exc:  # a read-only store still works, its next process just scans again
            _log.debug("%s: cannot write the property index cache (%s)", self._cache, exc)
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _time_column(conn: sqlite3.Connection, cls: str, prop: str) -> TimeColumn:
        """One scan of the class: each node's ``prop`` read as a timestamp (SQL unquotes the JSON
        text; numbers, objects and arrays come back as values that are not timestamps)."""
        rows = conn.execute("SELECT nid, json_extract(props, :p) FROM nodes WHERE cls = :cls ORDER BY nid",
                            {"cls": cls, "p": json_path(prop)}).fetchall()
        nids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        us = np.zeros(len(rows), dtype=np.int64)
        known = np.zeros(len(rows), dtype=bool)
        for i, (_, v) in enumerate(rows):
            got = instant(v)
            if got is not None:
                try:
                    us[i] = micros(got)
                except OverflowError:  # out of range in UTC: leave it to the caller's exact check
                    continue
                known[i] = True
        return nids, us, known

    def _fill(self, conn: sqlite3.Connection, cls: str, prop: str, values: list[Any]) -> None:
        """One scan of the class for all ``values``: the matching keys grouped by stored value."""
        plain = [v for v in values if v is not None]
        alts = []
        params: dict[str, Any] = {"cls": cls, "p": json_path(prop)}
        if plain:
            alts.append("v IN (SELECT value FROM json_each(:vals))")
            params["vals"] = json.dumps(plain)
        if len(plain) < len(values):
            alts.append("v IS NULL")
        sql = ("SELECT v, group_concat(nid) FROM (SELECT nid, json_extract(props, :p) AS v FROM nodes "
               f"WHERE cls = :cls) WHERE {' OR '.join(alts)} GROUP BY v")
        found: dict[Any, np.ndarray] = {}
        for v, nids in conn.execute(sql, params):
            arr = np.array(nids.split(","), dtype=np.int64)
            arr.sort()
            # group by the Python value the caller asked for (SQL groups 1 and 1.0 together, and
            # so does a dict; text never equals a number in either)
            found[v] = np.unique(np.concatenate([found[v], arr])) if v in found else arr
        for v in values:
            self._sets[(cls, prop, v)] = found.get(v, np.empty(0, dtype=np.int64))
