"""Shared fixtures: the repository's own paths and the fixed "today" every test validates on; the
test tiers (which machine each needs, and what happens where it is missing); and the guard that
every test leaves the process's signal handlers and umask as it found them."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Generator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import find_chromium
from tests.postgres_server import (
    postgres,  # noqa: F401  (the throwaway cluster, for the postgres tier)
    server_binaries,
)
from tests.sshd_server import (
    SSHD,
    sshd,  # noqa: F401  (the real-sshd fixture, for tests/test_sftp.py)
)
from tests.system import IN_CI, IS_ROOT

# The store contract is a module of tests that each backend's test module subclasses: pytest
# rewrites the asserts of test modules only, so that a failing one there says what it compared.
pytest.register_assert_rewrite("tests.store_contract")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lst-exempel-2026-11-24.xml"
#: The sample client and an inbox folder source, as the repository's gateway.toml has them.
SAMPLE_CONFIG = """
[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"

[[sources]]
name = "erp"
type = "folder"
path = "inbox"
"""
#: Every test validates "as of" this day, so that the samples never age into other findings.
TODAY = date(2026, 11, 25)

#: tests/test_tiers_and_guards.py runs small test sessions of its own to see the tiers and guards act.
pytest_plugins = ["pytester"]

#: A script that runs the command line as soon as it is imported (the process tests start it);
#: --doctest-modules would otherwise import it while collecting.
collect_ignore = ["faulty_gateway.py"]


@pytest.fixture
def example_bytes() -> bytes:
    return EXAMPLE.read_bytes()


def broken_copy(tmp_path: Path, replacements: dict[str, str], name: str = "broken.xml") -> Path:
    """The example file with some text replaced: a quick way to make a file with known findings."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the example"
        text = text.replace(old, new)
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


# -- tiers ---------------------------------------------------------------------------------------------
#
# Plain `pytest` runs the fast tier (pyproject's addopts deselect the markers below); `make test` and
# CI run every tier. A tier that needs something of the machine is skipped with the reason where it
# is missing, except in CI: there it is a failure, since CI installs everything and runs as root.


def _root_missing() -> str | None:
    return None if IS_ROOT else "needs root (mounts, Unix users, other users' files): CI runs as root"


def _sshd_missing() -> str | None:
    if not SSHD.exists():
        return f"{SSHD} is missing: `make sshd` installs OpenSSH's server"
    if not IS_ROOT:
        return "starts a real sshd and logs in as a Unix user it creates: needs root (CI runs as root)"
    return None


def _prometheus_missing() -> str | None:
    missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} missing: `make prometheus` installs Debian's prometheus package"
    return None


def _chromium_missing() -> str | None:
    try:
        find_chromium()
    except FileNotFoundError as missing:
        return str(missing)
    return None


def _postgres_missing() -> str | None:
    if server_binaries() is None:
        return "PostgreSQL's server (initdb) is missing: `make postgresql` installs Debian's postgresql"
    return None


#: Each tier that needs something of the machine, and how to tell what is missing (None: nothing).
TIER_NEEDS: dict[str, Callable[[], str | None]] = {
    "root": _root_missing,
    "sshd": _sshd_missing,
    "chromium": _chromium_missing,
    "postgres": _postgres_missing,
    "prometheus": _prometheus_missing,
}


def _names_only_files(config: pytest.Config) -> bool:
    """Whether the command line names test files (or tests in them), and nothing else to collect."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS or not config.args:
        return False
    return all(Path(arg.partition("::")[0]).is_file() for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    # A file named on the command line runs whatever its tier (`pytest tests/test_daemon.py` means
    # those tests); the fast-tier selection is for `pytest` and for folders. An -m given there wins.
    given_m = any(arg.startswith("-m") for arg in config.invocation_params.args)
    if _names_only_files(config) and not given_m:
        config.option.markexpr = ""


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures start an sshd or mount anything
def pytest_runtest_setup(item: pytest.Item) -> None:
    for tier, missing in TIER_NEEDS.items():
        if item.get_closest_marker(tier) is None:
            continue
        reason = missing()
        if reason is None:
            continue
        if IN_CI:
            pytest.fail(f"{reason} (in CI every tier runs: nothing may be missing)", pytrace=False)
        pytest.skip(f"{tier} tier: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a skipped test is a failed one: whatever it needed, CI was meant to have."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be skipped: {reason}"
    return report


# -- the process as each test found it -----------------------------------------------------------------

#: The signals the daemon takes over while it runs: a test that runs it in process must give them back.
GUARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _umask() -> int:
    # Read from /proc: os.umask() can only be read by setting it, and for that moment another
    # thread (a watchdog observer, the scheduler) would create files with the wrong mode.
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise RuntimeError("/proc/self/status has no Umask line")


def process_state() -> dict[str, Any]:
    """The signal handlers of :data:`GUARDED_SIGNALS` and the umask, by name."""
    state: dict[str, Any] = {sig.name: signal.getsignal(sig) for sig in GUARDED_SIGNALS}
    state["umask"] = _umask()
    return state


def restore_process_state(before: dict[str, Any]) -> list[str]:
    """Put back what differs from ``before``; what was changed, one line each (empty: nothing)."""
    changed = []
    after = process_state()
    for sig in GUARDED_SIGNALS:
        if after[sig.name] != before[sig.name]:
            changed.append(f"the {sig.name} handler is {after[sig.name]!r}, was {before[sig.name]!r}")
            signal.signal(sig, before[sig.name])
    if after["umask"] != before["umask"]:
        changed.append(f"the umask is {after['umask']:04o}, was {before['umask']:04o}")
        os.umask(before["umask"])
    return changed


@pytest.fixture(autouse=True)
def _process_state_is_left_as_found() -> Iterator[None]:
    """A test that changes a signal handler or the umask and leaves it so fails, and the next test
    starts from what was there: otherwise a later test (or pytest's own Ctrl-C) meets a handler of
    a daemon long gone, or writes files with another test's mode."""
    before = process_state()
    yield
    changed = restore_process_state(before)
    if changed:
        pytest.fail("the test left the process changed: " + "; ".join(changed), pytrace=False)
