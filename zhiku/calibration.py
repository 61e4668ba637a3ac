"""Refusal calibrated on each knowledge base itself.

A threshold fitted on one corpus does not carry to another: query coverage on a
five-document SOP folder, on Wikipedia paragraphs and on 200k law articles is distributed
very differently. So every knowledge base gets its own threshold, fitted on two kinds of
questions answered through the real pipeline (retrieval, then the extractive answerer):

- **answerable** pseudo-questions drawn from the KB's own passages, of two kinds, half
  each: *copied* ones (a part of a sentence, a word or two dropped, a few characters from
  elsewhere, everyday phrasing and an interrogative), and *colloquial* ones
  (:func:`colloquial_questions`): only two or three of the passage's key terms — words
  that recur in the KB yet are rare in it, some shortened to an abbreviation — in an
  order of the asker's own, with key terms of another passage as background, joined and
  wrapped in everyday words. Each is kept only when retrieval ranks its passage first:
  the others are questions the KB cannot answer as asked;
- **questions from elsewhere**: a bundled list of general everyday questions
  (``zhiku/data/offtopic_zh.txt``) that a company's documents do not answer.

People ask with background and small talk around the key words, and a longer question
covers less of any passage: on the colloquial pseudo-questions the confidence falls with
the log of the number of terms, by a slope the KB's own questions show (about 0.2 on
DRCD, on a law corpus and on web articles alike). That fall is added back for questions
longer than the KB's median, and a third of it taken off shorter ones
(:func:`fit_length`, :func:`adjusted`), before the comparison with the threshold.

The threshold is the confidence that refuses at most ``max_refused`` (5 %) of the
answerable pseudo-questions while refusing as many of the others as possible. The whole
curve is stored with the KB (``zhiku kb calibrate NAME``, ``zhiku kb show NAME``) and is
refitted when the KB has grown or shrunk by a quarter since (see :func:`needs_refit`), or
when it was fitted by an older :data:`CALIBRATION_VERSION` (a stored calibration of
another version is ignored and the KB is refitted at its next index sync).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources

from zhiku import text as ztext

CALIBRATION_VERSION = 3
POSITIVES = 160
MAX_REFUSED = 0.05
# Refit when the number of passages changed by this share since the last calibration.
REFIT_CHANGE = 0.25
MIN_CHUNKS = 3
# At most this much confidence per unit of log question length (see fit_length).
MAX_LENGTH_SLOPE = 0.3
# A question shorter than the median is lowered by this share of the slope only.
SHORT_SHARE = 1 / 3

# Type-neutral endings: an interrogative that asks for a quantity or a date would make the
# pseudo-question's answer type depend on the sentence it was cut from.
_ENDINGS = ("是什麼？", "嗎？", "有哪些？", "？", "怎麼規定？", "的規定？")
_PREFIXES = ("", "", "", "請問", "想問一下，", "我想知道", "請問一下")


def offtopic_questions() -> list[str]:
    raw = resources.files("zhiku").joinpath("data/offtopic_zh.txt").read_text("utf-8")
    return [x.strip() for x in raw.splitlines() if x.strip() and not x.startswith("#")]


def pseudo_questions(texts: Sequence[str], n: int = POSITIVES, seed: int = 7) -> list[str]:
    """Questions a reader of these passages might ask, made from their own sentences.

    People reuse some of a document's words and not others: each question keeps a
    contiguous part of a sentence, loses a word or two of it, and borrows a few
    characters from another passage of the same KB (words the asker uses that this
    passage does not), then gets everyday phrasing and an interrogative.
    """
    return [q for q, _ in _copied(texts, n, random.Random(seed))]


def _sentences(text: str) -> list[str]:
    sents = [text[s:e] for s, e in ztext.sentence_spans(text)]
    return [x for x in sents if 10 <= len(x) <= 160 and not x.rstrip().endswith(("？", "?"))]


def _copied(texts: Sequence[str], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(question, source passage) pairs in the passage's own wording (see above)."""
    pool = list(texts)
    rng.shuffle(pool)
    out: list[tuple[str, str]] = []
    tries = 0
    while pool and len(out) < n and tries < n * 6:
        text = pool[tries % len(pool)]
        tries += 1
        sents = _sentences(text)
        if not sents:
            continue
        sent = rng.choice(sents).rstrip("。；;！!，,：: ")
        keep = max(6, int(len(sent) * rng.uniform(0.3, 0.6)))
        start = rng.randint(0, max(0, len(sent) - keep))
        part = sent[start : start + keep].strip(" ，,、")
        for _ in range(rng.randint(1, 2)):  # a word or two said differently
            if len(part) > 8:
                i = rng.randint(1, len(part) - 3)
                part = part[:i] + part[i + rng.randint(1, 2) :]
        other = pool[rng.randrange(len(pool))]
        if len(other) > 8:  # words of the asker's own, found elsewhere in the KB
            j = rng.randint(0, len(other) - 5)
            frag = other[j : j + rng.randint(2, 4)].strip()
            i = rng.randint(0, len(part))
            part = part[:i] + frag + part[i:]
        if len(part) < 5:
            continue
        out.append((rng.choice(_PREFIXES) + part + rng.choice(_ENDINGS), text))
    return out


