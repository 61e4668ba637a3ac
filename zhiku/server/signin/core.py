"""Passwords, sessions, lockout and groups: how a person becomes a caller.

- Passwords are argon2id hashes (``argon2-cffi``'s defaults, re-hashed on sign-in when
  those change). An unknown username costs the same hash as a wrong password.
- A session is a random token in an HttpOnly cookie; the database keeps its SHA-256, the
  user, a CSRF token and two times, so any node can check it and sign-out is immediate.
  It ends after ``idle_timeout_s`` unused or ``absolute_timeout_s`` after sign-in.
- CSRF: a request authenticated by the cookie that changes something (any method but
  GET/HEAD/OPTIONS) must carry ``X-CSRF-Token`` equal to the session's token, which the
  page reads from the (non-HttpOnly) CSRF cookie or the sign-in answer. A foreign site can
  make the browser send the cookie but cannot read the token. Bearer keys need no token.
- Lockout: failures are recorded per account and per address in the database; too many
  within the window refuse even a right password until the oldest failure leaves it.
- Groups map to a role and KB grants (:class:`~zhiku.storage.groups.Group`); a
  directory's groups replace, at each sign-in, the memberships that came from it. The caller's
  role is the highest of the user's own role and their groups' roles; their KBs are the
  user's grants plus their groups' KBs. :func:`caller_groups` is the one place the
  caller's groups are read from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from zhiku.server import accounts
from zhiku.server.errors import ApiError
from zhiku.server.signin.config import AuthSettings
from zhiku.storage.auth import SessionRecord, SqlAuthRepository
from zhiku.storage.groups import GroupRepository
from zhiku.store import Store

if TYPE_CHECKING:
    from zhiku.server.deps import ServerState
    from zhiku.server.signin.ldap import LdapAuthenticator
    from zhiku.server.signin.oidc import OidcClient

ROLE_RANK = {"reader": 1, "agent": 1, "editor": 2, "admin": 3}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
_hasher = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
# Each hash takes 64 MiB and most of a core for a while: at most two at once per process,
# so a burst of sign-ins queues instead of exhausting memory and the request threads' CPU.
_hashing = threading.BoundedSemaphore(2)
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
MAX_PASSWORD_CHARS = 1024


class HasGroups(Protocol):
    @property
    def groups(self) -> frozenset[str]: ...


def caller_groups(principal: HasGroups) -> set[str]:
    """The names of the groups the caller belongs to (directory groups included): what
    document access is decided by."""
    return set(principal.groups)


class SignIn:
    """The sign-in configuration of one server process, with its LDAP and OIDC clients."""

    def __init__(self, settings: AuthSettings | None = None) -> None:
        self.settings = settings or AuthSettings.from_env()
        self._ldap: LdapAuthenticator | None = None
        self._oidc: OidcClient | None = None

    @property
    def ldap(self) -> LdapAuthenticator | None:
        if self.settings.ldap_enabled and self._ldap is None:
            from zhiku.server.signin.ldap import LdapAuthenticator

            self._ldap = LdapAuthenticator(self.settings)
        return self._ldap

    @property
    def oidc(self) -> OidcClient | None:
        if self.settings.oidc_enabled and self._oidc is None:
            from zhiku.server.signin.oidc import OidcClient

            self._oidc = OidcClient(self.settings)
        return self._oidc

    @property
    def cookie_name(self) -> str:
        # ``__Host-``: the browser accepts it only over HTTPS, for this host, path /.
        return "__Host-zhiku_session" if self.settings.cookie_secure else "zhiku_session"

    @property
    def csrf_cookie_name(self) -> str:
        return "__Host-zhiku_csrf" if self.settings.cookie_secure else "zhiku_csrf"


def repo(store: Store) -> SqlAuthRepository:
    return SqlAuthRepository(store.database)


def groups(store: Store) -> GroupRepository:
    """Groups, their mappings and membership (every source: one table)."""
    return GroupRepository(store.database)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip()).casefold()


# --- passwords ------------------------------------------------------------------------


def hash_password(password: str, settings: AuthSettings) -> str:
    """The argon2id hash of an acceptable new password (400 when too short or long).
    Slow on purpose: call it before taking the write lock."""
    if len(password) < settings.password_min_length:
        raise ApiError(400, "password_too_short", limit=settings.password_min_length)
    if len(password) > MAX_PASSWORD_CHARS:
        raise ApiError(400, "password_too_long", limit=MAX_PASSWORD_CHARS)
    with _hashing:
        return _hasher.hash(password)


def store_password(store: Store, ref: str | int, hashed: str) -> accounts.User:
    """Give a user the password ``hashed``; their sessions end."""
    user = accounts.get_user(store, ref)
    r = repo(store)
    with store.database.tx(immediate=True):
        r.set_password_hash(user.id, hashed)
        r.delete_user_sessions(user.id)
    return user


def set_password(store: Store, ref: str | int, password: str, settings: AuthSettings) -> None:
    """Give a user a (new) password; all their sessions end."""
    store_password(store, ref, hash_password(password, settings))


def verify_password(hashed: str | None, password: str) -> bool:
    """Whether ``password`` matches ``hashed``; with no hash, the same work and ``False``."""
    try:
        with _hashing:
            return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


# --- effective role, grants and groups -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effective:
    role: str
    kbs: tuple[str, ...]
    groups: frozenset[str]


def effective(store: Store, user_id: int, base_role: str) -> Effective:
    """The caller's role, readable KBs and groups: the user's own plus their groups'."""
    groups = GroupRepository(store.database).user_groups(user_id)
    role = base_role
    for g in groups:
        if g.role and ROLE_RANK.get(g.role, 0) > ROLE_RANK.get(role, 0):
            role = g.role
    kbs = set(accounts.granted_kbs(store, user_id, role))
    if role != "admin":
        existing = {k.name for k in store.list_kbs()}
        kbs |= {k for g in groups for k in g.kbs if k in existing}
    return Effective(role, tuple(sorted(kbs)), frozenset(g.name for g in groups))


