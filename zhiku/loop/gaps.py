"""Knowledge gaps: refused, 👎-rated and handed-off questions grouped by need.

Questions are compared by character n-grams from zhiku's own tokenizer
(:func:`zhiku.text.query_tokens`: CJK bigrams and Latin/digit words, interrogatives such
as 「請問」「如何」 removed) with Jaccard similarity. Clustering is single-pass
"leader" clustering through an inverted index of n-grams, so each question is compared
only with the clusters it shares an n-gram with: a few thousand questions cluster in
well under a second.

:func:`question_key` is the exact-match key stored with every recorded answer; a curated
entry keeps the keys of its questions, so its before/after refusal rate is one indexed
query (:meth:`zhiku.storage.loop.SqlLoopRepository.refusal_split`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zhiku.text import fold, query_tokens

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

#: Two questions with at least this Jaccard similarity of n-grams state the same need.
SIMILARITY = 0.34


def question_key(question: str) -> str:
    """The exact-match key of a question: folded, punctuation and spaces removed."""
    return _NON_WORD.sub("", fold(question))[:200]


def ngrams(question: str) -> frozenset[str]:
    toks = query_tokens(question)
    grams = [t for t in toks if len(t) > 1 or t.isascii()]
    return frozenset(grams or toks)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@dataclass
class Cluster:
    grams: frozenset[str]
    questions: Counter[str] = field(default_factory=Counter)
    keys: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    days: Counter[str] = field(default_factory=Counter)
    kbs: Counter[str] = field(default_factory=Counter)
    message_ids: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.questions.values())


def reason_of(row: dict[str, Any]) -> str:
    if row.get("outcome") == "handoff":
        return "handoff"
    if row.get("outcome") == "refused":
        return "refused"
    return "thumbs_down"


def cluster(rows: Iterable[dict[str, Any]], threshold: float = SIMILARITY) -> list[Cluster]:
    """Group gap rows (``question``, ``qkey``, ``outcome``, ``rating``, ``day``, ``kb``)
    into clusters of the same need, largest first."""
    clusters: list[Cluster] = []
    index: dict[str, list[int]] = defaultdict(list)
    by_key: dict[str, int] = {}
    for row in rows:
        q, key = row["question"], row["qkey"]
        ci = by_key.get(key)
        if ci is None:
            grams = ngrams(q)
            best, best_sim = -1, threshold
            seen: set[int] = set()
            for g in grams:
                for cand in index.get(g, ()):
                    if cand in seen:
                        continue
                    seen.add(cand)
                    sim = jaccard(grams, clusters[cand].grams)
                    if sim >= best_sim:
                        best, best_sim = cand, sim
            if best < 0:
                best = len(clusters)
                clusters.append(Cluster(grams))
                for g in grams:
                    index[g].append(best)
            ci = by_key[key] = best
        c = clusters[ci]
        c.questions[q] += 1
        c.keys.add(key)
        c.reasons[reason_of(row)] += 1
        c.days[row["day"]] += 1
        c.kbs[row["kb"]] += 1
        if row.get("message_id"):
            c.message_ids.append(row["message_id"])
    clusters.sort(key=lambda c: (-c.count, min(c.questions)))
    return clusters


def trend(days: Counter[str], all_days: Sequence[str]) -> dict[str, Any]:
    """Counts per day over the report's days, and the change from the first half of the
    period to the second (``rising`` / ``falling`` / ``steady``)."""
    series = [days.get(d, 0) for d in all_days]
    half = len(series) // 2
    first, second = sum(series[:half]), sum(series[half:])
    if len(series) >= 2 and second > first:
        direction = "rising"
    elif len(series) >= 2 and second < first:
        direction = "falling"
    else:
        direction = "steady"
    return {"per_day": series, "first_half": first, "second_half": second, "direction": direction}
