"""Contract suite of the jobs and sources repositories, on SQLite and on a real PostgreSQL:
claiming under concurrency, stale-heartbeat takeover, owner-only updates, race-free
source scheduling, crawl state upserts and the heartbeat thread's own connection."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from zhiku.server import jobs as server_jobs
from zhiku.storage import migrate
from zhiku.storage.db import Database, connect, now_iso
from zhiku.storage.jobs import SqlJobs
from zhiku.storage.sources import SqlSources
from zhiku.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "zhiku.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(target: str) -> Iterator[Database]:
    database = connect(target)
    migrate.apply(database)
    yield database
    database.close()


def _kb(db: Database, name: str = "hr") -> int:
    return int(
        db.execute(
            "INSERT INTO kbs(name, created_at, secret) VALUES (?,?,?) RETURNING id",
            (name, now_iso(), b"k"),
        ).fetchone()[0]
    )


def _files(n: int) -> list[dict[str, object]]:
    return [
        {
            "name": f"f{i}.txt",
            "path": f"f{i}.txt",
            "stored": f"uploads/1/{i:016x}/f{i}.txt",
            "sha256": f"{i:064x}",
            "size": 10 + i,
            "status": "pending",
        }
        for i in range(n)
    ]


def _row(db: Database, job_id: str) -> tuple[str, str | None]:
    row = db.execute("SELECT status, worker FROM jobs WHERE id=?", (job_id,)).fetchone()
    return row[0], row[1]


def test_create_read_and_count(db: Database) -> None:
    repo = SqlJobs(db)
    kb = _kb(db)
    repo.create("j1", kb, "upload", None, _files(3))
    repo.create(
        "j2",
        kb,
        "upload",
        None,
        [{"name": "bad.exe", "status": "failed", "reason": "type", "message": "no"}],
    )
    assert repo.get("j1")["kb"] == "hr"
    assert repo.get("j1", [kb + 1]) is None  # not in the caller's KBs
    assert repo.get("j2")["status"] == "done"  # nothing pending: done at once
    assert [f["name"] for f in repo.files("j1")] == ["f0.txt", "f1.txt", "f2.txt"]
    assert [f["ord"] for f in repo.pending_files("j1")] == [0, 1, 2]
    assert repo.queue_counts() == {"queued": 1, "running": 0, "files_pending": 3}
    assert set(repo.ids_of_kb(kb, 10)) == {"j1", "j2"}
    assert repo.ids_of_kb(kb, 1) and len(repo.ids_of_kb(kb, 1)) == 1
    assert repo.kb_name(kb) == "hr" and repo.kb_name(kb + 99) is None


def test_concurrent_claimers_never_take_the_same_job(db: Database) -> None:
    repo = SqlJobs(db)
    kb = _kb(db)
    ids = [f"job{i:03d}" for i in range(100)]
    for job_id in ids:
        repo.create(job_id, kb, "upload", None, _files(1))
    claimed: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(n: int) -> None:
        conn = db.new_connection()  # a connection of its own, as another node has
        try:
            mine = SqlJobs(conn)
            start.wait()
            while (job := mine.claim(f"host{n}:{n}:w", time.time(), 600)) is not None:
                claimed[n].append(job[0])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    every = [j for c in claimed for j in c]
    assert Counter(every) == Counter(ids)  # each job exactly once
    for n, mine in enumerate(claimed):
        for job_id in mine:
            assert _row(db, job_id) == ("running", f"host{n}:{n}:w")
    assert repo.claim("late:1:w", time.time(), 600) is None


def test_stale_takeover_and_owner_only_updates(db: Database) -> None:
    repo = SqlJobs(db)
    kb = _kb(db)
    repo.create("j", kb, "upload", 7, _files(3))
    t0 = time.time()
    a, b = "hostA:100:aaaa", "hostB:200:bbbb"
    assert repo.claim(a, t0, 600) == ("j", kb, "upload")
    up = {"path": "f0.txt", "stored": "uploads/1/0/f0.txt", "sha256": "0" * 64, "size": 10}
    assert repo.record_file("j", a, t0 + 1, 0, "added", None, None, 4, up) == (True, None)
    assert repo.beat("j", a, t0 + 2)
    # a fresh heartbeat is not taken over; one older than stale_s is, on any host
    assert repo.claim(b, t0 + 300, 600) is None
    assert repo.claim(b, t0 + 700, 600) == ("j", kb, "upload")
    assert _row(db, "j") == ("running", b)
    # the old owner is refused everything, and changes nothing
    assert not repo.beat("j", a, t0 + 701)
    assert repo.record_file("j", a, t0 + 701, 1, "added", None, None, 2, None) == (False, None)
    assert not repo.finish("j", a, "done")
    assert not repo.requeue("j", a)
    assert _row(db, "j") == ("running", b)
    # the new owner only has the files still pending
    assert [f["ord"] for f in repo.pending_files("j")] == [1, 2]
    for ord_ in (1, 2):
        assert repo.record_file("j", b, t0 + 702, ord_, "added", None, None, 1, None)[0]
    assert repo.finish("j", b, "done")
    assert _row(db, "j") == ("done", None)
    assert repo.queue_counts() == {"queued": 0, "running": 0, "files_pending": 0}
    assert [f["status"] for f in repo.files("j")] == ["added"] * 3


def test_uploads_record_replaces_and_frees_the_stored_file(db: Database) -> None:
    repo = SqlJobs(db)
    kb = _kb(db)
    user = int(
        db.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?,?,?) RETURNING id",
            ("ann", "reader", now_iso()),
        ).fetchone()[0]
    )
    for job_id, stored in (("j1", "s/old"), ("j2", "s/new")):
        repo.create(job_id, kb, "upload", user, _files(1))
        assert repo.claim("h:1:w", time.time(), 600) == (job_id, kb, "upload")
        up = {"path": "a.txt", "stored": stored, "sha256": "1" * 64, "size": 3}
        ok, old = repo.record_file(job_id, "h:1:w", time.time(), 0, "added", None, None, 1, up)
        assert ok and old == ("s/old" if job_id == "j2" else None)
    row = db.execute(
        "SELECT stored, user_id FROM uploads WHERE kb_id=? AND path='a.txt'", (kb,)
    ).fetchone()
    assert (row[0], row[1]) == ("s/new", user)
    assert repo.stored_in_use("s/new") and not repo.stored_in_use("s/old")


def test_heartbeat_thread_uses_a_connection_of_its_own(db: Database) -> None:
    repo = SqlJobs(db)
    kb = _kb(db)
    repo.create("j", kb, "upload", None, _files(1))
    assert repo.claim("h:1:w", 0.0, 600) is not None  # an old heartbeat
    hb = server_jobs.Heartbeat(db.new_connection, "j", "h:1:w", 0.02)
    hb.start()
    deadline = time.time() + 20
    while db.execute("SELECT heartbeat FROM jobs WHERE id='j'").fetchone()[0] < 1.0:
        assert time.time() < deadline, "the heartbeat was never refreshed"
        time.sleep(0.02)
    assert not hb.lost.is_set()
    assert repo.claim("other:2:w", time.time() + 700, 600) is not None  # taken over
    assert hb.lost.wait(20)
    hb.stop()
    assert not hb.is_alive()


def test_reclaim_dead_workers_keeps_other_hosts_jobs(target: str) -> None:
    store = Store(target)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        repo = SqlJobs(store.database)
        kb = _kb(store.database)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        host = socket.gethostname()
        # a worker of another host is never judged by this host's pids
        owners = {
            "local-dead": f"{host}:{dead.pid}:aaaa",
            "local-alive": f"{host}:{alive.pid}:bbbb",
            "remote": f"not-{host}:{dead.pid}:cccc",
        }
        for job_id, worker in owners.items():
            repo.create(job_id, kb, "upload", None, _files(1))
            assert repo.claim(worker, time.time(), 600) == (job_id, kb, "upload")
        assert server_jobs.reclaim_dead_workers(store) == ["local-dead"]
        assert _row(store.database, "local-dead") == ("queued", None)
        assert _row(store.database, "local-alive") == ("running", owners["local-alive"])
        assert _row(store.database, "remote") == ("running", owners["remote"])
    finally:
        alive.kill()
        alive.wait()
        store.close()


# --- sources ----------------------------------------------------------------------------


def _source(
    db: Database, kb: int, name: str, every_s: int | None = 3600, next_run: float = 0.0
) -> int:
    repo = SqlSources(db)
    repo.upsert(kb, name, "folder", f"/srv/{name}", {"meta": {"a": 1}}, every_s, next_run)
    return int(
        db.execute("SELECT id FROM sources WHERE kb_id=? AND name=?", (kb, name)).fetchone()[0]
    )


def test_due_sources_get_exactly_one_job_with_two_schedulers_racing(db: Database) -> None:
    kb = _kb(db)
    ids = [_source(db, kb, f"s{i:02d}") for i in range(30)]
    _source(db, kb, "manual", every_s=None)
    now = time.time()
    got: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    serial = iter(range(10_000))
    lock = threading.Lock()

    def new_id() -> str:
        with lock:
            return f"job{next(serial):05d}"

    def scheduler(n: int) -> None:
        conn = db.new_connection()
        try:
            repo = SqlSources(conn)
            start.wait()
            for _ in range(5):
                got[n].extend(repo.enqueue_due(now, new_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=scheduler, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    rows = db.execute("SELECT source_id, COUNT(*) FROM jobs GROUP BY source_id").fetchall()
    assert sorted((int(r[0]), int(r[1])) for r in rows) == [(i, 1) for i in ids]
    assert len(got[0]) + len(got[1]) == 30
    repo = SqlSources(db)
    for i in ids:
        src = repo.by_id(i)
        assert src["next_run"] == pytest.approx(now + 3600)
        assert src["last_job"] in got[0] + got[1]
    # the next period, with the run still queued: the schedule moves on, no second job
    assert repo.enqueue_due(now + 3600, new_id) == []
    assert repo.by_id(ids[0])["next_run"] == pytest.approx(now + 7200)
    # a manual run returns the active job; after it finishes a new one is queued
    job, created = repo.queue_run(ids[0], None, new_id) or ("", True)
    assert not created and job == repo.by_id(ids[0])["last_job"]
    db.execute("UPDATE jobs SET status='done' WHERE id=?", (job,))
    again = repo.queue_run(ids[0], 5, new_id)
    assert again is not None and again[1] and again[0] != job
    assert repo.queue_run(10_000, None, new_id) is None


def test_source_rows_and_run_records(db: Database) -> None:
    repo = SqlSources(db)
    kb = _kb(db, "法規")
    sid = _source(db, kb, "site", next_run=5.0)
    repo.upsert(kb, "site", "web", "https://example.org/", {"depth": 2}, 86400, 9.0)
    row = repo.get("法規", "site")
    assert (row["id"], row["kind"], row["target"], row["every_s"], row["next_run"]) == (
        sid,
        "web",
        "https://example.org/",
        86400,
        9.0,
    )
    assert row["settings"] == '{"depth": 2}' and row["kb"] == "法規"
    repo.record(sid, last_status="ok", last_counts='{"added": 2}')
    assert repo.by_id(sid)["last_status"] == "ok"
    with pytest.raises(ValueError):
        repo.record(sid, kb_id=99)  # only a run's own columns
    assert [r["name"] for r in repo.find("法規")] == ["site"]
    assert repo.find(kb_ids=[]) == []
    repo.delete(sid)
    assert repo.get("法規", "site") is None and repo.by_id(sid) is None


def test_crawl_state_upserts(db: Database) -> None:
    repo = SqlSources(db)
    kb = _kb(db)
    repo.save_page_state(kb, "source:1", "https://a/x", '"e1"', "Mon", ["https://a/y"], 200)
    # a 304 without validators keeps the old ones, and replaces links and status
    repo.save_page_state(kb, "source:1", "https://a/x", None, None, ["https://a/z"], 304)
    st = repo.page_state(kb, "source:1", "https://a/x")
    assert (st["etag"], st["last_modified"], st["links"]) == ('"e1"', "Mon", '["https://a/z"]')
    repo.save_page_state(kb, "source:1", "https://a/x", '"e2"', None, [], 200)
    assert repo.page_state(kb, "source:1", "https://a/x")["etag"] == '"e2"'
    assert repo.page_state(kb, "source:2", "https://a/x") is None  # per origin
    urls = [f"https://a/{i}" for i in range(1200)]
    for u in urls:
        repo.save_page_state(kb, "source:2", u, None, None, [], 200)
    assert sorted(repo.page_urls(kb, "source:2")) == sorted(urls)
    repo.delete_pages(kb, "source:2", urls[:1100])  # more than one statement's worth
    assert sorted(repo.page_urls(kb, "source:2")) == sorted(urls[1100:])
    assert repo.page_urls(kb, "source:1") == ["https://a/x"]


# --- the worker: a dead node's job is finished by another ---------------------------------


def test_a_dead_nodes_job_is_finished_by_another_without_ingesting_twice(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhiku.engine import Zhiku
    from zhiku.server.jobs import IngestWorker
    from zhiku.store import DATABASE_ENV

    if target.startswith("postgresql"):
        monkeypatch.setenv(DATABASE_ENV, target)
    home = tmp_path / "home"
    with Zhiku(home) as zk:
        kb = zk.kb("hr", create=True)
        files: list[dict[str, object]] = []
        for i in range(3):
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
        job_id = server_jobs.create_job(zk.store, kb, "upload", None, files)
        # Node A, on another host, claims the job, ingests its first file and dies.
        a = IngestWorker(home)
        a.worker_id = f"not-{socket.gethostname()}:4242:dead"
        assert server_jobs.claim(zk.store, a.worker_id, 600) == (job_id, kb.id, "upload")
        first = dict(SqlJobs(zk.store.database).pending_files(job_id)[0])
        a._ingest_one(zk, "hr", kb.id, job_id, "upload", first)
        assert server_jobs.reclaim_dead_workers(zk.store) == []  # not this host's to judge
        zk.store.database.execute("UPDATE jobs SET heartbeat=heartbeat-601 WHERE id=?", (job_id,))
        seen: list[str] = []
        b = IngestWorker(
            home, stale_s=600, poll_s=0.05, on_file=lambda status, info: seen.append(info["name"])
        )
        b.start()
        try:
            deadline = time.time() + 120
            while _row(zk.store.database, job_id)[0] != "done":
                assert time.time() < deadline, "node B never finished the job"
                time.sleep(0.05)
        finally:
            assert b.stop(30)
        assert seen == ["公告1.txt", "公告2.txt"]  # file 0 was not ingested again
        states = [f["status"] for f in SqlJobs(zk.store.database).files(job_id)]
        assert states == ["added", "added", "added"]
        assert len(zk.store.list_documents("hr")) == 3