# How people wrap the few words they take from a document (written for this purpose:
# general everyday phrasing, no domain's vocabulary).
_BACKGROUND = (
    "",
    "",
    "請問",
    "想請教一下，",
    "不好意思問一下，",
    "我朋友遇到一個狀況，",
    "最近碰到一件事，",
    "我們這邊有個問題，",
    "聽說",
    "之前有人跟我說",
)
_LINKS = ("", "", "的", "跟", "和", "那", "還有", "如果", "的話", "這種", "然後")
_ASKS = (
    "要怎麼辦？",
    "該怎麼處理？",
    "會怎樣？",
    "有規定嗎？",
    "可以嗎？",
    "怎麼算？",
    "是什麼意思？",
    "有什麼要注意的？",
    "是不是有限制？",
    "要找誰？",
    "嗎？",
    "？",
)
_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")


def _term_df(texts: Sequence[str]) -> dict[str, int]:
    """In how many sampled passages each 2–4 character CJK string occurs."""
    df: dict[str, int] = {}
    for t in texts:
        seen: set[str] = set()
        for m in _CJK_RUN.finditer(t):
            run = m.group()
            for size in (2, 3, 4):
                seen.update(run[i : i + size] for i in range(len(run) - size + 1))
        for g in seen:
            df[g] = df.get(g, 0) + 1
    return df


