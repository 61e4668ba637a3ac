"""Retention: how long conversations, feedback, audit entries, the passage access log
and kept uploads are kept, per knowledge base and globally, and the job that enforces it.

Periods are in days, set with ``zhiku retention set`` (or the admin API): a KB's own
period wins over the global one (scope ``*``) for that KB; audit and access-log entries
that name no KB follow the global period. Nothing is kept forever by default only if a
period is set: with no period for a kind, nothing of that kind is purged.

:func:`run_retention` deletes what is older than its period and records the counts
(never the contents) in ``retention_runs``; the server runs it on a schedule
(:class:`RetentionScheduler`, every ``ZHIKU_RETENTION_INTERVAL_S`` seconds, 6 h by
default), ``zhiku retention run`` on demand.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from zhiku.errors import ZhikuError
from zhiku.storage.access import AccessRepository, RetentionData
from zhiku.storage.db import Database

log = logging.getLogger("zhiku.retention")

KINDS = ("conversations", "feedback", "audit", "access_log", "uploads")
GLOBAL = "*"
DEFAULT_INTERVAL_S = 6 * 3600


class RetentionError(ZhikuError):
    exit_code = 2


def set_period(db: Database, what: str, days: int | None, kb: str | None = None) -> None:
    if what not in KINDS:
        raise RetentionError(f"保存期限種類「{what}」不支援（可用：{', '.join(KINDS)}）")
    if days is not None and days < 1:
        raise RetentionError("保存天數至少 1 天")
    AccessRepository(db).set_retention(kb or GLOBAL, what, days)


def periods(db: Database) -> dict[str, dict[str, int]]:
    return AccessRepository(db).retention()


def _cutoff(now: datetime, days: int) -> str:
    return (now - timedelta(days=days)).replace(microsecond=0).isoformat()


def run_retention(
    db: Database, home: Path | None, actor: str = "retention", now: datetime | None = None
) -> dict[str, Any]:
    """Purge what is past its period; the counts per kind (and per KB), recorded."""
    now = now or datetime.now(UTC)
    table = periods(db)
    glob = table.get(GLOBAL, {})
    data = RetentionData(db)
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    per_kb: dict[str, dict[str, int]] = {}
    files: list[str] = []
    for kb in data.kb_names():
        own = {**glob, **table.get(kb, {})}
        got: dict[str, int] = {}
        for what, days in own.items():
            before = _cutoff(now, days)
            if what == "conversations":
                got[what] = data.purge_conversations(before, kb)
            elif what == "feedback":
                got[what] = data.purge_feedback(before, kb)
            elif what == "audit":
                got[what] = data.purge_audit(before, kb)
            elif what == "access_log":
                got[what] = data.purge_access_log(before, kb)
            elif what == "uploads":
                n, gone = data.purge_uploads(before, kb)
                got[what] = n
                files += gone
        for what, n in got.items():
            counts[what] += n
        if any(got.values()):
            per_kb[kb] = {k: v for k, v in got.items() if v}
    if "audit" in glob:  # entries of no KB (user and key changes…) and of deleted KBs
        counts["audit"] += data.purge_audit(_cutoff(now, glob["audit"]), without_kb=True)
    if home is not None:
        from zhiku.server.uploads import remove_stored

        for stored in files:
            remove_stored(home, stored)
    result = {"purged": counts, "kbs": per_kb, "files_removed": len(files)}
    result["run_id"] = AccessRepository(db).record_retention_run(actor, result)
    return result


class RetentionScheduler:
    """A daemon thread of the server running :func:`run_retention` on a schedule."""

    def __init__(self, db_path: str | Path, home: Path, interval_s: float | None = None) -> None:
        """``db_path``: the store's database (a SQLite file or a ``postgresql://`` URL)."""
        self.db_path, self.home = db_path, home
        raw = os.environ.get("ZHIKU_RETENTION_INTERVAL_S")
        self.interval_s = (
            interval_s if interval_s is not None else (float(raw) if raw else DEFAULT_INTERVAL_S)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zhiku-retention", daemon=True)
        self.runs = 0

    def start(self) -> RetentionScheduler:
        if self.interval_s > 0:
            self._thread.start()
        return self

    def _loop(self) -> None:
        from zhiku.store import Store

        while not self._stop.wait(self.interval_s):
            try:
                store = Store(self.db_path)
                try:
                    result = run_retention(store.database, self.home, "scheduler")
                finally:
                    store.close()
                self.runs += 1
                if any(result["purged"].values()):
                    log.info("retention purged", extra={"purged": result["purged"]})
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("retention run failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
