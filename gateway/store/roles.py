"""The store's roles: what each part of the gateway may ask of a store, one protocol each.

Every part is typed against the role it uses, never against a concrete store: the intake against
:class:`IntakeStore`, the journal service against :class:`JournalStore`, reports, audit, status,
the consistency check and backup against :class:`LedgerReader` (`trace` against the narrower
:class:`TraceReader`), the daemon's own notes against :class:`Bookkeeping`, alarms' states and
their notifications against :class:`AlarmBook`. :class:`Store` is all
of them: what a backend implements and what the composition root (:mod:`gateway.bootstrap`, the
only module that names a concrete store) opens to write; a store opened only to look is a
:class:`LedgerReader`.

What every backend promises beyond the signatures (``tests/store_contract.py`` holds each backend
to it): every method is one transaction, so a crash leaves the store before or after a step, never
in between; no driver error leaves the store, each becomes a :class:`~gateway.errors.StoreError`
(:class:`~gateway.errors.StoreConflictError`: another writer got there first, do the step again;
:class:`~gateway.errors.StoreUnavailableError`: the store cannot be used now, pause and retry),
also while an iterator it returned is consumed; a refused step changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeAlias

from gateway.domain.alarms import Condition
from gateway.domain.journal import JournalCase
from gateway.domain.rules import History
from gateway.store import (
    AlarmNotification,
    AlarmRecord,
    CaseMismatch,
    FileRecord,
    FileState,
    JournalRecord,
    JournalState,
    Judgement,
    NodeRecord,
    ReceiptBacklog,
    ReceiptUpload,
    ReceivedFile,
    RunningTotals,
    StoredCase,
)

#: One logged event: (at, in ISO 8601; kind; subject, a file name, case reference or journal id; detail).
Event: TypeAlias = tuple[str, str, str, str]
#: Findings of one file received in a period: (received, client id, client orgnr, code, severity, count).
FindingCount: TypeAlias = tuple[datetime, str | None, str | None, str, str, int]


class StoreHandle(Protocol):
    """A store as it is opened: whoever opened it closes it."""

    def close(self) -> None: ...


class EventLog(Protocol):
    """What happened, for people (`trace`): the write side appends; reading it back is part of
    :class:`TraceReader`. ``detail`` may be cut short (the SQLite store keeps 2,000 characters)."""

    def log_event(self, kind: str, subject: str, detail: str, *, now: datetime) -> None: ...


class FileLookup(Protocol):
    """Received files by id and by state (``file`` raises StoreError for an id it does not know)."""

    def file(self, file_id: int) -> FileRecord: ...
    def files_in_state(self, state: FileState) -> list[FileRecord]: ...


class JournalLookup(Protocol):
    """Journals by id (None when unknown) or by state, oldest first, and a journal's live cases."""

    def journal(self, journal_id: str) -> JournalRecord | None: ...
    def journals(self, *, states: Sequence[JournalState] | None = None) -> list[JournalRecord]: ...
    def journal_cases(self, journal_id: str) -> Iterator[JournalCase]: ...


class Leases(Protocol):
    """What a process has in hand (a file), as a lease on a name: held while the process lives
    (a daemon's leases run with its node's heartbeat), taken over once it died, stopped or let
    the lease run out. ``holder`` is who this store's process is."""

    @property
    def holder(self) -> str: ...
    # False while another live process holds ``name``.
    def take_lease(self, name: str, *, now: datetime, lease_seconds: float) -> bool: ...
    def release_lease(self, name: str) -> None: ...
    # The names under ``prefix`` another live process holds now.
    def leased_by_others(self, prefix: str, *, now: datetime) -> set[str]: ...


class Nodes(Leases, StoreHandle, Protocol):
    """Several daemons on one store: each registers as a node and keeps a heartbeat lease; what
    must be done once whichever nodes run (a scheduled seal, a nightly report) is a duty per slot,
    taken over from a node that died doing it."""

    # Join as ``node``, taking the name over (the daemon holds the node's lock on the data folder);
    # the previous holder when its lease still ran (a process killed a moment ago), else None.
    def register_node(
        self, node: str, *, version: str, now: datetime, lease_seconds: float
    ) -> str | None: ...
    # False once the registration is no longer this process's.
    def renew_node(self, node: str, *, now: datetime, lease_seconds: float) -> bool: ...
    def leave_node(self, node: str, *, now: datetime) -> None: ...
    def take_duty(self, duty: str, slot: str, *, now: datetime) -> bool: ...
    def finish_duty(self, duty: str, slot: str, *, now: datetime) -> None: ...


