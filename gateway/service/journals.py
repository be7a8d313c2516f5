"""Journals: seal, approve, build and deliver, each step safe to repeat after a crash.

Delivery of one journal, in order:

1. take the delivery lease in the store (another process delivering the same journal backs off)
   and count the attempt;
2. build the journal file once into ``var/sent/`` (temp, fsync, rename) and record its name,
   size and SHA-256; a later attempt reuses exactly those bytes, checked against the recorded hash;
3. hand the file to the transport, which is idempotent: a finished remote file of the same name and
   content means an earlier attempt delivered it;
4. write the journal receipt (atomically), then record the journal as delivered.

A crash anywhere repeats from step 1 at the next start and ends with the journal delivered once.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gateway import __version__
from gateway.adapters import Delivery, Transport
from gateway.backoff import Backoff
from gateway.config import GatewayConfig
from gateway.domain.rules import RULESET_VERSION
from gateway.errors import (
    PermanentDeliveryError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    TemporaryDeliveryError,
)
from gateway.folders import Folders
from gateway.formats.journal import (
    JournalDelivery,
    JournalHeader,
    attachment_path,
    journal_file_name,
    write_journal,
    write_journal_receipt,
)
from gateway.fsutil import (
    publish,
    remove_stale_temporaries,
    sha256_file,
    sha256_stream,
    temporary_name,
    write_new,
    write_private,
)
from gateway.service.receipts import copies_of, receipt_sources
from gateway.store import JournalRecord, JournalState
from gateway.store.roles import JournalStore

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.journals")

#: How long one process may hold a journal's delivery before another may take over.
DELIVERY_LEASE_SECONDS = 300.0
#: Backoff after a failed delivery: 5 s, 10 s, 20 s ... at most 15 minutes, with jitter.
DELIVERY_BACKOFF = Backoff(base_seconds=5.0, max_seconds=900.0)
#: How long `journal send` waits for another process that is delivering the same journal.
WAIT_FOR_OTHER_DELIVERY_SECONDS = 60.0
#: A permanent failure is not retried on its own: only `journal send ID` by a person retries it.
PERMANENT_HOLD = timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    journal_id: str
    file_name: str
    delivered: bool
    error: str | None = None
    skipped: bool = False  # not attempted now (leased elsewhere, or waiting for its retry time)
    delivered_by: str | None = None  # the process that delivered it ("<host>:<pid>")


@dataclass(frozen=True, slots=True)
class SealResult:
    sealed: list[JournalRecord]
    #: Open journals with cases whose client is no longer configured: not sealed (a journal is
    #: built from its client's configuration), each with the reason.
    refused: list[tuple[str, str]]


class JournalService:
    def __init__(
        self,
        config: GatewayConfig,
        store: JournalStore,
        folders: Folders,
        transport: Transport,
        *,
        clock: Callable[[], datetime],
        file_mode: int = 0o600,
    ) -> None:
        self._config = config
        self._store = store
        self._folders = folders
        self.transport = transport
        self._clock = clock
        self._file_mode = file_mode
        self._clients = {client.id: client for client in config.clients}
        self._receipt_sources = receipt_sources(config)

    def seal(self, client_ids: Sequence[str] | None = None) -> SealResult:
        """Seal the open journals with cases (of these clients, else every configured client).

        A journal of a client no longer in the configuration is not sealed: it could not be built
        (the client's orgnr and name come from the configuration) and would fail for good at
        delivery; it is reported instead, for a person to put the client back or withdraw it."""
        configured = [client.id for client in self._config.clients]
        wanted = [client for client in (client_ids or configured) if client in self._clients]
        refused = [
            (
                journal.journal_id,
                f"client {journal.client_id!r} is no longer configured: put it back in the configuration "
                "to seal and send this journal, or withdraw its cases",
            )
            for journal in self._store.journals(states=[JournalState.OPEN])
            if journal.case_count
            and journal.client_id not in self._clients
            and (client_ids is None or journal.client_id in client_ids)
        ]
        for journal_id, reason in refused:
            log.warning(
                "journal %s not sealed: %s",
                journal_id,
                reason,
                extra={"event": "journal-not-sealed", "journal": journal_id},
            )
        sealed = self._store.seal_journals(
            now=self._clock(),
            client_ids=wanted,
            manual_review=self._config.delivery.review == "manual",
            numbers_used=self._numbers_used(),
        )
        for record in sealed:
            waiting = "waits for approval" if record.state is JournalState.SEALED else "approved"
            log.info(
                "journal %s sealed as %s number %d: %d cases, %s SEK; %s",
                record.journal_id,
                record.client_id,
                record.sequence,
                record.case_count,
                f"{record.capital_ore / 100:.2f}",
                waiting,
                extra={"event": "journal-sealed", "journal": record.journal_id, "client": record.client_id},
            )
        return SealResult(sealed, refused)

    def _numbers_used(self) -> dict[str, int]:
        """The highest journal number of each client among the journals kept in var/sent/: a
        number once delivered is never used again, even by a store restored from a backup."""
        highest: dict[str, int] = {}
        if not self._folders.sent.is_dir():
            return highest
        for client_id in self._clients:
            prefix = f"{client_id}-"
            for path in self._folders.sent.glob(f"{client_id}-*"):
                number = path.name.removeprefix(prefix).split(".", 1)[0]
                if number.isdigit() and len(number) == 6:
                    highest[client_id] = max(highest.get(client_id, 0), int(number))
        return highest

    def deliver_approved(self, *, only: str | None = None, force: bool = False) -> list[DeliveryResult]:
        """Deliver every approved journal whose retry time has come (or ``only`` that one).

        ``force`` (a person's `journal send`): the backoff after a failure is cancelled, and a
        journal another process is delivering right now is waited for (up to a minute), so the
        answer is what became of it, never "not now".
        """
        results = []
        for record in self._store.journals(states=[JournalState.APPROVED]):
            if only is not None and record.journal_id != only:
                continue
            if force:
                self._store.release_delivery_lease(record.journal_id)
            result = self.deliver(record)
            if force and result.skipped:
                result = self._await_other_delivery(record)
            results.append(result)
        return results

    def _await_other_delivery(self, record: JournalRecord) -> DeliveryResult:
        """Wait (bounded) for the process that holds the journal's lease, and say how it ended."""
        deadline = time.monotonic() + WAIT_FOR_OTHER_DELIVERY_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.2)
            current = self._store.journal(record.journal_id)
            if current is None:
                break
            if current.state is JournalState.DELIVERED:
                return DeliveryResult(
                    current.journal_id, current.file_name or "", True, delivered_by=current.delivered_by
                )
            if current.last_error and current.last_error != record.last_error:
                return DeliveryResult(current.journal_id, current.file_name or "", False, current.last_error)
            retry = self.deliver(current)  # the other process may have let go meanwhile
            if not retry.skipped:
                return retry
        return DeliveryResult(
            record.journal_id,
            record.file_name or "",
            False,
            f"another process was still delivering it after {WAIT_FOR_OTHER_DELIVERY_SECONDS:.0f} s: "
            "see `journal show` for its outcome",
            skipped=True,
        )

    def deliver(self, record: JournalRecord) -> DeliveryResult:
        now = self._clock()
        if not self._store.begin_delivery(record.journal_id, now=now, lease_seconds=DELIVERY_LEASE_SECONDS):
            return DeliveryResult(
                record.journal_id,
                record.file_name or "",
                False,
                "not now: another process is delivering it, or it waits for its retry time after a failure "
                f"({record.last_error or 'no error recorded'})",
                skipped=True,
            )
        record = self._store.journal(record.journal_id) or record  # with this attempt counted
        try:
            local, record = self._built(record)
            assert record.file_name is not None and record.sha256 is not None and record.size is not None
            delivery = self.transport.deliver(record.file_name, local, sha256=record.sha256, size=record.size)
            receipt_sha256 = self._write_receipt(record, delivery)
            self._queue_receipt_copies(record, receipt_sha256)
            self._store.record_delivered(record.journal_id, now=self._clock(), receipt_sha256=receipt_sha256)
        except PermanentDeliveryError as error:
            self._store.record_delivery_failure(
                record.journal_id, f"PERMANENT: {error}", retry_at=self._clock() + PERMANENT_HOLD
            )
            self._store.log_event("delivery-failed", record.journal_id, str(error), now=self._clock())
            log.error(
                "journal %s: delivery failed permanently and needs a person (then `journal send %s`): %s",
                record.journal_id,
                record.journal_id,
                error,
                extra=_fields("delivery-failed", record),
            )
            return DeliveryResult(record.journal_id, record.file_name or "", False, str(error))
        except StoreUnavailableError:
            raise  # the store itself: the daemon pauses; nothing is written to it from here
        except StoreConflictError as lost:
            # This process was taken for dead and another node took the delivery over: what it
            # put at the destination is the same journal (delivery is idempotent); the other
            # node records the delivery.
            log.warning("journal %s: %s", record.journal_id, lost)
            return DeliveryResult(record.journal_id, record.file_name or "", False, str(lost), skipped=True)
        except Exception as error:
            # Transient (the destination, a full disk) or unexpected: either way one journal must
            # not stop the daemon; it is retried with exponential backoff and jitter.
            delay = DELIVERY_BACKOFF.delay(max(record.attempts, 1))
            self._store.record_delivery_failure(
                record.journal_id, str(error), retry_at=self._clock() + timedelta(seconds=delay)
            )
            self._store.log_event("delivery-retry", record.journal_id, str(error), now=self._clock())
            if isinstance(error, TemporaryDeliveryError | OSError):
                log.warning(
                    "journal %s: delivery failed, retrying in %.0f s: %s",
                    record.journal_id,
                    delay,
                    error,
                    extra=_fields("delivery-retry", record),
                )
            else:
                log.exception(
                    "journal %s: unexpected failure, retrying in %.0f s",
                    record.journal_id,
                    delay,
                    extra=_fields("delivery-retry", record),
                )
            return DeliveryResult(record.journal_id, record.file_name or "", False, str(error))
        log.info(
            "journal %s delivered as %s to %s",
            record.journal_id,
            record.file_name,
            self.transport.destination,
            extra=_fields("journal-delivered", record),
        )
        delivered = self._store.journal(record.journal_id)
        return DeliveryResult(
            record.journal_id,
            record.file_name,
            True,
            delivered_by=delivered.delivered_by if delivered else None,
        )

    def _built(self, record: JournalRecord) -> tuple[Path, JournalRecord]:
        """The journal's file in var/sent/, built once; later attempts reuse the same bytes.

        Its name is recorded before it is written: a file of that name found after a crash is
        this journal's own, and is adopted as it is (a journal file is never rebuilt over).
        """
        if record.file_name is not None and record.sha256 is not None:
            local = self._folders.sent / record.file_name
            if not local.exists() or sha256_file(local) != record.sha256:
                raise PermanentDeliveryError(
                    f"{local} is missing or differs from the SHA-256 recorded when it was built"
                )
            return local, record
        assert record.sequence is not None and record.sealed_at is not None
        client = self._clients.get(record.client_id)
        if client is None:
            raise PermanentDeliveryError(f"client {record.client_id} is no longer configured")
        built_at = self._clock()
        packaged = any(case.attachments for case in self._store.journal_cases(record.journal_id))
        name = record.file_name or journal_file_name(client.id, record.sequence, packaged=packaged)
        if record.file_name is None:
            self._store.record_journal_building(record.journal_id, file_name=name)
        local = self._folders.sent / name
        if local.exists():
            log.info("journal %s: adopting %s, built before a stop", record.journal_id, name)
        else:
            header = JournalHeader(
                journal_id=record.journal_id,
                sequence=record.sequence,
                client_orgnr=client.orgnr,
                client_name=client.name,
                created=built_at,
                sealed=record.sealed_at,
                approved_by=record.approved_by,
                approved_at=record.approved_at,
                gateway_version=__version__,
                ruleset_version=RULESET_VERSION,
                config_sha256=self._config.sha256,
            )
            self._write_built(record, header, local, packaged=packaged, built_at=built_at)
        digest, size = _digest(local)
        self._store.record_journal_built(
            record.journal_id, file_name=name, sha256=digest, size=size, built_at=built_at
        )
        updated = self._store.journal(record.journal_id)
        if updated is None or updated.sha256 != digest:
            raise StoreError(f"journal {record.journal_id} changed while it was built")
        return local, updated

    def _write_built(
        self, record: JournalRecord, header: JournalHeader, local: Path, *, packaged: bool, built_at: datetime
    ) -> None:
        self._folders.sent.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale_temporaries(self._folders.sent)  # what a build killed midway left behind
        document = temporary_name(local)
        temporary = temporary_name(local) if packaged else document
        try:
            write_private(
                document,
                lambda out: write_journal(out, header, self._store.journal_cases(record.journal_id)),
                mode=self._file_mode,
            )
            if packaged:
                try:
                    self._package(record, document, temporary, built_at)
                finally:
                    document.unlink()
            try:
                publish(temporary, local)
            except FileExistsError:
                temporary.unlink()  # written meanwhile by another process delivering it: adopted
        except BaseException:
            document.unlink(missing_ok=True)
            temporary.unlink(missing_ok=True)
            raise

    def _package(self, record: JournalRecord, document: Path, target: Path, built_at: datetime) -> None:
        """A journal with attachments: arendejournal.xml and bilagor/<ArendeReferens>/<filnamn>."""
        stamp = built_at.timetuple()[:6]
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self._file_mode)
        with os.fdopen(descriptor, "wb") as out:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
                package.write(document, "arendejournal.xml")
                for case in self._store.journal_cases(record.journal_id):
                    for name, sha256 in zip(case.attachments, case.attachment_sha256, strict=False):
                        stored = self._folders.attachments / sha256
                        if not stored.exists():
                            raise PermanentDeliveryError(
                                f"attachment {name} of case {case.reference} is missing"
                            )
                        info = zipfile.ZipInfo(attachment_path(case.reference, name), date_time=stamp)
                        info.compress_type = zipfile.ZIP_DEFLATED
                        with stored.open("rb") as source, package.open(info, "w") as member:
                            shutil.copyfileobj(source, member, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())

    def _queue_receipt_copies(self, record: JournalRecord, receipt_sha256: str) -> None:
        """A copy of the journal receipt for every source that sent a case in the journal and gets
        its receipts back, so that its ERP learns which of its cases went in which journal.
        Queued before the journal is recorded delivered: a crash in between delivers again
        (idempotent) and queues again (a copy is queued once)."""
        wanted = self._receipt_sources & {f.source for f in self._store.files_of_journal(record.journal_id)}
        if not wanted:
            return
        assert record.file_name is not None
        receipt = self._folders.journal_receipts / f"{record.file_name}.kvittens.xml"
        self._store.queue_receipt_uploads(
            copies_of(
                self._folders,
                receipt,
                sources=wanted,
                subject=f"journal:{record.journal_id}",
                sha256=receipt_sha256,
            ),
            now=self._clock(),
        )

    def _write_receipt(self, record: JournalRecord, delivery: Delivery) -> str:
        """Write the journal receipt; return its SHA-256 (kept in the store for `audit verify`)."""
        assert record.sequence is not None and record.file_name is not None
        client = self._clients[record.client_id]
        receipt = JournalDelivery(
            journal_id=record.journal_id,
            sequence=record.sequence,
            client_orgnr=client.orgnr,
            client_name=client.name,
            file_name=record.file_name,
            size=delivery.size,
            sha256=delivery.sha256,
            transport=self.transport.kind,
            destination=delivery.destination,
            delivered=self._clock(),
            attempts=record.attempts,
            references=self._store.journal_references(record.journal_id),
            gateway_version=__version__,
            ruleset_version=RULESET_VERSION,
            config_sha256=self._config.sha256,
        )
        buffer = io.BytesIO()
        write_journal_receipt(buffer, receipt)
        self._folders.journal_receipts.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._folders.journal_receipts / f"{record.file_name}.kvittens.xml"
        try:
            return write_new(target, buffer.getvalue(), mode=self._file_mode)
        except FileExistsError:
            # Written before a crash cut the delivery short: it is kept as it is (never rewritten);
            # its own SHA-256 is what the store records.
            return sha256_file(target)


def _fields(event: str, record: JournalRecord) -> dict[str, object]:
    """A journal's fields on a log line, for machines reading JSON logs."""
    return {
        "event": event,
        "journal": record.journal_id,
        "client": record.client_id,
        "file": record.file_name,
        "sha256": record.sha256,
    }


def _digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return sha256_stream(handle)
