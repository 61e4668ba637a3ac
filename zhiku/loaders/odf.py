"""OpenDocument (CNS 15251 / ISO 26300) through odfpy: ``.odt``, ``.ods``, ``.odp``.

- ``.odt``: the body in order; ``text:h`` outline levels → heading path, with the
  document's outline numbering (``text:outline-style``) rendered in front of the heading
  (「1.2 範圍」, 「第一章 總則」); numbered lists render their numbers as clause labels
  (「1.」 「（一）」) as Word numbering does in the DOCX loader; tables → one record per
  row through the sheet loader's row logic (header row names, Q/A tables).
- ``.ods``: like XLSX — every visible sheet's rows go through
  :func:`zhiku.loaders.sheet.rows_to_blocks` (records, FAQ sheets), the sheet name as
  section when there are several; repeated rows/columns are expanded only up to the
  last cell that holds a value.
- ``.odp``: one page per slide (``draw:page``); the title frame is the section, speaker
  notes are kept after the slide's text.

Every container is checked by :func:`zhiku.loaders._zip.check_container` first
(password-protected files, bombs, not a ZIP).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import cell_text, clean_text, sensible_title, squash_spaces, stem_title
from zhiku.loaders._zip import check_container
from zhiku.loaders.docx import format_number
from zhiku.loaders.sheet import rows_to_blocks
from zhiku.models import Block, LoadedDocument
from zhiku.text import detect_label

TEXTNS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLENS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
STYLENS = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
OFFICENS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
DRAWNS = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
PRESNS = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"

_MAX_REPEAT = 1000  # a row/column repeated more often is padding (1,048,576 empty rows)
_CORRUPT = "OpenDocument 檔案已損毀或格式不正確，無法開啟"

# ODF style:num-format → the Word numFmt names format_number knows.
_NUM_FORMATS = {
    "1": "decimal",
    "a": "lowerLetter",
    "A": "upperLetter",
    "i": "lowerRoman",
    "I": "upperRoman",
    "": "none",
}
_NUM_PREFIXES = {
    "一": "chineseCounting",
    "壹": "ideographLegalTraditional",
    "甲": "ideographTraditional",
    "子": "ideographZodiac",
    "①": "decimalEnclosedCircle",
    "１": "decimalFullWidth",
}


def _fmt_name(num_format: str) -> str:
    if num_format in _NUM_FORMATS:
        return _NUM_FORMATS[num_format]
    return _NUM_PREFIXES.get(num_format[:1], "decimal")


def _local(el: Any) -> tuple[str, str]:
    q = getattr(el, "qname", None)
    return q if isinstance(q, tuple) else ("", "")


def _attr(el: Any, ns: str, name: str) -> str | None:
    attrs = getattr(el, "attributes", None) or {}
    return attrs.get((ns, name))


def _text(el: Any) -> str:
    """The element's text: text:s spaces, tabs and line breaks kept, notes dropped."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if node.nodeType == node.TEXT_NODE:
            parts.append(str(node.data))
            return
        ns, name = _local(node)
        if ns == TEXTNS:
            if name == "s":
                parts.append(" " * int(_attr(node, TEXTNS, "c") or 1))
                return
            if name == "tab":
                parts.append("\t")
                return
            if name == "line-break":
                parts.append("\n")
                return
            if name in ("note", "bookmark-ref", "tracked-changes"):
                return
        for child in node.childNodes:
            walk(child)

    walk(el)
    text = clean_text("".join(parts))
    return "\n".join(s for s in (squash_spaces(ln) for ln in text.split("\n")) if s)


# --- numbering ----------------------------------------------------------------------------


@dataclass(slots=True)
class _LevelStyle:
    fmt: str = "none"
    prefix: str = ""
    suffix: str = ""
    start: int = 1
    display: int = 1


