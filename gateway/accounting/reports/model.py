"""The reconciliation report: what came in, where it went, and what is not accounted for.

Pure data and arithmetic: every figure any rendering shows is computed here, once, so the page,
the CSV files, the JSON summary and the terminal summary cannot disagree.
:mod:`gateway.accounting.reports.build` fills a :class:`Report` from the store; the renderers
beside it only format. Amounts are whole öre (``int``) so sums are exact; days are calendar days
in the gateway's time zone.

The two identities an auditor checks, per row and in total::

    files in  = accepted + partially accepted + rejected + duplicate + quarantined + in progress
    cases in  = journaled + rejected + duplicate        (and the same for the capital, in öre)

A row where they do not hold, a gap in a client's journal sequence numbers, or any other
:class:`Discrepancy` makes the report *unbalanced*: it is shown first and `report` exits 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

#: The client of a file whose client could not be read (a broken header): still counted.
UNKNOWN_CLIENT = "(okänd)"
#: A journal's states in the order it passes through them; "withdrawn" holds cases taken out.
JOURNAL_STATES: tuple[str, ...] = ("open", "sealed", "approved", "delivered", "withdrawn")
#: How many rule codes make "the top rejection reasons".
TOP_REASONS = 10


@dataclass(frozen=True, slots=True)
class FileTally:
    """Files and cases received on one day, from one source, for one client."""

    day: date
    source: str
    client: str  # client id, or UNKNOWN_CLIENT
    files: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    quarantined: int = 0
    in_progress: int = 0
    cases: int = 0
    cases_journaled: int = 0
    cases_rejected: int = 0
    cases_duplicate: int = 0
    capital_in_ore: int = 0
    capital_journaled_ore: int = 0
    capital_rejected_ore: int = 0
    capital_duplicate_ore: int = 0

    @property
    def files_accounted(self) -> int:
        return (
            self.accepted
            + self.partially_accepted
            + self.rejected
            + self.duplicate
            + self.quarantined
            + self.in_progress
        )

    @property
    def cases_accounted(self) -> int:
        return self.cases_journaled + self.cases_rejected + self.cases_duplicate

    @property
    def capital_accounted_ore(self) -> int:
        return self.capital_journaled_ore + self.capital_rejected_ore + self.capital_duplicate_ore

    @property
    def balanced(self) -> bool:
        return (
            self.files == self.files_accounted
            and self.cases == self.cases_accounted
            and self.capital_in_ore == self.capital_accounted_ore
        )

    def plus(self, other: FileTally) -> FileTally:
        """The sum of two tallies (a total row keeps this row's day, source and client)."""
        return FileTally(
            self.day,
            self.source,
            self.client,
            *(getattr(self, name) + getattr(other, name) for name in TALLY_COUNTS),
        )


#: The numeric fields of a FileTally, in order.
TALLY_COUNTS: tuple[str, ...] = (
    "files",
    "accepted",
    "partially_accepted",
    "rejected",
    "duplicate",
    "quarantined",
    "in_progress",
    "cases",
    "cases_journaled",
    "cases_rejected",
    "cases_duplicate",
    "capital_in_ore",
    "capital_journaled_ore",
    "capital_rejected_ore",
    "capital_duplicate_ore",
)


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One journal sealed, approved or delivered in the period."""

    journal_id: str
    client: str
    sequence: int | None
    state: str  # open | sealed | approved | delivered
    case_count: int
    capital_ore: int
    sealed_at: datetime | None
    approved_at: datetime | None
    delivered_at: datetime | None
    file_name: str | None


@dataclass(frozen=True, slots=True)
class CapitalByState:
    """Where the capital of the cases journaled in the period is now (öre, with case counts)."""

    state: str  # open | sealed | approved | delivered | withdrawn
    cases: int
    capital_ore: int


@dataclass(frozen=True, slots=True)
class SequenceGap:
    client: str
    missing: tuple[int, ...]  # journal sequence numbers never used between the first and the last

    @property
    def message_sv(self) -> str:
        return f"Journalnummer saknas: {number_ranges(self.missing)}"

    @property
    def message_en(self) -> str:
        return f"Journal numbers missing: {number_ranges(self.missing)}"


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """Something not accounted for: shown first, makes `report` exit 1."""

    kind: str  # short stable key, e.g. "file-counts", "sequence-gap", "receipt-missing"
    subject: str  # the file, journal or row it is about (never a personal identity number)
    message_sv: str
    message_en: str


@dataclass(frozen=True, slots=True)
class RuleTally:
    """How often one rule code stopped cases or files of one client on one day."""

    day: date
    client: str
    code: str
    severity: str  # error | warning
    files: int  # files with at least one such finding
    findings: int  # findings in all


@dataclass(frozen=True, slots=True)
class RuleFigures:
    """One rule code over the whole period: a row of the findings-per-rule table."""

    code: str
    severity: str  # "error" if it stopped anything anywhere in the period, else "warning"
    findings: int
    files: int
    findings_per_day: Mapping[date, int]  # only the days with such findings
    files_per_day: Mapping[date, int]


@dataclass(frozen=True, slots=True)
class RejectionReason:
    """One rule code among the reasons files and cases were rejected (error findings only:
    warnings do not reject)."""

    code: str
    findings: int
    #: The error findings per client, for every client with an error row for this code.
    by_client: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ClientFigures:
    """One client over the whole period: what came in (summed over days and sources) and the
    journals delivered in the period."""

    client: str
    tally: FileTally
    journals_delivered: int
    delivered_capital_ore: int


@dataclass(frozen=True, slots=True)
class CapitalShare:
    """Where the journaled capital is now: one state (or the total) with its share of the whole."""

    state: str  # one of JOURNAL_STATES, another state the store knows, or "total"
    cases: int
    capital_ore: int
    share_percent: float | None  # of the capital in all states; None when there is none


@dataclass(frozen=True, slots=True)
class KeyFigures:
    """The figures the report leads with (the page's key-figure cards and its status box)."""

    files: int
    files_accepted: int
    cases: int
    cases_journaled: int
    capital_in_ore: int
    capital_journaled_ore: int
    capital_journaled_percent: float | None  # of the capital in; None when none came in
    delivered_capital_ore: int  # by the journals delivered in the period
    journals_sealed: int  # journals sealed in the period, whatever their state now
    journals_approved: int  # approved in the period
    journals_delivered: int  # delivered in the period
    discrepancies: int
    sequence_gaps: int
    waiting_for_a_person: int
    cases_waiting_for_review: int


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Seconds from one event to another, over the period."""

    name: str  # "drop-to-receipt" | "seal-to-delivery"
    count: int
    median_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None


@dataclass(frozen=True, slots=True)
class AttentionCase:
    """A case waiting for a person (a journal held for manual review): shown without its address
    when the debtor has a protected identity (M16), and always with the identity masked."""

    reference: str
    client: str
    journal_id: str
    masked_identity: str
    capital_ore: int
    protected: bool
    address: str | None  # None when protected


@dataclass(frozen=True, slots=True)
class FileLine:
    """One file of the period, as an ERP's export log can be matched against it."""

    name: str  # masked where it holds an identity number
    source: str
    received_at: datetime
    sha256: str
    status: str  # accepted | partially-accepted | rejected | duplicate | quarantined | in-progress
    cases_accepted: int
    cases_rejected: int  # rejected and duplicate
    receipt: str | None  # the receipt's file name


class FileLines(Protocol):
    """The period's files, oldest first: readable more than once, held on disk for a long period."""

    def __iter__(self) -> Iterator[FileLine]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ReportStamp:
    """What the report says about its own making (as receipts and journals do)."""

    generated_at: datetime
    gateway_version: str
    ruleset_version: str
    config_sha256: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Report:
    period_from: date
    period_to: date
    client: str | None  # the --client filter, or None for all
    stamp: ReportStamp
    tallies: Sequence[FileTally]  # sorted by day, source, client
    journals: Sequence[JournalLine]
    capital_by_state: Sequence[CapitalByState]
    gaps: Sequence[SequenceGap]
    discrepancies: Sequence[Discrepancy]
    rules: Sequence[RuleTally]
    latencies: Sequence[LatencySummary]
    attention: Sequence[AttentionCase] = field(default_factory=tuple)
    attention_total: int = 0  # cases waiting for a person in all; the first ones are listed
    #: The SHA-256 of the newest receipt when the report was made: kept outside the gateway, it
    #: lets `audit verify --anchor` prove later that no receipt up to it was rewritten.
    chain_head: str = ""
    #: Every file of the period (CSV: all of them; the page: the first ones).
    files: FileLines = field(default_factory=tuple)
    #: What waits for a person (a quarantined file no one has dealt with, a delivery that failed
    #: for good): accounted for, but not done; the headline is not green while anything waits.
    waiting: Sequence[Discrepancy] = field(default_factory=tuple)

    @property
    def total(self) -> FileTally:
        total = FileTally(self.period_from, "", "")
        for tally in self.tallies:
            total = total.plus(tally)
        return total

    def in_period(self, moment: datetime | None) -> bool:
        """Whether a moment falls on a day of the period (in the report's time zone)."""
        if moment is None:
            return False
        return self.period_from <= moment.astimezone(ZoneInfo(self.stamp.timezone)).date() <= self.period_to

    @property
    def delivered(self) -> list[JournalLine]:
        """The journals delivered in the period."""
        return [journal for journal in self.journals if self.in_period(journal.delivered_at)]

    @property
    def delivered_capital_ore(self) -> int:
        """The capital of the journals delivered in the period (the SEK control total out)."""
        return sum(journal.capital_ore for journal in self.delivered)

    @property
    def balanced(self) -> bool:
        return not self.discrepancies and not self.gaps

    @property
    def settled(self) -> bool:
        """Accounted for and nothing waiting for a person: what `report` exits 0 on."""
        return self.balanced and not self.waiting

    @property
    def empty(self) -> bool:
        """No file arrived in the period (nothing to account for is not "all accounted for")."""
        return self.total.files == 0

    def journals_in(self, state: str) -> list[JournalLine]:
        return [journal for journal in self.journals if journal.state == state]

    @property
    def key_figures(self) -> KeyFigures:
        total = self.total
        return KeyFigures(
            files=total.files,
            files_accepted=total.accepted,
            cases=total.cases,
            cases_journaled=total.cases_journaled,
            capital_in_ore=total.capital_in_ore,
            capital_journaled_ore=total.capital_journaled_ore,
            capital_journaled_percent=percent(total.capital_journaled_ore, total.capital_in_ore),
            delivered_capital_ore=self.delivered_capital_ore,
            journals_sealed=sum(1 for journal in self.journals if self.in_period(journal.sealed_at)),
            journals_approved=sum(1 for journal in self.journals if self.in_period(journal.approved_at)),
            journals_delivered=len(self.delivered),
            discrepancies=len(self.discrepancies),
            sequence_gaps=len(self.gaps),
            waiting_for_a_person=len(self.waiting),
            cases_waiting_for_review=self.attention_total,
        )

    @property
    def per_day(self) -> dict[date, FileTally]:
        """The tallies summed over sources and clients, for the days with files."""
        return _sums(self.tallies, lambda tally: tally.day, lambda day: FileTally(day, "", ""))

    @property
    def per_client(self) -> list[ClientFigures]:
        """Every client with a file in the period or a journal delivered in it, by client id."""
        tallies = _sums(
            self.tallies, lambda tally: tally.client, lambda client: FileTally(self.period_from, "", client)
        )
        delivered: dict[str, list[JournalLine]] = defaultdict(list)
        for journal in self.delivered:
            delivered[journal.client].append(journal)
        return [
            ClientFigures(
                client,
                tallies.get(client, FileTally(self.period_from, "", client)),
                len(delivered[client]),
                sum(journal.capital_ore for journal in delivered[client]),
            )
            for client in sorted(set(tallies) | set(delivered))
        ]

    @property
    def rejection_reasons(self) -> list[RejectionReason]:
        """Every rule code with error findings, the most frequent first (then by code)."""
        by_code: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for rule in self.rules:
            if rule.severity == "error":
                by_code[rule.code][rule.client] += rule.findings
        reasons = [
            RejectionReason(
                code,
                sum(clients.values()),
                dict(sorted(clients.items(), key=lambda item: (-item[1], item[0]))),
            )
            for code, clients in by_code.items()
        ]
        return sorted(reasons, key=lambda reason: (-reason.findings, reason.code))

    @property
    def top_rejection_reasons(self) -> list[RejectionReason]:
        return self.rejection_reasons[:TOP_REASONS]

    @property
    def rejection_clients(self) -> list[str]:
        """The clients with error findings, the most first (then by id)."""
        findings: dict[str, int] = defaultdict(int)
        for rule in self.rules:
            if rule.severity == "error":
                findings[rule.client] += rule.findings
        return sorted(findings, key=lambda client: (-findings[client], client))

    @property
    def rule_days(self) -> list[date]:
        """The days with findings of any rule."""
        return sorted({rule.day for rule in self.rules})

    @property
    def rules_by_code(self) -> list[RuleFigures]:
        """Every rule code with findings (errors and warnings), the most frequent first."""
        findings: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
        files: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
        severity: dict[str, str] = {}
        for rule in self.rules:
            findings[rule.code][rule.day] += rule.findings
            files[rule.code][rule.day] += rule.files
            # A code is an error if it ever stopped anything: that is what the reader must see.
            if severity.get(rule.code) != "error":
                severity[rule.code] = rule.severity
        figures = [
            RuleFigures(
                code,
                severity[code],
                sum(findings[code].values()),
                sum(files[code].values()),
                dict(findings[code]),
                dict(files[code]),
            )
            for code in findings
        ]
        return sorted(figures, key=lambda figure: (-figure.findings, figure.code))

    @property
    def capital_now(self) -> list[CapitalShare]:
        """Where the capital journaled in the period is now, in :data:`JOURNAL_STATES` order
        (a state the store knows and this list does not comes last, by name)."""
        whole = sum(item.capital_ore for item in self.capital_by_state)
        ordered = sorted(
            self.capital_by_state,
            key=lambda item: (
                JOURNAL_STATES.index(item.state) if item.state in JOURNAL_STATES else len(JOURNAL_STATES),
                item.state,
            ),
        )
        return [
            CapitalShare(item.state, item.cases, item.capital_ore, percent(item.capital_ore, whole))
            for item in ordered
        ]

    @property
    def capital_now_total(self) -> CapitalShare:
        whole = sum(item.capital_ore for item in self.capital_by_state)
        return CapitalShare(
            "total", sum(item.cases for item in self.capital_by_state), whole, percent(whole, whole)
        )

    @property
    def journal_cases(self) -> int:
        """The cases in the journals of the period (every journal listed)."""
        return sum(journal.case_count for journal in self.journals)

    @property
    def journal_capital_ore(self) -> int:
        return sum(journal.capital_ore for journal in self.journals)


_Key = TypeVar("_Key")


def _sums(
    tallies: Iterable[FileTally], key: Callable[[FileTally], _Key], empty: Callable[[_Key], FileTally]
) -> dict[_Key, FileTally]:
    sums: dict[_Key, FileTally] = {}
    for tally in tallies:
        k = key(tally)
        sums[k] = sums.get(k, empty(k)).plus(tally)
    return sums


def percent(part: int, whole: int) -> float | None:
    """``part`` as a percentage of ``whole``; None when the whole is 0 (no share of nothing)."""
    return part * 100 / whole if whole else None


def number_ranges(numbers: Iterable[int]) -> str:
    """``3, 5–8, 11``: a long run of missing journal numbers stays one line."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}–{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


def format_ore(ore: int) -> str:
    """Öre as kronor with a decimal comma and thin-space thousands, e.g. ``12 345,60``."""
    sign = "-" if ore < 0 else ""
    kronor, rest = divmod(abs(ore), 100)
    return f"{sign}{kronor:,}".replace(",", "\u202f") + f",{rest:02d}"


def find_gaps(client: str, sequences: Sequence[int]) -> SequenceGap | None:
    """The numbers missing from 1 up to the highest used (journal numbers start at 1)."""
    used = set(sequences)
    if not used:
        return None
    missing = tuple(n for n in range(1, max(used) + 1) if n not in used)
    return SequenceGap(client, missing) if missing else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    # round() first: 0.95 * 20 is 18.999999999999996 in binary floating point.
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise_latency(name: str, seconds: Sequence[float]) -> LatencySummary:
    return LatencySummary(
        name,
        len(seconds),
        percentile(seconds, 0.5),
        percentile(seconds, 0.95),
        max(seconds) if seconds else None,
    )
