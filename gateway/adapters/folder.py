"""Local folders: a source that takes finished files from an inbox, and a journal transport.

The source's full scan is the truth; watchdog only wakes the daemon early (inotify drops events
when its queue overflows, and network shares send none). A file is taken only when it is finished:
never under a temporary name (``.part``, ``.tmp``, a leading dot); when a done-marker is configured,
only once ``<name><marker>`` exists; otherwise once its size and mtime have stayed the same for
``stable_seconds`` on the gateway's own monotonic clock (a copy can carry an old mtime, and the
producer's clock may be skewed). Symbolic links are never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from watchdog.events import FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from gateway.adapters import Candidate
from gateway.errors import FileUnavailableError, PermanentDeliveryError, SourceError, TemporaryDeliveryError
from gateway.fsutil import (
    copy_new,
    display_name,
    fsync_folder,
    is_being_written,
    is_temporary_name,
    is_valid_text,
    remove_stale_temporaries,
    sha256_file,
)

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.adapters.folder")

#: Files taken per scan at most: a burst of 100,000 files is worked through oldest first.
DEFAULT_MAX_FILES_PER_SCAN = 1000


class StabilityTracker:
    """Size and mtime unchanged for ``stable_seconds`` on the gateway's own clock since first sight.

    Shared by the folder and SFTP sources: a copy may carry an old mtime and the producer's clock
    may be skewed, so only our monotonic clock decides how long a file has been still. A file the
    gateway could not take (it may not read it, say) is *held*: not offered again until its hold
    ends, so that it is neither retried in a hot loop nor forgotten.
    """

    def __init__(self, stable_seconds: float, clock: Callable[[], float]) -> None:
        self._stable_seconds = stable_seconds
        self._clock = clock
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime, since)
        self._held: dict[str, float] = {}  # name -> until (monotonic)

    def observe(self, present: dict[str, tuple[int, int]]) -> set[str]:
        """Record what a listing shows (name -> (size, mtime)); return the names that are stable."""
        now = self._clock()
        stable = set()
        for name, shape in present.items():
            seen = self._seen.get(name)
            if seen is None or seen[:2] != shape:
                self._seen[name] = (*shape, now)
                self._held.pop(name, None)  # a changed file gets a fresh chance
            elif now - seen[2] >= self._stable_seconds and self._held.get(name, 0.0) <= now:
                stable.add(name)
        for gone in set(self._seen) - set(present):
            del self._seen[gone]
            self._held.pop(gone, None)
        return stable

    def hold(self, name: str, seconds: float) -> None:
        self._held[name] = self._clock() + seconds

    def held(self, name: str) -> bool:
        return self._held.get(name, 0.0) > self._clock()

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._held.pop(name, None)

    def __len__(self) -> int:
        return len(self._seen)

    def next_stable_in(self) -> float | None:
        if not self._seen:
            return None
        now = self._clock()
        return max(
            0.0,
            min(
                max(since + self._stable_seconds, self._held.get(name, 0.0)) - now
                for name, (_, _, since) in self._seen.items()
            ),
        )


def local_identity(info: os.stat_result) -> str:
    """How a local file looks now: a rewrite, a replacement or a new copy changes it."""
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def not_taken_reason(entry: os.DirEntry[str]) -> str | None:
    """Why an inbox entry that is not a temporary name will never be taken; None: it can be."""
    try:
        if entry.is_symlink():
            return "a symbolic link (never followed)"
        mode = entry.stat(follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class FolderSource:
    """Lists finished files in one local folder, oldest first; never changes a file it did not
    create (the gateway copies a file in and removes the inbox entry, so a producer's own file,
    a hard link to it or its mode is never touched)."""

    def __init__(
        self,
        *,
        name: str,
        folder: Path,
        stable_seconds: float,
        pattern: str = "*",
        done_marker: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_per_scan: int = DEFAULT_MAX_FILES_PER_SCAN,
    ) -> None:
        self.name = name
        self.folder = folder
        self._pattern = pattern
        self._done_marker = done_marker
        self._max_per_scan = max_per_scan
        self._stability = StabilityTracker(stable_seconds, clock)
        self._reported: dict[str, str] = {}  # entries never taken, told once each
        #: Files under a temporary name at the last scan: a producer is about to rename one.
        self.being_written = 0

    def scan(self) -> list[Candidate]:
        ready: list[Candidate] = []
        present: dict[str, tuple[int, int]] = {}
        found: dict[str, Candidate] = {}
        markers: set[str] = set()
        try:
            entries = list(os.scandir(self.folder))
        except OSError as error:
            raise SourceError(f"{self.folder}: cannot list the folder: {error.strerror or error}") from error
        if self._done_marker:
            markers = {entry.name for entry in entries if entry.name.endswith(self._done_marker)}
        self.being_written = 0
        not_taken: dict[str, str] = {}
        for entry in entries:
            name = entry.name
            if is_temporary_name(name):
                self.being_written += is_being_written(name)
                continue
            if self._done_marker and name.endswith(self._done_marker):
                continue
            if not fnmatch.fnmatch(name, self._pattern):
                continue
            reason = not_taken_reason(entry)
            if reason is not None:
                not_taken[name] = reason
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # moved away between listing and stat
            candidate = Candidate(
                self.name,
                display_name(name),
                entry.path,
                info.st_size,
                info.st_mtime_ns,
                local_identity(info),
                name_is_valid=is_valid_text(name),
            )
            if self._done_marker:
                if name + self._done_marker in markers and not self._stability.held(name):
                    ready.append(candidate)
                continue
            present[name] = (info.st_size, info.st_mtime_ns)
            found[name] = candidate
        self._report_not_taken(not_taken)
        ready += [found[name] for name in self._stability.observe(present)]
        ready.sort(key=lambda candidate: (candidate.mtime_ns, candidate.name))
        return ready[: self._max_per_scan]

    def _report_not_taken(self, not_taken: dict[str, str]) -> None:
        """One warning per entry that will never be taken (a FIFO, a folder, a link named x.xml)."""
        for name, reason in not_taken.items():
            if self._reported.get(name) != reason:
                log.warning(
                    "source %s: %s is %s and is not taken; move it away",
                    self.name,
                    display_name(name),
                    reason,
                )
        self._reported = not_taken

    @contextlib.contextmanager
    def open(self, candidate: Candidate) -> Iterator[BinaryIO]:
        path = candidate.location
        try:
            # O_NOFOLLOW: a link swapped in after the listing is not followed either.
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOATIME", 0))
        except PermissionError:
            try:
                descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # O_NOATIME needs ownership
            except OSError as error:
                raise _unavailable(candidate, error) from error
        except OSError as error:
            raise _unavailable(candidate, error) from error
        with os.fdopen(descriptor, "rb") as handle:
            if local_identity(os.fstat(descriptor)) != candidate.identity:
                raise FileUnavailableError(f"{candidate.name} changed after it was listed", cause="changed")
            yield _FailingReadsAsUnavailable(handle, candidate)  # type: ignore[misc]

    def unchanged(self, candidate: Candidate) -> bool:
        try:
            return local_identity(os.lstat(candidate.location)) == candidate.identity
        except FileNotFoundError:
            return False

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """Remove the inbox entry (only if it is still the file taken) and its done-marker.

        The entry is first renamed aside (one atomic step) and only then compared with what was
        taken: a producer who puts a new version under the same name at that very moment gets it
        back, instead of losing it to an unlink. Raises SourceError when the folder refuses (the
        file stays, and is tidied later)."""
        path = Path(candidate.location)
        self._stability.forget(path.name)
        # Named after the file, so that a crash between the two steps is finished next time.
        key = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
        aside = path.with_name(f".gateway-taking-{key}.tmp")
        try:
            if aside.exists():
                self._settle_aside(aside, path, candidate)
            try:
                path.rename(aside)
            except FileNotFoundError:
                pass  # gone already (removed before a crash cut the tidying short)
            else:
                self._settle_aside(aside, path, candidate)
            if self._done_marker:
                (Path(candidate.location + self._done_marker)).unlink(missing_ok=True)
        except OSError as error:
            raise SourceError(
                f"{self.folder}: cannot remove {candidate.name} after its receipt: {error.strerror or error}"
            ) from error

    def _settle_aside(self, aside: Path, path: Path, candidate: Candidate) -> None:
        """Remove the file renamed aside if it is the one taken; else give it its name back."""
        if local_identity(aside.lstat()) == candidate.identity:
            aside.unlink()
        else:
            log.info(
                "source %s: %s was replaced by a new version after it was taken; the new one is taken on its own",
                self.name,
                candidate.name,
            )
            _put_back(aside, path)
        fsync_folder(self.folder)

    def hold(self, candidate: Candidate, seconds: float) -> None:
        self._stability.hold(Path(candidate.location).name, seconds)

    def waiting(self) -> int:
        """Files in the folder that are not finished yet or not yet taken."""
        return len(self._stability)

    def next_stable_in(self) -> float | None:
        """Seconds until the earliest unfinished file could be stable; None when none waits."""
        return None if self._done_marker else self._stability.next_stable_in()

    def end_batch(self) -> None:
        """Nothing to close for a local folder."""


def _put_back(aside: Path, path: Path) -> None:
    """Give a file renamed aside its name again, never over a newer one that took the name."""
    for attempt in range(100):
        target = path if attempt == 0 else path.with_name(f"{path.stem}.{attempt}{path.suffix}")
        try:
            os.link(aside, target)
        except FileExistsError:
            continue
        aside.unlink()
        return
    raise FileExistsError(f"no free name for {path} beside it")


def _unavailable(candidate: Candidate, error: OSError) -> FileUnavailableError:
    if isinstance(error, FileNotFoundError):
        return FileUnavailableError(f"{candidate.name} vanished before it was read", cause="vanished")
    if isinstance(error, PermissionError):
        return FileUnavailableError(
            f"{candidate.name} may not be read by the gateway's user ({error.strerror}): give the "
            "gateway read access (e.g. the inbox's group)",
            cause="unreadable",
        )
    if error.errno == errno.ELOOP:
        return FileUnavailableError(f"{candidate.name} became a symbolic link: not followed", cause="link")
    return FileUnavailableError(
        f"{candidate.name} cannot be read: {error.strerror or error}", cause="read-error"
    )


class _FailingReadsAsUnavailable:
    """A read error on the producer's file is that file's problem to wait out, not the gateway's."""

    def __init__(self, handle: BinaryIO, candidate: Candidate) -> None:
        self._handle = handle
        self._candidate = candidate

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as error:
            raise _unavailable(self._candidate, error) from error


