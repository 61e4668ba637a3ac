"""Helpers for the server tests: a data directory with users, keys and documents, a
TestClient app, and a real ``zhiku serve`` subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.server import accounts

HR_DOC = """# 員工請假辦法

## 特別休假

員工到職滿一年者，每年給予特別休假七日；滿二年者，每年十日。

## 病假

病假全年合計不得超過三十日，超過部分以事假抵充。
"""

FINANCE_DOC = """# 財務報銷規定

## 差旅費

出差住宿費每晚上限新臺幣兩千六百元，機密代號 FIN-SECRET-4729。

## 預算

年度研發預算為新臺幣八億三千萬元，僅限財務處閱覽。
"""


@dataclass
class Keys:
    admin: str
    hr_reader: str
    hr_editor: str
    fin_reader: str
    nobody: str  # a reader with no grants


def build_home(home: Path) -> Keys:
    """Two KBs (hr, finance) with one document each, and users with keys."""
    src = home.parent / f"{home.name}-src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "hr").mkdir(exist_ok=True)
    (src / "finance").mkdir(exist_ok=True)
    (src / "hr" / "請假辦法.md").write_text(HR_DOC, "utf-8")
    (src / "finance" / "報銷規定.md").write_text(FINANCE_DOC, "utf-8")
    with Zhiku(home) as zk:
        ingest_paths(zk, [src / "hr"], "hr")
        ingest_paths(zk, [src / "finance"], "finance")
        s = zk.store
        accounts.create_user(s, "root", "admin")
        accounts.create_user(s, "alice", "reader", ["hr"])
        accounts.create_user(s, "erin", "editor", ["hr"])
        accounts.create_user(s, "frank", "reader", ["finance"])
        accounts.create_user(s, "nobody", "reader", [])
        return Keys(
            admin=accounts.create_key(s, "root", "test")[0],
            hr_reader=accounts.create_key(s, "alice")[0],
            hr_editor=accounts.create_key(s, "erin")[0],
            fin_reader=accounts.create_key(s, "frank")[0],
            nobody=accounts.create_key(s, "nobody")[0],
        )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_job(client: Any, job_id: str, key: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth(key)).json()
        if job.get("status") in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {job}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``zhiku serve`` on ``port`` (default: a free loopback port); yields (base URL,
    process); SIGTERM at exit."""
    port = port or free_port()
    full_env = {**os.environ, "ZHIKU_HOME": str(home), **(env or {})}
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhiku", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]
