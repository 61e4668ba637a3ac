"""One message catalogue, one mapping of domain errors to exit codes and HTTP statuses,
and one citation formatter."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.server_util import auth, build_home
from zhiku import citations
from zhiku.backends import ConfigError, ModelUnavailable
from zhiku.cli import app as cli_app
from zhiku.errors import (
    DocumentNotFound,
    InvalidInput,
    KnowledgeBaseNotFound,
    LoadError,
    StoreError,
    ZhikuError,
    exit_code,
    http_error,
)
from zhiku.filters import FilterError
from zhiku.messages import MESSAGES, t
from zhiku.restore import RestoreError
from zhiku.server.app import create_app
from zhiku.server.settings import ServerSettings, SettingsError
from zhiku.sources.folder import FolderUnavailable
from zhiku.sources.registry import SourceNotFound

ROOT = Path(__file__).resolve().parent.parent / "zhiku"


def fields_of(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_catalogue_is_complete_in_both_languages() -> None:
    for key, (zh, en) in MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert fields_of(zh) == fields_of(en), key
        assert re.search("[\u4e00-\u9fff]", zh), key  # the zh-TW text is Chinese


def test_every_key_used_in_the_code_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for path in ROOT.rglob("*.py"):
        src = path.read_text("utf-8")
        used.update(re.findall(r"""\bt\(\s*["']([a-z]+\.[a-z_]+)["']""", src))
        used.update(f"api.{c}" for c in re.findall(r"""ApiError\(\s*\d+,\s*"([a-z_]+)\"""", src))
    assert len(used) > 20
    assert sorted(used - set(MESSAGES)) == []


def test_t_formats_in_the_current_language(monkeypatch: pytest.MonkeyPatch) -> None:
    assert t("api.kb_not_found", kb="人資") == "找不到知識庫「人資」"
    assert t("api.kb_not_found", "en", kb="hr") == "Knowledge base “hr” not found"
    monkeypatch.setenv("ZHIKU_LANG", "en")
    assert t("cli.no_hits") == "No matching passage found."
    assert t("api.kb_not_found") == "Knowledge base “{kb}” not found"  # a missing value
    with pytest.raises(KeyError):
        t("no.such_key")


@pytest.mark.parametrize(
    ("exc", "code", "status", "api_code"),
    [
        (LoadError("a.pdf", "corrupt", "壞檔"), 1, 400, "invalid_request"),
        (InvalidInput("名稱不合法"), 2, 400, "invalid_request"),
        (ConfigError("設定檔錯誤"), 2, 400, "invalid_request"),
        (FilterError("篩選條件錯誤"), 2, 400, "invalid_request"),
        (SettingsError("ZHIKU_X"), 2, 400, "invalid_request"),
        (KnowledgeBaseNotFound("hr"), 3, 404, "kb_not_found"),
        (DocumentNotFound("x.md"), 3, 404, "document_not_found"),
        (SourceNotFound("web"), 3, 404, "not_found"),
        (StoreError("資料庫損毀"), 4, 503, "store_error"),
        (RestoreError("備份檔已損毀"), 4, 503, "store_error"),
        (FolderUnavailable("資料夾不見了"), 4, 503, "unavailable"),
        (ModelUnavailable("模型伺服器沒有回應"), 5, 503, "model_error"),
    ],
)
def test_one_mapping_for_exit_codes_and_http(
    exc: ZhikuError, code: int, status: int, api_code: str
) -> None:
    assert exit_code(exc) == code
    got_status, got_code, message, params = http_error(exc)
    assert (got_status, got_code) == (status, api_code)
    if api_code == "not_found":
        assert message == str(exc)  # the generic 404 text would not name the source
    assert f"api.{got_code}" in MESSAGES


def test_a_broken_store_is_a_server_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = build_home(home)
    app = create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))

    def broken() -> None:
        raise StoreError("無法開啟資料庫 zhiku.db：database disk image is malformed")

    app.add_api_route("/api/v1/broken-store", broken)
    with TestClient(app) as client:
        r = client.get("/api/v1/broken-store")
        assert r.status_code == 503
        err = r.json()["error"]
        assert err["code"] == "store_error" and err["type"] == "server_error"
        assert "malformed" in err["message"]
        # Bad input stays the client's error: an unusable KB name is a 400, not a 503.
        r = client.post("/api/v1/kbs", json={"name": "a/b"}, headers=auth(keys.admin))
        assert r.status_code == 400 and "知識庫名稱不合法" in r.json()["error"]["message"]
        r = client.get("/api/v1/kbs/nope/documents", headers=auth(keys.admin))
        assert r.status_code == 404


def test_cli_exit_codes_follow_the_mapping(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli_app, ["ask", "問題", "--kb", "沒有這個"])
    assert res.exit_code == 3 and "錯誤：" in res.stderr
    res = runner.invoke(cli_app, ["kb", "create", "a/b"])
    assert res.exit_code == 2 and "知識庫名稱不合法" in res.stderr


CITES: list[dict[str, Any]] = [
    {"doc": "員工請假辦法", "section": "第二章 > 第 5 條", "page": 3, "path": "hr/a.pdf"},
    {"doc": "報銷規定", "section": None, "page": None, "path": "fin/b.md"},
]


def test_one_citation_formatter() -> None:
    assert citations.numbered(CITES, "zh-TW") == [
        "[1] 《員工請假辦法》第二章 > 第 5 條，第 3 頁",
        "[2] 《報銷規定》",
    ]
    assert citations.numbered(CITES, "en")[0] == "[1] 《員工請假辦法》 第二章 > 第 5 條, p. 3"
    block = citations.sources_block({"citations": CITES}, "zh")
    assert block == "\n\n出處：\n[1] 《員工請假辦法》第二章 > 第 5 條，第 3 頁\n[2] 《報銷規定》"
    assert citations.sources_block({"citations": []}) == ""
    assert citations.strip_sources("七日。" + block) == "七日。"
    en = citations.sources_block({"citations": CITES}, "en")
    assert en.startswith("\n\nSources:\n[1]") and citations.strip_sources("x" + en) == "x"


def test_cli_and_chat_endpoint_name_sources_alike(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = build_home(home)
    runner = CliRunner()
    res = runner.invoke(
        cli_app, ["ask", "到職滿一年有幾天特休？", "--kb", "hr"], env={"ZHIKU_HOME": str(home)}
    )
    assert res.exit_code == 0, res.output
    cli_lines = [ln.split("　")[0] for ln in res.stdout.splitlines() if ln.startswith("[1]")]
    with TestClient(
        create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))
    ) as client:
        r = client.post(
            "/v1/chat/completions",
            headers=auth(keys.hr_reader),
            json={
                "model": "hr",
                "messages": [{"role": "user", "content": "到職滿一年有幾天特休？"}],
            },
        )
    content = r.json()["choices"][0]["message"]["content"]
    chat_lines = [ln for ln in content.splitlines() if ln.startswith("[1]")]
    assert cli_lines and cli_lines == chat_lines
