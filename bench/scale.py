"""Several server nodes on one PostgreSQL and one Milvus server, against the embedded default.

    python bench/scale.py --data ../shared/data/drcd/DRCD_dev.json [--seconds 10]
        [--clients 8] [--ingest-files 120] [--write]

One run, on this machine, with the same DRCD dev paragraphs (one document each):

- **embedded**: one ``zhiku serve`` process on a home with SQLite + tantivy;
- **shared, 1 node / 2 nodes**: ``zhiku serve`` processes with homes of their own, all
  on one PostgreSQL database (a private cluster started with Debian's ``initdb``, as the
  tests do, or ``--pg-url``) and one Milvus Lite *server* (``python -m milvus_lite
  server``: the gRPC API of a Milvus cluster, run by one Python process).

Ask throughput and p50/p95 latency: ``--clients`` keep-alive connections (the asyncio
client of bench/serve.py) posting ``/api/v1/kbs/drcd/ask`` back to back, spread round
robin over the nodes. Ingest throughput: ``--ingest-files`` DRCD paragraphs uploaded as
text files (20 per request, so several jobs) through node A, with the ingest worker on
node A only, then on both nodes; files/s from the first upload to the last job done.
``--write`` updates bench/RESULTS.md (section "scale").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import ROOT, drcd_documents, machine, read_drcd, write_section  # noqa: E402
from bench.serve import _client, _requests, free_port  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "drcd" / "DRCD_dev.json"


def start_node(home: Path, log: Path, ingest: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "ZHIKU_HOME": str(home),
        "ZHIKU_RATE_LIMIT": "0",
        "ZHIKU_INGEST_WORKER": "true" if ingest else "false",
        "ZHIKU_MAX_FILES": "20",
    }
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
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited: {log.read_text('utf-8')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("node did not become ready")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


KBS = ("drcd", "ingest1", "ingest2")


def build(home: Path, data: Path) -> tuple[str, str, int]:
    """The DRCD KB (and two empty ones to ingest into) with a reader and an editor key."""
    from zhiku.engine import Zhiku
    from zhiku.server import accounts

    passages, _ = read_drcd(data)
    with Zhiku(home) as zk:
        for kb in KBS:
            zk.kb(kb, create=True)
            zk.set_pii_policy(kb, zk.pii_policy(zk.kb(kb)).updated(mode="off"))
        for path, doc in drcd_documents(passages):
            zk.add_loaded("drcd", path, doc)
        zk.sync_index("drcd")
        n = zk.index("drcd").num_docs()
        accounts.create_user(zk.store, "bench", "reader", ["drcd"])
        accounts.create_user(zk.store, "loader", "editor", ["ingest1", "ingest2"])
        reader = accounts.create_key(zk.store, "bench", "bench")[0]
        editor = accounts.create_key(zk.store, "loader", "bench")[0]
    return reader, editor, n


def to_shared(embedded: Path, home: Path, url: str, milvus: str) -> tuple[float, float]:
    """The embedded home copied to PostgreSQL (``zhiku migrate --to``: the same KBs,
    calibration and keys) and its KBs' indexes built on the Milvus server; returns the
    seconds of the build and of learning the vocabulary and refusal calibration again
    on Milvus (term statistics read from PostgreSQL; calibration not saved)."""
    from zhiku.engine import Zhiku
    from zhiku.pgmigrate import migrate_to

    t0 = time.perf_counter()
    migrate_to(embedded, url, sample=0)
    with Zhiku(home) as zk:
        for kb in KBS:
            zk.store.update_kb_settings(kb, {"index": {"backend": "milvus", "uri": milvus}})
        zk.sync_index("drcd")
        assert zk.index("drcd").num_docs() > 0
        build_s = time.perf_counter() - t0
        t = time.perf_counter()
        zk.learn_vocabulary("drcd")
        zk.calibrate_refusal("drcd", save=False)
        return build_s, time.perf_counter() - t


def ask_load(
    ports: list[int], requests: list[bytes], clients: int, seconds: float
) -> dict[str, Any]:
    async def run() -> tuple[list[float], dict[str, int], float]:
        lat: list[float] = []
        errors: dict[str, int] = {}
        refused: list[int] = []
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                _client(ports[i % len(ports)], requests, i * 97, deadline, lat, errors, refused)
                for i in range(clients)
            )
        )
        return lat, errors, time.perf_counter() - t0

    lat, errors, wall = asyncio.run(run())
    xs = sorted(lat)

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else 0.0

    return {
        "requests": len(xs),
        "rps": len(xs) / wall,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "errors": sum(errors.values()),
    }


def ingest_load(port: int, editor: str, kb: str, texts: list[tuple[str, str]]) -> float:
    """Upload every text through one node, 20 files a request; files/s until all done."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {editor}"}
    t0 = time.perf_counter()
    jobs = []
    for i in range(0, len(texts), 20):
        files = [("files", (name, text.encode(), "text/plain")) for name, text in texts[i : i + 20]]
        r = httpx.post(
            f"{base}/api/v1/kbs/{kb}/documents", headers=headers, files=files, timeout=120
        )
        r.raise_for_status()
        jobs.append(r.json()["id"])
    for job in jobs:
        while True:
            body = httpx.get(f"{base}/api/v1/jobs/{job}", headers=headers, timeout=30).json()
            if body["status"] in ("done", "failed"):
                if body["failed"]:
                    raise RuntimeError(f"job {job}: {body['failed']} files failed")
                break
            time.sleep(0.2)
    return len(texts) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--ingest-files", type=int, default=120)
    ap.add_argument("--pg-url", default="", help="a superuser URL (default: a private cluster)")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args(argv)

    import psycopg

    from tests.cluster import milvus_server, node_home
    from tests.pg import PrivateCluster, with_database

    root = Path(tempfile.mkdtemp(prefix="zhiku-scale-bench-"))
    passages, questions = read_drcd(args.data)
    qs = [q.text for q in questions]
    random.Random(7).shuffle(qs)
    rng = random.Random(11)
    sample = rng.sample(passages, min(2 * args.ingest_files, len(passages)))
    batches = {
        f"ingest{n}": [
            (f"p{i:04d}-{p.key}.txt", f"{p.title}\n\n{p.text}\n")
            for i, p in enumerate(sample[(n - 1) * args.ingest_files : n * args.ingest_files])
        ]
        for n in (1, 2)
    }
    rows: list[tuple[str, dict[str, Any]]] = []
    ingest: dict[int, float] = {}

    # --- embedded ------------------------------------------------------------------
    emb = root / "embedded"
    reader, editor, n_passages = build(emb, args.data)
    requests = _requests(reader, qs)
    proc, port = start_node(emb, root / "embedded.log", ingest=False)
    try:
        ask_load([port], requests, 4, 2.0)  # warm-up
        rows.append(
            (
                "embedded (SQLite + tantivy), 1 node",
                ask_load([port], requests, args.clients, args.seconds),
            )
        )
    finally:
        stop([proc])
    print(rows[-1])

    # --- shared: PostgreSQL + Milvus Lite server -------------------------------------
    cluster = None if args.pg_url else PrivateCluster()
    server = args.pg_url or cluster.url  # type: ignore[union-attr]
    name = "scale_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        with milvus_server(root / "milvus") as milvus:
            uploads = root / "shared-uploads"
            homes = [node_home(root, n, url, uploads) for n in ("node-a", "node-b")]
            build_s, learn_s = to_shared(emb, homes[0], url, milvus)
            print(f"built on Milvus in {build_s:.0f} s, learned in {learn_s:.1f} s")
            a, port_a = start_node(homes[0], root / "a.log", ingest=True)
            b, port_b = start_node(homes[1], root / "b.log", ingest=False)
            try:
                ask_load([port_a, port_b], requests, 4, 2.0)  # warm-up both
                rows.append(
                    (
                        "PostgreSQL + Milvus Lite server, 1 node",
                        ask_load([port_a], requests, args.clients, args.seconds),
                    )
                )
                print(rows[-1])
                rows.append(
                    (
                        "PostgreSQL + Milvus Lite server, 2 nodes",
                        ask_load([port_a, port_b], requests, args.clients, args.seconds),
                    )
                )
                print(rows[-1])
                ingest[1] = ingest_load(port_a, editor, "ingest1", batches["ingest1"])
                print("ingest, 1 worker node:", ingest[1])
            finally:
                stop([b])
            b, port_b = start_node(homes[1], root / "b2.log", ingest=True)
            try:
                ingest[2] = ingest_load(port_a, editor, "ingest2", batches["ingest2"])
                print("ingest, 2 worker nodes:", ingest[2])
            finally:
                stop([a, b])
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            cluster.stop()

    if args.write:
        load = os.getloadavg()[0]
        lines = [
            "## Several nodes: PostgreSQL + Milvus vs the embedded default",
            "",
            f"`python bench/scale.py --seconds {args.seconds:g} --clients {args.clients} "
            f"--ingest-files {args.ingest_files}` on {machine()} (load average "
            f"{load:.1f} at the end: the cores are shared with other work, so figures are "
            f"noisy). The same {n_passages} DRCD dev passages; every node is one `zhiku "
            "serve` process (extractive answerer, rate limit off) with a home of its own; "
            "the shared deployment is one PostgreSQL database (private cluster, fsync off) "
            "and one Milvus Lite server (`python -m milvus_lite server`) for the index, "
            f"copied from the embedded home (`zhiku migrate --to`) and indexed on Milvus in "
            f"{build_s:.0f} s. {args.clients} keep-alive clients ask DRCD "
            f"questions back to back for {args.seconds:g} s, spread round robin over the "
            "nodes.",
            "",
            "| deployment | requests | req/s | p50 ms | p95 ms | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, r in rows:
            lines.append(
                f"| {label} | {r['requests']} | {r['rps']:.2f} | {r['p50_ms']:.1f} "
                f"| {r['p95_ms']:.1f} | {r['errors']} |"
            )
        lines += [
            "",
            f"Ingest ({args.ingest_files} DRCD paragraphs as text files, 20 per upload, "
            "through node A; PostgreSQL + Milvus Lite server): "
            f"**{ingest[1]:.2f} files/s** with the ingest worker on one node, "
            f"**{ingest[2]:.2f} files/s** with workers on both nodes (jobs claimed with "
            "`FOR UPDATE SKIP LOCKED`; one upload is one job, so a second worker node "
            "helps only with several uploads in flight).",
            "",
            "What this machine allows: every process here — the client, the nodes, "
            "PostgreSQL and the Milvus Lite server — shares the same cores, so a second "
            "node cannot add throughput; it only adds another process competing for "
            "them. Milvus Lite's server is one Python process (pyarrow + faiss); an answer "
            "there reads its term statistics from PostgreSQL (one indexed query, kept by "
            "the index sync) and asks Milvus for k + 20 BM25 candidates, which zhiku "
            "re-scores. On one machine the embedded default is the faster deployment, "
            "and it stays the right choice there. What the design implies beyond it: "
            "nodes share nothing but the "
            "database, the index server and the uploads directory, so ask throughput "
            "grows with nodes on machines of their own until PostgreSQL (a few short "
            "statements per answer) or the Milvus cluster (which scales by query nodes) "
            "is the limit; ingest grows with worker nodes until embedding or index "
            "building on Milvus is.",
            "",
            "Learning the KB's vocabulary and refusal calibration again on the Milvus "
            f"index (statistics from PostgreSQL) took **{learn_s:.1f} s** for the "
            f"{n_passages} passages (it was over 10 minutes when every candidate term "
            "was counted with a `TEXT_MATCH` query in Milvus).",
        ]
        write_section("scale", "\n".join(lines))
        print("wrote bench/RESULTS.md (scale)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
