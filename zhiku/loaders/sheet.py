"""Spreadsheets (``.xlsx``, ``.xlsm``) and delimited text (``.csv``, ``.tsv``).

Each data row is one ``table_row`` block 「欄A：值；欄B：值」 named by the header row;
a sheet whose header names a question and an answer column (問題/答案, Q/A,
question/answer…) gives one ``qa`` block per pair instead, labelled with the question.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zhiku import limits
from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import (
    cell_str,
    cell_text,
    clean_text,
    header_names,
    looks_like_header,
    qa_columns,
    qa_text,
    row_text,
    sensible_title,
    stem_title,
)
from zhiku.loaders.docx import check_ooxml_container
from zhiku.models import Block, LoadedDocument
from zhiku.textcodec import decode_bytes

_MAX_LEADING_CAPTION_ROWS = 5
_CORRUPT_XLSX = "Excel 檔案已損毀或不是有效的 .xlsx，無法開啟"


def rows_to_blocks(
    rows: Iterable[Sequence[str]], heading_path: tuple[str, ...] = ()
) -> list[Block]:
    """Blocks for one sheet's rows (already stringified; empty rows are skipped).

    Leading rows with a single filled cell (a sheet caption above the table) become
    ``para`` blocks; the first row with ≥ 2 filled cells is the header when it looks
    like one.
    """
    blocks: list[Block] = []
    headers: list[str] | None = None
    qa: tuple[int, int] | None = None
    seen_table = False
    for raw in rows:
        cells = [c.strip() for c in raw]
        while cells and not cells[-1]:
            cells.pop()
        filled = [c for c in cells if c]
        if not filled:
            continue
        if not seen_table:
            if len(filled) == 1 and len(blocks) < _MAX_LEADING_CAPTION_ROWS:
                blocks.append(Block(filled[0], heading_path, None, kind="para"))
                continue
            seen_table = True
            if looks_like_header(cells):
                headers = header_names(cells)
                qa = qa_columns(headers)
                continue
        if qa is not None:
            qi, ai = qa
            question = cells[qi] if qi < len(cells) else ""
            answer = cells[ai] if ai < len(cells) else ""
            if question and answer:
                text = qa_text(question, answer)
                names = headers or []
                for i, c in enumerate(cells):
                    if c and i not in qa and i < len(names):
                        text += f"\n{names[i]}：{c}"
                blocks.append(Block(text, heading_path, question, kind="qa"))
                continue
        text = row_text(headers, cells)
        if text:
            blocks.append(Block(text, heading_path, None, kind="table_row"))
    return blocks


def _xlsx_rows(ws: Any) -> Iterable[list[str]]:
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # stored dimensions are often wrong in non-Excel files
    count = limits.budget().rows
    for row in ws.iter_rows(values_only=True):
        cells = [cell_str(v) for v in row]
        if any(cells):
            count(1)
        yield cells


@register(".xlsx", ".xlsm")
def load_xlsx(path: Path) -> LoadedDocument:
    import openpyxl

    check_ooxml_container(path, "Excel")
    try:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # zipfile, InvalidFileException, KeyError, lxml internals…
        raise LoadError(str(path), "corrupt", _CORRUPT_XLSX) from exc
    try:
        # Hidden sheets usually hold lookup data, not content: skipped.
        sheets = [ws for ws in wb.worksheets if getattr(ws, "sheet_state", "visible") == "visible"]
        multi = len(sheets) > 1
        blocks: list[Block] = []
        names: list[str] = []
        for ws in sheets:
            names.append(ws.title)
            blocks.extend(rows_to_blocks(_xlsx_rows(ws), (ws.title,) if multi else ()))
        props = wb.properties
        title = sensible_title(props.title) or stem_title(path)
        meta: dict[str, object] = {"sheets": names}
        if props.creator and props.creator != "openpyxl":
            meta["author"] = props.creator
    finally:
        wb.close()
    return LoadedDocument(title=title, kind="xlsx", blocks=blocks, meta=meta)


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    sample = "\n".join(text.split("\n", 50)[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in ",\t;|"}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


@register(".csv", ".tsv")
def load_csv(path: Path) -> LoadedDocument:
    text, encoding = decode_bytes(path.read_bytes(), path)
    text = clean_text(text)
    delimiter = _sniff_delimiter(text, path.suffix.lower())
    try:
        count = limits.budget().rows
        rows = []
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if any(row):
                count(1)
            rows.append(row)
    except csv.Error as exc:
        raise LoadError(str(path), "corrupt", f"CSV 格式錯誤：{exc}") from exc
    blocks = rows_to_blocks([cell_text(c) for c in row] for row in rows)
    meta: dict[str, object] = {"encoding": encoding, "delimiter": delimiter}
    return LoadedDocument(title=stem_title(path), kind="csv", blocks=blocks, meta=meta)
