"""Checksum validators: official examples, and agreement with an independent
implementation (tests/pii_gen.py) on every body hypothesis can think of."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pii_gen import (
    ID_CODE,
    arc_old_check_digit,
    id_check_digit,
    luhn_check_digit,
    ubn_ok,
)
from zhiku.pii.validators import (
    arc_new_valid,
    arc_old_valid,
    arc_valid,
    card_network,
    card_valid,
    landline_valid,
    luhn_valid,
    plausible_date,
    tw_id_valid,
    ubn_total,
    ubn_valid,
)

LETTERS = st.sampled_from(sorted(ID_CODE))
DIGITS7 = st.text("0123456789", min_size=7, max_size=7)


# --- national ID -------------------------------------------------------------------


def test_tw_id_known_values() -> None:
    assert tw_id_valid("A123456789")  # the textbook example
    assert not tw_id_valid("A123456788")
    assert not tw_id_valid("A323456789")  # sex digit must be 1 or 2
    assert not tw_id_valid("A12345678")  # too short
    assert not tw_id_valid("1123456789")


def test_letter_codes_follow_the_official_table() -> None:
    # I, O, W, Z and the rest are not in alphabetical order; spot-check them.
    assert (ID_CODE["I"], ID_CODE["O"], ID_CODE["W"], ID_CODE["Z"]) == (34, 35, 32, 33)
    assert (ID_CODE["J"], ID_CODE["X"], ID_CODE["Y"]) == (18, 30, 31)


@settings(max_examples=300)
@given(LETTERS, st.sampled_from("12"), DIGITS7)
def test_tw_id_exactly_one_check_digit(letter: str, sex: str, body: str) -> None:
    head = letter + sex + body
    valid = [d for d in "0123456789" if tw_id_valid(head + d)]
    assert valid == [str(id_check_digit(head))]


# --- resident certificates -----------------------------------------------------------


def test_arc_known_values() -> None:
    assert arc_old_valid("AA00000009")
    assert not arc_old_valid("AA00000008")
    assert not arc_old_valid("AE00000009")  # second letter must be A–D
    assert not arc_new_valid("A123456789")  # a national ID is not a new ARC


@settings(max_examples=300)
@given(LETTERS, st.sampled_from("89"), DIGITS7)
def test_new_arc_uses_the_id_rule(letter: str, sex: str, body: str) -> None:
    head = letter + sex + body
    valid = [d for d in "0123456789" if arc_new_valid(head + d)]
    assert valid == [str(id_check_digit(head))]
    assert arc_valid(head + valid[0]) and not tw_id_valid(head + valid[0])


@settings(max_examples=300)
@given(LETTERS, st.sampled_from("ABCD"), DIGITS7)
def test_old_arc_exactly_one_check_digit(letter: str, second: str, body: str) -> None:
    head = letter + second + body
    valid = [d for d in "0123456789" if arc_old_valid(head + d)]
    assert valid == [str(arc_old_check_digit(head))]


# --- UBN ----------------------------------------------------------------------------


def test_ubn_known_values() -> None:
    assert ubn_valid("22099131")  # TSMC, valid under the old and the new rule
    assert not ubn_valid("22099132")
    # Valid since 2023 only: the total (5) is divisible by 5 but not by 10, which
    # python-stdnum's tw.ubn (old rule) rejects.
    assert ubn_total("10000004") == 5 and ubn_valid("10000004")
    # Seventh digit 7: total 19, and 19 + 1 is divisible by 5.
    assert ubn_total("10000470") == 19 and ubn_valid("10000470")
    assert not ubn_valid("10000472")  # total 21: neither 21 nor 22
    assert not ubn_valid("1234567")
    assert not ubn_valid("1234567a")


@settings(max_examples=500)
@given(st.text("0123456789", min_size=8, max_size=8))
def test_ubn_agrees_with_the_official_wording(number: str) -> None:
    assert ubn_valid(number) == ubn_ok(number)


@settings(max_examples=200)
@given(st.text("0123456789", min_size=7, max_size=7))
def test_ubn_every_body_has_a_check_digit(body: str) -> None:
    # Under the mod-5 rule at least two check digits of ten complete any body.
    assert sum(ubn_valid(body + d) for d in "0123456789") >= 2


# --- cards ---------------------------------------------------------------------------


def test_card_known_values() -> None:
    assert card_valid("4111111111111111") and card_network("4111111111111111") == "visa"
    assert card_network("5555555555554444") == "mastercard"
    assert card_network("378282246310005") == "amex"
    assert card_network("3530111333300000") == "jcb"
    assert card_network("6200000000000005") == "unionpay"
    assert not card_valid("4111111111111112")
    assert card_network("9111111111111111") is None  # no network starts with 9


@settings(max_examples=300)
@given(st.text("0123456789", min_size=12, max_size=18), st.data())
def test_luhn_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    number = body + str(luhn_check_digit(body))
    assert luhn_valid(number)
    i = data.draw(st.integers(0, len(number) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    assert not luhn_valid(number[:i] + new + number[i + 1 :])


# --- other ---------------------------------------------------------------------------


def test_landline_lengths_by_area_code() -> None:
    assert landline_valid("02", "0223456789")
    assert not landline_valid("02", "022345678")  # Taipei numbers have 8 digits
    assert landline_valid("037", "037323456")
    assert landline_valid("04", "0422345678") and landline_valid("04", "047234567")
    assert not landline_valid("01", "0123456789")
    assert not landline_valid(None, "0201234567")  # local numbers never start with 0/1


def test_plausible_dates() -> None:
    assert plausible_date(1985, 3, 12)
    assert plausible_date(74, 3, 12, roc=True)
    assert not plausible_date(2023, 2, 29)
    assert plausible_date(2024, 2, 29)
    assert not plausible_date(1985, 13, 1)
    assert not plausible_date(1850, 1, 1)
