"""Where the API looks for the copilot's vector index, per backend."""

from __future__ import annotations

from pathlib import Path

from api.services import Services, index_base
from config.settings import Settings
from store.base import GraphStore


def test_index_beside_an_embedded_store(tmp_path: Path) -> None:
    s = Settings(PLANTGRAPH_DATA=tmp_path / "data", store=tmp_path / "graph")
    assert index_base(s) == tmp_path / "graph"


def test_index_of_a_server_backend_under_the_data_folder(tmp_path: Path, plant_store: GraphStore) -> None:
    s = Settings(PLANTGRAPH_DATA=tmp_path / "data", backend="neo4j")
    assert index_base(s) == tmp_path / "data" / "neo4j"
    # readyz names that folder (not "no store path") until an index is built there
    state = Services(s, store=plant_store).index_state()
    assert state.state == "degraded" and str(tmp_path / "data" / "neo4j.rag") in (state.reason or "")
