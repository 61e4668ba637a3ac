"""The server under load: N concurrent clients asking DRCD questions over loopback.

    python bench/serve.py --data ../shared/data/drcd/DRCD_dev.json [--seconds 15]
        [--clients 1,8,32] [--workers 2] [--write]

Builds a KB from every DRCD dev paragraph (one document each, as bench/drcd.py does),
starts ``zhiku serve`` (extractive answerer, rate limit off) in its own process, and for
each client count runs that many clients — keep-alive connections driven by asyncio in
this process — each posting ``/api/v1/kbs/drcd/ask`` back to back for a bounded time.
The client is a minimal HTTP/1.1 one on asyncio streams (like ``wrk``): it shares the
cores with the server, so it must cost little (httpx's async client took ~2 ms of CPU
per request, 40 % of a core at 32 clients, and starved the server).
Every request goes through the whole server path: key check, grants, engine, citation
lookup, conversation record and audit row (one SQLite write per answer). Reports
requests/s, p50/p95/p99 latency and errors; ``--write`` updates bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import ROOT, drcd_documents, machine, read_drcd, write_section  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "drcd" / "DRCD_dev.json"
TARGET_P95_MS = 200.0
ASK_PATH = "/api/v1/kbs/drcd/ask"


def build(home: Path, data: Path) -> tuple[str, list[str], int]:
    """The DRCD KB and a reader key for it; returns (key, questions, passages)."""
    from zhiku.engine import Zhiku
    from zhiku.server import accounts

    passages, questions = read_drcd(data)
    with Zhiku(home) as zk:
        zk.kb("drcd", create=True)
        zk.set_pii_policy("drcd", zk.pii_policy(zk.kb("drcd")).updated(mode="off"))
        for path, doc in drcd_documents(passages):
            zk.add_loaded("drcd", path, doc)
        zk.sync_index("drcd")
        n = zk.index("drcd").num_docs()
        accounts.create_user(zk.store, "bench", "reader", ["drcd"])
        key = accounts.create_key(zk.store, "bench", "bench")[0]
    qs = [q.text for q in questions]
    random.Random(7).shuffle(qs)
    return key, qs, n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "ZHIKU_HOME": str(home), "ZHIKU_RATE_LIMIT": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zhiku",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text('utf-8')[-2000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _requests(key: str, questions: list[str]) -> list[bytes]:
    """Each question as a complete HTTP/1.1 request, built once."""
    out = []
    for q in questions:
        body = json.dumps({"question": q}, ensure_ascii=False).encode()
        head = (
            f"POST {ASK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _client(
    port: int,
    requests: list[bytes],
    start: int,
    deadline: float,
    lat: list[float],
    errors: dict[str, int],
    refused: list[int],
) -> None:
    """One keep-alive connection asking back to back (a minimal HTTP/1.1 client)."""
    i = start
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                continue
            lat.append(time.perf_counter() - t0)
            refused.append(b'"refused": true' in body or b'"refused":true' in body)
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, requests: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: dict[str, int] = {}
    refused: list[int] = []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(
        *(_client(port, requests, i * 97, deadline, lat, errors, refused) for i in range(clients))
    )
    wall = time.perf_counter() - t0
    xs = sorted(lat)

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else 0.0

    return {
        "clients": clients,
        "requests": len(xs),
        "rps": len(xs) / wall,
        "p50_ms": statistics.median(xs) * 1000 if xs else 0.0,
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "refused": sum(refused) / max(len(refused), 1),
        "seconds": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]

    home = Path(tempfile.mkdtemp(prefix="zhiku-serve-bench-"))
    t0 = time.perf_counter()
    key, questions, n_passages = build(home, args.data)
    print(
        f"KB: {n_passages} passages, {len(questions)} questions "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )
    proc, port = start_server(home, args.workers, home / "server.log")
    requests = _requests(key, questions)
    rows = []
    try:
        asyncio.run(load(port, requests, 4, 2.0))  # warm-up: open the indexes in every worker
        for c in counts:
            res = asyncio.run(load(port, requests, c, args.seconds))
            rows.append(res)
            print(
                f"{c:>3} clients: {res['requests']:>6} req, {res['rps']:7.1f} req/s, "
                f"p50 {res['p50_ms']:6.1f} ms, p95 {res['p95_ms']:6.1f} ms, "
                f"p99 {res['p99_ms']:6.1f} ms, errors {res['errors']} {res['error_kinds']}"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    worst = max(rows, key=lambda r: r["clients"])
    ok = worst["errors"] == 0 and worst["p95_ms"] <= TARGET_P95_MS
    print(
        f"target (0 errors, p95 ≤ {TARGET_P95_MS:.0f} ms at {worst['clients']} clients): "
        f"{'met' if ok else 'NOT MET'}"
    )
    if args.write:
        lines = [
            "## Server under load",
            "",
            f"`python bench/serve.py --seconds {args.seconds:g} --workers {args.workers}` on "
            f"{machine()}: `zhiku serve --workers {args.workers}` (uvicorn, extractive "
            f"answerer, rate limit off) on a KB of the {n_passages} DRCD dev passages; "
            "clients are keep-alive HTTP/1.1 connections driven by asyncio in the benchmark "
            "process (a minimal client, like `wrk`, on the same cores as the server), each "
            "posting "
            "`/api/v1/kbs/drcd/ask` with the next DRCD question as soon as the previous "
            f"answer arrives, for {args.seconds:g} s per row. Each request is the full path: "
            "key check, grants, retrieval, answer, citation lookup, and one SQLite write "
            "(conversation turn + audit row).",
            "",
            "| clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['clients']} | {r['requests']} | {r['rps']:.1f} | "
                f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']} |"
            )
        lines += [
            "",
            f"Target: zero errors and p95 ≤ {TARGET_P95_MS:.0f} ms at "
            f"{worst['clients']} clients — **{'met' if ok else 'not met'}**. "
            "With more clients than cores, latency is queueing: p50 ≈ clients ÷ "
            "throughput.",
        ]
        write_section("serve", "\n".join(lines))
        print("wrote bench/RESULTS.md (serve)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
