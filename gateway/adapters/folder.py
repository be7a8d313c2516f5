"""Local folders: the local file system, a source that takes finished files from an inbox, and a
journal transport into a folder (a mounted share, or the default outbox).

The source's full scan is the truth; watchdog (:mod:`gateway.adapters.watch`) only wakes the
daemon early (inotify drops events when its queue overflows, and network shares send none).
Symbolic links are never followed. The source never changes a file it did not create: the
gateway copies a file in and removes the inbox entry, so a producer's own file, a hard link to it
or its mode is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from gateway.adapters.polling import PollingSource
from gateway.adapters.ports import Entry, FileSystem, Kind, Wording, kind_of
from gateway.adapters.transport import FileSystemTransport
from gateway.fsutil import copy_new, fsync_folder, publish, remove_stale_temporaries

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.adapters.folder")

#: Files taken per scan at most: a burst of 100,000 files is worked through oldest first.
DEFAULT_MAX_FILES_PER_SCAN = 1000


def local_identity(info: os.stat_result) -> str:
    """How a local file looks now: a rewrite, a replacement or a new copy changes it."""
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def not_taken_reason(entry: os.DirEntry[str]) -> str | None:
    """Why an inbox entry that is not a temporary name will never be taken; None: it can be."""
    try:
        kind = kind_of(entry.stat(follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None
    return None if kind is Kind.FILE else kind.value


def _entry(name: str, info: os.stat_result) -> Entry:
    return Entry(name, kind_of(info.st_mode), info.st_size, info.st_mtime_ns, local_identity(info))


class LocalFileSystem:
    """The local disk. Links are never followed (``lstat``, ``O_NOFOLLOW``); removals and
    publishing are made durable (the folder is fsynced)."""

    log = log
    wording = Wording()

    def __init__(self, *, group: int | None = None) -> None:
        """``group``: files it writes are for another account to read through a group (receipts
        in an ERP's receipt folder): they get this group (-1: the folder's, when it is setgid)
        and exactly the mode asked for; None: the gateway's own, as the umask leaves them."""
        self._group = group

    def describe(self, path: str) -> str:
        return path

    def list(self, folder: str) -> Sequence[Entry]:
        entries = []
        with os.scandir(folder) as listing:
            for entry in listing:
                try:
                    entries.append(_entry(entry.name, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # moved away between listing and stat
        return entries

    def stat(self, path: str) -> Entry:
        return _entry(posixpath.basename(path), Path(path).lstat())

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[_LocalFile]:
        try:
            # O_NOFOLLOW: a link swapped in after the listing is not followed either.
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOATIME", 0))
        except PermissionError:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # O_NOATIME needs ownership
        with os.fdopen(descriptor, "rb") as handle:
            yield _LocalFile(handle, _entry(posixpath.basename(path), os.fstat(descriptor)))

    def write_new(self, path: str, content: BinaryIO, *, mode: int) -> None:
        target = Path(path)
        remove_stale_temporaries(target.parent)  # what a write killed mid-copy left behind
        copy_new(content, target, mode=mode, group=self._group)

    def rename(self, source: str, target: str) -> None:
        Path(source).rename(target)

    def rename_new(self, source: str, target: str) -> None:
        publish(Path(source), Path(target))

    def remove(self, path: str) -> None:
        Path(path).unlink()
        fsync_folder(Path(path).parent)

    def mkdir(self, path: str) -> None:
        target = Path(path)
        made = [folder for folder in (target, *target.parents) if not folder.exists()]
        target.mkdir(parents=True, exist_ok=True)
        if self._group is None:
            return
        # Folders made for another account's files (a receipt's day folder): that account must
        # pass through them, through the group, as it reads the files (0750; setgid inherited).
        for folder in reversed(made):
            inherited = folder.stat().st_mode & stat.S_ISGID
            if self._group >= 0:
                os.chown(folder, -1, self._group)
            folder.chmod(0o750 | inherited)

    def close(self) -> None:
        """Nothing to close for a local folder."""


class _LocalFile:
    def __init__(self, handle: BinaryIO, entry: Entry) -> None:
        self._handle = handle
        self.entry = entry

    def read(self, size: int = -1, /) -> bytes:
        return self._handle.read(size)


class FolderSource(PollingSource):
    """Finished files in one local folder, listed at every scan, removed after their receipt."""

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
        fs: FileSystem | None = None,
    ) -> None:
        super().__init__(
            name=name,
            fs=fs or LocalFileSystem(),
            folder=str(folder),
            stable_seconds=stable_seconds,
            pattern=pattern,
            done_marker=done_marker,
            after="delete",
            max_per_scan=max_per_scan,
            clock=clock,
        )
        self.folder = folder


class FolderTransport(FileSystemTransport):
    """Delivers a journal file into a local folder (created if missing), owner-only by default."""

    def __init__(self, folder: Path, *, mode: int = 0o600, fs: FileSystem | None = None) -> None:
        super().__init__(fs or LocalFileSystem(), str(folder), kind="folder", mode=mode, make_folder=True)
        self.folder = folder
