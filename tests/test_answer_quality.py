"""Answers people can trust: the behaviours seen with real questions (issue 8).

Each test builds real files, ingests them through the real loaders and asks through the
engine or the CLI, the way a user does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku.answer import answer_type, has_type
from zhiku.cli import app
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.models import Block, LoadedDocument

RAG = """大型語言模型並不知道公司內部的文件，也不知道上週才修訂的規章。

RAG 架構正好解決了這個問題，其運作邏輯是：
1. 先把文件切成段落，為每個段落建立索引；
2. 使用者提問時，先檢索出最相關的幾個段落；
3. 再把這些段落交給模型，請它根據段落回答並附上出處。

導入 RAG 時，權限控管與個人資料保護是最常被忽略的兩件事。
"""

PM = """目錄
1. 產品經理分為哪三種背景? ........ 2
2. 轉職成產品經理要準備什麼? ........ 5

產品經理分為哪三種背景?

產品經理大致來自三種背景：技術背景、設計背景與商業背景。技術背景的產品經理熟悉工程限制，設計背景的產品經理擅長使用者研究，商業背景的產品經理則對營收模式最敏感。

轉職成產品經理要準備什麼?

建議先累積一個完整的作品集，並且主動參與跨部門專案，了解需求訪談與排定優先順序的方法。
"""

TEA = """山嵐茶行由陳阿水創立，最初只在坪林的老街販售包種茶。

陳阿水堅持手工焙火，每一批茶都要經過三次焙火才出貨。茶行後來由他的女兒陳美玉接手經營，陳美玉把門市搬到台北大稻埕，並開始經營網路商店。

茶行目前有兩家門市與一座焙茶工坊，工坊每年焙製約十二噸茶葉。
"""

SOP = """咖啡廳食品安全作業要點

冷藏櫃的溫度必須維持在攝氏 7 度以下，每天開店與打烊時各記錄一次。

牛奶開封後須在 3 天內用完，並在瓶身寫上開封日期。

