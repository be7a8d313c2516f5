"""Intake benchmark: files through the running daemon, drop to receipt (a benchmark, not a test).

(a) one file of N cases (default 100,000) dropped into a running daemon's inbox, drop to receipt,
    against `inkasso-gateway validate` of the same file in the same run (target: at most 1.5 times
    `validate`), with the daemon's peak RSS (target: flat, under 150 MB);
(b) 1,000 single-case files dropped at once: drop to last receipt, files per second;
(c) the latency from drop to receipt of one small file (target: stable_seconds + 0.5 s).

    .venv/bin/python bench/intake.py [--cases 100000] [--files 1000] [--workdir bench/out/intake]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from validate import write_case_file  # noqa: E402  (bench/validate.py: the same generator)

EXAMPLE = REPO / "examples" / "lst-exempel-2026-11-24.xml"
GATEWAY = REPO / ".venv" / "bin" / "inkasso-gateway"
STABLE_SECONDS = 1.0
CONFIG = f"""
[gateway]
scan_seconds = 5.0
[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"
[[sources]]
name = "erp"
type = "folder"
path = "inbox"
stable_seconds = {STABLE_SECONDS}
[delivery]
schedule = "0 3 1 1 *"
"""


def fresh_gateway(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "inbox").mkdir(parents=True)
    (folder / "gateway.toml").write_text(CONFIG, encoding="utf-8")


def start_daemon(folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(GATEWAY), "run", "--config", str(folder / "gateway.toml")], stderr=log, stdout=log, cwd=folder
    )
    deadline = time.monotonic() + 20
    while b"started" not in (folder / "daemon.log").read_bytes():
        if time.monotonic() > deadline or daemon.poll() is not None:
            raise SystemExit(f"the daemon did not start: see {folder / 'daemon.log'}")
        time.sleep(0.05)
    return daemon


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=120)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def receipts(folder: Path) -> list[Path]:
    root = folder / "outbox" / "receipts"
    return list(root.glob("*/*.kvittens.xml")) if root.exists() else []


def drop(source: Path, inbox: Path, name: str) -> None:
    """Copy in under a temporary name and rename: how a producer should deliver."""
    partial = inbox / f"{name}.part"
    shutil.copyfile(source, partial)
    partial.rename(inbox / name)


def wait_for_receipts(folder: Path, count: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while len(receipts(folder)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(receipts(folder))} of {count} receipts after {timeout} s")
        time.sleep(0.01)
    return time.monotonic()


def big_file(workdir: Path, cases: int) -> None:
    case_file = workdir / f"arendefil-{cases}.xml"
    if not case_file.exists():
        print(f"writing {case_file} ({cases} cases)...", flush=True)
        write_case_file(case_file, cases, seed=20261125)
    started = time.monotonic()
    subprocess.run(
        [str(GATEWAY), "validate", str(case_file), "--format", "json"], stdout=subprocess.DEVNULL, check=False
    )
    validate_seconds = time.monotonic() - started

    folder = workdir / "gateway-a"
    fresh_gateway(folder)
    daemon = start_daemon(folder)
    try:
        dropped = time.monotonic()
        drop(case_file, folder / "inbox", case_file.name)
        done = wait_for_receipts(folder, 1, timeout=600)
        rss = peak_rss_mb(daemon.pid)
    finally:
        stop_daemon(daemon)
    through = done - dropped
    net = through - STABLE_SECONDS
    print(f"(a) {cases:,} cases: validate {validate_seconds:.2f} s; daemon drop to receipt {through:.2f} s")
    print(
        f"    minus the {STABLE_SECONDS:g} s stability wait: {net:.2f} s = {net / validate_seconds:.2f} x validate "
        f"(target <= 1.5); daemon peak RSS {rss:.0f} MB"
    )


def unique_example(tag: str) -> str:
    """The example file with its FilId, case references and claim numbers made unique by ``tag``."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("<Lopnummer>1</Lopnummer>", "")
    text = text.replace("LST-EXEMPEL-20261124-01", f"BENCH-{tag}")
    for reference in ("LST-2026-0412", "LST-2026-0419", "LST-2026-0425"):
        text = text.replace(reference, f"{reference}-{tag}")
    for invoice in ("2026-10877", "2026-10912", "2026-10913", "501-4711-2026"):
        text = text.replace(f">{invoice}<", f">{invoice}-{tag}<")
    return text


def many_files(workdir: Path, files: int) -> None:
    folder = workdir / "gateway-b"
    fresh_gateway(folder)
    staging = workdir / "staging-b"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for number in range(files):
        (staging / f"export-{number:05d}.xml").write_text(unique_example(f"B{number}"), encoding="utf-8")
    daemon = start_daemon(folder)
    try:
        dropped = time.monotonic()
        for path in sorted(staging.iterdir()):
            path.rename(folder / "inbox" / path.name)
        done = wait_for_receipts(folder, files, timeout=900)
        rss = peak_rss_mb(daemon.pid)
    finally:
        stop_daemon(daemon)
    seconds = done - dropped
    print(
        f"(b) {files:,} files (3 cases each) dropped at once: last receipt after {seconds:.2f} s, "
        f"{files / seconds:.0f} files/s; daemon peak RSS {rss:.0f} MB"
    )


def latency(workdir: Path, rounds: int) -> None:
    folder = workdir / "gateway-c"
    fresh_gateway(folder)
    daemon = start_daemon(folder)
    samples = []
    try:
        for number in range(rounds):
            source = workdir / "one.xml"
            source.write_text(unique_example(f"C{number}"), encoding="utf-8")
            # A file the daemon just moved out of the inbox makes inotify hold later events for
            # half a second (watchdog pairs the two halves of a rename): one file at a time is
            # measured on a quiet inbox, as a lone nightly export would arrive.
            time.sleep(1.0)
            before = len(receipts(folder))
            dropped = time.monotonic()
            drop(source, folder / "inbox", f"one-{number}.xml")
            samples.append(wait_for_receipts(folder, before + 1, timeout=60) - dropped)
    finally:
        stop_daemon(daemon)
    median = statistics.median(samples)
    print(
        f"(c) one small file, drop to receipt: median {median:.2f} s, max {max(samples):.2f} s over {rounds} "
        f"(target <= stable_seconds {STABLE_SECONDS:g} + 0.5 = {STABLE_SECONDS + 0.5:g} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "intake")
    parser.add_argument("--only", choices=("a", "b", "c"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.pop("INKASSO_GATEWAY_CONFIG", None)
    print(f"inkasso-gateway intake benchmark on {os.cpu_count()} cores; stable_seconds {STABLE_SECONDS:g}")
    if args.only in (None, "a"):
        big_file(args.workdir, args.cases)
    if args.only in (None, "b"):
        many_files(args.workdir, args.files)
    if args.only in (None, "c"):
        latency(args.workdir, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
