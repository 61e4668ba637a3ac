"""PowerPoint (``.pptx``) through python-pptx: slide number = page, slide title = section.

Shapes are read in reading order (top to bottom, then left to right), groups
recursively; tables give one record per row through the sheet loader's row logic;
speaker notes are kept as a block 「備註：…」 after the slide's text. Hidden slides are
skipped. The container is checked first (:func:`zhiku.loaders._zip.check_container`);
a password-protected deck is an OLE file and reported as encrypted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import cell_text, clean_text, sensible_title, squash_spaces, stem_title
from zhiku.loaders._zip import check_container
from zhiku.loaders.docx import check_ooxml_container
from zhiku.loaders.sheet import rows_to_blocks
from zhiku.models import Block, LoadedDocument
from zhiku.text import detect_label

_CORRUPT = "PowerPoint 檔案已損毀或不是有效的 .pptx，無法開啟"


def _clean(text: str) -> str:
    text = clean_text(text).replace("\x0b", "\n")
    return "\n".join(s for s in (squash_spaces(ln) for ln in text.split("\n")) if s)


def _shapes(shapes: Any) -> Iterator[Any]:
    def key(s: Any) -> tuple[int, int]:
        return (s.top or 0, s.left or 0)

    for shape in sorted(shapes, key=key):
        if getattr(shape, "shape_type", None) == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _slide_blocks(slide: Any, no: int) -> list[Block]:
    title_shape = slide.shapes.title
    title = _clean(title_shape.text_frame.text) if title_shape is not None else ""
    section = title.replace("\n", " ")
    heads: tuple[str, ...] = (section,) if section else ()
    blocks: list[Block] = []
    if section:
        blocks.append(Block(section, heads, None, no, kind="heading"))
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell_text(c.text) for c in row.cells] for row in shape.table.rows]
            for b in rows_to_blocks(rows, heads):
                b.page_start = b.page_end = no
                blocks.append(b)
            continue
        if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
            continue
        for para in shape.text_frame.paragraphs:
            text = _clean("".join(r.text for r in para.runs) or para.text)
            if text:
                blocks.append(Block(text, heads, detect_label(text), no, kind="para"))
    if slide.has_notes_slide:
        notes = _clean(
            slide.notes_slide.notes_text_frame.text
            if slide.notes_slide.notes_text_frame is not None
            else ""
        )
        if notes:
            blocks.append(Block("備註：" + notes, heads, None, no, kind="para"))
    return blocks


@register(".pptx", ".pptm")
def load_pptx(path: Path) -> LoadedDocument:
    import pptx

    check_ooxml_container(path, "PowerPoint")
    check_container(path, "PowerPoint")
    try:
        deck = pptx.Presentation(str(path))
    except Exception as exc:  # python-pptx raises zip, KeyError, lxml and its own errors
        raise LoadError(str(path), "corrupt", _CORRUPT) from exc
    blocks: list[Block] = []
    n = 0
    first_title: str | None = None
    for no, slide in enumerate(deck.slides, start=1):
        n = no
        if slide.element.get("show") == "0":
            continue
        slide_blocks = _slide_blocks(slide, no)
        if first_title is None and slide_blocks and slide_blocks[0].kind == "heading":
            first_title = slide_blocks[0].text
        blocks.extend(slide_blocks)
    props = deck.core_properties
    meta: dict[str, object] = {"slides": n}
    if props.author and props.author != "python-pptx":
        meta["author"] = props.author
    if props.subject:
        meta["subject"] = props.subject
    title = sensible_title(props.title) or first_title or stem_title(path)
    return LoadedDocument(title=title, kind="pptx", blocks=blocks, meta=meta, pages=n)
