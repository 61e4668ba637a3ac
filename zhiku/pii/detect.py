"""Find personal data in text: type, position, value and confidence.

Detection runs on a width-folded copy of the text (:func:`zhiku.pii.fold.fold_width`,
same length), so offsets always point into the caller's original string, full-width
digits included. It is built for the ingestion path:

1. one compiled regex pass finds every identifier *shape* (IDs, phone numbers,
   grouped digits, dates, bare digit runs); only those candidates are validated
   (checksums, area codes, card prefixes) and weighed against the nearest context word
   before them (「統編」「手機」「帳號」「護照」「訂單編號」…);
2. literal-anchored passes handle what has no digit-first shape: e-mail (``@``),
   addresses (a number before 「號」, parsed backwards), names (labels, role words,
   honorifics, chat speakers).

Confidence, roughly the probability that a finding is right:

=====================================================  ==========
checksum valid (ID, ARC, card with issuer prefix)        0.95–0.99
UBN with a context word (統編, 公司, 發票…)                  0.97
phone number of a valid shape                           0.90–0.99
context-only types (passport, NHI, account, birthday)   0.85–0.95
address with city/district + road + number              0.95
name after a label (姓名：) / before 先生・小姐 / after 客戶   0.60–0.90
bare 8-digit number passing the UBN rule, no context         0.30
shape of an ID / card / UBN with a *wrong* checksum          0.20
a surname alone before 先生 / 小姐                             0.40
=====================================================  ==========

The default threshold (0.5) therefore drops wrong checksums, context-less 8-digit
numbers and lone surnames; pass ``min_confidence=0.2`` to see them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from zhiku.lazyre import lazy
from zhiku.pii import _data
from zhiku.pii.fold import fold_width
from zhiku.pii.pii_types import BUSINESS_SUBTYPES, TYPES
from zhiku.pii.validators import (
    arc_new_valid,
    arc_old_valid,
    card_valid,
    landline_valid,
    luhn_valid,
    plausible_date,
    tw_id_valid,
    ubn_valid,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: ``text[start:end] == value`` in the original text.

    ``subtype`` refines the type: ``role`` / ``personal`` for e-mail, ``tollfree`` /
    ``service`` / ``plain`` for landlines, ``business`` / ``home`` for addresses,
    ``old`` / ``new`` for resident certificates, ``surname`` for a lone surname and
    ``bad_checksum`` for an identifier shape whose check digit is wrong.
    """

    type: str
    start: int
    end: int
    value: str
    confidence: float
    subtype: str | None = None

    @property
    def business(self) -> bool:
        """An organisation's contact point (kept by the default policy)."""
        return self.subtype in BUSINESS_SUBTYPES

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "confidence": round(self.confidence, 2),
            "subtype": self.subtype,
        }


# A candidate: (start, end, type, confidence, subtype)
_Cand = tuple[int, int, str, float, str | None]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


# --- context words -------------------------------------------------------------------

_CTX_WORDS: dict[str, tuple[str, ...]] = {
    "tw_id": (
        "身分證統一編號", "身分證字號", "身份證字號", "身分證號碼", "身份證號碼", "身分證號",
        "身份證號", "國民身分證", "身分證", "身份證", "證號", "字號", "National ID", "ID No",
        "ID",
    ),
    "arc": ("居留證統一證號", "居留證號", "統一證號", "居留證", "居留", "外僑", "ARC No", "ARC"),
    "ubn": (
        "統一編號", "統一編碼", "營利事業", "統編", "發票抬頭", "抬頭", "買受人", "買方", "賣方",
        "扣繳單位", "扣繳", "稅籍", "商號", "行號", "公司", "企業", "廠商", "UBN", "VAT No",
        "VAT", "Tax ID", "BAN",
    ),
    "phone": (
        "行動電話", "手機號碼", "電話號碼", "聯絡電話", "連絡電話", "室內電話", "住家電話",
        "手機", "電話", "市話", "專線", "總機", "傳真", "分機", "來電", "致電", "回電", "撥打",
        "打給", "聯繫", "聯絡", "連絡", "門號", "簡訊", "Tel", "Mobile", "Phone", "Cell",
        "Fax", "Hotline",
    ),
    "credit_card": (
        "信用卡號", "信用卡", "卡號", "刷卡", "簽帳卡", "金融卡", "Visa", "MasterCard",
        "Master", "JCB", "美國運通", "AMEX", "銀聯", "Card No", "Card",
    ),
    "nhi_card": ("健保卡號", "健保IC卡", "健保卡", "健保", "NHI"),
    "passport": ("護照號碼", "護照號", "護照", "旅行證件", "Passport No", "Passport"),
    "bank_account": (
        "銀行帳號", "匯款帳號", "轉帳帳號", "帳戶", "帳號", "戶頭", "存簿", "存摺", "銀行",
        "郵局", "匯款", "轉帳", "匯入", "匯至", "分行", "劃撥", "ATM", "Account No",
        "Account", "Acct", "A/C",
    ),
    "birthday": (
        "出生年月日", "出生日期", "出生", "生日", "生於", "DOB", "Date of Birth", "Birthday",
        "Birth date", "Born",
    ),
    "neg": (
        "訂單編號", "訂單號碼", "訂單", "單號", "編號", "序號", "料號", "型號", "品號", "貨號",
        "批號", "條碼", "追蹤碼", "追蹤號碼", "追蹤", "物流", "包裹", "貨運", "發票號碼",
        "商品", "產品", "案號", "文號", "工單", "收據", "票號", "車號", "車牌", "座號", "房號",
        "金額", "價格", "售價", "總計", "合計", "小計", "共計", "數量", "餘額", "費用", "NT$",
        "NTD", "TWD", "$", "SKU", "P/N", "PN", "Order", "Invoice", "Tracking", "Ref",
        "Serial", "S/N", "SN", "Model", "Item", "No.", "版本", "Version", "IP",
    ),
}  # fmt: skip

