"""OpenAI-compatible endpoints: ``GET /v1/models`` and ``POST /v1/chat/completions``.

A *model* is a knowledge base the key may read, so any OpenAI client or chat front-end
(Open WebUI, LibreChat, n8n's OpenAI node…) can talk to zhiku. The last user message is
the question and the earlier turns are the history. Citations come back twice: as a
「出處」 block at the end of the message text (what a chat window shows) and as the
extra ``citations`` field (what a program reads), beside the choices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from zhiku.errors import ZhikuError
from zhiku.server.answering import answer_events, sources_block, strip_sources
from zhiku.server.deps import Caller, State, readable_kb
from zhiku.server.errors import ApiError, error_body, request_lang
from zhiku.server.ids import new_token
from zhiku.server.pool import PoolTimeout
from zhiku.server.schemas import ERRORS, ChatCompletionRequest, ChatMessage
from zhiku.store import KnowledgeBase

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], responses=ERRORS)


def _text(m: ChatMessage) -> str:
    if isinstance(m.content, str):
        return m.content
    if isinstance(m.content, list):
        return "".join(
            str(part.get("text", ""))
            for part in m.content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _tokens(text: str) -> int:
    """A rough token count (CJK characters count one, other words about one)."""
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff")
    return cjk + len(text.encode("ascii", "ignore").split())


@router.get("/models", summary="Your knowledge bases, as models")
def models(p: Caller, state: State) -> dict[str, Any]:
    store = state.store
    data = []
    for kb in store.list_kbs():
        if kb.name in p.kbs:
            created = int(datetime.fromisoformat(kb.created_at).timestamp())
            data.append({"id": kb.name, "object": "model", "created": created, "owned_by": "zhiku"})
    return {"object": "list", "data": data}


def _model_kb(state: Any, p: Any, name: str) -> KnowledgeBase:
    try:
        return readable_kb(state.store, p, name)
    except ApiError as exc:
        raise ApiError(404, "model_not_found", kb=name) from exc


@router.post("/chat/completions", summary="Chat completion over one knowledge base")
def chat_completions(body: ChatCompletionRequest, request: Request, p: Caller, state: State) -> Any:
    kb = _model_kb(state, p, body.model)
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not _text(turns[-1]).strip():
        raise ApiError(400, "no_user_message")
    question = _text(turns[-1])
    limit = state.settings.max_question_chars
    if len(question) > limit:
        raise ApiError(422, "question_too_long", limit=limit)
    history = [{"role": m.role, "content": strip_sources(_text(m))} for m in turns[:-1]]
    events = answer_events(state, p, kb, question, history=history, action="chat", channel="openai")
    lang = request_lang(request)
    cid, created = f"chatcmpl-{new_token(18)}", int(time.time())
    base = {"id": cid, "created": created, "model": kb.name, "system_fingerprint": "zhiku"}
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _stream(request, events, base, lang, question, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    text, answer = "", None
    for ev in events:
        if ev["type"] == "delta":
            text += ev["text"]
        elif ev["type"] == "done":
            answer = ev["answer"]
    assert answer is not None
    content = text + sources_block(answer, lang)
    prompt = _tokens(question)
    return JSONResponse(
        {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": _tokens(content),
                "total_tokens": prompt + _tokens(content),
            },
            "citations": answer["citations"],
            "refused": answer["refused"],
        }
    )


def _chunk(
    base: dict[str, Any], delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> str:
    obj = {
        **base,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _stream(
    request: Request,
    events: Iterator[dict[str, Any]],
    base: dict[str, Any],
    lang: str,
    question: str,
    include_usage: bool,
) -> Iterator[str]:
    yield _chunk(base, {"role": "assistant", "content": ""})
    sent = ""
    try:
        for ev in events:
            if ev["type"] == "delta" and ev["text"]:
                sent += ev["text"]
                yield _chunk(base, {"content": ev["text"]})
            elif ev["type"] == "done":
                answer = ev["answer"]
                block = sources_block(answer, lang)
                if block:
                    sent += block
                    yield _chunk(base, {"content": block})
                yield _chunk(
                    base, {}, "stop", citations=answer["citations"], refused=answer["refused"]
                )
    except (ApiError, PoolTimeout, ZhikuError) as exc:
        status, code = (
            (exc.status, exc.code)
            if isinstance(exc, ApiError)
            else (503, "overloaded")
            if isinstance(exc, PoolTimeout)
            else (400, "invalid_request")
        )
        yield f"data: {json.dumps(error_body(request, status, code, detail=str(exc)))}\n\n"
    if include_usage:
        prompt, completion = _tokens(question), _tokens(sent)
        obj = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        yield f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
