"""Issue 11's bad-input list as one batch through ``zhiku ingest``: every bad file gets a
message naming it and the reason, the good files of the same batch are ingested, exit code
1, and a stored document whose file went bad keeps its stored version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.filegen import make_docx, make_pdf
from tests.formatgen import encrypt_ooxml, make_eml, make_odt, make_pptx, make_zip
from zhiku.cli import app
from zhiku.engine import Zhiku


def _bad_folder(root: Path) -> dict[str, str]:
    """The bad files (name → expected reason) of the issue, written into ``root``."""
    tmp = root.parent / "src"
    tmp.mkdir()
    deck = make_pptx(tmp / "訓練.pptx", [{"title": "訓練", "body": ["內容"], "notes": None}])
    encrypt_ooxml(deck, root / "機密簡報.pptx")
    make_pdf(root / "機密.pdf", [["第 1 條　機密內容。"]], user_password="s3cret")
    good_zip = make_zip(tmp / "a.zip", {"a.txt": "壓縮檔內容。".encode()})
    (root / "壞掉的壓縮檔.zip").write_bytes(good_zip.read_bytes()[:60])
    Image.new("1", (20_000, 20_000), 1).save(root / "超大海報.png")
    small = Image.new("1", (64, 64), 1)
    small.save(
        root / "五百頁掃描.tif", save_all=True, append_images=[small] * 499, compression="group4"
    )
    return {
        "機密簡報.pptx": "encrypted",
        "機密.pdf": "encrypted",
        "壞掉的壓縮檔.zip": "corrupt",
        "超大海報.png": "too_large",
        "五百頁掃描.tif": "too_large",
    }


def test_bad_inputs_reported_by_name_batch_goes_on_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_MAX_ATTACHMENT_MB", "1")  # the "100 MB attachment", scaled
    home = tmp_path / "home"
    root = tmp_path / "office"
    root.mkdir()
    odt = make_odt(
        root / "採購辦法.odt",
        [("heading", 1, "採購辦法"), ("para", "第 1 條　十萬元以上之採購應取得三家報價。")],
    )
    make_docx(root / "出差.docx", [("para", "第 2 條　出差應事先申請並於返回後五日內報支。")])
    runner = CliRunner()
    r = runner.invoke(app, ["--home", str(home), "ingest", str(root), "--kb", "k", "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr

    expected = _bad_folder(root)
    (root / "公告.doc").write_text(  # a .doc that is really HTML: read as HTML
        "<html><head><meta charset='utf-8'><title>停電公告</title></head><body>"
        "<p>本週六上午九時至十二時停電。</p></body></html>",
        "utf-8",
    )
    make_eml(
        root / "影片.eml",
        subject="教育訓練影片",
        sender="a@example.com",
        to="b@example.com",
        body="影片檔過大，請至內網下載。",
        attachments=[("訓練影片.pdf", b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024), "application/pdf")],
    )
    expected["影片.eml#訓練影片.pdf"] = "too_large"
    # A stored document whose file is now damaged (a copy cut short over the network).
    odt.write_bytes(odt.read_bytes()[:200])
    expected["採購辦法.odt"] = "corrupt"

    r = runner.invoke(app, ["--home", str(home), "ingest", str(root), "--kb", "k", "--json"])
    assert r.exit_code == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    prefix = str(root.resolve()) + "/"
    failed = {f["path"].removeprefix(prefix): f for f in out["failed"]}
    assert {k: f["reason"] for k, f in failed.items()} == expected
    for name, f in failed.items():
        assert f["message"], name  # a zh-TW reason for each, with the file as its path
    assert out["added"] == 2  # the HTML-as-.doc and the message itself (with its body)

    with Zhiku(home) as zk:
        by_name = {Path(d.path).name: d for d in zk.store.list_documents("k")}
        assert by_name["公告.doc"].meta["detected_format"] == "html"
        assert "影片.eml" in by_name and "出差.docx" in by_name
        # The damaged file's stored version is kept and still answers.
        hit = zk.search("採購 三家報價", "k", k=1)[0]
        assert hit.path == str(odt.resolve()) and "三家報價" in hit.text
