"""One settings mechanism: every ``ZHIKU_*`` environment variable is read here.

Each group of settings is a pydantic-settings class with its own prefix:

- :class:`CoreSettings` (``ZHIKU_``): the data directory, the one language setting
  (``ZHIKU_LANG``), the model configuration file and the per-file reading caps of the
  loaders and OCR;
- :class:`zhiku.server.settings.ServerSettings` (``ZHIKU_``): the server;
- :class:`zhiku.limits.Limits` (``ZHIKU_LIMIT_``): the budgets of reading one file;
- :func:`model_env` (``ZHIKU_CHAT_*``, ``ZHIKU_EMBED_*``, ``ZHIKU_RERANK_*``): overrides
  of ``zhiku.toml``'s backends.

Values are parsed and validated by pydantic; a bad one fails fast with
:class:`SettingsError`, whose zh-TW (or English) message names the variable and the
value. :func:`load` takes an explicit mapping instead of ``os.environ`` (tests, and the
``zhiku serve`` options that set the same variables for its worker processes); read
without overrides, a class is parsed again only when one of its variables changes.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from zhiku.errors import ZhikuError

# The mapping that stands for the environment while settings are read (None: os.environ).
_ENV: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "zhiku_settings_env", default=None
)


class SettingsError(ZhikuError):
    """A ``ZHIKU_*`` variable (or option) with a value that cannot be used."""

    exit_code = 2


class _EnvSource(EnvSettingsSource):
    """The environment source, reading the mapping :func:`load` was given if any."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        return parse_env_vars(
            os.environ if env is None else env,
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )


class ZhikuSettings(BaseSettings):
    """Base of zhiku's settings classes: environment (or the given mapping), then the
    keyword arguments, validated; immutable."""

    model_config = SettingsConfigDict(
        env_prefix="ZHIKU_",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls)

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


S = TypeVar("S", bound=ZhikuSettings)
# Per settings class: the values of its variables when last read, and what they gave.
_CACHE: dict[type[ZhikuSettings], tuple[tuple[str | None, ...], ZhikuSettings]] = {}
_NAMES: dict[type[ZhikuSettings], tuple[str, ...]] = {}


