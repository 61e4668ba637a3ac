"""Detection: every type in realistic zh-TW sentences, look-alikes, full-width text,
offsets, and precision / recall on generated data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pii_gen import PiiGen, to_full_width
from zhiku.pii import TYPES, Finding, detect, detect_field


def kinds(text: str, **kw: object) -> list[tuple[str, str]]:
    return [(f.type, f.value) for f in detect(text, **kw)]  # type: ignore[arg-type]


def one(text: str, type_: str) -> Finding:
    found = [f for f in detect(text) if f.type == type_]
    assert len(found) == 1, (text, detect(text, min_confidence=0.0))
    return found[0]


# --- identifiers with a checksum ---------------------------------------------------


def test_customer_service_note() -> None:
    text = "客戶王小明來電表示，身分證字號A123456789，手機0912-345-678，要求更改地址。"
    assert kinds(text) == [
        ("name", "王小明"),
        ("tw_id", "A123456789"),
        ("mobile", "0912-345-678"),
    ]


def test_offsets_point_into_the_original_text() -> None:
    text = "身分證：Ａ１２３４５６７８９，電話（０２）２３４５－６７８９"
    found = detect(text)
    assert [f.type for f in found] == ["tw_id", "landline"]
    for f in found:
        assert text[f.start : f.end] == f.value
    assert found[0].value == "Ａ１２３４５６７８９"


def test_wrong_checksum_is_not_an_id_unless_asked() -> None:
    text = "身分證字號 A123456788"
    assert detect(text) == []
    low = detect(text, min_confidence=0.1)
    assert [(f.type, f.subtype) for f in low] == [("tw_id", "bad_checksum")]
    assert low[0].confidence < 0.5


def test_lower_case_id_letter() -> None:
    assert kinds("id: a123456789") == [("tw_id", "a123456789")]


def test_resident_certificates_old_and_new() -> None:
    g = PiiGen(seed=3)
    old, new = g.arc(fmt="old"), g.arc(fmt="new")
    found = detect(f"外籍移工居留證號 {old}，新式統一證號 {new}")
    assert [(f.type, f.value, f.subtype) for f in found] == [
        ("arc", old, "old"),
        ("arc", new, "new"),
    ]


def test_ubn_needs_context_or_a_column() -> None:
    assert kinds("發票請開統編 22099131，謝謝") == [("ubn", "22099131")]
    assert kinds("統一編號：10000004") == [("ubn", "10000004")]  # valid by the 2023 rule
    assert detect("會議代碼 22099131") == []  # a bare 8-digit number is not enough
    assert [f.type for f in detect("會議代碼 22099131", min_confidence=0.25)] == ["ubn"]
    assert detect("統一編號：22099132") == []  # wrong check digit
    assert [f.type for f in detect_field("22099131", "統一編號")] == ["ubn"]


def test_credit_cards() -> None:
    text = "信用卡號 4111 1111 1111 1111，另一張 5555-5555-5555-4444，美國運通 378282246310005"
    assert [f.value for f in detect(text)] == [
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
    ]
    assert detect("卡號 4111 1111 1111 1112") == []  # Luhn fails


# --- phones -----------------------------------------------------------------------

MOBILE_SPELLINGS = [
    "0912-345-678",
    "0912345678",
    "0912 345 678",
    "0912-345678",
    "(0912)345-678",
    "+886-912-345-678",
    "+886 912 345 678",
    "+886912345678",
    "+886-(0)912-345-678",
    "０９１２－３４５－６７８",
]


@pytest.mark.parametrize("spelling", MOBILE_SPELLINGS)
def test_mobile_spellings(spelling: str) -> None:
    f = one(f"有事請打 {spelling} 找我", "mobile")
    assert f.value == spelling


LANDLINES = [
    ("客服專線 (02)2345-6789", "(02)2345-6789", "service"),
    ("總機 02-23456789 轉 123", "02-23456789 轉 123", "service"),
    ("住家電話：04-2234-5678", "04-2234-5678", "plain"),
    ("家裡電話 (037)32-3456", "(037)32-3456", "plain"),
    ("免付費 0800-000-123", "0800-000-123", "tollfree"),
    ("TEL: +886-2-2345-6789#12", "+886-2-2345-6789#12", "service"),
    ("電話 07-3456789", "07-3456789", "plain"),
]


@pytest.mark.parametrize(("text", "value", "subtype"), LANDLINES)
def test_landlines(text: str, value: str, subtype: str) -> None:
    f = one(text, "landline")
    assert (f.value, f.subtype) == (value, subtype)
    assert f.business == (subtype != "plain")


def test_phone_like_product_codes() -> None:
    assert detect("料號 0912345678 缺貨中") == []
    assert detect("訂單編號 0223456789 已出貨") == []
    assert detect("物流單號886256204765") == []


# --- e-mail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "subtype"),
    [
        ("service@acme.com.tw", "role"),
        ("support.tw@hongyuan.com.tw", "role"),
        ("no-reply@moi.gov.tw", "role"),
        ("客服@acme.com.tw", "role"),
        ("hr@ntu.edu.tw", "role"),
        ("wang.xiaoming@gmail.com", "personal"),
        ("service@gmail.com", "personal"),  # a free mailbox is a person's
        ("sales.wang@acme.com.tw", "personal"),  # a named sales rep
        ("chen1985@yahoo.com.tw", "personal"),
    ],
)
def test_email_role_or_personal(address: str, subtype: str) -> None:
    f = one(f"請寄信到 {address}，謝謝", "email")
    assert (f.value, f.subtype) == (address, subtype)


# --- context-only types -------------------------------------------------------------


def test_nhi_passport_bank_need_context() -> None:
    text = "健保卡號 0000 1234 5678，護照號碼 312345678，請匯款至 (822) 帳號 1234-5678-9012"
    assert kinds(text) == [
        ("nhi_card", "0000 1234 5678"),
        ("passport", "312345678"),
        ("bank_account", "1234-5678-9012"),
    ]
    assert detect("會議室 312345678") == []
    assert detect("批號 1234-5678-9012") == []


@pytest.mark.parametrize(
    "text",
    [
        "生日 1985/03/12",
        "出生日期：民國74年3月12日",
        "DOB: 1985-03-12",
        "王小明，74/03/12生，住台北",
        "出生年月日 0740312",
        "生日是 1985 年 3 月 12 日",
    ],
)
def test_birthdays(text: str) -> None:
    assert [f.type for f in detect(text)] in (["birthday"], ["name", "birthday"])


def test_dates_that_are_not_birthdays() -> None:
    assert detect("本辦法自2024/03/01生效") == []
    assert detect("會議日期 2024/03/15") == []
    assert detect("出生日期 2024/02/30") == []  # no such day


# --- addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "收件地址：臺北市大安區復興南路一段122巷5弄3號4樓",
            "臺北市大安區復興南路一段122巷5弄3號4樓",
        ),
        ("我住在新北市中和區中正路88之1號三樓，請送到管理室", "新北市中和區中正路88之1號三樓"),
        ("寄送至永和區民生路177號17F", "永和區民生路177號17F"),
        ("戶籍地址 100臺北市中正區重慶南路1段122號", "100臺北市中正區重慶南路1段122號"),
        ("南投縣仁愛鄉大同村12鄰3號", "南投縣仁愛鄉大同村12鄰3號"),
        ("住址：桃園市平鎮區環中東路２３０巷３０６號", "桃園市平鎮區環中東路２３０巷３０６號"),
    ],
)
def test_addresses(text: str, value: str) -> None:
    assert one(text, "address").value == value


def test_business_address_is_marked() -> None:
    assert one("公司地址：臺北市信義區松仁路100號", "address").subtype == "business"
    assert one("我家住在臺北市信義區松仁路100號", "address").subtype == "home"


def test_numbers_that_are_not_addresses() -> None:
    for text in ("第3號會議室", "本案文號第123號", "捷運中山站2號出口", "掛號信 12345 號"):
        assert [f for f in detect(text) if f.type == "address"] == []


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("姓名：林美華", "林美華"),
        ("感謝王小明先生的來信", "王小明"),
        ("請轉告陳怡君小姐", "陳怡君"),
        ("客戶張志豪反映商品瑕疵", "張志豪"),
        ("客戶阮錞佳來電詢問", "阮錞佳"),  # rare given-name characters, confirmed by 來電
        ("病患 歐陽娜娜 於今日回診", "歐陽娜娜"),
        ("聯絡人：李大同，電話 02-2345-6789", "李大同"),
        ("通訊地址另附（吳鈞凱 收）", "吳鈞凱"),
        ("Name: John Smith", "John Smith"),
    ],
)
def test_names_marked_by_context(text: str, name: str) -> None:
    assert one(text, "name").value == name


def test_lone_surname_is_low_confidence() -> None:
    assert [f for f in detect("陳先生來電") if f.type == "name"] == []
    low = [f for f in detect("陳先生來電", min_confidence=0.3) if f.type == "name"]
    assert [(f.value, f.subtype) for f in low] == [("陳", "surname")]


@pytest.mark.parametrize(
    "text",
    [
        "這位先生請稍候，我們馬上處理。",
        "各位先生女士大家好",
        "客戶表示商品已收到",
        "會員可享九折優惠",
        "客戶服務中心週末不營業",
        "申請人應依本法規定繳交規費。",
        "當事人陳述意見後，委員會應予審議。",
        "代表人簡歷表",
        "員工康樂活動",
        "客戶成功團隊將與您聯繫",
    ],
)
def test_sentences_without_names(text: str) -> None:
    assert [f for f in detect(text) if f.type == "name"] == []


# --- API behaviour ----------------------------------------------------------------------


def test_types_filter_is_a_subset() -> None:
    text = "王小明先生，手機 0912-345-678，信箱 wang@gmail.com"
    everything = detect(text)
    only = detect(text, types=["mobile", "email"])
    assert [f.type for f in only] == ["mobile", "email"]
    assert set(only) <= set(everything)
    with pytest.raises(ValueError, match="unknown PII type"):
        detect(text, types=["phone"])


def test_email_wins_over_digits_inside_it() -> None:
    assert kinds("0912345678@gmail.com") == [("email", "0912345678@gmail.com")]


def test_detect_field_uses_the_column_name() -> None:
    assert [f.type for f in detect_field("1985-03-12", "出生日期")] == ["birthday"]
    assert detect_field("1985-03-12", "建檔日期") == []
    f = detect_field("王小明", "姓名")[0]
    assert (f.type, f.start, f.end) == ("name", 0, 3)


def test_finding_to_dict() -> None:
    d = detect("手機 0912-345-678")[0].to_dict()
    assert d == {
        "type": "mobile",
        "start": 3,
        "end": 15,
        "value": "0912-345-678",
        "confidence": d["confidence"],
        "subtype": None,
    }
    assert 0.5 <= d["confidence"] <= 1.0


# --- generated data ---------------------------------------------------------------------


def _score(samples: list, type_: str) -> tuple[float, float]:  # type: ignore[type-arg]
    tp = fp = fn = 0
    for s in samples:
        found = [(f.start, f.end) for f in detect(s.text) if f.type == type_]
        gold = [(a, b) for a, b, t in s.spans if t == type_]
        hit = {i for i, (a, b) in enumerate(found) for ga, gb in gold if a < gb and ga < b}
        tp += len(hit)
        fp += len(found) - len(hit)
        fn += sum(1 for ga, gb in gold if not any(a < gb and ga < b for a, b in found))
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def test_checksummed_types_on_generated_data() -> None:
    samples = PiiGen(seed=11).dataset(per_type=60, lookalikes=600, invalid=300)
    for t in ("tw_id", "arc", "ubn", "credit_card"):
        precision, recall = _score(samples, t)
        assert precision >= 0.99 and recall >= 0.99, (t, precision, recall)


def test_every_type_is_found_in_generated_sentences() -> None:
    samples = PiiGen(seed=12).dataset(per_type=40, lookalikes=0, invalid=0)
    for t in TYPES:
        _, recall = _score(samples, t)
        assert recall >= (0.8 if t == "name" else 0.97), (t, recall)


def test_invalid_identifiers_in_context_are_not_reported() -> None:
    g = PiiGen(seed=13)
    for _ in range(200):
        s = g.invalid()
        assert [f for f in detect(s.text) if f.type in ("tw_id", "arc", "ubn", "credit_card")] == []


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.booleans())
def test_findings_are_ordered_disjoint_and_aligned(seed: int, wide: bool) -> None:
    g = PiiGen(seed=seed, full_width_rate=0.5 if wide else 0.0)
    text = "\n".join(g.sentence(t).text for t in TYPES) + g.lookalike().text
    if wide:
        text = to_full_width(text[:40]) + text[40:]
    found = detect(text, min_confidence=0.0)
    for a, b in zip(found, found[1:], strict=False):
        assert a.end <= b.start
    for f in found:
        assert text[f.start : f.end] == f.value
        assert f.type in TYPES and 0.0 < f.confidence <= 1.0
