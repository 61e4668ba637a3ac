"""Users, per-KB grants and API keys: the rows behind :mod:`zhiku.server.accounts`.

:class:`AccountsRepository` is what the server's account rules need;
:class:`SqlAccounts` implements it in the portable SQL of :mod:`zhiku.storage` over the
``users``, ``grants`` and ``api_keys`` tables of migration component ``core``, so the
same code serves SQLite and several nodes sharing one PostgreSQL. The rules themselves
(valid names and roles, the last administrator, key format and hashing) stay in
:mod:`zhiku.server.accounts`; this module only stores and finds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zhiku.storage.db import Database


@dataclass(slots=True)
class User:
    id: int
    name: str
    role: str
    created_at: str
    disabled: bool = False
    kbs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "disabled": self.disabled,
            "kbs": self.kbs,
        }


@dataclass(slots=True)
class ApiKey:
    id: int
    prefix: str
    user_id: int
    user: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "user_id": self.user_id,
            "user": self.user,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "active": self.revoked_at is None,
        }


@dataclass(frozen=True, slots=True)
class KeyCredentials:
    """What authenticating a key needs: its record, its stored hash and its owner's state."""

    key: ApiKey
    hash: str
    role: str
    user_disabled: bool
    user_created_at: str


class AccountsRepository(Protocol):
    # users
    def user(self, ref: int | str) -> User | None: ...
    def users(self) -> list[User]: ...
    def user_exists(self, name: str) -> bool: ...
    def count_admins(self) -> int: ...
    def insert_user(self, name: str, role: str, created_at: str) -> int | None: ...
    def set_role(self, user_id: int, role: str) -> None: ...
    def set_disabled(self, user_id: int, disabled: bool) -> None: ...
    def delete_user(self, user_id: int) -> None: ...
    # grants
    def granted_kbs(self, user_id: int, role: str) -> list[str]: ...
    def add_grants(self, user_id: int, kb_ids: Iterable[int]) -> None: ...
    def remove_grants(self, user_id: int, kb_ids: Iterable[int]) -> None: ...
    def clear_grants(self, user_id: int) -> None: ...
    # keys
    def insert_key(
        self, user_id: int, prefix: str, hashed: str, name: str, created_at: str
    ) -> int | None: ...
    def key(self, ref: int | str) -> ApiKey | None: ...
    def api_keys(self, user_id: int | None = None) -> list[ApiKey]: ...
    def revoke_key(self, key_id: int, at: str) -> None: ...
    def credentials(self, prefix: str) -> KeyCredentials | None: ...
    def touch_key(self, key_id: int, at: str) -> None: ...