def _key_terms(sent: str, df: dict[str, int], n: int, rng: random.Random) -> list[str]:
    """Two or three of the sentence's key terms, no two overlapping: strings that recur
    in other passages (so a word, not two halves of two) yet are rare in the KB."""
    cands: list[tuple[float, int, str]] = []
    for m in _CJK_RUN.finditer(sent):
        run = m.group()
        for size in (2, 3, 4):
            for i in range(len(run) - size + 1):
                term = run[i : i + size]
                c = df.get(term, 0)
                if c < 2 or c > max(2, n // 5):
                    continue
                score = math.log((n + 1) / c) * (1 + 0.25 * (size - 2))
                cands.append((score + rng.uniform(0, 1.0), m.start() + i, term))
    cands.sort(reverse=True)
    picked: list[tuple[int, str]] = []
    want = rng.randint(2, 3)
    for _, pos, term in cands:
        if any(pos < p + len(t) and p < pos + len(term) for p, t in picked):
            continue
        picked.append((pos, term))
        if len(picked) >= want:
            break
    return [t for _, t in picked]


def _shorten(term: str, rng: random.Random) -> str:
    """A partial term the way people abbreviate (特別休假 → 特休): an ordered subsequence."""
    if len(term) < 4 or rng.random() < 0.75:
        return term
    return term[0] + term[len(term) // 2]


def colloquial_questions(
    texts: Sequence[str], n: int = POSITIVES, seed: int = 11
) -> list[tuple[str, str]]:
    """(question, source passage): answerable questions phrased the way people ask.

    A layperson keeps only the passage's key terms — its rarest words in this KB, some
    shortened to an abbreviation — in an order of their own, joined by everyday words,
    with background before and a question of their own after; nothing else of the
    passage's wording. Which of these the KB can answer is decided by retrieval (see
    :func:`calibrate`)."""
    rng = random.Random(seed)
    df = _term_df(texts)
    pool = list(texts)
    rng.shuffle(pool)
    out: list[tuple[str, str]] = []
    for tries in range(n * 6):
        if not pool or len(out) >= n:
            break
        text = pool[tries % len(pool)]
        sents = _sentences(text)
        if not sents:
            continue
        terms = _key_terms(rng.choice(sents), df, len(texts), rng)
        if len(terms) < 2:
            continue
        if rng.random() < 0.5:
            rng.shuffle(terms)
        terms = [_shorten(t, rng) for t in terms]
        # Background of the asker's own: key terms of another passage of the KB.
        other = _sentences(pool[rng.randrange(len(pool))])
        if other and rng.random() < 0.7:
            extra = _key_terms(rng.choice(other), df, len(texts), rng)[: rng.randint(1, 2)]
            terms[rng.randint(0, len(terms)) : 0] = extra
        body = terms[0]
        for t in terms[1:]:
            body += rng.choice(_LINKS) + t
        out.append((rng.choice(_BACKGROUND) + body + rng.choice(_ASKS), text))
    return out


@dataclass(slots=True)
class RefusalCalibration:
    """A KB's fitted threshold and the curve it was chosen from."""

    threshold: float
    answerable_refused: float
    offtopic_refused: float
    positives: int
    negatives: int
    chunks: int
    max_refused: float = MAX_REFUSED
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    version: int = CALIBRATION_VERSION
    at: str = ""
    # Confidence is compared after adding length_slope · ln(terms / length_ref): see fit_length.
    length_slope: float = 0.0
    length_ref: float = 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["curve"] = [list(x) for x in self.curve]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object] | None) -> RefusalCalibration | None:
        if not d or d.get("version") != CALIBRATION_VERSION:
            return None
        try:
            return cls(
                threshold=float(d["threshold"]),  # type: ignore[arg-type]
                answerable_refused=float(d["answerable_refused"]),  # type: ignore[arg-type]
                offtopic_refused=float(d["offtopic_refused"]),  # type: ignore[arg-type]
                positives=int(d["positives"]),  # type: ignore[call-overload]
                negatives=int(d["negatives"]),  # type: ignore[call-overload]
                chunks=int(d["chunks"]),  # type: ignore[call-overload]
                max_refused=float(d.get("max_refused", MAX_REFUSED)),  # type: ignore[arg-type]
                curve=[tuple(map(float, x)) for x in d.get("curve", [])],  # type: ignore[misc, attr-defined]
                at=str(d.get("at", "")),
                length_slope=float(d.get("length_slope", 0.0)),  # type: ignore[arg-type]
                length_ref=float(d.get("length_ref", 0.0)),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError):
            return None


def fit(
    pos: Sequence[float],
    neg: Sequence[float],
    *,
    chunks: int,
    max_refused: float = MAX_REFUSED,
    at: str = "",
) -> RefusalCalibration:
    """The threshold that refuses ≤ ``max_refused`` of ``pos`` and most of ``neg``.

    When a range of thresholds does equally well (a small KB whose pseudo-questions all
    score far above the questions from elsewhere), the middle of that range: the
    questions actually asked fall between the two sides, not on the lowest edge."""
    grid = sorted({round(x, 4) for x in (*pos, *neg)} | {round(i / 50, 4) for i in range(51)})

    def rate(xs: Sequence[float], t: float) -> float:
        return sum(x < t for x in xs) / len(xs) if xs else 0.0

    best_t, best_j, upto, prev = 0.0, -1.0, 0.0, 0.0
    for t in grid:
        p = rate(pos, t)
        if p > max_refused:
            break
        j = rate(neg, t) - p
        if j > best_j + 1e-9:
            best_t, best_j, upto = t, j, t
        elif j >= best_j - 1e-9 and upto == prev:
            upto = t  # still on the best plateau
        prev = t
    best_t = round((best_t + upto) / 2, 4)
    curve = [(i / 20, rate(pos, i / 20), rate(neg, i / 20)) for i in range(1, 20)]
    return RefusalCalibration(
        threshold=best_t,
        answerable_refused=rate(pos, best_t),
        offtopic_refused=rate(neg, best_t),
        positives=len(pos),
        negatives=len(neg),
        chunks=chunks,
        max_refused=max_refused,
        curve=curve,
        at=at,
    )