員工進入吧台前必須洗手至少 20 秒，手部有傷口時應戴手套。
"""


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    root = tmp_path / "articles"
    root.mkdir()
    (root / "rag.txt").write_text(RAG, "utf-8")
    (root / "pm.txt").write_text(PM, "utf-8")
    (root / "tea.txt").write_text(TEA, "utf-8")
    (root / "cafe.txt").write_text(SOP, "utf-8")
    return root


@pytest.fixture
def kb(engine: Zhiku, articles: Path) -> str:
    report = ingest_paths(engine, [articles], "web")
    assert not report.failed
    return "web"


def test_a_sentence_ending_in_a_colon_carries_the_list_after_it(engine: Zhiku, kb: str) -> None:
    ans = engine.ask("RAG 的運作邏輯是什麼？", kb)
    assert not ans.refused
    assert "其運作邏輯是：" in ans.text
    # The list is the answer: every item comes with the sentence that introduces it.
    for item in ("建立索引", "先檢索出最相關的幾個段落", "附上出處"):
        assert item in ans.text
    assert "權限控管" not in ans.text  # the block ends at the blank line
    quoted = ans.citations[0].text
    assert quoted in ans.citations[0].hit.text  # quoted from the stored passage
    assert "架構" in quoted and "架构" not in quoted  # the original, never the folded form


def test_headings_toc_lines_and_restated_questions_are_never_the_answer(
    engine: Zhiku, kb: str
) -> None:
    ans = engine.ask("產品經理分為哪三種背景？", kb)
    assert not ans.refused
    assert "技術背景、設計背景與商業背景" in ans.text
    assert "........" not in ans.text
    quoted = " ".join(c.text for c in ans.citations)
    assert "分為哪三種背景?" not in quoted  # the heading is where it is, not what it says


def test_off_topic_questions_are_refused_with_exit_code_1(
    engine: Zhiku, kb: str, zhiku_home: Path
) -> None:
    for q in ("台積電今天的股價是多少？", "明天台北會下雨嗎？"):
        assert engine.ask(q, kb).refused, q
    engine.close()
    res = CliRunner().invoke(app, ["ask", "台積電今天的股價是多少？", "--kb", kb, "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["refused"] is True


def test_a_question_whose_answer_type_no_passage_has_is_refused(engine: Zhiku, kb: str) -> None:
    # The KB names 陳阿水 several times but never says when he was born.
    assert answer_type("陳阿水是哪一年出生的？") == "year"
    assert engine.ask("陳阿水是哪一年出生的？", kb).refused
    # When the passage has what is asked for, the typed sentence is chosen.
    ans = engine.ask("焙茶工坊每年焙多少茶葉？", kb)
    assert not ans.refused and "十二噸" in ans.text
    ans = engine.ask("牛奶開封後要幾天內用完？", kb)
    assert not ans.refused and "3 天內用完" in ans.text


def test_answer_types() -> None:
    assert answer_type("客服專線是多少？") == "quantity"
    assert answer_type("是誰創立了茶行？") == "person"
    assert answer_type("門市在哪裡？") == "place"
    assert answer_type("為什麼要焙火三次？") == "reason"
    assert answer_type("什麼是 RAG？") == "definition"
    assert answer_type("When was it founded?") == "date"
    assert answer_type("九三砲戰於何年爆發？") == "year"
    # A year is asked for: a day and month is not one, 「同年」 and a century are.
    assert not has_type("9月3日，解放軍發動九三砲戰。", "year")
    assert has_type("1954年國共多次交戰。", "year") and has_type("同年香港…", "year")
    assert has_type("在13世紀許多人逃到喀山。", "year")
    assert answer_type("冷藏櫃的溫度規定") is None


def test_a_faq_question_line_is_not_quoted_as_the_answer(engine: Zhiku) -> None:
    engine.kb("faq", create=True)
    engine.add_loaded(
        "faq",
        "faq.xlsx",
        LoadedDocument(
            "客服常見問題",
            "xlsx",
            [
                Block(
                    "問：客服專線是幾號？\n答：客服專線為 0800-088-168（免付費）。",
                    (),
                    "客服專線是幾號？",
                    kind="qa",
                ),
                Block(
                    "問：可以開立統一編號發票嗎？\n答：可以，請於結帳時填寫統一編號。",
                    (),
                    "可以開立統一編號發票嗎？",
                    kind="qa",
                ),
            ],
        ),
    )
    engine.sync_index("faq")
    ans = engine.ask("客服專線是幾號？", "faq")
    assert not ans.refused
    assert "0800-088-168" in ans.text and "問：" not in ans.text


def test_citations_of_one_place_are_merged(engine: Zhiku, tmp_path: Path) -> None:
    # A plain text without structure: its passages all print as the same place.
    body = (
        "退貨須在收到商品後七天內提出申請。"
        + "說明文字。" * 70
        + "\n\n"
        + "退貨運費由買方負擔，但商品瑕疵時由賣方負擔。"
        + "補充說明。" * 70
        + "\n\n"
        + "退貨商品須保持完整包裝並附上發票。"
    )
    f = tmp_path / "退貨須知.txt"
    f.write_text(body, "utf-8")
    ingest_paths(engine, [f], "shop")
    assert engine.store.list_documents("shop")[0].chunks >= 2
    ans = engine.ask("退貨要在幾天內申請？運費誰負擔？", "shop")
    assert not ans.refused
    places = [(c.hit.doc_title, c.hit.section, c.hit.page_start) for c in ans.citations]
    assert len(places) == len(set(places)) == 1
    assert "七天內" in ans.text and "運費由買方負擔" in ans.text


def test_each_kb_is_calibrated_on_itself_and_refitted_as_it_grows(
    engine: Zhiku, articles: Path, tmp_path: Path
) -> None:
    ingest_paths(engine, [articles], "web")
    cal = engine.refusal_calibration("web")
    assert cal is not None and cal.positives > 20 and cal.negatives > 100
    assert cal.answerable_refused <= cal.max_refused
    assert 0.0 < engine.refusal_threshold("web") < 1.0
    assert len(cal.curve) == 19
    first = cal.chunks
    more = tmp_path / "more"
    more.mkdir()
    for i in range(12):
        (more / f"公告{i}.txt").write_text(
            f"第 {i} 號公告：本公司第 {i} 倉庫自下個月起調整出貨時間為每日上午 {i % 5 + 8} 點。",
            "utf-8",
        )
    ingest_paths(engine, [more], "web")
    again = engine.refusal_calibration("web")
    assert again is not None and again.chunks > first  # refitted on the grown KB
    # A small change does not refit.
    (more / "公告0.txt").write_text("第 0 號公告：倉庫改為上午 9 點出貨。", "utf-8")
    ingest_paths(engine, [more], "web")
    assert engine.refusal_calibration("web").at == again.at  # type: ignore[union-attr]


def test_kb_calibrate_and_show_expose_the_curve(articles: Path, zhiku_home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(articles), "--kb", "web", "-q"]).exit_code == 0
    res = runner.invoke(app, ["kb", "calibrate", "web"])
    assert res.exit_code == 0, res.output
    assert "拒答門檻" in res.stdout and "拒答曲線" in res.stdout
    res = runner.invoke(app, ["kb", "calibrate", "web", "--json"])
    data = json.loads(res.stdout)
    assert 0 < data["threshold"] < 1 and len(data["curve"]) == 19
    res = runner.invoke(app, ["kb", "show", "web", "--json"])
    info = json.loads(res.stdout)
    assert info["refusal_threshold"] == pytest.approx(data["threshold"])
    assert info["settings"]["refusal"]["curve"]
    res = runner.invoke(app, ["kb", "show", "web"])
    assert "拒答門檻" in res.stdout and "校準" in res.stdout
    slope = info["settings"]["refusal"]["length_slope"]
    assert (f"斜率 {slope:.2f}" in res.stdout) == bool(slope)


def _leave_docs(n: int) -> list[tuple[str, LoadedDocument]]:
    docs = []
    for i in range(n):
        docs.append(
            (
                f"hr/{i}.txt",
                LoadedDocument(
                    f"人事公告{i}",
                    "txt",
                    [
                        Block(
                            f"員工第 {i} 年的特別休假依年資計算，"
                            "特別休假未休完的日數依勞工保險規定另計；"
                            f"勞工保險投保薪資依月薪調整，特別休假期間照常投保勞工保險。"
                        )
                    ],
                ),
            )
        )
    docs.append(
        (
            "hr/defer.txt",
            LoadedDocument(
                "特別休假遞延辦法",
                "txt",
                [
                    Block(
                        "員工的特別休假未休完者，經勞雇雙方協商可以遞延至次一年度實施，遞延的日數於次年度"
                        "終結時仍未休完者，應發給工資。"
                    )
                ],
            ),
        )
    )
    return docs


def test_abbreviations_are_learned_from_the_kb_and_expand_queries(engine: Zhiku) -> None:
    engine.kb("hr", create=True)
    for path, doc in _leave_docs(30):
        engine.add_loaded("hr", path, doc)
    engine.sync_index("hr")  # learns the vocabulary with the calibration
    abbr = engine.abbreviations("hr")
    assert abbr.get("特休") == "特别休假"  # folded, like the index
    assert abbr.get("劳保") == "劳工保险"
    terms = engine.query_terms("特休可以遞延嗎？", "hr")
    assert {"特别", "休假"} <= set(terms)
    ans = engine.ask("特休沒休完可以遞延嗎？", "hr")
    assert not ans.refused
    assert ans.citations[0].hit.doc_title == "特別休假遞延辦法"


def test_a_parent_statute_is_preferred_to_its_rules_and_copies_collapse(engine: Zhiku) -> None:
    clause = (
        "勞工在同一雇主或事業單位，繼續工作滿一定期間者，應依下列規定給予特別休假："
        "六個月以上一年未滿者，三日。一年以上二年未滿者，七日。"
    )
    engine.kb("law", create=True)
    engine.add_loaded(
        "law",
        "twlaw://rules",
        LoadedDocument(
            "勞動基準法施行細則", "law", [Block("第 24 條 " + clause, label="第 24 條")]
        ),
    )
    engine.add_loaded(
        "law",
        "twlaw://act",
        LoadedDocument("勞動基準法", "law", [Block("第 38 條 " + clause, label="第 38 條")]),
    )
    for i in range(6):
        engine.add_loaded(
            "law",
            f"twlaw://other{i}",
            LoadedDocument(
                f"其他法規{i}",
                "law",
                [
                    Block(
                        f"第 {i + 1} 條 本規則所稱事業單位，指適用本法之各業雇主。",
                        label=f"第 {i + 1} 條",
                    )
                ],
            ),
        )
    engine.sync_index("law")
    hits = engine.search("特別休假幾天？", "law", k=5)
    assert hits[0].doc_title == "勞動基準法"
    assert "勞動基準法施行細則" in [h.doc_title for h in hits]  # a search lists every passage
    # An answer's passages: the rules' copy of the same clause takes no second place.
    hits = engine.retrieve("特別休假幾天？", "law", k=5, collapse=True).hits
    assert hits[0].doc_title == "勞動基準法"
    assert "勞動基準法施行細則" not in [h.doc_title for h in hits]
    ans = engine.ask("特別休假幾天？", "law")
    assert [c.hit.doc_title for c in ans.citations] == ["勞動基準法"]


HISTORY = {
    "石頭城": "石頭城建於山丘之上，四周環繞護城河。石頭城的城牆非常堅固，上千年中沒有軍隊能夠攻破"
    "它。但隨著大砲的出現，這道牆再也不能保護這座城市。石頭城的城牆以花崗岩砌成，也非常"
    "堅固，至今仍然完整。城裡現在是一座博物館。",
    "哲學家": "霍布斯晚年住在德文郡，最早提出社會契約的說法。他的政治哲學被後人稱為現實主義，影響"
    "了國際關係學。霍布斯晚年也翻譯了荷馬的史詩，並且提出不少說法。",
    "茶": "包種茶是台灣北部常見的茶類，以青心烏龍為主要品種，發酵程度較輕。",
    "咖啡": "咖啡豆烘焙後應在兩週內飲用完畢，並放在陰涼處保存。",
}


@pytest.fixture
def history(engine: Zhiku) -> str:
    engine.kb("hist", create=True)
    for title, body in HISTORY.items():
        engine.add_loaded("hist", f"mem://{title}", LoadedDocument(title, "txt", [Block(body)]))
    engine.sync_index("hist")
    return "hist"


def _answer_with(engine: Zhiku, kb: str, question: str, **params: float) -> str:
    """The extractive answer to ``question`` with the answerer's parameters changed."""
    from zhiku.answer import ExtractiveAnswerer

    hits = engine.search(question, kb, k=5)
    stats = engine.term_stats(question, kb)
    ans = ExtractiveAnswerer(**params).answer(
        question, hits, stats, refuse_below=0.0, tokens=engine.query_terms(question, kb)
    )
    return ans.text


