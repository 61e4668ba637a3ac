"""Chinese text handling: normalisation, script folding, tokenisation, sentences, labels.

Folding (NFKC width folding, lower case, Traditional→Simplified with OpenCC) is for
*matching only*: indexes and queries see folded text, while stored chunks, answers and
citations always keep the original characters.

The lexical tokeniser emits character unigrams and bigrams for runs of CJK characters
and whole words for Latin letters and digits. On DRCD this beats jieba words by about
three points of Recall@1 (see bench/RESULTS.md); the same object serves indexing and
querying, and its name is recorded with the index so a change forces a rebuild.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from functools import lru_cache

import opencc

from zhiku.lazyre import lazy

TOKENIZER_NAME = "cjk-unibi-v1"

# Han (incl. extension A, compatibility and the supplementary planes), kana, hangul.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af\U00020000-\U0003134f"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:[.\-][a-z0-9]+)*")
_CJK_CHAR_RE = re.compile(rf"[{_CJK}]")

# Interrogatives and particles that carry no topic: removed from queries only, before
# tokenising, so neither they nor the bigrams straddling them reach the index
# (「客服專線是多少」 → 客服專線是). Written in Simplified: queries are folded first.
QUERY_STOP_WORDS = (
    "为什么",
    "怎么样",
    "有没有",
    "什么",
    "甚么",
    "哪里",
    "哪个",
    "哪些",
    "为何",
    "如何",
    "怎么",
    "怎样",
    "多少",
    "多久",
    "是否",
    "请问",
    "谁",
    "吗",
    "呢",
    "吧",
    "呀",
    "哪",
    "几",
    "那么",
    "还有",
    "那",
    "这",
    "的",
    "了",
)
_QUERY_STOP_RE = re.compile("|".join(map(re.escape, QUERY_STOP_WORDS)))


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """NFKC width folding (全形→半形 letters/digits, compatibility ideographs)."""
    return unicodedata.normalize("NFKC", text)


def fold(text: str) -> str:
    """Fold text for matching: NFKC, lower case, Traditional→Simplified."""
    return _t2s().convert(normalize(text).lower())


def _tokens_of_folded(folded: str) -> list[str]:
    out: list[str] = []
    extend = out.extend
    append = out.append
    for run in _TOKEN_RE.findall(folded):
        first = run[0]
        if first.isascii():
            append(run)
        else:
            extend(run)
            if len(run) > 1:
                extend(map(operator.add, run, run[1:]))
    return out


def tokenize(text: str) -> list[str]:
    """Tokens for the lexical index: CJK unigrams + bigrams, Latin/digit words."""
    return _tokens_of_folded(fold(text))


@lru_cache(maxsize=2048)
def token_set(text: str) -> frozenset[str]:
    """The set of :func:`tokenize`'s tokens, remembered for the last texts asked about:
    the steps of one answer (the extractive choice, the dense quote, a follow-up's second
    pass) read the same sentences, and each is tokenised once."""
    return frozenset(tokenize(text))


def query_tokens(text: str) -> list[str]:
    """Tokens for a query: interrogatives removed, then as :func:`tokenize`, de-duplicated.

    When nothing is left (「什麼？」) the unfiltered tokens are returned, so a query is
    never silently empty.
    """
    folded = fold(text)
    toks = _tokens_of_folded(_QUERY_STOP_RE.sub(" ", folded)) or _tokens_of_folded(folded)
    return list(dict.fromkeys(toks))


def has_cjk(text: str) -> bool:
    return _CJK_CHAR_RE.search(text) is not None


# --- sentences -------------------------------------------------------------------

_SENT_END = "。！？；!?;"
_CLOSERS = "」』）)】〕》\"'”’"
_SENT_RE = re.compile(rf"[^{_SENT_END}\n]*(?:[{_SENT_END}]+[{_CLOSERS}]*|\n|$)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences, split on 。！？； (full and half width) and newlines.

    Spans are trimmed of surrounding whitespace and empty spans are dropped, so
    ``text[s:e]`` is always a non-blank sentence of the original text.
    """
    spans: list[tuple[int, int]] = []
    for m in _SENT_RE.finditer(text):
        s, e = m.span()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


# --- CJK line-wrap joining ----------------------------------------------------------


def join_wrapped_lines(lines: list[str]) -> str:
    """Join lines broken by layout: no space between two CJK characters, one space
    between two Latin words."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
        elif out[-1].isascii() and out[-1].isalnum() and line[0].isascii() and line[0].isalnum():
            out += " " + line
        else:
            out += line
    return out


# --- clause labels ------------------------------------------------------------------

_CN_NUM = "零〇一二三四五六七八九十百千兩"
# Compiled on first use: only ingestion reads labels (zhiku.lazyre).
_LABEL_PATTERNS: list[re.Pattern[str]] = [
    # 第七條, 第 12 條, 第 30-1 條, 第三十條之一
    lazy(rf"^(第\s*[{_CN_NUM}\d]+(?:\s*[-－之]\s*[{_CN_NUM}\d]+)?\s*條(?:之[{_CN_NUM}]+)?)"),
    # 第一章 / 第二節 (headings rather than clauses, still labels)
    lazy(rf"^(第\s*[{_CN_NUM}\d]+\s*[章節編款項])"),
    # 4.3 / 4.3.1 / 4.3. (a dotted number followed by a space or a CJK char)
    lazy(rf"^(\d{{1,3}}(?:\.\d{{1,3}})+)\.?(?=[\s{_CJK}（(])"),
    # （三） (3) （3）
    lazy(rf"^([（(][{_CN_NUM}\d]{{1,4}}[）)])"),
    # 一、 3、 3.
    lazy(rf"^([{_CN_NUM}]{{1,4}}、)"),
    lazy(rf"^(\d{{1,3}})[、.](?=[\s{_CJK}])"),
]


def detect_label(text: str) -> str | None:
    """The clause label a paragraph opens with, normalised for display, or ``None``.

    >>> detect_label("第 30-1 條 雇主應…")
    '第 30-1 條'
    >>> detect_label("4.3 出貨異常需在 24 小時內通報")
    '4.3'
    """
    head = text.lstrip()[:24]
    for pat in _LABEL_PATTERNS:
        m = pat.match(head)
        if m:
            label = m.group(1).strip()
            label = re.sub(r"\s+", " ", label)
            return label.rstrip("、")
    return None


def section_string(heading_path: tuple[str, ...] | list[str], label: str | None) -> str | None:
    """``4 作業程序 > 4.3``: the heading path, then the label unless a heading has it."""
    parts = [h for h in heading_path if h]
    if label and not any(p.startswith(label) for p in parts[-1:]):
        parts.append(label)
    return " > ".join(parts) or None


# C0/C1 controls except tab and newline, DEL, and the invisible format characters that
# reorder or hide text on a terminal (bidi overrides and isolates, zero-width marks).
_UNSAFE_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


def visible(text: str) -> str:
    """``text`` safe for a terminal: control and format characters shown as ``\\xNN`` /
    ``\\uNNNN`` escapes, so a stored name cannot move the cursor, recolour or hide text."""
    return _UNSAFE_RE.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def bad_name_chars(name: str) -> list[str]:
    """The characters that make ``name`` unfit as a knowledge-base name: controls,
    format characters, separators of lines and paragraphs, unassigned code points."""
    import unicodedata

    return [
        c
        for c in name
        if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
    ]
