"""The service loop's repository: departments, hand-off cases, answer records, curated
entries, and the aggregates of the analytics report.

Every aggregate is one SQL statement over an indexed ``(kb_id, created_at)`` range, so a
report over 100k recorded answers reads indexes, not Python loops. Times are ISO-8601
UTC TEXT (:func:`~zhiku.storage.db.now_iso`), which sort and compare as strings on both
engines; the only non-portable expression (seconds between two ISO times) branches on
``db.dialect``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from zhiku.storage.db import Database, now_iso

if TYPE_CHECKING:
    from zhiku.filters import Filter


CASE_STATUSES = ("open", "resolved")
CASE_REASONS = ("asked", "refused", "feedback")
OUTCOMES = ("answered", "refused", "handoff")


def precise_now() -> str:
    """ISO-8601 UTC with microseconds: answers and curated entries are ordered by it
    (a question asked in the same second as a curation is still before or after it)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


# The citations of answers chosen by their ``answer_stats`` row (``s``): SQLite reads the
# answers first (CROSS JOIN) and each one's citations by primary key (the unary ``+``
# keeps it off the (kb_id, doc_id) index); PostgreSQL plans the same join freely.
_ANSWER_CITATIONS = "answer_stats s CROSS JOIN answer_citations c"
_CITES_OF_S = "c.message_id=s.message_id AND +c.kb_id=s.kb_id AND +c.doc_id IS NOT NULL"


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


def _seconds(db: Database, later: str, earlier: str) -> str:
    """SQL for the seconds between two ISO-8601 TEXT columns."""
    if db.dialect == "sqlite":
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    return f"EXTRACT(EPOCH FROM (CAST({later} AS TIMESTAMPTZ) - CAST({earlier} AS TIMESTAMPTZ)))"


