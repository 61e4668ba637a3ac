"""Refusal calibrated on each knowledge base itself.

A threshold fitted on one corpus does not carry to another: query coverage on a
five-document SOP folder, on Wikipedia paragraphs and on 8,000 laws is distributed very
differently. So every knowledge base gets its own threshold, fitted on two kinds of
questions answered through the real pipeline (retrieval, then the extractive answerer):

- **answerable** pseudo-questions drawn from the KB's own passages: a sentence, cut to a
  part of it (the rest is "the answer"), sometimes wrapped in everyday phrasing (「請問」,
  「可以嗎」), ended with an interrogative;
- **questions from elsewhere**: a bundled list of general everyday questions
  (``zhiku/data/offtopic_zh.txt``) that a company's documents do not answer.

The threshold is the confidence that refuses at most ``max_refused`` (5 %) of the
answerable pseudo-questions while refusing as many of the others as possible. The whole
curve is stored with the KB (``zhiku kb calibrate NAME``, ``zhiku kb show NAME``) and is
refitted when the KB has grown or shrunk by a quarter since (see :func:`needs_refit`).

Pseudo-questions copy the document's words, so real questions phrased differently score
lower than they do; the fallback rule keeps the threshold at or below the DRCD-fitted
default (:data:`zhiku.answer.DEFAULT_REFUSE_BELOW`) unless the KB's own curve shows that
a higher one still answers its questions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources

from zhiku import text as ztext

CALIBRATION_VERSION = 1
POSITIVES = 160
MAX_REFUSED = 0.05
# Refit when the number of passages changed by this share since the last calibration.
REFIT_CHANGE = 0.25
MIN_CHUNKS = 3

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
    rng = random.Random(seed)
    pool = list(texts)
    rng.shuffle(pool)
    out: list[str] = []
    tries = 0
    while pool and len(out) < n and tries < n * 6:
        text = pool[tries % len(pool)]
        tries += 1
        sents = [text[s:e] for s, e in ztext.sentence_spans(text)]
        sents = [x for x in sents if 10 <= len(x) <= 160 and not x.rstrip().endswith(("？", "?"))]
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
        out.append(rng.choice(_PREFIXES) + part + rng.choice(_ENDINGS))
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
    """The threshold that refuses ≤ ``max_refused`` of ``pos`` and most of ``neg``."""
    grid = sorted({round(x, 4) for x in (*pos, *neg)} | {round(i / 50, 4) for i in range(51)})

    def rate(xs: Sequence[float], t: float) -> float:
        return sum(x < t for x in xs) / len(xs) if xs else 0.0

    best_t, best_j = 0.0, -1.0
    for t in grid:
        p = rate(pos, t)
        if p > max_refused:
            break
        j = rate(neg, t) - p
        if j > best_j + 1e-9:
            best_t, best_j = t, j
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


def calibrate(
    confidence: Callable[[str], float],
    texts: Sequence[str],
    *,
    chunks: int,
    at: str = "",
    n: int = POSITIVES,
    max_refused: float = MAX_REFUSED,
) -> RefusalCalibration | None:
    """Fit a KB's threshold; ``confidence`` answers one question through the pipeline."""
    pos_q = pseudo_questions(texts, n=n)
    if len(pos_q) < MIN_CHUNKS:
        return None
    pos = [confidence(q) for q in pos_q]
    neg = [confidence(q) for q in offtopic_questions()]
    return fit(pos, neg, chunks=chunks, max_refused=max_refused, at=at)


def needs_refit(cal: RefusalCalibration | None, chunks: int) -> bool:
    if chunks < MIN_CHUNKS:
        return False
    if cal is None:
        return True
    return abs(chunks - cal.chunks) > REFIT_CHANGE * max(cal.chunks, 1)
