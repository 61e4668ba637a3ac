"""The knowledge engine: one object that owns the store and the per-KB indexes.

Everything the CLI and (later) the server do goes through :class:`Zhiku`.

Models are optional (:mod:`zhiku.backends`, configured in ``zhiku.toml``): with an
embedder a KB also gets a vector index and hybrid search, with a reranker the fused
top N is reordered, with a chat model answers are generated from the retrieved
passages and their citations verified (:mod:`zhiku.generate`). Whenever a model is
missing, down or talking nonsense, the same call falls back to lexical search and the
extractive answer, and says why in ``Answer.warnings``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku import text as ztext
from zhiku.answer import ExtractiveAnswerer, coverage, source_phrase
from zhiku.backends import (
    BackendConfig,
    ChatModel,
    ConfigError,
    Embedder,
    HybridConfig,
    KbModelConfig,
    ModelError,
    ModelSettings,
    Reranker,
    build,
    load_settings,
)
from zhiku.calibration import MAX_REFUSED, POSITIVES, RefusalCalibration, needs_refit
from zhiku.calibration import calibrate as calibrate_refusal
from zhiku.chunk import chunk_blocks
from zhiku.config import DEFAULT_KB, home_dir, lang
from zhiku.filters import Filter, normalize_meta
from zhiku.followup import is_elliptical, standalone, weigh_carried
from zhiku.generate import (
    REWRITE_HINTS,
    GenerationSettings,
    GenerativeAnswerer,
    condense_question,
    rewrite_query,
)
from zhiku.hybrid import CalibrationResult, calibrate, query_dense_weight, rrf
from zhiku.index import IndexConfig, LexicalBackend, VectorBackend, open_lexical, open_vectors
from zhiku.lexical import LexicalIndex, ProgressFn, index_text
from zhiku.models import Answer, Citation, Hit, LoadedDocument
from zhiku.pii import PiiPolicy, redact, redact_for_ingest, redact_name, redact_path
from zhiku.rank import DEPTH as RANK_DEPTH
from zhiku.rank import collapse_duplicates, reinforce
from zhiku.store import KnowledgeBase, Store, now_iso
from zhiku.vocab import expand as expand_terms
from zhiku.vocab import mine as mine_abbreviations

if TYPE_CHECKING:  # numpy comes with the vectors, imported when a KB has an embedder
    from zhiku.vectors import SyncReport

log = logging.getLogger("zhiku")

# (kb name, chunks to embed) -> a context manager yielding a step(n) callback.
EmbedProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
SEARCH_MODES = ("lexical", "dense", "hybrid")
# At query time at most this many chunks are embedded to catch the vectors up; a bigger
# backlog is left to ingest / ``zhiku models embed`` and the search runs on what exists.
QUERY_EMBED_LIMIT = 256
# Passages sampled to learn a KB's abbreviations (zhiku/vocab.py).
VOCAB_SAMPLE = 10_000


_SHARED_MODELS: dict[BackendConfig, Any] = {}
_SHARED_LOCK = threading.Lock()


@atexit.register
def _close_shared_models() -> None:
    """Free local models before interpreter teardown (llama.cpp needs its library then)."""
    with _SHARED_LOCK:
        for model in _SHARED_MODELS.values():
            with contextlib.suppress(Exception):
                model.close()
        _SHARED_MODELS.clear()


@dataclass(slots=True)
class Retrieval:
    """What :meth:`Zhiku.retrieve` found, how, and what went wrong on the way."""

    hits: list[Hit]
    mode: str = "lexical"
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Query-dependent fusion: the lexical evidence measured and the dense weight used
    # (None when no fusion ran); the query's vector, for answers that rest on it.
    evidence: float | None = None
    dense_weight: float | None = None
    query_vector: Any = None


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


class Zhiku:
    """The embedded engine on one data directory (``ZHIKU_HOME``)."""

    def __init__(
        self, home: str | Path | None = None, *, settings: ModelSettings | None = None
    ) -> None:
        self.home = home_dir(home)
        self.home.mkdir(parents=True, exist_ok=True)
        # Model configuration first: a broken zhiku.toml fails before anything opens.
        self.settings = load_settings(self.home) if settings is None else settings
        self.store = Store(self.home / "zhiku.db")
        self._indexes: dict[int, LexicalBackend] = {}
        self._vectors: dict[int, VectorBackend] = {}
        self._models: dict[BackendConfig, Any] = {}
        self._lock = threading.RLock()
        self.answerer = ExtractiveAnswerer()
        self._abbrev: dict[int, tuple[int, dict[str, str]]] = {}
        # Front-end hooks: a progress display for embedding, and where warnings that
        # have no Answer to travel in (embedding failures during ingest) are shown.
        self.embed_progress: EmbedProgressFactory | None = None
        self.on_warning: Callable[[str], None] | None = None
        self.query_embed_limit = QUERY_EMBED_LIMIT
        for kb in self.store.list_kbs():
            LexicalIndex.discard_if_stale(self.home / "index", self.store, kb)
            if (self.home / "vectors" / f"kb-{kb.id}").exists():
                from zhiku.vectors import discard_if_stale as discard_stale_vectors

                discard_stale_vectors(self.home / "vectors", self.store, kb)

    def close(self) -> None:
        with self._lock:
            for idx in self._indexes.values():
                idx.close()
            self._indexes.clear()
            self._vectors.clear()
            for model in self._models.values():
                with contextlib.suppress(Exception):
                    model.close()
            self._models.clear()
            self.store.close()

    def __enter__(self) -> Zhiku:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- knowledge bases ----------------------------------------------------------

    def kb(self, name: str = DEFAULT_KB, create: bool = False) -> KnowledgeBase:
        """A knowledge base; ``create`` makes it, with the privacy-by-default PII policy."""
        if create:
            return self.store.ensure_kb(name, self.default_kb_settings())
        return self.store.get_kb(name)

    @staticmethod
    def default_kb_settings() -> dict[str, Any]:
        """A new knowledge base's settings: private by default (PII masked at ingest)."""
        return {"pii": PiiPolicy.default().to_dict()}

    @staticmethod
    def pii_policy(kb: KnowledgeBase) -> PiiPolicy:
        return PiiPolicy.from_dict(kb.settings.get("pii"))

    def tw_output(self, name: str, language: str = "zh-TW") -> bool:
        """Whether a chat model's Simplified output is converted to Taiwan Traditional
        (:mod:`zhiku.tw`): the KB's ``tw_output`` setting, on by default, and only when
        answers are to be in Traditional Chinese."""
        kbo = self.store.find_kb(name)
        on = kbo is None or bool(kbo.settings.get("tw_output", True))
        return on and language.lower() in ("zh-tw", "zh-hant")

    def set_pii_policy(self, name: str, policy: PiiPolicy) -> KnowledgeBase:
        """Change a KB's policy. Stricter ingest masking applies to files ingested from
        now on; ``zhiku sync`` does not re-read unchanged files, ``reingest`` does."""
        return self.store.update_kb_settings(name, {"pii": policy.to_dict()})

    def _derived(self, cache: dict[int, Any], cls: Any, folder: str,
                 kb: str | KnowledgeBase) -> Any:
        """The per-KB derived index of ``cls`` kept in ``cache``, opened on first use."""
        kbo = kb if isinstance(kb, KnowledgeBase) else self.store.get_kb(kb)
        with self._lock:
            found = cache.get(kbo.id)
            if found is None:
                found = cache[kbo.id] = cls(self.home / folder, self.store, kbo)
            return found

    def index(self, kb: str | KnowledgeBase) -> LexicalBackend:
        """The KB's lexical (BM25) index (embedded or Milvus: :mod:`zhiku.index`)."""
        return self._derived(self._indexes, open_lexical, "index", kb)

    def delete_kb(self, name: str) -> None:
        kbo = self.store.get_kb(name)
        with self._lock:
            idx = self._indexes.pop(kbo.id, None)
            if idx is not None:
                idx.close()
            if IndexConfig.of(kbo).backend == "milvus":
                from zhiku.index.milvus import drop_kb

                drop_kb(IndexConfig.of(kbo), self.home, self.store, kbo)
            self.store.delete_kb(name)
            import shutil

            shutil.rmtree(self.home / "index" / f"kb-{kbo.id}", ignore_errors=True)
            self._vectors.pop(kbo.id, None)
            shutil.rmtree(self.home / "vectors" / f"kb-{kbo.id}", ignore_errors=True)

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
        meta: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> tuple[int, int, Counter[str]]:
        """Store a loaded document (atomically). Returns (doc id, chunks, masked counts).

        ``meta`` (department, tags, dates… set by the uploader or a source) is merged
        over the loader's metadata; filterable keys are normalised (:mod:`zhiku.filters`).
        """
        kbo = self.store.get_kb(kb)
        loaded.meta = normalize_meta({**loaded.meta, **(meta or {})})
        masked = _mask_at_ingest(loaded, self.pii_policy(kbo), kbo.secret)
        chunks, full = chunk_blocks(loaded.blocks)
        if content_hash is None:
            content_hash = hashlib.sha256(full.encode("utf-8")).hexdigest()
        doc_id = self.store.put_document(
            kb, path=path, title=loaded.title, kind=loaded.kind, content_hash=content_hash,
            size=len(full.encode("utf-8")) if size is None else size, chunks=chunks,
            mtime=mtime, pages=loaded.pages, meta=loaded.meta, parent_id=parent_id,
        )
        return doc_id, len(chunks), masked

    def remove(self, kb: str, path: str) -> bool:
        return self.store.delete_document(kb, path)

    def sync_index(self, kb: str, progress: ProgressFn | None = None,
                   keep_writer: bool = False) -> int:
        """Apply queued changes to the lexical index and, when a batch ends
        (``keep_writer`` false) and the KB has an embedder, to its vectors."""
        n = self.index(kb).sync(progress, keep_writer=keep_writer)
        if not keep_writer:
            from zhiku.vectors import VectorsBusy

            try:
                self.sync_vectors(kb)
            except (ModelError, VectorsBusy) as exc:
                self._warn(f"vectors_pending: 向量尚未更新（{exc}）；下次匯入或執行 "
                           "zhiku models embed 時會補上，檢索暫以關鍵字為主")
            if n:
                self.refit_refusal_if_needed(kb)
        return n

    # --- models -----------------------------------------------------------------------

    def model_config(self, kb: str) -> KbModelConfig:
        """The KB's backends and answer settings, with its calibrated fusion weights.

        Fusion settings: those named for this KB in ``zhiku.toml`` win, then the ones
        ``zhiku models calibrate`` stored for the KB's current embedder, then the global
        ``[hybrid]`` section, then the defaults.
        """
        cfg = self.settings.for_kb(kb)
        kbo = self.store.find_kb(kb)
        cal = kbo.settings.get("hybrid_calibration") if kbo is not None else None
        if cal and cfg.embed is not None:
            try:
                embedder = self.embedder(kb)
            except ModelError:
                embedder = None
            if embedder is not None and cal.get("model") == embedder.model_id:
                values: dict[str, Any] = {k: float(cal[k]) for k in ("rrf_k", "dense_weight")
                          if k in cal and k not in cfg.hybrid_explicit}
                cfg = replace(cfg, hybrid=replace(cfg.hybrid, **values))
        return cfg

    def backend(self, cfg: BackendConfig) -> Any:
        """The (cached) client or model object for one backend configuration.

        HTTP clients belong to this engine; local models (weights in memory) are shared
        by every engine of the process, so a server's engine pool loads each once.
        """
        if cfg.kind != "http":
            with _SHARED_LOCK:
                obj = _SHARED_MODELS.get(cfg)
                if obj is None:
                    obj = _SHARED_MODELS[cfg] = build(cfg)
                return obj
        with self._lock:
            obj = self._models.get(cfg)
            if obj is None:
                obj = build(cfg)
                self._models[cfg] = obj
            return obj

    def chat_model(self, kb: str) -> ChatModel | None:
        cfg = self.settings.for_kb(kb).chat
        return None if cfg is None else self.backend(cfg)

    def embedder(self, kb: str) -> Embedder | None:
        cfg = self.settings.for_kb(kb).embed
        return None if cfg is None else self.backend(cfg)

    def reranker(self, kb: str) -> Reranker | None:
        cfg = self.settings.for_kb(kb).rerank
        return None if cfg is None else self.backend(cfg)

    def _warn(self, message: str) -> None:
        log.warning(message)
        if self.on_warning is not None:
            self.on_warning(message)

    # --- vectors ----------------------------------------------------------------------

    def vectors(self, kb: str | KnowledgeBase) -> VectorBackend:
        """The KB's vector index (embedded matrix or Milvus: :mod:`zhiku.index`)."""
        return self._derived(self._vectors, open_vectors, "vectors", kb)

    def sync_vectors(self, kb: str, *, rebuild: bool = False, wait: bool = True,
                     max_embed: int | None = None) -> SyncReport | None:
        """Embed the KB's new chunks and drop deleted ones; None without an embedder.

        Embeds in batches through the embedding cache, showing progress through
        :attr:`embed_progress` when the front end set one.
        """
        embedder = self.embedder(kb)
        if embedder is None:
            return None
        vi = self.vectors(kb)
        if not rebuild and vi.is_current(embedder):
            from zhiku.vectors import SyncReport

            return SyncReport()
        factory = self.embed_progress
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

            return vi.sync(embedder, step, wait=wait, max_embed=max_embed, rebuild=rebuild,
                           on_total=on_total)

    # --- retrieval --------------------------------------------------------------------

    @staticmethod
    def redact_output(kb: KnowledgeBase, text: str) -> str:
        """Text as a reader may see it under the KB's PII policy.

        In ``output`` mode personal data is masked here (pseudonyms keyed by the KB's
        secret); in ``ingest`` mode it was masked before storing, so nothing is done on
        the hot path; ``off`` shows text as stored. The one place output masking lives.
        """
        pol = Zhiku.pii_policy(kb)
        if pol.mode != "output" or not pol.types:
            return text
        return redact(text, pol, secret=kb.secret)[0]

    @staticmethod
    def redact_path(kb: KnowledgeBase, path: str) -> str:
        """A document path as a reader may see it: file and folder names masked in every
        mode that masks (a local file's path is its identity for ``zhiku sync`` and is
        stored as it is, so it is masked on the way out even in ``ingest`` mode)."""
        pol = Zhiku.pii_policy(kb)
        if pol.mode == "off" or not pol.types:
            return path
        return redact_path(path, pol, kb.secret)

    @staticmethod
    def redact_json(kb: KnowledgeBase, value: Any, key: str | None = None) -> Any:
        """A stored JSON value (an answer with its citations) as a reader may see it:
        ``path`` strings through :meth:`redact_path`, every other string through
        :meth:`redact_output`."""
        if isinstance(value, dict):
            return {k: Zhiku.redact_json(kb, v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [Zhiku.redact_json(kb, v, key) for v in value]
        if isinstance(value, str):
            return Zhiku.redact_path(kb, value) if key == "path" else \
                Zhiku.redact_output(kb, value)
        return value

    @staticmethod
    def ingest_name(kb: KnowledgeBase, name: str) -> str:
        """An uploaded file's name as it is stored (on disk and as the document path):
        masked when the KB masks at ingest, so raw values never reach the store."""
        pol = Zhiku.pii_policy(kb)
        if not pol.masks_at_ingest or not pol.types:
            return name
        return redact_name(name, pol, kb.secret)

    def redact_hit(self, kb: KnowledgeBase, h: Hit) -> Hit:
        """Every string of a hit as a reader may see it (text, title, section, label,
        path): the one place hits are masked on output."""
        if self.pii_policy(kb).mode == "output":
            h.text = self.redact_output(kb, h.text)
            h.doc_title = self.redact_output(kb, h.doc_title)
            if h.section:
                h.section = self.redact_output(kb, h.section)
            if h.label:
                h.label = self.redact_output(kb, h.label)
        h.path = self.redact_path(kb, h.path)
        return h

    def _redact_hits(self, hits: list[Hit], names: Sequence[str]) -> list[Hit]:
        kbs = {n: self.store.get_kb(n) for n in names}
        masking = {n: kb for n, kb in kbs.items()
                   if kb.settings.get("pii", {}).get("mode", "ingest") != "off"}
        for h in hits:
            kb = masking.get(h.kb)
            if kb is not None:
                self.redact_hit(kb, h)
        return hits

    def _dense(self, kbo: KnowledgeBase, embedder: Embedder, query: str, depth: int,
               qvecs: dict[str, Any], warnings: list[str],
               excluded: set[int] | None = None,
               where: Filter | None = None) -> list[tuple[int, float]] | None:
        """The KB's vector list for ``query``; None when it has no vectors of this model."""
        from zhiku.vectors import TooMuchToEmbed, VectorsBusy

        vi = self.vectors(kbo)
        if not vi.is_current(embedder):
            try:
                vi.sync(embedder, wait=False, max_embed=self.query_embed_limit)
            except VectorsBusy:
                pass  # another process is writing; search what is there
            except TooMuchToEmbed as exc:
                warnings.append(
                    f"vectors_stale: 知識庫「{kbo.name}」有 {exc.missing} 段尚未建立向量，"
                    "請執行 zhiku models embed；本次以現有向量檢索")
        if vi.model() != embedder.model_id:
            return None
        qvec = qvecs.get(embedder.model_id)
        if qvec is None:
            qvec = qvecs[embedder.model_id] = embedder.embed_query(query)
        return vi.search(qvec, depth, excluded=excluded, where=where)

    def _fusion_weight(self, query: str, names: Sequence[str], kb_ids: Sequence[int],
                       lexical: Sequence[tuple[int, float]], dense: Sequence[tuple[int, float]],
                       hyb: HybridConfig) -> tuple[float, float | None]:
        """(dense weight, lexical evidence) for this query (see :mod:`zhiku.hybrid`); with
        no BM25 hit at all the best dense hit tells the KB's script."""
        if not hyb.adaptive:
            return hyb.dense_weight, None
        first = list(lexical[:1] or dense[:1])
        top = self.store.hits_for(first, kb_ids) if first else []
        return query_dense_weight(query, self.term_stats(query, names),
                                  top[0] if top else None, hyb)

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
        """Ranked passages with the details: which mode ran, warnings, timings.

        ``collapse`` drops near-duplicates of better-ranked passages (keeping a parent
        document's copy, :func:`zhiku.rank.collapse_duplicates`): answers use it, a
        search lists every passage.

        ``mode``: ``lexical`` (BM25), ``dense`` (vectors), ``hybrid`` (both, fused), or
        None for hybrid when the first KB has an embedder and lexical otherwise.
        ``rerank``: None reranks when a reranker is configured. Model failures degrade
        to what still works (BM25 always does) and are reported in ``warnings``.
        ``where``: metadata conditions applied inside the lexical and vector queries;
        repealed law is left out unless it names ``status`` (:mod:`zhiku.filters`).
        """
        flt = (where or Filter()).effective()
        if mode is not None and mode not in SEARCH_MODES:
            raise ConfigError(f"不支援的檢索模式「{mode}」（可用：{', '.join(SEARCH_MODES)}）")
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        kbos = [self.store.get_kb(n) for n in names]
        kb_ids = [kbo.id for kbo in kbos]
        warnings: list[str] = []
        timings: dict[str, float] = {}
        mcfg = self.model_config(names[0])
        hyb: HybridConfig = mcfg.hybrid
        embedders: dict[int, Embedder] = {}
        if mode != "lexical":
            for kbo in kbos:
                try:
                    emb = self.embedder(kbo.name)
                except ModelError as exc:
                    warnings.append(f"embed_failed: {exc}")
                    continue
                if emb is not None:
                    embedders[kbo.id] = emb
            if mode in ("dense", "hybrid") and not embedders and not warnings:
                warnings.append("no_embedder: 未設定嵌入模型（embed），改用關鍵字檢索")
        reranker: Reranker | None = None
        if rerank is not False and mcfg.rerank is not None:
            try:
                reranker = self.reranker(names[0])
            except ModelError as exc:
                warnings.append(f"rerank_failed: {exc}")
        want_dense = bool(embedders) and mode != "lexical"
        depth = max(k, hyb.candidates) if (want_dense or reranker) else k
        if reranker is not None:
            depth = max(depth, hyb.rerank_top)

        t = time.perf_counter()
        lexical: list[tuple[int, float]] = []
        if mode != "dense" or not want_dense:
            lexical = self._lexical(query, kbos, depth, flt)
        timings["lexical_ms"] = (time.perf_counter() - t) * 1000

        dense: list[tuple[int, float]] = []
        dense_ok = False
        qvecs: dict[str, Any] = {}
        if want_dense:
            t = time.perf_counter()
            # A caller's filter goes into the vector query; without one, the (few)
            # repealed-law chunks are excluded by id.
            excluded = None if where else self.store.filtered_chunk_ids(
                kb_ids, Filter.parse(["status=repealed"])) or None
            for kbo in kbos:
                emb = embedders.get(kbo.id)
                if emb is None:
                    continue
                try:
                    found = self._dense(kbo, emb, query, depth, qvecs, warnings,
                                        excluded, flt if where else None)
                except ModelError as exc:
                    warnings.append(f"embed_failed: {exc}；改用關鍵字檢索")
                    continue
                if found is not None:
                    dense.extend(found)
                    dense_ok = True
            dense.sort(key=lambda x: x[1], reverse=True)
            dense = dense[:depth]
            timings["dense_ms"] = (time.perf_counter() - t) * 1000

        bm25 = dict(lexical)
        cos = dict(dense)
        used = "lexical"
        evidence: float | None = None
        weight: float | None = None
        if dense_ok and mode == "dense":
            ranked, used = dense, "dense"
        elif dense_ok:
            weight, evidence = self._fusion_weight(query, names, kb_ids, lexical, dense, hyb)
            ranked = rrf([(lexical, hyb.lexical_weight), (dense, weight)], hyb.rrf_k)
            used = "hybrid"
        elif mode == "dense" and not lexical:  # no usable vectors: BM25 after all
            ranked = lexical = self._lexical(query, kbos, depth, flt)
            bm25 = {}
        else:
            ranked = lexical
        if not bm25:
            bm25 = dict(lexical)

        reranked = False
        if reranker is None:
            # A few spare ids: a stale vector may name a chunk deleted since, and
            # near-duplicates are collapsed.
            hits = self.store.hits_for(ranked[: k + 10], kb_ids)
            hits = collapse_duplicates(hits, k) if collapse else hits[:k]
            self._redact_hits(hits, names)
        else:
            top = self._redact_hits(self.store.hits_for(ranked[: hyb.rerank_top], kb_ids), names)
            t = time.perf_counter()
            try:
                scores = reranker.score(query, [index_text(
                    {"title": h.doc_title, "section": h.section, "text": h.text}) for h in top])
            except ModelError as exc:
                warnings.append(f"rerank_failed: {exc}；保留原排序")
                scores = None
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
            if scores is not None:
                reranked = True
                for h, sc in zip(top, scores, strict=True):
                    h.scores["rerank"] = sc
                order = sorted(range(len(top)), key=lambda i: -scores[i])
                top = [top[i] for i in order]
                for h in top:
                    h.score = h.scores["rerank"]
            hits = top[:k]
            if len(hits) < k and len(ranked) > len(top):
                rest = self.store.hits_for(ranked[len(top):][: k - len(hits)], kb_ids)
                hits.extend(self._redact_hits(rest, names))
        for h in hits:
            if h.chunk_id in bm25:
                h.scores["bm25"] = bm25[h.chunk_id]
                if used == "lexical" and not reranked:
                    h.score = bm25[h.chunk_id]  # the citation's score stays the BM25 score
            if h.chunk_id in cos:
                h.scores["dense"] = cos[h.chunk_id]
        if used == "hybrid":
            fused = dict(ranked)
            for h in hits:
                h.scores["rrf"] = fused.get(h.chunk_id, 0.0)
        qvec = next(iter(qvecs.values()), None) if want_dense else None
        return Retrieval(hits=hits, mode=used + ("+rerank" if reranked else ""),
                         warnings=warnings, timings=timings, evidence=evidence,
                         dense_weight=weight, query_vector=qvec)

    def _lexical(self, query: str, kbos: Sequence[KnowledgeBase], depth: int,
                 where: Filter | None = None) -> list[tuple[int, float]]:
        """BM25 candidates of the KBs, reordered by :func:`zhiku.rank.reinforce` (the
        order is what counts; the raw BM25 of each stays available in the scores)."""
        want = max(depth, RANK_DEPTH)
        found: list[tuple[int, float]] = []
        for kbo in kbos:
            found.extend(self.index(kbo).search(self.query_terms(query, kbo), k=want,
                                                where=where))
        found.sort(key=lambda x: x[1], reverse=True)
        found = found[:want]
        order = reinforce(found, self.store.chunk_docs([c for c, _ in found]))
        raw = dict(found)
        return [(cid, raw[cid]) for cid, _ in order[:max(depth, 1) + 10]]

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
        """Ranked passages for ``query`` from the given knowledge bases only.

        Hybrid (BM25 + vectors) when the KB has an embedder, else BM25; see
        :meth:`retrieve` for ``mode`` and ``rerank`` and for the warnings.
        """
        ret = self.retrieve(query, kbs, k, mode=mode, rerank=rerank, where=where)
        for w in ret.warnings:
            log.warning(w)
        return ret.hits

    def term_stats(
        self, query: str, kbs: str | Sequence[str] = DEFAULT_KB
    ) -> dict[str, tuple[int, float]]:
        """(df, idf) of the query's tokens; over several KBs, the sum of dfs."""
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        tokens = self.query_terms(query, names)
        out: dict[str, tuple[int, float]] = {}
        for name in names:
            for t, (df, idf) in self.index(name).term_stats(tokens).items():
                pdf, pidf = out.get(t, (0, 0.0))
                out[t] = (pdf + df, max(pidf, idf) if df or not pdf else pidf)
        return out

    # --- answers ----------------------------------------------------------------------

    def _stored(self, hits: Sequence[Hit]) -> list[Hit]:
        """The hits whose chunks are still in the database (a citation must be one)."""
        if not hits:
            return []
        ids = [h.chunk_id for h in hits]
        marks = ",".join("?" * len(ids))
        alive = {r[0] for r in self.store.db.execute(
            f"SELECT id FROM chunks WHERE id IN ({marks})", ids)}
        return [h for h in hits if h.chunk_id in alive]

    @staticmethod
    def _joint_coverage(query: str, hits: Sequence[Hit], stats: Any) -> float:
        joined = replace(hits[0], doc_title="\n".join(h.doc_title for h in hits),
                         section="\n".join(h.section or "" for h in hits),
                         text="\n".join(h.text for h in hits), scores={})
        return coverage(ztext.query_tokens(query), stats, joined)

    # --- the KB's vocabulary -----------------------------------------------------------------

    def abbreviations(self, kb: str | KnowledgeBase) -> dict[str, str]:
        """The KB's learned abbreviations (:mod:`zhiku.vocab`), cached per KB."""
        kbo = kb if isinstance(kb, KnowledgeBase) else self.store.get_kb(kb)
        key = f"abbreviations:{kbo.id}"
        raw = self.store.get_meta(key, "") or ""
        cached = self._abbrev.get(kbo.id)
        if cached is not None and cached[0] == len(raw):
            return cached[1]
        try:
            found = json.loads(raw) if raw else {}
        except ValueError:
            found = {}
        self._abbrev[kbo.id] = (len(raw), found)
        return found

    def learn_vocabulary(self, kb: str) -> int:
        """Re-learn the KB's abbreviations from a sample of its passages and titles."""
        kbo = self.store.get_kb(kb)
        texts = self.store.sample_chunk_texts(kbo.id, VOCAB_SAMPLE)
        texts += [d.title for d in self.store.list_documents(kb)]
        idx = self.index(kbo)
        found = mine_abbreviations(
            texts, lambda terms: {t: v[0] for t, v in idx.term_stats(terms).items()})
        self.store.set_meta(f"abbreviations:{kbo.id}", json.dumps(found, ensure_ascii=False))
        return len(found)

    def query_terms(self, query: str, kbs: str | KnowledgeBase | Sequence[str],
                    *, replace: bool = False) -> list[str]:
        """The query's index terms, with the compounds its abbreviations stand for."""
        if isinstance(kbs, (str, KnowledgeBase)):
            kbs = [kbs]  # type: ignore[list-item]
        abbr: dict[str, str] = {}
        for kb in kbs:
            abbr.update(self.abbreviations(kb))
        return expand_terms(ztext.query_tokens(query), abbr, replace=replace)

    def iter_answer(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
        where: Filter | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they come, then the final :class:`Answer`.

        Retrieval first (with a chat model, of the question and the model's rewrite of
        it into the KB's vocabulary); when it finds nothing relevant the refusal comes
        without asking the model for an answer. With a chat model the answer is
        generated and its citations checked (:mod:`zhiku.generate`); without one, or
        when it fails, it is the extractive answer, with the reason in
        ``Answer.warnings``.
        """
        t0 = time.perf_counter()
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        mcfg = self.model_config(names[0])
        warnings: list[str] = []
        chat: ChatModel | None = None
        if mcfg.chat is not None:
            try:
                chat = self.backend(mcfg.chat)
            except ModelError as exc:
                warnings.append(f"chat_failed: {exc}；改用摘錄式回答")
        query = question
        if history and chat is None:
            # Without a model, an elliptical follow-up (or one the knowledge base cannot
            # answer alone) carries the previous turn's subject; a new topic is not
            # pulled back (zhiku.followup).
            query = self.standalone_query(question, history, names, k, where)
        elif history and chat is not None:
            query, cw = condense_question(chat, question, history, fallback=lambda: (
                self.standalone_query(question, history, names, k)))
            warnings.extend(cw)
        # The rewrite changes what is retrieved, nothing else: relevance, refusal and
        # the extractive answer are judged on the question as asked (or condensed).
        search_query = query
        if chat is not None and mcfg.rewrite_query:
            search_query = self._rewritten(chat, query, names, where)
        t1 = time.perf_counter()
        ret = self.retrieve(search_query, names, k=k, where=where, collapse=True)
        warnings.extend(ret.warnings)
        t2 = time.perf_counter()
        stats = self.term_stats(query, names)
        threshold = self.refusal_threshold(names)
        terms = self.query_terms(query, names, replace=True)
        extractive = self.answerer.answer(query, ret.hits, stats, refuse_below=threshold,
                                          tokens=terms)
        if query != question and chat is None and not extractive.refused:
            # The sentence that answers the follow-up's own words, not the one that
            # repeats the carried subject (relevance was judged on the whole query).
            weighted = self.answerer.answer(query, ret.hits,
                                            weigh_carried(stats, question, query),
                                            refuse_below=threshold, tokens=terms)
            # The carried subject decides the passage, the follow-up's words the sentence.
            cited = {c.hit.doc_id for c in extractive.citations}
            if not weighted.refused and weighted.citations[0].hit.doc_id in cited:
                extractive = weighted
        if extractive.refused:
            extractive = self._dense_answer(names[0], query, ret) or extractive
        timings = {**ret.timings, "condense_ms": (t1 - t0) * 1000,
                   "retrieve_ms": (t2 - t1) * 1000}
        relevant = not extractive.refused
        if chat is not None and not relevant and ret.hits:
            # A question with several parts can be covered by several passages together.
            relevant = self._joint_coverage(query, ret.hits[:3], stats) \
                >= threshold
        hits = self._stored(ret.hits) if chat is not None and relevant else []
        if chat is None or not relevant or not hits:
            extractive.warnings.extend(warnings)
            extractive.timings.update(timings)
            extractive.timings["total_ms"] = (time.perf_counter() - t0) * 1000
            yield extractive.text
            yield extractive
            return
        gen = GenerativeAnswerer(chat, GenerationSettings(
            persona=mcfg.system_prompt, language=mcfg.language, uncited=mcfg.uncited,
            tw_output=self.tw_output(names[0], mcfg.language)))
        for item in gen.stream(question, hits, extractive, history or ()):
            if isinstance(item, Answer):
                item.warnings[:0] = warnings
                item.timings.update(timings)
                item.timings["total_ms"] = (time.perf_counter() - t0) * 1000
                for w in item.warnings:
                    log.info(w)
            yield item

    def _dense_answer(self, kb: str, query: str, ret: Retrieval) -> Answer | None:
        """An extractive answer resting on the dense match alone, or None.

        For a question in another script than the passages (English over Chinese) the
        lexical answerer finds no shared words and refuses. When the best hit's cosine
        similarity clears the embedder's threshold (measured on English questions
        against off-topic ones, so only such questions use it), its sentence closest to
        the question (by the same embedder) is quoted, in the original, with its
        citation.
        """
        if not ret.hits or ret.query_vector is None or ret.evidence is None:
            return None
        hyb = self.model_config(kb).hybrid
        embedder = self.embedder(kb)
        if embedder is None or ret.evidence > hyb.evidence_low or ztext.has_cjk(query) \
                or not ztext.has_cjk(ret.hits[0].text):
            return None
        floor = hyb.dense_answer_min if hyb.dense_answer_min >= 0 \
            else embedder.answer_min_similarity
        top = ret.hits[0]
        cos = top.scores.get("dense")
        if floor is None or cos is None or cos < floor:
            return None
        spans = [(s, e) for s, e in ztext.sentence_spans(top.text) if top.text[s:e].strip()]
        if not spans:
            return None
        try:
            vecs = embedder.embed_documents([top.text[s:e] for s, e in spans])
        except ModelError:
            return None
        s, e = spans[int((vecs @ ret.query_vector).argmax())]
        quote = top.text[s:e].strip()
        lead = "According to" if lang() == "en" else "根據"
        sep = ": " if lang() == "en" else "："
        text = f"{lead} {source_phrase(top)}{sep}{quote}" if lang() == "en" \
            else f"{lead}{source_phrase(top)}{sep}{quote}"
        return Answer(text=text, citations=[Citation(hit=top, text=quote)], refused=False,
                      timings={"relevance": ret.evidence, "dense_similarity": cos},
                      warnings=["dense_answer: 問題與原文用字不同，依語意相近的段落回答"])

    def ask(self, question: str, kbs: str | Sequence[str] = DEFAULT_KB, k: int = 5,
            where: Filter | None = None) -> Answer:
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
        for item in self.iter_answer(question, kbs, k, history, where=where):
            if isinstance(item, Answer):
                yield {"type": "done", "answer": item.to_dict(), "mode": item.mode,
                       "warnings": list(item.warnings)}
            elif item:
                yield {"type": "delta", "text": item}

    # --- fusion calibration ---------------------------------------------------------------

    def sample_questions(self, kb: str, n: int = 200, seed: int = 13) -> list[tuple[str, str]]:
        """Pseudo-questions for calibration: a sentence of a random chunk, its document.

        Copied sentences favour BM25, so weights calibrated on them lean lexical: safe
        for a weak embedder, conservative for a strong one. Real questions are better.
        """
        kbo = self.store.get_kb(kb)
        rows = self.store.db.execute(
            "SELECT c.text, d.path FROM chunks c JOIN documents d ON d.id=c.doc_id "
            "WHERE d.kb_id=? AND LENGTH(c.text) >= 16", (kbo.id,)).fetchall()
        rng = random.Random(seed)
        rng.shuffle(rows)
        out: list[tuple[str, str]] = []
        for text, path in rows:
            sents = [text[s:e].strip() for s, e in ztext.sentence_spans(text)]
            sents = [x for x in sents if 8 <= len(x) <= 80]
            if sents:
                out.append((rng.choice(sents), path))
            if len(out) >= n:
                break
        return out

    def calibrate_fusion(
        self,
        kb: str,
        questions: Sequence[tuple[str, str]],
        *,
        depth: int = 50,
        save: bool = True,
    ) -> CalibrationResult:
        """Fit ``rrf_k`` and ``dense_weight`` to (question, gold document) pairs of a KB.

        The gold document is named by its path or its title. With ``save`` the result is
        stored in the KB's settings for the current embedder (a model change ignores it).
        """
        embedder = self.embedder(kb)
        if embedder is None:
            raise ConfigError(f"知識庫「{kb}」沒有設定嵌入模型（embed），無法校準混合檢索")
        kbo = self.store.get_kb(kb)
        self.sync_vectors(kb)
        docs: dict[str, set[int]] = {}
        for r in self.store.db.execute(
                "SELECT c.id, d.path, d.title FROM chunks c JOIN documents d ON d.id=c.doc_id "
                "WHERE d.kb_id=?", (kbo.id,)):
            docs.setdefault(r[1], set()).add(r[0])
            docs.setdefault(f"title:{r[2]}", set()).add(r[0])
        vi = self.vectors(kbo)
        lex_lists: list[list[tuple[int, float]]] = []
        dense_lists: list[list[tuple[int, float]]] = []
        gold: list[set[int]] = []
        qvecs: Any = embedder.embed_queries([q for q, _ in questions]) if questions else []
        for (q, ref), qv in zip(questions, qvecs, strict=True):
            chunks = docs.get(ref) or docs.get(f"title:{ref}")
            if not chunks:
                continue
            lex_lists.append(self.index(kbo).search(ztext.query_tokens(q), k=depth))
            dense_lists.append(vi.search(qv, depth))
            gold.append(chunks)
        if not gold:
            raise ConfigError("校準問題所指的文件都不在這個知識庫中（請用文件路徑或標題）")
        res = calibrate(lex_lists, dense_lists, gold,
                        lexical_weight=self.settings.for_kb(kb).hybrid.lexical_weight)
        if save:
            self.store.update_kb_settings(kb, {"hybrid_calibration": {
                "model": embedder.model_id, "rrf_k": res.rrf_k,
                "dense_weight": res.dense_weight, "r_at_1": round(res.r_at_1, 4),
                "lexical_r_at_1": round(res.lexical_r_at_1, 4),
                "dense_r_at_1": round(res.dense_r_at_1, 4),
                "questions": res.questions, "at": now_iso()}})
        return res

    def _rewritten(self, chat: ChatModel, query: str, names: Sequence[str],
                   where: Filter | None = None) -> str:
        """``query`` followed by the chat model's rewrite of it into the KB's vocabulary
        (:func:`zhiku.generate.rewrite_query`), or ``query`` alone when the model fails.
        It changes what is retrieved only: citations are stored passages, and the model
        answers the question as asked."""
        hints = self.retrieve(query, names, k=REWRITE_HINTS, mode="lexical",
                              rerank=False, where=where).hits
        rewrite = rewrite_query(chat, query, hints)
        if rewrite is None:
            log.info("query rewrite unavailable; retrieving with the question as asked")
            return query
        return f"{query}\n{rewrite}"

    def standalone_query(self, question: str, history: Sequence[dict[str, str]],
                         names: Sequence[str], k: int = 5,
                         where: Filter | None = None) -> str:
        """A follow-up completed with the previous turn's subject, without a model
        (:func:`zhiku.followup.standalone`, weighted by these KBs' own statistics)."""

        def needs_context(q: str) -> bool:
            return is_elliptical(q) or not self._answerable_alone(q, names, k, where)

        return standalone(question, history, lambda s: self.term_stats(s, names),
                          needs_context)

    def _answerable_alone(self, question: str, names: Sequence[str], k: int,
                          where: Filter | None = None) -> bool:
        hits = self.retrieve(question, names, k=k, where=where).hits
        return not self.answerer.answer(
            question, hits, self.term_stats(question, names),
            refuse_below=self.refusal_threshold(names),
            tokens=self.query_terms(question, names, replace=True)).refused

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    # --- refusal calibration (per KB) ---------------------------------------------------

    def refusal_calibration(self, kb: str) -> RefusalCalibration | None:
        """The KB's stored refusal calibration, when it has a current one."""
        return RefusalCalibration.from_dict(self.store.get_kb(kb).settings.get("refusal"))

    def refusal_threshold(self, kb: str | Sequence[str]) -> float:
        """The confidence below which ``kb`` refuses; over several KBs, the lowest."""
        names = [kb] if isinstance(kb, str) else list(kb)
        out: list[float] = []
        for name in names:
            kbo = self.store.find_kb(name)
            cal = RefusalCalibration.from_dict(kbo.settings.get("refusal")) if kbo else None
            out.append(cal.threshold if cal is not None else self.answerer.refuse_below)
        return min(out) if out else self.answerer.refuse_below

    def _confidence(self, question: str, names: Sequence[str], k: int = 5) -> float:
        # Lexical retrieval only: the confidence is a lexical measure, and calibrating a
        # KB must not cost hundreds of calls to its embedding or reranking server.
        hits = self.retrieve(question, names, k=k, mode="lexical", rerank=False).hits
        ans = self.answerer.answer(question, hits, self.term_stats(question, names),
                                   refuse_below=0.0,
                                   tokens=self.query_terms(question, names, replace=True))
        return float(ans.timings.get("confidence", 0.0))

    def calibrate_refusal(self, kb: str, *, save: bool = True,
                          max_refused: float = MAX_REFUSED) -> RefusalCalibration | None:
        """Fit ``kb``'s refusal threshold on its own passages (:mod:`zhiku.calibration`).

        None when the KB has too few passages to draw questions from."""
        kbo = self.store.get_kb(kb)
        chunks = self.store.chunk_count(kbo.id)
        texts = self.store.sample_chunk_texts(kbo.id, 4 * POSITIVES)
        cal = calibrate_refusal(lambda q: self._confidence(q, [kb]), texts, chunks=chunks,
                                at=now_iso(), max_refused=max_refused)
        if cal is not None and save:
            self.store.update_kb_settings(kb, {"refusal": cal.to_dict()})
        return cal

    def refit_refusal_if_needed(self, kb: str) -> RefusalCalibration | None:
        """Recalibrate when the KB changed by a quarter since its last calibration."""
        kbo = self.store.find_kb(kb)
        if kbo is None:
            return None
        cal = RefusalCalibration.from_dict(kbo.settings.get("refusal"))
        if needs_refit(cal, self.store.chunk_count(kbo.id)):
            self.learn_vocabulary(kb)
            return self.calibrate_refusal(kb)
        return None
