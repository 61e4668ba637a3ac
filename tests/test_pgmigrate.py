"""``zhiku migrate --to postgresql://…`` on the bundled samples, with a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.models import Chunk
from zhiku.storage.copy import count_rows, user_tables
from zhiku.storage.db import connect
from zhiku.store import Store

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ROOT = SAMPLES.parent


def zhiku_cli(*args: str, database: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ZHIKU_DATABASE_URL", None)
    if database:
        env["ZHIKU_DATABASE_URL"] = database
    return subprocess.run(
        [sys.executable, "-m", "zhiku", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )


def build_home(home: Path) -> None:
    with Zhiku(home) as zk:
        report = ingest_paths(zk, [SAMPLES], "ops")
        assert not report.failed and len(report.files) >= 5
        # An attachment: a self-reference the copy must write after its parent.
        parent = zk.store.put_document(
            "ops",
            path="信件.eml",
            title="信件",
            kind="eml",
            content_hash="p",
            size=1,
            chunks=[Chunk(text="請見附件的出差旅費報支規定。", char_end=14)],
        )
        zk.store.put_document(
            "ops",
            path="信件.eml#旅費.txt",
            title="旅費",
            kind="txt",
            content_hash="c",
            size=1,
            chunks=[Chunk(text="出差旅費應於返回後十日內報支。", char_end=15)],
            parent_id=parent,
        )
        zk.sync_index("ops")
        # Index work applied and cleared: the counter is ahead of every id in index_log.
        assert count_rows(zk.store.database, "index_log") == 0


def test_migrate_copies_everything_and_the_copy_answers_the_same(
    tmp_path: Path, pg_url: str
) -> None:
    home = tmp_path / "home"
    build_home(home)
    src = Store(home / "zhiku.db")
    before = {t: count_rows(src.database, t) for t in user_tables(src.database)}
    docs = [
        tuple(r)
        for r in src.database.execute("SELECT id, path, parent_id FROM documents ORDER BY id")
    ]
    seq = src.index_log_seq()
    src.close()

    res = zhiku_cli("migrate", "--to", pg_url, "--home", str(home), "--sample", "10", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["questions"] >= 10 and out["mismatched_searches"] == []
    del before["schema_migrations"]
    assert out["tables"] == before
    assert (
        list(out["tables"]).index("kbs")
        < list(out["tables"]).index("documents")
        < list(out["tables"]).index("chunks")
    )

    dst = Store(pg_url)
    try:
        assert dst.database.dialect == "postgresql"
        assert [
            tuple(r)
            for r in dst.database.execute("SELECT id, path, parent_id FROM documents ORDER BY id")
        ] == docs
        assert dst.index_log_seq() == seq
        # Sequences advanced: a new document gets a new id, the counter keeps counting.
        new = dst.put_document(
            "ops",
            path="新.txt",
            title="新",
            kind="txt",
            content_hash="n",
            size=1,
            chunks=[Chunk(text="新文件")],
        )
        assert new > max(d[0] for d in docs)
        assert dst.index_log_seq() == seq + 1
        assert dst.delete_document("ops", "信件.eml")
        assert dst.get_document("ops", "信件.eml#旅費.txt") is None
    finally:
        dst.close()
    # The CLI on the migrated home: the same documents, from PostgreSQL.
    stats = zhiku_cli("stats", "--home", str(home), "--json", database=pg_url)
    assert stats.returncode == 0, stats.stderr
    kbs = json.loads(stats.stdout)["kbs"]
    assert [(k["name"], k["documents"]) for k in kbs] == [("ops", len(docs) + 1 - 2)]
    backup = zhiku_cli("backup", str(tmp_path / "b.db"), "--home", str(home), database=pg_url)
    assert backup.returncode == 4 and "pg_dump" in backup.stderr
    assert not (tmp_path / "b.db").exists()
    # The source is left as it was.
    src = Store(home / "zhiku.db")
    assert count_rows(src.database, "documents") == len(docs)
    src.close()


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    with Zhiku(home) as zk:
        ingest_paths(zk, [SAMPLES / "舊版公告.txt"], "ops")
    db = connect(pg_url)
    db.execute("CREATE TABLE keep_me(x INTEGER)")
    db.execute("INSERT INTO keep_me VALUES (1)")
    db.close()
    res = zhiku_cli("migrate", "--to", pg_url, "--home", str(home))
    assert res.returncode == 4
    assert "不是空的" in res.stderr and "keep_me" in res.stderr
    db = connect(pg_url)
    assert user_tables(db) == ["keep_me"]
    db.close()


def test_a_target_that_is_not_postgresql_is_a_usage_error(tmp_path: Path) -> None:
    res = zhiku_cli("migrate", "--to", str(tmp_path / "other.db"), "--home", str(tmp_path / "home"))
    assert res.returncode == 4 and "postgresql://" in res.stderr
    assert not (tmp_path / "other.db").exists()
