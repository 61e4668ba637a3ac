"""The FastAPI application: routers, the web UI, the edge middleware and the lifespan.

uvicorn --factory zhiku.server.app:app_from_env      # what ``zhiku serve`` runs
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhiku import __version__
from zhiku.backends.config import load_settings
from zhiku.channels import widget
from zhiku.channels.runtime import ChannelsRuntime
from zhiku.errors import ZhikuError
from zhiku.index.config import IndexConfig
from zhiku.retention import RetentionScheduler
from zhiku.server import errors, uploads
from zhiku.server.deps import LocalStores, ServerState
from zhiku.server.errors import ApiError, error_body
from zhiku.server.ids import IdCodec, new_token
from zhiku.server.jobs import IngestWorkers, reclaim_dead_workers
from zhiku.server.observability import Metrics
from zhiku.server.pool import EnginePool, PoolTimeout
from zhiku.server.ratelimit import make_limiter
from zhiku.server.routes import (
    access,
    admin,
    ask,
    channels,
    documents,
    kbs,
    loop,
    openai,
    signin,
    sources,
    system,
)
from zhiku.server.settings import ServerSettings
from zhiku.server.signin import SignIn
from zhiku.server.writes import gate_for
from zhiku.storage.db import Database
from zhiku.store import database_target

log = logging.getLogger("zhiku.server")
access_log = logging.getLogger("zhiku.server.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_UPLOAD_PATH = re.compile(r"^/api/v1/kbs/[^/]+/documents/?$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def web_dir() -> Path:
    return Path(str(resources.files("zhiku") / "web"))


class EdgeMiddleware:
    """Request ids, body-size limits, security headers, metrics and one JSON log line
    per request — plain ASGI, so streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: ServerState = self.fastapi_app.state.zhiku
        headers = dict(scope.get("headers") or [])
        rid_in = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = rid_in if _REQUEST_ID.match(rid_in) else new_token(9)
        scope.setdefault("state", {})["request_id"] = rid
        method, path = scope["method"], scope["path"]
        upload = method == "POST" and bool(_UPLOAD_PATH.match(path))
        s = state.settings
        limit = s.max_request_bytes if upload else s.max_json_kb * 1024
        shown = f"{limit / 1024 / 1024:.0f} MB" if upload else f"{limit // 1024} KB"
        status = 500
        started = False
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                hdrs = list(message.get("headers", []))
                names = {k.lower() for k, _ in hdrs}
                hdrs.append((b"x-request-id", rid.encode()))
                own_csp = b"content-security-policy" in names  # the widget frame's ancestors
                hdrs.extend(
                    h
                    for h in SECURITY_HEADERS
                    if h[0] not in names and not (own_csp and h[0] == b"x-frame-options")
                )
                if path.startswith(("/api/", "/v1/")) and b"cache-control" not in names:
                    hdrs.append((b"cache-control", b"no-store"))
                message = {**message, "headers": hdrs}
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "payload_too_large", limit=shown)
            return message

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > limit:
                await self._reject(
                    scope, receive, send_wrapper, 413, "payload_too_large", limit=shown
                )
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except ApiError as exc:  # raised by receive_wrapper outside a route
            if not started:
                await self._reject(scope, receive, send_wrapper, exc.status, exc.code, **exc.params)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                "/static" if path.startswith("/static/") else "unmatched"
            )
            state.metrics.inc(
                "zhiku_http_requests_total",
                {"method": method, "route": template, "status": str(status)},
            )
            state.metrics.observe(
                "zhiku_http_request_duration_seconds", elapsed, {"route": template}
            )
            if not path.startswith("/static/"):
                st = scope.get("state", {})
                access_log.info(
                    "request",
                    extra={
                        "request_id": rid,
                        "method": method,
                        "path": path,
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "user": st.get("user"),
                        "key": st.get("key"),
                        "client": (scope.get("client") or [None])[0],
                    },
                )

    @staticmethod
    async def _reject(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, **params: Any
    ) -> None:
        request = Request(scope, receive)
        response = JSONResponse(
            error_body(request, status, code, **params),
            status_code=status,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def serve_database(home: Path) -> str | Path:
    """The server's database: ``<home>/zhiku.db``, or the PostgreSQL URL of the
    ``database`` setting (shared by every node, docs/operators/scale.md)."""
    return database_target(home, load_settings(home).database)


def _state(settings: ServerSettings) -> ServerState:
    stores = LocalStores(serve_database(settings.home))
    store = stores.get()  # opens the database and applies migrations
    run = settings.home / "run"
    shared: Callable[[], Database] | None = None
    if store.dialect == "postgresql":
        # Several nodes may share this database: limits and metrics are counted there.
        def shared() -> Database:
            return stores.get().database

    return ServerState(
        settings=settings,
        stores=stores,
        pool=EnginePool(settings.home, settings.engines),
        metrics=Metrics(None, shared) if shared else Metrics(run / "metrics"),
        limiter=make_limiter(settings.rate_limit, settings.rate_burst, shared, "key"),
        auth_failures=make_limiter(30.0, 30, shared, "auth"),
        ids=IdCodec.for_store(store),
        gate=gate_for(store.database.dialect, run / "write.lock"),
        shared=shared,
    )


def _warn_local_indexes(state: ServerState) -> None:
    """On a shared database, a KB on the embedded index is indexed on each node's disk:
    another node's changes never reach it (docs/operators/scale.md)."""
    for kb in state.store.list_kbs():
        try:
            cfg = IndexConfig.of(kb)
        except ZhikuError:  # refused with its message when the KB is used
            continue
        uri = cfg.milvus_uri(state.settings.home) if cfg.backend == "milvus" else ""
        if cfg.backend != "milvus" or not uri.startswith(("http://", "https://")):
            log.warning(
                "knowledge base on a node-local index: with several nodes, use a "
                "Milvus server (zhiku kb create --index milvus --milvus-uri http://…)",
                extra={"kb": kb.name, "index": cfg.backend},
            )


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The zhiku server application on ``settings.home`` (default: from the environment)."""
    settings = settings or ServerSettings.from_env()
    state = _state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in anyio's thread pool (40 threads by default). The work is
        # CPU-bound Python: more threads than this only queue on the GIL, unfairly, while
        # requests waiting for a token queue in arrival order.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        uploads.clean_stale_tmp(settings.home)  # left by an interrupted upload
        if settings.ingest_worker:

            def on_file(status: str, info: dict[str, Any]) -> None:
                state.metrics.inc("zhiku_ingest_files_total", {"status": status})
                channels_runtime.document_ingested(status, info)

            reclaim_dead_workers(state.store)
            state.worker = IngestWorkers(
                settings.home,
                settings.ingest_threads,
                stale_s=settings.stale_job_s,
                on_file=on_file,
            )
            state.worker.start()
        state.metrics.start(settings.metrics_flush_s)
        if state.shared is not None:
            _warn_local_indexes(state)
        retention = RetentionScheduler(state.stores.path, settings.home).start()
        channels_runtime.start()
        state.ready = True
        log.info("zhiku server ready", extra={"home": str(settings.home), "version": __version__})
        try:
            yield
        finally:
            state.ready = False
            if state.worker is not None:
                log.info("stopping: finishing the current ingestion file")
                stopped = await run_in_threadpool(state.worker.stop, settings.shutdown_timeout_s)
                if not stopped:
                    log.warning("ingest worker still busy after the shutdown timeout")
            channels_runtime.stop()
            state.metrics.stop()
            retention.stop()
            state.pool.close()
            state.stores.close()
            state.gate.close()
            log.info("zhiku server stopped")

    app = FastAPI(
        title="zhiku 知庫",
        version=__version__,
        summary="On-premise, Traditional-Chinese-first knowledge assistant with cited answers",
        description=(
            "Authenticate with `Authorization: Bearer <API key>` (`zhiku keys create`). "
            'Errors are JSON: `{"error": {"code", "message", "type", "status"}}`.'
        ),
        docs_url=None,  # Swagger UI would load from a CDN; the schema is at /openapi.json
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.zhiku = state
    app.state.signin = SignIn()  # ZHIKU_AUTH_*, ZHIKU_LDAP_*, ZHIKU_OIDC_* (docs/admins/signin.md)
    channels_runtime = ChannelsRuntime(state)
    app.state.channels = channels_runtime
    app.state.line = channels_runtime.line
    errors.install(app)

    @app.exception_handler(PoolTimeout)
    async def _overloaded(request: Request, exc: PoolTimeout) -> JSONResponse:
        return errors.error_response(request, 503, "overloaded", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"request_id": getattr(request.state, "request_id", None)},
        )
        return errors.error_response(request, 500, "internal")

    for r in (
        system.router,
        kbs.router,
        documents.router,
        ask.router,
        admin.router,
        openai.router,
        sources.router,
        access.router,
        signin.router,
        channels.router,
        widget.router,
        loop.router,
    ):
        app.include_router(r)

    web = web_dir()
    app.mount("/static", StaticFiles(directory=web), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(web / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_middleware(EdgeMiddleware, fastapi_app=app)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app)."""
    return create_app(ServerSettings.from_env())
