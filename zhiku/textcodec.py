"""The one text decoder: encoding detection for plain-text files (txt, csv, html, md…).

``zhiku ingest`` (the loaders) and ``zhiku pii scan`` / ``redact`` read bytes through
:func:`decode_bytes`, so a file one accepts the other accepts too; :func:`encode_like`
writes text back in the encoding it was read in (byte-order mark included).

Order: byte-order mark → strict UTF-8 → BOM-less UTF-16 (NUL bytes on one parity) →
cp950 / Big5-HKSCS when the strict decode is mostly CJK (GB18030 is preferred only
when charset-normalizer says so for bytes valid in both) → charset-normalizer.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from charset_normalizer import from_bytes

from zhiku.errors import LoadError

_CJKISH_RE = re.compile(
    "[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\u2010-\u2027\u2030-\u205e\u2190-\u25ff\U00020000-\U0003134f]"
)
_BAD_CTRL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


def _mostly_cjk(text: str) -> bool:
    """Non-ASCII characters are overwhelmingly CJK ideographs / punctuation."""
    non_ascii = [c for c in text if ord(c) > 0x7F]
    if not non_ascii:
        return False
    cjk = sum(1 for c in non_ascii if _CJKISH_RE.match(c))
    return cjk / len(non_ascii) >= 0.9


def _clean_enough(text: str) -> bool:
    """Few control characters or replacement marks: real text, not a mis-decode."""
    if not text:
        return True
    bad = len(_BAD_CTRL_RE.findall(text))
    return bad / len(text) < 0.01


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


_PLAIN_RE = re.compile(
    "[\t\n\r\x20-\x7e\u00a0-\u024f\u2010-\u2027\u2030-\u205e\u3000-\u303f"
    "\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"
)


def _plain_ratio(text: str) -> float:
    if not text:
        return 0.0
    return len(_PLAIN_RE.findall(text)) / len(text)


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NUL bytes present, and one byte order decodes to text."""
    if data.count(0) == 0 or len(data) % 2:
        return None
    best: tuple[tuple[float, int], str, str] | None = None
    for enc in ("utf-16-le", "utf-16-be"):
        text = _strict(data, enc)
        if text is None:
            continue
        # Ties on plausibility go to the order whose NUL bytes decode as ASCII.
        score = (_plain_ratio(text), sum(1 for c in text if c < "\x80"))
        if best is None or score > best[0]:
            best = (score, text, enc)
    if best is None or best[0][0] < 0.95 or not _clean_enough(best[1]):
        return None
    return best[1], best[2]


def _chinese_legacy(data: bytes) -> tuple[str, str] | None:
    big5 = _strict(data, "cp950")
    big5_enc = "cp950"
    if big5 is None:
        big5 = _strict(data, "big5hkscs")
        big5_enc = "big5hkscs"
    gb = _strict(data, "gb18030")
    if big5 is None or not _mostly_cjk(big5) or not _clean_enough(big5):
        # Not Big5 at all: GB18030 when that decodes strictly to Chinese text.
        if big5 is None and gb is not None and _mostly_cjk(gb) and _clean_enough(gb):
            return gb, "gb18030"
        return None
    if gb is not None and _mostly_cjk(gb):
        # Bytes valid in both: let charset-normalizer's language model arbitrate.
        best = from_bytes(data, cp_isolation=["cp950", "gb18030"]).best()
        if best is not None and best.encoding.replace("_", "") == "gb18030":
            return gb, "gb18030"
    return big5, big5_enc


def decode_bytes(data: bytes, path: Path, preferred: str | None = None) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    ``preferred`` (e.g. from an HTML ``<meta charset>``) is tried right after the BOM.
    Raises :class:`LoadError` with reason ``encoding`` when no decoding is plausible.
    """
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            text = _strict(data[len(bom) :], enc)
            if text is not None:
                return text, enc + ("-sig" if enc == "utf-8" else "")
            break
    if preferred:
        named = _normalize_encoding_name(preferred)
        if named:
            text = _strict(data, named)
            if text is not None and _clean_enough(text):
                return text, named
    text = _strict(data, "utf-8")
    if text is not None and _clean_enough(text):
        return text, "utf-8"
    found = _utf16_without_bom(data)
    if found:
        return found
    found = _chinese_legacy(data)
    if found:
        return found
    best = from_bytes(data).best()
    if best is not None:
        text = str(best)
        if text.strip() and _clean_enough(text):
            return text, best.encoding
    raise LoadError(
        str(path),
        "encoding",
        "無法辨識檔案的文字編碼（不是 UTF-8、UTF-16 或 Big5），可能是二進位檔或已損毀；"
        "請另存為 UTF-8 後再匯入",
    )


def _normalize_encoding_name(name: str) -> str | None:
    name = name.strip().strip("\"'").lower()
    aliases = {
        "big5": "cp950",
        "big-5": "cp950",
        "x-x-big5": "cp950",
        "cn-big5": "cp950",
        "big5-hkscs": "big5hkscs",
        "gb2312": "gb18030",
        "gbk": "gb18030",
        "x-gbk": "gb18030",
        "utf8": "utf-8",
        "unicode": "utf-16",
    }
    name = aliases.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def encode_like(text: str, encoding: str, original: bytes) -> bytes:
    """``text`` encoded as :func:`decode_bytes` found ``original`` to be: the same
    encoding and, for UTF-16/32, the same byte-order mark (``utf-8-sig`` writes its own).
    Text the encoding cannot hold (a legacy code page) is written as UTF-8 with a BOM."""
    bom = next((b for b, enc in _BOMS if enc == encoding and original.startswith(b)), b"")
    try:
        return bom + text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8-sig")