# --- lockout --------------------------------------------------------------------------


def _check_lockout(
    store: Store, settings: AuthSettings, username: str, ip: str | None, now: float
) -> None:
    r = repo(store)
    since = now - settings.lockout_window_s
    for scope, limit, code in (
        (f"ip:{ip}", settings.lockout_ip, "too_many_auth_failures"),
        (f"user:{_fold(username)}", settings.lockout_user, "account_locked"),
    ):
        count, oldest = r.failures_since(scope, since)
        if count >= limit:
            retry = max(1, int((oldest or now) + settings.lockout_window_s - now + 0.999))
            raise ApiError(429, code, headers={"Retry-After": str(retry)}, retry=retry)


def _fail(state: ServerState, username: str, ip: str | None, now: float) -> ApiError:
    with state.write() as store:
        repo(store).add_failure([f"user:{_fold(username)}", f"ip:{ip}"], now)
    return ApiError(401, "invalid_credentials")


# --- sign-in --------------------------------------------------------------------------


def password_sign_in(
    state: ServerState, signin: SignIn, username: str, password: str, ip: str | None
) -> tuple[accounts.User, str]:
    """The user behind ``username``/``password`` and how they were checked (``password``
    or ``ldap``); raises :class:`ApiError` (401 wrong, 403 disabled, 429 locked, 503
    directory down)."""
    from zhiku.server.signin.ldap import LdapDisabled, LdapUnavailable

    now = time.time()
    store = state.store
    _check_lockout(store, signin.settings, username, ip, now)
    if len(password) > MAX_PASSWORD_CHARS:
        raise _fail(state, username, ip, now)
    try:
        user: accounts.User | None = accounts.get_user(store, username.strip())
    except accounts.AccountError:
        user = None
    hashed = repo(store).password_hash(user.id) if user else None
    if hashed is not None or signin.ldap is None:
        if not verify_password(hashed, password):
            raise _fail(state, username, ip, now)
        assert user is not None
        if _hasher.check_needs_rehash(hashed or ""):
            with _hashing:
                rehashed = _hasher.hash(password)
            with state.write() as s:
                repo(s).set_password_hash(user.id, rehashed)
        method = "password"
    else:
        try:
            found = signin.ldap.authenticate(username.strip(), password)
        except LdapUnavailable as exc:
            raise ApiError(503, "ldap_unavailable", detail=str(exc)) from exc
        except LdapDisabled as exc:
            raise ApiError(403, "account_disabled") from exc
        if found is None:
            raise _fail(state, username, ip, now)
        user = provision_external(
            state, signin.settings, "ldap", found.dn, found.username, found.groups
        )
        method = "ldap"
    if user.disabled:
        raise ApiError(403, "account_disabled")
    with state.write() as s:
        repo(s).clear_failures(f"user:{_fold(username)}")
    return user, method


