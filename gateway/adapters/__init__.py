"""Adapters to the outside world: sources and transports (folder, SFTP).

A source lists finished files (:class:`Candidate`), hands each over as a stream for the gateway to
copy into its own staging area (:meth:`Source.open`), says whether the file is still the one that
was taken (:meth:`Source.unchanged`), and tidies it away once its receipt is out
(:meth:`Source.finish`). A transport delivers one journal file and is idempotent. Third-party
errors are mapped at this boundary to the gateway's own (:mod:`gateway.errors`): SourceError,
FileUnavailableError, TemporaryDeliveryError, PermanentDeliveryError.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol


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
