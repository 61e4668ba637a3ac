"""Turn physical lines (PDF text lines, plain-text lines) into paragraph/clause blocks.

Rules, in order, for each line:

* a chapter heading (第一章 總則, 第二節, 第一編) updates the heading path and becomes a
  ``heading`` block;
* a line opening with a clause label (:func:`zhiku.text.detect_label`) starts a block,
  unless the "label" is really a cross-reference wrapped onto a new line (「第三條規定」);
* a blank line, or a previous line ending with 。！？： when this line looks like a new
  paragraph (previous line short, or this one indented further), starts a block; so
  does a 「主旨：」-style field line after such a line;
* anything else continues the current block, joined without spaces between CJK
  characters (:func:`zhiku.text.join_wrapped_lines`), even across a page break.

Unlabelled paragraphs inside a top-level clause (第七條, 4.3) inherit that clause's
label so that every block of an article cites the article.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhiku.loaders._common import display_width
from zhiku.models import Block
from zhiku.text import detect_label, join_wrapped_lines

_CN_NUM = "零〇一二三四五六七八九十百千兩"
_CHAPTER_RE = re.compile(rf"^(第\s*[{_CN_NUM}\d]+\s*([編章節]))(?:[\s\u3000:：、.]*(.*))?$")
_CHAPTER_LEVEL = {"編": 0, "章": 1, "節": 2}
_TERMINAL_RE = re.compile(r"([。！？：!?:]|[。！？][」』）)])$")
_ARTICLE_LABEL_RE = re.compile(r"^第.+條")
_DOTTED_LABEL_RE = re.compile(r"^\d+\.\d")
# Words that follow an article number when it is a cross-reference, not a heading.
_REFERENCE_TAIL_RE = re.compile(
    r"^(之?規定|所(定|列|稱|述)|第|、|及|或|至|但書|各款|辦理|，|。|）|\)|之規範|準用|以外)"
)
_FIELD_RE = re.compile(r"^[^\s：:，。]{1,8}[：:]")


@dataclass(slots=True)
class Line:
    """One physical line with the layout hints the segmenter uses."""

    text: str
    page: int | None = None
    blank_before: bool = False  # a blank line (or page-level gap) precedes it
    short: bool = False  # ends well before the right margin
    full: bool = False  # reaches the right margin (the text was wrapped)
    indent: bool = False  # starts further right than the line before it (first-line indent)


def chapter_heading(text: str) -> tuple[int, str] | None:
    """``(level, heading text)`` for 第一章 總則 / 第二節 / 第一編 lines."""
    t = text.strip()
    if len(t) > 40:
        return None
    m = _CHAPTER_RE.match(t)
    if not m:
        return None
    rest = (m.group(3) or "").strip()
    if rest and (re.search(r"[，。；,;]", rest) or _REFERENCE_TAIL_RE.match(rest)):
        return None
    head = re.sub(r"\s+", " ", m.group(1))
    return _CHAPTER_LEVEL[m.group(2)], f"{head} {rest}".strip()


def _opening_label(line: Line, prev: Line | None, wrapped: bool) -> str | None:
    t = line.text.strip()
    label = detect_label(t)
    if label is None:
        return None
    if label.startswith("第") and label.endswith("條"):
        m = re.match(rf"^第\s*[{_CN_NUM}\d]+(?:\s*[-－之]\s*[{_CN_NUM}\d]+)?\s*條", t)
        tail = t[m.end() :].lstrip() if m else ""
        if _REFERENCE_TAIL_RE.match(tail):
            return None
    if wrapped and prev is not None and prev.full:
        last = prev.text.rstrip()[-1:]
        # The previous line was wrapped mid-phrase: a number here continues it.
        if last and (last.isalnum() or last in "第依及或與和、"):
            return None
    return label


def is_heading_ish(text: str) -> bool:
    """A short line that reads like a title: no sentence punctuation, not a clause."""
    t = text.strip()
    if not (2 <= len(t) <= 40):
        return False
    if t[-1] in "。，；：、,.;:" or detect_label(t) is not None:
        return False
    if re.search(r"[，。；！？]", t):
        return False
    if re.fullmatch(r"[\d\s/.\-:年月日（）()]+", t):
        return False
    return sum(ch.isalpha() for ch in t) >= 2


# Heading levels of plain-text headings, below 編/章/節 (0–2): 一、 > （一） > 1. > 1.1 >
# an unlabelled short line.
_HEADING_LEVELS = {"cn": 3, "paren": 4, "num": 5, "dotted": 6, None: 7}
_LABEL_PREFIX_RE = re.compile(
    rf"^(?:[{_CN_NUM}]{{1,4}}、|[（(][{_CN_NUM}\d]{{1,4}}[）)]|\d{{1,3}}(?:\.\d{{1,3}})*[.、]?)\s*"
)


def _label_style(label: str) -> str | None:
    """The numbering family of a clause label, or None for articles and chapters."""
    if label.startswith("第"):
        return None
    if label[0] in "（(":
        return "paren"
    if _DOTTED_LABEL_RE.match(label):
        return "dotted"
    if label.isdigit():
        return "num"
    return "cn"


def _labelled_heading(text: str) -> tuple[str, str] | None:
    """(style, rest) when ``text`` is a numbered line whose rest reads like a title
    (「一、總則」「2. 產品經理的三種背景」), else None."""
    label = detect_label(text)
    if label is None:
        return None
    style = _label_style(label)
    m = _LABEL_PREFIX_RE.match(text)
    if style is None or m is None:
        return None
    rest = text[m.end() :].strip()
    if not rest or len(rest) > 30 or not is_heading_ish(rest) or re.search("[：:]", rest):
        return None
    return style, rest


def _heading_level(line: Line, nxt: Line, starts_block: bool, list_style: str | None) -> int | None:
    """The level of a plain-text heading line, or None (see :func:`segment`)."""
    if not starts_block:
        return None
    t = line.text.strip()
    found = _labelled_heading(t)
    if found is not None:
        style = found[0]
        nxt_found = _labelled_heading(nxt.text.strip())
        if style == list_style or (nxt_found is not None and nxt_found[0] == style):
            return None  # one item of a list of short items, not a heading
        return _HEADING_LEVELS[style]
    if detect_label(t) is not None or len(t) > 30 or not is_heading_ish(t):
        return None
    if re.search("[：:]", t):
        return None  # a field line (作者：…)
    n = nxt.text.strip()
    if is_heading_ish(n) or display_width(n) <= 2 * len(t):
        return None  # a heading is followed by a (longer) paragraph
    return _HEADING_LEVELS[None]


def segment(
    lines: list[Line], *, wrapped: bool, title_line: bool = False, find_headings: bool = False
) -> list[Block]:
    """Group lines into blocks (see the module docstring).

    ``wrapped``: lines come from a layout engine (PDF) and break wherever the margin
    fell. ``title_line``: the first line is the document title and stands alone.
    ``find_headings`` (plain text): a line that starts a block and reads like a title —
    numbered (「一、總則」「（二）申請資格」「2. 產品經理的三種背景」) or a short unlabelled
    line followed by a longer paragraph — is a heading, not a paragraph; numbered lines
    that follow one another as a list (「1. 準備證件」「2. 填寫表單」) stay items.
    """
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    cur: list[str] = []
    cur_label: str | None = None
    top_label: str | None = None
    page_start: int | None = None
    page_end: int | None = None

    def path() -> tuple[str, ...]:
        return tuple(h for _, h in headings)

    def flush() -> None:
        nonlocal cur, cur_label, page_start, page_end
        if cur:
            text = join_wrapped_lines(cur)
            if text:
                blocks.append(Block(text, path(), cur_label, page_start, page_end, "para"))
        cur = []
        cur_label = None
        page_start = page_end = None

    prev: Line | None = None
    prev_opened_label = False
    prev_heading = False
    list_style: str | None = None  # numbering of the last item that was not a heading
    for i, line in enumerate(lines):
        t = line.text.strip()
        if not t:
            continue
        if i == 0 and title_line:
            blocks.append(Block(t, (), None, line.page, line.page, "heading"))
            prev = None
            prev_heading = True
            continue
        ch = chapter_heading(t)
        if ch is None and find_headings and i + 1 < len(lines):
            starts = (
                prev is None
                or prev_heading
                or line.blank_before
                or _TERMINAL_RE.search(prev.text.rstrip()) is not None
            )
            level = _heading_level(line, lines[i + 1], starts, list_style)
            if level is not None:
                ch = (level, t)
        if ch is not None:
            flush()
            level, head = ch
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, head))
            blocks.append(Block(head, path(), None, line.page, line.page, "heading"))
            top_label = None
            prev = line
            prev_heading = True
            list_style = None
            continue
        prev_heading = False
        label = _opening_label(line, prev, wrapped)
        new_para = False
        if label is None and cur and prev is not None:
            prev_t = prev.text.rstrip()
            ends = _TERMINAL_RE.search(prev_t) is not None
            if line.blank_before:
                new_para = True
            elif ends and (prev.short or (line.indent and not prev_opened_label)):
                # (a line indented under a clause's first line is a hanging indent)
                new_para = True
            elif _FIELD_RE.match(t) and (ends or (prev.short and _FIELD_RE.match(prev_t))):
                new_para = True  # 主旨：… / 說明：… field lines
        if label is not None or new_para or not cur:
            flush()
            if label is not None:
                cur_label = label
                list_style = _label_style(label)
                if _ARTICLE_LABEL_RE.match(label):
                    top_label = label
                elif _DOTTED_LABEL_RE.match(label):
                    top_label = None  # a numbered clause (4.3) ends the article
            else:
                cur_label = top_label
            page_start = line.page
        prev_opened_label = label is not None
        cur.append(t)
        page_end = line.page
        prev = line
    flush()
    return blocks
