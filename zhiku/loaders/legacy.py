"""Legacy Office binaries: ``.doc`` through Debian's ``catdoc``, ``.xls`` through PyPI's
``xlrd``, ``.ppt`` through LibreOffice headless (converted to PPTX, then read by the PPTX
loader, so slide numbers stay pages). What was tried and dropped: ``antiword`` refuses
small documents (「text stream of this file is too small」) and ``catppt`` printed nothing
for the PowerPoint 97 files LibreOffice writes; no maintained PyPI reader for ``.ppt``
text exists.

A file is sniffed before it is read: many "``.doc``" and "``.xls``" files are really
HTML or MHTML (web-page exports, government report systems), RTF, CSV or a renamed
DOCX/XLSX. Those are read by the loader of what they really are, with
``meta["detected_format"]`` saying so, instead of failing. A genuine binary that needs
a tool that is not installed fails with a message naming the package to install.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import cell_str, clean_text, stem_title
from zhiku.loaders._segment import segment
from zhiku.loaders.sheet import rows_to_blocks
from zhiku.models import LoadedDocument

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TIMEOUT_S = 120


def sniff(path: Path) -> str:
    """``cfb`` | ``zip`` | ``rtf`` | ``html`` | ``mhtml`` | ``pdf`` | ``text`` | ``binary``."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_CFB_MAGIC):
        return "cfb"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"%PDF-"):
        return "pdf"
    low = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if low.startswith(b"{\\rtf"):
        return "rtf"
    if low.startswith(b"mime-version") or b"content-type: multipart/related" in low[:1024]:
        return "mhtml"
    if (
        low.startswith((b"<!doctype html", b"<html", b"<?xml"))
        or b"<html" in low[:1024]
        or b"<table" in low[:1024]
    ):
        return "html"
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return "binary"
    return "text"


def _as(path: Path, real: str, kind: str) -> LoadedDocument:
    """Load ``path`` with the loader of the format it really is."""
    from zhiku.loaders import _REGISTRY

    if real == "zip":
        suffix = {"doc": ".docx", "xls": ".xlsx", "ppt": ".pptx"}[kind]
    elif real == "text" and kind == "xls":
        suffix = ".csv"
    else:
        suffix = {"rtf": ".rtf", "html": ".html", "pdf": ".pdf", "text": ".txt"}[real]
    doc = _REGISTRY[suffix](path)
    doc.meta["detected_format"] = suffix.lstrip(".")
    return doc


