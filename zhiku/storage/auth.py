"""Sign-in state: password hashes, sessions, external identities, failed attempts and
pending OpenID Connect authorizations. Groups, their mappings and membership are
:mod:`zhiku.storage.groups` (one membership table for sign-in and document access).

:class:`AuthRepository` is what :mod:`zhiku.server.signin` needs; :class:`SqlAuthRepository`
implements it in the portable SQL of :mod:`zhiku.storage` (tables of migration component
``auth``), so the same code serves SQLite and several nodes on one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    user_id: int
    csrf: str
    method: str
    ip: str | None
    created_ts: float
    seen_ts: float


@dataclass(frozen=True, slots=True)
class Pending:
    state: str
    nonce: str
    verifier: str
    next_url: str
    created_ts: float


class AuthRepository(Protocol):
    # passwords
    def password_hash(self, user_id: int) -> str | None: ...
    def set_password_hash(self, user_id: int, hashed: str) -> None: ...
    def delete_password(self, user_id: int) -> None: ...
    # sessions
    def create_session(
        self, token_hash: str, csrf: str, user_id: int, method: str, ip: str | None, ts: float
    ) -> int: ...
    def session(self, token_hash: str) -> SessionRecord | None: ...
    def touch_session(self, session_id: int, ts: float) -> None: ...
    def delete_session(self, session_id: int) -> None: ...
    def delete_user_sessions(self, user_id: int) -> int: ...
    def user_sessions(self, user_id: int) -> list[SessionRecord]: ...
    def purge_sessions(self, created_before: float, seen_before: float) -> int: ...
    # identities
    def identity_user(self, provider: str, subject: str) -> int | None: ...
    def link_identity(self, provider: str, subject: str, user_id: int) -> None: ...
    def user_providers(self, user_id: int) -> list[str]: ...
    # failed attempts
    def add_failure(self, scopes: Iterable[str], ts: float) -> None: ...
    def failures_since(self, scope: str, since: float) -> tuple[int, float | None]: ...
    def clear_failures(self, scope: str) -> None: ...
    def purge_failures(self, before: float) -> int: ...
    # OpenID Connect authorizations in progress
    def add_pending(self, p: Pending) -> None: ...
    def take_pending(self, state: str) -> Pending | None: ...
    def purge_pending(self, before: float) -> int: ...


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        csrf=row["csrf"],
        method=row["method"],
        ip=row["ip"],
        created_ts=float(row["created_ts"]),
        seen_ts=float(row["seen_ts"]),
    )


_SESSION_COLS = "id, user_id, csrf, method, ip, created_ts, seen_ts"


class SqlAuthRepository:
    """:class:`AuthRepository` on a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- passwords ------------------------------------------------------------------

    def password_hash(self, user_id: int) -> str | None:
        row = self.db.execute(
            "SELECT hash FROM auth_passwords WHERE user_id=?", (user_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_password_hash(self, user_id: int, hashed: str) -> None:
        self.db.execute(
            "INSERT INTO auth_passwords(user_id, hash, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET hash=excluded.hash, "
            "updated_at=excluded.updated_at",
            (user_id, hashed, now_iso()),
        )

    def delete_password(self, user_id: int) -> None:
        self.db.execute("DELETE FROM auth_passwords WHERE user_id=?", (user_id,))

    # --- sessions -------------------------------------------------------------------

    def create_session(
        self, token_hash: str, csrf: str, user_id: int, method: str, ip: str | None, ts: float
    ) -> int:
        row = self.db.execute(
            "INSERT INTO auth_sessions(token_hash, csrf, user_id, method, ip, created_ts, "
            "seen_ts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (token_hash, csrf, user_id, method, ip, ts, ts, now_iso()),
        ).fetchone()
        return int(row[0])

    def session(self, token_hash: str) -> SessionRecord | None:
        row = self.db.execute(
            f"SELECT {_SESSION_COLS} FROM auth_sessions WHERE token_hash=?", (token_hash,)
        ).fetchone()
        return None if row is None else _session(row)

    def touch_session(self, session_id: int, ts: float) -> None:
        self.db.execute(
            "UPDATE auth_sessions SET seen_ts=? WHERE id=? AND seen_ts<?", (ts, session_id, ts)
        )

    def delete_session(self, session_id: int) -> None:
        self.db.execute("DELETE FROM auth_sessions WHERE id=?", (session_id,))

    def delete_user_sessions(self, user_id: int) -> int:
        return int(
            self.db.execute("DELETE FROM auth_sessions WHERE user_id=?", (user_id,)).rowcount
        )

    def user_sessions(self, user_id: int) -> list[SessionRecord]:
        rows = self.db.execute(
            f"SELECT {_SESSION_COLS} FROM auth_sessions WHERE user_id=? ORDER BY id", (user_id,)
        ).fetchall()
        return [_session(r) for r in rows]

    def purge_sessions(self, created_before: float, seen_before: float) -> int:
        return int(
            self.db.execute(
                "DELETE FROM auth_sessions WHERE created_ts<? OR seen_ts<?",
                (created_before, seen_before),
            ).rowcount
        )

    # --- identities -----------------------------------------------------------------

    def identity_user(self, provider: str, subject: str) -> int | None:
        row = self.db.execute(
            "SELECT user_id FROM auth_identities WHERE provider=? AND subject=?",
            (provider, subject),
        ).fetchone()
        return None if row is None else int(row[0])

    def link_identity(self, provider: str, subject: str, user_id: int) -> None:
        self.db.execute(
            "INSERT INTO auth_identities(provider, subject, user_id, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (provider, subject, user_id, now_iso()),
        )

    def user_providers(self, user_id: int) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT provider FROM auth_identities WHERE user_id=? ORDER BY provider", (user_id,)
            )
        ]

    # --- failed attempts ------------------------------------------------------------

    def add_failure(self, scopes: Iterable[str], ts: float) -> None:
        self.db.executemany(
            "INSERT INTO auth_failures(scope, ts) VALUES (?, ?)", [(s, ts) for s in scopes]
        )

    def failures_since(self, scope: str, since: float) -> tuple[int, float | None]:
        """How many failures ``scope`` had since ``since``, and the oldest of them."""
        row = self.db.execute(
            "SELECT COUNT(*), MIN(ts) FROM auth_failures WHERE scope=? AND ts>=?", (scope, since)
        ).fetchone()
        return int(row[0]), (None if row[1] is None else float(row[1]))

    def clear_failures(self, scope: str) -> None:
        self.db.execute("DELETE FROM auth_failures WHERE scope=?", (scope,))

    def purge_failures(self, before: float) -> int:
        return int(self.db.execute("DELETE FROM auth_failures WHERE ts<?", (before,)).rowcount)

    # --- pending OpenID Connect authorizations -------------------------------------

    def add_pending(self, p: Pending) -> None:
        self.db.execute(
            "INSERT INTO auth_pending(state, nonce, verifier, next_url, created_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (p.state, p.nonce, p.verifier, p.next_url, p.created_ts),
        )

    def take_pending(self, state: str) -> Pending | None:
        """The authorization started with ``state``, removed: a second callback with the
        same state (a replay) finds nothing, on any node."""
        row = self.db.execute(
            "DELETE FROM auth_pending WHERE state=? "
            "RETURNING state, nonce, verifier, next_url, created_ts",
            (state,),
        ).fetchone()
        if row is None:
            return None
        return Pending(
            state=row[0], nonce=row[1], verifier=row[2], next_url=row[3], created_ts=float(row[4])
        )

    def purge_pending(self, before: float) -> int:
        return int(
            self.db.execute("DELETE FROM auth_pending WHERE created_ts<?", (before,)).rowcount
        )
