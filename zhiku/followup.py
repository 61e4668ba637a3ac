"""Follow-up questions without a model: carry the previous turn's subject.

After 「恆隆行官方帳號的封鎖率是多少？」 the follow-up 「那轉換率呢？」 names only the new
attribute; searched alone it finds whichever company's conversion rate ranks first.
Without a chat model to rewrite it, the follow-up is completed here, in three steps:

1. **Is it elliptical?** It opens with a continuation word (那、那麼、還有、另外、至於…),
   ends with 呢, or has almost no content of its own once interrogatives are removed.
   (A question that is none of these but that the knowledge base cannot answer alone
   is also completed; the engine decides that by retrieving it, see
   :meth:`zhiku.engine.Zhiku.iter_answer`.)
2. **What did the previous question ask about?** Its *standalone* form (itself
   completed the same way when it was a follow-up, so a subject survives several turns)
   is cut into content segments at interrogatives, particles and punctuation
   (「恆隆行官方帳號」「封鎖率」). The segment the follow-up replaces is the one it shares
   characters with (封鎖**率** ↔ 轉換**率**, **請**假 ↔ 病假 share 假): it is dropped.
3. **Which segments carry?** The rest, weighted by the idf of their tokens in the
   knowledge base's own index: a segment far weaker than the strongest (a generic word
   every document has) is dropped, at most :data:`MAX_CARRIED` are kept. The query for
   retrieval is the follow-up followed by the carried segments.

Nothing here is shown to anyone: the completed query only drives retrieval and the
extractive answer's choice of sentence; the citations are stored passages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from zhiku import text as ztext

TermStatsFn = Callable[[str], Mapping[str, tuple[int, float]]]

# Continuation words a follow-up opens with (Traditional and Simplified).
_OPENERS = (
    "那麼",
    "那么",
    "那",
    "還有",
    "还有",
    "另外",
    "至於",
    "至于",
    "然後",
    "然后",
    "而且",
    "而",
    "再來",
    "再来",
    "以及",
    "那如果",
    "如果是",
)
# Interrogatives, particles and copulas that separate content segments.
_SPLIT_WORDS = (
    "為什麼",
    "为什么",
    "怎麼樣",
    "怎么样",
    "有沒有",
    "有没有",
    "是不是",
    "什麼",
    "什么",
    "甚麼",
    "哪裡",
    "哪里",
    "哪個",
    "哪个",
    "哪些",
    "為何",
    "为何",
    "如何",
    "怎麼",
    "怎么",
    "怎樣",
    "怎样",
    "多少",
    "多久",
    "是否",
    "請問",
    "请问",
    "可以",
    "需要",
    "應該",
    "应该",
    "那麼",
    "那么",
    "還有",
    "还有",
    "另外",
    "至於",
    "至于",
    # single characters that are rarely part of a content word (not 有、要、在、會:
    # 有限、重要、現在、會議)
    "誰",
    "谁",
    "嗎",
    "吗",
    "呢",
    "吧",
    "呀",
    "哪",
    "幾",
    "几",
    "的",
    "了",
    "是",
    "與",
    "与",
    "及",
    "或",
    "那",
    "這",
    "这",
)
_SPLIT_RE = re.compile(
    "|".join(map(re.escape, sorted(_SPLIT_WORDS, key=len, reverse=True))) + r"|[\s\W_]+"
)
# Follow-ups with at most this many content characters are elliptical (「幾天？」).
SHORT_CONTENT = 4
MAX_CARRIED = 3
# A segment weaker than this share of the strongest segment's weight is not carried.
MIN_SHARE = 0.35


# Verbs and adverbs left at the end of a segment (「婚假有」幾天): trimmed off.
_TRAILING = "有要在會会可能就都也還还又最"


def segments(question: str) -> list[str]:
    """Content segments of a question, in order (「恆隆行官方帳號」「封鎖率」)."""
    out = []
    for s in _SPLIT_RE.split(question):
        s = s.rstrip(_TRAILING) if len(s) > 1 else s
        if s and any(ch.isalnum() for ch in s):
            out.append(s)
    return out


def _content(question: str) -> str:
    return "".join(segments(question))


def is_elliptical(question: str) -> bool:
    """True for a follow-up that leans on the previous turn (see the module docstring)."""
    q = question.strip()
    if not q:
        return False
    body = re.sub(r"[\s？?。.!！~～…]+$", "", q)
    if body.startswith(_OPENERS) or body.endswith("呢"):
        return True
    return len(_content(q)) <= SHORT_CONTENT


def _weight(segment: str, stats: Mapping[str, tuple[int, float]]) -> float:
    """The strongest idf among a segment's tokens that the knowledge base knows."""
    best = 0.0
    for t in ztext.tokenize(segment):
        df, idf = stats.get(t, (0, 0.0))
        if df > 0:
            best = max(best, idf)
    return best


