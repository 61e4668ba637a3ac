"""Plain dataclasses that flow between zhiku's layers (see docs/developers/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Block:
    """A structural unit produced by a loader: a paragraph, a table row, a Q/A pair.

    ``heading_path`` is the chain of headings above the block (outermost first).
    ``label`` is the clause label the block opens with (``4.3``, ``第七條``, a FAQ
    question), when there is one. Pages are 1-based and ``None`` for formats that
    have no pages.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    label: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    kind: str = "para"  # para | heading | table_row | qa | message

    def __post_init__(self) -> None:
        if self.page_end is None:
            self.page_end = self.page_start


@dataclass(slots=True)
class ChildFile:
    """A file inside another one (an e-mail attachment, a ZIP member), ingested as a
    document of its own that cites its parent. ``error`` is ``(reason, message)`` when
    the container refused it (too large, a bomb…); then ``data`` is empty."""

    name: str
    data: bytes = b""
    error: tuple[str, str] | None = None


@dataclass(slots=True)
class LoadedDocument:
    """What a loader returns for one file."""

    title: str
    kind: str  # pdf | docx | xlsx | csv | markdown | html | txt | chat | eml | zip | …
    blocks: list[Block]
    meta: dict[str, Any] = field(default_factory=dict)
    pages: int | None = None
    children: list[ChildFile] = field(default_factory=list)


@dataclass(slots=True)
class Chunk:
    """The unit of retrieval, with everything needed to cite it."""

    text: str
    section: str | None = None
    label: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    char_start: int = 0
    char_end: int = 0
    ord: int = 0
    id: int | None = None
    doc_id: int | None = None


@dataclass(slots=True)
class Document:
    """A stored source document."""

    id: int
    kb: str
    path: str
    title: str
    kind: str
    content_hash: str
    size: int
    chunks: int
    added_at: str
    updated_at: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Hit:
    """A chunk with its score for one query, joined with its document."""

    chunk_id: int
    doc_id: int
    kb: str
    doc_title: str
    path: str
    text: str
    section: str | None
    label: str | None
    page_start: int | None
    page_end: int | None
    score: float
    ord: int = 0
    scores: dict[str, float] = field(default_factory=dict)

    def citation(self, text: str | None = None) -> dict[str, Any]:
        """The stable JSON citation shape used by ``ask --json`` and ``search --json``."""
        return {
            "doc": self.doc_title,
            "path": self.path,
            "section": self.section,
            "page": self.page_start,
            "text": self.text if text is None else text,
            "score": round(float(self.score), 6),
        }


@dataclass(slots=True)
class Citation:
    """A hit narrowed to the sentence(s) an answer used."""

    hit: Hit
    text: str

    def to_dict(self) -> dict[str, Any]:
        return self.hit.citation(self.text)


@dataclass(slots=True)
class Answer:
    text: str
    citations: list[Citation]
    refused: bool = False
    mode: str = "extractive"
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
        }
