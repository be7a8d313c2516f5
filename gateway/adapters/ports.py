"""The shapes the adapters share: what a source and a transport offer the service, and the one
file-system seam both are built on.

A :class:`FileSystem` is a folder tree somewhere: the local disk (:mod:`gateway.adapters.folder`),
an SFTP server (:mod:`gateway.adapters.sftp`) or memory (:mod:`gateway.adapters.memory`, for
tests). The one polling source (:mod:`gateway.adapters.polling`) and the one transport
(:mod:`gateway.adapters.transport`) are written once against it, so stability, done-markers,
tidying a taken file, idempotent delivery and the mapping of errors to the gateway's own exist
once, and are tested without a server.

What a file system raises, and what it means:

* :class:`FileNotFoundError`: the entry is not there (a producer removed it, or it never was);
* :class:`PermissionError`, :class:`FileExistsError` and other :class:`OSError`: about the entry;
* :class:`UnreachableError`: not about any entry: the connection could not be made or was lost (tried
  again later); :class:`RefusedError` when the reason needs a person (a host key, a login refused).

A medium decides which of its errors are which (on SFTP, a failure other than "no such file" is
the session's; see :class:`gateway.adapters.sftp.SftpFileSystem`).
"""

from __future__ import annotations

import enum
import logging
import stat
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# -- what the service sees -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A finished file in a source, as the source showed it when it was listed."""

    source: str
    #: The file's name as text (bytes that are not UTF-8 and control characters escaped).
    name: str
    #: Where it is in its source: a local path, or a path on the SFTP server. May hold bytes that
    #: are not UTF-8 (as lone surrogates); only the source itself uses it to reach the file.
    location: str
    size: int
    mtime_ns: int
    #: How the source shows the file: device, inode, size and mtime for a local file; size and
    #: mtime on an SFTP server. A rewrite or a new upload under the same name changes it.
    identity: str
    #: False when the name is not valid UTF-8: such a file is answered with F01, unread.
    name_is_valid: bool = True


class Source(Protocol):
    name: str
    #: Files under a temporary name at the last scan (a producer is about to rename one).
    being_written: int

    def scan(self) -> list[Candidate]:
        """The files that are finished and not held, oldest first (SourceError: cannot list)."""

    def open(self, candidate: Candidate) -> AbstractContextManager[BinaryIO]:
        """The file's bytes. FileUnavailableError when this one file cannot be read now (or is no
        longer the one listed); SourceError when the source itself cannot be reached."""

    def unchanged(self, candidate: Candidate) -> bool:
        """Whether the source still shows the file as it was when it was taken."""

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """The file's receipt is out and the gateway's copy archived: tidy it away in the source
        (only if it is still the file that was taken: a new version waits for its own turn)."""

    def hold(self, candidate: Candidate, seconds: float) -> None:
        """Do not offer this file again for ``seconds`` (it could not be taken now)."""

    def next_stable_in(self) -> float | None:
        """Seconds until a file that is waiting could be offered; None when none waits."""

    def end_batch(self) -> None:
        """After a scan's files are done: close connections."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a journal went."""

    remote_name: str
    size: int
    sha256: str
    destination: str


class Transport(Protocol):
    """Delivers one journal file; idempotent (a finished file of the same name and content at the
    destination counts as delivered). Raises TemporaryDeliveryError or PermanentDeliveryError."""

    #: How a journal receipt names the transport: "folder" or "sftp".
    kind: str

    @property
    def destination(self) -> str: ...

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery: ...


# -- the file-system seam --------------------------------------------------------------------------


class UnreachableError(Exception):
    """The file system cannot be reached now: a connection that could not be made or was lost.
    Its text is the medium's own (operators know it); the next try is a new connection."""


class RefusedError(UnreachableError):
    """The server refused the gateway for a reason a person must fix (an unknown or changed host
    key, a key it does not accept): a delivery is not retried on its own."""

    def __init__(self, message: str, *, summary: str) -> None:
        super().__init__(message)
        #: What a delivery that failed for good says.
        self.summary = summary


