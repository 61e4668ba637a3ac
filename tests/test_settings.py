"""One settings mechanism (zhiku/settings.py): every ZHIKU_* variable, validated, failing
fast with a message that names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku import limits, settings
from zhiku.backends import ConfigError, load_settings
from zhiku.cli import app
from zhiku.config import home_dir, lang
from zhiku.pii.i18n import resolve_lang
from zhiku.server.settings import ServerSettings, SettingsError

runner = CliRunner()


def test_core_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "12")
    monkeypatch.setenv("ZHIKU_ZIP_MAX_MEMBERS", "34")
    core = settings.core()
    assert core.ocr_max_pages == 12 and core.zip_max_members == 34
    assert home_dir() == (tmp_path / "h").resolve()
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "13")  # re-read when a variable changes
    assert settings.core().ocr_max_pages == 13
    from zhiku.loaders._zip import ZipLimits
    from zhiku.ocr import max_pages

    assert max_pages() == 13 and ZipLimits.from_env().max_members == 34


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN_gb", "en"),
        ("zh-TW", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("fr", "zh-TW"),
    ],
)
def test_one_language_setting(monkeypatch: pytest.MonkeyPatch, raw: str, want: str) -> None:
    monkeypatch.setenv("ZHIKU_LANG", raw)
    assert lang() == want and resolve_lang() == want  # the engine's and the PII tools'


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "many")
    with pytest.raises(SettingsError) as exc:
        settings.core()
    assert "環境變數 ZHIKU_OCR_MAX_PAGES 的值不合法：「many」" in str(exc.value)
    assert exc.value.exit_code == 2
    monkeypatch.setenv("ZHIKU_ZIP_MAX_MB", "0")
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "5")
    with pytest.raises(SettingsError, match="ZHIKU_ZIP_MAX_MB"):
        settings.core()


def test_the_cli_fails_fast_on_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_MAX_ATTACHMENT_MB", "-3")
    res = runner.invoke(app, ["kb", "list"])
    assert res.exit_code == 2
    assert "ZHIKU_MAX_ATTACHMENT_MB" in res.stderr and "-3" in res.stderr
    monkeypatch.setenv("ZHIKU_MAX_ATTACHMENT_MB", "3")
    assert runner.invoke(app, ["kb", "list"]).exit_code == 0


def test_english_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_LANG", "en")
    with pytest.raises(SettingsError, match="Environment variable ZHIKU_MAX_FILES"):
        ServerSettings.from_env({"ZHIKU_MAX_FILES": "a dozen"}, home="/tmp/x")


def test_server_settings_parse_round_trip_and_validate() -> None:
    s = ServerSettings.from_env(
        {
            "ZHIKU_MAX_FILES": "7",
            "ZHIKU_INGEST_WORKER": "off",
            "ZHIKU_RATE_LIMIT": "0",
            "ZHIKU_TRUSTED_PROXIES": "",
        },
        home="/tmp/x",
        threads=3,
    )
    assert (s.max_files, s.ingest_worker, s.rate_limit, s.threads) == (7, False, 0.0, 3)
    assert s.home == Path("/tmp/x").resolve()
    assert ServerSettings.from_env(s.to_env()) == s
    assert s.with_(max_files=9).max_files == 9
    with pytest.raises(SettingsError, match="max_files"):
        s.with_(max_files=0)
    with pytest.raises(SettingsError, match="rate_burst"):
        ServerSettings.from_env({"ZHIKU_RATE_BURST": "0"}, home="/tmp/x")
    with pytest.raises(SettingsError, match="ZHIKU_INGEST_WORKER"):
        ServerSettings.from_env({"ZHIKU_INGEST_WORKER": "perhaps"}, home="/tmp/x")


def test_limits_are_settings_too() -> None:
    lim = limits.Limits.from_env({"ZHIKU_LIMIT_MAX_ROWS": "7", "ZHIKU_LIMIT_ISOLATE": "no"})
    assert lim.max_rows == 7 and lim.isolate is False
    with pytest.raises(limits.LimitsError, match="ZHIKU_LIMIT_FILE_SECONDS"):
        limits.Limits.from_env({"ZHIKU_LIMIT_FILE_SECONDS": "soon"})
    assert limits.with_limits(lim, max_rows=9).max_rows == 9


def test_model_overrides_and_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "ZHIKU_EMBED_URL": "http://127.0.0.1:9/v1",
        "ZHIKU_EMBED_MODEL": "bge-m3",
        "ZHIKU_DENSE_WEIGHT": "0.25",
    }
    cfg = load_settings(tmp_path, env).for_kb("default")
    assert cfg.embed is not None and cfg.embed.url == "http://127.0.0.1:9/v1"
    assert cfg.embed.model == "bge-m3" and cfg.hybrid.dense_weight == 0.25
    with pytest.raises(ConfigError, match="ZHIKU_CONFIG"):
        load_settings(tmp_path, {"ZHIKU_CONFIG": str(tmp_path / "missing.toml")})
