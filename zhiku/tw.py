"""Taiwan Traditional output: a chat model's Simplified text converted with OpenCC ``s2twp``.

Qwen-family models often answer in Simplified Chinese even when told not to. Before a
generated answer reaches anyone it is converted, clause by clause, with OpenCC's
``s2twp`` (Simplified → Traditional with Taiwan phrases: 软件 → 軟體, 内存 → 記憶體).

Only clauses that *are* Simplified are converted: a clause is Simplified when more of
its characters change under ``s2t`` than under ``t2s``. Text the model already wrote
in Traditional, and in particular a document sentence it quotes, is left exactly as it
is (``s2twp`` would otherwise turn 台灣 into 臺灣). Citation texts never pass through
here: they are the stored passages.

Streaming: OpenCC converts phrases, so a chunk boundary in the middle of 内|存 would
give 內存 instead of 記憶體. :class:`TaiwanStream` therefore releases text only up to
the last clause boundary (punctuation, whitespace, ASCII, which no phrase spans) and
holds the rest; a run longer than :data:`MAX_HOLD` characters without any boundary is
released but for its last :data:`PHRASE_TAIL` characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

import opencc

MAX_HOLD = 48
PHRASE_TAIL = 8  # longer than any s2twp phrase that matters in practice

# A clause boundary: CJK/ASCII punctuation, whitespace, any ASCII character.
_BOUNDARY_RE = re.compile(r"[\x00-\x7f\s，。！？；：、「」『』（）《》〈〉【】［］…—～·,.;:!?]")
_CLAUSE_RE = re.compile(r"[^\x00-\x7f\s，。！？；：、「」『』（）《》〈〉【】［］…—～·,.;:!?]+")


@lru_cache(maxsize=4)
def _cc(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def is_simplified(clause: str) -> bool:
    """More characters of ``clause`` are Simplified forms than Traditional forms."""
    s2t, t2s = _cc("s2t"), _cc("t2s")
    simp = sum(1 for ch in clause if s2t.convert(ch) != ch)
    trad = sum(1 for ch in clause if t2s.convert(ch) != ch)
    return simp > trad


def _convert_clause(m: re.Match[str]) -> str:
    clause = m.group()
    return _cc("s2twp").convert(clause) if is_simplified(clause) else clause


def to_taiwan(text: str) -> str:
    """``text`` with its Simplified clauses converted to Taiwan Traditional (s2twp)."""
    return _CLAUSE_RE.sub(_convert_clause, text)


class TaiwanStream:
    """Incremental :func:`to_taiwan`: ``feed`` returns what is safe to release now,
    ``finish`` the rest; the outputs concatenate to ``to_taiwan`` of the inputs (a run
    longer than :data:`MAX_HOLD` without a boundary may be cut inside a phrase)."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        self._held += piece
        held = self._held
        cut = -1
        for m in _BOUNDARY_RE.finditer(held):
            cut = m.end()
        if cut < 0 and len(held) > MAX_HOLD:
            cut = len(held) - PHRASE_TAIL
        if cut <= 0:
            return ""
        self._held = held[cut:]
        return to_taiwan(held[:cut])

    def finish(self) -> str:
        out, self._held = to_taiwan(self._held), ""
        return out
