"""Loader tests: every file is generated in tmp_path (see tests/filegen.py)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.filegen import (
    make_big5_txt,
    make_csv,
    make_docx,
    make_image_only_pdf,
    make_pdf,
    make_text,
    make_utf16_txt,
    make_xlsx,
    set_cached_value,
    wrap_cjk,
)
from zhiku.errors import LoadError, UnsupportedFile
from zhiku.loaders import load, supported_suffixes
from zhiku.loaders._segment import Line, segment
from zhiku.loaders.docx import format_number
from zhiku.models import Block, LoadedDocument
from zhiku.textcodec import decode_bytes

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def texts(doc: LoadedDocument) -> str:
    return "\n".join(b.text for b in doc.blocks)


def by_label(doc: LoadedDocument, label: str) -> Block:
    found = [b for b in doc.blocks if b.label == label]
    assert found, f"no block labelled {label!r}: {[b.label for b in doc.blocks]}"
    return found[0]


def assert_load_error(path: Path, reason: str, *fragments: str) -> LoadError:
    with pytest.raises(LoadError) as info:
        load(path)
    err = info.value
    assert err.reason == reason, (err.reason, err.message)
    assert err.message
    for frag in fragments:
        assert frag in err.message
    return err


def test_registry_covers_all_formats() -> None:
    assert set(supported_suffixes()) >= {
        ".pdf",
        ".docx",
        ".xlsx",
        ".xlsm",
        ".csv",
        ".tsv",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".txt",
        ".text",
        ".log",
    }


def test_unknown_suffix_is_unsupported(tmp_path: Path) -> None:
    p = make_text(tmp_path / "a.xyz", "hello")
    with pytest.raises(UnsupportedFile):
        load(p)


# --- PDF ---------------------------------------------------------------------------------

ARTICLE_3 = (
    "第三條 特別休假因年度終結或契約終止而未休之日數，經勞雇雙方協商得遞延至次一年度實施；"
    "遞延之日數於次一年度終結仍未休者，雇主應發給工資。員工應於每年一月底前排定休假計畫。"
)


def _two_page_pdf(path: Path, title: str | None = None, user_password: str | None = None) -> Path:
    wrapped = wrap_cjk(ARTICLE_3, 76)
    assert len(wrapped) >= 3
    page1 = [
        "員工請假管理辦法",
        "第一章 總則",
        "第一條 本辦法依勞動基準法訂定之。",
        "第二條 本公司員工請假，除法令另有規定外，依本辦法辦理。",
        *wrapped[:2],
    ]
    page2 = [*wrapped[2:], "第二章 假別", "第四條 員工因事必須親自處理者，得請事假。"]
    return make_pdf(
        path,
        [page1, page2],
        header="晨光物流股份有限公司 員工請假管理辦法",
        page_numbers=True,
        title=title,
        user_password=user_password,
    )


def test_pdf_article_across_page_break_is_one_block(tmp_path: Path) -> None:
    doc = load(_two_page_pdf(tmp_path / "leave.pdf"))
    assert doc.kind == "pdf"
    assert doc.pages == 2
    art = by_label(doc, "第三條")
    assert (art.page_start, art.page_end) == (1, 2)
    # CJK line wraps are joined without spaces, the whole article in one block.
    assert art.text == ARTICLE_3
    assert art.heading_path == ("第一章 總則",)
    assert by_label(doc, "第四條").heading_path == ("第二章 假別",)
    assert by_label(doc, "第四條").page_start == 2
    assert by_label(doc, "第一條").page_start == 1


def test_pdf_running_headers_and_page_numbers_dropped(tmp_path: Path) -> None:
    doc = load(_two_page_pdf(tmp_path / "leave.pdf"))
    body = texts(doc)
    assert "晨光物流股份有限公司" not in body
    assert "頁" not in body
    assert "共 2" not in body


def test_pdf_title_from_first_heading_line_when_metadata_is_junk(tmp_path: Path) -> None:
    # reportlab writes Title "untitled" unless told otherwise: not a sensible title.
    doc = load(_two_page_pdf(tmp_path / "leave.pdf"))
    assert doc.title == "員工請假管理辦法"
    assert doc.blocks[0].kind == "heading"
    assert doc.blocks[0].text == "員工請假管理辦法"


def test_pdf_title_from_metadata(tmp_path: Path) -> None:
    doc = load(_two_page_pdf(tmp_path / "x.pdf", title="請假規則（113 年版）"))
    assert doc.title == "請假規則（113 年版）"


def test_pdf_title_falls_back_to_stem(tmp_path: Path) -> None:
    p = make_pdf(tmp_path / "會議紀錄.pdf", [["本次會議討論出貨流程改善事項。", "決議如下。"]])
    assert load(p).title == "會議紀錄"


def test_pdf_clause_labels_start_blocks(tmp_path: Path) -> None:
    lines = [
        "第 12 條 雇主應置備勞工請假紀錄。",
        "第 30-1 條 彈性工時依本條辦理。",
        "4.3 出貨異常需在 24 小時內通報物流部門。",
        "（三）破損品應拍照存證。",
        "一、短少品應於系統登錄。",
    ]
    doc = load(make_pdf(tmp_path / "labels.pdf", [lines]))
    assert [b.label for b in doc.blocks] == ["第 12 條", "第 30-1 條", "4.3", "（三）", "一"]
    assert doc.blocks[2].text == "4.3 出貨異常需在 24 小時內通報物流部門。"


def test_pdf_wrapped_cross_reference_does_not_split(tmp_path: Path) -> None:
    first = "第五條 員工之特別休假日數及工資計算方式，悉依勞動基準法及本辦法"
    lines = [first + "之規定與" + "補充說明之內容辦理，並得依", "第三條規定辦理申請。"]
    doc = load(make_pdf(tmp_path / "ref.pdf", [lines]))
    paras = [b for b in doc.blocks if b.kind == "para"]
    assert len(paras) == 1
    assert paras[0].label == "第五條"
    assert paras[0].text.endswith("並得依第三條規定辦理申請。")


def test_pdf_paragraph_break_after_short_sentence_end(tmp_path: Path) -> None:
    para1 = wrap_cjk(
        "本公司為使出貨作業標準化，特訂定本程序，並要求各物流中心遵循辦理，以降低客訴。", 60
    )
    para2 = wrap_cjk("各物流中心主管應每月檢討異常案件，並提出改善報告送品保課彙整列管追蹤。", 60)
    assert len(para1) == 2 and len(para2) == 2
    doc = load(make_pdf(tmp_path / "paras.pdf", [[*para1, *para2]]))
    paras = [b for b in doc.blocks if b.kind == "para"]
    assert [p.text for p in paras] == ["".join(para1), "".join(para2)]


def test_pdf_latin_words_across_wrap_get_a_space(tmp_path: Path) -> None:
    first = "請於每月五日前登入 ERP 系統並完成出貨資料核對與異常案件之登錄作業，登入網址為 ERP"
    doc = load(make_pdf(tmp_path / "latin.pdf", [[first, "portal 首頁。"]]))
    assert "ERP portal 首頁。" in texts(doc)


def test_pdf_encrypted(tmp_path: Path) -> None:
    p = _two_page_pdf(tmp_path / "secret.pdf", user_password="s3cret")
    assert_load_error(p, "encrypted", "加密")


def test_pdf_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "broken.pdf"
    p.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n garbage without xref")
    assert_load_error(p, "corrupt", "PDF")


def test_pdf_truncated_is_corrupt(tmp_path: Path) -> None:
    data = _two_page_pdf(tmp_path / "full.pdf").read_bytes()
    p = tmp_path / "truncated.pdf"
    p.write_bytes(data[: len(data) // 3])
    assert_load_error(p, "corrupt")


def test_pdf_without_text_layer_is_empty(tmp_path: Path) -> None:
    p = make_image_only_pdf(tmp_path / "scan.pdf", pages=2)
    assert_load_error(p, "empty", "掃描")


def test_pdf_of_40_pages_loads_every_page(tmp_path: Path) -> None:
    text = (
        "員工因普通傷害、疾病或生理原因必須治療或休養者，得請普通傷病假，一年內合計不得超過三十日。"
    )
    pages = [wrap_cjk(f"第 {i} 條 " + text * 12, 76)[:36] for i in range(1, 41)]
    p = make_pdf(tmp_path / "big.pdf", pages, header="晨光物流", page_numbers=True, font_size=11)
    doc = load(p)  # speed is measured in bench/ingest.py, never asserted in a test
    assert doc.pages == 40
    assert max(b.page_end or 0 for b in doc.blocks) == 40


# --- DOCX --------------------------------------------------------------------------------


SOP_43 = "4.3 出貨異常（含破損、短少、錯揀）需在 24 小時內通報物流部門，並於系統登錄異常單。"


def test_docx_headings_labels_and_table(tmp_path: Path) -> None:
    items = [
        ("title", "出貨異常處理SOP"),
        ("heading", 1, "1 目的"),
        ("para", "規範出貨異常之處理方式。"),
        ("heading", 1, "4 作業程序"),
        ("para", "4.1 出貨前應核對數量。"),
        ("para", SOP_43),
        ("heading", 2, "4.7 異常對照表"),
        (
            "table",
            [
                ["異常類型", "通報對象", "處理時限"],
                ["破損", "物流部門", "24 小時"],
                ["短少", "", "48 小時"],
                ["", "", ""],
            ],
        ),
        ("para", "表後說明文字。"),
        ("heading", 1, "5 紀錄保存"),
        ("para", "第七條 紀錄保存三年。"),
    ]
    doc = load(make_docx(tmp_path / "sop.docx", items))
    assert doc.kind == "docx"
    assert doc.title == "出貨異常處理SOP"  # no core title: the Title paragraph
    c43 = by_label(doc, "4.3")
    assert c43.heading_path == ("4 作業程序",)
    assert c43.text.startswith("4.3 出貨異常（含破損、短少、錯揀）需在 24 小時內")
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert [r.text for r in rows] == [
        "異常類型：破損；通報對象：物流部門；處理時限：24 小時",
        "異常類型：短少；處理時限：48 小時",
    ]
    assert all(r.heading_path == ("4 作業程序", "4.7 異常對照表") for r in rows)
    # Body order is kept: the paragraph after the table comes after its rows.
    order = [b.text for b in doc.blocks]
    assert order.index("表後說明文字。") > order.index(rows[-1].text)
    assert by_label(doc, "第七條").heading_path == ("5 紀錄保存",)
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings == ["出貨異常處理SOP", "1 目的", "4 作業程序", "4.7 異常對照表", "5 紀錄保存"]


def test_docx_automatic_numbering_rendered_as_labels(tmp_path: Path) -> None:
    outline0, outline1, outline2 = ("outline", 0), ("outline", 1), ("outline", 2)
    items = [
        ("heading", 1, "目的", outline0),
        ("para", "說明目的。"),
        ("heading", 1, "作業程序", outline0),
        ("para", "出貨前核對。", outline1),
        ("para", "交貨時點收。", outline1),
        ("para", "破損", outline2),
        ("para", "短少", outline2),
        ("para", "異常需在 24 小時內通報。", outline1),
        ("heading", 1, "紀錄保存", outline0),
        ("para", "保存三年。", outline1),
        ("para", "本辦法依法訂定之。", ("article", 0)),
        ("para", "本辦法適用全體員工。", ("article", 0)),
    ]
    doc = load(make_docx(tmp_path / "auto.docx", items))
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings == ["1 目的", "2 作業程序", "3 紀錄保存"]
    labels = [b.label for b in doc.blocks if b.kind == "para"]
    assert labels == [None, "2.1", "2.2", "（一）", "（二）", "2.3", "3.1", "第一條", "第二條"]
    assert by_label(doc, "2.3").text == "2.3 異常需在 24 小時內通報。"
    assert by_label(doc, "2.3").heading_path == ("2 作業程序",)
    assert by_label(doc, "第二條").text == "第二條 本辦法適用全體員工。"
    assert doc.title == "1 目的"  # no core title / Title paragraph: the first Heading 1


def test_docx_core_title_wins_and_stem_fallback(tmp_path: Path) -> None:
    doc = load(make_docx(tmp_path / "a.docx", [("para", "內文。")], title="請假辦法"))
    assert doc.title == "請假辦法"
    doc = load(make_docx(tmp_path / "無標題文件.docx", [("para", "內文。")]))
    assert doc.title == "無標題文件"


def test_word_number_formats() -> None:
    assert format_number(3, "taiwaneseCountingThousand") == "三"
    assert format_number(21, "taiwaneseCountingThousand") == "二十一"
    assert format_number(105, "chineseCounting") == "一百零五"
    assert format_number(2, "ideographTraditional") == "乙"
    assert format_number(14, "upperRoman") == "XIV"
    assert format_number(28, "lowerLetter") == "bb"
    assert format_number(1, "bullet") is None


def test_docx_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "bad.docx"
    p.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(2048)))
    assert_load_error(p, "corrupt", "Word")


def test_docx_zip_without_document_part_is_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "empty-zip.docx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "not a word file")
    assert_load_error(p, "corrupt")


def _cfb(path: Path, encrypted: bool) -> Path:
    body = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    if encrypted:
        body += "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64
    path.write_bytes(body + b"\x00" * 1024)
    return path


def test_password_protected_office_files_are_encrypted(tmp_path: Path) -> None:
    assert_load_error(_cfb(tmp_path / "locked.docx", True), "encrypted", "密碼")
    assert_load_error(_cfb(tmp_path / "locked.xlsx", True), "encrypted", "密碼")


def test_legacy_doc_renamed_docx_is_unsupported(tmp_path: Path) -> None:
    assert_load_error(_cfb(tmp_path / "old.docx", False), "unsupported", "舊版")


# --- spreadsheets ------------------------------------------------------------------------


def test_xlsx_faq_sheet_gives_qa_blocks(tmp_path: Path) -> None:
    rows = [
        ["問題", "答案"],
        ["客服專線是幾號？", "0800-088-168"],
        [None, None],
        ["營業時間？", "週一至週五 08:30–17:30"],
        ["只有問題沒有答案", None],
    ]
    doc = load(make_xlsx(tmp_path / "faq.xlsx", rows))
    qa = [b for b in doc.blocks if b.kind == "qa"]
    assert [b.label for b in qa] == ["客服專線是幾號？", "營業時間？"]
    assert qa[0].text == "問：客服專線是幾號？\n答：0800-088-168"
    assert qa[0].heading_path == ()  # single sheet: no sheet name in the path
    assert "只有問題沒有答案" in texts(doc)  # an unanswered row is kept as a record


@pytest.mark.parametrize(
    ("q", "a"), [("Question", "Answer"), ("q", "A"), ("題目", "回答"), ("QUESTION ", "answer")]
)
def test_qa_header_names_are_case_insensitive(tmp_path: Path, q: str, a: str) -> None:
    rows = [[q, a, "分類"], ["如何退貨？", "7 日內申請。", "退貨"]]
    doc = load(make_xlsx(tmp_path / "faq.xlsx", rows))
    (block,) = doc.blocks
    assert block.kind == "qa"
    assert block.label == "如何退貨？"
    assert block.text == "問：如何退貨？\n答：7 日內申請。\n分類：退貨"


def test_xlsx_records_use_header_and_sheet_names(tmp_path: Path) -> None:
    import datetime as dt

    sheets = {
        "聯絡人": [
            ["部門", "姓名", "分機", "到職日"],
            ["物流部", "王小明", 1234, dt.datetime(2021, 3, 1)],
            [None, None, None, None],
            ["客服部", "陳大華", 2100.0, None],
        ],
        "FAQ": [["Q", "A"], ["運費？", "滿千免運。"]],
    }
    doc = load(make_xlsx(tmp_path / "book.xlsx", sheets=sheets))
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert [r.text for r in rows] == [
        "部門：物流部；姓名：王小明；分機：1234；到職日：2021-03-01",
        "部門：客服部；姓名：陳大華；分機：2100",
    ]
    assert all(r.heading_path == ("聯絡人",) for r in rows)
    qa = [b for b in doc.blocks if b.kind == "qa"]
    assert qa[0].heading_path == ("FAQ",)
    assert doc.meta["sheets"] == ["聯絡人", "FAQ"]


def test_xlsx_formula_uses_cached_value(tmp_path: Path) -> None:
    p = make_xlsx(tmp_path / "calc.xlsx", [["品名", "數量", "金額"], ["紙箱", 10, "=B2*5"]])
    set_cached_value(p, "B2*5", "50")
    (row,) = load(p).blocks
    assert row.text == "品名：紙箱；數量：10；金額：50"


def test_xlsx_caption_row_above_header(tmp_path: Path) -> None:
    rows = [["113 年度運費表"], ["區域", "運費"], ["本島", 130]]
    doc = load(make_xlsx(tmp_path / "fees.xlsx", rows))
    assert [b.kind for b in doc.blocks] == ["para", "table_row"]
    assert doc.blocks[1].text == "區域：本島；運費：130"


def test_xlsx_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "bad.xlsx"
    p.write_bytes(b"PK\x03\x04" + bytes(random.Random(2).randrange(256) for _ in range(500)))
    assert_load_error(p, "corrupt", "Excel")


def test_csv_big5_faq(tmp_path: Path) -> None:
    rows = [
        ["問題", "答案"],
        ["營業時間？", "週一至週五\n09:00-18:00"],
        ["客服專線？", "0800-088-168"],
    ]
    doc = load(make_csv(tmp_path / "faq.csv", rows, encoding="cp950"))
    assert doc.kind == "csv"
    assert doc.meta["encoding"] in ("cp950", "big5hkscs")
    assert doc.blocks[0].text == "問：營業時間？\n答：週一至週五\n09:00-18:00"
    assert doc.blocks[1].label == "客服專線？"


def test_tsv_and_utf8_bom_csv(tmp_path: Path) -> None:
    doc = load(make_csv(tmp_path / "a.tsv", [["品名", "數量"], ["紙箱, 大", 3]], delimiter="\t"))
    assert doc.blocks[0].text == "品名：紙箱, 大；數量：3"
    doc = load(make_csv(tmp_path / "b.csv", [["品名", "數量"], ["膠帶", 5]], encoding="utf-8-sig"))
    assert doc.blocks[0].text == "品名：膠帶；數量：5"  # the BOM is not part of the header


# --- plain text --------------------------------------------------------------------------

NOTICE = (
    "晨光物流股份有限公司公告\n\n"
    "主旨：自一一三年三月一日起調整上班時間，請同仁配合。\n"
    "說明：\n"
    "一、上班時間為上午八時三十分至下午五時三十分。\n"
    "二、午休時間為十二時至十三時三十分，\n請各單位同仁配合辦理。\n"
    "三、如有疑問請洽人資部（分機 1234）。\n"
)


def test_big5_text(tmp_path: Path) -> None:
    doc = load(make_big5_txt(tmp_path / "公告.txt", NOTICE))
    assert doc.kind == "txt"
    assert doc.meta["encoding"] == "cp950"
    assert doc.title == "晨光物流股份有限公司公告"
    item2 = by_label(doc, "二")
    assert item2.text == "二、午休時間為十二時至十三時三十分，請各單位同仁配合辦理。"
    assert [b.label for b in doc.blocks if b.label] == ["一", "二", "三"]
    assert "主旨：自一一三年三月一日起調整上班時間，請同仁配合。" in [b.text for b in doc.blocks]


@pytest.mark.parametrize(
    ("bom", "big_endian"), [(True, False), (True, True), (False, False), (False, True)]
)
def test_utf16_text(tmp_path: Path, bom: bool, big_endian: bool) -> None:
    # 「一」 is U+4E00: its low byte is NUL, which must not confuse BOM-less detection.
    p = make_utf16_txt(tmp_path / "u16.txt", NOTICE, bom=bom, big_endian=big_endian)
    doc = load(p)
    assert doc.meta["encoding"].replace("_", "-").startswith("utf-16")
    assert by_label(doc, "一").text == "一、上班時間為上午八時三十分至下午五時三十分。"


def test_gb18030_text_is_not_read_as_big5(tmp_path: Path) -> None:
    text = (
        "本公司自二零二四年三月一日起调整上班时间为上午八时三十分至下午五时三十分，"
        "请各单位同事配合办理。"
    )
    doc = load(make_text(tmp_path / "cn.txt", text, encoding="gb18030"))
    assert doc.blocks[0].text == text
    # These bytes are also valid (gibberish) cp950: the language check must pick GB18030.
    ambiguous = "物流中心将于明天开始试运行新系统，请同事们配合。"
    ambiguous.encode("gb18030").decode("cp950")
    doc = load(make_text(tmp_path / "cn2.txt", ambiguous, encoding="gb18030"))
    assert doc.blocks[0].text == ambiguous


def test_text_cross_reference_at_line_start_does_not_split(tmp_path: Path) -> None:
    text = (
        "第五條 本辦法未規定之事項，悉依\n第三條規定及相關法令辦理。\n第六條 本辦法自公告日施行。\n"
    )
    doc = load(make_text(tmp_path / "ref.txt", text))
    assert [b.label for b in doc.blocks] == ["第五條", "第六條"]
    assert doc.blocks[0].text == "第五條 本辦法未規定之事項，悉依第三條規定及相關法令辦理。"


def test_text_paragraphs_chapters_and_labels(tmp_path: Path) -> None:
    text = (
        "第一章 總則\n"
        "第一條 本辦法依法訂定之。\n"
        "第二條 本辦法適用於全體員工，\n"
        "含定期契約員工。\n"
        "\n"
        "補充說明第一段。\n"
        "\n"
        "第二章 附則\n"
        "第三條 本辦法自公告日施行。\n"
    )
    doc = load(make_text(tmp_path / "rules.txt", text))
    assert doc.title == "rules"
    assert by_label(doc, "第二條").text == "第二條 本辦法適用於全體員工，含定期契約員工。"
    assert by_label(doc, "第二條").heading_path == ("第一章 總則",)
    extra = [b for b in doc.blocks if b.text == "補充說明第一段。"]
    assert extra and extra[0].label == "第二條"  # a later paragraph of an article cites it
    assert by_label(doc, "第三條").heading_path == ("第二章 附則",)


def test_text_undecodable_is_encoding_error(tmp_path: Path) -> None:
    rnd = random.Random(7)
    p = tmp_path / "binary.txt"
    p.write_bytes(bytes(rnd.randrange(256) for _ in range(3000)))
    assert_load_error(p, "encoding", "編碼")


def test_empty_and_blank_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert_load_error(empty, "empty")
    blank = make_text(tmp_path / "blank.md", "\n \n\t\n")
    assert_load_error(blank, "empty")


# --- chat logs ---------------------------------------------------------------------------

LINE_EXPORT = (
    "[LINE] 與王小明的聊天記錄\n"
    "儲存日期：2024/01/05 18:00\n"
    "\n"
    "2024/01/02（二）\n"
    "10:05\t王小明\t早安，今天的貨到了嗎？\n"
    '10:06\t陳大華\t"還沒，\n'
    '預計下午到"\n'
    "下午03:20\t王小明\t[貼圖]\n"
    "下午03:21\t王小明已收回訊息\n"
    "\n"
    "2024.01.03 星期三\n" + "".join(f"09:{i:02d}\t陳大華\t第{i}則訊息\n" for i in range(12))
)


def test_line_chat_export(tmp_path: Path) -> None:
    doc = load(make_text(tmp_path / "chat.txt", "\ufeff" + LINE_EXPORT))
    assert doc.kind == "chat"
    assert doc.title == "與王小明的聊天記錄"
    assert doc.meta["participants"] == ["王小明", "陳大華"]
    first = doc.blocks[0]
    assert first.kind == "message"
    assert first.heading_path == ("2024-01-02",)
    assert first.label == "10:05"
    assert first.text.split("\n") == [
        "10:05 王小明：早安，今天的貨到了嗎？",
        "10:06 陳大華：還沒，預計下午到",
        "15:21 王小明已收回訊息",
    ]
    assert "[貼圖]" not in texts(doc)
    day2 = [b for b in doc.blocks if b.heading_path == ("2024-01-03",)]
    assert [len(b.text.split("\n")) for b in day2] == [10, 2]
    assert day2[1].label == "09:10"


def test_generic_chat_log(tmp_path: Path) -> None:
    text = (
        "[2024-01-02 10:05] 王小明: 請問出貨單在哪裡？\n"
        "[2024-01-02 10:06] 客服小美: 在系統的「出貨」頁。\n"
        "2024-01-03 09:00 王小明：謝謝\n"
    )
    doc = load(make_text(tmp_path / "support.log", text))
    assert doc.kind == "chat"
    assert [b.heading_path for b in doc.blocks] == [("2024-01-02",), ("2024-01-03",)]
    assert doc.blocks[0].text.split("\n") == [
        "10:05 王小明：請問出貨單在哪裡？",
        "10:06 客服小美：在系統的「出貨」頁。",
    ]


def test_text_with_one_timestamp_is_not_a_chat(tmp_path: Path) -> None:
    text = (
        "系統維護公告\n\n2024-01-02 22:00 系統：將進行例行維護。\n"
        "維護期間暫停出貨查詢服務。\n請見諒。\n"
    )
    doc = load(make_text(tmp_path / "notice.txt", text))
    assert doc.kind == "txt"


# --- HTML --------------------------------------------------------------------------------

HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="big5"><title>退貨說明 - 晨光物流</title>
<style>body { color: red } /* STYLE_NOISE */</style>
<script>var SCRIPT_NOISE = 1;</script></head>
<body>
<header><div>HEADER_NOISE 晨光物流首頁</div></header>
<nav><ul><li>NAV_NOISE 關於我們</li></ul></nav>
<div role="navigation">ROLE_NAV_NOISE</div>
<div class="promo">OUTSIDE_MAIN_NOISE</div>
<main>
<h1>退貨說明</h1>
<p>收到商品後
七日內可申請退貨。<br>請保留原包裝。</p>
<h2>退貨流程</h2>
<ol><li>登入會員</li>
<li>填寫<a href="/form">退貨申請單</a><img src="x.png" alt="IMG_NOISE"></li></ol>
<table><tr><th>商品類型</th><th>退貨期限</th></tr>
<tr><td>一般商品</td><td>7 天</td></tr><tr><td>生鮮</td><td>不適用</td></tr></table>
<form><label>FORM_NOISE</label><input name="q"></form>
<iframe src="x">IFRAME_NOISE</iframe>
<pre>code  line1
  line2</pre>
</main>
<aside>ASIDE_NOISE</aside>
<footer>FOOTER_NOISE 版權所有</footer>
<noscript>NOSCRIPT_NOISE</noscript>
</body></html>"""


