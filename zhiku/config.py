"""Where zhiku keeps its state: one directory, ``ZHIKU_HOME`` or ``--home`` overrides."""

from __future__ import annotations

import os
from pathlib import Path

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
