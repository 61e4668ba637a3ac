"""The knowledge engine: one object that owns the store and the per-KB indexes.

Everything the CLI and (later) the server do goes through :class:`Zhiku`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zhiku import text as ztext
from zhiku.answer import ExtractiveAnswerer
from zhiku.chunk import chunk_blocks
from zhiku.config import DEFAULT_KB, home_dir
from zhiku.lexical import LexicalIndex, ProgressFn
from zhiku.models import Answer, Hit, LoadedDocument
from zhiku.pii import PiiPolicy, redact, redact_for_ingest
from zhiku.store import KnowledgeBase, Store


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mask_at_ingest(loaded: LoadedDocument, policy: PiiPolicy, secret: bytes) -> Counter[str]:
    """Mask personal data in place before anything is stored; returns counts per type."""
    counts: Counter[str] = Counter()
    if not policy.masks_at_ingest:
        return counts

    def clean(text: str) -> str:
        out, c = redact_for_ingest(text, policy, secret=secret)
        counts.update(c)
        return out

    loaded.title = clean(loaded.title)
    for b in loaded.blocks:
        b.text = clean(b.text)
        if b.label:
            b.label = clean(b.label)
        b.heading_path = tuple(clean(h) for h in b.heading_path)
    return counts


class Zhiku:
    """The embedded engine on one data directory (``ZHIKU_HOME``)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = home_dir(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.home / "zhiku.db")
        self._indexes: dict[int, LexicalIndex] = {}
        self._lock = threading.RLock()
        self.answerer = ExtractiveAnswerer()

    def close(self) -> None:
        with self._lock:
            for idx in self._indexes.values():
                idx.close()
            self._indexes.clear()
            self.store.close()

    def __enter__(self) -> Zhiku:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- knowledge bases ----------------------------------------------------------

    def kb(self, name: str = DEFAULT_KB, create: bool = False) -> KnowledgeBase:
        """A knowledge base; ``create`` makes it, with the privacy-by-default PII policy."""
        if create:
            return self.store.ensure_kb(name, {"pii": PiiPolicy.default().to_dict()})
        return self.store.get_kb(name)

    @staticmethod
    def pii_policy(kb: KnowledgeBase) -> PiiPolicy:
        return PiiPolicy.from_dict(kb.settings.get("pii"))

    def set_pii_policy(self, name: str, policy: PiiPolicy) -> KnowledgeBase:
        """Change a KB's policy. Stricter ingest masking applies to files ingested from
        now on; ``zhiku sync`` does not re-read unchanged files, ``reingest`` does."""
        return self.store.update_kb_settings(name, {"pii": policy.to_dict()})

    def index(self, kb: str | KnowledgeBase) -> LexicalIndex:
        kbo = kb if isinstance(kb, KnowledgeBase) else self.store.get_kb(kb)
        with self._lock:
            idx = self._indexes.get(kbo.id)
            if idx is None:
                idx = LexicalIndex(self.home / "index", self.store, kbo)
                self._indexes[kbo.id] = idx
            return idx

    def delete_kb(self, name: str) -> None:
        kbo = self.store.get_kb(name)
        with self._lock:
            idx = self._indexes.pop(kbo.id, None)
            if idx is not None:
                idx.close()
            self.store.delete_kb(name)
            import shutil

            shutil.rmtree(self.home / "index" / f"kb-{kbo.id}", ignore_errors=True)

    # --- writing --------------------------------------------------------------------

    def add_loaded(
        self,
        kb: str,
        path: str,
        loaded: LoadedDocument,
        *,
        content_hash: str | None = None,
        size: int | None = None,
        mtime: float | None = None,
    ) -> tuple[int, int, Counter[str]]:
        """Store a loaded document (atomically). Returns (doc id, chunks, masked counts)."""
        kbo = self.store.get_kb(kb)
        masked = _mask_at_ingest(loaded, self.pii_policy(kbo), kbo.secret)
        chunks, full = chunk_blocks(loaded.blocks)
        if content_hash is None:
            content_hash = hashlib.sha256(full.encode("utf-8")).hexdigest()
        doc_id = self.store.put_document(
            kb, path=path, title=loaded.title, kind=loaded.kind, content_hash=content_hash,
            size=len(full.encode("utf-8")) if size is None else size, chunks=chunks,
            mtime=mtime, pages=loaded.pages, meta=loaded.meta,
        )
        return doc_id, len(chunks), masked

    def remove(self, kb: str, path: str) -> bool:
        return self.store.delete_document(kb, path)

    def sync_index(self, kb: str, progress: ProgressFn | None = None,
                   keep_writer: bool = False) -> int:
        return self.index(kb).sync(progress, keep_writer=keep_writer)

    # --- reading --------------------------------------------------------------------

    def search(
        self, query: str, kbs: str | Sequence[str] = DEFAULT_KB, k: int = 10
    ) -> list[Hit]:
        """Ranked passages for ``query`` from the given knowledge bases only."""
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        tokens = ztext.query_tokens(query)
        scored: list[tuple[int, float]] = []
        kb_ids = []
        for name in names:
            kbo = self.store.get_kb(name)
            kb_ids.append(kbo.id)
            scored.extend(self.index(kbo).search(tokens, k=k))
        if len(names) > 1:
            scored.sort(key=lambda x: x[1], reverse=True)
            scored = scored[:k]
        hits = self.store.hits_for(scored, kb_ids)
        policies = {n: self.pii_policy(self.store.get_kb(n)) for n in names}
        for h in hits:
            pol = policies[h.kb]
            # In "ingest" mode the stored text is already masked; "output" masks here.
            if pol.mode == "output" and pol.types:
                h.text = redact(h.text, pol)[0]
                h.doc_title = redact(h.doc_title, pol)[0]
                if h.section:
                    h.section = redact(h.section, pol)[0]
        return hits

    def term_stats(
        self, query: str, kbs: str | Sequence[str] = DEFAULT_KB
    ) -> dict[str, tuple[int, float]]:
        """(df, idf) of the query's tokens; over several KBs, the sum of dfs."""
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        tokens = ztext.query_tokens(query)
        out: dict[str, tuple[int, float]] = {}
        for name in names:
            for t, (df, idf) in self.index(name).term_stats(tokens).items():
                pdf, pidf = out.get(t, (0, 0.0))
                out[t] = (pdf + df, max(pidf, idf) if df or not pdf else pidf)
        return out

    def ask(self, question: str, kbs: str | Sequence[str] = DEFAULT_KB, k: int = 5) -> Answer:
        t0 = time.perf_counter()
        hits = self.search(question, kbs, k=k)
        t1 = time.perf_counter()
        ans = self.answerer.answer(question, hits, self.term_stats(question, kbs))
        ans.timings.update({"retrieve_ms": (t1 - t0) * 1000,
                            "total_ms": (time.perf_counter() - t0) * 1000})
        return ans

    def ask_stream(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Answer as a stream of events, for the CLI and for Server-Sent Events.

        Yields ``{"type": "delta", "text": str}`` events whose texts concatenate to the
        answer, then one ``{"type": "done", "answer": Answer.to_dict()}``. ``history``
        holds earlier turns (``{"role": "user"|"assistant", "content": str}``).
        """
        ans = self.ask(question, kbs, k=k)
        yield {"type": "delta", "text": ans.text}
        yield {"type": "done", "answer": ans.to_dict()}

    def stats(self) -> dict[str, Any]:
        return self.store.stats()
