"""Memory stays flat in the number of cases: `validate` and the daemon, on a file of 10,000 cases and
on one of 200,000, each measured as a whole process (its peak resident set).

Before, every case's verdict was held until the receipt was written: the peak grew by about half a
kilobyte a case (576 MB for a million). Now outcomes and references spill to disk past a
threshold, so twenty times the cases may cost at most 20 MB more. `bench/memory.py` measures the
same at a million cases.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_harness import Gateway, cases, tail, wait_for, write_case_file

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.process]

SMALL, LARGE = 10_000, 200_000
#: What twenty times the cases may add to the peak, at most.
FLAT_MB = 20.0

_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("memory")
    files = {}
    for count in (SMALL, LARGE):
        files[count] = folder / f"cases-{count}.xml"
        write_case_file(files[count], f"MEM-{count}", cases(f"M{count}", count))
    return files


def _validate_peak_mb(path: Path) -> float:
    gateway = Path(sys.executable).with_name("inkasso-gateway")
    command = [str(gateway), "validate", str(path), "--as-of", "2026-11-25", "--format", "json"]
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command], capture_output=True, text=True, check=True
    )
    return int(result.stdout) / 1024


def test_validate_holds_twenty_times_the_cases_in_flat_memory(case_files: dict[int, Path]) -> None:
    small, large = _validate_peak_mb(case_files[SMALL]), _validate_peak_mb(case_files[LARGE])
    print(f"validate peak: {small:.1f} MB at {SMALL} cases, {large:.1f} MB at {LARGE}")
    assert large - small <= FLAT_MB, f"{large:.1f} MB at {LARGE} cases against {small:.1f} MB at {SMALL}"


def _daemon_peak_mb(gw: Gateway, path: Path, count: int) -> float:
    daemon = gw.start()
    partial = gw.inbox / (path.name + ".part")
    shutil.copyfile(path, partial)
    partial.rename(gw.inbox / path.name)
    receipt = wait_for(
        lambda: gw.receipt_for(path.name), timeout=600, what=f"the receipt of {count} cases", daemon=daemon
    )
    assert receipt.accepted == count, tail(daemon.stderr())
    status = Path(f"/proc/{daemon.pid}/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    assert daemon.terminate() == 0
    return peak_kb / 1024


def test_the_daemon_takes_twenty_times_the_cases_in_flat_memory(
    case_files: dict[int, Path], tmp_path: Path
) -> None:
    gateways = [Gateway(tmp_path / "small"), Gateway(tmp_path / "large")]
    try:
        small = _daemon_peak_mb(gateways[0], case_files[SMALL], SMALL)
        large = _daemon_peak_mb(gateways[1], case_files[LARGE], LARGE)
    finally:
        for gw in gateways:
            gw.stop_all()
    print(f"daemon peak: {small:.1f} MB at {SMALL} cases, {large:.1f} MB at {LARGE}")
    assert large - small <= FLAT_MB, f"{large:.1f} MB at {LARGE} cases against {small:.1f} MB at {SMALL}"
