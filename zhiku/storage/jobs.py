"""Repository of the ingestion jobs (core tables ``jobs`` and ``job_files``) and the
upload records a finished file leaves in ``uploads``.

:class:`JobsRepo` is what :mod:`zhiku.server.jobs` needs; :class:`SqlJobs` is its one
implementation, in the portable SQL of :mod:`zhiku.storage` (SQLite and PostgreSQL).

Claiming (:meth:`SqlJobs.claim`) is the one place where the engines differ:

- **SQLite** has one writer at a time: the claim is a ``BEGIN IMMEDIATE`` transaction
  (select the oldest runnable job, mark it running), so two claimers queue on the write
  lock and the second one sees the first one's update.
- **PostgreSQL** has row locks: the claim selects the oldest runnable job ``FOR UPDATE
  SKIP LOCKED`` inside a transaction, then marks it. A concurrent claimer skips the row
  locked by the first one instead of waiting for it, and a row whose update committed in
  the meantime is re-checked against the ``WHERE`` (READ COMMITTED), so it is never
  claimed twice.

A job is *runnable* when it is queued, or running with a heartbeat older than
``stale_s`` (its worker died, on whatever host): the claim then takes it over. Every
later update of a job names its owner (``AND worker=?``), so a worker that lost its job
changes nothing; files are recorded one by one, so the new owner only ingests the files
still ``pending``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from zhiku.storage.db import Database, now_iso

#: The statuses of a job that is not finished.
ACTIVE = ("queued", "running")


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"


def _order(db: Database, desc: bool = False) -> str:
    """Insertion order among jobs created in the same second (SQLite's ``rowid``; on
    PostgreSQL the job id breaks ties)."""
    d = " DESC" if desc else ""
    tie = "rowid" if db.dialect == "sqlite" else "id"
    return f"created_at{d}, {tie}{d}"


class JobsRepo(Protocol):
    """What the job workers and the job routes need."""

    def create(
        self, job_id: str, kb_id: int, kind: str, user_id: int | None, files: list[dict[str, Any]]
    ) -> None: ...

    def get(self, job_id: str, kb_ids: list[int] | None = None) -> Any | None: ...

    def files(self, job_id: str) -> list[Any]: ...

    def pending_files(self, job_id: str) -> list[Any]: ...

    def ids_of_kb(self, kb_id: int, limit: int) -> list[str]: ...

    def queue_counts(self) -> dict[str, int]: ...

    def claim(self, worker: str, now: float, stale_s: float) -> tuple[str, int, str] | None: ...

    def running(self) -> list[tuple[str, str | None]]: ...

    def requeue(self, job_id: str, worker: str) -> bool: ...

    def beat(self, job_id: str, worker: str, now: float) -> bool: ...

    def finish(self, job_id: str, worker: str, status: str) -> bool: ...

    def source_of(self, job_id: str) -> int | None: ...

    def kb_name(self, kb_id: int) -> str | None: ...

    def record_file(
        self,
        job_id: str,
        worker: str,
        now: float,
        ord_: int,
        status: str,
        reason: str | None,
        message: str | None,
        chunks: int,
        upload: dict[str, Any] | None,
    ) -> tuple[bool, str | None]: ...

    def stored_in_use(self, stored: str) -> bool: ...


class SqlJobs:
    """:class:`JobsRepo` over a :class:`~zhiku.storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- jobs and their files ---------------------------------------------------------

    def create(
        self, job_id: str, kb_id: int, kind: str, user_id: int | None, files: list[dict[str, Any]]
    ) -> None:
        """A job with one row per file (``status`` ``pending``, or ``failed`` for a file
        refused up front); a job without pending files is done at once."""
        pending = any(f["status"] == "pending" for f in files)
        with self.db.tx(immediate=True):
            self.db.execute(
                "INSERT INTO jobs(id, kb_id, kind, status, user_id, created_at, finished_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    job_id,
                    kb_id,
                    kind,
                    "queued" if pending else "done",
                    user_id,
                    now_iso(),
                    None if pending else now_iso(),
                ),
            )
            if files:
                self.db.executemany(
                    "INSERT INTO job_files(job_id, ord, name, path, stored, sha256, size, "
                    "status, reason, message, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            job_id,
                            i,
                            f["name"],
                            f.get("path"),
                            f.get("stored"),
                            f.get("sha256"),
                            f.get("size", 0),
                            f["status"],
                            f.get("reason"),
                            f.get("message"),
                            json.dumps(f["meta"], ensure_ascii=False) if f.get("meta") else None,
                        )
                        for i, f in enumerate(files)
                    ],
                )

    def get(self, job_id: str, kb_ids: list[int] | None = None) -> Any | None:
        """The job's row with its KB's name (``kb``), or None when it does not exist in
        the given KBs."""
        sql = "SELECT j.*, k.name AS kb FROM jobs j JOIN kbs k ON k.id=j.kb_id WHERE j.id=?"
        args: list[Any] = [job_id]
        if kb_ids is not None:
            sql += f" AND j.kb_id IN ({_marks(kb_ids)})"
            args += kb_ids
        return self.db.execute(sql, args).fetchone()

    def files(self, job_id: str) -> list[Any]:
        return self.db.execute(
            "SELECT * FROM job_files WHERE job_id=? ORDER BY ord", (job_id,)
        ).fetchall()

    def pending_files(self, job_id: str) -> list[Any]:
        return self.db.execute(
            "SELECT ord, name, path, stored, sha256, size, meta FROM job_files "
            "WHERE job_id=? AND status='pending' ORDER BY ord",
            (job_id,),
        ).fetchall()

    def ids_of_kb(self, kb_id: int, limit: int) -> list[str]:
        """The KB's most recent jobs first."""
        return [
            r[0]
            for r in self.db.execute(
                f"SELECT id FROM jobs WHERE kb_id=? ORDER BY {_order(self.db, desc=True)} LIMIT ?",
                (kb_id, limit),
            )
        ]

    def queue_counts(self) -> dict[str, int]:
        counts = {"queued": 0, "running": 0}
        for status, n in self.db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued','running') GROUP BY status"
        ):
            counts[status] = int(n)
        counts["files_pending"] = int(
            self.db.execute(
                "SELECT COUNT(*) FROM job_files f JOIN jobs j ON j.id=f.job_id "
                "WHERE f.status='pending' AND j.status IN ('queued','running')"
            ).fetchone()[0]
        )
        return counts

    def kb_name(self, kb_id: int) -> str | None:
        row = self.db.execute("SELECT name FROM kbs WHERE id=?", (kb_id,)).fetchone()
        return None if row is None else str(row[0])

    def source_of(self, job_id: str) -> int | None:
        """The source a ``source`` job syncs (None once the source is deleted)."""
        row = self.db.execute("SELECT source_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # --- claiming and ownership -------------------------------------------------------

    def claim(self, worker: str, now: float, stale_s: float) -> tuple[str, int, str] | None:
        """Take the oldest runnable job for ``worker``: (job id, kb id, kind), or None."""
        select = (
            "SELECT id, kb_id, kind FROM jobs WHERE status='queued' "
            "OR (status='running' AND (heartbeat IS NULL OR heartbeat < ?)) "
            f"ORDER BY {_order(self.db)} LIMIT 1"
        )
        if self.db.dialect == "postgresql":
            select += " FOR UPDATE SKIP LOCKED"
        with self.db.tx(immediate=True):
            row = self.db.execute(select, (now - stale_s,)).fetchone()
            if row is None:
                return None
            self.db.execute(
                "UPDATE jobs SET status='running', worker=?, heartbeat=?, "
                "started_at=COALESCE(started_at, ?) WHERE id=?",
                (worker, now, now_iso(), row["id"]),
            )
        return str(row["id"]), int(row["kb_id"]), str(row["kind"])

    def running(self) -> list[tuple[str, str | None]]:
        """(job id, worker) of every running job."""
        return [
            (str(r[0]), r[1])
            for r in self.db.execute(
                "SELECT id, worker FROM jobs WHERE status='running'"
            ).fetchall()
        ]

    def requeue(self, job_id: str, worker: str) -> bool:
        """Put ``worker``'s running job back in the queue (its worker is gone)."""
        cur = self.db.execute(
            "UPDATE jobs SET status='queued', worker=NULL, heartbeat=NULL "
            "WHERE id=? AND worker=? AND status='running'",
            (job_id, worker),
        )
        return cur.rowcount > 0

    def beat(self, job_id: str, worker: str, now: float) -> bool:
        """Refresh the heartbeat of ``worker``'s running job; False when it is not (or no
        longer) that worker's."""
        cur = self.db.execute(
            "UPDATE jobs SET heartbeat=? WHERE id=? AND worker=? AND status='running'",
            (now, job_id, worker),
        )
        return cur.rowcount > 0

    def finish(self, job_id: str, worker: str, status: str) -> bool:
        """End (``status`` done/failed) or re-queue (``queued``) ``worker``'s job."""
        cur = self.db.execute(
            "UPDATE jobs SET status=?, finished_at=?, worker=NULL WHERE id=? AND worker=?",
            (status, now_iso() if status != "queued" else None, job_id, worker),
        )
        return cur.rowcount > 0

    def record_file(
        self,
        job_id: str,
        worker: str,
        now: float,
        ord_: int,
        status: str,
        reason: str | None,
        message: str | None,
        chunks: int,
        upload: dict[str, Any] | None,
    ) -> tuple[bool, str | None]:
        """Record one file's result, in one transaction, if the job is still ``worker``'s:
        (recorded, the stored file this upload replaced and nothing uses any more).

        ``upload`` (path, stored, sha256, size) records the stored file as the upload of
        the document at ``path`` (kept by the job's user)."""
        with self.db.tx(immediate=True):
            # Ownership first: a worker that lost the job records nothing.
            if not self.beat(job_id, worker, now):
                return False, None
            self.db.execute(
                "UPDATE job_files SET status=?, reason=?, message=?, chunks=? "
                "WHERE job_id=? AND ord=?",
                (status, reason, message, chunks, job_id, ord_),
            )
            if upload is None:
                return True, None
            prev = self.db.execute(
                "SELECT u.stored FROM uploads u JOIN jobs j ON j.kb_id=u.kb_id "
                "WHERE j.id=? AND u.path=?",
                (job_id, upload["path"]),
            ).fetchone()
            old = prev[0] if prev and prev[0] != upload["stored"] else None
            self.db.execute(
                "INSERT INTO uploads(kb_id, path, stored, sha256, size, user_id, uploaded_at)"
                " SELECT kb_id,?,?,?,?,user_id,? FROM jobs WHERE id=? "
                "ON CONFLICT(kb_id, path) DO UPDATE SET stored=excluded.stored, "
                "sha256=excluded.sha256, size=excluded.size, user_id=excluded.user_id, "
                "uploaded_at=excluded.uploaded_at",
                (
                    upload["path"],
                    upload["stored"],
                    upload["sha256"],
                    upload["size"],
                    now_iso(),
                    job_id,
                ),
            )
            if old is not None and self.stored_in_use(old):
                old = None
        return True, old

    def stored_in_use(self, stored: str) -> bool:
        """Whether an upload record still uses the stored file."""
        return (
            self.db.execute("SELECT 1 FROM uploads WHERE stored=? LIMIT 1", (stored,)).fetchone()
            is not None
        )
