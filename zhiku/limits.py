"""Resource limits for reading untrusted files, in one place for every format.

A small file can cost a lot to read: a ZIP whose entries expand a thousandfold, a PDF
with a flate stream that decompresses to gigabytes, a DOCX with thousands of styles, an
XLSX whose million empty-looking rows become a million passages. The defences live
here and are applied by the loader registry (:func:`zhiku.loaders.load`) to every
format, so a loader added later gets them without doing anything:

1. **Before parsing** — a file that starts like a ZIP (DOCX, XLSX, PPTX, ODF, EPUB, a
   plain archive…) is read through once by :func:`scan_zip`, which decompresses every
   entry in small pieces and counts the bytes that really come out (headers are never
   trusted: an entry that says 1 kB and yields 1 GB is stopped after the limit), the
   entries, and the XML elements of XML entries. The parser library then reads a
   container whose true size is known to be within the limits.
2. **While parsing** — the loader counts what it produces against the current
   :class:`Budget` (:func:`budget`): ``budget().rows(n)``, ``pages(n)``,
   ``elements(n)``, ``styles(n)``, ``expanded(n)`` raise :class:`LoadError` (reason
   ``too_large``, ``too_complex`` or ``bomb``) as soon as a limit is passed. A loader
   that opens a container itself (an archive of files, an e-mail with attachments)
   uses :func:`open_counted` / :class:`CountingReader` so that its reads are counted
   against the same expanded-bytes budget.
3. **After parsing** — :func:`check_document` limits passages per document and
   characters per passage, whatever the loader.
4. **Around parsing** — :func:`load_isolated` runs the loader in a worker process
   (a fresh interpreter per ingesting thread, reused from file to file) with a
   wall-time and a memory budget. The parent watches the
   worker's resident memory and kills it when the budget is passed or the time is up;
   a worker that grew large is retired after its file, so its memory goes back to the
   system. This covers what no counter can see, such as decompression inside a C
   library (pdfium).

Every limit is a field of :class:`Limits`, set with ``ZHIKU_LIMIT_<FIELD>`` variables
(``ZHIKU_LIMIT_FILE_SECONDS=60``); see ``docs/operators/security.md``. Defaults are far above
what real office documents need, so nothing that was stored before is refused.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import multiprocessing
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from zhiku.errors import LoadError
from zhiku.messages import t
from zhiku.settings import SettingsError
from zhiku.settings_schema import ZhikuSettings, load

MB = 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
_READ = 1 << 20
_XML_SUFFIXES = (".xml", ".rels", ".vml")


class LimitsError(SettingsError):
    """A limit setting has a value that cannot be used."""

    exit_code = 2


_MAY_BE_ZERO = ("seconds_per_mb", "memory_per_mb")


class Limits(ZhikuSettings):
    """Limits on reading one file. Sizes in MB; ``0`` never means "unlimited".

    Every field can be set with ``ZHIKU_LIMIT_<FIELD>`` (:mod:`zhiku.settings`)."""

    model_config = SettingsConfigDict(
        env_prefix="ZHIKU_LIMIT_",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        validate_default=True,
    )

    max_file_mb: float = 200.0  # size on disk
    max_expanded_mb: float = 1024.0  # bytes that come out of a container, measured
    max_ratio: float = 400.0  # expanded / compressed, over the whole container
    max_entries: int = 10_000  # entries in a container
    max_xml_elements: int = 20_000_000  # elements in all XML parts of a container
    max_styles: int = 20_000  # style definitions (DOCX)
    max_rows: int = 500_000  # spreadsheet rows with content, all sheets
    max_pages: int = 10_000  # PDF pages
    max_passages: int = 200_000  # passages (blocks) per document
    max_passage_chars: int = 5_000_000  # characters in one block of text
    file_seconds: float = 20.0  # wall time to read one file …
    seconds_per_mb: float = 1.0  # … plus this per MB of file
    file_memory_mb: float = 960.0  # resident memory of the reading process …
    memory_per_mb: float = 8.0  # … or this times the file size when larger
    isolate: bool = True  # read in a worker process (time and memory budgets)

    @field_validator("*")
    @classmethod
    def _positive(cls, v: Any, info: ValidationInfo) -> Any:
        # The per-MB allowances may be 0 (the fixed budget alone); nothing else may.
        if isinstance(v, bool) or (v == 0 and info.field_name in _MAY_BE_ZERO):
            return v
        if v <= 0:
            raise ValueError(t("settings.positive", key=info.field_name, value=v))
        return v

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Limits:
        """Limits from ``ZHIKU_LIMIT_*`` variables, then ``overrides``; raises on bad values."""
        try:
            return load(cls, env, **overrides)
        except SettingsError as exc:
            raise LimitsError(str(exc)) from None

    def validate_all(self) -> None:
        self.from_env({}, **self.model_dump())

    def seconds_for(self, size: int) -> float:
        return self.file_seconds + self.seconds_per_mb * size / MB

    def memory_for(self, size: int) -> int:
        return int(max(self.file_memory_mb, self.memory_per_mb * size / MB) * MB)

    def to_env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            v = getattr(self, name)
            out[self.env_name(name)] = ("1" if v else "0") if isinstance(v, bool) else str(v)
        return out


_current: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "zhiku_limits", default=None
)


def current() -> Limits:
    """The limits in force: those set by :func:`using`, else from the environment."""
    lim = _current.get()
    return lim if lim is not None else Limits.from_env()


@contextlib.contextmanager
def using(limits: Limits) -> Iterator[Limits]:
    """Make ``limits`` the ones in force for the calls inside the block."""
    token = _current.set(limits)
    try:
        yield limits
    finally:
        _current.reset(token)


# --- per-file counters -------------------------------------------------------------------


def too_complex(path: str, what: str) -> LoadError:
    return LoadError(path, "too_complex", f"檔案結構過於複雜（{what}），已停止讀取")


def too_large(path: str, what: str) -> LoadError:
    return LoadError(path, "too_large", f"檔案內容過大（{what}），已停止讀取")


def bomb(path: str, what: str) -> LoadError:
    return LoadError(path, "bomb", f"疑似壓縮炸彈：{what}，已停止讀取")


class Budget:
    """What one file has produced so far, checked against :class:`Limits` as it grows."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.counts: dict[str, int] = {}

    def _add(
        self, key: str, n: int, limit: float, err: Callable[[str, str], LoadError], what: str
    ) -> None:
        total = self.counts.get(key, 0) + n
        self.counts[key] = total
        if total > limit:
            raise err(self.path, what.format(limit=limit))

    def expanded(self, n: int) -> None:
        lim = self.limits.max_expanded_mb
        self._add("expanded", n, lim * MB, bomb, f"解壓縮後超過 {lim:g} MB")

    def elements(self, n: int) -> None:
        self._add(
            "elements", n, self.limits.max_xml_elements, too_complex, "XML 元素超過 {limit:,} 個"
        )

    def styles(self, n: int) -> None:
        self._add("styles", n, self.limits.max_styles, too_complex, "樣式超過 {limit:,} 個")

    def rows(self, n: int = 1) -> None:
        self._add("rows", n, self.limits.max_rows, too_large, "超過 {limit:,} 列")

    def pages(self, n: int = 1) -> None:
        self._add("pages", n, self.limits.max_pages, too_large, "超過 {limit:,} 頁")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "zhiku_budget", default=None
)


