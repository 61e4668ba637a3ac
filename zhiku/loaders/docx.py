"""Word (``.docx``) loader: body walked in order, heading styles → heading path, Word
auto-numbering rendered as clause labels, table rows as 「欄：值；…」 records."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.styles import BabelFish
from docx.table import Table
from docx.text.paragraph import Paragraph

from zhiku import limits
from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import (
    clean_text,
    header_names,
    looks_like_header,
    row_text,
    sensible_title,
    squash_spaces,
    stem_title,
)
from zhiku.models import Block, LoadedDocument
from zhiku.text import detect_label

_CORRUPT_DOCX = "Word 檔案已損毀或不是有效的 .docx，無法開啟"
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING_STYLE_RE = re.compile(r"^(?:heading|標題|見出し|标题)\s*(\d)$", re.IGNORECASE)
_TITLE_STYLES = {"title", "標題", "标题"}
_ARTICLE_LABEL_RE = re.compile(r"^第.+條")
_DOTTED_LABEL_RE = re.compile(r"^\d+\.\d")


def check_ooxml_container(path: Path, kind: str) -> None:
    """Raise the right LoadError for OLE files posing as OOXML (encrypted or legacy)."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head != _CFB_MAGIC:
        return
    data = path.read_bytes()
    if "EncryptedPackage".encode("utf-16-le") in data:
        raise LoadError(str(path), "encrypted", f"{kind} 檔案已設定開啟密碼（已加密），無法讀取")
    raise LoadError(
        str(path), "unsupported", f"這是舊版 {kind} 二進位格式，請另存為新版格式（OOXML）後再匯入"
    )


# --- numbering ------------------------------------------------------------------------

_CN_DIGITS = "零一二三四五六七八九"
_CN_LEGAL = "零壹貳參肆伍陸柒捌玖"
_TIANGAN = "甲乙丙丁戊己庚辛壬癸"
_ZODIAC = "子丑寅卯辰巳午未申酉戌亥"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def _cn_count(n: int, digits: str = _CN_DIGITS, units: str = "十百千") -> str:
    """1 → 一, 10 → 十, 21 → 二十一, 105 → 一百零五 (up to 9999)."""
    if n <= 0 or n > 9999:
        return str(n)
    parts: list[str] = []
    values = [(1000, units[2]), (100, units[1]), (10, units[0]), (1, "")]
    zero = False
    for value, unit in values:
        d = n // value % 10
        if d == 0:
            if parts:
                zero = True
            continue
        if zero:
            parts.append(digits[0])
            zero = False
        if not (value == 10 and d == 1 and not parts):
            parts.append(digits[d])
        parts.append(unit)
    return "".join(parts)


def _roman(n: int) -> str:
    out = ""
    for value, sym in (
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ):
        while n >= value:
            out += sym
            n -= value
    return out


def _letters(n: int) -> str:
    # Word repeats the letter: a…z, aa…zz, aaa…
    return chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)


def format_number(n: int, fmt: str) -> str | None:
    """A counter value in a Word ``numFmt``; ``None`` for bullets / no number."""
    if fmt in ("bullet", "none"):
        return None
    if fmt in (
        "taiwaneseCounting",
        "taiwaneseCountingThousand",
        "chineseCounting",
        "chineseCountingThousand",
    ):
        return _cn_count(n)
    if fmt in ("ideographLegalTraditional", "chineseLegalSimplified"):
        return _cn_count(n, _CN_LEGAL, "拾佰仟")
    if fmt == "ideographTraditional":
        return _TIANGAN[(n - 1) % 10]
    if fmt == "ideographZodiac":
        return _ZODIAC[(n - 1) % 12]
    if fmt in ("taiwaneseDigital", "ideographDigital"):
        return "".join("〇一二三四五六七八九"[int(d)] for d in str(n))
    if fmt in ("decimalFullWidth", "decimalFullWidth2"):
        return "".join(chr(0xFF10 + int(d)) for d in str(n))
    if fmt in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese") and 1 <= n <= 20:
        return _CIRCLED[n - 1]
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt == "upperRoman":
        return _roman(n)
    if fmt == "lowerRoman":
        return _roman(n).lower()
    if fmt == "upperLetter":
        return _letters(n).upper()
    if fmt == "lowerLetter":
        return _letters(n)
    return str(n)


