"""How fast the Milvus index of a KB is built (passages/s of ``MilvusLexicalIndex.sync``).

    python bench/milvus_build.py --data ../shared/data/drcd/DRCD_dev.json \
        --distractors ../shared/data/twlaw/articles.jsonl.gz --max-articles 20000 \
        --cache /tmp/me/milvus-build [--profile] [--queries 40]

The store (DRCD paragraphs and the first ``--max-articles`` law articles, through zhiku's
ingest path) is built once into ``--cache`` and copied for each run, so runs of two
commits index the same data; the KB is then switched to a fresh Milvus Lite file and
its whole queue is synced (tokenising, term statistics and facet counts written to
the database, inserts, flush). ``--profile`` prints a cProfile of the sync (the
inserting thread is not profiled: its time shows as waits in the main thread).
``--queries N`` then times N DRCD questions (seed 13) with the default
``status!=repealed`` dropped (no passage is repealed) and, for comparison, kept in the
Milvus expression as before the facet counts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    drcd_documents,
    every_exclusion_sent,
    law_documents,
    read_drcd,
)

KB = "bench"


def build_store(args: argparse.Namespace, home: Path) -> None:
    from zhiku.backends import load_settings
    from zhiku.engine import Zhiku

    zk = Zhiku(home, settings=load_settings(home, env={}))
    zk.kb(KB, create=True)
    passages, _ = read_drcd(args.data)
    for path, doc in drcd_documents(passages):
        zk.add_loaded(KB, path, doc)
    seen = [0]

    def keep(_rec: dict[str, Any]) -> bool:
        seen[0] += 1
        return seen[0] <= args.max_articles

    if args.distractors:
        for path, doc, _ in law_documents(args.distractors, keep):
            zk.add_loaded(KB, path, doc)
    zk.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from zhiku.backends import load_settings
    from zhiku.engine import Zhiku
    from zhiku.index.milvus import close_all

    base = args.cache / f"store-{args.max_articles}"
    if not base.exists():
        build_store(args, base)
    home = Path(tempfile.mkdtemp(prefix="zhiku-milvus-build-")) / "home"
    shutil.copytree(base, home)
    zk = Zhiku(home, settings=load_settings(home, env={}))
    zk.store.update_kb_settings(
        KB, {"index": {"backend": "milvus", "uri": str(home / "milvus.db")}}
    )
    zk.close()
    zk = Zhiku(home, settings=load_settings(home, env={}))
    t = time.perf_counter()
    idx = zk.index(KB)  # opening queues every document for the new index
    prof = cProfile.Profile()
    if args.profile:
        prof.enable()
    idx.sync()
    prof.disable()
    seconds = time.perf_counter() - t
    passages = idx.num_docs()
    out: dict[str, Any] = {"passages": passages, "seconds": seconds, "per_s": passages / seconds}
    if args.queries:
        out.update(time_queries(args, zk))
    zk.close()
    close_all()
    shutil.rmtree(home.parent, ignore_errors=True)
    if args.profile:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    return out


def time_queries(args: argparse.Namespace, zk: Any) -> dict[str, Any]:
    _, questions = read_drcd(args.data)
    sample = random.Random(13).sample(questions, args.queries)
    out: dict[str, Any] = {}
    for label in ("dropped", "kept"):
        # "kept": the search as it was, every exclusion sent to Milvus
        with every_exclusion_sent() if label == "kept" else contextlib.nullcontext():
            lat = []
            for q in sample:
                t = time.perf_counter()
                zk.retrieve(q.text, KB, k=20, mode="lexical", rerank=False)
                lat.append(time.perf_counter() - t)
        lat.sort()
        out[label] = (lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--distractors", type=Path)
    ap.add_argument("--max-articles", type=int, default=20_000)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--queries", type=int, default=0)
    args = ap.parse_args()
    out = run(args)
    print(f"{out['passages']} passages in {out['seconds']:.1f} s: {out['per_s']:.1f} passages/s")
    for label in ("dropped", "kept"):
        if label in out:
            p50, p95 = out[label]
            print(f"status!=repealed {label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
