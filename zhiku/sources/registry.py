"""Sources registered on a knowledge base: a folder or a web site, with a schedule.

The rows live in the ``sources`` table (store migration 4), read and written through
:mod:`zhiku.storage.sources`. The server's job workers (:mod:`zhiku.server.jobs`) call
:func:`enqueue_due` on every poll: in one transaction each due source gets a ``source``
job and its next run time, so several server processes never queue the same run twice,
and a source never has two runs queued or running at once. The worker then calls :func:`run_source`,
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
from zhiku.storage.sources import SqlSources
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
        "id": row["id"],
        "kb": row["kb"],
        "name": row["name"],
        "kind": row["kind"],
        "target": row["target"],
        "every": format_every(row["every_s"]),
        "enabled": bool(row["enabled"]),
        "settings": json.loads(row["settings"]),
        "created_at": row["created_at"],
        "next_run_at": (
            time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(row["next_run"]))
            if row["next_run"] is not None and row["every_s"]
            else None
        ),
        "last_job": row["last_job"],
        "last_started_at": row["last_started_at"],
        "last_finished_at": row["last_finished_at"],
        "last_status": row["last_status"],
        "last_counts": json.loads(row["last_counts"]),
        "last_errors": json.loads(row["last_errors"]),
    }


def _repo(store: Store) -> SqlSources:
    return SqlSources(store.database)


def add_source(
    zk: Zhiku,
    kb: str,
    name: str,
    target: str,
    *,
    every: str | int | None = "1d",
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
            crawler.policy.resolve(
                parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
            )
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
        _repo(zk.store).upsert(kbo.id, name, kind, target, settings, every_s, time.time())
    return get_source(zk.store, kb, name)


def list_sources(
    store: Store, kb: str | None = None, kb_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    return [_info(r) for r in _repo(store).find(kb, kb_ids)]


def get_source(store: Store, kb: str, name: str) -> dict[str, Any]:
    row = _repo(store).get(kb, name)
    if row is None:
        raise SourceNotFound(f"{kb}/{name}")
    return _info(row)


def source_by_id(store: Store, source_id: int) -> dict[str, Any]:
    row = _repo(store).by_id(source_id)
    if row is None:
        raise SourceNotFound(str(source_id))
    return _info(row)


def delete_source(store: Store, kb: str, name: str) -> None:
    src = get_source(store, kb, name)
    _repo(store).delete(src["id"])


def queue_run(store: Store, source_id: int, user_id: int | None = None) -> tuple[str, bool]:
    """Queue a run now: (job id, created); an already queued or running one is returned."""
    out = _repo(store).queue_run(source_id, user_id, new_token)
    if out is None:
        raise SourceNotFound(str(source_id))
    return out


def enqueue_due(store: Store, now: float | None = None) -> list[str]:
    """Queue a job for every enabled source whose time has come (one transaction)."""
    return _repo(store).enqueue_due(time.time() if now is None else now, new_token)


def _record(store: Store, source_id: int, **fields: Any) -> None:
    _repo(store).record(source_id, **fields)


def run_source(
    zk: Zhiku,
    source_id: int,
    *,
    job_id: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Sync one source now, in this thread; records and returns the run's outcome."""
    from zhiku.sources.folder import sync_folder
    from zhiku.sources.web import Crawler, CrawlSettings

    src = source_by_id(zk.store, source_id)
    _record(
        zk.store,
        source_id,
        last_started_at=now_iso(),
        last_finished_at=None,
        last_status="running",
        **({"last_job": job_id} if job_id else {}),
    )
    settings = src["settings"]
    meta = {**(settings.get("meta") or {}), "source": src["name"]}
    from zhiku.ingest import IngestReport

    report = IngestReport()
    status = "ok"
    errors: list[dict[str, Any]] = []
    try:
        if src["kind"] == "folder":
            report = sync_folder(
                zk, src["kb"], Path(src["target"]), meta=meta, should_stop=should_stop
            )
        else:
            crawl = CrawlSettings.from_dict({**settings, "meta": meta})
            report = Crawler(
                zk,
                src["kb"],
                src["target"],
                crawl,
                origin=f"source:{source_id}",
                should_stop=should_stop,
            ).run()
    except ZhikuError as exc:
        status = "failed"
        errors.append({"path": src["target"], "reason": "source", "message": str(exc)})
    if status == "ok" and should_stop is not None and should_stop():
        status = "interrupted"
    errors.extend({"path": f.path, "reason": f.reason, "message": f.message} for f in report.failed)
    if status == "ok" and report.failed:
        status = "errors"
    counts = {
        s: report.count(s)
        for s in ("added", "updated", "unchanged", "removed", "skipped", "failed")
    }
    counts["chunks"] = report.chunks
    _record(
        zk.store,
        source_id,
        last_finished_at=now_iso(),
        last_status=status,
        last_counts=json.dumps(counts),
        last_errors=json.dumps(errors[:MAX_ERRORS], ensure_ascii=False),
    )
    return source_by_id(zk.store, source_id)
