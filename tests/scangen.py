"""Scanned pages for OCR tests and ``bench/ocr.py``: real text rendered with a CJK font.

``render_page`` draws lines of text on an A4 page at a given dpi with Pillow and a Noto
CJK TC font (Debian ``fonts-noto-cjk``), optionally skewed and with scanner noise;
``save_image_pdf`` writes pages as an image-only PDF (no text layer).
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

A4_INCHES = (8.27, 11.69)


@lru_cache(maxsize=1)
def cjk_font_path() -> str:
    """The Noto Sans CJK TC font file (fontconfig), or an error telling what to install."""
    out = subprocess.run(
        ["fc-match", "-f", "%{file}", "Noto Sans CJK TC:style=Regular"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not out or "CJK" not in out:
        raise RuntimeError("Noto CJK font missing: apt-get install fonts-noto-cjk")
    return out


def _font(px: int) -> Any:
    from PIL import ImageFont

    path = cjk_font_path()
    # Noto Sans CJK .ttc: face index 2 is TC in Debian's NotoSansCJK-Regular.ttc.
    for index in range(10):
        try:
            font = ImageFont.truetype(path, px, index=index)
        except OSError:
            break
        if font.getname()[0].endswith("TC"):
            return font
    return ImageFont.truetype(path, px)


def wrap_to_width(text: str, font: Any, width: float) -> list[str]:
    lines: list[str] = []
    cur = ""
    for ch in text:
        if ch == "\n":
            lines.append(cur)
            cur = ""
            continue
        if cur and font.getlength(cur + ch) > width:
            lines.append(cur)
            cur = ""
        cur += ch
    if cur:
        lines.append(cur)
    return lines


def render_page(
    paragraphs: Sequence[str],
    dpi: int = 300,
    *,
    font_pt: float = 12,
    skew: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    size: tuple[float, float] = A4_INCHES,
) -> tuple[Any, str]:
    """An A4 page (Pillow ``L`` image) with ``paragraphs`` wrapped to the margins, and
    the text actually drawn (lines joined by newlines; what did not fit is left out).

    ``skew`` rotates the page by that many degrees; ``noise`` flips that fraction of
    pixels to black or white (salt-and-pepper) and blurs slightly, as a cheap scanner."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = int(size[0] * dpi), int(size[1] * dpi)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    px = int(round(font_pt * dpi / 72))
    font = _font(px)
    margin = int(min(0.9, size[1] / 8) * dpi)
    y = margin
    lead = int(px * 1.6)
    drawn: list[str] = []
    for para in paragraphs:
        for line in wrap_to_width(para, font, w - 2 * margin):
            if y + lead > h - margin:
                break
            draw.text((margin, y), line, fill=0, font=font)
            drawn.append(line)
            y += lead
        y += lead // 2
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    if noise:
        import numpy as np

        rng = np.random.default_rng(seed)
        arr = np.asarray(img.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.uint8).copy()
        mask = rng.random(arr.shape)
        arr[mask < noise / 2] = 0
        arr[(mask >= noise / 2) & (mask < noise)] = 255
        img = Image.fromarray(arr, "L")
    return img, "\n".join(drawn)


def save_image_pdf(path: Path, images: Sequence[Any], dpi: int = 300) -> Path:
    """An image-only PDF (one scanned image per page, no text layer)."""
    first, *rest = [im.convert("RGB") for im in images]
    first.save(path, "PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return path


def save_tiff(path: Path, images: Sequence[Any], dpi: int = 300) -> Path:
    """A multi-page TIFF (Group 4 fax compression, as scanners write)."""
    first, *rest = [im.convert("1") for im in images]
    first.save(
        path, "TIFF", compression="group4", dpi=(dpi, dpi), save_all=True, append_images=rest
    )
    return path


def sample_paragraphs(seed: int, n: int = 3) -> list[str]:
    """Law-like zh-TW paragraphs with English words and digits (deterministic)."""
    rnd = random.Random(seed)
    subjects = ["雇主", "勞工", "主管機關", "受僱者", "事業單位", "委員會"]
    verbs = ["應於", "得於", "不得於", "應即於"]
    objs = ["工作時間", "特別休假", "延長工時", "職業災害補償", "個人資料", "退休金"]
    out = []
    for i in range(n):
        s = rnd.choice(subjects)
        out.append(
            f"第 {rnd.randint(1, 80)} 條　{s}{rnd.choice(verbs)}{rnd.randint(2, 30)}日內"
            f"辦理{rnd.choice(objs)}之申報，並通知 HR 部門及 email 聯絡窗口；"
            f"違反者處新臺幣 {rnd.randint(2, 30)} 萬元以下罰鍰。第{i + 1}項規定亦同。"
        )
    return out
