"""``zhiku pii``: find, scan and redact personal data from the command line.

Exit codes of ``scan``: 0 no PII found, 1 PII found (gate an open-data release on
it), 2 a file could not be read (missing, unsupported, corrupt; named in the message,
the rest of the batch is still scanned). ``find`` exits 0 on success and ``redact``
0 on success, 2 on bad input.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from zhiku.pii.i18n import msg, resolve_lang, subtype_label, type_label
from zhiku.pii.pii_types import TYPES
from zhiku.pii.policy import (
    PERSONAL_TYPES,
    STRATEGIES,
    PiiError,
    PiiPolicy,
    format_counts,
    parse_types,
)
from zhiku.settings import core
from zhiku.text import visible

if TYPE_CHECKING:  # the detectors and file readers are imported by the commands
    from zhiku.pii.scan import FileReport, ScanError

app = typer.Typer(help="個資偵測、掃描與去識別化", no_args_is_help=True, add_completion=False)

EXIT_CLEAN, EXIT_FOUND, EXIT_BAD_INPUT = 0, 1, 2

LangOpt = Annotated[
    str | None, typer.Option("--lang", help="介面語言：zh-TW（預設）或 en；亦可設 ZHIKU_LANG")
]
TypesOpt = Annotated[
    str | None,
    typer.Option("--types", help=f"只處理這些類型（逗號分隔）：{', '.join(TYPES)}"),
]
MinConfOpt = Annotated[
    float, typer.Option("--min-confidence", min=0.0, max=1.0, help="信心門檻（0–1）")
]


def _console(stderr: bool = False) -> Console:
    from zhiku.cli_common import SafeConsole

    return SafeConsole(stderr=stderr, highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    typer.echo(visible(message), err=True)


def _types(spec: str | None, default: set[str] | None, lang: str) -> set[str] | None:
    if spec is None:
        return default
    try:
        return parse_types(spec)
    except PiiError as exc:
        _fail(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from exc


@app.command("find")
def find_cmd(
    text: Annotated[
        str | None, typer.Argument(help="要檢查的文字；省略或「-」則讀取標準輸入")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="以 JSON 輸出")] = False,
    types: TypesOpt = None,
    min_confidence: MinConfOpt = 0.5,
    lang: LangOpt = None,
) -> None:
    """找出一段文字中的個資（位置、類型、信心）。"""
    lg = resolve_lang(lang)
    wanted = _types(types, None, lg)
    if text is None or text == "-":
        if sys.stdin is None or sys.stdin.isatty():
            _fail(msg("no_input", lg))
            raise typer.Exit(EXIT_BAD_INPUT)
        text = sys.stdin.read()
    from zhiku.pii.detect import detect

    found = detect(text, min_confidence=min_confidence, types=wanted)
    if json_out:
        payload = {"findings": [f.to_dict() for f in found]}
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    if not found:
        typer.echo(msg("none_found", lg))
        return
    table = Table(show_header=True, header_style="bold")
    for key in ("col_type", "col_position", "col_value", "col_confidence"):
        table.add_column(msg(key, lg))
    for f in found:
        sub = subtype_label(f.subtype, lg)
        label = type_label(f.type, lg) + (f"（{sub}）" if sub else "")
        table.add_row(label, f"{f.start}–{f.end}", f.value, f"{f.confidence:.2f}")
    _console().print(table)


@app.command("scan")
def scan_cmd(
    paths: Annotated[
        list[Path], typer.Argument(help="檔案或資料夾（CSV、XLSX、JSON、TXT、DOCX、PDF）")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="以 JSON 輸出")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="另存逐檔、逐欄的 CSV 報告")] = None,
    types: TypesOpt = None,
    min_confidence: MinConfOpt = 0.5,
    examples: Annotated[int, typer.Option("--examples", min=0, help="每類範例數")] = 3,
    lang: LangOpt = None,
) -> None:
    """逐檔、逐欄檢查資料中的個資（開放資料釋出前的欄位檢核）。

    結束碼：0 未發現個資、1 發現個資、2 有檔案無法讀取。
    """
    from zhiku.pii.scan import ScanError, expand_paths, scan_file

    lg = resolve_lang(lang)
    wanted = _types(types, None, lg)
    reports: list[FileReport] = []
    errors: list[ScanError] = []
    for path in expand_paths(paths):
        try:
            reports.append(
                scan_file(path, types=wanted, min_confidence=min_confidence, max_examples=examples)
            )
        except ScanError as exc:
            errors.append(exc)
            _fail(exc.render(lg))
    if json_out:
        payload: dict[str, object] = {"files": [r.to_dict() for r in reports]}
        if errors:
            payload["errors"] = [{"path": e.path, "message": e.render(lg)} for e in errors]
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_reports(reports, errors, lg)
    if csv_out is not None:
        _write_csv_report(csv_out, reports, lg)
        if not json_out:
            typer.echo(visible(msg("csv_written", lg, path=csv_out)))
    if errors:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_FOUND if any(r.total for r in reports) else EXIT_CLEAN)


def _print_reports(reports: list[FileReport], errors: list[ScanError], lg: str) -> None:
    hits = [r for r in reports if r.total]
    if hits:
        table = Table(show_header=True, header_style="bold", show_lines=False)
        for key in ("col_file", "col_column", "col_type", "col_count", "col_examples"):
            table.add_column(msg(key, lg), overflow="fold")
        for r in hits:
            for column, t, count in _rows(r, lg):
                examples = (
                    "、".join(r.examples.get(t, []))
                    if lg == "zh-TW"
                    else ", ".join(r.examples.get(t, []))
                )
                table.add_row(r.path, column, type_label(t, lg), str(count), examples)
        _console().print(table)
        total = sum(r.total for r in reports)
        typer.echo(msg("scan_found", lg, files=len(reports), hits=len(hits), total=total))
    else:
        typer.echo(msg("scan_clean", lg, files=len(reports)))
    if errors:
        typer.echo(msg("scan_errors", lg, count=len(errors)), err=True)


def _rows(r: FileReport, lg: str) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []
    if r.columns is None:
        for t in TYPES:
            if r.counts[t]:
                rows.append((msg("whole_file", lg), t, r.counts[t]))
        return rows
    for column, c in r.columns.items():
        for t in TYPES:
            if c[t]:
                rows.append((column, t, c[t]))
    return rows


def _write_csv_report(dest: Path, reports: list[FileReport], lg: str) -> None:
    with dest.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "column", "type", "label", "count", "examples"])
        for r in reports:
            for column, t, count in _rows(r, lg):
                col = "" if r.columns is None else column
                w.writerow(
                    [r.path, col, t, type_label(t, lg), count, " | ".join(r.examples.get(t, []))]
                )


@app.command("redact")
def redact_cmd(
    src: Annotated[Path, typer.Argument(help="輸入檔")],
    dst: Annotated[Path, typer.Argument(help="輸出檔（去識別化副本）")],
    types: TypesOpt = None,
    all_types: Annotated[
        bool, typer.Option("--all-types", help="遮蔽所有類型（含統一編號與市話）")
    ] = False,
    strategy: Annotated[
        str, typer.Option("--strategy", help="mask（部分遮蔽）、tag（類型標籤）、pseudonym（假名）")
    ] = "mask",
    keep_business: Annotated[
        bool,
        typer.Option(
            "--keep-business/--mask-business", help="保留服務信箱、客服專線、營業地址（預設保留）"
        ),
    ] = True,
    min_confidence: MinConfOpt = 0.5,
    secret_env: Annotated[
        str, typer.Option("--secret-env", help="假名化金鑰所在的環境變數")
    ] = "ZHIKU_PII_SECRET",
    json_out: Annotated[bool, typer.Option("--json", help="以 JSON 輸出統計")] = False,
    lang: LangOpt = None,
) -> None:
    """寫出去識別化副本（CSV、XLSX 保留原有版面）。預設遮蔽可識別個人的類型。"""
    lg = resolve_lang(lang)
    chosen = set(TYPES) if all_types else _types(types, set(PERSONAL_TYPES), lg)
    if strategy not in STRATEGIES:
        _fail(msg("bad_strategy", lg, value=strategy))
        raise typer.Exit(EXIT_BAD_INPUT)
    secret = None
    if strategy == "pseudonym":
        raw = core().pii_secret if secret_env == "ZHIKU_PII_SECRET" else os.environ.get(secret_env)
        if not raw:
            _fail(msg("no_secret", lg, env=secret_env))
            raise typer.Exit(EXIT_BAD_INPUT)
        secret = raw.encode()
    policy = PiiPolicy(
        mode="ingest",
        types=chosen or set(),
        strategy=strategy,
        min_confidence=min_confidence,
        keep_business=keep_business,
    )
    from zhiku.pii.scan import ScanError, redact_file

    try:
        counts: Counter[str] = redact_file(src, dst, policy, secret=secret)
    except ScanError as exc:
        _fail(exc.render(lg))
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    except PiiError as exc:
        _fail(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    if json_out:
        payload = {
            "input": str(src),
            "output": str(dst),
            "counts": {t: counts[t] for t in TYPES if counts[t]},
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    typer.echo(visible(msg("redacted", lg, path=dst)))
    if counts:
        typer.echo(msg("masked_counts", lg, counts=format_counts(counts, lg)))
