"""A real OpenID Connect provider for the tests: panva's ``oidc-provider`` (npm, installed
under tests/oidc by ``.ci/run``) run with Debian's ``nodejs``, and a scripted browser
that goes through its login and consent pages."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.server_util import free_port
from tests.slapd import terminate

HERE = Path(__file__).parent / "oidc"


class Provider:
    def __init__(
        self, clients: list[dict[str, object]], accounts: dict[str, dict[str, object]]
    ) -> None:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
            pytest.skip("oidc-provider is not installed (npm ci in tests/oidc; Debian nodejs)")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "CLIENTS": json.dumps(clients),
            "ACCOUNTS": json.dumps(accounts),
            "NODE_ENV": "test",
        }
        self.proc = subprocess.Popen(
            [node, str(HERE / "provider.mjs")],
            env=env,
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("oidc-provider exited: " + "".join(lines)[-2000:])
            lines.append(line)
            if line.strip() == "ready":
                return
        raise RuntimeError("oidc-provider did not start: " + "".join(lines)[-2000:])

    def stop(self) -> None:
        terminate(self.proc)


def _form(html: str, base: str) -> tuple[str, dict[str, str]]:
    action = unescape(re.search(r'<form[^>]*action="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    fields = {
        m.group(1): unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }
    return urljoin(base, action), fields


def sign_in_at_provider(auth_url: str, login: str, redirect_prefix: str) -> str:
    """Follow the provider's pages as a browser would: log in as ``login`` (the
    development form takes any password), consent, and return the redirect back to the
    client (``redirect_prefix…?code=…&state=…``)."""
    with httpx.Client(follow_redirects=False, timeout=10) as b:
        url = auth_url
        for _ in range(20):
            if url.startswith(redirect_prefix):
                return url
            r = b.get(url)
            if r.status_code in (302, 303):
                url = urljoin(url, r.headers["location"])
                continue
            assert r.status_code == 200, r.text[:500]
            action, fields = _form(r.text, url)
            if fields.get("prompt") == "login":
                fields.update(login=login, password="any-password")
            r = b.post(action, data=fields)
            assert r.status_code in (302, 303), r.text[:500]
            url = urljoin(action, r.headers["location"])
        raise AssertionError("the provider never redirected back")
