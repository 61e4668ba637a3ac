"""``zhiku serve`` as a real process: several workers on one database, and a graceful
shutdown in the middle of an ingestion job that loses nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.server_util import auth, build_home, running_server, wait_job


def _asks_counted(base: str, key: str) -> float:
    """``zhiku_http_requests_total`` of successful asks, summed over the processes."""
    text = httpx.get(f"{base}/metrics", headers=auth(key)).text
    assert "zhiku_server_processes 2" in text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(
            'zhiku_http_requests_total{method="POST",route="/api/v1/kbs/{kb}/ask",status="200"}'
        )
    )


def test_several_workers_share_one_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = build_home(home)
    env = {"ZHIKU_RATE_LIMIT": "0", "ZHIKU_METRICS_FLUSH_S": "0.2"}
    with (
        running_server(home, "--workers", "2", env=env) as (base, _),
        httpx.Client(base_url=base) as client,
    ):

        def ask(i: int) -> tuple[int, str]:
            q = ["到職滿一年有幾天特休？", "病假全年上限幾日？"][i % 2]
            r = httpx.post(
                f"{base}/api/v1/kbs/hr/ask",
                json={"question": q},
                headers=auth(keys.hr_reader),
                timeout=30,
            )
            return r.status_code, r.json().get("answer", "")

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(ask, range(64)))
        assert all(code == 200 for code, _ in results)
        assert all(
            ("七日" in a) if i % 2 == 0 else ("三十日" in a) for i, (_, a) in enumerate(results)
        )
        # An upload is ingested by one worker; its progress is visible from every worker.
        files = [
            ("files", (f"公告{i}.txt", f"第 {i} 號公告：員工餐廳週五供應素食。".encode()))
            for i in range(6)
        ]
        r = httpx.post(f"{base}/api/v1/kbs/hr/documents", files=files, headers=auth(keys.hr_editor))
        job = wait_job(client, r.json()["id"], keys.hr_editor, timeout=60)
        assert [f["status"] for f in job["files"]] == ["added"] * 6
        seen = {
            httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=auth(keys.hr_reader)).json()[
                "status"
            ]
            for _ in range(10)
        }
        assert seen == {"done"}
        hits = httpx.post(
            f"{base}/api/v1/kbs/hr/search",
            json={"query": "員工餐廳素食"},
            headers=auth(keys.hr_reader),
        ).json()["hits"]
        assert hits and "素食" in hits[0]["text"]
        # Metrics add up both processes: every one of the 64 asks, whichever process
        # answered it, once the other process has flushed its snapshot (every 0.2 s here).
        deadline = time.monotonic() + 10
        while (asks := _asks_counted(base, keys.admin)) < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert asks == 64


def test_graceful_shutdown_finishes_the_file_and_requeues_the_rest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = build_home(home)
    n = 60
    body = "本段為測試用的長篇規章內容，說明各項作業流程與注意事項。" * 2000  # ~180 KB each
    files = [("files", (f"規章{i:02d}.txt", f"第 {i} 號規章。{body}".encode())) for i in range(n)]
    log = tmp_path / "server.log"
    env = {"ZHIKU_RATE_LIMIT": "0", "ZHIKU_MAX_FILES": str(n)}
    with running_server(home, env=env, log=log) as (base, proc):
        r = httpx.post(
            f"{base}/api/v1/kbs/hr/documents", files=files, headers=auth(keys.hr_editor), timeout=60
        )
        assert r.status_code == 202
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while (
            httpx.get(f"{base}/api/v1/jobs/{job_id}", headers=auth(keys.hr_editor)).json()["done"]
            < 1
        ):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once shut down, so the status is -SIGTERM.
        assert proc.wait(60) in (0, -signal.SIGTERM)
    lines = [json.loads(x) for x in log.read_text("utf-8").splitlines() if x.startswith("{")]
    msgs = [x["msg"] for x in lines]
    assert "ingest worker stopped" in msgs and "zhiku server stopped" in msgs
    db = sqlite3.connect(home / "zhiku.db")
    status = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
    rows = db.execute("SELECT name, status FROM job_files WHERE job_id=?", (job_id,)).fetchall()
    docs = {r[0] for r in db.execute("SELECT path FROM documents")}
    # Every file is either fully ingested (document stored) or still pending; none half-done.
    for name, st in rows:
        assert st in ("added", "pending"), (name, st)
        assert (f"upload://hr/{name}" in docs) == (st == "added"), name
    # SIGTERM came after the first file and the worker stops after the file in hand.
    pending = sum(st == "pending" for _, st in rows)
    assert 1 <= pending < n, pending
    assert status == "queued"  # handed back to the queue, not lost
    assert "ingestion job re-queued on shutdown" in msgs
    db.close()
    # The next server picks the job up and finishes it.
    with running_server(home, env=env) as (base, _), httpx.Client(base_url=base) as client:
        job = wait_job(client, job_id, keys.hr_editor, timeout=240)
        assert [f["status"] for f in job["files"]] == ["added"] * n
        listed = httpx.get(f"{base}/api/v1/kbs/hr/documents", headers=auth(keys.hr_reader))
        assert (
            sum(d["path"].startswith("upload://hr/規章") for d in listed.json()["documents"]) == n
        )


def test_serve_without_the_server_extra_says_how_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
        "from zhiku.cli import main; sys.argv = ['zhiku', 'serve']; main()"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"ZHIKU_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 2
    assert "pip install 'zhiku[server]'" in res.stderr
