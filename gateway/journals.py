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

import hashlib
import io
import logging
import os
import random
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from gateway import __version__
from gateway.adapters.folder import Delivery, fsync_folder, sha256_file, write_atomically
from gateway.config import GatewayConfig
from gateway.domain.rules import RULESET_VERSION
from gateway.errors import PermanentDeliveryError, StoreError, TemporaryDeliveryError
from gateway.formats.journal import (
    JournalDelivery,
    JournalHeader,
    attachment_path,
    journal_file_name,
    write_journal,
    write_journal_receipt,
)
from gateway.pipeline import Folders
from gateway.store import JournalRecord, JournalState
from gateway.store.sqlite import SqliteStore
from gateway.validation import sha256_of

log = logging.getLogger(__name__)

#: How long one process may hold a journal's delivery before another may take over.
DELIVERY_LEASE_SECONDS = 300.0
#: Backoff after a failed delivery: base * 2^(attempts-1), capped, with jitter.
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 900.0
#: A permanent failure is not retried on its own: only `journal send ID` by a person retries it.
PERMANENT_HOLD = timedelta(days=3650)


class Transport(Protocol):
    kind: str

    @property
    def destination(self) -> str: ...

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery: ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    journal_id: str
    file_name: str
    delivered: bool
    error: str | None = None
    skipped: bool = False  # not attempted now (leased elsewhere, or waiting for its retry time)


class JournalService:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqliteStore,
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

    def seal(self, client_ids: Sequence[str] | None = None) -> list[JournalRecord]:
        sealed = self._store.seal_journals(
            now=self._clock(), client_ids=client_ids, manual_review=self._config.delivery.review == "manual"
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
            )
        return sealed

    def deliver_approved(self, *, only: str | None = None, force: bool = False) -> list[DeliveryResult]:
        """Deliver every approved journal whose retry time has come (or ``only`` that one)."""
        results = []
        for record in self._store.journals(states=[JournalState.APPROVED]):
            if only is not None and record.journal_id != only:
                continue
            if force:
                self._store.release_delivery_lease(record.journal_id)
            results.append(self.deliver(record))
        return results

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
            )
            return DeliveryResult(record.journal_id, record.file_name or "", False, str(error))
        except Exception as error:
            # Transient (the destination, a full disk) or unexpected: either way one journal must
            # not stop the daemon; it is retried with exponential backoff and jitter.
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(record.attempts - 1, 0))
            delay *= random.uniform(0.8, 1.2)
            self._store.record_delivery_failure(
                record.journal_id, str(error), retry_at=self._clock() + timedelta(seconds=delay)
            )
            self._store.log_event("delivery-retry", record.journal_id, str(error), now=self._clock())
            if isinstance(error, TemporaryDeliveryError | OSError):
                log.warning(
                    "journal %s: delivery failed, retrying in %.0f s: %s", record.journal_id, delay, error
                )
            else:
                log.exception("journal %s: unexpected failure, retrying in %.0f s", record.journal_id, delay)
            return DeliveryResult(record.journal_id, record.file_name or "", False, str(error))
        log.info(
            "journal %s delivered as %s to %s",
            record.journal_id,
            record.file_name,
            self.transport.destination,
        )
        return DeliveryResult(record.journal_id, record.file_name, True)

    def _built(self, record: JournalRecord) -> tuple[Path, JournalRecord]:
        """The journal's file in var/sent/, built once; later attempts reuse the same bytes."""
        if record.file_name is not None:
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
        packaged = any(case.attachments for case in self._store.journal_cases(record.journal_id))
        name = journal_file_name(client.id, record.sequence, packaged=packaged)
        local = self._folders.sent / name
        document = self._folders.sent / f".{name}.arendejournal.xml.tmp"
        descriptor = os.open(document, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self._file_mode)
        with os.fdopen(descriptor, "wb") as out:
            write_journal(out, header, self._store.journal_cases(record.journal_id))
            out.flush()
            os.fsync(out.fileno())
        if packaged:
            temporary = self._folders.sent / f".{name}.tmp"
            self._package(record, document, temporary, built_at)
            document.unlink()
        else:
            temporary = document
        temporary.replace(local)
        fsync_folder(local.parent)
        digest, size = _digest(local)
        self._store.record_journal_built(
            record.journal_id, file_name=name, sha256=digest, size=size, built_at=built_at
        )
        updated = self._store.journal(record.journal_id)
        if updated is None or updated.sha256 != digest:
            raise StoreError(f"journal {record.journal_id} changed while it was built")
        return local, updated

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
        write_atomically(
            self._folders.journal_receipts / f"{record.file_name}.kvittens.xml",
            buffer.getvalue(),
            mode=self._file_mode,
        )
        return hashlib.sha256(buffer.getvalue()).hexdigest()


def _digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return sha256_of(handle)