def _level_styles(style_el: Any) -> dict[int, _LevelStyle]:
    levels: dict[int, _LevelStyle] = {}
    for child in style_el.childNodes:
        ns, name = _local(child)
        if ns != TEXTNS or name not in ("outline-level-style", "list-level-style-number"):
            continue
        try:
            level = int(_attr(child, TEXTNS, "level") or 1)
            start = int(_attr(child, TEXTNS, "start-value") or 1)
            display = int(_attr(child, TEXTNS, "display-levels") or 1)
        except ValueError:
            continue
        levels[level] = _LevelStyle(
            _fmt_name(_attr(child, STYLENS, "num-format") or ""),
            _attr(child, STYLENS, "num-prefix") or "",
            _attr(child, STYLENS, "num-suffix") or "",
            start,
            display,
        )
    return levels


class _Counter:
    """Counters of one numbering (the outline, or one list style) and their rendering."""

    def __init__(self, levels: dict[int, _LevelStyle]) -> None:
        self.levels = levels
        self.values: dict[int, int] = {}

    def step(self, level: int) -> str | None:
        style = self.levels.get(level)
        for deeper in [lv for lv in self.values if lv > level]:
            del self.values[deeper]
        start = style.start if style else 1
        self.values[level] = self.values.get(level, start - 1) + 1
        if style is None or style.fmt == "none":
            return None
        nums: list[str] = []
        for lv in range(level - style.display + 1, level + 1):
            lv_style = self.levels.get(lv, style)
            value = self.values.get(lv, lv_style.start)
            rendered = format_number(value, lv_style.fmt)
            if rendered is None:
                return None
            nums.append(rendered)
        return f"{style.prefix}{'.'.join(nums)}{style.suffix}"


def _with_number(number: str | None, text: str) -> str:
    if not number or text.startswith(number):
        return text
    sep = "" if number[-1] in "、）)．章節條編" else " "
    return f"{number}{sep}{text}"


def _open(path: Path, kind: str) -> Any:
    from odf.opendocument import load

    check_container(path, "OpenDocument")
    try:
        return load(str(path))
    except Exception as exc:  # odfpy raises zipfile, KeyError, xml.sax and its own errors
        raise LoadError(str(path), "corrupt", _CORRUPT) from exc


