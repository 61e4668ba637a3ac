"""Repository of the registered sources (core table ``sources``), the jobs that sync them,
and the web crawler's per-URL state (``crawl_pages``).

:class:`SourcesRepo` is what :mod:`zhiku.sources.registry` and :mod:`zhiku.sources.web`
need; :class:`SqlSources` is its one implementation, in the portable SQL of
:mod:`zhiku.storage` (SQLite and PostgreSQL).

Scheduling never queues a source twice, however many schedulers race: on SQLite the
whole pass is one ``BEGIN IMMEDIATE`` transaction (one writer at a time); on PostgreSQL
the due sources are selected ``FOR UPDATE SKIP LOCKED`` (a concurrent scheduler skips
them, and finds them no longer due once the first one commits), and a manual run locks
its source's row before it looks for an active job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso

#: The columns a run may record (:meth:`SqlSources.record`).
RUN_FIELDS = frozenset(
    {"last_job", "last_started_at", "last_finished_at", "last_status", "last_counts", "last_errors"}
)

_SELECT = "SELECT s.*, k.name AS kb FROM sources s JOIN kbs k ON k.id=s.kb_id "


class SourcesRepo(Protocol):
    def upsert(
        self,
        kb_id: int,
        name: str,
        kind: str,
        target: str,
        settings: dict[str, Any],
        every_s: int | None,
        next_run: float,
    ) -> None: ...

    def find(self, kb: str | None = None, kb_ids: list[int] | None = None) -> list[Any]: ...

    def get(self, kb: str, name: str) -> Any | None: ...

    def by_id(self, source_id: int) -> Any | None: ...

    def delete(self, source_id: int) -> None: ...

    def queue_run(
        self, source_id: int, user_id: int | None, new_id: Callable[[], str]
    ) -> tuple[str, bool] | None: ...

    def enqueue_due(self, now: float, new_id: Callable[[], str]) -> list[str]: ...

    def record(self, source_id: int, **fields: Any) -> None: ...

    def page_state(self, kb_id: int, origin: str, url: str) -> Any | None: ...

    def save_page_state(
        self,
        kb_id: int,
        origin: str,
        url: str,
        etag: str | None,
        last_modified: str | None,
        links: list[str],
        status: int,
    ) -> None: ...

    def page_urls(self, kb_id: int, origin: str) -> list[str]: ...

    def delete_pages(self, kb_id: int, origin: str, urls: list[str]) -> None: ...


class SqlSources:
    """:class:`SourcesRepo` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- sources ----------------------------------------------------------------------

    def upsert(
        self,
        kb_id: int,
        name: str,
        kind: str,
        target: str,
        settings: dict[str, Any],
        every_s: int | None,
        next_run: float,
    ) -> None:
        """Register a source, or replace its kind, target, settings and schedule (enabled,
        next run at ``next_run``)."""
        self.db.execute(
            "INSERT INTO sources(kb_id, name, kind, target, settings, every_s, created_at,"
            " next_run) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(kb_id, name) DO UPDATE SET "
            "kind=excluded.kind, target=excluded.target, settings=excluded.settings, "
            "every_s=excluded.every_s, next_run=excluded.next_run, enabled=1",
            (
                kb_id,
                name,
                kind,
                target,
                json.dumps(settings, ensure_ascii=False),
                every_s,
                now_iso(),
                next_run,
            ),
        )

    def find(self, kb: str | None = None, kb_ids: list[int] | None = None) -> list[Any]:
        """Sources (with their KB's name as ``kb``), by KB and name."""
        sql = _SELECT + "WHERE 1=1 "
        args: list[Any] = []
        if kb is not None:
            sql += "AND k.name=? "
            args.append(kb)
        if kb_ids is not None:
            sql += f"AND s.kb_id IN ({','.join('?' * len(kb_ids)) or 'NULL'}) "
            args.extend(kb_ids)
        return self.db.execute(sql + "ORDER BY k.name, s.name", args).fetchall()

    def get(self, kb: str, name: str) -> Any | None:
        return self.db.execute(_SELECT + "WHERE k.name=? AND s.name=?", (kb, name)).fetchone()

    def by_id(self, source_id: int) -> Any | None:
        return self.db.execute(_SELECT + "WHERE s.id=?", (source_id,)).fetchone()

    def delete(self, source_id: int) -> None:
        self.db.execute("DELETE FROM sources WHERE id=?", (source_id,))

    def record(self, source_id: int, **fields: Any) -> None:
        """Record a run's start or outcome (columns of :data:`RUN_FIELDS`)."""
        unknown = set(fields) - RUN_FIELDS
        if unknown:
            raise ValueError(f"not a run column: {sorted(unknown)}")
        if not fields:
            return
        sets = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE sources SET {sets} WHERE id=?", (*fields.values(), source_id))

    # --- runs: source jobs ------------------------------------------------------------

    def _active_job(self, source_id: int) -> str | None:
        row = self.db.execute(
            "SELECT id FROM jobs WHERE source_id=? AND status IN ('queued','running')", (source_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _insert_job(self, job_id: str, kb_id: int, source_id: int, user_id: int | None) -> str:
        self.db.execute(
            "INSERT INTO jobs(id, kb_id, kind, status, user_id, created_at, source_id) "
            "VALUES (?,?,?,?,?,?,?)",
            (job_id, kb_id, "source", "queued", user_id, now_iso(), source_id),
        )
        self.db.execute("UPDATE sources SET last_job=? WHERE id=?", (job_id, source_id))
        return job_id

    def queue_run(
        self, source_id: int, user_id: int | None, new_id: Callable[[], str]
    ) -> tuple[str, bool] | None:
        """Queue a run now: (job id, created), the already queued or running run's job
        with created False, or None when there is no such source."""
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        with self.db.tx(immediate=True):
            row = self.db.execute(
                f"SELECT kb_id FROM sources WHERE id=?{lock}", (source_id,)
            ).fetchone()
            if row is None:
                return None
            active = self._active_job(source_id)
            if active is not None:
                return active, False
            return self._insert_job(new_id(), int(row[0]), source_id, user_id), True

    def enqueue_due(self, now: float, new_id: Callable[[], str]) -> list[str]:
        """Queue a job for every enabled source whose time has come and move its next run
        on; a source with a run queued or running gets none. Returns the new job ids."""
        due = "FROM sources WHERE enabled=1 AND every_s IS NOT NULL AND next_run<=?"
        # Most polls find nothing: that check takes no write lock.
        if self.db.execute(f"SELECT 1 {due} LIMIT 1", (now,)).fetchone() is None:
            return []
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        out: list[str] = []
        with self.db.tx(immediate=True):
            rows = self.db.execute(
                f"SELECT id, kb_id, every_s {due} ORDER BY id{lock}", (now,)
            ).fetchall()
            for r in rows:
                self.db.execute(
                    "UPDATE sources SET next_run=? WHERE id=?", (now + r["every_s"], r["id"])
                )
                if self._active_job(r["id"]) is None:
                    out.append(self._insert_job(new_id(), int(r["kb_id"]), int(r["id"]), None))
        return out

    # --- crawl state ------------------------------------------------------------------

    def page_state(self, kb_id: int, origin: str, url: str) -> Any | None:
        """A crawled URL's etag, last_modified and links (JSON), or None."""
        return self.db.execute(
            "SELECT etag, last_modified, links FROM crawl_pages WHERE kb_id=? AND origin=? "
            "AND url=?",
            (kb_id, origin, url),
        ).fetchone()

    def save_page_state(
        self,
        kb_id: int,
        origin: str,
        url: str,
        etag: str | None,
        last_modified: str | None,
        links: list[str],
        status: int,
    ) -> None:
        """Record a fetch; a validator the server did not send again is kept."""
        self.db.execute(
            "INSERT INTO crawl_pages(kb_id, origin, url, etag, last_modified, links, status,"
            " fetched_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(kb_id, origin, url) DO UPDATE "
            "SET etag=COALESCE(excluded.etag, crawl_pages.etag), "
            "last_modified=COALESCE(excluded.last_modified, crawl_pages.last_modified), "
            "links=excluded.links, status=excluded.status, fetched_at=excluded.fetched_at",
            (kb_id, origin, url, etag, last_modified, json.dumps(links), status, now_iso()),
        )

    def page_urls(self, kb_id: int, origin: str) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute(
                "SELECT url FROM crawl_pages WHERE kb_id=? AND origin=?", (kb_id, origin)
            )
        ]

    def delete_pages(self, kb_id: int, origin: str, urls: list[str]) -> None:
        for start in range(0, len(urls), 500):  # under every engine's parameter limit
            part = urls[start : start + 500]
            self.db.execute(
                f"DELETE FROM crawl_pages WHERE kb_id=? AND origin=? "
                f"AND url IN ({','.join('?' * len(part))})",
                (kb_id, origin, *part),
            )
