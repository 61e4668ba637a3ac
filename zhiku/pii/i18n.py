"""User-facing words of the PII module: zh-TW by default, English on request."""

from __future__ import annotations

TYPE_LABELS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "tw_id": "身分證字號",
        "arc": "居留證號",
        "ubn": "統一編號",
        "mobile": "手機號碼",
        "landline": "市話號碼",
        "email": "電子郵件",
        "credit_card": "信用卡號",
        "nhi_card": "健保卡號",
        "passport": "護照號碼",
        "bank_account": "銀行帳號",
        "birthday": "出生日期",
        "address": "地址",
        "name": "姓名",
    },
    "en": {
        "tw_id": "national ID",
        "arc": "resident certificate no.",
        "ubn": "business number (UBN)",
        "mobile": "mobile number",
        "landline": "landline number",
        "email": "e-mail",
        "credit_card": "credit card no.",
        "nhi_card": "NHI card no.",
        "passport": "passport no.",
        "bank_account": "bank account",
        "birthday": "date of birth",
        "address": "address",
        "name": "name",
    },
}

SUBTYPE_LABELS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "role": "服務信箱",
        "personal": "個人",
        "tollfree": "免付費",
        "service": "服務專線",
        "business": "營業處所",
        "home": "住家",
        "old": "舊式",
        "new": "新式",
        "surname": "僅姓氏",
        "bad_checksum": "檢查碼錯誤",
    },
    "en": {
        "role": "role mailbox",
        "personal": "personal",
        "tollfree": "toll-free",
        "service": "service line",
        "business": "business",
        "home": "home",
        "old": "old format",
        "new": "2021 format",
        "surname": "surname only",
        "bad_checksum": "wrong check digit",
    },
}

MESSAGES: dict[str, dict[str, str]] = {
    "zh-TW": {
        "not_found": "找不到檔案：{path}",
        "unreadable": "無法讀取檔案：{path}（{reason}）",
        "unsupported": "不支援的檔案格式：{path}（支援 {suffixes}）",
        "encoding": "無法辨識檔案的文字編碼：{path}（請另存為 UTF-8）",
        "corrupt": "檔案損毀或格式錯誤：{path}（{reason}）",
        "bad_json": "JSON 格式錯誤：{path}（第 {line} 行）",
        "pdf_redact": "PDF 無法原樣輸出去識別化版本，請指定 .txt 輸出檔：{path}",
        "same_path": "輸出檔不可與輸入檔相同：{path}",
        "no_secret": "假名化需要金鑰：請設定環境變數 {env}",
        "unknown_type": "未知的個資類型：{types}（可用：{valid}）",
        "bad_strategy": "未知的遮蔽方式：{value}（可用：mask、tag、pseudonym）",
        "bad_mode": "未知的個資保護模式：{value}（可用：ingest、output、off）",
        "bad_confidence": "信心門檻須介於 0 與 1 之間：{value}",
        "no_input": "請提供要檢查的文字，或由標準輸入傳入",
        "none_found": "未發現個資",
        "scan_clean": "{files} 個檔案，未發現個資",
        "scan_found": "{files} 個檔案中有 {hits} 個含個資，共 {total} 筆",
        "scan_errors": "{count} 個檔案無法讀取",
        "redacted": "已寫入去識別化檔案：{path}",
        "masked_counts": "已遮蔽：{counts}",
        "csv_written": "已寫入 CSV 報告：{path}",
        "col_file": "檔案",
        "col_column": "欄位",
        "col_type": "類型",
        "col_count": "筆數",
        "col_examples": "範例（已遮蔽）",
        "col_position": "位置",
        "col_value": "內容",
        "col_confidence": "信心",
        "whole_file": "（全文）",
    },
    "en": {
        "not_found": "File not found: {path}",
        "unreadable": "Cannot read file: {path} ({reason})",
        "unsupported": "Unsupported file type: {path} (supported: {suffixes})",
        "encoding": "Cannot detect the text encoding of {path} (save it as UTF-8)",
        "corrupt": "File is corrupt or malformed: {path} ({reason})",
        "bad_json": "Invalid JSON: {path} (line {line})",
        "pdf_redact": "A PDF cannot be redacted in place; give a .txt output file: {path}",
        "same_path": "The output file must differ from the input: {path}",
        "no_secret": "Pseudonyms need a secret: set the environment variable {env}",
        "unknown_type": "Unknown PII type(s): {types} (valid: {valid})",
        "bad_strategy": "Unknown strategy: {value} (valid: mask, tag, pseudonym)",
        "bad_mode": "Unknown PII mode: {value} (valid: ingest, output, off)",
        "bad_confidence": "Confidence threshold must be between 0 and 1: {value}",
        "no_input": "Give the text to check as an argument or on standard input",
        "none_found": "No personal data found",
        "scan_clean": "{files} file(s), no personal data found",
        "scan_found": "{hits} of {files} file(s) contain personal data, {total} item(s) in all",
        "scan_errors": "{count} file(s) could not be read",
        "redacted": "Redacted copy written: {path}",
        "masked_counts": "Masked: {counts}",
        "csv_written": "CSV report written: {path}",
        "col_file": "File",
        "col_column": "Column",
        "col_type": "Type",
        "col_count": "Count",
        "col_examples": "Examples (masked)",
        "col_position": "Position",
        "col_value": "Value",
        "col_confidence": "Confidence",
        "whole_file": "(whole file)",
    },
}


def resolve_lang(lang: str | None = None) -> str:
    """``zh-TW`` unless ``lang`` or ``$ZHIKU_LANG`` asks for English."""
    from zhiku.settings import lang as current
    from zhiku.settings import normalize_lang

    return normalize_lang(lang) if lang else current()


def type_label(type_: str, lang: str | None = "zh-TW") -> str:
    return TYPE_LABELS[resolve_lang(lang)].get(type_, type_)


def subtype_label(subtype: str | None, lang: str | None = "zh-TW") -> str | None:
    if subtype is None or subtype == "plain":
        return None
    return SUBTYPE_LABELS[resolve_lang(lang)].get(subtype, subtype)


def msg(key: str, lang: str | None = None, **kwargs: object) -> str:
    return MESSAGES[resolve_lang(lang)][key].format(**kwargs)
