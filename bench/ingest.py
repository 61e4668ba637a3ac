"""Ingest throughput on a generated folder of office files.

    python bench/ingest.py [--files 1000] [--write]

Generates DOCX, multi-page PDF, XLSX and Markdown files (zh-TW regulations, SOPs and
FAQ sheets, deterministic), then measures with zhiku's own ingest path:
- a cold ingest into a fresh store: files/s, pages/s, MB/s;
- a re-ingest with nothing changed (should cost little more than hashing), next to
  the time to merely SHA-256 the same files;
- PDF only: text-PDF pages/s.

    python bench/ingest.py --formats 20 [--write]

measures instead, per format of docs/admins/formats.md, ``N`` generated files of each (ODT, ODS,
ODP, PPTX, EML and — when tests/msg is installed (npm ci) — Outlook MSG with a PDF
attachment, ZIP with three members, SRT, WebVTT, and, when LibreOffice
is installed to write them, DOC, XLS, PPT, RTF): files/s, pages/s and passages, each
format ingested into its own KB. Scanned pages (OCR) are measured in ``bench/ocr.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, peak_rss_mb, write_section  # noqa: E402
from tests.filegen import make_docx, make_pdf, make_xlsx  # noqa: E402
from zhiku.engine import Zhiku  # noqa: E402
from zhiku.ingest import ingest_paths  # noqa: E402

TOPICS = ["出貨", "退貨", "請假", "加班", "採購", "報銷", "資安", "門禁", "盤點", "客訴"]
UNITS = ["物流部門", "人資部", "財務部", "資訊部", "客服部", "倉儲課"]
CN = "一二三四五六七八九十"


def _cn(n: int) -> str:
    if n <= 10:
        return CN[n - 1]
    if n < 20:
        return "十" + (CN[n - 11] if n > 10 else "")
    return CN[n // 10 - 1] + "十" + (CN[n % 10 - 1] if n % 10 else "")


def _sentence(rng: random.Random, topic: str) -> str:
    unit = rng.choice(UNITS)
    hours = rng.choice([4, 8, 24, 48, 72])
    return (
        f"{topic}案件應於 {hours} 小時內由{unit}受理，並於系統登錄處理紀錄，"
        f"逾期未處理者由{rng.choice(UNITS)}主管督導改善。"
    )


def generate(root: Path, n_files: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        topic = TOPICS[i % len(TOPICS)]
        kind = i % 4
        if kind == 0:  # multi-page regulation PDF with articles
            pages = []
            art = 1
            for _ in range(rng.randint(3, 6)):
                lines = []
                for _ in range(6):
                    lines.append(f"第{_cn(art)}條　" + _sentence(rng, topic))
                    art += 1
                pages.append(lines)
            make_pdf(root / f"{topic}管理辦法{i:04d}.pdf", pages, title=f"{topic}管理辦法{i}")
        elif kind == 1:  # SOP as DOCX with numbered clauses and a table
            items: list[tuple] = [("title", f"{topic}作業SOP {i}")]
            for sec in range(1, 5):
                items.append(("heading", 1, f"{sec} 作業程序{sec}"))
                for sub in range(1, 5):
                    items.append(("para", f"{sec}.{sub} " + _sentence(rng, topic)))
            items.append(("table", [["項目", "時限"], [topic, "24 小時"], ["複查", "3 日"]]))
            make_docx(root / f"{topic}SOP{i:04d}.docx", items, title=f"{topic}作業SOP {i}")
        elif kind == 2:  # FAQ sheet
            rows = [["問題", "答案"]] + [
                [f"{topic}第 {q} 題要找誰？", _sentence(rng, topic)] for q in range(1, 21)
            ]
            make_xlsx(root / f"{topic}FAQ{i:04d}.xlsx", rows)
        else:  # Markdown page (Notion-style export)
            body = [f"# {topic}說明 {i}"]
            for sec in range(1, 6):
                body.append(f"\n## 第 {sec} 節\n")
                body.extend(_sentence(rng, topic) for _ in range(4))
            (root / f"{topic}說明{i:04d} 0123456789abcdef0123456789abcdef.md").write_text(
                "\n".join(body) + "\n", "utf-8"
            )
    return root


def _hash_all(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return time.perf_counter() - t0


def generate_formats(root: Path, n: int, seed: int = 11) -> dict[str, list[Path]]:
    """``n`` files of each format, in one folder per format (deterministic)."""
    from tests.formatgen import (
        make_eml,
        make_odp,
        make_ods,
        make_odt,
        make_pptx,
        make_zip,
        soffice,
        soffice_convert_many,
    )

    rng = random.Random(seed)
    out: dict[str, list[Path]] = {}

    def folder(name: str) -> Path:
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        out[name] = []
        return d

    from tests import msggen

    formats = ["odt", "ods", "odp", "pptx", "eml", "zip", "srt", "vtt"]
    if msggen.available():  # tests/msg: npm ci
        formats.insert(5, "msg")
    for fmt in formats:
        d = folder(fmt)
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            p = d / f"{topic}{i:03d}.{fmt}"
            sentences = [_sentence(rng, topic) for _ in range(12)]
            if fmt == "odt":
                items: list[tuple] = []
                for sec in range(1, 4):
                    items.append(("heading", 1, f"作業程序{sec}"))
                    items += [("para", f"第 {sec * 4 + k} 條　{sentences[k]}") for k in range(4)]
                items.append(("table", [["項目", "時限"], [topic, "24 小時"]]))
                make_odt(p, items, outline=[("1", "", "", 1)])
            elif fmt == "ods":
                make_ods(
                    p,
                    {
                        "FAQ": [["問題", "答案"]]
                        + [[f"{topic}第 {q} 題？", s] for q, s in enumerate(sentences)]
                    },
                )
            elif fmt == "odp":
                make_odp(
                    p, [(f"{topic}訓練 {k}", sentences[k : k + 2], "講者備註") for k in range(6)]
                )
            elif fmt == "pptx":
                make_pptx(
                    p,
                    [
                        {
                            "title": f"{topic}訓練 {k}",
                            "body": sentences[k : k + 2],
                            "notes": "講者備註",
                        }
                        for k in range(6)
                    ],
                )
            elif fmt == "eml":
                pdf = root / f"att{i}.pdf"
                make_pdf(pdf, [[f"第{_cn(k + 1)}條　{s}" for k, s in enumerate(sentences[:6])]])
                make_eml(
                    p,
                    subject=f"{topic}通知 {i}",
                    sender="ops@example.com",
                    to="all@example.com",
                    body="\n\n".join(sentences[:3]),
                    attachments=[("附件.pdf", pdf.read_bytes(), "application/pdf")],
                )
            elif fmt == "msg":
                pdf = root / f"att{i}.pdf"
                make_pdf(pdf, [[f"第{_cn(k + 1)}條　{s}" for k, s in enumerate(sentences[:6])]])
                msggen.make_msg(
                    p,
                    subject=f"{topic}通知 {i}",
                    sender_name="維運組",
                    sender_email="ops@example.com",
                    to=[("全體", "all@example.com")],
                    body="\r\n\r\n".join(sentences[:3]),
                    attachments=[("附件.pdf", pdf.read_bytes())],
                )
            elif fmt == "vtt":
                cues = [
                    f"00:{k // 6:02d}:{k % 6 * 10:02d}.000 --> "
                    f"00:{k // 6:02d}:{k % 6 * 10 + 8:02d}.000\n<v 講師>{s}\n"
                    for k, s in enumerate(sentences * 4)
                ]
                p.write_text("WEBVTT\n\n" + "\n".join(cues), "utf-8")
            elif fmt == "zip":
                md = "# 說明\n\n" + "\n\n".join(sentences[:4])
                make_zip(
                    p,
                    {
                        "說明.md": md.encode(),
                        "紀錄.txt": sentences[5].encode(),
                        "子資料夾/規定.md": ("# 規定\n\n" + sentences[6]).encode(),
                    },
                )
            else:
                cues = [
                    f"{k + 1}\n00:{k // 6:02d}:{k % 6 * 10:02d},000 --> "
                    f"00:{k // 6:02d}:{k % 6 * 10 + 8:02d},000\n{s}\n"
                    for k, s in enumerate(sentences * 4)
                ]
                p.write_text("\n".join(cues), "utf-8")
            out[fmt].append(p)
    if soffice() is not None:
        srcs: dict[str, list[Path]] = {"doc": [], "xls": []}
        gen = root / "_src"
        gen.mkdir(exist_ok=True)
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            items = [("heading", 1, f"{topic}規定")] + [
                ("para", f"第 {k + 1} 條　{_sentence(rng, topic)}") for k in range(10)
            ]
            srcs["doc"].append(make_docx(gen / f"{topic}規定{i:03d}.docx", items))
            srcs["xls"].append(
                make_xlsx(
                    gen / f"{topic}FAQ{i:03d}.xlsx",
                    [["問題", "答案"]]
                    + [[f"{topic}第 {q} 題？", _sentence(rng, topic)] for q in range(12)],
                )
            )
        for fmt, files in srcs.items():
            if files:
                out[fmt] = soffice_convert_many(files, fmt, folder(fmt))
        out["ppt"] = soffice_convert_many(out["pptx"], "ppt", folder("ppt"))
        out["rtf"] = soffice_convert_many(srcs["doc"], "rtf", folder("rtf"))
    return out


def bench_formats(n: int, write: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="zhiku-formats-bench-"))
    t0 = time.perf_counter()
    sets = generate_formats(work / "files", n)
    gen_s = time.perf_counter() - t0
    rows = [
        "| format | files | inner files | pages | passages | seconds | files/s | pages/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with Zhiku(work / "home") as zk:
        for fmt, files in sets.items():
            rep = ingest_paths(zk, files, fmt)
            inner = len(rep.files) - len(files)
            failed = [f"{f.path}: {f.message}" for f in rep.failed]
            assert not failed, failed
            s = rep.seconds
            pages = f"{rep.pages / s:.1f}" if rep.pages else "–"
            rows.append(
                f"| {fmt} | {len(files)} | {inner} | {rep.pages or '–'} | "
                f"{rep.chunks} | {s:.2f} | {len(files) / s:.1f} | {pages} |"
            )
            print(rows[-1], flush=True)
    table = "\n".join(rows)
    note = (
        "DOC/XLS/PPT/RTF files are written by LibreOffice from generated DOCX/XLSX/PPTX; "
        ".ppt is read through a LibreOffice conversion (one process start per file, "
        "which dominates its time). EML and MSG files (MSG written by SheetJS cfb, "
        "tests/msggen.py) carry one PDF attachment and ZIPs three "
        "members, ingested as child documents (the *inner files* column). Shared "
        f"2-core machine, load average {os.getloadavg()[0]:.1f} at the end: timings are "
        f"noisy. (Generating the files took {gen_s:.0f} s.)"
    )
    print(note)
    if write:
        write_section(
            "ingest-formats",
            (
                "### Ingest throughput per format (bench/ingest.py --formats)\n\n"
                f"`python bench/ingest.py --formats {n} --write` on {machine()}, "
                f"{time.strftime('%Y-%m-%d')}.\n\n{table}\n\n{note}"
            ),
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument(
        "--formats",
        type=int,
        default=0,
        help="per-format run with N files of each format (instead of the mix)",
    )
    args = ap.parse_args()
    if args.formats:
        return bench_formats(args.formats, args.write)
    work = Path(tempfile.mkdtemp(prefix="zhiku-ingest-bench-"))
    t0 = time.perf_counter()
    folder = generate(work / "files", args.files)
    gen_s = time.perf_counter() - t0
    files = sorted(p for p in folder.iterdir())
    mb = sum(p.stat().st_size for p in files) / 1e6

    zk = Zhiku(work / "home")
    cold = ingest_paths(zk, [folder], "bench")
    warm = ingest_paths(zk, [folder], "bench")
    hash_s = _hash_all(files)
    zk.close()
    pdfs = [p for p in files if p.suffix == ".pdf"]
    zk2 = Zhiku(work / "home-pdf")
    pdf = ingest_paths(zk2, pdfs, "pdf")
    zk2.close()
    assert not cold.failed and cold.count("added") == len(files)
    assert warm.count("unchanged") == len(files)

    rows = [
        "| run | files | pages | MB | seconds | files/s | pages/s | MB/s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, rep, n_files: int, mbytes: float) -> str:  # type: ignore[no-untyped-def]
        s = rep.seconds
        return (
            f"| {name} | {n_files} | {rep.pages} | {mbytes:.1f} | {s:.2f} | "
            f"{n_files / s:.0f} | {rep.pages / s:.0f} | {mbytes / s:.1f} |"
        )

    rows.append(row("cold ingest (all formats)", cold, len(files), mb))
    rows.append(row("re-ingest, nothing changed", warm, len(files), mb))
    pdf_mb = sum(p.stat().st_size for p in pdfs) / 1e6
    rows.append(row("cold ingest, text PDFs only", pdf, len(pdfs), pdf_mb))
    table = "\n".join(rows)
    summary = (
        f"{cold.chunks} chunks. SHA-256 of the same files alone: {hash_s:.2f} s; the "
        f"unchanged re-ingest took {warm.seconds:.2f} s "
        f"({warm.seconds / max(hash_s, 1e-9):.1f}× hashing). Peak RSS "
        f"{peak_rss_mb():.0f} MB. (Generating the files took {gen_s:.0f} s.)"
    )
    print(table)
    print(summary)
    if args.write:
        write_section(
            "ingest",
            (
                "## Ingest throughput\n\n"
                f"`python bench/ingest.py --files {args.files} --write` on {machine()}, "
                f"{time.strftime('%Y-%m-%d')}.\n\n{table}\n\n{summary}"
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
