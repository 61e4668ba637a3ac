"""A small zhiku cluster for the multi-node tests and bench/scale.py: one real
PostgreSQL database, one Milvus Lite *server* (``python -m milvus_lite server``, the
gRPC API a Milvus cluster speaks), a shared uploads directory and one home per node
whose zhiku.toml points at all three."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def milvus_server(data_dir: Path, timeout: float = 90.0) -> Iterator[str]:
    """A Milvus Lite server on a free loopback port; yields its ``http://`` URI."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"milvus_lite server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("milvus_lite server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def node_home(root: Path, name: str, database: str, uploads: Path) -> Path:
    """A node's own home: its zhiku.toml names the shared database and uploads."""
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "zhiku.toml").write_text(f'database = "{database}"\nuploads = "{uploads}"\n', "utf-8")
    return home
