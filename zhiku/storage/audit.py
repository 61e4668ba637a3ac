"""The audit log's repository: append-only entries, read back by filters.

Entries keep names, not ids (they must outlive the users and KBs they mention); what
they say is masked by the caller (:mod:`zhiku.server.audit`) before it gets here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from zhiku.storage.db import Database, now_iso


@runtime_checkable
class AuditLog(Protocol):
    def append(
        self,
        *,
        user: str | None,
        key: str | None,
        action: str,
        kb: str | None,
        target: str | None,
        detail: dict[str, Any] | None,
        ip: str | None,
    ) -> int:
        """One entry (inside the caller's transaction when there is one); its id."""
        ...

    def query(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        user: str | None = None,
        kb: str | None = None,
        action: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Entries matching every given filter (``since``/``until``: ISO-8601 prefixes)."""
        ...


class SqlAuditLog:
    """:class:`AuditLog` on the ``audit`` table, in portable SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        *,
        user: str | None,
        key: str | None,
        action: str,
        kb: str | None,
        target: str | None,
        detail: dict[str, Any] | None,
        ip: str | None,
    ) -> int:
        return int(
            self.db.execute(
                "INSERT INTO audit(ts, user_name, key_prefix, action, kb, target, detail, ip) "
                "VALUES (?,?,?,?,?,?,?,?) RETURNING id",
                (
                    now_iso(),
                    user,
                    key,
                    action,
                    kb,
                    target,
                    json.dumps(detail or {}, ensure_ascii=False),
                    ip,
                ),
            ).fetchone()[0]
        )

    def query(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        user: str | None = None,
        kb: str | None = None,
        action: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        for col, op, value in (
            ("ts", ">=", since),
            ("ts", "<", until),
            ("user_name", "=", user),
            ("kb", "=", kb),
            ("action", "=", action),
        ):
            if value:
                where.append(f"{col} {op} ?")
                args.append(value)
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        for r in self.db.execute(sql, args).fetchall():
            yield {
                "id": r["id"],
                "ts": r["ts"],
                "user": r["user_name"],
                "key": r["key_prefix"],
                "action": r["action"],
                "kb": r["kb"],
                "target": r["target"],
                "detail": json.loads(r["detail"]),
                "ip": r["ip"],
            }
