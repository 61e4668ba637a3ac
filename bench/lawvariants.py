"""Candidate lexical methods for layperson legal questions, measured side by side.

    python bench/lawvariants.py --data ../shared/data/lawqa/lawqa_dev.jsonl \
        --laws ../shared/data/twlaw/articles.jsonl.gz --cache DIR [--write]

On the cached in-force-law KB of ``bench/lawsearch.py`` (same ``--cache``), each variant
re-ranks at query time, with no model and no rebuild, and reports search R@1 / R@5 /
R@20 over the answerable questions, for all and for the even / odd halves, and ms per
query. ``base`` is :meth:`Zhiku.search`'s own lexical ranking (BM25 candidates reordered
by :func:`zhiku.rank.reinforce`); the others, each a general method with no word list:

- ``prf``: RM3-style pseudo-relevance feedback, the 20 most weighted bigrams of the
  top 10 passages (score-weighted term probability × idf, df ≤ 5 % of passages) added at
  weight ``lam`` relative to the query's own terms;
- ``pool-doc``: law-level evidence from a deep BM25 pool (500): each candidate gets
  ``lam`` × its law's summed top-5 passage scores (relative to the strongest law);
- ``pool-cover``: the same with the idf-weighted share of the query's terms its law's
  pooled passages contain;
- ``law-bm25``: a law-level BM25 (one law = all its articles, tf = articles containing
  the term) computed from the postings, fused with the passage score at ``lam``;
- ``coverage``: passage-level coordination — each of today's 60 candidates gets ``mu`` ×
  the idf-weighted share of the query's terms it contains (relative to the best);
- ``npmi``: bigrams weighted by their normalised PMI in the KB (straddling bigrams such
  as 日每, 說要 are rare given their characters) — colloquial noise down-weighted;
- ``unigram``: the weight of single-character terms;
- ``depth``: more BM25 candidates into the re-ranking (60 today).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import _build, _engine, in_force_laws  # noqa: E402
from bench.common import machine, retrieval_metrics, write_section  # noqa: E402

Ranked = list[tuple[int, float]]


class Lab:
    """One KB's index and store, with the variants as methods."""

    def __init__(self, zk: Any, kb: str) -> None:
        import zhiku.rank as zrank

        self.zk, self.rank = zk, zrank
        self.R = zk.retrieval
        self.kbo = zk.store.get_kb(kb)
        self.idx = zk.index(kb)
        self.n = self.idx.num_docs()
        self.auth = self.R.authority(self.kbo)
        self._c2d: dict[int, int] | None = None
        self._dlen: Counter[int] = Counter()

    # --- building blocks -----------------------------------------------------------

    def tokens(self, q: str) -> list[str]:
        return list(self.R.query_terms(q, self.kbo))

    def prune(self, toks: list[str]) -> tuple[list[str], dict[str, tuple[int, float]]]:
        st = self.idx.term_stats(toks)
        kept = [t for t in toks if len(t) > 1 or t.isascii() or st[t][0] <= 0.2 * self.n]
        return kept, st

    def weighted(self, weights: dict[str, float], k: int) -> Ranked:
        import tantivy

        idx = self.idx
        with idx._lock:
            s = idx._fresh_searcher()
            qs = []
            for t, w in weights.items():
                q = tantivy.Query.term_query(idx.schema, "body", t)
                qs.append((tantivy.Occur.Should, tantivy.Query.boost_query(q, w)))
            res = s.search(tantivy.Query.boolean_query(qs), limit=k, count=False)
            ids = s.fast_field_values("chunk_id", [a for _, a in res.hits])
        return [(int(c), float(sc)) for (sc, _), c in zip(res.hits, ids, strict=True)]

    def first(self, toks: list[str], k: int = 60) -> Ranked:
        kept, _ = self.prune(toks)
        return list(self.idx.search(kept, k=k))

    def order(self, found: Ranked) -> Ranked:
        docs = self.zk.store.chunk_docs([c for c, _ in found])
        return list(self.rank.reinforce(found, docs, self.auth))

    def passage_terms(self, ids: list[int]) -> dict[int, tuple[int, list[str]]]:
        from zhiku import text as ztext
        from zhiku.lexical import index_text

        hits = self.zk.store.hits_for([(c, 0.0) for c in ids], [self.kbo.id])
        return {
            h.chunk_id: (
                h.doc_id,
                ztext.tokenize(
                    index_text({"title": h.doc_title, "section": h.section, "text": h.text})
                ),
            )
            for h in hits
        }

    def fuse(self, pool: Ranked, bonus: dict[int, float], depth: int = 60) -> Ranked:
        """Candidates chosen and ordered by the usual ranking plus a per-chunk bonus."""
        best = pool[0][1] or 1.0
        chosen = sorted(pool, key=lambda x: -(x[1] / best + bonus.get(x[0], 0.0)))[:depth]
        chosen.sort(key=lambda x: -x[1])
        out = [(c, v + bonus.get(c, 0.0)) for c, v in self.order(chosen)]
        out.sort(key=lambda x: -x[1])
        return out

    # --- variants ------------------------------------------------------------------

    def base(self, q: str) -> Ranked:
        return self.order(self.first(self.tokens(q)))

    def depth(self, q: str, depth: int = 200) -> Ranked:
        return self.order(self.first(self.tokens(q), k=depth))

    def prf(self, q: str, m: int = 10, n: int = 20, lam: float = 0.3) -> Ranked:
        toks = self.tokens(q)
        top = self.order(self.first(toks))[:m]
        if not top:
            return top
        terms = self.passage_terms([c for c, _ in top])
        best = top[0][1] or 1.0
        acc: Counter[str] = Counter()
        for c, s in top:
            tt = [t for t in terms.get(c, (0, []))[1] if len(t) == 2 and not t.isascii()]
            for t, f in Counter(tt).items():
                acc[t] += (s / best) * f / len(tt)
        own = set(toks)
        cands = [t for t in acc if t not in own]
        st = self.idx.term_stats(cands)
        sc = {t: acc[t] * st[t][1] for t in cands if 0 < st[t][0] <= 0.05 * self.n}
        exp = sorted(sc.items(), key=lambda kv: -kv[1])[:n]
        if not exp:
            return self.base(q)
        kept, _ = self.prune(toks)
        w = dict.fromkeys(kept, 1.0) | {t: lam * v / exp[0][1] for t, v in exp}
        return self.order(self.weighted(w, 60))

    def pool_doc(self, q: str, lam: float = 0.2, pool: int = 500, top: int = 5) -> Ranked:
        found = self.first(self.tokens(q), k=pool)
        if not found:
            return found
        docs = self.zk.store.chunk_docs([c for c, _ in found])
        per: dict[int, list[float]] = defaultdict(list)
        for c, s in found:
            if c in docs:
                per[docs[c][0]].append(s)
        strength = {d: sum(sorted(v, reverse=True)[:top]) for d, v in per.items()}
        mx = max(strength.values()) or 1.0
        bonus = {c: lam * strength[docs[c][0]] / mx for c, _ in found if c in docs}
        return self.fuse(found, bonus)

    def pool_cover(self, q: str, lam: float = 0.3, pool: int = 500) -> Ranked:
        toks = self.tokens(q)
        found = self.first(toks, k=pool)
        if not found:
            return found
        kept, st = self.prune(toks)
        qset = set(kept)
        by_doc: dict[int, set[str]] = defaultdict(set)
        terms = self.passage_terms([c for c, _ in found])
        for doc, tt in terms.values():
            by_doc[doc] |= set(tt) & qset
        total = sum(st[t][1] for t in qset) or 1.0
        cover = {d: sum(st[t][1] for t in ts) / total for d, ts in by_doc.items()}
        mx = max(cover.values(), default=0.0) or 1.0
        bonus = {c: lam * cover.get(d, 0.0) / mx for c, (d, _) in terms.items()}
        return self.fuse(found, bonus)

    def law_bm25(self, q: str, lam: float = 0.1, b: float = 0.75, pool: int = 200) -> Ranked:
        import tantivy

        if self._c2d is None:
            self._c2d = dict(self.zk.store.chunk_doc_pairs(self.kbo.id))
            self._dlen = Counter(self._c2d.values())
        c2d, dlen = self._c2d, self._dlen
        nd = len(dlen)
        avg = sum(dlen.values()) / max(nd, 1)
        toks = self.tokens(q)
        kept, st = self.prune(toks)
        law: Counter[int] = Counter()
        idx = self.idx
        with idx._lock:
            s = idx._fresh_searcher()
            for t in kept:
                df = st[t][0]
                if not df or df > 0.05 * self.n:
                    continue
                res = s.search(
                    tantivy.Query.term_query(idx.schema, "body", t), limit=df, count=False
                )
                ids = s.fast_field_values("chunk_id", [a for _, a in res.hits])
                tf = Counter(c2d.get(int(c), -1) for c in ids)
                idf = math.log(1 + (nd - len(tf) + 0.5) / (len(tf) + 0.5))
                for d, f in tf.items():
                    norm = 1.2 * (1 - b + b * dlen[d] / avg)
                    law[d] += idf * f * 2.2 / (f + norm)
        found = self.first(toks, k=pool)
        if not found or not law:
            return self.order(found[:60])
        mx = max(law.values())
        bonus = {c: lam * law.get(c2d.get(c, -1), 0.0) / mx for c, _ in found}
        return self.fuse(found, bonus)

    def coverage(self, q: str, mu: float = 0.3, depth: int = 60) -> Ranked:
        toks = self.tokens(q)
        found = self.first(toks, k=depth)
        if not found:
            return found
        kept, st = self.prune(toks)
        qset = {t for t in kept if st[t][0]}
        total = sum(st[t][1] for t in qset) or 1.0
        cov = {
            c: sum(st[t][1] for t in qset & set(tt)) / total
            for c, (_, tt) in self.passage_terms([c for c, _ in found]).items()
        }
        mx = max(cov.values(), default=0.0) or 1.0
        out = [(c, v + mu * cov.get(c, 0.0) / mx) for c, v in self.order(found)]
        out.sort(key=lambda x: -x[1])
        return out

    def npmi(self, q: str, tau: float = 0.5, floor: float = 0.0) -> Ranked:
        toks = self.tokens(q)
        chars = [ch for t in toks if len(t) == 2 for ch in t]
        st = self.idx.term_stats(list(dict.fromkeys(toks + chars)))
        kept, _ = self.prune(toks)
        w: dict[str, float] = {}
        for t in kept:
            w[t] = 1.0
            if len(t) == 2 and not t.isascii():
                dab, da, db = st[t][0], st[t[0]][0], st[t[1]][0]
                if dab and da and db and dab < self.n:
                    v = math.log(dab * self.n / (da * db)) / -math.log(dab / self.n)
                    w[t] = max(floor, min(1.0, v / tau))
        return self.order(self.weighted({t: v for t, v in w.items() if v > 0}, 60))

    def unigram(self, q: str, weight: float = 1.5) -> Ranked:
        kept, _ = self.prune(self.tokens(q))
        w = {t: (weight if len(t) == 1 and not t.isascii() else 1.0) for t in kept}
        return self.order(self.weighted({t: v for t, v in w.items() if v > 0}, 60))


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("base", {}),
    ("prf", {"lam": 0.1}),
    ("prf", {"lam": 0.3}),
    ("prf", {"lam": 0.5}),
    ("pool_doc", {"lam": 0.1}),
    ("pool_doc", {"lam": 0.2}),
    ("pool_doc", {"lam": 0.4}),
    ("pool_cover", {"lam": 0.3}),
    ("pool_cover", {"lam": 0.6}),
    ("law_bm25", {"lam": 0.1}),
    ("law_bm25", {"lam": 0.3}),
    ("law_bm25", {"lam": 0.1, "b": 0.3}),
    ("coverage", {"mu": 0.1}),
    ("coverage", {"mu": 0.3}),
    ("coverage", {"mu": 0.3, "depth": 200}),
    ("npmi", {"tau": 0.5}),
    ("npmi", {"tau": 0.3, "floor": 0.1}),
    ("unigram", {"weight": 0.5}),
    ("unigram", {"weight": 1.5}),
    ("unigram", {"weight": 3.0}),
    ("depth", {"depth": 100}),
    ("depth", {"depth": 200}),
]


