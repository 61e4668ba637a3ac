"""LINE webhook throughput: signed events → answers → reply calls, at 1, 8, 32 senders.

    python bench/line.py --data ../shared/data/drcd/DRCD_dev.json [--events 120]
        [--senders 1,8,32] [--write]

Builds the DRCD KB (bench/serve.py's build), registers a LINE channel on it and starts
``zhiku serve`` (one worker) with ``ZHIKU_LINE_API`` pointed at the local LINE API
server of the tests (tests/fake_line.py), in this process. Each sender thread posts
signed webhook requests (one text event each, a DRCD question, distinct users) back to
back. Reports events/s from the first webhook to the last reply call, lost and
duplicated events (reply tokens seen at the LINE API vs. sent), and the time from
sending a webhook to zhiku's reply call reaching LINE (p50/p95). ``--write`` updates
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import ROOT, machine, write_section  # noqa: E402
from bench.serve import build, start_server  # noqa: E402
from tests.fake_line import fake_line_server, signed, text_event  # noqa: E402

SECRET = "bench-line-secret"


def run_level(
    base: str, fake: object, questions: list[str], senders: int, n: int, offset: int
) -> dict[str, float]:
    sent: dict[str, float] = {}
    lock = threading.Lock()
    todo = list(range(offset, offset + n))

    def sender() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                ev = text_event(
                    f"01B{i:022d}", f"Ubench{i % 500}", questions[i % len(questions)], f"rt-{i}"
                )
                body, sig = signed(SECRET, {"destination": "Ubot", "events": [ev]})
                t = time.monotonic()
                r = client.post(
                    base + "/line/bench/webhook",
                    content=body,
                    headers={"X-Line-Signature": sig, "Content-Type": "application/json"},
                )
                r.raise_for_status()
                with lock:
                    sent[f"rt-{i}"] = t

    t0 = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    want = {f"rt-{i}" for i in range(offset, offset + n)}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = [c for c in fake.messages() if c.body.get("replyToken") in want]  # type: ignore[attr-defined]
        if len({c.body["replyToken"] for c in got}) >= n:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    calls = [c for c in fake.messages() if c.body.get("replyToken") in want]  # type: ignore[attr-defined]
    tokens = [c.body["replyToken"] for c in calls]
    lat = sorted((c.at - sent[c.body["replyToken"]]) * 1000 for c in calls)
    end = max(c.at for c in calls) if calls else time.monotonic()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return {
        "senders": senders,
        "events": n,
        "per_s": len(set(tokens)) / (end - t0),
        "lost": n - len(set(tokens)),
        "dup": len(tokens) - len(set(tokens)),
        "p50": q[49],
        "p95": q[94],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/drcd/DRCD_dev.json")
    ap.add_argument("--events", type=int, default=120)
    ap.add_argument("--senders", default="1,8,32")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, fake_line_server() as fake:
        home = Path(tmp) / "home"
        _key, questions, passages = build(home, a.data)
        from zhiku.channels import registry
        from zhiku.store import Store

        store = Store(home / "zhiku.db")
        registry.add_line_channel(store, "bench", SECRET, "bench-token", ["drcd"])
        store.close()
        os.environ["ZHIKU_LINE_API"] = fake.url
        proc, port = start_server(home, 1, Path(tmp) / "server.log")
        rows = []
        try:
            offset = 0
            for s in (int(x) for x in a.senders.split(",")):
                r = run_level(f"http://127.0.0.1:{port}", fake, questions, s, a.events, offset)
                offset += a.events
                rows.append(r)
                print(
                    f"{s:>3} senders: {r['per_s']:.1f} events/s, lost {r['lost']}, "
                    f"dup {r['dup']}, webhook→reply p50 {r['p50']:.0f} ms, "
                    f"p95 {r['p95']:.0f} ms",
                    flush=True,
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if a.write:
        lines = [
            "## LINE webhook → answer → reply call (bench/line.py)",
            "",
            f"`python bench/line.py --events {a.events} --senders {a.senders} --write` — "
            f"DRCD dev KB ({passages} passages), extractive answers, one server worker, "
            "LINE API = local server in the bench process. " + machine(),
            "Timings are noisy: the machine's 2 cores are shared with other work.",
            "",
            "| senders | events | events/s answered | lost | duplicated | p50 webhook→reply | "
            "p95 webhook→reply |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['senders']} | {r['events']} | {r['per_s']:.1f} | {r['lost']} | "
                f"{r['dup']} | {r['p50']:.0f} ms | {r['p95']:.0f} ms |"
            )
        write_section("line", "\n".join(lines))
    return 0 if all(r["lost"] == 0 and r["dup"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
