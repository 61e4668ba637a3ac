"""Server settings: typed, read once from arguments or ``ZHIKU_*`` variables, fail fast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from zhiku.config import home_dir, parse_env
from zhiku.errors import ZhikuError


class SettingsError(ZhikuError):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the server reads from its environment.

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

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> ServerSettings:
        """Settings from ``ZHIKU_*`` variables, then ``overrides``; raises on bad values."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "home":
                continue
            raw = env.get(f"ZHIKU_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None and k != "home"})
        settings = cls(home=home_dir(overrides.get("home")), **values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> ServerSettings:
        s = replace(self, **changes)
        s.validate()
        return s

    def validate(self) -> None:
        positive = ("max_upload_mb", "max_files", "max_request_mb", "max_json_kb",
                    "max_unzipped_mb", "engines", "threads", "max_question_chars", "ingest_threads",
                    "metrics_flush_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"設定 {name} 必須大於 0（目前為 {getattr(self, name)}）")
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise SettingsError("rate_limit 不可為負數，rate_burst 至少為 1")

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
        for f in fields(self):
            if f.name != "home":
                value = getattr(self, f.name)
                out[f"ZHIKU_{f.name.upper()}"] = (
                    ("1" if value else "0") if isinstance(value, bool) else str(value)
                )
        return out


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        return parse_env(f"ZHIKU_{name.upper()}", type_name, raw)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
