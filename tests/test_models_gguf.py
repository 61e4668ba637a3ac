"""Chat with a real GGUF file through llama-cpp-python (the ``[gguf]`` extra).

The model is written by the test (``tests/gguf_tiny.py``): a one-layer llama whose
greedy output is fixed, so the whole path — load, the file's chat template, tokenise,
decode, stream, verify citations — runs for real in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the [gguf] extra (llama-cpp-python)")
pytest.importorskip("gguf", reason="needs the gguf package (dev extra)")

from tests.gguf_tiny import write_tiny_gguf  # noqa: E402
from tests.models_util import fill, make_engine  # noqa: E402
from zhiku.backends import BackendConfig, ModelBadResponse, build  # noqa: E402
from zhiku.backends.gguf import LlamaCppChat  # noqa: E402


@pytest.fixture(scope="module")
def cited_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny-cited.gguf"
    return write_tiny_gguf(path, ["根", "據", "辦", "法", "[", "1", "]", "。"])


@pytest.fixture(scope="module")
def uncited_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny-uncited.gguf"
    return write_tiny_gguf(path, ["兩", "天", "。"])


def test_gguf_chat_streams(cited_model: Path) -> None:
    chat = build(
        BackendConfig(role="chat", path=str(cited_model), context_tokens=1024, max_tokens=32)
    )
    assert isinstance(chat, LlamaCppChat)
    msgs = [
        {"role": "system", "content": "只根據資料回答。"},
        {"role": "user", "content": "特別休假要提前幾天申請？"},
    ]
    pieces = list(chat.stream(msgs))
    assert pieces == ["根", "據", "辦", "法", "[", "1", "]", "。"]
    assert chat.complete(msgs) == "根據辦法[1]。"
    # The model's own tokenizer counts tokens (byte-level: 3 per CJK character here).
    assert chat.count_tokens("請假") == 6
    chat.close()


def test_engine_answers_with_a_gguf_model(zhiku_home: Path, cited_model: Path) -> None:
    zk = make_engine(zhiku_home, ZHIKU_CHAT_PATH=str(cited_model))
    fill(zk)
    events = list(zk.ask_stream("特別休假要提前幾天申請？", "default"))
    done = events[-1]
    assert done["mode"] == "generative"
    assert done["answer"]["answer"] == "根據辦法[1]。"
    assert "".join(e["text"] for e in events[:-1]) == "根據辦法[1]。"
    assert done["answer"]["citations"][0]["path"] == "mem://leave"
    zk.close()


def test_gguf_answer_without_citation_falls_back(zhiku_home: Path, uncited_model: Path) -> None:
    zk = make_engine(zhiku_home, ZHIKU_CHAT_PATH=str(uncited_model))
    fill(zk)
    ans = zk.ask("特別休假要提前幾天申請？", "default")
    assert ans.mode == "extractive" and "《員工請假管理辦法》" in ans.text
    assert any(w.startswith("uncited") for w in ans.warnings)
    zk.close()


def test_missing_or_broken_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelBadResponse, match="找不到 GGUF"):
        build(BackendConfig(role="chat", path=str(tmp_path / "none.gguf")))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    chat = build(BackendConfig(role="chat", path=str(bad)))
    with pytest.raises(ModelBadResponse, match="無法載入 GGUF"):
        chat.complete([{"role": "user", "content": "x"}])
