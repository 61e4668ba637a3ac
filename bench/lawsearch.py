"""Search-only figures on the layperson legal questions (lawqa dev), fast, on a cached KB.

    python bench/lawsearch.py --data ../shared/data/lawqa/lawqa_dev.jsonl \
        --laws ../shared/data/twlaw/articles.jsonl.gz --cache DIR [--details FILE] [--write]

The in-force-law KB is built once into ``--cache`` (as ``bench/answers.py lawqa`` builds
it: one document per law, one labelled block per article; the same directory serves
both scripts) and reused: ranking changes act at query time and need no rebuild
(``--relearn`` re-learns the KB's vocabulary first, for changes to what is learned).

Reports, over the answerable questions, search R@1 / R@5 / MRR@10 of a gold (law,
article) in :meth:`Zhiku.search`'s ranking, and ms per query; ``--details`` writes one
JSON line per question (gold rank, top five, the query's terms) for diagnosis. Also
reported for the even- and odd-numbered questions apart, so that a change fitted on one
half can be checked on the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import _build, _engine, in_force_laws  # noqa: E402
from bench.common import machine, retrieval_metrics, write_section  # noqa: E402


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = [json.loads(x) for x in args.data.read_text("utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if not r.get("unanswerable")]
    cache = args.cache
    fresh = not (Path(cache) / "zhiku.db").exists()
    zk = _engine(str(cache), None)
    if fresh:
        _build(zk, "law", ((p, d) for p, d, _ in in_force_laws(args.laws)))
    elif args.relearn:
        zk.learn_vocabulary("law")
    zk.search(rows[0]["q"], "law", k=20)  # warm the index and caches
    ranks: list[int | None] = []
    lat: list[float] = []
    details: list[dict[str, Any]] = []
    for r in rows:
        gold = {(a, b) for a, b in r["gold"]}
        t = time.perf_counter()
        hits = zk.search(r["q"], "law", k=20)
        lat.append(time.perf_counter() - t)
        keys = [(h.doc_title, (h.label or "").strip()) for h in hits]
        rank = next((i for i, k in enumerate(keys) if k in gold), None)
        ranks.append(rank)
        details.append({"q": r["q"], "gold": sorted(gold), "rank": rank, "top": keys[:5]})
    lat.sort()
    out: dict[str, Any] = {
        "questions": len(rows),
        "passages": zk.index("law").num_docs(),
        **retrieval_metrics(ranks),
        "even": retrieval_metrics(ranks[0::2]),
        "odd": retrieval_metrics(ranks[1::2]),
        "ms_p50": lat[len(lat) // 2] * 1000,
    }
    if args.details:
        Path(args.details).write_text(
            "\n".join(json.dumps(d, ensure_ascii=False) for d in details) + "\n", "utf-8"
        )
    zk.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--laws", type=Path, required=True)
    ap.add_argument("--cache", required=True, help="reuse (or create) this data directory")
    ap.add_argument("--relearn", action="store_true", help="re-learn the KB's vocabulary")
    ap.add_argument("--details", help="write per-question results (JSONL) here")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    res = run(args)
    halves = " · ".join(
        f"{h} R@1 {res[h]['R@1']:.3f} / R@5 {res[h]['R@5']:.3f}" for h in ("even", "odd")
    )
    body = (
        "## Layperson legal questions: search only (bench/lawsearch.py)\n\n"
        f"`python bench/lawsearch.py --data ../shared/data/lawqa/lawqa_dev.jsonl --laws "
        f"../shared/data/twlaw/articles.jsonl.gz --cache DIR` on {machine()}, "
        f"{time.strftime('%Y-%m-%d')}.\n\n"
        "| questions | passages | R@1 | R@5 | R@20 | MRR@10 | ms p50 |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {res['questions']} | {res['passages']} | {res['R@1']:.3f} | {res['R@5']:.3f} | "
        f"{res['R@20']:.3f} | {res['MRR@10']:.3f} | {res['ms_p50']:.1f} |\n\n"
        f"Halves (even / odd-numbered answerable questions): {halves}."
    )
    print(body)
    if args.write:
        write_section("lawqa-search", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
