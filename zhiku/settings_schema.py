"""The pydantic-settings classes of :mod:`zhiku.settings`, and the validation itself.

Imported only when settings must be validated: by :func:`zhiku.settings.load`, or when
the validated snapshot :mod:`zhiku.settings` keeps under the home does not match the
environment and configuration files of this process (pydantic-settings costs more to
import than a whole ``zhiku ask`` otherwise needs).
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

from zhiku.settings import SettingsError, _raw_lang, normalize_lang

# The mapping that stands for the environment while settings are read (None: os.environ).
_ENV: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "zhiku_settings_env", default=None
)


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
