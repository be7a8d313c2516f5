"""Memory benchmark: peak RSS of `validate` and of the daemon, on a small file and on a huge one.

The small file is the baseline measured in the same run; the target is a peak at the large file
within 20 MB of the peak at the small one (memory flat in the number of cases).

    .venv/bin/python bench/memory.py [--small 10000] [--large 1000000] [--workdir bench/out/memory]

A file of a million cases is about 940 MB and takes a few minutes to write, two to validate and
several to take through the daemon; both files are kept in the work folder for the next run.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from intake import (  # noqa: E402  (bench/intake.py: the same daemon helpers)
    GATEWAY,
    drop,
    fresh_gateway,
    peak_rss_mb,
    start_daemon,
    stop_daemon,
    wait_for_receipts,
)
from validate import write_case_file  # noqa: E402  (bench/validate.py: the same generator)

FLAT_MB = 20.0
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def case_file(workdir: Path, cases: int) -> Path:
    path = workdir / f"arendefil-{cases}.xml"
    if not path.exists():
        print(f"writing {path} ({cases} cases)...", flush=True)
        write_case_file(path, cases, seed=20261125)
    return path


def validate_peak(path: Path) -> tuple[float, float]:
    """(peak MB, seconds) of `inkasso-gateway validate --format json` on ``path``."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, str(GATEWAY), "validate", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout) / 1024, time.monotonic() - started


def daemon_peak(workdir: Path, path: Path) -> tuple[float, float]:
    """(peak MB, seconds from drop to receipt) of a daemon taking ``path``."""
    folder = workdir / f"gateway-{path.stem}"
    fresh_gateway(folder)
    daemon = start_daemon(folder)
    try:
        started = time.monotonic()
        drop(path, folder / "inbox", path.name)
        finished = wait_for_receipts(folder, 1, timeout=3600)
        return peak_rss_mb(daemon.pid), finished - started
    finally:
        stop_daemon(daemon)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=10_000, help="cases in the baseline file")
    parser.add_argument("--large", type=int, default=1_000_000, help="cases in the large file")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "memory")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = {count: case_file(args.workdir, count) for count in (args.small, args.large)}
    rows = []
    for what, measure in (("validate", validate_peak), ("daemon", lambda p: daemon_peak(args.workdir, p))):
        small_mb, small_s = measure(files[args.small])
        large_mb, large_s = measure(files[args.large])
        rows.append((what, small_mb, small_s, large_mb, large_s))
    print(f"\n{'':<10} {args.small:>10,} cases        {args.large:>10,} cases       growth  target")
    for what, small_mb, small_s, large_mb, large_s in rows:
        growth = large_mb - small_mb
        verdict = "PASS" if growth <= FLAT_MB else "FAIL"
        print(
            f"{what:<10} {small_mb:7.1f} MB {small_s:7.1f} s   {large_mb:7.1f} MB {large_s:8.1f} s   "
            f"{growth:+6.1f} MB  <= {FLAT_MB:.0f} MB {verdict}"
        )
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