@dataclass(frozen=True, slots=True)
class Split:
    """A report period cut in three: the partial first day (``since`` up to
    ``first_end``, the start of the next local day), the closed days strictly between
    ``first_day`` and ``today`` (read from the daily rollup), and today (from
    ``today_start``). Times are ISO-8601 UTC, days the local days recorded with each
    answer."""

    first_day: str
    first_end: str
    today: str
    today_start: str

    @property
    def days(self) -> tuple[str, str]:
        return self.first_day, self.today


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited passage of a recorded answer (``doc_id``/``chunk_id`` may be gone)."""

    doc_id: int | None
    chunk_id: int | None


class LoopRepository(Protocol):
    """What the hand-off inbox, the analytics and the curation need from storage."""

    # departments and agents
    def create_department(self, name: str) -> int: ...
    def department_id(self, name: str) -> int | None: ...
    def list_departments(self) -> list[dict[str, Any]]: ...
    def add_member(self, department_id: int, user_id: int) -> None: ...
    def remove_member(self, department_id: int, user_id: int) -> bool: ...
    def departments_of(self, user_id: int) -> list[int]: ...

    # hand-off cases
    def open_case(
        self,
        conversation_id: str,
        kb_id: int,
        department_id: int | None,
        reason: str,
        question: str,
        channel: str = "web",
    ) -> tuple[int, bool]: ...
    def get_case(self, case_id: int) -> dict[str, Any] | None: ...
    def open_case_of(self, conversation_id: str) -> dict[str, Any] | None: ...
    def list_cases(
        self, department_ids: Sequence[int] | None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...
    def assign(self, case_id: int, assignee_id: int | None, department_id: int | None) -> None: ...
    def add_entry(
        self, case_id: int, author_id: int | None, author: str, kind: str, body: str
    ) -> dict[str, Any]: ...
    def entries(
        self, case_id: int, kinds: Sequence[str] = ("note", "reply", "event")
    ) -> list[dict[str, Any]]: ...
    def set_status(self, case_id: int, status: str) -> None: ...
    def replies_of_conversation(self, conversation_id: str) -> list[dict[str, Any]]: ...

    # answers
    def record_answer(
        self,
        message_id: str,
        conversation_id: str,
        kb_id: int,
        channel: str,
        outcome: str,
        question: str,
        qkey: str,
        answer_ms: int | None,
        day: str,
        hour: int,
        citations: Sequence[Citation],
        created_at: str | None = None,
    ) -> None: ...

    # curated entries
    def add_curated(
        self,
        kb_id: int,
        doc_id: int,
        path: str,
        question: str,
        answer: str,
        questions: Sequence[str],
        source_messages: Sequence[str],
        author: str,
    ) -> int: ...
    def list_curated(self, kb_ids: Sequence[int]) -> list[dict[str, Any]]: ...


class SqlLoopRepository:
    """:class:`LoopRepository` on a :class:`~zhiku.storage.db.Database` (SQLite or
    PostgreSQL), in the portable SQL subset."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- departments ----------------------------------------------------------------

    def create_department(self, name: str) -> int:
        with self.db.tx():
            row = self.db.execute(
                "INSERT INTO departments(name, created_at) VALUES (?, ?) "
                "ON CONFLICT(name) DO NOTHING RETURNING id",
                (name, now_iso()),
            ).fetchone()
            if row is not None:
                return int(row[0])
            return int(
                self.db.execute("SELECT id FROM departments WHERE name=?", (name,)).fetchone()[0]
            )

    def department_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM departments WHERE name=?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def list_departments(self) -> list[dict[str, Any]]:
        depts = {
            int(r["id"]): {"id": int(r["id"]), "name": r["name"], "members": []}
            for r in self.db.execute("SELECT id, name FROM departments ORDER BY name")
        }
        for r in self.db.execute(
            "SELECT m.department_id, u.name FROM department_members m "
            "JOIN users u ON u.id=m.user_id ORDER BY u.name"
        ):
            depts[int(r[0])]["members"].append(r[1])
        return list(depts.values())

    def add_member(self, department_id: int, user_id: int) -> None:
        self.db.execute(
            "INSERT INTO department_members(department_id, user_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            (department_id, user_id),
        )

    def remove_member(self, department_id: int, user_id: int) -> bool:
        cur = self.db.execute(
            "DELETE FROM department_members WHERE department_id=? AND user_id=?",
            (department_id, user_id),
        )
        return cur.rowcount > 0

    def departments_of(self, user_id: int) -> list[int]:
        return [
            int(r[0])
            for r in self.db.execute(
                "SELECT department_id FROM department_members WHERE user_id=? "
                "ORDER BY department_id",
                (user_id,),
            )
        ]

    # --- cases ----------------------------------------------------------------------

    _CASE = (
        "SELECT h.*, k.name AS kb, d.name AS department, u.name AS assignee "
        "FROM handoff_cases h JOIN kbs k ON k.id=h.kb_id "
        "LEFT JOIN departments d ON d.id=h.department_id "
        "LEFT JOIN users u ON u.id=h.assignee_id "
    )

    @staticmethod
    def _case(row: Any) -> dict[str, Any]:
        keys = (
            "id",
            "conversation_id",
            "kb",
            "kb_id",
            "department_id",
            "department",
            "assignee_id",
            "assignee",
            "status",
            "reason",
            "question",
            "channel",
            "created_at",
            "updated_at",
            "first_reply_at",
            "resolved_at",
        )
        return {k: row[k] for k in keys}

    def open_case(
        self,
        conversation_id: str,
        kb_id: int,
        department_id: int | None,
        reason: str,
        question: str,
        channel: str = "web",
    ) -> tuple[int, bool]:
        """The conversation's open case, or a new one; (id, created)."""
        if reason not in CASE_REASONS:
            raise ValueError(f"unknown hand-off reason {reason!r}")
        with self.db.tx(immediate=True):
            row = self.db.execute(
                "SELECT id FROM handoff_cases WHERE conversation_id=? AND status='open'",
                (conversation_id,),
            ).fetchone()
            if row is not None:
                return int(row[0]), False
            ts = now_iso()
            new = self.db.execute(
                "INSERT INTO handoff_cases(conversation_id, kb_id, department_id, status, "
                "reason, question, channel, created_at, updated_at) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?) RETURNING id",
                (conversation_id, kb_id, department_id, reason, question, channel, ts, ts),
            ).fetchone()
            return int(new[0]), True

    def get_case(self, case_id: int) -> dict[str, Any] | None:
        row = self.db.execute(self._CASE + "WHERE h.id=?", (case_id,)).fetchone()
        return None if row is None else self._case(row)

    def open_case_of(self, conversation_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            self._CASE + "WHERE h.conversation_id=? AND h.status='open'", (conversation_id,)
        ).fetchone()
        return None if row is None else self._case(row)

    def list_cases(
        self, department_ids: Sequence[int] | None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Cases of these departments (``None``: every case), oldest open first."""
        where: list[str] = []
        params: list[Any] = []
        if department_ids is not None:
            where.append(f"h.department_id IN ({_marks(department_ids)})")
            params.extend(department_ids)
        if status:
            where.append("h.status=?")
            params.append(status)
        sql = self._CASE + (("WHERE " + " AND ".join(where)) if where else "")
        sql += " ORDER BY h.status, h.created_at, h.id LIMIT ?"
        return [self._case(r) for r in self.db.execute(sql, (*params, max(1, limit)))]

    def assign(self, case_id: int, assignee_id: int | None, department_id: int | None) -> None:
        self.db.execute(
            "UPDATE handoff_cases SET assignee_id=?, department_id=COALESCE(?, department_id), "
            "updated_at=? WHERE id=?",
            (assignee_id, department_id, now_iso(), case_id),
        )

    def add_entry(
        self, case_id: int, author_id: int | None, author: str, kind: str, body: str
    ) -> dict[str, Any]:
        ts = now_iso()
        with self.db.tx(immediate=True):
            new = self.db.execute(
                "INSERT INTO case_entries(case_id, author_id, author, kind, body, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (case_id, author_id, author, kind, body, ts),
            ).fetchone()
            if kind == "reply":
                self.db.execute(
                    "UPDATE handoff_cases SET first_reply_at=COALESCE(first_reply_at, ?), "
                    "updated_at=? WHERE id=?",
                    (ts, ts, case_id),
                )
            else:
                self.db.execute("UPDATE handoff_cases SET updated_at=? WHERE id=?", (ts, case_id))
        return {
            "id": int(new[0]),
            "case_id": case_id,
            "author": author,
            "kind": kind,
            "body": body,
            "created_at": ts,
        }

    def entries(
        self, case_id: int, kinds: Sequence[str] = ("note", "reply", "event")
    ) -> list[dict[str, Any]]:
        return [
            {
                "id": int(r["id"]),
                "case_id": case_id,
                "author": r["author"],
                "kind": r["kind"],
                "body": r["body"],
                "created_at": r["created_at"],
            }
            for r in self.db.execute(
                "SELECT * FROM case_entries WHERE case_id=? "
                f"AND kind IN ({_marks(kinds)}) ORDER BY id",
                (case_id, *kinds),
            )
        ]

    def set_status(self, case_id: int, status: str) -> None:
        if status not in CASE_STATUSES:
            raise ValueError(f"unknown case status {status!r}")
        ts = now_iso()
        self.db.execute(
            "UPDATE handoff_cases SET status=?, updated_at=?, resolved_at=? WHERE id=?",
            (status, ts, ts if status == "resolved" else None, case_id),
        )

    def replies_of_conversation(self, conversation_id: str) -> list[dict[str, Any]]:
        """Agent replies to the user, every case of the conversation, in order."""
        return [
            {
                "id": int(r["id"]),
                "case_id": int(r["case_id"]),
                "author": r["author"],
                "body": r["body"],
                "created_at": r["created_at"],
            }
            for r in self.db.execute(
                "SELECT e.* FROM case_entries e JOIN handoff_cases h ON h.id=e.case_id "
                "WHERE h.conversation_id=? AND e.kind='reply' ORDER BY e.id",
                (conversation_id,),
            )
        ]

    # --- answers --------------------------------------------------------------------

    def record_answer(
        self,
        message_id: str,
        conversation_id: str,
        kb_id: int,
        channel: str,
        outcome: str,
        question: str,
        qkey: str,
        answer_ms: int | None,
        day: str,
        hour: int,
        citations: Sequence[Citation],
        created_at: str | None = None,
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        ts = created_at or precise_now()
        with self.db.tx():
            self.db.execute(
                "INSERT INTO answer_stats(message_id, conversation_id, kb_id, channel, outcome, "
                "question, qkey, answer_ms, day, hour, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    conversation_id,
                    kb_id,
                    channel,
                    outcome,
                    question,
                    qkey,
                    answer_ms,
                    day,
                    hour,
                    ts,
                ),
            )
            if citations:
                self.db.executemany(
                    "INSERT INTO answer_citations(message_id, ord, kb_id, doc_id, chunk_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (message_id, i, kb_id, c.doc_id, c.chunk_id, ts)
                        for i, c in enumerate(citations)
                    ],
                )

    # --- curated --------------------------------------------------------------------

    def add_curated(
        self,
        kb_id: int,
        doc_id: int,
        path: str,
        question: str,
        answer: str,
        questions: Sequence[str],
        source_messages: Sequence[str],
        author: str,
    ) -> int:
        row = self.db.execute(
            "INSERT INTO curated_entries(kb_id, doc_id, path, question, answer, questions, "
            "source_messages, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(kb_id, path) DO UPDATE SET doc_id=excluded.doc_id, "
            "question=excluded.question, answer=excluded.answer, "
            "questions=excluded.questions, source_messages=excluded.source_messages, "
            "author=excluded.author, created_at=excluded.created_at RETURNING id",
            (
                kb_id,
                doc_id,
                path,
                question,
                answer,
                json.dumps(list(questions), ensure_ascii=False),
                json.dumps(list(source_messages)),
                author,
                precise_now(),
            ),
        ).fetchone()
        return int(row[0])

    def list_curated(self, kb_ids: Sequence[int]) -> list[dict[str, Any]]:
        return [
            {
                "id": int(r["id"]),
                "kb_id": int(r["kb_id"]),
                "kb": r["kb"],
                "doc_id": r["doc_id"],
                "path": r["path"],
                "question": r["question"],
                "answer": r["answer"],
                "questions": json.loads(r["questions"]),
                "source_messages": json.loads(r["source_messages"]),
                "author": r["author"],
                "created_at": r["created_at"],
            }
            for r in self.db.execute(
                "SELECT c.*, k.name AS kb FROM curated_entries c JOIN kbs k ON k.id=c.kb_id "
                f"WHERE c.kb_id IN ({_marks(kb_ids)}) AND c.approved=1 ORDER BY c.id",
                tuple(kb_ids),
            )
        ]

    # --- analytics ------------------------------------------------------------------
    #
    # Every aggregate takes ``days``: None computes it directly over ``answer_stats``
    # since ``since``; ``(first, last)`` reads the closed days ``first < day < last``
    # from the daily rollup (:meth:`refresh_rollup` keeps it current) and only the rest
    # (the partial first day, and today) from ``answer_stats``. Both give the same
    # figures (tests/test_loop_storage.py compares them). ``where`` (a caller's access
    # scope, :mod:`zhiku.access`) hides the documents the caller may not see.

    def _range(self, kb_ids: Sequence[int], since: str, alias: str = "s") -> tuple[str, list[Any]]:
        return (
            f"{alias}.kb_id IN ({_marks(kb_ids)}) AND {alias}.created_at >= ?",
            [*kb_ids, since],
        )

    def _live(
        self, kb_ids: Sequence[int], since: str, days: Split | None, alias: str = "s"
    ) -> list[tuple[str, list[Any]]]:
        """The conditions of what is read from ``answer_stats`` (``alias``): the whole
        period, or with ``days`` the partial first day and today (two index ranges; the
        day guards keep them apart from the rollup's days)."""
        if days is None:
            return [self._range(kb_ids, since, alias)]
        kbs = f"{alias}.kb_id IN ({_marks(kb_ids)})"
        # SQLite's unary + keeps the day guards off the (kb_id, day) index: the time
        # range is the narrow one (PostgreSQL has no + for TEXT, and plans it alone).
        day = f"+{alias}.day" if self.db.dialect == "sqlite" else f"{alias}.day"
        return [
            (
                f"{kbs} AND {alias}.created_at >= ? AND {alias}.created_at < ? AND {day} <= ?",
                [*kb_ids, since, days.first_end, days.first_day],
            ),
            (
                f"{kbs} AND {alias}.created_at >= ? AND {day} >= ?",
                [*kb_ids, max(since, days.today_start), days.today],
            ),
        ]

    def _rolled(
        self, kb_ids: Sequence[int], days: Split, alias: str = "r"
    ) -> tuple[str, list[Any]]:
        return (
            f"{alias}.kb_id IN ({_marks(kb_ids)}) AND {alias}.day > ? AND {alias}.day < ?",
            [*kb_ids, *days.days],
        )

    def _visible(self, where: Filter | None, alias: str = "d") -> tuple[str, list[Any]]:
        """SQL for "a document the caller may see" (``1=1`` without a scope)."""
        if where is None:
            return "1=1", []
        from zhiku.storage.filtersql import where_sql

        return where_sql(where, alias, self.db.dialect)

    def refresh_rollup(
        self, kb_ids: Sequence[int], days: Split, lock: AbstractContextManager[Any] | None = None
    ) -> int:
        """Rebuild the rollup of each closed day ``first_day < day < today`` whose
        summary is missing or counted another number of answers than there are now
        (rows are only ever added on the day they are recorded, and removed by purges,
        erasure and deletions); ``lock`` is taken around the writes (the server's write
        gate). Returns how many (KB, day) summaries were rebuilt."""
        if not kb_ids or days.first_day >= days.today:
            return 0
        where, params = self._rolled(kb_ids, days, "s")
        now = {
            (int(r[0]), r[1]): int(r[2])
            for r in self.db.execute(
                f"SELECT s.kb_id, s.day, COUNT(*) FROM answer_stats s WHERE {where} "
                "GROUP BY s.kb_id, s.day",
                params,
            )
        }
        where, params = self._rolled(kb_ids, days)
        have = {
            (int(r[0]), r[1]): int(r[2])
            for r in self.db.execute(
                f"SELECT r.kb_id, r.day, r.answers FROM analytics_days r WHERE {where}", params
            )
        }
        stale = sorted(k for k in now.keys() | have.keys() if now.get(k) != have.get(k))
        if not stale:
            return 0
        with lock if lock is not None else nullcontext(), self.db.tx(immediate=True):
            for kb_id, day in stale:
                self._rebuild_day(kb_id, day)
        return len(stale)

    def _rebuild_day(self, kb_id: int, day: str) -> None:
        key = (kb_id, day)
        for table in (
            "analytics_days",
            "analytics_hours",
            "analytics_conversations",
            "analytics_citations",
        ):
            self.db.execute(f"DELETE FROM {table} WHERE kb_id=? AND day=?", key)
        n = int(
            self.db.execute(
                "SELECT COUNT(*) FROM answer_stats WHERE kb_id=? AND day=?", key
            ).fetchone()[0]
        )
        if not n:
            return
        self.db.execute(
            "INSERT INTO analytics_hours(kb_id, day, channel, hour, outcome, questions, "
            "ms_sum, ms_n, ms_max) SELECT kb_id, day, channel, hour, outcome, COUNT(*), "
            "COALESCE(SUM(answer_ms), 0), COUNT(answer_ms), MAX(answer_ms) FROM answer_stats "
            "WHERE kb_id=? AND day=? GROUP BY kb_id, day, channel, hour, outcome",
            key,
        )
        self.db.execute(
            "INSERT INTO analytics_conversations(kb_id, day, channel, conversations) "
            "SELECT kb_id, day, channel, COUNT(DISTINCT conversation_id) FROM answer_stats "
            "WHERE kb_id=? AND day=? GROUP BY kb_id, day, channel",
            key,
        )
        self.db.execute(
            "INSERT INTO analytics_citations(kb_id, day, doc_id, citations) "
            f"SELECT s.kb_id, s.day, c.doc_id, COUNT(*) FROM {_ANSWER_CITATIONS} "
            f"WHERE s.kb_id=? AND s.day=? AND {_CITES_OF_S} GROUP BY s.kb_id, s.day, c.doc_id",
            key,
        )
        self.db.execute(
            "INSERT INTO analytics_days(kb_id, day, answers, built_at) VALUES (?, ?, ?, ?)",
            (*key, n, now_iso()),
        )

    def per_day(
        self, kb_ids: Sequence[int], since: str, days: Split | None = None
    ) -> list[dict[str, Any]]:
        """Questions and conversations per (day, channel, KB)."""
        rows = [
            (r[0], r[1], r[2], int(r[3]), int(r[4]))
            for where, params in self._live(kb_ids, since, days)
            for r in self.db.execute(
                "SELECT s.day, s.channel, k.name, COUNT(*), "
                "COUNT(DISTINCT s.conversation_id) FROM answer_stats s JOIN kbs k "
                f"ON k.id=s.kb_id WHERE {where} GROUP BY s.day, s.channel, k.name",
                params,
            )
        ]
        if days is not None:
            where, params = self._rolled(kb_ids, days)
            questions = {
                (r[0], r[1], r[2]): int(r[3])
                for r in self.db.execute(
                    "SELECT r.day, r.channel, k.name, SUM(r.questions) FROM analytics_hours r "
                    f"JOIN kbs k ON k.id=r.kb_id WHERE {where} GROUP BY r.day, r.channel, k.name",
                    params,
                )
            }
            rows += [
                (r[0], r[1], r[2], questions.get((r[0], r[1], r[2]), 0), int(r[3]))
                for r in self.db.execute(
                    "SELECT r.day, r.channel, k.name, r.conversations FROM "
                    f"analytics_conversations r JOIN kbs k ON k.id=r.kb_id WHERE {where}",
                    params,
                )
            ]
        return [
            {"day": d, "channel": c, "kb": k, "questions": q, "conversations": n}
            for d, c, k, q, n in sorted(rows, key=lambda r: (r[0], r[1], r[2]))
        ]

    def totals(
        self, kb_ids: Sequence[int], since: str, days: Split | None = None
    ) -> dict[str, Any]:
        """Counts by outcome, conversations, 👍/👎 and answer times (ms). The distinct
        conversations of the whole period and the p95 are not sums of days: they are
        read from the covering index over the period."""
        counts = dict.fromkeys(OUTCOMES, 0)
        ms_sum, ms_n, ms_max = 0, 0, None
        parts = [
            self.db.execute(
                "SELECT s.outcome, COUNT(*), COALESCE(SUM(s.answer_ms), 0), COUNT(s.answer_ms), "
                f"MAX(s.answer_ms) FROM answer_stats s WHERE {where} GROUP BY s.outcome",
                params,
            ).fetchall()
            for where, params in self._live(kb_ids, since, days)
        ]
        if days is not None:
            rwhere, rparams = self._rolled(kb_ids, days)
            parts.append(
                self.db.execute(
                    "SELECT r.outcome, SUM(r.questions), SUM(r.ms_sum), SUM(r.ms_n), MAX(r.ms_max) "
                    f"FROM analytics_hours r WHERE {rwhere} GROUP BY r.outcome",
                    rparams,
                ).fetchall()
            )
        for part in parts:
            for outcome, n, total, n_ms, top in part:
                counts[outcome] += int(n)
                ms_sum += int(total or 0)
                ms_n += int(n_ms or 0)
                if top is not None:
                    ms_max = int(top) if ms_max is None else max(ms_max, int(top))
        out: dict[str, Any] = dict(counts)
        out["questions"] = sum(counts.values())
        where, params = self._range(kb_ids, since)
        out["conversations"] = int(
            self.db.execute(
                f"SELECT COUNT(DISTINCT s.conversation_id) FROM answer_stats s WHERE {where}",
                params,
            ).fetchone()[0]
            or 0
        )
        out["answer_ms_avg"] = round(ms_sum / ms_n, 1) if ms_n else None
        out["answer_ms_max"] = ms_max
        out["answer_ms_p95"] = None
        if ms_n:
            p95 = self.db.execute(
                f"SELECT s.answer_ms FROM answer_stats s WHERE {where} "
                "AND s.answer_ms IS NOT NULL ORDER BY s.answer_ms LIMIT 1 OFFSET ?",
                (*params, min(ms_n - 1, int(ms_n * 0.95))),
            ).fetchone()
            out["answer_ms_p95"] = int(p95[0])
        fb = {1: 0, -1: 0}
        # From the ratings (a few per cent of the answers) to their answers, not back.
        for r in self.db.execute(
            "SELECT f.rating, COUNT(*) FROM feedback f CROSS JOIN answer_stats s "
            f"WHERE s.message_id=f.answer_id AND {where} GROUP BY f.rating",
            params,
        ):
            fb[int(r[0])] = int(r[1])
        out["thumbs_up"], out["thumbs_down"] = fb[1], fb[-1]
        return out

    def handoff_times(self, kb_ids: Sequence[int], since: str) -> dict[str, Any]:
        """Hand-off counts and mean/max seconds to the first human reply and to resolution."""
        where, params = self._range(kb_ids, since, "h")
        reply = _seconds(self.db, "h.first_reply_at", "h.created_at")
        solve = _seconds(self.db, "h.resolved_at", "h.created_at")
        r = self.db.execute(
            f"SELECT COUNT(*), SUM(CASE WHEN h.status='open' THEN 1 ELSE 0 END), "
            f"AVG({reply}), MAX({reply}), AVG({solve}), MAX({solve}) "
            f"FROM handoff_cases h WHERE {where}",
            params,
        ).fetchone()

        def sec(v: Any) -> float | None:
            return None if v is None else round(float(v), 1)

        return {
            "cases": int(r[0] or 0),
            "open": int(r[1] or 0),
            "first_reply_s_avg": sec(r[2]),
            "first_reply_s_max": sec(r[3]),
            "resolution_s_avg": sec(r[4]),
            "resolution_s_max": sec(r[5]),
        }

    def busiest_hours(
        self, kb_ids: Sequence[int], since: str, days: Split | None = None
    ) -> list[dict[str, int]]:
        hours: dict[int, int] = {}
        sql = [
            (f"SELECT s.hour, COUNT(*) FROM answer_stats s WHERE {where} GROUP BY s.hour", params)
            for where, params in self._live(kb_ids, since, days)
        ]
        if days is not None:
            rwhere, rparams = self._rolled(kb_ids, days)
            sql.append(
                (
                    f"SELECT r.hour, SUM(r.questions) FROM analytics_hours r "
                    f"WHERE {rwhere} GROUP BY r.hour",
                    rparams,
                )
            )
        for q, p in sql:
            for h, n in self.db.execute(q, p):
                hours[int(h)] = hours.get(int(h), 0) + int(n)
        return [{"hour": h, "questions": n} for h, n in sorted(hours.items())]

    def most_cited(
        self,
        kb_ids: Sequence[int],
        since: str,
        limit: int = 10,
        days: Split | None = None,
        where: Filter | None = None,
    ) -> list[dict[str, Any]]:
        """The most cited documents (that the caller may see) and their citations."""
        counts: dict[int, int] = {}
        queries = [
            (
                "SELECT c.doc_id, COUNT(*) FROM answer_citations c "
                f"WHERE {w} AND c.doc_id IS NOT NULL GROUP BY c.doc_id",
                p,
            )
            for w, p in self._live(kb_ids, since, None, "c")
        ]
        if days is not None:  # the citations of the first day and today, then the rollup's
            queries = [
                (
                    f"SELECT c.doc_id, COUNT(*) FROM {_ANSWER_CITATIONS} WHERE {w} "
                    f"AND {_CITES_OF_S} GROUP BY c.doc_id",
                    p,
                )
                for w, p in self._live(kb_ids, since, days)
            ]
            rwhere, rparams = self._rolled(kb_ids, days)
            queries.append(
                (
                    f"SELECT r.doc_id, SUM(r.citations) FROM analytics_citations r "
                    f"WHERE {rwhere} GROUP BY r.doc_id",
                    rparams,
                )
            )
        for q, p in queries:
            for doc, n in self.db.execute(q, p):
                counts[int(doc)] = counts.get(int(doc), 0) + int(n)
        if not counts:
            return []
        visible, vparams = self._visible(where)
        ranked = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
        out: list[dict[str, Any]] = []
        for i in range(0, len(ranked), 500):  # document rows of the ranked ids, in order
            chunk = [d for d, _ in ranked[i : i + 500]]
            found = {
                int(r[1]): r
                for r in self.db.execute(
                    "SELECT k.name, d.id, d.title, d.path FROM documents d JOIN kbs k "
                    f"ON k.id=d.kb_id WHERE d.id IN ({_marks(chunk)}) AND "
                    f"d.kb_id IN ({_marks(kb_ids)}) AND {visible}",
                    (*chunk, *kb_ids, *vparams),
                )
            }
            for doc in chunk:
                r = found.get(doc)
                if r is not None:
                    out.append(
                        {
                            "kb": r[0],
                            "doc_id": doc,
                            "title": r[2],
                            "path": r[3],
                            "citations": counts[doc],
                        }
                    )
                    if len(out) >= limit:
                        return out
        return out

    def never_cited(
        self, kb_ids: Sequence[int], since: str, limit: int = 20, where: Filter | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many, the first ``limit``) documents of these KBs (that the caller may
        see) not cited since ``since``."""
        visible, vparams = self._visible(where)
        base = (
            "FROM documents d JOIN kbs k ON k.id=d.kb_id "
            f"WHERE d.kb_id IN ({_marks(kb_ids)}) AND {visible} AND NOT EXISTS (SELECT 1 "
            "FROM answer_citations c WHERE c.kb_id=d.kb_id AND c.doc_id=d.id "
            "AND c.created_at >= ?)"
        )
        params = [*kb_ids, *vparams, since]
        n = int(self.db.execute("SELECT COUNT(*) " + base, params).fetchone()[0])
        rows = self.db.execute(
            "SELECT k.name, d.id, d.title, d.path " + base + " ORDER BY d.id LIMIT ?",
            (*params, limit),
        )
        return n, [{"kb": r[0], "doc_id": int(r[1]), "title": r[2], "path": r[3]} for r in rows]

    def gap_questions(
        self, kb_ids: Sequence[int], since: str, limit: int = 5000, where: Filter | None = None
    ) -> list[dict[str, Any]]:
        """The newest refused, 👎-rated and handed-off questions (the knowledge gaps);
        with ``where``, not those whose answer cited a document the caller may not see."""
        rng, params = self._range(kb_ids, since)
        hidden, hparams = "", []
        if where is not None:
            # The documents of these KBs the caller may not see: usually none (then no
            # condition at all), else the answers citing one are left out by key.
            visible, vparams = self._visible(where)
            unseen = [
                int(r[0])
                for r in self.db.execute(
                    f"SELECT d.id FROM documents d WHERE d.kb_id IN ({_marks(kb_ids)}) "
                    f"AND NOT ({visible})",
                    (*kb_ids, *vparams),
                )
            ]
            for i in range(0, len(unseen), 500):
                part = unseen[i : i + 500]
                hidden += (
                    " AND NOT EXISTS (SELECT 1 FROM answer_citations c WHERE "
                    f"c.message_id=s.message_id AND c.doc_id IN ({_marks(part)}))"
                )
                hparams += part
        cols = (
            "s.message_id, k.name, s.kb_id, s.question, s.qkey, s.outcome, {rating}, s.day, "
            "s.created_at"
        )
        # Two index-driven halves, each read newest first and cut at ``limit``, instead of
        # one feedback join over every answer.
        no_rating = cols.format(rating="CAST(NULL AS INTEGER)")
        sql = (
            f"SELECT * FROM (SELECT {no_rating} FROM answer_stats s "
            f"JOIN kbs k ON k.id=s.kb_id WHERE {rng} AND s.outcome <> 'answered'{hidden} "
            "ORDER BY s.created_at DESC LIMIT ?) a "
            "UNION ALL "
            # from the 👎 ratings (few) to their answers, as in totals()
            f"SELECT * FROM (SELECT {cols.format(rating='f.rating')} FROM feedback f "
            "CROSS JOIN answer_stats s JOIN kbs k ON k.id=s.kb_id WHERE "
            f"s.message_id=f.answer_id AND {rng} AND f.rating = -1 "
            f"AND s.outcome = 'answered'{hidden} "
            "ORDER BY s.created_at DESC LIMIT ?) b "
            "ORDER BY 9 DESC LIMIT ?"
        )
        return [
            {
                "message_id": r[0],
                "kb": r[1],
                "kb_id": int(r[2]),
                "question": r[3],
                "qkey": r[4],
                "outcome": r[5],
                "rating": r[6],
                "day": r[7],
            }
            for r in self.db.execute(
                sql, (*params, *hparams, limit, *params, *hparams, limit, limit)
            )
        ]

    def visible_documents(self, doc_ids: Sequence[int], where: Filter | None) -> set[int]:
        """Those of ``doc_ids`` that exist and the caller may see."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return set()
        visible, vparams = self._visible(where)
        return {
            int(r[0])
            for r in self.db.execute(
                f"SELECT d.id FROM documents d WHERE d.id IN ({_marks(ids)}) AND {visible}",
                (*ids, *vparams),
            )
        }

    def refusal_split(self, kb_id: int, qkeys: Sequence[str], at: str) -> dict[str, Any]:
        """For questions with these keys: asked / not answered, before and after ``at``."""
        out = {"before": {"asked": 0, "unanswered": 0}, "after": {"asked": 0, "unanswered": 0}}
        if not qkeys:
            return out
        for r in self.db.execute(
            "SELECT x.side, COUNT(*), SUM(CASE WHEN x.outcome <> 'answered' THEN 1 ELSE 0 END) "
            "FROM (SELECT CASE WHEN s.created_at < ? THEN 'before' ELSE 'after' END AS side, "
            f"s.outcome FROM answer_stats s WHERE s.kb_id=? AND s.qkey IN ({_marks(qkeys)})) x "
            "GROUP BY x.side",
            (at, kb_id, *qkeys),
        ):
            out[r[0]] = {"asked": int(r[1]), "unanswered": int(r[2] or 0)}
        return out

    def approved_turns(self, kb_id: int) -> list[dict[str, Any]]:
        """👍-rated recorded answers of a KB, with their stored answer JSON."""
        return [
            {"message_id": r[0], "question": r[1], "answer": json.loads(r[2])}
            for r in self.db.execute(
                "SELECT m.id, m.question, m.answer FROM messages m "
                "JOIN conversations c ON c.id=m.conversation_id "
                "JOIN feedback f ON f.answer_id=m.id "
                "WHERE c.kb_id=? AND f.rating=1 AND m.refused=0 ORDER BY m.created_at, m.id",
                (kb_id,),
            )
        ]

    # --- conversations (the parts the loop reads or changes) ------------------------

    def conversation_of(self, conversation_id: str, user_id: int) -> dict[str, Any] | None:
        """A user's own conversation: id, kb_id, kb (name), title."""
        row = self.db.execute(
            "SELECT c.id, c.kb_id, k.name AS kb, c.title FROM conversations c "
            "JOIN kbs k ON k.id=c.kb_id WHERE c.id=? AND c.user_id=?",
            (conversation_id, user_id),
        ).fetchone()
        return (
            None
            if row is None
            else {
                "id": row["id"],
                "kb_id": int(row["kb_id"]),
                "kb": row["kb"],
                "title": row["title"],
            }
        )

    def last_question(self, conversation_id: str) -> str | None:
        row = self.db.execute(
            "SELECT question FROM messages WHERE conversation_id=? ORDER BY seq DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def rename_conversation(self, conversation_id: str, user_id: int, title: str) -> bool:
        cur = self.db.execute(
            "UPDATE conversations SET title=? WHERE id=? AND user_id=?",
            (title, conversation_id, user_id),
        )
        return cur.rowcount > 0

    def conversation_turns(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every turn with its stored answer JSON and rating (for an agent's view)."""
        return [
            {
                "answer_id": m["id"],
                "question": m["question"],
                "stored": json.loads(m["answer"]),
                "created_at": m["created_at"],
                "rating": m["rating"],
            }
            for m in self.db.execute(
                "SELECT m.id, m.question, m.answer, m.created_at, f.rating FROM messages m "
                "LEFT JOIN feedback f ON f.answer_id=m.id WHERE m.conversation_id=? "
                "ORDER BY m.seq",
                (conversation_id,),
            )
        ]
