"""Uploaded files: safe names, type checks by content, content-addressed storage.

A file is kept at ``<uploads>/<kb id>/<sha256[:16]>/<safe name>`` and stored in
the knowledge base as the document ``upload://<kb>/<safe name>``: a new upload with the
same name replaces the document (a new version), its path never depends on where the
data directory lives, and ``zhiku sync`` leaves it alone (see ``VIRTUAL_PREFIXES``).

The name a client sends is only a label: everything up to the last ``/`` or ``\\`` is
dropped, control and reserved characters are replaced, leading dots removed, so no
name can point outside the upload area. What a file *is* comes from its bytes: a PDF
must start with ``%PDF-``, a DOCX/XLSX must be a ZIP holding the parts of its format
(or the OLE container Office uses for encrypted and legacy files, which the loaders
then explain), text formats must be text. A renamed executable, an HTML page called
``.pdf`` or a ZIP bomb called ``.docx`` is refused before any parser sees it (the expanded
size is measured by decompressing, :func:`zhiku.limits.scan_zip`, never read from the
ZIP headers).

``<uploads>`` is ``ZHIKU_HOME/uploads`` by default. Several server nodes must share it
(a job started on one node may be finished by another, and "re-ingest" reads the kept
file): ``uploads = "/srv/zhiku-shared/uploads"`` in zhiku.toml or ``$ZHIKU_UPLOADS_DIR``
(which wins) names a shared directory (NFS, CephFS…). The ``stored`` value recorded for
each upload stays relative (``uploads/<kb id>/…``), so it means the same on every node.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zhiku import limits, loaders
from zhiku.backends.config import load_settings
from zhiku.errors import LoadError

#: Environment variable naming the uploads directory; overrides zhiku.toml's ``uploads``.
UPLOADS_ENV = "ZHIKU_UPLOADS_DIR"

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
TEXT_SUFFIXES = {".txt", ".text", ".log", ".md", ".markdown", ".csv", ".tsv", ".html", ".htm"}
_BINARY_MAGIC = (
    (b"MZ", "executable"),
    (b"\x7fELF", "executable"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"Rar!", "archive"),
    (b"7z\xbc\xaf", "archive"),
    (b"\x1f\x8b", "archive"),
    (b"%!PS", "postscript"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
)
_RESERVED = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_DEVICES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
MAX_NAME_BYTES = 180


class Rejected(Exception):
    """A file refused before ingestion; ``reason`` is the per-file error code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def safe_name(raw: str | None) -> str:
    """A file name that is safe as one path component on any OS, keeping its suffix."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = _RESERVED.sub("_", name).strip().strip(".").strip()
    name = re.sub(r"\s+", " ", name)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16]
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    if not stem.strip("_ "):
        stem = "upload"
    budget = MAX_NAME_BYTES - len(suffix.encode()) - 1
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return f"{stem}.{suffix}" if suffix else stem


def _zip_kind(path: Path, max_unzipped: int) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Rejected("corrupt", "ZIP 結構損毀，無法開啟（Office 檔案是 ZIP 格式）") from exc
    # What the entries really expand to, measured while decompressing (headers lie).
    lim = limits.current()
    lim = limits.with_limits(
        lim, max_expanded_mb=min(lim.max_expanded_mb, max_unzipped / limits.MB)
    )
    try:
        limits.scan_zip(path, lim)
    except LoadError as exc:
        raise Rejected(exc.reason, exc.message) from exc
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "zip"


def sniff(path: Path, max_unzipped: int) -> str:
    """What the file is by its bytes: pdf, docx, xlsx, ole, zip, text, or a binary kind."""
    with path.open("rb") as fh:
        head = fh.read(65536)
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path, max_unzipped)
    if head.startswith(OLE_MAGIC):
        return "ole"
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text with a BOM
        return "text"
    if b"\x00" in head:
        return "binary"
    return "text"


_ACCEPTS: dict[str, set[str]] = {
    ".pdf": {"pdf"},
    ".docx": {"docx", "ole"},
    ".xlsx": {"xlsx", "ole"},
    ".xlsm": {"xlsx", "ole"},
    **{s: {"text"} for s in TEXT_SUFFIXES},
    # Formats of issue 11 (docs/admins/formats.md). ODF files and archives are plain ZIPs; a
    # legacy .doc/.xls may really be HTML or RTF text, which its loader reads as such.
    **{s: {"image"} for s in (".png", ".jpg", ".jpeg", ".tif", ".tiff")},
    **{s: {"zip"} for s in (".odt", ".ods", ".odp", ".zip")},
    ".pptx": {"pptx", "ole"},
    ".doc": {"ole", "text"},
    ".xls": {"ole", "text"},
    ".ppt": {"ole"},
    ".msg": {"ole"},
    **{s: {"text"} for s in (".rtf", ".eml", ".srt", ".vtt")},
}

_KIND_ZH = {
    "pdf": "PDF",
    "docx": "Word（DOCX）",
    "xlsx": "Excel（XLSX）",
    "ole": "舊版 Office",
    "pptx": "PowerPoint（PPTX）",
    "zip": "ZIP 壓縮檔",
    "text": "純文字",
    "executable": "執行檔",
    "image": "圖片",
    "archive": "壓縮檔",
    "postscript": "PostScript",
    "binary": "二進位檔",
}


def check_type(path: Path, name: str, max_unzipped: int) -> str:
    """Raise :class:`Rejected` unless ``path``'s bytes are what ``name``'s suffix says."""
    suffix = Path(name).suffix.lower()
    if suffix not in _ACCEPTS or suffix not in loaders.supported_suffixes():
        supported = "、".join(s for s in sorted(_ACCEPTS) if s in loaders.supported_suffixes())
        shown = suffix or "（無副檔名）"
        raise Rejected("unsupported", f"不支援的檔案類型「{shown}」；支援：{supported}")
    kind = sniff(path, max_unzipped)
    if kind not in _ACCEPTS[suffix]:
        raise Rejected(
            "type_mismatch",
            f"檔案內容是{_KIND_ZH.get(kind, kind)}，與副檔名 {suffix} 不符",
        )
    return kind


@dataclass(slots=True)
class StoredFile:
    name: str  # the safe name
    stored: str  # path relative to the data directory
    sha256: str
    size: int


def spool(src: BinaryIO, dest_dir: Path, max_bytes: int) -> tuple[Path, str, int]:
    """Copy ``src`` to a temporary file, hashing it; raise when it exceeds ``max_bytes``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=_tmp_prefix())
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise Rejected(
                        "too_large",
                        f"檔案過大（上限 {max_bytes / 1024 / 1024:.0f} MB）",
                    )
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if size == 0:
        Path(tmp).unlink(missing_ok=True)
        raise Rejected("empty", "檔案是空的")
    return Path(tmp), h.hexdigest(), size


