"""Real Outlook ``.msg`` files for the tests.

The MS-OXMSG layout (property streams, ``__substg1.0_*`` value streams, recipient and
attachment storages, the named-property mapping storage) is built here; SheetJS ``cfb``
(npm, vendored in tests/msg with its lockfile, installed by ``.ci/run`` with ``npm ci``)
writes it as a Compound File Binary file. :func:`read_with_msgreader` reads a file back
with ``@kenjiuno/msgreader``, a reader independent of extract-msg and olefile.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "msg"

# Property types (MS-OXCDATA 2.11.1)
PT_LONG, PT_TIME, PT_UNICODE, PT_BINARY = 0x0003, 0x0040, 0x001F, 0x0102
_READ_WRITE = 0x2 | 0x4  # PROPATTR_READABLE | PROPATTR_WRITABLE
_FILETIME_EPOCH = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01


def available() -> bool:
    """Whether Node.js and the npm packages of tests/msg are installed."""
    return shutil.which("node") is not None and all(
        (HERE / "node_modules" / m).is_dir() for m in ("cfb", "@kenjiuno/msgreader")
    )


def _node() -> str:
    if not available():
        pytest.skip("cfb / msgreader are not installed (npm ci in tests/msg; Debian nodejs)")
    return shutil.which("node") or "node"


class _Props:
    """One property stream and the value streams that go with it."""

    def __init__(self, storage: str) -> None:
        self.prefix = storage + "/" if storage else ""
        self.entries: list[bytes] = []
        self.streams: dict[str, bytes] = {}

    def _entry(self, prop_id: int, ptype: int, value: bytes) -> None:
        self.entries.append(struct.pack("<II", (prop_id << 16) | ptype, _READ_WRITE) + value)

    def long(self, prop_id: int, value: int) -> None:
        self._entry(prop_id, PT_LONG, struct.pack("<iI", value, 0))

    def time(self, prop_id: int, when: datetime) -> None:
        ticks = int((when.timestamp() + _FILETIME_EPOCH) * 10_000_000)
        self._entry(prop_id, PT_TIME, struct.pack("<Q", ticks))

    def _stream(self, prop_id: int, ptype: int, data: bytes, size: int) -> None:
        self._entry(prop_id, ptype, struct.pack("<II", size, 0))
        self.streams[f"{self.prefix}__substg1.0_{prop_id:04X}{ptype:04X}"] = data

    def text(self, prop_id: int, value: str) -> None:
        data = value.encode("utf-16-le")
        self._stream(prop_id, PT_UNICODE, data, len(data) + 2)  # the size counts the NUL

    def binary(self, prop_id: int, value: bytes) -> None:
        self._stream(prop_id, PT_BINARY, value, len(value))

    def finish(self, header: bytes) -> dict[str, bytes]:
        return {
            **self.streams,
            f"{self.prefix}__properties_version1.0": header + b"".join(self.entries),
        }


# Property sets (MS-OXPROPS 1.3.2)
PSETID_COMMON = uuid.UUID("00062008-0000-0000-c000-000000000046")
PS_INTERNET_HEADERS = uuid.UUID("00020386-0000-0000-c000-000000000046")


def _named_properties(top: _Props) -> dict[str, bytes]:
    """The named-property mapping (MS-OXMSG 2.2.3) of two properties, as Outlook writes
    them: PidLidCurrentVersionName (numeric, PSETID_Common) as 0x8000 and the internet
    header ``X-Mailer`` (string-named, PS_INTERNET_HEADERS) as 0x8001."""
    guids = PSETID_COMMON.bytes_le + PS_INTERNET_HEADERS.bytes_le  # GUID indexes 3 and 4
    name = "x-mailer".encode("utf-16-le")
    strings = struct.pack("<I", len(name)) + name
    strings += b"\0" * (-len(strings) % 4)
    entries = (
        struct.pack("<II", 0x8554, (0 << 16) | (3 << 1) | 0)  # numeric, property 0
        + struct.pack("<II", 0, (1 << 16) | (4 << 1) | 1)
    )  # string at offset 0
    top.text(0x8000, "16.0")
    top.text(0x8001, "zhiku tests (SheetJS cfb)")
    return {
        "__nameid_version1.0/__substg1.0_00020102": guids,
        "__nameid_version1.0/__substg1.0_00030102": entries,
        "__nameid_version1.0/__substg1.0_00040102": strings,
    }


def msg_streams(
    *,
    subject: str,
    sender_name: str,
    sender_email: str,
    to: Sequence[tuple[str, str]],
    body: str,
    delivered: datetime | None = None,
    submitted: datetime | None = None,
    attachments: Sequence[tuple[str, bytes | dict[str, Any]]] = (),
    _at: str = "",
) -> dict[str, bytes]:
    """The streams of an MS-OXMSG message, by their path in the compound file. An
    attachment is (file name, bytes), or (display name, the fields of a message) for an
    embedded message (an e-mail forwarded as an attachment)."""
    top = _Props(_at.rstrip("/"))
    top.text(0x001A, "IPM.Note")  # PidTagMessageClass
    top.text(0x0037, subject)  # PidTagSubject
    top.text(0x0E1D, subject)  # PidTagNormalizedSubject
    top.text(0x0C1A, sender_name)  # PidTagSenderName
    top.text(0x0C1F, sender_email)  # PidTagSenderEmailAddress
    top.text(0x0C1E, "SMTP")  # PidTagSenderAddressType
    top.text(0x5D01, sender_email)  # PidTagSenderSmtpAddress
    top.text(0x0E04, "; ".join(name for name, _ in to))  # PidTagDisplayTo
    top.text(0x1000, body)  # PidTagBody
    top.long(0x0E07, 0x1)  # PidTagMessageFlags: mfRead (sent, not a draft)
    top.long(0x3FDE, 65001)  # PidTagInternetCodepage: UTF-8
    if delivered is not None:
        top.time(0x0E06, delivered)  # PidTagMessageDeliveryTime
    if submitted is not None:
        top.time(0x0039, submitted)  # PidTagClientSubmitTime
    streams: dict[str, bytes] = {}
    for i, (name, email) in enumerate(to):
        rp = _Props(f"{_at}__recip_version1.0_#{i:08X}")
        rp.long(0x0C15, 1)  # PidTagRecipientType: MAPI_TO
        rp.long(0x3000, i)  # PidTagRowid
        rp.text(0x3001, name)  # PidTagDisplayName
        rp.text(0x3002, "SMTP")  # PidTagAddressType
        rp.text(0x3003, email)  # PidTagEmailAddress
        rp.text(0x39FE, email)  # PidTagSmtpAddress
        streams.update(rp.finish(b"\0" * 8))
    for i, (name, data) in enumerate(attachments):
        storage = f"{_at}__attach_version1.0_#{i:08X}"
        ap = _Props(storage)
        ap.long(0x0E21, i)  # PidTagAttachNumber
        ap.text(0x3001, name)  # PidTagDisplayName
        if isinstance(data, dict):
            ap.long(0x3705, 5)  # PidTagAttachMethod: afEmbeddedMessage
            # PidTagAttachDataObject: a storage holding the message (MS-OXMSG 2.2.2.1)
            ap.entries.append(struct.pack("<IIII", 0x3701000D, _READ_WRITE, 0xFFFFFFFF, 0))
            streams.update(msg_streams(**data, _at=f"{storage}/__substg1.0_3701000D/"))
        else:
            ap.long(0x3705, 1)  # PidTagAttachMethod: afByValue
            ap.text(0x3707, name)  # PidTagAttachLongFilename
            ap.text(0x3703, Path(name).suffix)  # PidTagAttachExtension
            ap.binary(0x3701, data)  # PidTagAttachDataBinary
        streams.update(ap.finish(b"\0" * 8))
    counts = (len(to), len(attachments), len(to), len(attachments))
    if _at:  # an embedded message: a 24-byte header, the top level's named properties
        header = struct.pack("<8xIIII", *counts)
    else:
        streams.update(_named_properties(top))
        header = struct.pack("<8xIIII8x", *counts)
    streams.update(top.finish(header))
    return streams


def make_msg(path: Path, **fields: Any) -> Path:
    """Write an Outlook message (the fields of :func:`msg_streams`) to ``path``."""
    streams = msg_streams(**fields)
    spec = {k: base64.b64encode(v).decode("ascii") for k, v in streams.items()}
    subprocess.run(
        [_node(), str(HERE / "msgfile.mjs"), "write", str(path)],
        input=json.dumps(spec),
        text=True,
        check=True,
        timeout=60,
        capture_output=True,
    )
    return path


def read_with_msgreader(path: Path) -> dict[str, Any]:
    """What ``@kenjiuno/msgreader`` reads from ``path`` (attachment contents as bytes)."""
    out = subprocess.run(
        [_node(), str(HERE / "msgfile.mjs"), "read", str(path)],
        text=True,
        check=True,
        timeout=60,
        capture_output=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    for att in info["attachments"]:
        att["content"] = base64.b64decode(att["content"])
    return info