@dataclass(slots=True)
class _Level:
    start: int = 1
    fmt: str = "decimal"
    text: str = ""
    legal: bool = False
    style: str | None = None


def _val(el: Any, tag: str) -> str | None:
    child = el.find(qn(tag)) if el is not None else None
    return child.get(qn("w:val")) if child is not None else None


class Numbering:
    """Word list numbering: renders ``(numId, ilvl)`` to labels like ``4.3`` in body order.

    Counters are kept per abstract list, as Word does (several ``w:num`` sharing an
    abstract list continue one sequence unless a ``startOverride`` restarts it).
    """

    def __init__(self, document: DocxDocument, styles: _Styles) -> None:
        self.abstract: dict[str, dict[int, _Level]] = {}
        self.num_abs: dict[str, str] = {}
        self.overrides: dict[str, dict[int, int]] = {}
        self.counters: dict[str, dict[int, int]] = {}
        self.started: set[str] = set()
        try:
            root = document.part.numbering_part.element
        except (NotImplementedError, KeyError, AttributeError):
            return
        style_links: dict[str, str] = {}
        for an in root.findall(qn("w:abstractNum")):
            aid = an.get(qn("w:abstractNumId"))
            levels: dict[int, _Level] = {}
            for lvl in an.findall(qn("w:lvl")):
                ilvl = int(lvl.get(qn("w:ilvl"), "0"))
                start = _val(lvl, "w:start")
                levels[ilvl] = _Level(
                    start=int(start) if start and start.lstrip("-").isdigit() else 1,
                    fmt=_val(lvl, "w:numFmt") or "decimal",
                    text=_val(lvl, "w:lvlText") or "",
                    legal=lvl.find(qn("w:isLgl")) is not None,
                    style=_val(lvl, "w:pStyle"),
                )
            self.abstract[aid] = levels
            link = _val(an, "w:numStyleLink")
            if link:
                style_links[aid] = link
        for num in root.findall(qn("w:num")):
            nid = num.get(qn("w:numId"))
            aid = _val(num, "w:abstractNumId")
            if nid is None or aid is None:
                continue
            self.num_abs[nid] = aid
            for ov in num.findall(qn("w:lvlOverride")):
                ilvl = int(ov.get(qn("w:ilvl"), "0"))
                start = _val(ov, "w:startOverride")
                if start and start.isdigit():
                    self.overrides.setdefault(nid, {})[ilvl] = int(start)
        # A numStyleLink abstract list takes its levels from the style's list.
        for aid, style_id in style_links.items():
            target = _style_num_id(styles, style_id)
            if target and target in self.num_abs and not self.abstract.get(aid):
                self.abstract[aid] = self.abstract.get(self.num_abs[target], {})

    def level_for_style(self, num_id: str, style_id: str | None) -> int:
        aid = self.num_abs.get(num_id)
        for ilvl, lvl in self.abstract.get(aid or "", {}).items():
            if style_id and lvl.style == style_id:
                return ilvl
        return 0

    def render(self, num_id: str, ilvl: int) -> str | None:
        """Advance the counter of (numId, ilvl) and return the rendered number text."""
        aid = self.num_abs.get(num_id)
        if aid is None or num_id == "0":
            return None
        levels = self.abstract.get(aid, {})
        if ilvl not in levels:
            return None
        counters = self.counters.setdefault(aid, {})
        if num_id not in self.started:
            self.started.add(num_id)
            for lv, start in self.overrides.get(num_id, {}).items():
                counters[lv] = start - 1
                for deeper in [k for k in counters if k > lv]:
                    del counters[deeper]
        counters[ilvl] = counters.get(ilvl, levels[ilvl].start - 1) + 1
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]
        lvl = levels[ilvl]
        if lvl.fmt in ("bullet", "none"):
            return None

        def sub(m: re.Match[str]) -> str:
            k = int(m.group(1)) - 1
            spec = levels.get(k, _Level())
            value = counters.get(k, spec.start)
            fmt = "decimal" if lvl.legal and spec.fmt != "none" else spec.fmt
            return format_number(value, fmt) or ""

        text = re.sub(r"%(\d)", sub, lvl.text).strip()
        return text or None


