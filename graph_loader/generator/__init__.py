"""Seeded synthetic plant generator: a realistic multi-plant bundle plus truth.json.

``generate(spec, seed, out)`` writes the bundle (see docs/bundle-format.md) and ``truth.json``
(the injected scenarios and their known answers, see docs/generator.md) into ``out``. The same
seed and scale always give byte-identical files.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from graph_loader.generator.plant import NOW, PlantBuilder
from graph_loader.generator.spec import NAMED_SCALES, ScaleSpec, named_spec, spec_for
from graph_loader.generator.truth import Truth, forward_trace, load_truth

ProgressFn = Callable[[str, float, float], None]


class GenerateReport(BaseModel):
    """What a generation produced (the ``--json`` output of ``plantgraph generate``)."""

    out: str
    seed: int
    scale: str
    spec: ScaleSpec
    entities: int
    relations: int
    counts: dict[str, int]
    seconds: float
    truth: str


def generate(spec: ScaleSpec, seed: int, out: str | Path, progress: ProgressFn | None = None,
             *, overwrite: bool = True) -> GenerateReport:
    """Generate a plant bundle and truth.json into ``out`` (an existing bundle there is replaced)."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"{out}: exists and is not a directory; expected a bundle folder")
        stale = [p for p in out.iterdir() if p.suffix in (".csv", ".jsonl") or p.name in ("manifest.json",
                                                                                          "truth.json")]
        if stale and not overwrite:
            raise FileExistsError(f"{out}: already holds a bundle; pass overwrite=True to replace it")
        for p in stale:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    t = time.perf_counter()
    # Millions of long-lived small objects make the cyclic GC rescan everything again and again;
    # nothing here builds reference cycles that need it, so it is paused for the run.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        builder = PlantBuilder(spec, seed, out, progress)
        builder.run()
        counts = dict(sorted(builder.counts.items()))
        # Free the simulation's millions of objects while the collector is still paused: once it
        # is back on, its first pass would otherwise walk every one of them (~7% of a run) just to
        # find them alive, right before they are freed anyway.
        del builder
    finally:
        if was_enabled:
            gc.enable()
    from ontology.models import ENTITY_CLASSES

    entities = sum(v for k, v in counts.items() if k in ENTITY_CLASSES)
    return GenerateReport(out=str(out), seed=seed, scale=spec.name, spec=spec, entities=entities,
                          relations=sum(counts.values()) - entities, counts=counts,
                          seconds=round(time.perf_counter() - t, 3), truth=str(out / "truth.json"))


__all__ = [
    "NAMED_SCALES",
    "NOW",
    "GenerateReport",
    "ScaleSpec",
    "Truth",
    "forward_trace",
    "generate",
    "load_truth",
    "named_spec",
    "spec_for",
]