def load(cls: type[S], env: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """``cls`` from the environment (or ``env``), then ``overrides`` (None ones ignored).

    Raises :class:`SettingsError` naming the variable and its value when one is bad.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    key: tuple[str | None, ...] | None = None
    if not given:  # settings read on hot paths (language, limits): parsed once per value
        source = os.environ if env is None else env
        names = _NAMES.get(cls)
        if names is None:
            names = _NAMES[cls] = tuple(cls.env_name(f) for f in cls.model_fields)
        key = tuple(map(source.get, names))
        cached = _CACHE.get(cls)
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[return-value]
    token = _ENV.set(env)
    try:
        made = cls(**given)
    except ValidationError as exc:
        failed = exc
    else:
        if key is not None:
            _CACHE[cls] = (key, made)
        return made
    finally:
        _ENV.reset(token)
    # Worded outside the block: the message's language is the process's ZHIKU_LANG.
    raise _settings_error(cls, failed, env, given) from None


def _settings_error(
    cls: type[ZhikuSettings],
    exc: ValidationError,
    env: Mapping[str, str] | None,
    given: Mapping[str, Any],
) -> SettingsError:
    from zhiku.messages import t

    lg = _raw_lang()
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err.get("loc") else ""
    if field in given or not field:
        return SettingsError(
            t(
                "settings.bad_option",
                lg,
                key=field or "?",
                value=given.get(field, ""),
                reason=err.get("msg", ""),
            )
        )
    name = cls.env_name(field)
    source = os.environ if env is None else env
    return SettingsError(
        t("settings.bad_env", lg, key=name, value=source.get(name, ""), reason=err.get("msg", ""))
    )


def _raw_lang() -> str:
    """The language straight from ``ZHIKU_LANG``, for the messages about bad settings
    (the settings that hold the language may be the bad ones)."""
    return normalize_lang(os.environ.get("ZHIKU_LANG", "zh-TW"))


def normalize_lang(value: object) -> str:
    """``en`` for any English tag (``en``, ``en-US``…), else ``zh-TW``."""
    return "en" if str(value or "").strip().lower().startswith("en") else "zh-TW"


class CoreSettings(ZhikuSettings):
    """Settings every zhiku command reads (``ZHIKU_HOME``, ``ZHIKU_LANG``…)."""

    home: Path | None = None
    lang: str = "zh-TW"  # user-facing language: zh-TW, or English with any "en…"
    config: Path | None = None  # the model configuration file (default: HOME/zhiku.toml)
    pii_secret: str | None = None  # pseudonym key of `zhiku pii redact --strategy pseudonym`
    ocr_max_pages: int = 300  # pages of one file that OCR may read
    ocr_defer: bool = False  # set in loading workers: OCR runs in the parent process
    max_attachment_mb: float = 50.0  # one e-mail attachment
    zip_max_mb: int = 512  # expanded bytes of one ZIP-based file (DOCX, XLSX, ODF…)
    zip_max_members: int = 10_000  # entries of one ZIP-based file

    @field_validator("lang", mode="before")
    @classmethod
    def _normalize_lang(cls, v: object) -> str:
        return normalize_lang(v)

    @field_validator("ocr_max_pages", "max_attachment_mb", "zip_max_mb", "zip_max_members")
    @classmethod
    def _positive(cls, v: float, info: ValidationInfo) -> float:
        if v <= 0:
            from zhiku.messages import t

            raise ValueError(t("settings.positive", _raw_lang(), key=info.field_name, value=v))
        return v


def core(env: Mapping[str, str] | None = None) -> CoreSettings:
    """The current :class:`CoreSettings` (re-read when one of its variables changes)."""
    return load(CoreSettings, env)


def lang() -> str:
    """User-facing language: ``zh-TW`` (default) or ``en`` (``ZHIKU_LANG=en``); readable
    even while another setting is bad (to word the error about it)."""
    try:
        return core().lang
    except SettingsError:
        return _raw_lang()


MODEL_ROLES = ("chat", "embed", "rerank")
# ZHIKU_<ROLE>_<KEY> -> the backend attribute it overrides.
MODEL_KEYS = (
    ("URL", "url"),
    ("MODEL", "model"),
    ("API_KEY", "api_key"),
    ("PATH", "path"),
    ("TIMEOUT", "timeout"),
    ("CONTEXT", "context_tokens"),
    ("DEVICE", "device"),
    ("PROVIDER", "provider"),
)


class ModelEnv(ZhikuSettings):
    """``ZHIKU_<ROLE>_<KEY>`` overrides of zhiku.toml's backends (strings; zhiku.toml's
    own checks validate them, :mod:`zhiku.backends.config`)."""

    chat_url: str | None = None
    chat_model: str | None = None
    chat_api_key: str | None = None
    chat_path: str | None = None
    chat_timeout: str | None = None
    chat_context: str | None = None
    chat_device: str | None = None
    chat_provider: str | None = None
    embed_url: str | None = None
    embed_model: str | None = None
    embed_api_key: str | None = None
    embed_path: str | None = None
    embed_timeout: str | None = None
    embed_context: str | None = None
    embed_device: str | None = None
    embed_provider: str | None = None
    rerank_url: str | None = None
    rerank_model: str | None = None
    rerank_api_key: str | None = None
    rerank_path: str | None = None
    rerank_timeout: str | None = None
    rerank_context: str | None = None
    rerank_device: str | None = None
    rerank_provider: str | None = None
    dense_weight: str | None = None  # ZHIKU_DENSE_WEIGHT: [hybrid] dense_weight


def model_env(role: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The backend attributes ``ZHIKU_<ROLE>_*`` override for ``role``."""
    found = load(ModelEnv, env)
    out: dict[str, Any] = {}
    for key, attr in MODEL_KEYS:
        value = getattr(found, f"{role}_{key.lower()}")
        if value is not None and value.strip() != "":
            out[attr] = value.strip()
    return out
