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
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
from zhiku.chunk import chunk_blocks
from zhiku.config import DEFAULT_KB, home_dir, lang
from zhiku.generate import GenerationSettings, GenerativeAnswerer, condense_question
from zhiku.hybrid import CalibrationResult, calibrate, query_dense_weight, rrf
from zhiku.lexical import LexicalIndex, ProgressFn, index_text
from zhiku.models import Answer, Citation, Hit, LoadedDocument
from zhiku.pii import PiiPolicy, redact, redact_for_ingest
from zhiku.store import KnowledgeBase, Store, now_iso
from zhiku.vectors import SyncReport, TooMuchToEmbed, VectorIndex, VectorsBusy
from zhiku.vectors import discard_if_stale as discard_stale_vectors

log = logging.getLogger("zhiku")

# (kb name, chunks to embed) -> a context manager yielding a step(n) callback.
EmbedProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
SEARCH_MODES = ("lexical", "dense", "hybrid")
# At query time at most this many chunks are embedded to catch the vectors up; a bigger
# backlog is left to ingest / ``zhiku models embed`` and the search runs on what exists.
QUERY_EMBED_LIMIT = 256


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
        self._indexes: dict[int, LexicalIndex] = {}
        self._vectors: dict[int, VectorIndex] = {}
        self._models: dict[BackendConfig, Any] = {}
        self._lock = threading.RLock()
        self.answerer = ExtractiveAnswerer()
        # Front-end hooks: a progress display for embedding, and where warnings that
        # have no Answer to travel in (embedding failures during ingest) are shown.
        self.embed_progress: EmbedProgressFactory | None = None
        self.on_warning: Callable[[str], None] | None = None
        self.query_embed_limit = QUERY_EMBED_LIMIT
        for kb in self.store.list_kbs():
            LexicalIndex.discard_if_stale(self.home / "index", self.store, kb)
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

    def index(self, kb: str | KnowledgeBase) -> LexicalIndex:
        """The KB's lexical (BM25) index."""
        return self._derived(self._indexes, LexicalIndex, "index", kb)

    def delete_kb(self, name: str) -> None:
        kbo = self.store.get_kb(name)
        with self._lock:
            idx = self._indexes.pop(kbo.id, None)
            if idx is not None:
                idx.close()
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
        """Apply queued changes to the lexical index and, when a batch ends
        (``keep_writer`` false) and the KB has an embedder, to its vectors."""
        n = self.index(kb).sync(progress, keep_writer=keep_writer)
        if not keep_writer:
            try:
                self.sync_vectors(kb)
            except (ModelError, VectorsBusy) as exc:
                self._warn(f"vectors_pending: 向量尚未更新（{exc}）；下次匯入或執行 "
                           "zhiku models embed 時會補上，檢索暫以關鍵字為主")
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

    def vectors(self, kb: str | KnowledgeBase) -> VectorIndex:
        """The KB's embedding matrix."""
        return self._derived(self._vectors, VectorIndex, "vectors", kb)

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

    def _redact_hits(self, hits: list[Hit], names: Sequence[str]) -> list[Hit]:
        # Only KBs in "output" mode mask here; the policy is parsed once per KB.
        masking = {n: kb for n in names
                   if (kb := self.store.get_kb(n)).settings.get("pii", {}).get("mode") == "output"}
        for h in hits:
            kb = masking.get(h.kb)
            if kb is None:
                continue
            h.text = self.redact_output(kb, h.text)
            h.doc_title = self.redact_output(kb, h.doc_title)
            if h.section:
                h.section = self.redact_output(kb, h.section)
        return hits

    def _dense(self, kbo: KnowledgeBase, embedder: Embedder, query: str, depth: int,
               qvecs: dict[str, Any], warnings: list[str]) -> list[tuple[int, float]] | None:
        """The KB's vector list for ``query``; None when it has no vectors of this model."""
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
        return vi.search(qvec, depth)

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
    ) -> Retrieval:
        """Ranked passages with the details: which mode ran, warnings, timings.

        ``mode``: ``lexical`` (BM25), ``dense`` (vectors), ``hybrid`` (both, fused), or
        None for hybrid when the first KB has an embedder and lexical otherwise.
        ``rerank``: None reranks when a reranker is configured. Model failures degrade
        to what still works (BM25 always does) and are reported in ``warnings``.
        """
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
            tokens = ztext.query_tokens(query)
            for kbo in kbos:
                lexical.extend(self.index(kbo).search(tokens, k=depth))
            if len(kbos) > 1:
                lexical.sort(key=lambda x: x[1], reverse=True)
                lexical = lexical[:depth]
        timings["lexical_ms"] = (time.perf_counter() - t) * 1000

        dense: list[tuple[int, float]] = []
        dense_ok = False
        qvecs: dict[str, Any] = {}
        if want_dense:
            t = time.perf_counter()
            for kbo in kbos:
                emb = embedders.get(kbo.id)
                if emb is None:
                    continue
                try:
                    found = self._dense(kbo, emb, query, depth, qvecs, warnings)
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
            tokens = ztext.query_tokens(query)
            for kbo in kbos:
                lexical.extend(self.index(kbo).search(tokens, k=depth))
            lexical.sort(key=lambda x: x[1], reverse=True)
            ranked = lexical = lexical[:depth]
            bm25 = dict(lexical)
        else:
            ranked = lexical

        reranked = False
        if reranker is None:
            # A few spare ids: a stale vector may name a chunk deleted since.
            hits = self.store.hits_for(ranked[: k + 10], kb_ids)[:k]
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

    def search(
        self,
        query: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 10,
        *,
        mode: str | None = None,
        rerank: bool | None = None,
    ) -> list[Hit]:
        """Ranked passages for ``query`` from the given knowledge bases only.

        Hybrid (BM25 + vectors) when the KB has an embedder, else BM25; see
        :meth:`retrieve` for ``mode`` and ``rerank`` and for the warnings.
        """
        ret = self.retrieve(query, kbs, k, mode=mode, rerank=rerank)
        for w in ret.warnings:
            log.warning(w)
        return ret.hits

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

    def iter_answer(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they come, then the final :class:`Answer`.

        Retrieval first; when it finds nothing relevant the refusal comes without any
        model call. With a chat model the answer is generated and its citations checked
        (:mod:`zhiku.generate`); without one, or when it fails, it is the extractive
        answer, with the reason in ``Answer.warnings``.
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
        if history and chat is None and not self._answerable_alone(question, names, k):
            # Without a model, only a follow-up the knowledge base cannot answer on its
            # own borrows the previous question; a new topic is not pulled back.
            query, cw = condense_question(None, question, history)
            warnings.extend(cw)
        elif history and chat is not None:
            query, cw = condense_question(chat, question, history)
            warnings.extend(cw)
        t1 = time.perf_counter()
        ret = self.retrieve(query, names, k=k)
        warnings.extend(ret.warnings)
        t2 = time.perf_counter()
        stats = self.term_stats(query, names)
        extractive = self.answerer.answer(query, ret.hits, stats)
        if extractive.refused:
            extractive = self._dense_answer(names[0], query, ret) or extractive
        timings = {**ret.timings, "condense_ms": (t1 - t0) * 1000,
                   "retrieve_ms": (t2 - t1) * 1000}
        relevant = not extractive.refused
        if chat is not None and not relevant and ret.hits:
            # A question with several parts can be covered by several passages together.
            relevant = self._joint_coverage(query, ret.hits[:3], stats) \
                >= self.answerer.refuse_below
        hits = self._stored(ret.hits) if chat is not None and relevant else []
        if chat is None or not relevant or not hits:
            extractive.warnings.extend(warnings)
            extractive.timings.update(timings)
            extractive.timings["total_ms"] = (time.perf_counter() - t0) * 1000
            yield extractive.text
            yield extractive
            return
        gen = GenerativeAnswerer(chat, GenerationSettings(
            persona=mcfg.system_prompt, language=mcfg.language, uncited=mcfg.uncited))
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

    def ask(self, question: str, kbs: str | Sequence[str] = DEFAULT_KB, k: int = 5) -> Answer:
        """The answer to ``question`` with its citations (see :meth:`iter_answer`)."""
        final: Answer | None = None
        for item in self.iter_answer(question, kbs, k):
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
    ) -> Iterator[dict[str, Any]]:
        """Answer as a stream of events, for the CLI and for Server-Sent Events.

        Yields ``{"type": "delta", "text": str}`` events whose texts concatenate to the
        answer, then one ``{"type": "done", "answer": Answer.to_dict()}`` (which also
        carries ``mode``, ``generative`` or ``extractive``, and ``warnings``).
        ``history`` holds earlier turns (``{"role": "user"|"assistant", "content": str}``);
        a follow-up is condensed into a standalone query before retrieval.
        """
        for item in self.iter_answer(question, kbs, k, history):
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

    def _answerable_alone(self, question: str, names: Sequence[str], k: int) -> bool:
        hits = self.retrieve(question, names, k=k).hits
        return not self.answerer.answer(question, hits, self.term_stats(question, names)).refused

    def stats(self) -> dict[str, Any]:
        return self.store.stats()
