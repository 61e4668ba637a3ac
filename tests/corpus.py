"""A small realistic zh-TW folder of office files, built with tests.filegen."""

from __future__ import annotations

from pathlib import Path

from tests.filegen import make_big5_txt, make_docx, make_pdf, make_xlsx


def build_office_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    make_docx(
        root / "出貨異常處理SOP.docx",
        [
            ("title", "出貨異常處理SOP"),
            ("heading", 1, "4 作業程序"),
            ("para", "4.1 出貨前，倉儲課應逐項核對品名、料號及數量。"),
            ("para", "4.3 出貨異常（含破損、短少、錯揀）需在 24 小時內通報物流部門。"),
            ("para", "4.4 物流部門接獲通報後，應於 1 個工作日內完成責任判定。"),
            ("table", [["異常類型", "處理時限"], ["破損", "24 小時內通報"]]),
        ],
        title="出貨異常處理SOP",
    )
    make_pdf(
        root / "請假辦法.pdf",
        [
            [
                "員工請假辦法",
                "第一章 總則",
                "第一條 本辦法依勞動基準法訂定之。",
                "第二條 員工請假應事前提出申請。",
            ],
            [
                "第三條 特別休假因年度終結而未休之日數，經勞雇雙方協商得遞延至次一年度實施。",
                "第四條 婚假八日，工資照給。",
            ],
        ],
        title="員工請假辦法",
    )
    make_xlsx(
        root / "FAQ.xlsx",
        [
            ["問題", "答案"],
            ["客服專線是幾號？", "客服專線為 0800-088-168。"],
            ["運費如何計算？", "本島一般件 130 元起。"],
        ],
    )
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "IT.md").write_text(
        "# IT 帳號\n\n## 密碼規則\n\n密碼每 180 天須變更一次。\n", "utf-8"
    )
    make_big5_txt(root / "notes" / "公告.txt", "公告\n\n本公司自六月一日起實施週休二日。\n")
    # A format zhiku does not read (a video), which ingest must skip by name.
    (root / "notes" / "宣導影片.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 64)
    return root
