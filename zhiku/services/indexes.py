"""The per-KB derived indexes: the lexical (BM25, tantivy) index and the vectors.

Both are derived from the store (replayed from its index queue), opened on first use
and cached per KB; a stale one is discarded when the engine opens.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zhiku.index import LexicalBackend, VectorBackend, open_lexical, open_vectors
from zhiku.lexical import LexicalIndex
from zhiku.services.context import EngineContext
from zhiku.services.models import ModelService
from zhiku.store import KnowledgeBase

if TYPE_CHECKING:  # numpy comes with the vectors, imported when a KB has an embedder
    from zhiku.vectors import SyncReport


class IndexService:
    """Opens, caches, syncs and drops each KB's lexical index and vectors."""

    def __init__(self, ctx: EngineContext, models: ModelService) -> None:
        self.ctx = ctx
        self.models = models
        self._indexes: dict[int, LexicalBackend] = {}
        self._vectors: dict[int, VectorBackend] = {}

    def discard_stale(self) -> None:
        """Drop derived indexes that no longer match the store (run when opening)."""
        home, store = self.ctx.home, self.ctx.store
        for kb in store.list_kbs():
            LexicalIndex.discard_if_stale(home / "index", store, kb)
            if (home / "vectors" / f"kb-{kb.id}").exists():
                from zhiku.vectors import discard_if_stale as discard_stale_vectors

                discard_stale_vectors(home / "vectors", store, kb)

    def close(self) -> None:
        with self.ctx.lock:
            for idx in self._indexes.values():
                idx.close()
            self._indexes.clear()
            self._vectors.clear()

    def _derived(
        self, cache: dict[int, Any], cls: Any, folder: str, kb: str | KnowledgeBase
    ) -> Any:
        """The per-KB derived index of ``cls`` kept in ``cache``, opened on first use."""
        kbo = kb if isinstance(kb, KnowledgeBase) else self.ctx.store.get_kb(kb)
        with self.ctx.lock:
            found = cache.get(kbo.id)
            if found is None:
                found = cache[kbo.id] = cls(self.ctx.home / folder, self.ctx.store, kbo)
            return found

    def index(self, kb: str | KnowledgeBase) -> LexicalBackend:
        """The KB's lexical (BM25) index (embedded or Milvus: :mod:`zhiku.index`)."""
        found: LexicalBackend = self._derived(self._indexes, open_lexical, "index", kb)
        return found

    def vectors(self, kb: str | KnowledgeBase) -> VectorBackend:
        """The KB's vector index (embedded matrix or Milvus: :mod:`zhiku.index`)."""
        found: VectorBackend = self._derived(self._vectors, open_vectors, "vectors", kb)
        return found

    def forget(self, kbo: KnowledgeBase) -> None:
        """Close the KB's cached indexes (before the KB is deleted)."""
        with self.ctx.lock:
            idx = self._indexes.pop(kbo.id, None)
            if idx is not None:
                idx.close()
            self._vectors.pop(kbo.id, None)

    def remove_files(self, kbo: KnowledgeBase) -> None:
        """Delete the KB's derived index folders (after the KB is deleted)."""
        with self.ctx.lock:
            shutil.rmtree(self.ctx.home / "index" / f"kb-{kbo.id}", ignore_errors=True)
            self._vectors.pop(kbo.id, None)
            shutil.rmtree(self.ctx.home / "vectors" / f"kb-{kbo.id}", ignore_errors=True)

    def sync_vectors(
        self, kb: str, *, rebuild: bool = False, wait: bool = True, max_embed: int | None = None
    ) -> SyncReport | None:
        """Embed the KB's new chunks and drop deleted ones; None without an embedder.

        Embeds in batches through the embedding cache, showing progress through the
        context's ``embed_progress`` when the front end set one.
        """
        embedder = self.models.embedder(kb)
        if embedder is None:
            return None
        vi = self.vectors(kb)
        if not rebuild and vi.is_current(embedder):
            from zhiku.vectors import SyncReport

            return SyncReport()
        factory = self.ctx.embed_progress
        if factory is None:
            return vi.sync(embedder, wait=wait, max_embed=max_embed, rebuild=rebuild)
        with contextlib.ExitStack() as stack:
            box: dict[str, Callable[[int], None]] = {}

            def on_total(total: int) -> None:
                if total > 0:
                    box["step"] = stack.enter_context(factory(kb, total))

            def step(n: int) -> None:
                if "step" in box:
                    box["step"](n)

            return vi.sync(
                embedder, step, wait=wait, max_embed=max_embed, rebuild=rebuild, on_total=on_total
            )
