"""Sign-in: password/LDAP sign-in, OpenID Connect, sign-out, and (admin) passwords,
sessions, groups and group mappings. See :mod:`zhiku.server.signin.core`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from zhiku.server import accounts
from zhiku.server.audit import Actor
from zhiku.server.deps import Admin, Caller, State
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS
from zhiku.server.signin import core
from zhiku.server.signin.core import SignIn
from zhiku.server.signin.oidc import OidcError
from zhiku.storage.groups import LOCAL

router = APIRouter(prefix="/api/v1", tags=["sign-in"], responses=ERRORS)


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(max_length=core.MAX_PASSWORD_CHARS + 1)


class PasswordChange(BaseModel):
    current: str = Field(max_length=core.MAX_PASSWORD_CHARS + 1)
    new: str = Field(max_length=core.MAX_PASSWORD_CHARS + 1)


class PasswordSet(BaseModel):
    password: str = Field(max_length=core.MAX_PASSWORD_CHARS + 1)


class GroupBody(BaseModel):
    role: str | None = Field(default=None, description="role the group confers, or none")
    kbs: list[str] = Field(default_factory=list, description="KBs the group grants")
    description: str = Field(default="", max_length=500)


class MembersBody(BaseModel):
    groups: list[str] = Field(max_length=200)


def signin_of(request: Request) -> SignIn:
    found = getattr(request.app.state, "signin", None)
    if found is None:
        found = request.app.state.signin = SignIn()
    return found


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _signed_in(
    request: Request, state: State, user: accounts.User, method: str, response: Response
) -> dict[str, Any]:
    signin = signin_of(request)
    token, csrf = core.start_session(state, user, method, _ip(request))
    kw = core.cookie_kwargs(signin)
    response.set_cookie(signin.cookie_name, token, httponly=True, **kw)
    response.set_cookie(signin.csrf_cookie_name, csrf, httponly=False, **kw)
    eff = core.effective(state.store, user.id, user.role)
    state.record(
        Actor(user.name, method, _ip(request)),
        "sign_in",
        target=user.name,
        detail={"method": method},
    )
    return {
        "user": user.name,
        "role": eff.role,
        "kbs": list(eff.kbs),
        "groups": sorted(eff.groups),
        "method": method,
        "csrf_token": csrf,
    }


def _clear(request: Request, response: Response) -> None:
    signin = signin_of(request)
    kw = core.cookie_kwargs(signin)
    response.delete_cookie(signin.cookie_name, httponly=True, **kw)
    response.delete_cookie(signin.csrf_cookie_name, **kw)


@router.get("/auth/config", summary="How people may sign in here (no key needed)")
def auth_config(request: Request) -> dict[str, Any]:
    s = signin_of(request).settings
    return {
        "password": True,
        "ldap": s.ldap_enabled,
        "sso": s.oidc_enabled,
        "csrf_header": "X-CSRF-Token",
    }


@router.post("/auth/login", summary="Sign in with a username and password (local or LDAP)")
def login(body: LoginBody, request: Request, response: Response, state: State) -> dict[str, Any]:
    user, method = core.password_sign_in(
        state, signin_of(request), body.username, body.password, _ip(request)
    )
    return _signed_in(request, state, user, method, response)


@router.get("/auth/me", summary="Who is calling: user, role, KBs, groups")
def me(p: Caller) -> dict[str, Any]:
    return {
        "user": p.user,
        "role": p.role,
        "kbs": list(p.kbs),
        "groups": sorted(core.caller_groups(p)),
        "via": "session" if p.session_id is not None else "key",
    }


@router.post("/auth/logout", summary="Sign out: end this session")
def logout(request: Request, p: Caller, state: State) -> JSONResponse:
    if p.session_id is not None:
        core.end_session(state, p.session_id)
    response = JSONResponse({"signed_out": True})
    _clear(request, response)
    return response


@router.post("/auth/logout-all", summary="Sign out everywhere: end all of my sessions")
def logout_all(request: Request, p: Caller, state: State) -> JSONResponse:
    ended = core.end_all_sessions(state, p.user_id)
    state.record(p.actor, "sign_out_everywhere", target=p.user, detail={"sessions": ended})
    response = JSONResponse({"sessions_ended": ended})
    _clear(request, response)
    return response


@router.put("/auth/password", summary="Change my password (ends all my sessions: sign in again)")
def change_password(
    body: PasswordChange, request: Request, p: Caller, state: State
) -> dict[str, Any]:
    if not core.verify_password(core.repo(state.store).password_hash(p.user_id), body.current):
        raise ApiError(401, "invalid_credentials")
    hashed = core.hash_password(body.new, signin_of(request).settings)
    with state.write() as store:
        core.store_password(store, p.user_id, hashed)
    state.record(p.actor, "password_change", target=p.user)
    return {"changed": True}


@router.get("/auth/oidc/start", summary="Start OpenID Connect sign-in (redirects)")
def oidc_start(
    request: Request, state: State, next: Annotated[str | None, Query(max_length=500)] = None
) -> RedirectResponse:
    client = signin_of(request).oidc
    if client is None:
        raise ApiError(404, "sso_not_configured")
    try:
        client.metadata()  # discovery over the network, before taking the write lock
        with state.write() as store:
            url = client.begin(core.repo(store), next)
    except OidcError as exc:
        raise ApiError(503, "oidc_failed", reason=exc.reason) from exc
    return RedirectResponse(url, status_code=302)


@router.get("/auth/oidc/callback", summary="OpenID Connect redirect target")
def oidc_callback(
    request: Request,
    state: State,
    code: Annotated[str, Query(max_length=4096)] = "",
    state_: Annotated[str, Query(alias="state", max_length=200)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    signin = signin_of(request)
    client = signin.oidc
    if client is None:
        raise ApiError(404, "sso_not_configured")
    try:
        if error:
            raise ApiError(400, "oidc_failed", reason=error)
        with state.write() as store:
            pending = core.repo(store).take_pending(state_)
        try:
            found = client.finish(pending, code)
        except OidcError as exc:
            state.record(
                Actor(None, None, _ip(request)),
                "sign_in_failed",
                detail={"method": "oidc", "reason": exc.reason},
            )
            raise ApiError(400, "oidc_failed", reason=exc.reason) from exc
        user = core.provision_external(
            state,
            signin.settings,
            "oidc:" + found.issuer,
            found.subject,
            found.username,
            found.groups,
        )
        if user.disabled:
            raise ApiError(403, "account_disabled")
    except ApiError as exc:
        # A browser lands on the sign-in page, which says what went wrong; programs get JSON.
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/?signin_error={exc.code}", status_code=303)
        raise
    response = RedirectResponse(found.next_url, status_code=303)
    _signed_in(request, state, user, "oidc", response)
    return response


# --- administration -------------------------------------------------------------------


@router.put("/users/{user_id}/password", summary="Set a user's password (admin)")
def set_user_password(
    user_id: int, body: PasswordSet, request: Request, p: Admin, state: State
) -> dict[str, Any]:
    accounts.get_user(state.store, user_id)  # 404 before the slow hash
    hashed = core.hash_password(body.password, signin_of(request).settings)
    with state.write() as store:
        user = core.store_password(store, user_id, hashed)
    state.record(p.actor, "password_set", target=user.name)
    return {"user": user.name, "password": True}


@router.post("/users/{user_id}/sessions/revoke", summary="Sign a user out everywhere (admin)")
def revoke_sessions(user_id: int, p: Admin, state: State) -> dict[str, Any]:
    user = accounts.get_user(state.store, user_id)
    ended = core.end_all_sessions(state, user.id)
    state.record(p.actor, "sessions_revoke", target=user.name, detail={"sessions": ended})
    return {"user": user.name, "sessions_ended": ended}


@router.get("/groups", summary="Groups, their members and mappings (admin)")
def list_groups(p: Admin, state: State) -> dict[str, Any]:
    return {"groups": [g.to_dict() for g in core.groups(state.store).list_groups()]}


@router.put("/groups/{name}", summary="Create or change a group's mapping (admin)")
def put_group(name: str, body: GroupBody, p: Admin, state: State) -> dict[str, Any]:
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiError(400, "invalid_group")
    if body.role is not None and body.role not in accounts.ROLES:
        raise ApiError(400, "invalid_role_name", role=body.role)
    for kb in body.kbs:
        if state.store.find_kb(kb) is None:
            raise ApiError(404, "kb_not_found", kb=kb)
    with state.write() as store:
        group = core.groups(store).save_group(name, body.role, body.kbs, body.description)
    state.record(
        p.actor, "group_set", target=name, detail={"role": body.role, "kbs": sorted(body.kbs)}
    )
    return group.to_dict()


@router.delete("/groups/{name}", summary="Delete a group (admin)")
def delete_group(name: str, p: Admin, state: State) -> dict[str, Any]:
    with state.write() as store:
        if not core.groups(store).delete_group(name):
            raise ApiError(404, "group_not_found", name=name)
    state.record(p.actor, "group_delete", target=name)
    return {"deleted": name}


@router.put("/users/{user_id}/groups", summary="Replace a user's local groups (admin)")
def set_user_groups(user_id: int, body: MembersBody, p: Admin, state: State) -> dict[str, Any]:
    user = accounts.get_user(state.store, user_id)
    names = sorted({g.strip() for g in body.groups if g.strip()})
    with state.write() as store:
        core.groups(store).sync(user.id, names, LOCAL)
    eff = core.effective(state.store, user.id, user.role)
    state.record(p.actor, "user_groups_set", target=user.name, detail={"groups": names})
    return {"user": user.name, "groups": sorted(eff.groups), "role": eff.role, "kbs": list(eff.kbs)}