def _style_num_id(styles: _Styles, style_id: str) -> str | None:
    st = styles.by_id.get(style_id)
    if st is None:
        return None
    ppr = st.find(qn("w:pPr"))
    num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
    return _val(num_pr, "w:numId") if num_pr is not None else None


# --- paragraphs -------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _Style:
    style_id: str | None
    name: str
    element: Any


class _Styles:
    """The document's styles, indexed once.

    python-docx finds a paragraph's style (and the default style) by scanning every
    style definition, and the loader asks several times per paragraph: with thousands
    of styles and paragraphs that cost paragraphs × styles. Here each paragraph costs
    a dictionary look-up and a chain of at most ten ``basedOn`` links, cached per style.
    """

    def __init__(self, document: DocxDocument) -> None:
        self.by_id: dict[str, Any] = {}
        self.default: Any = None
        self._chains: dict[str | None, tuple[_Style, ...]] = {}
        try:
            root = document.styles.element
        except (KeyError, ValueError, AttributeError):
            return
        count = 0
        for st in root.iterchildren(qn("w:style")):
            count += 1
            sid = st.get(qn("w:styleId"))
            if sid is not None and sid not in self.by_id:
                self.by_id[sid] = st
            if (st.get(qn("w:type")) or "paragraph") == "paragraph" and st.get(qn("w:default")) in (
                "1",
                "true",
            ):
                self.default = st  # the last default wins, as in python-docx
        limits.budget().styles(count)

    @staticmethod
    def _style(el: Any) -> _Style:
        name_el = el.find(qn("w:name"))
        raw = name_el.get(qn("w:val")) if name_el is not None else None
        return _Style(el.get(qn("w:styleId")), BabelFish.internal2ui(raw or ""), el)

    def chain(self, paragraph: Paragraph) -> tuple[_Style, ...]:
        """The paragraph's style and the styles it is based on, nearest first."""
        ppr = paragraph._p.pPr
        sid = _val(ppr, "w:pStyle") if ppr is not None else None
        found = self._chains.get(sid)
        if found is not None:
            return found
        el = self.by_id.get(sid) if sid is not None else None
        if el is None or (el.get(qn("w:type")) or "paragraph") != "paragraph":
            el = self.default
        out: list[_Style] = []
        while el is not None and len(out) < 10:
            out.append(self._style(el))
            base = _val(el, "w:basedOn")
            el = self.by_id.get(base) if base is not None else None
        found = self._chains[sid] = tuple(out)
        return found


def _is_toc(paragraph: Paragraph, styles: _Styles) -> bool:
    """Table-of-contents entries (styles 「TOC 1」/「目錄 1」) only repeat the headings."""
    for style in styles.chain(paragraph):
        name = (style.name or "").strip().lower()
        if name.startswith(("toc", "目錄", "目录")):
            return True
    return False


def _heading_level(paragraph: Paragraph, styles: _Styles) -> int | None:
    """0 for a Title paragraph, 1–9 for headings, ``None`` for body text."""
    ppr = paragraph._p.pPr
    for style in styles.chain(paragraph):
        name = (style.name or "").strip()
        if name.lower() in _TITLE_STYLES:
            return 0
        m = _HEADING_STYLE_RE.match(name)
        if m:
            return max(1, int(m.group(1)))
    outline = _val(ppr, "w:outlineLvl") if ppr is not None else None
    if outline is None:
        for style in styles.chain(paragraph):
            sppr = style.element.find(qn("w:pPr"))
            outline = _val(sppr, "w:outlineLvl") if sppr is not None else None
            if outline is not None:
                break
    if outline is not None and outline.isdigit() and int(outline) < 9:
        return int(outline) + 1
    return None


def _num_pr(paragraph: Paragraph, numbering: Numbering, styles: _Styles) -> tuple[str, int] | None:
    ppr = paragraph._p.pPr
    num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
    if num_pr is not None:
        nid = _val(num_pr, "w:numId")
        ilvl = _val(num_pr, "w:ilvl")
        if nid is None:
            return None
        return nid, int(ilvl) if ilvl and ilvl.isdigit() else 0
    for style in styles.chain(paragraph):
        sppr = style.element.find(qn("w:pPr"))
        snum = sppr.find(qn("w:numPr")) if sppr is not None else None
        if snum is not None:
            nid = _val(snum, "w:numId")
            if nid is None:
                return None
            ilvl = _val(snum, "w:ilvl")
            if ilvl and ilvl.isdigit():
                return nid, int(ilvl)
            return nid, numbering.level_for_style(nid, style.style_id)
    return None


