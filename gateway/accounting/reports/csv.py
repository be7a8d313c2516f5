"""The reconciliation report as CSV for spreadsheets: ``write_report_csv(out, report, table)``.

One table per call (:data:`CSV_TABLES`): one header row, then data rows, written with the stdlib
``csv`` module (comma, minimal quoting, ``\\r\\n`` line ends: open ``out`` with ``newline=""``).
Values are written so that a program can read them back exactly:

* amounts as decimal kronor with a dot, computed from whole öre without floats (1 öre is
  ``0.01``, never ``0.010000000000000002``);
* dates as ISO ``YYYY-MM-DD``; times as ISO 8601 with the offset, in the report's time zone;
* empty for "none" (a journal not yet numbered, a latency with no measurements, a share of nothing);
* shares as percentages with one decimal and a dot (``51.2``), rounded as the page rounds them.

Every figure the HTML page shows is in one of the tables, as it is in the JSON summary: the page's
key figures and status counts (``nyckeltal``), the figures per client (``uppdragsgivare``), the
top rejection reasons (``orsaker``), where the journaled capital is now (``kapital``) and what is
not accounted for or waits for a person (``avvikelser``); the charts and the rule table are sums
of ``avstamning`` and ``regler`` rows. A renderer only: the figures come from the model.

Every row ends with the report's stamp (``gateway_version``, ``regelversion``, ``konfig_sha256``)
so that a row copied out of its file still says which gateway, rules and configuration made it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from gateway.accounting.reports.model import TALLY_COUNTS, KeyFigures, Report
from gateway.domain.identity import mask_identities

__all__ = ["CSV_TABLES", "STAMP_COLUMNS", "write_report_csv"]

#: The tables, by the name that goes into the file name (ASCII: it travels through file systems).
CSV_TABLES: tuple[str, ...] = (
    "avstamning",
    "journaler",
    "regler",
    "latens",
    "filer",
    "nyckeltal",
    "uppdragsgivare",
    "orsaker",
    "kapital",
    "avvikelser",
)
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


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _amount_name(name: str) -> str:
    """A field in öre is a column in kronor: ``capital_in_ore`` -> ``capital_in_sek``."""
    return name.removesuffix("_ore") + "_sek" if name.endswith("_ore") else name


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
    header = ("day", "source", "client", *map(_amount_name, TALLY_COUNTS), "balanced")
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


def _key_figures(report: Report, _: _Times) -> _Rows:
    """The page's key figures and status counts, one figure a row (name, value)."""
    header = ("figure", "value")
    rows: list[tuple[str, str]] = []
    for field in fields(KeyFigures):
        value = getattr(report.key_figures, field.name)
        if field.name.endswith("_percent"):
            rows.append((field.name, _percent(value)))
        elif field.name.endswith("_ore"):
            rows.append((_amount_name(field.name), sek(value)))
        else:
            rows.append((field.name, str(value)))
    return header, rows


def _clients(report: Report, _: _Times) -> _Rows:
    """Each client over the whole period: in, summed over days and sources; out, delivered."""
    header = ("client", *map(_amount_name, TALLY_COUNTS), "journals_delivered", "delivered_capital_sek")
    rows = (
        (
            _text(c.client),
            *(
                sek(getattr(c.tally, name)) if name.endswith("_ore") else str(getattr(c.tally, name))
                for name in TALLY_COUNTS
            ),
            str(c.journals_delivered),
            sek(c.delivered_capital_ore),
        )
        for c in report.per_client
    )
    return header, rows


def _reasons(report: Report, _: _Times) -> _Rows:
    """The top rejection reasons, one row per rule code and client (the code's total repeated)."""
    header = ("rank", "code", "findings", "client", "client_findings")
    rows = (
        (str(rank), _text(reason.code), str(reason.findings), _text(client), str(findings))
        for rank, reason in enumerate(report.top_rejection_reasons, start=1)
        for client, findings in reason.by_client.items()
    )
    return header, rows


def _capital(report: Report, _: _Times) -> _Rows:
    """Where the capital journaled in the period is now, by journal state."""
    header = ("state", "cases", "capital_sek", "share_percent")
    rows = (
        (_text(s.state), str(s.cases), sek(s.capital_ore), _percent(s.share_percent))
        for s in report.capital_now
    )
    return header, rows


def _discrepancies(report: Report, _: _Times) -> _Rows:
    """What is not accounted for (gaps in journal numbers too), then what waits for a person."""
    header = ("section", "kind", "subject", "message_sv", "message_en")
    unaccounted = [(d.kind, d.subject, d.message_sv, d.message_en) for d in report.discrepancies]
    unaccounted += [("sequence-gap", gap.client, gap.message_sv, gap.message_en) for gap in report.gaps]
    waiting = [(d.kind, d.subject, d.message_sv, d.message_en) for d in report.waiting]
    rows = (
        # Masked here too, as on the page: a subject may quote a file name holding a personnummer.
        (section, _text(kind), *(_text(mask_identities(text)) for text in texts))
        for section, items in (("not-accounted-for", unaccounted), ("waiting-for-a-person", waiting))
        for kind, *texts in items
    )
    return header, rows


_TABLES: dict[str, Callable[[Report, _Times], _Rows]] = {
    "avstamning": _tallies,
    "journaler": _journals,
    "regler": _rules,
    "latens": _latencies,
    "filer": _files,
    "nyckeltal": _key_figures,
    "uppdragsgivare": _clients,
    "orsaker": _reasons,
    "kapital": _capital,
    "avvikelser": _discrepancies,
}
