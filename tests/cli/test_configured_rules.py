"""PLANTGRAPH_RULES_DIR reaches the analyses through the entry points, never through the engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import get_settings
from plantgraph.cli import app
from plantgraph.commands.copilot import _copilot
from plantgraph.commands.reasoning import configured_rules_dirs
from reasoning.service import Analyses
from store.factory import open_store
from tests.reasoning.test_rules import GOOD

runner = CliRunner()


@pytest.fixture()
def rules_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "mine.yaml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PLANTGRAPH_RULES_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_the_engine_reads_no_settings(rules_env: Path, tmp_path: Path) -> None:
    store = open_store("embedded", tmp_path / "store")
    try:
        assert "my_rule" not in Analyses(store).rules
        assert "my_rule" in Analyses(store, rules_dirs=[rules_env]).rules
    finally:
        store.close()


def test_the_cli_passes_the_configured_folder_first(rules_env: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    assert configured_rules_dirs([extra]) == [rules_env, extra]


def test_the_copilot_command_uses_the_configured_rules(rules_env: Path, tmp_path: Path) -> None:
    store = open_store("embedded", tmp_path / "store")
    try:
        cp = _copilot(store, None, datetime(2026, 1, 1, tzinfo=UTC))
        assert "my_rule" in cp.analyses.rules
        assert cp.analyses.now == datetime(2026, 1, 1, tzinfo=UTC)
    finally:
        store.close()


def test_rules_explain_finds_a_rule_only_when_configured(rules_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = runner.invoke(app, ["rules", "explain", "my_rule", "--json"])
    assert found.exit_code == 0, found.output
    assert '"rule": "my_rule"' in found.output
    monkeypatch.delenv("PLANTGRAPH_RULES_DIR")
    get_settings.cache_clear()
    missing = runner.invoke(app, ["rules", "explain", "my_rule", "--json"])
    assert missing.exit_code == 1
    assert "unknown rule 'my_rule'" in missing.output
