"""zhiku.toml and the environment variables that override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.backends import ConfigError, load_settings

TOML = """
[chat]
url = "http://127.0.0.1:11434/v1/"
model = "qwen2.5:7b-instruct"
context_tokens = 8192
timeout = 30

[embed]
path = "/srv/models/bge-m3"

[hybrid]
dense_weight = 0.3

[answer]
uncited = "refuse"

[backends.big]
url = "http://gpu01:8000/v1"
model = "Qwen/Qwen2.5-32B-Instruct"
api_key = "sk-secret"

[kb."客服"]
chat = "big"
embed = "none"
system_prompt = "你是 ACME 的客服小幫手。"
language = "en"

[kb."客服".hybrid]
rrf_k = 20
"""


def write(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "zhiku.toml").write_text(text, "utf-8")


def test_no_file_no_env_means_no_models(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    cfg = s.for_kb("default")
    assert cfg.chat is None and cfg.embed is None and cfg.rerank is None
    assert s.configured() == {}


def test_file_defaults_and_per_kb(tmp_path: Path) -> None:
    write(tmp_path, TOML)
    s = load_settings(tmp_path, env={})
    d = s.for_kb("default")
    assert d.chat is not None and d.chat.url == "http://127.0.0.1:11434/v1"  # slash trimmed
    assert d.chat.context_tokens == 8192 and d.chat.timeout == 30.0 and d.chat.kind == "http"
    assert d.embed is not None and d.embed.kind == "local" and d.embed.path == "/srv/models/bge-m3"
    assert d.hybrid.dense_weight == 0.3 and d.hybrid.rrf_k == 5.0  # default kept
    assert d.uncited == "refuse" and d.language == "zh-TW"

    c = s.for_kb("客服")
    assert c.chat is not None and c.chat.model == "Qwen/Qwen2.5-32B-Instruct"
    assert c.chat.api_key == "sk-secret" and c.chat.name == "big"
    assert c.embed is None  # "none" switches the role off for this KB
    assert c.system_prompt.startswith("你是 ACME") and c.language == "en"
    assert c.hybrid.rrf_k == 20 and c.hybrid.dense_weight == 0.3
    assert c.hybrid_explicit == {"rrf_k"}
    assert "sk-secret" not in c.chat.describe()
    assert set(s.configured()) == {"chat", "embed", "chat:big"}


def test_env_overrides_file(tmp_path: Path) -> None:
    write(tmp_path, TOML)
    env = {
        "ZHIKU_CHAT_URL": "http://10.0.0.5:8000/v1",
        "ZHIKU_CHAT_MODEL": "llama3",
        "ZHIKU_CHAT_API_KEY": "k",
        "ZHIKU_EMBED_URL": "http://10.0.0.6/v1",
        "ZHIKU_EMBED_MODEL": "bge-m3",
        "ZHIKU_RERANK_PATH": "/srv/reranker",
        "ZHIKU_DENSE_WEIGHT": "0.05",
    }
    d = load_settings(tmp_path, env=env).for_kb("default")
    assert d.chat is not None and (d.chat.url, d.chat.model, d.chat.api_key) == (
        "http://10.0.0.5:8000/v1",
        "llama3",
        "k",
    )
    assert d.chat.context_tokens == 8192  # the rest of [chat] still applies
    assert d.embed is not None and d.embed.url == "http://10.0.0.6/v1" and d.embed.path is None
    assert d.rerank is not None and d.rerank.path == "/srv/reranker"
    assert d.hybrid.dense_weight == 0.05


def test_env_only_and_none_switch(tmp_path: Path) -> None:
    env = {"ZHIKU_EMBED_PATH": "/m/minilm", "ZHIKU_CHAT_URL": "none"}
    write(tmp_path, TOML)
    d = load_settings(tmp_path, env=env).for_kb("default")
    assert d.chat is None
    assert d.embed is not None and d.embed.path == "/m/minilm"


def test_zhiku_config_names_another_file(tmp_path: Path) -> None:
    other = tmp_path / "etc" / "models.toml"
    other.parent.mkdir()
    other.write_text('[rerank]\nurl = "http://h/v1"\n', "utf-8")
    s = load_settings(tmp_path / "home", env={"ZHIKU_CONFIG": str(other)})
    assert s.source == other
    rr = s.for_kb("x").rerank
    assert rr is not None and rr.model is None  # rerank servers may not need a model name
    with pytest.raises(ConfigError, match="找不到"):
        load_settings(tmp_path, env={"ZHIKU_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    "text,match",
    [
        ('[chat]\nurl = "http://h/v1"\n', "需要 model"),
        ('[chat]\nurl = "h:11434"\nmodel = "m"\n', "http://"),
        ('[chat]\nurl = "http://h/v1"\nmodel = "m"\ntemprature = 0.2\n', "temprature"),
        ('[chat]\nurl = "http://h/v1"\nmodel = "m"\npath = "/x.gguf"\n', "擇一"),
        ('[chat]\nurl = "http://h/v1"\nmodel = "m"\ntimeout = "soon"\n', "timeout"),
        ("[hybrid]\ndense_weight = -1\n", "不可為負"),
        ('[answer]\nuncited = "maybe"\n', "uncited"),
        ('[kb.a]\nchat = "nope"\n', r"backends\.nope"),
        ('[kb.a]\nchatt = "x"\n', "chatt"),
        ("[modles]\n", "modles"),
        ("[chat\n", "無法讀取設定檔"),
    ],
)
def test_invalid_config_fails_fast(tmp_path: Path, text: str, match: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError, match=match):
        load_settings(tmp_path, env={})


def test_both_url_and_path_in_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="擇一"):
        load_settings(
            tmp_path,
            env={
                "ZHIKU_EMBED_URL": "http://h/v1",
                "ZHIKU_EMBED_MODEL": "m",
                "ZHIKU_EMBED_PATH": "/p",
            },
        )


def test_engine_and_cli_report_a_broken_config(zhiku_home: Path) -> None:
    from typer.testing import CliRunner

    from zhiku.cli import app

    write(zhiku_home, '[chat]\nurl = "http://h/v1"\n')
    res = CliRunner().invoke(app, ["search", "請假"])
    assert res.exit_code == 2
    assert "需要 model" in res.output
