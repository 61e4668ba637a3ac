"""Under ``CI=true`` a skip is a failure, whether a test or a whole module skips."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n"


@pytest.mark.parametrize("ci", ["true", ""])
def test_module_and_test_skips_fail_only_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_mod="import pytest\npytest.importorskip('no_such_module_zhiku')\n"
        "def test_never():\n    pass\n",
        test_one="import pytest\ndef test_skips():\n    pytest.skip('missing tool')\n"
        "def test_passes():\n    pass\n",
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--continue-on-collection-errors"
    )
    if ci:
        assert result.ret != 0
        result.assert_outcomes(passed=1, failed=1, errors=1)
        result.stdout.fnmatch_lines(["*module skipped in CI*", "*skipped in CI*missing tool*"])
    else:
        result.assert_outcomes(passed=1, skipped=2)
