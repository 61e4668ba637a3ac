"""Administration (admin role only): users, grants, API keys, audit log, feedback."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from zhiku.engine import Zhiku
from zhiku.server import accounts, audit
from zhiku.server.access import redact_turns
from zhiku.server.deps import Admin, State
from zhiku.server.errors import ApiError
from zhiku.server.schemas import (
    ERRORS,
    GrantsUpdate,
    KeyCreate,
    KeyCreated,
    KeyList,
    UserCreate,
    UserInfo,
    UserList,
    UserUpdate,
)
from zhiku.storage.conversations import SqlConversations

router = APIRouter(prefix="/api/v1", tags=["administration"], responses=ERRORS)


@router.get("/users", response_model=UserList, summary="All users with roles and grants")
def list_users(p: Admin, state: State) -> dict[str, Any]:
    return {"users": [u.to_dict() for u in accounts.list_users(state.store)]}


@router.post("/users", response_model=UserInfo, status_code=201, summary="Create a user")
def create_user(body: UserCreate, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    for name in body.kbs:
        if store.find_kb(name) is None:
            raise ApiError(404, "kb_not_found", kb=name)
    user = accounts.create_user(store, body.name, body.role, body.kbs)
    state.record(
        p.actor, "user_create", target=user.name, detail={"role": user.role, "kbs": user.kbs}
    )
    return user.to_dict()


@router.patch("/users/{user_id}", response_model=UserInfo, summary="Change role or disable")
def update_user(user_id: int, body: UserUpdate, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    user = accounts.get_user(store, user_id)
    if body.role is not None:
        user = accounts.set_role(store, user_id, body.role)
    if body.disabled is not None:
        user = accounts.set_disabled(store, user_id, body.disabled)
    state.record(
        p.actor, "user_update", target=user.name, detail=body.model_dump(exclude_none=True)
    )
    return user.to_dict()


@router.delete("/users/{user_id}", summary="Delete a user and their keys")
def delete_user(user_id: int, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    user = accounts.delete_user(store, user_id)
    state.record(p.actor, "user_delete", target=user.name)
    return {"deleted": user.name}


@router.put(
    "/users/{user_id}/grants", response_model=UserInfo, summary="Replace the KBs a user may use"
)
def set_grants(user_id: int, body: GrantsUpdate, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    for name in body.kbs:
        if store.find_kb(name) is None:
            raise ApiError(404, "kb_not_found", kb=name)
    user = accounts.set_grants(store, user_id, body.kbs)
    state.record(p.actor, "grants_set", target=user.name, detail={"kbs": body.kbs})
    return user.to_dict()


@router.get("/keys", response_model=KeyList, summary="All API keys (never the keys themselves)")
def list_keys(p: Admin, state: State) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in accounts.list_keys(state.store)]}


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Create a key for a user; the key is in this response only",
)
def create_key(body: KeyCreate, p: Admin, state: State) -> JSONResponse:
    store = state.store
    raw, key = accounts.create_key(store, body.user, body.name)
    state.record(
        p.actor, "key_create", target=key.prefix, detail={"user": key.user, "name": key.name}
    )
    return JSONResponse(
        {**key.to_dict(), "key": raw}, status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.delete("/keys/{key_id}", summary="Revoke a key")
def revoke_key(key_id: int, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    key = accounts.revoke_key(store, key_id)
    state.record(p.actor, "key_revoke", target=key.prefix, detail={"user": key.user})
    return key.to_dict()


@router.get("/audit", summary="Audit log entries (JSON, or a JSONL / CSV export)")
def get_audit(
    p: Admin,
    state: State,
    since: str | None = None,
    until: str | None = None,
    user: str | None = None,
    kb: str | None = None,
    action: str | None = None,
    limit: int = 200,
    format: Literal["json", "jsonl", "csv"] = "json",
) -> Response:
    rows = audit.query(
        state.store,
        since=since,
        until=until,
        user=user,
        kb=kb,
        action=action,
        limit=max(1, min(limit, 100_000)),
        newest_first=format == "json",
    )
    if format == "json":
        return JSONResponse({"entries": list(rows)})
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return Response(
        audit.render(rows, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="zhiku-audit.{format}"'},
    )


@router.get("/feedback", summary="Answers with feedback (to review answer quality)")
def list_feedback(
    p: Admin,
    state: State,
    kb: str | None = None,
    rating: Literal["up", "down"] | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    rows = SqlConversations(state.store.database).feedback(
        kb=kb or None,
        rating=None if not rating else (1 if rating == "up" else -1),
        limit=max(1, min(limit, 10_000)),
    )
    out = []
    kbs: dict[str, Any] = {}
    # The admin's own access scope: citations of documents they may not see redacted.
    shown = redact_turns(state.store, p, [r.stored for r in rows])
    for r, stored in zip(rows, shown, strict=True):
        kbo = kbs.get(r.kb) or kbs.setdefault(r.kb, state.store.get_kb(r.kb))
        # As the audit log shows questions; answers and comments under the KB's policy.
        out.append(
            {
                "answer_id": r.answer_id,
                "kb": r.kb,
                "user": r.user,
                "rating": "up" if r.rating > 0 else "down",
                "comment": audit.mask_question(r.comment, kbo) if r.comment else None,
                "question": audit.mask_question(r.question, kbo),
                "answer": Zhiku.redact_json(kbo, stored["answer"]),
                "created_at": r.created_at,
            }
        )
    return {"feedback": out}
