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
import unicodedata
from collections.abc import Iterable

from zhiku.errors import ZhikuError
from zhiku.storage.access import AccessRepository
from zhiku.storage.accounts import ApiKey, SqlAccounts, User
from zhiku.store import Store, now_iso

ROLES: tuple[str, ...] = ("admin", "editor", "reader")
KEY_PREFIX = "zk"


def repo(store: Store) -> SqlAccounts:
    """The accounts repository of ``store``'s database (SQLite or PostgreSQL)."""
    return SqlAccounts(store.database)


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


def get_user(store: Store, ref: str | int) -> User:
    """A user by id (int) or name (str)."""
    user = repo(store).user(ref)
    if user is None:
        raise UserNotFound(ref)
    return user


def user_exists(store: Store, name: str) -> bool:
    return repo(store).user_exists(name)


def list_users(store: Store) -> list[User]:
    return repo(store).users()


def count_admins(store: Store) -> int:
    return repo(store).count_admins()


def create_user(store: Store, name: str, role: str, kbs: Iterable[str] = ()) -> User:
    name = _check_name(name)
    _check_role(role)
    kb_ids = [store.get_kb(k).id for k in kbs]
    r = repo(store)
    with store.tx(immediate=True):
        uid = r.insert_user(name, role, now_iso())
        if uid is None:
            raise AccountError("user_exists", f"使用者「{name}」已存在", 409)
        r.add_grants(uid, kb_ids)
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
        repo(store).set_role(user.id, role)
    return get_user(store, user.id)


def set_disabled(store: Store, ref: str | int, disabled: bool) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        if disabled:
            _guard_last_admin(store, user)
        repo(store).set_disabled(user.id, disabled)
    return get_user(store, user.id)


def delete_user(store: Store, ref: str | int) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        _guard_last_admin(store, user)
        repo(store).delete_user(user.id)
        # Clearance is kept by name: a later account of the same name must not inherit it.
        AccessRepository(store.database).forget_user(user.name)
    return user


# --- grants ------------------------------------------------------------------------------


def granted_kbs(store: Store, user_id: int, role: str) -> list[str]:
    """Names of the KBs a user may read: every KB for an admin, else the granted ones."""
    return repo(store).granted_kbs(user_id, role)


def grant(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        repo(store).add_grants(user.id, [store.get_kb(k).id for k in kbs])
    return get_user(store, user.id)


def revoke(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        repo(store).remove_grants(user.id, [store.get_kb(k).id for k in kbs])
    return get_user(store, user.id)


def set_grants(store: Store, ref: str | int, kbs: Iterable[str]) -> User:
    with store.tx(immediate=True):
        user = get_user(store, ref)
        ids = [store.get_kb(k).id for k in kbs]
        r = repo(store)
        r.clear_grants(user.id)
        r.add_grants(user.id, ids)
    return get_user(store, user.id)


# --- keys --------------------------------------------------------------------------------


def _hash(prefix: str, secret: str) -> str:
    return hashlib.sha256(f"{prefix}:{secret}".encode()).hexdigest()


def create_key(store: Store, ref: str | int, name: str = "") -> tuple[str, ApiKey]:
    """A new key for a user: (the key itself — shown once, never stored —, its record)."""
    name = name.strip()[:100]
    r = repo(store)
    with store.tx(immediate=True):
        user = get_user(store, ref)
        key_id = None
        while key_id is None:  # a prefix already in use: draw another
            prefix = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            key_id = r.insert_key(user.id, prefix, _hash(prefix, secret), name, now_iso())
    return f"{KEY_PREFIX}_{prefix}_{secret}", get_key(store, key_id)


def list_keys(store: Store, user: str | int | None = None) -> list[ApiKey]:
    return repo(store).api_keys(None if user is None else get_user(store, user).id)


def get_key(store: Store, ref: str | int) -> ApiKey:
    """A key by id (int) or prefix (str)."""
    key = repo(store).key(ref)
    if key is None:
        raise AccountError("key_not_found", f"找不到金鑰「{ref}」", 404)
    return key


def revoke_key(store: Store, ref: str | int) -> ApiKey:
    key = get_key(store, ref)
    repo(store).revoke_key(key.id, now_iso())
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
    found = repo(store).credentials(prefix)
    if found is None or not hmac.compare_digest(found.hash, _hash(prefix, secret)):
        return None
    if found.key.revoked_at is not None or found.user_disabled:
        return None
    key = found.key
    user = User(
        id=key.user_id,
        name=key.user,
        role=found.role,
        created_at=found.user_created_at,
        disabled=False,
    )
    return user, key


def touch_key(store: Store, key_id: int) -> None:
    repo(store).touch_key(key_id, now_iso())
