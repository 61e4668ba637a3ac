"""Masking strategies, per-KB policy, redaction and its guarantees."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pii_gen import PiiGen
from zhiku.pii import (
    PERSONAL_TYPES,
    TYPES,
    PiiError,
    PiiPolicy,
    canonical,
    detect,
    format_counts,
    mask_for_log,
    mask_value,
    new_secret,
    parse_types,
    pseudonym,
    redact,
    redact_for_ingest,
    redact_for_output,
)

NOTE = (
    "客戶王小明（身分證 A123456789）來電，手機 0912-345-678，信箱 wang.xm@gmail.com，"
    "住台北市大安區復興南路一段122號5樓。公司統編 22099131，客服專線 (02)2345-6789，"
    "客服信箱 service@acme.com.tw。"
)


# --- masking --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_", "masked"),
    [
        ("A123456789", "tw_id", "A1*****789"),
        ("0912-345-678", "mobile", "0912-***-678"),
        ("+886 912 345 678", "mobile", "+886 912 *** 678"),
        ("(02)2345-6789", "landline", "(02)23**-**89"),
        ("wang.xm@gmail.com", "email", "w******@gmail.com"),
        ("4111 1111 1111 1111", "credit_card", "**** **** **** 1111"),
        ("1985/03/12", "birthday", "****/**/**"),
        ("王小明", "name", "王○明"),
        ("林美", "name", "林○"),
        (
            "臺北市大安區復興南路一段122巷5弄3號4樓",
            "address",
            "臺北市大安區復興南路一段***巷*弄*號*樓",
        ),
        ("Ａ１２３４５６７８９", "tw_id", "Ａ１＊＊＊＊＊７８９"),
    ],
)
def test_mask_value(value: str, type_: str, masked: str) -> None:
    assert mask_value(value, type_) == masked


def test_default_policy_masks_people_not_businesses() -> None:
    out, counts = redact(NOTE, PiiPolicy.default())
    for raw in ("A123456789", "0912-345-678", "wang.xm@gmail.com", "王小明", "122號5樓"):
        assert raw not in out
    for kept in ("22099131", "(02)2345-6789", "service@acme.com.tw"):
        assert kept in out
    assert counts == Counter({"name": 1, "tw_id": 1, "mobile": 1, "email": 1, "address": 1})


def test_tag_strategy() -> None:
    out, _ = redact("身分證 A123456789，手機 0912345678", PiiPolicy(strategy="tag"))
    assert out == "身分證 〔身分證字號〕，手機 〔手機號碼〕"


def test_pseudonyms_are_keyed_and_consistent() -> None:
    secret = new_secret()
    policy = PiiPolicy(strategy="pseudonym")
    a, _ = redact("手機 0912-345-678", policy, secret=secret)
    b, _ = redact("手機 +886 912 345 678", policy, secret=secret)
    c, _ = redact("手機 0912-345-678", policy, secret=new_secret())
    token = a.removeprefix("手機 ")
    assert token.startswith("〔手機號碼#") and token.endswith("〕")
    assert b == a  # same person, another spelling → same token
    assert c != a  # another knowledge base's secret → unrelated token
    assert token == pseudonym("0912345678", "mobile", secret)
    with pytest.raises(PiiError):
        redact("手機 0912-345-678", policy)


def test_canonical_forms() -> None:
    assert canonical("+886-912-345-678", "mobile") == canonical("0912 345 678", "mobile")
    assert canonical("民國74年3月12日", "birthday") == "1985-03-12"
    assert canonical("a123456789", "tw_id") == "A123456789"
    assert canonical("台北市大安區", "address") == canonical("臺北市 大安區", "address")


def test_keep_business_switch() -> None:
    text = "客服信箱 service@acme.com.tw，0800-000-123，住家電話 02-2345-6789"
    policy = PiiPolicy(types=PERSONAL_TYPES | {"landline"})
    out, counts = redact(text, policy)
    assert "service@acme.com.tw" in out and "0800-000-123" in out
    assert "02-2345-6789" not in out and counts == Counter({"landline": 1})
    out2, counts2 = redact(text, policy.updated(keep_business=False))
    assert "service@acme.com.tw" not in out2 and "0800-000-123" not in out2
    assert counts2 == Counter({"email": 1, "landline": 2})


# --- policy ---------------------------------------------------------------------------


def test_default_policy_is_privacy_by_default() -> None:
    p = PiiPolicy.default()
    assert p.mode == "ingest" and p.strategy == "mask" and p.keep_business
    assert p.types == {
        "tw_id", "arc", "passport", "nhi_card", "credit_card", "bank_account", "mobile",
        "email", "birthday", "name", "address",
    }  # fmt: skip
    assert "ubn" not in p.types and "landline" not in p.types


def test_policy_roundtrip_through_json() -> None:
    p = PiiPolicy(mode="output", types={"mobile", "tw_id"}, strategy="tag", min_confidence=0.7)
    data = json.loads(json.dumps(p.to_dict()))
    assert data["types"] == ["tw_id", "mobile"]  # stable order
    assert PiiPolicy.from_dict(data) == p
    assert PiiPolicy.from_dict(None) == PiiPolicy.default()
    assert PiiPolicy.from_dict({"mode": "off"}).types == PiiPolicy.default().types


@pytest.mark.parametrize(
    "bad",
    [{"mode": "sometimes"}, {"strategy": "blur"}, {"types": ["phone"]}, {"min_confidence": 2}],
)
def test_policy_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(PiiError):
        PiiPolicy.from_dict(bad)


def test_parse_types() -> None:
    assert parse_types("tw_id, mobile") == {"tw_id", "mobile"}
    assert parse_types("+landline,-name") == (PERSONAL_TYPES | {"landline"}) - {"name"}
    assert parse_types("all") == set(TYPES)
    assert parse_types("-email", base={"email", "mobile"}) == {"mobile"}
    assert PiiPolicy.default().updated(types="+ubn").types == PERSONAL_TYPES | {"ubn"}
    with pytest.raises(PiiError, match="未知的個資類型"):
        parse_types("tw_id,phone")


def test_describe_rows() -> None:
    rows = dict(PiiPolicy.default().describe())
    assert rows["個資保護"].startswith("匯入時遮蔽")
    assert "身分證字號" in rows["遮蔽類型"] and "統一編號" in rows["不遮蔽"]
    assert rows["信心門檻"] == "0.50"
    en = dict(PiiPolicy(mode="output", strategy="pseudonym").describe(lang="en"))
    assert en["PII protection"].startswith("mask on output")
    assert "HMAC" in en["Strategy"]


def test_modes() -> None:
    text = "手機 0912-345-678"
    ingest, output, off = PiiPolicy(), PiiPolicy(mode="output"), PiiPolicy(mode="off")
    assert redact_for_ingest(text, ingest)[0] == "手機 0912-***-678"
    assert redact_for_ingest(text, output) == (text, Counter())
    assert redact_for_output(text, output)[0] == "手機 0912-***-678"
    assert redact_for_output(text, off) == (text, Counter())
    assert redact_for_ingest(text, off) == (text, Counter())


def test_query_masked_for_logs_even_when_policy_is_off() -> None:
    q = "我的身分證 A123456789 手機 0912345678 的訂單呢？客服專線 0800-000-123"
    logged = mask_for_log(q, PiiPolicy(mode="off"))
    assert logged == "我的身分證 〔身分證字號〕 手機 〔手機號碼〕 的訂單呢？客服專線 0800-000-123"
    assert mask_for_log(q) == logged


def test_format_counts() -> None:
    counts = Counter({"mobile": 5, "tw_id": 3})
    assert format_counts(counts) == "身分證字號 3、手機號碼 5"
    assert format_counts(counts, "en") == "national ID 3, mobile number 5"


# --- properties ---------------------------------------------------------------------

STRUCTURED = ("tw_id", "arc", "mobile", "email", "credit_card", "nhi_card", "passport",
              "bank_account", "birthday", "address")  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 100_000), st.sampled_from(["mask", "tag", "pseudonym"]))
def test_redacted_text_never_contains_the_original(seed: int, strategy: str) -> None:
    g = PiiGen(seed=seed)
    samples = [g.sentence(t) for t in STRUCTURED]
    text = "\n".join(s.text for s in samples)
    offset = 0
    values = []
    for s in samples:
        values += [s.text[a:b] for a, b, t in s.spans if t in STRUCTURED]
        offset += len(s.text) + 1
    policy = PiiPolicy(types=set(TYPES), strategy=strategy, keep_business=False)
    out, counts = redact(text, policy, secret=b"k" * 32)
    for v in values:
        assert v not in out, (v, out)
    assert sum(counts.values()) >= len(values)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 100_000), st.booleans())
def test_mask_keeps_length_and_every_other_character(seed: int, wide: bool) -> None:
    g = PiiGen(seed=seed, full_width_rate=0.6 if wide else 0.0)
    text = "；".join(g.sentence(t).text for t in TYPES) + "。" + g.lookalike().text
    policy = PiiPolicy(types=set(TYPES), keep_business=False)
    found = [f for f in detect(text) if policy.should_mask(f)]
    out, _ = redact(text, policy)
    assert len(out) == len(text)
    inside = {i for f in found for i in range(f.start, f.end)}
    for i, (a, b) in enumerate(zip(text, out, strict=True)):
        if i not in inside:
            assert a == b
    for f in found:
        assert out[f.start : f.end] != f.value
        assert out[f.start : f.end] == mask_value(f.value, f.type)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(TYPES),
    st.text(alphabet="0123456789ABCDEFGHＡＢ１２３王小明大安區路號-@. ", min_size=1, max_size=30),
)
def test_mask_value_is_length_preserving_and_changes_something(type_: str, value: str) -> None:
    masked = mask_value(value, type_)
    assert len(masked) == len(value)
    if any(c.isalnum() for c in value):
        assert masked != value


def test_redaction_is_idempotent() -> None:
    once, _ = redact(NOTE, PiiPolicy.default())
    twice, counts = redact(once, PiiPolicy.default())
    assert twice == once and not counts
