"""Judging a file: run the rules over each case as it streams past, then over the file as a whole.

A :class:`FileJudge` is fed one case at a time (with the schema findings the reader attached),
hands each case's small :class:`CaseOutcome` to an :class:`OutcomeLog` and keeps only counters.
File-level rules run at the end; a file-level error rejects every case. That final say is not
written back into every outcome: :class:`CaseOutcomes` applies it as the outcomes are read again
(for the receipt, the JSON). So with an outcome log on disk (the service layer's), judging a file
of a million cases holds a few counters, not a million verdicts.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import normalize_orgnr
from gateway.domain.model import Case, FileHeader, FileSummary, FileTotals
from gateway.domain.rules import FileFacts, FileState, RuleContext, Scope, rules_in


class CaseStatus(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"

    # Members are singletons: hashing by identity (in C) instead of Enum's hash of the name (in
    # Python) keeps the per-case tallies cheap.
    __hash__ = object.__hash__

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


class OutcomeLog(Protocol):
    """Where a judge puts each case's outcome, in order: a list, or a spool on disk."""

    def append(self, outcome: CaseOutcome, /) -> None: ...

    def __iter__(self) -> Iterator[CaseOutcome]: ...

    def __len__(self) -> int: ...


class Settlement(enum.Enum):
    """The file's final say over its cases, applied as they are read back."""

    KEEP = "keep"
    ALL_DUPLICATE = "all-duplicate"  # the file was received before
    ACCEPTED_REJECTED = "accepted-rejected"  # a file-level error (or reject-file) rejects them

    def apply(self, status: CaseStatus) -> CaseStatus:
        if self is Settlement.ALL_DUPLICATE:
            return CaseStatus.DUPLICATE
        if self is Settlement.ACCEPTED_REJECTED and status is CaseStatus.ACCEPTED:
            return CaseStatus.REJECTED
        return status


class CaseOutcomes:
    """A verdict's cases in file order, each with the file's final say applied.

    Iterable more than once (the receipt and the JSON output both read it) and sized; it holds
    no outcome itself when its log is on disk.
    """

    def __init__(self, log: OutcomeLog | None = None, settlement: Settlement = Settlement.KEEP) -> None:
        empty: list[CaseOutcome] = []
        self._log: OutcomeLog = log if log is not None else empty
        self.settlement = settlement

    def __iter__(self) -> Iterator[CaseOutcome]:
        settle = self.settlement.apply
        for outcome in self._log:
            final = settle(outcome.status)
            yield outcome if final is outcome.status else dataclasses.replace(outcome, status=final)

    def __len__(self) -> int:
        return len(self._log)

    def __bool__(self) -> bool:
        return len(self._log) > 0


@dataclass(frozen=True, slots=True)
class CaseTally:
    """Cases, capital and öre by final status, and findings per (code, severity) of one file."""

    counts: dict[CaseStatus, int] = field(default_factory=lambda: dict.fromkeys(CaseStatus, 0))
    capital: dict[CaseStatus, Decimal] = field(default_factory=lambda: dict.fromkeys(CaseStatus, Decimal(0)))
    ore: dict[CaseStatus, int] = field(default_factory=lambda: dict.fromkeys(CaseStatus, 0))
    findings: dict[tuple[str, str], int] = field(default_factory=dict)

    def settled(self, settlement: Settlement, file_findings: Iterable[Finding]) -> CaseTally:
        counts = dict.fromkeys(CaseStatus, 0)
        capital = dict.fromkeys(CaseStatus, Decimal(0))
        ore = dict.fromkeys(CaseStatus, 0)
        for status in CaseStatus:
            final = settlement.apply(status)
            counts[final] += self.counts[status]
            capital[final] += self.capital[status]
            ore[final] += self.ore[status]
        findings = Counter(self.findings)
        findings.update((f.code, f.severity.value) for f in file_findings)
        return CaseTally(counts, capital, ore, dict(findings))


@dataclass(slots=True)
class FileVerdict:
    status: FileStatus
    findings: list[Finding]  # file-level
    cases: CaseOutcomes
    header: FileHeader
    summary: FileSummary | None
    totals: FileTotals
    duplicate_of: str | None = None  # the earlier receipt, for status duplicate
    tally: CaseTally = field(default_factory=CaseTally)

    @classmethod
    def of_file(cls, status: FileStatus, findings: list[Finding], header: FileHeader) -> FileVerdict:
        """A verdict on a file no case was read from (quarantined, a name that is not UTF-8)."""
        tally = CaseTally().settled(Settlement.KEEP, findings)
        return cls(status, findings, CaseOutcomes(), header, None, FileTotals(), tally=tally)

    @property
    def case_count(self) -> int:
        return len(self.cases)

    @property
    def accepted_count(self) -> int:
        return self.tally.counts[CaseStatus.ACCEPTED]

    @property
    def accepted_capital(self) -> Decimal:
        return self.tally.capital[CaseStatus.ACCEPTED]

    def count(self, status: CaseStatus) -> int:
        return self.tally.counts[status]


