"""Scanned images (PNG, JPEG, TIFF incl. multi-page, BMP, WebP) read by OCR.

Every frame of a multi-page TIFF is one page. The image size is checked from the
header before any pixel is decoded (:data:`zhiku.ocr.MAX_PIXELS`), then each page goes
through :class:`zhiku.ocr.PageReader` (cache, progress, confidence) and the same line
segmenter as PDF pages, so clause labels and paragraphs come out as for a text PDF.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from zhiku import ocr
from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import stem_title
from zhiku.loaders._segment import segment
from zhiku.loaders.pdf import _drop_running_lines, _PLine, _to_lines, ocr_lines
from zhiku.models import LoadedDocument


@register(".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
def load_image(path: Path) -> LoadedDocument:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LoadError(
            str(path), "too_large", f"影像尺寸過大（上限 {ocr.MAX_PIXELS // 1_000_000} 百萬像素）"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LoadError(str(path), "corrupt", "影像檔已損毀或格式不正確，無法開啟") from exc
    with im:
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        reader = ocr.PageReader(path, n_frames)
        results: dict[int, ocr.OcrPage] = {}
        raw_pages: list[list[_PLine]] = []
        for i in range(n_frames):
            try:
                im.seek(i)
            except EOFError:
                break
            ocr.check_pixels(im.width, im.height, path, i + 1 if n_frames > 1 else None)

            def render(i: int = i) -> Image.Image:
                try:
                    im.seek(i)
                    frame = im.copy()
                    frame.load()
                except (OSError, ValueError, SyntaxError) as exc:
                    raise LoadError(
                        str(path), "corrupt", f"影像第 {i + 1} 頁已損毀，無法解碼"
                    ) from exc
                return frame

            result = reader.read(i + 1, render)
            results[i + 1] = result
            raw_pages.append(ocr_lines(result, i + 1))
    pages = _drop_running_lines(raw_pages)
    blocks = segment(_to_lines(pages), wrapped=True)
    meta: dict[str, object] = {"ocr": ocr.page_meta(results, reader.engine.name)}
    return LoadedDocument(
        title=stem_title(path), kind="image", blocks=blocks, meta=meta, pages=len(results)
    )
