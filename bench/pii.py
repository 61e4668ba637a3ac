"""PII detection benchmark: per-type precision / recall and throughput.

    python bench/pii.py                 # full run: ~15k sentences, 20 MB chat log
    python bench/pii.py --quick         # smaller, for a smoke test
    python bench/pii.py --no-write      # do not touch bench/RESULTS.md

Accuracy is measured on sentences, table cells and look-alikes from
``tests/pii_gen.py`` (fixed seed). A finding counts as correct when a gold span of the
same type overlaps it; "covered" is the share of gold spans a same-type finding covers
entirely (what masking needs). Throughput is :func:`zhiku.pii.detect` over a generated
customer-service chat log, once as one string and once per 2 KB block (how ingestion
calls it), on one core (the process is pinned when the OS allows it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pii_gen import PiiGen, Sample  # noqa: E402
from zhiku.pii import TYPES, detect, detect_field  # noqa: E402
from zhiku.pii.detect import email_subtype  # noqa: E402

CHECKSUMMED = ("tw_id", "arc", "ubn", "credit_card")


def evaluate(samples: list[Sample], min_confidence: float = 0.5) -> dict[str, dict[str, float]]:
    """Per-type tp / fp / fn / covered counts and precision / recall."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    gold_n: Counter[str] = Counter()
    for s in samples:
        found = detect(s.text, min_confidence=min_confidence)
        _score(s.spans, [(f.start, f.end, f.type) for f in found], tp, fp, fn, covered, gold_n)
    return _table(tp, fp, fn, covered, gold_n)