def fit_length(samples: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """(slope, reference length) of confidence against the log of the number of terms.

    A question with background and small talk around its key words covers less of any
    passage, so its confidence is lower than a terse one's that the KB answers as well.
    The least-squares slope of confidence on ln(terms) over the KB's own colloquial
    pseudo-questions says by how much; its opposite, clamped to [0, MAX_LENGTH_SLOPE],
    is added back per unit of log length around their median length. Only a falling
    confidence is compensated (a KB whose long questions score higher gets no slope); a
    shorter question is lowered by only :data:`SHORT_SHARE` of the slope (the full slope
    cost 5 points of DRCD held-out refusal at 5 %, none at all let a two-word weather
    question through on a small KB).
    """
    pts = [(math.log(n), c) for c, n in samples if n > 0]
    if len(pts) < MIN_CHUNKS:
        return 0.0, 0.0
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    var = sum((x - mx) ** 2 for x, _ in pts)
    if var <= 1e-9:
        return 0.0, 0.0
    b = sum((x - mx) * (y - my) for x, y in pts) / var
    lengths = sorted(n for _, n in samples if n > 0)
    return min(MAX_LENGTH_SLOPE, max(0.0, -b)), float(lengths[len(lengths) // 2])


def adjusted(conf: float, terms: int, slope: float, ref: float) -> float:
    """The confidence compared to the threshold (as :meth:`ExtractiveAnswerer.answer`)."""
    if not slope or ref <= 0 or terms <= 0 or conf <= 0:
        return conf
    d = math.log(terms / ref)
    if d < 0:
        d *= SHORT_SHARE
    return min(1.0, max(0.0, conf + slope * d))


def calibrate(
    probe: Callable[[str], tuple[float, int, Sequence[str]]],
    texts: Sequence[str],
    *,
    chunks: int,
    at: str = "",
    n: int = POSITIVES,
    max_refused: float = MAX_REFUSED,
) -> RefusalCalibration | None:
    """Fit a KB's threshold. ``probe`` answers one question through the pipeline: its
    confidence (before any length adjustment), its number of terms, and the texts of the
    passages retrieved.

    The answerable side is the copied pseudo-questions and as many colloquial ones
    (:func:`colloquial_questions`), each kept only when retrieval ranks the passage it
    was made from first: a question whose passage is not found is one the KB cannot
    answer as asked, and refusing it is right (counting those found lower down as well
    lowered the DRCD threshold so far that a third fewer held-out questions were refused).
    The length slope (:func:`fit_length`) is fitted on the colloquial ones, and the
    threshold on the adjusted confidences of both sides."""
    rng = random.Random(7)
    copied = _copied(texts, n // 2, rng)
    pairs = copied + colloquial_questions(texts, n - n // 2)
    pos_raw: list[tuple[float, int]] = []
    colloquial: list[tuple[float, int]] = []
    for i, (q, src) in enumerate(pairs):
        conf, terms, found = probe(q)
        if found and found[0] == src:
            pos_raw.append((conf, terms))
            if i >= len(copied):
                colloquial.append((conf, terms))
    if len(pos_raw) < MIN_CHUNKS:
        return None
    neg_raw = [probe(q)[:2] for q in offtopic_questions()]
    # On the colloquial ones only: their length is background, not more of the passage's
    # own words (a copied question is long because it copies more, and scores higher).
    slope, ref = fit_length(colloquial)
    pos = [adjusted(c, t, slope, ref) for c, t in pos_raw]
    neg = [adjusted(c, t, slope, ref) for c, t in neg_raw]
    cal = fit(pos, neg, chunks=chunks, max_refused=max_refused, at=at)
    cal.length_slope, cal.length_ref = round(slope, 4), ref
    return cal


def needs_refit(cal: RefusalCalibration | None, chunks: int) -> bool:
    if chunks < MIN_CHUNKS:
        return False
    if cal is None:
        return True
    return abs(chunks - cal.chunks) > REFIT_CHANGE * max(cal.chunks, 1)
