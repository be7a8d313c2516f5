"""The reconciliation report in a few lines for the terminal: ``write_summary(report, written, out)``.

A renderer only: what is not accounted for first, then the totals; the figures come from
:mod:`gateway.accounting.reports.model`, as the page's, the CSV files' and the JSON's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from gateway.accounting.reports.model import Report, format_ore
from gateway.domain.identity import mask_identities

__all__ = ["SUMMARY_LIMIT", "write_summary"]

#: Discrepancies printed by `report` (all are in the HTML and CSV).
SUMMARY_LIMIT = 50


def write_summary(report: Report, written: list[Path], out: TextIO) -> None:
    """The report in a few lines for the terminal: what is not accounted for first."""
    total = report.total
    figures = report.key_figures
    scope = report.client or "alla uppdragsgivare / all clients"
    period = report.period_from.isoformat() + (
        "" if report.period_from == report.period_to else f" -- {report.period_to}"
    )
    out.write(f"Avstämning / Reconciliation {period}, {scope}\n")
    if report.waiting:
        out.write(f"WAITING FOR A PERSON ({figures.waiting_for_a_person}):\n")
        for item in report.waiting[:SUMMARY_LIMIT]:
            out.write(f"  [{item.kind}] {mask_identities(item.subject)}: {item.message_en}\n")
    if not report.balanced:
        out.write(f"NOT ACCOUNTED FOR ({figures.discrepancies + figures.sequence_gaps}):\n")
        for gap in report.gaps:
            numbers = ", ".join(str(n) for n in gap.missing)
            out.write(f"  [sequence-gap] {gap.client}: journal number(s) {numbers} never used\n")
        for item in report.discrepancies[:SUMMARY_LIMIT]:
            out.write(f"  [{item.kind}] {mask_identities(item.subject)}: {item.message_en}\n")
        if figures.discrepancies > SUMMARY_LIMIT:
            out.write(f"  ... and {figures.discrepancies - SUMMARY_LIMIT} more: see the report\n")
    elif report.empty:
        out.write("No files arrived in the period.\n")
    elif not report.waiting:
        out.write("Everything accounted for.\n")
    else:
        out.write("Everything accounted for, but not done: see what waits for a person above.\n")
    out.write(
        f"Files in: {total.files} = accepted {total.accepted} + partially accepted {total.partially_accepted} "
        f"+ rejected {total.rejected} + duplicate {total.duplicate} + quarantined {total.quarantined} "
        f"+ in progress {total.in_progress}\n"
        f"Cases in: {total.cases} = journaled {total.cases_journaled} + rejected {total.cases_rejected} "
        f"+ duplicate {total.cases_duplicate}\n"
        f"Capital in: {format_ore(total.capital_in_ore)} kr = journaled {format_ore(total.capital_journaled_ore)} "
        f"+ rejected {format_ore(total.capital_rejected_ore)} + duplicate {format_ore(total.capital_duplicate_ore)}\n"
        f"Delivered in the period: {format_ore(figures.delivered_capital_ore)} kr in "
        f"{figures.journals_delivered} journal(s)\n"
    )
    out.write(f"Receipt chain head: {report.chain_head} (keep it: `audit verify --anchor` checks it later)\n")
    for path in written:
        out.write(f"written: {path}\n")
