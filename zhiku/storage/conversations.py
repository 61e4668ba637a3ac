"""Conversations, their turns (question + stored answer) and feedback on answers.

:class:`ConversationsRepository` is what the server's asking path and its conversation
and feedback routes need (:mod:`zhiku.server.answering`, :mod:`zhiku.server.routes.ask`,
:mod:`zhiku.server.routes.admin`); :class:`SqlConversations` implements it in the
portable SQL of :mod:`zhiku.storage` over the ``conversations``, ``messages`` and
``feedback`` tables (component ``core``, channel columns from ``channels``).

A turn's answer is stored as JSON text ``{"answer": …, "sources": …}`` and comes back
parsed. Visibility ("only the caller's own conversations in KBs it can read now") is
part of each query, given as the user id and the readable KB names.

The service loop's own reads of conversations live in :mod:`zhiku.storage.loop`, a
channel's in :mod:`zhiku.storage.channels`, retention and subject requests in
:mod:`zhiku.storage.access`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zhiku.storage.db import Database


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    kb_id: int
    kb: str
    title: str
    created_at: str
    updated_at: str
    channel: str | None


@dataclass(frozen=True, slots=True)
class Turn:
    """One recorded turn with its parsed stored answer and the feedback on it, if any."""

    id: str
    question: str
    stored: dict[str, Any]
    created_at: str
    rating: int | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    answer_id: str
    kb: str
    user: str | None
    rating: int
    comment: str
    question: str
    stored: dict[str, Any]
    created_at: str


class ConversationsRepository(Protocol):
    def create(
        self,
        conversation_id: str,
        user_id: int,
        kb_id: int,
        title: str,
        at: str,
        channel: str = "api",
        channel_ref: str | None = None,
    ) -> None: ...
    def add_turn(
        self,
        conversation_id: str,
        message_id: str,
        question: str,
        stored: dict[str, Any],
        refused: bool,
        at: str,
    ) -> int: ...
    def readable(
        self, conversation_id: str, user_id: int, kbs: Sequence[str]
    ) -> ConversationRecord | None: ...
    def of_user(self, user_id: int, kbs: Sequence[str], limit: int) -> list[ConversationRecord]: ...
    def recent_turns(self, conversation_id: str, limit: int) -> list[Turn]: ...
    def turns(self, conversation_id: str) -> list[Turn]: ...
    def delete(self, conversation_id: str, user_id: int) -> bool: ...
    def own_answer(
        self, answer_id: str, user_id: int, kbs: Sequence[str]
    ) -> tuple[str, str] | None: ...
    def set_feedback(
        self, answer_id: str, user_id: int, rating: int, comment: str, at: str
    ) -> None: ...
    def feedback(
        self, kb: str | None = None, rating: int | None = None, limit: int = 200
    ) -> list[FeedbackEntry]: ...


def _marks(values: Sequence[object]) -> str:
    # No names: ``IN (NULL)`` matches nothing on both engines.
    return ",".join("?" * len(values)) or "NULL"


def _conversation(row: Any) -> ConversationRecord:
    return ConversationRecord(
        id=row["id"],
        kb_id=int(row["kb_id"]),
        kb=row["kb"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        channel=row["channel"],
    )


_CONV_SELECT = (
    "SELECT c.id, c.kb_id, k.name AS kb, c.title, c.created_at, c.updated_at, "
    "c.channel FROM conversations c JOIN kbs k ON k.id=c.kb_id WHERE c.user_id=? "
)


class SqlConversations:
    """:class:`ConversationsRepository` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        conversation_id: str,
        user_id: int,
        kb_id: int,
        title: str,
        at: str,
        channel: str = "api",
        channel_ref: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO conversations(id, user_id, kb_id, title, created_at, updated_at, "
            "channel, channel_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, user_id, kb_id, title, at, at, channel, channel_ref),
        )

    def add_turn(
        self,
        conversation_id: str,
        message_id: str,
        question: str,
        stored: dict[str, Any],
        refused: bool,
        at: str,
    ) -> int:
        """Append a turn (the next ``seq``) and mark the conversation active; the seq.

        Turns of one conversation are numbered one at a time: SQLite's immediate
        transaction holds the one writer lock; on PostgreSQL, where several nodes write
        at once, the conversation's row is locked first (``FOR UPDATE``).
        """
        with self.db.tx(immediate=True):
            if self.db.dialect == "postgresql":
                self.db.execute(
                    "SELECT id FROM conversations WHERE id=? FOR UPDATE", (conversation_id,)
                )
            seq = int(
                self.db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id=?",
                    (conversation_id,),
                ).fetchone()[0]
            )
            self.db.execute(
                "INSERT INTO messages(id, conversation_id, seq, question, answer, refused, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    conversation_id,
                    seq,
                    question,
                    json.dumps(stored, ensure_ascii=False),
                    int(refused),
                    at,
                ),
            )
            self.db.execute(
                "UPDATE conversations SET updated_at=? WHERE id=?", (at, conversation_id)
            )
        return seq

    def readable(
        self, conversation_id: str, user_id: int, kbs: Sequence[str]
    ) -> ConversationRecord | None:
        """The user's conversation if it is in one of ``kbs`` (the KBs it can read now)."""
        row = self.db.execute(
            _CONV_SELECT + f"AND c.id=? AND k.name IN ({_marks(kbs)})",
            (user_id, conversation_id, *kbs),
        ).fetchone()
        return None if row is None else _conversation(row)

    def of_user(self, user_id: int, kbs: Sequence[str], limit: int) -> list[ConversationRecord]:
        """The user's conversations in ``kbs``, last active first (ties: newest first)."""
        # Ties on updated_at (same second): the later-created first. SQLite has the
        # insertion order in rowid; PostgreSQL has no such column, created_at then id.
        tie = "c.rowid DESC" if self.db.dialect == "sqlite" else "c.created_at DESC, c.id DESC"
        rows = self.db.execute(
            _CONV_SELECT + f"AND k.name IN ({_marks(kbs)}) "
            f"ORDER BY c.updated_at DESC, {tie} LIMIT ?",
            (user_id, *kbs, limit),
        ).fetchall()
        return [_conversation(r) for r in rows]

    def recent_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        """The last ``limit`` turns, newest first (without feedback)."""
        return [
            Turn(
                id=r["id"],
                question=r["question"],
                stored=json.loads(r["answer"]),
                created_at=r["created_at"],
            )
            for r in self.db.execute(
                "SELECT id, question, answer, created_at FROM messages "
                "WHERE conversation_id=? ORDER BY seq DESC LIMIT ?",
                (conversation_id, limit),
            )
        ]

    def turns(self, conversation_id: str) -> list[Turn]:
        """Every turn in order, with its feedback."""
        return [
            Turn(
                id=r["id"],
                question=r["question"],
                stored=json.loads(r["answer"]),
                created_at=r["created_at"],
                rating=None if r["rating"] is None else int(r["rating"]),
                comment=r["comment"],
            )
            for r in self.db.execute(
                "SELECT m.id, m.question, m.answer, m.created_at, f.rating, f.comment "
                "FROM messages m LEFT JOIN feedback f ON f.answer_id=m.id "
                "WHERE m.conversation_id=? ORDER BY m.seq",
                (conversation_id,),
            )
        ]

    def delete(self, conversation_id: str, user_id: int) -> bool:
        """Delete a user's conversation (its turns and feedback cascade)."""
        return (
            self.db.execute(
                "DELETE FROM conversations WHERE id=? AND user_id=?", (conversation_id, user_id)
            ).rowcount
            > 0
        )

    def own_answer(
        self, answer_id: str, user_id: int, kbs: Sequence[str]
    ) -> tuple[str, str] | None:
        """(KB name, question) of an answer in the user's own conversation in ``kbs``."""
        row = self.db.execute(
            "SELECT k.name, m.question FROM messages m "
            "JOIN conversations c ON c.id=m.conversation_id JOIN kbs k ON k.id=c.kb_id "
            f"WHERE m.id=? AND c.user_id=? AND k.name IN ({_marks(kbs)})",
            (answer_id, user_id, *kbs),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def set_feedback(
        self, answer_id: str, user_id: int, rating: int, comment: str, at: str
    ) -> None:
        """Rate an answer; the last rating wins."""
        self.db.execute(
            "INSERT INTO feedback(answer_id, user_id, rating, comment, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(answer_id) DO UPDATE SET "
            "rating=excluded.rating, comment=excluded.comment, created_at=excluded.created_at",
            (answer_id, user_id, rating, comment, at),
        )

    def feedback(
        self, kb: str | None = None, rating: int | None = None, limit: int = 200
    ) -> list[FeedbackEntry]:
        """Rated answers, newest rating first, optionally of one KB or one rating."""
        sql = (
            "SELECT f.answer_id, f.rating, f.comment, f.created_at, m.question, m.answer, "
            "k.name AS kb, u.name AS owner FROM feedback f "
            "JOIN messages m ON m.id=f.answer_id "
            "JOIN conversations c ON c.id=m.conversation_id "
            "JOIN kbs k ON k.id=c.kb_id LEFT JOIN users u ON u.id=f.user_id WHERE 1=1 "
        )
        args: list[Any] = []
        if kb:
            sql += "AND k.name=? "
            args.append(kb)
        if rating is not None:
            sql += "AND f.rating=? "
            args.append(rating)
        sql += "ORDER BY f.created_at DESC LIMIT ?"
        args.append(limit)
        return [
            FeedbackEntry(
                answer_id=r["answer_id"],
                kb=r["kb"],
                user=r["owner"],
                rating=int(r["rating"]),
                comment=r["comment"],
                question=r["question"],
                stored=json.loads(r["answer"]),
                created_at=r["created_at"],
            )
            for r in self.db.execute(sql, args)
        ]