def test_html_main_text_without_noise(tmp_path: Path) -> None:
    p = tmp_path / "return.html"
    p.write_bytes(HTML_PAGE.encode("cp950"))
    doc = load(p)
    assert doc.kind == "html"
    assert doc.meta["encoding"] == "cp950"
    assert doc.title == "退貨說明 - 晨光物流"
    body = texts(doc)
    assert "NOISE" not in body
    assert "收到商品後七日內可申請退貨。\n請保留原包裝。" in body  # CJK newline joined, <br> kept
    assert "填寫退貨申請單" in body  # link text kept
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert [r.text for r in rows] == [
        "商品類型：一般商品；退貨期限：7 天",
        "商品類型：生鮮；退貨期限：不適用",
    ]
    assert rows[0].heading_path == ("退貨說明", "退貨流程")
    assert "code  line1\n  line2" in body


def test_html_without_main_or_title(tmp_path: Path) -> None:
    html = (
        "<html><body><nav>NAV_NOISE</nav><h1>出貨<b>須知</b></h1>"
        "<div>第一段文字<div>巢狀段落</div></div>"
        "<script>SCRIPT_NOISE</script><footer>FOOTER_NOISE</footer></body></html>"
    )
    p = make_text(tmp_path / "page.htm", html)
    doc = load(p)
    assert doc.title == "出貨須知"
    assert [b.text for b in doc.blocks] == ["出貨須知", "第一段文字", "巢狀段落"]
    assert doc.blocks[1].heading_path == ("出貨須知",)


