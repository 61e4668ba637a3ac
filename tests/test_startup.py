"""Start-up stays light: the command line imports neither numpy, the server, the PII
detectors nor the file loaders until a command needs them, nor pydantic-settings once
the settings snapshot is written; ``zhiku ask`` imports neither Typer, pydantic nor rich
and behaves as the Typer tree's ``ask`` does; main() builds the invoked command only;
each text is tokenised once per ask (bench/startup.py times it)."""

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


def _ingested(tmp_path: Path, env: dict[str, str]) -> None:
    doc = tmp_path / "docs" / "請假辦法.txt"
    doc.parent.mkdir()
    doc.write_text(POLICY, "utf-8")
    subprocess.run(
        [sys.executable, "-m", "zhiku", "ingest", str(doc.parent), "-q"],
        env=env,
        check=True,
        capture_output=True,
    )


def test_ask_process_imports_neither_typer_pydantic_nor_rich(
    tmp_path: Path, zhiku_home: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _ingested(tmp_path, env)
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['zhiku', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('zhiku', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "sys.stdout = sys.__stdout__\n"
        "top = {m.partition('.')[0] for m in sys.modules}\n"
        "print('LOADED', code, *sorted(top & {'typer', 'pydantic', 'pydantic_core', 'rich'}))\n"
    )

    def loaded(*args: str) -> tuple[str, list[str]]:
        res = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True
        )
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith("LOADED"))
        return res.stdout, line.split()[1:]

    loaded("ask", QUESTION)  # writes the settings snapshot (a miss validates them)
    out, mods = loaded("ask", QUESTION)
    assert "第六條" in out and mods == ["0"], mods
    out, mods = loaded("--home", str(zhiku_home), "ask", QUESTION, "--json")
    assert json.loads(out.splitlines()[0])["refused"] is False and mods == ["0"], mods
    # Any other command still runs on the Typer tree.
    assert "typer" in loaded("docs")[1]


@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_plain_ask_says_what_the_typer_tree_says(
    tmp_path: Path, zhiku_home: Path, lang: str
) -> None:
    """The same ``ask`` (one definition) on both paths, ``zhiku.cli.main`` and the whole
    Typer tree (what main() ran before): help, usage errors, answers, exit codes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZHIKU_LANG": lang}
    _ingested(tmp_path, env)
    tree = "import sys; from zhiku.cli_app import command; command()(prog_name='zhiku')"
    for args in (
        ["ask", "--help"],
        ["ask", QUESTION, "--json", "-k", "3"],
        ["ask", QUESTION],
        ["ask", QUESTION, "-k", "0"],
        ["ask", QUESTION, "--jsn"],
        ["ask", QUESTION, "extra"],
        ["ask", QUESTION, "--kb", "nosuch"],
        ["ask"],
    ):
        got = [
            subprocess.run(
                [sys.executable, *how, "--home", str(zhiku_home), *args],
                env=env,
                capture_output=True,
                text=True,
            )
            for how in (["-m", "zhiku"], ["-c", tree])
        ]
        plain, typer_tree = ((r.returncode, r.stdout, r.stderr) for r in got)
        assert plain == typer_tree, args
    assert "{QUESTION}" in got[0].stderr and got[0].returncode == 2


def test_the_tree_mounts_the_plain_ask_after_search() -> None:
    from zhiku.cli import command
    from zhiku.cli_ask import TyperLikeCommand

    whole = command()
    names = list(whole.commands)
    assert names.index("ask") == names.index("search") + 1
    assert isinstance(whole.commands["ask"], TyperLikeCommand)
    assert command("ask").commands["ask"] is not whole.commands["ask"]  # one per tree


def test_the_dense_quote_reads_each_sentence_once(
    zhiku_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An English question over Chinese passages: the extractive answerer and then the
    dense quote (zhiku.services.answering._dense_answer) read the same sentences."""
    from tests.fake_openai import FakeOpenAI
    from tests.models_util import add, make_engine
    from zhiku import text as ztext

    server = FakeOpenAI()
    try:
        zk = make_engine(zhiku_home, server, toml="[hybrid]\ndense_answer_min = 0.0\n")
        lines = [line for line in POLICY.splitlines() if line]
        add(zk, "default", "mem://leave", "員工請假管理辦法", lines)
        add(
            zk,
            "default",
            "mem://trip",
            "出差旅費報支要點",
            ["第三條 出差應於返回後七日內檢據報支。"],
        )
        zk.sync_index("default")
        remembered = getattr(ztext, "token_set", None)  # what earlier tests tokenised
        if remembered is not None:
            remembered.cache_clear()
        seen: dict[str, int] = {}
        real = ztext.tokenize

        def counting(text: str) -> list[str]:
            seen[text] = seen.get(text, 0) + 1
            return real(text)

        monkeypatch.setattr(ztext, "tokenize", counting)
        ans = zk.ask("How many days before is 特別休假 requested?", ["default"])
        zk.close()
    finally:
        server.close()
    assert "dense_similarity" in ans.timings, ans  # the dense quote was chosen
    assert {t: n for t, n in seen.items() if n > 1} == {}
