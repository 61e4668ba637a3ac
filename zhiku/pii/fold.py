"""Length-preserving width folding, so matches on the folded copy keep their offsets.

:func:`zhiku.text.normalize` applies NFKC to a whole string, which may change its
length (「㈱」 becomes three characters). Detection needs offsets into the *original*
text, so here each character is mapped on its own to its NFKC form when that form is
a single character (全形 Ａ１２３ → A123, （ → (, compatibility and Kangxi-radical
ideographs → unified ideographs, U+3000 → space) and kept as is otherwise. Dash
look-alikes (‐ – — − ﹣) fold to ``-``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    ranges = (range(0x80, 0xD800), range(0xE000, 0x10000), range(0x2F800, 0x2FA20))
    for rng in ranges:
        for cp in rng:
            ch = chr(cp)
            if unicodedata.is_normalized("NFKC", ch):  # most are: a quick check first
                continue
            folded = unicodedata.normalize("NFKC", ch)
            if len(folded) == 1 and folded != ch:
                table[cp] = folded
    for ch in _DASHES:
        table[ord(ch)] = "-"
    return table


@lru_cache(maxsize=1)
def _bmp_table() -> list[str]:
    """The BMP part as a list indexed by code point: ``str.translate`` runs several
    times faster with it than with a dict (no failed lookups for unmapped characters)."""
    table = [chr(cp) for cp in range(0x10000)]
    for cp, folded in _table().items():
        if cp < 0x10000:
            table[cp] = folded
    return table


_ASTRAL_COMPAT_RE = re.compile("[\U0002f800-\U0002fa1f]")


def fold_width(text: str) -> str:
    """``text`` with each character NFKC-folded on its own; ``len`` is unchanged."""
    if text.isascii():
        return text
    out = text.translate(_bmp_table())
    if _ASTRAL_COMPAT_RE.search(out):
        out = out.translate(_table())
    return out