def budget() -> Budget:
    """The budget of the file being loaded (a fresh, unattached one outside a load)."""
    b = _budget.get()
    return b if b is not None else Budget("", current())


@contextlib.contextmanager
def loading(path: Path, limits: Limits) -> Iterator[Budget]:
    """The budget for loading ``path``; :func:`zhiku.loaders.load` opens it."""
    b = Budget(str(path), limits)
    token = _budget.set(b)
    try:
        yield b
    finally:
        _budget.reset(token)


def check_document(path: str, doc: Any, lim: Limits) -> None:
    """Passages per document and characters per passage, whatever the format."""
    if len(doc.blocks) > lim.max_passages:
        raise too_large(path, f"超過 {lim.max_passages:,} 個段落")
    longest = max((len(b.text) for b in doc.blocks), default=0)
    if longest > lim.max_passage_chars:
        raise too_large(path, f"單一段落超過 {lim.max_passage_chars:,} 字")


# --- containers ----------------------------------------------------------------------------


class CountingReader:
    """A file-like reader that charges every byte it returns to a :class:`Budget`, and
    counts XML elements (``<`` not followed by ``/``, ``?`` or ``!``) when ``xml``."""

    def __init__(self, raw: IO[bytes], b: Budget, xml: bool = False) -> None:
        self.raw = raw
        self.b = b
        self.xml = xml

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else _READ)
        if data:
            self.b.expanded(len(data))
            if self.xml:
                self.b.elements(
                    data.count(b"<") - data.count(b"</") - data.count(b"<?") - data.count(b"<!")
                )
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_counted(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo | str, b: Budget | None = None
) -> CountingReader:
    """Open a ZIP entry for reading with its bytes charged to the current budget."""
    name = info.filename if isinstance(info, zipfile.ZipInfo) else info
    xml = name.lower().endswith(_XML_SUFFIXES)
    return CountingReader(zf.open(info), b or budget(), xml=xml)


