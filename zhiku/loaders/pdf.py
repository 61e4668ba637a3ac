"""PDF loader (pypdfium2): text per page, running headers/footers dropped, clauses kept
whole across page breaks.

Line geometry (left/right edge of each text line, from pdfium's char boxes) tells the
segmenter whether a line was wrapped at the margin, ended short (paragraph end) or is
indented; when pdfium's text and char lists disagree we fall back to character widths.

Pages without a text layer that carry an image (scanned pages) are rendered at
:data:`zhiku.ocr.OCR_DPI` and read by OCR (:mod:`zhiku.ocr`); pages with text are never
OCR'd, so a mixed PDF costs OCR only for its scanned pages. OCR'd lines keep their boxes
(converted to PDF points) so the same segmenter finds paragraphs and clauses.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from zhiku import limits, ocr
from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import clean_text, display_width, sensible_title, stem_title
from zhiku.loaders._segment import Line, is_heading_ish, segment
from zhiku.models import LoadedDocument

_EDGE_LINES = 2  # how many lines at the top and bottom of a page may be header/footer
_CN = "零〇一二三四五六七八九十百"
_PAGE_NUMBER_RES = [
    re.compile(r"^[-–—~·•\s]*\d{1,4}[-–—~·•\s]*$"),
    re.compile(rf"^第\s*[\d{_CN}]+\s*頁\s*(?:[/／,，、\s]\s*共\s*[\d{_CN}]+\s*頁)?$"),
    re.compile(rf"^共\s*[\d{_CN}]+\s*頁\s*[,，、/／\s]?\s*第\s*[\d{_CN}]+\s*頁$"),
    re.compile(r"^(?:頁\s*[:：]?\s*)?\d{1,4}\s*[/／]\s*\d{1,4}$"),
    re.compile(r"^(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE),
]


_PLACEHOLDER_META = {"anonymous", "unspecified", "untitled", "unknown", "none"}


@dataclass(slots=True)
class _PLine:
    text: str
    page: int
    geo: bool = False  # left/right/em are known (pdfium char boxes)
    left: float = 0.0
    right: float = 0.0
    em: float = 0.0


def _is_page_number(text: str) -> bool:
    return any(p.match(text) for p in _PAGE_NUMBER_RES)


def _page_lines(page: pdfium.PdfPage, pageno: int) -> list[_PLine]:
    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        if n <= 0:
            return []
        text = textpage.get_text_range(0, n)
        geometry = len(text) == n
        if not geometry:
            text = textpage.get_text_bounded()
        out: list[_PLine] = []
        start = 0
        for m in re.finditer(r"\r\n|\r|\n|$", text):
            end = m.start()
            seg = text[start:end]
            s_off = start
            start = m.end()
            stripped = seg.strip()
            if not stripped:
                if m.end() >= len(text):
                    break
                continue
            line = _PLine(clean_text(stripped).strip(), pageno)
            if geometry:
                first = s_off + (len(seg) - len(seg.lstrip()))
                last = s_off + len(seg.rstrip()) - 1
                lft = textpage.get_charbox(first)[0]
                rgt = textpage.get_charbox(last)[2]
                width = display_width(stripped)
                if rgt > lft and width:
                    line.geo = True
                    line.left, line.right = lft, rgt
                    line.em = 2 * (rgt - lft) / width
            if line.text:
                out.append(line)
            if m.end() >= len(text):
                break
        return out
    finally:
        textpage.close()


def ocr_lines(page: ocr.OcrPage, pageno: int, scale: float = 1.0) -> list[_PLine]:
    """OCR lines as :class:`_PLine` with geometry in the page's units (pixels / ``scale``)."""
    out: list[_PLine] = []
    for ln in page.lines:
        text = clean_text(ln.text).strip()
        if not text:
            continue
        em = (ln.bottom - ln.top) / scale
        out.append(_PLine(text, pageno, em > 0, ln.left / scale, ln.right / scale, em))
    return out


def _has_image(page: pdfium.PdfPage) -> bool:
    for _obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        return True
    return False


