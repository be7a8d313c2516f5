"""The suite's own rules, seen acting on small test sessions of their own (pytester): a tier whose
machine is missing is skipped with its reason outside CI and fails in CI, where nothing may be
skipped; a file named on the command line runs whatever its tier; a test that leaves a signal
handler or the umask changed fails, naming it, and the next test starts from what was there."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import REPO, process_state, restore_process_state

#: What an inner session takes from tests/conftest.py: the tier hooks and the guard.
SUITE_RULES = """
from tests.conftest import (  # noqa: F401
    _process_state_is_left_as_found,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
)
"""
TIERS_INI = """
[pytest]
addopts = -m "not slow"
markers =
    slow: slow
    chromium: needs chromium
"""


@pytest.fixture(autouse=True)
def _inner_sessions_without_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner sessions need none of them (hypothesis, coverage), and each starts far faster without.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_the_guard_names_what_a_test_changed_and_puts_it_back() -> None:
    before = process_state()
    signal.signal(signal.SIGHUP, lambda signum, frame: None)
    os.umask(0o022 if before["umask"] != 0o022 else 0o027)
    changed = restore_process_state(before)
    assert process_state() == before
    assert len(changed) == 2, changed
    assert "SIGHUP handler" in changed[0] and "umask" in changed[1], changed


def test_the_guard_finds_nothing_when_nothing_changed() -> None:
    assert restore_process_state(process_state()) == []


def test_a_test_that_leaves_a_handler_or_the_umask_changed_fails_and_the_next_starts_clean(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SUITE_RULES)
    pytester.makepyfile(
        test_leaving="""
        import os
        import signal

        from tests.conftest import process_state

        FOUND = process_state()

        def test_leaves_the_umask():
            os.umask(0o002 if FOUND["umask"] != 0o002 else 0o007)

        def test_leaves_a_handler():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

        def test_puts_back_what_it_changed():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGINT, previous)

        def test_comes_after_them():
            assert process_state() == FOUND
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_the_umask*",
            "the test left the process changed: the umask is *, was *",
            "*ERROR at teardown of test_leaves_a_handler*",
            "the test left the process changed: the SIGTERM handler is *SIG_IGN*, was *",
        ],
        consecutive=False,
    )


@pytest.mark.parametrize("in_ci", [False, True], ids=["outside-ci", "in-ci"])
def test_a_tier_without_its_tool_skips_with_the_reason_outside_ci_and_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, in_ci: bool
) -> None:
    pytester.makeini(TIERS_INI)
    pytester.makeconftest(SUITE_RULES)
    pytester.makepyfile(
        test_tools="""
        import pytest

        @pytest.mark.chromium
        def test_needs_chromium():
            pass

        def test_skips_of_its_own_accord():
            pytest.skip("nothing to see here")
        """
    )
    # A PATH without Chromium on it; the inner pytest finds `tests` through PYTHONPATH.
    empty = pytester.mkdir("empty-path")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    if in_ci:
        monkeypatch.setenv("CI", "1")
    else:
        monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-ra")
    if in_ci:
        # Failed at its setup (an error), before any fixture could start what it needs.
        result.assert_outcomes(errors=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "ERROR test_tools.py::test_needs_chromium - Failed: no chromium on PATH*in CI every tier runs*",
                "FAILED test_tools.py::test_skips_of_its_own_accord - skipped in CI, where nothing may be "
                "skipped: nothing to see here",
            ],
            consecutive=False,
        )
    else:
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(["SKIPPED*chromium tier: no chromium on PATH*"], consecutive=False)


def test_a_file_named_on_the_command_line_runs_whatever_its_tier(pytester: pytest.Pytester) -> None:
    pytester.makeini(TIERS_INI)
    pytester.makeconftest(SUITE_RULES)
    pytester.makepyfile(
        test_tiered="""
        import pytest

        def test_fast():
            pass

        @pytest.mark.slow
        def test_slow():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("test_tiered.py").assert_outcomes(passed=2)
    pytester.runpytest("test_tiered.py::test_slow").assert_outcomes(passed=1)
    # An -m of one's own still selects, and a folder is collected as plain `pytest` would.
    pytester.runpytest("-m", "not slow", "test_tiered.py").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest(str(pytester.path)).assert_outcomes(passed=1, deselected=1)