def _para_text(paragraph: Paragraph) -> str:
    text = clean_text(paragraph.text)
    return "\n".join(s for s in (squash_spaces(ln) for ln in text.split("\n")) if s)


def _with_number(number: str | None, text: str) -> str:
    if not number or text.startswith(number):
        return text
    sep = "" if number[-1] in "、）)．" else " "
    return f"{number}{sep}{text}"


# --- tables -------------------------------------------------------------------------------


def _table_rows(table: Table) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for row in table.rows:
            cells: list[str] = []
            last_tc = None
            for cell in row.cells:
                if cell._tc is last_tc:
                    continue  # a horizontally merged cell is reported once per grid column
                last_tc = cell._tc
                cells.append(squash_spaces(clean_text(cell.text).replace("\n", " ")))
            rows.append(cells)
    except (IndexError, ValueError, KeyError):
        rows = []
        for tr in table._tbl.tr_lst:
            rows.append(
                [
                    squash_spaces(clean_text("".join(tc.itertext())).replace("\n", " "))
                    for tc in tr.tc_lst
                ]
            )
    return [r for r in rows if any(c for c in r)]


def _iter_body(element: Any, document: DocxDocument) -> Iterator[Paragraph | Table]:
    for child in element.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, document)
        elif child.tag == qn("w:tbl"):
            yield Table(child, document)
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _iter_body(content, document)


# --- loader -------------------------------------------------------------------------------


@register(".docx")
def load_docx(path: Path) -> LoadedDocument:
    check_ooxml_container(path, "Word")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zip, KeyError, lxml and its own errors
        raise LoadError(str(path), "corrupt", _CORRUPT_DOCX) from exc
    styles = _Styles(document)
    numbering = Numbering(document, styles)
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    top_label: str | None = None
    first_title: str | None = None
    first_h1: str | None = None

    def path_() -> tuple[str, ...]:
        return tuple(h for _, h in headings)

    for item in _iter_body(document.element.body, document):
        if isinstance(item, Table):
            rows = _table_rows(item)
            if not rows:
                continue
            width = max(len(r) for r in rows)
            if width == 1:
                for r in rows:
                    blocks.append(Block(r[0], path_(), detect_label(r[0]), kind="para"))
                continue
            headers = None
            body = rows
            if len(rows) >= 2 and looks_like_header(rows[0]):
                headers = header_names(rows[0])
                body = rows[1:]
            for r in body:
                text = row_text(headers, r)
                if text:
                    blocks.append(Block(text, path_(), None, kind="table_row"))
            continue
        if _is_toc(item, styles):
            continue
        text = _para_text(item)
        level = _heading_level(item, styles)
        num = _num_pr(item, numbering, styles)
        number = numbering.render(*num) if num else None
        if not text:
            continue
        text = _with_number(number, text)
        if level == 0:
            first_title = first_title or text
            blocks.append(Block(text, (), None, kind="heading"))
            continue
        if level is not None:
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text.replace("\n", " ")))
            if level == 1 and first_h1 is None:
                first_h1 = text
            top_label = None
            blocks.append(Block(text, path_(), None, kind="heading"))
            continue
        label = detect_label(text)
        if label is None and number:
            label = number.strip(" .、．")
        if label is not None and _ARTICLE_LABEL_RE.match(label):
            top_label = label
        elif label is not None and _DOTTED_LABEL_RE.match(label):
            top_label = None
        blocks.append(Block(text, path_(), label or top_label, kind="para"))
    props = document.core_properties
    title = sensible_title(props.title) or first_title or first_h1 or stem_title(path)
    meta: dict[str, object] = {}
    if props.author and props.author != "python-docx":
        meta["author"] = props.author
    if props.subject:
        meta["subject"] = props.subject
    if props.keywords:
        meta["keywords"] = props.keywords
    if props.modified:
        meta["modified"] = props.modified.isoformat()
    return LoadedDocument(title=title, kind="docx", blocks=blocks, meta=meta)
