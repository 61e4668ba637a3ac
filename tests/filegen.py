"""Builders for test input files (PDF, DOCX, XLSX, CSV, text). Plain functions, no fixtures.

from tests.filegen import make_pdf, make_docx, make_xlsx, make_big5_txt
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CJK_FONT = "MSung-Light"  # reportlab's built-in Traditional Chinese CID font

# --- PDF ----------------------------------------------------------------------------


def _register_cjk_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def make_pdf(
    path: Path,
    pages: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    header: str | None = None,
    page_numbers: bool = False,
    user_password: str | None = None,
    font_size: float = 12,
    leading: float | None = None,
) -> Path:
    """A text PDF: each string of ``pages[i]`` is drawn as one line of page ``i + 1``.

    ``header`` is drawn at the top of every page, ``page_numbers`` adds a footer
    「第 N 頁 / 共 M 頁」; ``user_password`` encrypts the file (it cannot be opened
    without the password). Output is byte-for-byte deterministic.
    """
    from reportlab.lib import pdfencrypt
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _register_cjk_font()
    encrypt = None
    if user_password is not None:
        encrypt = pdfencrypt.StandardEncryption(user_password, ownerPassword=user_password + "!")
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1, encrypt=encrypt)
    if title is not None:
        c.setTitle(title)
    width, height = A4
    lead = leading or font_size * 1.6
    total = len(pages)
    for no, lines in enumerate(pages, start=1):
        if header:
            c.setFont(CJK_FONT, 9)
            c.drawString(72, height - 40, header)
        c.setFont(CJK_FONT, font_size)
        y = height - 80
        for line in lines:
            c.drawString(72, y, line)
            y -= lead
        if page_numbers:
            c.setFont(CJK_FONT, 9)
            c.drawCentredString(width / 2, 30, f"第 {no} 頁 / 共 {total} 頁")
        c.showPage()
    c.save()
    return path


def make_image_only_pdf(path: Path, pages: int = 1) -> Path:
    """A "scanned" PDF: shapes but no text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for i in range(pages):
        c.setFillGray(0.2 + 0.1 * i)
        c.rect(72, 400, 300, 200, fill=1)
        c.circle(300, 700, 40, fill=1)
        c.showPage()
    c.save()
    return path


def wrap_cjk(text: str, width: int) -> list[str]:
    """Hard-wrap text every ``width`` display columns (CJK counts 2), like a layout engine."""
    import unicodedata

    lines: list[str] = []
    cur = ""
    w = 0
    for ch in text:
        cw = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if w + cw > width and cur:
            lines.append(cur)
            cur, w = "", 0
        cur += ch
        w += cw
    if cur:
        lines.append(cur)
    return lines


# --- DOCX ---------------------------------------------------------------------------

# Items for make_docx:
#   ("title", text)
#   ("heading", level, text[, auto])       auto = (list_name, ilvl): Word auto-numbering
#   ("para", text[, auto])
#   ("table", rows)                         rows: list of lists of cell text
# list_name "outline": ilvl 0 → "%1", 1 → "%1.%2", 2 → "（%3）" (Chinese counting)
# list_name "article": ilvl 0 → "第%1條" (Chinese counting)
DocxItem = tuple[Any, ...]

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_NUMBERING_XML = f"""
<w:root xmlns:w="{_W_NS}">
<w:abstractNum w:abstractNumId="90">
  <w:multiLevelType w:val="multilevel"/>
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>
    <w:lvlText w:val="%1"/></w:lvl>
  <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="decimal"/>
    <w:lvlText w:val="%1.%2"/></w:lvl>
  <w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="taiwaneseCountingThousand"/>
    <w:lvlText w:val="（%3）"/></w:lvl>
</w:abstractNum>
<w:abstractNum w:abstractNumId="91">
  <w:multiLevelType w:val="singleLevel"/>
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="taiwaneseCountingThousand"/>
    <w:lvlText w:val="第%1條"/></w:lvl>
</w:abstractNum>
<w:num w:numId="90"><w:abstractNumId w:val="90"/></w:num>
<w:num w:numId="91"><w:abstractNumId w:val="91"/></w:num>
</w:root>
"""
_LIST_NUM_IDS = {"outline": 90, "article": 91}


def _install_numbering(document: Any) -> None:
    from lxml import etree

    numbering = document.part.numbering_part.element
    extra = etree.fromstring(_NUMBERING_XML.encode())
    first_num = numbering.find(f"{{{_W_NS}}}num")
    for el in list(extra):
        if el.tag == f"{{{_W_NS}}}abstractNum":
            if first_num is not None:
                first_num.addprevious(el)
            else:
                numbering.append(el)
        else:
            numbering.append(el)


