"""Ingestion: a loaded document → PII masking → chunks → the store → the indexes.

Loaders (:mod:`zhiku.loaders`, one registry by suffix) turn files into a
:class:`~zhiku.models.LoadedDocument`; folders, hashing and reports are
:mod:`zhiku.ingest`. Here the document is masked under the KB's policy *before* anything
is stored, chunked into citable passages, stored atomically, and the derived indexes
are caught up when a batch ends.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from zhiku.backends import ModelError
from zhiku.chunk import chunk_blocks
from zhiku.filters import normalize_meta
from zhiku.lexical import ProgressFn
from zhiku.models import LoadedDocument
from zhiku.pii import PiiPolicy, redact_for_ingest
from zhiku.services.context import EngineContext
from zhiku.services.indexes import IndexService
from zhiku.services.kbs import KbService
from zhiku.services.privacy import pii_policy


def file_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes (how ingest and the OCR cache key files)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mask_at_ingest(loaded: LoadedDocument, policy: PiiPolicy, secret: bytes) -> Counter[str]:
    """Mask personal data in place before anything is stored; returns counts per type."""
    counts: Counter[str] = Counter()
    if not policy.masks_at_ingest:
        return counts

    def clean(text: str) -> str:
        out, c = redact_for_ingest(text, policy, secret=secret)
        counts.update(c)
        return out

    def clean_value(value: Any) -> Any:
        if isinstance(value, str):
            return clean(value)
        if isinstance(value, list):
            return [clean_value(v) for v in value]
        if isinstance(value, dict):
            return {k: clean_value(v) for k, v in value.items()}
        return value

    loaded.title = clean(loaded.title)
    loaded.meta = clean_value(loaded.meta)  # front matter, author fields, Notion properties
    for b in loaded.blocks:
        b.text = clean(b.text)
        if b.label:
            b.label = clean(b.label)
        b.heading_path = tuple(clean(h) for h in b.heading_path)
    return counts


class IngestionService:
    """Writes documents into a KB and keeps its derived indexes caught up."""

    def __init__(self, ctx: EngineContext, indexes: IndexService, kbs: KbService) -> None:
        self.ctx = ctx
        self.indexes = indexes
        self.kbs = kbs

    def add_loaded(
        self,
        kb: str,
        path: str,
        loaded: LoadedDocument,
        *,
        content_hash: str | None = None,
        size: int | None = None,
        mtime: float | None = None,
        meta: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> tuple[int, int, Counter[str]]:
        """Store a loaded document (atomically). Returns (doc id, chunks, masked counts).

        ``meta`` (department, tags, dates… set by the uploader or a source) is merged
        over the loader's metadata; filterable keys are normalised (:mod:`zhiku.filters`).
        """
        store = self.ctx.store
        kbo = store.get_kb(kb)
        loaded.meta = normalize_meta({**loaded.meta, **(meta or {})})
        masked = mask_at_ingest(loaded, pii_policy(kbo), kbo.secret)
        chunks, full = chunk_blocks(loaded.blocks)
        if content_hash is None:
            content_hash = hashlib.sha256(full.encode("utf-8")).hexdigest()
        doc_id = store.put_document(
            kb,
            path=path,
            title=loaded.title,
            kind=loaded.kind,
            content_hash=content_hash,
            size=len(full.encode("utf-8")) if size is None else size,
            chunks=chunks,
            mtime=mtime,
            pages=loaded.pages,
            meta=loaded.meta,
            parent_id=parent_id,
        )
        return doc_id, len(chunks), masked

    def remove(self, kb: str, path: str) -> bool:
        return self.ctx.store.delete_document(kb, path)

    def sync_index(
        self, kb: str, progress: ProgressFn | None = None, keep_writer: bool = False
    ) -> int:
        """Apply queued changes to the lexical index and, when a batch ends
        (``keep_writer`` false) and the KB has an embedder, to its vectors."""
        n = self.indexes.index(kb).sync(progress, keep_writer=keep_writer)
        if not keep_writer:
            from zhiku.vectors import VectorsBusy

            try:
                self.indexes.sync_vectors(kb)
            except (ModelError, VectorsBusy) as exc:
                self.ctx.warn(
                    f"vectors_pending: 向量尚未更新（{exc}）；下次匯入或執行 "
                    "zhiku models embed 時會補上，檢索暫以關鍵字為主"
                )
            if n:
                self.kbs.refit_refusal_if_needed(kb)
        return n
