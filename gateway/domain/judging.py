"""Judging a file: run the rules over each case as it streams past, then over the file as a whole.

A :class:`FileJudge` is fed one case at a time (with the schema findings the reader attached) and
keeps only a small :class:`CaseOutcome` per case, so memory stays proportional to the number of
verdicts, never to the file. File-level rules run at the end; a file-level error rejects every case.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import normalize_orgnr
from gateway.domain.model import Case, FileHeader, FileSummary, FileTotals
from gateway.domain.rules import FileFacts, FileState, RuleContext, Scope, rules_in


class CaseStatus(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"

    @property
    def swedish(self) -> str:
        return {"accepted": "Godkand", "rejected": "Underkand", "duplicate": "Dubblett"}[self.value]


class FileStatus(enum.Enum):
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially-accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"

    @property
    def swedish(self) -> str:
        return {
            "accepted": "Godkand",
            "partially-accepted": "DelvisGodkand",
            "rejected": "Underkand",
            "duplicate": "Dubblett",
        }[self.value]


class CaseErrorPolicy(enum.Enum):
    """``[gateway].on_case_error``: what a case-level error does to the rest of the file."""

    REJECT_CASE = "reject-case"
    REJECT_FILE = "reject-file"


@dataclass(slots=True)
class CaseOutcome:
    """The verdict on one case: all a receipt needs, without the case itself."""

    index: int
    reference: str
    line: int | None
    status: CaseStatus
    findings: tuple[Finding, ...]  # the shared empty tuple for most cases: a verdict per case adds up
    capital: Decimal
    claim_count: int
    protected: bool = False  # M16: held for manual review


@dataclass(slots=True)
class FileVerdict:
    status: FileStatus
    findings: list[Finding]  # file-level
    cases: list[CaseOutcome]
    header: FileHeader
    summary: FileSummary | None
    totals: FileTotals
    duplicate_of: str | None = None  # the earlier receipt, for status duplicate

    @property
    def accepted(self) -> list[CaseOutcome]:
        return [case for case in self.cases if case.status is CaseStatus.ACCEPTED]

    @property
    def accepted_capital(self) -> Decimal:
        return sum((case.capital for case in self.accepted), Decimal(0))

    def count(self, status: CaseStatus) -> int:
        return sum(1 for case in self.cases if case.status is status)


def _sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.line or 0, f.path, f.code))


_NO_FINDINGS: tuple[Finding, ...] = ()
_ZERO = Decimal(0)


#: Separates fields in a fingerprint: a control character no XML text can hold.
_FIELD = "\x1f"
#: Bump when the fingerprint's recipe changes: fingerprints are stored and compared for years.
_FINGERPRINT_VERSION = "fp1"


def _value(value: object) -> str:
    return "\x00" if value is None else str(value)


def case_fingerprint(case: Case) -> str:
    """SHA-256 of a case's content, independent of layout, position and line numbers (A04/A05).

    Written out field by field (not via reflection): it runs for every case of every file, and
    its recipe must stay stable for as long as fingerprints are kept.
    """
    parts = [
        _FINGERPRINT_VERSION,
        case.reference,
        _value(case.customer_number),
        _value(case.claim_type),
        _value(case.costs),
    ]
    for debtor in case.debtors:
        person = debtor.person
        address = debtor.address
        parts += ["M", debtor.kind, debtor.identity, _value(debtor.company_name), str(debtor.protected)]
        parts += ["P"] if person is None else [
            "P", _value(person.given_names), _value(person.preferred_name), _value(person.surname), _value(person.firm)
        ]  # fmt: skip
        parts += ["A"] if address is None else [
            "A", *address.street_lines, "|", _value(address.care_of), _value(address.postal_code),
            _value(address.town), address.country,
        ]  # fmt: skip
        parts += [_value(debtor.phone), _value(debtor.email)]
    for claim in case.claims:
        capital, remaining, interest, decision = (
            claim.capital,
            claim.remaining,
            claim.interest,
            claim.decision,
        )
        parts += [
            "F", _value(claim.invoice_number), _value(claim.registry_number), _value(claim.basis),
            _value(claim.invoice_date), _value(claim.due_date),
            _value(capital and capital.value), _value(capital and capital.currency),
            _value(remaining and remaining.value), _value(remaining and remaining.currency),
            _value(interest and interest.kind), _value(interest and interest.percent),
            _value(interest and interest.from_date),
            _value(decision and decision.decision_date), _value(decision and decision.final_date),
            _value(claim.debt_group),
        ]  # fmt: skip
    for attachment in case.attachments:
        parts += ["B", attachment.filename, attachment.sha256.lower(), _value(attachment.mimetype)]
    return hashlib.sha256(_FIELD.join(parts).encode("utf-8")).hexdigest()


@dataclass
class FileJudge:
    context: RuleContext
    policy: CaseErrorPolicy = CaseErrorPolicy.REJECT_CASE
    fingerprint_cases: bool = False
    state: FileState = field(default_factory=lambda: FileState(None))
    totals: FileTotals = field(default_factory=FileTotals)
    outcomes: list[CaseOutcome] = field(default_factory=list)
    capital_unknown: bool = False

    def __post_init__(self) -> None:
        self._case_checks = [(r, r.check) for r in rules_in(Scope.CASE) if r.check is not None]
        self._file_checks = [(r, r.check) for r in rules_in(Scope.FILE) if r.check is not None]

    def begin(self, header: FileHeader) -> None:
        """Called once the file's header and client are known, before the first case."""
        if header.client_orgnr:
            self.state.client_orgnr = normalize_orgnr(header.client_orgnr)

    def judge_case(self, case: Case, schema_findings: list[Finding]) -> CaseOutcome:
        if self.fingerprint_cases:
            case.content_sha256 = case_fingerprint(case)
        findings = list(schema_findings)
        context, state = self.context, self.state
        for registered, check in self._case_checks:
            findings.extend(check(registered, case, context, state))

        capital = _ZERO
        for claim in case.claims:
            if claim.capital is not None and claim.capital.value is not None:
                # Reuse the claim's own Decimal for the usual one-claim case: one object less per case.
                capital = claim.capital.value if capital is _ZERO else capital + claim.capital.value
            else:
                self.capital_unknown = True
        self.totals.case_count += 1
        self.totals.claim_count += len(case.claims)
        self.totals.capital_sum += capital

        repeated_in_file = case.reference in state.references
        status = CaseStatus.ACCEPTED
        if any(f.severity is Severity.ERROR for f in findings):
            status = CaseStatus.REJECTED
            # A04 on a reference first seen in this file can only be the "already accepted with
            # the same content" half: the case is a duplicate, not an error to fix.
            if not repeated_in_file and any(f.code == "A04" for f in findings):
                status = CaseStatus.DUPLICATE
        if not repeated_in_file:
            state.references[case.reference] = case.index
        if status is CaseStatus.ACCEPTED:
            for claim in case.claims:
                if claim.reference:
                    state.claim_references.setdefault(claim.reference, case.reference)

        outcome = CaseOutcome(
            index=case.index,
            reference=case.reference,
            line=case.line,
            status=status,
            findings=tuple(_sort_findings(findings)) if findings else _NO_FINDINGS,
            capital=capital,
            claim_count=len(case.claims),
            protected=any(debtor.protected for debtor in case.debtors),
        )
        self.outcomes.append(outcome)
        return outcome

    def finish(
        self,
        header: FileHeader,
        summary: FileSummary | None,
        reader_findings: list[Finding],
    ) -> FileVerdict:
        """Run the file rules and settle every case's final status."""
        facts = FileFacts(header, summary, self.totals, self.capital_unknown)
        findings = list(reader_findings)
        readable = not any(f.code in ("F01", "F02") for f in reader_findings)
        if readable:
            for registered, check in self._file_checks:
                findings.extend(check(registered, facts, self.context))
        findings = _sort_findings(findings)

        duplicate_of = None
        if any(f.code == "F04" for f in findings):
            duplicate_of = self.context.history.receipt_for_bytes(self.context.file_sha256)
            if duplicate_of is None and header.file_id and self.state.client_orgnr:
                duplicate_of = self.context.history.receipt_for_file_id(
                    self.state.client_orgnr, header.file_id
                )
        if duplicate_of is not None:
            # The file was received before, so its Lopnummer repeats by definition: an F07 on
            # top of F04 would only be noise on the receipt and in the statistics.
            findings = [finding for finding in findings if finding.code != "F07"]
        status = self._settle(findings, duplicate=duplicate_of is not None)
        return FileVerdict(status, findings, self.outcomes, header, summary, self.totals, duplicate_of)

    def _settle(self, file_findings: list[Finding], *, duplicate: bool) -> FileStatus:
        outcomes = self.outcomes
        file_error = any(f.severity is Severity.ERROR for f in file_findings)
        case_error = any(o.status is CaseStatus.REJECTED for o in outcomes)
        if duplicate:
            for outcome in outcomes:
                outcome.status = CaseStatus.DUPLICATE
            return FileStatus.DUPLICATE
        if file_error or (case_error and self.policy is CaseErrorPolicy.REJECT_FILE):
            for outcome in outcomes:
                if outcome.status is CaseStatus.ACCEPTED:
                    outcome.status = CaseStatus.REJECTED
            return FileStatus.REJECTED
        accepted = sum(1 for o in outcomes if o.status is CaseStatus.ACCEPTED)
        if outcomes and accepted == len(outcomes):
            return FileStatus.ACCEPTED
        if accepted:
            return FileStatus.PARTIALLY_ACCEPTED
        if outcomes and all(o.status is CaseStatus.DUPLICATE for o in outcomes):
            return FileStatus.DUPLICATE
        return FileStatus.REJECTED