class Kind(enum.Enum):
    """What an entry in a folder is; the value is how a log line names one that is not taken."""

    FILE = "a regular file"
    FOLDER = "a folder"
    LINK = "a symbolic link (never followed)"
    PIPE = "a named pipe (FIFO)"
    SOCKET = "a socket"
    OTHER = "not a regular file"


def kind_of(mode: int | None) -> Kind:
    """The kind of an entry from its ``st_mode`` (None: the server did not say)."""
    if mode is None:
        return Kind.OTHER
    for test, kind in (
        (stat.S_ISREG, Kind.FILE),
        (stat.S_ISDIR, Kind.FOLDER),
        (stat.S_ISLNK, Kind.LINK),
        (stat.S_ISFIFO, Kind.PIPE),
        (stat.S_ISSOCK, Kind.SOCKET),
    ):
        if test(mode):
            return kind
    return Kind.OTHER


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry as the file system shows it (links are not followed where the medium can tell)."""

    #: The name in its folder; bytes that are not UTF-8 are kept as lone surrogates.
    name: str
    kind: Kind
    size: int
    mtime_ns: int
    #: What changes when the file is rewritten or replaced under the same name (see Candidate).
    identity: str


class Opened(Protocol):
    """A file opened for reading."""

    @property
    def entry(self) -> Entry:
        """The file that was opened, as it was when it was opened."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Wording:
    """How a medium words what happens to a producer's file and to a journal. Operators know these
    lines, so each medium keeps its own; the defaults are a local folder's."""

    vanished: str = "{name} vanished before it was read"
    unreadable: str = (
        "{name} may not be read by the gateway's user ({reason}): give the gateway read access "
        "(e.g. the inbox's group)"
    )
    changed: str = "{name} changed after it was listed"
    #: Logged (with the source's name and the file's) when a new version took the name meanwhile.
    taken_again: str = (
        "source %s: %s was replaced by a new version after it was taken; the new one is taken on its own"
    )
    #: A journal's (or receipt's) name is taken by other content: ``where`` (the target),
    #: ``theirs`` and ``ours`` (sizes), ``what`` ("journal", "receipt").
    not_overwritten: str = "{where} already exists with other content: the {what} is not overwritten"
    #: A delivery that failed and is tried again: ``where`` (the target), ``folder`` (the
    #: destination), ``error`` and ``reason`` (its strerror where it has one).
    delivery_failed: str = "{where}: {reason}"


class FileSystem(Protocol):
    """A folder tree the gateway takes files from or delivers to. Paths are ``/``-separated text
    (bytes that are not UTF-8 as lone surrogates); errors as the module says."""

    @property
    def log(self) -> logging.Logger:
        """The logger the medium's lines go to (operators filter on its name)."""

    @property
    def wording(self) -> Wording: ...

    def describe(self, path: str) -> str:
        """How a path on this file system is named in messages and receipts."""

    def list(self, folder: str) -> Sequence[Entry]:
        """Every entry of ``folder`` (``.`` and ``..`` left out)."""

    def stat(self, path: str) -> Entry: ...

    def open(self, path: str) -> AbstractContextManager[Opened]:
        """The file for reading; never through a symbolic link where the medium can refuse one."""

    def write_new(self, path: str, content: BinaryIO, *, mode: int) -> None:
        """A new file at ``path`` with what is left in ``content``: written under a temporary name
        beside it, then renamed into place; never over a file that is there (FileExistsError).
        ``mode`` where the medium lets the gateway set one."""

    def rename(self, source: str, target: str) -> None:
        """One atomic step; ``target`` is a name of the gateway's own (it may be replaced)."""

    def rename_new(self, source: str, target: str) -> None:
        """Like :meth:`rename`, but never over an existing ``target`` (FileExistsError)."""

    def remove(self, path: str) -> None: ...

    def mkdir(self, path: str) -> None:
        """The folder (and its parents where the medium can), if it is not there yet. A failure
        the medium cannot tell from "it is there already" shows at the next step."""

    def close(self) -> None:
        """Close the connection, if the medium has one; the next call opens a new one."""