class _WakeOnFinishedFile(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._wake.set()


class FolderWatcher:
    """Wakes the daemon when a file in a folder is closed after writing or moved into place.

    "Created" fires when a producer opens the file, not when it is complete, so only "closed" and
    "moved" events are asked for; the scan decides whether the file is really finished.
    """

    def __init__(self, folders: list[Path], wake: threading.Event) -> None:
        self._observer = Observer()
        handler = _WakeOnFinishedFile(wake)
        for folder in folders:
            self._observer.schedule(handler, str(folder), event_filter=[FileClosedEvent, FileMovedEvent])

    def start(self) -> None:
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a journal went."""

    remote_name: str
    size: int
    sha256: str
    destination: str


class FolderTransport:
    """Delivers a journal file into a local folder (a mounted share, or the default outbox)."""

    kind = "folder"

    def __init__(self, folder: Path, *, mode: int = 0o600) -> None:
        self.folder = folder
        self._mode = mode

    @property
    def destination(self) -> str:
        return str(self.folder)

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery:
        """Copy the journal at ``local`` in as ``name``; idempotent on retry.

        A finished file of the same name, size and SHA-256 means an earlier attempt delivered it;
        a different file of that name is never overwritten (a permanent error for a person).
        """
        target = self.folder / name
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.folder)  # what a delivery killed mid-copy left behind
            try:
                with local.open("rb") as journal:
                    copy_new(journal, target, mode=self._mode)
            except FileExistsError:
                # Delivered by an earlier attempt if the content is ours; else never overwritten.
                if target.stat().st_size == size and sha256_file(target) == sha256:
                    return Delivery(name, size, sha256, str(target))
                raise PermanentDeliveryError(
                    f"{target} already exists with other content: the journal is not overwritten"
                ) from None
        except PermanentDeliveryError:
            raise
        except OSError as error:
            raise TemporaryDeliveryError(f"{target}: {error.strerror or error}") from error
        return Delivery(name, size, sha256, str(target))
