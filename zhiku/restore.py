"""``zhiku restore FILE``: put a backup in place of the database, safely.

Copying a backup over ``zhiku.db`` is not enough: a crashed process may have left its
``zhiku.db-wal`` behind, and SQLite replays it onto whatever file is called
``zhiku.db`` next — the "restored" store then shows the post-crash state, or is
corrupt. Restoring here:

1. takes the store's open lock exclusively (every :class:`zhiku.store.Store` holds it
   shared while open), so nothing is replaced under a running server or command;
2. checks the backup: a SQLite file that passes ``PRAGMA integrity_check`` and holds a
   zhiku schema no newer than this version;
3. moves the current database *with* its WAL and shared-memory files aside, as
   ``zhiku.db.before-restore-<time>`` (nothing is deleted: opening that file shows the
   pre-restore state), so no stale WAL can meet the restored file;
4. copies the backup in (through a temporary file and an atomic rename), opens it
   (migrations), checks integrity again and rebuilds the derived indexes (lexical
   index and vectors are dropped; the lexical index is rebuilt now, vectors at the next
   ``zhiku models embed`` or ingest).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.errors import StoreError
from zhiku.storage.backup import SQLiteBackup, integrity
from zhiku.store import SCHEMA_VERSION, lock_path

SIDE_FILES = ("-wal", "-shm", "-journal")


class RestoreError(StoreError):
    """The backup cannot be restored, or the store is in use."""


@dataclass(slots=True)
class RestoreReport:
    database: str
    previous: str | None  # where the replaced database was moved
    kbs: dict[str, int] = field(default_factory=dict)  # documents indexed per KB
    seconds: float = 0.0


def check_backup(path: Path) -> int:
    """The backup's schema version; raises :class:`RestoreError` when it is unusable."""
    if not path.is_file():
        raise RestoreError(f"找不到備份檔：{path}")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise RestoreError(f"{path} 不是 SQLite 資料庫（zhiku backup 產生的備份檔）")
    try:
        db = SQLiteBackup(path)
    except sqlite3.Error as exc:
        raise RestoreError(f"無法開啟備份檔 {path}：{exc}") from exc
    try:
        result = db.integrity()
        if result != ["ok"]:
            raise RestoreError(f"備份檔 {path} 未通過完整性檢查：{result[0]}")
        if not db.is_zhiku():
            raise RestoreError(f"{path} 不是 zhiku 的資料庫")
        version = db.schema_version()
    except sqlite3.DatabaseError as exc:
        raise RestoreError(f"備份檔 {path} 已損毀：{exc}") from exc
    finally:
        db.close()
    if version > SCHEMA_VERSION:
        raise RestoreError(f"備份檔來自較新版本的 zhiku（結構版本 {version}），請先升級")
    return int(version)


def restore(home: Path, backup: Path) -> RestoreReport:
    """Replace ``home``'s database by ``backup`` (see the module docstring)."""
    t0 = time.perf_counter()
    db_path = home / "zhiku.db"
    backup = backup.resolve()
    if backup == db_path.resolve():
        raise RestoreError("備份檔就是目前的資料庫")
    check_backup(backup)
    home.mkdir(parents=True, exist_ok=True)
    with lock_path(db_path).open("ab") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RestoreError(
                "資料庫正由其他程序使用中（伺服器或另一個 zhiku 指令），請先停止它們再還原"
            ) from exc
        previous = None
        if db_path.exists():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = db_path.with_name(f"zhiku.db.before-restore-{stamp}")
            os.replace(db_path, aside)
            previous = str(aside)
            for suffix in SIDE_FILES:
                side = db_path.with_name(db_path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
        else:
            for suffix in SIDE_FILES:  # a WAL without its database: from another life
                db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        tmp = db_path.with_name("zhiku.db.restoring")
        shutil.copyfile(backup, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, db_path)
        for folder in ("index", "vectors"):  # derived from the database: rebuilt below
            shutil.rmtree(home / folder, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
    from zhiku.engine import Zhiku

    report = RestoreReport(database=str(db_path), previous=previous)
    with Zhiku(home) as zk:
        result = integrity(zk.store.database)
        if result != "ok":
            raise RestoreError(f"還原後的資料庫未通過完整性檢查：{result}")
        for kb in zk.store.list_kbs():
            report.kbs[kb.name] = zk.index(kb).rebuild()
    report.seconds = time.perf_counter() - t0
    return report
