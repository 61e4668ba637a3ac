"""Refusal calibrated per knowledge base on questions phrased the way people ask (issue 8).

A law-like KB is built from a real .txt file through the real loader; questions go through
the engine the way a user asks them. On the old calibration (pseudo-questions that copy
the statute's wording) the colloquial questions below were refused.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from zhiku import calibration as cal_mod
from zhiku.answer import DEFAULT_REFUSE_BELOW
from zhiku.calibration import (
    CALIBRATION_VERSION,
    adjusted,
    colloquial_questions,
    fit_length,
)
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths

RULES = """勞動條件基準規則

第 1 條
為規定勞動條件最低標準，保障勞工權益，加強勞雇關係，促進社會與經濟發展，特制定本規則。雇主與勞工所訂勞動條件，不得低於本規則所定之最低標準。

第 2 條
本規則用詞，定義如下：勞工指受雇主僱用從事工作獲致工資者。雇主指僱用勞工之事業主、事業經營之負責人或代表事業主處理有關勞工事務之人。工資指勞工因工作而獲得之報酬，包括以現金或實物等方式給付之獎金、津貼及其他任何名義之經常性給與。

第 3 條
勞工正常工作時間，每日不得超過八小時，每週不得超過四十小時。雇主經工會同意，得將其二週內二日之正常工作時數，分配於其他工作日。

第 4 條
雇主有使勞工在正常工作時間以外工作之必要者，經工會同意後，得將工作時間延長之。延長之工作時間連同正常工作時間，一日不得超過十二小時；延長之工作時間，一個月不得超過四十六小時。

第 5 條
雇主延長勞工工作時間者，其延長工作時間之工資，依下列標準加給：延長工作時間在二小時以內者，按平日每小時工資額加給三分之一以上；再延長工作時間在二小時以內者，按平日每小時工資額加給三分之二以上。

第 6 條
勞工在同一雇主或事業單位，繼續工作滿一定期間者，應依下列規定給予特別休假：六個月以上一年未滿者，三日；一年以上二年未滿者，七日；二年以上三年未滿者，十日；三年以上五年未滿者，每年十四日。

第 7 條
女工分娩前後，應停止工作，給予產假八星期；妊娠三個月以上流產者，應停止工作，給予產假四星期。女工受僱工作在六個月以上者，停止工作期間工資照給。

第 8 條
雇主不得預扣勞工工資作為違約金或賠償費用。工資應全額直接給付勞工，每月至少定期發給二次。

第 9 條
雇主終止勞動契約者，應依下列規定發給勞工資遣費：在同一雇主之事業單位繼續工作，每滿一年發給相當於一個月平均工資之資遣費。

第 10 條
勞工因遭遇職業災害而致死亡、失能、傷害或疾病時，雇主應補償其必需之醫療費用。勞工在醫療中不能工作時，雇主應按其原領工資數額予以補償。

