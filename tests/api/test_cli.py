"""The API's CLI: keys create/list/revoke and audit verify/list (settings from PLANTGRAPH_DATA)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.audit import AuditEntry, AuditLog
from api.keys import KeyStore
from plantgraph.cli import app

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PLANTGRAPH_KEYS_DB", "PLANTGRAPH_AUDIT_DB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLANTGRAPH_DATA", str(tmp_path))
    return tmp_path


def test_keys_lifecycle(data: Path) -> None:
    r = runner.invoke(app, ["keys", "create", "--user", "ann", "--role", "planner", "--plants", "SITE-A", "--json"])
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    assert created["key"].startswith("pgk_") and created["plants"] == ["SITE-A"]
    ks = KeyStore(data / "keys.sqlite")
    principal = ks.authenticate(created["key"])
    ks.close()
    assert principal is not None and principal.user == "ann"
    quiet = runner.invoke(app, ["keys", "create", "--user", "bo", "--role", "viewer", "--plants", "*", "--quiet"])
    assert quiet.output.strip().startswith("pgk_") and len(quiet.output.strip().splitlines()) == 1
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)
    assert {k["user"] for k in listed} == {"ann", "bo"}
    assert all("key" not in k for k in listed)
    assert runner.invoke(app, ["keys", "revoke", created["key_id"]]).exit_code == 0
    ks = KeyStore(data / "keys.sqlite")
    assert ks.authenticate(created["key"]) is None
    ks.close()


def test_keys_bad_input_exit_1(data: Path) -> None:
    r = runner.invoke(app, ["keys", "create", "--user", "ann", "--role", "wizard", "--plants", "*"])
    assert r.exit_code == 1 and "unknown role" in r.output
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 1


def test_audit_verify_and_list(data: Path) -> None:
    log = AuditLog(data / "audit.sqlite")
    for i in range(3):
        log.append(AuditEntry(user="ann", kind="ask", method="POST", endpoint="/v1/ask", status=200,
                              question=f"q{i}"))
    log.close()
    ok = runner.invoke(app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    listed = json.loads(runner.invoke(app, ["audit", "list", "--json", "--user", "ann"]).output)
    assert [r["question"] for r in listed] == ["q2", "q1", "q0"]
    db = sqlite3.connect(data / "audit.sqlite", isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET question='x' WHERE seq=2")
    db.close()
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1 and "record 2" in bad.output


def test_audit_verify_without_log(data: Path) -> None:
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "no audit log" in r.output


@pytest.mark.parametrize(("option", "value"), [("--http", "h2"), ("--loop", "trio")])
def test_serve_refuses_unknown_http_or_loop(data: Path, option: str, value: str) -> None:
    r = runner.invoke(app, ["serve", option, value])
    assert r.exit_code == 2
    assert option in r.output and value in r.output
