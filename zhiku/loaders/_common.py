"""Helpers shared by the loaders: text clean-up, table rows, Q/A headers, titles."""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

# Kangxi radicals (U+2F00–U+2FDF) and CJK radicals supplement (U+2E80–U+2EFF) are
# what many PDF producers emit instead of the ordinary ideograph (⽇ for 日); NFKC maps
# them back. Only these ranges are folded: everything else keeps its original form.
_RADICALS_RE = re.compile("[\u2e80-\u2fdf]")
# C0/C1 controls except tab and newline, zero-width characters, BOM, non-characters.
_JUNK_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\ufffe\uffff]")
_SPACES_RE = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_CJK_CHAR = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f"
)
_CJK_GAP_RE = re.compile(rf"(?<=[{_CJK_CHAR}])\s*\n\s*(?=[{_CJK_CHAR}])")
_WS_RUN_RE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Drop control/zero-width characters and fold Kangxi radicals; CRLF → LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _JUNK_RE.sub("", text)
    if _RADICALS_RE.search(text):
        text = _RADICALS_RE.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return text


def squash_spaces(text: str) -> str:
    """Collapse runs of spaces/tabs (not newlines) to one ASCII space and strip."""
    return _SPACES_RE.sub(" ", text).strip()


def collapse_ws(text: str) -> str:
    """Collapse HTML-style whitespace: a line break between two CJK characters vanishes,
    any other whitespace run becomes one space."""
    text = _CJK_GAP_RE.sub("", text)
    return _WS_RUN_RE.sub(" ", text).strip()


def display_width(text: str) -> int:
    """Approximate rendered width: East Asian wide/full-width characters count 2."""
    w = 0
    for ch in text:
        w += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return w


def cell_str(value: object) -> str:
    """A spreadsheet/table cell as display text (integral floats without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return cell_text(str(value))


def cell_text(text: str) -> str:
    """Cell text cleaned line by line; line breaks inside a cell are kept."""
    lines = (squash_spaces(ln) for ln in clean_text(text).split("\n"))
    return "\n".join(ln for ln in lines if ln)


def header_names(row: Sequence[str]) -> list[str]:
    """Header cells with blanks named 「欄N」 and duplicates suffixed, so rows stay readable."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(row):
        name = raw.strip() or f"欄{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


def row_text(headers: Sequence[str] | None, values: Sequence[str]) -> str:
    """「欄位A：值；欄位B：值」, skipping empty values; without headers the values are
    joined with 「；」."""
    parts: list[str] = []
    for i, v in enumerate(values):
        v = v.strip()
        if not v:
            continue
        if headers is not None and i < len(headers):
            parts.append(f"{headers[i]}：{v}")
        else:
            parts.append(v)
    return "；".join(parts)


def looks_like_header(cells: Sequence[str]) -> bool:
    """A plausible header row: ≥ 2 short, distinct, non-numeric non-empty cells."""
    vals = [c.strip() for c in cells if c.strip()]
    if len(vals) < 2 or len(set(vals)) != len(vals):
        return False
    return not any(len(v) > 40 or re.fullmatch(r"[\d.,\-/:%\s]+", v) for v in vals)


_Q_NAMES = {"問題", "題目", "提問", "問", "常見問題", "疑問", "q", "question", "questions", "faq"}
_A_NAMES = {"答案", "回答", "解答", "答覆", "答", "說明", "a", "answer", "answers", "reply"}


def _header_key(name: str) -> str:
    return re.sub(r"[\s:：_\-.]", "", unicodedata.normalize("NFKC", name).lower())


def qa_columns(headers: Sequence[str]) -> tuple[int, int] | None:
    """Indices of the question and answer columns when a header row names both."""
    q = a = None
    for i, h in enumerate(headers):
        key = _header_key(h)
        if q is None and key in _Q_NAMES:
            q = i
        elif a is None and key in _A_NAMES:
            a = i
    if q is None or a is None:
        return None
    return q, a


def qa_text(question: str, answer: str) -> str:
    return f"問：{question}\n答：{answer}"


_NOTION_ID_RE = re.compile(r"\s+[0-9a-f]{32}$", re.IGNORECASE)


def stem_title(path: Path) -> str:
    """The file stem as a title, without a Notion export id (``名稱 1a2b…(32 hex)``)."""
    stem = _NOTION_ID_RE.sub("", path.stem).strip()
    return stem or path.stem


_BAD_TITLES_RE = re.compile(
    r"^(untitled|無標題|未命名|document\d*|文件\d*|新增.*文件|microsoft word.*|"
    r"powerpoint.*|slide\s*\d*|title|標題)$",
    re.IGNORECASE,
)


def sensible_title(title: str | None) -> str | None:
    """A metadata title worth showing, or ``None`` (「untitled」, 「Document1」, a file name…)."""
    if not title:
        return None
    t = squash_spaces(clean_text(title).replace("\n", " "))
    t = re.sub(r"^Microsoft (Word|PowerPoint|Excel) - ", "", t)
    t = re.sub(r"\.(docx?|pdf|xlsx?|pptx?|txt|md|html?)$", "", t, flags=re.IGNORECASE).strip()
    if len(t) < 2 or len(t) > 200 or _BAD_TITLES_RE.match(t):
        return None
    return t
