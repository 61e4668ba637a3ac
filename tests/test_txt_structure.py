"""Structure in plain text: a .txt that is Markdown is read as Markdown (title from the
front matter or first heading, no ``##`` in passages or answers), and heading-like
lines of ordinary text give sections that citations carry."""

from __future__ import annotations

from pathlib import Path

from tests.filegen import make_text
from zhiku.engine import Zhiku
from zhiku.ingest import ingest_paths
from zhiku.loaders import load

MARKDOWN_TXT = """---
title: 產品經理入門
tags: [產品, 職涯]
---

## 1. 產品經理的三種背景

產品經理大致來自三種背景：工程、設計與商業。
工程背景的產品經理熟悉技術限制，能與開發團隊快速溝通。

## 2. 每天的工作

每天早上與團隊開站立會議，下午整理使用者訪談紀錄。
"""

PLAIN = """員工手冊

第一章 總則

一、目的
為使員工了解公司規定，特訂定本手冊。

二、適用範圍
本手冊適用於本公司全體正式員工與約聘人員。

第二章 請假

報到須知
新進員工應於報到當日攜帶身分證、存摺影本與體檢報告至人資部門辦理報到。

申請特別休假前請準備：
1. 請假單
2. 代理人簽名
3. 主管核章
以上文件備齊後送人資部門。
"""

NUMBERED_ARTICLE = """產品經理的職涯

1. 產品經理的三種背景
產品經理大致來自三種背景：工程、設計與商業，各有所長。

2. 如何選擇第一份工作
第一份工作最好選擇有資深產品經理帶領的團隊，學習速度最快。
"""


def test_markdown_in_txt_is_read_as_markdown(tmp_path: Path) -> None:
    doc = load(make_text(tmp_path / "article.txt", MARKDOWN_TXT))
    assert doc.kind == "txt" and doc.meta["markup"] == "markdown"
    assert doc.title == "產品經理入門"  # front matter, not the file name
    assert doc.meta["front_matter"]["tags"] == ["產品", "職涯"]
    paras = [b for b in doc.blocks if b.kind == "para"]
    assert all("#" not in b.text and "---" not in b.text for b in doc.blocks)
    assert paras[0].heading_path == ("1. 產品經理的三種背景",)
    # One paragraph per line: a line that ends a sentence ends a block.
    assert paras[0].text == "產品經理大致來自三種背景：工程、設計與商業。"
    assert paras[-1].heading_path == ("2. 每天的工作",)


def test_markdown_txt_title_falls_back_to_the_first_heading(tmp_path: Path) -> None:
    doc = load(make_text(tmp_path / "notes.txt", "## 會議紀錄\n\n下週一上午十點開會。\n"))
    assert doc.title == "會議紀錄"
    plain = load(make_text(tmp_path / "hash.txt", "今天的主題標籤是 #台灣 與 #旅遊，請多分享。\n"))
    assert plain.meta.get("markup") is None  # a hashtag is not a heading
    log = load(make_text(tmp_path / "deploy.log", "# started by cron\nstep 1 ok\nstep 2 ok\n"))
    assert log.meta.get("markup") is None and "# started by cron" in log.blocks[0].text


def test_heading_like_lines_in_plain_text(tmp_path: Path) -> None:
    doc = load(make_text(tmp_path / "handbook.txt", PLAIN))
    assert doc.title == "員工手冊"
    heads = [b.text for b in doc.blocks if b.kind == "heading"]
    assert heads == [
        "員工手冊",
        "第一章 總則",
        "一、目的",
        "二、適用範圍",
        "第二章 請假",
        "報到須知",
    ]
    by_text = {b.text[:6]: b for b in doc.blocks if b.kind == "para"}
    assert by_text["為使員工了解"].heading_path == ("第一章 總則", "一、目的")
    assert by_text["本手冊適用於"].heading_path == ("第一章 總則", "二、適用範圍")
    assert by_text["新進員工應於"].heading_path == ("第二章 請假", "報到須知")
    # A list of short numbered items stays a list, under its section.
    items = [b for b in doc.blocks if b.kind == "para" and b.text[:1] in "123"]
    assert [b.text[:6] for b in items] == ["1. 請假單", "2. 代理人", "3. 主管核"]
    assert all(b.heading_path == ("第二章 請假", "報到須知") for b in items)


def test_numbered_headings_of_an_article(tmp_path: Path) -> None:
    doc = load(make_text(tmp_path / "pm.txt", NUMBERED_ARTICLE))
    heads = [b.text for b in doc.blocks if b.kind == "heading"]
    assert heads == ["產品經理的職涯", "1. 產品經理的三種背景", "2. 如何選擇第一份工作"]


def test_plain_text_citations_carry_a_section(tmp_path: Path, engine: Zhiku) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_text(src / "article.txt", MARKDOWN_TXT)
    make_text(src / "pm.txt", NUMBERED_ARTICLE)
    make_text(src / "handbook.txt", PLAIN)
    ingest_paths(engine, [src], "web")
    ans = engine.ask("新進員工報到要帶什麼？", "web")
    assert not ans.refused
    c = ans.citations[0].to_dict()
    assert c["doc"] == "員工手冊" and c["section"] == "第二章 請假 > 報到須知"
    ans = engine.ask("每天早上要做什麼？", "web")
    assert ans.citations[0].to_dict()["doc"] == "產品經理入門"
    assert ans.citations[0].to_dict()["section"] == "2. 每天的工作"
    assert "#" not in ans.text
    for row in engine.store.db.execute("SELECT text, section FROM chunks"):
        assert "##" not in row[0]
