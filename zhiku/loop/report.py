"""The analytics report: one dict for the analytics page, ``zhiku report --format json``,
and its CSV and HTML renderings.

Aggregates come from SQL (:class:`zhiku.storage.loop.SqlLoopRepository`): closed days
from the daily rollup (rebuilt for a day whose recorded answers changed), the partial
first day and today from the recorded answers; only the gap clustering runs in Python,
over the newest :data:`GAP_LIMIT` gap questions. Documents the viewer may not see (access
labels) are left out. Personal
data: questions are masked when they are recorded (:func:`record_masked_question`), and
document titles and paths pass through the KB's output policy here, so nothing in a
report holds what the policy keeps from readers.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from zhiku.engine import Zhiku
from zhiku.errors import ZhikuError
from zhiku.loop.gaps import cluster, question_key, trend
from zhiku.pii import PiiPolicy, mask_for_log
from zhiku.storage.loop import Split, SqlLoopRepository
from zhiku.store import KnowledgeBase

if TYPE_CHECKING:
    from zhiku.filters import Filter

GAP_LIMIT = 5000
#: Days and busiest hours are counted in this time zone (``ZHIKU_REPORT_TZ``).
DEFAULT_TZ = "Asia/Taipei"

_SINCE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")


class ReportError(ZhikuError):
    exit_code = 2


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``2w`` or an ISO date/time → the UTC start of the period."""
    now = now or datetime.now(UTC)
    m = _SINCE.match(value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return (
            now - timedelta(hours=n)
            if unit == "h"
            else now - timedelta(days=n * (7 if unit == "w" else 1))
        )
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(f"無法解讀 --since「{value}」：請用 7d、24h、2w 或 2026-01-31") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def tz() -> ZoneInfo:
    import os

    return ZoneInfo(os.environ.get("ZHIKU_REPORT_TZ") or DEFAULT_TZ)


def local_day_hour(ts: datetime) -> tuple[str, int]:
    local = ts.astimezone(tz())
    return local.date().isoformat(), local.hour


def record_masked_question(question: str, kb: KnowledgeBase) -> str:
    """A question as the loop's tables keep it: personal data replaced by its tag."""
    try:
        policy = PiiPolicy.from_dict(kb.settings.get("pii"))
    except Exception:  # noqa: BLE001 - a broken stored policy still masks the defaults
        policy = None
    return mask_for_log(question.strip(), policy)[:500]


def _days(since: datetime, now: datetime) -> list[str]:
    start, end = since.astimezone(tz()).date(), now.astimezone(tz()).date()
    out: list[str] = []
    while start <= end and len(out) < 400:
        out.append(start.isoformat())
        start += timedelta(days=1)
    return out


def _rate(n: int, total: int) -> float | None:
    return None if not total else round(n / total, 4)


def rollup_split(since: datetime, now: datetime) -> Split | None:
    """The split of a report from ``since`` to ``now``: the closed local days strictly
    between since's day and today come from the daily rollup, the rest is read live;
    None when there is no such day."""
    zone = tz()
    first, today = since.astimezone(zone).date(), now.astimezone(zone).date()
    if (today - first).days < 2:
        return None

    def start(d: date) -> str:
        return datetime.combine(d, time(0), zone).astimezone(UTC).isoformat(timespec="seconds")

    return Split(
        first.isoformat(), start(first + timedelta(days=1)), today.isoformat(), start(today)
    )


def build(
    repo: SqlLoopRepository,
    kbs: Sequence[KnowledgeBase],
    since: datetime,
    now: datetime | None = None,
    gaps: int = 20,
    *,
    where: Filter | None = None,
    rollup: bool = True,
    lock: AbstractContextManager[Any] | None = None,
) -> dict[str, Any]:
    """The report over ``kbs`` from ``since`` to now.

    ``where`` is the viewer's access scope (:meth:`zhiku.access.AccessScope.restrict`):
    documents they may not see are left out of most cited / never cited, and gap
    questions whose answer cited one are not shown. ``rollup`` reads closed days from
    the daily rollup (refreshed first, under ``lock``); ``False`` computes everything
    from the recorded answers (the same figures, slower).
    """
    now = now or datetime.now(UTC)
    ids = [kb.id for kb in kbs]
    by_id = {kb.id: kb for kb in kbs}
    by_name = {kb.name: kb for kb in kbs}
    since_iso = since.astimezone(UTC).isoformat(timespec="seconds")
    split = rollup_split(since, now) if rollup else None
    if split is not None:
        repo.refresh_rollup(ids, split, lock)
    totals = repo.totals(ids, since_iso, split)
    q = totals["questions"]
    days = _days(since, now)
    handoff_times = repo.handoff_times(ids, since_iso)

    def doc(d: dict[str, Any]) -> dict[str, Any]:
        kb = by_name[d["kb"]]
        return {
            **d,
            "title": Zhiku.redact_output(kb, d["title"]),
            "path": Zhiku.redact_path(kb, d["path"]),
        }

    never_n, never = repo.never_cited(ids, since_iso, where=where)
    clusters = cluster(repo.gap_questions(ids, since_iso, GAP_LIMIT, where=where))
    gap_out = []
    for i, c in enumerate(clusters[:gaps], 1):
        gap_out.append(
            {
                "id": i,
                "count": c.count,
                "examples": [x for x, _ in c.questions.most_common(3)],
                "questions": len(c.questions),
                "reasons": dict(c.reasons),
                "kbs": dict(c.kbs),
                "trend": trend(c.days, days),
                "keys": sorted(c.keys)[:50],
                "message_ids": c.message_ids[:50],
            }
        )
    curated = []
    entries = repo.list_curated(ids)
    shown = repo.visible_documents([e["doc_id"] for e in entries if e["doc_id"] is not None], where)
    for e in entries:
        if e["doc_id"] is not None and e["doc_id"] not in shown:
            continue  # a curated entry the viewer may not see (labelled afterwards)
        keys = list(dict.fromkeys(question_key(x) for x in [e["question"], *e["questions"]]))
        split_ = repo.refusal_split(e["kb_id"], keys, e["created_at"])
        for side in split_.values():
            side["rate"] = _rate(side["unanswered"], side["asked"])
        curated.append(
            {
                "id": e["id"],
                "kb": e["kb"],
                "question": record_masked_question(e["question"], by_id[e["kb_id"]]),
                "author": e["author"],
                "created_at": e["created_at"],
                **split_,
            }
        )
    return {
        "since": since_iso,
        "until": now.astimezone(UTC).isoformat(timespec="seconds"),
        "timezone": str(tz()),
        "kbs": [kb.name for kb in kbs],
        "days": days,
        "totals": {
            **totals,
            "answered_rate": _rate(totals["answered"], q),
            "refused_rate": _rate(totals["refused"], q),
            # cases opened (typed 轉真人, or the button after a refusal / 👎) per question
            "handoff_rate": _rate(handoff_times["cases"], q),
        },
        "per_day": repo.per_day(ids, since_iso, split),
        "handoff": handoff_times,
        "busiest_hours": repo.busiest_hours(ids, since_iso, split),
        "most_cited": [doc(d) for d in repo.most_cited(ids, since_iso, days=split, where=where)],
        "never_cited": {"count": never_n, "documents": [doc(d) for d in never]},
        "gaps": gap_out,
        "curated": curated,
    }


# --- renderings -------------------------------------------------------------------

_TOTAL_FIELDS = (
    "conversations",
    "questions",
    "answered",
    "refused",
    "handoff",
    "answered_rate",
    "refused_rate",
    "handoff_rate",
    "thumbs_up",
    "thumbs_down",
    "answer_ms_avg",
    "answer_ms_p95",
    "answer_ms_max",
)


def to_csv(report: dict[str, Any]) -> str:
    """Sections of ``section,key,…`` rows: one file a spreadsheet opens."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "key", "value", "extra"])
    for k in _TOTAL_FIELDS:
        w.writerow(["totals", k, report["totals"].get(k), ""])
    for k, v in report["handoff"].items():
        w.writerow(["handoff", k, v, ""])
    for r in report["per_day"]:
        w.writerow(
            [
                "per_day",
                r["day"],
                r["questions"],
                f"channel={r['channel']};kb={r['kb']};conversations={r['conversations']}",
            ]
        )
    for r in report["busiest_hours"]:
        w.writerow(["busiest_hours", r["hour"], r["questions"], ""])
    for d in report["most_cited"]:
        w.writerow(["most_cited", d["title"], d["citations"], f"kb={d['kb']};path={d['path']}"])
    for d in report["never_cited"]["documents"]:
        w.writerow(["never_cited", d["title"], 0, f"kb={d['kb']};path={d['path']}"])
    for g in report["gaps"]:
        w.writerow(
            [
                "gaps",
                " | ".join(g["examples"]),
                g["count"],
                f"trend={g['trend']['direction']};"
                + ";".join(f"{k}={v}" for k, v in sorted(g["reasons"].items())),
            ]
        )
    return buf.getvalue()


_HTML_LABELS = {
    "conversations": "對話數",
    "questions": "提問數",
    "answered": "已回答",
    "refused": "拒答",
    "handoff": "轉真人",
    "answered_rate": "回答率",
    "refused_rate": "拒答率",
    "handoff_rate": "轉真人率",
    "thumbs_up": "👍",
    "thumbs_down": "👎",
    "answer_ms_avg": "平均回答時間（毫秒）",
    "answer_ms_p95": "回答時間 p95（毫秒）",
    "answer_ms_max": "最長回答時間（毫秒）",
}


def to_html(report: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external resources)."""
    e = html.escape

    def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        th = "".join(f"<th>{e(str(h))}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in r) + "</tr>"
            for r in rows
        )
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    t = report["totals"]
    parts = [
        '<!doctype html><html lang="zh-Hant-TW"><meta charset="utf-8">',
        "<title>知庫服務報告</title><style>body{font-family:sans-serif;margin:2em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}</style>",
        f"<h1>知庫服務報告</h1><p>{e(report['since'])} – {e(report['until'])}"
        f"（{e(report['timezone'])}）；知識庫：{e('、'.join(report['kbs']))}</p>",
        "<h2>總覽</h2>",
        table(["項目", "數值"], [(_HTML_LABELS[k], t.get(k)) for k in _TOTAL_FIELDS]),
        "<h2>轉真人處理時間</h2>",
        table(["項目", "數值"], list(report["handoff"].items())),
        "<h2>每日提問</h2>",
        table(
            ["日期", "管道", "知識庫", "提問", "對話"],
            [
                (r["day"], r["channel"], r["kb"], r["questions"], r["conversations"])
                for r in report["per_day"]
            ],
        ),
        "<h2>尖峰時段</h2>",
        table(["時", "提問"], [(r["hour"], r["questions"]) for r in report["busiest_hours"]]),
        "<h2>最常被引用的文件</h2>",
        table(
            ["知識庫", "文件", "引用次數"],
            [(d["kb"], d["title"], d["citations"]) for d in report["most_cited"]],
        ),
        f"<h2>從未被引用的文件（{report['never_cited']['count']}）</h2>",
        table(
            ["知識庫", "文件"], [(d["kb"], d["title"]) for d in report["never_cited"]["documents"]]
        ),
        "<h2>知識缺口</h2>",
        table(
            ["#", "次數", "例句", "原因", "趨勢"],
            [
                (
                    g["id"],
                    g["count"],
                    " / ".join(g["examples"]),
                    "、".join(f"{k}:{v}" for k, v in sorted(g["reasons"].items())),
                    g["trend"]["direction"],
                )
                for g in report["gaps"]
            ],
        ),
        "<h2>精選問答成效（補上前後的未回答率）</h2>",
        table(
            ["知識庫", "問題", "建立", "補上前", "補上後"],
            [
                (c["kb"], c["question"], c["created_at"], c["before"]["rate"], c["after"]["rate"])
                for c in report["curated"]
            ],
        ),
        "</html>",
    ]
    return "\n".join(parts)