def test_html_article_header_kept_page_header_dropped(tmp_path: Path) -> None:
    html = (
        "<html><body><header>SITE_HEADER_NOISE</header>"
        "<article><header><h1>颱風停班公告</h1><p>發布日期：2024-07-24</p></header>"
        "<p>今日下午停止上班。</p><footer>ARTICLE_FOOTER_NOISE</footer></article>"
        "</body></html>"
    )
    doc = load(make_text(tmp_path / "typhoon.html", html))
    assert doc.title == "颱風停班公告"
    assert [b.text for b in doc.blocks] == [
        "颱風停班公告",
        "發布日期：2024-07-24",
        "今日下午停止上班。",
    ]


# --- Markdown ----------------------------------------------------------------------------

NOTION_MD = """Tags: HR, 制度
Created: 2024年1月2日 10:05

## 出勤
上班時間為
上午九時。詳見[打卡規定](https://example.com/x)。![logo](logo.png)

1. 第一項
2. 第二項

| 假別 | 天數 |
|---|---|
| 婚假 | 8 |

```
ssh deploy@host
```

### 4.3 加班
4.3 加班需事先申請。
"""


def test_markdown_notion_export(tmp_path: Path) -> None:
    p = make_text(tmp_path / "員工手冊 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.md", NOTION_MD)
    doc = load(p)
    assert doc.kind == "markdown"
    assert doc.title == "員工手冊"  # no H1: the stem without the Notion id
    assert doc.meta["properties"] == {"Tags": "HR, 制度", "Created": "2024年1月2日 10:05"}
    body = texts(doc)
    assert "Tags" not in body and "Created" not in body
    assert "上班時間為上午九時。詳見打卡規定。" in body
    assert "logo" not in body and "https://" not in body
    assert "假別：婚假；天數：8" in body
    assert "ssh deploy@host" in body
    assert "1. 第一項" in body
    assert by_label(doc, "4.3").heading_path == ("出勤", "4.3 加班")