class ReceiptQueue(Leases, Protocol):
    """Copies of receipts owed to the senders' receipt folders (a source's ``receipt_dir``):
    queued once the local receipt is published (again after a crash: a copy already queued for
    the same source and name stays as it is), sent by the daemon under a lease (one node sends a
    copy), tried again at ``retry_at`` after a failure, or refused for good (``retry_at`` None)."""

    def queue_receipt_uploads(self, uploads: Sequence[ReceiptUpload], *, now: datetime) -> None: ...
    # Pending copies whose time has come, the longest waiting first.
    def due_receipt_uploads(self, *, now: datetime, limit: int) -> list[ReceiptUpload]: ...
    # Whether this copy is still pending and due: asked again once its lease is held, since
    # another node may have sent it since the list was read.
    def receipt_upload_due(self, upload_id: int, *, now: datetime) -> bool: ...
    def record_receipt_uploaded(self, upload_id: int, *, now: datetime) -> None: ...
    def record_receipt_upload_failure(
        self, upload_id: int, error: str, *, retry_at: datetime | None
    ) -> None: ...
    # Refused copies due again (at a start: a person may have cleared the name); how many.
    def retry_refused_receipt_uploads(self, *, now: datetime) -> int: ...


class IntakeStore(History, FileLookup, EventLog, ReceiptQueue, Protocol):
    """One file's steps: ``claimed`` -> ``judged`` -> ``done`` (or ``abandoned`` before its verdict),
    and a person's dealing with a quarantined file. The rules ask it for the :class:`History`."""

    # The History's case and claim lookups for many at once (the intake asks them a batch of
    # cases ahead: one query instead of one per case): only what is found is in the answer.
    def accepted_case_fingerprints(self, client_orgnr: str, references: Sequence[str]) -> dict[str, str]: ...
    def cases_for_claim_references(
        self, client_orgnr: str, claim_references: Sequence[str]
    ) -> dict[str, str]: ...
    # Record (or find again) the file at ``path`` with these bytes and count one more attempt,
    # before any work. A claim of the same path with other bytes and no verdict is abandoned.
    def claim_file(
        self,
        *,
        source: str,
        name: str,
        path: str,
        sha256: str,
        size: int,
        now: datetime,
        written_at: datetime | None = None,
        identity: str | None = None,
    ) -> FileRecord: ...
    # The attempt was no failure (the file was not finished): it is not counted.
    def release_attempt(self, file_id: int, note: str) -> None: ...
    def record_failure(self, file_id: int, error: str) -> None: ...
    # Changed or gone in its source before its verdict: never received; its id is never reused.
    def abandon_claim(self, file_id: int, reason: str, *, now: datetime) -> None: ...
    # This file (source, place, bytes, as the source showed it) judged already: a leftover.
    def received_file(
        self, *, source: str, path: str, sha256: str, identity: str | None
    ) -> FileRecord | None: ...
    def receipt_path_taken(self, receipt_path: str) -> bool: ...
    # The newest receipt's SHA-256 and the chain's length: a judgement must continue from them.
    def receipt_chain_tip(self) -> tuple[str, int]: ...
    # The JournalId of the client's open journal, opening one when there is none.
    def open_journal_id(self, client_id: str, *, now: datetime) -> str: ...
    # The verdict, its accepted cases and the new chain tip at once. StoreConflictError when the
    # chain moved or the expected journal was sealed meanwhile; StoreError unless ``claimed``.
    def record_judgement(self, judgement: Judgement) -> None: ...
    def mark_done(self, file_id: int, *, final_path: str, now: datetime) -> None: ...
    # Recorded once (StoreError when not quarantined or dealt with already); the file stays.
    def resolve_quarantined(self, file_id: int, *, by: str, resolution: str, now: datetime) -> FileRecord: ...


