"""Report benchmark: `inkasso-gateway report` over a month of a busy store (a benchmark, not a test).

Fills a store with N files (default 100,000) over 30 days, about three cases each, every accepted
case in a delivered journal, and times `inkasso-gateway report --from --to` for the whole month
(the command as users run it: store queries, checks on disk, HTML and CSV), against a baseline in
the same run: one SQL aggregate over the same rows (what the report's counting costs at least).
The fill writes the rows directly (one transaction), as the gateway's commits would leave them.

    .venv/bin/python bench/report.py [--files 100000] [--workdir bench/out/report]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.domain.chain import GENESIS_SHA256  # noqa: E402
from gateway.store.sqlite import SqliteStore  # noqa: E402

GATEWAY = REPO / ".venv" / "bin" / "inkasso-gateway"
CONFIG = """
[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"
[[sources]]
name = "erp"
type = "folder"
path = "inbox"
[reports]
schedule = ""
"""
START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
DAYS = 30
STATUSES = ("accepted",) * 8 + ("partially-accepted", "rejected")


def fill(folder: Path, files: int) -> int:
    """The store as a month of traffic leaves it; returns the number of cases journaled."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "gateway.toml").write_text(CONFIG, encoding="utf-8")
    SqliteStore(folder / "var" / "gateway.db").close()  # the schema, migrated
    placeholder = folder / "placeholder.xml"  # every receipt and original "exists": stat costs count
    placeholder.write_text("<x/>", encoding="utf-8")
    random.seed(5)
    db = sqlite3.connect(folder / "var" / "gateway.db")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    journals = {}
    for day in range(DAYS):
        delivered = START + timedelta(days=day, hours=10)
        cursor = db.execute(
            "INSERT INTO journals (client_id, sequence, state, opened_at, sealed_at, approved_by, approved_at, "
            "file_name, sha256, size, delivered_at, attempts) VALUES ('lst-exempel', ?, 'delivered', ?, ?, 'auto', "
            "?, ?, ?, 1, ?, 1)",
            (day + 1, START.isoformat(), delivered.isoformat(), delivered.isoformat(),
             f"lst-exempel-{day + 1:06d}.xml", "0" * 64, delivered.isoformat()),
        )  # fmt: skip
        journals[day] = cursor.lastrowid
        sent = folder / "var" / "sent" / f"lst-exempel-{day + 1:06d}.xml"
        sent.parent.mkdir(parents=True, exist_ok=True)
        sent.write_text("<x/>", encoding="utf-8")
    previous = GENESIS_SHA256
    cases = 0
    for number in range(files):
        day = number * DAYS // files
        received = START + timedelta(days=day, seconds=number % 80000)
        status = random.choice(STATUSES)
        accepted = {"accepted": 3, "partially-accepted": 2, "rejected": 0}[status]
        receipt_sha = hashlib.sha256(str(number).encode()).hexdigest()
        cursor = db.execute(
            "INSERT INTO files (source, name, path, sha256, size, state, attempts, received_at, status, client_orgnr, "
            "case_count, accepted_count, accepted_capital_ore, receipt_id, receipt_path, receipt_sha256, "
            "previous_receipt_sha256, final_path, judged_at, finished_at, written_at, client_id, rejected_count, "
            "duplicate_count, capital_in_ore, rejected_capital_ore, duplicate_capital_ore) "
            "VALUES ('erp', ?, ?, ?, 4000, 'done', 1, ?, ?, '2021000001', 3, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'lst-exempel', ?, 0, 300000, ?, 0)",
            (f"export-{number}.xml", f"/in/export-{number}.xml", hashlib.sha256(str(-number).encode()).hexdigest(),
             received.isoformat(), status, accepted, accepted * 100000, str(number), str(placeholder), receipt_sha,
             previous, str(placeholder), received.isoformat(), (received + timedelta(seconds=2)).isoformat(),
             (received - timedelta(seconds=1)).isoformat(), 3 - accepted, (3 - accepted) * 100000),
        )  # fmt: skip
        previous = receipt_sha
        file_row = cursor.lastrowid
        db.executemany(
            "INSERT INTO cases (file_row, position, client_id, client_orgnr, reference, fingerprint, journal_row, "
            "capital_ore, claim_count, protected, payload, payload_sha256) VALUES (?, ?, 'lst-exempel', "
            "'2021000001', ?, '', ?, 100000, 1, 0, '{}', '')",
            [(file_row, position, f"R-{number}-{position}", journals[day]) for position in range(accepted)],
        )
        if accepted < 3:
            db.execute("INSERT INTO file_findings VALUES (?, 'M02', 'error', ?)", (file_row, 3 - accepted))
        cases += accepted
    db.execute("INSERT INTO meta VALUES ('receipt_chain_head', ?)", (previous,))
    db.execute("COMMIT")
    db.close()
    return cases


def baseline(folder: Path) -> float:
    """One SQL aggregate over the same rows: per day, source, client and status, every sum."""
    started = time.perf_counter()
    db = sqlite3.connect(folder / "var" / "gateway.db")
    rows = db.execute(
        "SELECT substr(received_at, 1, 10), source, client_id, status, COUNT(*), SUM(case_count), "
        "SUM(accepted_count), SUM(rejected_count), SUM(capital_in_ore), SUM(accepted_capital_ore) "
        "FROM files GROUP BY 1, 2, 3, 4"
    ).fetchall()
    db.close()
    assert rows
    return time.perf_counter() - started


def report(folder: Path) -> float:
    started = time.perf_counter()
    last = (START + timedelta(days=DAYS - 1)).date().isoformat()
    result = subprocess.run(
        [str(GATEWAY), "report", "--from", START.date().isoformat(), "--to", last, "--config",
         str(folder / "gateway.toml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"report exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "report")
    args = parser.parse_args()
    started = time.perf_counter()
    cases = fill(args.workdir, args.files)
    print(
        f"store: {args.files:,} files, {cases:,} cases journaled over {DAYS} days ({time.perf_counter() - started:.1f} s)"
    )
    base = min(baseline(args.workdir) for _ in range(3))
    timings = sorted(report(args.workdir) for _ in range(3))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"baseline: one SQL aggregate over the files: {base:.2f} s (best of 3)")
    print(
        f"inkasso-gateway report, {DAYS} days: {timings[1]:.2f} s median of 3 (ratio {timings[1] / base:.1f})"
    )
    print(f"peak RSS of the report command: {peak:.0f} MB")


if __name__ == "__main__":
    main()
