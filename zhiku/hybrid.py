"""Fusion of ranked lists (weighted reciprocal rank fusion) and its calibration.

Reciprocal rank fusion needs no score normalisation: BM25 scores and cosine
similarities live on different scales, ranks do not. Each list contributes
``weight / (rrf_k + rank)`` (1-based ranks) to a chunk's score. A small ``rrf_k`` makes
the top of each list count more; the lexical weight being ten times the dense one (the
default) means a dense list can reorder and extend BM25's list but not overturn a
clear BM25 winner. That default was measured on DRCD: with the bundled, English-centric
MiniLM (dense R@1 ≈ .05 on Chinese) it leaves R@1 exactly where BM25 alone puts it.

:func:`calibrate` picks ``rrf_k`` and ``dense_weight`` for a knowledge base from its
own questions with known answers.

Query-dependent fusion (:func:`dense_weight_for`). One fixed weight cannot serve both a
question copied from the text (BM25 is right, a strong dense list only adds noise at the
top) and one asked in other words, another language or script, whose words the KB does
not contain (BM25 ranks noise; the dense list is the only signal). The engine measures
the *lexical evidence* of each query (:func:`lexical_evidence`: the idf-weighted share
of the query's tokens found in the best BM25 hit, zero when the query has no CJK
characters and the hit is Chinese) and moves the dense weight from ``dense_weight`` to
``dense_weight_max`` as that evidence falls from ``evidence_high`` to ``evidence_low``;
a query in another script than the KB (English over Chinese: BM25 has nothing to match)
gets ``dense_weight_other_script``, the dense list leading.
Unseen characters and Latin words count at the highest idf (see
:func:`zhiku.answer.coverage`), so "words absent from the KB" lower the evidence too.
The defaults were fitted on layperson legal questions and English questions and checked
on held-out halves of both and on DRCD (bench/retrieval.py, bench/RESULTS.md).

Dense rerank of the lexical candidates (``[hybrid] dense_rerank = N``). A KB too large
to embed whole (162k law articles: about a day on two cores) has no usable vector list,
but its BM25 top N can be embedded at query time (once each, through the embedding
cache). :func:`candidate_list` ranks those candidates by cosine similarity to the query;
fused with the lexical list under the same query-dependent weight, it reorders BM25's
candidates and, unlike a whole-KB vector list, never adds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhiku import text as ztext

Ranked = Sequence[tuple[int, float]]

RRF_K_GRID = (1.0, 2.0, 5.0, 10.0, 20.0, 60.0)
DENSE_WEIGHT_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 4.0)


def rrf(lists: Sequence[tuple[Ranked, float]], k: float) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of ``(ranked list, weight)`` pairs.

    Ties are broken by the best rank in the earlier lists (the lexical list first).
    """
    scores: dict[int, float] = {}
    first: dict[int, tuple[int, int]] = {}
    for li, (ranked, weight) in enumerate(lists):
        for rank, (cid, _) in enumerate(ranked, 1):
            if weight > 0:
                scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
            else:
                scores.setdefault(cid, 0.0)
            first.setdefault(cid, (li, rank))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def candidate_list(
    chunk_ids: Sequence[int], vectors: Any, query_vector: Any
) -> list[tuple[int, float]]:
    """The candidates ``chunk_ids`` (one unit-length row of ``vectors`` each) as a dense
    list: (chunk id, cosine similarity to ``query_vector``), most similar first, ties in
    the given (lexical) order."""
    import numpy as np

    if not len(chunk_ids):
        return []
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(query_vector, dtype=np.float32)
    order = np.argsort(-sims, kind="stable")
    return [(int(chunk_ids[i]), float(sims[i])) for i in order]


def _cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if ztext.has_cjk(c)) / len(letters)


def other_script(query: str, top: Any) -> bool:
    """A query without CJK characters over a mostly-CJK hit (English over Chinese)."""
    return (
        top is not None
        and not ztext.has_cjk(query)
        and _cjk_share(f"{top.doc_title}\n{top.text}") > 0.5
    )


def lexical_evidence(query: str, stats: Mapping[str, tuple[int, float]], top: Any) -> float:
    """How well the best BM25 hit ``top`` (a :class:`~zhiku.models.Hit`) backs the query,
    0–1: the idf-weighted share of query tokens it contains; 0 for a query in another
    script (:func:`other_script`)."""
    from zhiku.answer import coverage

    if top is None or other_script(query, top):
        return 0.0
    return coverage(ztext.query_tokens(query), stats, top)