class JournalStore(JournalLookup, EventLog, ReceiptQueue, Protocol):
    """A journal's steps: ``open`` -> ``sealed`` (numbered; waits for a person when reviewed) ->
    ``approved`` -> ``delivered``, under a lease so that one process delivers it."""

    # Seal every open journal with cases (of these clients), numbered per client without gaps and
    # above ``numbers_used`` (the highest found outside the store), in one step. A protected
    # identity always waits for approval; otherwise the journal is approved "auto" unless reviewed.
    def seal_journals(
        self,
        *,
        now: datetime,
        client_ids: Sequence[str] | None,
        manual_review: bool,
        numbers_used: Mapping[str, int] | None = None,
    ) -> list[JournalRecord]: ...
    def approve_journal(self, journal_id: str, *, by: str, now: datetime) -> JournalRecord: ...
    def journal_references(self, journal_id: str) -> list[str]: ...
    # Its file's name before the file is written: found after a crash, that file is its own.
    def record_journal_building(self, journal_id: str, *, file_name: str) -> None: ...
    def record_journal_built(
        self, journal_id: str, *, file_name: str, sha256: str, size: int, built_at: datetime
    ) -> None: ...
    # Take the lease and count an attempt; False when not to be sent now: not approved, another
    # live process holds the lease, or the backoff after a failure has not run out.
    def begin_delivery(self, journal_id: str, *, now: datetime, lease_seconds: float) -> bool: ...
    # Give the lease back; the next attempt waits until ``retry_at``.
    def record_delivery_failure(self, journal_id: str, error: str, *, retry_at: datetime) -> None: ...
    # A person asked to send now: forget the backoff (the attempt still takes the lease).
    def release_delivery_lease(self, journal_id: str) -> None: ...
    # The files whose cases are in the journal (their sources get a copy of its receipt).
    def files_of_journal(self, journal_id: str) -> list[FileRecord]: ...
    # Once: a journal delivered already keeps its first delivery.
    def record_delivered(
        self, journal_id: str, *, now: datetime, receipt_sha256: str | None = None
    ) -> None: ...
    # Out of its journal while nobody delivers it (open, or sealed with other cases left);
    # recorded, never deleted, and its reference is free again.
    def withdraw_case(
        self, reference: str, *, client_id: str | None, by: str, reason: str, now: datetime
    ) -> StoredCase: ...


class Bookkeeping(StoreHandle, Protocol):
    """The daemon's own notes in the store (when it last sealed and reported, endpoint states),
    and a probe: a tiny real write that raises StoreUnavailableError while none can be made."""

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def probe(self, *, now: datetime) -> None: ...


class TraceReader(FileLookup, JournalLookup, Protocol):
    """The history of one thing (`trace`): a file, a case or a journal, and what happened to it."""

    # By name, or by SHA-256 or its first 12 or more hex digits (any case).
    def file_by_name_or_sha(self, key: str) -> list[FileRecord]: ...
    # (rule code, severity, findings) of one file.
    def file_findings(self, file_id: int) -> list[tuple[str, str, int]]: ...
    # How many of the file's cases were journaled, and the first ``limit`` in file order.
    def cases_of_file(self, file_id: int, *, limit: int) -> tuple[int, list[StoredCase]]: ...
    def file_of_case(self, case_row: int) -> FileRecord: ...
    def files_of_journal(self, journal_id: str) -> list[FileRecord]: ...
    # Every journaled case with this reference, withdrawn ones too.
    def cases_by_reference(self, reference: str) -> list[StoredCase]: ...
    # The files in which a case with this reference was not journaled, and its status there.
    def unjournaled_cases(self, reference: str) -> list[tuple[FileRecord, str]]: ...
    # The event log read back: about these subjects oldest first; the newest ``limit`` newest first.
    def events_about(self, subjects: Sequence[str]) -> list[Event]: ...
    def recent_events(self, limit: int) -> list[Event]: ...