def _edge_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _drop_running_lines(pages: list[list[_PLine]]) -> list[list[_PLine]]:
    """Remove page numbers at page edges and lines that repeat at the edges of most pages."""
    counts: Counter[str] = Counter()
    for lines in pages:
        edge = lines[:_EDGE_LINES] + lines[-_EDGE_LINES:] if len(lines) > 1 else lines
        counts.update({_edge_key(ln.text) for ln in edge})
    n_pages = sum(1 for lines in pages if lines)
    threshold = max(2, (n_pages + 1) // 2)
    repeated = {k for k, c in counts.items() if n_pages >= 2 and c >= threshold}
    out: list[list[_PLine]] = []
    for lines in pages:
        keep: list[_PLine] = []
        n = len(lines)
        for i, ln in enumerate(lines):
            at_edge = i < _EDGE_LINES or i >= n - _EDGE_LINES
            if at_edge and (_is_page_number(ln.text) or _edge_key(ln.text) in repeated):
                continue
            keep.append(ln)
        out.append(keep)
    return out


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[int(q * (len(values) - 1))]


def _to_lines(pages: list[list[_PLine]]) -> list[Line]:
    """Classify each line as short / full / indented using geometry when available."""
    all_geo = [ln for lines in pages for ln in lines if ln.geo]
    doc_right = _percentile([ln.right for ln in all_geo], 0.9) if all_geo else 0.0
    doc_left = _percentile([ln.left for ln in all_geo], 0.1) if all_geo else 0.0
    widths = [display_width(ln.text) for lines in pages for ln in lines]
    full_w = _percentile([float(w) for w in widths], 0.9) if widths else 0.0
    out: list[Line] = []
    for lines in pages:
        geo = [ln for ln in lines if ln.geo]
        if len(geo) >= 8:
            right = _percentile([ln.right for ln in geo], 0.9)
            left = _percentile([ln.left for ln in geo], 0.1)
        else:
            right, left = doc_right, doc_left
        ems = [ln.em for ln in geo if ln.em]
        em = _percentile(ems, 0.5) if ems else 0.0
        prev_left = left
        for ln in lines:
            if ln.geo and em > 0:
                short = ln.right < right - 2 * em
                full = ln.right >= right - 1.2 * em
                # First-line indent: further right than the line before (the segmenter
                # ignores it under a clause's first line, where it is a hanging indent).
                indent = ln.left > prev_left + 1.0 * em
                prev_left = ln.left
            else:
                w = display_width(ln.text)
                short = w < 0.8 * full_w
                full = w >= 0.93 * full_w
                indent = False
            out.append(Line(ln.text, ln.page, False, short, full, indent))
    return out


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise LoadError(str(path), "encrypted", "PDF 已加密，無法讀取") from exc
        raise LoadError(str(path), "corrupt", "PDF 檔案已損毀或格式不正確，無法開啟") from exc


def _ocr_pages(
    pdf: pdfium.PdfDocument, path: Path, scanned: list[int], raw_pages: list[list[_PLine]]
) -> dict[str, object]:
    reader = ocr.PageReader(path, len(scanned))
    results: dict[int, ocr.OcrPage] = {}
    for i in scanned:
        page = pdf[i]
        try:
            w, h = page.get_size()
            # 300 dpi, or less for a page so large (a poster, an A0 plan) that 300 dpi
            # would pass the pixel limit.
            scale = min(ocr.OCR_DPI / 72, (ocr.MAX_PIXELS / max(w * h, 1.0)) ** 0.5 * 0.99)

            def render(page: pdfium.PdfPage = page, scale: float = scale) -> object:
                return page.render(scale=scale, grayscale=True).to_pil()

            result = reader.read(i + 1, render)  # type: ignore[arg-type]
        finally:
            page.close()
        results[i + 1] = result
        raw_pages[i] = ocr_lines(result, i + 1, scale)
    return ocr.page_meta(results, reader.engine.name)


@register(".pdf")
def load_pdf(path: Path) -> LoadedDocument:
    pdf = _open(path)
    meta: dict[str, object] = {}
    try:
        n_pages = len(pdf)
        limits.budget().pages(n_pages)
        raw_pages: list[list[_PLine]] = []
        bad_pages: list[int] = []
        scanned: list[int] = []  # 0-based pages without text but with an image
        for i in range(n_pages):
            try:
                page = pdf[i]
            except pdfium.PdfiumError:
                bad_pages.append(i + 1)
                raw_pages.append([])
                continue
            try:
                page_lines = _page_lines(page, i + 1)
                if not page_lines and _has_image(page):
                    scanned.append(i)
                raw_pages.append(page_lines)
            finally:
                page.close()
        if scanned:
            meta["ocr"] = _ocr_pages(pdf, path, scanned, raw_pages)
        try:
            info = pdf.get_metadata_dict(skip_empty=True)
        except pdfium.PdfiumError:
            info = {}
    finally:
        pdf.close()
    if bad_pages:
        meta["unreadable_pages"] = bad_pages
    for key in ("Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate"):
        value = (info.get(key) or "").strip()
        if value and value.lower() not in _PLACEHOLDER_META:
            meta[key.lower()] = value
    pages = _drop_running_lines(raw_pages)
    lines = _to_lines(pages)
    title = sensible_title(info.get("Title"))
    title_line = False
    if lines and lines[0].page == 1 and not lines[0].full and is_heading_ish(lines[0].text):
        title_line = True
        title = title or lines[0].text
    blocks = segment(lines, wrapped=True, title_line=title_line)
    if not any(b.text.strip() for b in blocks):
        meta["no_text_layer"] = True
    return LoadedDocument(
        title=title or stem_title(path), kind="pdf", blocks=blocks, meta=meta, pages=n_pages
    )
