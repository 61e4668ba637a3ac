"""Domain exceptions. The core raises these; each edge (CLI, HTTP) translates them once."""

from __future__ import annotations


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