_CTX_LOOKUP: dict[str, str] = {}
for _kind, _words in _CTX_WORDS.items():
    for _w in _words:
        _CTX_LOOKUP.setdefault(fold_width(_w).lower(), _kind)
_ALL_CTX = [w for words in _CTX_WORDS.values() for w in words]


def _is_latin(word: str) -> bool:
    return word.isascii() and word[:1].isalpha()


def _word_alt(words: Iterable[str]) -> str:
    """An alternation, longest first; Latin words get letter boundaries."""
    parts = []
    for w in sorted(set(words), key=len, reverse=True):
        esc = re.escape(fold_width(w))
        if w[:1].isascii() and w[:1].isalpha():
            esc = rf"(?<![A-Za-z]){esc}"
        if w[-1:].isascii() and w[-1:].isalpha():
            esc = rf"{esc}(?![A-Za-z])"
        parts.append(esc)
    return "|".join(parts)


# CJK / symbol words form a plain literal alternation (the regex engine then skips
# ahead on its first characters); Latin words need letter boundaries and no case.
_CTX_CJK_RE = lazy(_word_alt(w for w in _ALL_CTX if not _is_latin(w)))
_CTX_LATIN_RE = lazy(_word_alt(w for w in _ALL_CTX if _is_latin(w)), re.IGNORECASE)
_ASCII_LETTER_RE = lazy("[A-Za-z]")
_CTX_WIDTH = 24


def _nearest_ctx(n: str, s: int, width: int = _CTX_WIDTH, floor: int = 0) -> str | None:
    """The kind of the context word closest before ``s``: within ``width`` characters,
    on the same line and after ``floor`` (the end of the previous identifier, whose
    label it would be: 「ARC No. SB42194898，電話 …」)."""
    lo = max(floor, s - width, n.rfind("\n", max(0, s - width), s) + 1)
    best = None
    best_end = -1
    for best in _CTX_CJK_RE.finditer(n, lo, s):  # noqa: B007
        pass
    if best is not None:
        best_end = best.end()
    if _ASCII_LETTER_RE.search(n, max(lo, best_end), s):
        last = None
        for last in _CTX_LATIN_RE.finditer(n, max(lo, best_end), s):  # noqa: B007
            pass
        if last is not None:
            best = last
    if best is None:
        return None
    return _CTX_LOOKUP.get(best.group().lower())


_UNIT_AFTER_RE = lazy(
    r"[ ]?(?:元|塊|萬|億|%|円|美元|台幣|臺幣|件|個|張|次|天|年|歲|公斤|公里|公分|kg|km|cm|mm|"
    r"GB|MB|KB|ms|筆|人|位|箱|盒|包)"
)
_SERVICE_LINE_RE = lazy(
    "客服|專線|總機|服務|公司|傳真|門市|櫃台|櫃檯|辦公室|訂位|預約|熱線|洽詢|諮詢|中心|單位|"
    "機關|分行|分店|學校|醫院|診所|銀行|協會|基金會|Hotline|hotline|Fax|fax|免付費"
)

# --- the combined identifier pass ------------------------------------------------------

