"""Generated answers: prompt, packing, streamed citation checks, fallbacks, multi-turn."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fake_openai import FakeOpenAI, free_port
from tests.models_util import fill, make_engine
from zhiku.backends import estimate_tokens
from zhiku.engine import Zhiku
from zhiku.generate import CONDENSE_PROMPT, REWRITE_PROMPT, CitationStream, pack_sources
from zhiku.models import Hit

ANSWER = "特別休假應於休假二日前提出申請[1]。"


def reply_for(answer: str, condensed: str = "特別休假要提前幾天申請？") -> Any:
    def reply(req: dict[str, Any]) -> str:
        if req["messages"][0]["content"] == CONDENSE_PROMPT:
            return condensed
        if req["messages"][0]["content"] == REWRITE_PROMPT:
            return ""  # no rewrite (tests/test_rewrite.py tests it)
        return answer

    return reply


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI(reply=reply_for(ANSWER))
    yield s
    s.close()


def chat_engine(home: Path, server: FakeOpenAI, toml: str | None = None) -> Zhiku:
    zk = make_engine(home, server, roles=("chat",), toml=toml)
    fill(zk)
    return zk


def answer_request(server: FakeOpenAI) -> dict[str, Any]:
    reqs = [
        b
        for r, b in server.requests
        if r == "chat" and b["messages"][0]["content"] != CONDENSE_PROMPT
    ]
    return reqs[-1]


# --- the streaming citation filter ----------------------------------------------------------


def run(text: str, n: int = 3, hold: bool = True, pieces: int = 1) -> tuple[str, CitationStream]:
    f = CitationStream(n, hold_until_cited=hold)
    out = ""
    step = max(1, len(text) // pieces) if pieces > 1 else len(text) or 1
    for i in range(0, len(text), step):
        out += f.feed(text[i : i + step])
    out += f.finish()
    assert out == f.text
    return out, f


@pytest.mark.parametrize(
    "raw,expected,cited",
    [
        ("甲[2]乙[1]丙[2]。", "甲[1]乙[2]丙[1]。", [2, 1]),
        ("見 [1, 3]。", "見[1][2]。", [1, 3]),
        ("見【2】與［來源 3］。", "見[1]與[2]。", [2, 3]),
        ("見[資料來源1]及[Source 2]。", "見[1]及[2]。", [1, 2]),
        ("見[1]【3†source】。", "見[1][2]。", [1, 3]),
        ("不存在[7]，存在[1]。", "不存在，存在[1]。", [1]),
        ("[注意]請見[1]。", "[注意]請見[1]。", [1]),
        ("<think>先想想[2]</think>答案[1]。", "答案[1]。", [1]),
        ("  \n答案[1]。\n\n", "答案[1]。", [1]),
        ("a < b，見[1]", "a < b，見[1]", [1]),
    ],
)
def test_markers_normalised_verified_renumbered(raw: str, expected: str, cited: list[int]) -> None:
    for pieces in (1, 3, len(raw)):
        out, f = run(raw, pieces=pieces)
        assert out == expected, pieces
        assert f.cited == cited


def test_removed_markers_are_counted() -> None:
    out, f = run("甲[4]乙[0]丙[1]丁[2023]", n=3)
    assert f.removed == 2 and f.cited == [1]
    assert out == "甲乙丙[1]丁[2023]"  # four digits: a year, not a marker


def test_nothing_released_until_a_valid_citation() -> None:
    f = CitationStream(2)
    assert f.feed("根據辦法，特休") == ""
    assert f.feed("需提前二日[9]") == ""
    assert f.feed("申請[2]") == "根據辦法，特休需提前二日申請[1]"
    assert f.feed("。其餘") == "。其餘"
    f2 = CitationStream(2)
    f2.feed("沒有引用的回答。")
    assert f2.finish() == "" and f2.held_text() == "沒有引用的回答。" and not f2.cited


def test_keep_policy_streams_at_once() -> None:
    f = CitationStream(2, hold_until_cited=False)
    assert f.feed("沒有引用") == "沒有引用"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="答案是[]【】12 3<think>/，。x", max_size=40), st.data())
def test_any_split_gives_the_same_answer(text: str, data: st.DataObject) -> None:
    whole, f1 = run(text)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    f = CitationStream(3)
    out, last = "", 0
    for c in [*cuts, len(text)]:
        out += f.feed(text[last:c])
        last = c
    out += f.finish()
    assert out == f.text == whole
    assert f.cited == f1.cited
    for m in re.findall(r"\[(\d+)\]", whole):
        assert 1 <= int(m) <= len(f.cited)


# --- packing to the context budget ------------------------------------------------------------


def hit(i: int, text: str) -> Hit:
    return Hit(
        chunk_id=i,
        doc_id=i,
        kb="kb",
        doc_title=f"文件{i}",
        path=f"mem://{i}",
        text=text,
        section="第一章 > 第二條",
        label=None,
        page_start=3,
        page_end=4,
        score=1.0,
    )


def test_pack_sources_respects_budget() -> None:
    hits = [hit(i, "請假規定。" * 60) for i in range(1, 6)]  # ~300 tokens each
    srcs = pack_sources(hits, 800, estimate_tokens)
    assert [s.number for s in srcs] == list(range(1, len(srcs) + 1))
    assert 2 <= len(srcs) < 5
    assert sum(estimate_tokens(s.render()) for s in srcs) <= 800
    assert srcs[-1].text.endswith("…")  # the last one was cut to fit
    assert srcs[0].render().startswith("[1] 《文件1》 第一章 > 第二條 第 3–4 頁\n")
    # A budget smaller than one source still keeps a cut first source.
    one = pack_sources(hits, 10, estimate_tokens)
    assert len(one) == 1 and len(one[0].text) < len(hits[0].text)


# --- the engine with a chat model ---------------------------------------------------------------


def test_generated_answer_with_verified_citations(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = chat_engine(zhiku_home, server)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.mode == "generative" and not ans.refused
    assert ans.text == ANSWER
    assert len(ans.citations) == 1 and ans.citations[0].hit.path == "mem://leave"
    d = ans.to_dict()
    assert set(d) == {"answer", "refused", "citations"}
    assert set(d["citations"][0]) == {"doc", "path", "section", "page", "text", "score"}
    req = answer_request(server)
    system, user = req["messages"][0]["content"], req["messages"][-1]["content"]
    assert "只根據" in system and "[1]" in system and "繁體中文" in system
    assert "[1] 《員工請假管理辦法》" in user and "問題：特別休假要提前幾天申請？" in user
    assert req["stream"] is True
    zk.close()


def test_marker_numbers_follow_citations(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = chat_engine(zhiku_home, server)

    def reply(req: dict[str, Any]) -> str:
        user = req["messages"][-1]["content"]
        n = {m.group(2): m.group(1) for m in re.finditer(r"\[(\d+)\] 《(.+?)》", user)}
        return (
            f"密碼規則見[{n['IT帳號申請']}]，特休見[{n['員工請假管理辦法']}]"
            f"，再見[{n['IT帳號申請']}]與[99]。"
        )

    server.reply = reply
    # Two questions in one: no single passage covers it, the top passages together do.
    ans = zk.ask("特別休假要提前幾天？密碼長度至少幾個字元？", "default")
    assert ans.mode == "generative", ans.warnings
    assert ans.text == "密碼規則見[1]，特休見[2]，再見[1]與。"
    assert [c.hit.path for c in ans.citations] == ["mem://it", "mem://leave"]
    assert any(w.startswith("citation_removed") for w in ans.warnings)
    stored = {r[0] for r in zk.store.db.execute("SELECT id FROM chunks")}
    assert all(c.hit.chunk_id in stored for c in ans.citations)
    zk.close()


def test_uncited_answer_replaced_by_extractive(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("特別休假要提前兩天申請，來源[8]。")
    zk = chat_engine(zhiku_home, server)
    events = list(zk.ask_stream("特別休假要提前幾天申請？", "default"))
    done = events[-1]
    text = "".join(e["text"] for e in events[:-1])
    assert done["type"] == "done" and done["mode"] == "extractive"
    assert text == done["answer"]["answer"]
    assert "來源[8]" not in text and "《員工請假管理辦法》" in text  # the extractive answer
    assert any(w.startswith("uncited") for w in done["warnings"])
    zk.close()


def test_uncited_policy_refuse(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("兩天。")
    zk = chat_engine(zhiku_home, server, toml='[answer]\nuncited = "refuse"\n')
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.refused and ans.text == "知識庫中找不到相關資料。" and not ans.citations
    zk.close()


def test_model_refusal_is_a_refusal(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("知識庫中找不到相關資料。")
    zk = chat_engine(zhiku_home, server)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.refused and ans.mode == "generative" and not ans.citations
    zk.close()


def test_no_model_call_when_nothing_relevant(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = chat_engine(zhiku_home, server)
    ans = zk.ask("火星基地的氧氣配額是多少公升？", "default")
    assert ans.refused
    # Only the query rewrite (never shown) asked the model anything.
    assert [b["messages"][0]["content"] for r, b in server.requests if r == "chat"] == [
        REWRITE_PROMPT
    ]
    zk.close()


def test_streams_in_pieces_that_concatenate(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("根據辦法[1]，特別休假應於休假二日前提出申請，病假另計[1]。")
    zk = chat_engine(zhiku_home, server)
    # (Taiwan conversion, on by default, releases whole clauses: tests/test_tw.py.)
    zk.store.update_kb_settings("default", {"tw_output": False})
    events = list(zk.ask_stream("特別休假要提前幾天申請？", "default"))
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert len(deltas) > 5  # token by token after the first citation
    assert "".join(deltas) == events[-1]["answer"]["answer"]
    assert events[-1]["mode"] == "generative"
    zk.close()


def test_think_blocks_are_dropped(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("<think>使用者問特休[3]……</think>\n\n特休需提前二日申請[1]。")
    zk = chat_engine(zhiku_home, server)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.text == "特休需提前二日申請[1]。"
    zk.close()


def test_chat_server_down_falls_back(zhiku_home: Path) -> None:
    zk = make_engine(
        zhiku_home, None, ZHIKU_CHAT_URL=f"http://127.0.0.1:{free_port()}/v1", ZHIKU_CHAT_MODEL="m"
    )
    fill(zk)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.mode == "extractive" and not ans.refused
    assert ans.citations and ans.citations[0].hit.path == "mem://leave"
    assert any(w.startswith("chat_failed") and "無法連線" in w for w in ans.warnings)
    zk.close()


def test_garbage_before_any_citation_falls_back(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.fail["chat"] = "sse-garbage"
    zk = chat_engine(zhiku_home, server)
    events = list(zk.ask_stream("特別休假要提前幾天申請？", "default"))
    assert events[-1]["mode"] == "extractive"
    assert "".join(e["text"] for e in events[:-1]) == events[-1]["answer"]["answer"]
    assert any("串流內容無法解析" in w for w in events[-1]["warnings"])
    zk.close()


def test_persona_and_language_per_kb(zhiku_home: Path, server: FakeOpenAI) -> None:
    toml = '[kb.default]\nsystem_prompt = "你是 ACME 的客服小幫手，語氣親切。"\nlanguage = "en"\n'
    zk = chat_engine(zhiku_home, server, toml=toml)
    zk.ask("特別休假要提前幾天申請？", "default")
    system = answer_request(server)["messages"][0]["content"]
    assert "ACME 的客服小幫手" in system and "English" in system
    zk.close()


def test_context_budget_limits_the_prompt(zhiku_home: Path, server: FakeOpenAI) -> None:
    toml = "[chat]\ncontext_tokens = 700\nmax_tokens = 200\n"
    zk = make_engine(zhiku_home, server, roles=("chat",), toml=toml)
    fill(zk)
    from tests.models_util import add

    add(zk, "default", "mem://long", "員工請假管理辦法附錄", ["特別休假申請流程說明。" * 80])
    zk.sync_index("default")
    zk.ask("特別休假申請", "default", k=5)
    req = answer_request(server)
    used = sum(estimate_tokens(m["content"]) + 4 for m in req["messages"])
    assert used <= 700 - 200
    assert "…" in req["messages"][-1]["content"]  # the long passage was cut to fit
    zk.close()


def test_follow_up_condensed_by_the_model(zhiku_home: Path, server: FakeOpenAI) -> None:
    zk = chat_engine(zhiku_home, server)
    history = [
        {"role": "user", "content": "特別休假怎麼申請？"},
        {"role": "assistant", "content": "需提出申請[1]。"},
    ]
    ans = zk.ask_stream("那要提前幾天？", "default", history=history)
    done = list(ans)[-1]
    assert done["mode"] == "generative"
    condense = [
        b
        for r, b in server.requests
        if r == "chat" and b["messages"][0]["content"] == CONDENSE_PROMPT
    ]
    assert len(condense) == 1 and "追問：那要提前幾天？" in condense[0]["messages"][1]["content"]
    req = answer_request(server)
    roles = [m["role"] for m in req["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert req["messages"][2]["content"] == "需提出申請。"  # old markers stripped
    assert "《員工請假管理辦法》" in req["messages"][-1]["content"]
    zk.close()


def test_follow_up_without_model_uses_previous_question(zhiku_home: Path) -> None:
    zk = make_engine(zhiku_home)
    fill(zk)
    alone = zk.ask("那要多久內？", "default")
    assert alone.refused  # the follow-up alone names nothing
    history = [
        {"role": "user", "content": "貨品破損怎麼處理？"},
        {"role": "assistant", "content": "通報物流窗口。"},
    ]
    events = list(zk.ask_stream("那要多久內？", "default", history=history))
    done = events[-1]["answer"]
    assert not done["refused"] and done["citations"][0]["path"] == "mem://ship"
    zk.close()


def test_empty_reply_falls_back(zhiku_home: Path, server: FakeOpenAI) -> None:
    server.reply = reply_for("<think>想了很久，用完了所有 token")
    zk = chat_engine(zhiku_home, server)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.mode == "extractive" and not ans.refused
    assert any(w.startswith("chat_empty") for w in ans.warnings)
    zk.close()
