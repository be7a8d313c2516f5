"""SFTP: the file system on an SFTP server, a source that downloads finished files from a remote
folder, and a journal transport.

Both connect with paramiko, always checking the server's host key against a known-hosts file
(``RejectPolicy``: an unknown or changed key is refused, never added), with key authentication,
connect and operation timeouts, keepalive, and ``TCP_NODELAY`` (paramiko leaves Nagle on, which
made writes on loopback run at about 1 MB/s). A fresh connection serves one batch: a long-lived
one dies silently behind firewalls. paramiko's exceptions stop in :class:`SftpFileSystem`, mapped
to the seam's (:mod:`gateway.adapters.ports`), and from there to the gateway's own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import paramiko
from paramiko import sftp as sftp_module

from gateway.adapters.polling import PollingSource
from gateway.adapters.ports import Entry, FileSystem, RefusedError, UnreachableError, Wording, kind_of
from gateway.adapters.transport import FileSystemTransport
from gateway.backoff import Backoff
from gateway.errors import ConfigError

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.adapters.sftp")

DEFAULT_PORT = 22
DEFAULT_POLL_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 15.0
OPERATION_TIMEOUT_SECONDS = 60.0
KEEPALIVE_SECONDS = 30
#: Reconnecting after a failure: 2 s, 4 s, 8 s ... at most 5 minutes, with jitter.
RECONNECT_BACKOFF = Backoff(base_seconds=2.0, max_seconds=300.0)

SFTP_WORDING = Wording(
    vanished="{name} vanished from the server",
    unreadable="{name} may not be read by the gateway's SFTP user",
    changed="{name} changed on the server after it was listed",
    taken_again="source %s: %s was uploaded again after it was taken: left for its own turn",
    not_overwritten="{where} exists with other content ({theirs} bytes, ours {ours}): not overwritten",
    delivery_failed="{folder}: {error}",
)


class HostKeyError(Exception):
    """The server's host key is unknown or changed: refused, a person must check it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect; the passphrase is read from a file or the environment, never logged."""

    host: str
    port: int
    username: str
    key_file: Path
    known_hosts: Path
    remote_dir: str
    passphrase: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, base: Path, where: str) -> Endpoint:
        def path(key: str) -> Path:
            value = Path(str(settings[key]))
            return value if value.is_absolute() else base / value

        passphrase = None
        if "passphrase_file" in settings:
            passphrase = path("passphrase_file").read_text(encoding="utf-8").strip()
        elif "passphrase_env" in settings:
            passphrase = os.environ.get(str(settings["passphrase_env"]))
            if passphrase is None:
                raise ConfigError(f"{where}.passphrase_env: ${settings['passphrase_env']} is not set")
        known_hosts = path("known_hosts")
        if not known_hosts.is_file():
            raise ConfigError(
                f"{where}.known_hosts: no such file {known_hosts}: host keys are always checked"
            )
        key_file = path("key_file")
        if not key_file.is_file():
            raise ConfigError(f"{where}.key_file: no such file {key_file}")
        return cls(
            host=str(settings["host"]),
            port=int(settings.get("port", DEFAULT_PORT)),
            username=str(settings["username"]),
            key_file=key_file,
            known_hosts=known_hosts,
            remote_dir=str(settings["remote_dir"]).rstrip("/") or "/",
            passphrase=passphrase,
        )

    def describe(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}{self.remote_dir}"