def test_what_the_best_sentence_leaves_out_of_the_question_brings_its_neighbour(
    engine: Zhiku, history: str
) -> None:
    """A question joining two sentences: the one that repeats most of it (城牆非常堅固) is
    not the one that answers (大砲的出現); the neighbour saying the rest comes with it."""
    q = "石頭城的城牆非常堅固，但什麼東西的出現使它不再能保護城市？"
    ans = engine.ask(q, history)
    assert not ans.refused and "大砲的出現" in ans.text
    assert "城牆非常堅固" in ans.text


def test_the_noun_after_the_interrogative_steers_the_choice(
    engine: Zhiku, history: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zhiku.answer
    from zhiku.answer import has_named, named_head

    assert named_head("書中提到了什麼主義的內容？") == "主義"
    assert named_head("他信仰什麼宗教？") == "宗教"
    assert named_head("什麼東西的出現使得城牆不再有用？") is None  # says nothing
    assert has_named("他們多信仰新教。", "宗教", set("他信仰什麼宗教？"))
    assert not has_named("他信仰宗教。", "宗教", set("他信仰什麼宗教？"))
    q = "霍布斯晚年最早提出了什麼主義的說法？"
    ans = engine.ask(q, history)
    assert not ans.refused and "現實主義" in ans.text
    # It is the noun that finds it: read as a question of no particular kind, and
    # without the neighbour that completes the question, the other sentence is chosen.
    monkeypatch.setattr(zhiku.answer, "named_head", lambda question: None)
    assert "現實主義" not in _answer_with(engine, history, q, complement=1.01)


TEAM = (
    "漢諾瓦全能運動隊是德國頂尖的龍舟隊。自2000年成立以來，這支龍舟隊在德國和國際賽事上"
    "獲得了100多塊獎牌。它的訓練地點在漢諾瓦的馬斯湖。"
)


def test_a_sentence_referring_back_brings_what_it_refers_to(engine: Zhiku) -> None:
    """「它的訓練地點…」 leans on 「這支龍舟隊…」, which leans on the sentence naming the
    team: the chain is followed back, so the name the question asks for is quoted."""
    from zhiku.answer import _refers_back

    assert _refers_back("自2000年成立以來，這支龍舟隊獲得了獎牌。")
    assert _refers_back("他們在1808年出版了初版。")
    assert not _refers_back("漢諾瓦全能運動隊是德國頂尖的龍舟隊。")
    engine.kb("team", create=True)
    engine.add_loaded("team", "mem://team", LoadedDocument("下薩克森邦", "txt", [Block(TEAM)]))
    engine.add_loaded("team", "mem://tea", LoadedDocument("茶", "txt", [Block(HISTORY["茶"])]))
    engine.sync_index("team")
    ans = _answer_with(engine, "team", "馬斯湖是哪一龍舟隊的訓練地？")
    assert "漢諾瓦全能運動隊是德國頂尖的龍舟隊" in ans and "馬斯湖" in ans


def test_answer_spans_leave_out_bylines_and_questions_and_keep_list_items() -> None:
    from zhiku.answer import answer_spans
    from zhiku.models import Hit

    text = (
        "作者：張育誠　2024 年 11 月\n你適合哪一條路？\n常見的模型家族，例如：\n"
        "Llama 系列：由 Meta 釋出，採用 Llama 社群授權。\nGemma 系列：由 Google 釋出。"
    )
    hit = Hit(1, 1, "kb", "選型指南", "p", text, None, None, None, None, 1.0)
    quoted = [text[s:e] for s, e in answer_spans(hit)]
    assert not any(q.startswith("作者") or q.endswith("？") for q in quoted)
    assert any(q.startswith("常見的模型家族，例如：") and "Gemma" in q for q in quoted)
    assert "Llama 系列：由 Meta 釋出，採用 Llama 社群授權。" in quoted


def test_a_quantity_asked_with_a_unit_needs_a_number_with_that_unit(engine: Zhiku, kb: str) -> None:
    # The KB names 陳美玉 and has numbers (三次, 兩家門市, 十二噸), but no age: 「幾歲」 asks
    # for a number of years of age, and no passage states one.
    assert engine.ask("陳美玉今年幾歲？", kb).refused
    assert engine.ask("陳美玉今年几岁？", kb).refused  # Simplified
    # A number with the asked unit is found (度, 天), in either script.
    ans = engine.ask("冷藏櫃的溫度要維持在幾度以下？", kb)
    assert not ans.refused and "攝氏 7 度以下" in ans.text
    ans = engine.ask("牛奶开封后要几天内用完？", kb)
    assert not ans.refused and "3 天內用完" in ans.text


def _clause_law(engine: Zhiku) -> None:
    articles = {
        "第 11 條": "被保險人非自願離職，辦理求職登記，自求職登記之日起十四日內仍無法推介就業"
        "或安排職業訓練者，得請領失業給付。",
        "第 16 條": "失業給付按申請人離職辦理本保險退保之當月起前六個月平均月投保薪資百分之六十"
        "按月發給，最長發給六個月。",
        "第 17 條": "被保險人於請領失業給付期間另有工作，其每月工作收入超過基本工資者，不得"
        "請領失業給付。",
    }
    engine.kb("law", create=True)
    engine.add_loaded(
        "law",
        "twlaw://ei",
        LoadedDocument(
            "就業保險法", "law", [Block(f"{k} {v}", label=k) for k, v in articles.items()]
        ),
    )
    for i in range(8):
        engine.add_loaded(
            "law",
            f"twlaw://other{i}",
            LoadedDocument(
                f"其他法規{i}",
                "law",
                [
                    Block(
                        f"第 {i + 1} 條 本規則所稱主管機關，在中央為勞動部；第 {i + 2} 類事業"
                        "單位應置管理人員。",
                        label=f"第 {i + 1} 條",
                    )
                ],
            ),
        )
    engine.sync_index("law")


def test_an_answer_over_clauses_cites_every_clause_that_states_the_rule(engine: Zhiku) -> None:
    _clause_law(engine)
    q = "非自願離職可以請領失業給付嗎？最長發給多久？另有工作收入還能請領嗎？"
    ans = engine.ask(q, "law")
    assert not ans.refused
    labels = [c.hit.label for c in ans.citations]
    # The three articles that state the rule are each cited, once, verified and quoted.
    assert sorted(labels) == ["第 11 條", "第 16 條", "第 17 條"]
    for c in ans.citations:
        assert c.text in c.hit.text
    # In the order retrieval ranked them (the document as a whole weighs in there).
    ranked = [h.label for h in engine.retrieve(q, "law", k=5, collapse=True).hits]
    assert labels == [x for x in ranked if x in labels]


LEAVE = """# 特別休假說明

## 天數怎麼計算

依照現行規定，特別休假的天數如下：

工作滿 6 個月以上、未滿 1 年者：3 日。

工作滿 1 年以上、未滿 2 年者：7 日。

工作滿 3 年以上、未滿 5 年者：每年 14 日。

工作滿 10 年以上者：每 1 年加給 1 日，加至 30 日為止。

特別休假的日期原則上由勞工排定，雇主可以基於急迫需求與勞工協商調整。
"""


def test_a_colon_carries_a_list_of_unmarked_items_one_a_paragraph(
    engine: Zhiku, tmp_path: Path
) -> None:
    # Items without bullets or numbers, separated by blank lines, as web articles and
    # Word exports write them: every item comes with the sentence that introduces them.
    (tmp_path / "leave.txt").write_text(LEAVE, "utf-8")
    assert not ingest_paths(engine, [tmp_path / "leave.txt"], "hr").failed
    ans = engine.ask("工作滿4年有幾天特休？", "hr")
    assert not ans.refused
    assert "天數如下：" in ans.text
    for item in ("3 日", "7 日", "每年 14 日", "加至 30 日為止"):
        assert item in ans.text
    assert "勞工排定" not in ans.text  # the paragraph after the list is not an item


def test_an_answer_that_lacks_what_is_asked_counts_toward_refusing(
    engine: Zhiku, tmp_path: Path
) -> None:
    # 「多少錢」 asks for a sum of money. The passage about 山海茶行 has none; another
    # document has prices. A price elsewhere does not make the sentence about the tea
    # house's 營收 an answer: the quoted span must itself have what is asked for.
    (tmp_path / "tea.txt").write_text(
        "山海茶行由林大山創立，是坪林最早的茶行之一，至今仍在老街上。\n\n"
        "山海茶行的第三代經營者林小雨把門市搬到台北，並開始經營網路商店，營收逐年成長。\n",
        "utf-8",
    )
    (tmp_path / "menu.txt").write_text(
        "坪林老街的茶行多半自己焙茶，高山烏龍每斤售價約 1,200 元，包種茶約 800 元。\n", "utf-8"
    )
    assert not ingest_paths(engine, [tmp_path], "tea").failed
    assert engine.ask("山海茶行一年營收多少錢？", "tea").refused
    ans = engine.ask("高山烏龍一斤多少錢？", "tea")
    assert not ans.refused and "1,200 元" in ans.text
