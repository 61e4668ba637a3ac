"""The command line with models: ask (JSON and streamed), chat, models check/show/embed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fake_openai import FakeOpenAI, cited_leave_answer, free_port
from zhiku.cli import app
from zhiku.generate import CONDENSE_PROMPT, REWRITE_PROMPT

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def reply(req: dict[str, Any]) -> str:
    if req["messages"][0]["content"] == CONDENSE_PROMPT:
        return "特別休假要提前幾天申請？"
    return cited_leave_answer(req)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI(reply=reply)
    yield s
    s.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def env_for(server: FakeOpenAI, *roles: str) -> dict[str, str]:
    env = {}
    for role in roles:
        env[f"ZHIKU_{role.upper()}_URL"] = server.url
        env[f"ZHIKU_{role.upper()}_MODEL"] = f"{role}-model"
    return env


def ingest(runner: CliRunner, env: dict[str, str] | None = None) -> Any:
    res = runner.invoke(app, ["ingest", str(SAMPLES), "--json"], env=env)
    assert res.exit_code == 0, res.output
    return res


def test_ask_json_shape_and_markers(runner: CliRunner, server: FakeOpenAI) -> None:
    ingest(runner)
    res = runner.invoke(
        app, ["ask", "特別休假要提前幾天申請？", "--json"], env=env_for(server, "chat")
    )
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert set(obj) == {"answer", "refused", "citations"}
    assert obj["refused"] is False
    for c in obj["citations"]:
        assert set(c) == {"doc", "path", "section", "page", "text", "score"}
    marks = [int(m) for m in re.findall(r"\[(\d+)\]", obj["answer"])]
    assert marks and all(1 <= m <= len(obj["citations"]) for m in marks)
    assert obj["citations"][marks[0] - 1]["doc"] == "員工請假管理辦法"


def test_ask_streams_and_lists_sources(runner: CliRunner, server: FakeOpenAI) -> None:
    ingest(runner)
    res = runner.invoke(app, ["ask", "特別休假要提前幾天申請？"], env=env_for(server, "chat"))
    assert res.exit_code == 0, res.output
    assert "特別休假應於休假二日前提出申請[1]。" in res.stdout
    assert "出處" in res.stdout and "[1] 《員工請假管理辦法》" in res.stdout


def test_ask_with_model_down_falls_back_with_message(runner: CliRunner, zhiku_home: Path) -> None:
    ingest(runner)
    (zhiku_home / "zhiku.toml").write_text("[chat]\nretries = 0\n", "utf-8")
    env = {"ZHIKU_CHAT_URL": f"http://127.0.0.1:{free_port()}/v1", "ZHIKU_CHAT_MODEL": "m"}
    res = runner.invoke(app, ["ask", "特別休假要提前幾天申請？", "--json"], env=env)
    assert res.exit_code == 0
    obj = json.loads(res.stdout)
    assert not obj["refused"] and obj["citations"]
    assert "《員工請假管理辦法》" in obj["answer"]  # the extractive answer
    assert "注意" in res.stderr and "無法連線到模型伺服器" in res.stderr
    assert "摘錄式" in res.stderr


def test_refusal_exit_code_without_model_call(runner: CliRunner, server: FakeOpenAI) -> None:
    ingest(runner)
    res = runner.invoke(
        app, ["ask", "火星基地的氧氣配額是多少公升？", "--json"], env=env_for(server, "chat")
    )
    assert res.exit_code == 1 and json.loads(res.stdout)["refused"] is True
    # Only the query rewrite (never shown) asked the model anything.
    assert [b["messages"][0]["content"] for r, b in server.requests if r == "chat"] == [
        REWRITE_PROMPT
    ]


def test_chat_keeps_the_conversation(runner: CliRunner, server: FakeOpenAI) -> None:
    ingest(runner)
    res = runner.invoke(
        app,
        ["chat"],
        input="特別休假怎麼申請？\n那要提前幾天？\n/exit\n",
        env=env_for(server, "chat"),
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.count("特別休假應於休假二日前提出申請[1]。") == 2
    condense = [
        b
        for r, b in server.requests
        if r == "chat" and b["messages"][0]["content"] == CONDENSE_PROMPT
    ]
    assert len(condense) == 1  # only the follow-up is condensed
    assert "特別休假怎麼申請？" in condense[0]["messages"][1]["content"]


def test_chat_without_model_and_new_conversation(runner: CliRunner) -> None:
    ingest(runner)
    res = runner.invoke(app, ["chat"], input="特別休假要提前幾天申請？\n/new\n\n")
    assert res.exit_code == 0, res.output
    assert "摘錄式" in res.stderr and "已開始新的對話" in res.stderr
    assert "《員工請假管理辦法》" in res.stdout


def test_models_check_all_roles(runner: CliRunner, server: FakeOpenAI) -> None:
    env = env_for(server, "chat", "embed", "rerank")
    res = runner.invoke(app, ["models", "check", "--json"], env=env)
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["ok"] is True
    assert {b["role"] for b in obj["backends"]} == {"chat", "embed", "rerank"}
    by = {b["role"]: b for b in obj["backends"]}
    assert "向量維度 32" in by["embed"]["detail"]
    assert by["rerank"]["detail"].startswith("分數 ")
    server.fail["chat"] = "401"
    res = runner.invoke(app, ["models", "check"], env=env)
    assert res.exit_code == 1
    assert "失敗" in res.stdout and "正常" in res.stdout and "invalid api key" in res.stdout


def test_models_check_nothing_configured(runner: CliRunner) -> None:
    res = runner.invoke(app, ["models", "check"])
    assert res.exit_code == 0 and "沒有設定任何模型" in res.stdout


def test_ingest_embeds_with_progress_then_show_embed_calibrate(
    runner: CliRunner, server: FakeOpenAI
) -> None:
    env = env_for(server, "embed")
    res = ingest(runner, env)
    assert "建立向量" in res.stderr and "段/秒" in res.stderr
    show = json.loads(runner.invoke(app, ["models", "show", "--json"], env=env).stdout)
    row = next(r for r in show["kbs"] if r["kb"] == "default")
    assert row["vectors"]["dim"] == 32 and row["vectors"]["rows"] > 10
    assert row["embed"].startswith(server.url)
    emb = json.loads(runner.invoke(app, ["models", "embed", "--rebuild", "--json"], env=env).stdout)
    assert emb["rebuilt"] and emb["embedded"] == 0 and emb["cached"] == emb["vectors"]
    cal = runner.invoke(app, ["models", "calibrate", "--auto", "20", "--json"], env=env)
    assert cal.exit_code == 0, cal.output
    c = json.loads(cal.stdout)
    assert c["questions"] > 5 and c["saved"] and 0 <= c["hybrid_r_at_1"] <= 1
    res = runner.invoke(app, ["search", "特別休假", "--json"], env=env)
    assert json.loads(res.stdout)["hits"]


def test_models_embed_needs_an_embedder(runner: CliRunner) -> None:
    ingest(runner)
    res = runner.invoke(app, ["models", "embed"])
    assert res.exit_code == 2 and "沒有設定嵌入模型" in res.stderr


def test_calibrate_from_question_file(
    runner: CliRunner, server: FakeOpenAI, tmp_path: Path
) -> None:
    env = env_for(server, "embed")
    ingest(runner, env)
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text(
        "\n".join(
            json.dumps(x, ensure_ascii=False)
            for x in [
                {"question": "特別休假要提前幾天申請？", "doc": "員工請假管理辦法"},
                {"question": "密碼多久要換一次？", "doc": "IT 帳號申請與管理說明"},
            ]
        )
        + "\n",
        "utf-8",
    )
    res = runner.invoke(
        app, ["models", "calibrate", "--questions", str(qfile), "--dry-run", "--json"], env=env
    )
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)
    assert c["questions"] == 2 and c["saved"] is False
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n', "utf-8")
    res = runner.invoke(app, ["models", "calibrate", "--questions", str(bad)], env=env)
    assert res.exit_code == 2
