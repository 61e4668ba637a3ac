"""The validated settings snapshot (zhiku/settings.py): read back without pydantic when
the environment and zhiku.toml are those it was validated under, validated again on any
change, never holding an invalid value or a secret."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from zhiku import settings, settings_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process read, as a new process would."""
    monkeypatch.setattr(settings, "_MEMO", None)
    monkeypatch.setattr(settings_schema, "_CACHE", {})


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The settings classes pydantic-settings validates from now on."""
    seen: list[str] = []
    real = settings_schema.load

    def counting(cls: type, env: object = None, **kw: object) -> object:
        seen.append(cls.__name__)
        return real(cls, env, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(settings_schema, "load", counting)
    return seen


def snapshot(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / settings.SNAPSHOT_NAME).read_text("utf-8"))
    return data


def test_the_snapshot_holds_what_pydantic_validated(
    zhiku_home: Path, fresh: None, validations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zhiku_home.mkdir()
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "12")
    monkeypatch.setenv("ZHIKU_LANG", "en-US")
    first = settings.core()
    assert validations == list(settings.SNAPSHOT_CLASSES)  # a miss: validated
    model = settings_schema.load(settings_schema.CoreSettings)
    for name in settings_schema.CoreSettings.model_fields:
        assert getattr(first, name) == getattr(model, name)
        assert type(getattr(first, name)) is type(getattr(model, name))
    assert first.lang == "en" and first.home == zhiku_home.resolve()

    validations.clear()
    monkeypatch.setattr(settings, "_MEMO", None)  # the next process
    again = settings.core()
    assert validations == []  # read back without pydantic
    assert again.ocr_max_pages == 12 and isinstance(again.home, Path)
    assert settings.lang() == "en"
    with pytest.raises(AttributeError):
        again.lang = "zh-TW"  # type: ignore[misc]


def test_editing_zhiku_toml_or_a_variable_invalidates_it(
    zhiku_home: Path, fresh: None, validations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zhiku_home.mkdir()
    settings.core()
    key = snapshot(zhiku_home)["key"]

    validations.clear()
    monkeypatch.setattr(settings, "_MEMO", None)
    (zhiku_home / "zhiku.toml").write_text('[answer]\nuncited = "refuse"\n', "utf-8")
    settings.core()
    assert validations, "a new zhiku.toml must be validated again"
    assert snapshot(zhiku_home)["key"] != key
    key = snapshot(zhiku_home)["key"]

    validations.clear()
    monkeypatch.setattr(settings, "_MEMO", None)
    (zhiku_home / "zhiku.toml").write_text('[answer]\nuncited = "keep"\n', "utf-8")
    os.utime(zhiku_home / "zhiku.toml", ns=(1, 1))  # another mtime even on a coarse clock
    settings.core()
    assert validations and snapshot(zhiku_home)["key"] != key

    validations.clear()
    monkeypatch.setenv("ZHIKU_ZIP_MAX_MEMBERS", "77")  # the same process sees it too
    assert settings.core().zip_max_members == 77
    assert validations
    monkeypatch.setattr(settings, "_MEMO", None)
    validations.clear()
    assert settings.core().zip_max_members == 77 and validations == []


def test_an_invalid_value_still_fails_with_the_same_message(
    zhiku_home: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    zhiku_home.mkdir()
    settings.core()
    written = snapshot(zhiku_home)
    monkeypatch.setenv("ZHIKU_OCR_MAX_PAGES", "many")
    with pytest.raises(settings.SettingsError) as via_snapshot:
        settings.core()
    with pytest.raises(settings.SettingsError) as direct:
        settings_schema.load(settings_schema.CoreSettings, dict(os.environ))
    assert str(via_snapshot.value) == str(direct.value)
    assert "ZHIKU_OCR_MAX_PAGES" in str(via_snapshot.value) and "many" in str(via_snapshot.value)
    assert snapshot(zhiku_home) == written  # nothing invalid is ever written
    monkeypatch.setattr(settings, "_MEMO", None)
    with pytest.raises(settings.SettingsError):  # the next process fails as well
        settings.core()


def test_the_cli_fails_fast_through_the_snapshot(zhiku_home: Path) -> None:
    zhiku_home.mkdir()  # the snapshot is written into an existing home only
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    zhiku = [sys.executable, "-m", "zhiku", "kb", "list"]
    assert subprocess.run(zhiku, env=env, capture_output=True, check=False).returncode == 0
    assert (zhiku_home / settings.SNAPSHOT_NAME).exists()
    bad = subprocess.run(
        zhiku, env={**env, "ZHIKU_ZIP_MAX_MB": "0"}, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "ZHIKU_ZIP_MAX_MB" in bad.stderr


def test_no_secret_is_written_and_secrets_still_read(
    zhiku_home: Path, fresh: None, validations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zhiku_home.mkdir()
    monkeypatch.setenv("ZHIKU_PII_SECRET", "pepper-7f3a")
    monkeypatch.setenv("ZHIKU_CHAT_API_KEY", "sk-live-1234")
    monkeypatch.setenv("ZHIKU_CHAT_URL", "http://127.0.0.1:9/v1")
    settings.core()
    path = zhiku_home / settings.SNAPSHOT_NAME
    text = path.read_text("utf-8")
    assert "pepper-7f3a" not in text and "sk-live-1234" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setattr(settings, "_MEMO", None)
    validations.clear()
    assert settings.core().pii_secret == "pepper-7f3a"
    assert settings.model_env("chat") == {"url": "http://127.0.0.1:9/v1", "api_key": "sk-live-1234"}
    assert validations == []


def test_a_damaged_snapshot_is_validated_again(
    zhiku_home: Path, fresh: None, validations: list[str]
) -> None:
    zhiku_home.mkdir()
    (zhiku_home / settings.SNAPSHOT_NAME).write_text('{"key": ', "utf-8")
    assert settings.core().ocr_max_pages == 300
    assert validations and snapshot(zhiku_home)["values"]