#: The largest amount in öre a store holds (a signed 64-bit integer); the schema allows far less.
MAX_ORE = 2**63 - 1
#: Reader codes that mean the file could not be read as a case file at all (XML, package, JSON,
#: CSV): the file rules (F04-F07) would only add noise about parts that were never read.
UNREADABLE = frozenset({"F01", "F02", "F09", "F10", "F11", "F12"})


def ore_of(kronor: Decimal) -> int:
    """Exact öre. An amount no valid case can have (a fraction of an öre, more than a store can
    hold, not a number) counts as 0: its case is rejected by the schema (S01) anyway, and a
    rejected case must get its receipt, not crash the commit.

    >>> ore_of(Decimal("4800.50")), ore_of(Decimal("0.001")), ore_of(Decimal("1e30"))
    (480050, 0, 0)
    """
    try:
        ore = kronor * 100
        whole = int(ore)  # ValueError for NaN, OverflowError for an infinity
    except (InvalidOperation, ValueError, OverflowError):
        return 0
    return whole if whole == ore and -MAX_ORE <= whole <= MAX_ORE else 0


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


def _new_log() -> OutcomeLog:
    outcomes: list[CaseOutcome] = []
    return outcomes


@dataclass
class FileJudge:
    context: RuleContext
    policy: CaseErrorPolicy = CaseErrorPolicy.REJECT_CASE
    fingerprint_cases: bool = False
    state: FileState = field(default_factory=lambda: FileState(None))
    totals: FileTotals = field(default_factory=FileTotals)
    #: Where each case's outcome goes; a list unless the caller gives a spool.
    outcomes: OutcomeLog = field(default_factory=lambda: _new_log())
    capital_unknown: bool = False
    #: Counters by the status each case had before the file's final say.
    _tally: CaseTally = field(default_factory=CaseTally)

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

        # One look-up that also records the first case with this reference.
        repeated_in_file = state.references.setdefault(case.reference, case.index) != case.index
        status = CaseStatus.ACCEPTED
        if any(f.severity is Severity.ERROR for f in findings):
            status = CaseStatus.REJECTED
            # A04 on a reference first seen in this file can only be the "already accepted with
            # the same content" half: the case is a duplicate, not an error to fix.
            if not repeated_in_file and any(f.code == "A04" for f in findings):
                status = CaseStatus.DUPLICATE
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
        tally = self._tally
        tally.counts[status] += 1
        tally.capital[status] += capital
        tally.ore[status] += ore_of(capital)
        for finding in findings:
            key = (finding.code, finding.severity.value)
            tally.findings[key] = tally.findings.get(key, 0) + 1
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
        readable = not any(f.code in UNREADABLE for f in reader_findings)
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
        status, settlement = self._settle(findings, duplicate=duplicate_of is not None)
        return FileVerdict(
            status,
            findings,
            CaseOutcomes(self.outcomes, settlement),
            header,
            summary,
            self.totals,
            duplicate_of,
            self._tally.settled(settlement, findings),
        )

    def _settle(self, file_findings: list[Finding], *, duplicate: bool) -> tuple[FileStatus, Settlement]:
        counts = self._tally.counts
        total = sum(counts.values())
        file_error = any(f.severity is Severity.ERROR for f in file_findings)
        case_error = counts[CaseStatus.REJECTED] > 0
        if duplicate:
            return FileStatus.DUPLICATE, Settlement.ALL_DUPLICATE
        if file_error or (case_error and self.policy is CaseErrorPolicy.REJECT_FILE):
            return FileStatus.REJECTED, Settlement.ACCEPTED_REJECTED
        accepted = counts[CaseStatus.ACCEPTED]
        if total and accepted == total:
            return FileStatus.ACCEPTED, Settlement.KEEP
        if accepted:
            return FileStatus.PARTIALLY_ACCEPTED, Settlement.KEEP
        if total and counts[CaseStatus.DUPLICATE] == total:
            return FileStatus.DUPLICATE, Settlement.KEEP
        return FileStatus.REJECTED, Settlement.KEEP