CEILING_DEPTHS = (60, 200, 1000, 5000)


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[int, int]]:
    rows = [json.loads(x) for x in args.data.read_text("utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if not r.get("unanswerable")]
    fresh = not (Path(args.cache) / "zhiku.db").exists()
    zk = _engine(str(args.cache), None)
    if fresh:
        _build(zk, "law", ((p, d) for p, d, _ in in_force_laws(args.laws)))
    lab = Lab(zk, "law")
    lab.base(rows[0]["q"])  # warm the index and caches
    # The ceiling of any re-ranking: questions whose gold is among BM25's first N.
    ceiling: dict[int, int] = {}
    for depth in CEILING_DEPTHS:
        n = 0
        for r in rows:
            gold = {(a, b) for a, b in r["gold"]}
            found = lab.first(lab.tokens(r["q"]), k=depth)
            hits = zk.store.hits_for(found, [lab.kbo.id])
            n += any((h.doc_title, (h.label or "").strip()) in gold for h in hits)
        ceiling[depth] = n
    print(json.dumps({"ceiling": ceiling}), flush=True)
    out = []
    for name, kw in VARIANTS:
        fn: Callable[..., Ranked] = getattr(lab, name)
        ranks: list[int | None] = []
        t0 = time.perf_counter()
        for r in rows:
            gold = {(a, b) for a, b in r["gold"]}
            hits = zk.store.hits_for(fn(r["q"], **kw)[:30], [lab.kbo.id])[:20]
            keys = [(h.doc_title, (h.label or "").strip()) for h in hits]
            ranks.append(next((i for i, k in enumerate(keys) if k in gold), None))
        ms = (time.perf_counter() - t0) / len(rows) * 1000
        res = {
            "variant": name + (" " + ", ".join(f"{k}={v}" for k, v in kw.items()) if kw else ""),
            **retrieval_metrics(ranks),
            "even": retrieval_metrics(ranks[0::2]),
            "odd": retrieval_metrics(ranks[1::2]),
            "ms": ms,
        }
        print(json.dumps(res, ensure_ascii=False), flush=True)
        out.append(res)
    zk.close()
    return out, ceiling


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--laws", type=Path, required=True)
    ap.add_argument("--cache", required=True, help="reuse (or create) this data directory")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    res, ceiling = run(args)
    lines = [
        "| variant | R@1 | R@5 | R@20 | even R@5 | odd R@5 | ms / query |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res:
        lines.append(
            f"| {r['variant']} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['R@20']:.3f} | "
            f"{r['even']['R@5']:.3f} | {r['odd']['R@5']:.3f} | {r['ms']:.0f} |"
        )
    body = (
        "## Layperson legal questions: candidate lexical methods (bench/lawvariants.py)\n\n"
        "`python bench/lawvariants.py --data ../shared/data/lawqa/lawqa_dev.jsonl --laws "
        f"../shared/data/twlaw/articles.jsonl.gz --cache DIR --write` on {machine()}, "
        f"{time.strftime('%Y-%m-%d')} (60 answerable questions, 162,251 passages; ms "
        "include reading the hits, machine shared).\n\n"
        + "\n".join(lines)
        + "\n\nCeiling of any re-ranking, questions whose gold article is among BM25's first N "
        + "candidates: "
        + ", ".join(f"N={d}: {n}" for d, n in ceiling.items())
        + "."
    )
    print(body)
    if args.write:
        write_section("lawqa-variants", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