def _uncapped(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    """An entry reader that does not stop at the size the header claims.

    :mod:`zipfile` stops an entry at its declared size (and then fails its CRC check),
    whereas other readers decompress to the end of the stream; to measure what the
    data really holds, the declared size is set beyond the limit here.
    """
    probe = zipfile.ZipInfo(info.filename, info.date_time)
    for attr in (
        "compress_type",
        "compress_size",
        "flag_bits",
        "header_offset",
        "CRC",
        "extra",
        "create_system",
        "external_attr",
    ):
        setattr(probe, attr, getattr(info, attr))
    probe.file_size = 1 << 62
    ext = zf.open(probe)
    ext._expected_crc = None  # type: ignore[attr-defined]  # the CRC would need the true size
    return ext


def scan_zip(path: Path, limits: Limits | None = None, b: Budget | None = None) -> None:
    """Read every entry of a ZIP container once, counting what really comes out.

    Raises :class:`LoadError` ``bomb`` when the expanded bytes, the entry count or the
    expansion ratio pass the limits (measured while decompressing, never taken from the
    headers), ``too_complex`` for too many XML elements. A container that is broken is
    left to its loader, which explains the damage in its own format's words.
    """
    lim = limits or current()
    b = b or Budget(str(path), lim)
    spath = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    compressed = max(path.stat().st_size, 1)
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.max_entries:
            raise bomb(spath, f"壓縮檔內的項目超過 {lim.max_entries:,} 個")
        for info in infos:
            if info.is_dir():
                continue
            try:
                reader = CountingReader(
                    _uncapped(zf, info), b, xml=info.filename.lower().endswith(_XML_SUFFIXES)
                )
            except (
                zipfile.BadZipFile,
                NotImplementedError,
                RuntimeError,
                OSError,
                ValueError,
                EOFError,
            ):
                continue  # encrypted, unknown compression, damaged: the loader says so
            try:
                while reader.read(_READ):
                    done = b.counts.get("expanded", 0)
                    if done > 16 * MB and done > lim.max_ratio * compressed:
                        raise bomb(spath, f"解壓縮比超過 {lim.max_ratio:g} 倍")
            except LoadError:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error):
                continue
            finally:
                reader.close()


def is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == ZIP_MAGIC


# --- the worker process --------------------------------------------------------------------


def _child(conn: multiprocessing.connection.Connection) -> None:
    """Worker loop: receive (path, limits), load, send the document or the error back."""
    from zhiku import loaders

    loaders.supported_suffixes()  # import every loader once
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        path, limits, env = msg
        # The loaders' own settings (ZHIKU_*) as the parent has them now, not as they
        # were when this worker started.
        for k in [k for k in os.environ if k.startswith("ZHIKU_") and k not in env]:
            if k != "ZHIKU_OCR_DEFER":
                del os.environ[k]
        os.environ.update(env)
        try:
            with using(limits):
                doc = loaders.load_here(Path(path), limits)
            reply: tuple[Any, ...] = ("ok", doc)
        except LoadError as exc:
            reply = ("load_error", exc.path, exc.reason, exc.message)
        except MemoryError:
            reply = ("load_error", path, "bomb", "")
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a corrupt file
            reply = ("error", type(exc).__name__, str(exc)[:500])
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable value in meta
            conn.send(("error", type(exc).__name__, str(exc)[:500]))


def _child_main(fd: int) -> None:
    """Entry point of the worker process (``python -c``), talking over socket ``fd``."""
    os.environ["ZHIKU_OCR_DEFER"] = "1"  # OCR runs in the parent (zhiku.ocr.PageReader)
    conn = multiprocessing.connection.Connection(fd)
    try:
        _child(conn)
    finally:
        conn.close()


