"""The one place zhiku opens ZIP-based files: ZIP archives, ODF (.odt/.ods/.odp) and
PPTX. Limits are enforced while decompressing (bytes actually produced are counted),
never taken from the sizes a ZIP header claims.

- :func:`open_zip` opens a container and turns "not a ZIP" into a clear ``corrupt``
  LoadError;
- :func:`read_member` reads one member, stopping as soon as it produces more than
  allowed (a bomb);
- :func:`check_container` decompresses every member of a container a library will open
  (odfpy, python-pptx) against the limits first, so that a bomb disguised as a document
  is refused before the library inflates it in memory.

Defaults are in :class:`ZipLimits`; ``ZHIKU_ZIP_MAX_MB`` (expanded bytes per file) and
``ZHIKU_ZIP_MAX_MEMBERS`` override them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zhiku.errors import LoadError
from zhiku.settings import core

_CHUNK = 1 << 16


_MB = 1024 * 1024
DEFAULT_MAX_TOTAL_MB = 512
DEFAULT_MAX_MEMBERS = 10_000


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_total: int = DEFAULT_MAX_TOTAL_MB * _MB  # expanded bytes, all members together
    max_member: int = 200 * _MB  # expanded bytes of one member (= a file's size limit)
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: int = 200  # expanded / compressed, per member once past 1 MB

    @classmethod
    def from_env(cls) -> ZipLimits:
        settings = core()
        total = settings.zip_max_mb * _MB
        return cls(
            max_total=total, max_member=min(200 * _MB, total), max_members=settings.zip_max_members
        )


class ZipBomb(LoadError):
    """Decompression went past a limit. ``exhausted``: the container's whole budget is
    spent (nothing more can be read from it)."""

    def __init__(self, path: str, message: str, exhausted: bool = False) -> None:
        super().__init__(path, "bomb", message)
        self.exhausted = exhausted


def open_zip(path: Path, kind: str = "ZIP") -> zipfile.ZipFile:
    """``path`` as a ZipFile, or a ``corrupt`` LoadError naming ``kind``."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise LoadError(str(path), "corrupt", f"{kind} 檔案已損毀或格式不正確，無法開啟") from exc


def is_encrypted(info: zipfile.ZipInfo) -> bool:
    return bool(info.flag_bits & 0x1)


class Budget:
    """Expanded bytes left for one container (shared by all its members)."""

    def __init__(self, path: Path, limits: ZipLimits) -> None:
        self.path = path
        self.limits = limits
        self.left = limits.max_total

    def read(
        self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int | None = None
    ) -> bytes:
        return read_member(zf, info, self, max_bytes)


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget, max_bytes: int | None = None
) -> bytes:
    """The member's bytes; :class:`ZipBomb` as soon as it expands past a limit.

    ``max_bytes`` is a smaller per-member limit (then a plain ``too_large`` error)."""
    limits = budget.limits
    cap = min(limits.max_member, budget.left)
    if max_bytes is not None:
        cap = min(cap, max_bytes)
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while True:
                block = fh.read(_CHUNK)
                if not block:
                    break
                out += block
                ratio_hit = (
                    len(out) > 1024 * 1024
                    and info.compress_size
                    and len(out) / info.compress_size > limits.max_ratio
                )
                if len(out) > cap or ratio_hit:
                    _over(budget, info, len(out), max_bytes, bool(ratio_hit))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise LoadError(
            str(budget.path), "corrupt", f"壓縮檔成員「{info.filename}」已損毀，無法解壓（{exc}）"
        ) from exc
    except NotImplementedError as exc:  # an unsupported compression method
        raise LoadError(
            str(budget.path), "corrupt", f"壓縮檔成員「{info.filename}」使用不支援的壓縮方式"
        ) from exc
    budget.left -= len(out)
    return bytes(out)


def _over(
    budget: Budget, info: zipfile.ZipInfo, n: int, max_bytes: int | None, ratio: bool
) -> None:
    limits = budget.limits
    if ratio:
        raise ZipBomb(
            str(budget.path),
            f"疑似壓縮炸彈：「{info.filename}」解壓倍率超過 {limits.max_ratio} 倍，已停止",
        )
    if max_bytes is not None and n > max_bytes and max_bytes < min(limits.max_member, budget.left):
        raise LoadError(
            str(budget.path),
            "too_large",
            f"「{info.filename}」解壓後超過 {max_bytes / 1e6:.0f} MB 上限",
        )
    raise ZipBomb(
        str(budget.path),
        f"疑似壓縮炸彈：解壓內容超過上限（{limits.max_total / 1e6:.0f} MB "
        f"總量、每個成員 {limits.max_member / 1e6:.0f} MB），於「{info.filename}」停止",
        exhausted=n > budget.left,
    )


def members(zf: zipfile.ZipFile, path: Path, limits: ZipLimits) -> Iterator[zipfile.ZipInfo]:
    """The file members (no directories), refusing archives with too many entries."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ZipBomb(
            str(path), f"壓縮檔內含 {len(infos)} 個項目，超過上限 {limits.max_members} 個"
        )
    for info in infos:
        if not info.is_dir():
            yield info


def check_container(path: Path, kind: str, limits: ZipLimits | None = None) -> None:
    """Open ``path`` as a ZIP-based document and inflate every member against the limits.

    Raises ``corrupt`` (not a ZIP), ``encrypted`` (password-protected members, or an
    ODF manifest with encryption data) or :class:`ZipBomb`."""
    limits = limits or ZipLimits.from_env()
    budget = Budget(path, limits)
    with open_zip(path, kind) as zf:
        for info in members(zf, path, limits):
            locked = f"{kind} 檔案已設定密碼（已加密），無法讀取"
            if is_encrypted(info):
                raise LoadError(str(path), "encrypted", locked)
            data = budget.read(zf, info)
            if info.filename == "META-INF/manifest.xml" and b"encryption-data" in data:
                raise LoadError(str(path), "encrypted", locked)
