"""Retrieval: plan → lexical → dense → fuse → rerank, and the KB's vocabulary.

``mode`` and the KB's models decide the plan; BM25 (tantivy) candidates are reordered by
:func:`zhiku.rank.reinforce`; with an embedder the vector list is fused with them by
weighted reciprocal rank (:mod:`zhiku.hybrid`, the dense weight chosen per query); with a
reranker the fused top N is reordered. A KB whose vectors are not complete, with
``[hybrid] dense_rerank = N``, gets a vector list of BM25's top N only, embedded at query
time through the embedding cache (:meth:`RetrievalService._dense_candidates`). A model
that fails degrades to what still works (BM25 always does) and says so in
:attr:`Retrieval.warnings`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zhiku import text as ztext
from zhiku.access import access_guard
from zhiku.backends import ConfigError, Embedder, HybridConfig, ModelError, Reranker
from zhiku.config import DEFAULT_KB
from zhiku.filters import Filter
from zhiku.hybrid import query_dense_weight, rrf
from zhiku.lexical import index_text
from zhiku.models import Hit
from zhiku.rank import DEPTH as RANK_DEPTH
from zhiku.rank import authority_of, collapse_duplicates, count_citations, reinforce
from zhiku.services.context import EngineContext
from zhiku.services.indexes import IndexService
from zhiku.services.models import ModelService
from zhiku.services.privacy import redact_hits
from zhiku.store import KnowledgeBase
from zhiku.vocab import expand as expand_terms
from zhiku.vocab import mine as mine_abbreviations

log = logging.getLogger("zhiku")

SEARCH_MODES = ("lexical", "dense", "hybrid")
# Passages sampled to learn a KB's abbreviations (zhiku/vocab.py) and to count how often
# documents cite each other by title (zhiku/rank.py).
VOCAB_SAMPLE = 10_000
CITATION_SAMPLE = 50_000


@dataclass(slots=True)
class Retrieval:
    """What :meth:`RetrievalService.retrieve` found, how, and what went wrong on the way."""

    hits: list[Hit]
    mode: str = "lexical"
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Query-dependent fusion: the lexical evidence measured and the dense weight used
    # (None when no fusion ran); the query's vector, for answers that rest on it.
    evidence: float | None = None
    dense_weight: float | None = None
    query_vector: Any = None


class RetrievalService:
    """Ranked passages of one or more KBs for a query, masked for the reader."""

    def __init__(self, ctx: EngineContext, models: ModelService, indexes: IndexService) -> None:
        self.ctx = ctx
        self.models = models
        self.indexes = indexes
        self._abbrev: dict[int, tuple[int, dict[str, str]]] = {}
        self._authority: dict[int, tuple[int, dict[str, float]]] = {}

    # --- the KB's vocabulary -------------------------------------------------------------

    def abbreviations(self, kb: str | KnowledgeBase) -> dict[str, str]:
        """The KB's learned abbreviations (:mod:`zhiku.vocab`), cached per KB."""
        store = self.ctx.store
        kbo = kb if isinstance(kb, KnowledgeBase) else store.get_kb(kb)
        key = f"abbreviations:{kbo.id}"
        raw = store.get_meta(key, "") or ""
        cached = self._abbrev.get(kbo.id)
        if cached is not None and cached[0] == len(raw):
            return cached[1]
        try:
            found = json.loads(raw) if raw else {}
        except ValueError:
            found = {}
        self._abbrev[kbo.id] = (len(raw), found)
        return found

    def authority(self, kb: KnowledgeBase) -> dict[str, float]:
        """The KB's citation prior per document title (:func:`zhiku.rank.authority_of`)."""
        raw = self.ctx.store.get_meta(f"citations:{kb.id}", "") or ""
        cached = self._authority.get(kb.id)
        if cached is not None and cached[0] == len(raw):
            return cached[1]
        try:
            counts = json.loads(raw) if raw else {}
        except ValueError:
            counts = {}
        found = authority_of(counts if isinstance(counts, dict) else {})
        self._authority[kb.id] = (len(raw), found)
        return found

    def learn_vocabulary(self, kb: str) -> int:
        """Re-learn the KB's abbreviations from a sample of its passages and titles.

        Only documents without access labels count (open to every reader of the KB, at
        公開): the expansions apply to every caller's query, so they must not come from
        text some callers may not see (:mod:`zhiku.access`)."""
        from zhiku.access import AccessScope

        store = self.ctx.store
        kbo = store.get_kb(kb)
        everyone = AccessScope("", frozenset(), 0).restrict()
        texts = store.sample_chunk_texts(kbo.id, VOCAB_SAMPLE, where=everyone)
        open_docs = store.list_documents(kb, where=everyone)
        texts += [d.title for d in open_docs]
        citations = count_citations(
            store.sample_chunks(kbo.id, CITATION_SAMPLE, where=everyone),
            {d.id: d.title for d in open_docs},
        )
        store.set_meta(f"citations:{kbo.id}", json.dumps(citations, ensure_ascii=False))
        idx = self.indexes.index(kbo)
        found = mine_abbreviations(
            texts, lambda terms: {t: v[0] for t, v in idx.term_stats(terms, where=everyone).items()}
        )
        store.set_meta(f"abbreviations:{kbo.id}", json.dumps(found, ensure_ascii=False))
        return len(found)

    def query_terms(
        self, query: str, kbs: str | KnowledgeBase | Sequence[str], *, replace: bool = False
    ) -> list[str]:
        """The query's index terms, with the compounds its abbreviations stand for."""
        many: Sequence[str | KnowledgeBase] = (
            [kbs] if isinstance(kbs, (str, KnowledgeBase)) else kbs
        )
        abbr: dict[str, str] = {}
        for kb in many:
            abbr.update(self.abbreviations(kb))
        return expand_terms(ztext.query_tokens(query), abbr, replace=replace)

    def term_stats(
        self,
        query: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        where: Filter | None = None,
    ) -> dict[str, tuple[int, float]]:
        """(df, idf) of the query's tokens; over several KBs, the sum of dfs; with an
        access scope in ``where``, over the documents it lets through."""
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        tokens = self.query_terms(query, names)
        out: dict[str, tuple[int, float]] = {}
        for name in names:
            for t, (df, idf) in self.indexes.index(name).term_stats(tokens, where).items():
                pdf, pidf = out.get(t, (0, 0.0))
                out[t] = (pdf + df, max(pidf, idf) if df or not pdf else pidf)
        return out

    # --- retrieval -----------------------------------------------------------------------

    def _redact_hits(self, hits: list[Hit], names: Sequence[str]) -> list[Hit]:
        return redact_hits(hits, {n: self.ctx.store.get_kb(n) for n in names})

    def _dense(
        self,
        kbo: KnowledgeBase,
        embedder: Embedder,
        query: str,
        depth: int,
        qvecs: dict[str, Any],
        warnings: list[str],
        excluded: set[int] | None = None,
        where: Filter | None = None,
    ) -> list[tuple[int, float]] | None:
        """The KB's vector list for ``query``; None when it has no vectors of this model."""
        from zhiku.vectors import TooMuchToEmbed, VectorsBusy

        vi = self.indexes.vectors(kbo)
        if not vi.is_current(embedder):
            try:
                vi.sync(embedder, wait=False, max_embed=self.ctx.query_embed_limit)
            except VectorsBusy:
                pass  # another process is writing; search what is there
            except TooMuchToEmbed as exc:
                warnings.append(
                    f"vectors_stale: 知識庫「{kbo.name}」有 {exc.missing} 段尚未建立向量，"
                    "請執行 zhiku models embed；本次以現有向量檢索"
                )
        if vi.model() != embedder.model_id:
            return None
        qvec = qvecs.get(embedder.model_id)
        if qvec is None:
            qvec = qvecs[embedder.model_id] = embedder.embed_query(query)
        return vi.search(qvec, depth, excluded=excluded, where=where)

    def _vectors_complete(self, kbo: KnowledgeBase, embedder: Embedder) -> bool:
        """Whether the KB's vectors are current for ``embedder`` — after embedding what is
        missing at query time when that is within the query-time limit (a KB far from
        complete is not scanned for it: one count, no texts read)."""
        from zhiku.vectors import TooMuchToEmbed, VectorsBusy

        vi = self.indexes.vectors(kbo)
        if vi.is_current(embedder):
            return True
        have = vi.live_rows() if vi.model() == embedder.model_id else 0
        if self.ctx.store.chunk_count(kbo.id) - have > self.ctx.query_embed_limit:
            return False
        try:
            vi.sync(embedder, wait=False, max_embed=self.ctx.query_embed_limit)
        except (VectorsBusy, TooMuchToEmbed):
            return False
        return vi.is_current(embedder)

    def _dense_candidates(
        self,
        kbo: KnowledgeBase,
        embedder: Embedder,
        query: str,
        candidates: Sequence[tuple[int, float]],
        qvecs: dict[str, Any],
        timings: dict[str, float],
        only_kb: bool,
    ) -> list[tuple[int, float]]:
        """The dense list of the lexical ``candidates`` of this KB (``dense_rerank``):
        each passage's vector from the embedding cache, or embedded now (as a passage)
        and cached; the query embedded as a query. ``only_kb``: every candidate is this
        KB's (one KB searched)."""
        from zhiku.hybrid import candidate_list
        from zhiku.vectors import EmbeddingCache, chunk_texts, embed_with_cache

        ids = [c for c, _ in candidates]
        if not only_kb:
            mine = {h.chunk_id for h in self.ctx.store.hits_for(candidates, [kbo.id])}
            ids = [c for c in ids if c in mine]
        pairs = [(c, t) for c, t in zip(ids, chunk_texts(self.ctx.store, ids), strict=True) if t]
        if not pairs:
            return []
        cache = EmbeddingCache(self.ctx.store)
        vecs, computed = embed_with_cache(embedder, cache, [t for _, t in pairs])
        timings["dense_rerank"] = timings.get("dense_rerank", 0.0) + len(pairs)
        timings["dense_rerank_embedded"] = timings.get("dense_rerank_embedded", 0.0) + computed
        qvec = qvecs.get(embedder.model_id)
        if qvec is None:
            qvec = qvecs[embedder.model_id] = embedder.embed_query(query)
        return candidate_list([c for c, _ in pairs], vecs, qvec)

    def _fusion_weight(
        self,
        query: str,
        names: Sequence[str],
        kb_ids: Sequence[int],
        lexical: Sequence[tuple[int, float]],
        dense: Sequence[tuple[int, float]],
        hyb: HybridConfig,
        where: Filter | None = None,
    ) -> tuple[float, float | None]:
        """(dense weight, lexical evidence) for this query (see :mod:`zhiku.hybrid`); with
        no BM25 hit at all the best dense hit tells the KB's script."""
        if not hyb.adaptive:
            return hyb.dense_weight, None
        first = list(lexical[:1] or dense[:1])
        top = self.ctx.store.hits_for(first, kb_ids) if first else []
        return query_dense_weight(
            query, self.term_stats(query, names, where), top[0] if top else None, hyb
        )

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
        store = self.ctx.store
        flt = (where or Filter()).effective()
        # A caller's access scope is checked once more where hits are read (zhiku.access).
        guard = access_guard(flt)
        if mode is not None and mode not in SEARCH_MODES:
            raise ConfigError(f"不支援的檢索模式「{mode}」（可用：{', '.join(SEARCH_MODES)}）")
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        kbos = [store.get_kb(n) for n in names]
        kb_ids = [kbo.id for kbo in kbos]
        warnings: list[str] = []
        timings: dict[str, float] = {}
        mcfg = self.models.model_config(names[0])
        hyb: HybridConfig = mcfg.hybrid
        embedders: dict[int, Embedder] = {}
        if mode != "lexical":
            for kbo in kbos:
                try:
                    emb = self.models.embedder(kbo.name)
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
                reranker = self.models.reranker(names[0])
            except ModelError as exc:
                warnings.append(f"rerank_failed: {exc}")
        want_dense = bool(embedders) and mode != "lexical"
        depth = max(k, hyb.candidates) if (want_dense or reranker) else k
        if reranker is not None:
            depth = max(depth, hyb.rerank_top)
        # KBs whose vectors are not complete, with dense_rerank on: their vector list is
        # BM25's top N, embedded now (a KB too large to embed whole).
        partial: set[int] = set()
        if want_dense and hyb.dense_rerank > 0:
            t = time.perf_counter()
            for kbo in kbos:
                emb = embedders.get(kbo.id)
                if emb is None:
                    continue
                try:
                    if not self._vectors_complete(kbo, emb):
                        partial.add(kbo.id)
                except ModelError as exc:
                    warnings.append(f"embed_failed: {exc}；改用關鍵字檢索")
                    embedders.pop(kbo.id)
            want_dense = bool(embedders)
            timings["dense_ms"] = (time.perf_counter() - t) * 1000
            if partial:
                depth = max(depth, hyb.dense_rerank)

        t = time.perf_counter()
        lexical: list[tuple[int, float]] = []
        if mode != "dense" or not want_dense or partial:
            lexical = self._lexical(query, kbos, depth, flt)
        timings["lexical_ms"] = (time.perf_counter() - t) * 1000

        dense: list[tuple[int, float]] = []
        dense_ok = False
        qvecs: dict[str, Any] = {}
        if want_dense:
            t = time.perf_counter()
            # A caller's filter goes into the vector query; without one, the (few)
            # repealed-law chunks are excluded by id.
            excluded = (
                None
                if where
                else store.filtered_chunk_ids(kb_ids, Filter.parse(["status=repealed"])) or None
            )
            candidates = lexical[: hyb.dense_rerank]
            for kbo in kbos:
                emb = embedders.get(kbo.id)
                if emb is None:
                    continue
                found: list[tuple[int, float]] | None
                try:
                    if kbo.id in partial:
                        found = self._dense_candidates(
                            kbo, emb, query, candidates, qvecs, timings, len(kbos) == 1
                        )
                    else:
                        scoped = flt if where else None
                        found = self._dense(
                            kbo, emb, query, depth, qvecs, warnings, excluded, scoped
                        )
                except ModelError as exc:
                    warnings.append(f"embed_failed: {exc}；改用關鍵字檢索")
                    continue
                if found is not None:
                    dense.extend(found)
                    dense_ok = True
            dense.sort(key=lambda x: x[1], reverse=True)
            dense = dense[:depth]
            timings["dense_ms"] = timings.get("dense_ms", 0.0) + (time.perf_counter() - t) * 1000

        bm25 = dict(lexical)
        cos = dict(dense)
        used = "lexical"
        evidence: float | None = None
        weight: float | None = None
        if dense_ok and mode == "dense":
            ranked, used = dense, "dense"
        elif dense_ok:
            weight, evidence = self._fusion_weight(query, names, kb_ids, lexical, dense, hyb, guard)
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
            hits = store.hits_for(ranked[: k + 10], kb_ids, guard)
            hits = collapse_duplicates(hits, k) if collapse else hits[:k]
            self._redact_hits(hits, names)
        else:
            top = self._redact_hits(store.hits_for(ranked[: hyb.rerank_top], kb_ids, guard), names)
            t = time.perf_counter()
            scores: list[float] | None
            try:
                scores = reranker.score(
                    query,
                    [
                        index_text({"title": h.doc_title, "section": h.section, "text": h.text})
                        for h in top
                    ],
                )
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
                rest = store.hits_for(ranked[len(top) :][: k - len(hits)], kb_ids, guard)
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
        return Retrieval(
            hits=hits,
            mode=used + ("+rerank" if reranked else ""),
            warnings=warnings,
            timings=timings,
            evidence=evidence,
            dense_weight=weight,
            query_vector=qvec,
        )

    def _lexical(
        self, query: str, kbos: Sequence[KnowledgeBase], depth: int, where: Filter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 candidates of the KBs, reordered by :func:`zhiku.rank.reinforce` (the
        order is what counts; the raw BM25 of each stays available in the scores)."""
        want = max(depth, RANK_DEPTH)
        found: list[tuple[int, float]] = []
        for kbo in kbos:
            found.extend(
                self.indexes.index(kbo).search(self.query_terms(query, kbo), k=want, where=where)
            )
        found.sort(key=lambda x: x[1], reverse=True)
        found = found[:want]
        authority: dict[str, float] = {}
        for kbo in kbos:
            authority.update(self.authority(kbo))
        order = reinforce(found, self.ctx.store.chunk_docs([c for c, _ in found]), authority)
        raw = dict(found)
        return [(cid, raw[cid]) for cid, _ in order[: max(depth, 1) + 10]]

    def lexical_candidates(
        self, query: str, kbos: Sequence[KnowledgeBase], n: int, where: Filter | None = None
    ) -> list[tuple[int, float]]:
        """The lexical top ``n`` that ``[hybrid] dense_rerank = n`` reorders: BM25's
        candidates after :func:`zhiku.rank.reinforce`, (chunk id, BM25 score)."""
        return self._lexical(query, kbos, n, where)[:n]

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
