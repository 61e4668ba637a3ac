"""Start-up cost of the command line: a whole `zhiku ask` process, and its imports.

    python bench/startup.py [--runs 15] [--tree PATH] [--label NAME] [--write]

Builds a small knowledge base from samples/ in a temporary ZHIKU_HOME, then:
- runs ``python -m zhiku ask …`` ``--runs`` times after one warm-up run (the OS file
  cache warm, as for someone asking a second question) and reports the fastest and the
  median wall time of the whole process;
- the same for ``python -c pass`` (the interpreter alone, the floor nobody can beat)
  and for importing Typer with the pydantic adapters it loads for every command;
- ``python -X importtime`` of one ``zhiku ask`` run: the cumulative import time of
  zhiku's modules imported at top level (zhiku.cli, and what the command imports when
  it runs), the slowest modules, and which heavy packages the whole run imported.

"Warm" is a second question on an installed zhiku: the OS file cache warm, the
settings snapshot written (zhiku.settings) and the bytecode compiled. The children
run with ``PYTHONPYCACHEPREFIX`` set to a temporary folder and without
``PYTHONDONTWRITEBYTECODE``, so the warm-up run compiles every module once (as
``pip install`` does) without writing into the tree; with no bytecode every import
compiles its source again, which is not what an installed zhiku does.

``--tree`` measures another checkout of zhiku (e.g. an older commit unpacked with
``git archive``) for a before/after comparison; ``--write`` replaces this script's
section of bench/RESULTS.md with the rows of every ``--label`` measured so far in
bench/startup.json. The machine is shared, so run it when it is quiet and prefer the
fastest run: the median carries everyone else's load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, write_section  # noqa: E402

QUESTION = "特別休假要提前幾天申請？"
HEAVY = (
    "typer",
    "pydantic",
    "pydantic_settings",
    "numpy",
    "fastapi",
    "uvicorn",
    "httpx",
    "zhiku.pii.detect",
    "zhiku.server.app",
    "zhiku.loaders.pdf",
    "rich.console",
    "rich.progress",
    "torch",
    "sentence_transformers",
)
STORE = ROOT / "bench" / "startup.json"


def timed(
    cmd: list[str], env: dict[str, str], runs: int, cwd: Path
) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system, of the child) of each run, in ``cwd``
    (``python -m zhiku`` imports zhiku from the working directory first)."""
    subprocess.run(cmd, env=env, capture_output=True, check=False, cwd=cwd)  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False, cwd=cwd)
        wall.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return wall, cpu


BREAKDOWN = """
import importlib.util, json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
plain = importlib.util.find_spec("zhiku.cli_ask") is not None  # ask without Typer
c0 = cpu()
if plain:
    import click
else:
    import typer, typer._adapters, pydantic
c1 = cpu()
import zhiku.cli
if plain:
    import zhiku.cli_ask
c2 = cpu()
if plain:
    from zhiku.cli_help import localize
    cmd, args, prog = localize(zhiku.cli_ask.ask_command()), [sys.argv[1]], "zhiku ask"
else:
    cmd = zhiku.cli.command("ask") if hasattr(zhiku.cli, "invoked") else zhiku.cli.command()
    args, prog = ["ask", sys.argv[1]], "zhiku"
c3 = cpu()
try:
    if plain:
        from zhiku.cli_base import check_settings
        check_settings()  # what the root does before the command
    cmd(args, prog_name=prog, standalone_mode=False)
except SystemExit:
    pass
c4 = cpu()
sys.stdout = sys.__stdout__
print(json.dumps({"start": c0, "typer_pydantic_import": c1 - c0, "zhiku_cli_import": c2 - c1,
                  "typer_command_tree": c3 - c2, "ask_run": c4 - c3}))
"""


def breakdown(tree: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """CPU seconds of each phase of one process (the least of ``runs``): the interpreter
    starting; importing the command-line framework (click for a tree whose ``ask`` is a
    plain click command, zhiku/cli_ask.py; Typer and pydantic before it); importing
    zhiku.cli (and zhiku.cli_ask); building the ``ask`` command (click: the one command;
    Typer: the tree ``zhiku ask`` builds, the invoked command only or, before that, the
    whole tree); running ``ask`` (with Typer, its per-parameter pydantic adapters)."""
    best: dict[str, float] = {}
    for _ in range(runs):
        res = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, QUESTION],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
        for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items():
            best[k] = min(best.get(k, v), v)
    return best


def import_profile(tree: Path, env: dict[str, str]) -> dict[str, object]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['zhiku', 'ask', {QUESTION!r}]\n"
        "try:\n    runpy.run_module('zhiku', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "sys.stdout = sys.__stdout__\n"
        "print('HEAVY:', ' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=tree,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    total = 0
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        name = parts[2].strip()
        if name.startswith("zhiku") and parts[2].startswith(" zhiku"):  # top level
            total += cum_us  # zhiku.cli, then what the command imports when it runs
        rows.append((self_us, name))
    rows.sort(reverse=True)
    return {
        "import_ms": total / 1000,
        "heavy": next(
            (ln.split()[1:] for ln in res.stdout.splitlines() if ln.startswith("HEAVY:")), []
        ),
        "slowest": [f"{n} {us / 1000:.0f}" for us, n in rows[:6]],
    }