_EXT = r"(?:[ ]?(?:\#|轉|分機|ext\.?|EXT\.?|Ext\.?|x|X)[ ]?\d{1,6})?"
_LEFT = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z][\-_])(?<![0-9][.])"
_RIGHT = r"(?![0-9A-Za-z])(?![\-_][0-9A-Za-z])(?![.][0-9])"
_MAIN_RE = lazy(
    r"(?=[0-9A-Za-z+(])" + _LEFT + "(?:"
    r"(?P<intl>\+?886[ \-]?(?:\(0\)[ \-]?)?"
    r"(?:9\d{2}[ \-.]?\d{3}[ \-.]?\d{3}|[2-8]\d{0,3}[ \-]?\d{3,4}[ \-]?\d{3,4}" + _EXT + "))"
    r"|(?P<idl>[A-Za-z][0-9A-Da-d]\d{8})"
    r"|(?P<pp>[A-Za-z]{1,2}\d{6,8})"
    r"|(?P<grp>\d{4}(?:[ \-]\d{4}){2,3}(?:[ \-]\d{1,3})?|\d{4}[ \-]\d{6}[ \-]\d{4,5})"
    r"|(?P<mob>\(09\d{2}\)[ ]?\d{3}[ \-.]?\d{3}|09\d{2}[ \-.]?\d{3}[ \-.]?\d{3}"
    r"|09\d{2}[ \-.]\d{6})"
    r"|(?P<tf>080[09][ \-]?\d{3}[ \-]?\d{3}|080[09][ \-]\d{2}[ \-]\d{4})"
    r"|(?P<land>(?:\((?P<ac1>0[2-8]\d{0,3})\)[ ]?|(?P<ac2>0[2-8]\d{0,3})[ \-])"
    r"\d{2,4}[ \-]?\d{3,4}" + _EXT + r"|0[2-8]\d{7,8}" + _EXT + ")"
    r"|(?P<date>(?:19|20)\d{2}(?P<s1>[\-/.])\d{1,2}(?P=s1)\d{1,2}"
    r"|(?:19|20)\d{2}[ ]?年[ ]?\d{1,2}[ ]?月[ ]?\d{1,2}[ ]?日?"
    r"|\d{2,3}(?P<s2>[\-/.])\d{1,2}(?P=s2)\d{1,2}"
    r"|\d{2,3}[ ]?年[ ]?\d{1,2}[ ]?月[ ]?\d{1,2}[ ]?日?"
    r"|\d{1,2}/\d{1,2}/(?:19|20)\d{2})"
    r"|(?P<dash>\d{1,14}(?:-\d{1,14}){1,4})"
    r"|(?P<bare>\d{7,19})"
    ")" + _RIGHT
)
_DIGITS_RE = lazy(r"\d+")
_EXT_SPLIT_RE = lazy(r"[ ]?(?:\#|轉|分機|ext\.?|EXT\.?|Ext\.?|x|X)[ ]?\d{1,6}$")


def _digits(s: str) -> str:
    return "".join(_DIGITS_RE.findall(s))


def _classify(n: str, m: re.Match[str], floor: int = 0) -> _Cand | None:
    """Validate one shape found by the main pass and weigh it against its context."""
    kind = m.lastgroup
    s, e = m.span()
    span = m.group()
    if kind == "idl":
        value = span.upper()
        c2 = value[1]
        if c2 in "12":
            ok, typ, sub = tw_id_valid(value), "tw_id", None
        elif c2 in "89":
            ok, typ, sub = arc_new_valid(value), "arc", "new"
        elif c2 in "ABCD":
            ok, typ, sub = arc_old_valid(value), "arc", "old"
        else:
            return None
        ctx = _nearest_ctx(n, s, floor=floor)
        if not ok:
            return (s, e, typ, 0.2 if ctx != "neg" else 0.05, "bad_checksum")
        if ctx == "neg":
            return (s, e, typ, 0.4, sub)
        if ctx == "passport" and typ == "tw_id":
            return (s, e, "passport", 0.9, None)
        return (s, e, typ, 0.99 if ctx in ("tw_id", "arc") else 0.97, sub)

    if kind == "pp":
        if _nearest_ctx(n, s, floor=floor) == "passport":
            return (s, e, "passport", 0.9, None)
        return None

    if kind == "mob":
        ctx = _nearest_ctx(n, s, floor=floor)
        if ctx == "neg":
            return (s, e, "mobile", 0.35, None)
        if ctx == "bank_account" and span.isdigit():
            return (s, e, "bank_account", 0.85, None)
        if ctx == "phone":
            return (s, e, "mobile", 0.99, None)
        return (s, e, "mobile", 0.9 if span.isdigit() else 0.95, None)

    if kind == "intl":
        digits = _digits(_EXT_SPLIT_RE.sub("", span))
        national = "0" + digits[3:].lstrip("0")
        ctx = _nearest_ctx(n, s, floor=floor)
        plus = span[0] == "+"
        if plus or ctx not in ("neg", "bank_account"):
            conf = 0.97 if plus or ctx == "phone" else 0.6
            if national.startswith("09"):
                return (s, e, "mobile", conf, None) if len(national) == 10 else None
            if not landline_valid(None, national):
                return None
            return (s, e, "landline", conf, _landline_subtype(n, s, span))
        if not span.replace(" ", "").replace("-", "").isdigit():
            return None
        kind = "bare" if span.isdigit() else "dash"  # 886…: an account number, not +886

    if kind == "tf":
        return (s, e, "landline", 0.95, "tollfree")

    if kind == "land":
        area = m.group("ac1") or m.group("ac2")
        main = _EXT_SPLIT_RE.sub("", span)
        if landline_valid(area, _digits(main)):
            ctx = _nearest_ctx(n, s, floor=floor)
            if ctx == "neg":
                return (s, e, "landline", 0.3, None)
            if area is None and ctx == "bank_account":
                return (s, e, "bank_account", 0.85, None)
            if ctx == "phone":
                conf = 0.97
            elif area is None:
                conf = 0.6
            else:
                conf = 0.9
            return (s, e, "landline", conf, _landline_subtype(n, s, span))
        if main != span or "(" in span:
            return None
        kind = "bare" if span.isdigit() else "dash"  # 0860570790: an account number?

    if kind == "date":
        return _birthday(n, s, e, span, floor)

    digits = _digits(span)
    nd = len(digits)

    if kind == "grp":
        ctx = _nearest_ctx(n, s, floor=floor)
        if nd == 12:
            return _nhi(s, e, digits, ctx, grouped=True)
        return _card_or_account(s, e, digits, ctx, grouped=True)

    if kind == "dash":
        ctx = _nearest_ctx(n, s, floor=floor)
        if ctx == "bank_account" and 8 <= nd <= 16:
            return (s, e, "bank_account", 0.9, None)
        if ctx == "passport" and nd == 9 and "-" not in span:
            return (s, e, "passport", 0.9, None)
        return None

    # bare digit run
    if _UNIT_AFTER_RE.match(n, e):
        return None
    ctx = _nearest_ctx(n, s, floor=floor)
    if nd == 8:
        if ctx == "birthday":
            found = _birthday(n, s, e, span, floor)
            if found:
                return found
        if ubn_valid(digits):
            if ctx == "ubn":
                return (s, e, "ubn", 0.97, None)
            if ctx == "neg":
                return None
            return (s, e, "ubn", 0.3, None)
        if ctx == "ubn":
            return (s, e, "ubn", 0.2, "bad_checksum")
        return None
    if nd == 7:
        return _birthday(n, s, e, span, floor)
    if ctx == "passport" and nd == 9:
        return (s, e, "passport", 0.9, None)
    if nd == 12:
        return _nhi(s, e, digits, ctx, grouped=False)
    if nd >= 13:
        return _card_or_account(s, e, digits, ctx, grouped=False)
    if ctx == "bank_account" and 9 <= nd <= 16:
        return (s, e, "bank_account", 0.9, None)
    return None


