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


def segment(lines: list[Line], *, wrapped: bool, title_line: bool = False) -> list[Block]:
    """Group lines into blocks (see the module docstring).

    ``wrapped``: lines come from a layout engine (PDF) and break wherever the margin
    fell. ``title_line``: the first line is the document title and stands alone.
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
    for i, line in enumerate(lines):
        t = line.text.strip()
        if not t:
            continue
        if i == 0 and title_line:
            blocks.append(Block(t, (), None, line.page, line.page, "heading"))
            prev = None
            continue
        ch = chapter_heading(t)
        if ch is not None:
            flush()
            level, head = ch
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, head))
            blocks.append(Block(head, path(), None, line.page, line.page, "heading"))
            top_label = None
            prev = line
            continue
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
