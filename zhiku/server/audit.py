"""The audit log: who asked what, which documents were cited, who changed what.

Questions are masked before they are written (:func:`zhiku.pii.mask_for_log` with the
knowledge base's policy), so the log never holds the personal data a policy keeps out
of the store. Rows keep user and KB *names*: the log outlives what it mentions.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from zhiku.pii import PiiPolicy, mask_for_log
from zhiku.storage.audit import SqlAuditLog
from zhiku.store import KnowledgeBase, Store

FIELDS = ("id", "ts", "user", "key", "action", "kb", "target", "detail", "ip")


@dataclass(slots=True)
class Actor:
    """Who did something: a user through a key, or the command line (``key=None``)."""

    user: str | None
    key: str | None = None
    ip: str | None = None


def mask_question(text: str, kb: KnowledgeBase | None) -> str:
    """``text`` safe for the log, masked with ``kb``'s PII policy (or the default types)."""
    policy = None
    if kb is not None:
        try:
            policy = PiiPolicy.from_dict(kb.settings.get("pii"))
        except Exception:  # noqa: BLE001 - a broken stored policy must not stop logging
            policy = None
    return mask_for_log(text, policy)


def record(
    store: Store,
    actor: Actor,
    action: str,
    *,
    kb: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry (inside the caller's transaction when there is one).

    With a ``kb``, the document paths, file names and titles in ``target`` and
    ``detail`` are masked with its policy here, the one place log entries are written.
    """
    if kb is not None:
        kbo = store.find_kb(kb)
        if kbo is not None:
            target, detail = _masked(kbo, target, detail)
    SqlAuditLog(store.database).append(
        user=actor.user,
        key=actor.key,
        action=action,
        kb=kb,
        target=target,
        detail=detail,
        ip=actor.ip,
    )


def _masked(
    kb: KnowledgeBase, target: str | None, detail: dict[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    from zhiku.engine import Zhiku

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and key in ("name", "path"):
            return Zhiku.redact_path(kb, value)
        if isinstance(value, str) and key == "title":
            return Zhiku.redact_output(kb, value)
        return value

    if target is not None and ("/" in target or "\\" in target):
        target = Zhiku.redact_path(kb, target)
    return target, walk(detail, None) if detail is not None else None


def query(
    store: Store,
    *,
    since: str | None = None,
    until: str | None = None,
    user: str | None = None,
    kb: str | None = None,
    action: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> Iterator[dict[str, Any]]:
    """Entries matching every given filter (``since``/``until``: ISO-8601 prefixes)."""
    yield from SqlAuditLog(store.database).query(
        since=since,
        until=until,
        user=user,
        kb=kb,
        action=action,
        limit=limit,
        newest_first=newest_first,
    )


def write(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Write entries as ``jsonl`` or ``csv`` (detail as a JSON cell); returns the count."""
    n = 0
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(FIELDS)
        for r in rows:
            w.writerow(
                [
                    _cell(json.dumps(r[f], ensure_ascii=False) if f == "detail" else r[f])
                    for f in FIELDS
                ]
            )
            n += 1
    elif fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    else:
        raise ValueError(f"unknown audit format {fmt!r}")
    return n


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    buf = io.StringIO()
    write(rows, fmt, buf)
    return buf.getvalue()