def evaluate_table(gen: PiiGen, rows: int) -> dict[str, dict[str, float]]:
    """Cells of a customer table scanned with their column names as context."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    gold_n: Counter[str] = Counter()
    header, body = gen.table(rows)
    kinds = [t for _, t in gen.TABLE_COLUMNS]
    for row in body:
        for col, value, typ in zip(header, row, kinds, strict=True):
            gold = [(0, len(value), typ)] if typ else []
            found = [(f.start, f.end, f.type) for f in detect_field(value, col)]
            _score(gold, found, tp, fp, fn, covered, gold_n)
    return _table(tp, fp, fn, covered, gold_n)


def _score(gold, found, tp, fp, fn, covered, gold_n) -> None:  # type: ignore[no-untyped-def]
    used: set[int] = set()
    for gs, ge, gt in gold:
        gold_n[gt] += 1
        hit = False
        for k, (fs, fe, ft) in enumerate(found):
            if ft == gt and fs < ge and gs < fe:
                hit = True
                used.add(k)
                if fs <= gs and fe >= ge:
                    covered[gt] += 1
                    break
        if hit:
            tp[gt] += 1
        else:
            fn[gt] += 1
    for k, (_, _, ft) in enumerate(found):
        if k not in used:
            fp[ft] += 1


def _table(tp, fp, fn, covered, gold_n) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, float]] = {}
    for t in TYPES:
        if not (tp[t] or fp[t] or fn[t]):
            continue
        found = tp[t] + fp[t]
        out[t] = {
            "gold": gold_n[t],
            "tp": tp[t],
            "fp": fp[t],
            "fn": fn[t],
            "precision": tp[t] / found if found else 1.0,
            "recall": tp[t] / gold_n[t] if gold_n[t] else 1.0,
            "covered": covered[t] / gold_n[t] if gold_n[t] else 1.0,
        }
    return out


def email_role_accuracy(gen: PiiGen, n: int) -> float:
    ok = 0
    for i in range(n):
        role = i % 2 == 0
        addr = gen.email(role=role)
        local, domain = addr.split("@")
        ok += (email_subtype(local, domain) == "role") == role
    return ok / n


def throughput(text: str, block: int | None) -> float:
    """MB/s of UTF-8 input through :func:`detect` (best of two runs)."""
    size = len(text.encode()) / 1e6
    if block is None:
        pieces = [text]
    else:
        lines = text.splitlines(keepends=True)
        pieces, cur, cur_len = [], [], 0
        for ln in lines:
            cur.append(ln)
            cur_len += len(ln)
            if cur_len >= block:
                pieces.append("".join(cur))
                cur, cur_len = [], 0
        if cur:
            pieces.append("".join(cur))
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        for p in pieces:
            detect(p)
        best = min(best, time.perf_counter() - t0)
    return size / best


def read_corpus(path: Path) -> list[str]:
    """Texts of a real corpus: twlaw ``articles.jsonl.gz`` or a DRCD-format JSON."""
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return [json.loads(line)["text"] for line in fh]
    data = json.loads(path.read_text("utf-8"))
    return [p["context"] for art in data["data"] for p in art["paragraphs"]]


def corpus_findings(paths: list[Path]) -> tuple[float, Counter[str]]:
    """MB of real text (no planted PII) and what the default policy finds in it."""
    texts = [t for p in paths for t in read_corpus(p)]
    found: Counter[str] = Counter(f.type for t in texts for f in detect(t))
    return sum(len(t.encode()) for t in texts) / 1e6, found


def _fmt_table(res: dict[str, dict[str, float]]) -> str:
    lines = [
        "| type | gold | precision | recall | covered | FP | FN |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, r in res.items():
        lines.append(
            f"| {t} | {int(r['gold'])} | {r['precision']:.4f} | {r['recall']:.4f} | "
            f"{r['covered']:.4f} | {int(r['fp'])} | {int(r['fn'])} |"
        )
    return "\n".join(lines)


def _pin_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--seed", type=int, default=20240315)
    ap.add_argument("--mb", type=float, default=20.0, help="chat log size in MB")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="real text without planted PII (twlaw articles.jsonl.gz, DRCD JSON); default: "
        "../shared/data/{twlaw,drcd} when present",
    )
    args = ap.parse_args(argv)
    per_type, looks, invalid, rows, mb = (1000, 5000, 2000, 2000, args.mb)
    if args.quick:
        per_type, looks, invalid, rows, mb = (100, 500, 200, 200, 2.0)
    from bench.common import machine

    host = machine()  # before pinning: nproc reports the affinity mask
    pin = _pin_one_core()

    gen = PiiGen(seed=args.seed)
    samples = gen.dataset(per_type=per_type, lookalikes=looks, invalid=invalid)
    t0 = time.perf_counter()
    res = evaluate(samples)
    t_eval = time.perf_counter() - t0
    res_table = evaluate_table(PiiGen(seed=args.seed + 1), rows)
    role_acc = email_role_accuracy(PiiGen(seed=args.seed + 2), 2000)

    corpus = args.corpus
    if corpus is None:
        shared = ROOT.parent / "shared" / "data"
        corpus = [
            p
            for p in (shared / "twlaw" / "articles.jsonl.gz", shared / "drcd" / "DRCD_dev.json")
            if p.exists()
        ]
    corpus_mb, corpus_found = corpus_findings(corpus) if corpus and not args.quick else (0, None)

    log = PiiGen(seed=args.seed + 3).chat_log(int(mb * 1e6))
    mbs_whole = throughput(log, None)
    mbs_block = throughput(log, 2048)

    print(
        f"sentences: {len(samples)} ({per_type}/type, {looks} look-alikes, {invalid} "
        f"wrong-checksum), evaluated in {t_eval:.1f} s"
    )
    print(_fmt_table(res))
    print(f"\ntable cells ({rows} rows, column names as context):")
    print(_fmt_table(res_table))
    print(f"\ne-mail role/personal accuracy: {role_acc:.4f}")
    corpus_line = ""
    if corpus_found is not None:
        names = ", ".join(p.name for p in corpus)
        detail = ", ".join(f"{t} {corpus_found[t]}" for t in TYPES if corpus_found[t]) or "none"
        corpus_line = (
            f"Real text without planted PII ({names}, {corpus_mb:.1f} MB): "
            f"{sum(corpus_found.values())} findings ({detail})."
        )
        print("\n" + corpus_line)
    print(
        f"\nthroughput on a {mb:.0f} MB chat log ({pin}): {mbs_whole:.1f} MB/s as one "
        f"string, {mbs_block:.1f} MB/s in 2 KB blocks"
    )
    failed = [
        t
        for t in CHECKSUMMED
        if t in res and (res[t]["precision"] < 0.99 or res[t]["recall"] < 0.99)
    ]
    if failed:
        print(f"\nBELOW TARGET (0.99) on checksummed types: {', '.join(failed)}")

    if not args.no_write and not args.quick:
        from bench.common import write_section

        body = "\n".join(
            [
                "## PII detection",
                "",
                f"`python bench/pii.py` (seed {args.seed}) on {host}, {pin}.",
                "",
                f"Generated zh-TW sentences from `tests/pii_gen.py`: {per_type} per type, "
                f"{looks} look-alikes (order / invoice numbers, product codes, amounts, "
                f"dates, tracking numbers) and {invalid} identifiers with a wrong check "
                "digit in their usual context. A finding is correct when it overlaps a "
                "gold span of the same type; *covered* = the finding spans the whole "
                "value. Default threshold (0.5).",
                "",
                _fmt_table(res),
                "",
                f"Table cells ({rows} rows; the column name is the context):",
                "",
                _fmt_table(res_table),
                "",
                f"E-mail role vs personal mailbox: {role_acc:.4f} correct.",
                "",
                corpus_line,
                "",
                f"Throughput, `detect()` on a {mb:.0f} MB customer-service chat log, one "
                f"core: **{mbs_whole:.1f} MB/s** as one string, **{mbs_block:.1f} MB/s** "
                "in 2 KB blocks (the ingestion path).",
                "",
                "Names and addresses have no checksum: their figures come from the same "
                "generator's templates and overstate real-world accuracy (see docs/admins/pii.md, "
                "「個資」 limitations).",
            ]
        )
        write_section("pii", body)
        print("\nbench/RESULTS.md updated (pii section)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
