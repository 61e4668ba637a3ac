"""ZIP archives: every member is ingested as a document of its own, citing the archive.

The archive itself becomes a small document listing its contents; its members are
:class:`~zhiku.models.ChildFile` children that :mod:`zhiku.ingest` stores as
``archive.zip#folder/member.docx`` (nested archives recurse, up to
:data:`zhiku.ingest.MAX_NESTING` levels). Limits (:class:`~zhiku.loaders._zip.ZipLimits`)
are counted while decompressing: a member that expands past them, or a member list
longer than allowed, is reported as a bomb; the members read before it are kept.
Member names written by Windows in CP950 (no UTF-8 flag) are decoded as such.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import stem_title
from zhiku.loaders._zip import Budget, ZipBomb, ZipLimits, is_encrypted, members, open_zip
from zhiku.models import Block, ChildFile, LoadedDocument

_LOCKED = "壓縮檔成員已設定密碼，無法讀取"
_SKIP_PARTS = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it (UTF-8 flag, else CP950, else CP437)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            return name
        for enc in ("utf-8", "cp950"):
            try:
                return raw.decode(enc)
            except UnicodeDecodeError:
                continue
    return name


def _hidden(name: str) -> bool:
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return base.startswith((".", "~$")) or any(p in name for p in _SKIP_PARTS)


@register(".zip")
def load_zip(path: Path) -> LoadedDocument:
    limits = ZipLimits.from_env()
    budget = Budget(path, limits)
    children: list[ChildFile] = []
    bomb: LoadError | None = None
    with open_zip(path, "ZIP") as zf:
        for info in list(members(zf, path, limits)):
            name = member_name(info)
            if _hidden(name):
                continue
            if bomb is not None:
                children.append(ChildFile(name, error=(bomb.reason, "壓縮炸彈之後的成員未解壓")))
                continue
            if is_encrypted(info):
                children.append(ChildFile(name, error=("encrypted", _LOCKED)))
                continue
            try:
                children.append(ChildFile(name, budget.read(zf, info)))
            except ZipBomb as exc:
                children.append(ChildFile(name, error=(exc.reason, exc.message)))
                if exc.exhausted:
                    bomb = exc
            except LoadError as exc:
                children.append(ChildFile(name, error=(exc.reason, exc.message)))
    listing = "、".join(c.name for c in children) or "（空）"
    blocks = [Block(f"壓縮檔 {path.name} 內含 {len(children)} 個檔案：{listing}")]
    meta: dict[str, object] = {"members": len(children)}
    if bomb is not None:
        meta["zip_bomb"] = bomb.message
    return LoadedDocument(
        title=stem_title(path), kind="zip", blocks=blocks, meta=meta, children=children
    )
