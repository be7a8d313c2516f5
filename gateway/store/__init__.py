"""The store: the durable state machine of files, cases and journals.

The records a store hands out and takes are here; what each part of the gateway may ask of a store
is in :mod:`gateway.store.roles` (:class:`~gateway.store.roles.Store` is every role at once); the
embedded implementation is :mod:`gateway.store.sqlite`. A PostgreSQL store for several nodes
implements the same roles and passes the same contract tests. Every method is one transaction,
so a crash leaves the store either before or after a step, never in between.

A file goes ``claimed`` (picked up, attempts counted before any work) -> ``judged`` (its verdict,
accepted cases and receipt recorded in one transaction) -> ``done`` (original moved); or from
``claimed`` to ``abandoned`` when its producer changed or deleted it before its verdict. A journal
goes ``open`` -> ``sealed`` (numbered; waits for approval when reviewed by hand) -> ``approved``
-> ``delivered``.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.journal import JournalCase


class FileState(enum.Enum):
    CLAIMED = "claimed"
    JUDGED = "judged"
    DONE = "done"
    #: Changed or deleted in its source before its verdict: never received (no receipt); a new
    #: version is claimed on its own. Kept, so that its id is never used again.
    ABANDONED = "abandoned"


class JournalState(enum.Enum):
    OPEN = "open"
    SEALED = "sealed"  # numbered; waiting for a person's approval
    APPROVED = "approved"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: int
    source: str
    name: str
    path: str  # where the original was when it was claimed
    sha256: str
    size: int
    state: FileState
    attempts: int
    received_at: datetime
    status: str | None  # accepted | partially-accepted | rejected | duplicate | quarantined
    receipt_path: str | None
    receipt_sha256: str | None
    final_path: str | None
    last_error: str | None
    previous_receipt_sha256: str | None = None
    written_at: datetime | None = None  # the file's modification time when claimed
    judged_at: datetime | None = None
    finished_at: datetime | None = None
    client_id: str | None = None
    #: How the source showed the file when it was claimed (see Candidate.identity).
    source_identity: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """One received file as the reconciliation report counts it."""

    id: int
    source: str
    name: str
    client_id: str | None
    state: FileState
    status: str | None
    received_at: datetime
    written_at: datetime | None
    finished_at: datetime | None
    case_count: int
    accepted_count: int
    rejected_count: int
    duplicate_count: int
    capital_in_ore: int
    accepted_capital_ore: int
    rejected_capital_ore: int
    duplicate_capital_ore: int
    receipt_path: str | None
    final_path: str | None
    client_orgnr: str | None = None
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class CaseMismatch:
    """A file whose journaled cases in the store disagree with what its verdict recorded."""

    file_name: str
    accepted_count: int
    stored_cases: int
    accepted_capital_ore: int
    stored_capital_ore: int


@dataclass(frozen=True, slots=True)
class AcceptedCase:
    """An accepted case as the pipeline hands it to the store."""

    position: int  # its index in the file
    client_id: str
    client_orgnr: str
    reference: str
    fingerprint: str
    claim_references: tuple[str, ...]
    #: The JournalCase as canonical JSON (JournalCase.to_json) and what the store indexes of it:
    #: computed once when the case is accepted, stored as they are.
    payload: str
    payload_sha256: str
    capital_ore: int
    claim_count: int
    protected: bool

    @classmethod
    def of(
        cls,
        case: JournalCase,
        *,
        position: int,
        client_id: str,
        client_orgnr: str,
        fingerprint: str,
        claim_references: tuple[str, ...],
    ) -> AcceptedCase:
        payload = case.to_json()
        return cls(
            position=position,
            client_id=client_id,
            client_orgnr=client_orgnr,
            reference=case.reference,
            fingerprint=fingerprint,
            claim_references=claim_references,
            payload=payload,
            payload_sha256=hashlib.sha256(payload.encode("utf-8")).hexdigest(),
            capital_ore=case.capital_ore,
            claim_count=len(case.claims),
            protected=case.protected,
        )


@dataclass(frozen=True, slots=True)
class Judgement:
    """Everything one file's verdict commits at once."""

    file_id: int
    status: str
    client_orgnr: str | None
    file_id_in_file: str | None  # Filhuvud/FilId
    sequence: int | None  # Filhuvud/Lopnummer
    case_count: int
    accepted: Iterable[AcceptedCase]  # consumed once, inside the transaction
    accepted_capital_ore: int
    receipt_id: str
    receipt_path: str  # final path; the receipt is renamed there after the commit
    receipt_sha256: str
    previous_receipt_sha256: str
    final_path: str  # where the original goes after the receipt
    judged_at: datetime
    #: The open journal the receipt names for the accepted cases; the commit fails if it was
    #: sealed in between (by `journal seal` in another process), and the file is judged again.
    expected_journal: str | None
    # For the reconciliation report: every case and krona of the file by outcome, and the
    # findings per (rule code, severity). Accepted = case_count - rejected - duplicate.
    client_id: str | None = None
    rejected_count: int = 0
    duplicate_count: int = 0
    capital_in_ore: int = 0
    rejected_capital_ore: int = 0
    duplicate_capital_ore: int = 0
    finding_counts: tuple[tuple[str, str, int], ...] = ()
    #: The receipt's place in the receipt chain (the chain's length after the commit).
    chain_position: int = 0
    #: The cases not journaled: (position, ArendeReferens, status); consumed once in the commit.
    unjournaled: Iterable[tuple[int, str, str]] = ()


