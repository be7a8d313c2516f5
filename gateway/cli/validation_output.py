"""How `inkasso-gateway validate` shows its verdicts: text for people, JSON lines for programs.

Both are written case by case to the output stream, so printing a 100,000-case verdict does not
build a second copy of it in memory. File names, case references and receipt names may hold a
personnummer, so they go through ``mask_identities`` like the messages did when they were made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from gateway.domain.findings import Finding
from gateway.domain.identity import mask_identities
from gateway.domain.judging import CaseStatus, FileStatus
from gateway.service.validation import FileReport

_STATUS_TEXT = {
    FileStatus.ACCEPTED: "accepted / godkänd",
    FileStatus.PARTIALLY_ACCEPTED: "PARTIALLY ACCEPTED / delvis godkänd",
    FileStatus.REJECTED: "REJECTED / underkänd",
    FileStatus.DUPLICATE: "DUPLICATE / dubblett",
}
_CASE_TEXT = {
    CaseStatus.ACCEPTED: "accepted / godkänt",
    CaseStatus.REJECTED: "REJECTED / underkänt",
    CaseStatus.DUPLICATE: "DUPLICATE / dubblett",
}


def finding_as_json(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "path": finding.path,
        "line": finding.line,
        "message_sv": finding.message_sv,
        "message_en": finding.message_en,
    }


def write_json(out: TextIO, report: FileReport) -> None:
    """One JSON object on one line per file (JSON Lines), in the contract's shape."""
    verdict = report.verdict
    dumps = json.dumps
    out.write(
        "{"
        f'"file": {dumps(mask_identities(report.name), ensure_ascii=False)}, "size": {report.size}, '
        f'"sha256": "{report.sha256}", "status": "{verdict.status.value}", '
        f'"summary": {dumps(_summary(report))}, '
        f'"violations": {dumps([finding_as_json(f) for f in verdict.findings], ensure_ascii=False)}, '
        '"cases": ['
    )
    for position, outcome in enumerate(verdict.cases):
        if position:
            out.write(", ")
        case = {
            "ref": mask_identities(outcome.reference),
            "index": outcome.index,
            "line": outcome.line,
            "status": outcome.status.value,
            "violations": [finding_as_json(f) for f in outcome.findings],
        }
        out.write(dumps(case, ensure_ascii=False))
    out.write("]}\n")


def _summary(report: FileReport) -> dict[str, Any]:
    verdict = report.verdict
    return {
        "cases": verdict.case_count,
        "accepted": verdict.count(CaseStatus.ACCEPTED),
        "rejected": verdict.count(CaseStatus.REJECTED),
        "duplicate": verdict.count(CaseStatus.DUPLICATE),
        "accepted_capital": f"{verdict.accepted_capital:.2f}",
    }


def _write_findings(out: TextIO, findings: Iterable[Finding], indent: str) -> None:
    for finding in findings:
        line = f"line {finding.line}" if finding.line else "line -"
        out.write(f"{indent}{finding.code} {finding.severity.value:<7} {line:<11} {finding.path}\n")
        out.write(f"{indent}    sv: {finding.message_sv}\n")
        out.write(f"{indent}    en: {finding.message_en}\n")


def write_text(out: TextIO, report: FileReport) -> None:
    verdict = report.verdict
    summary = _summary(report)
    findings_total = sum(verdict.tally.findings.values())
    out.write(
        f"{mask_identities(report.name)}: {_STATUS_TEXT[verdict.status]}: {summary['accepted']} of {summary['cases']} "
        f"cases accepted, {summary['accepted_capital']} SEK; {findings_total} finding(s); "
        f"sha256 {report.sha256[:12]}\n"
    )
    if verdict.duplicate_of:
        out.write(f"  earlier receipt / tidigare kvittens: {mask_identities(verdict.duplicate_of)}\n")
    if verdict.findings:
        out.write("  File / filen:\n")
        _write_findings(out, verdict.findings, "    ")
    if verdict.status is FileStatus.REJECTED and any(f.is_error for f in verdict.findings):
        out.write("  Every case is rejected with the file / alla ärenden underkänns med filen.\n")
    for outcome in verdict.cases:
        if not outcome.findings:
            continue
        reference = mask_identities(outcome.reference) if outcome.reference else "(no ArendeReferens)"
        # A JSON case has no line: its findings' JSON pointers say where it is.
        where = f", line {outcome.line}" if outcome.line else ""
        out.write(f"  Case / ärende {reference} (#{outcome.index}{where}): {_CASE_TEXT[outcome.status]}\n")
        _write_findings(out, outcome.findings, "    ")


def write_text_totals(out: TextIO, reports: list[FileReport]) -> None:
    counts = dict.fromkeys(FileStatus, 0)
    for report in reports:
        counts[report.verdict.status] += 1
    parts = [f"{count} {status.value}" for status, count in counts.items() if count]
    out.write(f"{len(reports)} file(s): {', '.join(parts)}\n")