def root(home: Path) -> Path:
    """The directory of a home's kept uploads (shared by the nodes, see the module doc)."""
    value = os.environ.get(UPLOADS_ENV, "").strip() or load_settings(home).uploads
    return Path(value) if value else home / "uploads"


def tmp_dir(home: Path) -> Path:
    """Where uploads are spooled before they are checked (beside their final place, so
    the move is a rename)."""
    return root(home) / ".tmp"


def stored_path(home: Path, stored: str) -> Path:
    """The file of a ``stored`` value (``uploads/<kb id>/<hash>/<name>``)."""
    rel = Path(stored)
    if rel.parts[:1] == ("uploads",):
        return root(home).joinpath(*rel.parts[1:])
    return home / rel


def _tmp_prefix() -> str:
    return f".upload-{socket.gethostname()}-{os.getpid()}-"


def clean_stale_tmp(home: Path, max_age_s: float = 24 * 3600) -> int:
    """Delete the temporary files of interrupted uploads: those of a process of this host
    that is gone, and any older than ``max_age_s``. Returns how many were removed."""
    spool = tmp_dir(home)
    if not spool.is_dir():
        return 0
    host = socket.gethostname()
    now = time.time()
    removed = 0
    for f in spool.iterdir():
        if not f.name.startswith(".upload-") or not f.is_file():
            continue
        m = re.match(r"\.upload-(.+)-(\d+)-[^-]*$", f.name)
        dead = False
        if m and m.group(1) == host:
            pid = int(m.group(2))
            if pid != os.getpid():
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    dead = True
                except PermissionError:
                    pass
        try:
            old = now - f.stat().st_mtime > max_age_s
        except OSError:
            continue
        if dead or old or not m:
            f.unlink(missing_ok=True)
            removed += 1
    return removed


def place(home: Path, kb_id: int, tmp: Path, name: str, digest: str, size: int) -> StoredFile:
    """Move a spooled file to its content-addressed place (idempotent)."""
    top = root(home).resolve()
    dest = (top / str(kb_id) / digest[:16] / name).resolve()
    if not dest.is_relative_to(top) or dest.parent.parent.parent != top:
        raise Rejected("bad_name", "檔名不合法")  # unreachable with safe_name; belt and braces
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, dest)
    return StoredFile(
        name=name, stored=str(Path("uploads") / dest.relative_to(top)), sha256=digest, size=size
    )


def remove_stored(home: Path, stored: str) -> None:
    """Delete a stored upload and its (then empty) hash directory."""
    top = root(home).resolve()
    path = stored_path(home, stored).resolve()
    if not path.is_relative_to(top):
        return
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


def remove_kb_uploads(home: Path, kb_id: int) -> None:
    shutil.rmtree(root(home) / str(kb_id), ignore_errors=True)


def doc_path(kb: str, name: str) -> str:
    return f"upload://{kb}/{name}"
