"""Chinese text handling: folding, tokenisation, sentences, clause labels."""

from __future__ import annotations

import pytest

from zhiku import text as zt


def test_fold_width_case_and_script() -> None:
    assert zt.fold("ＡＢＣ１２３") == "abc123"
    assert zt.fold("臺灣資訊發展") == zt.fold("台湾资讯发展")


def test_tokenize_cjk_unigrams_and_bigrams_latin_words() -> None:
    toks = zt.tokenize("出貨異常 iPhone15 第30-1條")
    assert {"出", "货", "出货", "货异", "异常"} <= set(toks)
    assert "iphone15" in toks and "30-1" in toks
    assert "出货异常" not in toks  # no whole-run tokens (the LangChain failure mode)


def test_simplified_and_traditional_queries_share_tokens() -> None:
    assert set(zt.tokenize("特别休假递延")) == set(zt.tokenize("特別休假遞延"))


def test_query_tokens_drop_interrogatives_but_never_empty() -> None:
    toks = zt.query_tokens("特休可以遞延嗎？")
    assert "吗" not in toks and "递延" in toks
    assert zt.query_tokens("什麼？")  # all stop tokens: fall back to them


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("第一句。第二句！第三句？", ["第一句。", "第二句！", "第三句？"]),
        ("「真的嗎？」他問；然後\n下一行", ["「真的嗎？」", "他問；", "然後", "下一行"]),
        ("  前後空白  。 ", ["前後空白  。"]),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert zt.sentences(text) == expected
    for s, e in zt.sentence_spans(text):
        assert text[s:e].strip() == text[s:e]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("第七條 員工請假", "第七條"),
        ("第 12 條 本法", "第 12 條"),
        ("第 30-1 條 雇主", "第 30-1 條"),
        ("4.3 出貨異常需在 24 小時內通報", "4.3"),
        ("4.3.1 細項", "4.3.1"),
        ("（三）其他事項", "（三）"),
        ("一、適用範圍", "一"),
        ("2024年營收", None),
        ("本公司員工", None),
    ],
)
def test_detect_label(text: str, label: str | None) -> None:
    assert zt.detect_label(text) == label


def test_join_wrapped_lines_no_space_between_cjk() -> None:
    assert zt.join_wrapped_lines(["出貨異常需在", "24 小時內通報", "物流部門"]) == (
        "出貨異常需在24 小時內通報物流部門"
    )
    assert zt.join_wrapped_lines(["multi", "word"]) == "multi word"


def test_section_string() -> None:
    assert zt.section_string(("4 作業程序",), "4.3") == "4 作業程序 > 4.3"
    assert zt.section_string(("4.3 出貨異常",), "4.3") == "4.3 出貨異常"
    assert zt.section_string((), None) is None