def _set_num(paragraph: Any, auto: tuple[str, int]) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    list_name, ilvl = auto
    p_pr = paragraph._p.get_or_add_pPr()
    num_pr = OxmlElement("w:numPr")
    lvl = OxmlElement("w:ilvl")
    lvl.set(qn("w:val"), str(ilvl))
    num_id = OxmlElement("w:numId")
    num_id.set(qn("w:val"), str(_LIST_NUM_IDS[list_name]))
    num_pr.append(lvl)
    num_pr.append(num_id)
    p_pr.append(num_pr)


def make_docx(
    path: Path, items: Sequence[DocxItem], *, title: str | None = None, author: str = "zhiku"
) -> Path:
    """A .docx from ``items`` (see the comment above), deterministic bytes."""
    import datetime as dt

    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = title or ""
    props.author = author
    props.comments = ""
    props.last_modified_by = author
    fixed = dt.datetime(2024, 1, 2, 9, 0, 0)
    props.created = fixed
    props.modified = fixed
    props.revision = 1
    installed = False
    for item in items:
        kind = item[0]
        auto = None
        if kind == "title":
            document.add_paragraph(item[1], style="Title")
            continue
        if kind == "heading":
            para = document.add_heading(item[2], level=item[1])
            auto = item[3] if len(item) > 3 else None
        elif kind == "para":
            para = document.add_paragraph(item[1])
            auto = item[2] if len(item) > 2 else None
        elif kind == "table":
            rows = item[1]
            table = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
            continue
        else:
            raise ValueError(f"unknown docx item {kind!r}")
        if auto is not None:
            if not installed:
                _install_numbering(document)
                installed = True
            _set_num(para, auto)
    document.save(str(path))
    normalize_zip(path)
    return path


# --- spreadsheets -------------------------------------------------------------------


def make_xlsx(
    path: Path,
    rows: Sequence[Sequence[Any]] | None = None,
    *,
    sheets: dict[str, Sequence[Sequence[Any]]] | None = None,
    title: str | None = None,
) -> Path:
    """An .xlsx with one sheet of ``rows`` or several ``sheets`` (name → rows).

    A cell value starting with ``=`` is written as a formula (openpyxl stores no cached
    value for it, as a file never opened in Excel would have)."""
    import datetime as dt

    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    content = sheets if sheets is not None else {"Sheet1": rows or []}
    for name, sheet_rows in content.items():
        ws = wb.create_sheet(name)
        for row in sheet_rows:
            ws.append(list(row))
    fixed = dt.datetime(2024, 1, 2, 9, 0, 0)
    wb.properties.creator = "zhiku"
    wb.properties.created = fixed
    wb.properties.modified = fixed
    if title:
        wb.properties.title = title
    wb.save(str(path))
    normalize_zip(path)
    return path


def set_cached_value(path: Path, formula: str, value: str, sheet: int = 1) -> Path:
    """Store ``value`` as the cached result of the cell whose formula is ``formula``
    (what Excel does on save; openpyxl itself writes formulas without results)."""
    name = f"xl/worksheets/sheet{sheet}.xml"
    with zipfile.ZipFile(path) as zin:
        entries = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for filename, data in entries:
            if filename == name:
                old = f"<f>{formula}</f><v></v>".encode()
                if old not in data:
                    raise ValueError(f"formula {formula!r} not found in {name}")
                data = data.replace(old, f"<f>{formula}</f><v>{value}</v>".encode())
            zout.writestr(zipfile.ZipInfo(filename, date_time=_FIXED_ZIP_TIME), data)
    return path


def make_csv(
    path: Path, rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


# --- text ---------------------------------------------------------------------------


def make_big5_txt(path: Path, text: str) -> Path:
    """Text encoded as Big5 (cp950, the Windows Traditional Chinese code page)."""
    path.write_bytes(text.replace("\n", "\r\n").encode("cp950"))
    return path


def make_utf16_txt(path: Path, text: str, *, bom: bool = True, big_endian: bool = False) -> Path:
    enc = "utf-16-be" if big_endian else "utf-16-le"
    data = text.encode(enc)
    if bom:
        data = (codecs.BOM_UTF16_BE if big_endian else codecs.BOM_UTF16_LE) + data
    path.write_bytes(data)
    return path


def make_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- zip normalisation ----------------------------------------------------------------

_FIXED_ZIP_TIME = (2024, 1, 2, 9, 0, 0)


def normalize_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed timestamps and dates so output is reproducible."""
    import re

    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    rb"\g<1>2024-01-02T09:00:00Z\g<3>",
                    data,
                )
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, data)
