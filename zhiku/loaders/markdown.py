"""Markdown (``.md``, ``.markdown``) via markdown-it-py, including Notion exports.

:func:`markdown_document` also reads ``.txt`` files that are really Markdown
(:func:`looks_like_markdown`). Headings build the heading path; paragraphs, list items,
table rows and code blocks become blocks with markup stripped (link text kept, images
dropped). A leading YAML front-matter block and Notion's property lines (``Tags: …``
under the title) go to ``meta``; the 32-hex Notion id is stripped from the file-name title.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from zhiku.loaders import register
from zhiku.loaders._common import (
    clean_text,
    header_names,
    looks_like_header,
    row_text,
    squash_spaces,
    stem_title,
)
from zhiku.models import Block, LoadedDocument
from zhiku.text import detect_label, join_wrapped_lines
from zhiku.textcodec import decode_bytes

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_YAML_LINE_RE = re.compile(r"^([A-Za-z_\u3400-\u9fff][\w\u3400-\u9fff \-]{0,40}):\s*(.*)$")
_PROPERTY_RE = re.compile(r"^([^:：\n]{1,30}):\s+(\S.*)$")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_NOTION_ID_RE = re.compile(r"\s[0-9a-f]{32}$", re.IGNORECASE)


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a leading ``---`` YAML block off ``text`` (flat ``key: value`` lines and
    ``- item`` lists; nothing fancier is needed for titles and tags)."""
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return {}, text
    meta: dict[str, Any] = {}
    key: str | None = None
    for line in m.group(1).split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"^\s+-\s+(.*)$", line) or re.match(r"^-\s+(.*)$", line)
        if item and key is not None:
            if not isinstance(meta.get(key), list):
                meta[key] = []
            meta[key].append(item.group(1).strip().strip("\"'"))
            continue
        kv = _YAML_LINE_RE.match(line)
        if kv:
            key = kv.group(1).strip()
            value = kv.group(2).strip()
            if value.startswith("[") and value.endswith("]"):
                meta[key] = [v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip()]
            else:
                meta[key] = value.strip("\"'")
    return meta, text[m.end() :]


_SENTENCE_END = tuple("。！？；：!?;:")


def inline_text(token: Token, sentence_breaks: bool = False) -> str:
    """Plain text of an ``inline`` token: link text kept, images and HTML tags dropped;
    soft breaks joined without spaces between CJK characters, hard breaks kept.
    ``sentence_breaks``: a soft break after a sentence end is a line break too (plain
    text written one paragraph per line)."""
    lines: list[list[str]] = [[""]]
    for child in token.children or []:
        t = child.type
        if t in ("text", "code_inline"):
            lines[-1][-1] += child.content
        elif (
            t == "softbreak" and sentence_breaks and lines[-1][-1].rstrip().endswith(_SENTENCE_END)
        ):
            lines.append([""])
        elif t == "softbreak":
            lines[-1].append("")
        elif t == "hardbreak" or (t == "html_inline" and _BR_RE.match(child.content)):
            lines.append([""])
        # image, link_open/close, em/strong/s markers, other inline HTML: dropped
    out = [join_wrapped_lines([squash_spaces(p) for p in pieces]) for pieces in lines]
    return "\n".join(s for s in out if s)


