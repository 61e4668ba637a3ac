"""Shared fixtures: every test gets its own ZHIKU_HOME (never the user's data)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def zhiku_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "zhiku-home"
    monkeypatch.setenv("ZHIKU_HOME", str(home))
    # Nothing from the developer's shell (model servers, config files, language) leaks in.
    for var in list(os.environ):
        if var.startswith("ZHIKU_") and var != "ZHIKU_HOME":
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def engine(zhiku_home: Path) -> Iterator[object]:
    from zhiku.engine import Zhiku

    zk = Zhiku(zhiku_home)
    yield zk
    zk.close()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped as a whole (``importorskip`` at module level) fails in CI too."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"module skipped in CI, which must run every test: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (``CI=true``) a skipped test is a failure: CI installs every optional part
    (local models, llama-cpp-python, Chromium), so a skip means something is missing."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {reason}"


from tests.pg import pg_server, pg_url  # noqa: E402,F401 - fixtures shared by every test
