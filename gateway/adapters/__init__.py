"""Adapters to the outside world: sources and transports (folder, SFTP).

A source lists finished files and hands each over as a local file (a :class:`Candidate`); the
pipeline tells it when the file's receipt is out (:meth:`Source.finish`). A transport delivers one
journal file and is idempotent. Third-party errors are mapped at this boundary to the gateway's own
(:mod:`gateway.errors`): SourceError, TemporaryDeliveryError, PermanentDeliveryError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Candidate:
    """A finished file, ready to be claimed, as a local file (an SFTP file once downloaded)."""

    source: str
    name: str
    path: Path
    size: int
    mtime_ns: int


class Source(Protocol):
    name: str
    #: True for a remote source whose files are copied in: after a crash the same file can be
    #: listed again once already received, and is then only tidied away.
    remote: bool
    #: Files under a temporary name at the last scan (a producer is about to rename one).
    being_written: int

    def scan(self) -> list[Candidate]: ...

    def next_stable_in(self) -> float | None: ...

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """The file's receipt is out and its local copy archived: clean up at the source."""

    def end_batch(self) -> None:
        """After a scan's files are done: close connections."""
