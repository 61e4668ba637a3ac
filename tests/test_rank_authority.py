"""Document authority learned from the KB's own citations (zhiku/rank.py).

A statute that every regulation refers to (「依勞動基準法第…條」) is preferred when a
colloquial question matches it and a sectoral rule about equally; a question that one
uncited document answers clearly keeps that document first.
"""

from __future__ import annotations

import json

from zhiku.engine import Zhiku
from zhiku.models import Block, LoadedDocument
from zhiku.rank import authority_of, count_citations

STATUTE = (
    "勞動基準法",
    "第 32 條",
    "雇主有使勞工加班之必要者，經工會同意，得將工作時間延長之。延長之工作時間連同正常"
    "工作時間，一日不得超過十二小時；加班之時數，一個月不得超過四十六小時。",
)
# A sectoral rule whose wording happens to fit the colloquial question a little better.
SECTORAL = (
    "船舶作業人員工時要點",
    "第 5 條",
    "船舶作業人員加班之時數，每天不得超過四小時，一個月合計不得超過一百小時，並由船長記錄。",
)
# Regulations that cite the statute by its title (and say nothing about overtime).
CITING = [
    (
        f"{name}",
        "第 2 條",
        f"本{kind}依勞動基準法第 {n} 條規定訂定之，{topic}",
    )
    for n, (name, kind, topic) in enumerate(
        [
            ("勞工請假規則", "規則", "勞工請婚假、喪假、病假，應依本規則辦理。"),
            ("事業單位工作規則審核要點", "要點", "工作規則應報主管機關核備。"),
            ("技術生訓練職類及標準", "標準", "技術生之訓練期間與職類由中央主管機關定之。"),
            ("工資墊償基金提繳及墊償管理辦法", "辦法", "雇主應按月提繳積欠工資墊償基金。"),
            ("勞工退休準備金提撥及管理辦法", "辦法", "雇主應按月提撥勞工退休準備金。"),
        ],
        start=20,
    )
]
# Documents that share the question's background words, so BM25 has many weak
# candidates and no clear winner (as in a real law corpus).
WORDS = ["公司", "主管", "每天", "小時", "一個月", "合法", "趕貨", "這個月"]
BACKGROUND = [
    (
        f"地方行政規則{i}",
        "第 1 條",
        "本規則所稱"
        + "、".join(WORDS[(i + j) % 8] for j in range(5))
        + f"之事項，由第{i}區公所辦理。",
    )
    for i in range(40)
]

QUESTION = "我們公司這個月主管說要趕貨，每天加班 4 小時，一個月快 90 小時，這樣合法嗎？"


def _law_kb(engine: Zhiku) -> str:
    engine.kb("law", create=True)
    for title, label, text in [STATUTE, SECTORAL, *CITING, *BACKGROUND]:
        engine.add_loaded(
            "law",
            f"twlaw://{title}",
            LoadedDocument(title, "law", [Block(f"{label} {text}", label=label)]),
        )
    engine.sync_index("law")
    engine.learn_vocabulary("law")
    return "law"


def test_citations_count_other_documents_by_title_longest_match_first() -> None:
    titles = {1: "勞動基準法", 2: "勞動基準法施行細則", 3: "勞工請假規則", 4: "工作規則要點"}
    chunks = [
        (1, "本法依勞動基準法之精神…"),  # its own title: not a citation
        (2, "本細則依勞動基準法第八十五條規定訂定之。"),
        (3, "本規則依勞動基準法第四十三條規定訂定之。依勞動基準法辦理。"),  # one document
        (4, "依勞動基準法施行細則第七條辦理。"),  # the rules, not the act
        (4, "參照勞工請假規則辦理。"),
    ]
    counts = count_citations(chunks, titles)
    assert counts == {"勞動基準法": 2}  # 勞工請假規則 and 細則 cited once each: below the floor
    prior = authority_of({"勞動基準法": 40, "民法": 9, "某辦法": 2})
    assert prior["勞動基準法"] == 1.0
    assert 0 < prior["某辦法"] < prior["民法"] < 1.0
    assert authority_of({}) == {}


def test_the_statute_everything_cites_outranks_a_sectoral_rule(engine: Zhiku) -> None:
    kb = _law_kb(engine)
    counts = json.loads(engine.store.get_meta(f"citations:{engine.store.get_kb(kb).id}", ""))
    assert counts == {"勞動基準法": len(CITING)}
    titles = [h.doc_title for h in engine.search(QUESTION, kb, k=5)]
    assert titles[0] == "勞動基準法", titles
    assert "船舶作業人員工時要點" in titles  # reordered, not removed


def test_a_clear_winner_keeps_its_place(engine: Zhiku) -> None:
    kb = _law_kb(engine)
    hits = engine.search("船舶作業人員的加班時數由船長記錄嗎", kb, k=3)
    assert hits[0].doc_title == "船舶作業人員工時要點"


def test_labelled_documents_neither_cite_nor_are_counted(engine: Zhiku) -> None:
    """The prior applies to every caller's ranking, so text some callers may not see
    must not shape it (zhiku/access.py)."""
    secret = {"access_groups": ["secret"], "access_level": 3}
    engine.kb("mixed", create=True)
    engine.add_loaded(
        "mixed", "d://act", LoadedDocument(STATUTE[0], "law", [Block(STATUTE[2])]), meta=secret
    )
    for title, _, text in CITING:
        engine.add_loaded("mixed", f"d://{title}", LoadedDocument(title, "law", [Block(text)]))
    engine.add_loaded(
        "mixed",
        "d://memo",
        LoadedDocument("內部簽呈", "txt", [Block("依工資墊償基金提繳及墊償管理辦法辦理。")]),
        meta=secret,
    )
    engine.add_loaded(
        "mixed",
        "d://memo2",
        LoadedDocument(
            "內部簽呈二", "txt", [Block("依工資墊償基金提繳及墊償管理辦法第三條辦理。")]
        ),
        meta=secret,
    )
    engine.sync_index("mixed")
    engine.learn_vocabulary("mixed")
    counts = json.loads(engine.store.get_meta(f"citations:{engine.store.get_kb('mixed').id}", ""))
    assert counts == {}  # the act is labelled; the memos citing the fund rules are too
