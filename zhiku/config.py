"""Where zhiku keeps its state: one directory, ``ZHIKU_HOME`` or ``--home`` overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs

DEFAULT_KB = "default"


def home_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override`` > ``$ZHIKU_HOME`` > the per-user data dir."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("ZHIKU_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("zhiku", appauthor=False))


def lang() -> str:
    """User-facing language: ``zh-TW`` (default) or ``en`` via ``ZHIKU_LANG``."""
    value = os.environ.get("ZHIKU_LANG", "zh-TW").lower()
    return "en" if value.startswith("en") else "zh-TW"


def parse_env(var: str, type_name: str, raw: str) -> Any:
    """``raw`` as the type named by ``type_name`` (bool, int, float, else str); raises
    ``ValueError`` with a zh-TW message naming the variable ``var``."""
    try:
        if "bool" in type_name:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in type_name:
            return int(raw)
        if "float" in type_name:
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"環境變數 {var} 的值不合法：「{raw}」") from exc
    return raw
