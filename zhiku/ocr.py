"""OCR for scanned pages with Tesseract 5 (``chi_tra+eng``, Debian ``tesseract-ocr-chi-tra``).

The engine was chosen by measurement (``bench/ocr.py``, figures in bench/RESULTS.md):
character error rate against the source text and pages/s on the same rendered pages,
against RapidOCR (PP-OCRv4 ONNX models shipped in ``rapidocr-onnxruntime``). RapidOCR
had 13–26 % CER against Tesseract's 1.4–5 % (its Chinese dictionary lacks many
Traditional characters) and was not faster, so it did not earn a place in zhiku; its
adapter lives in the benchmark to keep the comparison reproducible.

- Every page is recognised on its own and its result is cached on disk under
  ``<ZHIKU_HOME>/ocr-cache/<sha256 of the file>/`` as soon as it is done, so an interrupted
  ingest (Ctrl-C, a killed server worker) resumes at the first page not yet read, and a
  re-ingest of an unchanged scan costs nothing. The cache is keyed by file content,
  engine and render resolution.
- Progress is reported per page through :func:`ocr_session`'s callback (the CLI shows it,
  the server's job workers run the same code). A server worker that is shutting down
  stops before the next page (:class:`OcrInterrupted`) and re-queues its job.
- Each line keeps its confidence; a page whose mean confidence is below
  ``LOW_CONFIDENCE`` is listed in the document's ``ocr.low_confidence_pages`` metadata.
- Limits: a page image larger than ``MAX_PIXELS`` is refused before it is decoded, and a
  file with more than ``max_pages()`` pages to OCR is refused (``ZHIKU_OCR_MAX_PAGES``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zhiku.errors import LoadError
from zhiku.settings import core

if TYPE_CHECKING:
    from PIL.Image import Image

LOW_CONFIDENCE = 0.70  # clean pages measured 0.78–0.91 (bench/ocr.py); unreadable ones < 0.4
MAX_PIXELS = 80_000_000  # ≈ A3 at 600 dpi; 20,000 × 20,000 is refused
OCR_DPI = 300
_MAX_SIDE = 4200  # larger page images are scaled down before recognition

DEFAULT_ENGINE = "tesseract"


@dataclass(slots=True)
class OcrLine:
    """One recognised text line with its box in pixels and confidence in [0, 1]."""

    text: str
    conf: float
    left: float
    top: float
    right: float
    bottom: float


@dataclass(slots=True)
class OcrPage:
    lines: list[OcrLine] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """Character-weighted mean confidence (1.0 for a page without text)."""
        n = sum(len(ln.text) for ln in self.lines)
        if not n:
            return 1.0
        return sum(ln.conf * len(ln.text) for ln in self.lines) / n

    @property
    def text(self) -> str:
        return "\n".join(ln.text for ln in self.lines)


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image) -> OcrPage: ...


def _ascii_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_HALF_PUNCT_RE = re.compile(rf"(?<=[{_CJK}])\s*([,;:!?()])|([,;:!?()])\s*(?=[{_CJK}])")
_FULL = {",": "，", ";": "；", ":": "：", "!": "！", "?": "？", "(": "（", ")": "）"}


def join_tokens(tokens: list[str]) -> str:
    """Words of one line joined: a space only between two Latin/digit words; ASCII
    punctuation next to a CJK character becomes full-width (「，」 not 「,」), as zh-TW
    text is written."""
    out = ""
    for tok in tokens:
        tok = tok.strip()
        if not tok:
            continue
        if out and _ascii_word(out[-1]) and _ascii_word(tok[0]):
            out += " "
        out += tok
    return _HALF_PUNCT_RE.sub(lambda m: _FULL[m.group(1) or m.group(2)], out)


# Tesseract reads the ideographic space after 「第 N 條」 and table rules as 「|」 「[」 「]」:
# words made only of these are dropped, as are low-confidence words of bare symbols.
_SPURIOUS_RE = re.compile(r"[|\[\]{}_~`¦]+")
_SYMBOLS_RE = re.compile(r"[^\w\u3400-\u9fff]+")


class TesseractEngine:
    """Tesseract 5 through pytesseract, Traditional Chinese + English (``chi_tra+eng``)."""

    name = "tesseract"

    def __init__(self, lang: str = "chi_tra+eng") -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise OcrUnavailable("tesseract", "pip install pytesseract") from exc
        if shutil.which("tesseract") is None:
            raise OcrUnavailable("tesseract", "apt-get install tesseract-ocr tesseract-ocr-chi-tra")
        try:
            langs = set(pytesseract.get_languages(config=""))
        except Exception as exc:  # noqa: BLE001 - a broken tesseract install
            raise OcrUnavailable("tesseract", f"tesseract 無法執行：{exc}") from exc
        missing = [x for x in lang.split("+") if x not in langs]
        if missing:
            pkgs = " ".join(f"tesseract-ocr-{m.replace('_', '-')}" for m in missing)
            raise OcrUnavailable("tesseract", f"apt-get install {pkgs}")
        self._tess = pytesseract
        self.lang = lang

    def read(self, image: Image) -> OcrPage:
        data = self._tess.image_to_data(
            image,
            lang=self.lang,
            config="--psm 3",
            output_type=self._tess.Output.DICT,
        )
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            w = str(word).strip()
            conf = float(data["conf"][i])
            if (
                not w
                or conf < 0
                or _SPURIOUS_RE.fullmatch(w)
                or (conf < 50 and _SYMBOLS_RE.fullmatch(w))
            ):
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            groups.setdefault(key, []).append(i)
        page = OcrPage()
        for idx in groups.values():
            text = join_tokens([str(data["text"][i]) for i in idx])
            if not text:
                continue
            confs = [float(data["conf"][i]) / 100 for i in idx]
            weights = [len(str(data["text"][i]).strip()) for i in idx]
            conf = sum(c * w for c, w in zip(confs, weights, strict=True)) / sum(weights)
            page.lines.append(
                OcrLine(
                    text,
                    round(conf, 4),
                    min(data["left"][i] for i in idx),
                    min(data["top"][i] for i in idx),
                    max(data["left"][i] + data["width"][i] for i in idx),
                    max(data["top"][i] + data["height"][i] for i in idx),
                )
            )
        return page


class OcrUnavailable(LoadError):
    """The OCR engine (or its language data) is not installed."""

    def __init__(self, engine: str, hint: str, path: str = "") -> None:
        super().__init__(path, "ocr_unavailable", f"需要 OCR 引擎 {engine}，但尚未安裝（{hint}）")
        self.engine = engine
        self.hint = hint


_ENGINES: dict[str, OcrEngine] = {}


def get_engine() -> OcrEngine:
    """The OCR engine (Tesseract), created once per process."""
    if DEFAULT_ENGINE not in _ENGINES:
        _ENGINES[DEFAULT_ENGINE] = TesseractEngine()
    return _ENGINES[DEFAULT_ENGINE]


def max_pages() -> int:
    return core().ocr_max_pages


# --- session: cache, progress, interruption ------------------------------------------

PageProgress = Callable[[str, int, int], None]  # (file name, page done, pages to OCR)


class OcrInterrupted(BaseException):  # noqa: N818 - named like KeyboardInterrupt
    """Raised before a page when the session's ``should_stop`` says so (a server worker
    shutting down). A BaseException, like KeyboardInterrupt, so that per-file error
    handling never records it as a bad file; the pages read so far are in the cache."""


@dataclass(slots=True)
class OcrSession:
    cache_dir: Path | None = None
    progress: PageProgress | None = None
    should_stop: Callable[[], bool] | None = None


_SESSION: contextvars.ContextVar[OcrSession | None] = contextvars.ContextVar(
    "zhiku_ocr_session", default=None
)


@contextlib.contextmanager
def ocr_session(
    cache_dir: Path | None = None,
    progress: PageProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[OcrSession]:
    """Within this block, OCR results are cached under ``cache_dir``, each page done is
    reported to ``progress``, and :class:`OcrInterrupted` is raised before a page once
    ``should_stop()`` is true. The ingest functions open one per file."""
    prev = _SESSION.get()
    if prev is not None:
        cache_dir = cache_dir if cache_dir is not None else prev.cache_dir
        progress = progress if progress is not None else prev.progress
        should_stop = should_stop if should_stop is not None else prev.should_stop
    sess = OcrSession(cache_dir, progress, should_stop)
    token = _SESSION.set(sess)
    try:
        yield sess
    finally:
        _SESSION.reset(token)


# Set in the loading worker processes of zhiku.limits: OCR is deferred to the parent.
DEFER_ENV = "ZHIKU_OCR_DEFER"
NEEDS_OCR = "needs_ocr"


class PageReader:
    """OCRs the pages of one file, with the per-page cache and progress of the session."""

    def __init__(self, path: Path, total: int, dpi: int = OCR_DPI) -> None:
        if _SESSION.get() is None and core().ocr_defer:
            # In a loading worker process (zhiku.limits): the file opened within its
            # budgets; its OCR runs in the ingesting process, which has the page cache,
            # the progress display and the interruption (zhiku.ingest).
            raise LoadError(str(path), NEEDS_OCR, "需要 OCR")
        if total > max_pages():
            raise LoadError(
                str(path),
                "too_large",
                f"需要 OCR 的掃描頁數 {total} 頁，超過上限 {max_pages()} 頁"
                "（可用環境變數 ZHIKU_OCR_MAX_PAGES 提高上限）",
            )
        try:
            self.engine = get_engine()
        except OcrUnavailable as exc:
            raise OcrUnavailable(exc.engine, exc.hint, str(path)) from exc
        self.path = path
        self.total = total
        self.done = 0
        sess = _SESSION.get()
        self._progress = sess.progress if sess else None
        self._should_stop = sess.should_stop if sess else None
        self._dir: Path | None = None
        if sess is not None and sess.cache_dir is not None:
            from zhiku.engine import file_hash  # the same digest ingest keys files by

            self._dir = sess.cache_dir / file_hash(path)
            self._dir.mkdir(parents=True, exist_ok=True)
        self._dpi = dpi

    def _cache_file(self, page: int) -> Path | None:
        if self._dir is None:
            return None
        return self._dir / f"{self.engine.name}-{self._dpi}-p{page}.json"

    def read(self, page: int, render: Callable[[], Image]) -> OcrPage:
        """The OCR result of ``page`` (1-based): from the cache, or rendered and read."""
        cache = self._cache_file(page)
        result: OcrPage | None = None
        if cache is not None and cache.exists():
            try:
                raw = json.loads(cache.read_text("utf-8"))
                result = OcrPage([OcrLine(**ln) for ln in raw["lines"]])
            except (OSError, ValueError, KeyError, TypeError):
                result = None
        if result is None:
            if self._should_stop is not None and self._should_stop():
                raise OcrInterrupted(f"{self.path}: stopped before page {page}")
            image = prepare(render(), self.path, page)
            result = self.engine.read(image)
            if cache is not None:
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(
                    json.dumps({"lines": [asdict(ln) for ln in result.lines]}, ensure_ascii=False),
                    "utf-8",
                )
                os.replace(tmp, cache)
        self.done += 1
        if self._progress is not None:
            self._progress(self.path.name, self.done, self.total)
        return result


def check_pixels(width: int, height: int, path: Path, page: int | None = None) -> None:
    if width * height > MAX_PIXELS:
        where = f"第 {page} 頁" if page else "影像"
        raise LoadError(
            str(path),
            "too_large",
            f"{where}尺寸 {width}×{height} 像素過大（上限 {MAX_PIXELS // 1_000_000} 百萬像素）",
        )


def prepare(image: Image, path: Path, page: int) -> Image:
    """Grayscale, bounded size: what both engines read best and fastest."""
    check_pixels(image.width, image.height, path, page)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    side = max(image.size)
    if side > _MAX_SIDE:
        scale = _MAX_SIDE / side
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    # A 3×3 median filter removes scanner speckle; measured (bench/ocr.py) it cuts
    # Tesseract's CER on noisy pages from ~50 % to ~6 % and costs nothing on clean ones.
    from PIL import ImageFilter

    return image.convert("L").filter(ImageFilter.MedianFilter(3))


def page_meta(pages: dict[int, OcrPage], engine: str) -> dict[str, Any]:
    """The ``ocr`` metadata of a document: engine, pages read, their confidence."""
    low = [p for p, r in sorted(pages.items()) if r.lines and r.confidence < LOW_CONFIDENCE]
    return {
        "engine": engine,
        "pages": sorted(pages),
        "confidence": {str(p): round(r.confidence, 3) for p, r in sorted(pages.items())},
        "low_confidence_pages": low,
    }
