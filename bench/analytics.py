"""The analytics report over 100k recorded conversations.

    python bench/analytics.py [--conversations 100000] [--repeat 5] [--reuse DIR] [--write]

Generates a data directory with one KB of 200 documents and ``--conversations``
conversations (1–3 questions each, spread over 30 days; 75 % answered with 1–3
citations, 18 % refused, 7 % handed off with replies and resolutions; 5 % rated) written
through the loop's repository (:class:`zhiku.storage.loop.SqlLoopRepository`), then
measures, on the same machine:

- the first report after recording (the daily rollup of the closed days built), the
  report computed directly (no rollup), and ``build()`` in-process for 7 and 30 days
  with the rollup (the SQL aggregates and the gap clustering);
- ``GET /api/v1/analytics?since=7d`` on a real ``zhiku serve`` over loopback (what the
  analytics page loads; the charts then draw in the browser);
- ``zhiku report --since 7d`` as a process (start-up included), JSON and HTML.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import machine, write_section  # noqa: E402
from tests.server_util import running_server  # noqa: E402
from zhiku.engine import Zhiku  # noqa: E402
from zhiku.loop.gaps import question_key  # noqa: E402
from zhiku.loop.report import build, local_day_hour, parse_since, rollup_split  # noqa: E402
from zhiku.models import Block, LoadedDocument  # noqa: E402
from zhiku.server import accounts  # noqa: E402
from zhiku.storage.loop import Citation, SqlLoopRepository  # noqa: E402

NEEDS = [
    "特別休假幾天",
    "病假上限",
    "出差住宿費上限",
    "加班費怎麼算",
    "年終獎金何時發",
    "健康檢查補助",
    "停車位申請",
    "育嬰留職停薪",
    "員工旅遊補助",
    "離職手續",
    "寵物友善政策",
    "遠端工作規定",
    "交通補助",
    "伙食津貼",
    "電腦設備報修",
]
FORMS = ["{}？", "請問{}", "我想知道{}", "{}是多少", "想問一下{}的規定", "{}要怎麼申請"]


def generate(home: Path, n_conv: int, seed: int = 7) -> tuple[str, int]:
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    with Zhiku(home) as zk:
        zk.kb("hr", create=True)
        for d in range(200):
            zk.add_loaded(
                "hr",
                f"doc{d:03d}.md",
                LoadedDocument(
                    title=f"規章第{d}號",
                    kind="markdown",
                    blocks=[Block(f"第{d}號規章：{NEEDS[d % len(NEEDS)]}的說明與辦法。")],
                ),
            )
        zk.sync_index("hr")
        s = zk.store
        user = accounts.create_user(s, "root", "admin")
        key = accounts.create_key(s, "root")[0]
        kb = s.get_kb("hr")
        doc_ids = s.kb_doc_ids(kb.id)
        db = s.database
        repo = SqlLoopRepository(db)
        dept = repo.create_department("客服")
        t0 = time.perf_counter()
        messages = 0
        with db.tx(immediate=True):
            for c in range(n_conv):
                conv = f"c{c:07d}"
                start = now - timedelta(seconds=rnd.uniform(0, 30 * 86400))
                iso = start.isoformat(timespec="seconds")
                db.execute(
                    "INSERT INTO conversations(id, user_id, kb_id, title, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (conv, user.id, kb.id, "t", iso, iso),
                )
                for m in range(rnd.choice((1, 1, 2, 3))):
                    at = start + timedelta(seconds=40 * m)
                    mid = f"{conv}-{m}"
                    q = rnd.choice(FORMS).format(rnd.choice(NEEDS))
                    r = rnd.random()
                    outcome = "answered" if r < 0.75 else "refused" if r < 0.93 else "handoff"
                    db.execute(
                        "INSERT INTO messages(id, conversation_id, seq, question, answer, "
                        "refused, created_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                        (
                            mid,
                            conv,
                            m + 1,
                            q,
                            int(outcome == "refused"),
                            at.isoformat(timespec="seconds"),
                        ),
                    )
                    cites = (
                        [
                            Citation(rnd.choice(doc_ids[:150]), None)
                            for _ in range(rnd.randint(1, 3))
                        ]
                        if outcome == "answered"
                        else []
                    )
                    day, hour = local_day_hour(at)
                    repo.record_answer(
                        mid,
                        conv,
                        kb.id,
                        "web",
                        outcome,
                        q,
                        question_key(q),
                        rnd.randint(40, 900),
                        day,
                        hour,
                        cites,
                        created_at=at.isoformat(timespec="microseconds"),
                    )
                    if rnd.random() < 0.05:
                        db.execute(
                            "INSERT INTO feedback(answer_id, user_id, rating, created_at)"
                            " VALUES (?, ?, ?, ?)",
                            (mid, user.id, rnd.choice((1, -1)), at.isoformat()),
                        )
                    if outcome == "handoff":
                        case, _ = repo.open_case(conv, kb.id, dept, "asked", q)
                        reply = at + timedelta(seconds=rnd.uniform(30, 3600))
                        db.execute(
                            "UPDATE handoff_cases SET created_at=?, first_reply_at=?, "
                            "resolved_at=?, status='resolved' WHERE id=?",
                            (
                                at.isoformat(timespec="seconds"),
                                reply.isoformat(timespec="seconds"),
                                (reply + timedelta(minutes=20)).isoformat(timespec="seconds"),
                                case,
                            ),
                        )
                    messages += 1
        gen_s = time.perf_counter() - t0
    print(f"generated {n_conv} conversations, {messages} questions in {gen_s:.1f} s")
    return key, messages


def timed(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    xs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1000, max(xs) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    ap.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="a data directory: generated there when empty, reused when not",
    )
    args = ap.parse_args()
    home = args.reuse or Path(tempfile.mkdtemp(prefix="zhiku-analytics-")) / "home"
    if (home / "zhiku.db").exists():
        with Zhiku(home) as zk:
            key = accounts.create_key(zk.store, "root")[0]
            n_msg = int(
                zk.store.database.execute("SELECT COUNT(*) FROM answer_stats").fetchone()[0]
            )
            for table in (
                "analytics_days",
                "analytics_hours",
                "analytics_conversations",
                "analytics_citations",
            ):  # measure the first report's build again
                zk.store.database.execute(f"DELETE FROM {table}")
    else:
        key, n_msg = generate(home, args.conversations)
    db_mb = (home / "zhiku.db").stat().st_size / 1e6
    rows = []
    load = os.getloadavg()
    with Zhiku(home) as zk:
        repo = SqlLoopRepository(zk.store.database)
        kbs = [zk.store.get_kb("hr")]
        start = parse_since("30d")
        split = rollup_split(start, datetime.now(UTC))
        assert split is not None
        t0 = time.perf_counter()
        built = repo.refresh_rollup([kbs[0].id], split)
        rows.append(
            (
                f"first report after recording: the rollup of {built} closed days built",
                (time.perf_counter() - t0) * 1000,
                (time.perf_counter() - t0) * 1000,
            )
        )
        start = parse_since("7d")
        med, worst = timed(lambda: build(repo, kbs, start, rollup=False), args.repeat)
        rows.append(("report build, 7d, computed directly (no rollup, as before)", med, worst))
        for since in ("7d", "30d"):
            start = parse_since(since)
            med, worst = timed(lambda start=start: build(repo, kbs, start), args.repeat)
            rep = build(repo, kbs, start)
            rows.append(
                (
                    f"report build, {since} ({rep['totals']['questions']:,} questions, "
                    f"{len(rep['gaps'])} gap clusters shown)",
                    med,
                    worst,
                )
            )
    auth = {"Authorization": f"Bearer {key}"}
    with (
        running_server(home) as (base, _proc),
        httpx.Client(base_url=base, headers=auth, timeout=60) as client,
    ):
        client.get("/api/v1/analytics?since=1d").raise_for_status()  # warm
        med, worst = timed(
            lambda: client.get("/api/v1/analytics?since=7d").raise_for_status(), args.repeat
        )
        rows.append(("GET /api/v1/analytics?since=7d (analytics page data)", med, worst))
    for fmt in ("json", "html"):
        cmd = [
            sys.executable,
            "-m",
            "zhiku",
            "report",
            "--since",
            "7d",
            "--format",
            fmt,
            "--home",
            str(home),
        ]
        med, worst = timed(
            lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True),
            max(1, args.repeat // 2),
        )
        rows.append((f"`zhiku report --since 7d --format {fmt}` (process)", med, worst))
    lines = ["| what | median ms | max ms |", "|---|---:|---:|"]
    lines += [f"| {w} | {m:,.0f} | {x:,.0f} |" for w, m, x in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        argv = sys.argv[1:]
        if "--reuse" in argv:  # where the data lay is not part of the figure
            i = argv.index("--reuse")
            argv = argv[:i] + argv[i + 2 :]
        cmd = "python bench/analytics.py " + " ".join(a for a in argv if a != "--write")
        write_section(
            "analytics",
            (
                "## Analytics over 100k conversations (bench/analytics.py)\n\n"
                f"`{cmd.strip()} --write` on {machine()} (2 cores shared with other work: "
                f"noisy; 1-minute load average {load[0]:.1f} at the start, "
                f"{os.getloadavg()[0]:.1f} at the end), {time.strftime('%Y-%m-%d')}. "
                f"{args.conversations:,} conversations, "
                f"{n_msg:,} recorded questions over 30 days, database {db_mb:,.0f} MB (SQLite).\n\n"
                + table
                + "\n\nClosed days come from the daily rollup (`analytics_days`, "
                "`analytics_hours`, `analytics_conversations`, `analytics_citations`; a day is "
                "rebuilt when its count of recorded answers changed: purges, erasure), the partial "
                "first day and today from `answer_stats` (two index ranges); the distinct "
                "conversations of the period, the p95 answer time and 👍/👎 are read live; gap "
                "clustering runs in Python over the newest 5,000 gap questions.\n"
            ),
        )


if __name__ == "__main__":
    main()