def _peak(pid: int) -> int | None:
    """Peak resident memory (``VmHWM``) of ``pid`` in bytes, ``None`` where unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# Called after every isolated load with (path, seconds, peak RSS of the worker in bytes,
# error reason or None): for metrics and ``bench/hostile.py``.
observe: Callable[[str, float, int, str | None], None] | None = None


def _rss(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes (Linux ``/proc``), ``None`` where unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class LoadWorker:
    """One worker process that loads files on request, within time and memory budgets."""

    POLL_S = 0.01
    RETIRE_RSS = 384 * MB  # a worker that grew beyond this is retired after its file

    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.peak_rss = 0

    def _start(self) -> None:
        # A fresh interpreter, not a fork: forking a threaded server is unsafe, and
        # multiprocessing's spawn would re-run the parent's main script.
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        code = f"from zhiku.limits import _child_main; _child_main({theirs.fileno()})"
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            theirs.close()
        self.proc = proc
        self.conn = multiprocessing.connection.Connection(ours.detach())

    def close(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            assert self.conn is not None
            self.conn.send(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(1.0)
        self._kill()

    def _kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5.0)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def load(self, path: Path, limits: Limits) -> Any:
        """The loaded document of ``path``, or :class:`LoadError` raised."""
        t0 = time.monotonic()
        reason: str | None = None
        try:
            return self._load(path, limits)
        except LoadError as exc:
            reason = exc.reason
            raise
        finally:
            if observe is not None:
                observe(str(path), time.monotonic() - t0, self.peak_rss, reason)

    def _note_peak(self) -> None:
        if self.proc is not None:
            peak = _peak(self.proc.pid)
            if peak is not None:
                self.peak_rss = max(self.peak_rss, peak)

    def ensure_started(self) -> None:
        """Start the worker process now (it imports the loaders: about a second), so the
        first file does not wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            self._kill()
            self._start()

    def _load(self, path: Path, limits: Limits) -> Any:
        self.ensure_started()
        assert self.conn is not None and self.proc is not None
        size = path.stat().st_size
        seconds = limits.seconds_for(size)
        memory = limits.memory_for(size)
        spath = str(path)
        env = {k: v for k, v in os.environ.items() if k.startswith("ZHIKU_")}
        self.conn.send((spath, limits, env))
        t0 = time.monotonic()
        pid = self.proc.pid
        self.peak_rss = 0
        reply: Any = None
        while True:
            try:
                if self.conn.poll(self.POLL_S):
                    reply = self.conn.recv()
                    break
            except (EOFError, OSError):
                reply = None
                break
            rss = _rss(pid)
            if rss is not None:
                self.peak_rss = max(self.peak_rss, rss)
                if rss > memory:
                    self._note_peak()
                    self._kill()
                    raise bomb(spath, f"讀取時記憶體超過 {memory / MB:.0f} MB")
            if time.monotonic() - t0 > seconds:
                self._note_peak()
                self._kill()
                raise too_complex(spath, f"讀取超過 {seconds:.0f} 秒")
            if self.proc.poll() is not None:
                break
        if reply is None:  # the worker died (a crash in a C library, the OOM killer)
            code = self.proc.poll() if self.proc is not None else None
            self._kill()
            raise LoadError(spath, "corrupt", f"讀取檔案的工作行程意外結束（代碼 {code}）")
        self._note_peak()
        rss = _rss(pid)
        if rss is not None:
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.RETIRE_RSS:
                self.close()  # its memory goes back to the system
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "load_error":
            _, p, reason, message = reply
            if reason == "bomb" and not message:
                raise bomb(spath, f"讀取時記憶體超過 {memory / MB:.0f} MB")
            raise LoadError(p, reason, message)
        raise LoadError(spath, "corrupt", f"無法解析檔案（{reply[1]}: {reply[2]}）")


_local = threading.local()
_workers: list[LoadWorker] = []
_workers_lock = threading.Lock()


def worker() -> LoadWorker:
    """This thread's load worker (each ingesting thread gets its own process)."""
    w = getattr(_local, "worker", None)
    if w is None:
        w = _local.worker = LoadWorker()
        with _workers_lock:
            _workers.append(w)
    return w


@atexit.register
def close_workers() -> None:
    with _workers_lock:
        for w in _workers:
            with contextlib.suppress(Exception):
                w.close()
        _workers.clear()


def load_isolated(path: Path, limits: Limits | None = None) -> Any:
    """Load ``path`` in this thread's worker process within the time and memory budgets
    (in this process when ``limits.isolate`` is off)."""
    from zhiku import loaders

    lim = limits or current()
    if not lim.isolate:
        with using(lim):
            return loaders.load_here(path, lim)
    return worker().load(path, lim)


def with_limits(limits: Limits, **changes: Any) -> Limits:
    return Limits.from_env({}, **{**limits.model_dump(), **changes})