def write(store: dict[str, Any], row: dict[str, Any]) -> None:
    """This script's section of bench/RESULTS.md: every stored row, the slowest imports
    of ``row`` (the last tree measured)."""
    lines = [
        "## Start-up: `zhiku ask` process (bench/startup.py)",
        "",
        f"{machine()}; a KB of the 5 sample files; `{QUESTION}`; one warm-up run, then "
        "the fastest / median of the runs. The machine was shared with other jobs "
        "(1-minute load average in the last column), so medians are noisy; "
        "`python -c pass` is the floor, and `import typer, typer._adapters` the floor "
        "of any Typer command line: Typer 0.29 coerces every parameter through a "
        "pydantic TypeAdapter (typer/_coercion.py `build_runtime_param`); only a "
        "`bool` flag whose value is already a bool skips it, so a command with a "
        "`str` argument such as `ask` cannot avoid importing pydantic; since the "
        "`startup` row, `ask` is a plain click command (zhiku/cli_ask.py) that "
        "`zhiku.cli.main` runs without Typer, pydantic or rich. Warm: bytecode "
        "compiled (`PYTHONPYCACHEPREFIX`, as an installed zhiku has it) and the "
        "settings snapshot written; rows measured before this (without bytecode, "
        "every import compiling its source) are in git history.",
        "",
        "CPU time (user + system of the process, the least of the runs) is what the "
        "process itself costs and is far less disturbed by other jobs than wall time.",
        "",
        "Reproduce: an older tree unpacked with `git archive COMMIT | tar -x -C DIR`, "
        "`python bench/startup.py --runs 12 --tree DIR --label 'before (COMMIT)'`, "
        "then `python bench/startup.py --runs 12 --label 'after (BRANCH)' --write` in "
        "the checkout (every row kept in bench/startup.json is listed). Before the "
        "`startup` rows, `python -m zhiku` ran in the calling directory, so the "
        "`zhiku ask` and wall columns of an older `--tree` row may be the calling "
        "checkout's; its phase rows are the tree's.",
        "",
        "| tree | `zhiku ask` CPU | wall fastest | wall median | `python -c pass` CPU "
        "| typer + pydantic CPU | zhiku imports | heavy modules imported | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in store.values():
        heavy = ", ".join(r["heavy"]) or "none"
        lines.append(
            f"| {r['label']} | {r['ask_cpu_s']:.3f} s | {r['ask_min_s']:.3f} s | "
            f"{r['ask_median_s']:.3f} s | {r['python_cpu_s']:.3f} s | "
            f"{r['typer_cpu_s']:.3f} s | {r['import_ms']:.0f} ms | {heavy} "
            f"| {r['load']:.1f} |"
        )
    lines += [
        "",
        "Where the CPU time of one `zhiku ask` process goes (least of the runs; "
        "the framework is Typer + pydantic before the `startup` row, click from it; "
        "building the command and the ask run include the framework's own work; from "
        "the `startup` row zhiku.engine is imported when `ask` opens it, in the run):",
        "",
        "| tree | interpreter start | import the CLI framework | import zhiku.cli "
        "| build the `ask` command | run `ask` |",
        "|---|---|---|---|---|---|",
    ]
    for r in store.values():
        ph = r.get("phases")
        if ph:
            start = f"{ph['start']:.3f} s" if "start" in ph else "–"
            lines.append(
                f"| {r['label']} | {start} | {ph['typer_pydantic_import']:.3f} s | "
                f"{ph['zhiku_cli_import']:.3f} s | {ph['typer_command_tree']:.3f} s | "
                f"{ph['ask_run']:.3f} s |"
            )
    lines += [
        "",
        "Slowest imports (self time, ms) of the last tree measured: "
        + "; ".join(row["slowest"])
        + ".",
    ]
    write_section("startup", "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tree", type=Path, default=ROOT, help="the zhiku checkout to time")
    ap.add_argument("--label", default="this tree")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    tree = args.tree.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ZHIKU_HOME": str(Path(tmp) / "home"),
            "PYTHONPATH": str(tree),
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),  # bytecode, as installed
        }
        for k in [k for k in env if k.startswith("ZHIKU_") and k != "ZHIKU_HOME"]:
            env.pop(k)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [sys.executable, "-m", "zhiku", "ingest", str(ROOT / "samples")],
            env=env,
            cwd=tree,
            capture_output=True,
            check=True,
        )
        ask, ask_cpu = timed([sys.executable, "-m", "zhiku", "ask", QUESTION], env, args.runs, tree)
        bare, bare_cpu = timed([sys.executable, "-c", "pass"], env, args.runs, tree)
        # Typer ≥ 0.2x coerces every parameter through pydantic: a floor of its own.
        cli_floor, cli_cpu = timed(
            [sys.executable, "-c", "import typer, typer._adapters"], env, args.runs, tree
        )
        prof = import_profile(tree, env)
        phases = breakdown(tree, env, args.runs)
    row = {
        "label": args.label,
        "phases": phases,
        "ask_min_s": min(ask),
        "ask_median_s": statistics.median(ask),
        "ask_cpu_s": min(ask_cpu),
        "python_min_s": min(bare),
        "python_cpu_s": min(bare_cpu),
        "typer_min_s": min(cli_floor),
        "typer_cpu_s": min(cli_cpu),
        **prof,
        "runs": args.runs,
        "load": os.getloadavg()[0],
    }
    print(json.dumps(row, ensure_ascii=False, indent=1))
    store = json.loads(STORE.read_text("utf-8")) if STORE.exists() else {}
    store[args.label] = row
    STORE.write_text(json.dumps(store, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if args.write:
        write(store, row)


if __name__ == "__main__":
    main()
