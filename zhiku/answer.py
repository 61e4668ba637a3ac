"""Answers without a model: pick the best sentence(s) of the top passages, cite them.

Relevance is measured as *query coverage*: the idf-weighted share of the query's
tokens (unigrams and bigrams, interrogatives dropped) that occur in the top passage
or its title/heading path. Unlike a raw BM25 score it is comparable across queries,
so one threshold can decide when to refuse (「知識庫中找不到相關資料」). The default
threshold was calibrated on DRCD with held-out articles (bench/calibrate_refusal.py,
figures in bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zhiku import text as ztext
from zhiku.config import lang
from zhiku.models import Answer, Citation, Hit

# Calibrated on DRCD (bench/calibrate_refusal.py): ≤ 5 % of answerable questions refused.
DEFAULT_REFUSE_BELOW = 0.49

REFUSAL = {"zh-TW": "知識庫中找不到相關資料。", "en": "No relevant information was found."}


def refusal_text() -> str:
    return REFUSAL[lang()]


TermStats = Mapping[str, tuple[int, float]]


def coverage(q_tokens: Sequence[str], stats: TermStats, hit: Hit) -> float:
    """Idf-weighted share of query tokens present in the hit's text, title or section.

    A CJK bigram the knowledge base has never seen is left out: in a natural question
    such bigrams mostly straddle two words (「要多」「久內」) and say nothing about the
    passage. An unseen *character* or Latin word still counts, at the highest idf: it
    is strong evidence that the knowledge base does not cover the question.
    """
    present = set(ztext.tokenize(f"{hit.doc_title}\n{hit.section or ''}\n{hit.text}"))
    total = got = 0.0
    for t in q_tokens:
        df, idf = stats.get(t, (0, 0.0))
        if df == 0 and len(t) == 2 and not t.isascii():
            continue
        total += idf
        if t in present:
            got += idf
    return got / total if total > 0 else 0.0


def source_phrase(hit: Hit) -> str:
    """「《出貨異常處理SOP》4.3」 — title, then the clause label or section, then page."""
    where = f"《{hit.doc_title}》"
    tail = hit.label or (hit.section.split(" > ")[-1] if hit.section else "")
    if tail and tail not in hit.doc_title:
        where += tail
    if hit.page_start:
        pages = str(hit.page_start)
        if hit.page_end and hit.page_end != hit.page_start:
            pages += f"–{hit.page_end}"
        where += f"（第 {pages} 頁）" if lang() == "zh-TW" else f" (p. {pages})"
    return where


def _without_label(quote: str, label: str | None) -> str:
    """「4.3 出貨異常…」 → 「出貨異常…」 when the lead-in already names the clause."""
    if label and quote.startswith(label):
        rest = quote[len(label):].lstrip(" 　、.．:：")
        return rest or quote
    return quote


@dataclass(slots=True)
class _Candidate:
    score: float
    hit_rank: int
    hit: Hit
    start: int
    end: int


class ExtractiveAnswerer:
    """Chooses up to ``max_sentences`` sentences from the top ``passages`` hits."""

    def __init__(
        self,
        refuse_below: float = DEFAULT_REFUSE_BELOW,
        passages: int = 3,
        max_sentences: int = 2,
        rank_decay: float = 0.8,
    ) -> None:
        self.refuse_below = refuse_below
        self.passages = passages
        self.max_sentences = max_sentences
        self.rank_decay = rank_decay

    def relevance(self, question: str, hits: Sequence[Hit], stats: TermStats) -> float:
        if not hits:
            return 0.0
        return coverage(ztext.query_tokens(question), stats, hits[0])

    def answer(self, question: str, hits: Sequence[Hit], stats: TermStats) -> Answer:
        q_tokens = ztext.query_tokens(question)
        rel = self.relevance(question, hits, stats)
        if not hits or rel < self.refuse_below:
            return Answer(text=refusal_text(), citations=[], refused=True,
                          timings={"relevance": rel})
        qset = set(q_tokens)
        cands: list[_Candidate] = []
        for rank, hit in enumerate(hits[: self.passages]):
            weight = self.rank_decay**rank
            for s, e in ztext.sentence_spans(hit.text):
                sent = hit.text[s:e]
                toks = set(ztext.tokenize(sent)) & qset
                if not toks:
                    continue
                score = sum(stats[t][1] for t in toks) * weight
                cands.append(_Candidate(score, rank, hit, s, e))
        if not cands:
            return Answer(text=refusal_text(), citations=[], refused=True,
                          timings={"relevance": rel})
        cands.sort(key=lambda c: c.score, reverse=True)
        best = cands[0]
        chosen = [best]
        for c in cands[1:]:
            if len(chosen) >= self.max_sentences:
                break
            # A second sentence only when it is nearly as good: adjacent in the same
            # passage, or a strong sentence from another passage.
            same = c.hit is best.hit
            if c.score >= 0.8 * best.score or (same and c.score >= 0.5 * best.score
                                                and abs(c.start - best.end) <= 2):
                chosen.append(c)
        citations: list[Citation] = []
        parts: list[str] = []
        by_hit: dict[int, list[_Candidate]] = {}
        for c in chosen:
            by_hit.setdefault(c.hit.chunk_id, []).append(c)
        for group in by_hit.values():
            group.sort(key=lambda c: c.start)
            hit = group[0].hit
            quote = "".join(hit.text[c.start : c.end] for c in group)
            citations.append(Citation(hit=hit, text=quote))
            lead = "根據" if not parts else "另據"
            said = _without_label(quote, hit.label)
            if lang() == "en":
                lead = "According to" if not parts else "Also, according to"
                parts.append(f"{lead} {source_phrase(hit)}: {said}")
            else:
                parts.append(f"{lead}{source_phrase(hit)}：{said}")
        return Answer(text="\n".join(parts), citations=citations, refused=False,
                      timings={"relevance": rel})
