"""Chat-log parsing for plain-text exports (called by the txt loader).

Two shapes are recognised:

* LINE exports::

    [LINE] 與王小明的聊天記錄
    儲存日期：2024/01/05 18:00

    2024/01/02（二）
    10:05	王小明	早安，今天的貨到了嗎？

  (date lines may also read ``2024.01.02 星期二``; times may carry 上午/下午).
* generic logs: ``[2024-01-02 10:05] 王小明: 訊息`` or ``2024-01-02 10:05 王小明：訊息``.

Messages are grouped per date, up to :data:`MESSAGES_PER_BLOCK` per block; each block
has ``heading_path == (date,)``, ``label`` = the first message's time and
``kind == "message"``; each message is one line 「時間 名字：訊息」.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.loaders._common import stem_title
from zhiku.models import Block, LoadedDocument
from zhiku.text import join_wrapped_lines

MESSAGES_PER_BLOCK = 10

_LINE_HEADER_RE = re.compile(r"^\[LINE\]\s*(.+)$")
_LINE_SAVED_RE = re.compile(r"^(儲存日期|保存日期|Saved on)\s*[:：]\s*(.+)$", re.IGNORECASE)
_DATE_LINE_RE = re.compile(
    r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})\s*"
    r"(?:[（(][一二三四五六日天][)）]|(?:星期|週|周)[一二三四五六日天]|"
    r"\(?(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?\)?)?\s*$"
)
_TIME = r"(?:(上午|下午|AM|PM|am|pm)\s*)?(\d{1,2}):(\d{2})(?::\d{2})?(?:\s*(AM|PM|am|pm))?"
_LINE_MSG_RE = re.compile(rf"^{_TIME}\t([^\t]*)\t(.*)$")
_LINE_SYS_RE = re.compile(rf"^{_TIME}\t([^\t]+)$")
_GENERIC_RE = re.compile(
    r"^\[?(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::\d{2})?\]?\s+"
    r"([^:：\t\[\]]{1,40}?)\s*[:：]\s?(.*)$"
)
_DROP_PLACEHOLDERS = {
    "[貼圖]",
    "[動態貼圖]",
    "[照片]",
    "[影片]",
    "[語音訊息]",
    "[Sticker]",
    "[Photo]",
    "[Video]",
}


@dataclass(slots=True)
class _Msg:
    date: str
    time: str
    name: str | None
    text: str


@dataclass(slots=True)
class _Chat:
    fmt: str
    title: str | None
    messages: list[_Msg] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


def _hhmm(ampm: str | None, hh: str, mm: str, ampm2: str | None) -> str:
    h = int(hh)
    mark = (ampm or ampm2 or "").lower()
    if mark in ("下午", "pm") and h < 12:
        h += 12
    elif mark in ("上午", "am") and h == 12:
        h = 0
    return f"{h:02d}:{mm}"


def _iso(y: str, m: str, d: str) -> str:
    return f"{int(y):04d}-{int(m):02d}-{int(d):02d}"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _parse_line_export(lines: list[str]) -> _Chat | None:
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        return None
    header = _LINE_HEADER_RE.match(nonblank[0].strip())
    msg_lines = sum(1 for ln in nonblank if _LINE_MSG_RE.match(ln))
    date_lines = sum(1 for ln in nonblank if _DATE_LINE_RE.match(ln.strip()))
    looks_like_line = date_lines >= 1 and msg_lines >= 2 and msg_lines * 2 >= len(nonblank)
    if header is None and not looks_like_line:
        return None
    if msg_lines == 0:
        return None
    chat = _Chat("line", header.group(1).strip() if header else None)
    date = ""
    last: _Msg | None = None
    for raw in lines:
        ln = raw.rstrip("\n")
        s = ln.strip()
        if not s:
            continue
        if header is not None and s == nonblank[0].strip():
            continue
        saved = _LINE_SAVED_RE.match(s)
        if saved and not chat.messages:
            chat.meta["saved_at"] = saved.group(2).strip()
            continue
        dm = _DATE_LINE_RE.match(s)
        if dm:
            date = _iso(dm.group(1), dm.group(2), dm.group(3))
            last = None
            continue
        mm = _LINE_MSG_RE.match(ln)
        if mm:
            last = _Msg(
                date, _hhmm(*mm.group(1, 2, 3, 4)), mm.group(5).strip() or None, mm.group(6).strip()
            )
            chat.messages.append(last)
            continue
        sm = _LINE_SYS_RE.match(ln)
        if sm:
            last = _Msg(date, _hhmm(*sm.group(1, 2, 3, 4)), None, sm.group(5).strip())
            chat.messages.append(last)
            continue
        if last is not None:  # a multi-line message continues
            last.text = join_wrapped_lines([last.text, s])
    return chat


def _parse_generic(lines: list[str]) -> _Chat | None:
    nonblank = [ln for ln in lines if ln.strip()]
    hits = [ln for ln in nonblank if _GENERIC_RE.match(ln.strip())]
    if len(hits) < 2 or len(hits) * 2 < len(nonblank):
        return None
    chat = _Chat("generic", None)
    last: _Msg | None = None
    for raw in nonblank:
        s = raw.strip()
        m = _GENERIC_RE.match(s)
        if m:
            last = _Msg(
                _iso(*m.group(1, 2, 3)),
                f"{int(m.group(4)):02d}:{m.group(5)}",
                m.group(6).strip(),
                m.group(7).strip(),
            )
            chat.messages.append(last)
        elif last is not None:
            last.text = join_wrapped_lines([last.text, s])
    return chat


def parse_chat(text: str, path: Path, meta: dict[str, object]) -> LoadedDocument | None:
    """A :class:`LoadedDocument` of kind ``chat`` when ``text`` is a chat export."""
    lines = text.split("\n")
    chat = _parse_line_export(lines) or _parse_generic(lines)
    if chat is None:
        return None
    blocks: list[Block] = []
    participants: dict[str, None] = {}
    by_date: dict[str, list[str]] = {}
    first_time: dict[str, list[str]] = {}
    for msg in chat.messages:
        body = _unquote(msg.text).strip()
        if not body or body in _DROP_PLACEHOLDERS:
            continue
        if msg.name:
            participants[msg.name] = None
            line = f"{msg.time} {msg.name}：{body}"
        else:
            line = f"{msg.time} {body}"
        by_date.setdefault(msg.date, []).append(line)
        first_time.setdefault(msg.date, []).append(msg.time)
    for date, msgs in by_date.items():
        times = first_time[date]
        for i in range(0, len(msgs), MESSAGES_PER_BLOCK):
            heading = (date,) if date else ()
            blocks.append(
                Block(
                    "\n".join(msgs[i : i + MESSAGES_PER_BLOCK]),
                    heading,
                    times[i],
                    None,
                    None,
                    "message",
                )
            )
    out_meta = dict(meta)
    out_meta.update(chat.meta)
    out_meta["chat_format"] = chat.fmt
    out_meta["participants"] = list(participants)
    dates = [d for d in by_date if d]
    if dates:
        out_meta["date_range"] = [min(dates), max(dates)]
    title = chat.title or stem_title(path)
    return LoadedDocument(title=title, kind="chat", blocks=blocks, meta=out_meta)
