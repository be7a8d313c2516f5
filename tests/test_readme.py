"""The README's five-minute walk-through is a tested document: its commands run, in order, on a
scratch copy of the repository's own setup (gateway.toml, examples/, inbox/) with the daemon
running as `make run` starts it, and what each prints must have the shape the README shows.

Shape, not bytes: digits, hex digests and runs of spaces may differ (times, pids, hashes), and
``...``/``…`` in the README stand for anything. Every line the README shows must appear, in order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemon_harness import DaemonProcess, tail, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.process]

WALK_THROUGH = re.compile(r"## Five minutes with the gateway\n(.*?)\n## Checking an export", re.S)
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)


def _blocks() -> list[list[tuple[str, list[str]]]]:
    """Each console block of the walk-through as (command, the lines the README shows after it)."""
    section = WALK_THROUGH.search(REPO.joinpath("README.md").read_text(encoding="utf-8"))
    assert section is not None, "the README has no walk-through"
    blocks = []
    for block in CONSOLE.findall(section.group(1)):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def _shape(line: str) -> str:
    line = re.sub(r"[0-9a-f]{12,}", "H", line)
    line = re.sub(r"\d+", "9", line)
    return re.sub(r"\s+", " ", line).strip()


def _pattern(shown: str) -> re.Pattern[str]:
    parts = re.split(r"\.\.\.|…", _shape(shown))
    return re.compile(".*".join(re.escape(part) for part in parts))


def assert_shaped_like(output: str, shown: list[str], command: str) -> None:
    actual = [_shape(line) for line in output.splitlines() if line.strip()]
    position = 0
    for line in shown:
        if not line.strip() or line.strip() in ("...", "…"):
            continue
        pattern = _pattern(line)
        while position < len(actual) and not pattern.fullmatch(actual[position]):
            position += 1
        assert position < len(actual), f"`{command}` printed nothing shaped like\n  {line}\nin:\n{output}"
        position += 1


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    scratch = tmp_path / "inkasso-gateway"
    scratch.mkdir()
    shutil.copy(REPO / "gateway.toml", scratch / "gateway.toml")
    shutil.copytree(REPO / "examples", scratch / "examples")
    (scratch / "inbox").mkdir()
    (scratch / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKASSO_GATEWAY_")}
    command = [str(scratch / ".venv" / "bin" / "inkasso-gateway"), "run", "--config", "gateway.toml"]
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:  # what `make run` runs
        process = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    daemon = DaemonProcess(process, log, ready=" started: ")
    try:
        (start, *walk) = _blocks()
        assert start[0][0] == "make run"
        wait_for(
            lambda: " started: " in daemon.stderr(), timeout=30, what="the daemon started", daemon=daemon
        )
        assert_shaped_like(daemon.stderr(), start[0][1], "make run")
        for steps in walk:
            for step, shown in steps:
                result = subprocess.run(
                    ["bash", "-c", step], cwd=scratch, env=env, capture_output=True, text=True, timeout=60
                )
                assert "Traceback" not in result.stderr, result.stderr
                assert_shaped_like(result.stdout + result.stderr, shown, step)
                _settle(step, scratch, daemon)
    finally:
        assert daemon.terminate() == 0, tail(daemon.stderr())


def _settle(step: str, scratch: Path, daemon: DaemonProcess) -> None:
    """What the README says happens on its own after a step, awaited before the next one."""
    if step.startswith("cp ") and " inbox/" in step:
        wait_for(
            lambda: not [p for p in (scratch / "inbox").iterdir() if not p.name.startswith(".")],
            timeout=30,
            what="the file taken from the inbox",
            daemon=daemon,
        )
    if step.endswith("journal seal"):

        def delivered() -> bool:
            listed = subprocess.run(
                [str(scratch / ".venv" / "bin" / "inkasso-gateway"), "journal", "list", "--format", "json"],
                cwd=scratch,
                capture_output=True,
                text=True,
                check=False,
            )
            return bool(listed.stdout) and all(j["state"] == "delivered" for j in json.loads(listed.stdout))

        wait_for(delivered, timeout=30, what="the sealed journal delivered", daemon=daemon)


def test_the_shape_check_tells_a_different_line_from_a_differing_number() -> None:
    printed = (
        "lst-exempel-j1   lst-exempel   #1   delivered   5 cases   48,150.50 SEK  lst-exempel-000001.xml\n"
    )
    assert_shaped_like(
        printed, ["lst-exempel-j1 lst-exempel #7 delivered 12 cases 1,000.00 SEK ..."], "journal list"
    )
    with pytest.raises(AssertionError, match="printed nothing shaped like"):
        assert_shaped_like(printed, ["lst-exempel-j1 lst-exempel #1 approved 5 cases ..."], "journal list")
