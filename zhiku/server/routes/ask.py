"""Search, ask (JSON or Server-Sent Events), passages, conversations and feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from zhiku.channels import webhooks
from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.filters import Filter
from zhiku.loop.handoff import asks_for_person
from zhiku.server import audit
from zhiku.server.access import log_viewed, redact_turns
from zhiku.server.answering import answer_events, open_conversation
from zhiku.server.deps import (
    Caller,
    Principal,
    ServerState,
    State,
    readable_kb,
)
from zhiku.server.errors import ApiError, error_body
from zhiku.server.ids import new_token
from zhiku.server.loop import handoff_events
from zhiku.server.pool import PoolTimeout
from zhiku.server.schemas import (
    ERRORS,
    AskRequest,
    AskResponse,
    ConversationCreate,
    ConversationDetail,
    ConversationInfo,
    ConversationList,
    FeedbackRequest,
    FeedbackResponse,
    MultiSearchRequest,
    Passage,
    SearchRequest,
    SearchResponse,
)
from zhiku.storage.conversations import ConversationRecord, SqlConversations
from zhiku.storage.library import SqlLibrary
from zhiku.store import KnowledgeBase, Store, now_iso

router = APIRouter(prefix="/api/v1", tags=["search and ask"], responses=ERRORS)

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


# --- search ------------------------------------------------------------------------------


def _search(
    state: ServerState,
    p: Principal,
    kbs: list[KnowledgeBase],
    query: str,
    k: int,
    where: Filter | None = None,
) -> dict[str, Any]:
    if not kbs:
        raise ApiError(404, "no_kb")
    with state.pool.engine() as zk:
        # Only the caller's KBs reach the engine: each has its own index, and the store
        # joins hits with ``d.kb_id IN (those KBs)``.
        hits = zk.search(query, [kb.name for kb in kbs], k=k, where=p.where(where))
    store = state.store
    by_name = {kb.name: kb for kb in kbs}
    out = []
    for h in hits:
        if h.kb not in by_name:  # pragma: no cover - impossible by construction; fail closed
            continue
        out.append({**h.citation(), "kb": h.kb, "passage_id": state.ids.encode("p", h.chunk_id)})
    with state.write():
        for kb in kbs:
            audit.record(
                store,
                p.actor,
                "search",
                kb=kb.name,
                detail={"query": audit.mask_question(query, kb), "hits": len(out)},
            )
    log_viewed(state, p, hits, "search")
    return {"hits": out}


@router.post(
    "/kbs/{kb}/search",
    response_model=SearchResponse,
    summary="Passages of one KB ranked for a query (`zhiku search --json` shape)",
)
def search(kb: str, body: SearchRequest, p: Caller, state: State) -> dict[str, Any]:
    _check_length(state, body.query)
    return _search(
        state, p, [readable_kb(state.store, p, kb)], body.query, body.k, Filter.from_api(body.where)
    )


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search several of your KBs at once (default: all of them)",
)
def search_many(body: MultiSearchRequest, p: Caller, state: State) -> dict[str, Any]:
    _check_length(state, body.query)
    store = state.store
    names = body.kbs if body.kbs is not None else list(p.kbs)
    kbs = [readable_kb(store, p, n) for n in dict.fromkeys(names)]
    return _search(state, p, kbs, body.query, body.k, Filter.from_api(body.where))


# --- ask ---------------------------------------------------------------------------------


def _check_length(state: ServerState, text: str) -> None:
    limit = state.settings.max_question_chars
    if len(text) > limit:
        raise ApiError(422, "question_too_long", limit=limit)
    if not text.strip():
        raise ApiError(422, "invalid_request", detail="empty question")


def client_channel(request: Request) -> str:
    """``web`` for the web UI (it sends ``X-Zhiku-Client: web``), else ``api``."""
    return "web" if request.headers.get("x-zhiku-client", "").lower() == "web" else "api"


def _wants_stream(request: Request, body: AskRequest) -> bool:
    return body.stream or "text/event-stream" in request.headers.get("accept", "")


@router.post(
    "/kbs/{kb}/ask",
    response_model=AskResponse,
    summary="Answer a question with citations (JSON, or SSE with `stream` / "
    "`Accept: text/event-stream`)",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "JSON: the `zhiku ask --json` object. SSE: `delta` events "
            '(`{"type":"delta","text"}`), then one `done` event with the answer, '
            "`answer_id`, `conversation_id` and `sources` (passage ids per citation).",
        }
    },
)
def ask(kb: str, body: AskRequest, request: Request, p: Caller, state: State) -> Any:
    _check_length(state, body.question)
    store = state.store
    kbo = readable_kb(store, p, kb)
    conv = open_conversation(store, p, kbo, body.conversation_id)
    if asks_for_person(body.question):  # 「轉真人」: a case for a person, no KB answer
        events = handoff_events(state, p, kbo, body.question, conv, channel=client_channel(request))
    else:
        events = answer_events(
            state,
            p,
            kbo,
            body.question,
            k=body.k,
            conversation=conv,
            where=Filter.from_api(body.where),
            channel=client_channel(request),
        )
    if _wants_stream(request, body):
        return StreamingResponse(
            _sse_stream(request, events), media_type="text/event-stream", headers=SSE_HEADERS
        )
    done: dict[str, Any] = {}
    for ev in events:
        if ev["type"] == "done":
            done = ev
    return JSONResponse(
        done["answer"],
        headers={
            "X-Answer-Id": done["answer_id"] or "",
            "X-Conversation-Id": done["conversation_id"] or "",
        },
    )


def _sse_stream(request: Request, events: Iterator[dict[str, Any]]) -> Iterator[str]:
    try:
        for ev in events:
            yield sse(ev)
    except ApiError as exc:
        yield sse(
            {
                "type": "error",
                **error_body(request, exc.status, exc.code, exc.message, **exc.params),
            }
        )
    except PoolTimeout:
        yield sse({"type": "error", **error_body(request, 503, "overloaded")})
    except ZhikuError as exc:
        yield sse({"type": "error", **error_body(request, 400, "invalid_request", detail=str(exc))})


# --- passages ----------------------------------------------------------------------------


@router.get(
    "/passages/{passage_id}",
    response_model=Passage,
    summary="A cited passage with its document, section, page and neighbours",
)
def passage(passage_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    n = state.ids.decode("p", passage_id)
    library = SqlLibrary(store.database)
    # A passage of a document the caller may not see: 404.
    row = None if n is None else library.passage(n, p.kbs, p.where())
    if row is None:
        raise ApiError(404, "passage_not_found")
    kb = store.get_kb(row.kb)
    near = library.neighbours(row.doc_id, row.ord)

    def out(text: str | None) -> str | None:
        return None if text is None else _redact(text, kb)

    log_viewed(
        state,
        p,
        [SimpleNamespace(chunk_id=n, kb=row.kb, doc_title=out(row.title), text=row.text)],
        "passage",
    )
    return {
        "passage_id": passage_id,
        "kb": row.kb,
        "document_id": state.ids.encode("d", row.doc_id),
        "doc": out(row.title),
        "path": Zhiku.redact_path(kb, row.path),
        "section": out(row.section),
        "label": out(row.label),
        "page_start": row.page_start,
        "page_end": row.page_end,
        "text": out(row.text),
        "before": out(near.get(row.ord - 1)),
        "after": out(near.get(row.ord + 1)),
    }


def _redact(text: str, kb: KnowledgeBase) -> str:
    return Zhiku.redact_output(kb, text)


# --- conversations -------------------------------------------------------------------------


def _conv_info(row: ConversationRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "kb": row.kb,
        "title": row.title,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "channel": row.channel,
    }


def _conversations(store: Store) -> SqlConversations:
    return SqlConversations(store.database)


def _own_conversation(store: Store, p: Principal, conv_id: str) -> ConversationRecord:
    row = _conversations(store).readable(conv_id, p.user_id, p.kbs)
    if row is None:
        raise ApiError(404, "conversation_not_found")
    return row


@router.get(
    "/conversations",
    response_model=ConversationList,
    summary="Your conversations, newest first (optionally of one KB)",
)
def list_conversations(
    p: Caller, state: State, kb: str | None = None, limit: int = 50
) -> dict[str, Any]:
    store = state.store
    names = [readable_kb(store, p, kb).name] if kb else list(p.kbs)
    rows = _conversations(store).of_user(p.user_id, names, max(1, min(limit, 500)))
    return {"conversations": [_conv_info(r) for r in rows]}


@router.post(
    "/conversations",
    response_model=ConversationInfo,
    status_code=201,
    summary="Start an empty conversation (asking without one also starts one)",
)
def create_conversation(
    body: ConversationCreate, request: Request, p: Caller, state: State
) -> dict[str, Any]:
    store = state.store
    kbo = readable_kb(store, p, body.kb)
    conv_id, ts = new_token(), now_iso()
    channel = client_channel(request)
    with state.write():
        _conversations(store).create(conv_id, p.user_id, kbo.id, "", ts, channel)
    return {
        "id": conv_id,
        "kb": kbo.name,
        "title": "",
        "created_at": ts,
        "updated_at": ts,
        "channel": channel,
    }


@router.get(
    "/conversations/{conv_id}",
    response_model=ConversationDetail,
    summary="A conversation with its turns, sources and feedback",
)
def get_conversation(conv_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    row = _own_conversation(store, p, conv_id)
    turns = []
    rows = _conversations(store).turns(conv_id)
    # A turn citing a document the caller may no longer see: answer withheld,
    # those citations redacted (zhiku.server.access).
    shown = redact_turns(store, p, [m.stored for m in rows])
    for m, stored in zip(rows, shown, strict=True):
        fb = None
        if m.rating is not None:
            fb = {
                "answer_id": m.id,
                "rating": "up" if m.rating > 0 else "down",
                "comment": m.comment,
            }
        turns.append(
            {
                "answer_id": m.id,
                "question": m.question,
                "answer": stored["answer"],
                "sources": stored.get("sources", []),
                "feedback": fb,
                "created_at": m.created_at,
            }
        )
    return {**_conv_info(row), "turns": turns}


@router.delete("/conversations/{conv_id}", summary="Delete one of your conversations")
def delete_conversation(conv_id: str, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    _own_conversation(store, p, conv_id)
    with state.write():
        _conversations(store).delete(conv_id, p.user_id)
    return {"deleted": conv_id}


# --- feedback ------------------------------------------------------------------------------


@router.post(
    "/answers/{answer_id}/feedback",
    response_model=FeedbackResponse,
    summary="👍/👎 with an optional comment on one of your answers (last one wins)",
)
def feedback(answer_id: str, body: FeedbackRequest, p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    conversations = _conversations(store)
    found = conversations.own_answer(answer_id, p.user_id, p.kbs)
    if found is None:
        raise ApiError(404, "answer_not_found")
    kb_name, question = found
    rating = 1 if body.rating == "up" else -1
    with state.write():
        conversations.set_feedback(answer_id, p.user_id, rating, body.comment, now_iso())
        audit.record(
            store, p.actor, "feedback", kb=kb_name, target=answer_id, detail={"rating": body.rating}
        )
        if rating < 0:
            kbo = store.get_kb(kb_name)
            webhooks.emit(
                store.database,
                "feedback.negative",
                {
                    "kb": kb_name,
                    "answer_id": answer_id,
                    "question": audit.mask_question(question, kbo),
                    "comment": audit.mask_question(body.comment, kbo),
                },
            )
    state.metrics.inc("zhiku_feedback_total", {"rating": body.rating})
    return {"answer_id": answer_id, "rating": body.rating, "comment": body.comment}
