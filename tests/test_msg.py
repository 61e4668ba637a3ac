"""Outlook ``.msg`` on real files: messages laid out per MS-OXMSG and written as Compound
File Binary by SheetJS cfb (tests/msggen.py), checked with two independent readers
(extract-msg on olefile, and @kenjiuno/msgreader), then ingested end to end like the
``.eml`` tests: metadata (masked per the PII policy), body, attachments as child documents
that cite their message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import extract_msg
import pytest

from tests.filegen import make_pdf
from tests.msggen import make_msg, read_with_msgreader
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths, sync_kb
from zhiku.loaders import load

TPE = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 12, 1, 9, 30, tzinfo=TPE)


def _quote(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    pdf = make_pdf(
        tmp_path / "報價單.pdf",
        [["第 1 條　報價有效期限為三十日。"], ["第 2 條　付款條件為月結六十天。"]],
    )
    inner = {
        "subject": "原始詢價",
        "sender_name": "採購部",
        "sender_email": "buy@example.com",
        "to": [("維修廠商", "vendor@example.com")],
        "body": "請提供冷氣機維修報價，含壓縮機更換費用。",
    }
    fields: dict[str, Any] = {
        "subject": "回覆：冷氣維修報價",
        "sender_name": "王小明",
        "sender_email": "ming@example.com",
        "to": [("採購部", "buy@example.com")],
        "body": "您好：\r\n\r\n附件為報價單，請查收。\r\n壓縮機保固一年。\r\n",
        "delivered": RECEIVED,
        "attachments": [("報價單.pdf", pdf.read_bytes()), ("原始詢價", inner)],
    }
    return make_msg(tmp_path / "報價回覆.msg", **fields), fields


def test_generated_msg_opens_in_two_independent_readers(tmp_path: Path) -> None:
    path, fields = _quote(tmp_path)
    assert path.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # CFB signature
    pdf = fields["attachments"][0][1]
    js = read_with_msgreader(path)
    assert js["subject"] == "回覆：冷氣維修報價" and js["senderName"] == "王小明"
    assert js["senderEmail"] == "ming@example.com"
    assert "壓縮機保固一年" in js["body"]
    assert js["recipients"] == [{"name": "採購部", "smtpAddress": "buy@example.com"}]
    assert (
        datetime.strptime(js["messageDeliveryTime"], "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=UTC
        )
        == RECEIVED
    )
    assert js["attachments"][0] == {"fileName": "報價單.pdf", "content": pdf}

    msg = extract_msg.openMsg(str(path))
    try:
        assert msg.subject == js["subject"] and msg.sender == "王小明 <ming@example.com>"
        assert msg.to == "採購部 <buy@example.com>"
        assert msg.body == fields["body"]
        assert msg.getPropertyVal("0E060040") == RECEIVED
        first, embedded = msg.attachments
        assert first.longFilename == "報價單.pdf" and first.data == pdf
        assert embedded.data.subject == "原始詢價"
    finally:
        msg.close()


def test_msg_metadata_body_and_attachments_as_children(tmp_path: Path, engine: Zhiku) -> None:
    path, _ = _quote(tmp_path)
    doc = load(path)
    assert doc.kind == "msg" and doc.title == "回覆：冷氣維修報價"
    assert doc.meta["from"] == "王小明 <ming@example.com>"
    assert doc.meta["to"] == "採購部 <buy@example.com>"
    # No submit time in this message: the delivery time is its date.
    assert datetime.fromisoformat(doc.meta["date"]) == RECEIVED
    assert [c.name for c in doc.children] == ["報價單.pdf", "原始詢價.msg"]
    assert doc.blocks[0].text.startswith("寄件者：王小明")

    report = ingest_paths(engine, [path], "kb")
    files = {f.path: f for f in report.files}
    parent = str(path.resolve())
    pdf_child, fwd_child = f"{parent}#報價單.pdf", f"{parent}#原始詢價.msg"
    assert {files[p].status for p in (parent, pdf_child, fwd_child)} == {"added"}
    # The body is a passage of the message; each attachment cites its message.
    body = engine.search("壓縮機保固", "kb", k=1)[0]
    assert body.path == parent
    hit = engine.search("付款條件 月結", "kb", k=1)[0]
    assert hit.path == pdf_child and hit.page_start == 2
    assert hit.doc_title == "回覆：冷氣維修報價 › 報價單"
    fwd = engine.search("冷氣機維修報價 壓縮機更換", "kb", k=1)[0]
    assert fwd.path == fwd_child and fwd.doc_title.startswith("回覆：冷氣維修報價 › ")
    stored = engine.store.get_document("kb", pdf_child)
    assert stored is not None and stored.meta["parent"] == parent

    # Unchanged: nothing re-read. The message deleted: its attachments go with it.
    assert [f.status for f in ingest_paths(engine, [path], "kb").files] == ["unchanged"]
    path.unlink()
    sync_kb(engine, "kb")
    assert engine.store.list_documents("kb") == []


def test_msg_headers_masked_by_the_default_policy(tmp_path: Path, engine: Zhiku) -> None:
    path = make_msg(
        tmp_path / "請假.msg",
        subject="陳大文的請假單 A123456789",
        sender_name="陳大文",
        sender_email="dawen.chen@example.com",
        to=[("人資", "hr@example.com")],
        delivered=RECEIVED,
        submitted=RECEIVED - timedelta(minutes=5),
        body="身分證字號 A123456789，手機 0912-345-678，請假三天。",
    )
    assert datetime.fromisoformat(load(path).meta["date"]) == RECEIVED - timedelta(minutes=5)
    ingest_paths(engine, [path], "hr")
    doc = engine.store.get_document("hr", str(path.resolve()))
    assert doc is not None
    blob = f"{doc.title} {doc.meta}"
    assert "A123456789" not in blob and "dawen.chen@example.com" not in blob
    text = " ".join(h.text for h in engine.search("請假", "hr", k=5))
    assert "請假三天" in text
    assert "0912-345-678" not in text and "A123456789" not in text


def test_msg_large_attachment_reported_rest_kept(
    tmp_path: Path, engine: Zhiku, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_MAX_ATTACHMENT_MB", "1")
    path = make_msg(
        tmp_path / "大附件.msg",
        subject="影片",
        sender_name="a",
        sender_email="a@example.com",
        to=[("b", "b@example.com")],
        body="影片太大請另行下載。",
        attachments=[
            ("video.pdf", b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)),
            ("說明.txt", "下載網址在內網。".encode()),
        ],
    )
    files = {f.path: f for f in ingest_paths(engine, [path], "kb").files}
    parent = str(path.resolve())
    assert files[parent].status == "added"
    bad = files[f"{parent}#video.pdf"]
    assert bad.status == "failed" and bad.reason == "too_large" and "video.pdf" in bad.message
    assert files[f"{parent}#說明.txt"].status == "added"
    assert engine.search("下載網址", "kb", k=1)[0].path == f"{parent}#說明.txt"
