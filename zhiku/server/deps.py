"""Request-scoped pieces: the server state, the caller (:class:`Principal`) and the ACL.

Access control is decided *before* the engine runs and then enforced inside the
queries: a request names knowledge bases; :func:`readable_kb` turns a name into a KB
only when the caller holds a grant on it, and the engine is called with exactly those
names, so the per-KB index and ``Store.hits_for`` (``AND d.kb_id IN (...)``) never see
another KB. A KB the caller may not read answers exactly like one that does not exist
(404, same code and message), so names of other departments' KBs cannot be probed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zhiku.access import AccessScope, caller_scope
from zhiku.filters import Filter
from zhiku.server import accounts, audit
from zhiku.server.audit import Actor
from zhiku.server.errors import ApiError, not_found
from zhiku.server.ids import IdCodec
from zhiku.server.jobs import IngestWorkers
from zhiku.server.observability import Metrics
from zhiku.server.pool import EnginePool
from zhiku.server.ratelimit import RateLimiter
from zhiku.server.settings import ServerSettings
from zhiku.server.signin import core as signin_core
from zhiku.server.sql import placeholders
from zhiku.server.writes import OpenGate, WriteGate
from zhiku.storage.db import Database
from zhiku.store import KnowledgeBase, Store

__all__ = ["placeholders"]  # re-exported: the routes import it from here


class LocalStores:
    """One :class:`Store` per thread, for the server's own tables: a connection to the
    configured database (a SQLite file, or a ``postgresql://`` URL shared by every node)."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.path)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for s in stores:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing at shutdown, nothing to do
                pass


@dataclass
class ServerState:
    settings: ServerSettings
    stores: LocalStores
    pool: EnginePool
    metrics: Metrics
    limiter: RateLimiter
    auth_failures: RateLimiter
    ids: IdCodec
    gate: WriteGate | OpenGate
    worker: IngestWorkers | None = None
    # The calling thread's connection to a database shared by several nodes (PostgreSQL);
    # None on the embedded SQLite file. Rate limits and metrics are counted there.
    shared: Callable[[], Database] | None = None
    ready: bool = False
    _touched: dict[int, float] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.stores.get()

    @contextmanager
    def write(self) -> Iterator[Store]:
        """A write transaction on this thread's store, one writer at a time (see writes)."""
        store = self.store
        with self.gate, store.tx(immediate=True):
            yield store

    def record(self, actor: Actor, action: str, **kw: Any) -> None:
        """Append an audit entry in its own (gated) transaction."""
        with self.write() as store:
            audit.record(store, actor, action, **kw)

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake.set()


def get_state(request: Request) -> ServerState:
    return request.app.state.zhiku


State = Annotated[ServerState, Depends(get_state)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user acting through one API key."""

    user_id: int
    user: str
    role: str
    key_id: int
    key_prefix: str
    kbs: tuple[str, ...]  # names of the KBs this user may read
    ip: str | None = None
    groups: frozenset[str] = frozenset()  # read through zhiku.server.signin.caller_groups
    session_id: int | None = None  # signed in with a session cookie (no key)
    # Groups and clearance (zhiku.access); None: public documents only (fail closed).
    scope: AccessScope | None = None

    def where(self, flt: Filter | None = None) -> Filter:
        """``flt`` restricted to the documents this caller may see (zhiku.access)."""
        scope = self.scope or AccessScope(self.user, frozenset(), 0)
        return scope.restrict(flt)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_edit(self) -> bool:
        return self.role in ("admin", "editor")

    @property
    def actor(self) -> Actor:
        return Actor(self.user, self.key_prefix, self.ip)


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer zk_…`")


def principal(
    request: Request,
    state: State,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request's key, apply the rate limit, load the user's grants."""
    ip = request.client.host if request.client else None
    if creds is None or creds.scheme.lower() != "bearer":
        from zhiku.server.routes.signin import signin_of

        signin = signin_of(request)
        token = request.cookies.get(signin.cookie_name)
        if token:
            return _session_principal(request, state, signin, token, ip)
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    store = state.store
    found = accounts.authenticate(store, creds.credentials)
    if found is None:
        if state.auth_failures.hit(f"ip:{ip}"):
            raise ApiError(429, "too_many_auth_failures", headers={"Retry-After": "60"})
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    user, key = found
    wait = state.limiter.hit(key.prefix)
    if wait:
        retry = max(1, int(wait + 0.999))
        raise ApiError(429, "rate_limited", headers={"Retry-After": str(retry)}, retry=retry)
    now = time.monotonic()
    if now - state._touched.get(key.id, -1e9) > 60:  # last_used_at, at most once a minute
        state._touched[key.id] = now
        try:
            accounts.touch_key(store, key.id)
        except Exception:  # noqa: BLE001 - a busy database must not fail the request
            pass
    request.state.user = user.name
    request.state.key = key.prefix
    eff = signin_core.effective(store, user.id, user.role)
    return Principal(
        user.id,
        user.name,
        eff.role,
        key.id,
        key.prefix,
        eff.kbs,
        ip,
        eff.groups,
        scope=caller_scope(store.database, user.name, eff.groups),
    )


def _session_principal(
    request: Request, state: ServerState, signin: signin_core.SignIn, token: str, ip: str | None
) -> Principal:
    found = signin_core.session_caller(
        state, signin, token, request.method, request.headers.get(signin_core.CSRF_HEADER)
    )
    user = found.user
    wait = state.limiter.hit(f"session:{user.id}")
    if wait:
        retry = max(1, int(wait + 0.999))
        raise ApiError(429, "rate_limited", headers={"Retry-After": str(retry)}, retry=retry)
    request.state.user = user.name
    request.state.key = found.session.method
    eff = signin_core.effective(state.store, user.id, user.role)
    return Principal(
        user.id,
        user.name,
        eff.role,
        0,
        found.session.method,
        eff.kbs,
        ip,
        eff.groups,
        found.session.id,
        caller_scope(state.store.database, user.name, eff.groups),
    )


Caller = Annotated[Principal, Depends(principal)]


def admin(p: Caller) -> Principal:
    if not p.is_admin:
        raise ApiError(403, "admin_only")
    return p


Admin = Annotated[Principal, Depends(admin)]


def readable_kb(store: Store, p: Principal, name: str) -> KnowledgeBase:
    """The KB ``name`` if ``p`` may read it; otherwise the same 404 as a missing KB."""
    if name not in p.kbs:
        raise not_found("kb_not_found", kb=name)
    kb = store.find_kb(name)
    if kb is None:
        raise not_found("kb_not_found", kb=name)
    return kb


def editable_kb(store: Store, p: Principal, name: str) -> KnowledgeBase:
    """Readable first (404 otherwise), then the role must allow document changes (403)."""
    kb = readable_kb(store, p, name)
    if not p.can_edit:
        raise ApiError(403, "forbidden")
    return kb


def readable_kb_ids(store: Store, p: Principal) -> list[int]:
    if not p.kbs:
        return []
    return store.kb_ids(p.kbs)
