"""Subtitles (``.srt``, ``.vtt``) through webvtt-py: the timestamp is the location cited.

Consecutive cues are grouped into passages of about ``_TARGET`` characters (never more
than ``_MAX_SPAN_S`` seconds); each passage's label is its time range
(「00:01:02–00:01:40」), which becomes the citation's section. WebVTT speaker tags
(``<v 王小明>``) are kept as 「王小明：…」. Encodings are detected as for text files
(UTF-8, UTF-16, Big5).
"""

from __future__ import annotations

import io
from pathlib import Path

from zhiku.errors import LoadError
from zhiku.loaders import register
from zhiku.loaders._common import clean_text, squash_spaces, stem_title
from zhiku.models import Block, LoadedDocument
from zhiku.textcodec import decode_bytes

_TARGET = 200
_MAX_SPAN_S = 90


def _stamp(ts: str) -> str:
    """``00:01:02.500`` → ``00:01:02``."""
    return ts.split(".", 1)[0].split(",", 1)[0]


@register(".srt", ".vtt")
def load_subtitles(path: Path) -> LoadedDocument:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    text, encoding = decode_bytes(path.read_bytes(), path)
    text = clean_text(text).lstrip("\ufeff")
    fmt = "vtt" if path.suffix.lower() == ".vtt" or text.startswith("WEBVTT") else "srt"
    try:
        if fmt == "vtt":
            captions = webvtt.from_string(text).captions
        else:
            captions = webvtt.from_buffer(io.StringIO(text), format="srt").captions
    except (MalformedFileError, MalformedCaptionError, ValueError, IndexError) as exc:
        raise LoadError(str(path), "corrupt", f"字幕檔格式錯誤（{exc}）") from exc
    blocks: list[Block] = []
    cur: list[str] = []
    start = end = ""
    start_s = 0.0

    def flush() -> None:
        if cur:
            blocks.append(Block("\n".join(cur), (), f"{_stamp(start)}–{_stamp(end)}"))
        cur.clear()

    for cap in captions:
        line = squash_spaces(" ".join(cap.text.split("\n")))
        if not line:
            continue
        voice = getattr(cap, "voice", None)
        if voice:
            line = f"{voice}：{line}"
        size = sum(len(c) for c in cur)
        if cur and (size + len(line) > _TARGET or cap.start_in_seconds - start_s > _MAX_SPAN_S):
            flush()
        if not cur:
            start, start_s = cap.start, float(cap.start_in_seconds)
        cur.append(line)
        end = cap.end
    flush()
    meta: dict[str, object] = {"encoding": encoding, "cues": len(captions)}
    if captions:
        meta["duration"] = _stamp(captions[-1].end)
    return LoadedDocument(title=stem_title(path), kind="subtitles", blocks=blocks, meta=meta)
