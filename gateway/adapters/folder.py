"""Local folders: a source that takes finished files from an inbox, and a journal transport.

The source's full scan is the truth; watchdog only wakes the daemon early (inotify drops events
when its queue overflows, and network shares send none). A file is taken only when it is finished:
never under a temporary name (``.part``, ``.tmp``, a leading dot); when a done-marker is configured,
only once ``<name><marker>`` exists; otherwise once its size and mtime have stayed the same for
``stable_seconds`` on the gateway's own monotonic clock (a copy can carry an old mtime, and the
producer's clock may be skewed). Symbolic links are never followed.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from gateway.adapters import Candidate
from gateway.config import SourceConfig
from gateway.errors import PermanentDeliveryError, SourceError, TemporaryDeliveryError

log = logging.getLogger(__name__)

TEMPORARY_SUFFIXES = (".part", ".tmp")
#: Files taken per scan at most: a burst of 100,000 files is worked through oldest first.
DEFAULT_MAX_FILES_PER_SCAN = 1000


def is_temporary_name(name: str) -> bool:
    """Never taken: a producer's temporary name, or any hidden file (.gitkeep, .DS_Store, ...)."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def is_being_written(name: str) -> bool:
    """A producer's temporary name: a rename into the final name is probably coming."""
    return name.endswith(TEMPORARY_SUFFIXES) or (name.startswith(".") and "." in name[1:])


class StabilityTracker:
    """Size and mtime unchanged for ``stable_seconds`` on the gateway's own clock since first sight.

    Shared by the folder and SFTP sources: a copy may carry an old mtime and the producer's clock
    may be skewed, so only our monotonic clock decides how long a file has been still.
    """

    def __init__(self, stable_seconds: float, clock: Callable[[], float]) -> None:
        self._stable_seconds = stable_seconds
        self._clock = clock
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime, since)

    def observe(self, present: dict[str, tuple[int, int]]) -> set[str]:
        """Record what a listing shows (name -> (size, mtime)); return the names that are stable."""
        now = self._clock()
        stable = set()
        for name, shape in present.items():
            seen = self._seen.get(name)
            if seen is None or seen[:2] != shape:
                self._seen[name] = (*shape, now)
            elif now - seen[2] >= self._stable_seconds:
                stable.add(name)
        for gone in set(self._seen) - set(present):
            del self._seen[gone]
        return stable

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def __len__(self) -> int:
        return len(self._seen)

    def next_stable_in(self) -> float | None:
        if not self._seen:
            return None
        now = self._clock()
        return max(0.0, min(since + self._stable_seconds - now for _, _, since in self._seen.values()))


class FolderSource:
    """Lists finished files in one local folder, oldest first."""

    def __init__(
        self,
        config: SourceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_per_scan: int = DEFAULT_MAX_FILES_PER_SCAN,
    ) -> None:
        assert config.path is not None
        self.name = config.name
        self.folder = config.path
        self._pattern = config.pattern
        self._done_marker = config.done_marker
        self._max_per_scan = max_per_scan
        self._stability = StabilityTracker(config.stable_seconds, clock)
        self._warned_links: set[str] = set()
        #: Files under a temporary name at the last scan: a producer is about to rename one.
        self.being_written = 0
        self.remote = False

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
        for entry in entries:
            name = entry.name
            if is_temporary_name(name):
                self.being_written += is_being_written(name)
                continue
            if self._done_marker and name.endswith(self._done_marker):
                continue
            if not fnmatch.fnmatch(name, self._pattern):
                continue
            if entry.is_symlink():
                if name not in self._warned_links:
                    log.warning("source %s: %s is a symbolic link and is not followed", self.name, name)
                    self._warned_links.add(name)
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # moved away between listing and stat
            candidate = Candidate(self.name, name, Path(entry.path), info.st_size, info.st_mtime_ns)
            if self._done_marker:
                if name + self._done_marker in markers:
                    ready.append(candidate)
                continue
            present[name] = (info.st_size, info.st_mtime_ns)
            found[name] = candidate
        ready += [found[name] for name in self._stability.observe(present)]
        ready.sort(key=lambda candidate: (candidate.mtime_ns, candidate.name))
        return ready[: self._max_per_scan]

    def waiting(self) -> int:
        """Files in the folder that are not finished yet or not yet taken."""
        return len(self._stability)

    def next_stable_in(self) -> float | None:
        """Seconds until the earliest unfinished file could be stable; None when none waits."""
        return None if self._done_marker else self._stability.next_stable_in()

    def end_batch(self) -> None:
        """Nothing to close for a local folder."""

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """After the original has been moved away: remove its done-marker and forget it."""
        self._stability.forget(candidate.name)
        if self._done_marker:
            (self.folder / (candidate.name + self._done_marker)).unlink(missing_ok=True)


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


# -- writing files safely ------------------------------------------------------------------------


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(target: Path, data: bytes, *, mode: int = 0o600, unique: bool = False) -> None:
    """Write ``data`` to ``target`` so that a reader sees the whole file or nothing.

    Temp file in the same folder, fsync, rename, fsync the folder: after a crash the target is
    either absent or complete, never half written.
    """
    # A fixed temporary name: an attempt after a crash overwrites the half-written leftover. With
    # ``unique`` (writers that may run at once, like a report on demand beside the nightly one),
    # each writer has its own, and the last rename wins whole.
    temporary = target.with_name(
        f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp" if unique else f".{target.name}.tmp"
    )
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    temporary.replace(target)
    fsync_folder(target.parent)


def copy_atomically(source: Path, target: Path, *, mode: int = 0o600) -> None:
    """Copy a file in under a temporary name, fsync, rename, fsync the folder (streamed).

    The temporary name is fixed, so a retry after a crash overwrites what the crash left behind
    (and only one process delivers a journal at a time: the store's delivery lease).
    """
    temporary = target.with_name(f".{target.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out, source.open("rb") as into:
        shutil.copyfileobj(into, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(target)
    fsync_folder(target.parent)


def move_durably(source: Path, target: Path) -> None:
    """Move a file into ``target`` (same or another file system) and make the move durable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(target)
    except OSError as error:
        if error.errno != errno.EXDEV:  # another file system; copy, then remove
            raise
        copy_atomically(source, target)
        source.unlink()
        fsync_folder(source.parent)
    fsync_folder(target.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


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
            if target.exists():
                if target.stat().st_size == size and sha256_file(target) == sha256:
                    return Delivery(name, size, sha256, str(target))
                raise PermanentDeliveryError(
                    f"{target} already exists with other content: the journal is not overwritten"
                )
            copy_atomically(local, target, mode=self._mode)
        except PermanentDeliveryError:
            raise
        except OSError as error:
            raise TemporaryDeliveryError(f"{target}: {error.strerror or error}") from error
        return Delivery(name, size, sha256, str(target))
