"""Cost of sign-in: the argon2id hash, a password sign-in, and a request with a session
cookie against one with an API key.

    python bench/signin.py [--runs 40] [--write]

Runs the real app in-process (FastAPI TestClient, SQLite in a temporary ZHIKU_HOME).
argon2id uses argon2-cffi's defaults (RFC 9106's second recommended parameters: 64 MiB,
3 passes, 4 lanes). ``--write`` replaces this script's section of bench/RESULTS.md. The
machine is shared: medians carry everyone else's load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import latency_ms, machine, peak_rss_mb, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from zhiku.engine import Zhiku
    from zhiku.server import accounts
    from zhiku.server.app import create_app
    from zhiku.server.settings import ServerSettings
    from zhiku.server.signin import SignIn
    from zhiku.server.signin.config import AuthSettings
    from zhiku.server.signin.core import set_password

    ph = PasswordHasher()
    hashes, verifies = [], []
    h = ph.hash("bench-password-123")
    for _ in range(args.runs):
        t = time.perf_counter()
        ph.hash("bench-password-123")
        hashes.append(time.perf_counter() - t)
        t = time.perf_counter()
        ph.verify(h, "bench-password-123")
        verifies.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        with Zhiku(home) as zk:
            zk.store.ensure_kb("hr", Zhiku.default_kb_settings())
            accounts.create_user(zk.store, "mei", "reader", ["hr"])
            set_password(zk.store, "mei", "bench-password-123", AuthSettings())
            key = accounts.create_key(zk.store, "mei")[0]
        app = create_app(ServerSettings.from_env({}, home=str(home), rate_limit=0))
        with TestClient(app) as client:
            app.state.signin = SignIn(
                AuthSettings(cookie_secure=False, lockout_user=10**6, lockout_ip=10**6)
            )
            logins, with_session, with_key = [], [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = client.post(
                    "/api/v1/auth/login", json={"username": "mei", "password": "bench-password-123"}
                )
                logins.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            for _ in range(args.runs * 5):
                t = time.perf_counter()
                assert client.get("/api/v1/auth/me").status_code == 200
                with_session.append(time.perf_counter() - t)
                t = time.perf_counter()
                assert (
                    client.get(
                        "/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}
                    ).status_code
                    == 200
                )
                with_key.append(time.perf_counter() - t)

    rows = [
        ("argon2id hash (set a password)", latency_ms(hashes)),
        ("argon2id verify", latency_ms(verifies)),
        ("POST /api/v1/auth/login (verify + session row + audit)", latency_ms(logins)),
        ("GET /api/v1/auth/me with a session cookie", latency_ms(with_session)),
        ("GET /api/v1/auth/me with an API key", latency_ms(with_key)),
    ]
    lines = [
        "## Sign-in cost (`bench/signin.py`)",
        "",
        f"{machine()}; {args.runs} runs (×5 for the GETs); TestClient in-process, "
        "SQLite. Shared machine: medians include other engineers' load.",
        "",
        "| step | p50 ms | p95 ms |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} |" for name, m in rows]
    lines += [
        "",
        f"Peak RSS {peak_rss_mb():.0f} MB (argon2id takes 64 MiB per hash while it "
        "runs). Reproduce: `PYTHONPATH=$PWD python bench/signin.py --write`.",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("signin", "\n".join(lines))


if __name__ == "__main__":
    main()
