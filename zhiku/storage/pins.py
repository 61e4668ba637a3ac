"""Pinned passages: the repository behind :mod:`zhiku.loop.pins` (component ``pins``,
see :mod:`zhiku.storage.migrations.pins`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso


@dataclass(frozen=True, slots=True)
class Pin:
    id: int
    kb_id: int
    kb: str
    chunk_id: int
    doc_id: int
    question: str
    qkeys: tuple[str, ...]
    source_messages: tuple[str, ...]
    author: str
    created_at: str


class PinRepository(Protocol):
    """What pinning needs from storage."""

    def add(
        self,
        kb_id: int,
        chunk_id: int,
        question: str,
        qkeys: Sequence[str],
        source_messages: Sequence[str],
        author: str,
    ) -> int: ...
    def get(self, pin_id: int) -> Pin | None: ...
    def of_kbs(self, kb_ids: Sequence[int]) -> list[Pin]: ...
    def remove(self, pin_id: int) -> bool: ...
    def chunk_in_kb(self, chunk_id: int, kb_id: int) -> int | None: ...


_SELECT = (
    "SELECT p.id, p.kb_id, k.name, p.chunk_id, p.doc_id, p.question, p.qkeys, "
    "p.source_messages, p.author, p.created_at FROM pinned_passages p "
    "JOIN kbs k ON k.id=p.kb_id "
)


def _pin(r: Any) -> Pin:
    return Pin(
        int(r[0]),
        int(r[1]),
        str(r[2]),
        int(r[3]),
        int(r[4]),
        str(r[5]),
        tuple(json.loads(r[6])),
        tuple(json.loads(r[7])),
        str(r[8]),
        str(r[9]),
    )


class SqlPins:
    """:class:`PinRepository` on a :class:`~zhiku.storage.db.Database` (SQLite or
    PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def chunk_in_kb(self, chunk_id: int, kb_id: int) -> int | None:
        """The document of passage ``chunk_id`` when it is in KB ``kb_id``."""
        row = self.db.execute(
            "SELECT c.doc_id FROM chunks c JOIN documents d ON d.id=c.doc_id "
            "WHERE c.id=? AND d.kb_id=?",
            (chunk_id, kb_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def add(
        self,
        kb_id: int,
        chunk_id: int,
        question: str,
        qkeys: Sequence[str],
        source_messages: Sequence[str],
        author: str,
    ) -> int:
        with self.db.tx():
            doc_id = self.chunk_in_kb(chunk_id, kb_id)
            if doc_id is None:
                raise KeyError(chunk_id)
            keys = list(dict.fromkeys(k for k in qkeys if k))
            # One pin per question: a new pin for the same question replaces the old.
            for old in self.of_kbs([kb_id]):
                if set(old.qkeys) & set(keys):
                    self.db.execute("DELETE FROM pinned_passages WHERE id=?", (old.id,))
            row = self.db.execute(
                "INSERT INTO pinned_passages(kb_id, chunk_id, doc_id, question, qkeys, "
                "source_messages, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (
                    kb_id,
                    chunk_id,
                    doc_id,
                    question,
                    json.dumps(keys, ensure_ascii=False),
                    json.dumps(list(dict.fromkeys(source_messages))),
                    author,
                    now_iso(),
                ),
            ).fetchone()
            return int(row[0])

    def get(self, pin_id: int) -> Pin | None:
        row = self.db.execute(_SELECT + "WHERE p.id=?", (pin_id,)).fetchone()
        return None if row is None else _pin(row)

    def of_kbs(self, kb_ids: Sequence[int]) -> list[Pin]:
        if not kb_ids:
            return []
        marks = ",".join("?" * len(kb_ids))
        return [
            _pin(r)
            for r in self.db.execute(
                _SELECT + f"WHERE p.kb_id IN ({marks}) ORDER BY p.id", tuple(kb_ids)
            )
        ]

    def remove(self, pin_id: int) -> bool:
        return self.db.execute("DELETE FROM pinned_passages WHERE id=?", (pin_id,)).rowcount > 0
