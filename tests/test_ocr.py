"""OCR with the real engine (Debian tesseract-ocr + tesseract-ocr-chi-tra) on pages rendered
here with a real CJK font: images, multi-page TIFF, mixed PDFs, the
per-page cache that makes OCR resumable, confidence flags, limits, and the server's
ingest workers."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest

from tests.scangen import render_page, save_image_pdf, save_tiff
from zhiku import ocr
from zhiku.engine import Zhiku
from zhiku.errors import LoadError
from zhiku.ingest import ingest_file, ingest_paths
from zhiku.loaders import load

HALF_PAGE = (8.27, 2.6)
ART_12 = "第 12 條　雇主應於每月十日前發給工資，並提供工資明細。"
ART_13 = "第 13 條　勞工請假期間之工資，依勞工請假規則辦理。"


def _similar(expected: str, got: str, at_least: float = 0.9) -> bool:
    """OCR output close to the source text (whitespace ignored), as CER ≲ 10 % would be."""
    a, b = "".join(expected.split()), "".join(got.split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= at_least


def _nospace(label: str | None) -> str:
    return (label or "").replace(" ", "")


def _png(path: Path, paragraphs: list[str], **kw: Any) -> Path:
    img, _ = render_page(paragraphs, 300, size=HALF_PAGE, **kw)
    img.save(path)
    return path


def test_png_scan_gives_labelled_clauses_with_page(tmp_path: Path) -> None:
    doc = load(_png(tmp_path / "工資.png", [ART_12, ART_13]))
    assert doc.kind == "image" and doc.pages == 1
    assert doc.meta["ocr"]["engine"] == "tesseract" and doc.meta["ocr"]["pages"] == [1]
    assert _similar(ART_12 + ART_13, "".join(b.text for b in doc.blocks))
    labels = [_nospace(b.label) for b in doc.blocks]
    assert "第12條" in labels and "第13條" in labels
    assert all(b.page_start == 1 for b in doc.blocks)
    assert doc.meta["ocr"]["low_confidence_pages"] == []


def test_jpeg_and_fully_scanned_pdf(tmp_path: Path) -> None:
    # A phone photo of a page (JPEG) and a PDF that is only scans, no page with a text
    # layer (what was once reported as "empty"): both OCR'd, every page cited.
    img, _ = render_page([ART_12], 300, size=HALF_PAGE)
    jpg = tmp_path / "拍照.jpg"
    img.convert("RGB").save(jpg, "JPEG", quality=85, dpi=(300, 300))
    doc = load(jpg)
    assert doc.kind == "image" and _similar(ART_12, "".join(b.text for b in doc.blocks))
    pdf = save_image_pdf(
        tmp_path / "簽核掃描.pdf",
        [
            render_page([ART_12], 300, size=HALF_PAGE)[0],
            render_page([ART_13], 300, size=HALF_PAGE)[0],
        ],
    )
    doc = load(pdf)
    assert doc.pages == 2 and doc.meta["ocr"]["pages"] == [1, 2]
    by_page = {p: "".join(b.text for b in doc.blocks if b.page_start == p) for p in (1, 2)}
    assert _similar(ART_12, by_page[1]) and _similar(ART_13, by_page[2])


def test_mixed_pdf_ocrs_only_the_scanned_page(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import inch
    from reportlab.pdfgen import canvas

    from tests.filegen import CJK_FONT, _register_cjk_font

    scan = _png(tmp_path / "p2.png", [ART_13])
    pdf = tmp_path / "混合.pdf"
    _register_cjk_font()
    c = canvas.Canvas(str(pdf), pagesize=A4, invariant=1)
    c.setFont(CJK_FONT, 12)
    c.drawString(72, 760, "第 11 條　本規則依勞動基準法訂定之。")
    c.showPage()
    c.drawImage(str(scan), 0, A4[1] - HALF_PAGE[1] * inch, width=A4[0], height=HALF_PAGE[1] * inch)
    c.showPage()
    c.save()
    doc = load(pdf)
    assert doc.pages == 2 and doc.meta["ocr"]["pages"] == [2]
    first = next(b for b in doc.blocks if "勞動基準法" in b.text)
    assert first.page_start == 1 and _nospace(first.label) == "第11條"
    scanned = [b for b in doc.blocks if b.page_start == 2]
    assert _similar(ART_13, "".join(b.text for b in scanned))
    assert _nospace(scanned[0].label) == "第13條"


def test_multipage_tiff_ocr_resumes_after_interruption(tmp_path: Path, engine: Zhiku) -> None:
    pages = [
        render_page([ART_12], 300, size=HALF_PAGE)[0],
        render_page([ART_13], 300, size=HALF_PAGE)[0],
    ]
    tiff = save_tiff(tmp_path / "掃描.tif", pages)
    engine.kb("kb", create=True)
    seen: list[tuple[str, int, int]] = []

    def stop_after_first(name: str, done: int, total: int) -> None:
        seen.append((name, done, total))
        raise KeyboardInterrupt  # Ctrl-C while the scan is being read

    with pytest.raises(KeyboardInterrupt):
        ingest_file(engine, "kb", tiff, on_page=stop_after_first)
    assert seen == [("掃描.tif", 1, 2)]
    cache = list((engine.home / "ocr-cache").rglob("*.json"))
    assert [p.name for p in cache] == ["tesseract-300-p1.json"]
    assert engine.store.get_document("kb", str(tiff.resolve())) is None
    first_mtime = cache[0].stat().st_mtime_ns

    seen.clear()
    res = ingest_file(engine, "kb", tiff, on_page=lambda *a: seen.append(a))
    assert res.status == "added" and res.pages == 2
    assert seen == [("掃描.tif", 1, 2), ("掃描.tif", 2, 2)]
    assert cache[0].stat().st_mtime_ns == first_mtime  # page 1 came from the cache
    assert len(list((engine.home / "ocr-cache").rglob("*.json"))) == 2
    engine.sync_index("kb")
    hit = engine.search("勞工請假期間之工資", "kb", k=1)[0]
    assert hit.page_start == 2 and _nospace(hit.label) == "第13條"


def test_low_confidence_page_is_flagged(tmp_path: Path, engine: Zhiku) -> None:
    from PIL import ImageFilter

    clean = render_page([ART_12], 300, size=HALF_PAGE)[0]
    smeared = render_page([ART_13], 300, size=HALF_PAGE, font_pt=7)[0]
    smeared = smeared.filter(ImageFilter.GaussianBlur(2.6))
    tiff = tmp_path / "傳真.tiff"
    clean.save(tiff, save_all=True, append_images=[smeared], compression="tiff_deflate")
    report = ingest_paths(engine, [tiff], "kb")
    res = report.files[0]
    assert res.status == "added"
    meta = engine.store.get_document("kb", str(tiff.resolve())).meta  # type: ignore[union-attr]
    conf = meta["ocr"]["confidence"]
    assert conf["1"] >= ocr.LOW_CONFIDENCE > conf["2"]
    assert meta["ocr"]["low_confidence_pages"] == [2]
    assert res.warnings and "第 2 頁" in res.warnings[0]


def test_huge_image_and_too_many_pages_refused_before_ocr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    big = tmp_path / "海報.png"
    Image.new("1", (20_000, 20_000), 1).save(big)
    with pytest.raises(LoadError) as info:
        load(big)
    assert info.value.reason == "too_large" and "百萬像素" in info.value.message

    small = Image.new("1", (64, 64), 1)
    scan = tmp_path / "五百頁.tif"
    small.save(scan, save_all=True, append_images=[small] * 499, compression="group4")
    with pytest.raises(LoadError) as info:
        load(scan)
    assert info.value.reason == "too_large" and "500 頁" in info.value.message
    assert "ZHIKU_OCR_MAX_PAGES" in info.value.message

    broken = tmp_path / "壞.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    with pytest.raises(LoadError) as info:
        load(broken)
    assert info.value.reason == "corrupt"


def test_missing_tesseract_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "_ENGINES", {})
    monkeypatch.setenv("PATH", str(tmp_path))
    png = _png(tmp_path / "a.png", [ART_12])
    with pytest.raises(LoadError) as info:
        load(png)
    assert info.value.reason == "ocr_unavailable"
    assert "tesseract-ocr-chi-tra" in info.value.message and info.value.path == str(png)


def test_server_ingest_worker_ocrs_an_uploaded_scan(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.server_util import auth, build_home, wait_job
    from zhiku.server.app import create_app
    from zhiku.server.settings import ServerSettings

    home = tmp_path / "home"
    keys = build_home(home)
    png = _png(tmp_path / "scan.png", [ART_12])
    settings = ServerSettings.from_env({}, home=str(home), rate_limit=0)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/v1/kbs/hr/documents",
            headers=auth(keys.hr_editor),
            files=[("files", ("工資掃描.png", png.read_bytes()))],
        )
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"], keys.hr_editor, timeout=240)
        assert job["status"] == "done", job
        hits = client.post(
            "/api/v1/kbs/hr/search", json={"query": "工資明細"}, headers=auth(keys.hr_editor)
        ).json()["hits"]
    assert any(h["path"] == "upload://hr/工資掃描.png" and h["page"] == 1 for h in hits), hits
    assert (home / "ocr-cache").is_dir()


def test_server_worker_shutdown_mid_scan_requeues_and_resumes(tmp_path: Path) -> None:
    import time

    from zhiku.server import jobs
    from zhiku.server.jobs import IngestWorker

    tiff = save_tiff(
        tmp_path / "三頁.tif",
        [render_page([a], 300, size=HALF_PAGE)[0] for a in (ART_12, ART_13, ART_12 + "（續）")],
    )
    home = tmp_path / "home"
    with Zhiku(home) as zk:
        kb = zk.kb("hr", create=True)
        job_id = jobs.create_job(
            zk.store,
            kb,
            "upload",
            None,
            [
                {
                    "name": tiff.name,
                    "path": str(tiff),
                    "stored": None,
                    "size": tiff.stat().st_size,
                    "status": "pending",
                }
            ],
        )

        def state() -> tuple[str, str]:
            row = zk.store.db.execute(
                "SELECT j.status, f.status FROM jobs j JOIN job_files f ON f.job_id=j.id "
                "WHERE j.id=?",
                (job_id,),
            ).fetchone()
            return row[0], row[1]

        cache = home / "ocr-cache"
        worker = IngestWorker(home, stale_s=5, poll_s=0.05, heartbeat_s=0.2)
        worker.start()
        deadline = time.monotonic() + 240
        while not list(cache.rglob("*-p1.json")):  # page 1 read: shut the server down
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert worker.stop(240)
        done_before = sorted(p.name for p in cache.rglob("*.json"))
        assert len(done_before) < 3 and state() == ("queued", "pending")
        assert zk.store.get_document("hr", str(tiff)) is None
        mtimes = {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.json")}

        worker = IngestWorker(home, stale_s=5, poll_s=0.05, heartbeat_s=0.2)
        worker.start()
        try:
            while state()[0] != "done":
                assert time.monotonic() < deadline + 240, state()
                time.sleep(0.1)
        finally:
            assert worker.stop(60)
        assert state() == ("done", "added")
        doc = zk.store.get_document("hr", str(tiff))
        assert doc is not None and doc.meta["ocr"]["pages"] == [1, 2, 3]
        for p in cache.rglob("*.json"):  # the pages read before the shutdown were reused
            if p.name in mtimes:
                assert p.stat().st_mtime_ns == mtimes[p.name]
