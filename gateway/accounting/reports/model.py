"""The reconciliation report: what came in, where it went, and what is not accounted for.

Pure data and arithmetic. :mod:`gateway.accounting.reports.build` fills a :class:`Report` from the store;
:mod:`gateway.accounting.reports.html` and :mod:`gateway.accounting.reports.csv` write it. Amounts are
whole öre (``int``) so sums are exact; days are calendar days in the gateway's time zone.

The two identities an auditor checks, per row and in total::

    files in  = accepted + partially accepted + rejected + duplicate + quarantined + in progress
    cases in  = journaled + rejected + duplicate        (and the same for the capital, in öre)

A row where they do not hold, a gap in a client's journal sequence numbers, or any other
:class:`Discrepancy` makes the report *unbalanced*: it is shown first and `report` exits 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

#: The client of a file whose client could not be read (a broken header): still counted.
UNKNOWN_CLIENT = "(okänd)"


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
