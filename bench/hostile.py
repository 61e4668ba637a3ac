"""Hostile files: what each costs to ingest, and whether a small upload behind it waits.

    python bench/hostile.py [--write] [--only NAME]

Generates each attack of issue 9 (and the files of tests/test_server_hostile.py), then
for each one, on a fresh data directory with a real server app (FastAPI TestClient,
the default settings: two ingestion threads, the default limits):

- uploads it, then at once uploads a small Markdown file, and reports whether the
  small file is searchable, and after how long (target: within 10 s);
- reports the hostile file's wall time (upload to job result), the peak resident
  memory of the process that read it (the load worker's ``VmHWM``; each file gets a
  fresh worker here so the figure is that file's alone) and of the server process, and
  the error reported (``bomb``, ``too_complex``, ``too_large``… or ``added``);
- for the files the CLI reads without an upload check, the same through
  ``ingest_paths`` (the ``zhiku ingest`` path).

Targets (issue 9): no file under 10 MB costs more than 1 GB of memory or 30 s of wall
time, and a small upload behind a hostile one is searchable within 10 s. The machine
is shared (2 cores, several other jobs), so times are noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, peak_rss_mb, write_section  # noqa: E402
from tests import hostile_gen as hg  # noqa: E402
from tests.filegen import make_docx, make_pdf, make_text  # noqa: E402
from zhiku import limits  # noqa: E402

MB = 1024 * 1024


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        p.write_bytes(data)
        return p

    return make


ATTACKS: list[tuple[str, str, Callable[[Path], Path]]] = [
    # name, what, generator
    (
        "styles.docx",
        "3,000 styles × 10,000 paragraphs (quadratic style look-ups)",
        lambda d: hg.docx_styles(d / "styles.docx", 3000, 10_000),
    ),
    (
        "flate-bomb.pdf",
        "flate stream inflating to 2 GB",
        lambda d: hg.pdf_flate_bomb(d / "flate-bomb.pdf", 2048),
    ),
    (
        "understated.docx",
        "ZIP headers claim 1 kB, entry inflates to 2 GB",
        lambda d: hg.docx_expanding(d / "understated.docx", 2048, understate=True),
    ),
    (
        "honest-8g.docx",
        "honest headers, 8 GB of XML (the CLI had no check)",
        lambda d: hg.docx_expanding(d / "honest-8g.docx", 8192),
    ),
    ("rows-3m.xlsx", "3 million rows", lambda d: hg.xlsx_rows(d / "rows-3m.xlsx", 3_000_000)),
    (
        "elements.docx",
        "30 million empty XML elements",
        lambda d: hg.docx_elements(d / "elements.docx", 30_000_000),
    ),
    (
        "long-line.txt",
        "one 6-million-character line",
        lambda d: make_text(d / "long-line.txt", "很長的一行" * 1_200_000),
    ),
    # The files of tests/test_server_hostile.py:
    (
        "zip-bomb.docx",
        "3 MB of zeros in document.xml (test_server_hostile)",
        _bytes("zip-bomb.docx", hg.zip_bytes({"word/document.xml": b"\0" * (3 * MB)})),
    ),
    ("html-as.pdf", "HTML named .pdf", _bytes("html-as.pdf", b"<html><body>x</body></html>")),
    ("exe-as.docx", "executable named .docx", _bytes("exe-as.docx", b"MZ\x90\x00" + bytes(200))),
    (
        "encrypted.docx",
        "encrypted Office file",
        _bytes(
            "encrypted.docx",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + "EncryptedPackage".encode("utf-16-le")
            + bytes(600),
        ),
    ),
    ("not-a-zip.docx", "PK header, garbage", _bytes("not-a-zip.docx", b"PK\x03\x04garbage")),
    (
        "ok.docx",
        "a normal DOCX (control)",
        lambda d: make_docx(d / "ok.docx", [("para", "正常的文件內容。")]),
    ),
    ("ok.pdf", "a normal PDF (control)", lambda d: make_pdf(d / "ok.pdf", [["正常的內容。"]])),
]
CLI_ONLY = {"honest-8g.docx", "understated.docx", "flate-bomb.pdf", "rows-3m.xlsx"}


@dataclass(slots=True)
class Row:
    name: str
    what: str
    size: int
    channel: str
    result: str
    seconds: float
    worker_mb: float | None
    server_mb: float
    small_s: float | None  # seconds until the small file was searchable


def _measure_server(path: Path, what: str, home: Path) -> Row:
    from fastapi.testclient import TestClient

    from tests.server_util import auth, build_home
    from zhiku.server.app import create_app
    from zhiku.server.settings import ServerSettings

    keys = build_home(home)
    peaks: dict[str, int] = {}

    def seen(p: str, _s: float, peak: int, _r: str | None) -> None:
        peaks[Path(p).name] = max(peaks.get(Path(p).name, 0), peak)

    limits.observe = seen
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    h = auth(keys.hr_editor)
    with TestClient(create_app(settings)) as c:
        t0 = time.monotonic()
        r1 = c.post(
            "/api/v1/kbs/hr/documents", headers=h, files=[("files", (path.name, path.read_bytes()))]
        )
        t_small = time.monotonic()
        r2 = c.post(
            "/api/v1/kbs/hr/documents",
            headers=h,
            files=[("files", ("小檔.md", "# 門禁\n\n夜間門禁卡號每月更換。".encode()))],
        )
        assert r1.status_code == 202 and r2.status_code == 202, (r1.text, r2.text)
        small_s = None
        job1: dict[str, Any] = {}
        t_hostile = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (small_s is None or t_hostile is None):
            if small_s is None:
                hits = c.post(
                    "/api/v1/kbs/hr/search", headers=h, json={"query": "門禁卡號"}
                ).json()["hits"]
                if any("門禁卡號" in x["text"] for x in hits):
                    small_s = time.monotonic() - t_small
            if t_hostile is None:
                job1 = c.get(f"/api/v1/jobs/{r1.json()['id']}", headers=h).json()
                if job1["status"] in ("done", "failed"):
                    t_hostile = time.monotonic() - t0
            time.sleep(0.05)
    limits.observe = None
    f = job1["files"][0] if job1.get("files") else {}
    result = f.get("status", "?") if f.get("status") != "failed" else f.get("reason") or "?"
    peak = peaks.get(path.name)
    return Row(
        path.name,
        what,
        path.stat().st_size,
        "upload",
        result,
        t_hostile or 180.0,
        peak / MB if peak else None,
        peak_rss_mb(),
        small_s,
    )


def _measure_cli(path: Path, what: str, home: Path) -> Row:
    from zhiku.engine import Zhiku
    from zhiku.ingest import ingest_paths

    peaks: dict[str, int] = {}

    def seen(p: str, _s: float, peak: int, _r: str | None) -> None:
        peaks[p] = max(peaks.get(p, 0), peak)

    limits.observe = seen
    t0 = time.monotonic()
    with Zhiku(home) as zk:
        rep = ingest_paths(zk, [path], "default")
    limits.observe = None
    f = rep.files[0]
    result = f.status if f.status != "failed" else f.reason or "?"
    peak = max(peaks.values()) if peaks else None
    return Row(
        path.name,
        what,
        path.stat().st_size,
        "cli",
        result,
        time.monotonic() - t0,
        peak / MB if peak else None,
        peak_rss_mb(),
        None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--only", action="append", help="run only this attack (repeatable)")
    args = ap.parse_args()
    limits.LoadWorker.RETIRE_RSS = 0  # a fresh worker per file: its peak is that file's
    rows: list[Row] = []
    gen_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (name, what, make) in enumerate(ATTACKS):
            if args.only and name not in args.only:
                continue
            d = root / f"f{i}"
            d.mkdir()
            t = time.monotonic()
            path = make(d)
            gen_s += time.monotonic() - t
            row = _measure_server(path, what, root / f"home{i}")
            rows.append(row)
            print(_fmt(row), flush=True)
            if name in CLI_ONLY:
                row = _measure_cli(path, what, root / f"cli{i}")
                rows.append(row)
                print(_fmt(row), flush=True)
            path.unlink()
    lim = limits.Limits()
    over = [r for r in rows if r.size < 10 * MB and ((r.worker_mb or 0) > 1024 or r.seconds > 30)]
    slow = [r for r in rows if r.channel == "upload" and (r.small_s is None or r.small_s > 10)]
    body = "\n".join(
        [
            "## Hostile files",
            "",
            f"`python bench/hostile.py --write` on {machine()}, {time.strftime('%Y-%m-%d')}; "
            "shared machine, times are noisy. Default limits: "
            f"{lim.file_seconds:g} s + {lim.seconds_per_mb:g} s/MB and "
            f"{lim.file_memory_mb:g} MB per file, {lim.max_expanded_mb:g} MB expanded, "
            f"{lim.max_rows:,} rows, {lim.max_passages:,} passages.",
            "",
            "| file | attack | size | via | result | wall s | reader peak MB "
            "| small file searchable after s |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {r.name} | {r.what} | {_size(r.size)} | {r.channel} | {r.result} | "
                f"{r.seconds:.1f} | {'' if r.worker_mb is None else f'{r.worker_mb:.0f}'} | "
                f"{_small(r)} |"
                for r in rows
            ),
            "",
            f"Files under 10 MB over 1 GB or 30 s: {len(over)}"
            + (f" ({', '.join(r.name for r in over)})" if over else "")
            + f". Small uploads not searchable within 10 s: {len(slow)}"
            + (f" ({', '.join(r.name for r in slow)})" if slow else "")
            + f". Peak RSS of the bench process (server side, all runs): {peak_rss_mb():.0f} MB."
            + f' Generating the files took {gen_s:.0f} s. "reader peak" is the load worker\'s'
            " VmHWM; empty where the file was refused before any reading (upload checks).",
        ]
    )
    print(body)
    if args.write:
        write_section("hostile", body)


def _small(r: Row) -> str:
    if r.channel == "cli":
        return ""
    return "not within 180" if r.small_s is None else f"{r.small_s:.1f}"


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} kB"


def _fmt(r: Row) -> str:
    return (
        f"{r.name:18} {r.channel:6} {_size(r.size):>9} {r.result:12} {r.seconds:6.1f}s "
        f"reader {r.worker_mb or 0:6.0f} MB  small {r.small_s}"
    )


if __name__ == "__main__":
    main()
