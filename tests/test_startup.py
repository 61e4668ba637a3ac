"""Start-up stays light: the command line imports neither numpy, the server, the PII
detectors nor the file loaders until a command needs them, nor pydantic-settings once
the settings snapshot is written; main() builds the invoked command only; each text is
tokenised once per ask (bench/startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zhiku import settings
from zhiku.lazyre import lazy

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "特別休假要提前幾天申請？"
POLICY = (
    "員工請假管理辦法\n\n"
    "第六條 特別休假期日由員工排定，並於休假二日前提出申請。\n\n"
    "第七條 病假須附醫師證明，一年內合計不得超過三十日。\n"
)
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


def test_ask_imports_neither_pydantic_settings_nor_heavy_modules(
    tmp_path: Path, zhiku_home: Path
) -> None:
    doc = tmp_path / "docs" / "請假辦法.txt"
    doc.parent.mkdir()
    doc.write_text(POLICY, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "zhiku", "ingest", str(doc.parent), "-q"],
        env=env,
        check=True,
        capture_output=True,
    )
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['zhiku', 'ask', {QUESTION!r}]\n"
        "try:\n    runpy.run_module('zhiku', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "sys.stdout = sys.__stdout__\n"
        "heavy = ('pydantic_settings', 'numpy', 'fastapi', 'rich.progress', 'zhiku.server.app',"
        " 'zhiku.loaders.pdf', 'zhiku.pii.subject')\n"
        "print('LOADED', code, *[m for m in heavy if m in sys.modules])\n"
    )

    def run() -> tuple[str, list[str]]:
        res = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith("LOADED"))
        return res.stdout, line.split()[1:]

    (zhiku_home / settings.SNAPSHOT_NAME).unlink(missing_ok=True)
    out, loaded = run()  # a miss: validates (and writes the snapshot)
    assert "第六條" in out and loaded[0] == "0" and "pydantic_settings" in loaded
    out, loaded = run()
    assert "第六條" in out and loaded == ["0"], loaded


def test_main_builds_the_invoked_command_as_the_whole_tree_has_it() -> None:
    from zhiku.cli import command, invoked

    assert invoked(["ask", "x"]) == "ask"
    assert invoked(["--home", "/d", "kb", "list"]) == "kb"
    assert invoked(["--home=/d", "ask", "--kb", "a", "q"]) == "ask"
    assert invoked(["--help"]) is None and invoked([]) is None
    assert invoked(["--version"]) is None
    whole = command()
    for name in ("ask", "kb", "migrate", "pii"):
        one = command(name)
        assert list(one.commands) == [name]
        mine, theirs = one.commands[name], whole.commands[name]
        assert [p.name for p in mine.params] == [p.name for p in theirs.params]
        assert [p.opts for p in mine.params] == [p.opts for p in theirs.params]
        assert mine.help == theirs.help
        assert sorted(getattr(mine, "commands", {})) == sorted(getattr(theirs, "commands", {}))
    assert [p.name for p in command("ask").params] == [p.name for p in whole.params]
    assert list(command("nosuch").commands) == list(whole.commands)  # click's own error


def test_each_text_is_tokenised_once_per_ask(
    tmp_path: Path, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhiku import text as ztext
    from zhiku.engine import Zhiku
    from zhiku.ingest import ingest_paths, walk

    assert isinstance(engine, Zhiku)
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "請假辦法.txt").write_text(POLICY * 3, "utf-8")
    (folder / "出差辦法.txt").write_text(
        "出差旅費報支要點\n\n第三條 出差應於返回後七日內檢據報支，逾期不予受理。\n", "utf-8"
    )
    ingest_paths(engine, list(walk([folder])), "default")
    seen: dict[str, int] = {}
    real = ztext.tokenize

    def counting(text: str) -> list[str]:
        seen[text] = seen.get(text, 0) + 1
        return real(text)

    monkeypatch.setattr(ztext, "tokenize", counting)
    ans = engine.ask(QUESTION, ["default"])
    assert not ans.refused and seen
    assert {t: n for t, n in seen.items() if n > 1} == {}


def test_lazy_patterns_compile_on_first_use_and_match_as_compiled() -> None:
    pat = lazy(r"(\d+)號", 0)
    assert "compiled" not in vars(pat)
    m = pat.search("中正路 100號")
    assert m is not None and m.group(1) == "100"
    assert "compiled" in vars(pat)
    assert [x.group(1) for x in pat.finditer("1號 22號")] == ["1", "22"]
    assert pat.sub("#", "5號") == "#" and pat.pattern == r"(\d+)號"
