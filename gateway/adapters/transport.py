"""The one transport: a journal file delivered into a folder of any :class:`FileSystem`, and a copy
of a receipt into a sender's receipt folder (a source's ``receipt_dir``).

Written under a temporary name and renamed into place, so the receiving system never sees half a
journal (or receipt); never over an existing file. Idempotent, so that a delivery cut short (a crash, a lost
connection after the rename) can simply be done again: a finished file of the journal's name with
the journal's size and every byte the same means an earlier attempt delivered it; any other file
of that name is someone else's, never overwritten, and a person must look (a permanent error).
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

from gateway.adapters.ports import Delivery, Entry, FileSystem, Kind, RefusedError, UnreachableError
from gateway.errors import PermanentDeliveryError, TemporaryDeliveryError, TransportError
from gateway.fsutil import sha256_stream


class FileSystemTransport:
    """Delivers journals into ``folder`` on ``fs``; ``make_folder``: create it when missing."""

    def __init__(
        self,
        fs: FileSystem,
        folder: str,
        *,
        kind: str,
        mode: int = 0o600,
        make_folder: bool = False,
        what: str = "journal",
    ) -> None:
        """``what`` the files are, as a refusal names them ("journal"; "receipt" for the copies of
        receipts a source's sender gets back)."""
        self.fs = fs
        self.what = what
        self.kind = kind
        self._folder = folder
        self._mode = mode
        self._make_folder = make_folder
        #: The outcome of the last delivery (a transport that reports its endpoint's health shows it).
        self._last_success: str | None = None
        self._last_error: str | None = None

    @property
    def destination(self) -> str:
        return self.fs.describe(self._folder)

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery:
        """Deliver the journal at ``local`` as ``name``; idempotent on retry."""
        target = f"{self._folder.rstrip('/')}/{name}"
        where = self.fs.describe(target)
        try:
            try:
                self._put(target, local, sha256=sha256, size=size, where=where)
            finally:
                self.fs.close()
        except TransportError as error:
            self._last_error = str(error)
            raise
        except RefusedError as error:
            self._last_error = str(error)
            raise PermanentDeliveryError(error.summary) from error
        except (UnreachableError, OSError) as error:
            self._last_error = str(error)
            reason = (error.strerror if isinstance(error, OSError) else None) or error
            raise TemporaryDeliveryError(
                self.fs.wording.delivery_failed.format(
                    where=where, folder=self.destination, error=error, reason=reason
                )
            ) from error
        self._last_success = datetime.now(UTC).isoformat(timespec="seconds")
        return Delivery(name, size, sha256, f"{self.destination}/{name}")

    def _put(self, target: str, local: Path, *, sha256: str, size: int, where: str) -> None:
        if self._make_folder:
            self.fs.mkdir(self._folder)
        subfolder = posixpath.dirname(target)
        if subfolder != self._folder.rstrip("/"):
            # A receipt goes into its day's folder inside the receipt folder, made when missing;
            # the receipt folder itself only where the transport may make it (a misspelt remote
            # path stays an error, FileNotFoundError, never a new folder).
            self.fs.stat(self._folder)
            self.fs.mkdir(subfolder)
        existing = self._existing(target)
        if existing is None:
            try:
                with local.open("rb") as journal:
                    self.fs.write_new(target, journal, mode=self._mode)
            except FileExistsError:
                existing = self.fs.stat(target)  # put there since it was looked for
            else:
                written = self.fs.stat(target).size
                if written != size:
                    raise TemporaryDeliveryError(f"{target}: {written} bytes after upload, expected {size}")
                return
        # A finished file of the journal's name: delivered by an earlier attempt if it has our
        # content (size first, then every byte); otherwise someone else's file, never overwritten.
        if not (existing.kind is Kind.FILE and existing.size == size and self._sha256(target) == sha256):
            raise PermanentDeliveryError(
                self.fs.wording.not_overwritten.format(
                    where=where, theirs=existing.size, ours=size, what=self.what
                )
            )

    def _existing(self, target: str) -> Entry | None:
        try:
            return self.fs.stat(target)
        except FileNotFoundError:
            return None

    def _sha256(self, target: str) -> str:
        with self.fs.open(target) as delivered:
            return sha256_stream(cast(BinaryIO, delivered))[0]