def _styles_by_name(doc: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for root in (doc.styles, doc.automaticstyles, getattr(doc, "masterstyles", None)):
        if root is None:
            continue
        for el in root.childNodes:
            name = _attr(el, STYLENS, "name")
            if name:
                out.setdefault(name, el)
    return out


def _outline_style(doc: Any) -> dict[int, _LevelStyle]:
    for el in doc.styles.childNodes:
        if _local(el) == (TEXTNS, "outline-style"):
            return _level_styles(el)
    return {}


def _meta(doc: Any) -> tuple[str | None, dict[str, object]]:
    title: str | None = None
    meta: dict[str, object] = {}
    for el in doc.meta.childNodes:
        ns, name = _local(el)
        value = _text(el)
        if not value:
            continue
        if name == "title":
            title = value
        elif name in ("initial-creator", "creator") and "author" not in meta:
            meta["author"] = value
        elif name in ("subject", "description"):
            meta.setdefault(name, value)
        elif name == "keyword":
            meta.setdefault("keywords", value)
    return title, meta


# --- tables --------------------------------------------------------------------------


def _cell_value(cell: Any) -> str:
    vtype = _attr(cell, OFFICENS, "value-type")
    if vtype in ("float", "percentage", "currency"):
        raw = _attr(cell, OFFICENS, "value")
        text = _text(cell)
        if text:
            return cell_text(text)
        return raw or ""
    if vtype == "date":
        return (_attr(cell, OFFICENS, "date-value") or "").replace("T00:00:00", "")
    if vtype == "boolean":
        return "是" if (_attr(cell, OFFICENS, "boolean-value") or "") == "true" else "否"
    return cell_text(_text(cell))


def _table_rows(table: Any) -> Iterator[list[str]]:
    """Rows of a table:table (header-rows and row-groups flattened), padding trimmed."""
    pending_blank = 0

    def rows_of(el: Any) -> Iterator[Any]:
        for child in el.childNodes:
            ns, name = _local(child)
            if ns != TABLENS:
                continue
            if name == "table-row":
                yield child
            elif name in ("table-header-rows", "table-rows", "table-row-group"):
                yield from rows_of(child)

    for row in rows_of(table):
        repeat = min(int(_attr(row, TABLENS, "number-rows-repeated") or 1), _MAX_REPEAT)
        cells: list[str] = []
        gap = 0  # empty cells not yet placed: only kept when a value follows them
        for cell in row.childNodes:
            if _local(cell) not in ((TABLENS, "table-cell"), (TABLENS, "covered-table-cell")):
                continue
            value = _cell_value(cell)
            n = min(int(_attr(cell, TABLENS, "number-columns-repeated") or 1), _MAX_REPEAT)
            if not value:
                gap += n
                continue
            cells.extend([""] * min(gap, _MAX_REPEAT))
            gap = 0
            cells.extend([value] * n)
        if not cells:
            pending_blank += repeat
            if pending_blank > _MAX_REPEAT:
                return  # the rest of the sheet is padding
            continue
        pending_blank = 0
        for _ in range(repeat):
            yield cells


# --- .odt ----------------------------------------------------------------------------


@register(".odt", ".ott")
def load_odt(path: Path) -> LoadedDocument:
    doc = _open(path, "odt")
    styles = _styles_by_name(doc)
    outline = _Counter(_outline_style(doc))
    lists: dict[str, _Counter] = {}
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    top_label: str | None = None
    first_h1: str | None = None

    def heads() -> tuple[str, ...]:
        return tuple(h for _, h in headings)

    def add_para(text: str, number: str | None = None) -> None:
        nonlocal top_label
        if not text:
            return
        text = _with_number(number, text)
        label = detect_label(text)
        if label is None and number:
            label = number.strip(" .、．")
        if label is not None and label.startswith("第") and label.endswith("條"):
            top_label = label
        blocks.append(Block(text, heads(), label or top_label, kind="para"))

    def walk(nodes: Iterable[Any], list_style: str | None = None, depth: int = 0) -> None:
        nonlocal top_label, first_h1
        for child in nodes:
            ns, name = _local(child)
            if ns == TEXTNS and name == "h":
                text = _text(child)
                if not text:
                    continue
                level = int(_attr(child, TEXTNS, "outline-level") or 1)
                number = outline.step(level)
                text = _with_number(number, text).replace("\n", " ")
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, text))
                if level == 1 and first_h1 is None:
                    first_h1 = text
                top_label = None
                blocks.append(Block(text, heads(), None, kind="heading"))
            elif ns == TEXTNS and name == "p":
                add_para(_text(child))
            elif ns == TEXTNS and name == "list":
                style = _attr(child, TEXTNS, "style-name") or list_style
                walk(child.childNodes, style, depth + 1)
            elif ns == TEXTNS and name in ("list-item", "list-header"):
                counter = None
                if list_style and list_style in styles:
                    counter = lists.setdefault(
                        list_style, _Counter(_level_styles(styles[list_style]))
                    )
                number = counter.step(depth) if counter and name == "list-item" else None
                first = True
                for item in child.childNodes:
                    ins, iname = _local(item)
                    if ins == TEXTNS and iname in ("p", "h"):
                        add_para(_text(item), number if first else None)
                        first = False
                    elif ins == TEXTNS and iname == "list":
                        walk([item], list_style, depth)
            elif ns == TABLENS and name == "table":
                blocks.extend(rows_to_blocks(_table_rows(child), heads()))
            elif (
                ns == TEXTNS
                and name in ("section", "soft-page-break")
                or (ns == OFFICENS and name == "text")
            ):
                walk(child.childNodes, list_style, depth)
            elif ns == TEXTNS and name in (
                "table-of-content",
                "alphabetical-index",
                "illustration-index",
                "bibliography",
            ):
                continue

    walk(doc.text.childNodes)
    title, meta = _meta(doc)
    title = sensible_title(title) or first_h1 or stem_title(path)
    return LoadedDocument(title=title, kind="odt", blocks=blocks, meta=meta)


