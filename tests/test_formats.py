"""ODF, PPTX, legacy Office, RTF and subtitles: real files written by the real libraries
(odfpy, python-pptx, LibreOffice, msoffcrypto-tool), read back with structure and pages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.filegen import make_docx, make_xlsx
from tests.formatgen import (
    encrypt_ooxml,
    encrypt_with_libreoffice,
    make_odp,
    make_ods,
    make_odt,
    make_pptx,
    soffice_convert,
)
from zhiku.engine import Zhiku
from zhiku.errors import LoadError
from zhiku.ingest import ingest_paths
from zhiku.loaders import load


def _err(path: Path, reason: str, *fragments: str) -> LoadError:
    with pytest.raises(LoadError) as info:
        load(path)
    assert info.value.reason == reason, (info.value.reason, info.value.message)
    for frag in fragments:
        assert frag in info.value.message
    return info.value


# --- ODF ---------------------------------------------------------------------------------


def test_odt_outline_numbering_sections_labels_and_tables(tmp_path: Path) -> None:
    p = make_odt(
        tmp_path / "人事.odt",
        [
            ("heading", 1, "總則"),
            ("para", "本辦法依勞動基準法訂定之。"),
            ("heading", 2, "適用範圍"),
            ("para", "第 3 條　本辦法適用於全體員工。"),
            ("para", "前項員工包括派遣人員。"),
            ("heading", 1, "請假"),
            ("list", ["事假全年七日。", "病假全年三十日。"], "一, 二, 三, ..."),
            ("table", [["假別", "日數"], ["事假", "7"], ["病假", "30"]]),
        ],
        title="人事管理辦法",
        outline=[("1", "", "", 1), ("1", "", "", 2)],
    )
    doc = load(p)
    assert doc.title == "人事管理辦法" and doc.kind == "odt"
    heads = [b.text for b in doc.blocks if b.kind == "heading"]
    assert heads == ["1 總則", "1.1 適用範圍", "2 請假"]
    art = next(b for b in doc.blocks if b.text.startswith("第 3 條"))
    assert art.heading_path == ("1 總則", "1.1 適用範圍") and art.label == "第 3 條"
    follow = next(b for b in doc.blocks if b.text.startswith("前項"))
    assert follow.label == "第 3 條"  # an article's later paragraphs cite the article
    items = [b for b in doc.blocks if "全年" in b.text]
    assert [b.text[:2] for b in items] == ["一、", "二、"]
    assert all(b.heading_path == ("2 請假",) for b in items)
    rows = [b.text for b in doc.blocks if b.kind == "table_row"]
    assert rows == ["假別：事假；日數：7", "假別：病假；日數：30"]


def test_ods_records_faq_hidden_sheets_and_padding(tmp_path: Path) -> None:
    p = make_ods(
        tmp_path / "faq.ods",
        {
            "常見問題": [["問題", "答案", "承辦"], ["如何請假？", "於差勤系統申請。", "人資"]],
            "人員": [["姓名", "分機"], ["王小明", 1234], ["李小華", 5678.5]],
            "查表": [["代碼", "名稱"], ["A", "甲"]],
        },
        hidden=["查表"],
    )
    doc = load(p)
    assert doc.meta["sheets"] == ["常見問題", "人員"]
    qa = [b for b in doc.blocks if b.kind == "qa"]
    assert len(qa) == 1 and qa[0].label == "如何請假？"
    assert "答：於差勤系統申請。" in qa[0].text and "承辦：人資" in qa[0].text
    rows = [b.text for b in doc.blocks if b.kind == "table_row"]
    assert rows == ["姓名：王小明；分機：1234", "姓名：李小華；分機：5678.5"]
    assert all(b.heading_path[0] in ("常見問題", "人員") for b in doc.blocks)


def test_odp_slide_is_page_title_is_section_notes_kept(tmp_path: Path) -> None:
    p = make_odp(
        tmp_path / "訓練.odp",
        [
            ("消防演練", ["滅火器放在各樓層樓梯口", "集合點為停車場"], "演練前先點名"),
            ("急救", ["AED 位於一樓大廳"], None),
        ],
    )
    doc = load(p)
    assert doc.pages == 2
    aed = next(b for b in doc.blocks if "AED" in b.text)
    assert aed.page_start == 2 and aed.heading_path == ("急救",)
    notes = next(b for b in doc.blocks if b.text.startswith("備註："))
    assert "演練前先點名" in notes.text and notes.page_start == 1


def test_encrypted_and_corrupt_odf_are_reported(tmp_path: Path) -> None:
    good = make_odt(tmp_path / "a.odt", [("para", "內容")])
    _err(encrypt_with_libreoffice(good, tmp_path / "密.odt"), "encrypted", "密碼")
    bad = tmp_path / "壞.ods"
    bad.write_bytes(good.read_bytes()[:200])
    _err(bad, "corrupt", "OpenDocument")


# --- PPTX ----------------------------------------------------------------------------------


def test_pptx_slides_titles_tables_notes_hidden(tmp_path: Path) -> None:
    p = make_pptx(
        tmp_path / "新人訓練.pptx",
        [
            {
                "title": "資安守則",
                "body": ["一、密碼至少 12 碼", "二、不得共用帳號"],
                "notes": "講者提醒：舉實例",
            },
            {"title": "聯絡窗口", "table": [["項目", "負責單位"], ["帳號申請", "資訊部"]]},
            {"title": "內部草稿", "body": ["這頁隱藏"], "hidden": True},
            {"title": "結語", "body": ["有問題請洽資訊部"]},
        ],
    )
    doc = load(p)
    assert doc.title == "資安守則" and doc.pages == 4
    pw = next(b for b in doc.blocks if "12 碼" in b.text)
    assert pw.page_start == 1 and pw.heading_path == ("資安守則",) and pw.label == "一"
    row = next(b for b in doc.blocks if b.kind == "table_row")
    assert row.text == "項目：帳號申請；負責單位：資訊部" and row.page_start == 2
    assert any(b.text == "備註：講者提醒：舉實例" and b.page_start == 1 for b in doc.blocks)
    assert not any("隱藏" in b.text for b in doc.blocks)
    assert next(b for b in doc.blocks if "洽資訊部" in b.text).page_start == 4


def test_pptx_with_password_is_reported_encrypted(tmp_path: Path) -> None:
    p = make_pptx(tmp_path / "a.pptx", [{"title": "機密", "body": ["內容"]}])
    enc = encrypt_ooxml(p, tmp_path / "機密簡報.pptx")
    _err(enc, "encrypted", "密碼")


def test_zip_bomb_disguised_as_pptx_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_ZIP_MAX_MB", "5")
    p = tmp_path / "bomb.pptx"
    with (
        zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("ppt/slides/slide1.xml", "w") as fh,
    ):
        for _ in range(8):
            fh.write(b" " * (1 << 20))
    _err(p, "bomb", "壓縮炸彈")


# --- legacy Office (LibreOffice writes the files, zhiku reads them without it) --------------


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("legacy")
    d = make_docx(
        t / "請假規則.docx",
        [
            ("heading", 1, "第一章 總則"),
            ("para", "第 1 條　員工請假應事先以書面申請。"),
            ("para", "第 2 條　病假全年以三十日為限。"),
        ],
    )
    x = make_xlsx(
        t / "常見問題.xlsx", [["問題", "答案"], ["加班費怎麼算？", "依勞基法第 24 條計算。"]]
    )
    p = make_pptx(
        t / "消防.pptx",
        [
            {"title": "消防演練", "body": ["滅火器位置"], "notes": "記得點名"},
            {"title": "集合", "body": ["停車場"]},
        ],
    )
    out = t / "out"
    return {
        "doc": soffice_convert(d, "doc", out),
        "xls": soffice_convert(x, "xls", out),
        "ppt": soffice_convert(p, "ppt", out),
        "rtf": soffice_convert(d, "rtf", out),
    }


def test_legacy_doc_xls_ppt(legacy_files: dict[str, Path]) -> None:
    doc = load(legacy_files["doc"])
    assert doc.kind == "doc"
    art = next(b for b in doc.blocks if "病假" in b.text)
    assert art.label == "第 2 條"
    xls = load(legacy_files["xls"])
    qa = [b for b in xls.blocks if b.kind == "qa"]
    assert qa and qa[0].label == "加班費怎麼算？" and "第 24 條" in qa[0].text
    ppt = load(legacy_files["ppt"])
    assert ppt.kind == "ppt" and ppt.pages == 2
    assert next(b for b in ppt.blocks if b.text == "停車場").page_start == 2
    assert any("記得點名" in b.text for b in ppt.blocks)


def test_doc_that_is_really_html_or_rtf_is_read_as_what_it_is(tmp_path: Path) -> None:
    html = tmp_path / "公告.doc"
    html.write_text(
        "<html><head><meta charset='utf-8'><title>停電公告</title></head><body>"
        "<h1>停電公告</h1><p>本週六上午停電。</p></body></html>",
        "utf-8",
    )
    doc = load(html)
    assert doc.meta["detected_format"] == "html"
    assert any("停電" in b.text for b in doc.blocks)
    rtf = tmp_path / "備忘.doc"
    rtf.write_bytes(rb"{\rtf1\ansi\ansicpg950 \'a4\'a4\'a4\'e5 memo\par}")
    assert load(rtf).meta["detected_format"] == "rtf"
    junk = tmp_path / "壞.xls"
    junk.write_bytes(b"\x00\x01\x02garbage" * 100)
    _err(junk, "corrupt", "Excel")


def test_missing_converter_is_named(
    tmp_path: Path, legacy_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no catdoc, no soffice
    _err(legacy_files["doc"], "missing_tool", "catdoc")
    _err(legacy_files["ppt"], "missing_tool", "LibreOffice", "libreoffice-impress-nogui")


# --- RTF and subtitles ------------------------------------------------------------------------


def test_rtf_written_by_libreoffice(legacy_files: dict[str, Path], tmp_path: Path) -> None:
    doc = load(legacy_files["rtf"])
    assert doc.kind == "rtf"
    art = next(b for b in doc.blocks if "病假" in b.text)
    assert art.label == "第 2 條" and "三十日" in art.text
    bad = tmp_path / "bad.rtf"
    bad.write_text("not rtf at all", "utf-8")
    _err(bad, "corrupt", "RTF")


def test_subtitles_timestamp_is_the_cited_location(tmp_path: Path, engine: Zhiku) -> None:
    srt = tmp_path / "訪談.srt"
    cues = []

    def topic(i: int) -> str:
        return "退休金制度" if i == 7 else "日常業務"

    for i in range(12):
        start = i * 20
        cues.append(
            f"{i + 1}\n00:{start // 60:02d}:{start % 60:02d},000 --> "
            f"00:{(start + 15) // 60:02d}:{(start + 15) % 60:02d},500\n"
            f"第{i + 1}段談話，內容是關於{topic(i)}的說明與補充。\n"
        )
    srt.write_text("\n".join(cues), "big5")
    vtt = tmp_path / "training.vtt"
    vtt.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v 講師>今天介紹個資保護\n\n"
        "00:01:00.000 --> 00:01:03.000\n<v 講師>請記得加密\n",
        "utf-8",
    )
    doc = load(srt)
    assert doc.meta["encoding"].lower() in ("big5", "cp950")
    labels = [b.label for b in doc.blocks]
    assert all(lb and "–" in lb for lb in labels) and len(labels) > 1
    pension = next(b for b in doc.blocks if "退休金" in b.text)
    start, end = pension.label.split("–")
    assert start <= "00:02:20" <= end
    v = load(vtt)
    assert v.blocks[0].text.startswith("講師：今天介紹個資保護")
    ingest_paths(engine, [srt, vtt], "kb")
    hit = engine.search("退休金制度", "kb", k=1)[0]
    assert hit.citation()["section"] == pension.label