def _landline_subtype(n: str, s: int, span: str) -> str:
    if _EXT_SPLIT_RE.search(span) or _SERVICE_LINE_RE.search(n, max(0, s - 30), s):
        return "service"
    return "plain"


def _nhi(s: int, e: int, digits: str, ctx: str | None, *, grouped: bool) -> _Cand | None:
    if ctx == "nhi_card":
        return (s, e, "nhi_card", 0.95, None)
    if ctx == "bank_account":
        return (s, e, "bank_account", 0.85, None)
    if ctx == "neg":
        return None
    if digits.startswith("0000"):
        return (s, e, "nhi_card", 0.6 if grouped else 0.55, None)
    return (s, e, "nhi_card", 0.25, None) if grouped else None


def _card_or_account(
    s: int, e: int, digits: str, ctx: str | None, *, grouped: bool
) -> _Cand | None:
    nd = len(digits)
    if ctx == "bank_account" and nd <= 16:
        return (s, e, "bank_account", 0.9, None)
    if card_valid(digits):
        if ctx == "credit_card":
            return (s, e, "credit_card", 0.99, None)
        if ctx == "neg":
            return (s, e, "credit_card", 0.4, None)
        return (s, e, "credit_card", 0.95 if grouped else 0.9, None)
    if ctx == "credit_card" and not luhn_valid(digits):
        return (s, e, "credit_card", 0.2, "bad_checksum")
    if grouped and nd == 16 and ctx != "neg":
        return (s, e, "credit_card", 0.2, "bad_checksum")
    return None


_DATE_PARTS_RE = lazy(r"\d+")
_BORN_AFTER_RE = lazy(r"[ ]?(?:生|出生)(?![效產成活意病])")


_BDAY_HINT_RE = lazy(r"生|(?i:dob|birth|born)")


def _birthday(n: str, s: int, e: int, span: str, floor: int = 0) -> _Cand | None:
    if not _BDAY_HINT_RE.search(n, max(0, s - 16), e + 2):
        return None
    ctx = _nearest_ctx(n, s, 16, floor)
    after = _BORN_AFTER_RE.match(n, e) is not None
    if ctx != "birthday" and not after:
        return None
    parts = [int(p) for p in _DATE_PARTS_RE.findall(span)]
    roc = False
    if len(parts) == 1:  # 19850312 / 0740312 / 740312
        digits = span
        if len(digits) == 8:
            parts = [int(digits[:4]), int(digits[4:6]), int(digits[6:])]
        elif len(digits) == 7:
            parts, roc = [int(digits[:3]), int(digits[3:5]), int(digits[5:])], True
        else:
            return None
    if len(parts) != 3:
        return None
    y, mo, d = parts
    if y < 1000 and "/" in span and parts[2] >= 1900:  # 12/03/1985 (day or month first)
        y, mo, d = parts[2], parts[1], parts[0]
        if not plausible_date(y, mo, d):
            mo, d = d, mo
    elif y < 1000:
        roc = True
    if not plausible_date(y, mo, d, roc=roc):
        return None
    start = s - 2 if roc and n[max(0, s - 2) : s] == "民國" else s
    return (start, e, "birthday", 0.9 if ctx == "birthday" else 0.85, None)


# --- e-mail ----------------------------------------------------------------------------

