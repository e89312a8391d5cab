"""The generator's fast paths render exactly what the general ones do (issue #3, speed pass)."""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from graph_loader.generator import named_spec
from graph_loader.generator.clock import Clock
from graph_loader.generator.names import PLANTS
from graph_loader.generator.plant import PlantBuilder, round3
from graph_loader.generator.truth import TRACKED_RELATIONS, EdgeIndex

# the plants' zones (Kolkata: a half-hour offset); offsets are looked up per UTC hour, which holds for
# every zone whose changes fall on a whole UTC hour, as these do
ZONES = [*sorted({p.timezone for p in PLANTS}), "UTC"]


def _iso(t: int, zone: str) -> str:
    return datetime.fromtimestamp(t, ZoneInfo(zone)).isoformat()


def test_span_tables_render_like_zoneinfo_inside_at_and_beyond_the_edges() -> None:
    lo = int(datetime(2026, 3, 1, tzinfo=ZoneInfo("UTC")).timestamp())
    hi = int(datetime(2026, 11, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    clock = Clock(ZONES, span=(lo, hi))
    general = Clock(ZONES)
    times = [lo - 3 * 86400 + k * 3917 for k in range(0, (hi - lo + 6 * 86400) // 3917)]  # odd seconds too
    times += [lo - 7 * 86400 + m * 60 for m in range(0, 20 * 1440, 7)]  # whole minutes across the lower edge
    times += [hi - 86400 + m * 60 for m in range(0, 3 * 1440, 11)]  # and the upper one
    for t in times:
        for z, name in enumerate(ZONES):
            want = _iso(t, name)
            assert clock.fmt(t, z) == want
            assert general.fmt(t, z) == want


def test_span_tables_follow_daylight_saving_changes_minute_by_minute() -> None:
    lo = int(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp())
    clock = Clock(ZONES, span=(lo, lo + 365 * 86400))
    for change in (1774746000, 1792371600, 1772953200, 1793520000):  # EU and US spring and autumn 2026
        for m in range(-180, 180):
            t = change + m * 60
            for z, name in enumerate(ZONES):
                assert clock.fmt(t, z) == _iso(t, name)


def test_span_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="span"):
        Clock(["UTC"], span=(10, 5))


def test_round3_is_round_to_three_decimals() -> None:
    rnd = random.Random(5)
    values = [0.0, -0.0, 0.0004, -0.0004, 0.0005, -0.0005, 0.0015, 2.675, 1.0005, 1e11 + 0.0005, 1e13 + 0.1234]
    values += [(k + 0.5) / 1000 for k in range(-3000, 3000)]  # halves, as near as a float gets
    values += [math.nextafter((k + 0.5) / 1000, d) for k in range(0, 2000, 7) for d in (0.0, 1e9)]
    for scale in (1e-3, 1.0, 1e3, 1e4, 1e6, 1e9):
        values += [rnd.uniform(-scale, scale) for _ in range(4000)]
    values += [18000.0 * (0.97 + 0.03 * rnd.random()) / rnd.choice((1, 2)) for _ in range(4000)]
    for v in values:
        assert repr(round3(v)) == repr(round(v, 3)), v


@pytest.mark.parametrize(("scale", "seed"), [("tiny", 7), ("tiny", 3), ("small", 7)])
def test_truth_index_equals_one_built_from_the_written_edges(scale: str, seed: int, tmp_path: Path) -> None:
    # the simulation keeps consumers on lots and outputs on orders and moves them into the index
    # afterwards; the general path is EdgeIndex.add over every edge row, in file order
    builder = PlantBuilder(named_spec(scale), seed, tmp_path)
    builder.run()
    rebuilt = EdgeIndex()
    for rel in sorted(TRACKED_RELATIONS):
        path = tmp_path / f"{rel}.csv"
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    rebuilt.add(rel, row["src"], row["dst"])
    for name in ("consumers", "produced", "derived_children", "allocated", "allocated_lots", "shipped",
                 "sol_order", "so_customer"):
        assert dict(getattr(builder.index, name)) == dict(getattr(rebuilt, name)), name
    assert rebuilt.consumers and rebuilt.produced
    # lots are found by id in their list
    assert [builder.lot(lot.id) for lot in builder.lots] == builder.lots
    with pytest.raises(KeyError):
        builder.lot("LOT-" + str(len(builder.lots) + 1).zfill(7))
    with pytest.raises(KeyError):
        builder.lot("LOT-0000000")
