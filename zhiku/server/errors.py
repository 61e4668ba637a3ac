"""One JSON error shape for every endpoint, the OpenAI-compatible ones included.

    {"error": {"code": "kb_not_found", "message": "找不到知識庫「x」",
               "type": "not_found_error", "status": 404, "request_id": "…"}}

``code`` is stable (clients switch on it), ``message`` is for people: zh-TW, or English
when the request's ``Accept-Language`` starts with ``en``. ``type`` follows the OpenAI
error types so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhiku.errors import DocumentNotFound, KnowledgeBaseNotFound, StoreError, ZhikuError
from zhiku.server.accounts import AccountError

MESSAGES: dict[str, tuple[str, str]] = {
    "unauthorized": ("需要有效的 API 金鑰（Authorization: Bearer …）",
                     "A valid API key is required (Authorization: Bearer …)"),
    "forbidden": ("你的角色沒有這項操作的權限", "Your role does not allow this operation"),
    "admin_only": ("只有管理員可以執行這項操作", "Only administrators can do this"),
    "kb_not_found": ("找不到知識庫「{kb}」", "Knowledge base “{kb}” not found"),
    "kb_exists": ("知識庫「{kb}」已存在", "Knowledge base “{kb}” already exists"),
    "no_kb": ("沒有可用的知識庫", "No knowledge base is available to you"),
    "document_not_found": ("找不到文件", "Document not found"),
    "passage_not_found": ("找不到段落", "Passage not found"),
    "job_not_found": ("找不到匯入工作", "Ingestion job not found"),
    "source_not_found": ("找不到來源「{name}」", "Source “{name}” not found"),
    "conversation_not_found": ("找不到對話", "Conversation not found"),
    "answer_not_found": ("找不到回答", "Answer not found"),
    "conversation_kb_mismatch": ("這段對話屬於另一個知識庫", "This conversation belongs to another "
                                 "knowledge base"),
    "not_reingestable": ("這份文件的原始檔不在伺服器上，無法重新匯入",
                         "The original file of this document is not on the server"),
    "not_found": ("找不到這個網址", "No such URL"),
    "method_not_allowed": ("不支援這個 HTTP 方法", "HTTP method not allowed"),
    "invalid_request": ("請求格式錯誤：{detail}", "Invalid request: {detail}"),
    "invalid_json": ("請求內容不是合法的 JSON", "The request body is not valid JSON"),
    "question_too_long": ("問題太長（上限 {limit} 字）",
                          "The question is too long (limit {limit})"),
    "no_files": ("請以 multipart 欄位 files 上傳至少一個檔案",
                 "Upload at least one file in the multipart field “files”"),
    "too_many_files": ("一次最多上傳 {limit} 個檔案", "At most {limit} files per upload"),
    "payload_too_large": ("請求內容過大（上限 {limit}）", "Request body too large (limit {limit})"),
    "rate_limited": ("請求過於頻繁，請 {retry} 秒後再試", "Too many requests; retry in {retry} s"),
    "too_many_auth_failures": ("驗證失敗次數過多，請稍後再試",
                               "Too many failed authentications; try again later"),
    "model_not_found": ("找不到模型（知識庫）「{kb}」", "Model (knowledge base) “{kb}” not found"),
    "no_user_message": ("messages 中沒有使用者提問", "messages holds no user message"),
    "overloaded": ("伺服器忙碌中，請稍後再試", "The server is busy; try again shortly"),
    "store_error": ("資料庫錯誤：{detail}", "Store error: {detail}"),
    "invalid_policy": ("個資政策不合法：{detail}", "Invalid PII policy: {detail}"),
    "line_channel_not_found": ("找不到 LINE 頻道「{name}」", "LINE channel “{name}” not found"),
    "line_bad_signature": ("X-Line-Signature 簽章不符", "X-Line-Signature does not match"),
    "channel_error": ("{detail}", "{detail}"),
    "widget_key_invalid": ("網站小工具金鑰無效", "Invalid widget key"),
    "widget_origin_refused": ("此網站未獲准使用這個小工具", "This site may not use this widget"),
    "delivery_not_found": ("找不到 webhook 傳送紀錄", "Webhook delivery not found"),
    "internal": ("伺服器內部錯誤（request id：{request_id}）",
                 "Internal server error (request id: {request_id})"),
}

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
          413: "invalid_request_error", 415: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}


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
    zh, en = MESSAGES.get(code, (code, code))
    template = en if lang == "en" else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def error_body(request: Request, status: int, code: str, message: str | None = None,
               **params: Any) -> dict[str, Any]:
    rid = getattr(request.state, "request_id", None) or request.scope.get("request_id")
    params.setdefault("request_id", rid)
    return {"error": {
        "code": code,
        "message": message or message_for(code, request_lang(request), **params),
        "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "status": status,
        "request_id": rid,
    }}


def error_response(request: Request, status: int, code: str, message: str | None = None,
                   headers: dict[str, str] | None = None, **params: Any) -> JSONResponse:
    return JSONResponse(error_body(request, status, code, message, **params), status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    """Translate every exception once, at the edge."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.headers,
                              **exc.params)

    @app.exception_handler(KnowledgeBaseNotFound)
    async def _kb(request: Request, exc: KnowledgeBaseNotFound) -> JSONResponse:
        return error_response(request, 404, "kb_not_found", kb=exc.kb)

    @app.exception_handler(DocumentNotFound)
    async def _doc(request: Request, exc: DocumentNotFound) -> JSONResponse:
        return error_response(request, 404, "document_not_found")

    @app.exception_handler(AccountError)
    async def _account(request: Request, exc: AccountError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        return error_response(request, 400, "store_error", detail=str(exc))

    @app.exception_handler(ZhikuError)
    async def _zhiku(request: Request, exc: ZhikuError) -> JSONResponse:
        return error_response(request, 400, "invalid_request", detail=str(exc))

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
            exc.status_code, "invalid_request")
        return error_response(request, exc.status_code, code, detail=str(exc.detail),
                              headers=getattr(exc, "headers", None))
