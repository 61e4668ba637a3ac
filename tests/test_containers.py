"""Files inside files: e-mail attachments and ZIP members become child documents that cite
their parent; limits on archives; nothing stored is lost when a container is bad."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest

from tests.filegen import make_docx, make_pdf
from tests.formatgen import make_eml, make_zip, make_zip_bomb
from zhiku.engine import Zhiku
from zhiku.errors import LoadError
from zhiku.ingest import ingest_paths, sync_kb
from zhiku.loaders import load


def _by_path(report: object) -> dict[str, object]:
    return {f.path: f for f in report.files}  # type: ignore[attr-defined]


def test_eml_metadata_body_and_attachments_as_children(tmp_path: Path, engine: Zhiku) -> None:
    pdf = make_pdf(
        tmp_path / "報價單.pdf",
        [["第 1 條　報價有效期限為三十日。"], ["第 2 條　付款條件為月結六十天。"]],
    )
    inner = make_eml(
        tmp_path / "fwd.eml",
        subject="原始詢價",
        sender="a@example.com",
        to="b@example.com",
        body="請提供冷氣機維修報價。",
    )
    mail = make_eml(
        tmp_path / "報價回覆.eml",
        subject="回覆：冷氣維修報價",
        sender="王小明 <ming@example.com>",
        to="採購部 <buy@example.com>",
        body="您好：\n\n附件為報價單，請查收。\n",
        attachments=[
            ("報價單.pdf", pdf.read_bytes(), "application/pdf"),
            ("", inner.read_bytes(), "message/rfc822"),
        ],
    )
    doc = load(mail)
    assert doc.title == "回覆：冷氣維修報價"
    assert doc.meta["from"] == "王小明 <ming@example.com>"
    assert doc.meta["date"] == "2026-12-01T09:30:00+08:00"
    assert [c.name for c in doc.children] == ["報價單.pdf", "原始詢價.eml"]

    report = ingest_paths(engine, [mail], "kb")
    files = _by_path(report)
    parent = str(mail.resolve())
    child = f"{parent}#報價單.pdf"
    assert files[parent].status == "added" and files[child].status == "added"
    assert files[f"{parent}#原始詢價.eml"].status == "added"
    hit = engine.search("付款條件 月結", "kb", k=1)[0]
    assert hit.path == child and hit.page_start == 2
    assert hit.doc_title == "回覆：冷氣維修報價 › 報價單"  # the citation names the message
    stored = engine.store.get_document("kb", child)
    assert stored is not None and stored.meta["parent"] == parent

    # Unchanged message: nothing re-read. Message deleted: its attachments go with it.
    again = ingest_paths(engine, [mail], "kb")
    assert [f.status for f in again.files] == ["unchanged"]
    mail.unlink()
    sync_kb(engine, "kb")
    assert engine.store.list_documents("kb") == []
    assert engine.search("付款條件", "kb", k=3) == []


def test_email_headers_masked_by_the_default_policy(tmp_path: Path, engine: Zhiku) -> None:
    # The default policy masks personal data before anything is stored.
    mail = make_eml(
        tmp_path / "m.eml",
        subject="陳大文的請假單 A123456789",
        sender="陳大文 <dawen.chen@example.com>",
        to="hr@example.com",
        body="身分證字號 A123456789，手機 0912-345-678，請假三天。",
    )
    ingest_paths(engine, [mail], "hr")
    doc = engine.store.get_document("hr", str(mail.resolve()))
    assert doc is not None
    blob = f"{doc.title} {doc.meta}"
    assert "A123456789" not in blob and "dawen.chen@example.com" not in blob
    chunk_text = " ".join(h.text for h in engine.search("請假", "hr", k=5))
    assert "0912-345-678" not in chunk_text and "A123456789" not in chunk_text


def test_large_attachment_reported_rest_kept(
    tmp_path: Path, engine: Zhiku, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_MAX_ATTACHMENT_MB", "1")
    big = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)
    mail = make_eml(
        tmp_path / "大附件.eml",
        subject="影片",
        sender="a@example.com",
        to="b@example.com",
        body="影片太大請另行下載。",
        attachments=[
            ("video.pdf", big, "application/pdf"),
            ("說明.txt", "下載網址在內網。".encode(), "text/plain"),
        ],
    )
    files = _by_path(ingest_paths(engine, [mail], "kb"))
    parent = str(mail.resolve())
    assert files[parent].status == "added"
    bad = files[f"{parent}#video.pdf"]
    assert bad.status == "failed" and bad.reason == "too_large" and "video.pdf" in bad.message
    assert files[f"{parent}#說明.txt"].status == "added"


def test_not_an_email_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "假的.eml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(LoadError) as info:
        load(p)
    assert info.value.reason == "corrupt" and "郵件" in info.value.message
    msg = tmp_path / "假的.msg"
    msg.write_text("這不是 Outlook 郵件", "utf-8")
    with pytest.raises(LoadError) as info:
        load(msg)
    assert info.value.reason == "corrupt" and ".msg" in info.value.message


def test_zip_recursive_big5_names_and_member_updates(tmp_path: Path, engine: Zhiku) -> None:
    docx = make_docx(
        tmp_path / "sop.docx",
        [("heading", 1, "出貨流程"), ("para", "4.3 出貨前應由倉儲課複核數量。")],
    )
    inner = make_zip(
        tmp_path / "inner.zip", {"附錄/說明.txt": "內層壓縮檔的附錄說明文字。".encode()}
    )
    outer = make_zip(
        tmp_path / "資料.zip",
        {"程序/出貨SOP.docx": docx, "inner.zip": inner, "__MACOSX/._x": b"junk"},
        cp950=True,
    )
    report = ingest_paths(engine, [outer], "kb")
    files = _by_path(report)
    root = str(outer.resolve())
    assert files[f"{root}#程序/出貨SOP.docx"].status == "added"
    assert files[f"{root}#inner.zip"].status == "added"
    assert files[f"{root}#inner.zip#附錄/說明.txt"].status == "added"
    assert not any("__MACOSX" in p for p in files)
    hit = engine.search("倉儲課複核數量", "kb", k=1)[0]
    assert hit.path == f"{root}#程序/出貨SOP.docx" and hit.section and "4.3" in hit.section
    assert hit.doc_title.startswith("資料 › ")

    # A member removed from the archive disappears from the KB; the others stay.
    make_zip(outer, {"程序/出貨SOP.docx": docx}, cp950=True)
    files = _by_path(ingest_paths(engine, [outer], "kb"))
    assert files[f"{root}#inner.zip"].status == "removed"
    paths = {d.path for d in engine.store.list_documents("kb")}
    assert paths == {root, f"{root}#程序/出貨SOP.docx"}


def test_zip_bomb_reported_nothing_else_lost(
    tmp_path: Path, engine: Zhiku, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_ZIP_MAX_MB", "20")
    good = tmp_path / "好.txt"
    good.write_text("這份文件不在壓縮檔內，應照常匯入。", "utf-8")
    bomb = make_zip_bomb(tmp_path / "bomb.zip", expanded_mb=64)
    with zipfile.ZipFile(bomb, "a") as zf:
        zf.writestr("readme.txt", "炸彈之後的說明".encode())
    mixed = make_zip(tmp_path / "mixed.zip", {"a.txt": "第一份正常文件。".encode()})
    with zipfile.ZipFile(mixed, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("huge.txt", "w") as fh:
        for _ in range(40):
            fh.write(b"\0" * (1 << 20))
    files = _by_path(ingest_paths(engine, [good, bomb, mixed], "kb"))
    b = files[f"{bomb.resolve()}#bomb.txt"]
    assert b.status == "failed" and b.reason == "bomb" and "壓縮炸彈" in b.message
    assert files[f"{mixed.resolve()}#a.txt"].status == "added"
    assert files[f"{mixed.resolve()}#huge.txt"].reason == "bomb"
    assert files[str(good.resolve())].status == "added"
    assert engine.search("正常文件", "kb", k=1)

    corrupt = tmp_path / "壞.zip"
    corrupt.write_bytes(mixed.read_bytes()[:100])
    res = _by_path(ingest_paths(engine, [corrupt], "kb"))[str(corrupt.resolve())]
    assert res.status == "failed" and res.reason == "corrupt" and "ZIP" in res.message


def test_nesting_limit(tmp_path: Path, engine: Zhiku) -> None:
    data = make_zip(tmp_path / "z0.zip", {"deep.txt": "最深層的文字".encode()}).read_bytes()
    for level in range(1, 5):
        data = make_zip(tmp_path / f"z{level}.zip", {f"z{level - 1}.zip": data}).read_bytes()
    top = tmp_path / "z4.zip"
    files = ingest_paths(engine, [top], "kb").files
    deepest = [f for f in files if f.reason == "too_deep"]
    assert len(deepest) == 1 and "嵌套" in (deepest[0].message or "")
    assert sum(1 for f in files if f.status == "added") == 4


def test_zip_with_too_many_entries_is_refused(tmp_path: Path, engine: Zhiku) -> None:
    many = tmp_path / "一萬個檔案.zip"
    with zipfile.ZipFile(many, "w") as zf:  # the default limit: 10,000 entries
        for i in range(10_001):
            zf.writestr(f"f{i:05d}.txt", b"x")
    ok = make_zip(tmp_path / "正常.zip", {"說明.txt": "正常的壓縮檔內容。".encode()})
    files = _by_path(ingest_paths(engine, [many, ok], "kb"))
    bad = files[str(many.resolve())]
    assert bad.status == "failed" and bad.reason == "bomb"  # type: ignore[attr-defined]
    assert "10001 個項目" in bad.message  # type: ignore[attr-defined]
    assert not any(p.startswith(str(many.resolve()) + "#") for p in files)
    assert files[f"{ok.resolve()}#說明.txt"].status == "added"  # type: ignore[attr-defined]


def test_parent_link_migration_on_disk(tmp_path: Path, engine: Zhiku) -> None:
    mail = make_eml(
        tmp_path / "m.eml",
        subject="s",
        sender="a@example.com",
        to="b@example.com",
        body="本文內容。",
        attachments=[("a.txt", "附件內容文字".encode(), "text/plain")],
    )
    ingest_paths(engine, [mail], "kb")
    db = sqlite3.connect(engine.home / "zhiku.db")
    rows = db.execute(
        "SELECT c.path, p.path FROM documents c JOIN documents p ON p.id = c.parent_id"
    ).fetchall()
    db.close()
    assert rows == [(f"{mail.resolve()}#a.txt", str(mail.resolve()))]
