"""Audit files for personal data and write redacted copies.

``scan_file`` reads CSV / TSV / XLSX / JSON / JSONL per *column* (the column name is
the context: 「出生日期」 says a bare 1985-03-12 is a birth date), and TXT / Markdown /
DOCX / PDF as running text, and reports which PII types appear, how often and where,
with masked examples: the field-by-field screening an agency does before it opens a
dataset. ``redact_file`` writes a copy with the policy's types masked; CSV and XLSX
keep their layout (same sheets, rows, cells and styles; only PII cells change).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku import loaders
from zhiku.errors import LoadError
from zhiku.pii.detect import TYPES, detect, detect_field
from zhiku.pii.i18n import msg
from zhiku.pii.mask import mask_value
from zhiku.pii.policy import PiiError, PiiPolicy, apply_findings, redact_field, replacement
from zhiku.textcodec import decode_bytes, encode_like

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xlsm", ".json", ".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".log")
DOC_SUFFIXES = (".docx", ".pdf")
SUPPORTED_SUFFIXES = TABLE_SUFFIXES + TEXT_SUFFIXES + DOC_SUFFIXES

# A phone column stored as a number loses its leading 0 (912345678).
_PHONE_HEADER_RE = re.compile(r"手機|行動|電話|mobile|phone|cell|tel", re.IGNORECASE)


class ScanError(PiiError):
    """A file that cannot be scanned or redacted; :meth:`render` words it for the user."""

    def __init__(self, path: str | os.PathLike[str], key: str, **kwargs: object) -> None:
        self.path = str(path)
        self.key = key
        self.kwargs = {"path": self.path, **kwargs}
        super().__init__(self.render())

    def render(self, lang: str | None = None) -> str:
        if self.key == "raw":
            return str(self.kwargs["text"])
        return msg(self.key, lang, **self.kwargs)

    @property
    def message(self) -> str:
        return self.render()


@dataclass
class FileReport:
    """What :func:`scan_file` found in one file."""

    path: str
    counts: Counter[str] = field(default_factory=Counter)
    columns: dict[str, Counter[str]] | None = None
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        order = {t: i for i, t in enumerate(TYPES)}

        def ordered(c: Counter[str]) -> dict[str, int]:
            return {t: c[t] for t in sorted(c, key=order.__getitem__) if c[t]}

        return {
            "path": self.path,
            "counts": ordered(self.counts),
            "columns": (
                None
                if self.columns is None
                else {col: ordered(c) for col, c in self.columns.items() if sum(c.values())}
            ),
            "examples": {t: self.examples[t] for t in sorted(self.examples, key=order.__getitem__)},
        }


# --- reading -------------------------------------------------------------------------


def decode_text(data: bytes, path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, encoding)`` by the decoder ``zhiku ingest`` uses (:mod:`zhiku.textcodec`:
    BOM, UTF-8, BOM-less UTF-16, Big5 / GB18030, then detection)."""
    try:
        return decode_bytes(data, Path(path))
    except LoadError as exc:
        raise ScanError(path, "encoding") from exc


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ScanError(path, "not_found") from exc
    except OSError as exc:
        raise ScanError(path, "unreadable", reason=exc.strerror or exc) from exc


@dataclass
class _Csv:
    rows: list[list[str]]
    encoding: str
    delimiter: str
    newline: str
    head: bytes  # the file's first bytes: its byte-order mark, written back as it was


def _read_csv(path: Path) -> _Csv:
    raw = _read_bytes(path)
    text, enc = decode_text(raw, path)
    if path.suffix.lower() == ".tsv":
        delim = "\t"
    else:
        try:
            delim = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|").delimiter
        except csv.Error:
            delim = ","
    newline = "\r\n" if "\r\n" in text[:65536] else "\n"
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
    except csv.Error as exc:
        raise ScanError(path, "corrupt", reason=exc) from exc
    return _Csv(rows, enc, delim, newline, raw[:4])


