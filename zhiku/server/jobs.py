"""Background ingestion: a job table in the store's database and worker threads in each
server process.

An upload request stores its files and inserts a *job* with one row per file; it never
parses anything itself. Each server process runs an :class:`IngestWorker` that claims
the oldest queued job (one ``BEGIN IMMEDIATE`` transaction on SQLite, ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL: two workers never take the same job; the rows and
statements are in :mod:`zhiku.storage.jobs`), ingests its files one by one through
:func:`zhiku.ingest.ingest_file` — each file is one store transaction — and records
every file's result and a heartbeat as it goes. Progress is therefore visible from any
worker process.

Stopping (server shutdown) is graceful: the worker finishes the file in hand, applies
the index work, puts the job back in the queue with its remaining files and exits; the
next process to start picks it up. Jobs of kind ``source`` sync a registered folder or
web site (:mod:`zhiku.sources.registry`); the worker queues them itself when a source is
due, on every poll. A job whose worker died without that (a ``kill -9``)
is re-claimed once its heartbeat is older than ``stale_job_s``, or at once when a server
starts on the same host and finds the job's worker process gone
(:func:`reclaim_dead_workers`).

A process runs ``ingest_threads`` workers (:class:`IngestWorkers`), so a small upload
is not queued behind a slow one; each reads files through
:func:`zhiku.limits.load_isolated`, in a worker process of its own with time and
memory budgets.

While a job runs, a small heartbeat thread refreshes its heartbeat every few seconds,
whatever the worker is doing (one large file, or embedding a whole batch during the
index sync can take many minutes), so a live worker's job is never re-claimed. Every
update of a job is made only by its owner (``AND worker=?``): a worker that lost its
job anyway (a paused VM that came back) finds it out at its next write and gives up,
without touching the new owner's state.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zhiku import limits
from zhiku.engine import Zhiku
from zhiku.errors import KnowledgeBaseNotFound, ZhikuError
from zhiku.ingest import ingest_file
from zhiku.lexical import IndexBusy
from zhiku.ocr import OcrInterrupted
from zhiku.server import uploads
from zhiku.server.ids import new_token
from zhiku.sources import registry
from zhiku.storage.db import Database, SQLiteDatabase
from zhiku.storage.jobs import SqlJobs
from zhiku.store import KnowledgeBase, Store

log = logging.getLogger("zhiku.server.jobs")

DONE_STATES = ("added", "updated", "unchanged", "failed", "skipped")


def _jobs(store: Store) -> SqlJobs:
    return SqlJobs(store.database)


def create_job(
    store: Store,
    kb: KnowledgeBase,
    kind: str,
    user_id: int | None,
    files: list[dict[str, Any]],
) -> str:
    """Insert a job; ``files`` are dicts with name, path, stored, sha256, size, status,
    reason, message (``status`` is ``pending`` or, for a file refused up front, ``failed``)."""
    job_id = new_token()
    _jobs(store).create(job_id, kb.id, kind, user_id, files)
    return job_id


def job_info(store: Store, job_id: str, kb_ids: list[int] | None) -> dict[str, Any] | None:
    """A job with its files, or ``None`` when it does not exist *in the given KBs*."""
    repo = _jobs(store)
    row = repo.get(job_id, kb_ids)
    if row is None:
        return None
    kbo = store.get_kb(row["kb"])
    files = [
        {
            "name": Zhiku.redact_path(kbo, f["name"]),
            "path": Zhiku.redact_path(kbo, f["path"]),
            "size": f["size"],
            "status": f["status"],
            "reason": f["reason"],
            "message": f["message"],
            "chunks": f["chunks"],
        }
        for f in repo.files(job_id)
    ]
    done = sum(1 for f in files if f["status"] != "pending")
    return {
        "id": row["id"],
        "kb": row["kb"],
        "kind": row["kind"],
        "status": row["status"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "total": len(files),
        "done": done,
        "failed": sum(1 for f in files if f["status"] == "failed"),
        "files": files,
    }


def list_jobs(store: Store, kb: KnowledgeBase, limit: int = 20) -> list[dict[str, Any]]:
    ids = _jobs(store).ids_of_kb(kb.id, limit)
    return [j for j in (job_info(store, i, [kb.id]) for i in ids) if j is not None]


def queue_counts(store: Store) -> dict[str, int]:
    return _jobs(store).queue_counts()


def claim(store: Store, worker: str, stale_s: float) -> tuple[str, int, str] | None:
    """Atomically take the oldest runnable job: (job id, kb id, kind), or ``None``
    (see :meth:`zhiku.storage.jobs.SqlJobs.claim` for how each database does it)."""
    return _jobs(store).claim(worker, time.time(), stale_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_dead_workers(store: Store) -> list[str]:
    """Re-queue running jobs whose worker process, on this host, is gone (``kill -9``);
    returns their ids. Jobs of other hosts wait for their heartbeat to go stale."""
    host = socket.gethostname()
    out: list[str] = []
    repo = _jobs(store)
    with store.tx(immediate=True):
        for job_id, worker in repo.running():
            # worker ids are "host:pid:random"; a host name may itself hold colons
            parts = (worker or "").rsplit(":", 2)
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            if int(parts[1]) == os.getpid() or _alive(int(parts[1])):
                continue
            if worker is not None and repo.requeue(job_id, worker):
                out.append(job_id)
    if out:
        log.warning("re-queued ingestion jobs of a dead worker process", extra={"jobs": out})
    return out


def _database(db: Database | sqlite3.Connection) -> Database:
    # ``store.db`` is still a raw sqlite3 connection on SQLite (older callers pass it)
    return SQLiteDatabase(db) if isinstance(db, sqlite3.Connection) else db


def beat(db: Database | sqlite3.Connection, job_id: str, worker: str) -> bool:
    """Refresh the heartbeat of ``worker``'s running job; False when it is not (or no
    longer) that worker's: re-claimed by another, finished, or deleted with its KB."""
    return SqlJobs(_database(db)).beat(job_id, worker, time.time())


