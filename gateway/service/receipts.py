"""Receipts back to their senders: a copy of each receipt in the receipt folder of the source that
sent the file (``receipt_dir``: a local folder, or a folder on the source's own SFTP server), and
of each journal receipt in that of every source that sent a case in the journal.

The local receipt is the truth. Once it is published, a copy is queued in the store; a crash
before the file is marked done publishes it again and queues it again, and queuing twice is
queuing once. The daemon sends what is due on every turn through the one transport (a temporary
name, then a rename; never over another file; a finished copy with the same bytes counts as
sent), so that the sender never sees half a receipt. One node sends a given copy (a lease on it);
a copy that fails is tried again with a backoff whose next try is kept in the store, so it
survives restarts. A copy refused because another file has its name there is never overwritten:
it waits for a person (`status` lists it) and is tried again at the daemon's next start.

In the receipt folder a copy has the same path as under ``outbox/receipts/``: ``<day>/<name>``
for a file's receipt, ``journals/<name>`` for a journal receipt. A name is unique there exactly
as it is here (the same file sent again on another day gets a receipt of the same name).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from gateway.adapters import Transport
from gateway.adapters.ports import RefusedError, UnreachableError
from gateway.backoff import Backoff
from gateway.config import GatewayConfig
from gateway.errors import PermanentDeliveryError, StoreUnavailableError, TransportError
from gateway.folders import Folders
from gateway.fsutil import sha256_file
from gateway.store import ReceiptUpload
from gateway.store.roles import ReceiptQueue

# The logger keeps a name of its own: operators filter on it.
log = logging.getLogger("gateway.receipts")

#: Trying a copy again after a failure: 5 s, 10 s, 20 s ... at most 15 minutes, with jitter.
RECEIPT_UPLOAD_BACKOFF = Backoff(base_seconds=5.0, max_seconds=900.0)
#: Copies sent per turn of the daemon's loop at most (a backlog after an outage goes in rounds,
#: so that intake is not held up behind it).
UPLOADS_PER_TURN = 100
#: The lease a process holds on a copy while it sends it (several nodes: one sends it).
LEASE_PREFIX = "receipt-upload:"


def receipt_sources(config: GatewayConfig) -> frozenset[str]:
    """The sources whose senders get their receipts back."""
    return frozenset(source.name for source in config.sources if source.receipt_dir is not None)


def copies_of(
    folders: Folders, receipt: Path, *, sources: Iterable[str], subject: str, sha256: str | None = None
) -> list[ReceiptUpload]:
    """The copies of the published receipt at ``receipt`` owed to ``sources``."""
    wanted = sorted(set(sources))
    if not wanted:
        return []
    size = receipt.stat().st_size
    digest = sha256 or sha256_file(receipt)
    name = receipt.relative_to(folders.receipts).as_posix()
    return [
        ReceiptUpload(
            source=source,
            local_path=folders.stored(receipt),
            name=name,
            sha256=digest,
            size=size,
            subject=subject,
        )
        for source in wanted
    ]


@dataclass(slots=True)
class SendResult:
    sent: int = 0
    failed: int = 0
    refused: int = 0
    #: Sources whose server could not be reached for a copy, with the error: the daemon's
    #: pause of the source covers them (it is the same endpoint).
    unreachable: dict[str, str] = field(default_factory=dict)


class ReceiptReturns:
    """Sends the queued copies of receipts to the senders' receipt folders."""

    def __init__(
        self,
        store: ReceiptQueue,
        folders: Folders,
        destinations: Mapping[str, Transport],
        *,
        clock: Callable[[], datetime],
        lease_seconds: float,
        backoff: Backoff = RECEIPT_UPLOAD_BACKOFF,
    ) -> None:
        """``destinations``: each source's receipt folder, as a transport."""
        self._store = store
        self._folders = folders
        self._destinations = dict(destinations)
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._backoff = backoff

    @property
    def destinations(self) -> Mapping[str, Transport]:
        return self._destinations

    def retry_refused(self) -> int:
        """At a start: copies refused for good are tried once more (a person may have cleared
        the name in the receipt folder)."""
        if not self._destinations:
            return 0
        return self._store.retry_refused_receipt_uploads(now=self._clock())

    def send_due(self, *, unreachable: Collection[str] = ()) -> SendResult:
        """Send every copy whose time has come, but none to a source in ``unreachable`` (its
        server does not answer now: they wait until it does)."""
        result = SendResult()
        if not self._destinations:
            return result
        for upload in self._store.due_receipt_uploads(now=self._clock(), limit=UPLOADS_PER_TURN):
            if upload.source in unreachable or upload.source in result.unreachable:
                continue
            destination = self._destinations.get(upload.source)
            if destination is None:
                continue  # a source no longer configured to get receipts: its copies wait
            lease = f"{LEASE_PREFIX}{upload.id}"
            if not self._store.take_lease(lease, now=self._clock(), lease_seconds=self._lease_seconds):
                continue  # another node is sending it
            try:
                if self._store.receipt_upload_due(upload.id, now=self._clock()):
                    self._send(upload, destination, result)
                # else: sent (or put off) by another node since the list was read
            finally:
                with contextlib.suppress(StoreUnavailableError):  # it lapses with the heartbeat
                    self._store.release_lease(lease)
        return result

    def _send(self, upload: ReceiptUpload, destination: Transport, result: SendResult) -> None:
        local = self._folders.located(upload.local_path)
        try:
            delivery = destination.deliver(upload.name, local, sha256=upload.sha256, size=upload.size)
        except PermanentDeliveryError as error:
            if isinstance(error.__cause__, RefusedError):
                # The server refuses the gateway (a host key, a login): the source is refused
                # too, and a person fixes it there; the copy is simply tried again later.
                self._failed(upload, error, result)
                result.unreachable[upload.source] = str(error)
                return
            self._store.record_receipt_upload_failure(upload.id, str(error), retry_at=None)
            result.refused += 1
            log.error(
                "the receipt %s for source %s is not sent: %s; it stays in %s. Remove or rename the other "
                "file, then restart the gateway to send it",
                upload.name,
                upload.source,
                error,
                local,
                extra={"event": "receipt-upload-refused", "source": upload.source, "file": upload.name},
            )
            return
        except (TransportError, OSError) as error:
            self._failed(upload, error, result)
            if isinstance(error.__cause__, UnreachableError):
                result.unreachable[upload.source] = str(error)
            return
        self._store.record_receipt_uploaded(upload.id, now=self._clock())
        result.sent += 1
        log.info(
            "receipt %s sent back to source %s: %s",
            upload.name,
            upload.source,
            delivery.destination,
            extra={"event": "receipt-uploaded", "source": upload.source, "file": upload.name},
        )

    def _failed(self, upload: ReceiptUpload, error: Exception, result: SendResult) -> None:
        attempts = upload.attempts + 1
        delay = self._backoff.delay(attempts)
        self._store.record_receipt_upload_failure(
            upload.id, str(error), retry_at=self._clock() + timedelta(seconds=delay)
        )
        result.failed += 1
        # Told once per copy (its first failure), then only in `status`: an outage of an hour
        # must not write a line per receipt per try.
        level = logging.WARNING if attempts == 1 else logging.DEBUG
        log.log(
            level,
            "the receipt %s for source %s could not be sent (tried again in %.0f s, then with a growing pause): %s",
            upload.name,
            upload.source,
            delay,
            error,
            extra={"event": "receipt-upload-retry", "source": upload.source, "file": upload.name},
        )
