"""Lexical re-ranking with what a single passage's BM25 score cannot see.

- **Passages of one document reinforce each other.** A question about sick leave matches
  several articles of the leave regulation a little, and one article of an unrelated
  regulation a lot. Each candidate's score (relative to the best) gets a bonus from its
  document's strength, the sum of its best three candidates' scores (relative to the
  strongest document): weight :data:`DOC_WEIGHT`.
- **A parent document is preferred to what derives from it.** A document whose title is
  another candidate document's title plus more (勞動基準法 → 勞動基準法施行細則, an SOP and
  its 附件) usually repeats or details the parent; its candidates are scaled by
  :data:`DERIVED_FACTOR` when the parent is among the candidates too.
- **Documents everything else refers to come first.** How many *other* documents
  mention a document by its title (「依勞動基準法第…條」, an SOP naming the procedure it
  follows) is learned from the KB's own text (:func:`count_citations`, with the KB's
  vocabulary); each candidate gets a bonus of :data:`AUTHORITY_WEIGHT` times its
  document's share of the most-cited document's count (log-scaled).
- **Near-duplicates collapse.** Among the final hits, a passage whose tokens are almost
  all those of a better-ranked passage (the same clause copied into two regulations) is
  dropped, and when the two say the same the parent document's one is kept.

Measured on DRCD dev, DRCD + 218k law articles and the layperson legal questions
(bench/RESULTS.md); all three only reorder candidates BM25 found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from zhiku import text as ztext
from zhiku.models import Hit

DOC_WEIGHT = 0.05
DOC_TOP = 3
DERIVED_FACTOR = 0.8
DEPTH = 60
DUPLICATE_JACCARD = 0.85
MIN_PARENT_TITLE = 3
AUTHORITY_WEIGHT = 0.5
AMBIGUITY_RANK = 30
AMBIGUITY_POWER = 2.0
# A title shorter than this is not looked for in other documents' text.
MIN_CITED_TITLE = 2
# Counted only from this many citing documents on.
MIN_CITING = 2


def _is_derived(title: str, titles: set[str]) -> bool:
    return any(len(p) >= MIN_PARENT_TITLE and p != title and title.startswith(p) for p in titles)


def count_citations(chunks: Iterable[tuple[int, str]], titles: Mapping[int, str]) -> dict[str, int]:
    """Title → how many other documents mention it, over ``chunks`` ((doc id, text)
    pairs; ``titles`` maps doc id → title). Titles are matched folded and longest first
    (勞動基準法施行細則 is not also a mention of 勞動基準法); only counts of at least
    :data:`MIN_CITING` are returned."""
    import ahocorasick  # Aho–Corasick: all titles in one pass over each text

    auto = ahocorasick.Automaton()
    for title in set(titles.values()):
        key = ztext.fold(title).strip()
        if len(key) >= MIN_CITED_TITLE:
            auto.add_word(key, title)
    if not len(auto):
        return {}
    auto.make_automaton()
    citing: dict[str, set[int]] = {}
    for doc_id, text in chunks:
        own = titles.get(doc_id)
        for _, title in auto.iter_long(ztext.fold(text)):
            if title != own:
                citing.setdefault(title, set()).add(doc_id)
    return {t: len(d) for t, d in citing.items() if len(d) >= MIN_CITING}


def authority_of(counts: Mapping[str, int]) -> dict[str, float]:
    """Citation counts as a prior in [0, 1]: log(1 + n) / log(1 + the largest n)."""
    top = max(counts.values(), default=0)
    if top < MIN_CITING:
        return {}
    scale = math.log1p(top)
    return {t: math.log1p(n) / scale for t, n in counts.items()}


def reinforce(
    scored: Sequence[tuple[int, float]],
    docs: Mapping[int, tuple[int, str]],
    authority: Mapping[str, float] | None = None,
) -> list[tuple[int, float]]:
    """Candidates (chunk id, BM25) reordered; ``docs`` maps chunk id → (doc id, title);
    ``authority`` maps a title to its citation prior (:func:`authority_of`).

    Returns (chunk id, ranking score); the BM25 scores themselves are kept by the caller.
    """
    if len(scored) < 2:
        return list(scored)
    best = scored[0][1] or 1.0
    per_doc: dict[int, list[float]] = {}
    for cid, s in scored:
        d = docs.get(cid)
        if d is not None:
            per_doc.setdefault(d[0], []).append(s)
    strength = {d: sum(sorted(v, reverse=True)[:DOC_TOP]) for d, v in per_doc.items()}
    top = max(strength.values(), default=1.0) or 1.0
    titles = {t for _, t in docs.values()}
    # The prior counts as much as the evidence is ambiguous: the score of the
    # AMBIGUITY_RANK-th candidate relative to the best (a clear winner keeps its place).
    prior = 0.0
    if authority:
        prior = (
            AUTHORITY_WEIGHT
            * (scored[min(AMBIGUITY_RANK, len(scored)) - 1][1] / best) ** AMBIGUITY_POWER
        )
    derived: dict[str, bool] = {}
    out: list[tuple[int, float]] = []
    for cid, s in scored:
        d = docs.get(cid)
        if d is None:
            out.append((cid, s / best))
            continue
        v = s / best + DOC_WEIGHT * strength[d[0]] / top
        if prior and authority:
            v += prior * authority.get(d[1], 0.0)
        if d[1] not in derived:
            derived[d[1]] = _is_derived(d[1], titles)
        if derived[d[1]]:
            v *= DERIVED_FACTOR
        out.append((cid, v))
    out.sort(key=lambda x: -x[1])
    return out


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def collapse_duplicates(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The first ``k`` hits with near-duplicates of better-ranked ones removed; of two
    that say the same, the one from the parent document stays (in the better rank).

    Near-duplicate: character-bigram Jaccard ≥ :data:`DUPLICATE_JACCARD`, compared only
    between passages of similar length (copies are literal)."""
    kept: list[tuple[Hit, set[str] | None]] = []
    titles = {h.doc_title for h in hits}
    for h in hits:
        mine: set[str] | None = None
        dup = None
        for i, (o, theirs) in enumerate(kept):
            a, b = len(h.text), len(o.text)
            if not a or not b or min(a, b) < 0.85 * max(a, b):
                continue
            if mine is None:
                mine = _bigrams(h.text)
            if theirs is None:
                theirs = _bigrams(o.text)
                kept[i] = (o, theirs)
            union = len(mine | theirs)
            if union and len(mine & theirs) / union >= DUPLICATE_JACCARD:
                dup = i
                break
        if dup is None:
            kept.append((h, mine))
        else:
            o = kept[dup][0]
            if _is_derived(o.doc_title, titles) and not _is_derived(h.doc_title, titles):
                kept[dup] = (h, mine)
        if len(kept) >= k:
            break
    return [h for h, _ in kept]
