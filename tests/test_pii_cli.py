"""``zhiku pii find / scan / redact`` through typer's CliRunner, on real files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font
from typer.testing import CliRunner

from tests.filegen import make_docx, make_pdf
from tests.pii_gen import PiiGen
from zhiku.pii.cli import app

runner = CliRunner()

HEADER = ["姓名", "身分證字號", "手機", "Email", "出生日期", "訂單編號", "金額", "備註"]
ROWS = [
    [
        "王小明",
        "A123456789",
        "0912-345-678",
        "wang.xm@gmail.com",
        "1985-03-12",
        "ORD-2024-000123",
        "1200",
        "VIP",
    ],
    [
        "林美華",
        "B142780167",
        "0922333444",
        "service@acme.com.tw",
        "1990/07/01",
        "A123456780",
        "350",
        "",
    ],
    [
        "陳志豪",
        "F131104093",
        "(0933)111-222",
        "chen88@yahoo.com.tw",
        "民國80年5月6日",
        "20240315001",
        "99",
        "請三日內回電",
    ],
]
CLEAN = [["品名", "單價", "庫存"], ["筆記本", "45", "120"], ["原子筆", "12", "800"]]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)
    return path


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input)


# --- find -----------------------------------------------------------------------------


def test_find_json() -> None:
    r = run("find", "客戶王小明，身分證 A123456789", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert [(f["type"], f["start"], f["end"], f["value"]) for f in data["findings"]] == [
        ("name", 2, 5, "王小明"),
        ("tw_id", 10, 20, "A123456789"),
    ]
    assert all(set(f) >= {"type", "start", "end", "value", "confidence"} for f in data["findings"])


def test_find_reads_stdin_and_filters_types() -> None:
    r = run("find", "--json", "--types", "mobile", input="王小明 0912-345-678 A123456789")
    assert r.exit_code == 0
    assert [f["type"] for f in json.loads(r.stdout)["findings"]] == ["mobile"]


def test_find_human_output_and_errors() -> None:
    r = run("find", "客服信箱 service@acme.com.tw")
    assert r.exit_code == 0 and "電子郵件（服務信箱）" in r.stdout
    assert "未發現個資" in run("find", "今天天氣很好").stdout
    bad = run("find", "x", "--types", "phone")
    assert bad.exit_code == 2 and "未知的個資類型" in bad.stderr


# --- scan -----------------------------------------------------------------------------


def test_scan_csv_per_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", [HEADER, *ROWS])
    r = run("scan", str(path), "--json")
    assert r.exit_code == 1, r.stderr
    (report,) = json.loads(r.stdout)["files"]
    assert report["path"] == str(path)
    assert report["columns"] == {
        "姓名": {"name": 3},
        "身分證字號": {"tw_id": 3},
        "手機": {"mobile": 3},
        "Email": {"email": 3},
        "出生日期": {"birthday": 3},
    }
    assert report["counts"] == {"tw_id": 3, "mobile": 3, "email": 3, "birthday": 3, "name": 3}
    # Examples are masked: no raw value of the file appears anywhere in the report.
    for row in ROWS:
        for value in row[:5]:
            assert value not in r.stdout
    assert report["examples"]["tw_id"][0] == "A1*****789"


def test_scan_clean_file_exits_0(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "products.csv", CLEAN)
    r = run("scan", str(path), "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["files"][0]["counts"] == {}
    assert "未發現個資" in run("scan", str(path)).stdout


def test_scan_missing_file_exit_2_and_batch_continues(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "customers.csv", [HEADER, *ROWS])
    missing = tmp_path / "沒有這個檔.csv"
    r = run("scan", str(missing), str(good), "--json")
    assert r.exit_code == 2
    assert f"找不到檔案：{missing}" in r.stderr
    data = json.loads(r.stdout)
    assert [f["path"] for f in data["files"]] == [str(good)]
    assert data["errors"][0]["path"] == str(missing)


def test_scan_unsupported_and_corrupt(tmp_path: Path) -> None:
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x00\x01")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    r = run("scan", str(exe), str(broken))
    assert r.exit_code == 2
    assert "不支援的檔案格式" in r.stderr and "檔案損毀或格式錯誤" in r.stderr
    assert str(exe) in r.stderr and str(broken) in r.stderr


def test_scan_big5_csv_and_english_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "big5.csv", [HEADER, *ROWS[:1]], encoding="cp950")
    r = run("scan", str(path), "--json")
    assert json.loads(r.stdout)["files"][0]["counts"]["tw_id"] == 1
    missing = tmp_path / "nope.csv"
    assert "File not found" in run("scan", str(missing), "--lang", "en").stderr
    monkeypatch.setenv("ZHIKU_LANG", "en")
    assert "File not found" in run("scan", str(missing)).stderr


def test_scan_csv_report(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", [HEADER, *ROWS])
    out = tmp_path / "report.csv"
    r = run("scan", str(path), "--csv", str(out))
    assert r.exit_code == 1
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    by_col = {(row["column"], row["type"]): row for row in rows}
    assert by_col[("身分證字號", "tw_id")]["count"] == "3"
    assert by_col[("姓名", "name")]["label"] == "姓名"
    assert "A123456789" not in out.read_text(encoding="utf-8-sig")


def test_scan_xlsx_sheets_numbers_and_dates(tmp_path: Path) -> None:
    import datetime as dt

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客戶"
    ws.append(["姓名", "手機", "生日", "統一編號"])
    ws.append(["王小明", 912345678, dt.datetime(1985, 3, 12), "22099131"])  # phone lost its 0
    other = wb.create_sheet("商品")
    other.append(["品名", "價格"])
    other.append(["筆記本", 45])
    path = tmp_path / "book.xlsx"
    wb.save(path)
    r = run("scan", str(path), "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)["files"][0]
    assert report["columns"] == {
        "客戶!姓名": {"name": 1},
        "客戶!手機": {"mobile": 1},
        "客戶!生日": {"birthday": 1},
        "客戶!統一編號": {"ubn": 1},
    }


def test_scan_json_txt_docx_pdf_and_folders(tmp_path: Path) -> None:
    records = {"result": {"records": [{"name": "王小明", "phone": "0912-345-678", "note": "無"}]}}
    (tmp_path / "open.json").write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    (tmp_path / "log.txt").write_text("客戶來電，身分證 A123456789，手機 0912345678\n", "utf-8")
    make_docx(
        tmp_path / "memo.docx",
        [
            ("para", "承辦人：林美華，分機 123"),
            ("table", [["姓名", "電話"], ["陳志豪", "0933-111-222"]]),
        ],
    )
    make_pdf(
        tmp_path / "form.pdf", [["申請書", "出生日期：1985/03/12", "E-mail: wang.xm@gmail.com"]]
    )
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    r = run("scan", str(tmp_path), "--json")
    assert r.exit_code == 1, r.stderr
    files = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    assert sorted(files) == ["form.pdf", "log.txt", "memo.docx", "open.json"]
    assert files["open.json"]["columns"] == {
        "result.records.name": {"name": 1},
        "result.records.phone": {"mobile": 1},
    }
    assert files["log.txt"]["columns"] is None
    assert files["log.txt"]["counts"] == {"tw_id": 1, "mobile": 1}
    assert files["memo.docx"]["counts"]["name"] >= 1 and files["memo.docx"]["counts"]["mobile"] == 1
    assert files["form.pdf"]["counts"] == {"email": 1, "birthday": 1}


def test_scan_generated_table(tmp_path: Path) -> None:
    header, body = PiiGen(seed=21).table(60)
    path = write_csv(tmp_path / "gen.csv", [header, *body])
    report = json.loads(run("scan", str(path), "--json").stdout)["files"][0]
    cols = report["columns"]
    assert cols["身分證字號"] == {"tw_id": 60}
    assert cols["手機"] == {"mobile": 60}
    assert cols["出生日期"] == {"birthday": 60}
    assert cols["地址"] == {"address": 60}
    assert "訂單編號" not in cols and "金額" not in cols


# --- redact -----------------------------------------------------------------------------


def test_redact_csv_keeps_layout(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", [HEADER, *ROWS])
    dst = tmp_path / "out.csv"
    r = run("redact", str(src), str(dst))
    assert r.exit_code == 0, r.stderr
    assert "已遮蔽：" in r.stdout and "身分證字號 3" in r.stdout
    raw = dst.read_bytes()
    assert raw.count(b"\r\n") == 4  # same line ends, same number of lines
    out = list(csv.reader(dst.open(encoding="utf-8", newline="")))
    assert out[0] == HEADER
    assert [len(row) for row in out] == [len(HEADER)] * 4
    for before, after in zip(ROWS, out[1:], strict=True):
        assert after[5:] == before[5:]  # order no., amount, note untouched
        for i in (0, 1, 2, 4):
            assert after[i] != before[i] and len(after[i]) == len(before[i])
    assert out[1][:3] == ["王○明", "A1*****789", "0912-***-678"]
    assert out[2][3] == "service@acme.com.tw"  # a service mailbox stays
    assert out[1][3] == "w******@gmail.com"


def test_redact_xlsx_keeps_sheets_cells_and_styles(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客戶"
    ws.append(HEADER)
    for row in ROWS:
        ws.append(row)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.column_dimensions["B"].width = 30
    notes = wb.create_sheet("說明")
    notes["A1"] = "本表僅供內部使用"
    notes["B3"] = "=1+1"
    src, dst = tmp_path / "in.xlsx", tmp_path / "out.xlsx"
    wb.save(src)
    r = run("redact", str(src), str(dst), "--strategy", "tag")
    assert r.exit_code == 0, r.stderr
    out = openpyxl.load_workbook(dst)
    assert out.sheetnames == ["客戶", "說明"]
    o = out["客戶"]
    assert o.max_row == 4 and o.max_column == len(HEADER)
    assert [c.value for c in o[1]] == HEADER and all(c.font.bold for c in o[1])
    assert o.column_dimensions["B"].width == 30
    assert [c.value for c in o[2]] == [
        "〔姓名〕", "〔身分證字號〕", "〔手機號碼〕", "〔電子郵件〕", "〔出生日期〕",
        "ORD-2024-000123", "1200", "VIP",
    ]  # fmt: skip
    assert o["D3"].value == "service@acme.com.tw"
    assert out["說明"]["A1"].value == "本表僅供內部使用" and out["說明"]["B3"].value == "=1+1"


def test_redact_docx_keeps_formatting(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    p = d.add_paragraph()
    p.add_run("客戶手機 ").bold = True
    p.add_run("0912-345")
    p.add_run("-678").italic = True
    p.add_run("，請回電。")
    src, dst = tmp_path / "in.docx", tmp_path / "out.docx"
    d.save(str(src))
    assert run("redact", str(src), str(dst)).exit_code == 0
    runs = docx.Document(str(dst)).paragraphs[0].runs
    assert "".join(r.text for r in runs) == "客戶手機 0912-***-678，請回電。"
    assert runs[0].bold and runs[0].text == "客戶手機 "
    assert runs[2].italic


def test_redact_pseudonym_needs_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.txt"
    src.write_text("手機 0912-345-678；再次確認 +886 912 345 678\n", "utf-8")
    dst = tmp_path / "out.txt"
    r = run("redact", str(src), str(dst), "--strategy", "pseudonym")
    assert r.exit_code == 2 and "ZHIKU_PII_SECRET" in r.stderr and not dst.exists()
    monkeypatch.setenv("ZHIKU_PII_SECRET", "kb-secret")
    r = run("redact", str(src), str(dst), "--strategy", "pseudonym", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"] == {"mobile": 2}
    text = dst.read_text("utf-8")
    tokens = [t for t in text.replace("；", " ").split() if t.startswith("〔")]
    assert len(tokens) == 2 and tokens[0].rstrip("再次確認") == tokens[1]


def test_redact_types_and_business_switch(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("統編 22099131，客服 0800-000-123，手機 0912-345-678", "utf-8")
    dst = tmp_path / "out.txt"
    assert run("redact", str(src), str(dst), "--types", "ubn").exit_code == 0
    assert dst.read_text("utf-8") == "統編 22****31，客服 0800-000-123，手機 0912-345-678"
    assert run("redact", str(src), str(dst), "--all-types", "--mask-business").exit_code == 0
    assert dst.read_text("utf-8") == "統編 22****31，客服 0800-***-*23，手機 0912-***-678"


def test_redact_pdf_only_to_text(tmp_path: Path) -> None:
    src = make_pdf(tmp_path / "form.pdf", [["出生日期：1985/03/12"]])
    bad = run("redact", str(src), str(tmp_path / "out.pdf"))
    assert bad.exit_code == 2 and ".txt" in bad.stderr
    ok = run("redact", str(src), str(tmp_path / "out.txt"))
    assert ok.exit_code == 0
    assert "****/**/**" in (tmp_path / "out.txt").read_text("utf-8")


def test_redact_bad_input(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", [HEADER, *ROWS])
    assert run("redact", str(src), str(src)).exit_code == 2
    missing = run("redact", str(tmp_path / "nope.csv"), str(tmp_path / "o.csv"))
    assert missing.exit_code == 2 and "找不到檔案" in missing.stderr
    assert run("redact", str(src), str(tmp_path / "o.csv"), "--strategy", "blur").exit_code == 2


def test_csv_without_header_row_is_still_covered(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "noheader.csv", [["王小明", "A123456789"], ["林美華", "F131104093"]])
    report = json.loads(run("scan", str(src), "--json").stdout)["files"][0]
    assert report["counts"]["tw_id"] == 2
    dst = tmp_path / "out.csv"
    assert run("redact", str(src), str(dst)).exit_code == 0
    assert "A123456789" not in dst.read_text("utf-8")
