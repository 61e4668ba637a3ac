"""Server start-up after a crash (jobs of dead worker processes, stale upload temp
files) and ingestion concurrency (a small upload is not queued behind a slow one)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.filegen import make_pdf, wrap_cjk
from tests.server_util import auth, build_home, wait_job
from zhiku.engine import Zhiku
from zhiku.server import jobs, uploads
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _client(home: Path, **kw: Any) -> TestClient:
    kw.setdefault("rate_limit", 0)
    return TestClient(create_app(ServerSettings.from_env({}, home=str(home), **kw)))


def test_job_of_a_dead_worker_is_reclaimed_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Zhiku(home) as zk:
        kb = zk.kb("hr", create=True)
        src = tmp_path / "公告.txt"
        src.write_text("員工餐廳週五供應素食。", "utf-8")
        job_id = jobs.create_job(
            zk.store,
            kb,
            "upload",
            None,
            [
                {
                    "name": src.name,
                    "path": str(src),
                    "stored": None,
                    "size": src.stat().st_size,
                    "status": "pending",
                }
            ],
        )
        dead = f"{socket.gethostname()}:{_dead_pid()}:abcd"
        other_host = "elsewhere.example:1:ffff"
        other = jobs.create_job(
            zk.store,
            kb,
            "upload",
            None,
            [{"name": "x.txt", "path": str(src), "stored": None, "size": 1, "status": "pending"}],
        )
        # Killed mid-job: "running", fresh heartbeat, the worker process gone.
        zk.store.db.execute(
            "UPDATE jobs SET status='running', worker=?, heartbeat=? WHERE id=?",
            (dead, time.time(), job_id),
        )
        zk.store.db.execute(
            "UPDATE jobs SET status='running', worker=?, heartbeat=? WHERE id=?",
            (other_host, time.time(), other),
        )
        assert jobs.claim(zk.store, "probe", 600.0) is None  # not stale by heartbeat
        assert jobs.reclaim_dead_workers(zk.store) == [job_id]
        assert (
            zk.store.db.execute("SELECT status FROM jobs WHERE id=?", (other,)).fetchone()[0]
            == "running"
        )
        zk.store.db.execute("UPDATE jobs SET status='running', worker=? WHERE id=?", (dead, job_id))
    with Zhiku(home) as zk:
        from zhiku.server import accounts

        accounts.create_user(zk.store, "root", "admin")
        key = accounts.create_key(zk.store, "root")[0]
    with _client(home, stale_job_s=600.0) as c:
        job = wait_job(c, job_id, key, timeout=30)
    assert job["status"] == "done" and job["files"][0]["status"] == "added"


def test_stale_upload_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    tmp_dir = home / "uploads" / ".tmp"
    tmp_dir.mkdir(parents=True)
    host = socket.gethostname()
    dead = tmp_dir / f".upload-{host}-{_dead_pid()}-k2j3h4"
    live = tmp_dir / f".upload-{host}-{os.getppid()}-a1b2c3"  # a live process's upload
    old = tmp_dir / ".upload-x7y8z9"  # the former naming, from before this version
    for f in (dead, live, old):
        f.write_bytes(b"partial upload")
    with _client(home):
        pass
    assert not dead.exists() and not old.exists()
    assert live.exists()


def test_a_small_upload_passes_a_slow_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = build_home(home)
    text = "員工因普通傷害、疾病或生理原因必須治療或休養者，得請普通傷病假。" * 10
    slow = make_pdf(
        tmp_path / "slow.pdf", [wrap_cjk(f"第 {i} 條 " + text, 76)[:36] for i in range(400)]
    )
    with _client(home, ingest_threads=2) as c:
        r1 = c.post(
            "/api/v1/kbs/hr/documents",
            headers=auth(keys.hr_editor),
            files=[("files", ("大檔.pdf", slow.read_bytes(), "application/pdf"))],
        )
        deadline = time.monotonic() + 60  # the slow job is claimed first
        while (
            c.get(f"/api/v1/jobs/{r1.json()['id']}", headers=auth(keys.hr_editor)).json()["status"]
            == "queued"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        r2 = c.post(
            "/api/v1/kbs/hr/documents",
            headers=auth(keys.hr_editor),
            files=[
                ("files", ("小檔.md", "# 門禁\n\n夜間門禁密碼每月更換。".encode(), "text/markdown"))
            ],
        )
        small = wait_job(c, r2.json()["id"], keys.hr_editor, timeout=60)
        small_s = time.monotonic() - t0
        slow_job = c.get(f"/api/v1/jobs/{r1.json()['id']}", headers=auth(keys.hr_editor)).json()
        hits = c.post(
            "/api/v1/search",
            headers=auth(keys.hr_reader),
            json={"query": "門禁密碼", "kbs": ["hr"]},
        ).json()
        wait_job(c, r1.json()["id"], keys.hr_editor, timeout=120)
    assert small["files"][0]["status"] == "added"
    assert slow_job["status"] == "running", (small_s, slow_job)  # the small one did not wait
    assert any("門禁" in h["text"] for h in hits["hits"])


@pytest.mark.parametrize("n", [0])
def test_ingest_threads_setting_is_validated(n: int) -> None:
    with pytest.raises(Exception, match="ingest_threads"):
        ServerSettings.from_env({"ZHIKU_INGEST_THREADS": str(n)}, home="/tmp/x")


def test_upload_tmp_names_carry_host_and_pid(tmp_path: Path) -> None:
    import io

    tmp, _, _ = uploads.spool(io.BytesIO(b"abc"), tmp_path, 100)
    assert tmp.name.startswith(f".upload-{socket.gethostname()}-{os.getpid()}-")