def _column_names(header: list[Any]) -> list[str]:
    names: list[str] = []
    seen: Counter[str] = Counter()
    for j, h in enumerate(header):
        name = str(h).strip() if h is not None and str(h).strip() else _col_letter(j)
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def _col_letter(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _cell_text(value: Any, header: str) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        s = str(value)
        if len(s) == 9 and s[0] == "9" and _PHONE_HEADER_RE.search(header):
            s = "0" + s  # 0912345678 stored as a number
        return s
    text = str(value)
    return text if text.strip() else None


def _open_workbook(path: Path, *, read_only: bool) -> Any:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    if not path.exists():
        raise ScanError(path, "not_found")
    try:
        return openpyxl.load_workbook(
            path, read_only=read_only, data_only=read_only,
            keep_vba=path.suffix.lower() == ".xlsm" and not read_only,
        )  # fmt: skip
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ScanError(path, "corrupt", reason=type(exc).__name__) from exc


def _json_units(obj: Any, keys: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """``(column, field name, text)`` for every scalar; list indices are dropped."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_units(v, (*keys, str(k)))
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_units(v, keys)
    elif isinstance(obj, str | int | float) and not isinstance(obj, bool):
        col = ".".join(keys) or "$"
        text = _cell_text(obj, keys[-1] if keys else "")
        if text is not None:
            yield col, keys[-1] if keys else "", text


def _load_json(path: Path) -> list[Any]:
    text, _ = decode_text(_read_bytes(path), path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        out = []
        for no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ScanError(path, "bad_json", line=no) from exc
        return out
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise ScanError(path, "bad_json", line=exc.lineno) from exc


def _document_text(path: Path) -> str:
    """Text of a DOCX / PDF, read by the same loaders as ``zhiku ingest``."""
    if not path.exists():
        raise ScanError(path, "not_found")
    try:
        doc = loaders.load(path)
    except LoadError as exc:
        raise ScanError(path, "raw", text=f"{path}: {exc.message}") from exc
    except Exception as exc:  # noqa: BLE001 - a parser choking must not stop a batch
        raise ScanError(path, "corrupt", reason=type(exc).__name__) from exc
    return "\n".join(b.text for b in doc.blocks)


def _check_supported(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        if not path.exists():
            raise ScanError(path, "not_found")
        raise ScanError(path, "unsupported", suffixes=" ".join(SUPPORTED_SUFFIXES))
    return suffix


def iter_units(path: Path) -> tuple[bool, Iterator[tuple[str | None, str, str]]]:
    """``(is_table, units)``; a unit is ``(column or None, field name, text)``."""
    suffix = _check_supported(path)
    if suffix in (".csv", ".tsv"):
        data = _read_csv(path)

        def csv_units() -> Iterator[tuple[str | None, str, str]]:
            if not data.rows:
                return
            names = _column_names(data.rows[0])
            for j, cell in enumerate(data.rows[0]):  # a file without a header row
                if cell.strip():
                    yield names[j], "", cell
            for row in data.rows[1:]:
                for j, cell in enumerate(row):
                    if cell.strip():
                        col = names[j] if j < len(names) else _col_letter(j)
                        yield col, col, cell

        return True, csv_units()
    if suffix in (".xlsx", ".xlsm"):
        wb = _open_workbook(path, read_only=True)

        def xlsx_units() -> Iterator[tuple[str | None, str, str]]:
            try:
                multi = len(wb.worksheets) > 1
                for ws in wb.worksheets:
                    names: list[str] | None = None
                    for row in ws.iter_rows(values_only=True):
                        if names is None:
                            if any(v is not None and str(v).strip() for v in row):
                                names = _column_names(list(row))
                                for j, v in enumerate(row):
                                    text = _cell_text(v, "")
                                    if text is not None:
                                        col = f"{ws.title}!{names[j]}" if multi else names[j]
                                        yield col, "", text
                            continue
                        for j, v in enumerate(row):
                            name = names[j] if j < len(names) else _col_letter(j)
                            text = _cell_text(v, name)
                            if text is not None:
                                yield (f"{ws.title}!{name}" if multi else name), name, text
            finally:
                wb.close()

        return True, xlsx_units()
    if suffix in (".json", ".jsonl", ".ndjson"):
        docs = _load_json(path)
        return True, (u for d in docs for u in _json_units(d))
    if suffix in TEXT_SUFFIXES:
        text, _ = decode_text(_read_bytes(path), path)
        return False, iter([(None, "", text)])
    return False, iter([(None, "", _document_text(path))])


# --- scanning ------------------------------------------------------------------------


def scan_file(
    path: Path,
    *,
    types: Iterable[str] | None = None,
    min_confidence: float = 0.5,
    max_examples: int = 3,
) -> FileReport:
    """Count PII per type (and per column for tables) in one file.

    Raises :class:`ScanError` with a message naming the file when it cannot be read.
    """
    path = Path(path)
    is_table, units = iter_units(path)
    report = FileReport(str(path), columns={} if is_table else None)
    seen: dict[str, set[str]] = {}
    for column, name, text in units:
        if column is not None:
            found = detect_field(text, name, min_confidence=min_confidence, types=types)
            if report.columns is not None:
                report.columns.setdefault(column, Counter())
        else:
            found = detect(text, min_confidence=min_confidence, types=types)
        for f in found:
            report.counts[f.type] += 1
            if column is not None and report.columns is not None:
                report.columns[column][f.type] += 1
            ex = report.examples.setdefault(f.type, [])
            masked = mask_value(f.value, f.type)
            if len(ex) < max_examples and masked not in seen.setdefault(f.type, set()):
                seen[f.type].add(masked)
                ex.append(masked)
    return report


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under ``paths``: directories recursively (supported files only, sorted,
    hidden ones skipped); files named explicitly are passed through as they are."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith((".", "~$")) and (
                        Path(name).suffix.lower() in SUPPORTED_SUFFIXES
                    ):
                        yield Path(root) / name
        else:
            yield p


# --- redaction -----------------------------------------------------------------------


def redact_file(
    src: Path, dst: Path, policy: PiiPolicy, *, secret: bytes | None = None
) -> Counter[str]:
    """Write a redacted copy of ``src`` to ``dst``; returns counts per type.

    CSV keeps its delimiter, encoding and line ends; XLSX keeps every sheet, cell and
    style (only cells with PII change); JSON keeps its structure; DOCX keeps its runs'
    formatting; a PDF is written as redacted text to a ``.txt`` destination.
    """
    src, dst = Path(src), Path(dst)
    suffix = _check_supported(src)
    if not src.exists():
        raise ScanError(src, "not_found")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ScanError(dst, "same_path")
    if policy.strategy == "pseudonym" and secret is None:
        raise PiiError(msg("no_secret", env="ZHIKU_PII_SECRET"))
    counts: Counter[str] = Counter()
    if suffix in (".csv", ".tsv"):
        _redact_csv(src, dst, policy, secret, counts)
    elif suffix in (".xlsx", ".xlsm"):
        _redact_xlsx(src, dst, policy, secret, counts)
    elif suffix in (".json", ".jsonl", ".ndjson"):
        _redact_json(src, dst, policy, secret, counts)
    elif suffix in TEXT_SUFFIXES:
        raw = _read_bytes(src)
        text, enc = decode_text(raw, src)
        out, c = _redact_text(text, policy, secret)
        counts.update(c)
        _write_text(dst, out, enc, raw[:4])
    elif suffix == ".docx":
        _redact_docx(src, dst, policy, secret, counts)
    else:  # .pdf
        if dst.suffix.lower() != ".txt":
            raise ScanError(dst, "pdf_redact")
        out, c = _redact_text(_document_text(src), policy, secret)
        counts.update(c)
        _write_text(dst, out, "utf-8", b"")
    return counts


def _redact_text(text: str, policy: PiiPolicy, secret: bytes | None) -> tuple[str, Counter[str]]:
    found = detect(text, min_confidence=policy.min_confidence, types=policy.types)
    return apply_findings(text, found, policy, secret)


def _write_text(dst: Path, text: str, encoding: str, head: bytes) -> None:
    dst.write_bytes(encode_like(text, encoding, head))


def _redact_csv(
    src: Path, dst: Path, policy: PiiPolicy, secret: bytes | None, counts: Counter[str]
) -> None:
    data = _read_csv(src)
    rows = data.rows
    if rows:
        names = _column_names(rows[0])
        for j, cell in enumerate(rows[0]):
            rows[0][j], c = redact_field(cell, None, policy, secret=secret)
            counts.update(c)
        for row in rows[1:]:
            for j, cell in enumerate(row):
                if cell.strip():
                    name = names[j] if j < len(names) else ""
                    row[j], c = redact_field(cell, name, policy, secret=secret)
                    counts.update(c)
    buf = io.StringIO()
    csv.writer(buf, delimiter=data.delimiter, lineterminator=data.newline).writerows(rows)
    _write_text(dst, buf.getvalue(), data.encoding, data.head)


def _redact_xlsx(
    src: Path, dst: Path, policy: PiiPolicy, secret: bytes | None, counts: Counter[str]
) -> None:
    wb = _open_workbook(src, read_only=False)
    for ws in wb.worksheets:
        names: list[str] | None = None
        for row in ws.iter_rows():
            header = names is None
            if header:
                if not any(c.value is not None and str(c.value).strip() for c in row):
                    continue
                names = _column_names([c.value for c in row])
            for j, cell in enumerate(row):
                v = cell.value
                if v is None or cell.data_type == "f" or isinstance(v, str) and v.startswith("="):
                    continue
                name = (
                    ""
                    if header or names is None
                    else names[j]
                    if j < len(names)
                    else _col_letter(j)
                )
                text = _cell_text(v, name)
                if text is None:
                    continue
                out, c = redact_field(text, name, policy, secret=secret)
                if c:
                    cell.value = out
                    counts.update(c)
    wb.save(str(dst))


def _redact_json(
    src: Path, dst: Path, policy: PiiPolicy, secret: bytes | None, counts: Counter[str]
) -> None:
    docs = _load_json(src)

    def walk(obj: Any, key: str) -> Any:
        if isinstance(obj, dict):
            return {k: walk(v, str(k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v, key) for v in obj]
        if isinstance(obj, str | int | float) and not isinstance(obj, bool):
            text = _cell_text(obj, key)
            if text is None:
                return obj
            out, c = redact_field(text, key, policy, secret=secret)
            if c:
                counts.update(c)
                return out
        return obj

    redacted = [walk(d, "") for d in docs]
    if src.suffix.lower() in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in redacted)
    else:
        text = json.dumps(redacted[0], ensure_ascii=False, indent=2) + "\n"
    _write_text(dst, text, "utf-8", b"")


def _redact_docx(
    src: Path, dst: Path, policy: PiiPolicy, secret: bytes | None, counts: Counter[str]
) -> None:
    import docx

    try:
        document = docx.Document(str(src))
    except Exception as exc:  # noqa: BLE001
        raise ScanError(src, "corrupt", reason=type(exc).__name__) from exc

    def fix(par: Any) -> None:
        _redact_runs(_paragraph_runs(par), policy, secret, counts)

    def walk(container: Any) -> None:
        for par in container.paragraphs:
            fix(par)
        for table in getattr(container, "tables", []):
            for row in table.rows:
                for cell in row.cells:
                    walk(cell)

    walk(document)
    for section in document.sections:
        for part in (section.header, section.footer):
            walk(part)
    document.save(str(dst))


def _paragraph_runs(par: Any) -> list[Any]:
    runs: list[Any] = []
    for item in par.iter_inner_content():
        runs.extend(getattr(item, "runs", [item]))
    return runs


def _redact_runs(
    runs: list[Any], policy: PiiPolicy, secret: bytes | None, counts: Counter[str]
) -> None:
    """Replace findings across runs, keeping each run's formatting."""
    texts = [r.text for r in runs]
    full = "".join(texts)
    if not full.strip():
        return
    found = [
        f
        for f in detect(full, min_confidence=policy.min_confidence, types=policy.types)
        if policy.should_mask(f)
    ]
    if not found:
        return
    bounds = [0]
    for t in texts:
        bounds.append(bounds[-1] + len(t))
    for f in reversed(found):
        rep = replacement(f, policy, secret)
        first = True
        for k in range(len(runs)):
            rs, re_ = bounds[k], bounds[k + 1]
            if re_ <= f.start or rs >= f.end:
                continue
            lo, hi = max(f.start, rs) - rs, min(f.end, re_) - rs
            texts[k] = texts[k][:lo] + (rep if first else "") + texts[k][hi:]
            first = False
        counts[f.type] += 1
    for r, t in zip(runs, texts, strict=True):
        if r.text != t:
            r.text = t
