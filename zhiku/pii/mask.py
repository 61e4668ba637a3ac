"""Replacement text for a finding: partial mask, type tag or keyed pseudonym.

* ``mask`` keeps a few characters so a person can still tell values apart in a
  support case (``A1*****789``, ``0912-***-678``, ``王○明``, ``w****@gmail.com``) and
  is **length-preserving**: every masked character becomes one ``*`` (``＊`` for a
  full-width one, ``○`` for a CJK one), separators stay, so offsets after the mask
  are unchanged.
* ``tag`` replaces the value with its type: 〔身分證字號〕.
* ``pseudonym`` replaces it with a keyed, consistent token: HMAC-SHA256 of the type and
  the *canonical* value (``0912-345-678`` and ``+886 912 345 678`` are one person)
  under the knowledge base's secret → 〔身分證字號#3fa9c1d2〕. Without the secret the
  token cannot be linked back to the value, even by trying every ID number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from zhiku.pii.fold import fold_width
from zhiku.pii.i18n import type_label

PSEUDONYM_HEX = 8  # 32 bits: collisions stay rare up to tens of thousands of values


def new_secret() -> bytes:
    """A fresh 32-byte key for a knowledge base's pseudonyms."""
    return secrets.token_bytes(32)


def _mask_char(ch: str) -> str:
    if "\uff01" <= ch <= "\uff5e":
        return "＊"
    if ch.isascii():
        return "*"
    return "○"


def _significant(value: str) -> list[int]:
    """Indices of the characters that carry the value (digits, letters, ideographs)."""
    return [i for i, ch in enumerate(value) if ch.isalnum()]


def _mask_positions(value: str, positions: list[int]) -> str:
    chars = list(value)
    for i in positions:
        chars[i] = _mask_char(chars[i])
    return "".join(chars)


def _keep(value: str, head: int, tail: int) -> str:
    """Mask the significant characters except the first ``head`` and last ``tail``.

    At least one character is always masked (half of them for short values).
    """
    sig = _significant(value)
    n = len(sig)
    if n == 0:
        return value
    if head + tail >= n:
        head = min(head, (n - 1) // 2)
        tail = min(tail, max(0, n - 1 - head) // 2)
    return _mask_positions(value, sig[head : n - tail])


_EXT_RE = re.compile(r"[ ]?(?:\#|轉|分機|ext\.?|EXT\.?|Ext\.?|x|X)[ ]?\d{1,6}$")
_ADDR_ROAD_END_RE = re.compile(r"(?:路|街|大道)(?:[一二三四五六七八九十\d]{1,2}段)?")
_ADDR_AREA_END_RE = re.compile(r"[區鄉鎮市縣]")
_ADDR_NUM_RE = re.compile(r"[0-9一二三四五六七八九十]")


def _mask_address(value: str) -> str:
    """Keep the city, district and road; mask every number after them (and the zip)."""
    folded = fold_width(value)
    cut = 0
    for m in _ADDR_ROAD_END_RE.finditer(folded):
        cut = m.end()
    if cut == 0:
        for m in _ADDR_AREA_END_RE.finditer(folded):
            cut = m.end()
    positions = [m.start() for m in _ADDR_NUM_RE.finditer(folded, cut)]
    head = re.match(r"\d+", folded)
    if head is not None:
        positions += list(range(3, head.end()))  # keep a 3-digit zip, mask the rest
    if not positions:
        return _keep(value, 0, 0)
    return _mask_positions(value, positions)


def _mask_name(value: str) -> str:
    if value.isascii():  # John Smith -> J*** S****
        return re.sub(r"(?<=[A-Za-z])[A-Za-z'\-]", "*", value)
    n = len(value)
    if n <= 1:
        return "○" * n
    if n == 2:
        return value[0] + "○"
    return value[0] + "○" * (n - 2) + value[-1]


def mask_value(value: str, type_: str) -> str:
    """The partially masked form of ``value`` (same length, never equal to it)."""
    masked = _mask_by_type(value, type_)
    if masked == value:  # a value too short to keep anything of
        masked = _mask_positions(value, _significant(value))
    return masked


def _mask_by_type(value: str, type_: str) -> str:
    if type_ in ("tw_id", "arc"):
        return _keep(value, 2, 3)
    if type_ == "mobile":
        n = len(_significant(value))
        return _keep(value, max(1, n - 6), 3)
    if type_ == "landline":
        ext = _EXT_RE.search(value)
        main, rest = (value[: ext.start()], value[ext.start() :]) if ext else (value, "")
        n = len(_significant(main))
        return _keep(main, max(1, n - 6), 2) + rest
    if type_ == "email":
        at = value.find("@")
        if at <= 0:
            return _keep(value, 1, 0)
        local = value[:at]
        if len(local) == 1:
            return _mask_char(local) + value[at:]
        return local[0] + "".join(_mask_char(c) for c in local[1:]) + value[at:]
    if type_ in ("credit_card", "nhi_card", "bank_account"):
        return _keep(value, 0, 4)
    if type_ == "ubn":
        return _keep(value, 2, 2)
    if type_ == "passport":
        return _keep(value, 1, 3)
    if type_ == "birthday":
        return _mask_positions(value, [i for i, c in enumerate(value) if c.isdigit()])
    if type_ == "address":
        return _mask_address(value)
    if type_ == "name":
        return _mask_name(value)
    return _keep(value, 1, 1)


_SEP_RE = re.compile(r"[\s\-().]")


def canonical(value: str, type_: str) -> str:
    """The form two spellings of one value share (for pseudonyms)."""
    v = unicodedata.normalize("NFKC", value).strip()
    if type_ in ("tw_id", "arc", "passport"):
        return _SEP_RE.sub("", v).upper()
    if type_ in ("ubn", "credit_card", "nhi_card", "bank_account"):
        return re.sub(r"\D", "", v)
    if type_ in ("mobile", "landline"):
        ext = _EXT_RE.search(v)
        main, tail = (v[: ext.start()], re.sub(r"\D", "", v[ext.start() :])) if ext else (v, "")
        digits = re.sub(r"\D", "", main)
        if main.lstrip().startswith("+") or digits.startswith("886") and len(digits) > 10:
            digits = "0" + digits[3:].lstrip("0")
        return digits + ("#" + tail if tail else "")
    if type_ == "email":
        return v.lower()
    if type_ == "birthday":
        nums = [int(x) for x in re.findall(r"\d+", v)]
        if len(nums) == 3:
            y, m, d = nums
            if y < 1000 and nums[2] >= 1900:
                y, m, d = nums[2], nums[1], nums[0]
            elif y < 1000:
                y += 1911
            return f"{y:04d}-{m:02d}-{d:02d}"
        return v
    if type_ == "address":
        return re.sub(r"\s", "", v).replace("台", "臺")
    return re.sub(r"\s+", " ", v)


def pseudonym(value: str, type_: str, secret: bytes, *, lang: str = "zh-TW") -> str:
    """〔身分證字號#3fa9c1d2〕: the same value and secret always give the same token."""
    msg = f"{type_}\x1f{canonical(value, type_)}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
    return f"〔{type_label(type_, lang)}#{digest}〕"


def tag(type_: str, *, lang: str = "zh-TW") -> str:
    """〔身分證字號〕"""
    return f"〔{type_label(type_, lang)}〕"
