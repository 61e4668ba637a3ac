"""Rich Text Format (``.rtf``) through striprtf: paragraphs and clause labels as for text.

The code page comes from the file's ``\\ansicpg`` (950 for Traditional Chinese Word);
``\\uN`` escapes are Unicode either way.
"""

from __future__ import annotations

import re
from pathlib import Path

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import clean_text, stem_title
from zhiku.loaders._segment import segment
from zhiku.models import LoadedDocument

_CPG_RE = re.compile(rb"\\ansicpg(\d{3,5})")


@register(".rtf")
def load_rtf(path: Path) -> LoadedDocument:
    from striprtf.striprtf import rtf_to_text

    from zhiku.loaders.txt import text_lines

    data = path.read_bytes()
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        raise LoadError(str(path), "corrupt", "不是有效的 RTF 檔案（缺少 {\\rtf 開頭）")
    m = _CPG_RE.search(data[:4096])
    encoding = f"cp{int(m.group(1))}" if m else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    try:
        text = rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace")
    except Exception as exc:  # noqa: BLE001 - striprtf raises on malformed groups
        raise LoadError(str(path), "corrupt", f"RTF 檔案格式錯誤，無法解析（{exc}）") from exc
    blocks = segment(text_lines(clean_text(text)), wrapped=False)
    return LoadedDocument(
        title=stem_title(path), kind="rtf", blocks=blocks, meta={"encoding": encoding}
    )
