"""Liveness, readiness, metrics and "who am I"."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from zhiku.server import accounts, jobs
from zhiku.server.deps import Caller, State
from zhiku.server.errors import ApiError
from zhiku.server.schemas import ERRORS, Me
from zhiku.storage import migrate

router = APIRouter(tags=["system"])

METRIC_HELP = {
    "zhiku_http_requests_total": "HTTP requests by method, route and status",
    "zhiku_http_request_duration_seconds": "HTTP request latency by route",
    "zhiku_answers_total": "Answers given, by refusal and endpoint",
    "zhiku_ingest_files_total": "Files ingested by the background workers, by result",
    "zhiku_upload_rejected_total": "Uploaded files refused before ingestion, by reason",
    "zhiku_feedback_total": "Feedback received, by rating",
    "zhiku_ingest_jobs": "Ingestion jobs waiting or running",
    "zhiku_ingest_files_pending": "Files waiting in queued or running jobs",
}


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database is reachable and up to date")
def readyz(state: State) -> JSONResponse:
    try:
        version = migrate.schema_version(state.store.database)
        current = migrate.is_current(state.store.database)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
    if not state.ready:
        return JSONResponse({"status": "starting"}, 503)
    return JSONResponse(
        {
            "status": "ready",
            "schema": version,
            "ingest_worker": bool(state.worker and state.worker.is_alive()),
        },
        200 if current else 503,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (admin key, or the ZHIKU_METRICS_TOKEN bearer token)",
)
def metrics(request: Request, state: State) -> PlainTextResponse:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    ok = bool(state.settings.metrics_token) and hmac.compare_digest(
        token.encode(), state.settings.metrics_token.encode()
    )
    if not ok:
        found = accounts.authenticate(state.store, token) if token else None
        if found is None:
            raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
        if found[0].role != "admin":
            raise ApiError(403, "admin_only")
    q = jobs.queue_counts(state.store)
    gauges = {
        "zhiku_ingest_jobs": ("status", {"queued": q["queued"], "running": q["running"]}),
        "zhiku_ingest_files_pending": ("", {"": q["files_pending"]}),
    }
    return PlainTextResponse(
        state.metrics.render(gauges, METRIC_HELP), media_type="text/plain; version=0.0.4"
    )


@router.get(
    "/api/v1/me",
    response_model=Me,
    tags=["system"],
    responses=ERRORS,
    summary="The caller: user, role and readable KBs",
)
def me(p: Caller, state: State) -> dict[str, Any]:
    s = state.settings
    return {
        "user": p.user,
        "role": p.role,
        "key_prefix": p.key_prefix,
        "kbs": list(p.kbs),
        "limits": {
            "max_upload_mb": s.max_upload_mb,
            "max_files": s.max_files,
            "max_question_chars": s.max_question_chars,
        },
    }