@dataclass(frozen=True, slots=True)
class JournalRecord:
    id: int
    journal_id: str  # stable id, known from the first case: "<client id>-j<number>"
    client_id: str
    sequence: int | None
    state: JournalState
    needs_review: bool
    case_count: int
    capital_ore: int
    opened_at: datetime
    sealed_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    built_at: datetime | None
    file_name: str | None
    sha256: str | None
    size: int | None
    delivered_at: datetime | None
    attempts: int
    last_error: str | None
    receipt_sha256: str | None = None  # the journal receipt's, once delivered
    delivered_by: str | None = None  # the process that delivered it: "<host>:<pid>"


def node_holder(node: str) -> str:
    """Who a daemon is while it runs as ``node``: "<node>:<pid>:<token>". The token tells this run
    from an earlier one of the same node that had the same pid (in a container, always 1). A
    command that is no node is "<host>:<pid>"."""
    return f"{node}:{os.getpid()}:{secrets.token_hex(4)}"


def file_lease_name(source: str, path: str) -> str:
    """The lease a process holds while a file of a source is in its hands (path as recorded)."""
    return f"file:{source}:{path}"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A daemon registered on the store: its name, the process running as it ("<node>:<pid>:<token>")
    and its heartbeat lease. Alive while ``lease_until`` is ahead and it has not stopped."""

    name: str
    holder: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    lease_until: datetime
    stopped_at: datetime | None

    def alive(self, now: datetime) -> bool:
        return self.stopped_at is None and self.lease_until > now


@dataclass(frozen=True, slots=True)
class StoredCase:
    id: int
    reference: str
    client_id: str
    journal_id: str | None
    file_name: str
    withdrawn_reason: str | None
    journal_case: JournalCase


@dataclass(frozen=True, slots=True)
class RunningTotals:
    """The store's totals since it began, as monitoring reads them at every scrape (counters that
    must survive a restart are read here, not counted in a process). Keys are ids, never people."""

    #: Files with a verdict, by (source, status); abandoned and claimed files are not counted.
    files: Mapping[tuple[str, str], int]
    #: Cases of those files by (client id, "accepted" | "rejected" | "duplicate"); the client id
    #: is "" for files whose client is not configured.
    cases: Mapping[tuple[str, str], int]
    accepted_capital_ore: Mapping[str, int]
    #: Journals by (client id, state), where "failed" is an approved journal whose last delivery
    #: attempt failed (it is retried, or waits for a person).
    journals: Mapping[tuple[str, str], int]
    last_delivered: Mapping[str, datetime]
    #: Failed delivery attempts by (client id, "temporary" | "permanent").
    delivery_failures: Mapping[tuple[str, str], int]
    #: Files claimed and not yet judged.
    in_progress: int


@dataclass(frozen=True, slots=True)
class ReceiptUpload:
    """A copy of a receipt owed to the receipt folder of the source that sent the file (or, for a
    journal receipt, of every source that sent a case in the journal). The local receipt is the
    truth; the copy is queued once it is published and sent until it is there."""

    source: str
    #: The published receipt, as the store records paths (relative to the data folder).
    local_path: str
    #: Where it goes in the source's receipt folder: the receipt's path under outbox/receipts/
    #: ("<day>/<name>" or "journals/<name>"), so that a name is as unique there as it is here.
    name: str
    sha256: str
    size: int
    #: What the receipt is of: "file:<id>" or "journal:<journal id>".
    subject: str
    id: int = 0
    state: str = "pending"  # pending | done | refused (another file has its name: a person looks)
    attempts: int = 0
    queued_at: datetime | None = None
    next_try: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptBacklog:
    """Copies of receipts not yet in their sources' receipt folders, for `status`."""

    pending: int
    oldest_queued_at: datetime | None
    #: Pending copies whose last try failed (the rest have not been tried yet).
    failing: int
    #: Refused for good: another file has the name there; never overwritten.
    refused: list[ReceiptUpload]


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One alarm on one subject, from the moment it was raised: ``firing`` until resolved (once;
    a condition that comes back later is a new alarm). ``node``: the node whose own fact it is
    (its pauses, its disk), which alone resolves it; None: a fact of the store."""

    id: int
    alarm: str
    subject: str
    firing: bool
    since: datetime  # when its condition began
    raised_at: datetime
    resolved_at: datetime | None
    message_sv: str
    message_en: str
    node: str | None


@dataclass(frozen=True, slots=True)
class AlarmNotification:
    """One change of an alarm (``state``: "firing" or "resolved") to be told on one channel
    ("webhook", "smtp"), kept in the store's outbox until it was sent; ``node``: who noticed."""

    id: int
    channel: str
    state: str
    node: str
    attempts: int
    alarm: AlarmRecord

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this change, on every channel: a receiver that saw it
        (a retry after a crash) knows it again."""
        return f"inkasso-gateway-alarm-{self.alarm.id}-{self.state}"