第 11 條
雇主違反第三條、第四條或第五條規定者，處新臺幣二萬元以上一百萬元以下罰鍰。
"""


@pytest.fixture
def rules(engine: Zhiku, tmp_path: Path) -> str:
    root = tmp_path / "rules"
    root.mkdir()
    (root / "labor.txt").write_text(RULES, "utf-8")
    report = ingest_paths(engine, [root], "law")
    assert not report.failed
    return "law"


def _labels(ans: object) -> set[str]:
    return {(c.hit.label or "").strip() for c in ans.citations}  # type: ignore[attr-defined]


def test_colloquial_questions_whose_answer_is_there_are_answered(engine: Zhiku, rules: str) -> None:
    cal = engine.refusal_calibration(rules)
    assert cal is not None and cal.version == CALIBRATION_VERSION
    # Background and small talk around the key words, not the statute's wording.
    ans = engine.ask(
        "我在一家小工廠上班，主管最近每天都叫我們留下來多做四個小時，一個月最多可以加班幾小時？",
        rules,
    )
    assert not ans.refused, ans.timings
    assert _labels(ans) & {"第 4 條", "第 5 條"}
    ans = engine.ask("老婆下個月要生了，公司說她產假只能請一個月，這樣對嗎？", rules)
    assert not ans.refused, ans.timings
    assert "第 7 條" in _labels(ans) and "產假八星期" in ans.text
    ans = engine.ask("我在同一家公司做了快四年，一年應該可以休幾天特休？", rules)
    assert not ans.refused and "第 6 條" in _labels(ans)


def test_off_topic_questions_are_still_refused(engine: Zhiku, rules: str) -> None:
    for q in ("台積電今天的股價是多少？", "推薦一家信義區好吃的燒肉店", "貓咪一天要餵幾次？"):
        ans = engine.ask(q, rules)
        assert ans.refused and not ans.citations, q
    cal = engine.refusal_calibration(rules)
    assert cal is not None and cal.offtopic_refused >= 0.9
    assert cal.answerable_refused <= cal.max_refused


def test_a_long_question_is_compared_after_the_kbs_length_slope(engine: Zhiku, rules: str) -> None:
    cal = engine.refusal_calibration(rules)
    assert cal is not None and cal.length_slope > 0 and cal.length_ref > 0
    q = "我在一家小工廠上班，主管最近每天都叫我們留下來多做四個小時，一個月最多可以加班幾小時？"
    raw = engine.answering.confidence(q, [rules])
    ans = engine.ask(q, rules)
    terms = ans.timings["terms"]
    assert terms > cal.length_ref
    expected = adjusted(raw, int(terms), cal.length_slope, cal.length_ref)
    assert expected > raw
    assert ans.timings["confidence"] == pytest.approx(expected, abs=1e-6)


def test_colloquial_pseudo_questions_do_not_copy_the_passage() -> None:
    passages = [p for p in RULES.split("\n\n") if len(p) > 40]
    pairs = colloquial_questions(passages, n=40)
    assert len(pairs) >= 20
    for q, src in pairs:
        assert src in passages
        body = re.sub(r"[^\u4e00-\u9fff]", "", q)
        # Key terms of the passage are kept …
        assert any(body[i : i + 2] in src for i in range(len(body) - 1)), q
        # … but never a long stretch of its wording.
        assert not any(body[i : i + 10] in src for i in range(len(body) - 9)), (q, src)
    assert len({q for q, _ in pairs}) == len(pairs)


def test_length_slope_follows_a_falling_confidence() -> None:
    falling = [(0.8 - 0.15 * math.log(n), n) for n in range(8, 60, 4)]
    slope, ref = fit_length(falling)
    assert slope == pytest.approx(0.15, abs=1e-6)
    assert ref == sorted(n for _, n in falling)[len(falling) // 2]
    rising = [(0.2 + 0.1 * math.log(n), n) for n in range(8, 60, 4)]
    assert fit_length(rising)[0] == 0.0
    steep = [(1.5 - 0.5 * math.log(n), n) for n in range(8, 60, 4)]
    assert fit_length(steep)[0] == cal_mod.MAX_LENGTH_SLOPE
    # A longer question is raised by the slope, a terse one lowered by a share of it.
    assert adjusted(0.3, 60, 0.2, 30) == pytest.approx(0.3 + 0.2 * math.log(2))
    short = adjusted(0.3, 15, 0.2, 30)
    assert short == pytest.approx(0.3 - cal_mod.SHORT_SHARE * 0.2 * math.log(2))
    assert 0.3 - 0.2 * math.log(2) < short < 0.3
    assert adjusted(0.0, 90, 0.2, 30) == 0.0


def test_a_calibration_of_an_older_version_is_refitted(engine: Zhiku, rules: str) -> None:
    current = engine.refusal_calibration(rules)
    assert current is not None
    old = {**current.to_dict(), "version": CALIBRATION_VERSION - 1, "threshold": 0.9}
    engine.store.update_kb_settings(rules, {"refusal": old})
    # An older calibration is not used: the default threshold applies until it is refitted.
    assert engine.refusal_calibration(rules) is None
    assert engine.refusal_threshold(rules) == DEFAULT_REFUSE_BELOW
    again = engine.refit_refusal_if_needed(rules)
    assert again is not None and again.version == CALIBRATION_VERSION
    assert engine.refusal_threshold(rules) == pytest.approx(again.threshold)
    assert again.threshold < 0.9


def test_passages_of_one_document_raise_the_confidence_scattered_ones_do_not() -> None:
    from zhiku.answer import ExtractiveAnswerer, agreement
    from zhiku.models import Hit
    from zhiku.text import query_tokens

    q = "加班費怎麼算？"
    stats = dict.fromkeys(query_tokens(q), (3, 2.0))

    def hits(docs: list[int]) -> list[Hit]:
        return [
            Hit(
                i,
                d,
                "kb",
                f"規則{d}",
                "p",
                "加班費依工資加給。",
                None,
                None,
                None,
                None,
                1.0,
                scores={"bm25": 8.0 - i},
            )
            for i, d in enumerate(docs)
        ]

    one, scattered = hits([1, 1, 1, 1, 1]), hits([1, 2, 3, 4, 5])
    assert agreement(one) == 1.0 and agreement(scattered) == 0.0
    assert agreement(hits([1])) == 0.0
    a = ExtractiveAnswerer()
    # The same passages, the same scores: a question the KB answers keeps finding the
    # document about it; one from elsewhere matches scattered documents.
    gap = a.relevance(q, one, stats) - a.relevance(q, scattered, stats)
    assert math.isclose(gap, a.agreement) and gap > 0
    assert CALIBRATION_VERSION >= 3  # calibrations of the old confidence are refitted
