"""Structure-aware chunking: loader blocks → citable chunks.

Rules:
- a chunk never spans two sections (heading paths) or two pages' worth of unrelated
  clauses: a block that opens with a clause label starts a new chunk;
- Q/A pairs and table rows are chunks of their own (a record is cited alone);
- consecutive unlabeled paragraphs of one section are merged up to ``target`` chars;
- a block longer than ``max_chars`` is split at sentence boundaries, and every piece
  keeps the block's label and section, so a clause is never separated from its label.
"""

from __future__ import annotations

import re

from zhiku import text as ztext
from zhiku.models import Block, Chunk

BLOCK_SEP = "\n\n"


def _label_of(block: Block) -> str | None:
    if block.label:
        return block.label
    if block.kind in ("para", "table_row"):
        return ztext.detect_label(block.text)
    return None


def _split_long(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Spans of ``text`` no longer than ``max_chars``, cut at sentence ends when possible."""
    spans: list[tuple[int, int]] = []
    start = 0
    cur_end = 0
    for s, e in ztext.sentence_spans(text):
        if e - start > max_chars and cur_end > start:
            spans.append((start, cur_end))
            start = s
        while e - start > max_chars:  # one sentence longer than max_chars: hard cut
            spans.append((start, start + max_chars))
            start += max_chars
        cur_end = e
    if cur_end > start:
        spans.append((start, cur_end))
    return spans


_MINOR_LABEL = re.compile(r"^(?:[（(][^）)]{1,4}[）)]|[零〇一二三四五六七八九十百]{1,4}|\d{1,3})$")


def is_minor_label(label: str) -> bool:
    """Sub-item labels (一、 （三） (2) 3.) belong to the clause they are listed under."""
    return _MINOR_LABEL.match(label) is not None


def chunk_blocks(
    blocks: list[Block], target: int = 350, max_chars: int = 700
) -> tuple[list[Chunk], str]:
    """Chunks of a document and the document's full text (offsets refer to it)."""
    chunks: list[Chunk] = []
    full_parts: list[str] = []
    pos = 0
    cur: Chunk | None = None
    cur_heads: tuple[str, ...] | None = None
    clause: str | None = None  # the last major label under the current headings

    def flush() -> None:
        nonlocal cur
        if cur is not None and cur.text.strip():
            cur.ord = len(chunks)
            chunks.append(cur)
        cur = None

    for block in blocks:
        body = block.text.strip()
        if not body:
            continue
        if full_parts:
            pos += len(BLOCK_SEP)
        b_start = pos
        full_parts.append(body)
        pos += len(body)
        if block.kind == "heading":
            # Headings live on in the heading path of what follows.
            flush()
            clause = None
            continue
        if block.heading_path != cur_heads:
            clause = None
        label = _label_of(block)
        minor = label is not None and is_minor_label(label)
        if label is not None and not minor:
            clause = label
        standalone = block.kind in ("qa", "table_row") or len(body) > max_chars
        same_clause = cur is not None and label is not None and (minor or label == cur.label)
        if (
            cur is not None
            and not standalone
            and block.heading_path == cur_heads
            and (label is None or same_clause)
            and len(cur.text) + len(BLOCK_SEP) + len(body) <= (max_chars if same_clause else target)
        ):
            cur.text += BLOCK_SEP + body
            cur.char_end = b_start + len(body)
            if block.page_end is not None:
                cur.page_end = block.page_end
            continue
        flush()
        cur_heads = block.heading_path
        if minor and clause is not None:
            label = clause  # a sub-item cut off by size still cites its clause
        section = ztext.section_string(block.heading_path, label)
        if len(body) > max_chars:
            for s, e in _split_long(body, max_chars):
                piece = body[s:e].strip()
                if not piece:
                    continue
                chunks.append(
                    Chunk(
                        text=piece,
                        section=section,
                        label=label,
                        page_start=block.page_start,
                        page_end=block.page_end,
                        char_start=b_start + s,
                        char_end=b_start + e,
                        ord=len(chunks),
                    )
                )
            continue
        cur = Chunk(
            text=body,
            section=section,
            label=label,
            page_start=block.page_start,
            page_end=block.page_end,
            char_start=b_start,
            char_end=b_start + len(body),
        )
        if standalone:
            flush()
    flush()
    return chunks, BLOCK_SEP.join(full_parts)