def test_markdown_front_matter_and_h1_title(tmp_path: Path) -> None:
    md = (
        "---\ntitle: 前言標題\ntags:\n  - IT\n  - 帳號\n---\n\n"
        "# 帳號申請\n\n## 密碼規則\n\n- 至少 12 字元\n"
    )
    doc = load(make_text(tmp_path / "account.md", md))
    assert doc.title == "帳號申請"
    assert doc.meta["front_matter"] == {"title": "前言標題", "tags": ["IT", "帳號"]}
    assert "前言標題" not in texts(doc)
    item = [b for b in doc.blocks if b.text == "至少 12 字元"]
    assert item and item[0].heading_path == ("帳號申請", "密碼規則")


# --- properties --------------------------------------------------------------------------

_CJK_ALPHABET = "員工請假特別休病事婚喪一二三四五六七八九十第條章、，。：（）" + "ABCxyz0129 "


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet=_CJK_ALPHABET, min_size=0, max_size=40), max_size=25), st.booleans()
)
def test_segment_never_loses_or_reorders_text(raw_lines: list[str], wrapped: bool) -> None:
    lines = [
        Line(t, page=1 + i // 10, short=len(t) < 20, full=len(t) > 35)
        for i, t in enumerate(raw_lines)
    ]
    blocks = segment(lines, wrapped=wrapped)
    squash = re.compile(r"\s+")
    assert squash.sub("", "".join(b.text for b in blocks)) == squash.sub("", "".join(raw_lines))
    for b in blocks:
        assert b.page_start is not None and b.page_end is not None
        assert b.page_start <= b.page_end


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="晨光物流出貨異常一二三ABCabc123，。\n ", min_size=1, max_size=80),
    st.booleans(),
)
def test_utf16_without_bom_round_trips(text: str, big_endian: bool) -> None:
    if "\n" not in text and " " not in text:
        text += "\n"
    data = text.encode("utf-16-be" if big_endian else "utf-16-le")
    decoded, _ = decode_bytes(data, Path("x.txt"))
    assert decoded == text


