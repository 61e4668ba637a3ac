"""The service loop's API: hand-off and the agent inbox, departments, analytics,
curated FAQ entries, pinned passages, and renaming conversations.

Who sees a case: an admin sees every case; an agent (a member of a department) sees
the cases of their departments, and only in KBs they can read. Anyone else gets the
same 404 as for a case that does not exist.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from zhiku.engine import Zhiku
from zhiku.loop import handoff
from zhiku.loop.curate import curate
from zhiku.loop.gaps import question_key
from zhiku.loop.report import build, parse_since, record_masked_question, to_csv, to_html
from zhiku.server import accounts, audit
from zhiku.server.access import redact_turns
from zhiku.server.deps import Admin, Caller, Principal, ServerState, State, editable_kb, readable_kb
from zhiku.server.errors import ApiError
from zhiku.server.loop import open_case, repo
from zhiku.server.schemas import ERRORS
from zhiku.services.privacy import redact_hit
from zhiku.storage.pins import Pin, SqlPins
from zhiku.store import Store

router = APIRouter(prefix="/api/v1", tags=["service loop"], responses=ERRORS)


class HandoffRequest(BaseModel):
    department: str | None = None
    reason: Literal["asked", "refused", "feedback"] = "asked"


class TextBody(BaseModel):
    body: str = Field(min_length=1, max_length=4000)


class AssignBody(BaseModel):
    user: str | None = None
    department: str | None = None


class DepartmentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class MemberBody(BaseModel):
    user: str


class CuratedCreate(BaseModel):
    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)
    questions: list[str] = Field(default_factory=list, max_length=50)
    message_ids: list[str] = Field(default_factory=list, max_length=50)


class PinCreate(BaseModel):
    question: str = Field(min_length=1, max_length=500)
    passage_id: str = Field(min_length=1, max_length=64)
    questions: list[str] = Field(default_factory=list, max_length=50)
    message_ids: list[str] = Field(default_factory=list, max_length=50)


class ConversationRename(BaseModel):
    title: str = Field(min_length=1, max_length=80)


def _department(store: Store, name: str) -> int:
    dept = repo(store).department_id(name)
    if dept is None:
        raise ApiError(404, "department_not_found", name=name)
    return dept


def _own_conversation(store: Store, p: Principal, conv_id: str) -> Any:
    row = repo(store).conversation_of(conv_id, p.user_id)
    if row is None or row["kb"] not in p.kbs:
        raise ApiError(404, "conversation_not_found")
    return row


# --- the user's side ------------------------------------------------------------------


@router.post(
    "/conversations/{conv_id}/handoff",
    status_code=201,
    summary="Ask for a person (轉真人): opens a case for the agent inbox",
)
def request_handoff(conv_id: str, body: HandoffRequest, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    row = _own_conversation(store, p, conv_id)
    kb = store.get_kb(row["kb"])
    dept = _department(store, body.department) if body.department else None
    question = repo(store).last_question(conv_id) or row["title"]
    return open_case(state, p, kb, conv_id, body.reason, question or "", dept)


@router.get(
    "/conversations/{conv_id}/replies",
    summary="Replies from people (agents) in one of your conversations",
)
def conversation_replies(conv_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    row = _own_conversation(store, p, conv_id)
    kb = store.get_kb(row["kb"])
    r = repo(store)
    case = r.open_case_of(conv_id)
    return {
        "conversation_id": conv_id,
        "handoff": None if case is None else {"case_id": case["id"], "status": case["status"]},
        "replies": [
            {**x, "body": Zhiku.redact_output(kb, x["body"])}
            for x in r.replies_of_conversation(conv_id)
        ],
    }


@router.patch("/conversations/{conv_id}", summary="Rename one of your conversations")
def rename_conversation(
    conv_id: str, body: ConversationRename, p: Caller, state: State
) -> dict[str, Any]:
    store = state.store
    _own_conversation(store, p, conv_id)
    title = " ".join(body.title.split())[:80]
    with state.write() as s:
        repo(s).rename_conversation(conv_id, p.user_id, title)
    return {"id": conv_id, "title": title}


# --- the agent inbox --------------------------------------------------------------------


def _scope(store: Store, p: Principal) -> list[int] | None:
    """The departments whose cases ``p`` sees (``None``: all, for an admin)."""
    if p.is_admin:
        return None
    depts = repo(store).departments_of(p.user_id)
    if not depts:
        raise ApiError(403, "not_agent")
    return depts


def _visible_case(state: ServerState, p: Principal, case_id: int) -> dict[str, Any]:
    store = state.store
    scope = _scope(store, p)
    case = repo(store).get_case(case_id)
    if (
        case is None
        or case["kb"] not in p.kbs
        or (scope is not None and case["department_id"] not in scope)
    ):
        raise ApiError(404, "case_not_found")
    return case


@router.get("/inbox", summary="Hand-off cases of your departments (admins: all)")
def inbox(
    p: Caller, state: State, status: Literal["open", "resolved"] | None = None, limit: int = 100
) -> dict[str, Any]:
    store = state.store
    cases = repo(store).list_cases(_scope(store, p), status, max(1, min(limit, 500)))
    return {"cases": [c for c in cases if c["kb"] in p.kbs]}


@router.get(
    "/cases/{case_id}",
    summary="A case: the conversation so far with its citations, notes and replies",
)
def get_case(case_id: int, p: Caller, state: State) -> dict[str, Any]:
    case = _visible_case(state, p, case_id)
    store = state.store
    kb = store.get_kb(case["kb"])
    rows = repo(store).conversation_turns(case["conversation_id"])
    # The agent's own access scope: citations of documents they may not see redacted.
    shown = redact_turns(store, p, [m["stored"] for m in rows])
    turns = [
        Zhiku.redact_json(
            kb,
            {
                "answer_id": m["answer_id"],
                "question": m["question"],
                "answer": stored.get("answer", {}),
                "sources": stored.get("sources", []),
                "created_at": m["created_at"],
            },
        )
        | {"rating": m["rating"]}
        for m, stored in zip(rows, shown, strict=True)
    ]
    entries = [
        {**e, "body": Zhiku.redact_output(kb, e["body"])} for e in repo(store).entries(case_id)
    ]
    return {**case, "turns": turns, "entries": entries}


def _entry(state: ServerState, p: Principal, case_id: int, kind: str, text: str) -> dict[str, Any]:
    case = _visible_case(state, p, case_id)
    if kind == "reply" and case["status"] != "open":
        raise ApiError(409, "case_resolved")
    with state.write() as store:
        entry = repo(store).add_entry(case_id, p.user_id, p.user, kind, text)
        audit.record(store, p.actor, f"case.{kind}", kb=case["kb"], target=str(case_id))
    if kind == "reply":
        entry["delivered"] = handoff.deliver(case["conversation_id"], text)
    return entry


@router.post("/cases/{case_id}/notes", status_code=201, summary="An internal note")
def add_note(case_id: int, body: TextBody, p: Caller, state: State) -> dict[str, Any]:
    return _entry(state, p, case_id, "note", body.body)


@router.post(
    "/cases/{case_id}/replies",
    status_code=201,
    summary="Reply to the user (shown in their conversation, sent to their channel)",
)
def add_reply(case_id: int, body: TextBody, p: Caller, state: State) -> dict[str, Any]:
    return _entry(state, p, case_id, "reply", body.body)


@router.post(
    "/cases/{case_id}/assign", summary="Assign to a person and/or hand to another department (team)"
)
def assign(case_id: int, body: AssignBody, p: Caller, state: State) -> dict[str, Any]:
    case = _visible_case(state, p, case_id)
    store = state.store
    user_id = accounts.get_user(store, body.user).id if body.user else None
    dept = _department(store, body.department) if body.department else None
    what = "、".join(
        x
        for x in (
            body.user and f"指派給 {body.user}",
            body.department and f"轉給部門 {body.department}",
        )
        if x
    )
    with state.write() as s:
        r = repo(s)
        r.assign(case_id, user_id, dept)
        r.add_entry(case_id, p.user_id, p.user, "event", what or "取消指派")
        audit.record(
            s,
            p.actor,
            "case.assign",
            kb=case["kb"],
            target=str(case_id),
            detail={"user": body.user, "department": body.department},
        )
    return repo(store).get_case(case_id) or {}


def _set_status(state: ServerState, p: Principal, case_id: int, status: str) -> dict[str, Any]:
    case = _visible_case(state, p, case_id)
    with state.write() as s:
        r = repo(s)
        r.set_status(case_id, status)
        r.add_entry(
            case_id, p.user_id, p.user, "event", "結案" if status == "resolved" else "重新開啟"
        )
        audit.record(s, p.actor, f"case.{status}", kb=case["kb"], target=str(case_id))
    if status == "resolved":
        handoff.emit(
            "handoff.resolved",
            {"case_id": case_id, "kb": case["kb"], "conversation_id": case["conversation_id"]},
        )
    return repo(state.store).get_case(case_id) or {}


@router.post("/cases/{case_id}/resolve", summary="Resolve a case")
def resolve(case_id: int, p: Caller, state: State) -> dict[str, Any]:
    return _set_status(state, p, case_id, "resolved")


@router.post("/cases/{case_id}/reopen", summary="Reopen a resolved case")
def reopen(case_id: int, p: Caller, state: State) -> dict[str, Any]:
    return _set_status(state, p, case_id, "open")


@router.get("/me/departments", summary="The departments you belong to (agents)")
def my_departments(p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    mine = set(repo(store).departments_of(p.user_id))
    return {
        "departments": [d["name"] for d in repo(store).list_departments() if d["id"] in mine],
        "admin": p.is_admin,
    }


# --- departments (admin) ------------------------------------------------------------------


@router.get("/departments", summary="Departments and their agents")
def list_departments(p: Admin, state: State) -> dict[str, Any]:
    return {"departments": repo(state.store).list_departments()}


@router.post("/departments", status_code=201, summary="Create a department")
def create_department(body: DepartmentCreate, p: Admin, state: State) -> dict[str, Any]:
    with state.write() as s:
        dept = repo(s).create_department(body.name.strip())
        audit.record(s, p.actor, "department.create", target=body.name)
    return {"id": dept, "name": body.name.strip()}


@router.post(
    "/departments/{name}/members", status_code=201, summary="Make a user an agent of the department"
)
def add_member(name: str, body: MemberBody, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    dept = _department(store, name)
    user = accounts.get_user(store, body.user)
    with state.write() as s:
        repo(s).add_member(dept, user.id)
        audit.record(s, p.actor, "department.member_add", target=name, detail={"user": user.name})
    return {"department": name, "user": user.name}


@router.delete("/departments/{name}/members/{user}", summary="Remove an agent")
def remove_member(name: str, user: str, p: Admin, state: State) -> dict[str, Any]:
    store = state.store
    dept = _department(store, name)
    u = accounts.get_user(store, user)
    with state.write() as s:
        removed = repo(s).remove_member(dept, u.id)
        audit.record(s, p.actor, "department.member_remove", target=name, detail={"user": u.name})
    return {"department": name, "user": u.name, "removed": removed}


# --- analytics and curation ----------------------------------------------------------------


@router.get(
    "/analytics",
    summary="The service report (admins: every KB; editors: theirs)",
    response_model=None,
)
def analytics(
    p: Caller,
    state: State,
    since: str = "7d",
    kb: str | None = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Any:
    if not p.can_edit:
        raise ApiError(403, "forbidden")
    store = state.store
    names = [readable_kb(store, p, kb).name] if kb else list(p.kbs)
    kbs = [store.get_kb(n) for n in names]
    try:
        start = parse_since(since)
    except Exception as exc:  # noqa: BLE001 - the message names the bad value
        raise ApiError(422, "invalid_request", detail=str(exc)) from exc
    # The viewer's access scope hides documents they may not see (issue 13's rule);
    # the rollup's refresh writes under the server's write gate.
    report = build(repo(store), kbs, start, where=p.where(), lock=state.gate)
    if format == "csv":
        return Response(to_csv(report), media_type="text/csv; charset=utf-8")
    if format == "html":
        return HTMLResponse(to_html(report))
    return report


@router.post(
    "/kbs/{kb}/curated",
    status_code=201,
    summary="Store an editor's answer as a curated FAQ entry (indexed, cited)",
)
def create_curated(kb: str, body: CuratedCreate, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = editable_kb(store, p, kb)
    with state.gate, state.pool.engine() as zk:
        entry = curate(
            zk,
            kbo.name,
            body.question,
            body.answer,
            author=p.user,
            questions=body.questions,
            source_messages=body.message_ids,
        )
    state.record(p.actor, "curated.create", kb=kbo.name, target=entry["path"])
    return entry


@router.get("/kbs/{kb}/curated", summary="Curated FAQ entries of a KB")
def list_curated(kb: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, kb)
    return {
        "entries": [
            Zhiku.redact_json(kbo, {k: v for k, v in e.items() if k != "kb_id"})
            for e in repo(store).list_curated([kbo.id])
        ]
    }


# --- pinned passages ------------------------------------------------------------------------


def _pin_view(state: ServerState, p: Principal, kbo: Any, pin: Pin) -> dict[str, Any] | None:
    """A pin as the caller may see it (None: its passage is hidden from them)."""
    hits = state.store.hits_for([(pin.chunk_id, 1.0)], [kbo.id], p.where())
    if not hits:
        return None
    hit = redact_hit(kbo, hits[0])
    return {
        "id": pin.id,
        "kb": kbo.name,
        "question": record_masked_question(pin.question, kbo),
        "passage_id": state.ids.encode("p", pin.chunk_id),
        "document_id": state.ids.encode("d", pin.doc_id),
        "doc": hit.doc_title,
        "path": hit.path,
        "section": hit.section,
        "text": hit.text,
        "author": pin.author,
        "created_at": pin.created_at,
        "source_messages": list(pin.source_messages),
    }


@router.get("/kbs/{kb}/pins", summary="Passages editors pinned for questions of a KB")
def list_pins(kb: str, p: Caller, state: State) -> dict[str, Any]:
    kbo = editable_kb(state.store, p, kb)
    views = (
        _pin_view(state, p, kbo, pin) for pin in SqlPins(state.store.database).of_kbs([kbo.id])
    )
    return {"pins": [v for v in views if v is not None]}


@router.post(
    "/kbs/{kb}/pins",
    status_code=201,
    summary="Pin a passage for a question: the same or a near-identical question "
    "is then answered citing it first",
)
def create_pin(kb: str, body: PinCreate, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = editable_kb(store, p, kb)
    chunk = state.ids.decode("p", body.passage_id)
    # Only a passage of this KB the editor may see (the same 404 otherwise).
    if chunk is None or not store.hits_for([(chunk, 1.0)], [kbo.id], p.where()):
        raise ApiError(404, "passage_not_found")
    question = record_masked_question(body.question, kbo)
    keys = [
        question_key(q)
        for q in [question, *(record_masked_question(x, kbo) for x in body.questions)]
    ]
    with state.write() as s:
        pin_id = SqlPins(s.database).add(kbo.id, chunk, question, keys, body.message_ids, p.user)
    state.record(
        p.actor,
        "pin.create",
        kb=kbo.name,
        target=str(pin_id),
        detail={
            "passage_id": body.passage_id,
            "question": question,
            "message_ids": body.message_ids[:10],
        },
    )
    pin = SqlPins(store.database).get(pin_id)
    assert pin is not None
    view = _pin_view(state, p, kbo, pin)
    assert view is not None
    return view


@router.delete("/kbs/{kb}/pins/{pin_id}", summary="Unpin a passage")
def delete_pin(kb: str, pin_id: int, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    kbo = editable_kb(store, p, kb)
    pin = SqlPins(store.database).get(pin_id)
    if pin is None or pin.kb_id != kbo.id or _pin_view(state, p, kbo, pin) is None:
        raise ApiError(404, "pin_not_found")
    with state.write() as s:
        SqlPins(s.database).remove(pin_id)
    state.record(
        p.actor, "pin.remove", kb=kbo.name, target=str(pin_id), detail={"question": pin.question}
    )
    return {"id": pin_id, "removed": True}
