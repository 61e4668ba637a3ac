"""One JSON error shape for every endpoint, the OpenAI-compatible ones included.

    {"error": {"code": "kb_not_found", "message": "找不到知識庫「x」",
               "type": "not_found_error", "status": 404, "request_id": "…"}}

``code`` is stable (clients switch on it), ``message`` is for people: zh-TW, or English
when the request's ``Accept-Language`` starts with ``en``. ``type`` follows the OpenAI
error types so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhiku.errors import ZhikuError, http_error
from zhiku.messages import MESSAGES, t
from zhiku.server.accounts import AccountError

log = logging.getLogger("zhiku.server")


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


class ApiError(Exception):
    """An error answered as JSON with ``status`` and the stable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.params = params


def not_found(code: str = "kb_not_found", **params: Any) -> ApiError:
    return ApiError(404, code, **params)


def request_lang(request: Request) -> str:
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"


def message_for(code: str, lang: str, **params: Any) -> str:
    """The catalogue's message ``api.<code>`` (:mod:`zhiku.messages`) in ``lang``."""
    if f"api.{code}" not in MESSAGES:
        return code
    return t(f"api.{code}", "en" if lang == "en" else "zh-TW", **params)


def error_body(
    request: Request, status: int, code: str, message: str | None = None, **params: Any
) -> dict[str, Any]:
    rid = getattr(request.state, "request_id", None) or request.scope.get("request_id")
    params.setdefault("request_id", rid)
    return {
        "error": {
            "code": code,
            "message": message or message_for(code, request_lang(request), **params),
            "type": _TYPES.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            ),
            "status": status,
            "request_id": rid,
        }
    }


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> JSONResponse:
    return JSONResponse(
        error_body(request, status, code, message, **params), status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    """Translate every exception once, at the edge."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.headers, **exc.params)

    @app.exception_handler(AccountError)
    async def _account(request: Request, exc: AccountError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(ZhikuError)
    async def _zhiku(request: Request, exc: ZhikuError) -> JSONResponse:
        # Every domain error through the one mapping (zhiku.errors.http_error).
        status, code, message, params = http_error(exc)
        if status >= 500:
            log.warning("%s answered %d: %s", type(exc).__name__, status, exc)
        return error_response(request, status, code, message, **params)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return error_response(request, 422, "invalid_json")
        detail = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg', '')}"
            for e in errs[:5]
        )
        return error_response(request, 422, "invalid_request", detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request"
        )
        return error_response(
            request,
            exc.status_code,
            code,
            detail=str(exc.detail),
            headers=getattr(exc, "headers", None),
        )
