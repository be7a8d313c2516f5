"""Fakes that ship with the package, as httpx ships ``MockTransport``: a file system in memory with
faults to inject, and a transport that records what it is given and fails when told.

They stand in for a folder, an SFTP server or a delivery destination in tests of anything built on
the seams (the polling source, the transport, the intake, the journal service), run in
milliseconds, and need no server::

    fs = MemoryFileSystem()
    fs.write("/in/export.xml", b"<Arendefil .../>")
    fs.fail("list", UnreachableError("Connection reset by peer"))      # the next listing fails
    source = SftpSource(name="erp", endpoint=endpoint, stable_seconds=0, fs=fs)

    transport = MockTransport()
    transport.fail(TemporaryDeliveryError("timed out"), times=2)  # then it delivers
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import itertools
import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from gateway.adapters.ports import Delivery, Entry, Kind, Wording
from gateway.errors import PermanentDeliveryError

#: The calls of the seam a fault or an action can be attached to ("read": a read of an open file).
Operation = Literal["list", "stat", "open", "read", "write", "rename", "remove", "mkdir"]


@dataclass(slots=True)
class _Node:
    kind: Kind
    inode: int
    content: bytes = b""
    mtime_ns: int = 0
    mode: int | None = None


@dataclass(slots=True)
class _Fault:
    operation: Operation
    path: str | None
    error: BaseException
    times: int | None  # None: every time


@dataclass(slots=True)
class _Action:
    operation: Operation
    path: str | None
    action: Callable[[], object]


class MemoryFileSystem:
    """A folder tree in memory that behaves as :class:`gateway.adapters.ports.FileSystem` says.

    The test's side: :meth:`write` (a producer writes or rewrites a file), :meth:`make` (an entry
    of another kind), :meth:`read`, :meth:`exists`, :meth:`names`, :meth:`mode`; :meth:`fail` (the
    next matching calls raise an error, e.g. :class:`PermissionError` for one file or
    :class:`UnreachableError` for a lost connection), :meth:`before` (something happens just before a
    call: a producer's race); :attr:`sessions` (connections opened: the first call after
    :meth:`close` opens one). Paths are absolute, ``/``-separated; ``/`` exists.

    A file's identity is its inode, size and mtime, as on a local disk: a rewrite in place changes
    its mtime, a new file under the same name its inode.
    """

    def __init__(
        self,
        *,
        wording: Wording | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.wording = wording or Wording()
        self.log = log or logging.getLogger("gateway.adapters.memory")
        self._clock = clock
        self._inodes = itertools.count(1)
        self._nodes: dict[str, _Node] = {"/": _Node(Kind.FOLDER, next(self._inodes))}
        self._faults: list[_Fault] = []
        self._actions: list[_Action] = []
        self._connected = False
        #: Connections opened so far (the first call after a :meth:`close` opens one).
        self.sessions = 0

    # -- the test's side -----------------------------------------------------------------------

    def write(self, path: str, content: bytes = b"", *, mtime_ns: int | None = None) -> None:
        """A producer writes ``path`` (its folders made): a new file, or the same one rewritten."""
        path = _normal(path)
        self._make_folders(posixpath.dirname(path))
        node = self._nodes.get(path)
        if node is None or node.kind is not Kind.FILE:
            node = self._nodes[path] = _Node(Kind.FILE, next(self._inodes))
        node.content = content
        node.mtime_ns = self._clock() if mtime_ns is None else mtime_ns

    def make(self, path: str, kind: Kind) -> None:
        """An entry of another kind at ``path`` (a folder, a link, a FIFO ...)."""
        path = _normal(path)
        self._make_folders(posixpath.dirname(path))
        self._nodes[path] = _Node(kind, next(self._inodes), mtime_ns=self._clock())

    def read(self, path: str) -> bytes:
        return self._node(_normal(path)).content

    def exists(self, path: str) -> bool:
        return _normal(path) in self._nodes

    def names(self, folder: str) -> builtins.list[str]:
        """The names in ``folder``, sorted."""
        return sorted(posixpath.basename(path) for path in self._children(_normal(folder)))

    def mode(self, path: str) -> int | None:
        """The mode a file was delivered with (None: written by :meth:`write`)."""
        return self._node(_normal(path)).mode

    def fail(
        self, operation: Operation, error: BaseException, *, path: str | None = None, times: int | None = 1
    ) -> None:
        """The next ``times`` calls of ``operation`` (on ``path``, or on any) raise ``error``
        (``times=None``: every one)."""
        self._faults.append(_Fault(operation, None if path is None else _normal(path), error, times))

    def before(self, operation: Operation, action: Callable[[], object], *, path: str | None = None) -> None:
        """Run ``action`` once, just before the next call of ``operation`` (on ``path``, or on any)."""
        self._actions.append(_Action(operation, None if path is None else _normal(path), action))

    # -- the seam ------------------------------------------------------------------------------

    def describe(self, path: str) -> str:
        return f"memory:{path}"

    def list(self, folder: str) -> Sequence[Entry]:
        folder = self._call("list", folder)
        node = self._node(folder)
        if node.kind is not Kind.FOLDER:
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder)
        return [self._entry(path) for path in sorted(self._children(folder))]

    def stat(self, path: str) -> Entry:
        return self._entry(self._call("stat", path))

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[_MemoryFile]:
        path = self._call("open", path)
        node = self._node(path)
        if node.kind is Kind.LINK:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        if node.kind is not Kind.FILE:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        # What was opened is read, whatever happens to the name meanwhile (as with a descriptor).
        yield _MemoryFile(self, path, node.content, self._entry(path))

    def write_new(self, path: str, content: BinaryIO, *, mode: int) -> None:
        path = self._call("write", path)
        self._folder_of(path)
        if path in self._nodes:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        data = content.read()
        self._nodes[path] = _Node(Kind.FILE, next(self._inodes), data, self._clock(), mode)

    def rename(self, source: str, target: str) -> None:
        self._move(self._call("rename", source), _normal(target), replace=True)

    def rename_new(self, source: str, target: str) -> None:
        self._move(self._call("rename", source), _normal(target), replace=False)

    def remove(self, path: str) -> None:
        path = self._call("remove", path)
        if self._node(path).kind is Kind.FOLDER:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        del self._nodes[path]

    def mkdir(self, path: str) -> None:
        path = self._call("mkdir", path)
        node = self._nodes.get(path)
        if node is not None and node.kind is not Kind.FOLDER:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        self._make_folders(path)

    def close(self) -> None:
        self._connected = False

    # -- inside --------------------------------------------------------------------------------

    def _call(self, operation: Operation, path: str) -> str:
        """A call of the seam: opens a session, runs actions, raises an injected fault."""
        path = _normal(path)
        if not self._connected:
            self._connected = True
            self.sessions += 1
        for action in [a for a in self._actions if _matches(a.operation, a.path, operation, path)]:
            self._actions.remove(action)
            action.action()
        for fault in self._faults:
            if _matches(fault.operation, fault.path, operation, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                raise fault.error
        return path

    def _node(self, path: str) -> _Node:
        node = self._nodes.get(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return node

    def _entry(self, path: str) -> Entry:
        node = self._node(path)
        size = len(node.content)
        identity = f"{node.inode}:{size}:{node.mtime_ns}"
        return Entry(posixpath.basename(path), node.kind, size, node.mtime_ns, identity)

    def _children(self, folder: str) -> builtins.list[str]:
        return [path for path in self._nodes if path != "/" and posixpath.dirname(path) == folder]

    def _folder_of(self, path: str) -> None:
        """The folder ``path`` goes in must be there (FileNotFoundError)."""
        if self._node(posixpath.dirname(path)).kind is not Kind.FOLDER:
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)

    def _make_folders(self, folder: str) -> None:
        if folder in self._nodes:
            return
        self._make_folders(posixpath.dirname(folder))
        self._nodes[folder] = _Node(Kind.FOLDER, next(self._inodes), mtime_ns=self._clock())

    def _move(self, source: str, target: str, *, replace: bool) -> None:
        node = self._node(source)
        if node.kind is Kind.FOLDER:
            raise IsADirectoryError(errno.EISDIR, "only files are renamed here", source)
        self._folder_of(target)
        if target in self._nodes and not replace:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
        self._nodes[target] = self._nodes.pop(source)


class _MemoryFile:
    def __init__(self, fs: MemoryFileSystem, path: str, content: bytes, entry: Entry) -> None:
        self._fs = fs
        self._path = path
        self._content = content
        self._position = 0
        self.entry = entry

    def read(self, size: int = -1, /) -> bytes:
        self._fs._call("read", self._path)
        end = len(self._content) if size < 0 else self._position + size
        chunk = self._content[self._position : end]
        self._position += len(chunk)
        return chunk


def _normal(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"a path in a MemoryFileSystem is absolute: {path!r}")
    return posixpath.normpath(path) if path != "/" else path


def _matches(wanted: Operation, wanted_path: str | None, operation: Operation, path: str) -> bool:
    return wanted == operation and wanted_path in (None, path)


@dataclass(frozen=True, slots=True)
class Delivered:
    """One journal a :class:`MockTransport` took."""

    name: str
    content: bytes
    sha256: str
    size: int


@dataclass(slots=True)
class _Scripted:
    error: BaseException
    times: int


@dataclass
class MockTransport:
    """A transport for tests: keeps what it is given, fails as it is told, and is idempotent as a
    real one (the same name and content again is delivered; other content under a name it holds
    is a permanent error).

    ``kind``: a journal receipt names only "folder" or "sftp", so a mock stands in for one.
    """

    kind: str = "folder"
    destination: str = "mock:/journals"
    #: Every name :meth:`deliver` was called with, in order (failed calls included).
    attempts: list[str] = field(default_factory=list)
    #: What the destination holds, by name, in the order it arrived.
    delivered: dict[str, Delivered] = field(default_factory=dict)
    _script: list[_Scripted] = field(default_factory=list, init=False, repr=False)

    def fail(self, error: BaseException, *, times: int = 1) -> None:
        """The next ``times`` deliveries raise ``error`` (after earlier scripted failures)."""
        self._script.append(_Scripted(error, times))

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery:
        self.attempts.append(name)
        if self._script:
            scripted = self._script[0]
            scripted.times -= 1
            if scripted.times <= 0:
                self._script.pop(0)
            raise scripted.error
        content = local.read_bytes()
        held = self.delivered.get(name)
        if held is not None and held.content != content:
            raise PermanentDeliveryError(
                f"{self.destination}/{name} exists with other content: not overwritten"
            )
        self.delivered.setdefault(name, Delivered(name, content, sha256, size))
        return Delivery(name, size, sha256, f"{self.destination}/{name}")
