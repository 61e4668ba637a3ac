"""Administration of document access and 個資法 requests (admin role only): users'
groups and clearance, data-subject find / export / erase and the request register,
retention periods and runs, and the passage access log.

Labels on documents are set like any metadata: ``meta`` at upload, a source's settings,
or ``PATCH /api/v1/kbs/{kb}/documents/{id}`` with ``access_groups`` / ``access_level``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from zhiku.access import caller_scope, scale, set_user_access
from zhiku.pii.subject import Subject, SubjectSearch, open_request, request_rows
from zhiku.retention import periods, run_retention, set_period
from zhiku.server import accounts, uploads
from zhiku.server.deps import Admin, Caller, State
from zhiku.server.schemas import ERRORS
from zhiku.storage.access import AccessRepository

router = APIRouter(prefix="/api/v1/admin", tags=["access and personal data"], responses=ERRORS)


class UserAccess(BaseModel):
    groups: list[str] | None = Field(None, description="Groups/departments (replaces them)")
    clearance: str | int | None = Field(None, description="公開, 內部, 機密, 密 or a rank")


class SubjectQuery(BaseModel):
    kind: str = Field(description="id, arc, phone, email or name")
    value: str
    request_id: int | None = None


class RequestCreate(BaseModel):
    type: str = Field(description="access, copy, correct, stop or erase (個資法 §3, §10, §11)")
    kind: str
    value: str
    received: date | None = None


class RetentionUpdate(BaseModel):
    what: str
    days: int | None = Field(None, description="null removes the period")
    kb: str | None = Field(None, description="null: the global period")


@router.get(
    "/access/levels",
    summary="The confidentiality scale, lowest first (any user: editors label documents with it)",
)
def access_levels(p: Caller) -> dict[str, Any]:
    return {"levels": [{"rank": i, "name": n} for i, n in enumerate(scale())]}


@router.get("/access/users/{name}", summary="A user's groups and clearance")
def get_user_access(name: str, p: Admin, state: State) -> dict[str, Any]:
    accounts.get_user(state.store, name)
    return caller_scope(state.store.database, name).to_dict()


@router.put("/access/users/{name}", summary="Set a user's groups and/or clearance")
def put_user_access(name: str, body: UserAccess, p: Admin, state: State) -> dict[str, Any]:
    accounts.get_user(state.store, name)
    with state.write() as store:
        scope = set_user_access(store.database, name, body.groups, body.clearance)
    state.record(p.actor, "user_access", target=name, detail=scope.to_dict())
    return scope.to_dict()


def _search(state: Any, body: SubjectQuery) -> SubjectSearch:
    return SubjectSearch(state.store.database, Subject.parse(body.kind, body.value))


@router.post("/subjects/find", summary="Every place a person's data appears (no contents)")
def subject_find(body: SubjectQuery, p: Admin, state: State) -> dict[str, Any]:
    s = _search(state, body)
    places = s.find()
    state.record(
        p.actor,
        "subject_find",
        target=s.subject.masked,
        detail={"request": body.request_id, "places": len(places)},
    )
    return {"subject": s.subject.masked, "places": [x.to_dict() for x in places]}


@router.post("/subjects/export", summary="A person's data, to hand over (個資法 §3, §10)")
def subject_export(body: SubjectQuery, p: Admin, state: State) -> dict[str, Any]:
    s = _search(state, body)
    data = s.export()
    state.record(
        p.actor,
        "subject_export",
        target=s.subject.masked,
        detail={"request": body.request_id, "places": len(data["places"])},
    )
    return data


@router.post("/subjects/erase", summary="Erase a person's data everywhere (個資法 §11)")
def subject_erase(body: SubjectQuery, p: Admin, state: State) -> dict[str, Any]:
    s = _search(state, body)
    with state.write():
        counts, files = s.erase(p.user, body.request_id)
        if body.request_id is not None:
            AccessRepository(state.store.database).close_request(
                body.request_id, "done", {"erased": counts}
            )
    for stored in files:
        uploads.remove_stored(state.settings.home, stored)
    with state.pool.engine() as zk:
        for kb in {x.name for x in zk.store.list_kbs()}:
            zk.sync_index(kb)
    state.record(
        p.actor,
        "subject_erase",
        target=s.subject.masked,
        detail={"request": body.request_id, "erased": counts},
    )
    return {"subject": s.subject.masked, "erased": counts, "files_removed": len(files)}


@router.get("/subjects/requests", summary="Data-subject requests with their §13 deadlines")
def subject_requests(p: Admin, state: State) -> dict[str, Any]:
    return {"requests": request_rows(state.store.database)}


@router.post("/subjects/requests", status_code=201, summary="Register a data-subject request")
def subject_request_create(body: RequestCreate, p: Admin, state: State) -> dict[str, Any]:
    subject = Subject.parse(body.kind, body.value)
    with state.write() as store:
        rid = open_request(store.database, body.type, subject, body.received)
    state.record(
        p.actor, "subject_request", target=subject.masked, detail={"id": rid, "type": body.type}
    )
    return next(r for r in request_rows(state.store.database) if r["id"] == rid)


@router.get("/retention", summary="Retention periods (days) and the last runs")
def get_retention(p: Admin, state: State) -> dict[str, Any]:
    db = state.store.database
    return {"periods": periods(db), "runs": AccessRepository(db).retention_runs()}


@router.put("/retention", summary="Set or remove a retention period")
def put_retention(body: RetentionUpdate, p: Admin, state: State) -> dict[str, Any]:
    with state.write() as store:
        set_period(store.database, body.what, body.days, body.kb)
    state.record(
        p.actor, "retention_set", kb=body.kb, detail={"what": body.what, "days": body.days}
    )
    return {"periods": periods(state.store.database)}


@router.post("/retention/run", summary="Purge what is past its retention period now")
def post_retention_run(p: Admin, state: State) -> dict[str, Any]:
    with state.write() as store:
        result = run_retention(store.database, state.settings.home, p.user)
    state.record(p.actor, "retention_run", detail=result)
    return result


@router.get("/access-log", summary="Who viewed which passages with personal data (masked)")
def get_access_log(
    p: Admin, state: State, since: str | None = None, user: str | None = None
) -> dict[str, Any]:
    rows = AccessRepository(state.store.database).access_log(since, user)
    return {"entries": [r.to_dict() for r in rows]}
