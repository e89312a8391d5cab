"""Scale presets: how many plants, lines and days of history make roughly N entities."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScaleName = Literal["tiny", "small", "medium", "large", "custom"]

#: Entities per line and simulated day, and the ramp-up deficit per line (fitted to small, medium
#: and large runs; see docs/generator.md).
ENTITIES_PER_LINE_DAY = 17.0
RAMP_UP = 90.0

NAMED_SCALES: dict[str, int] = {"tiny": 1_000, "small": 20_000, "medium": 200_000, "large": 1_000_000}


class ScaleSpec(BaseModel):
    """The knobs the simulation runs with; derived from a target entity count."""

    model_config = ConfigDict(frozen=True)

    name: ScaleName
    target_entities: int = Field(gt=0)
    plants: int = Field(ge=1, le=10)
    proc_lines: int = Field(ge=1)  # processing lines per plant (make intermediates)
    pack_lines: int = Field(ge=2)  # packaging lines per plant (make finished goods)
    history_days: int = Field(ge=5)
    future_days: int = Field(default=10, ge=7)


def spec_for(target_entities: int, name: ScaleName = "custom") -> ScaleSpec:
    """Choose plants, lines and history length so the plant has about ``target_entities`` entities.

    Lines grow with the square root of the size and history with the rest, so that a large plant
    is both wider (more lines) and longer (more weeks) than a small one. The constants are measured
    (docs/generator.md): about ``ENTITIES_PER_LINE_DAY`` entities per line and simulated day, less a
    ramp-up of ``RAMP_UP`` per line.
    """
    if target_entities < 300:
        raise ValueError(f"--entities {target_entities}: expected at least 300 (the smallest useful plant)")
    n = target_entities
    plants = 2 if n < 5_000 else 3 if n < 50_000 else 5 if n < 500_000 else 8
    lines_total = max(plants * 3, round(math.sqrt(n) / 4)) if n >= 5_000 else plants * 3
    per_plant = max(3, round(lines_total / plants))
    proc = max(1, round(per_plant / 3))
    pack = max(2, per_plant - proc)
    lines = plants * (proc + pack)
    future = 7 if n < 5_000 else 10
    # measured: entities per line ~= ENTITIES_PER_LINE_DAY * days - RAMP_UP (the first weeks carry
    # fewer shipped sales lines, deliveries and events per day than a steady state)
    per_line = n / lines
    days_total = (per_line + RAMP_UP) / ENTITIES_PER_LINE_DAY
    # the smallest plants carry proportionally more master data, so they get a shorter history
    history = max(5, min(730, round(days_total - future - (3 if n < 5_000 else 0))))
    return ScaleSpec(name=name, target_entities=n, plants=plants, proc_lines=proc, pack_lines=pack,
                     history_days=history, future_days=future)


def named_spec(scale: str) -> ScaleSpec:
    """The preset for tiny / small / medium / large."""
    try:
        n = NAMED_SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(NAMED_SCALES)}") from None
    return spec_for(n, scale)  # type: ignore[arg-type]
