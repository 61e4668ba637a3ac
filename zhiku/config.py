"""Where zhiku keeps its state: one directory, ``ZHIKU_HOME`` or ``--home`` overrides.

Settings themselves are read by :mod:`zhiku.settings` (the one mechanism).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from zhiku.settings import core
from zhiku.settings import lang as lang

DEFAULT_KB = "default"


def home_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override`` > ``$ZHIKU_HOME`` > the per-user data dir."""
    if override:
        return Path(override).expanduser().resolve()
    env = core().home
    if env is not None and str(env):
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("zhiku", appauthor=False))
