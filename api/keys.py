"""API keys: created by the CLI, stored hashed in SQLite, checked on every request.

A key looks like ``pgk_<key id>_<secret>``. Only the SHA-256 of the secret is stored: the secret is
32 random bytes, so a fast hash is enough (there is nothing to brute-force), and the lookup by key id
keeps the check a single indexed read. The full key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from api.roles import Role

ALL_PLANTS = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    user        TEXT NOT NULL,
    role        TEXT NOT NULL,
    plants      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
"""


class KeyAdminError(Exception):
    """A key command got bad input (unknown role, empty user, unknown key id)."""


class KeyInfo(BaseModel):
    """A key as listed (never with its secret)."""

    key_id: str
    user: str
    role: Role
    plants: list[str] = Field(description='plant ids the key may see; ["*"] means every plant')
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedKey(KeyInfo):
    key: str = Field(description="the full key; shown once, store it now")


class Principal(BaseModel):
    """Who is calling: resolved from the key on every request."""

    key_id: str
    user: str
    role: Role
    plants: frozenset[str]

    @property
    def all_plants(self) -> bool:
        return ALL_PLANTS in self.plants

    def sees_plant(self, plant: str | None) -> bool:
        """Enterprise-wide entities (no plant) are visible to every key."""
        return plant is None or self.all_plants or plant in self.plants


def _parse_plants(plants: list[str] | str) -> list[str]:
    items = plants.split(",") if isinstance(plants, str) else plants
    out = sorted({p.strip() for p in items if p.strip()})
    if not out:
        raise KeyAdminError("a key needs at least one plant (or '*' for every plant)")
    if ALL_PLANTS in out and len(out) > 1:
        raise KeyAdminError("'*' already means every plant; do not combine it with plant ids")
    return out


def split_key(raw: str) -> tuple[str, str] | None:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "pgk" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The SQLite key database (``settings.keys_path``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def create(self, user: str, role: Role | str, plants: list[str] | str) -> CreatedKey:
        user = user.strip()
        if not user:
            raise KeyAdminError("--user must not be empty")
        try:
            role = Role(role)
        except ValueError:
            raise KeyAdminError(f"unknown role {role!r}; expected one of {', '.join(Role)}") from None
        plant_list = _parse_plants(plants)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys VALUES (?,?,?,?,?,?,NULL)",
                (key_id, _hash(secret), user, role.value, ",".join(plant_list), now.isoformat()),
            )
        return CreatedKey(
            key_id=key_id, user=user, role=role, plants=plant_list, created_at=now,
            key=f"pgk_{key_id}_{secret}",
        )

    def list(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id, user, role, plants, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [
            KeyInfo(key_id=r[0], user=r[1], role=Role(r[2]), plants=r[3].split(","), created_at=r[4],
                    revoked_at=r[5])
            for r in rows
        ]

    def revoke(self, key_id: str) -> KeyInfo:
        with self._lock:
            cur = self._db.execute(
                "UPDATE api_keys SET revoked_at=? WHERE key_id=? AND revoked_at IS NULL",
                (datetime.now(UTC).isoformat(), key_id),
            )
        if cur.rowcount == 0 and not any(k.key_id == key_id for k in self.list()):
            raise KeyAdminError(f"no key with id {key_id!r}")
        return next(k for k in self.list() if k.key_id == key_id)

    def authenticate(self, raw: str) -> Principal | None:
        """The principal for a presented key, or None (unknown, malformed, revoked, wrong secret)."""
        parts = split_key(raw)
        if parts is None:
            return None
        key_id, secret = parts
        with self._lock:
            row = self._db.execute(
                "SELECT secret_hash, user, role, plants, revoked_at FROM api_keys WHERE key_id=?", (key_id,)
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        if not hmac.compare_digest(row[0], _hash(secret)):
            return None
        return Principal(key_id=key_id, user=row[1], role=Role(row[2]), plants=frozenset(row[3].split(",")))