@contextlib.contextmanager
def connect(endpoint: Endpoint) -> Iterator[paramiko.SFTPClient]:
    """One SFTP session; host key checked, timeouts set. Raises HostKeyError, OSError, SSHException."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(endpoint.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        try:
            client.connect(
                endpoint.host,
                port=endpoint.port,
                username=endpoint.username,
                key_filename=str(endpoint.key_file),
                passphrase=endpoint.passphrase,
                timeout=CONNECT_TIMEOUT_SECONDS,
                banner_timeout=CONNECT_TIMEOUT_SECONDS,
                auth_timeout=CONNECT_TIMEOUT_SECONDS,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as error:
            raise HostKeyError(
                f"{endpoint.describe()}: the server's host key has CHANGED: refused"
            ) from error
        except paramiko.SSHException as error:
            if "not found in known_hosts" in str(error):
                raise HostKeyError(
                    f"{endpoint.describe()}: the server's host key is not in known_hosts"
                ) from error
            raise
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(KEEPALIVE_SECONDS)
        if transport.sock is not None and isinstance(transport.sock, socket.socket):
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sftp = client.open_sftp()
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(OPERATION_TIMEOUT_SECONDS)
        yield sftp
    finally:
        client.close()


def _wire(path: str) -> bytes:
    """A remote path as the bytes the server knows it by (names that were not UTF-8 included)."""
    return path.encode("utf-8", "surrogateescape")


def list_folder(sftp: paramiko.SFTPClient, folder: str) -> Iterator[tuple[str, paramiko.SFTPAttributes]]:
    """Every entry of a remote folder as (name, attributes), names read as raw bytes.

    paramiko decodes names strictly as UTF-8, so one file named in Latin-1 would end the whole
    listing (and leave the session in the middle of a reply). This is paramiko's own
    ``listdir_attr`` loop with the name kept as bytes and decoded with ``surrogateescape``: the
    file can still be reached, and is answered F01 instead of hiding every other file.
    """
    # paramiko's own request helpers (private, stable since paramiko 1.x; pinned below 6).
    t, msg = sftp._request(sftp_module.CMD_OPENDIR, _wire(folder))  # type: ignore[attr-defined]
    if t != sftp_module.CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    handle = msg.get_binary()
    try:
        while True:
            try:
                t, msg = sftp._request(sftp_module.CMD_READDIR, handle)  # type: ignore[attr-defined]
            except EOFError:
                return
            if t != sftp_module.CMD_NAME:
                raise paramiko.SFTPError("Expected name response")
            for _ in range(msg.get_int()):
                raw_name = msg.get_string()
                msg.get_string()  # longname: ls -l text, unused
                attributes = paramiko.SFTPAttributes._from_msg(msg)  # type: ignore[attr-defined]
                name = raw_name.decode("utf-8", "surrogateescape")
                if name not in (".", ".."):
                    yield name, attributes
    finally:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            sftp._request(sftp_module.CMD_CLOSE, handle)  # type: ignore[attr-defined]


def remote_identity(size: int, mtime: int) -> str:
    return f"{size}:{mtime}"


def _entry(name: str, attributes: paramiko.SFTPAttributes) -> Entry:
    size, mtime = attributes.st_size or 0, attributes.st_mtime or 0
    return Entry(name, kind_of(attributes.st_mode), size, mtime * 1_000_000_000, remote_identity(size, mtime))


#: What a connection may raise, besides the file system's own errors.
_SESSION_ERRORS = (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError)


class SftpFileSystem:
    """A folder tree on an SFTP server, one connection at a time (opened when first needed,
    closed by :meth:`close`).

    SFTP says little about a failure: only "no such file" (and "permission denied" when a file is
    opened to be read) is taken to be about the entry; any other failure is the session's
    (:class:`UnreachableError`: the connection is closed and tried again later), as is any failure to
    list the folder at all. Names go over the wire as the server's own bytes.
    """

    log = log
    wording = SFTP_WORDING

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connect: Callable[[Endpoint], contextlib.AbstractContextManager[paramiko.SFTPClient]] = connect,
        folder_mode: int = 0o700,
    ) -> None:
        """``folder_mode``: of the folders it makes (the server's umask applies too): the gateway's
        own by default (processed/, rejected/); 0o777 where others read, as the server decides
        for files (a sender's receipt folder)."""
        self.endpoint = endpoint
        self._connect = connect
        self._folder_mode = folder_mode
        self._session: contextlib.ExitStack | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def describe(self, path: str) -> str:
        return f"sftp://{self.endpoint.username}@{self.endpoint.host}:{self.endpoint.port}{path}"

    # -- the connection ------------------------------------------------------------------------

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            stack = contextlib.ExitStack()
            try:
                self._sftp = stack.enter_context(self._connect(self.endpoint))
            except HostKeyError as error:
                stack.close()
                raise RefusedError(str(error), summary=str(error)) from error
            except paramiko.AuthenticationException as error:
                stack.close()
                raise RefusedError(
                    str(error), summary=f"{self.endpoint.describe()}: authentication failed"
                ) from error
            except _SESSION_ERRORS as error:
                stack.close()
                raise UnreachableError(str(error)) from error
            self._session = stack
        return self._sftp

    def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()
        self._session, self._sftp = None, None

    @contextlib.contextmanager
    def _mapped(self, *about_the_entry: type[OSError]) -> Iterator[None]:
        """Errors of the kinds named pass as they are; any other failure is the session's."""
        try:
            yield
        except about_the_entry:
            raise
        except _SESSION_ERRORS as error:
            raise UnreachableError(str(error)) from error

    # -- the seam ------------------------------------------------------------------------------

    def list(self, folder: str) -> Sequence[Entry]:
        with self._mapped():  # a folder that is missing or refused included: tried again later
            return [_entry(name, attributes) for name, attributes in list_folder(self._client(), folder)]

    def stat(self, path: str) -> Entry:
        with self._mapped(FileNotFoundError):
            return _entry(posixpath.basename(path), self._client().stat(_wire(path)))

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[_SftpFile]:
        with self._mapped(FileNotFoundError, PermissionError):
            sftp = self._client()
            entry = _entry(posixpath.basename(path), sftp.stat(_wire(path)))
            remote = sftp.open(_wire(path), "rb")
        with remote:
            yield _SftpFile(remote, entry, self)

    def write_new(self, path: str, content: BinaryIO, *, mode: int) -> None:
        """Uploaded as ``.<name>.part`` (a leftover of an earlier attempt is written over), then
        renamed into place. The check for an existing file and the rename are two steps: SFTP's
        atomic rename (posix-rename@openssh.com) replaces. ``mode``: the server's umask decides."""
        folder, name = posixpath.split(path)
        temporary = posixpath.join(folder, f".{name}.part")
        with self._mapped(FileNotFoundError, PermissionError, FileExistsError):
            sftp = self._client()
            self._refuse_existing(sftp, path)
            sftp.putfo(content, _wire(temporary), confirm=True)
            try:
                sftp.posix_rename(_wire(temporary), _wire(path))
            except OSError:
                # Without posix-rename@openssh.com: a plain rename refuses an existing target.
                sftp.rename(_wire(temporary), _wire(path))

    def rename(self, source: str, target: str) -> None:
        with self._mapped(FileNotFoundError):
            self._client().posix_rename(_wire(source), _wire(target))

    def rename_new(self, source: str, target: str) -> None:
        with self._mapped(FileNotFoundError, FileExistsError):
            sftp = self._client()
            self._refuse_existing(sftp, target)
            sftp.posix_rename(_wire(source), _wire(target))

    def remove(self, path: str) -> None:
        with self._mapped(FileNotFoundError):
            self._client().remove(_wire(path))

    def mkdir(self, path: str) -> None:
        with self._mapped():
            sftp = self._client()
            with contextlib.suppress(OSError):  # SFTP says "failure" for a folder that is there
                sftp.mkdir(_wire(path), self._folder_mode)

    @staticmethod
    def _refuse_existing(sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.stat(_wire(path))
        except FileNotFoundError:
            return
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)


class _SftpFile:
    """A remote file being read, prefetched from the first read (a file that turns out to have
    changed since its listing is closed without being downloaded)."""

    def __init__(self, remote: paramiko.SFTPFile, entry: Entry, fs: SftpFileSystem) -> None:
        self._remote = remote
        self._fs = fs
        self._prefetching = False
        self.entry = entry

    def read(self, size: int = -1, /) -> bytes:
        # A read that fails mid-download is the connection's failure, not the file's.
        with self._fs._mapped():
            if not self._prefetching:
                self._remote.prefetch(self.entry.size)
                self._prefetching = True
            return self._remote.read(size if size >= 0 else None)


class SftpSource(PollingSource):
    """Takes finished files from a remote folder: listed every ``poll_seconds``, copied in by the
    gateway, then moved into ``processed/`` or ``rejected/`` (``after = "move"``) or deleted."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: Endpoint,
        stable_seconds: float,
        pattern: str = "*",
        after: Literal["delete", "move"] = "move",
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        fs: FileSystem | None = None,
    ) -> None:
        super().__init__(
            name=name,
            fs=fs or SftpFileSystem(endpoint),
            folder=endpoint.remote_dir,
            stable_seconds=stable_seconds,
            pattern=pattern,
            after=after,
            poll_seconds=poll_seconds,
            reconnect=RECONNECT_BACKOFF,
            # Folders there are the source's own processed/ and rejected/; a link is the server's.
            report_odd_entries=False,
            clock=clock,
        )
        self.endpoint = endpoint


class SftpTransport(FileSystemTransport):
    """Delivers a journal to a remote folder: temporary name, atomic rename, size check; reports
    the endpoint's last success and last error (for `status`)."""

    def __init__(self, endpoint: Endpoint, *, fs: FileSystem | None = None, what: str = "journal") -> None:
        super().__init__(fs or SftpFileSystem(endpoint), endpoint.remote_dir, kind="sftp", what=what)
        self.endpoint = endpoint

    @property
    def last_success(self) -> str | None:
        return self._last_success

    @property
    def last_error(self) -> str | None:
        return self._last_error
