"""Domain exceptions. The core raises these; each edge (CLI, HTTP) translates them once."""

from __future__ import annotations

from typing import Any


class ZhikuError(Exception):
    """Base class for every error zhiku raises on purpose."""

    exit_code = 1


class LoadError(ZhikuError):
    """A file could not be turned into a document. ``reason`` is a short code."""

    def __init__(self, path: str, reason: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        # unsupported | empty | corrupt | encrypted | too_large | encoding | bomb |
        # too_deep | missing_tool | ocr_unavailable | timeout (docs/admins/formats.md)
        self.reason = reason
        self.message = message


class UnsupportedFile(LoadError):
    def __init__(self, path: str, message: str = "不支援的檔案格式") -> None:
        super().__init__(path, "unsupported", message)


class KnowledgeBaseNotFound(ZhikuError):
    exit_code = 3

    def __init__(self, kb: str) -> None:
        super().__init__(f"找不到知識庫「{kb}」")
        self.kb = kb


class DocumentNotFound(ZhikuError):
    exit_code = 3

    def __init__(self, ref: str) -> None:
        super().__init__(f"找不到文件「{ref}」")
        self.ref = ref


class StoreError(ZhikuError):
    """The store is unusable (schema from a newer zhiku, corrupt database…)."""

    exit_code = 4


class InvalidInput(ZhikuError):
    """A value given by the user that cannot be used (a KB name, an option…)."""

    exit_code = 2


# --- the one mapping from domain errors to CLI exit codes and HTTP statuses ------------
#
# Every ZhikuError carries its exit code (``exit_code``, by class); the HTTP status follows
# from it here. A broken store or an unreachable model is the server's problem (503),
# never the client's (400).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "failed (some files or the answer: refused, not loaded)",
    2: "invalid input: options, settings, configuration, filters, policies",
    3: "not found: knowledge base, document, source",
    4: "data directory unusable: store, backup, folder",
    5: "model backend unavailable",
}
HTTP_STATUS: dict[int, int] = {1: 400, 2: 400, 3: 404, 4: 503, 5: 503}


def exit_code(exc: BaseException) -> int:
    """The CLI exit code of ``exc`` (1 for anything that is not a ZhikuError)."""
    return int(getattr(exc, "exit_code", 1)) if isinstance(exc, ZhikuError) else 1


def http_error(exc: ZhikuError) -> tuple[int, str, str | None, dict[str, Any]]:
    """``(status, code, message, params)`` of the JSON error answering ``exc``.

    ``code`` is the stable error code (a key ``api.<code>`` of :mod:`zhiku.messages`);
    ``message`` is None when the catalogue words it, else the error's own text.
    """
    code_ = exit_code(exc)
    status = HTTP_STATUS.get(code_, 500)
    if isinstance(exc, KnowledgeBaseNotFound):
        return status, "kb_not_found", None, {"kb": exc.kb}
    if isinstance(exc, DocumentNotFound):
        return status, "document_not_found", None, {}
    if isinstance(exc, StoreError):
        return status, "store_error", None, {"detail": str(exc)}
    detail: dict[str, Any] = {"detail": str(exc)}
    if code_ == 3:
        return status, "not_found", str(exc), {}
    if code_ == 4:
        return status, "unavailable", None, detail
    if code_ == 5:
        return status, "model_error", None, detail
    return status, "invalid_request", None, detail
