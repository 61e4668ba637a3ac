"""The access component's repository: groups and clearance of users, the passage access
log, data-subject requests, erasure records, retention periods and runs.

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
        return {"id": self.id, "at": self.at, "user": self.user, "kb": self.kb,
                "chunk_id": self.chunk_id, "document": self.document,
                "kinds": list(self.kinds), "masked": self.masked, "via": self.via}


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
        return {"id": self.id, "kind": self.kind, "subject": self.subject,
                "received_at": self.received_at, "due_at": self.due_at, "status": self.status,
                "closed_at": self.closed_at, "result": self.result}


class AccessStore(Protocol):
    """What the access features need from the database."""

    def groups_of(self, user: str) -> frozenset[str]: ...
    def set_groups(self, user: str, groups: Iterable[str]) -> None: ...
    def clearance_of(self, user: str) -> int | None: ...
    def set_clearance(self, user: str, level: int) -> None: ...
    def forget_user(self, user: str) -> None: ...
    def log_access(self, entries: Sequence[dict[str, Any]]) -> None: ...
    def access_log(self, since: str | None = None,
                   user: str | None = None) -> list[AccessLogEntry]: ...
    def open_request(self, kind: str, subject: str, received_at: str,
                     due_at: str) -> int: ...
    def close_request(self, request_id: int, status: str, result: dict[str, Any]) -> None: ...
    def requests(self, open_only: bool = False) -> list[SubjectRequest]: ...
    def record_erasure(self, request_id: int | None, actor: str,
                       counts: dict[str, int]) -> int: ...
    def erasures(self) -> list[dict[str, Any]]: ...
    def set_retention(self, scope: str, what: str, days: int | None) -> None: ...
    def retention(self) -> dict[str, dict[str, int]]: ...
    def record_retention_run(self, actor: str, counts: dict[str, Any]) -> int: ...
    def retention_runs(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def purge_access_log(self, before: str) -> int: ...


class AccessRepository:
    """:class:`AccessStore` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- groups and clearance ----------------------------------------------------------

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(r[0] for r in self.db.execute(
            "SELECT grp FROM user_groups WHERE user_name=?", (user,)))

    def set_groups(self, user: str, groups: Iterable[str]) -> None:
        with self.db.tx(immediate=True):
            self.db.execute("DELETE FROM user_groups WHERE user_name=?", (user,))
            self.db.executemany(
                "INSERT INTO user_groups(user_name, grp) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(user, g) for g in dict.fromkeys(groups)])

    def clearance_of(self, user: str) -> int | None:
        row = self.db.execute("SELECT level FROM user_clearance WHERE user_name=?",
                              (user,)).fetchone()
        return None if row is None else int(row[0])

    def set_clearance(self, user: str, level: int) -> None:
        with self.db.tx(immediate=True):
            self.db.execute(
                "INSERT INTO user_clearance(user_name, level) VALUES (?, ?) "
                "ON CONFLICT(user_name) DO UPDATE SET level=excluded.level", (user, level))

    def forget_user(self, user: str) -> None:
        with self.db.tx(immediate=True):
            self.db.execute("DELETE FROM user_groups WHERE user_name=?", (user,))
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
                [(e.get("at", at), e["user"], e["kb"], int(e["chunk_id"]), e["document"],
                  json.dumps(list(e["kinds"]), ensure_ascii=False),
                  json.dumps(list(e["masked"]), ensure_ascii=False), e["via"])
                 for e in entries])

    def access_log(self, since: str | None = None,
                   user: str | None = None) -> list[AccessLogEntry]:
        sql = "SELECT * FROM access_log WHERE at>=?"
        args: list[Any] = [since or ""]
        if user is not None:
            sql += " AND user_name=?"
            args.append(user)
        return [AccessLogEntry(int(r["id"]), r["at"], r["user_name"], r["kb"],
                               int(r["chunk_id"]), r["document"],
                               tuple(json.loads(r["kinds"])), "；".join(json.loads(r["masked"])),
                               r["via"])
                for r in self.db.execute(sql + " ORDER BY id", args)]

    def purge_access_log(self, before: str) -> int:
        with self.db.tx(immediate=True):
            return self.db.execute("DELETE FROM access_log WHERE at<?", (before,)).rowcount

    # --- data-subject requests -----------------------------------------------------------

    def open_request(self, kind: str, subject: str, received_at: str, due_at: str) -> int:
        with self.db.tx(immediate=True):
            return int(self.db.execute(
                "INSERT INTO subject_requests(kind, subject, received_at, due_at, status) "
                "VALUES (?,?,?,?,'open') RETURNING id",
                (kind, subject, received_at, due_at)).fetchone()[0])

    def close_request(self, request_id: int, status: str, result: dict[str, Any]) -> None:
        with self.db.tx(immediate=True):
            self.db.execute(
                "UPDATE subject_requests SET status=?, closed_at=?, result=? WHERE id=?",
                (status, now_iso(), json.dumps(result, ensure_ascii=False), request_id))

    def requests(self, open_only: bool = False) -> list[SubjectRequest]:
        sql = "SELECT * FROM subject_requests"
        if open_only:
            sql += " WHERE status='open'"
        return [SubjectRequest(int(r["id"]), r["kind"], r["subject"], r["received_at"],
                               r["due_at"], r["status"], r["closed_at"], json.loads(r["result"]))
                for r in self.db.execute(sql + " ORDER BY due_at, id")]

    def record_erasure(self, request_id: int | None, actor: str, counts: dict[str, int]) -> int:
        with self.db.tx(immediate=True):
            return int(self.db.execute(
                "INSERT INTO erasures(request_id, at, actor, counts) VALUES (?,?,?,?) "
                "RETURNING id", (request_id, now_iso(), actor, json.dumps(counts))).fetchone()[0])

    def erasures(self) -> list[dict[str, Any]]:
        return [{"id": int(r["id"]), "request_id": r["request_id"], "at": r["at"],
                 "actor": r["actor"], "counts": json.loads(r["counts"])}
                for r in self.db.execute("SELECT * FROM erasures ORDER BY id")]

    # --- retention ------------------------------------------------------------------------

    def set_retention(self, scope: str, what: str, days: int | None) -> None:
        with self.db.tx(immediate=True):
            if days is None:
                self.db.execute("DELETE FROM retention_periods WHERE scope=? AND what=?",
                                (scope, what))
            else:
                self.db.execute(
                    "INSERT INTO retention_periods(scope, what, days) VALUES (?,?,?) "
                    "ON CONFLICT(scope, what) DO UPDATE SET days=excluded.days",
                    (scope, what, days))

    def retention(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.db.execute("SELECT scope, what, days FROM retention_periods"):
            out.setdefault(r[0], {})[r[1]] = int(r[2])
        return out

    def record_retention_run(self, actor: str, counts: dict[str, Any]) -> int:
        with self.db.tx(immediate=True):
            return int(self.db.execute(
                "INSERT INTO retention_runs(at, actor, counts) VALUES (?,?,?) RETURNING id",
                (now_iso(), actor, json.dumps(counts, ensure_ascii=False))).fetchone()[0])

    def retention_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [{"id": int(r["id"]), "at": r["at"], "actor": r["actor"],
                 "counts": json.loads(r["counts"])}
                for r in self.db.execute(
                    "SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?", (limit,))]