def query_dense_weight(
    query: str, stats: Mapping[str, tuple[int, float]], top: Any, hyb: Any
) -> tuple[float, float]:
    """(dense weight, lexical evidence) for a query, under a
    :class:`~zhiku.backends.HybridConfig`: ``dense_weight_other_script`` for a query in
    another script than the KB, else :func:`dense_weight_for` of its evidence."""
    evidence = lexical_evidence(query, stats, top)
    if other_script(query, top):
        return max(hyb.dense_weight, hyb.dense_weight_other_script), evidence
    return dense_weight_for(
        evidence, hyb.dense_weight, hyb.dense_weight_max, hyb.evidence_low, hyb.evidence_high
    ), evidence


def dense_weight_for(
    evidence: float,
    low_weight: float,
    high_weight: float,
    evidence_low: float,
    evidence_high: float,
) -> float:
    """The dense list's fusion weight for a query with this lexical evidence: ``low_weight``
    at or above ``evidence_high``, ``high_weight`` at or below ``evidence_low``, linear
    between (never below ``low_weight``)."""
    if high_weight <= low_weight:
        return low_weight
    if evidence >= evidence_high:
        return low_weight
    if evidence <= evidence_low or evidence_high <= evidence_low:
        return high_weight
    share = (evidence_high - evidence) / (evidence_high - evidence_low)
    return low_weight + (high_weight - low_weight) * share


@dataclass(slots=True)
class CalibrationResult:
    rrf_k: float
    dense_weight: float
    r_at_1: float
    mrr: float
    lexical_r_at_1: float
    dense_r_at_1: float
    questions: int
    table: list[tuple[float, float, float, float]]  # (rrf_k, dense_weight, R@1, MRR@10)


def _metrics(ranked: Sequence[Sequence[int]], gold: Sequence[set[int]]) -> tuple[float, float]:
    n = max(len(gold), 1)
    r1 = sum(1 for r, g in zip(ranked, gold, strict=True) if r and r[0] in g) / n
    mrr = 0.0
    for r, g in zip(ranked, gold, strict=True):
        for i, c in enumerate(r[:10]):
            if c in g:
                mrr += 1 / (i + 1)
                break
    return r1, mrr / n


def calibrate(
    lexical: Sequence[Ranked],
    dense: Sequence[Ranked],
    gold: Sequence[set[int]],
    lexical_weight: float = 1.0,
    rrf_ks: Sequence[float] = RRF_K_GRID,
    dense_weights: Sequence[float] = DENSE_WEIGHT_GRID,
) -> CalibrationResult:
    """Grid-search ``(rrf_k, dense_weight)`` for the best R@1.

    ``gold[i]`` is the set of acceptable ids for question ``i`` (the ids the ranked
    lists use: chunk ids, or document ids when the lists are per document).
    """
    table: list[tuple[float, float, float, float]] = []
    for k in rrf_ks:
        for w in dense_weights:
            fused = [
                [c for c, _ in rrf([(lx, lexical_weight), (dn, w)], k)]
                for lx, dn in zip(lexical, dense, strict=True)
            ]
            r1, mrr = _metrics(fused, gold)
            table.append((k, w, r1, mrr))
    best_r1 = max(t[2] for t in table)
    # The best R@1 is usually a plateau of settings. Take the rrf_k with the widest
    # plateau and the middle weight of it: the choice least likely to be an accident of
    # these questions (a weak embedder's plateau starts at 0 and stays low).
    plateaus = {k: [t for t in table if t[0] == k and t[2] >= best_r1 - 1e-9] for k in rrf_ks}
    k_best = max(
        rrf_ks, key=lambda k: (len(plateaus[k]), max((t[3] for t in plateaus[k]), default=0.0))
    )
    flat = plateaus[k_best]
    best = flat[(len(flat) - 1) // 2]
    lex_r1, _ = _metrics([[c for c, _ in lx] for lx in lexical], gold)
    dense_r1, _ = _metrics([[c for c, _ in dn] for dn in dense], gold)
    return CalibrationResult(
        rrf_k=best[0],
        dense_weight=best[1],
        r_at_1=best[2],
        mrr=best[3],
        lexical_r_at_1=lex_r1,
        dense_r_at_1=dense_r1,
        questions=len(gold),
        table=table,
    )
