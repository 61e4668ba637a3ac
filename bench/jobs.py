"""Job claiming: how fast workers on their own connections drain a queue, on SQLite
(``BEGIN IMMEDIATE``) and on PostgreSQL (``FOR UPDATE SKIP LOCKED``), and that no job is
claimed twice.

    python bench/jobs.py [--jobs 2000] [--pg postgresql://…] [--write]

Each worker thread opens its own connection and loops claim → finish until the queue is
empty; the figure is jobs per second over the whole drain, with 1 and 4 workers. The
PostgreSQL run uses ``--pg`` (or ``$TEST_POSTGRES_URL``, an empty database is created in
it), else a private cluster started with Debian's ``initdb`` as the tests do. Timings on
a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_section  # noqa: E402
from zhiku.storage import migrate  # noqa: E402
from zhiku.storage.db import Database, connect, now_iso  # noqa: E402
from zhiku.storage.jobs import SqlJobs  # noqa: E402


def drain(db: Database, n_jobs: int, workers: int) -> tuple[float, int]:
    """(jobs per second, duplicate claims) for ``workers`` threads draining ``n_jobs``."""
    db.execute("DELETE FROM jobs")
    db.execute("DELETE FROM kbs")
    kb = int(
        db.execute(
            "INSERT INTO kbs(name, created_at, secret) VALUES (?,?,?) RETURNING id",
            ("bench", now_iso(), b"k"),
        ).fetchone()[0]
    )
    repo = SqlJobs(db)
    for i in range(n_jobs):
        repo.create(
            f"j{i:06d}",
            kb,
            "upload",
            None,
            [{"name": "a.txt", "path": "a.txt", "status": "pending"}],
        )
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(workers + 1)

    def work(n: int) -> None:
        conn = db.new_connection()
        mine = SqlJobs(conn)
        worker = f"bench:{n}:w"
        got: list[str] = []
        start.wait()
        while (job := mine.claim(worker, time.time(), 600)) is not None:
            got.append(job[0])
            mine.finish(job[0], worker, "done")
        conn.close()
        with lock:
            claimed.extend(got)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    dupes = sum(c - 1 for c in Counter(claimed).values())
    assert len(set(claimed)) == n_jobs, "some jobs were never claimed"
    return n_jobs / seconds, dupes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--pg", default=os.environ.get("TEST_POSTGRES_URL"))
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args()

    rows: list[tuple[str, int, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(str(Path(tmp) / "zhiku.db"))
        migrate.apply(db)
        for workers in (1, 4):
            rate, dupes = drain(db, args.jobs, workers)
            rows.append(("SQLite (WAL, `BEGIN IMMEDIATE`)", workers, rate, dupes))
        db.close()

    cluster = None
    if args.pg:
        server = args.pg
    else:
        from tests.pg import PrivateCluster

        cluster = PrivateCluster()
        server = cluster.url
    try:
        import psycopg

        from tests.pg import with_database

        name = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            db = connect(with_database(server, name))
            migrate.apply(db)
            for workers in (1, 4):
                rate, dupes = drain(db, args.jobs, workers)
                rows.append(("PostgreSQL (`FOR UPDATE SKIP LOCKED`)", workers, rate, dupes))
            db.close()
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if cluster is not None:
            cluster.stop()

    cmd = f"python bench/jobs.py --jobs {args.jobs} --write"
    body = (
        "## Job claiming on SQLite and PostgreSQL\n\n"
        f"`{cmd}` on {machine()} (shared machine: timings are noisy). Each worker is a "
        f"thread with its own connection, looping claim → finish over {args.jobs} queued "
        "jobs; PostgreSQL is a local cluster (Unix socket, fsync off, as in the tests).\n\n"
        "| database | workers | jobs/s (claim + finish) | ms per job | claimed twice |\n"
        "|---|---:|---:|---:|---:|\n"
        + "".join(f"| {d} | {w} | {r:,.0f} | {1000 / r:.2f} | {x} |\n" for d, w, r, x in rows)
        + "\nOn SQLite the workers queue on the one write lock; on PostgreSQL they skip "
        "each other's locked rows. Either way the claim is small beside ingesting a file.\n"
    )
    print(body)
    if args.write:
        write_section("jobs", body)


if __name__ == "__main__":
    main()
