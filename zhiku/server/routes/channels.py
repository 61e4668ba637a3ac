"""Channels: the LINE webhook, and the admin API for LINE channels and webhooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from zhiku.channels import registry
from zhiku.channels.line import LineService
from zhiku.channels.webhooks import EVENTS, WAKE, WebhookError
from zhiku.server.deps import Admin, State
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS
from zhiku.storage.channels import SqlChannels

router = APIRouter(tags=["channels"], responses=ERRORS)


class LineChannelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=48, examples=["taipei-store"])
    channel_secret: str = Field(min_length=1, max_length=200)
    access_token: str = Field(min_length=1, max_length=1000)
    kbs: list[str] = Field(min_length=1)


class WidgetKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=48, examples=["www"])
    kbs: list[str] = Field(min_length=1)
    origins: list[str] = Field(min_length=1, examples=[["https://www.example.com"]])
    rate_limit: float = Field(30.0, gt=0, description="Questions per minute for the whole key")
    rate_burst: int = Field(10, ge=1)


class WebhookCreate(BaseModel):
    name: str = Field(min_length=1, max_length=48, examples=["n8n"])
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(
        default_factory=list, description=f"Any of {', '.join(EVENTS)}; empty: all of them"
    )
    secret: str | None = Field(None, max_length=200)


def _channel_error(exc: WebhookError) -> ApiError:
    return ApiError(getattr(exc, "status", 400), "channel_error", detail=str(exc))


@router.post("/line/{name}/webhook", include_in_schema=False)
async def line_webhook(
    name: str, request: Request, x_line_signature: str = Header("")
) -> dict[str, Any]:
    body = await request.body()
    service: LineService = request.app.state.line
    from fastapi.concurrency import run_in_threadpool

    queued = await run_in_threadpool(service.accept, name, body, x_line_signature)
    return {"queued": queued}


@router.get("/api/v1/channels/line", summary="LINE channels (never their secrets)")
def list_line(p: Admin, state: State) -> dict[str, Any]:
    return {"channels": [c.to_dict() for c in SqlChannels(state.store.database).line_channels()]}


@router.post(
    "/api/v1/channels/line",
    status_code=201,
    summary="Register a LINE channel: secret, access token, the KBs it answers from",
)
def add_line(body: LineChannelCreate, p: Admin, state: State) -> dict[str, Any]:
    try:
        with state.write() as store:
            ch = registry.add_line_channel(
                store, body.name, body.channel_secret, body.access_token, body.kbs
            )
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(p.actor, "line_channel_add", target=ch.name, detail={"kbs": list(ch.kbs)})
    return ch.to_dict()


@router.delete("/api/v1/channels/line/{name}", summary="Remove a LINE channel")
def remove_line(name: str, p: Admin, state: State) -> dict[str, Any]:
    try:
        with state.write() as store:
            registry.remove_line_channel(store, name)
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(p.actor, "line_channel_remove", target=name)
    return {"deleted": name}


@router.get("/api/v1/channels/widget", summary="Website widget keys")
def list_widgets(p: Admin, state: State) -> dict[str, Any]:
    return {"widgets": [w.to_dict() for w in SqlChannels(state.store.database).widget_keys()]}


@router.post(
    "/api/v1/channels/widget",
    status_code=201,
    summary="Create a public widget key for chosen KBs and allowed site origins",
)
def add_widget(body: WidgetKeyCreate, p: Admin, state: State) -> dict[str, Any]:
    try:
        with state.write() as store:
            w = registry.add_widget_key(
                store, body.name, body.kbs, body.origins, body.rate_limit, body.rate_burst
            )
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(
        p.actor,
        "widget_add",
        target=w.name,
        detail={"kbs": list(w.kbs), "origins": list(w.origins)},
    )
    return w.to_dict()


@router.delete("/api/v1/channels/widget/{name}", summary="Remove a widget key")
def remove_widget(name: str, p: Admin, state: State) -> dict[str, Any]:
    try:
        with state.write() as store:
            registry.remove_widget_key(store, name)
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(p.actor, "widget_remove", target=name)
    return {"deleted": name}


@router.get("/api/v1/webhooks", summary="Outbound webhook targets")
def list_webhooks(p: Admin, state: State) -> dict[str, Any]:
    return {
        "webhooks": [t.to_dict() for t in SqlChannels(state.store.database).targets()],
        "events": list(EVENTS),
    }


@router.post(
    "/api/v1/webhooks", status_code=201, summary="Add a target (its signing secret is shown once)"
)
def add_webhook(body: WebhookCreate, request: Request, p: Admin, state: State) -> dict[str, Any]:
    policy = request.app.state.channels.dispatcher.policy  # read once at startup
    try:
        with state.write() as store:
            t, secret = registry.add_webhook(
                store, body.name, body.url, body.events, body.secret, policy
            )
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(p.actor, "webhook_add", target=t.name, detail={"events": list(t.events)})
    return {**t.to_dict(), "secret": secret}


@router.delete("/api/v1/webhooks/{name}", summary="Remove a target and its delivery log")
def remove_webhook(name: str, p: Admin, state: State) -> dict[str, Any]:
    try:
        with state.write() as store:
            registry.remove_webhook(store, name)
    except WebhookError as exc:
        raise _channel_error(exc) from exc
    state.record(p.actor, "webhook_remove", target=name)
    return {"deleted": name}


@router.get("/api/v1/webhooks/deliveries", summary="The delivery log, newest first")
def deliveries(
    p: Admin, state: State, status: str | None = None, limit: int = 100
) -> dict[str, Any]:
    rows = SqlChannels(state.store.database).deliveries(status, max(1, min(limit, 1000)))
    return {"deliveries": [d.to_dict() for d in rows]}


@router.post(
    "/api/v1/webhooks/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again (attempts start over)",
)
def redeliver(delivery_id: int, p: Admin, state: State) -> dict[str, Any]:
    import time

    with state.write() as store:
        ok = SqlChannels(store.database).redeliver(delivery_id, time.time())
    if not ok:
        raise ApiError(404, "delivery_not_found")
    WAKE.set()
    state.record(p.actor, "webhook_redeliver", target=str(delivery_id))
    return {"redelivered": delivery_id}
