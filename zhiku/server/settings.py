"""Server settings: typed, read once from arguments or ``ZHIKU_*`` variables, fail fast."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator, model_validator

from zhiku.config import home_dir
from zhiku.messages import t
from zhiku.settings import SettingsError
from zhiku.settings_schema import ZhikuSettings, load

__all__ = ["ServerSettings", "SettingsError"]

_POSITIVE = (
    "max_upload_mb",
    "max_files",
    "max_request_mb",
    "max_json_kb",
    "max_unzipped_mb",
    "engines",
    "threads",
    "max_question_chars",
    "ingest_threads",
    "metrics_flush_s",
)


class ServerSettings(ZhikuSettings):
    """Everything the server reads from its environment (:mod:`zhiku.settings`).

    Every field can be set with ``ZHIKU_<FIELD>`` (``ZHIKU_MAX_UPLOAD_MB=20``); the
    ``zhiku serve`` options set the same variables, so ``--workers N`` processes agree.
    """

    home: Path
    max_upload_mb: float = 50.0  # per file
    max_files: int = 20  # per upload request
    max_request_mb: float = 210.0  # whole multipart body
    max_json_kb: int = 256  # any other request body
    max_unzipped_mb: float = 500.0  # sum of a DOCX/XLSX's entries (zip bombs)
    rate_limit: float = 600.0  # requests per minute and API key; 0 turns it off
    rate_burst: int = 60
    # Engine instances per process, created on demand. A streamed answer keeps its engine
    # between events without holding a thread, so keep this well above ``threads``.
    engines: int = 32
    threads: int = 8  # request threads per process; more only adds GIL contention
    ingest_worker: bool = True  # run background ingestion threads in this process
    ingest_threads: int = 2  # so that a small upload passes a slow one
    stale_job_s: float = 600.0  # a running job without heartbeat for this long is re-claimed
    shutdown_timeout_s: float = 60.0  # wait this long for the current file on shutdown
    metrics_token: str = ""  # lets a scraper read /metrics without an admin key
    metrics_flush_s: float = 5.0  # how often a process shares its metrics with the others
    max_question_chars: int = 2000
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks, "*" for any). Empty: the headers are ignored, so a client
    # cannot forge its address in the audit log or dodge the failed-login limit.
    trusted_proxies: str = ""

    @field_validator(*_POSITIVE)
    @classmethod
    def _positive(cls, v: float, info: ValidationInfo) -> float:
        if v <= 0:
            raise ValueError(t("settings.positive", key=info.field_name, value=v))
        return v

    @model_validator(mode="after")
    def _rates(self) -> ServerSettings:
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise ValueError("rate_limit 不可為負數，rate_burst 至少為 1")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``ZHIKU_*`` variables (or ``env``), then ``overrides``; raises
        :class:`SettingsError` on bad values."""
        overrides["home"] = home_dir(overrides.get("home") or (env or {}).get("ZHIKU_HOME"))
        return load(cls, env, **overrides)

    def with_(self, **changes: Any) -> ServerSettings:
        return load(ServerSettings, {}, **{**self.model_dump(), **changes})

    def validate_all(self) -> None:
        """Raise :class:`SettingsError` unless every value is usable (they are checked
        when the settings are made; kept for callers that change them)."""
        load(ServerSettings, {}, **self.model_dump())

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def max_unzipped_bytes(self) -> int:
        return int(self.max_unzipped_mb * 1024 * 1024)

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process."""
        out = {"ZHIKU_HOME": str(self.home)}
        for name in type(self).model_fields:
            if name != "home":
                value = getattr(self, name)
                out[self.env_name(name)] = (
                    ("1" if value else "0") if isinstance(value, bool) else str(value)
                )
        return out