_LOCAL_REV_RE = lazy(r"[A-Za-z0-9._%+\-]{1,64}")
_DOMAIN_RE = lazy(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_CJK_ROLE_LOCALS = tuple(
    sorted((w for w in _data.ROLE_MAILBOXES if not w.isascii()), key=len, reverse=True)
)
_LOCAL_SPLIT_RE = lazy(r"[._+\-\d]+")
_ROLE_QUALIFIERS = frozenset(
    {"tw", "taiwan", "hq", "team", "dept", "group", "center", "centre", "global", "asia",
     "apac", "www", "main", "official", "online", "web", "taipei", "taichung", "kaohsiung",
     "tainan", "hsinchu", "north", "south", "east", "west", "central", "zh", "en", "cn",
     "jp", "us", "local", "desk", "line", "svc", "corp", "co", "inc", "ltd", "gov", "org",
     "dev", "ops", "system", "sys", "auto", "bot", "notify", "notification",
     "notifications", "alert", "alerts", "mailer", "daemon", "bounce", "bounces", "email",
     "care", "zone", "hub", "all", "general"}
)  # fmt: skip


def email_subtype(local: str, domain: str) -> str:
    """``role`` for an organisation's mailbox, else ``personal``.

    Role: the domain is not a free / consumer mail provider, and the local part is a
    role word (service, info, support, contact, hr, noreply, 客服…), alone or with
    qualifiers only (``service.tw``, ``tw-support``, ``info2``). ``sales.wang@`` or
    ``service@gmail.com`` are personal.
    """
    d = domain.lower()
    for free in _data.FREE_MAIL_DOMAINS:
        if d == free or d.endswith("." + free):
            return "personal"
    low = local.lower()
    if low in _data.ROLE_MAILBOXES:
        return "role"
    tokens = [t for t in _LOCAL_SPLIT_RE.split(low) if t]
    roles = _data.ROLE_MAILBOXES
    if any(t in roles for t in tokens) and all(t in roles or t in _ROLE_QUALIFIERS for t in tokens):
        return "role"
    return "personal"


def _emails(n: str, out: list[_Cand]) -> None:
    i = n.find("@")
    while i != -1:
        dm = _DOMAIN_RE.match(n, i + 1)
        if dm is not None:
            lo = max(0, i - 64)
            lm = _LOCAL_REV_RE.match(n[lo:i][::-1])
            local = lm.group()[::-1].lstrip(".") if lm else ""
            if not local:
                before = n[max(0, i - 4) : i]
                local = next((w for w in _CJK_ROLE_LOCALS if before.endswith(w)), "")
            if local and not local.endswith("."):
                s = i - len(local)
                e = dm.end()
                out.append((s, e, "email", 0.99, email_subtype(local, dm.group())))
                i = n.find("@", e)
                continue
        i = n.find("@", i + 1)


# --- addresses -------------------------------------------------------------------------

_CN_NUM = "一二三四五六七八九十"
_ASTOP = "".join(sorted(_data.ADDRESS_STOP_CHARS))
_N = rf"(?:(?![{_ASTOP}])[{_CJK}])"  # a character of a place name
_RN = rf"(?:(?![{_ASTOP}區鄉鎮])[{_CJK}\d])"  # a character of a road name
# The numeric tail before 「號」, read backwards: number, 弄, 巷, 段.
_ADDR_TAIL_REV_RE = lazy(
    r"(?P<num>\d{1,5}(?:[之\-]\d{1,5})?)[ ]?(?:弄\d{1,4}[ ]?)?(?:巷\d{1,4}[ ]?)?"
    rf"(?P<duan>段[{_CN_NUM}\d]{{1,2}}[ ]?)?"
)
_SHORT_CITIES = sorted({c[:2] for c in _data.CITIES} | {"臺北", "台北", "馬祖"}, key=len)
_ADDR_CITY_RE = lazy(
    "|".join(sorted(_data.CITIES, key=len, reverse=True))
    + "|(?:"
    + "|".join(_SHORT_CITIES)
    + rf")(?={_N}{{1,3}}[區鄉鎮市])"
)
_AREA_BODY = (
    rf"(?:(?P<dist>{_N}{{1,3}}?[區鄉鎮市]區?)[ ]?)?"
    rf"(?:(?P<vil>{_N}{{1,3}}[里村])[ ]?)?"
    r"(?P<lin>\d{1,3}鄰[ ]?)?"
)
_AFTER_CITY_ROAD_RE = lazy(rf"[ ]?{_AREA_BODY}(?P<road>{_N}{_RN}{{0,5}})")
_AFTER_CITY_RE = lazy(rf"[ ]?{_AREA_BODY}")
_NO_CITY_ROAD_RE = lazy(rf"{_AREA_BODY}(?P<road>{_N}{_RN}{{0,5}})$")
_NO_CITY_RE = lazy(rf"{_AREA_BODY}$")
_ZIP_REV_RE = lazy(r"[ ]?\d{3}(?:\d{2,3})?(?![0-9])")
_ADDR_TAIL_RE = lazy(
    rf"(?:之\d{{1,3}})?(?:[ ,]?(?:\d{{1,3}}|[{_CN_NUM}]{{1,3}}|B\d)[樓F](?:之\d{{1,3}})?)?"
    r"(?:[ ]?\d{1,4}室)?"
)
_ADDR_BIZ_RE = lazy("|".join(map(re.escape, _data.ADDRESS_BUSINESS_WORDS)))
_ADDR_HOME_RE = lazy("|".join(map(re.escape, _data.ADDRESS_HOME_WORDS)))
_ADDR_CTX_RE = lazy(_word_alt(_data.ADDRESS_WORDS), re.IGNORECASE)


def _addresses(n: str, out: list[_Cand]) -> None:
    i = n.find("號")
    while i != -1:
        if i > 0 and "0" <= n[i - 1] <= "9":
            cand = _address_at(n, i)
            if cand is not None:
                out.append(cand)
        i = n.find("號", i + 1)


def _parse_area(n: str, left: int, road: bool) -> tuple[int, re.Match[str], bool] | None:
    """Parse ``[city][district][village][鄰][road name]`` ending at ``left``.

    Returns the start, the match (groups dist / vil / lin / road) and whether a city
    was found. A city found in the window is preferred to a shorter parse without it.
    """
    lo = max(0, left - 32)
    for cm in _ADDR_CITY_RE.finditer(n, lo, left):
        rx = _AFTER_CITY_ROAD_RE if road else _AFTER_CITY_RE
        m = rx.fullmatch(n, cm.end(), left)
        if m is not None:
            return cm.start(), m, True
    rx = _NO_CITY_ROAD_RE if road else _NO_CITY_RE
    m = rx.search(n, max(0, left - 16), left)
    if m is None or m.start() == left:
        return None
    return m.start(), m, False


def _address_at(n: str, i: int) -> _Cand | None:
    """An address whose house number ends with the 「號」 at ``i``."""
    tail = _ADDR_TAIL_REV_RE.match(n[max(0, i - 24) : i][::-1])
    if tail is None:
        return None
    p = i - tail.end()
    if p >= 1 and n[p - 1] in "路街":
        q = p - 1
    elif n[max(0, p - 2) : p] == "大道":
        q = p - 2
    else:
        q = -1
    road = q >= 0
    if not road and tail.group("duan"):
        return None
    parsed = _parse_area(n, q if road else p, road)
    if parsed is None:
        return None
    start, m, city = parsed
    area = city or m.group("dist") is not None
    vil = m.group("vil") is not None or m.group("lin") is not None
    if road:
        if area:
            conf = 0.95
        elif vil:
            conf = 0.9
        else:
            conf = 0.7
    elif area and vil:
        conf = 0.85
    else:
        return None
    z = _ZIP_REV_RE.match(n[max(0, start - 7) : start][::-1])
    if z is not None:
        start -= z.end()
    while n[start] == " ":
        start += 1
    if n[start] == "至" and start > 0 and n[start - 1] in "寄送搬遷移轉":
        start += 1
    after = _ADDR_TAIL_RE.match(n, i + 1)
    end = after.end() if after else i + 1
    win = max(0, start - 20)
    if conf < 0.9 and _ADDR_CTX_RE.search(n, win, start):
        conf = 0.85
    biz = [x.end() for x in _ADDR_BIZ_RE.finditer(n, win, start)]
    home = [x.end() for x in _ADDR_HOME_RE.finditer(n, win, start)]
    sub = "business" if biz and (not home or biz[-1] > home[-1]) else "home"
    return (start, end, "address", conf, sub)


# --- names -----------------------------------------------------------------------------

_HONORIFIC_RE = lazy("|".join(_data.HONORIFICS))
_LABEL_RE = lazy(
    "(?:"
    + _word_alt(w for w in _data.NAME_LABELS if not _is_latin(w))
    + r")[ \t]*(?:(?P<colon>[:=])|為|是)?[ \t]*"
)
# 「Name:」 / 「Full name:」: found by its letters (fast), the boundary checked after.
_LATIN_LABEL_RE = lazy(r"[Nn][Aa][Mm][Ee](?![A-Za-z])[ \t]*(?P<colon>[:=])?[ \t]*")
_ROLE_RE = lazy("(?:" + "|".join(_data.NAME_ROLES) + r")[ \t]*(?P<colon>:)?[ \t]*")
_SPEAKER_RE = lazy(
    r"^[ \t]*(?:\[[^\]\n]{1,40}\][ \t]*|\d{2,4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d{2}"
    rf"(?::\d{{2}})?[ \t]+|\d{{1,2}}:\d{{2}}(?::\d{{2}})?[ \t]+)?(?P<nm>[{_CJK}]{{2,4}})[ \t]*:",
    re.MULTILINE,
)
_RECIPIENT_RE = lazy(rf"(?<![{_CJK}])(?P<nm>[{_CJK}]{{2,4}})[ ]?(?:收|啟|親啟)(?:[)\]〕」]|$)")
_LATIN_NAME_RE = lazy(r"[A-Z][a-z'\-]+(?: [A-Z][a-z'\-]+){1,3}(?![A-Za-z])")


def _surname_len(n: str, i: int) -> int:
    if n[i : i + 2] in _data.COMPOUND_SURNAMES:
        return 2
    return 1 if n[i : i + 1] in _data.SURNAMES else 0


# Words right after a name that confirm it (「客戶阮錞佳來電」).
_NAME_AFTER_RE = lazy(
    "|".join(_data.HONORIFICS)
    + "|來電|來信|來函|來店|表示|反映|詢問|致電|回電|投訴|抱怨|提出|說|稱|收|君|您好|你好"
)


def _name_end(n: str, i: int, *, strict: bool) -> int:
    """End of a name starting at ``i`` (surname + 1–2 given characters), or -1.

    ``strict`` (no colon before it): every given-name character must be a common one,
    unless the name is followed by a word that confirms it (an honorific, 來電,
    表示…), as in 「客戶阮錞佳來電」. Otherwise (after 「姓名：」) any characters that
    are not function words are accepted.
    """
    sl = _surname_len(n, i)
    if sl == 0 or n[i : i + 2] in _data.NAME_FALSE_WORDS:
        return -1
    j = i + sl
    limit = j + 2
    common = True
    while j < limit and j < len(n):
        ch = n[j]
        if not _is_cjk(ch) or ch in _data.NAME_STOP_CHARS or _NAME_AFTER_RE.match(n, j):
            break
        common = common and ch in _data.GIVEN_CHARS
        j += 1
    if j == i + sl:
        return -1
    if strict and not common and not _NAME_AFTER_RE.match(n, j):
        return -1
    return j


def _delimited_name(n: str, i: int, j: int, *, check_words: bool = True) -> bool:
    """``n[i:j]`` (cut out by punctuation around it) looks like a name."""
    if not 2 <= j - i <= 4 or check_words and n[i : i + 2] in _data.NAME_FALSE_WORDS:
        return False
    sl = _surname_len(n, i)
    if sl == 0 or j - i <= sl:
        return False
    return not any(c in _data.NAME_STOP_CHARS for c in n[i + sl : j])


def _names(n: str, out: list[_Cand]) -> None:
    # 1. labels: 姓名：王小明 / 聯絡人 王小明 / Name: John Smith
    for m in _LABEL_RE.finditer(n):
        cand = _name_after_label(n, m.end(), m.group("colon") is not None)
        if cand is not None:
            out.append(cand)
    for m in _LATIN_LABEL_RE.finditer(n):
        if m.start() > 0 and n[m.start() - 1].isascii() and n[m.start() - 1].isalpha():
            continue
        i = m.end()
        if i < len(n) and _is_cjk(n[i]):
            cand = _name_after_label(n, i, m.group("colon") is not None)
            if cand is not None:
                out.append(cand)
        else:
            lm = _LATIN_NAME_RE.match(n, i)
            if lm is not None and m.group("colon") is not None:
                out.append((i, lm.end(), "name", 0.8, None))
    # 2. role words: 客戶王小明 / 病患 林美華 (given-name characters required: in a chat
    # log 「客戶：」 is a speaker, not a label)
    for m in _ROLE_RE.finditer(n):
        i = m.end()
        if i < len(n) and _is_cjk(n[i]):
            end = _name_end(n, i, strict=True)
            if end != -1:
                out.append((i, end, "name", 0.75, None))
    # 3. honorifics: 林美華小姐 / 王先生 (a lone surname, low confidence)
    for m in _HONORIFIC_RE.finditer(n):
        h = m.start()
        cand = _name_before(n, h)
        if cand is not None:
            out.append(cand)
    # 4. recipients: 「（王小明 收）」
    for m in _RECIPIENT_RE.finditer(n):
        i, end = m.span("nm")
        if _delimited_name(n, i, end):
            out.append((i, end, "name", 0.8, None))
    # 5. chat speakers: 「王小明: 請問…」 at the start of a line
    for m in _SPEAKER_RE.finditer(n):
        i, end = m.span("nm")
        if _delimited_name(n, i, end) and all(c in _data.GIVEN_CHARS for c in n[i + 1 : end]):
            out.append((i, end, "name", 0.7, None))


def _name_after_label(n: str, i: int, colon: bool) -> _Cand | None:
    """A CJK name right after a label such as 「姓名：」 (``i`` is its first character)."""
    if i >= len(n) or not _is_cjk(n[i]):
        return None
    if colon:
        j = i
        while j < len(n) and j - i < 5 and _is_cjk(n[j]):
            j += 1
        if n[j - 2 : j] in _data.HONORIFICS:
            j -= 2
        if j - i <= 4 and (j >= len(n) or not _is_cjk(n[j]) or _NAME_AFTER_RE.match(n, j)):
            if _delimited_name(n, i, j) or (
                j - i >= 3 and _surname_len(n, i) and _delimited_name(n, i, j, check_words=False)
            ):
                return (i, j, "name", 0.9, None)
            run = n[i:j]
            if 2 <= len(run) <= 4 and not any(c in _data.NAME_STOP_CHARS for c in run):
                return (i, j, "name", 0.45, None)  # 姓名：小明 (no known surname)
            return None
    end = _name_end(n, i, strict=not colon)
    if end == -1:
        return None
    return (i, end, "name", 0.85 if colon else 0.75, None)


def _name_before(n: str, h: int) -> _Cand | None:
    """A name written right before an honorific at ``h``."""
    k = 0
    while k < 4 and h - k - 1 >= 0 and _is_cjk(n[h - k - 1]):
        k += 1
    if k == 0:
        return None
    given = _data.GIVEN_CHARS
    # 4 chars: compound surname + 2 given (歐陽娜娜)
    if k >= 4 and n[h - 4 : h - 2] in _data.COMPOUND_SURNAMES:
        return (h - 4, h, "name", 0.85, None)
    # 3 chars: surname + 2 given, or compound surname + 1 given
    if k >= 3:
        s3 = n[h - 3]
        lone = k == 3  # nothing but punctuation before: 「，張鍹媗先生」
        if (
            n[h - 3 : h - 1] in _data.COMPOUND_SURNAMES
            or s3 in _data.SURNAMES
            and s3 not in _data.NAME_STOP_CHARS
            and (n[h - 2] in given and n[h - 1] in given or lone)
        ) and n[h - 3 : h - 1] not in _data.NAME_FALSE_WORDS:
            return (h - 3, h, "name", 0.85 if not lone or n[h - 2] in given else 0.75, None)
    if k >= 2:
        s2 = n[h - 2]
        if (
            s2 in _data.SURNAMES
            and (n[h - 1] in given or k == 2)
            and n[h - 2 : h] not in _data.NAME_FALSE_WORDS
        ):
            return (h - 2, h, "name", 0.8, None)
    if n[h - 1] in _data.SURNAMES:
        return (h - 1, h, "name", 0.4, "surname")
    return None


# --- driver ----------------------------------------------------------------------------


def _check_types(types: Iterable[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    wanted = frozenset(types)
    unknown = wanted - set(TYPES)
    if unknown:
        raise ValueError(f"unknown PII type(s): {', '.join(sorted(unknown))}")
    return wanted


def _candidates(n: str) -> list[_Cand]:
    out: list[_Cand] = []
    append = out.append
    floor = 0
    hint = _BDAY_HINT_RE.search
    for m in _MAIN_RE.finditer(n):
        if m.lastgroup == "date":  # most dates are not birth dates: skip them cheaply
            s, e = m.span()
            if not hint(n, max(0, s - 16), e + 2):
                floor = e
                continue
        c = _classify(n, m, floor)
        if c is not None:
            append(c)
        floor = m.end()
    if "@" in n:
        _emails(n, out)
    if "號" in n:
        _addresses(n, out)
    _names(n, out)
    _names_in_records(n, out)
    return out


_RECORD_ANCHORS = frozenset({"tw_id", "arc", "passport", "birthday"})
_RECORD_NAME_RE = lazy(rf"(?<![{_CJK}])(?P<nm>[{_CJK}]{{2,4}})[ ]?[,/、;|][ ]?$")


def _names_in_records(n: str, out: list[_Cand]) -> None:
    """A name written as the field before an ID or a birth date: 「黃廷惠／K283478248」,
    「林美華，1985/03/12生」."""
    for c in [c for c in out if c[2] in _RECORD_ANCHORS and c[3] >= 0.5]:
        m = _RECORD_NAME_RE.search(n, max(0, c[0] - 8), c[0])
        if m is None:
            continue
        i, end = m.span("nm")
        if _delimited_name(n, i, end):
            out.append((i, end, "name", 0.65, None))


def _resolve(cands: list[_Cand]) -> list[_Cand]:
    """Keep the most confident (then longest) of overlapping candidates."""
    if len(cands) < 2:
        return cands
    cands.sort(key=lambda c: (-c[3], c[0] - c[1], c[0]))
    starts: list[int] = []
    ends: list[int] = []
    kept: list[_Cand] = []
    for c in cands:
        s, e = c[0], c[1]
        k = bisect_right(starts, s)
        if k > 0 and ends[k - 1] > s:
            continue
        if k < len(starts) and starts[k] < e:
            continue
        starts.insert(k, s)
        ends.insert(k, e)
        kept.append(c)
    kept.sort(key=itemgetter(0))
    return kept


def detect(
    text: str, *, min_confidence: float = 0.5, types: Iterable[str] | None = None
) -> list[Finding]:
    """Personal data in ``text``, in order of position.

    ``types`` restricts the result to some of :data:`TYPES`; overlaps are resolved
    over all types first, so the result is a subset of the unrestricted one.
    """
    wanted = _check_types(types)
    if not text:
        return []
    n = fold_width(text)
    found = []
    for s, e, typ, conf, sub in _resolve(_candidates(n)):
        if conf >= min_confidence and (wanted is None or typ in wanted):
            found.append(Finding(typ, s, e, text[s:e], conf, sub))
    return found


def detect_field(
    value: str,
    field: str | None,
    *,
    min_confidence: float = 0.5,
    types: Iterable[str] | None = None,
) -> list[Finding]:
    """Findings in one table cell / JSON value, using its column name as context.

    「出生日期」 above 「1985/03/12」 or 「統一編號」 above 「22099131」 says what a bare
    value is; offsets are into ``value``.
    """
    field = (field or "").strip()
    if not field:
        return detect(value, min_confidence=min_confidence, types=types)
    prefix = f"{field[-20:]}:"
    plen = len(prefix)
    found = detect(prefix + value, min_confidence=min_confidence, types=types)
    return [
        Finding(f.type, f.start - plen, f.end - plen, f.value, f.confidence, f.subtype)
        for f in found
        if f.start >= plen
    ]