class JobLost(Exception):
    """The job was re-claimed by another worker (or deleted) while this one worked on it."""


class Heartbeat(threading.Thread):
    """Refreshes one running job's heartbeat every ``every_s`` seconds on a connection of
    its own, so that the job never looks abandoned while its worker is busy.

    ``connect`` opens that connection in the thread: a factory such as
    ``store.database.new_connection`` (SQLite or PostgreSQL), or a SQLite file's path."""

    def __init__(
        self, connect: Callable[[], Database] | Path, job_id: str, worker: str, every_s: float
    ) -> None:
        super().__init__(name=f"zhiku-heartbeat-{job_id[:8]}", daemon=True)
        self.connect: Callable[[], Database] = (
            functools.partial(SQLiteDatabase.open, connect)
            if isinstance(connect, Path)
            else connect
        )
        self.job_id = job_id
        self.worker = worker
        self.every_s = every_s
        self.lost = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            db = self.connect()
        except Exception:  # noqa: BLE001 - the worker's own writes still check ownership
            log.warning(
                "job heartbeat could not connect", exc_info=True, extra={"job": self.job_id}
            )
            return
        repo = SqlJobs(db)
        try:
            while not self._done.wait(self.every_s):
                try:
                    if not repo.beat(self.job_id, self.worker, time.time()):
                        self.lost.set()
                        return
                except Exception:  # noqa: BLE001 - busy: the next beat will do
                    log.warning("job heartbeat failed", exc_info=True, extra={"job": self.job_id})
        finally:
            db.close()

    def stop(self) -> None:
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5.0)  # at most one beat in flight; it is a daemon thread anyway


def _sync(zk: Zhiku, kb: str) -> None:
    """Apply the KB's queued index work and release the writer; if another process holds
    it, the work stays queued in ``index_log`` and that process (or a search) applies it."""
    try:
        zk.sync_index(kb)
    except IndexBusy:
        pass


FileHook = Callable[[str, dict[str, Any]], None]


