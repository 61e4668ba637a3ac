"""Milvus BM25 against the embedded tantivy index, same data, same run.

    python bench/milvus.py --data ../shared/data/drcd/DRCD_dev.json \
        [--distractors ../shared/data/twlaw/articles.jsonl.gz [--max-articles N] --sample 300]
        [--embed bundled] [--json] [--write]

One knowledge base is filled through zhiku's ingest path (DRCD paragraphs, and with
``--distractors`` every Taiwan law article, as bench/drcd.py does). Its index is then
built twice from that same SQLite store: embedded (tantivy, the default) and Milvus
(``index = "milvus"`` on a Milvus Lite file, zhiku's own tokens in a BM25 Function), and
the same questions are asked through ``Zhiku.search`` (the whole lexical path: query
tokens, BM25, zhiku's reranking of candidates), so the only difference is the index.
``--sample N`` asks N questions picked at random (seed 13) instead of all of them;
``--max-articles N`` keeps the first N law articles (file order) when the whole set
cannot be indexed in the time at hand. ``--embed`` adds dense and hybrid rows: the
vectors are computed once (embedded run) and written to Milvus from the embedding cache.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    drcd_documents,
    latency_ms,
    law_documents,
    machine,
    rank_of,
    read_drcd,
    retrieval_metrics,
    write_section,
)

KB = "bench"


def ask_all(zk: Any, questions: list[Any], mode: str = "lexical") -> dict[str, Any]:
    ranks: list[int | None] = []
    lat: list[float] = []
    t0 = time.perf_counter()
    for i, q in enumerate(questions, 1):
        t = time.perf_counter()
        hits = zk.retrieve(q.text, KB, k=20, mode=mode, rerank=False).hits
        lat.append(time.perf_counter() - t)
        if i % 250 == 0:  # how far a long run got, if it is cut short
            print(
                f"{mode}: {i} questions in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        keys = list(dict.fromkeys(h.path.removeprefix("drcd://") for h in hits))
        ranks.append(rank_of(keys, q.gold))
    return {
        **retrieval_metrics(ranks),
        **latency_ms(lat),
        "questions": len(questions),
        "top1": [r == 0 for r in ranks],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.models_drcd import _env
    from zhiku.backends import load_settings
    from zhiku.engine import Zhiku
    from zhiku.index.milvus import close_all

    passages, questions = read_drcd(args.data)
    if args.sample and len(questions) > args.sample:
        questions = random.Random(13).sample(questions, args.sample)
    home = Path(tempfile.mkdtemp(prefix="zhiku-bench-milvus-"))
    env = _env("EMBED", args.embed, None)

    def engine() -> Any:  # lexical only unless --embed, whatever the environment says
        return Zhiku(home, settings=load_settings(home, env=env))

    zk = engine()
    zk.kb(KB, create=True)
    t0 = time.perf_counter()
    n_docs = 0
    for path, doc in drcd_documents(passages):
        zk.add_loaded(KB, path, doc)
        n_docs += 1
    articles = [0]

    def keep(_rec: dict[str, Any]) -> bool:
        articles[0] += 1
        return not args.max_articles or articles[0] <= args.max_articles

    if args.distractors:
        for path, doc, _ in law_documents(args.distractors, keep):
            zk.add_loaded(KB, path, doc)
            n_docs += 1
    store_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "documents": n_docs,
        "store_s": store_s,
        "articles": min(articles[0], args.max_articles or articles[0]),
    }

    t = time.perf_counter()
    zk.sync_index(KB)
    out["embedded"] = {
        "build_s": time.perf_counter() - t,
        "passages": zk.index(KB).num_docs(),
        **ask_all(zk, questions),
    }
    if args.embed:
        out["embedded"]["hybrid"] = ask_all(zk, questions, "hybrid")
        out["embedded"]["dense"] = ask_all(zk, questions, "dense")

    zk.store.update_kb_settings(
        KB, {"index": {"backend": "milvus", "uri": str(home / "milvus.db")}}
    )
    zk.close()
    zk = engine()
    t = time.perf_counter()
    idx = zk.index(KB)  # opening queues every document again for the new index
    done = [0]

    def progress(n: int) -> None:  # how far a long build got, if it is cut short
        done[0] += n
        if done[0] % 20_000 < n:
            print(
                f"milvus: {done[0]} passages in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    idx.sync(progress)
    out["milvus"] = {
        "build_s": time.perf_counter() - t,
        "passages": idx.num_docs(),
        **ask_all(zk, questions),
    }
    if args.embed:
        t = time.perf_counter()
        zk.sync_vectors(KB)  # from the embedding cache filled above: no model call
        out["milvus"]["vectors_s"] = time.perf_counter() - t
        out["milvus"]["hybrid"] = ask_all(zk, questions, "hybrid")
        out["milvus"]["dense"] = ask_all(zk, questions, "dense")
    zk.close()
    close_all()
    for side in ("embedded", "milvus"):
        for mode in ("hybrid", "dense"):
            if mode in out[side]:
                out[side][mode].pop("top1")
    a, b = out["embedded"].pop("top1"), out["milvus"].pop("top1")
    out["top1_disagree"] = sum(x != y for x, y in zip(a, b, strict=True))
    return out


def fmt(out: dict[str, Any]) -> str:
    rows = [
        "| index | R@1 | R@5 | R@20 | MRR@10 | p50_ms | p95_ms | build_s | passages | questions |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (("embedded", "embedded (tantivy)"), ("milvus", "Milvus Lite BM25")):
        r = out[name]
        rows.append(
            f"| {label} | {r['R@1']:.4f} | {r['R@5']:.4f} | {r['R@20']:.4f} | "
            f"{r['MRR@10']:.4f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
            f"{r['build_s']:.1f} | {r['passages']} | {r['questions']} |"
        )
    if "hybrid" in out["embedded"]:
        rows += [
            "",
            "| index | mode | R@1 | R@5 | MRR@10 | p50_ms | p95_ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, label in (("embedded", "embedded"), ("milvus", "Milvus Lite")):
            for mode in ("dense", "hybrid"):
                r = out[name][mode]
                rows.append(
                    f"| {label} | {mode} | {r['R@1']:.4f} | {r['R@5']:.4f} | "
                    f"{r['MRR@10']:.4f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |"
                )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--distractors", type=Path)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--max-articles", type=int, default=0)
    ap.add_argument(
        "--embed",
        help="also dense and hybrid: 'bundled' (MiniLM), a model "
        "directory or an embedding server URL",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=2))
    table = fmt(out)
    print(table)
    if args.write:
        cmd = "python bench/milvus.py --data ../shared/data/drcd/DRCD_dev.json"
        if args.distractors:
            cmd += " --distractors ../shared/data/twlaw/articles.jsonl.gz"
        if args.max_articles:
            cmd += f" --max-articles {args.max_articles}"
        if args.sample:
            cmd += f" --sample {args.sample}"
        if args.embed:
            cmd += f" --embed {args.embed}"
        name = ("milvus-224k" if args.distractors else "milvus-drcd") + (
            "-models" if args.embed else ""
        )
        passages = out["embedded"]["passages"]
        title = (
            f"DRCD dev + {out['articles']:,} law articles ({passages:,} passages)"
            if args.distractors
            else "DRCD dev (1k passages)"
        )
        body = (
            f"## Milvus BM25 vs embedded tantivy: {title}\n\n`{cmd} --write` on "
            f"{machine()}. Same SQLite store, both indexes built from it in this run; "
            "the same questions through `Zhiku.search` (k=20). Timings on 2 cores shared "
            "with other work: noisy.\n\n" + table + "\n\n"
            f"Top-1 differs between the two on {out['top1_disagree']} of "
            f"{out['embedded']['questions']} questions. Milvus' BM25 finds the candidates "
            "(k + 20) and zhiku re-scores them with the term statistics kept in the "
            "database (the same BM25 as tantivy, whatever Milvus Lite's per-segment "
            "statistics are); a difference is a candidate Milvus did not return, or a tie."
            + (
                f" Dense vectors: `{args.embed}` embedder, computed once in the embedded "
                f"run and written to Milvus from the embedding cache in "
                f"{out['milvus'].get('vectors_s', 0):.1f} s."
                if args.embed
                else ""
            )
            + "\n"
        )
        write_section(name, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