def _html_text(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style"):
        node.decompose()
    root = tree.body or tree.root
    return squash_spaces(root.text(separator=" ")) if root is not None else ""


class _Builder:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self.first_h1: str | None = None

    def path(self) -> tuple[str, ...]:
        return tuple(h for _, h in self.headings)

    def heading(self, level: int, text: str) -> None:
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        self.blocks.append(Block(text, self.path(), None, kind="heading"))

    def para(self, text: str, kind: str = "para") -> None:
        text = text.strip()
        if text:
            label = detect_label(text) if kind == "para" else None
            self.blocks.append(Block(text, self.path(), label, kind=kind))


def _table(tokens: list[Token], i: int, b: _Builder) -> int:
    """Consume a table starting at ``tokens[i]``; returns the index after table_close."""
    rows: list[list[str]] = []
    header_rows = 0
    in_head = False
    while i < len(tokens) and tokens[i].type != "table_close":
        tok = tokens[i]
        if tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            rows.append([])
            if in_head:
                header_rows += 1
        elif tok.type == "inline" and rows:
            rows[-1].append(inline_text(tok).replace("\n", " "))
        i += 1
    headers = None
    body = rows
    if header_rows and rows and looks_like_header(rows[0]):
        headers = header_names(rows[0])
        body = rows[header_rows:]
    for r in body:
        text = row_text(headers, r)
        if text:
            b.blocks.append(Block(text, b.path(), None, kind="table_row"))
    return i + 1


def _is_property_block(text: str, notion: bool) -> dict[str, str] | None:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines:
        return None
    props: dict[str, str] = {}
    for ln in lines:
        m = _PROPERTY_RE.match(ln.strip())
        if not m:
            return None
        props[m.group(1).strip()] = m.group(2).strip()
    if notion or len(props) >= 2:
        return props
    return None


_ATX_HEADING_RE = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_MARKUP_RES = (
    re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"),  # [link](url)
    re.compile(r"\*\*[^*\n]+\*\*"),  # **bold**
    re.compile(r"^```", re.MULTILINE),  # fenced code
    re.compile(r"^\|?\s*:?-{3,}:?\s*\|", re.MULTILINE),  # table separator row
)


def looks_like_markdown(text: str) -> bool:
    """Plain text that is really Markdown: front matter, an ATX heading (``## 標題``),
    or two kinds of inline markup (links, bold, code fences, tables)."""
    if _FRONT_MATTER_RE.match(text) or _ATX_HEADING_RE.search(text):
        return True
    return sum(1 for r in _MARKUP_RES if r.search(text)) >= 2


@register(".md", ".markdown")
def load_markdown(path: Path) -> LoadedDocument:
    raw, encoding = decode_bytes(path.read_bytes(), path)
    return markdown_document(clean_text(raw), path, encoding)


def markdown_document(
    text: str, path: Path, encoding: str, *, plain_text: bool = False
) -> LoadedDocument:
    """A Markdown document from its decoded, cleaned ``text``.

    ``plain_text``: the text came in a ``.txt`` file (:mod:`zhiku.loaders.txt`): lines
    that end a sentence end a paragraph (such files are often one paragraph per line),
    the title falls back to the first heading of any level, and the kind stays ``txt``.
    """
    front, body = parse_front_matter(text)
    notion = bool(_NOTION_ID_RE.search(path.stem))
    meta: dict[str, Any] = {"encoding": encoding}
    if plain_text:
        meta["markup"] = "markdown"
    if front:
        meta["front_matter"] = front
    if notion:
        meta["notion_id"] = path.stem.rsplit(" ", 1)[-1].lower()
    tokens = _parser().parse(body)
    b = _Builder()
    item_prefix: str | None = None
    ordered: list[bool] = []
    props_checked = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        t = tok.type
        if t == "heading_open":
            level = int(tok.tag[1])
            content = inline_text(tokens[i + 1]).replace("\n", " ") if i + 1 < len(tokens) else ""
            if content:
                b.heading(level, content)
            i += 3
            continue
        if t == "table_open":
            i = _table(tokens, i, b)
            continue
        if t in ("ordered_list_open", "bullet_list_open"):
            ordered.append(t == "ordered_list_open")
        elif t in ("ordered_list_close", "bullet_list_close"):
            if ordered:
                ordered.pop()
        elif t == "list_item_open":
            item_prefix = f"{tok.info}. " if ordered and ordered[-1] and tok.info else None
        elif t == "inline":
            content = inline_text(tok, sentence_breaks=plain_text)
            if not props_checked and content:
                props_checked = True
                only_title_before = all(blk.kind == "heading" for blk in b.blocks)
                props = _is_property_block(tok.content, notion) if only_title_before else None
                if props:
                    meta["properties"] = props
                    i += 1
                    continue
            if item_prefix:
                content = item_prefix + content
                item_prefix = None
            for piece in content.split("\n") if plain_text else [content]:
                b.para(piece)
        elif t in ("fence", "code_block"):
            b.para(tok.content.rstrip("\n"), kind="para")
        elif t == "html_block":
            b.para(_html_text(tok.content))
        i += 1
    first_any = next((blk.text for blk in b.blocks if blk.kind == "heading"), None)
    title = (
        b.first_h1
        or (str(front["title"]) if front.get("title") else None)
        or (first_any if plain_text else None)
        or stem_title(path)
    )
    return LoadedDocument(
        title=title, kind="txt" if plain_text else "markdown", blocks=b.blocks, meta=meta
    )
