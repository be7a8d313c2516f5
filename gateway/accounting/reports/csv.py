"""The reconciliation report as CSV for spreadsheets: ``write_report_csv(out, report, table)``.

One table per call (:data:`CSV_TABLES`): one header row, then data rows, written with the stdlib
``csv`` module (comma, minimal quoting, ``\\r\\n`` line ends: open ``out`` with ``newline=""``).
Values are written so that a program can read them back exactly:

* amounts as decimal kronor with a dot, computed from whole öre without floats (1 öre is
  ``0.01``, never ``0.010000000000000002``);
* dates as ISO ``YYYY-MM-DD``; times as ISO 8601 with the offset, in the report's time zone;
* empty for "none" (a journal not yet numbered, a latency with no measurements).

Every row ends with the report's stamp (``gateway_version``, ``regelversion``, ``konfig_sha256``)
so that a row copied out of its file still says which gateway, rules and configuration made it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from gateway.accounting.reports.model import TALLY_COUNTS, Report

__all__ = ["CSV_TABLES", "STAMP_COLUMNS", "write_report_csv"]

#: The tables, by the name that goes into the file name (ASCII: it travels through file systems).
CSV_TABLES: tuple[str, ...] = ("avstamning", "journaler", "regler", "latens", "filer")
#: The last three columns of every row.
STAMP_COLUMNS: tuple[str, ...] = ("gateway_version", "regelversion", "konfig_sha256")

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); source
# names and client ids are free text, so such a text gets a leading apostrophe, as OWASP advises.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def sek(ore: int) -> str:
    """Whole öre as exact decimal kronor with a dot: ``123450`` -> ``1234.50``, ``-1`` -> ``-0.01``."""
    sign = "-" if ore < 0 else ""
    kronor, rest = divmod(abs(ore), 100)
    return f"{sign}{kronor}.{rest:02d}"


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _seconds(value: float | None) -> str:
    # Milliseconds are as fine as any latency here is measured; fixed decimals keep it stable.
    return "" if value is None else f"{value:.3f}"


def write_report_csv(out: TextIO, report: Report, table: str) -> None:
    """Write one of :data:`CSV_TABLES` of ``report`` to ``out``; ``ValueError`` for another name."""
    if table not in _TABLES:
        raise ValueError(f"unknown report table {table!r}; expected one of {', '.join(CSV_TABLES)}")
    header, rows = _TABLES[table](report, _Times(report.stamp.timezone))
    stamp = (report.stamp.gateway_version, report.stamp.ruleset_version, report.stamp.config_sha256)
    writer = csv.writer(out)
    writer.writerow((*header, *STAMP_COLUMNS))
    for row in rows:
        writer.writerow((*row, *stamp))


class _Times:
    """ISO 8601 times with their offset in the report's zone."""

    def __init__(self, name: str) -> None:
        self.zone = ZoneInfo(name)

    def __call__(self, moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(self.zone).isoformat(timespec="seconds")


_Rows = tuple[Sequence[str], Iterable[Sequence[str]]]


def _day(value: date) -> str:
    return value.isoformat()


def _tallies(report: Report, _: _Times) -> _Rows:
    # The count fields keep their names; the amounts are kronor here, so *_ore becomes *_sek.
    names = [name.removesuffix("_ore") + "_sek" if name.endswith("_ore") else name for name in TALLY_COUNTS]
    header = ("day", "source", "client", *names, "balanced")
    rows = (
        (
            _day(t.day),
            _text(t.source),
            _text(t.client),
            *(
                sek(getattr(t, name)) if name.endswith("_ore") else str(getattr(t, name))
                for name in TALLY_COUNTS
            ),
            "ja" if t.balanced else "nej",
        )
        for t in report.tallies
    )
    return header, rows


def _journals(report: Report, when: _Times) -> _Rows:
    header = (
        "journal_id",
        "client",
        "sequence",
        "state",
        "case_count",
        "capital_sek",
        "sealed_at",
        "approved_at",
        "delivered_at",
        "file_name",
    )
    rows = (
        (
            _text(j.journal_id),
            _text(j.client),
            "" if j.sequence is None else str(j.sequence),
            j.state,
            str(j.case_count),
            sek(j.capital_ore),
            when(j.sealed_at),
            when(j.approved_at),
            when(j.delivered_at),
            _text(j.file_name or ""),
        )
        for j in report.journals
    )
    return header, rows


def _rules(report: Report, _: _Times) -> _Rows:
    header = ("day", "client", "code", "severity", "files", "findings")
    rows = (
        (_day(r.day), _text(r.client), _text(r.code), r.severity, str(r.files), str(r.findings))
        for r in report.rules
    )
    return header, rows


def _latencies(report: Report, _: _Times) -> _Rows:
    header = ("name", "count", "median_seconds", "p95_seconds", "max_seconds")
    rows = (
        (
            _text(s.name),
            str(s.count),
            _seconds(s.median_seconds),
            _seconds(s.p95_seconds),
            _seconds(s.max_seconds),
        )
        for s in report.latencies
    )
    return header, rows


def _files(report: Report, when: _Times) -> _Rows:
    """Every file of the period, to match against an ERP's export log."""
    header = (
        "file",
        "source",
        "received_at",
        "sha256",
        "status",
        "cases_accepted",
        "cases_rejected",
        "receipt",
    )
    rows = (
        (
            _text(f.name),
            _text(f.source),
            when(f.received_at),
            f.sha256,
            f.status,
            str(f.cases_accepted),
            str(f.cases_rejected),
            _text(f.receipt or ""),
        )
        for f in report.files
    )
    return header, rows


_TABLES: dict[str, Callable[[Report, _Times], _Rows]] = {
    "avstamning": _tallies,
    "journaler": _journals,
    "regler": _rules,
    "latens": _latencies,
    "filer": _files,
}