def _shares(a: str, b: str) -> float:
    """Share of ``a``'s characters (folded) that also occur in ``b``."""
    fa, fb = set(ztext.fold(a)), set(ztext.fold(b))
    return len(fa & fb) / len(fa) if fa else 0.0


def carry_subject(question: str, previous: str, term_stats: TermStatsFn) -> str:
    """The follow-up ``question`` completed with the salient segments of ``previous``
    (the previous question's standalone form). Returns ``question`` unchanged when
    nothing is worth carrying."""
    prev = segments(previous)
    if not prev:
        return question
    own = segments(question)
    own_text = "".join(own)
    # Segments the follow-up already says are not repeated.
    prev = [s for s in prev if _shares(s, own_text) < 1.0]
    # The follow-up replaces the segment it resembles most (封鎖率 → 轉換率); a
    # one-character segment (「有」「天」) replaces nothing.
    words = [o for o in own if len(o) > 1]
    if words and prev:
        sims = [max(_shares(o, s) for o in words) for s in prev]
        best = max(range(len(prev)), key=lambda i: sims[i])
        if sims[best] > 0:
            prev = prev[:best] + prev[best + 1 :]
    if not prev:
        return question
    stats = term_stats(" ".join(prev))
    weights = [_weight(s, stats) for s in prev]
    top = max(weights)
    if top <= 0:
        return question
    ranked = sorted(range(len(prev)), key=lambda i: -weights[i])
    keep = sorted(i for i in ranked[:MAX_CARRIED] if weights[i] >= MIN_SHARE * top)
    carried = " ".join(prev[i] for i in keep)
    return f"{question.strip()} {carried}"


def standalone(
    question: str,
    history: Sequence[Mapping[str, str]],
    term_stats: TermStatsFn,
    needs_context: Callable[[str], bool] = is_elliptical,
) -> str:
    """``question`` as a standalone query, given the earlier turns of the conversation.

    Each earlier user turn is completed in order, so the subject of the first question
    reaches a third turn through an elliptical second one. ``needs_context`` decides
    whether the *current* question is completed (earlier turns use :func:`is_elliptical`).
    """
    prior: str | None = None
    for turn in history:
        if turn.get("role") != "user":
            continue
        q = str(turn.get("content", "")).strip()
        if not q:
            continue
        prior = carry_subject(q, prior, term_stats) if prior and is_elliptical(q) else q
    if prior is None or not needs_context(question):
        return question
    return carry_subject(question, prior, term_stats)


# The carried subject is context, not what is asked: in the extractive answer's choice
# of sentence (and its relevance), its tokens weigh this much of their idf.
CARRIED_WEIGHT = 0.3


def weigh_carried(
    stats: Mapping[str, tuple[int, float]], question: str, query: str
) -> dict[str, tuple[int, float]]:
    """``stats`` with the idf of tokens that only the carried part of ``query`` has
    scaled by :data:`CARRIED_WEIGHT`: the sentence that answers the follow-up's own
    words wins over the sentence that repeats the previous question's subject."""
    own = set(ztext.query_tokens(question))
    return {t: (df, idf if t in own else idf * CARRIED_WEIGHT) for t, (df, idf) in stats.items()}
