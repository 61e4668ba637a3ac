"""Sources registered on a knowledge base: a folder or a web site, with a schedule.

The rows live in the ``sources`` table (store migration 4). The server's job workers
(:mod:`zhiku.server.jobs`) call :func:`enqueue_due` on every poll: in one
``BEGIN IMMEDIATE`` transaction each due source gets a ``source`` job and its next run
time, so several server processes never queue the same run twice, and a source never
has two runs queued or running at once. The worker then calls :func:`run_source`,
which syncs the folder (:func:`zhiku.sources.folder.sync_folder`) or crawls the site
(:class:`zhiku.sources.web.Crawler`) and records the run: start and end, status
(``ok``, ``errors`` when some files or pages failed, ``failed`` when the run could not
happen, ``interrupted`` on shutdown — the job is then re-queued), counts per outcome and
the first errors with the file or URL and the reason.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.server.ids import new_token
from zhiku.store import Store, now_iso

MIN_EVERY_S = 60
MAX_ERRORS = 100
_EVERY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}

if TYPE_CHECKING:
    pass


class SourceError(ZhikuError):
    """A source that cannot be registered as given (bad schedule, target, name)."""

    exit_code = 2


class SourceNotFound(ZhikuError):
    exit_code = 3

    def __init__(self, ref: str) -> None:
        super().__init__(f"找不到來源「{ref}」")
        self.ref = ref


def parse_every(every: str | int | None) -> int | None:
    """``30m`` / ``6h`` / ``1d`` / seconds → seconds; ``manual`` / None → None."""
    if every is None or (isinstance(every, str) and every.strip().lower() in ("manual", "")):
        return None
    if isinstance(every, int):
        secs = every
    else:
        m = _EVERY.match(every)
        if not m:
            raise SourceError(f"同步間隔「{every}」無法辨識（例：30m、6h、1d、manual）")
        secs = int(m.group(1)) * _UNIT[m.group(2).lower()]
    if secs < MIN_EVERY_S:
        raise SourceError(f"同步間隔至少 {MIN_EVERY_S} 秒")
    return secs


def format_every(secs: int | None) -> str | None:
    if secs is None:
        return None
    for unit in ("d", "h", "m"):
        if secs % _UNIT[unit] == 0:
            return f"{secs // _UNIT[unit]}{unit}"
    return f"{secs}s"


def _info(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "kb": row["kb"], "name": row["name"], "kind": row["kind"],
        "target": row["target"], "every": format_every(row["every_s"]),
        "enabled": bool(row["enabled"]), "settings": json.loads(row["settings"]),
        "created_at": row["created_at"],
        "next_run_at": (time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(row["next_run"]))
                        if row["next_run"] is not None and row["every_s"] else None),
        "last_job": row["last_job"], "last_started_at": row["last_started_at"],
        "last_finished_at": row["last_finished_at"], "last_status": row["last_status"],
        "last_counts": json.loads(row["last_counts"]),
        "last_errors": json.loads(row["last_errors"]),
    }


_SELECT = "SELECT s.*, k.name AS kb FROM sources s JOIN kbs k ON k.id=s.kb_id "


def add_source(zk: Zhiku, kb: str, name: str, target: str, *, every: str | int | None = "1d",
               settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register (or replace the settings of) a source of ``kb``; its first run is due now."""
    from zhiku.sources.web import Crawler, CrawlSettings, Refused

    name = name.strip()
    if not name or len(name) > 64:
        raise SourceError("來源名稱需為 1–64 字")
    every_s = parse_every(every)
    settings = dict(settings or {})
    if target.startswith(("http://", "https://")):
        kind = "web"
        try:
            crawl = CrawlSettings.from_dict(settings)
        except TypeError as exc:
            raise SourceError(f"網站來源的設定不正確：{exc}") from exc
        crawler = Crawler(zk, kb, target, crawl)  # validates the URL and the address list
        parts = urlsplit(crawler.start)
        try:  # the start host must pass the address policy already
            crawler.policy.resolve(parts.hostname or "",
                                   parts.port or (443 if parts.scheme == "https" else 80))
        except Refused as r:
            raise SourceError(r.message) from r
        target = crawler.start
    else:
        kind = "folder"
        path = Path(target).expanduser()
        if not path.is_absolute():
            raise SourceError(f"資料夾來源需為絕對路徑：{target}")
        if not path.is_dir():
            raise SourceError(f"資料夾 {target} 不存在或不是資料夾")
        target = str(path.resolve())
    kbo = zk.kb(kb, create=True)
    with zk.store.tx(immediate=True):
        zk.store.db.execute(
            "INSERT INTO sources(kb_id, name, kind, target, settings, every_s, created_at,"
            " next_run) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(kb_id, name) DO UPDATE SET "
            "kind=excluded.kind, target=excluded.target, settings=excluded.settings, "
            "every_s=excluded.every_s, next_run=excluded.next_run, enabled=1",
            (kbo.id, name, kind, target, json.dumps(settings, ensure_ascii=False), every_s,
             now_iso(), time.time()))
    return get_source(zk.store, kb, name)


