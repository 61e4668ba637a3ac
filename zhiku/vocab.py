"""Abbreviations learned from a knowledge base's own text.

People write 特休, 勞保, 職災, 個資 where documents write 特別休假, 勞工保險, 職業災害,
個人資料. Chinese abbreviations of a four-character compound ABCD usually keep its first
and third characters (A C). So, from a sample of the KB's passages (folded, like the
index), every frequent four-character run ABCD that is a unit — its halves AB and CD are
common index terms seen mostly inside it, and it is not always preceded or followed by
the same character — proposes the abbreviation AC; it is kept when AC itself is rare in
the KB compared with those halves (the KB spells the compound out). At query time a
question's bigram found in the map brings the compound's bigrams into the query
(:func:`expand`).

Nothing here is a hand-written list: what is learned depends only on the corpus, and
the map is rebuilt with the KB's refusal calibration when the KB has changed by a quarter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from zhiku import text as ztext

# A compound must occur this often in the sample, and each half this often in the KB.
MIN_COUNT = 5
MIN_HALF_DF = 20
# The abbreviation is kept when its own df is below this share of the rarer half's df.
MAX_ABBR_SHARE = 0.2
MAX_ENTRIES = 5000
MIN_COHESION = 0.1
MAX_CONTEXT_SHARE = 0.7

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{4,}")


def mine(
    texts: Iterable[str],
    df: Callable[[Sequence[str]], Mapping[str, int]],
    *,
    min_count: int = MIN_COUNT,
) -> dict[str, str]:
    """abbreviation bigram → the compound it stands for (both folded)."""
    grams: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for text in texts:
        for run in _HAN_RUN.findall(ztext.fold(text)):
            grams.update(run[i : i + 4] for i in range(len(run) - 3))
            pairs.update(run[i : i + 2] for i in range(len(run) - 1))
    # A compound is a unit: its halves are mostly seen inside it (勞工保險), not a chance
    # meeting of two common pieces (「考試之特…」).
    frequent = [
        (w, c)
        for w, c in grams.items()
        if c >= min_count and c >= MIN_COHESION * min(pairs[w[:2]], pairs[w[2:]])
    ]
    if not frequent:
        return {}
    # ... and it stands on its own: not always preceded or followed by the same character
    # (「丁國家公」 is always 墾丁國家公園, 「年矯正學」 always 少年矯正學校).
    candidates = {w for w, _ in frequent}
    left: dict[str, Counter[str]] = {w: Counter() for w in candidates}
    right: dict[str, Counter[str]] = {w: Counter() for w in candidates}
    for text in texts:
        for run in _HAN_RUN.findall(ztext.fold(text)):
            for i in range(len(run) - 3):
                w = run[i : i + 4]
                if w in candidates:
                    left[w][run[i - 1] if i else "^"] += 1
                    right[w][run[i + 4] if i + 4 < len(run) else "$"] += 1

    def free(w: str) -> bool:
        for ctx in (left[w], right[w]):
            n = sum(ctx.values())
            if n and max(ctx.values()) > MAX_CONTEXT_SHARE * n:
                return False
        return True

    frequent = [(w, c) for w, c in frequent if free(w)]
    needed = (
        {w[:2] for w, _ in frequent}
        | {w[2:] for w, _ in frequent}
        | {w[0] + w[2] for w, _ in frequent}
    )
    dfs = df(sorted(needed))
    best: dict[str, tuple[int, str]] = {}
    for w, c in frequent:
        a, b = w[:2], w[2:]
        abbr = w[0] + w[2]
        if abbr in (a, b) or w[0] == w[2]:
            continue
        half = min(dfs.get(a, 0), dfs.get(b, 0))
        if half < MIN_HALF_DF or dfs.get(abbr, 0) >= MAX_ABBR_SHARE * half:
            continue
        if abbr not in best or c > best[abbr][0]:
            best[abbr] = (c, w)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:MAX_ENTRIES]
    return {abbr: w for abbr, (_, w) in ranked}


def expand(
    tokens: Sequence[str], abbreviations: Mapping[str, str], *, replace: bool = False
) -> list[str]:
    """The query tokens plus the bigrams of the compounds its abbreviations stand for;
    with ``replace`` the abbreviation itself is left out (for coverage: 勞保 is answered by
    a passage that says 勞工保險)."""
    if not abbreviations:
        return list(tokens)
    out = [t for t in tokens if not (replace and t in abbreviations)]
    seen = set(tokens)
    for t in tokens:
        w = abbreviations.get(t)
        if w is None:
            continue
        for extra in (w[:2], w[1:3], w[2:]):
            if extra not in seen:
                seen.add(extra)
                out.append(extra)
    return out
