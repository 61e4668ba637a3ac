"""Taiwan Traditional output (zhiku.tw): a chat model's Simplified answer is converted
with OpenCC s2twp, streamed too; document quotes and citations are never converted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.fake_openai import FakeOpenAI
from tests.models_util import add, make_engine
from zhiku.cli import app
from zhiku.generate import CONDENSE_PROMPT
from zhiku.tw import TaiwanStream, is_simplified, to_taiwan

SIMPLIFIED = "根据资料，员工的特别休假应于两天前申请[1]。软件的内存设置请参考信息部门的说明。"
TAIWAN = "根據資料，員工的特別休假應於兩天前申請[1]。軟體的記憶體設定請參考資訊部門的說明。"


def test_simplified_clauses_become_taiwan_traditional() -> None:
    assert to_taiwan(SIMPLIFIED) == TAIWAN
    assert is_simplified("软件的内存") and not is_simplified("台灣的捷運系統")


def test_traditional_text_and_quotes_are_left_alone() -> None:
    # s2twp alone would turn 台灣 into 臺灣 and 發佈 into 釋出: already-Traditional
    # clauses (a quoted document sentence) are not touched.
    quote = "依文件所述：「台灣分公司的公告發佈於網站」[2]。"
    assert to_taiwan(quote) == quote
    mixed = "资料写道：「台灣分公司的公告發佈於網站」，请参考。"
    assert to_taiwan(mixed) == "資料寫道：「台灣分公司的公告發佈於網站」，請參考。"


def test_phrase_split_across_chunks_is_still_converted() -> None:
    tw = TaiwanStream()
    out = "".join(tw.feed(ch) for ch in "电脑的内存不足") + tw.finish()
    assert out == "電腦的記憶體不足"
    assert "內存" not in out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_chunking_gives_the_whole_conversion(data: st.DataObject) -> None:
    text = SIMPLIFIED * 2
    cuts = sorted(data.draw(st.sets(st.integers(1, len(text) - 1), max_size=20)))
    tw = TaiwanStream()
    out = ""
    prev = 0
    for c in [*cuts, len(text)]:
        out += tw.feed(text[prev:c])
        prev = c
    out += tw.finish()
    assert out == to_taiwan(text)


# --- through the engine, with a chat model that answers in Simplified ----------------------

DOC = "台灣分公司的員工特別休假應於休假二日前提出申請。"


def _reply(req: dict[str, Any]) -> str:
    if req["messages"][0]["content"] == CONDENSE_PROMPT:
        return "特別休假要提前幾天申請？"
    return "根据资料，台湾分公司的特别休假应于休假两天前提出申请[1]。"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI(reply=_reply)
    yield s
    s.close()


def _stream(zk: Any, question: str) -> tuple[str, dict[str, Any]]:
    events = list(zk.ask_stream(question, "default"))
    text = "".join(e["text"] for e in events if e["type"] == "delta")
    return text, events[-1]


def test_generated_answer_is_converted_citations_are_not(
    zhiku_home: Path, server: FakeOpenAI
) -> None:
    zk = make_engine(zhiku_home, server, roles=("chat",))
    add(zk, "default", "mem://leave", "請假辦法", [DOC])
    zk.sync_index("default")
    server.chunk_size = 1  # one character per delta: phrases split across chunks
    text, done = _stream(zk, "特別休假要提前幾天申請？")
    answer = done["answer"]
    assert done["mode"] == "generative"
    assert answer["answer"] == text == "根據資料，臺灣分公司的特別休假應於休假兩天前提出申請[1]。"
    assert answer["citations"][0]["text"] == DOC  # the stored passage, 台灣 as written
    # Off for this KB: the model's words reach the reader as it wrote them.
    zk.store.update_kb_settings("default", {"tw_output": False})
    text, done = _stream(zk, "特別休假要提前幾天申請？")
    assert text == done["answer"]["answer"] == _reply({"messages": [{"content": ""}]})
    zk.close()


def test_kb_set_and_show(zhiku_home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["kb", "create", "hr"]).exit_code == 0
    res = runner.invoke(app, ["kb", "show", "hr", "--json"])
    assert '"tw_output": true' in res.output
    res = runner.invoke(app, ["kb", "set", "hr", "--no-tw-output"])
    assert res.exit_code == 0 and "關" in res.output
    res = runner.invoke(app, ["kb", "show", "hr"])
    assert "生成回答轉臺灣正體" in res.output and "關" in res.output
    assert '"tw_output": false' in runner.invoke(app, ["kb", "show", "hr", "--json"]).output
