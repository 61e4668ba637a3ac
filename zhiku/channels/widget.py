"""The website chat widget: one ``<script src="…/widget.js" data-key="zkw_…">`` tag.

``widget.js`` asks ``/widget/v1/config`` (CORS: only the key's allowed origins get an
answer the browser lets the page read) and then opens ``/widget/frame`` in an iframe.
The frame's ``Content-Security-Policy: frame-ancestors`` lists exactly the key's
origins, so a page elsewhere cannot embed it. The frame asks ``/widget/v1/ask``; that
endpoint also answers pages of the allowed origins directly (CORS for exactly those
origins) and refuses any other ``Origin`` with 403. A key can do nothing but ask on its
KBs, as its service user ``widget:NAME``; it has its own rate limit (per key: in each
server process on SQLite, shared by every node on PostgreSQL). A visitor's
conversation is keyed by the key and a random session id the frame keeps in
``sessionStorage``.
"""

from __future__ import annotations

import html
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from zhiku.server.answering import answer_events, open_conversation
from zhiku.server.deps import Principal
from zhiku.server.errors import ApiError, error_body
from zhiku.server.ratelimit import RateLimiter, make_limiter
from zhiku.storage.channels import SqlChannels, WidgetKey

router = APIRouter(tags=["widget"])
_limiters: dict[int, RateLimiter] = {}
_lock = threading.Lock()


class WidgetAsk(BaseModel):
    key: str = Field(min_length=1, max_length=100)
    question: str = Field(min_length=1, max_length=2000)
    session: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    conversation_id: str | None = Field(None, max_length=64)


def _web() -> Any:
    from zhiku.server.app import web_dir

    return web_dir() / "widget"


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _key(request: Request, public_key: str) -> WidgetKey:
    state = request.app.state.zhiku
    w = SqlChannels(state.store.database).widget_key(public_key)
    if w is None or not w.enabled:
        raise ApiError(403, "widget_key_invalid")
    return w


def _cors(request: Request, w: WidgetKey) -> dict[str, str]:
    """CORS headers for the request's origin, or 403 when it is not allowed."""
    origin = request.headers.get("origin")
    if origin is None or origin == _own_origin(request):
        return {}
    if origin not in w.origins:
        raise ApiError(403, "widget_origin_refused")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _json(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str]
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


@router.get("/widget.js", include_in_schema=False)
def widget_js() -> FileResponse:
    return FileResponse(
        _web() / "widget.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


@router.get("/widget/frame.js", include_in_schema=False)
def frame_js() -> FileResponse:
    return FileResponse(
        _web() / "frame.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )


@router.get("/widget/frame.css", include_in_schema=False)
def frame_css() -> FileResponse:
    return FileResponse(
        _web() / "frame.css", media_type="text/css", headers={"Cache-Control": "no-cache"}
    )


@router.get("/widget/frame", include_in_schema=False)
def frame(request: Request, key: str, lang: str = "zh-TW") -> HTMLResponse:
    w = _key(request, key)
    ancestors = " ".join(w.origins)
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {ancestors}"
    )
    page = (_web() / "frame.html").read_text("utf-8")
    page = page.replace("{{lang}}", "en" if lang.lower().startswith("en") else "zh-TW")
    page = page.replace("{{key}}", html.escape(w.public_key, quote=True))
    return HTMLResponse(page, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


@router.options("/widget/v1/{path}", include_in_schema=False)
def preflight(path: str, request: Request) -> Response:
    origin = request.headers.get("origin", "")
    state = request.app.state.zhiku
    allowed = any(
        origin in w.origins for w in SqlChannels(state.store.database).widget_keys() if w.enabled
    )
    if not allowed:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type, Accept-Language",
            "Access-Control-Max-Age": "600",
        },
    )


@router.get("/widget/v1/config", include_in_schema=False)
def config(request: Request, key: str) -> JSONResponse:
    try:
        w = _key(request, key)
        headers = _cors(request, w)
    except ApiError as exc:
        return _json(request, exc.status, error_body(request, exc.status, exc.code), {})
    return _json(request, 200, {"name": w.name, "kbs": list(w.kbs)}, headers)


@router.post("/widget/v1/ask", include_in_schema=False)
def ask(body: WidgetAsk, request: Request) -> JSONResponse:
    state = request.app.state.zhiku
    try:
        w = _key(request, body.key)
        headers = _cors(request, w)
    except ApiError as exc:
        return _json(request, exc.status, error_body(request, exc.status, exc.code), {})
    if state.shared is not None:  # the buckets are in the database: nothing to keep
        limiter = make_limiter(w.rate_limit, w.rate_burst, state.shared, f"widget:{w.id}")
    else:
        with _lock:
            limiter = _limiters.setdefault(w.id, RateLimiter(w.rate_limit, w.rate_burst))
    wait = limiter.hit("key")
    if wait:
        retry = max(1, int(wait + 0.999))
        return _json(
            request,
            429,
            error_body(request, 429, "rate_limited", retry=retry),
            {**headers, "Retry-After": str(retry)},
        )
    store = state.store
    ref = f"widget:{w.id}:{body.session}"
    kb = store.find_kb(w.kbs[0])
    conv_id = None
    if body.conversation_id:
        kb_id = SqlChannels(store.database).conversation_in(body.conversation_id, ref)
        if kb_id is not None:
            conv_id = body.conversation_id
            kb = next(
                (k for k in (store.find_kb(n) for n in w.kbs) if k is not None and k.id == kb_id),
                kb,
            )
    if kb is None:
        return _json(request, 404, error_body(request, 404, "no_kb"), headers)
    p = Principal(
        w.user_id,
        f"widget:{w.name}",
        "reader",
        0,
        f"widget:{w.name}",
        w.kbs,
        request.client.host if request.client else None,
    )
    conv = open_conversation(store, p, kb, conv_id)
    done: dict[str, Any] = {}
    # Every KB of the key answers (the conversation is recorded in its first KB).
    also = [k for k in (store.find_kb(n) for n in w.kbs) if k is not None and k.id != kb.id]
    for ev in answer_events(
        state,
        p,
        kb,
        body.question[: state.settings.max_question_chars],
        conversation=conv,
        action="widget",
        channel="widget",
        channel_ref=ref,
        also=also,
    ):
        if ev["type"] == "done":
            done = ev
    return _json(
        request,
        200,
        {"answer": done["answer"], "conversation_id": done["conversation_id"]},
        headers,
    )
