"""Checksum and plausibility validators for Taiwanese identifiers.

Each function takes an already width-folded, upper-cased string (``"A123456789"``) and
never raises. The rules follow the official publications:

* 國民身分證統一編號 (內政部): a letter for the issuing area (A=10 … Z=33, I=34, O=35),
  the sex digit 1/2, seven serial digits and a check digit. The letter's two digits
  weigh 1 and 9, the next eight digits 8…1, the check digit 1; valid when the sum is
  divisible by 10.
* 新式統一證號 (居留證, 2021): same layout and same rule as the national ID, with 8 (male)
  or 9 (female) as the second character.
* 舊式統一證號 (居留證, before 2021): a second *letter* A/B/C/D; its code's units digit
  weighs 8, then seven digits 7…1 and the check digit 1; divisible by 10.
* 營利事業統一編號 (財政部, rule since 2023-04): eight digits weighted 1,2,1,2,1,2,4,1; the
  two digits of each product are added; valid when the total is divisible by 5 (the
  old rule said 10), or — when the seventh digit is 7, whose product 28 may count as
  1 or 0 — when total + 1 is.
* Payment cards: Luhn (ISO/IEC 7812-1) plus the issuer prefixes and lengths of the
  networks seen in Taiwan.
"""

from __future__ import annotations

import calendar

# 內政部 letter codes for the first character of an ID / resident certificate number.
LETTER_CODES: dict[str, int] = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17,
    "I": 34, "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23,
    "Q": 24, "R": 25, "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30,
    "Y": 31, "Z": 33,
}  # fmt: skip

_ID_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 1)
_ARC_OLD_WEIGHTS = (7, 6, 5, 4, 3, 2, 1)
_UBN_WEIGHTS = (1, 2, 1, 2, 1, 2, 4, 1)


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _letter_sum(letter: str) -> int | None:
    code = LETTER_CODES.get(letter)
    if code is None:
        return None
    return code // 10 + (code % 10) * 9


def _id_rule(value: str) -> bool:
    """The shared rule of the national ID and the 2021 resident certificate number."""
    if len(value) != 10 or not _is_digits(value[1:]):
        return False
    head = _letter_sum(value[0])
    if head is None:
        return False
    total = head + sum(int(d) * w for d, w in zip(value[1:9], _ID_WEIGHTS, strict=True))
    total += int(value[9])
    return total % 10 == 0


def tw_id_valid(value: str) -> bool:
    """國民身分證統一編號: ``[A-Z][12]\\d{8}`` with a valid check digit."""
    return len(value) == 10 and value[1:2] in ("1", "2") and _id_rule(value)


def arc_new_valid(value: str) -> bool:
    """新式統一證號 (2021): ``[A-Z][89]\\d{8}`` with the national-ID check digit."""
    return len(value) == 10 and value[1:2] in ("8", "9") and _id_rule(value)


def arc_old_valid(value: str) -> bool:
    """舊式統一證號: ``[A-Z][A-D]\\d{8}`` with the old resident-certificate check digit."""
    if len(value) != 10 or value[1:2] not in ("A", "B", "C", "D") or not _is_digits(value[2:]):
        return False
    head = _letter_sum(value[0])
    if head is None:
        return False
    total = head + (LETTER_CODES[value[1]] % 10) * 8
    total += sum(int(d) * w for d, w in zip(value[2:9], _ARC_OLD_WEIGHTS, strict=True))
    total += int(value[9])
    return total % 10 == 0


def arc_valid(value: str) -> bool:
    """Either format of 居留證 / 統一證號."""
    return arc_new_valid(value) or arc_old_valid(value)


def ubn_total(value: str) -> int:
    """Sum of the digit-sums of the weighted products (the 28 of a seventh 7 counts 10)."""
    total = 0
    for d, w in zip(value, _UBN_WEIGHTS, strict=True):
        p = int(d) * w
        total += p // 10 + p % 10
    return total


def ubn_valid(value: str) -> bool:
    """營利事業統一編號 under the 2023 rule (divisible by 5)."""
    if len(value) != 8 or not _is_digits(value):
        return False
    total = ubn_total(value)
    if total % 5 == 0:
        return True
    return value[6] == "7" and (total + 1) % 5 == 0


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    if not digits or not _is_digits(digits):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_network(digits: str) -> str | None:
    """The card network an issuer prefix and length belong to, or ``None``."""
    n = len(digits)
    if not _is_digits(digits) or not 13 <= n <= 19:
        return None
    p2, p3, p4, p6 = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= p3 <= 305 or p4 == 3095 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if (p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


def card_valid(digits: str) -> bool:
    return card_network(digits) is not None and luhn_valid(digits)


def plausible_date(year: int, month: int, day: int, *, roc: bool = False) -> bool:
    """A calendar date a living person could be born on (民國 years when ``roc``)."""
    if roc:
        if not 1 <= year <= 130:
            return False
        year += 1911
    if not 1900 <= year <= 2035 or not 1 <= month <= 12:
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


# Area code → allowed total digit counts (area code with its 0, plus the local number).
_AREA_LENGTHS: dict[str, tuple[int, ...]] = {
    "02": (10,), "03": (9,), "037": (9,), "04": (9, 10), "049": (10,), "05": (9,),
    "06": (9,), "07": (9,), "08": (9,), "082": (9,), "0826": (9,), "0836": (9,),
    "089": (9,),
}  # fmt: skip


def landline_valid(area: str | None, digits: str) -> bool:
    """A Taiwanese fixed-line number (``digits`` with the area code's leading 0).

    ``area`` is the area code when the text separates it (``(037)``, ``04-``); the
    local number never starts with 0 or 1.
    """
    if not _is_digits(digits) or not digits.startswith("0") or digits[1:2] not in "2345678":
        return False
    if area is not None:
        allowed = _AREA_LENGTHS.get(area)
        if allowed is None or len(digits) not in allowed:
            return False
        return digits[len(area)] not in "01"
    if len(digits) not in _AREA_LENGTHS[digits[:2]]:
        return False
    return digits[2] not in "01"
