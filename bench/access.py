"""Department-level access: what a caller's scope costs, and whether hidden documents
can be detected from the outside by timing or ranking.

    python bench/access.py [--drcd ../shared/data/drcd/DRCD_dev.json] [--queries 400]
                           [--backend embedded|milvus] [--write]

Two KBs from the DRCD paragraphs: ``mixed`` holds every paragraph, every other article
restricted to group ``secret`` at 密; ``public`` holds only the unrestricted half. A
caller with no group and clearance 公開 sees the same documents in both. For each
question (interleaved, alternating which KB goes first):

1. latency of the caller's lexical search in ``mixed`` vs ``public``: the medians and a
   Mann–Whitney U test (could timing tell whether hidden documents exist?);
2. latency in ``mixed`` for an unrestricted caller vs the restricted one: the cost of
   the scope inside the tantivy query;
3. how often the restricted caller's top 5 in ``mixed`` equals their top 5 in
   ``public`` (a scoped search is scored with the statistics of the visible documents
   only, :mod:`zhiku.lexical`; target 100 %);
4. R@1 and R@5 of the restricted caller for questions whose gold paragraph they may
   see, in both KBs (the scope never drops an allowed hit: k hits are k allowed hits),
   and R@1 of the unrestricted caller in ``mixed`` over every question (their scoring
   is untouched by the re-scoring);
5. probe queries of 12 characters that occur only in hidden paragraphs (*secret*) or in
   no paragraph (*nowhere*), both finding nothing the caller may see, in both KBs,
   interleaved, compared with Mann–Whitney U: the same strings with and without hidden
   documents holding them, and the two kinds in one KB, with ``public`` (where neither
   occurs) as the control for what the characters themselves cost (the channel
   tests/test_access_timing.py checks, on real text).

With ``--backend milvus`` both KBs live in one Milvus Lite file (zhiku.index.milvus)
and the figures go to their own block (``access-milvus``).

Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    drcd_documents,
    latency_ms,
    machine,
    rank_of,
    read_drcd,
    write_section,
)
from zhiku import text as ztext  # noqa: E402
from zhiku.access import AccessScope  # noqa: E402
from zhiku.engine import Zhiku  # noqa: E402
from zhiku.filters import Filter  # noqa: E402

DEFAULT_DRCD = Path(__file__).resolve().parents[2] / "shared" / "data" / "drcd" / "DRCD_dev.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--drcd", type=Path, default=DEFAULT_DRCD)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: $TMPDIR)")
    ap.add_argument("--backend", choices=("embedded", "milvus"), default="embedded")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args()
    milvus = args.backend == "milvus"
    passages, questions = read_drcd(args.drcd)
    articles = sorted({p.title for p in passages})
    hidden_articles = set(articles[::2])
    hidden = {p.key for p in passages if p.title in hidden_articles}
    restricted = {"access_groups": ["secret"], "access_level": 3}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp, Zhiku(Path(tmp)) as zk:
        for name in ("mixed", "public"):
            zk.kb(name, create=True)
            if milvus:
                settings = {"backend": "milvus", "uri": str(Path(tmp) / "milvus.db")}
                zk.store.update_kb_settings(name, {"index": settings})
        t0 = time.perf_counter()
        for (path, doc), p in zip(drcd_documents(passages), passages, strict=True):
            zk.add_loaded("mixed", path, doc, meta=restricted if p.key in hidden else None)
            if p.key not in hidden:
                zk.add_loaded("public", path, doc)
        zk.sync_index("mixed")
        zk.sync_index("public")
        build_s = time.perf_counter() - t0
        # The index alone (each passage's tokens twice: ``body`` and the class-prefixed
        # ``scoped`` field, zhiku.lexical), rebuilt from the database.
        t0 = time.perf_counter()
        zk.indexes.index("mixed").rebuild()
        rebuild_s = time.perf_counter() - t0
        where = Path(tmp) / ("milvus.db" if milvus else "index")
        files = [where] if where.is_file() else [f for f in where.rglob("*") if f.is_file()]
        index_mb = sum(f.stat().st_size for f in files) / 2**20
        user = AccessScope("pat", frozenset(), 0).restrict(Filter())
        rng = random.Random(7)
        qs = rng.sample(questions, min(args.queries, len(questions)))
        for q in qs[:20]:  # warm both indexes
            for kb in ("mixed", "public"):
                zk.search(q.text, kb, k=5, mode="lexical", where=user)
        lat: dict[str, list[float]] = {"mixed": [], "public": [], "mixed_all": []}
        same = 0
        ranks: dict[str, list[int | None]] = {"mixed": [], "public": [], "mixed_all": []}
        leaked = 0
        for i, q in enumerate(qs):
            order = [("mixed", user), ("public", user), ("mixed_all", None)]
            if i % 2:
                order = order[::-1]
            tops: dict[str, list[str]] = {}
            for name, where in order:
                kb = "mixed" if name.startswith("mixed") else "public"
                t = time.perf_counter()
                hits = zk.search(q.text, kb, k=5, mode="lexical", where=where)
                lat[name].append(time.perf_counter() - t)
                tops[name] = [h.path.removeprefix("drcd://") for h in hits]
            leaked += sum(k in hidden for k in tops["mixed"])
            ranks["mixed_all"].append(rank_of(tops["mixed_all"], q.gold))
            same += tops["mixed"] == tops["public"]
            if q.gold not in hidden:
                for kb in ("mixed", "public"):
                    ranks[kb].append(rank_of(tops[kb], q.gold))
        u = mannwhitneyu(lat["mixed"], lat["public"], alternative="two-sided")

        # 5: hidden-only characters vs characters of no paragraph, same KB, same caller
        # (as the index sees them: folded, so 驫 counts as the 骉 it folds to).
        def chars(keys: set[str]) -> dict[str, str]:
            out: dict[str, str] = {}
            for p in passages:
                if p.key in keys:
                    for c in set(p.title + p.text):
                        if c >= "\u4e00" and (tok := ztext.query_tokens(c)):
                            out.setdefault(tok[0], c)
            return out

        in_hidden, in_visible = chars(hidden), chars({p.key for p in passages} - hidden)
        secret = sorted(c for t, c in in_hidden.items() if t not in in_visible)
        nowhere = [
            c
            for c in map(chr, range(0x4E00, 0x9FA6))
            if (tok := ztext.query_tokens(c)) and tok[0] not in in_hidden | in_visible
        ]
        pools = [("secret", secret), ("nowhere", nowhere)]
        probe: dict[tuple[str, str], list[float]] = {}
        probe_leaked = 0
        for i in range(n_probe := len(qs)):
            texts = {name: "".join(rng.sample(pool, 12)) for name, pool in pools}
            runs = [(kb, name) for kb in ("mixed", "public") for name, _ in pools]
            for kb, name in runs if i % 2 else runs[::-1]:
                t = time.perf_counter()
                hits = zk.search(texts[name], kb, k=5, mode="lexical", where=user)
                probe.setdefault((kb, name), []).append(time.perf_counter() - t)
                probe_leaked += sum(h.path.removeprefix("drcd://") in hidden for h in hits)

        def mw(a: tuple[str, str], b: tuple[str, str]) -> str:
            r = mannwhitneyu(probe[a], probe[b], alternative="two-sided")
            return f"{ms(probe[a])} vs {ms(probe[b])} ms, U = {r.statistic:.0f}, p = {r.pvalue:.3g}"

    if milvus:
        from zhiku.index.milvus import close_all

        close_all()
    n = len(qs)

    def r5(xs: list[int | None], at: int = 5) -> float:
        return sum(r is not None and r < at for r in xs) / max(1, len(xs))

    def p50(xs: list[float]) -> float:
        return latency_ms(xs)["p50_ms"]

    def ms(xs: list[float]) -> str:
        d = latency_ms(xs)
        return f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}"

    cmd = f"python bench/access.py --queries {args.queries}" + (
        " --backend milvus" if milvus else ""
    )
    cmd += " --write"
    heading = (
        "### Document access on Milvus (Milvus Lite, `--backend milvus`)"
        if milvus
        else "## Document access: cost and side channels"
    )
    body = (
        f"{heading}\n\n"
        f"`{cmd}` on {machine()} (shared machine: timings are noisy).\n\n"
        f"DRCD dev: {len(passages)} paragraphs; `mixed` holds all, {len(hidden)} of them "
        f"(every other article) restricted to group `secret` at 密; `public` holds the other "
        f"{len(passages) - len(hidden)}. Built in {build_s:.1f} s; the index of `mixed` "
        f"alone rebuilt in {rebuild_s:.1f} s. Both indexes: {index_mb:.1f} MB on disk. "
        f"{n} questions, lexical search, k=5, interleaved.\n\n"
        "| search | p50 / p95 ms |\n|---|---:|\n"
        f"| 公開 caller, `mixed` (hidden documents exist) | {ms(lat['mixed'])} |\n"
        f"| 公開 caller, `public` (they do not) | {ms(lat['public'])} |\n"
        f"| unrestricted caller, `mixed` | {ms(lat['mixed_all'])} |\n\n"
        f"Mann–Whitney U, `mixed` vs `public` for the 公開 caller: U = {u.statistic:.0f}, "
        f"p = {u.pvalue:.3g} (p < 0.05 would mean the existence of hidden documents shows in "
        "the timing at this sample size).\n\n"
        f"Cost of the scope (re-scoring over the visible documents' statistics included): "
        f"{p50(lat['mixed']) - p50(lat['mixed_all']):+.2f} ms at p50 over the unrestricted "
        "caller in the same KB.\n\n"
        f"Probe queries, {n_probe} interleaved rounds, 公開 caller, 12 random characters "
        f"each (p50 / p95): *secret* characters occur only in hidden paragraphs "
        f"({len(secret)} such), *nowhere* characters in no paragraph.\n\n"
        "| comparison | what differs | result |\n|---|---|---|\n"
        f"| secret in `mixed` vs secret in `public` | only whether hidden documents hold "
        f"the words (same strings) | {mw(('mixed', 'secret'), ('public', 'secret'))} |\n"
        f"| secret vs nowhere in `mixed` | the words, and whether hidden documents hold them "
        f"| {mw(('mixed', 'secret'), ('mixed', 'nowhere'))} |\n"
        f"| secret vs nowhere in `public` (control: neither occurs) | the words only "
        f"| {mw(('public', 'secret'), ('public', 'nowhere'))} |\n\n"
        f"Hidden paragraphs in the 公開 caller's results: {leaked} of {5 * n} "
        f"({probe_leaked} for the probe queries). "
        f"Identical top 5 in `mixed` and `public`: {same / n:.1%} of questions (target "
        "100 %: a scoped search is scored with document frequencies, count and average "
        "length of the visible documents only). R@1 / R@5 on the "
        f"{len(ranks['mixed'])} questions whose gold paragraph is visible: "
        f"{r5(ranks['mixed'], 1):.3f} / {r5(ranks['mixed']):.3f} in `mixed`, "
        f"{r5(ranks['public'], 1):.3f} / {r5(ranks['public']):.3f} in `public`. "
        f"Unrestricted caller in `mixed`, all {n} questions: R@1 "
        f"{r5(ranks['mixed_all'], 1):.3f}, R@5 {r5(ranks['mixed_all']):.3f}.\n"
    )
    print(body)
    if args.write:
        write_section("access-milvus" if milvus else "access", body)


if __name__ == "__main__":
    main()