def provision_external(
    state: ServerState,
    settings: AuthSettings,
    provider: str,
    subject: str,
    username: str,
    groups: Iterable[str],
) -> accounts.User:
    """The local user for an external identity, created on first sign-in; their groups
    from ``provider`` replaced by ``groups``. Refused when no group maps to a role (and
    no default role is set) or the name belongs to another local account."""
    groups = sorted(set(groups))
    with state.write() as store:
        r = repo(store)
        uid = r.identity_user(provider, subject)
        if uid is None:
            try:
                existing = accounts.get_user(store, username)
            except accounts.AccountError:
                existing = None
            if existing is not None:
                if provider not in r.user_providers(existing.id):
                    raise ApiError(409, "sso_account_conflict", name=username)
                uid = existing.id
            else:
                uid = accounts.create_user(store, username, "reader").id
            r.link_identity(provider, subject, uid)
        g = GroupRepository(store.database)
        g.sync(uid, groups, provider)
        user = accounts.get_user(store, uid)
        mapped = [x for x in g.user_groups(uid) if x.role]
        if not mapped and not settings.external_default_role:
            raise ApiError(403, "no_mapped_group")
        if not mapped and settings.external_default_role != user.role:
            user = accounts.set_role(store, uid, settings.external_default_role)
    return user


# --- sessions -------------------------------------------------------------------------


def start_session(
    state: ServerState, user: accounts.User, method: str, ip: str | None
) -> tuple[str, str]:
    """A new session for ``user``: (the cookie's token, the CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = time.time()
    with state.write() as store:
        r = repo(store)
        r.create_session(_token_hash(token), csrf, user.id, method, ip, now)
    return token, csrf


@dataclass(frozen=True, slots=True)
class SessionCaller:
    user: accounts.User
    session: SessionRecord


def session_caller(
    state: ServerState, signin: SignIn, token: str, method: str, csrf_header: str | None
) -> SessionCaller:
    """The user of the session cookie ``token``; raises 401 when it is unknown, expired or
    the user disabled, 403 ``csrf_failed`` for an unsafe method without the right token."""
    s = signin.settings
    store = state.store
    r = repo(store)
    rec = r.session(_token_hash(token))
    if rec is None:
        raise ApiError(401, "unauthorized")
    now = time.time()
    if now - rec.created_ts > s.absolute_timeout_s or now - rec.seen_ts > s.idle_timeout_s:
        with state.write() as st:
            repo(st).delete_session(rec.id)
        raise ApiError(401, "session_expired")
    if method.upper() not in SAFE_METHODS and not (
        csrf_header and hmac.compare_digest(csrf_header.encode(), rec.csrf.encode())
    ):
        raise ApiError(403, "csrf_failed")
    try:
        user = accounts.get_user(store, rec.user_id)
    except accounts.AccountError:
        raise ApiError(401, "unauthorized") from None
    if user.disabled:
        raise ApiError(401, "unauthorized")
    if now - rec.seen_ts > min(60.0, s.idle_timeout_s / 10):
        try:
            with state.write() as st:
                repo(st).touch_session(rec.id, now)
        except Exception:  # noqa: BLE001 - a busy database must not fail the request
            pass
    return SessionCaller(user, rec)


def end_session(state: ServerState, session_id: int) -> None:
    with state.write() as store:
        repo(store).delete_session(session_id)


def end_all_sessions(state: ServerState, user_id: int) -> int:
    with state.write() as store:
        return repo(store).delete_user_sessions(user_id)


def cookie_kwargs(signin: SignIn) -> dict[str, Any]:
    s = signin.settings
    return {"path": "/", "secure": s.cookie_secure, "samesite": s.cookie_samesite}
