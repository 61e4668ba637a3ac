"""The knowledge engine's façade: one object on one data directory (``ZHIKU_HOME``).

The CLI, the server, the sources and the benches use :class:`Zhiku`; it owns the store
and delegates every call to one of the services in :mod:`zhiku.services` (models,
indexes, retrieval, answering, KB administration and calibration, ingestion), which
hold the code. See docs/developers/services.md for the seams.

Models are optional (:mod:`zhiku.backends`, configured in ``zhiku.toml``): with an
embedder a KB also gets a vector index and hybrid search, with a reranker the fused
top N is reordered, with a chat model answers are generated from the retrieved
passages and their citations verified (:mod:`zhiku.generate`). Whenever a model is
missing, down or talking nonsense, the same call falls back to lexical search and the
extractive answer, and says why in ``Answer.warnings``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.answer import ExtractiveAnswerer
from zhiku.backends import (
    BackendConfig,
    ChatModel,
    Embedder,
    KbModelConfig,
    ModelSettings,
    Reranker,
    load_settings,
)
from zhiku.calibration import MAX_REFUSED, RefusalCalibration
from zhiku.config import DEFAULT_KB, home_dir
from zhiku.filters import Filter
from zhiku.hybrid import CalibrationResult
from zhiku.index import LexicalBackend, VectorBackend
from zhiku.lexical import ProgressFn
from zhiku.models import Answer, Hit, LoadedDocument
from zhiku.pii import PiiPolicy
from zhiku.services import privacy
from zhiku.services.answering import AnswerDelta, AnswerDone, AnswerEvent, AnsweringService
from zhiku.services.context import QUERY_EMBED_LIMIT, EmbedProgressFactory, EngineContext
from zhiku.services.indexes import IndexService
from zhiku.services.ingestion import IngestionService, file_hash
from zhiku.services.kbs import KbService, default_kb_settings
from zhiku.services.models import ModelService
from zhiku.services.retrieval import SEARCH_MODES, VOCAB_SAMPLE, Retrieval, RetrievalService
from zhiku.store import KnowledgeBase, Store, database_target

if TYPE_CHECKING:
    from zhiku.vectors import SyncReport

__all__ = [
    "QUERY_EMBED_LIMIT",
    "SEARCH_MODES",
    "VOCAB_SAMPLE",
    "EmbedProgressFactory",
    "Retrieval",
    "Zhiku",
    "file_hash",
]


class Zhiku:
    """The embedded engine on one data directory (``ZHIKU_HOME``)."""

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        settings: ModelSettings | None = None,
        database: str | Path | None = None,
    ) -> None:
        home_path = home_dir(home)
        home_path.mkdir(parents=True, exist_ok=True)
        # Model configuration first: a broken zhiku.toml fails before anything opens.
        model_settings = load_settings(home_path) if settings is None else settings
        # ``database``: a SQLite file or a postgresql:// URL, else the configured one.
        store = Store(database or database_target(home_path, model_settings.database))
        self.ctx = EngineContext(home=home_path, store=store, settings=model_settings)
        self.models = ModelService(self.ctx)
        self.indexes = IndexService(self.ctx, self.models)
        self.retrieval = RetrievalService(self.ctx, self.models, self.indexes)
        self.answering = AnsweringService(self.ctx, self.models, self.retrieval)
        self.kbs = KbService(self.ctx, self.models, self.indexes, self.retrieval, self.answering)
        self.ingestion = IngestionService(self.ctx, self.indexes, self.kbs)
        self.indexes.discard_stale()

    # --- shared state and front-end hooks --------------------------------------------

    @property
    def home(self) -> Path:
        return self.ctx.home

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def settings(self) -> ModelSettings:
        return self.ctx.settings

    @settings.setter
    def settings(self, value: ModelSettings) -> None:
        self.ctx.settings = value

    @property
    def answerer(self) -> ExtractiveAnswerer:
        return self.answering.answerer

    @property
    def embed_progress(self) -> EmbedProgressFactory | None:
        """A progress display for embedding, set by the front end."""
        return self.ctx.embed_progress

    @embed_progress.setter
    def embed_progress(self, value: EmbedProgressFactory | None) -> None:
        self.ctx.embed_progress = value

    @property
    def on_warning(self) -> Callable[[str], None] | None:
        """Where warnings without an Answer to travel in (ingest) are shown."""
        return self.ctx.on_warning

    @on_warning.setter
    def on_warning(self, value: Callable[[str], None] | None) -> None:
        self.ctx.on_warning = value

    @property
    def query_embed_limit(self) -> int:
        return self.ctx.query_embed_limit

    @query_embed_limit.setter
    def query_embed_limit(self, value: int) -> None:
        self.ctx.query_embed_limit = value

    def close(self) -> None:
        with self.ctx.lock:
            self.indexes.close()
            self.models.close()
            self.ctx.store.close()

    def __enter__(self) -> Zhiku:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- knowledge bases (KbService) ---------------------------------------------------

    def kb(self, name: str = DEFAULT_KB, create: bool = False) -> KnowledgeBase:
        return self.kbs.kb(name, create)

    @staticmethod
    def default_kb_settings() -> dict[str, Any]:
        return default_kb_settings()

    @staticmethod
    def pii_policy(kb: KnowledgeBase) -> PiiPolicy:
        return privacy.pii_policy(kb)

    def tw_output(self, name: str, language: str = "zh-TW") -> bool:
        return self.answering.tw_output(name, language)

    def set_pii_policy(self, name: str, policy: PiiPolicy) -> KnowledgeBase:
        return self.kbs.set_pii_policy(name, policy)

    def delete_kb(self, name: str) -> None:
        self.kbs.delete_kb(name)

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    # --- writing (IngestionService) ----------------------------------------------------

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
        return self.ingestion.add_loaded(
            kb,
            path,
            loaded,
            content_hash=content_hash,
            size=size,
            mtime=mtime,
            meta=meta,
            parent_id=parent_id,
        )

    def remove(self, kb: str, path: str) -> bool:
        return self.ingestion.remove(kb, path)

    def sync_index(
        self, kb: str, progress: ProgressFn | None = None, keep_writer: bool = False
    ) -> int:
        return self.ingestion.sync_index(kb, progress, keep_writer)

    # --- models (ModelService) -----------------------------------------------------------

    def model_config(self, kb: str) -> KbModelConfig:
        return self.models.model_config(kb)

    def backend(self, cfg: BackendConfig) -> Any:
        return self.models.backend(cfg)

    def chat_model(self, kb: str) -> ChatModel | None:
        return self.models.chat_model(kb)

    def embedder(self, kb: str) -> Embedder | None:
        return self.models.embedder(kb)

    def reranker(self, kb: str) -> Reranker | None:
        return self.models.reranker(kb)

    # --- derived indexes (IndexService) ----------------------------------------------------

    def index(self, kb: str | KnowledgeBase) -> LexicalBackend:
        return self.indexes.index(kb)

    def vectors(self, kb: str | KnowledgeBase) -> VectorBackend:
        return self.indexes.vectors(kb)

    def sync_vectors(
        self, kb: str, *, rebuild: bool = False, wait: bool = True, max_embed: int | None = None
    ) -> SyncReport | None:
        return self.indexes.sync_vectors(kb, rebuild=rebuild, wait=wait, max_embed=max_embed)

    # --- output under the KB's PII policy (zhiku.services.privacy) -------------------------

    redact_output = staticmethod(privacy.redact_output)
    redact_path = staticmethod(privacy.redact_path)
    redact_json = staticmethod(privacy.redact_json)
    ingest_name = staticmethod(privacy.ingest_name)

    def redact_hit(self, kb: KnowledgeBase, h: Hit) -> Hit:
        return privacy.redact_hit(kb, h)

    # --- retrieval and vocabulary (RetrievalService) -----------------------------------------

    def retrieve(
        self,
        query: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 10,
        *,
        mode: str | None = None,
        rerank: bool | None = None,
        where: Filter | None = None,
        collapse: bool = False,
    ) -> Retrieval:
        return self.retrieval.retrieve(
            query, kbs, k, mode=mode, rerank=rerank, where=where, collapse=collapse
        )

    def search(
        self,
        query: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 10,
        *,
        mode: str | None = None,
        rerank: bool | None = None,
        where: Filter | None = None,
    ) -> list[Hit]:
        return self.retrieval.search(query, kbs, k, mode=mode, rerank=rerank, where=where)

    def term_stats(
        self, query: str, kbs: str | Sequence[str] = DEFAULT_KB
    ) -> dict[str, tuple[int, float]]:
        return self.retrieval.term_stats(query, kbs)

    def abbreviations(self, kb: str | KnowledgeBase) -> dict[str, str]:
        return self.retrieval.abbreviations(kb)

    def learn_vocabulary(self, kb: str) -> int:
        return self.retrieval.learn_vocabulary(kb)

    def query_terms(
        self, query: str, kbs: str | KnowledgeBase | Sequence[str], *, replace: bool = False
    ) -> list[str]:
        return self.retrieval.query_terms(query, kbs, replace=replace)

    # --- answers (AnsweringService) ------------------------------------------------------------

    def iter_answer(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
        where: Filter | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they come, then the final :class:`Answer`
        (:meth:`zhiku.services.answering.AnsweringService.iter_answer`)."""
        return self.answering.iter_answer(question, kbs, k, history, where=where)

    def answer_events(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
        where: Filter | None = None,
    ) -> Iterator[AnswerEvent]:
        """The answer as typed events (``AnswerDelta``\\ s, then one ``AnswerDone``)."""
        for item in self.iter_answer(question, kbs, k, history, where=where):
            if isinstance(item, Answer):
                yield AnswerDone(item)
            elif item:
                yield AnswerDelta(item)

    def ask(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        where: Filter | None = None,
    ) -> Answer:
        """The answer to ``question`` with its citations (see :meth:`iter_answer`)."""
        final: Answer | None = None
        for item in self.iter_answer(question, kbs, k, where=where):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def ask_stream(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
        where: Filter | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Answer as a stream of events, for the CLI and for Server-Sent Events.

        Yields ``{"type": "delta", "text": str}`` events whose texts concatenate to the
        answer, then one ``{"type": "done", "answer": Answer.to_dict()}`` (which also
        carries ``mode``, ``generative`` or ``extractive``, and ``warnings``).
        ``history`` holds earlier turns (``{"role": "user"|"assistant", "content": str}``);
        a follow-up is condensed into a standalone query before retrieval.
        """
        for event in self.answer_events(question, kbs, k, history, where=where):
            yield event.to_dict()

    def standalone_query(
        self,
        question: str,
        history: Sequence[dict[str, str]],
        names: Sequence[str],
        k: int = 5,
        where: Filter | None = None,
    ) -> str:
        return self.answering.standalone_query(question, history, names, k, where)

    def refusal_threshold(self, kb: str | Sequence[str]) -> float:
        return self.answering.refusal_threshold(kb)

    # --- calibration (KbService) -----------------------------------------------------------------

    def sample_questions(self, kb: str, n: int = 200, seed: int = 13) -> list[tuple[str, str]]:
        return self.kbs.sample_questions(kb, n, seed)

    def calibrate_fusion(
        self, kb: str, questions: Sequence[tuple[str, str]], *, depth: int = 50, save: bool = True
    ) -> CalibrationResult:
        return self.kbs.calibrate_fusion(kb, questions, depth=depth, save=save)

    def refusal_calibration(self, kb: str) -> RefusalCalibration | None:
        return self.kbs.refusal_calibration(kb)

    def calibrate_refusal(
        self, kb: str, *, save: bool = True, max_refused: float = MAX_REFUSED
    ) -> RefusalCalibration | None:
        return self.kbs.calibrate_refusal(kb, save=save, max_refused=max_refused)

    def refit_refusal_if_needed(self, kb: str) -> RefusalCalibration | None:
        return self.kbs.refit_refusal_if_needed(kb)