_KEY_SELECT = (
    "SELECT k.id, k.prefix, k.user_id, u.name AS owner, k.name, k.created_at, "
    "k.last_used_at, k.revoked_at, k.hash, u.role, u.disabled, "
    "u.created_at AS user_created FROM api_keys k JOIN users u ON u.id=k.user_id "
)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=int(row["id"]),
        prefix=row["prefix"],
        user_id=int(row["user_id"]),
        user=row["owner"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class SqlAccounts:
    """:class:`AccountsRepository` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ----------------------------------------------------------------------

    def _user(self, row: Any) -> User:
        return User(
            id=int(row["id"]),
            name=row["name"],
            role=row["role"],
            created_at=row["created_at"],
            disabled=bool(row["disabled"]),
            kbs=self.granted_kbs(int(row["id"]), row["role"]),
        )

    def user(self, ref: int | str) -> User | None:
        """A user by id (int) or name (str), with the KBs it may read."""
        col = "id" if isinstance(ref, int) else "name"
        row = self.db.execute(
            f"SELECT id, name, role, created_at, disabled FROM users WHERE {col}=?", (ref,)
        ).fetchone()
        return None if row is None else self._user(row)

    def users(self) -> list[User]:
        rows = self.db.execute(
            "SELECT id, name, role, created_at, disabled FROM users ORDER BY name"
        ).fetchall()
        return [self._user(r) for r in rows]

    def user_exists(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is not None

    def count_admins(self) -> int:
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM users WHERE role='admin' AND disabled=0"
            ).fetchone()[0]
        )

    def insert_user(self, name: str, role: str, created_at: str) -> int | None:
        """The new user's id, or ``None`` when the name is taken (also by a concurrent
        insert on another node: the unique constraint decides, not a prior look-up)."""
        row = self.db.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO NOTHING RETURNING id",
            (name, role, created_at),
        ).fetchone()
        return None if row is None else int(row[0])

    def set_role(self, user_id: int, role: str) -> None:
        self.db.execute("UPDATE users SET role=? WHERE id=?", (role, user_id))

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        self.db.execute("UPDATE users SET disabled=? WHERE id=?", (int(disabled), user_id))

    def delete_user(self, user_id: int) -> None:
        self.db.execute("DELETE FROM users WHERE id=?", (user_id,))

    # --- grants ---------------------------------------------------------------------

    def granted_kbs(self, user_id: int, role: str) -> list[str]:
        """Names of the KBs a user may read: every KB for an admin, else the granted ones."""
        if role == "admin":
            return [r[0] for r in self.db.execute("SELECT name FROM kbs ORDER BY name")]
        return [
            r[0]
            for r in self.db.execute(
                "SELECT k.name FROM grants g JOIN kbs k ON k.id=g.kb_id WHERE g.user_id=? "
                "ORDER BY k.name",
                (user_id,),
            )
        ]

    def add_grants(self, user_id: int, kb_ids: Iterable[int]) -> None:
        rows = [(user_id, k) for k in kb_ids]
        if rows:
            self.db.executemany(
                "INSERT INTO grants(user_id, kb_id) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
            )

    def remove_grants(self, user_id: int, kb_ids: Iterable[int]) -> None:
        rows = [(user_id, k) for k in kb_ids]
        if rows:
            self.db.executemany("DELETE FROM grants WHERE user_id=? AND kb_id=?", rows)

    def clear_grants(self, user_id: int) -> None:
        self.db.execute("DELETE FROM grants WHERE user_id=?", (user_id,))

    # --- keys -----------------------------------------------------------------------

    def insert_key(
        self, user_id: int, prefix: str, hashed: str, name: str, created_at: str
    ) -> int | None:
        """The new key's id, or ``None`` when the prefix is taken (draw another)."""
        row = self.db.execute(
            "INSERT INTO api_keys(user_id, prefix, hash, name, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(prefix) DO NOTHING RETURNING id",
            (user_id, prefix, hashed, name, created_at),
        ).fetchone()
        return None if row is None else int(row[0])

    def key(self, ref: int | str) -> ApiKey | None:
        """A key by id (int) or prefix (str)."""
        col = "k.id" if isinstance(ref, int) else "k.prefix"
        row = self.db.execute(_KEY_SELECT + f"WHERE {col}=?", (ref,)).fetchone()
        return None if row is None else _key(row)

    def api_keys(self, user_id: int | None = None) -> list[ApiKey]:
        """Every key (oldest first), or one user's (in creation order)."""
        if user_id is None:
            rows = self.db.execute(_KEY_SELECT + "ORDER BY k.created_at, k.id").fetchall()
        else:
            rows = self.db.execute(
                _KEY_SELECT + "WHERE k.user_id=? ORDER BY k.id", (user_id,)
            ).fetchall()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: int, at: str) -> None:
        """Revoke once: a revoked key keeps its first revocation time."""
        self.db.execute(
            "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (at, key_id)
        )

    def credentials(self, prefix: str) -> KeyCredentials | None:
        row = self.db.execute(_KEY_SELECT + "WHERE k.prefix=?", (prefix,)).fetchone()
        if row is None:
            return None
        return KeyCredentials(
            key=_key(row),
            hash=row["hash"],
            role=row["role"],
            user_disabled=bool(row["disabled"]),
            user_created_at=row["user_created"],
        )

    def touch_key(self, key_id: int, at: str) -> None:
        self.db.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (at, key_id))
