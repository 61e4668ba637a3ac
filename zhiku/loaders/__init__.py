"""File loaders: one per format, all registered through :func:`register`.

A loader is a callable ``(path: Path) -> LoadedDocument``. It raises
:class:`zhiku.errors.LoadError` (reason ``corrupt``, ``encrypted``, ``empty``,
``encoding``…) with a zh-TW message when the file cannot be read; it never returns
an empty document silently.

:func:`load` applies the resource limits of :mod:`zhiku.limits` to every format (size
on disk, a measured scan of any ZIP container, passages and characters afterwards);
a loader counts what it produces while reading through ``zhiku.limits.budget()``.
Ingestion calls :func:`zhiku.limits.load_isolated`, which runs :func:`load` in a
worker process with time and memory budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zhiku import limits as zlimits
from zhiku.errors import LoadError, UnsupportedFile
from zhiku.models import LoadedDocument

Loader = Callable[[Path], LoadedDocument]

_REGISTRY: dict[str, Loader] = {}
_BUILTINS_LOADED = False


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    """Register a loader for file suffixes (``".pdf"``); later registrations win."""

    def deco(fn: Loader) -> Loader:
        for s in suffixes:
            _REGISTRY[s.lower()] = fn
        return fn

    return deco


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    # Importing the modules runs their @register decorators.
    from zhiku.loaders import (  # noqa: F401
        archive,
        docx,
        email,
        html,
        image,
        legacy,
        markdown,
        odf,
        pdf,
        pptx,
        rtf,
        sheet,
        subtitles,
        txt,
    )


def supported_suffixes() -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY)


def loader_for(path: Path) -> Loader | None:
    _ensure_builtins()
    return _REGISTRY.get(path.suffix.lower())


def load(
    path: Path, max_bytes: int | None = None, limits: zlimits.Limits | None = None
) -> LoadedDocument:
    """Load one file in this process, checking size, containers, emptiness and the
    limits the same way for every format."""
    lim = limits or zlimits.current()
    if max_bytes is not None:
        lim = zlimits.with_limits(lim, max_file_mb=max_bytes / zlimits.MB)
    with zlimits.using(lim):
        return load_here(path, lim)


def load_here(path: Path, lim: zlimits.Limits) -> LoadedDocument:
    fn = loader_for(path)
    if fn is None:
        raise UnsupportedFile(str(path))
    size = path.stat().st_size
    if size == 0:
        raise LoadError(str(path), "empty", "檔案是空的")
    max_bytes = lim.max_file_mb * zlimits.MB
    if size > max_bytes:
        msg = f"檔案過大（{size / 1e6:.1f} MB，上限 {max_bytes / 1e6:.0f} MB）"
        raise LoadError(str(path), "too_large", msg)
    with zlimits.loading(path, lim):
        # A ZIP archive's members are files of their own: the archive loader counts each
        # member's bytes as it decompresses and reports a bomb member by itself.
        if zlimits.is_zip(path) and path.suffix.lower() != ".zip":
            zlimits.scan_zip(path, lim)
        doc = fn(path)
    if not any(b.text.strip() for b in doc.blocks):
        raise LoadError(str(path), "empty", "檔案中沒有可擷取的文字（可能是掃描影像或空白文件）")
    zlimits.check_document(str(path), doc, lim)
    return doc
