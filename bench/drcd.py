"""DRCD retrieval and extractive-answer benchmark, with peers in the same run.

    python bench/drcd.py --data ../shared/data/drcd/DRCD_dev.json \
        [--distractors ../shared/data/twlaw/articles.jsonl.gz] [--cache DIR] [--json] [--write]

zhiku indexes every DRCD paragraph (one document each, titled by its article) and, with
``--distractors``, all Taiwan law articles (one document per law, one labelled block per
article) through its own ingest path (blocks → chunker → SQLite → tantivy). Every
question's gold passage is the paragraph it was written for.

Peers, measured in the same run, each in its own process (so peak RSS is its own):
- ``rank_bm25+jieba``: LangChain's BM25Retriever approach (rank_bm25.BM25Okapi over
  jieba words); at scale only ``--peer-sample`` questions, it takes ~1 s a query;
- ``bm25s``: bm25s over zhiku's own unigram+bigram tokens (an engine comparison).

``--cache DIR`` builds zhiku's KB into DIR once and reuses it on later runs (ranking
changes act at query time: old and new code can be measured on the same KB, one after
the other); the build time reported is then that of the first run only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import models_drcd  # noqa: E402
from bench.common import (  # noqa: E402
    Question,
    drcd_documents,
    latency_ms,
    law_documents,
    machine,
    peak_rss_mb,
    rank_of,
    read_drcd,
    retrieval_metrics,
    write_section,
)


def _embed_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "data": str(args.data),
        "distractors": str(args.distractors or ""),
        "limit": args.limit,
        "cache": str(args.cache or ""),
    }


def _sample_indices(n_questions: int, sample: int) -> list[int] | None:
    """The peers' question sample; Random.sample picks by position, so the same indices
    select the same questions in every process."""
    if not sample or n_questions <= sample:
        return None
    return random.Random(13).sample(range(n_questions), sample)


def _questions(data: Path, limit: int) -> tuple[list[Any], list[Question]]:
    passages, questions = read_drcd(data)
    if limit:
        questions = questions[:limit]
    return passages, questions


def run_zhiku(cfg: dict[str, Any]) -> dict[str, Any]:
    from zhiku.backends import ModelSettings
    from zhiku.engine import Zhiku

    passages, questions = _questions(Path(cfg["data"]), cfg["limit"])
    home = cfg.get("cache") or tempfile.mkdtemp(prefix="zhiku-bench-")
    fresh = not (Path(home) / "zhiku.db").exists()
    zk = Zhiku(home, settings=ModelSettings.none())  # lexical, whatever the environment says
    t0 = time.perf_counter()
    t_store = build = 0.0
    if fresh:
        zk.kb("bench", create=True)
        for path, doc in drcd_documents(passages):
            zk.add_loaded("bench", path, doc)
        if cfg["distractors"]:
            for path, doc, _ in law_documents(Path(cfg["distractors"])):
                zk.add_loaded("bench", path, doc)
        t_store = time.perf_counter() - t0
        zk.sync_index("bench")
        build = time.perf_counter() - t0
    n_docs = len(zk.store.list_documents("bench"))
    n_chunks = zk.index("bench").num_docs()

    ranks: list[int | None] = []
    lat: list[float] = []
    sent_hit = 0
    refused = 0
    for q in questions:
        t = time.perf_counter()
        hits = zk.search(q.text, "bench", k=20)
        lat.append(time.perf_counter() - t)
        keys = list(dict.fromkeys(h.path.removeprefix("drcd://") for h in hits))
        ranks.append(rank_of(keys, q.gold))
        ans = zk.answerer.answer(q.text, hits[:5], zk.term_stats(q.text, "bench"))
        refused += ans.refused
        quoted = " ".join(c.text for c in ans.citations)
        if any(a and a in quoted for a in q.answers):
            sent_hit += 1
    out: dict[str, Any] = {
        **retrieval_metrics(ranks),
        **latency_ms(lat),
        "build_s": build,
        "store_s": t_store,
        "documents": n_docs,
        "passages": n_chunks,
        "questions": len(questions),
        "answer_sentence_hit": sent_hit / max(len(questions), 1),
        "answerable_refused": refused / max(len(questions), 1),
        "peak_rss_mb": peak_rss_mb(),
    }
    picked = _sample_indices(len(questions), cfg.get("sample", 0))
    if picked is not None:
        out["on_peer_sample"] = {
            **retrieval_metrics([ranks[i] for i in picked]),
            **latency_ms([lat[i] for i in picked]),
            "questions": len(picked),
        }
    zk.close()
    return out


def _peer_corpus(cfg: dict[str, Any]) -> tuple[list[str], list[str], list[Question]]:
    passages, questions = _questions(Path(cfg["data"]), cfg["limit"])
    keys = [p.key for p in passages]
    texts = [p.title + "\n" + p.text for p in passages]
    if cfg["distractors"]:
        for path, doc, _ in law_documents(Path(cfg["distractors"])):
            for b in doc.blocks:
                keys.append(path)
                texts.append(doc.title + "\n" + b.text)
    picked = _sample_indices(len(questions), cfg.get("sample", 0))
    if picked is not None:
        questions = [questions[i] for i in picked]
    return keys, texts, questions


def run_rank_bm25(cfg: dict[str, Any]) -> dict[str, Any]:
    import logging

    import jieba
    from rank_bm25 import BM25Okapi

    jieba.setLogLevel(logging.WARNING)
    keys, texts, questions = _peer_corpus(cfg)
    t0 = time.perf_counter()
    bm25 = BM25Okapi([jieba.lcut(t) for t in texts])
    build = time.perf_counter() - t0
    ranks, lat = [], []
    for q in questions:
        t = time.perf_counter()
        scores = bm25.get_scores(jieba.lcut(q.text))
        top = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:20]
        lat.append(time.perf_counter() - t)
        ranks.append(rank_of([keys[i] for i in top], q.gold))
    return {
        **retrieval_metrics(ranks),
        **latency_ms(lat),
        "build_s": build,
        "questions": len(questions),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_bm25s(cfg: dict[str, Any]) -> dict[str, Any]:
    import bm25s

    from zhiku import text as ztext

    keys, texts, questions = _peer_corpus(cfg)
    t0 = time.perf_counter()
    corpus_tokens = [ztext.tokenize(t) for t in texts]
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    build = time.perf_counter() - t0
    del corpus_tokens
    ranks, lat = [], []
    for q in questions:
        t = time.perf_counter()
        toks = [t for t in ztext.query_tokens(q.text) if t in retriever.vocab_dict]
        if toks:
            docs, _ = retriever.retrieve([toks], k=20, show_progress=False, n_threads=1)
            top = [int(i) for i in docs[0]]
        else:
            top = []
        lat.append(time.perf_counter() - t)
        ranks.append(rank_of([keys[i] for i in top], q.gold))
    return {
        **retrieval_metrics(ranks),
        **latency_ms(lat),
        "build_s": build,
        "questions": len(questions),
        "peak_rss_mb": peak_rss_mb(),
    }


def _in_child(fn: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, (cfg,))


def fmt_table(results: dict[str, dict[str, Any]]) -> str:
    cols = [
        "R@1",
        "R@5",
        "R@20",
        "MRR@10",
        "p50_ms",
        "p95_ms",
        "build_s",
        "peak_rss_mb",
        "questions",
    ]
    lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None:
                cells.append("–")
            elif c.startswith(("R@", "MRR")):
                cells.append(f"{v:.4f}")
            elif isinstance(v, float):
                cells.append(f"{v:.2f}")
            else:
                cells.append(str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """zhiku against each peer on the same questions (the peers' sample at scale)."""
    full = results["zhiku"]
    out = {}
    for name, r in results.items():
        if name == "zhiku":
            continue
        z = {**full, **full.get("on_peer_sample", {})}
        out[name] = {
            "R@1 zhiku/peer": z["R@1"] / r["R@1"] if r["R@1"] else float("inf"),
            "p50 peer/zhiku": r["p50_ms"] / z["p50_ms"] if z["p50_ms"] else float("inf"),
            "build peer/zhiku": r["build_s"] / z["build_s"] if z["build_s"] else float("inf"),
            "RSS peer/zhiku": r["peak_rss_mb"] / z["peak_rss_mb"],
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a DRCD-format JSON file")
    ap.add_argument("--distractors", type=Path, help="twlaw articles.jsonl.gz")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-peers", action="store_true", help="measure zhiku only")
    ap.add_argument(
        "--peer-sample",
        type=int,
        default=None,
        help="questions for the peers (default: all; 100 with --distractors)",
    )
    ap.add_argument("--limit", type=int, default=0, help="use only the first N questions")
    ap.add_argument("--cache", help="build zhiku's KB into this directory once and reuse it")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    models_drcd.add_arguments(ap)
    args = ap.parse_args()
    if not args.data.exists():
        print(f"找不到資料檔：{args.data}", file=sys.stderr)
        return 2
    if args.embed or args.rerank:  # lexical, dense, hybrid side by side (bench/models_drcd.py)
        res = _in_child(models_drcd.run_models, models_drcd.model_config(args))
        if args.json:
            print(json.dumps(res, ensure_ascii=False))
        models_drcd.report(res, args, args.write)
        return 0
    cfg = _embed_args(args)
    sample = args.peer_sample if args.peer_sample is not None else (100 if args.distractors else 0)
    cfg["sample"] = 0 if args.no_peers else sample
    results: dict[str, dict[str, Any]] = {"zhiku": _in_child(run_zhiku, cfg)}
    if not args.no_peers:
        pcfg = cfg
        results["rank_bm25+jieba"] = _in_child(run_rank_bm25, pcfg)
        results["bm25s (uni+bi)"] = _in_child(run_bm25s, pcfg)
    rat = ratios(results) if len(results) > 1 else {}
    if args.json:
        print(
            json.dumps(
                {"results": results, "ratios": rat, "machine": machine()}, ensure_ascii=False
            )
        )
    else:
        print(fmt_table(results))
        z = results["zhiku"]
        if "on_peer_sample" in z:
            ps = z["on_peer_sample"]
            print(
                f"\nzhiku on the peers' {ps['questions']} questions: R@1 {ps['R@1']:.4f}, "
                f"MRR@10 {ps['MRR@10']:.4f}, p50 {ps['p50_ms']:.2f} ms"
            )
        print(
            f"\nzhiku: {z['documents']} documents, {z['passages']} passages, "
            f"answer-sentence hit {z['answer_sentence_hit']:.4f}, "
            f"answerable refused {z['answerable_refused']:.4f}"
        )
        for name, r in rat.items():
            print(f"vs {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
    if args.write:
        name = "drcd-scale" if args.distractors else "drcd"
        cmd = "python bench/drcd.py --data ../shared/data/drcd/DRCD_dev.json"
        if args.distractors:
            cmd += " --distractors ../shared/data/twlaw/articles.jsonl.gz"
        z = results["zhiku"]
        body = (
            f"## DRCD dev{' + 218,139 law articles as distractors' if args.distractors else ''}"
            f"\n\n`{cmd} --write` on {machine()}, {time.strftime('%Y-%m-%d')}.\n\n"
            f"{fmt_table(results)}\n\n"
            f"zhiku indexed {z['documents']} documents / {z['passages']} passages. "
            f"Extractive answers: the cited sentence(s) contain the gold answer for "
            f"{z['answer_sentence_hit']:.1%} of questions; {z['answerable_refused']:.1%} "
            f"of these answerable questions were refused.\n\n"
            + (
                f"On the peers' {z['on_peer_sample']['questions']}-question sample zhiku has "
                f"R@1 {z['on_peer_sample']['R@1']:.4f}, MRR@10 "
                f"{z['on_peer_sample']['MRR@10']:.4f}; ratios below use that sample.\n\n"
                if "on_peer_sample" in z
                else ""
            )
            + "\n".join(
                f"- vs {n}: " + ", ".join(f"{k} **{v:.2f}**" for k, v in r.items())
                for n, r in rat.items()
            )
        )
        write_section(name, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
