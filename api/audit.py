"""The append-only, hash-chained audit log (SQLite at ``settings.audit_path``).

Every record carries the SHA-256 of the previous record, and its own hash covers its fields and
that link. SQLite triggers refuse UPDATE and DELETE, and a one-row ``head`` table (written in the
same transaction as each append) remembers the last sequence number and hash, so :func:`verify`
detects an edited, deleted, reordered or truncated record and names the first bad one. Someone who
can rewrite the whole file can rebuild a consistent chain; export the head hash
(``plantgraph audit verify --json``) to a place they cannot reach and pass it back with
``--expect-head`` to close that gap.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY,
    ts          TEXT NOT NULL,
    user        TEXT,
    key_id      TEXT,
    role        TEXT,
    kind        TEXT NOT NULL,
    method      TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    status      INTEGER NOT NULL,
    params      TEXT NOT NULL,
    question    TEXT,
    entity_ids  TEXT NOT NULL,
    digest      TEXT,
    detail      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
CREATE TABLE IF NOT EXISTS head (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""

_FIELDS = (
    "seq", "ts", "user", "key_id", "role", "kind", "method", "endpoint", "status", "params",
    "question", "entity_ids", "digest", "detail", "prev_hash",
)


class AuditEntry(BaseModel):
    """What a caller hands to :meth:`AuditLog.append`."""

    user: str | None = None
    key_id: str | None = None
    role: str | None = None
    kind: str
    method: str
    endpoint: str
    status: int
    params: dict[str, Any] = Field(default_factory=dict)
    question: str | None = None
    entity_ids: list[str] = Field(default_factory=list)
    digest: str | None = Field(default=None, description="SHA-256 of the response body")
    detail: str | None = None


class AuditRecord(AuditEntry):
    seq: int
    ts: datetime
    prev_hash: str
    hash: str


class VerifyReport(BaseModel):
    ok: bool
    records: int = Field(description="records checked")
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def record_hash(fields: dict[str, Any]) -> str:
    """Hash of a record's fields (in a fixed order, canonical JSON) including ``prev_hash``."""
    payload = json.dumps([fields[k] for k in _FIELDS], separators=(",", ":"), ensure_ascii=False,
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Append one record and return it as stored."""
        fields, h = self._append(entry)
        return _to_record({**fields, "hash": h})

    def record(self, entry: AuditEntry) -> None:
        """Append one record (the per-request path: nothing is built from it afterwards)."""
        self._append(entry)

    def _append(self, entry: AuditEntry) -> tuple[dict[str, Any], str]:
        """BEGIN IMMEDIATE makes the read of the head and the write one step, so several API
        processes sharing the file still build one chain."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                head = db.execute("SELECT seq, hash FROM head WHERE one=1").fetchone()
                seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
                fields: dict[str, Any] = {
                    "seq": seq,
                    "ts": datetime.now(UTC).isoformat(),
                    "user": entry.user,
                    "key_id": entry.key_id,
                    "role": entry.role,
                    "kind": entry.kind,
                    "method": entry.method,
                    "endpoint": entry.endpoint,
                    "status": entry.status,
                    "params": json.dumps(entry.params, sort_keys=True, default=str),
                    "question": entry.question,
                    "entity_ids": json.dumps(sorted(set(entry.entity_ids))),
                    "digest": entry.digest,
                    "detail": entry.detail,
                    "prev_hash": prev,
                }
                h = record_hash(fields)
                db.execute(
                    f"INSERT INTO audit ({', '.join(_FIELDS)}, hash) VALUES ({', '.join('?' * len(_FIELDS))}, ?)",
                    [*(fields[k] for k in _FIELDS), h],
                )
                db.execute(
                    "INSERT INTO head (one, seq, hash) VALUES (1, ?, ?) "
                    "ON CONFLICT(one) DO UPDATE SET seq=excluded.seq, hash=excluded.hash",
                    (seq, h),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return fields, h

    def query(
        self,
        *,
        user: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[AuditRecord], int]:
        """Records matching the filters, newest first, and the total count."""
        where: list[str] = []
        args: list[Any] = []
        if user is not None:
            where.append("user = ?")
            args.append(user)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if since is not None:
            where.append("ts >= ?")
            args.append(since.astimezone(UTC).isoformat())
        if until is not None:
            where.append("ts < ?")
            args.append(until.astimezone(UTC).isoformat())
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM audit{clause}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {', '.join(_FIELDS)}, hash FROM audit{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [_to_record(dict(zip((*_FIELDS, "hash"), r, strict=True))) for r in rows], total

    def verify(self, expect_head: str | None = None) -> VerifyReport:
        """Walk the chain in storage order; the first record that does not fit is reported."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_FIELDS)}, hash FROM audit ORDER BY rowid"
            ).fetchall()
            head = self._db.execute("SELECT seq, hash FROM head WHERE one=1").fetchone()
        head_seq, head_hash = (head[0], head[1]) if head else (0, GENESIS)
        prev = GENESIS
        expected_seq = 1
        count = 0

        def bad(seq: int, why: str) -> VerifyReport:
            return VerifyReport(ok=False, records=count, head_seq=head_seq, head_hash=head_hash,
                                first_bad_seq=seq, problem=why)

        for row in rows:
            fields = dict(zip((*_FIELDS, "hash"), row, strict=True))
            seq = int(fields["seq"])
            if seq != expected_seq:
                if seq > expected_seq:
                    return bad(expected_seq, f"record {expected_seq} is missing (next stored record is {seq})")
                return bad(seq, f"record {seq} is out of order (expected {expected_seq})")
            if fields["prev_hash"] != prev:
                return bad(seq, f"record {seq} does not link to the record before it (deleted or reordered)")
            if record_hash(fields) != fields["hash"]:
                return bad(seq, f"record {seq} was edited: its hash does not match its content")
            prev = fields["hash"]
            expected_seq += 1
            count += 1
        last_seq = expected_seq - 1
        if last_seq != head_seq or prev != head_hash:
            if last_seq < head_seq:
                return bad(last_seq + 1, f"log truncated: head says {head_seq} records, found {last_seq}")
            return bad(head_seq + 1 if last_seq > head_seq else last_seq,
                       "the head record does not match the last record")
        if expect_head is not None and expect_head != head_hash:
            return bad(head_seq, "head hash differs from the expected (exported) head: the log was rewritten")
        return VerifyReport(ok=True, records=count, head_seq=head_seq, head_hash=head_hash)


def _to_record(fields: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        seq=fields["seq"], ts=fields["ts"], user=fields["user"], key_id=fields["key_id"], role=fields["role"],
        kind=fields["kind"], method=fields["method"], endpoint=fields["endpoint"], status=fields["status"],
        params=json.loads(fields["params"]), question=fields["question"],
        entity_ids=json.loads(fields["entity_ids"]), digest=fields["digest"], detail=fields["detail"],
        prev_hash=fields["prev_hash"], hash=fields["hash"],
    )
