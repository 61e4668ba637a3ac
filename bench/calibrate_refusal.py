"""Calibrate the extractive answerer's refusal threshold on DRCD with held-out articles.

    python bench/calibrate_refusal.py --data ../shared/data/drcd/DRCD_dev.json [--write]

A fixed 20 % of DRCD's articles (chosen by a hash of the title) is left out of the index;
their questions are the unanswerable ones, the questions of the indexed articles are the
answerable ones. For each threshold on the relevance measure (query coverage of the top
passage, see zhiku/answer.py) it reports the share of answerable questions refused and of
unanswerable questions refused, and the threshold that keeps answerable refusals ≤ 5 %.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drcd_documents, machine, read_drcd, write_section  # noqa: E402
from zhiku.engine import Zhiku  # noqa: E402


def held_out(title: str, share: float = 0.2) -> bool:
    return int(hashlib.sha256(title.encode("utf-8")).hexdigest(), 16) % 1000 < share * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--max-refused", type=float, default=0.05)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args()
    passages, questions = read_drcd(args.data)
    zk = Zhiku(tempfile.mkdtemp(prefix="zhiku-cal-"))
    zk.kb("cal", create=True)
    for path, doc in drcd_documents([p for p in passages if not held_out(p.title)]):
        zk.add_loaded("cal", path, doc)
    zk.sync_index("cal")
    ans_rel, un_rel = [], []
    for q in questions:
        hits = zk.search(q.text, "cal", k=5)
        rel = zk.answerer.relevance(q.text, hits, zk.term_stats(q.text, "cal"))
        (un_rel if held_out(q.article) else ans_rel).append(rel)
    ans_rel.sort()
    # Highest threshold that refuses at most max_refused of the answerable questions.
    idx = int(len(ans_rel) * args.max_refused)
    chosen = ans_rel[idx] if ans_rel else 0.0
    rows = ["| threshold | answerable refused | unanswerable refused |", "|---|---|---|"]
    for t in [x / 20 for x in range(2, 17)] + [chosen]:
        a = sum(r < t for r in ans_rel) / len(ans_rel)
        u = sum(r < t for r in un_rel) / max(len(un_rel), 1)
        mark = " **(chosen)**" if t == chosen else ""
        rows.append(f"| {t:.3f}{mark} | {a:.1%} | {u:.1%} |")
    table = "\n".join(rows)
    a = sum(r < chosen for r in ans_rel) / len(ans_rel)
    u = sum(r < chosen for r in un_rel) / max(len(un_rel), 1)
    summary = (f"{len(ans_rel)} answerable and {len(un_rel)} unanswerable questions; "
               f"threshold {chosen:.3f} refuses {a:.1%} of answerable and {u:.1%} of "
               f"unanswerable questions.")
    print(table)
    print(summary)
    if args.write:
        write_section("refusal", (
            "## Refusal threshold (extractive answerer)\n\n"
            f"`python bench/calibrate_refusal.py --data ../shared/data/drcd/DRCD_dev.json "
            f"--write` on {machine()}, {time.strftime('%Y-%m-%d')}. 20 % of DRCD articles "
            "held out of the index; their questions are the unanswerable ones.\n\n"
            f"{table}\n\n{summary}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
