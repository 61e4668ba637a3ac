"""Ingestion jobs: a live worker's job is never re-claimed, however long one step takes,
and a worker that lost its job (re-claimed after a stall) cannot change it any more."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zhiku.engine import Zhiku
from zhiku.server import jobs
from zhiku.server.jobs import IngestWorker, JobLost
from zhiku.store import KnowledgeBase


@pytest.fixture
def zk(tmp_path: Path) -> Iterator[Zhiku]:
    with Zhiku(tmp_path / "home") as engine:
        engine.kb("hr", create=True)
        yield engine


def _job(zk: Zhiku, tmp_path: Path, n: int = 2) -> tuple[str, KnowledgeBase]:
    kb = zk.kb("hr")
    files: list[dict[str, Any]] = []
    for i in range(n):
        src = tmp_path / f"公告{i}.txt"
        src.write_text(f"第 {i} 號公告：員工餐廳週五供應素食。", "utf-8")
        files.append(
            {
                "name": src.name,
                "path": str(src),
                "stored": None,
                "size": src.stat().st_size,
                "status": "pending",
            }
        )
    return jobs.create_job(zk.store, kb, "upload", None, files), kb


def _row(zk: Zhiku, job_id: str) -> tuple[Any, ...]:
    return tuple(
        zk.store.db.execute(
            "SELECT status, worker, finished_at FROM jobs WHERE id=?", (job_id,)
        ).fetchone()
    )


def _file_states(zk: Zhiku, job_id: str) -> list[str]:
    return [
        r[0]
        for r in zk.store.db.execute(
            "SELECT status FROM job_files WHERE job_id=? ORDER BY ord", (job_id,)
        )
    ]


def test_a_long_step_keeps_the_job_alive(
    zk: Zhiku, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index sync (embedding) may take many times ``stale_s``; the heartbeat thread
    keeps the job fresh meanwhile, so no other worker re-claims it."""
    job_id, _ = _job(zk, tmp_path, 1)
    in_sync, release = threading.Event(), threading.Event()
    original = jobs._sync

    def slow_sync(engine: Zhiku, kb: str) -> None:
        in_sync.set()
        release.wait(30)
        original(engine, kb)

    monkeypatch.setattr(jobs, "_sync", slow_sync)
    worker = IngestWorker(zk.home, stale_s=0.5, poll_s=0.05, heartbeat_s=0.05)
    worker.start()
    try:
        assert in_sync.wait(30)
        # Three times stale_s inside one step; another worker polls all along.
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            assert jobs.claim(zk.store, "intruder", 0.5) is None
            time.sleep(0.05)
        assert _row(zk, job_id)[:2] == ("running", worker.worker_id)
        release.set()
        deadline = time.monotonic() + 30
        while _row(zk, job_id)[0] != "done":
            assert time.monotonic() < deadline, _row(zk, job_id)
            time.sleep(0.05)
    finally:
        release.set()
        assert worker.stop(30)
    assert _row(zk, job_id)[1] is None and _file_states(zk, job_id) == ["added"]


def test_a_job_without_heartbeat_is_re_claimed(zk: Zhiku, tmp_path: Path) -> None:
    """The other side: a job whose worker died (no beats) is taken over after stale_s."""
    job_id, kb = _job(zk, tmp_path)
    assert jobs.claim(zk.store, "dead", 600) == (job_id, kb.id, "upload")
    assert jobs.claim(zk.store, "other", 600) is None  # fresh: not re-claimed
    zk.store.db.execute("UPDATE jobs SET heartbeat=heartbeat-601 WHERE id=?", (job_id,))
    assert jobs.claim(zk.store, "other", 600) == (job_id, kb.id, "upload")


def test_a_worker_that_lost_its_job_changes_nothing(zk: Zhiku, tmp_path: Path) -> None:
    job_id, kb = _job(zk, tmp_path)
    a, b = IngestWorker(zk.home), IngestWorker(zk.home)
    assert a.worker_id != b.worker_id  # even in one process
    assert jobs.claim(zk.store, a.worker_id, 600) == (job_id, kb.id, "upload")
    # a stalls (a paused VM): its heartbeat grows old and b takes the job over.
    zk.store.db.execute("UPDATE jobs SET heartbeat=heartbeat-601 WHERE id=?", (job_id,))
    assert jobs.claim(zk.store, b.worker_id, 600) == (job_id, kb.id, "upload")
    taken = _row(zk, job_id)
    assert taken == ("running", b.worker_id, None)
    # a wakes up: its file result, its "done", its heartbeat are all refused.
    f = dict(
        zk.store.db.execute(
            "SELECT ord, name, path, stored, sha256, size FROM job_files WHERE job_id=? AND ord=0",
            (job_id,),
        ).fetchone()
    )
    with pytest.raises(JobLost):
        a._ingest_one(zk, "hr", kb.id, job_id, "upload", f)
    assert not a._finish(zk.store, job_id, "done")
    assert not a._finish(zk.store, job_id, "failed")
    assert not jobs.beat(zk.store.db, job_id, a.worker_id)
    hb = jobs.Heartbeat(zk.store.path, job_id, a.worker_id, 0.01)
    hb.start()
    assert hb.lost.wait(10)
    hb.stop()
    with pytest.raises(JobLost):
        a._run_job(zk, job_id, kb.id, "upload")
    assert _row(zk, job_id) == taken
    assert _file_states(zk, job_id) == ["pending", "pending"]
    # The new owner's own updates go through.
    b._run_job(zk, job_id, kb.id, "upload")
    assert _row(zk, job_id)[:2] == ("done", None)
    assert "pending" not in _file_states(zk, job_id)
