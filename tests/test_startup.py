"""Start-up stays light: the command line imports neither numpy, the server, the PII
detectors nor the file loaders until a command needs them (bench/startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = [
    "numpy",
    "fastapi",
    "uvicorn",
    "httpx",
    "zhiku.server.app",
    "zhiku.pii.detect",
    "zhiku.pii.scan",
    "zhiku.vectors",
    "zhiku.loaders.pdf",
    "zhiku.ingest",
    "rich.progress",
    "torch",
    "sentence_transformers",
]


def _imported(code: str, home: Path) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZHIKU_HOME": str(home)}
    res = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_the_cli_is_light(zhiku_home: Path) -> None:
    assert _imported("import zhiku.cli", zhiku_home) == []


def test_asking_without_models_stays_light(zhiku_home: Path, tmp_path: Path) -> None:
    from zhiku.engine import Zhiku
    from zhiku.models import Block, LoadedDocument

    with Zhiku(zhiku_home) as zk:
        zk.kb("default", create=True)
        zk.add_loaded(
            "default",
            "mem://a",
            LoadedDocument("請假辦法", "txt", [Block("特別休假應於休假二日前提出申請。")]),
        )
        zk.sync_index("default")
    code = (
        "from zhiku.cli import app\n"
        "try:\n    app(['ask', '特別休假要提前幾天申請？'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    assert _imported(code, zhiku_home) == []


def test_the_detectors_still_load_when_used() -> None:
    import zhiku.pii as pii
    from zhiku.pii.detect import email_subtype  # the submodule, imported directly

    assert callable(email_subtype)
    assert [f.type for f in pii.detect("手機 0912-345-678")] == ["mobile"]
    assert pii.detect is pii.__dict__["detect"] and callable(pii.detect)
