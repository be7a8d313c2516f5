"""Store benchmark: one big file through the daemon on SQLite and on PostgreSQL, in one run (a
benchmark, not a test).

(a) one file of N cases (default 100,000) dropped into a running daemon's inbox, drop to receipt,
    on the embedded SQLite store and on a PostgreSQL store (a throwaway cluster on this machine,
    started here with tests/postgres_server.py: Debian's postgresql must be installed, `make
    postgresql`); target: PostgreSQL within 1.5 times SQLite;
(b) `store copy` of the SQLite store that (a) filled into an empty PostgreSQL database.

    .venv/bin/python bench/store.py [--cases 100000] [--workdir bench/out/store]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from intake import (  # noqa: E402  (bench/intake.py: the same daemon and inbox handling)
    GATEWAY,
    STABLE_SECONDS,
    drop,
    fresh_gateway,
    peak_rss_mb,
    start_daemon,
    stop_daemon,
    wait_for_receipts,
)
from validate import write_case_file  # noqa: E402  (bench/validate.py: the same generator)

from tests.postgres_server import password_in_environment, postgres_server  # noqa: E402


def through_daemon(folder: Path, case_file: Path, store_url: str | None) -> tuple[float, float]:
    """Drop to receipt (less the stability wait) and the daemon's peak RSS."""
    fresh_gateway(folder)
    if store_url is not None:
        config = folder / "gateway.toml"
        config.write_text(
            config.read_text(encoding="utf-8") + f'[store]\nurl = "{store_url}"\n', encoding="utf-8"
        )
    daemon = start_daemon(folder)
    try:
        dropped = time.monotonic()
        drop(case_file, folder / "inbox", case_file.name)
        done = wait_for_receipts(folder, 1, timeout=900)
        rss = peak_rss_mb(daemon.pid)
    finally:
        stop_daemon(daemon)
    return done - dropped - STABLE_SECONDS, rss


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "store")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.pop("INKASSO_GATEWAY_CONFIG", None)
    case_file = args.workdir / f"arendefil-{args.cases}.xml"
    if not case_file.exists():
        print(f"writing {case_file} ({args.cases} cases)...", flush=True)
        write_case_file(case_file, args.cases, seed=20261125)
    print(f"inkasso-gateway store benchmark on {os.cpu_count()} cores: one file of {args.cases:,} cases")
    on_sqlite, sqlite_rss = through_daemon(args.workdir / "sqlite", case_file, None)
    print(
        f"(a) SQLite:     drop to receipt {on_sqlite:.2f} s (less the {STABLE_SECONDS:g} s stability wait); peak RSS {sqlite_rss:.0f} MB",
        flush=True,
    )
    with postgres_server() as server, password_in_environment():
        on_postgres, postgres_rss = through_daemon(
            args.workdir / "postgres", case_file, server.new_database()
        )
        print(
            f"    PostgreSQL: drop to receipt {on_postgres:.2f} s; peak RSS {postgres_rss:.0f} MB: "
            f"{on_postgres / on_sqlite:.2f} x SQLite (target <= 1.5)",
            flush=True,
        )
        target = server.new_database()
        started = time.monotonic()
        subprocess.run(
            [
                str(GATEWAY),
                "store",
                "copy",
                "--to",
                target,
                "--config",
                str(args.workdir / "sqlite" / "gateway.toml"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"(b) store copy of (a)'s SQLite store into PostgreSQL: {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
