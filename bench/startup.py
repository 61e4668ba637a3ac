"""Start-up cost of the command line: a whole `zhiku ask` process, and its imports.

    python bench/startup.py [--runs 15] [--tree PATH] [--label NAME] [--write]

Builds a small knowledge base from samples/ in a temporary ZHIKU_HOME, then:
- runs ``python -m zhiku ask …`` ``--runs`` times after one warm-up run (the OS file
  cache warm, as for someone asking a second question) and reports the fastest and the
  median wall time of the whole process;
- the same for ``python -c pass`` (the interpreter alone, the floor nobody can beat)
  and for importing Typer with the pydantic adapters it loads for every command;
- ``python -X importtime -c "import zhiku.cli"``: the cumulative import time of
  zhiku.cli, the slowest modules, and which heavy packages were imported.

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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, write_section  # noqa: E402

QUESTION = "特別休假要提前幾天申請？"
HEAVY = ("numpy", "fastapi", "uvicorn", "httpx", "zhiku.pii.detect", "zhiku.server.app",
         "zhiku.loaders.pdf", "rich.progress", "torch", "sentence_transformers")
STORE = ROOT / "bench" / "startup.json"


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        out.append(time.perf_counter() - t)
    return out


def import_profile(tree: Path, env: dict[str, str]) -> dict[str, object]:
    code = ("import sys, zhiku.cli; print(' '.join(m for m in " + repr(HEAVY)
            + " if m in sys.modules))")
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                         capture_output=True, text=True, cwd=tree, check=True)
    rows: list[tuple[int, str]] = []
    total = 0
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:"):].split("|")
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        name = parts[2].strip()
        if name == "zhiku.cli":
            total = cum_us
        rows.append((self_us, name))
    rows.sort(reverse=True)
    return {"import_ms": total / 1000, "heavy": res.stdout.split(),
            "slowest": [f"{n} {us / 1000:.0f}" for us, n in rows[:6]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tree", type=Path, default=ROOT, help="the zhiku checkout to time")
    ap.add_argument("--label", default="this tree")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    tree = args.tree.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ZHIKU_HOME": str(Path(tmp) / "home"), "PYTHONPATH": str(tree)}
        for k in [k for k in env if k.startswith("ZHIKU_") and k != "ZHIKU_HOME"]:
            env.pop(k)
        subprocess.run([sys.executable, "-m", "zhiku", "ingest", str(ROOT / "samples")],
                       env=env, cwd=tree, capture_output=True, check=True)
        ask = timed([sys.executable, "-m", "zhiku", "ask", QUESTION], env, args.runs)
        bare = timed([sys.executable, "-c", "pass"], env, args.runs)
        # Typer ≥ 0.2x coerces every parameter through pydantic: a floor of its own.
        cli_floor = timed([sys.executable, "-c", "import typer, typer._adapters"], env,
                          args.runs)
        prof = import_profile(tree, env)
    row = {"label": args.label, "ask_min_s": min(ask), "ask_median_s": statistics.median(ask),
           "python_min_s": min(bare), "typer_min_s": min(cli_floor), **prof,
           "runs": args.runs, "load": os.getloadavg()[0]}
    print(json.dumps(row, ensure_ascii=False, indent=1))
    store = json.loads(STORE.read_text("utf-8")) if STORE.exists() else {}
    store[args.label] = row
    STORE.write_text(json.dumps(store, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if args.write:
        lines = [
            "## Start-up: `zhiku ask` process (bench/startup.py)",
            "",
            f"{machine()}; a KB of the 5 sample files; `{QUESTION}`; one warm-up run, then "
            "the fastest / median of the runs. The machine was shared with other jobs "
            "(1-minute load average in the last column), so medians are noisy; "
            "`python -c pass` is the floor, and `import typer, typer._adapters` (Typer "
            "≥ 0.2x imports pydantic to coerce the parameters of every command) the floor "
            "of any Typer command line.",
            "",
            "| tree | `zhiku ask` fastest | median | `python -c pass` | typer + pydantic "
            "| import zhiku.cli | heavy modules imported | load |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in store.values():
            heavy = ", ".join(r["heavy"]) or "none"
            lines.append(
                f"| {r['label']} | {r['ask_min_s']:.3f} s | {r['ask_median_s']:.3f} s | "
                f"{r['python_min_s']:.3f} s | {r.get('typer_min_s', 0):.3f} s | "
                f"{r['import_ms']:.0f} ms | {heavy} "
                f"| {r['load']:.1f} |")
        lines += ["", "Slowest imports (self time, ms) of the last tree measured: "
                  + "; ".join(row["slowest"]) + "."]
        write_section("startup", "\n".join(lines))


if __name__ == "__main__":
    main()