def _run(cmd: list[str], path: Path, package: str) -> str:
    tool = shutil.which(cmd[0])
    if tool is None:
        raise LoadError(
            str(path),
            "missing_tool",
            f"讀取 {path.suffix} 需要 {cmd[0]}，但尚未安裝（apt-get install {package}）",
        )
    try:
        proc = subprocess.run(
            [tool, *cmd[1:], str(path)], capture_output=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(str(path), "timeout", f"{cmd[0]} 超過 {_TIMEOUT_S} 秒仍未完成") from exc
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not proc.stdout.strip():
        if "encrypt" in err.lower() or "password" in err.lower():
            raise LoadError(str(path), "encrypted", "檔案已設定密碼（已加密），無法讀取")
        raise LoadError(
            str(path),
            "corrupt",
            f"舊版 Office 檔案已損毀或無法讀取（{cmd[0]}：{err[:200] or '沒有輸出'}）",
        )
    return clean_text(proc.stdout.decode("utf-8", "replace"))


def _text_document(path: Path, text: str, kind: str, meta: dict[str, object]) -> LoadedDocument:
    from zhiku.loaders.txt import text_lines

    blocks = segment(text_lines(text), wrapped=False)
    return LoadedDocument(title=stem_title(path), kind=kind, blocks=blocks, meta=meta)


@register(".doc", ".dot")
def load_doc(path: Path) -> LoadedDocument:
    real = sniff(path)
    if real != "cfb":
        if real in ("binary", "mhtml"):
            raise LoadError(str(path), "corrupt", "不是有效的 Word 97-2003 (.doc) 檔案")
        return _as(path, real, "doc")
    # -w: one line per paragraph (no re-wrapping); -d utf-8: Unicode output.
    text = _run(["catdoc", "-w", "-d", "utf-8"], path, "catdoc")
    return _text_document(path, text, "doc", {"reader": "catdoc"})


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _convert(path: Path, fmt: str, package: str) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    exe = soffice()
    if exe is None:
        raise LoadError(
            str(path),
            "missing_tool",
            f"讀取 {path.suffix} 需要 LibreOffice，但尚未安裝（apt-get install {package}）",
        )
    tmp = tempfile.TemporaryDirectory(prefix="zhiku-lo-")
    work = Path(tmp.name)
    src = work / f"in{path.suffix.lower()}"
    shutil.copyfile(path, src)  # LibreOffice names its output after the input
    cmd = [
        exe,
        f"-env:UserInstallation=file://{work / 'profile'}",
        "--headless",
        "--convert-to",
        fmt,
        "--outdir",
        str(work),
        str(src),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        tmp.cleanup()
        raise LoadError(str(path), "timeout", f"LibreOffice 轉檔超過 {_TIMEOUT_S} 秒") from exc
    out = work / f"in.{fmt}"
    if proc.returncode != 0 or not out.exists():
        tmp.cleanup()
        err = proc.stderr.decode("utf-8", "replace").strip()[:200]
        raise LoadError(
            str(path),
            "corrupt",
            f"舊版 Office 檔案已損毀、已加密或無法轉檔（LibreOffice：{err or '沒有輸出'}）",
        )
    return out, tmp


@register(".ppt", ".pps")
def load_ppt(path: Path) -> LoadedDocument:
    from zhiku.loaders.pptx import load_pptx

    real = sniff(path)
    if real != "cfb":
        if real in ("binary", "mhtml", "text"):
            raise LoadError(str(path), "corrupt", "不是有效的 PowerPoint 97-2003 (.ppt) 檔案")
        return _as(path, real, "ppt")
    out, tmp = _convert(path, "pptx", "libreoffice-impress-nogui")
    with tmp:
        doc = load_pptx(out)
    if doc.title == "in":
        doc.title = stem_title(path)
    doc.kind = "ppt"
    doc.meta["reader"] = "libreoffice"
    return doc


@register(".xls")
def load_xls(path: Path) -> LoadedDocument:
    real = sniff(path)
    if real != "cfb":
        if real in ("binary", "mhtml"):
            raise LoadError(str(path), "corrupt", "不是有效的 Excel 97-2003 (.xls) 檔案")
        return _as(path, real, "xls")
    try:
        import xlrd
    except ImportError as exc:
        raise LoadError(
            str(path), "missing_tool", "讀取 .xls 需要 xlrd，但尚未安裝（pip install xlrd）"
        ) from exc
    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise LoadError(
                str(path), "encrypted", "Excel 檔案已設定密碼（已加密），無法讀取"
            ) from exc
        raise LoadError(str(path), "corrupt", f"Excel 97-2003 檔案無法讀取（{exc}）") from exc
    except Exception as exc:  # noqa: BLE001 - xlrd raises struct/assert/index errors
        raise LoadError(str(path), "corrupt", "Excel 97-2003 檔案已損毀，無法開啟") from exc
    try:
        sheets = [book.sheet_by_index(i) for i in range(book.nsheets)]
        sheets = [s for s in sheets if not getattr(s, "visibility", 0)]
        multi = len(sheets) > 1
        blocks = []
        for sh in sheets:
            rows = (
                [cell_str(_xls_value(c, book.datemode)) for c in sh.row(r)] for r in range(sh.nrows)
            )
            blocks.extend(rows_to_blocks(rows, (sh.name,) if multi else ()))
        meta: dict[str, object] = {"sheets": [s.name for s in sheets], "reader": "xlrd"}
    finally:
        book.release_resources()
    return LoadedDocument(title=stem_title(path), kind="xls", blocks=blocks, meta=meta)


def _xls_value(cell: object, datemode: int) -> object:
    import xlrd

    ctype = getattr(cell, "ctype", None)
    value = getattr(cell, "value", None)
    if ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(float(value), datemode)  # type: ignore[arg-type]
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value
    if ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    return value
