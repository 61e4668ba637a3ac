"""Knowledge-base administration: creation, PII policy, deletion, and calibration.

Calibration is per KB and stored in its settings: the refusal threshold
(:mod:`zhiku.calibration`, fitted on the KB's own passages and refitted when the KB has
changed by a quarter) and the hybrid fusion weights (:func:`zhiku.hybrid.calibrate`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from zhiku import text as ztext
from zhiku.backends import ConfigError
from zhiku.calibration import MAX_REFUSED, POSITIVES, RefusalCalibration, needs_refit
from zhiku.calibration import calibrate as calibrate_refusal
from zhiku.config import DEFAULT_KB
from zhiku.hybrid import CalibrationResult, calibrate
from zhiku.index import IndexConfig
from zhiku.pii import PiiPolicy
from zhiku.services.answering import AnsweringService
from zhiku.services.context import EngineContext
from zhiku.services.indexes import IndexService
from zhiku.services.models import ModelService
from zhiku.services.retrieval import RetrievalService
from zhiku.store import KnowledgeBase, now_iso


def default_kb_settings() -> dict[str, Any]:
    """A new knowledge base's settings: private by default (PII masked at ingest)."""
    return {"pii": PiiPolicy.default().to_dict()}


class KbService:
    """Creates, configures and deletes KBs; fits their refusal and fusion calibration."""

    def __init__(
        self,
        ctx: EngineContext,
        models: ModelService,
        indexes: IndexService,
        retrieval: RetrievalService,
        answering: AnsweringService,
    ) -> None:
        self.ctx = ctx
        self.models = models
        self.indexes = indexes
        self.retrieval = retrieval
        self.answering = answering

    # --- administration --------------------------------------------------------------

    def kb(self, name: str = DEFAULT_KB, create: bool = False) -> KnowledgeBase:
        """A knowledge base; ``create`` makes it, with the privacy-by-default PII policy."""
        if create:
            return self.ctx.store.ensure_kb(name, default_kb_settings())
        return self.ctx.store.get_kb(name)

    def set_pii_policy(self, name: str, policy: PiiPolicy) -> KnowledgeBase:
        """Change a KB's policy. Stricter ingest masking applies to files ingested from
        now on; ``zhiku sync`` does not re-read unchanged files, ``reingest`` does."""
        return self.ctx.store.update_kb_settings(name, {"pii": policy.to_dict()})

    def delete_kb(self, name: str) -> None:
        kbo = self.ctx.store.get_kb(name)
        with self.ctx.lock:
            self.indexes.forget(kbo)
            if IndexConfig.of(kbo).backend == "milvus":
                from zhiku.index.milvus import drop_kb

                drop_kb(IndexConfig.of(kbo), self.ctx.home, self.ctx.store, kbo)
            self.ctx.store.delete_kb(name)
            self.indexes.remove_files(kbo)

    # --- fusion calibration ------------------------------------------------------------

    def sample_questions(self, kb: str, n: int = 200, seed: int = 13) -> list[tuple[str, str]]:
        """Pseudo-questions for calibration: a sentence of a random chunk, its document.

        Copied sentences favour BM25, so weights calibrated on them lean lexical: safe
        for a weak embedder, conservative for a strong one. Real questions are better.
        """
        store = self.ctx.store
        kbo = store.get_kb(kb)
        rows = store.chunk_texts_with_paths(kbo.id, min_chars=16)
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
        store = self.ctx.store
        embedder = self.models.embedder(kb)
        if embedder is None:
            raise ConfigError(f"知識庫「{kb}」沒有設定嵌入模型（embed），無法校準混合檢索")
        kbo = store.get_kb(kb)
        self.indexes.sync_vectors(kb)
        docs: dict[str, set[int]] = {}
        for r in store.chunk_paths_titles(kbo.id):
            docs.setdefault(r[1], set()).add(r[0])
            docs.setdefault(f"title:{r[2]}", set()).add(r[0])
        vi = self.indexes.vectors(kbo)
        lex_lists: list[list[tuple[int, float]]] = []
        dense_lists: list[list[tuple[int, float]]] = []
        gold: list[set[int]] = []
        qvecs: Any = embedder.embed_queries([q for q, _ in questions]) if questions else []
        for (q, ref), qv in zip(questions, qvecs, strict=True):
            chunks = docs.get(ref) or docs.get(f"title:{ref}")
            if not chunks:
                continue
            lex_lists.append(self.indexes.index(kbo).search(ztext.query_tokens(q), k=depth))
            dense_lists.append(vi.search(qv, depth))
            gold.append(chunks)
        if not gold:
            raise ConfigError("校準問題所指的文件都不在這個知識庫中（請用文件路徑或標題）")
        res = calibrate(
            lex_lists,
            dense_lists,
            gold,
            lexical_weight=self.ctx.settings.for_kb(kb).hybrid.lexical_weight,
        )
        if save:
            store.update_kb_settings(
                kb,
                {
                    "hybrid_calibration": {
                        "model": embedder.model_id,
                        "rrf_k": res.rrf_k,
                        "dense_weight": res.dense_weight,
                        "r_at_1": round(res.r_at_1, 4),
                        "lexical_r_at_1": round(res.lexical_r_at_1, 4),
                        "dense_r_at_1": round(res.dense_r_at_1, 4),
                        "questions": res.questions,
                        "at": now_iso(),
                    }
                },
            )
        return res

    # --- refusal calibration -------------------------------------------------------------

    def refusal_calibration(self, kb: str) -> RefusalCalibration | None:
        """The KB's stored refusal calibration, when it has a current one."""
        return RefusalCalibration.from_dict(self.ctx.store.get_kb(kb).settings.get("refusal"))

    def calibrate_refusal(
        self, kb: str, *, save: bool = True, max_refused: float = MAX_REFUSED
    ) -> RefusalCalibration | None:
        """Fit ``kb``'s refusal threshold on its own passages (:mod:`zhiku.calibration`).

        None when the KB has too few passages to draw questions from."""
        store = self.ctx.store
        kbo = store.get_kb(kb)
        chunks = store.chunk_count(kbo.id)
        texts = store.sample_chunk_texts(kbo.id, 4 * POSITIVES)
        cal = calibrate_refusal(
            lambda q: self.answering.probe(q, [kb]),
            texts,
            chunks=chunks,
            at=now_iso(),
            max_refused=max_refused,
        )
        if cal is not None and save:
            store.update_kb_settings(kb, {"refusal": cal.to_dict()})
        return cal

    def refit_refusal_if_needed(self, kb: str) -> RefusalCalibration | None:
        """Recalibrate when the KB changed by a quarter since its last calibration."""
        kbo = self.ctx.store.find_kb(kb)
        if kbo is None:
            return None
        cal = RefusalCalibration.from_dict(kbo.settings.get("refusal"))
        if needs_refit(cal, self.ctx.store.chunk_count(kbo.id)):
            self.retrieval.learn_vocabulary(kb)
            return self.calibrate_refusal(kb)
        return None
