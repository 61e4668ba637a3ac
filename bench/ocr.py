"""OCR quality and speed: Tesseract (chi_tra+eng, zhiku's engine) versus RapidOCR (PP-OCRv4
ONNX models shipped in ``rapidocr-onnxruntime``, adapter below), and what OCR costs
retrieval.

    python bench/ocr.py [--pages 3] [--retrieval 40] [--write]

1. Engines: law articles (全國法規資料庫, ../shared/data/twlaw) rendered with Noto Sans CJK
   TC at 12 pt on A4 pages at 200 and 300 dpi, clean and "scanned" (1.5° skew, blur,
   2 % salt-and-pepper noise). Every engine reads the same pages. Character error rate
   (CER) = Levenshtein distance / reference length, whitespace removed, two ways:
   *exact* (every character must match) and *folded* (NFKC width folding and
   Traditional→Simplified folding, i.e. what the lexical index sees). Pages/s is the
   engine alone on a pre-rendered image; these machines share 2 cores among several
   users, so timings are noisy.
2. End to end: the clean 300-dpi pages as one image-only PDF through ``zhiku.loaders``
   (render + OCR + segmentation) with the default engine: pages/s.
3. Retrieval through OCR: DRCD paragraphs rendered as scanned PNG pages (300 dpi, with
   scanner noise) and ingested through OCR into one KB, the same paragraphs as text into
   another; R@1/R@5 of the DRCD questions on each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz.distance import Levenshtein  # noqa: E402

from bench.common import machine, rank_of, read_drcd, retrieval_metrics, write_section  # noqa: E402
from tests.scangen import render_page, save_image_pdf  # noqa: E402
from zhiku import loaders, ocr  # noqa: E402
from zhiku.text import fold  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
CONDITIONS = [(300, False), (200, False), (300, True), (200, True)]


class RapidOcrEngine:
    """PP-OCRv4 (det + rec, Chinese dictionary) in ONNX, as shipped in ``rapidocr-onnxruntime``."""

    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR()

    def read(self, image: Any) -> ocr.OcrPage:
        import numpy as np

        result, _ = self._ocr(np.asarray(image.convert("RGB")))
        boxes = []
        for box, text, score in result or []:
            xs = [p[0] for p in box]
            ys = [p[1] for p in box]
            boxes.append((min(ys), max(ys), min(xs), max(xs), str(text), float(score)))
        boxes.sort()
        # Boxes whose vertical centres fall inside the previous box's span form one line.
        rows: list[list[tuple[float, float, float, float, str, float]]] = []
        for b in boxes:
            centre = (b[0] + b[1]) / 2
            if rows and rows[-1][0][0] <= centre <= rows[-1][0][1]:
                rows[-1].append(b)
            else:
                rows.append([b])
        page = ocr.OcrPage()
        for row in rows:
            row.sort(key=lambda b: b[2])
            text = ocr.join_tokens([b[4] for b in row])
            if not text:
                continue
            n = sum(len(b[4]) for b in row) or 1
            conf = sum(b[5] * len(b[4]) for b in row) / n
            page.lines.append(
                ocr.OcrLine(
                    text,
                    round(conf, 4),
                    min(b[2] for b in row),
                    min(b[0] for b in row),
                    max(b[3] for b in row),
                    max(b[1] for b in row),
                )
            )
        return page


def law_pages(n: int, chars: int = 650) -> list[list[str]]:
    """``n`` pages of consecutive law articles (「第 N 條　…」), about ``chars`` each."""
    pages: list[list[str]] = []
    cur: list[str] = []
    size = 0
    with gzip.open(DATA / "twlaw" / "articles.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 97:  # a spread of laws, deterministic
                continue
            rec = json.loads(line)
            para = f"{rec['article'].replace(' ', '')}　{rec['text']}"[:400]
            cur.append(para)
            size += len(para)
            if size >= chars:
                pages.append(cur)
                cur, size = [], 0
                if len(pages) == n:
                    break
    return pages


def _norm(text: str, folded: bool) -> str:
    text = "".join(text.split())
    if folded:
        text = fold(unicodedata.normalize("NFKC", text))
    return text


def cer(ref: str, hyp: str, folded: bool) -> tuple[int, int]:
    r, h = _norm(ref, folded), _norm(hyp, folded)
    return Levenshtein.distance(r, h), len(r)


def bench_engines(n_pages: int) -> tuple[str, dict[str, float]]:
    texts = law_pages(n_pages)
    engines: list[Any] = [ocr.get_engine(), RapidOcrEngine()]
    rows = [
        "| engine | dpi | scan | pages | CER exact | CER folded | mean conf | pages/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, float] = {}
    for dpi, dirty in CONDITIONS:
        pages = [
            render_page(t, dpi, skew=1.5 if dirty else 0.0, noise=0.02 if dirty else 0.0, seed=i)
            for i, t in enumerate(texts)
        ]
        for eng in engines:
            errs = errs_f = total = total_f = 0
            secs = 0.0
            confs = []
            for img, ref in pages:
                prepared = ocr.prepare(img, Path("bench"), 1)
                t0 = time.perf_counter()
                res = eng.read(prepared)
                secs += time.perf_counter() - t0
                e, n = cer(ref, res.text, False)
                ef, nf = cer(ref, res.text, True)
                errs, total, errs_f, total_f = errs + e, total + n, errs_f + ef, total_f + nf
                confs.append(res.confidence)
            row = (
                f"| {eng.name} | {dpi} | {'skew+noise' if dirty else 'clean'} | {len(pages)} "
                f"| {100 * errs / total:.2f} % | {100 * errs_f / total_f:.2f} % "
                f"| {sum(confs) / len(confs):.3f} | {len(pages) / secs:.3f} |"
            )
            print(row, flush=True)
            rows.append(row)
            summary[f"{eng.name}-{dpi}-{int(dirty)}"] = errs / total
    return "\n".join(rows), summary


def bench_pdf(n_pages: int) -> str:
    texts = law_pages(n_pages)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = save_image_pdf(Path(tmp) / "scan.pdf", [render_page(t, 300)[0] for t in texts])
        t0 = time.perf_counter()
        doc = loaders.load(pdf)
        secs = time.perf_counter() - t0
    return (
        f"Image-only PDF, {doc.pages} pages at 300 dpi, through `zhiku.loaders.load` with "
        f"the default engine ({ocr.DEFAULT_ENGINE}): {doc.pages / secs:.3f} pages/s, "
        f"{len(doc.blocks)} blocks, low-confidence pages: "
        f"{doc.meta['ocr']['low_confidence_pages'] or 'none'}."
    )


def bench_retrieval(n_docs: int) -> str:
    from zhiku.engine import Zhiku
    from zhiku.ingest import ingest_paths

    passages, questions = read_drcd(DATA / "drcd" / "DRCD_dev.json")
    passages = passages[:n_docs]
    keys = {p.key for p in passages}
    qs = [q for q in questions if q.gold in keys]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scans, texts = root / "scans", root / "texts"
        scans.mkdir()
        texts.mkdir()
        for i, p in enumerate(passages):
            img, _ = render_page([p.text], 300, skew=0.7, noise=0.01, seed=i)
            img.save(scans / f"{p.key}.png")
            (texts / f"{p.key}.txt").write_text(p.text, "utf-8")
        os.environ["ZHIKU_HOME"] = str(root / "home")
        with Zhiku(root / "home") as zk:
            t0 = time.perf_counter()
            rep = ingest_paths(zk, [scans], "ocr")
            ocr_secs = time.perf_counter() - t0
            ingest_paths(zk, [texts], "text")
            out = {}
            for kb in ("ocr", "text"):
                ranks = []
                for q in qs:
                    hits = zk.search(q.text, kb, k=20)
                    ranks.append(rank_of([Path(h.path).stem for h in hits], q.gold))
                out[kb] = retrieval_metrics(ranks)
    failed = len(rep.failed)
    lines = [
        f"DRCD dev, first {len(passages)} paragraphs rendered as scanned PNG pages (300 dpi, "
        f"0.7° skew, 1 % noise), {len(qs)} questions; OCR ingest "
        f"{len(passages) / ocr_secs:.3f} pages/s ({ocr.DEFAULT_ENGINE}), {failed} failed.",
        "",
        "| KB | R@1 | R@5 | R@20 | MRR@10 |",
        "|---|---|---|---|---|",
    ]
    for kb, m in out.items():
        lines.append(
            f"| {'through OCR' if kb == 'ocr' else 'as text'} | {m['R@1']:.3f} "
            f"| {m['R@5']:.3f} | {m['R@20']:.3f} | {m['MRR@10']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=3, help="pages per condition")
    ap.add_argument("--retrieval", type=int, default=40, help="DRCD paragraphs (0: skip)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    table, _ = bench_engines(args.pages)
    pdf_line = bench_pdf(args.pages)
    print(pdf_line, flush=True)
    retrieval = bench_retrieval(args.retrieval) if args.retrieval else "(skipped)"
    print(retrieval, flush=True)
    body = "\n".join(
        [
            "## OCR (bench/ocr.py)",
            "",
            f"`python bench/ocr.py --pages {args.pages} --retrieval {args.retrieval} --write` "
            f"on {machine()}, load average {os.getloadavg()[0]:.1f} at the end (the machine "
            "is shared with other work: pages/s are noisy and low). Tesseract "
            "5 (Debian `tesseract-ocr-chi-tra`, `chi_tra+eng`, `--psm 3`) versus RapidOCR "
            "(`rapidocr-onnxruntime` 1.4, PP-OCRv4 det/rec with the Chinese dictionary "
            "shipped in the wheel). Law articles rendered with Noto Sans CJK TC 12 pt on A4.",
            "",
            table,
            "",
            pdf_line,
            "",
            "### Retrieval through OCR",
            "",
            retrieval,
        ]
    )
    if args.write:
        write_section("ocr", body)


if __name__ == "__main__":
    main()
