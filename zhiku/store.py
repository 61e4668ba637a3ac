"""The embedded store, now :mod:`zhiku.storage.documents` (kept importable here)."""

from zhiku.storage.documents import (
    DATABASE_ENV,
    SCHEMA_VERSION,
    DocumentStore,
    KnowledgeBase,
    Store,
    database_target,
    lock_path,
    now_iso,
    open_lock,
)

__all__ = [
    "DATABASE_ENV",
    "SCHEMA_VERSION",
    "DocumentStore",
    "KnowledgeBase",
    "Store",
    "database_target",
    "lock_path",
    "now_iso",
    "open_lock",
]