def list_sources(store: Store, kb: str | None = None,
                 kb_ids: list[int] | None = None) -> list[dict[str, Any]]:
    sql = _SELECT + "WHERE 1=1 "
    args: list[Any] = []
    if kb is not None:
        sql += "AND k.name=? "
        args.append(kb)
    if kb_ids is not None:
        sql += f"AND s.kb_id IN ({','.join('?' * len(kb_ids)) or 'NULL'}) "
        args.extend(kb_ids)
    return [_info(r) for r in store.db.execute(sql + "ORDER BY k.name, s.name", args)]


def get_source(store: Store, kb: str, name: str) -> dict[str, Any]:
    row = store.db.execute(_SELECT + "WHERE k.name=? AND s.name=?", (kb, name)).fetchone()
    if row is None:
        raise SourceNotFound(f"{kb}/{name}")
    return _info(row)


def source_by_id(store: Store, source_id: int) -> dict[str, Any]:
    row = store.db.execute(_SELECT + "WHERE s.id=?", (source_id,)).fetchone()
    if row is None:
        raise SourceNotFound(str(source_id))
    return _info(row)


def delete_source(store: Store, kb: str, name: str) -> None:
    src = get_source(store, kb, name)
    store.db.execute("DELETE FROM sources WHERE id=?", (src["id"],))


def _active_job(store: Store, source_id: int) -> str | None:
    row = store.db.execute(
        "SELECT id FROM jobs WHERE source_id=? AND status IN ('queued','running')",
        (source_id,)).fetchone()
    return row[0] if row else None


def _insert_job(store: Store, kb_id: int, source_id: int, user_id: int | None) -> str:
    job_id = new_token()
    store.db.execute(
        "INSERT INTO jobs(id, kb_id, kind, status, user_id, created_at, source_id) "
        "VALUES (?,?,?,?,?,?,?)", (job_id, kb_id, "source", "queued", user_id, now_iso(),
                                   source_id))
    store.db.execute("UPDATE sources SET last_job=? WHERE id=?", (job_id, source_id))
    return job_id


def queue_run(store: Store, source_id: int, user_id: int | None = None) -> tuple[str, bool]:
    """Queue a run now: (job id, created); an already queued or running one is returned."""
    with store.tx(immediate=True):
        active = _active_job(store, source_id)
        if active is not None:
            return active, False
        row = store.db.execute("SELECT kb_id FROM sources WHERE id=?", (source_id,)).fetchone()
        if row is None:
            raise SourceNotFound(str(source_id))
        return _insert_job(store, row[0], source_id, user_id), True


def enqueue_due(store: Store, now: float | None = None) -> list[str]:
    """Queue a job for every enabled source whose time has come (one transaction)."""
    now = time.time() if now is None else now
    if store.db.execute(
        "SELECT 1 FROM sources WHERE enabled=1 AND every_s IS NOT NULL AND next_run<=? LIMIT 1",
            (now,)).fetchone() is None:
        return []
    out = []
    with store.tx(immediate=True):
        rows = store.db.execute(
            "SELECT id, kb_id, every_s FROM sources WHERE enabled=1 AND every_s IS NOT NULL "
            "AND next_run<=?", (now,)).fetchall()
        for r in rows:
            store.db.execute("UPDATE sources SET next_run=? WHERE id=?",
                             (now + r["every_s"], r["id"]))
            if _active_job(store, r["id"]) is None:
                out.append(_insert_job(store, r["kb_id"], r["id"], None))
    return out


def _record(store: Store, source_id: int, **fields: Any) -> None:
    sets = ", ".join(f"{k}=?" for k in fields)
    store.db.execute(f"UPDATE sources SET {sets} WHERE id=?", (*fields.values(), source_id))


def run_source(zk: Zhiku, source_id: int, *, job_id: str | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Sync one source now, in this thread; records and returns the run's outcome."""
    from zhiku.sources.folder import sync_folder
    from zhiku.sources.web import Crawler, CrawlSettings

    src = source_by_id(zk.store, source_id)
    _record(zk.store, source_id, last_started_at=now_iso(), last_finished_at=None,
            last_status="running", **({"last_job": job_id} if job_id else {}))
    settings = src["settings"]
    meta = {**(settings.get("meta") or {}), "source": src["name"]}
    from zhiku.ingest import IngestReport

    report = IngestReport()
    status = "ok"
    errors: list[dict[str, Any]] = []
    try:
        if src["kind"] == "folder":
            report = sync_folder(zk, src["kb"], Path(src["target"]), meta=meta,
                                 should_stop=should_stop)
        else:
            crawl = CrawlSettings.from_dict({**settings, "meta": meta})
            report = Crawler(zk, src["kb"], src["target"], crawl, origin=f"source:{source_id}",
                             should_stop=should_stop).run()
    except ZhikuError as exc:
        status = "failed"
        errors.append({"path": src["target"], "reason": "source", "message": str(exc)})
    if status == "ok" and should_stop is not None and should_stop():
        status = "interrupted"
    errors.extend({"path": f.path, "reason": f.reason, "message": f.message}
                  for f in report.failed)
    if status == "ok" and report.failed:
        status = "errors"
    counts = {s: report.count(s) for s in
              ("added", "updated", "unchanged", "removed", "skipped", "failed")}
    counts["chunks"] = report.chunks
    _record(zk.store, source_id, last_finished_at=now_iso(), last_status=status,
            last_counts=json.dumps(counts), last_errors=json.dumps(
                errors[:MAX_ERRORS], ensure_ascii=False))
    return source_by_id(zk.store, source_id)
