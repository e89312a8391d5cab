"""The audit log: what is recorded, filters, and tamper evidence (edit, delete, reorder, truncate)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.audit import AuditEntry, AuditLog
from config.settings import Settings
from tests.api.conftest import Keys


def _log(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path / "audit.sqlite")
    for i in range(n):
        log.append(AuditEntry(user=f"u{i % 2}", kind="ask", method="POST", endpoint="/v1/ask", status=200,
                              question=f"question {i}", entity_ids=[f"L-{i}"], digest="d" * 64))
    return log


def _raw(path: Path) -> sqlite3.Connection:
    """What an attacker with file access does: drop the append-only triggers, then write."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    return db


def test_intact_chain_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    rep = log.verify()
    assert rep.ok and rep.records == 6 and rep.head_seq == 6 and rep.first_bad_seq is None
    assert log.verify(expect_head=rep.head_hash).ok


def test_update_and_delete_are_refused_by_sqlite(tmp_path: Path) -> None:
    _log(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET user='mallory' WHERE seq=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq=2")


def test_edited_record_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _raw(log.path).execute("UPDATE audit SET question='nothing to see' WHERE seq=3")
    rep = log.verify()
    assert not rep.ok and rep.first_bad_seq == 3 and "edited" in (rep.problem or "")


def test_edit_with_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    from api.audit import _FIELDS, record_hash

    log = _log(tmp_path)
    db = _raw(log.path)
    row = db.execute(f"SELECT {', '.join(_FIELDS)} FROM audit WHERE seq=3").fetchone()
    fields = dict(zip(_FIELDS, row, strict=True))
    fields["user"] = "mallory"
    db.execute("UPDATE audit SET user='mallory', hash=? WHERE seq=3", (record_hash(fields),))
    rep = log.verify()
    assert not rep.ok and rep.first_bad_seq == 4


def test_deleted_record_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _raw(log.path).execute("DELETE FROM audit WHERE seq=4")
    rep = log.verify()
    assert not rep.ok and rep.first_bad_seq == 4 and "missing" in (rep.problem or "")


def test_reordered_records_are_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    db = _raw(log.path)
    cols = "ts, user, key_id, role, kind, method, endpoint, status, params, question, entity_ids, digest, detail, " \
           "prev_hash, hash"
    r2 = db.execute(f"SELECT {cols} FROM audit WHERE seq=2").fetchone()
    r5 = db.execute(f"SELECT {cols} FROM audit WHERE seq=5").fetchone()
    sets = ", ".join(f"{c.strip()}=?" for c in cols.split(","))
    db.execute(f"UPDATE audit SET {sets} WHERE seq=2", r5)
    db.execute(f"UPDATE audit SET {sets} WHERE seq=5", r2)
    rep = log.verify()
    assert not rep.ok and rep.first_bad_seq == 2


def test_truncated_tail_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _raw(log.path).execute("DELETE FROM audit WHERE seq >= 5")
    rep = log.verify()
    assert not rep.ok and rep.first_bad_seq == 5 and "truncated" in (rep.problem or "")


def test_rewritten_log_caught_by_exported_head(tmp_path: Path) -> None:
    log = _log(tmp_path)
    head = log.verify().head_hash
    db = _raw(log.path)
    db.execute("DELETE FROM audit WHERE seq >= 5")
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("UPDATE head SET seq=?, hash=?", last)
    assert log.verify().ok  # a consistent shorter chain...
    rep = log.verify(expect_head=head)
    assert not rep.ok and "rewritten" in (rep.problem or "")  # ...but not the one exported earlier


def test_every_call_is_recorded(client: TestClient, keys: Keys) -> None:
    ans = client.post("/v1/ask", json={"question": "What is lot L-A1?"}, headers=keys.h("analyst"))
    client.get("/v1/entities/L-A1", headers=keys.h("viewer"))
    client.get("/v1/entities/L-A1")  # no key: still recorded, as denied
    client.get("/healthz")  # not recorded
    recs = client.get("/v1/audit", headers=keys.h("admin")).json()["items"]
    # newest first: the audit call itself is recorded only after it answers
    kinds = [(r["kind"], r["endpoint"], r["status"]) for r in recs]
    assert kinds == [("denied", "/v1/entities/L-A1", 401), ("entity", "/v1/entities/L-A1", 200),
                     ("ask", "/v1/ask", 200)]
    ask = recs[2]
    assert ask["user"] == "analyst-all" and ask["role"] == "analyst"
    assert ask["question"] == "What is lot L-A1?"
    assert "L-A1" in ask["entity_ids"]
    assert ask["digest"] == hashlib.sha256(ans.content).hexdigest()
    assert recs[1]["entity_ids"] == ["L-A1"] and recs[1]["user"] == "viewer-all"


def test_audit_filters(client: TestClient, keys: Keys) -> None:
    client.get("/v1/entities/L-A1", headers=keys.h("viewer"))
    client.get("/v1/entities/L-A2", headers=keys.h("analyst"))
    h = keys.h("admin")
    by_user = client.get("/v1/audit", params={"user": "analyst-all"}, headers=h).json()["items"]
    assert [r["endpoint"] for r in by_user] == ["/v1/entities/L-A2"]
    by_kind = client.get("/v1/audit", params={"kind": "entity"}, headers=h).json()
    assert by_kind["total"] == 2
    future = client.get("/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=h).json()
    assert future["items"] == []
    assert client.get("/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=h).status_code == 422
    assert client.get("/v1/audit", headers=keys.h("analyst")).status_code == 403


def test_decisions_are_recorded(client: TestClient, keys: Keys) -> None:
    p = client.post("/v1/proposals", json={"action": {"kind": "escalate_incident", "incident_id": "INC-A1",
                                                      "reason": "x"}}, headers=keys.h("engineer")).json()
    client.post(f"/v1/proposals/{p['id']}/approve", json={"comment": "fine"}, headers=keys.h("approver"))
    recs = client.get("/v1/audit", params={"kind": "decision"}, headers=keys.h("admin")).json()["items"]
    assert len(recs) == 1
    assert recs[0]["params"]["decision"] == "approve" and recs[0]["params"]["comment"] == "fine"
    assert p["id"] in recs[0]["detail"] and "engineer-all" in recs[0]["detail"]
    props = client.get("/v1/audit", params={"kind": "proposal"}, headers=keys.h("admin")).json()["items"]
    assert props[-1]["params"]["action"]["incident_id"] == "INC-A1"


def test_verify_endpoint_detects_tampering(client: TestClient, keys: Keys, settings: Settings) -> None:
    client.get("/v1/entities/L-A1", headers=keys.h("viewer"))
    client.get("/v1/entities/L-A2", headers=keys.h("viewer"))
    ok = client.get("/v1/audit/verify", headers=keys.h("approver")).json()
    assert ok["ok"] is True and ok["records"] >= 2
    _raw(settings.audit_path).execute("UPDATE audit SET endpoint='/v1/entities/L-ZZ' WHERE seq=1")
    bad = client.get("/v1/audit/verify", headers=keys.h("approver")).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == 1


def test_unwritable_audit_fails_closed(client: TestClient, keys: Keys, settings: Settings) -> None:
    assert client.get("/v1/entities/L-A2", headers=keys.h("viewer")).status_code == 200
    db = sqlite3.connect(settings.audit_path, isolation_level=None)
    db.execute("CREATE TRIGGER block BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    r = client.get("/v1/entities/L-A1", headers=keys.h("viewer"))
    assert r.status_code == 503
    assert "audit" in r.json()["detail"]
    assert "Resin" not in r.text


def test_server_errors_are_recorded_too(settings: Settings, plant_store: object, keys: Keys) -> None:
    from api.app import create_app

    app = create_app(settings, store=plant_store)  # type: ignore[arg-type]

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/boom", headers=keys.h("admin"))
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "kaput" not in r.text  # internals are not leaked
        recs = c.get("/v1/audit", headers=keys.h("admin")).json()["items"]
        assert (recs[0]["endpoint"], recs[0]["status"]) == ("/v1/boom", 500)
