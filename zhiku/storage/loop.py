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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso

CASE_STATUSES = ("open", "resolved")
CASE_REASONS = ("asked", "refused", "feedback")
OUTCOMES = ("answered", "refused", "handoff")


def precise_now() -> str:
    """ISO-8601 UTC with microseconds: answers and curated entries are ordered by it
    (a question asked in the same second as a curation is still before or after it)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


def _seconds(db: Database, later: str, earlier: str) -> str:
    """SQL for the seconds between two ISO-8601 TEXT columns."""
    if db.dialect == "sqlite":
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    return (f"EXTRACT(EPOCH FROM (CAST({later} AS TIMESTAMPTZ) - "
            f"CAST({earlier} AS TIMESTAMPTZ)))")


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
    def open_case(self, conversation_id: str, kb_id: int, department_id: int | None,
                  reason: str, question: str, channel: str = "web") -> tuple[int, bool]: ...
    def get_case(self, case_id: int) -> dict[str, Any] | None: ...
    def open_case_of(self, conversation_id: str) -> dict[str, Any] | None: ...
    def list_cases(self, department_ids: Sequence[int] | None, status: str | None = None,
                   limit: int = 100) -> list[dict[str, Any]]: ...
    def assign(self, case_id: int, assignee_id: int | None,
               department_id: int | None) -> None: ...
    def add_entry(self, case_id: int, author_id: int | None, author: str, kind: str,
                  body: str) -> dict[str, Any]: ...
    def entries(self, case_id: int, kinds: Sequence[str] = ("note", "reply", "event")
                ) -> list[dict[str, Any]]: ...
    def set_status(self, case_id: int, status: str) -> None: ...
    def replies_of_conversation(self, conversation_id: str) -> list[dict[str, Any]]: ...

    # answers
    def record_answer(self, message_id: str, conversation_id: str, kb_id: int, channel: str,
                      outcome: str, question: str, qkey: str, answer_ms: int | None,
                      day: str, hour: int, citations: Sequence[Citation],
                      created_at: str | None = None) -> None: ...

    # curated entries
    def add_curated(self, kb_id: int, doc_id: int, path: str, question: str, answer: str,
                    questions: Sequence[str], source_messages: Sequence[str],
                    author: str) -> int: ...
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
                "ON CONFLICT(name) DO NOTHING RETURNING id", (name, now_iso())).fetchone()
            if row is not None:
                return int(row[0])
            return int(self.db.execute("SELECT id FROM departments WHERE name=?",
                                       (name,)).fetchone()[0])

    def department_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM departments WHERE name=?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def list_departments(self) -> list[dict[str, Any]]:
        depts = {int(r["id"]): {"id": int(r["id"]), "name": r["name"], "members": []}
                 for r in self.db.execute("SELECT id, name FROM departments ORDER BY name")}
        for r in self.db.execute(
            "SELECT m.department_id, u.name FROM department_members m "
            "JOIN users u ON u.id=m.user_id ORDER BY u.name"
        ):
            depts[int(r[0])]["members"].append(r[1])
        return list(depts.values())

    def add_member(self, department_id: int, user_id: int) -> None:
        self.db.execute(
            "INSERT INTO department_members(department_id, user_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING", (department_id, user_id))

    def remove_member(self, department_id: int, user_id: int) -> bool:
        cur = self.db.execute(
            "DELETE FROM department_members WHERE department_id=? AND user_id=?",
            (department_id, user_id))
        return cur.rowcount > 0

    def departments_of(self, user_id: int) -> list[int]:
        return [int(r[0]) for r in self.db.execute(
            "SELECT department_id FROM department_members WHERE user_id=? "
            "ORDER BY department_id", (user_id,))]

    # --- cases ----------------------------------------------------------------------

    _CASE = ("SELECT h.*, k.name AS kb, d.name AS department, u.name AS assignee "
             "FROM handoff_cases h JOIN kbs k ON k.id=h.kb_id "
             "LEFT JOIN departments d ON d.id=h.department_id "
             "LEFT JOIN users u ON u.id=h.assignee_id ")

    @staticmethod
    def _case(row: Any) -> dict[str, Any]:
        keys = ("id", "conversation_id", "kb", "kb_id", "department_id", "department",
                "assignee_id", "assignee", "status", "reason", "question", "channel",
                "created_at", "updated_at", "first_reply_at", "resolved_at")
        return {k: row[k] for k in keys}

    def open_case(self, conversation_id: str, kb_id: int, department_id: int | None,
                  reason: str, question: str, channel: str = "web") -> tuple[int, bool]:
        """The conversation's open case, or a new one; (id, created)."""
        if reason not in CASE_REASONS:
            raise ValueError(f"unknown hand-off reason {reason!r}")
        with self.db.tx(immediate=True):
            row = self.db.execute(
                "SELECT id FROM handoff_cases WHERE conversation_id=? AND status='open'",
                (conversation_id,)).fetchone()
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
            self._CASE + "WHERE h.conversation_id=? AND h.status='open'",
            (conversation_id,)).fetchone()
        return None if row is None else self._case(row)

    def list_cases(self, department_ids: Sequence[int] | None, status: str | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
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
            "updated_at=? WHERE id=?", (assignee_id, department_id, now_iso(), case_id))

    def add_entry(self, case_id: int, author_id: int | None, author: str, kind: str,
                  body: str) -> dict[str, Any]:
        ts = now_iso()
        with self.db.tx(immediate=True):
            new = self.db.execute(
                "INSERT INTO case_entries(case_id, author_id, author, kind, body, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (case_id, author_id, author, kind, body, ts)).fetchone()
            if kind == "reply":
                self.db.execute(
                    "UPDATE handoff_cases SET first_reply_at=COALESCE(first_reply_at, ?), "
                    "updated_at=? WHERE id=?", (ts, ts, case_id))
            else:
                self.db.execute("UPDATE handoff_cases SET updated_at=? WHERE id=?",
                                (ts, case_id))
        return {"id": int(new[0]), "case_id": case_id, "author": author, "kind": kind,
                "body": body, "created_at": ts}

    def entries(self, case_id: int, kinds: Sequence[str] = ("note", "reply", "event")
                ) -> list[dict[str, Any]]:
        return [{"id": int(r["id"]), "case_id": case_id, "author": r["author"],
                 "kind": r["kind"], "body": r["body"], "created_at": r["created_at"]}
                for r in self.db.execute(
                    "SELECT * FROM case_entries WHERE case_id=? "
                    f"AND kind IN ({_marks(kinds)}) ORDER BY id", (case_id, *kinds))]

    def set_status(self, case_id: int, status: str) -> None:
        if status not in CASE_STATUSES:
            raise ValueError(f"unknown case status {status!r}")
        ts = now_iso()
        self.db.execute(
            "UPDATE handoff_cases SET status=?, updated_at=?, resolved_at=? WHERE id=?",
            (status, ts, ts if status == "resolved" else None, case_id))

    def replies_of_conversation(self, conversation_id: str) -> list[dict[str, Any]]:
        """Agent replies to the user, every case of the conversation, in order."""
        return [{"id": int(r["id"]), "case_id": int(r["case_id"]), "author": r["author"],
                 "body": r["body"], "created_at": r["created_at"]}
                for r in self.db.execute(
                    "SELECT e.* FROM case_entries e JOIN handoff_cases h ON h.id=e.case_id "
                    "WHERE h.conversation_id=? AND e.kind='reply' ORDER BY e.id",
                    (conversation_id,))]

    # --- answers --------------------------------------------------------------------

    def record_answer(self, message_id: str, conversation_id: str, kb_id: int, channel: str,
                      outcome: str, question: str, qkey: str, answer_ms: int | None,
                      day: str, hour: int, citations: Sequence[Citation],
                      created_at: str | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        ts = created_at or precise_now()
        with self.db.tx():
            self.db.execute(
                "INSERT INTO answer_stats(message_id, conversation_id, kb_id, channel, outcome, "
                "question, qkey, answer_ms, day, hour, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, conversation_id, kb_id, channel, outcome, question, qkey,
                 answer_ms, day, hour, ts))
            if citations:
                self.db.executemany(
                    "INSERT INTO answer_citations(message_id, ord, kb_id, doc_id, chunk_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(message_id, i, kb_id, c.doc_id, c.chunk_id, ts)
                     for i, c in enumerate(citations)])

    # --- curated --------------------------------------------------------------------

    def add_curated(self, kb_id: int, doc_id: int, path: str, question: str, answer: str,
                    questions: Sequence[str], source_messages: Sequence[str],
                    author: str) -> int:
        row = self.db.execute(
            "INSERT INTO curated_entries(kb_id, doc_id, path, question, answer, questions, "
            "source_messages, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(kb_id, path) DO UPDATE SET doc_id=excluded.doc_id, "
            "question=excluded.question, answer=excluded.answer, "
            "questions=excluded.questions, source_messages=excluded.source_messages, "
            "author=excluded.author, created_at=excluded.created_at RETURNING id",
            (kb_id, doc_id, path, question, answer,
             json.dumps(list(questions), ensure_ascii=False),
             json.dumps(list(source_messages)), author, precise_now())).fetchone()
        return int(row[0])

    def list_curated(self, kb_ids: Sequence[int]) -> list[dict[str, Any]]:
        return [{"id": int(r["id"]), "kb_id": int(r["kb_id"]), "kb": r["kb"],
                 "doc_id": r["doc_id"], "path": r["path"], "question": r["question"],
                 "answer": r["answer"], "questions": json.loads(r["questions"]),
                 "source_messages": json.loads(r["source_messages"]),
                 "author": r["author"], "created_at": r["created_at"]}
                for r in self.db.execute(
                    "SELECT c.*, k.name AS kb FROM curated_entries c JOIN kbs k ON k.id=c.kb_id "
                    f"WHERE c.kb_id IN ({_marks(kb_ids)}) AND c.approved=1 ORDER BY c.id",
                    tuple(kb_ids))]

    # --- analytics ------------------------------------------------------------------

    def _range(self, kb_ids: Sequence[int], since: str, alias: str = "s") -> tuple[str, list[Any]]:
        return (f"{alias}.kb_id IN ({_marks(kb_ids)}) AND {alias}.created_at >= ?",
                [*kb_ids, since])

    def per_day(self, kb_ids: Sequence[int], since: str) -> list[dict[str, Any]]:
        """Questions and conversations per (day, channel, KB)."""
        where, params = self._range(kb_ids, since)
        return [{"day": r[0], "channel": r[1], "kb": r[2], "questions": int(r[3]),
                 "conversations": int(r[4])}
                for r in self.db.execute(
                    "SELECT s.day, s.channel, k.name, COUNT(*), COUNT(DISTINCT s.conversation_id) "
                    f"FROM answer_stats s JOIN kbs k ON k.id=s.kb_id WHERE {where} "
                    "GROUP BY s.day, s.channel, k.name ORDER BY s.day, s.channel, k.name",
                    params)]

    def totals(self, kb_ids: Sequence[int], since: str) -> dict[str, Any]:
        """Counts by outcome, conversations, 👍/👎 and answer times (ms)."""
        where, params = self._range(kb_ids, since)
        row = self.db.execute(
            "SELECT SUM(CASE WHEN s.outcome='answered' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN s.outcome='refused' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN s.outcome='handoff' THEN 1 ELSE 0 END), "
            "COUNT(DISTINCT s.conversation_id), AVG(s.answer_ms), MAX(s.answer_ms), "
            f"COUNT(s.answer_ms) FROM answer_stats s WHERE {where}", params).fetchone()
        out: dict[str, Any] = {o: int(row[i] or 0) for i, o in enumerate(OUTCOMES)}
        out["questions"] = sum(out[o] for o in OUTCOMES)
        out["conversations"] = int(row[3] or 0)
        out["answer_ms_avg"] = None if row[4] is None else round(float(row[4]), 1)
        out["answer_ms_max"] = row[5]
        n_ms = int(row[6] or 0)
        out["answer_ms_p95"] = None
        if n_ms:
            p95 = self.db.execute(
                f"SELECT s.answer_ms FROM answer_stats s WHERE {where} "
                "AND s.answer_ms IS NOT NULL ORDER BY s.answer_ms LIMIT 1 OFFSET ?",
                (*params, min(int(n_ms) - 1, int(n_ms * 0.95)))).fetchone()
            out["answer_ms_p95"] = int(p95[0])
        fb = {1: 0, -1: 0}
        for r in self.db.execute(
                "SELECT f.rating, COUNT(*) FROM feedback f JOIN answer_stats s "
                f"ON s.message_id=f.answer_id WHERE {where} GROUP BY f.rating", params):
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
            f"FROM handoff_cases h WHERE {where}", params).fetchone()

        def sec(v: Any) -> float | None:
            return None if v is None else round(float(v), 1)

        return {"cases": int(r[0] or 0), "open": int(r[1] or 0),
                "first_reply_s_avg": sec(r[2]), "first_reply_s_max": sec(r[3]),
                "resolution_s_avg": sec(r[4]), "resolution_s_max": sec(r[5])}

    def busiest_hours(self, kb_ids: Sequence[int], since: str) -> list[dict[str, int]]:
        where, params = self._range(kb_ids, since)
        return [{"hour": int(r[0]), "questions": int(r[1])} for r in self.db.execute(
            f"SELECT s.hour, COUNT(*) FROM answer_stats s WHERE {where} "
            "GROUP BY s.hour ORDER BY s.hour", params)]

    def most_cited(self, kb_ids: Sequence[int], since: str, limit: int = 10
                   ) -> list[dict[str, Any]]:
        where, params = self._range(kb_ids, since, "c")
        return [{"kb": r[0], "doc_id": int(r[1]), "title": r[2], "path": r[3],
                 "citations": int(r[4])}
                for r in self.db.execute(
                    "SELECT k.name, d.id, d.title, d.path, COUNT(*) AS n "
                    "FROM answer_citations c JOIN documents d ON d.id=c.doc_id "
                    f"JOIN kbs k ON k.id=c.kb_id WHERE {where} "
                    "GROUP BY k.name, d.id, d.title, d.path ORDER BY n DESC, d.id LIMIT ?",
                    (*params, limit))]

    def never_cited(self, kb_ids: Sequence[int], since: str, limit: int = 20
                    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many, the first ``limit``) documents of these KBs not cited since ``since``."""
        base = ("FROM documents d JOIN kbs k ON k.id=d.kb_id "
                f"WHERE d.kb_id IN ({_marks(kb_ids)}) AND NOT EXISTS (SELECT 1 FROM "
                "answer_citations c WHERE c.kb_id=d.kb_id AND c.doc_id=d.id "
                "AND c.created_at >= ?)")
        params = [*kb_ids, since]
        n = int(self.db.execute("SELECT COUNT(*) " + base, params).fetchone()[0])
        rows = self.db.execute("SELECT k.name, d.id, d.title, d.path " + base +
                               " ORDER BY d.id LIMIT ?", (*params, limit))
        return n, [{"kb": r[0], "doc_id": int(r[1]), "title": r[2], "path": r[3]}
                   for r in rows]

    def gap_questions(self, kb_ids: Sequence[int], since: str, limit: int = 5000
                      ) -> list[dict[str, Any]]:
        """The newest refused, 👎-rated and handed-off questions (the knowledge gaps)."""
        where, params = self._range(kb_ids, since)
        cols = "s.message_id, k.name, s.kb_id, s.question, s.qkey, s.outcome, {rating}, s.day, " \
               "s.created_at"
        # Two index-driven halves instead of one feedback join over every answer.
        sql = (f"SELECT {cols.format(rating='NULL')} FROM answer_stats s JOIN kbs k "
               f"ON k.id=s.kb_id WHERE {where} AND s.outcome <> 'answered' "
               "UNION ALL "
               f"SELECT {cols.format(rating='f.rating')} FROM feedback f JOIN answer_stats s "
               f"ON s.message_id=f.answer_id JOIN kbs k ON k.id=s.kb_id WHERE {where} "
               "AND f.rating = -1 AND s.outcome = 'answered' "
               "ORDER BY 9 DESC LIMIT ?")
        return [{"message_id": r[0], "kb": r[1], "kb_id": int(r[2]), "question": r[3],
                 "qkey": r[4], "outcome": r[5], "rating": r[6], "day": r[7]}
                for r in self.db.execute(sql, (*params, *params, limit))]

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
        return [{"message_id": r[0], "question": r[1], "answer": json.loads(r[2])}
                for r in self.db.execute(
                    "SELECT m.id, m.question, m.answer FROM messages m "
                    "JOIN conversations c ON c.id=m.conversation_id "
                    "JOIN feedback f ON f.answer_id=m.id "
                    "WHERE c.kb_id=? AND f.rating=1 AND m.refused=0 ORDER BY m.created_at, m.id",
                    (kb_id,))]

    # --- conversations (the parts the loop reads or changes) ------------------------

    def conversation_of(self, conversation_id: str, user_id: int) -> dict[str, Any] | None:
        """A user's own conversation: id, kb_id, kb (name), title."""
        row = self.db.execute(
            "SELECT c.id, c.kb_id, k.name AS kb, c.title FROM conversations c "
            "JOIN kbs k ON k.id=c.kb_id WHERE c.id=? AND c.user_id=?",
            (conversation_id, user_id)).fetchone()
        return None if row is None else {"id": row["id"], "kb_id": int(row["kb_id"]),
                                         "kb": row["kb"], "title": row["title"]}

    def last_question(self, conversation_id: str) -> str | None:
        row = self.db.execute(
            "SELECT question FROM messages WHERE conversation_id=? ORDER BY seq DESC LIMIT 1",
            (conversation_id,)).fetchone()
        return None if row is None else str(row[0])

    def rename_conversation(self, conversation_id: str, user_id: int, title: str) -> bool:
        cur = self.db.execute("UPDATE conversations SET title=? WHERE id=? AND user_id=?",
                              (title, conversation_id, user_id))
        return cur.rowcount > 0

    def conversation_turns(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every turn with its stored answer JSON and rating (for an agent's view)."""
        return [{"answer_id": m["id"], "question": m["question"],
                 "stored": json.loads(m["answer"]), "created_at": m["created_at"],
                 "rating": m["rating"]}
                for m in self.db.execute(
                    "SELECT m.id, m.question, m.answer, m.created_at, f.rating FROM messages m "
                    "LEFT JOIN feedback f ON f.answer_id=m.id WHERE m.conversation_id=? "
                    "ORDER BY m.seq", (conversation_id,))]