# --- .ods ----------------------------------------------------------------------------


def _hidden_tables(doc: Any, styles: dict[str, Any]) -> set[str]:
    hidden: set[str] = set()
    for name, el in styles.items():
        for child in el.childNodes:
            if (
                _local(child) == (STYLENS, "table-properties")
                and _attr(child, TABLENS, "display") == "false"
            ):
                hidden.add(name)
    return hidden


@register(".ods", ".ots")
def load_ods(path: Path) -> LoadedDocument:
    doc = _open(path, "ods")
    styles = _styles_by_name(doc)
    hidden = _hidden_tables(doc, styles)
    tables = [
        t
        for t in doc.spreadsheet.childNodes
        if _local(t) == (TABLENS, "table") and _attr(t, TABLENS, "style-name") not in hidden
    ]
    multi = len(tables) > 1
    blocks: list[Block] = []
    names: list[str] = []
    for t in tables:
        name = _attr(t, TABLENS, "name") or f"工作表{len(names) + 1}"
        names.append(name)
        blocks.extend(rows_to_blocks(_table_rows(t), (name,) if multi else ()))
    title, meta = _meta(doc)
    meta["sheets"] = names
    return LoadedDocument(
        title=sensible_title(title) or stem_title(path), kind="ods", blocks=blocks, meta=meta
    )


# --- .odp ----------------------------------------------------------------------------


def _frames(el: Any) -> Iterable[Any]:
    for child in el.childNodes:
        ns, name = _local(child)
        if ns == DRAWNS and name == "frame":
            yield child
        elif ns == DRAWNS and name in ("g", "custom-shape"):
            if name == "custom-shape":
                yield child
            else:
                yield from _frames(child)


def _frame_paragraphs(frame: Any) -> list[str]:
    out: list[str] = []

    def walk(el: Any) -> None:
        for child in el.childNodes:
            ns, name = _local(child)
            if ns == TEXTNS and name in ("p", "h"):
                text = _text(child)
                if text:
                    out.append(text)
            elif ns == TABLENS and name == "table":
                for row in _table_rows(child):
                    text = "；".join(c for c in row if c)
                    if text:
                        out.append(text)
            elif ns in (DRAWNS, TEXTNS):
                walk(child)

    walk(frame)
    return out


@register(".odp", ".otp")
def load_odp(path: Path) -> LoadedDocument:
    doc = _open(path, "odp")
    blocks: list[Block] = []
    slides = [p for p in doc.presentation.childNodes if _local(p) == (DRAWNS, "page")]
    for no, slide in enumerate(slides, start=1):
        title: str | None = None
        body: list[str] = []
        notes: list[str] = []
        for frame in _frames(slide):
            cls = _attr(frame, PRESNS, "class")
            paras = _frame_paragraphs(frame)
            if cls == "title" and paras and title is None:
                title = " ".join(paras)
            else:
                body.extend(paras)
        for child in slide.childNodes:
            if _local(child) == (PRESNS, "notes"):
                for frame in _frames(child):
                    if _attr(frame, PRESNS, "class") == "notes":
                        notes.extend(_frame_paragraphs(frame))
        heads = (title,) if title else ()
        if title:
            blocks.append(Block(title, heads, None, no, kind="heading"))
        for text in body:
            blocks.append(Block(text, heads, detect_label(text), no, kind="para"))
        if notes:
            blocks.append(Block("備註：" + "\n".join(notes), heads, None, no, kind="para"))
    doc_title, meta = _meta(doc)
    return LoadedDocument(
        title=sensible_title(doc_title) or stem_title(path),
        kind="odp",
        blocks=blocks,
        meta=meta,
        pages=len(slides),
    )
