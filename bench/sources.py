"""Sources that stay in sync: Taiwan law import, filtered search, crawler, watch latency.

    python bench/sources.py [--twlaw ../shared/data/twlaw/articles.jsonl.gz] [--laws N]
                            [--pages 300] [--files 30] [--write]

1. The shared law corpus rebuilt in the 全國法規資料庫 bulk layout (``{"Laws": [...]}``)
   and imported with ``import_laws``: laws/s and articles/s, then an unchanged re-import.
2. Search latency on that KB for sentences taken from articles, with the default filter
   (repealed law left out, one MustNot clause), with none (``status=any``), with a
   department and a date range: the cost of filtering inside the tantivy query. And how
   often repealed law reaches the top 5 with and without the default.
3. Crawler: a generated site of ``--pages`` linked pages on a local HTTP server; cold
   crawl and an unchanged re-crawl (ETag → 304), pages/s.
4. Watch: from a file written into a watched folder to a search that finds it, per file
   (debounce 0.5 s included).

Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import latency_ms, machine, peak_rss_mb, write_section  # noqa: E402
from zhiku.engine import Zhiku  # noqa: E402
from zhiku.filters import Filter  # noqa: E402
from zhiku.sources.twlaw import import_laws  # noqa: E402
from zhiku.sources.watch import Watcher  # noqa: E402
from zhiku.sources.web import Crawler, CrawlSettings  # noqa: E402

DEFAULT_TWLAW = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "twlaw" / "articles.jsonl.gz"
)


def bulk_from_articles(src: Path, dest: Path, limit: int | None) -> tuple[int, int]:
    """articles.jsonl.gz → one bulk JSON in the law.moj.gov.tw API layout."""
    laws: dict[str, dict[str, Any]] = {}
    heads: dict[str, set[str]] = defaultdict(set)
    n_articles = 0
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            law = laws.get(r["pcode"])
            if law is None:
                if limit is not None and len(laws) >= limit:
                    continue
                law = laws[r["pcode"]] = {
                    "LawLevel": r["kind"],
                    "LawName": r["law"],
                    "LawURL": f"https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode={r['pcode']}",
                    "LawCategory": r["category"],
                    "LawModifiedDate": r["updated"],
                    "LawEffectiveDate": "",
                    "LawAbandonNote": "廢" if r["repealed"] else "",
                    "LawArticles": [],
                }
            if r["chapter"] and r["chapter"] not in heads[r["pcode"]]:
                heads[r["pcode"]].add(r["chapter"])
                law["LawArticles"].append(
                    {"ArticleType": "C", "ArticleNo": "", "ArticleContent": r["chapter"]}
                )
            law["LawArticles"].append(
                {"ArticleType": "A", "ArticleNo": r["article"], "ArticleContent": r["text"]}
            )
            n_articles += 1
    dest.write_text(
        json.dumps({"UpdateDate": "2024/10/11", "Laws": list(laws.values())}, ensure_ascii=False),
        "utf-8",
    )
    return len(laws), n_articles


def law_bench(src: Path, work: Path, limit: int | None, n_queries: int) -> tuple[str, str]:
    bulk = work / "ChLaw.json"
    n_laws, n_articles = bulk_from_articles(src, bulk, limit)
    zk = Zhiku(work / "home-law")
    cold = import_laws(zk, [bulk], "law")
    warm = import_laws(zk, [bulk], "law")
    assert not cold.failed, cold.failed[:3]
    repealed = zk.store.db.execute(
        "SELECT COUNT(*) FROM documents WHERE json_extract(meta, '$.status')='repealed'"
    ).fetchone()[0]
    rng = random.Random(7)
    rows = zk.store.db.execute(
        "SELECT text FROM chunks WHERE LENGTH(text) BETWEEN 20 AND 200"
    ).fetchall()
    queries = [r[0][:30] for r in rng.sample(rows, min(n_queries, len(rows)))]
    filters = {
        "default (repealed left out)": None,
        "status=any (no filter clause)": Filter.parse(["status=any"]),
        "dept=勞動部": Filter.parse(["dept=勞動部"]),
        "amended>=2015-01-01": Filter.parse(["amended>=2015-01-01"]),
    }
    lat_rows = [
        "| filter | p50 ms | p95 ms | queries with a repealed law in top 5 |",
        "|---|---|---|---|",
    ]
    for name, flt in filters.items():
        for q in queries[:20]:  # warm-up
            zk.search(q, "law", k=5, where=flt)
        times, with_repealed = [], 0
        for q in queries:
            t = time.perf_counter()
            hits = zk.search(q, "law", k=5, where=flt)
            times.append(time.perf_counter() - t)
            with_repealed += any(h.doc_title.endswith("（已廢止）") for h in hits)
        lat = latency_ms(times)
        lat_rows.append(
            f"| {name} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} | "
            f"{with_repealed}/{len(queries)} |"
        )
    chunks = zk.stats()["kbs"][0]["chunks"]
    zk.close()
    table = "\n".join(
        [
            "| run | laws | articles | seconds | laws/s | articles/s |",
            "|---|---|---|---|---|---|",
            f"| import (bulk JSON → documents + index) | {n_laws} | {n_articles} | "
            f"{cold.seconds:.1f} | {n_laws / cold.seconds:.0f} | {n_articles / cold.seconds:.0f} |",
            f"| re-import, nothing changed | {n_laws} | {n_articles} | {warm.seconds:.1f} | "
            f"{n_laws / warm.seconds:.0f} | {n_articles / warm.seconds:.0f} |",
            "",
            *lat_rows,
        ]
    )
    note = (
        f"{chunks} passages; {repealed} laws marked repealed. Queries: {len(queries)} "
        "30-character openings of random articles, k=5, lexical."
    )
    return table, note


def _site_handler(n: int) -> type[BaseHTTPRequestHandler]:
    def body(i: int) -> bytes:
        links = "".join(
            f'<a href="/p{j}.html">第{j}頁</a>' for j in (2 * i + 1, 2 * i + 2) if j < n
        )
        return (
            f"<html><head><meta charset='utf-8'><title>規章第{i}號</title></head><body>"
            f"<nav>{links}</nav><main><h1>規章第{i}號</h1><p>第{i}號規章：員工申請事項"
            f"第{i}款，應於{i % 28 + 1}日內提出。</p></main></body></html>"
        ).encode()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/", "/index.html"):
                self.path = "/p0.html"
            if not self.path.startswith("/p") or not self.path.endswith(".html"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            i = int(self.path[2:-5])
            data = body(i)
            etag = f'"v1-{i}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(data)

    return H


def crawl_bench(work: Path, n: int) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _site_handler(n))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/p0.html"
    settings = CrawlSettings(
        max_pages=n + 10, max_depth=64, allow_ips=("127.0.0.1",), use_sitemap=False
    )
    zk = Zhiku(work / "home-crawl")
    cold = Crawler(zk, "web", base, settings).run()
    warm = Crawler(zk, "web", base, settings).run()
    zk.close()
    server.shutdown()
    assert cold.count("added") == n, (cold.count("added"), cold.failed[:3])
    assert warm.count("unchanged") == n
    return "\n".join(
        [
            "| crawl | pages | seconds | pages/s |",
            "|---|---|---|---|",
            f"| cold (fetch, extract, store, index) | {n} | {cold.seconds:.2f} | "
            f"{n / cold.seconds:.0f} |",
            f"| re-crawl, nothing changed (304) | {n} | {warm.seconds:.2f} | "
            f"{n / warm.seconds:.0f} |",
        ]
    )


def watch_bench(work: Path, n: int) -> str:
    root = work / "watched"
    root.mkdir()
    zk = Zhiku(work / "home-watch")
    w = Watcher(zk, "w", root, debounce_s=0.5)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    w.ready.wait(30)
    probe = Zhiku(work / "home-watch")  # another engine, as a reader process would be
    lat = []
    for i in range(n):
        word = f"代號{i:04d}甲乙"
        t0 = time.perf_counter()
        (root / f"f{i}.txt").write_text(f"會議紀錄{i}：{word}事項照案通過。", "utf-8")
        while not any(word in h.text for h in probe.search(word, "w", k=3)):
            if time.perf_counter() - t0 > 30:
                raise AssertionError("watch did not pick up a file in 30 s")
            time.sleep(0.02)
        lat.append(time.perf_counter() - t0)
    w.stop()
    t.join(10)
    probe.close()
    zk.close()
    m = latency_ms(lat)
    return (
        "| watch: file written → found by search | files | p50 s | p95 s |\n"
        "|---|---|---|---|\n"
        f"| debounce 0.5 s, inotify | {n} | {m['p50_ms'] / 1000:.2f} | "
        f"{m['p95_ms'] / 1000:.2f} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--twlaw", type=Path, default=DEFAULT_TWLAW)
    ap.add_argument("--laws", type=int, default=None, help="import only the first N laws")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-sources-bench-"))
    parts = []
    if args.twlaw.exists():
        table, note = law_bench(args.twlaw, work, args.laws, args.queries)
        parts += ["### Taiwan law import and filtered search", table, note]
    else:
        print(f"{args.twlaw} not found: law import skipped", file=sys.stderr)
    parts += ["### Crawler (local HTTP server)", crawl_bench(work, args.pages)]
    parts += ["### Watch", watch_bench(work, args.files)]
    parts.append(f"Peak RSS {peak_rss_mb():.0f} MB. Shared 2-core machine: timings are noisy.")
    body = "\n\n".join(parts)
    print(body)
    if args.write:
        cmd = (
            "python bench/sources.py"
            + (f" --laws {args.laws}" if args.laws else "")
            + f" --pages {args.pages} --files {args.files} --write"
        )
        write_section(
            "sources",
            f"## Sources that stay in sync\n\n`{cmd}` on {machine()}, "
            f"{time.strftime('%Y-%m-%d')}.\n\n{body}",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
