"""A restricted caller is ranked as if the index held only what they may see: BM25's
document frequencies, document count and average length come from the visible
documents, so hidden documents leave no trace in the order or the scores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zhiku import text as ztext
from zhiku.access import AccessScope
from zhiku.engine import Zhiku
from zhiku.filters import Filter
from zhiku.models import Block, LoadedDocument

# Visible and hidden passages share words, and the hidden ones are longer and repeat
# some terms, so counting them shifts idf and the average length.
VISIBLE = [
    "勞工請假規則規定婚假八日，喪假依親等給假。",
    "員工請假應事先以書面向主管申請，急病得補辦。",
    "特別休假依年資計算，年資滿一年者七日。",
    "加班費依勞動基準法計算，延長工時應給付。",
    "病假全年未超過三十日部分，工資折半發給。",
    "產假八週，工資照給；流產另有規定。",
    "公司餐廳每日中午供餐，員工自由取用。",
    "出差旅費依公司規定核實報支，住宿費另計。",
]
HIDDEN = [
    "機密：考核不佳員工之請假紀錄與加班紀錄，請假請假請假，年資調整方案。" * 3,
    "密件：年度裁員名單，請假天數、病假天數、特別休假天數一併檢討。" * 4,
    "人事機密：出差旅費與加班費稽核結果，住宿費異常名單。" * 2,
    "併購專案：餐廳外包、員工安置、產假與婚假權益之談判底線。" * 5,
]
QUERIES = [
    "請假規則",
    "加班費怎麼算",
    "特別休假年資",
    "出差住宿費",
    "員工餐廳",
    "病假工資",
    "產假婚假",
    "年資請假加班",
]
SECRET = {"access_groups": ["secret"], "access_level": 3}


def _doc(text: str, title: str) -> LoadedDocument:
    return LoadedDocument(title=title, kind="txt", blocks=[Block(text)])


@pytest.fixture(scope="module")
def zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zhiku]:
    with Zhiku(tmp_path_factory.mktemp("ranking")) as z:
        z.kb("mixed", create=True)
        z.kb("visible", create=True)
        for i, text in enumerate(VISIBLE):
            z.add_loaded("mixed", f"v://{i}", _doc(text, f"規章{i}"))
            z.add_loaded("visible", f"v://{i}", _doc(text, f"規章{i}"))
            if i % 3 == 0:  # hidden documents interleaved with visible ones
                j = i // 3
                if j < len(HIDDEN):
                    z.add_loaded("mixed", f"h://{j}", _doc(HIDDEN[j], f"機密{j}"), meta=SECRET)
        z.sync_index("mixed")
        z.sync_index("visible")
        yield z


def _ranked(z: Zhiku, kb: str, q: str, where: Filter | None) -> list[tuple[str, float]]:
    hits = z.search(q, kb, k=5, mode="lexical", rerank=False, where=where)
    return [(h.path, h.score) for h in hits]


def test_a_restricted_callers_ranking_is_that_of_the_visible_only_kb(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    for q in QUERIES:
        mixed = _ranked(zk, "mixed", q, pat)
        alone = _ranked(zk, "visible", q, None)
        assert mixed, q
        assert [p for p, _ in mixed] == [p for p, _ in alone], q
        for (_, a), (_, b) in zip(mixed, alone, strict=True):
            assert a == pytest.approx(b, rel=1e-5), q


def test_without_the_rescoring_hidden_documents_would_shift_scores(zk: Zhiku) -> None:
    # The corpus is built so that global statistics differ: an unrestricted caller's
    # scores in `mixed` are not those of `visible` (what the test above guards against).
    differs = False
    for q in QUERIES:
        everyone = dict(_ranked(zk, "mixed", q, None))
        alone = dict(_ranked(zk, "visible", q, None))
        differs |= any(abs(everyone[p] - s) > 1e-3 for p, s in alone.items() if p in everyone)
    assert differs


def test_term_statistics_are_those_of_the_visible_documents(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    tokens = ztext.tokenize("請假 加班 裁員 餐廳")
    layoff = ztext.tokenize("裁員")[-1]  # the bigram, folded as the index folds it
    mixed = zk.index("mixed").term_stats(tokens, where=pat)
    alone = zk.index("visible").term_stats(tokens)
    assert mixed.keys() == alone.keys()
    for t in tokens:
        assert mixed[t][0] == alone[t][0], t
        assert mixed[t][1] == pytest.approx(alone[t][1]), t
    assert mixed[layoff][0] == 0  # only in a hidden document
    assert zk.index("mixed").term_stats([layoff])[layoff][0] > 0  # the operator sees it


def test_a_caller_who_sees_everything_is_ranked_as_the_operator(zk: Zhiku) -> None:
    sam = AccessScope("sam", frozenset({"secret"}), 3).restrict()
    for q in QUERIES:
        scoped = _ranked(zk, "mixed", q, sam)
        operator = _ranked(zk, "mixed", q, None)
        assert [p for p, _ in scoped] == [p for p, _ in operator], q
        for (_, a), (_, b) in zip(scoped, operator, strict=True):
            assert a == pytest.approx(b, rel=1e-5), q


def test_relabelling_changes_the_statistics_at_the_next_query(zk: Zhiku) -> None:
    pat = AccessScope("pat", frozenset(), 0).restrict()
    layoff = ztext.tokenize("裁員")[-1]
    before = zk.index("mixed").term_stats([layoff], where=pat)[layoff][0]
    assert zk.store.set_document_meta(
        "mixed", "h://1", {"access_groups": None, "access_level": None}
    )
    try:
        assert before == 0
        assert zk.index("mixed").term_stats([layoff], where=pat)[layoff][0] == 1
    finally:
        zk.store.set_document_meta("mixed", "h://1", dict(SECRET))
    assert zk.index("mixed").term_stats([layoff], where=pat)[layoff][0] == 0


def test_abbreviations_are_learned_only_from_documents_everyone_may_see(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Expansions apply to every caller's query: one learned from a hidden document
    # would change what a restricted caller's question matches.
    with Zhiku(tmp_path_factory.mktemp("vocab")) as z:
        for kb in ("open", "labelled"):
            z.kb(kb, create=True)
        for i in range(30):
            text = (
                f"第{i}次會議：{'甲乙丙丁戊己庚辛'[i % 8]}年度裁員名單"
                f"{'請核示送審'[i % 5]}，另附裁員名單{'一二三四五六'[i % 6]}份。"
            )
            z.add_loaded("open", f"d://{i}", _doc(text, f"會議{i}"))
            z.add_loaded("labelled", f"d://{i}", _doc(text, f"會議{i}"), meta=SECRET)
        for i, text in enumerate(VISIBLE):
            z.add_loaded("labelled", f"v://{i}", _doc(text, f"規章{i}"))
        compound = ztext.fold("裁員名單")
        assert z.learn_vocabulary("open") > 0
        assert compound in z.retrieval.abbreviations("open").values()
        z.learn_vocabulary("labelled")
        assert compound not in z.retrieval.abbreviations("labelled").values()
