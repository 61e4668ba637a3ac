"""HTML (``.html``, ``.htm``) via selectolax: main text only.

Scripts, styles, navigation, page headers/footers, asides, forms and ARIA landmark
noise are removed; ``<main>`` (or a single ``<article>``) is preferred when present.
h1–h6 build the heading path; paragraphs, list items, ``pre`` and quotes become blocks,
data tables become 「欄：值；…」 rows (layout tables are read as ordinary content).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from zhiku.loaders import register
from zhiku.loaders._common import (
    clean_text,
    collapse_ws,
    header_names,
    looks_like_header,
    row_text,
    sensible_title,
    stem_title,
)
from zhiku.models import Block, LoadedDocument
from zhiku.text import detect_label
from zhiku.textcodec import decode_bytes

_NOISE_SELECTOR = ", ".join(
    [
        "script",
        "style",
        "noscript",
        "nav",
        "aside",
        "form",
        "iframe",
        "svg",
        "template",
        "button",
        "select",
        "textarea",
        "object",
        "embed",
        "canvas",
        "dialog",
        "[role=navigation]",
        "[role=banner]",
        "[role=contentinfo]",
        "[role=search]",
        "[role=complementary]",
        "[aria-hidden=true]",
        "[hidden]",
    ]
)
_BLOCK_TAGS = {
    "html",
    "body",
    "main",
    "article",
    "section",
    "div",
    "p",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "figure",
    "figcaption",
    "address",
    "center",
    "details",
    "summary",
    "fieldset",
    "legend",
    "caption",
    "hr",
    "td",
    "th",
    "tr",
    "tbody",
    "thead",
    "tfoot",
    "header",
    "footer",
    "menu",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BR = "\ue000"  # a <br> survives whitespace collapsing as this private-use character
_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE
)


def _text(node: LexborNode) -> str:
    """Text of an element as one line: inline markup joins without spaces (退貨<b>說明</b>
    → 退貨說明); block children and <br> separate like whitespace."""
    parts: list[str] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        tag = cur.tag
        if tag == "-text":
            parts.append(cur.text(deep=False) or "")
            continue
        if tag is None or tag.startswith(("_", "!")):
            continue
        if tag == "br" or tag in _BLOCK_TAGS:
            parts.append("\n")
        stack.extend(reversed(list(cur.iter(include_text=True))))
    return collapse_ws(clean_text("".join(parts)))


def _has_ancestor(node: LexborNode, tags: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _remove_noise(tree: LexborHTMLParser) -> None:
    for node in tree.css(_NOISE_SELECTOR):
        node.decompose()
    for node in tree.css("header, footer"):
        # An article's own <header> usually holds its h1; page-level ones are chrome.
        if node.tag == "header" and _has_ancestor(node, {"article", "main"}):
            continue
        node.decompose()


def _content_root(tree: LexborHTMLParser) -> LexborNode | None:
    main = tree.css_first("main") or tree.css_first("[role=main]")
    if main is not None and _text(main):
        return main
    articles = [a for a in tree.css("article") if _text(a)]
    if len(articles) == 1:
        return articles[0]
    return tree.body or tree.root


def _is_layout_table(table: LexborNode) -> bool:
    if any(t.mem_id != table.mem_id for t in table.css("table")):
        return True  # css() matches the node itself too
    for cell in table.css("td, th"):
        if cell.css_first("p, div, ul, ol, h1, h2, h3, h4, h5, h6, blockquote") is not None:
            return True
        if len(_text(cell)) > 300:
            return True
    return False


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.first_h1: str | None = None

    def path(self) -> tuple[str, ...]:
        return tuple(h for _, h in self.headings)

    def flush(self) -> None:
        if not self.buf:
            return
        text = collapse_ws(clean_text("".join(self.buf)))
        self.buf = []
        lines = [ln.strip() for ln in text.split(_BR)]
        text = "\n".join(ln for ln in lines if ln)
        if text:
            self.blocks.append(Block(text, self.path(), detect_label(text), kind="para"))

    def heading(self, node: LexborNode) -> None:
        text = _text(node)
        if not text:
            return
        level = _HEADINGS[node.tag or ""]  # called for h1…h6 only
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        self.blocks.append(Block(text, self.path(), None, kind="heading"))

    def table(self, node: LexborNode) -> None:
        caption = node.css_first("caption")
        if caption is not None and _text(caption):
            self.blocks.append(Block(_text(caption), self.path(), None, kind="para"))
        rows: list[list[str]] = []
        all_th: list[bool] = []
        for tr in node.css("tr"):
            cells: list[str] = []
            ths = True
            for cell in tr.iter():
                if cell.tag not in ("td", "th"):
                    continue
                ths = ths and cell.tag == "th"
                value = _text(cell)
                try:
                    span = max(1, min(int(cell.attributes.get("colspan") or 1), 20))
                except ValueError:
                    span = 1
                cells.append(value)
                cells.extend([""] * (span - 1))
            if any(cells):
                rows.append(cells)
                all_th.append(ths)
        if not rows:
            return
        headers = None
        body = rows
        if len(rows) >= 2 and (all_th[0] or looks_like_header(rows[0])):
            headers = header_names(rows[0])
            body = rows[1:]
        for r in body:
            text = row_text(headers, r)
            if text:
                self.blocks.append(Block(text, self.path(), None, kind="table_row"))

    def walk(self, root: LexborNode) -> None:
        stack: list[tuple[LexborNode, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                self.flush()
                continue
            tag = node.tag
            if tag == "-text":
                self.buf.append(node.text(deep=False) or "")
                continue
            if tag is None or tag.startswith(("_", "!")):
                continue  # comments, doctype
            if tag == "br":
                self.buf.append(_BR)
                continue
            if tag in _HEADINGS:
                self.flush()
                self.heading(node)
                continue
            if tag == "img":
                continue
            if tag == "table" and not _is_layout_table(node):
                self.flush()
                self.table(node)
                continue
            if tag == "pre":
                self.flush()
                text = clean_text(node.text(deep=True)).strip("\n")
                if text.strip():
                    self.blocks.append(Block(text, self.path(), None, kind="para"))
                continue
            block = tag in _BLOCK_TAGS or tag == "table"
            if block:
                self.flush()
                stack.append((node, True))
            children = list(node.iter(include_text=True))
            for child in reversed(children):
                stack.append((child, False))


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    m = _META_CHARSET_RE.search(data[:4096])
    preferred = m.group(1).decode("ascii", "ignore") if m else None
    return decode_bytes(data, path, preferred=preferred)


@register(".html", ".htm")
def load_html(path: Path) -> LoadedDocument:
    text, encoding = _decode(path.read_bytes(), path)
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    page_title = _text(title_node) if title_node is not None else ""
    meta: dict[str, Any] = {"encoding": encoding}
    for name in ("description", "author", "keywords"):
        node = tree.css_first(f'meta[name="{name}"]')
        content = node.attributes.get("content") if node is not None else None
        if content:
            meta[name] = content.strip()
    blocks, first_h1 = _main_blocks(tree)
    title = sensible_title(page_title) or first_h1 or stem_title(path)
    return LoadedDocument(title=title, kind="html", blocks=blocks, meta=meta)


def _main_blocks(tree: LexborHTMLParser) -> tuple[list[Block], str | None]:
    _remove_noise(tree)
    walker = _Walker()
    root = _content_root(tree)
    if root is not None:
        walker.walk(root)
        walker.flush()
    return walker.blocks, walker.first_h1


def html_blocks(html: str) -> list[Block]:
    """The main-text blocks of an HTML string (an e-mail's HTML body)."""
    return _main_blocks(LexborHTMLParser(html))[0]
