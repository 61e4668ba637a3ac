"""Shared fixtures: every test gets its own ZHIKU_HOME (never the user's data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def zhiku_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "zhiku-home"
    monkeypatch.setenv("ZHIKU_HOME", str(home))
    monkeypatch.delenv("ZHIKU_LANG", raising=False)
    for var in ("ZHIKU_CHAT_URL", "ZHIKU_EMBED_URL", "ZHIKU_EMBED_PATH", "ZHIKU_RERANK_URL",
                "ZHIKU_RERANK_PATH", "ZHIKU_CHAT_MODEL", "ZHIKU_EMBED_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def engine(zhiku_home: Path) -> Iterator[object]:
    from zhiku.engine import Zhiku

    zk = Zhiku(zhiku_home)
    yield zk
    zk.close()
