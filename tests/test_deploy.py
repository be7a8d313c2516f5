"""The service installs as written: the systemd unit passes `systemd-analyze verify`, scores 3.0
or better on `systemd-analyze security`, and the pinned runtime dependencies are complete.

systemd-analyze comes from Debian's systemd package (`make test` installs it when missing); the
checks run offline, on the unit file, without a running systemd.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO
from tests.system import IN_CI

UNIT = REPO / "deploy" / "inkasso-gateway.service"
LOCK = REPO / "deploy" / "requirements.lock"
#: The score systemd-analyze gives a well-hardened service is below this ("OK" is below 4.0).
MAX_EXPOSURE = 3.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not IN_CI,
    reason="systemd-analyze is missing (make test installs Debian's systemd package)",
)


def _installed_unit(tmp_path: Path) -> Path:
    """The shipped unit as deploy/install.sh would install it, its prefix this checkout's venv (so
    that verify finds the command it starts)."""
    venv = Path(sys.executable).parent
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/inkasso-gateway/bin/", f"{venv}/"), encoding="utf-8"
    )
    return unit


@needs_systemd_analyze
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(_installed_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd_analyze
def test_the_unit_is_hardened_to_an_exposure_of_3_or_better() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= MAX_EXPOSURE, result.stdout


def test_the_lock_pins_every_runtime_dependency_at_the_tested_version() -> None:
    pinned = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_normal(name)] = version.strip()
    needed: dict[str, str] = {}
    queue = [Requirement(r) for r in metadata.requires("inkasso-gateway") or []]
    while queue:
        requirement = queue.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra (the dev tools) or another platform's
        name = _normal(requirement.name)
        if name in needed:
            continue
        needed[name] = metadata.version(requirement.name)
        queue += [Requirement(r) for r in metadata.requires(requirement.name) or []]
    missing = sorted(set(needed) - set(pinned))
    assert not missing, f"not pinned in {LOCK.name}: {missing}"
    drifted = {name: (pinned[name], version) for name, version in needed.items() if pinned[name] != version}
    assert not drifted, f"pinned (left) is not what the tests run with (right): {drifted}"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_install_script_uses_the_lock_and_the_shipped_files() -> None:
    script = (REPO / "deploy" / "install.sh").read_text(encoding="utf-8")
    assert "--constraint deploy/requirements.lock" in script
    for shipped in ("inkasso-gateway.service", "inkasso-gateway.sysusers", "gateway.toml.example"):
        assert f"deploy/{shipped}" in script and (REPO / "deploy" / shipped).is_file()
    result = subprocess.run(["sh", "-n", str(REPO / "deploy" / "install.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_example_configuration_for_an_installed_gateway_is_valid(tmp_path: Path) -> None:
    import grp
    import os

    from gateway import config

    # The group deploy/install.sh creates; here one that exists on this machine stands in for it.
    example = (REPO / "deploy" / "gateway.toml.example").read_text(encoding="utf-8")
    assert 'group = "inkasso-erp"' in example
    here = example.replace('group = "inkasso-erp"', f'group = "{grp.getgrgid(os.getgid()).gr_name}"')
    (tmp_path / "gateway.toml").write_text(here, encoding="utf-8")
    loaded = config.load(tmp_path / "gateway.toml")
    assert loaded.data_dir == Path("/var/lib/inkasso-gateway")
    assert loaded.sources[0].path == Path("/var/lib/inkasso-gateway/inbox")
    assert loaded.sources[0].mode == 0o2770
