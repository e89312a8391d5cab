"""The reasoning benchmark's ``models_hold`` row times building exactly what a hold trace returns:
its builder, fed the trace's values, gives the same reached entities, field for field."""

from __future__ import annotations

from benchmarks.bench_reasoning import rebuild_models
from reasoning.service import Analyses
from tests.reasoning.conftest import TinyPlant


def test_rebuilt_models_equal_the_trace(tiny_plant: TinyPlant) -> None:
    a = Analyses(tiny_plant.store, now=tiny_plant.truth.now, rules_dirs=[])
    holds = sorted(n.id for n in tiny_plant.store.find_nodes("QualityHold"))
    assert holds
    reached = 0
    for h in holds:
        result = a.trace_hold(h)
        expected = [x for group in result.reached.values() for x in group]
        rebuilt = rebuild_models(result)()
        assert [x.model_dump_json() for x in rebuilt] == [x.model_dump_json() for x in expected]
        assert [x.model_fields_set for x in rebuilt] == [x.model_fields_set for x in expected]
        reached += len(rebuilt)
    assert reached > len(holds)
