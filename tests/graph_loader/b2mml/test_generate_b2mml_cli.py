"""`plantgraph generate --format b2mml` writes the plant as B2MML messages that import cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plantgraph.cli import app
from store.factory import open_store


def test_generate_b2mml_then_import(tmp_path: Path) -> None:
    out = tmp_path / "b2mml"
    runner = CliRunner()
    res = runner.invoke(app, ["generate", "--scale", "tiny", "--seed", "7", "--out", str(out), "--format", "b2mml",
                              "--json", "-q"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["truth"] == str(out / "truth.json")
    truth = json.loads((out / "truth.json").read_text())
    xml_files = sorted(out.glob("*.xml"))
    assert any(f.name.startswith("equipment-") for f in xml_files)
    assert any(f.name.startswith("performance-") for f in xml_files)
    store_path = tmp_path / "store"
    res = runner.invoke(app, ["import", "b2mml", str(out), "--store", str(store_path), "--json"])
    assert res.exit_code == 0, res.output
    with open_store("embedded", store_path) as store:
        hold_lot = truth["scenarios"]["quality_hold"]["lot"]
        assert store.get_node(hold_lot) is not None
        assert store.counts().nodes_by_class.get("ProductionOrder", 0) > 0