class LedgerReader(TraceReader, StoreHandle, Protocol):
    """The read model: what reports, audit, status, the consistency check and backup read. Periods
    are [start, end) of ``received_at``; iterators are cursors, consumed while the store is open."""

    # Everything read inside sees one moment, while writers go on.
    def snapshot(self) -> AbstractContextManager[None]: ...
    def received_files(self, start: datetime, end: datetime) -> Iterator[ReceivedFile]: ...
    def case_mismatches(
        self, start: datetime, end: datetime, client_orgnr: str | None = None
    ) -> list[CaseMismatch]: ...
    # Where the period's cases are now: (journal state or "withdrawn", cases, öre).
    def capital_by_state(
        self, start: datetime, end: datetime, client_id: str | None
    ) -> list[tuple[str, int, int]]: ...
    def finding_counts(self, start: datetime, end: datetime) -> Iterator[FindingCount]: ...
    def journal_sequences(self) -> dict[str, list[int]]: ...
    # Sealed, approved or delivered in the period, and every journal not yet delivered.
    def journals_touched(self, start: datetime, end: datetime) -> list[JournalRecord]: ...
    # Live cases of sealed journals waiting for approval: how many, and the first ``limit``.
    def cases_awaiting_review(self, *, client_id: str | None, limit: int) -> tuple[int, list[StoredCase]]: ...
    def quarantined_files(self, *, unresolved_only: bool = True) -> list[FileRecord]: ...
    # The receipt chain from the genesis value by each receipt's predecessor: compare its length
    # with receipt_count; the head is the newest receipt's SHA-256 (the genesis value when none).
    def receipt_chain(self) -> Iterator[FileRecord]: ...
    def receipt_count(self) -> int: ...
    def receipt_chain_head(self) -> str: ...
    # Whether a receipt or original at ``path`` (relative to the data folder) is the gateway's own.
    def knows_path(self, path: str) -> bool: ...
    def journal_file_known(self, file_name: str) -> bool: ...
    def newest_judgement(self) -> datetime | None: ...
    # Files by "state" or "state:status" (abandoned ones left out); each source's latest arrival.
    def counts(self) -> dict[str, int]: ...
    def last_received(self) -> dict[str, datetime]: ...
    def meta_items(self, prefix: str) -> dict[str, str]: ...
    # The daemons registered on the store, by name (stopped and dead ones too).
    def nodes(self) -> list[NodeRecord]: ...
    # Totals since the store began (files, cases, capital, journals, delivery failures), for metrics.
    def running_totals(self) -> RunningTotals: ...
    # Copies of receipts not yet in their senders' receipt folders; the first ``limit`` refused.
    def receipt_upload_backlog(self, *, limit: int) -> ReceiptBacklog: ...
    # A consistent copy as of one moment at ``target`` (an earlier copy there replaced), opened to read.
    def backup_to(self, target: Path) -> LedgerReader: ...
    # Files with a verdict received in [start, end) from ``source`` (and ``client_id`` when given;
    # ``start`` None: since the store began): what an expected delivery of files counts.
    def files_received_count(
        self, *, source: str, client_id: str | None, start: datetime | None, end: datetime
    ) -> int: ...
    # Every firing alarm, and those resolved at or after ``resolved_since``, oldest first.
    def alarm_states(self, *, resolved_since: datetime) -> list[AlarmRecord]: ...


class AlarmBook(StoreHandle, Protocol):
    """Alarms' states and the outbox of their notifications. Several nodes may evaluate the same
    conditions: every change is a compare-and-set in one step, so exactly one process raises or
    resolves an alarm and queues its notifications; a notification is taken under a lease, so that
    one process at a time sends it (a crash may send it twice: its idempotency key tells)."""

    # Make the states what ``conditions`` (every condition that holds now, as ``node`` sees them)
    # say: a condition without a firing alarm is raised; a firing alarm whose condition is gone is
    # resolved, unless it is another node's own (Condition.node). Each change queues one
    # notification per channel in ``channels``. Returns the alarms this call changed.
    def reconcile_alarms(
        self, conditions: Sequence[Condition], *, node: str, channels: Sequence[str], now: datetime
    ) -> list[AlarmRecord]: ...
    # Notifications due at ``now``, oldest first, each taken for ``lease_seconds`` and counted as an
    # attempt; one waits while an earlier change of its alarm on its channel is unsent.
    def take_notifications(
        self, *, now: datetime, lease_seconds: float, limit: int
    ) -> list[AlarmNotification]: ...
    def notification_sent(self, notification_id: int, *, now: datetime) -> None: ...
    # Not sent: the lease is given back and the next attempt waits until ``retry_at``.
    def notification_failed(self, notification_id: int, error: str, *, retry_at: datetime) -> None: ...


class Store(IntakeStore, JournalStore, LedgerReader, Bookkeeping, Nodes, AlarmBook, Protocol):
    """Every role at once: what a backend implements and the daemon holds."""
