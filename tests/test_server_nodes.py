"""Several ``zhiku serve`` nodes sharing one PostgreSQL and one Milvus server.

Real parts only: a PostgreSQL cluster (tests/pg.py), a Milvus Lite server reached over
gRPC, and ``zhiku serve`` subprocesses with homes of their own (nothing shared on disk
but the uploads directory). What one node does, another sees: uploads become
answerable everywhere, rate limits and sign-in sessions hold on every node, metrics add
up, and a node killed with SIGKILL mid-ingest leaves its job to another, which finishes
it without duplicate documents.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.cluster import milvus_server, node_home
from tests.pg import with_database
from tests.server_util import auth, running_server
from zhiku.engine import Zhiku
from zhiku.server import accounts
from zhiku.server.signin import core as signin_core
from zhiku.server.signin.config import AuthSettings

NODE_ENV = {
    "ZHIKU_AUTH_COOKIE_SECURE": "false",
    "ZHIKU_RATE_LIMIT": "60",
    "ZHIKU_RATE_BURST": "30",
    "ZHIKU_MAX_FILES": "60",
    "ZHIKU_STALE_JOB_S": "4",
    "ZHIKU_METRICS_FLUSH_S": "1",
    "ZHIKU_ENGINES": "4",
    "ZHIKU_THREADS": "4",
}


class Cluster:
    def __init__(self, root: Path, database: str, milvus: str) -> None:
        self.root, self.database, self.milvus = root, database, milvus
        self.uploads = root / "shared-uploads"
        self.homes = {n: node_home(root, n, database, self.uploads) for n in "ab"}
        with Zhiku(self.homes["a"]) as zk:
            zk.kb("hr", create=True)
            zk.store.update_kb_settings("hr", {"index": {"backend": "milvus", "uri": milvus}})
            s = zk.store
            accounts.create_user(s, "root", "admin")
            accounts.create_user(s, "alice", "editor", ["hr"])
            accounts.create_user(s, "limited", "reader", ["hr"])
            signin_core.set_password(
                s, "alice", "correct horse 42", AuthSettings(cookie_secure=False)
            )
            self.admin = accounts.create_key(s, "root", "test")[0]
            self.alice = accounts.create_key(s, "alice")[0]
            self.limited = accounts.create_key(s, "limited")[0]
        self.nodes: dict[str, tuple[str, Any]] = {}


def get(base: str, path: str, key: str, **kw: Any) -> httpx.Response:
    for _ in range(50):  # a poll may outrun the shared rate limit: wait as told
        r = httpx.get(base + path, headers=auth(key), timeout=30, **kw)
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    return r


def wait_job(base: str, job_id: str, key: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get(base, f"/api/v1/jobs/{job_id}", key).json()
        if job.get("status") in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {job}")
        time.sleep(1.0)


@pytest.fixture(scope="module")
def cluster(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("nodes")
    name = "n_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with milvus_server(root / "milvus") as milvus:
            c = Cluster(root, with_database(pg_server, name), milvus)
            with (
                running_server(c.homes["a"], env=NODE_ENV, log=root / "a.log") as a,
                running_server(
                    c.homes["b"],
                    env={**NODE_ENV, "ZHIKU_INGEST_WORKER": "false"},
                    log=root / "b.log",
                ) as b,
            ):
                c.nodes = {"a": a, "b": b}
                yield c
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_upload_through_a_is_answerable_through_b(cluster: Cluster) -> None:
    (a, _), (b, _) = cluster.nodes["a"], cluster.nodes["b"]
    doc = "# 差旅辦法\n\n出差住宿費每晚上限新臺幣兩千六百元，須檢附收據核銷。\n"
    r = httpx.post(
        f"{a}/api/v1/kbs/hr/documents",
        headers=auth(cluster.alice),
        files=[("files", ("差旅辦法.md", doc.encode(), "text/markdown"))],
        timeout=60,
    )
    assert r.status_code == 202, r.text
    job = wait_job(b, r.json()["id"], cluster.alice)  # job state is in the database
    assert job["status"] == "done", job
    assert list(cluster.uploads.glob("*/*/差旅辦法.md"))  # kept in the shared directory
    assert not (cluster.homes["a"] / "uploads").exists()
    r = httpx.post(
        f"{b}/api/v1/kbs/hr/ask",
        headers=auth(cluster.alice),
        timeout=60,
        json={"question": "出差住宿費每晚上限多少？"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "兩千六百" in body["answer"]
    assert any("差旅辦法" in c["doc"] for c in body["citations"])


def test_a_rate_limit_spent_on_a_holds_on_b(cluster: Cluster) -> None:
    (a, _), (b, _) = cluster.nodes["a"], cluster.nodes["b"]
    # 30 tokens, one a second: alternating nodes, 80 requests are granted at most
    # 30 + (one a second of the run); a bucket per node would grant 60 and more.
    t0 = time.monotonic()
    codes = {a: [], b: []}  # type: dict[str, list[int]]
    refused: httpx.Response | None = None
    for i in range(80):
        node = (a, b)[i % 2]
        r = httpx.get(f"{node}/api/v1/auth/me", headers=auth(cluster.limited))
        codes[node].append(r.status_code)
        if r.status_code == 429:
            refused = r
    elapsed = time.monotonic() - t0
    granted = codes[a].count(200) + codes[b].count(200)
    assert 30 <= granted <= 30 + elapsed + 1, (granted, elapsed)
    assert codes[a].count(429) and codes[b].count(429)
    assert refused is not None and 1 <= int(refused.headers["Retry-After"]) <= 2
    # another key is not affected
    assert httpx.get(f"{b}/api/v1/auth/me", headers=auth(cluster.alice)).status_code == 200


def test_a_session_signed_in_on_a_is_valid_on_b(cluster: Cluster) -> None:
    (a, _), (b, _) = cluster.nodes["a"], cluster.nodes["b"]
    r = httpx.post(
        f"{a}/api/v1/auth/login", json={"username": "alice", "password": "correct horse 42"}
    )
    assert r.status_code == 200, r.text
    cookies = dict(r.cookies)
    me = httpx.get(f"{b}/api/v1/auth/me", cookies=cookies)
    assert me.status_code == 200 and me.json()["user"] == "alice"
    assert me.json()["via"] == "session"
    csrf = r.json()["csrf_token"]
    out = httpx.post(f"{b}/api/v1/auth/logout", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert out.status_code in (200, 204), out.text
    assert httpx.get(f"{a}/api/v1/auth/me", cookies=cookies).status_code == 401


def test_metrics_on_either_node_count_the_whole_cluster(cluster: Cluster) -> None:
    (a, _), (b, _) = cluster.nodes["a"], cluster.nodes["b"]
    for _ in range(3):
        httpx.get(f"{a}/readyz")
    time.sleep(2.5)  # one flush (ZHIKU_METRICS_FLUSH_S=1) and a margin

    def ready_count(text: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("zhiku_http_requests_total{") and 'route="/readyz"' in line
        )

    texts = [get(n, "/metrics", cluster.admin).text for n in (a, b)]
    for text in texts:
        assert "zhiku_server_processes 2" in text
        assert text.count("zhiku_server_process{node=") == 2
    assert ready_count(texts[1]) >= 3  # node B reports node A's requests


def test_node_b_finishes_the_job_of_a_node_killed_mid_ingest(cluster: Cluster) -> None:
    (a, proc_a), (b, _) = cluster.nodes["a"], cluster.nodes["b"]
    files = []
    for i in range(40):
        text = "\n\n".join(
            f"第{i}號規定第{j}條：編號 K{i:02d}-{j} 的申請應於{j + 3}日內辦理完畢。"
            for j in range(30)
        )
        files.append(
            ("files", (f"規定{i:02d}.md", f"# 規定{i:02d}\n\n{text}\n".encode(), "text/markdown"))
        )
    r = httpx.post(
        f"{a}/api/v1/kbs/hr/documents", headers=auth(cluster.alice), files=files, timeout=120
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while True:  # kill node A once it is part-way through
        job = get(b, f"/api/v1/jobs/{job_id}", cluster.alice).json()
        if 1 <= job["done"] < job["total"] and job["status"] == "running":
            break
        assert job["status"] != "done", "the job finished before node A could be killed"
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    os.kill(proc_a.pid, signal.SIGKILL)
    proc_a.wait(30)
    # node B, restarted with its ingest worker on, takes the job over
    with running_server(cluster.homes["b"], env=NODE_ENV, log=cluster.root / "b2.log") as (b2, _):
        job = wait_job(b2, job_id, cluster.alice)
        assert job["status"] == "done", job
        assert job["done"] == 40 and job["failed"] == 0, job
        with Zhiku(cluster.homes["b"]) as zk:
            paths = [d.path for d in zk.store.list_documents("hr")]
        assert len(paths) == len(set(paths))  # no duplicate documents
        assert sum(p.startswith("upload://hr/規定") for p in paths) == 40
        r = httpx.post(
            f"{b2}/api/v1/kbs/hr/ask",
            headers=auth(cluster.alice),
            timeout=60,
            json={"question": "編號 K39-7 的申請應於幾日內辦理？"},
        )
        assert r.status_code == 200 and "10日" in r.json()["answer"], r.text


def test_the_uploads_directory_comes_from_zhiku_toml_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhiku.backends.config import ConfigError
    from zhiku.server import uploads

    monkeypatch.delenv(uploads.UPLOADS_ENV, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    assert uploads.root(home) == home / "uploads"
    shared = tmp_path / "shared"
    (home / "zhiku.toml").write_text(f'uploads = "{shared}"\n', "utf-8")
    assert uploads.root(home) == shared
    tmp = uploads.tmp_dir(home)
    tmp.mkdir(parents=True)
    (tmp / "x").write_bytes(b"hello")
    stored = uploads.place(home, 7, tmp / "x", "a.txt", "ab" * 32, 5)
    assert stored.stored == f"uploads/7/{'ab' * 8}/a.txt"  # the same on every node
    assert uploads.stored_path(home, stored.stored).read_bytes() == b"hello"
    assert (shared / "7" / ("ab" * 8) / "a.txt").is_file()
    uploads.remove_stored(home, stored.stored)
    assert not (shared / "7" / ("ab" * 8)).exists()
    monkeypatch.setenv(uploads.UPLOADS_ENV, str(tmp_path / "env"))
    assert uploads.root(home) == tmp_path / "env"
    monkeypatch.delenv(uploads.UPLOADS_ENV)
    (home / "zhiku.toml").write_text('uploads = "relative/dir"\n', "utf-8")
    with pytest.raises(ConfigError, match="uploads"):
        uploads.root(home)


def test_a_server_on_a_shared_database_warns_of_node_local_indexes(
    pg_url: str, tmp_path: Path
) -> None:
    import logging

    from fastapi.testclient import TestClient

    from zhiku.server.app import create_app
    from zhiku.server.settings import ServerSettings

    home = node_home(tmp_path, "home", pg_url, tmp_path / "uploads")
    with Zhiku(home) as zk:
        zk.kb("local", create=True)
        zk.kb("shared", create=True)
        zk.store.update_kb_settings(
            "shared", {"index": {"backend": "milvus", "uri": "http://milvus:19530"}}
        )
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("zhiku.server")
    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        app = create_app(ServerSettings.from_env({}, home=str(home), ingest_worker=False))
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
    finally:
        logger.removeHandler(handler)
    warned = [getattr(r, "kb", None) for r in records if "node-local index" in r.getMessage()]
    assert warned == ["local"]
