"""The two derived-index Protocols of a knowledge base.

Both indexes are *derived data*: the store (documents and chunks) is the truth, and an
index follows it. A document change is queued by the store in the same transaction
(``index_log``); :meth:`LexicalBackend.sync` applies the queued documents (their chunks
replaced, or removed when the document is gone), and :meth:`VectorBackend.sync`
reconciles the vector rows with the store's chunk ids. Each index records which
database and which state of it it was built from (its *sync state*) and rebuilds itself
from the store when that does not match (another database, a restored backup, another
tokenizer or model).

Restrictions are applied *inside* the query, never after it, so a restricted search
returns as many hits as asked when that many pass: ``where`` is a metadata
:class:`~zhiku.filters.Filter` (the ``--where`` of ``search`` / ``ask``), ``allowed`` a
set of chunk ids the caller may see (access control), ``excluded`` chunk ids never to
return.

Implementations: :class:`zhiku.lexical.LexicalIndex` and
:class:`zhiku.vectors.VectorIndex` (embedded), :class:`zhiku.index.milvus.MilvusLexicalIndex`
and :class:`zhiku.index.milvus.MilvusVectorIndex`. The contract suites in
``tests/test_index_contract.py`` are what an implementation must pass.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from zhiku.filters import Filter
from zhiku.store import KnowledgeBase, Store

if TYPE_CHECKING:  # numpy stays out of the command line's start-up (tests/test_startup.py)
    import numpy as np

    from zhiku.backends.base import Embedder
    from zhiku.vectors import SyncReport

ProgressFn = Callable[[int], None]
Ranked = list[tuple[int, float]]


@runtime_checkable
class LexicalBackend(Protocol):
    """The BM25 index of one knowledge base, fed with zhiku's own tokens
    (:func:`zhiku.text.tokenize` of :func:`zhiku.lexical.index_text`)."""

    store: Store
    kb: KnowledgeBase

    def sync(self, progress: ProgressFn | None = None, keep_writer: bool = False) -> int:
        """Apply the store's queued document changes (add, replace, delete); returns how
        many documents were re-indexed. Idempotent."""
        ...

    def rebuild(self, progress: ProgressFn | None = None) -> int:
        """Drop everything and index the KB again from the store."""
        ...

    def search(
        self,
        tokens: Sequence[str],
        k: int = 10,
        where: Filter | None = None,
        allowed: Collection[int] | None = None,
    ) -> Ranked:
        """BM25 OR-query of ``tokens``; (chunk id, score), best first. ``where`` and
        ``allowed`` restrict inside the query; an access scope in ``where`` scores with
        the statistics of the documents it lets through, other conditions never change
        the scores."""
        ...

    def term_stats(
        self, tokens: Sequence[str], where: Filter | None = None
    ) -> dict[str, tuple[int, float]]:
        """(document frequency, BM25 idf) of each token in this KB; with an access scope
        in ``where``, over the documents it lets through."""
        ...

    def num_docs(self) -> int:
        """How many chunks the index holds (after applying queued changes)."""
        ...

    def close(self) -> None: ...

    def destroy(self) -> None:
        """Remove the index entirely (its KB is being deleted)."""
        ...


@runtime_checkable
class VectorBackend(Protocol):
    """The dense index of one knowledge base: one L2-normalised vector per chunk, of
    one embedding model, ranked by cosine similarity (inner product)."""

    store: Store
    kb: KnowledgeBase

    def sync(
        self,
        embedder: Embedder,
        progress: ProgressFn | None = None,
        *,
        wait: bool = True,
        max_embed: int | None = None,
        rebuild: bool = False,
        on_total: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Embed the store's chunks the index lacks (through the embedding cache) and
        drop the ones the store no longer has; ``max_embed`` bounds the model calls
        (:class:`~zhiku.vectors.TooMuchToEmbed` before any)."""
        ...

    def is_current(self, embedder: Embedder) -> bool:
        """Holds this model's vectors for the store as it is now."""
        ...

    def model(self) -> str | None:
        """The model id of the vectors held, None when empty or never built."""
        ...

    def live_rows(self) -> int:
        """How many chunk vectors the index holds."""
        ...

    def meta(self) -> dict[str, Any] | None:
        """Model, dimension, rows and dead rows held (None when never built), as
        ``zhiku models status`` shows them."""
        ...

    def search(
        self,
        query_vec: np.ndarray,
        k: int = 10,
        *,
        allowed: Collection[int] | None = None,
        excluded: Collection[int] | None = None,
        where: Filter | None = None,
    ) -> Ranked:
        """Cosine search; (chunk id, similarity), best first, restricted inside the
        query."""
        ...

    def destroy(self) -> None:
        """Remove the index entirely (its KB is being deleted)."""
        ...
