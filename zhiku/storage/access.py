"""The access component's repository: clearance of users, the passage access log,
data-subject requests, erasure records, retention periods and runs.

Portable SQL only (``?`` placeholders, ``ON CONFLICT``, ``RETURNING id``, ISO times and
JSON as TEXT), so :class:`AccessRepository` runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    id: int
    at: str
    user: str
    kb: str
    chunk_id: int
    document: str
    kinds: tuple[str, ...]
    masked: str
    via: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "user": self.user,
            "kb": self.kb,
            "chunk_id": self.chunk_id,
            "document": self.document,
            "kinds": list(self.kinds),
            "masked": self.masked,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class SubjectRequest:
    id: int
    kind: str
    subject: str
    received_at: str
    due_at: str
    status: str
    closed_at: str | None
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "received_at": self.received_at,
            "due_at": self.due_at,
            "status": self.status,
            "closed_at": self.closed_at,
            "result": self.result,
        }


class AccessStore(Protocol):
    """What the access features need from the database."""

    def clearance_of(self, user: str) -> int | None: ...
    def set_clearance(self, user: str, level: int) -> None: ...
    def forget_user(self, user: str) -> None: ...
    def log_access(self, entries: Sequence[dict[str, Any]]) -> None: ...
    def access_log(
        self, since: str | None = None, user: str | None = None
    ) -> list[AccessLogEntry]: ...
    def open_request(self, kind: str, subject: str, received_at: str, due_at: str) -> int: ...
    def close_request(self, request_id: int, status: str, result: dict[str, Any]) -> None: ...
    def requests(self, open_only: bool = False) -> list[SubjectRequest]: ...
    def record_erasure(self, request_id: int | None, actor: str, counts: dict[str, int]) -> int: ...
    def erasures(self) -> list[dict[str, Any]]: ...
    def set_retention(self, scope: str, what: str, days: int | None) -> None: ...
    def retention(self) -> dict[str, dict[str, int]]: ...
    def record_retention_run(self, actor: str, counts: dict[str, Any]) -> int: ...
    def retention_runs(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def chunk_texts(self, chunk_ids: Sequence[int]) -> dict[int, str]: ...
    def hidden_documents(self, doc_ids: Sequence[int], scope: Any) -> list[int]: ...
    def purge_access_log(self, before: str) -> int: ...


class AccessRepository:
    """:class:`AccessStore` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- clearance (groups: zhiku.storage.groups) ------------------------------------

    def clearance_of(self, user: str) -> int | None:
        row = self.db.execute(
            "SELECT level FROM user_clearance WHERE user_name=?", (user,)
        ).fetchone()
        return None if row is None else int(row[0])

    def set_clearance(self, user: str, level: int) -> None:
        with self.db.tx(immediate=True):
            self.db.execute(
                "INSERT INTO user_clearance(user_name, level) VALUES (?, ?) "
                "ON CONFLICT(user_name) DO UPDATE SET level=excluded.level",
                (user, level),
            )

    def forget_user(self, user: str) -> None:
        """Drop the clearance of ``user`` (their memberships end with their account)."""
        with self.db.tx(immediate=True):
            self.db.execute("DELETE FROM user_clearance WHERE user_name=?", (user,))

    # --- access log --------------------------------------------------------------------

    def log_access(self, entries: Sequence[dict[str, Any]]) -> None:
        if not entries:
            return
        at = now_iso()
        with self.db.tx(immediate=True):
            self.db.executemany(
                "INSERT INTO access_log(at, user_name, kb, chunk_id, document, kinds, masked, "
                "via) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        e.get("at", at),
                        e["user"],
                        e["kb"],
                        int(e["chunk_id"]),
                        e["document"],
                        json.dumps(list(e["kinds"]), ensure_ascii=False),
                        json.dumps(list(e["masked"]), ensure_ascii=False),
                        e["via"],
                    )
                    for e in entries
                ],
            )

    def access_log(self, since: str | None = None, user: str | None = None) -> list[AccessLogEntry]:
        sql = "SELECT * FROM access_log WHERE at>=?"
        args: list[Any] = [since or ""]
        if user is not None:
            sql += " AND user_name=?"
            args.append(user)
        return [
            AccessLogEntry(
                int(r["id"]),
                r["at"],
                r["user_name"],
                r["kb"],
                int(r["chunk_id"]),
                r["document"],
                tuple(json.loads(r["kinds"])),
                "；".join(json.loads(r["masked"])),
                r["via"],
            )
            for r in self.db.execute(sql + " ORDER BY id", args)
        ]

    def chunk_texts(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The stored text of these chunks (the access log looks for personal data in it)."""
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[int, str] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            out.update(
                (int(r[0]), r[1])
                for r in self.db.execute(
                    f"SELECT id, text FROM chunks WHERE id IN ({','.join('?' * len(part))})", part
                )
            )
        return out

    def hidden_documents(self, doc_ids: Sequence[int], scope: Any) -> list[int]:
        """Those of ``doc_ids`` (existing) that ``scope`` (a caller's
        :class:`~zhiku.filters.Filter`) does not let through."""
        ids = list(dict.fromkeys(doc_ids))
        out: list[int] = []
        visible, args = scope.sql("d")
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            out += [
                int(r[0])
                for r in self.db.execute(
                    f"SELECT d.id FROM documents d WHERE d.id IN ({','.join('?' * len(part))}) "
                    f"AND NOT ({visible})",
                    (*part, *args),
                )
            ]
        return out

    def purge_access_log(self, before: str) -> int:
        with self.db.tx(immediate=True):
            return self.db.execute("DELETE FROM access_log WHERE at<?", (before,)).rowcount

    # --- data-subject requests -----------------------------------------------------------

    def open_request(self, kind: str, subject: str, received_at: str, due_at: str) -> int:
        with self.db.tx(immediate=True):
            return int(
                self.db.execute(
                    "INSERT INTO subject_requests(kind, subject, received_at, due_at, status) "
                    "VALUES (?,?,?,?,'open') RETURNING id",
                    (kind, subject, received_at, due_at),
                ).fetchone()[0]
            )

    def close_request(self, request_id: int, status: str, result: dict[str, Any]) -> None:
        with self.db.tx(immediate=True):
            self.db.execute(
                "UPDATE subject_requests SET status=?, closed_at=?, result=? WHERE id=?",
                (status, now_iso(), json.dumps(result, ensure_ascii=False), request_id),
            )

    def requests(self, open_only: bool = False) -> list[SubjectRequest]:
        sql = "SELECT * FROM subject_requests"
        if open_only:
            sql += " WHERE status='open'"
        return [
            SubjectRequest(
                int(r["id"]),
                r["kind"],
                r["subject"],
                r["received_at"],
                r["due_at"],
                r["status"],
                r["closed_at"],
                json.loads(r["result"]),
            )
            for r in self.db.execute(sql + " ORDER BY due_at, id")
        ]

    def record_erasure(self, request_id: int | None, actor: str, counts: dict[str, int]) -> int:
        with self.db.tx(immediate=True):
            return int(
                self.db.execute(
                    "INSERT INTO erasures(request_id, at, actor, counts) VALUES (?,?,?,?) "
                    "RETURNING id",
                    (request_id, now_iso(), actor, json.dumps(counts)),
                ).fetchone()[0]
            )

    def erasures(self) -> list[dict[str, Any]]:
        return [
            {
                "id": int(r["id"]),
                "request_id": r["request_id"],
                "at": r["at"],
                "actor": r["actor"],
                "counts": json.loads(r["counts"]),
            }
            for r in self.db.execute("SELECT * FROM erasures ORDER BY id")
        ]

    # --- retention ------------------------------------------------------------------------

    def set_retention(self, scope: str, what: str, days: int | None) -> None:
        with self.db.tx(immediate=True):
            if days is None:
                self.db.execute(
                    "DELETE FROM retention_periods WHERE scope=? AND what=?", (scope, what)
                )
            else:
                self.db.execute(
                    "INSERT INTO retention_periods(scope, what, days) VALUES (?,?,?) "
                    "ON CONFLICT(scope, what) DO UPDATE SET days=excluded.days",
                    (scope, what, days),
                )

    def retention(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.db.execute("SELECT scope, what, days FROM retention_periods"):
            out.setdefault(r[0], {})[r[1]] = int(r[2])
        return out

    def record_retention_run(self, actor: str, counts: dict[str, Any]) -> int:
        with self.db.tx(immediate=True):
            return int(
                self.db.execute(
                    "INSERT INTO retention_runs(at, actor, counts) VALUES (?,?,?) RETURNING id",
                    (now_iso(), actor, json.dumps(counts, ensure_ascii=False)),
                ).fetchone()[0]
            )

    def retention_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [
            {
                "id": int(r["id"]),
                "at": r["at"],
                "actor": r["actor"],
                "counts": json.loads(r["counts"]),
            }
            for r in self.db.execute(
                "SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]


class SubjectData:
    """Where a data subject's personal data may be, read and rewritten for 個資法
    requests (find, export, erase): the rows of the core tables that hold free text.

    Reads yield plain tuples; every rewrite queues the document for re-indexing in the
    same transaction (``index_log``), as every document change does.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def kb_secrets(self) -> dict[str, bytes]:
        return {r[0]: bytes(r[1]) for r in self.db.execute("SELECT name, secret FROM kbs")}

    def chunks(self, batch: int = 2000) -> Iterable[tuple[int, int, str, str, str]]:
        """(chunk id, document id, KB name, document path, text), in id order."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT c.id, c.doc_id, k.name, d.path, c.text FROM chunks c "
                "JOIN documents d ON d.id=c.doc_id JOIN kbs k ON k.id=d.kb_id "
                "WHERE c.id>? ORDER BY c.id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield from ((int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows)
            last = int(rows[-1][0])

    def documents(self) -> list[tuple[int, str, str, str, str]]:
        """(document id, KB name, path, title, meta JSON)."""
        return [
            (int(r[0]), r[1], r[2], r[3], r[4])
            for r in self.db.execute(
                "SELECT d.id, k.name, d.path, d.title, d.meta FROM documents d "
                "JOIN kbs k ON k.id=d.kb_id ORDER BY d.id"
            )
        ]

    def conversations(self) -> list[tuple[str, str, str]]:
        """(conversation id, KB name, title)."""
        return [
            (r[0], r[1], r[2])
            for r in self.db.execute(
                "SELECT c.id, k.name, c.title FROM conversations c JOIN kbs k ON k.id=c.kb_id"
            )
        ]

    def messages(self) -> list[tuple[str, str, str, str, str]]:
        """(message id, conversation id, KB name, question, answer JSON)."""
        return [
            (r[0], r[1], r[2], r[3], r[4])
            for r in self.db.execute(
                "SELECT m.id, m.conversation_id, k.name, m.question, m.answer FROM messages m "
                "JOIN conversations c ON c.id=m.conversation_id JOIN kbs k ON k.id=c.kb_id "
                "ORDER BY m.created_at, m.id"
            )
        ]

    def feedback(self) -> list[tuple[str, str]]:
        """(answer id, comment)."""
        return [
            (r[0], r[1])
            for r in self.db.execute("SELECT answer_id, comment FROM feedback WHERE comment<>''")
        ]

    def audit(self) -> list[tuple[int, str | None, str | None, str]]:
        """(entry id, KB name, target, detail JSON)."""
        return [
            (int(r[0]), r[1], r[2], r[3])
            for r in self.db.execute("SELECT id, kb, target, detail FROM audit ORDER BY id")
        ]

    def cases(self) -> list[tuple[int, str, str]]:
        """(hand-off case id, KB name, the question it was opened with)."""
        return [
            (int(r[0]), r[1], r[2])
            for r in self.db.execute(
                "SELECT h.id, k.name, h.question FROM handoff_cases h JOIN kbs k ON k.id=h.kb_id "
                "ORDER BY h.id"
            )
        ]

    def case_entries(self) -> list[tuple[int, str, str]]:
        """(entry id, KB name, body) of every note, agent reply and event of a case."""
        return [
            (int(r[0]), r[1], r[2])
            for r in self.db.execute(
                "SELECT e.id, k.name, e.body FROM case_entries e JOIN handoff_cases h "
                "ON h.id=e.case_id JOIN kbs k ON k.id=h.kb_id ORDER BY e.id"
            )
        ]

    def answer_stats(self) -> list[tuple[str, str, str]]:
        """(message id, KB name, question) of the service report's copy of each turn."""
        return [
            (r[0], r[1], r[2])
            for r in self.db.execute(
                "SELECT s.message_id, k.name, s.question FROM answer_stats s "
                "JOIN kbs k ON k.id=s.kb_id ORDER BY s.message_id"
            )
        ]

    def curated(self) -> list[tuple[int, str, str, str, str]]:
        """(curated entry id, KB name, question, answer, other questions JSON)."""
        return [
            (int(r[0]), r[1], r[2], r[3], r[4])
            for r in self.db.execute(
                "SELECT c.id, k.name, c.question, c.answer, c.questions FROM curated_entries c "
                "JOIN kbs k ON k.id=c.kb_id ORDER BY c.id"
            )
        ]

    def webhook_payloads(self) -> list[tuple[int, str]]:
        """(delivery id, payload JSON) of the outbound webhook queue."""
        return [
            (int(r[0]), r[1])
            for r in self.db.execute("SELECT id, payload FROM webhook_deliveries ORDER BY id")
        ]

    def uploads(self) -> list[tuple[str, str, str]]:
        """(KB name, document path, stored file) of the uploads kept for re-ingest."""
        return [
            (r[0], r[1], r[2])
            for r in self.db.execute(
                "SELECT k.name, u.path, u.stored FROM uploads u JOIN kbs k ON k.id=u.kb_id"
            )
        ]

    # --- rewrites (erasure) ------------------------------------------------------------------

    def set_chunk_texts(self, texts: dict[int, str]) -> dict[int, int]:
        """Rewrite passages. Each gets a *new* id (old id → new id returned): the vector
        index is keyed by chunk id, so the old embedding is dropped and the new text
        embedded at its next sync, like any replaced passage."""
        moved: dict[int, int] = {}
        with self.db.tx(immediate=True):
            self._queue(
                list(texts),
                "SELECT DISTINCT c.doc_id, d.kb_id FROM chunks c "
                "JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({})",
            )
            for cid, text in texts.items():
                row = self.db.execute(
                    "INSERT INTO chunks(doc_id, ord, text, section, label, page_start, page_end,"
                    " char_start, char_end) SELECT doc_id, ord, ?, section, label, page_start,"
                    " page_end, char_start, char_end FROM chunks WHERE id=? RETURNING id",
                    (text, cid),
                ).fetchone()
                if row is not None:
                    moved[cid] = int(row[0])
                    self.db.execute("DELETE FROM chunks WHERE id=?", (cid,))
        return moved

    def set_document_fields(self, fields: dict[int, tuple[str, str]]) -> None:
        """document id → (title, meta JSON)."""
        with self.db.tx(immediate=True):
            for did, (title, meta) in fields.items():
                self.db.execute(
                    "UPDATE documents SET title=?, meta=?, updated_at=? WHERE id=?",
                    (title, meta, now_iso(), did),
                )
            self._queue(list(fields), "SELECT id, kb_id FROM documents WHERE id IN ({})")

    def _queue(self, ids: list[int], select: str) -> None:
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = self.db.execute(select.format(",".join("?" * len(part))), part).fetchall()
            self.db.executemany(
                "INSERT INTO index_log(kb_id, doc_id) VALUES (?, ?)",
                [(int(r[1]), int(r[0])) for r in rows],
            )

    def set_conversation_titles(self, titles: dict[str, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE conversations SET title=? WHERE id=?", [(t, i) for i, t in titles.items()]
            )

    def set_messages(self, messages: dict[str, tuple[str, str]]) -> None:
        """message id → (question, answer JSON)."""
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE messages SET question=?, answer=? WHERE id=?",
                [(q, a, i) for i, (q, a) in messages.items()],
            )

    def set_feedback_comments(self, comments: dict[str, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE feedback SET comment=? WHERE answer_id=?",
                [(c, i) for i, c in comments.items()],
            )

    def set_audit(self, entries: dict[int, tuple[str | None, str]]) -> None:
        """entry id → (target, detail JSON)."""
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE audit SET target=?, detail=? WHERE id=?",
                [(t, d, i) for i, (t, d) in entries.items()],
            )

    def set_case_questions(self, questions: dict[int, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE handoff_cases SET question=? WHERE id=?",
                [(q, i) for i, q in questions.items()],
            )

    def set_case_entries(self, bodies: dict[int, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE case_entries SET body=? WHERE id=?", [(b, i) for i, b in bodies.items()]
            )

    def set_answer_stat_questions(self, questions: dict[str, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE answer_stats SET question=? WHERE message_id=?",
                [(q, i) for i, q in questions.items()],
            )

    def set_curated(self, entries: dict[int, tuple[str, str, str]]) -> None:
        """entry id → (question, answer, other questions JSON)."""
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE curated_entries SET question=?, answer=?, questions=? WHERE id=?",
                [(q, a, qs, i) for i, (q, a, qs) in entries.items()],
            )

    def set_webhook_payloads(self, payloads: dict[int, str]) -> None:
        with self.db.tx(immediate=True):
            self.db.executemany(
                "UPDATE webhook_deliveries SET payload=? WHERE id=?",
                [(p, i) for i, p in payloads.items()],
            )

    def forget_uploads(self, rows: Sequence[tuple[str, str]]) -> list[str]:
        """Drop the kept uploads of (KB name, path); the stored files no row uses any more
        (for the caller to delete)."""
        gone: list[str] = []
        with self.db.tx(immediate=True):
            for kb, path in rows:
                r = self.db.execute(
                    "SELECT u.stored FROM uploads u JOIN kbs k ON k.id=u.kb_id "
                    "WHERE k.name=? AND u.path=?",
                    (kb, path),
                ).fetchone()
                if r is None:
                    continue
                self.db.execute(
                    "DELETE FROM uploads WHERE path=? AND kb_id=(SELECT id FROM kbs WHERE name=?)",
                    (path, kb),
                )
                if (
                    self.db.execute("SELECT 1 FROM uploads WHERE stored=?", (r[0],)).fetchone()
                    is None
                ):
                    gone.append(r[0])
        return gone


class RetentionData:
    """The deletions retention makes: rows older than a cut-off, of one KB or of all."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def kb_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM kbs ORDER BY name")]

    @staticmethod
    def _kb(column: str, kb: str | None) -> tuple[str, list[Any]]:
        if kb is None:
            return "", []
        return f" AND {column}=(SELECT id FROM kbs WHERE name=?)", [kb]

    def purge_conversations(self, before: str, kb: str | None = None) -> int:
        """Conversations last active before ``before`` (their messages and feedback go
        with them); the number of conversations."""
        extra, args = self._kb("kb_id", kb)
        with self.db.tx(immediate=True):
            ids = [
                r[0]
                for r in self.db.execute(
                    "SELECT id FROM conversations WHERE updated_at<?" + extra, [before, *args]
                )
            ]
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                self.db.execute(
                    "DELETE FROM feedback WHERE answer_id IN (SELECT id FROM "
                    f"messages WHERE conversation_id IN ({marks}))",
                    part,
                )
                self.db.execute(f"DELETE FROM messages WHERE conversation_id IN ({marks})", part)
                self.db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", part)
        return len(ids)

    def purge_feedback(self, before: str, kb: str | None = None) -> int:
        extra, args = self._kb("c.kb_id", kb)
        with self.db.tx(immediate=True):
            return self.db.execute(
                "DELETE FROM feedback WHERE created_at<? AND answer_id IN (SELECT m.id FROM "
                "messages m JOIN conversations c ON c.id=m.conversation_id WHERE 1=1" + extra + ")",
                [before, *args],
            ).rowcount

    def purge_audit(self, before: str, kb: str | None = None, without_kb: bool = False) -> int:
        """Audit entries before ``before``: of ``kb``, or (``without_kb``) those naming
        no KB, or all."""
        sql, args = "DELETE FROM audit WHERE ts<?", [before]
        if kb is not None:
            sql += " AND kb=?"
            args.append(kb)
        elif without_kb:
            sql += " AND kb IS NULL"
        with self.db.tx(immediate=True):
            return self.db.execute(sql, args).rowcount

    def purge_access_log(self, before: str, kb: str | None = None) -> int:
        sql, args = "DELETE FROM access_log WHERE at<?", [before]
        if kb is not None:
            sql += " AND kb=?"
            args.append(kb)
        with self.db.tx(immediate=True):
            return self.db.execute(sql, args).rowcount

    def purge_uploads(self, before: str, kb: str | None = None) -> tuple[int, list[str]]:
        """Kept uploads older than ``before`` (their documents stay; they can no longer be
        re-ingested from the server); (rows, stored files no row uses any more)."""
        extra, args = self._kb("kb_id", kb)
        with self.db.tx(immediate=True):
            rows = self.db.execute(
                "SELECT kb_id, path, stored FROM uploads WHERE uploaded_at<?" + extra,
                [before, *args],
            ).fetchall()
            for r in rows:
                self.db.execute("DELETE FROM uploads WHERE kb_id=? AND path=?", (r[0], r[1]))
            gone = sorted(
                {
                    r[2]
                    for r in rows
                    if self.db.execute("SELECT 1 FROM uploads WHERE stored=?", (r[2],)).fetchone()
                    is None
                }
            )
        return len(rows), gone