# --- bundled samples ---------------------------------------------------------------------


def test_samples_are_reproducible(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    names = [
        "出貨異常處理SOP.docx",
        "員工請假管理辦法.pdf",
        "客服常見問題.xlsx",
        "IT帳號申請.md",
        "舊版公告.txt",
    ]
    for name in names:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_sample_sop_docx() -> None:
    doc = load(SAMPLES / "出貨異常處理SOP.docx")
    c43 = by_label(doc, "4.3")
    assert c43.text == SOP_43
    assert c43.heading_path == ("4 作業程序",)
    assert [by_label(doc, f"4.{i}").label for i in range(1, 7)]
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert rows and rows[0].text.startswith("異常類型：破損；通報對象：")


def test_sample_leave_pdf() -> None:
    doc = load(SAMPLES / "員工請假管理辦法.pdf")
    assert doc.title == "員工請假管理辦法"
    assert doc.pages is not None and doc.pages >= 3
    labels = [b.label for b in doc.blocks if b.label and b.label.endswith("條")]
    expected = [
        "第一條",
        "第二條",
        "第三條",
        "第四條",
        "第五條",
        "第六條",
        "第七條",
        "第八條",
        "第九條",
        "第十條",
        "第十一條",
        "第十二條",
        "第十三條",
        "第十四條",
        "第十五條",
    ]
    assert list(dict.fromkeys(labels)) == expected
    deferral = (
        "特別休假因年度終結或契約終止而未休之日數，經勞雇雙方協商得遞延至次一年度實施；"
        "遞延之日數於次一年度終結仍未休者，雇主應發給工資。"
    )
    holder = [b for b in doc.blocks if deferral in b.text]
    assert len(holder) == 1 and holder[0].label == "第六條"
    assert any(b.page_end != b.page_start for b in doc.blocks if b.label and "條" in b.label)
    assert "HR-REG-002" not in texts(doc) and "共 " not in texts(doc)


def test_sample_faq_xlsx() -> None:
    doc = load(SAMPLES / "客服常見問題.xlsx")
    qa = [b for b in doc.blocks if b.kind == "qa"]
    assert len(qa) >= 15
    assert any("0800-088-168" in b.text for b in qa)


def test_sample_markdown_and_big5_notice() -> None:
    md = load(SAMPLES / "IT帳號申請.md")
    assert any(b.heading_path[-2:] == ("申請流程", "新進人員") for b in md.blocks)
    notice = load(SAMPLES / "舊版公告.txt")
    assert notice.meta["encoding"] == "cp950"
    assert "週休二日" in texts(notice)
    with pytest.raises(UnicodeDecodeError):
        (SAMPLES / "舊版公告.txt").read_bytes().decode("utf-8")
