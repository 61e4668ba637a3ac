"""Users, roles, per-KB grants and API keys (hashed at rest, shown once).

Roles: ``admin`` (everything, every knowledge base), ``editor`` (ask, search and manage
the documents of granted KBs), ``reader`` (ask and search granted KBs). A key belongs to
one user and acts with that user's role and grants, so revoking a grant takes effect on
every key at once.

A key reads ``zk_<prefix>_<secret>``: the prefix (8 hex digits) finds the row, the
secret (32 random bytes) is checked against its SHA-256. A slow password hash (bcrypt,
scrypt) protects *low-entropy* secrets; 256 random bits cannot be guessed, so a single
SHA-256 is enough and keeps authentication to microseconds per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zhiku.errors import ZhikuError
from zhiku.store import Store, now_iso

ROLES: tuple[str, ...] = ("admin", "editor", "reader")
KEY_PREFIX = "zk"


class AccountError(ZhikuError):
    """A user or key operation that cannot be done; ``code`` is the API error code."""

    exit_code = 2

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.exit_code = 3 if status == 404 else 2


class UserNotFound(AccountError):
    def __init__(self, ref: str | int) -> None:
        super().__init__("user_not_found", f"找不到使用者「{ref}」", 404)


@dataclass(slots=True)
class User:
    id: int
    name: str
    role: str
    created_at: str
    disabled: bool = False
    kbs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "created_at": self.created_at, "disabled": self.disabled, "kbs": self.kbs}


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
        return {"id": self.id, "prefix": self.prefix, "user_id": self.user_id,
                "user": self.user, "name": self.name, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "revoked_at": self.revoked_at,
                "active": self.revoked_at is None}


# --- users ------------------------------------------------------------------------------


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError("invalid_role", f"角色必須是 {', '.join(ROLES)} 之一（收到「{role}」）")
    return role


def _check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > 64 or any(unicodedata.category(c).startswith("C") for c in name):
        raise AccountError("invalid_name", "使用者名稱須為 1–64 個字元，且不可含控制字元")
    return name


def _user_from_row(store: Store, row: sqlite3.Row) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"],
                created_at=row["created_at"], disabled=bool(row["disabled"]),
                kbs=granted_kbs(store, row["id"], row["role"]))


def get_user(store: Store, ref: str | int) -> User:
    """A user by id (int) or name (str)."""
    if isinstance(ref, int):
        row = store.db.execute("SELECT * FROM users WHERE id=?", (ref,)).fetchone()
    else:
        row = store.db.execute("SELECT * FROM users WHERE name=?", (ref,)).fetchone()
    if row is None:
        raise UserNotFound(ref)
    return _user_from_row(store, row)


def list_users(store: Store) -> list[User]:
    rows = store.db.execute("SELECT * FROM users ORDER BY name").fetchall()
    return [_user_from_row(store, r) for r in rows]


def count_admins(store: Store) -> int:
    return int(store.db.execute(
        "SELECT COUNT(*) FROM users WHERE role='admin' AND disabled=0").fetchone()[0])


def create_user(store: Store, name: str, role: str, kbs: Iterable[str] = ()) -> User:
    name = _check_name(name)
    _check_role(role)
    kb_ids = [store.get_kb(k).id for k in kbs]
    with store.tx(immediate=True):
        if store.db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
            raise AccountError("user_exists", f"使用者「{name}」已存在", 409)
        cur = store.db.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?)", (name, role, now_iso())
        )
        uid = int(cur.lastrowid or 0)
        store.db.executemany(
            "INSERT OR IGNORE INTO grants(user_id, kb_id) VALUES (?, ?)", [(uid, k) for k in kb_ids]
        )
    return get_user(store, uid)


def _guard_last_admin(store: Store, user: User) -> None:
    if user.role == "admin" and not user.disabled and count_admins(store) <= 1:
        raise AccountError("last_admin", "不能移除或停用最後一位管理員", 409)


def set_role(store: Store, ref: str | int, role: str) -> User:
    _check_role(role)
    with store.tx(immediate=True):
        user = get_user(store, ref)
        if role != "admin":
            _guard_last_admin(store, user)
        store.db.execute("UPDATE users SET role=? WHERE id=?", (role, user.id))
    return get_user(store, user.id)


def set_disabled(store: Store, ref: str | int, disabled: bool) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        if disabled:
            _guard_last_admin(store, user)
        store.db.execute("UPDATE users SET disabled=? WHERE id=?", (int(disabled), user.id))
    return get_user(store, user.id)


def delete_user(store: Store, ref: str | int) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        _guard_last_admin(store, user)
        store.db.execute("DELETE FROM users WHERE id=?", (user.id,))
    return user


# --- grants ------------------------------------------------------------------------------


def granted_kbs(store: Store, user_id: int, role: str) -> list[str]:
    """Names of the KBs a user may read: every KB for an admin, else the granted ones."""
    if role == "admin":
        return [r[0] for r in store.db.execute("SELECT name FROM kbs ORDER BY name")]
    return [r[0] for r in store.db.execute(
        "SELECT k.name FROM grants g JOIN kbs k ON k.id=g.kb_id WHERE g.user_id=? ORDER BY k.name",
        (user_id,))]


def grant(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        ids = [store.get_kb(k).id for k in kbs]
        store.db.executemany("INSERT OR IGNORE INTO grants(user_id, kb_id) VALUES (?, ?)",
                             [(user.id, i) for i in ids])
    return get_user(store, user.id)


def revoke(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        ids = [store.get_kb(k).id for k in kbs]
        store.db.executemany("DELETE FROM grants WHERE user_id=? AND kb_id=?",
                             [(user.id, i) for i in ids])
    return get_user(store, user.id)


def set_grants(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        ids = [store.get_kb(k).id for k in kbs]
        store.db.execute("DELETE FROM grants WHERE user_id=?", (user.id,))
        store.db.executemany("INSERT OR IGNORE INTO grants(user_id, kb_id) VALUES (?, ?)",
                             [(user.id, i) for i in ids])
    return get_user(store, user.id)


# --- keys --------------------------------------------------------------------------------


def _hash(prefix: str, secret: str) -> str:
    return hashlib.sha256(f"{prefix}:{secret}".encode()).hexdigest()


def _key_from_row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(id=row["id"], prefix=row["prefix"], user_id=row["user_id"], user=row["user"],
                  name=row["name"], created_at=row["created_at"],
                  last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])


_KEY_SELECT = "SELECT k.*, u.name AS user FROM api_keys k JOIN users u ON u.id=k.user_id "


def create_key(store: Store, ref: str | int, name: str = "") -> tuple[str, ApiKey]:
    """A new key for a user: (the key itself — shown once, never stored —, its record)."""
    name = name.strip()[:100]
    with store.tx(immediate=True):
        user = get_user(store, ref)
        while True:
            prefix = secrets.token_hex(4)
            if not store.db.execute("SELECT 1 FROM api_keys WHERE prefix=?", (prefix,)).fetchone():
                break
        secret = secrets.token_urlsafe(32)
        cur = store.db.execute(
            "INSERT INTO api_keys(user_id, prefix, hash, name, created_at) VALUES (?,?,?,?,?)",
            (user.id, prefix, _hash(prefix, secret), name, now_iso()),
        )
        key_id = int(cur.lastrowid or 0)
    row = store.db.execute(_KEY_SELECT + "WHERE k.id=?", (key_id,)).fetchone()
    return f"{KEY_PREFIX}_{prefix}_{secret}", _key_from_row(row)


def list_keys(store: Store, user: str | int | None = None) -> list[ApiKey]:
    if user is None:
        rows = store.db.execute(_KEY_SELECT + "ORDER BY k.created_at, k.id").fetchall()
    else:
        uid = get_user(store, user).id
        rows = store.db.execute(_KEY_SELECT + "WHERE k.user_id=? ORDER BY k.id", (uid,)).fetchall()
    return [_key_from_row(r) for r in rows]


def get_key(store: Store, ref: str | int) -> ApiKey:
    """A key by id (int) or prefix (str)."""
    col = "k.id" if isinstance(ref, int) else "k.prefix"
    row = store.db.execute(_KEY_SELECT + f"WHERE {col}=?", (ref,)).fetchone()
    if row is None:
        raise AccountError("key_not_found", f"找不到金鑰「{ref}」", 404)
    return _key_from_row(row)


def revoke_key(store: Store, ref: str | int) -> ApiKey:
    key = get_key(store, ref)
    store.db.execute("UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                     (now_iso(), key.id))
    return get_key(store, key.id)


def parse_key(raw: str) -> tuple[str, str] | None:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(store: Store, raw: str) -> tuple[User, ApiKey] | None:
    """The user and key behind ``raw``, or ``None`` (unknown, revoked, user disabled)."""
    parsed = parse_key(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    row = store.db.execute(
        "SELECT k.*, u.name AS user, u.role, u.disabled, u.created_at AS user_created "
        "FROM api_keys k JOIN users u ON u.id=k.user_id WHERE k.prefix=?", (prefix,)
    ).fetchone()
    if row is None or not hmac.compare_digest(row["hash"], _hash(prefix, secret)):
        return None
    if row["revoked_at"] is not None or row["disabled"]:
        return None
    user = User(id=row["user_id"], name=row["user"], role=row["role"],
                created_at=row["user_created"], disabled=False)
    return user, _key_from_row(row)


def touch_key(store: Store, key_id: int) -> None:
    store.db.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (now_iso(), key_id))
