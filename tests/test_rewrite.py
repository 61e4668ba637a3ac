"""The chat model's query rewrite: the question is rewritten into the knowledge base's
vocabulary before retrieval (through the fake OpenAI server); the rewrite changes what is
retrieved, never what is cited or what the model is asked; a failing model is ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI, cited_leave_answer
from tests.models_util import add, make_engine
from zhiku.engine import Zhiku
from zhiku.generate import CONDENSE_PROMPT, REWRITE_PROMPT

LEAVE = "特別休假應於休假二日前提出申請。"
OVERTIME = (
    "加班應提前申請：提前一天以電子表單申請，申請後由主管核准；臨時加班須於當日提前"
    "申請，未提前申請者不予核給。"
)
QUESTION = "特休要提前幾天申請？"  # 特休: the documents say 特別休假
REWRITE = "特別休假 休假 幾日前 提出申請"


def fill(zk: Zhiku) -> None:
    add(zk, "default", "mem://leave", "員工請假管理辦法", [LEAVE, "病假一年內合計不得超過三十日。"])
    add(zk, "default", "mem://ot", "加班管理規定", [OVERTIME])
    add(zk, "default", "mem://it", "IT帳號申請", ["密碼長度至少十二個字元，每半年須變更一次。"])
    zk.sync_index("default")


def reply(req: dict[str, Any]) -> str:
    system = req["messages"][0]["content"]
    if system == REWRITE_PROMPT:
        return f"改寫後的檢索用語：{REWRITE}"
    if system == CONDENSE_PROMPT:
        return QUESTION
    return cited_leave_answer(req)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI(reply=reply)
    yield s
    s.close()


def requests(server: FakeOpenAI, system: str) -> list[dict[str, Any]]:
    return [b for r, b in server.requests if r == "chat" and b["messages"][0]["content"] == system]


def test_without_the_rewrite_the_wrong_rule_ranks_first(zhiku_home: Path) -> None:
    with make_engine(zhiku_home) as zk:
        fill(zk)
        assert zk.search(QUESTION, "default", k=1)[0].doc_title == "加班管理規定"


def test_rewrite_moves_the_right_passage_up(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server, roles=("chat",))
    fill(zk)
    ans = zk.ask(QUESTION, "default")
    assert ans.mode == "generative" and not ans.refused
    # The model was shown the KB's wording (titles and passages) to rewrite into.
    (rw,) = requests(server, REWRITE_PROMPT)
    assert QUESTION in rw["messages"][1]["content"]
    assert "《加班管理規定》" in rw["messages"][1]["content"]
    # The answer prompt's first source is the leave rule, and it asks the question as asked.
    gen = [
        b
        for r, b in server.requests
        if r == "chat" and b["messages"][0]["content"] not in (REWRITE_PROMPT, CONDENSE_PROMPT)
    ]
    user = gen[-1]["messages"][-1]["content"]
    assert "[1] 《員工請假管理辦法》" in user
    assert f"問題：{QUESTION}" in user and REWRITE not in user
    # Citations are stored passages, never the rewrite.
    (cited,) = ans.citations
    stored = zk.store.db.execute(
        "SELECT text FROM chunks WHERE id=?", (cited.hit.chunk_id,)
    ).fetchone()[0]
    assert cited.text == stored and LEAVE in stored and REWRITE not in stored
    zk.close()


def test_rewrite_can_be_turned_off(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server, roles=("chat",), toml="[answer]\nrewrite_query = false\n")
    fill(zk)
    zk.ask(QUESTION, "default")
    assert requests(server, REWRITE_PROMPT) == []
    zk.close()


def test_failed_rewrite_falls_back_silently(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = make_engine(zhiku_home, server, roles=("chat",), toml="[chat]\nretries = 0\n")
    fill(zk)
    server.fail["chat"] = "500-once"  # the rewrite, the first chat call, fails
    ans = zk.ask(QUESTION, "default")
    assert len(requests(server, REWRITE_PROMPT)) == 1
    assert ans.mode == "generative" and not ans.refused
    assert ans.warnings == []  # nothing for the reader: retrieval used the question alone
    gen = [
        b
        for r, b in server.requests
        if r == "chat" and b["messages"][0]["content"] != REWRITE_PROMPT
    ]
    assert "[1] 《加班管理規定》" in gen[-1]["messages"][-1]["content"]
    zk.close()
