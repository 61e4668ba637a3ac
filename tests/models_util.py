"""Helpers shared by the tests/test_models_*.py files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.fake_openai import FakeOpenAI
from zhiku.backends import load_settings
from zhiku.engine import Zhiku
from zhiku.models import Block, LoadedDocument

DOCS = {
    "mem://leave": (
        "員工請假管理辦法",
        ["特別休假應於休假二日前提出申請。", "病假一年內合計不得超過三十日。"],
    ),
    "mem://ship": ("出貨異常處理SOP", ["貨品破損時應於二十四小時內通報物流窗口。"]),
    "mem://it": ("IT帳號申請", ["密碼長度至少十二個字元，每一百八十天須變更一次。"]),
}


def embedded_texts(server: FakeOpenAI) -> int:
    return sum(len(b["input"]) for r, b in server.requests if r == "embeddings")


def make_engine(
    home: Path,
    server: FakeOpenAI | None = None,
    model: str = "emb-a",
    *,
    roles: tuple[str, ...] = ("embed",),
    toml: str | None = None,
    **env: str,
) -> Zhiku:
    """An engine whose backends for ``roles`` point at ``server`` (fast retries)."""
    if toml is not None:
        home.mkdir(parents=True, exist_ok=True)
        (home / "zhiku.toml").write_text(toml, "utf-8")
    e = dict(env)
    if server is not None:
        for role in roles:
            e[f"ZHIKU_{role.upper()}_URL"] = server.url
            e[f"ZHIKU_{role.upper()}_MODEL"] = model if role == "embed" else f"{role}-model"
    settings = load_settings(home, env=e)
    fast = {role: cfg and replace(cfg, backoff=0.01) for role, cfg in settings.defaults.items()}
    return Zhiku(home, settings=replace(settings, defaults=fast))


def add(zk: Zhiku, kb: str, path: str, title: str, paras: list[str]) -> None:
    zk.kb(kb, create=True)
    zk.add_loaded(kb, path, LoadedDocument(title, "txt", [Block(p) for p in paras]))


def fill(zk: Zhiku, kb: str = "default") -> None:
    for path, (title, paras) in DOCS.items():
        add(zk, kb, path, title, paras)
    zk.sync_index(kb)