class IngestWorker(threading.Thread):
    """The per-process ingestion thread; :meth:`stop` lets it finish the current file."""

    def __init__(
        self,
        home: Path,
        *,
        stale_s: float = 600.0,
        poll_s: float = 1.0,
        heartbeat_s: float | None = None,
        on_file: FileHook | None = None,
    ) -> None:
        super().__init__(name="zhiku-ingest", daemon=True)
        self.home = home
        self.stale_s = stale_s
        self.poll_s = poll_s
        # Several beats fit in stale_s, so one that finds the database busy does no harm.
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else min(30.0, stale_s / 5)
        self.on_file = on_file
        self.wake = threading.Event()
        self._stop_event = threading.Event()
        # Unique per worker, not only per process: ownership checks compare it.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.busy = False

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the worker to stop after the current file; True when it has stopped."""
        self._stop_event.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout)
        return not self.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        zk = Zhiku(self.home)
        try:
            if limits.current().isolate:
                limits.worker().ensure_started()  # ready before the first upload
        except Exception:  # noqa: BLE001 - it is started again on the first file
            log.exception("could not start the load worker process")
        try:
            while not self.stopping:
                try:
                    registry.enqueue_due(zk.store)
                    job = claim(zk.store, self.worker_id, self.stale_s)
                except Exception:  # noqa: BLE001 - a locked database must not kill the thread
                    log.exception("job claim failed")
                    job = None
                if job is None:
                    self.wake.wait(self.poll_s)
                    self.wake.clear()
                    continue
                self.busy = True
                hb = Heartbeat(
                    zk.store.database.new_connection, job[0], self.worker_id, self.heartbeat_s
                )
                hb.start()
                try:
                    self._run_job(zk, *job, lost=hb.lost)
                except JobLost:
                    log.warning(
                        "ingestion job is no longer ours (re-claimed by another "
                        "worker, or deleted); leaving it",
                        extra={"job": job[0], "worker": self.worker_id},
                    )
                except Exception:  # noqa: BLE001 - one bad job must not stop the worker
                    log.exception("ingestion job failed", extra={"job": job[0]})
                    try:
                        self._finish(zk.store, job[0], "failed")
                    except Exception:  # noqa: BLE001 - e.g. a locked database
                        log.exception("could not mark the job failed", extra={"job": job[0]})
                finally:
                    hb.stop()
                    self.busy = False
        finally:
            zk.close()
            log.info("ingest worker stopped", extra={"worker": self.worker_id})

    # --- one job -------------------------------------------------------------------------

    def _finish(self, store: Store, job_id: str, status: str) -> bool:
        """End (or re-queue) this worker's job; False when it is no longer this worker's."""
        return _jobs(store).finish(job_id, self.worker_id, status)

    def _run_job(
        self, zk: Zhiku, job_id: str, kb_id: int, kind: str, lost: threading.Event | None = None
    ) -> None:
        """Ingest the job's pending files; raises :class:`JobLost` as soon as the job
        turns out to belong to another worker (``lost`` is set by the heartbeat)."""
        store = zk.store
        repo = _jobs(store)
        name = repo.kb_name(kb_id)
        if name is None:  # the KB was deleted (its jobs go with it)
            return
        kb = name
        if kind == "source":
            self._run_source(zk, job_id, lost)
            return
        files = repo.pending_files(job_id)
        log.info(
            "ingestion job started",
            extra={"job": job_id, "kb": kb, "files": len(files), "worker": self.worker_id},
        )

        def check() -> None:
            if lost is not None and lost.is_set():
                raise JobLost(job_id)

        last_sync = time.monotonic()
        try:
            for f in files:
                check()
                if self.stopping:
                    _sync(zk, kb)
                    if not self._finish(store, job_id, "queued"):
                        raise JobLost(job_id)
                    log.info("ingestion job re-queued on shutdown", extra={"job": job_id})
                    return
                try:
                    self._ingest_one(zk, kb, kb_id, job_id, kind, dict(f))
                except OcrInterrupted:  # shutdown in the middle of a long scan
                    _sync(zk, kb)
                    if not self._finish(store, job_id, "queued"):
                        raise JobLost(job_id) from None
                    log.info(
                        "ingestion job re-queued on shutdown during OCR; the pages read are cached",
                        extra={"job": job_id},
                    )
                    return
                if time.monotonic() - last_sync > 2.0:
                    _sync(zk, kb)
                    last_sync = time.monotonic()
            _sync(zk, kb)
        except KnowledgeBaseNotFound:
            return  # deleted while we worked; its job rows went with it
        if not self._finish(store, job_id, "done"):
            raise JobLost(job_id)
        log.info("ingestion job done", extra={"job": job_id, "kb": kb})

    def _run_source(self, zk: Zhiku, job_id: str, lost: threading.Event | None) -> None:
        """Sync the job's source; a shutdown mid-run re-queues the job (the sync is
        idempotent, the next run picks up where the store is)."""
        source_id = _jobs(zk.store).source_of(job_id)
        if source_id is None:  # the source was deleted
            if not self._finish(zk.store, job_id, "done"):
                raise JobLost(job_id)
            return

        def stop() -> bool:
            return self.stopping or (lost is not None and lost.is_set())

        log.info("source sync started", extra={"job": job_id, "source": source_id})
        try:
            info = registry.run_source(zk, source_id, job_id=job_id, should_stop=stop)
        except registry.SourceNotFound:
            info = None
        if lost is not None and lost.is_set():
            raise JobLost(job_id)
        status = "queued" if info is not None and info["last_status"] == "interrupted" else "done"
        if not self._finish(zk.store, job_id, status):
            raise JobLost(job_id)
        log.info(
            "source sync finished",
            extra={"job": job_id, "source": source_id, "status": info and info["last_status"]},
        )

    def _ingest_one(
        self, zk: Zhiku, kb: str, kb_id: int, job_id: str, kind: str, f: dict[str, Any]
    ) -> None:
        store = zk.store
        src = uploads.stored_path(self.home, f["stored"]) if f["stored"] else Path(f["path"])
        existed = store.get_document(kb, f["path"]) is not None
        reason: str | None
        message: str | None
        try:
            res = ingest_file(
                zk,
                kb,
                src,
                {} if kind == "reingest" else None,
                doc_path=f["path"],
                meta=json.loads(f.get("meta") or "null"),
                should_stop=lambda: self.stopping,
            )
        except KnowledgeBaseNotFound:
            raise
        except ZhikuError as exc:
            res = None
            status, reason, message, chunks = "failed", "error", str(exc), 0
        if res is not None:
            status, reason, message, chunks = res.status, res.reason, res.message, res.chunks
            if status == "added" and existed:
                status = "updated"
            inner = list(res.flat())[1:]  # attachments, archive members
            if inner:
                bad = [
                    f"{r.path.rsplit('#', 1)[-1]}（{r.message}）"
                    for r in inner
                    if r.status == "failed"
                ]
                message = "；".join(
                    [
                        m
                        for m in (
                            message,
                            f"內含 {len(inner)} 個檔案"
                            + (f"，失敗：{'、'.join(bad)}" if bad else ""),
                        )
                        if m
                    ]
                )
                chunks += sum(r.chunks for r in inner)
        repo = _jobs(store)
        keep = status in ("added", "updated", "unchanged") and f["stored"]
        recorded, old = repo.record_file(
            job_id,
            self.worker_id,
            time.time(),
            f["ord"],
            status,
            reason,
            message,
            chunks,
            {"path": f["path"], "stored": f["stored"], "sha256": f["sha256"], "size": f["size"]}
            if keep
            else None,
        )
        if not recorded:
            # A worker that lost the job records nothing (the document itself is stored;
            # the new owner finds it unchanged).
            raise JobLost(job_id)
        if old:
            uploads.remove_stored(self.home, old)
        # A refused file is not kept, unless another document still uses it.
        if (
            status == "failed"
            and f["stored"]
            and kind != "reingest"
            and not repo.stored_in_use(f["stored"])
        ):
            uploads.remove_stored(self.home, f["stored"])
        if self.on_file is not None:
            self.on_file(status, {"job": job_id, "kb": kb, "name": f["name"]})


class _WakeAll:
    def __init__(self, workers: list[IngestWorker]) -> None:
        self.workers = workers

    def set(self) -> None:
        for w in self.workers:
            w.wake.set()


class IngestWorkers:
    """``n`` ingestion threads of one process, started and stopped together."""

    def __init__(self, home: Path, n: int = 2, **kw: Any) -> None:
        self.workers = [IngestWorker(home, **kw) for _ in range(max(1, n))]
        self.wake = _WakeAll(self.workers)

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask every thread to stop after its current file; True when all have stopped."""
        for w in self.workers:
            w._stop_event.set()
            w.wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for w in self.workers:
            w.stop(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in self.workers)

    @property
    def busy(self) -> bool:
        return any(w.busy for w in self.workers)

    def is_alive(self) -> bool:
        return any(w.is_alive() for w in self.workers)
