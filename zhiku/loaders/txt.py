"""Plain text (``.txt``, ``.text``, ``.log``), including LINE and generic chat logs.

A ``.txt`` that is really Markdown (front matter, ``##`` headings) is read by the
Markdown loader's logic. Otherwise heading-like lines (「第一章」「一、總則」
「2. 產品經理的三種背景」, a short line followed by a paragraph) become headings
(:func:`zhiku.loaders._segment.segment`), so passages cite their section; the title is
a title-like first line, else the file name.
"""

from __future__ import annotations

import re
from pathlib import Path

from zhiku.loaders import register
from zhiku.loaders._common import clean_text, display_width, stem_title
from zhiku.loaders._segment import Line, is_heading_ish, segment
from zhiku.loaders.chat import parse_chat
from zhiku.loaders.markdown import looks_like_markdown, markdown_document
from zhiku.models import LoadedDocument
from zhiku.textcodec import decode_bytes


def text_lines(text: str) -> list[Line]:
    """Physical lines with blank-line and width hints for :func:`segment`."""
    raw = text.split("\n")
    widths = sorted(display_width(r.strip()) for r in raw if r.strip())
    full = widths[int(0.9 * (len(widths) - 1))] if widths else 0
    lines: list[Line] = []
    blank = False
    prev_indent = 0
    for r in raw:
        s = r.rstrip()
        if not s.strip():
            blank = True
            continue
        w = display_width(s.strip())
        indent = display_width(s[: len(s) - len(s.lstrip())].replace("\t", "    "))
        lines.append(
            Line(
                text=s.strip(),
                blank_before=blank,
                short=w < 0.75 * full,
                full=w >= 0.9 * full,
                indent=indent >= 2 and indent > prev_indent,
            )
        )
        prev_indent = indent
        blank = False
    return lines


_TOC_HEADING = re.compile(r"^\s*(?:目\s*錄|目\s*次|contents|table of contents)\s*$", re.I)


@register(".txt", ".text", ".log")
def load_txt(path: Path) -> LoadedDocument:
    data = path.read_bytes()
    text, encoding = decode_bytes(data, path)
    text = clean_text(text)
    meta: dict[str, object] = {"encoding": encoding}
    chat = parse_chat(text, path, meta)
    if chat is not None:
        return chat
    prose = path.suffix.lower() != ".log"  # a log's "# …" lines are comments, not headings
    if prose and looks_like_markdown(text):
        # Front matter and ## headings: read as Markdown, so no markup reaches a passage.
        return markdown_document(text, path, encoding, plain_text=True)
    lines = text_lines(text)
    title = stem_title(path)
    title_line = False
    if (
        len(lines) > 1
        and is_heading_ish(lines[0].text)
        and not _TOC_HEADING.match(lines[0].text)  # 「目錄」 opens a table of contents
        and (lines[1].blank_before or lines[0].short)
    ):
        title = lines[0].text
        title_line = True
    blocks = segment(lines, wrapped=False, title_line=title_line, find_headings=prose)
    return LoadedDocument(title=title, kind="txt", blocks=blocks, meta=meta)
