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
- **Near-duplicates collapse.** Among the final hits, a passage whose tokens are almost
  all those of a better-ranked passage (the same clause copied into two regulations) is
  dropped, and when the two say the same the parent document's one is kept.

Measured on DRCD dev, DRCD + 218k law articles and the layperson legal questions
(bench/RESULTS.md); all three only reorder candidates BM25 found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from zhiku.models import Hit

DOC_WEIGHT = 0.05
DOC_TOP = 3
DERIVED_FACTOR = 0.8
DEPTH = 30
DUPLICATE_JACCARD = 0.85
MIN_PARENT_TITLE = 3


def _is_derived(title: str, titles: set[str]) -> bool:
    return any(len(p) >= MIN_PARENT_TITLE and p != title and title.startswith(p) for p in titles)


def reinforce(
    scored: Sequence[tuple[int, float]], docs: Mapping[int, tuple[int, str]]
) -> list[tuple[int, float]]:
    """Candidates (chunk id, BM25) reordered; ``docs`` maps chunk id → (doc id, title).

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
    derived: dict[str, bool] = {}
    out: list[tuple[int, float]] = []
    for cid, s in scored:
        d = docs.get(cid)
        if d is None:
            out.append((cid, s / best))
            continue
        v = s / best + DOC_WEIGHT * strength[d[0]] / top
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
