"""SFTP: a source that downloads finished files from a remote folder, and a journal transport.

Both connect with paramiko, always checking the server's host key against a known-hosts file
(``RejectPolicy``: an unknown or changed key is refused, never added), with key authentication,
connect and operation timeouts, keepalive, and ``TCP_NODELAY`` (paramiko leaves Nagle on, which
made writes on loopback run at about 1 MB/s). A fresh connection serves one batch: a long-lived
one dies silently behind firewalls. paramiko's exceptions stop here, mapped to the gateway's own
(SourceError, TemporaryDeliveryError, PermanentDeliveryError).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import paramiko
from paramiko import sftp as sftp_module

from gateway.adapters import Candidate
from gateway.adapters.folder import Delivery, StabilityTracker
from gateway.backoff import Backoff
from gateway.errors import (
    ConfigError,
    FileUnavailableError,
    PermanentDeliveryError,
    SourceError,
    TemporaryDeliveryError,
)
from gateway.fsutil import display_name, is_being_written, is_temporary_name, is_valid_text, sha256_stream

# The logger keeps its published name (operators filter on it), wherever the module lives.
log = logging.getLogger("gateway.adapters.sftp")

DEFAULT_PORT = 22
DEFAULT_POLL_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 15.0
OPERATION_TIMEOUT_SECONDS = 60.0
KEEPALIVE_SECONDS = 30
#: Reconnecting after a failure: 2 s, 4 s, 8 s ... at most 5 minutes, with jitter.
RECONNECT_BACKOFF = Backoff(base_seconds=2.0, max_seconds=300.0)
PROCESSED_FOLDER = "processed"
REJECTED_FOLDER = "rejected"


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


def _remote(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def _wire(path: str) -> bytes:
    """A remote path as the bytes the server knows it by (names that were not UTF-8 included)."""
    return path.encode("utf-8", "surrogateescape")


def _key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def remote_identity(size: int, mtime: int) -> str:
    return f"{size}:{mtime}"


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


class SftpSource:
    """Takes finished files from a remote folder: listed, copied in by the gateway, then moved.

    Stability is judged across polls on the gateway's clock (size and mtime unchanged for
    ``stable_seconds``); temporary names are never taken. After a file's receipt the remote file
    is moved into ``processed/`` or ``rejected/`` (``after = "move"``) or deleted, but only while
    it is still the file that was taken: the same name uploaded again is a new arrival. A remote
    name is never used as a local path (the gateway stages by its own numbers), and a name that
    could reach outside the folder (holding ``/``) is never taken.
    """

    def __init__(
        self,
        *,
        name: str,
        endpoint: Endpoint,
        stable_seconds: float,
        pattern: str = "*",
        after: str = "move",
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self._pattern = pattern
        self._after = after
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._stability = StabilityTracker(stable_seconds, clock)
        self._next_poll = 0.0
        self._failures = 0
        self._session: contextlib.ExitStack | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._refused_names: set[str] = set()
        self.being_written = 0
        self.last_success: str | None = None
        self.last_error: str | None = None

    # -- connection per batch ------------------------------------------------------------------

    def _open(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            stack = contextlib.ExitStack()
            try:
                self._sftp = stack.enter_context(connect(self.endpoint))
            except BaseException:
                stack.close()
                raise
            self._session = stack
        return self._sftp

    def end_batch(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()
        self._session, self._sftp = None, None

    def _failed(self, error: BaseException) -> SourceError:
        self.end_batch()
        self._failures += 1
        delay = RECONNECT_BACKOFF.delay(self._failures)
        self._next_poll = self._clock() + delay
        self.last_error = f"{datetime.now(UTC).isoformat(timespec='seconds')} {error}"
        return SourceError(f"{self.endpoint.describe()}: {error} (next try in {delay:.0f} s)")

    # -- the Source interface -------------------------------------------------------------------

    def next_stable_in(self) -> float | None:
        waiting = self._stability.next_stable_in()
        until_poll = max(0.0, self._next_poll - self._clock())
        return None if waiting is None else max(waiting, until_poll)

    def scan(self) -> list[Candidate]:
        now = self._clock()
        if now < self._next_poll:
            return []
        self._next_poll = now + self._poll_seconds
        try:
            sftp = self._open()
            present: dict[str, tuple[int, int]] = {}
            self.being_written = 0
            for name, entry in list_folder(sftp, self.endpoint.remote_dir):
                if is_temporary_name(name):
                    self.being_written += is_being_written(name)
                    continue
                if entry.st_mode is None or not stat.S_ISREG(entry.st_mode):
                    continue  # folders (processed/, rejected/) and links are not taken
                if "/" in name or "\x00" in name:
                    if name not in self._refused_names:
                        log.warning(
                            "source %s: the server lists a name that is not a plain file name (%s): not taken",
                            self.name,
                            display_name(name),
                        )
                        self._refused_names.add(name)
                    continue
                if fnmatch.fnmatch(name, self._pattern):
                    present[name] = (entry.st_size or 0, entry.st_mtime or 0)
            ready = sorted(self._stability.observe(present), key=lambda n: (present[n][1], n))
        except HostKeyError as error:
            raise self._failed(error) from error
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise self._failed(error) from error
        if self.being_written:
            self._next_poll = min(self._next_poll, now + 1.0)
        self._failures = 0
        self.last_success = datetime.now(UTC).isoformat(timespec="seconds")
        return [
            Candidate(
                self.name,
                display_name(name),
                _remote(self.endpoint.remote_dir, name),
                size,
                mtime * 1_000_000_000,
                remote_identity(size, mtime),
                name_is_valid=is_valid_text(name),
            )
            for name in ready
            for size, mtime in (present[name],)
        ]

    @contextlib.contextmanager
    def open(self, candidate: Candidate) -> Iterator[BinaryIO]:
        """The remote file as a stream (prefetched); the gateway copies it into its staging."""
        try:
            sftp = self._open()
            attributes = sftp.stat(_wire(candidate.location))
            if remote_identity(attributes.st_size or 0, attributes.st_mtime or 0) != candidate.identity:
                raise FileUnavailableError(
                    f"{candidate.name} changed on the server after it was listed", cause="changed"
                )
            remote = sftp.open(_wire(candidate.location), "rb")
        except FileNotFoundError as error:
            raise FileUnavailableError(
                f"{candidate.name} vanished from the server", cause="vanished"
            ) from error
        except PermissionError as error:
            raise FileUnavailableError(
                f"{candidate.name} may not be read by the gateway's SFTP user", cause="unreadable"
            ) from error
        except (OSError, EOFError, paramiko.SSHException, HostKeyError) as error:
            raise self._failed(error) from error
        with remote:
            remote.prefetch(candidate.size)
            yield _ReadsFailAsSourceError(remote, self)  # type: ignore[misc]

    def unchanged(self, candidate: Candidate) -> bool:
        try:
            attributes = self._open().stat(_wire(candidate.location))
        except FileNotFoundError:
            return False
        except (OSError, EOFError, paramiko.SSHException, HostKeyError) as error:
            raise self._failed(error) from error
        return remote_identity(attributes.st_size or 0, attributes.st_mtime or 0) == candidate.identity

    def hold(self, candidate: Candidate, seconds: float) -> None:
        self._stability.hold(candidate.location.rpartition("/")[2], seconds)

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """The receipt is out: move the remote file to processed/ or rejected/, or delete it (only
        while it is the file that was taken). SourceError when the server cannot be reached; the
        file is then recognised as received when it is listed again, and only tidied."""
        name = candidate.location.rpartition("/")[2]
        self._stability.forget(name)
        try:
            sftp = self._open()
            if self._after == "delete":
                target = _remote(self.endpoint.remote_dir, f".gateway-taking-{_key(name)}.part")
            else:
                folder = _remote(self.endpoint.remote_dir, PROCESSED_FOLDER if accepted else REJECTED_FOLDER)
                with contextlib.suppress(OSError):
                    sftp.mkdir(folder, 0o700)
                target = _remote(folder, name)
                with contextlib.suppress(OSError):
                    sftp.stat(_wire(target))
                    target = _remote(folder, f"{int(time.time())}-{name}")  # never overwrite an earlier one
            # Moved first (one atomic step), compared after: a new upload under the same name at
            # that very moment is given its name back instead of being tidied away unreceived.
            sftp.posix_rename(_wire(candidate.location), _wire(target))
            moved = sftp.stat(_wire(target))
            if remote_identity(moved.st_size or 0, moved.st_mtime or 0) != candidate.identity:
                log.info(
                    "source %s: %s was uploaded again after it was taken: left for its own turn",
                    self.name,
                    candidate.name,
                )
                sftp.posix_rename(_wire(target), _wire(candidate.location))
            elif self._after == "delete":
                sftp.remove(_wire(target))
        except FileNotFoundError:
            return  # already moved: a retry after a crash
        except SourceError:
            raise
        except (OSError, EOFError, paramiko.SSHException, HostKeyError) as error:
            raise self._failed(error) from error


class _ReadsFailAsSourceError:
    """A read that fails mid-download is the connection's failure, not the file's."""

    def __init__(self, remote: paramiko.SFTPFile, source: SftpSource) -> None:
        self._remote = remote
        self._source = source

    def read(self, size: int = -1) -> bytes:
        try:
            return self._remote.read(size if size >= 0 else None)
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise self._source._failed(error) from error


class SftpTransport:
    """Delivers a journal to a remote folder: temporary name, atomic rename, size check."""

    kind = "sftp"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.last_success: str | None = None
        self.last_error: str | None = None

    @property
    def destination(self) -> str:
        return self.endpoint.describe()

    def deliver(self, name: str, local: Path, *, sha256: str, size: int) -> Delivery:
        target = _remote(self.endpoint.remote_dir, name)
        temporary = _remote(self.endpoint.remote_dir, f".{name}.part")
        try:
            with connect(self.endpoint) as sftp:
                try:
                    existing = sftp.stat(target)
                except FileNotFoundError:
                    existing = None
                if existing is not None:
                    # A finished file of the journal's name: delivered by an earlier attempt if it
                    # has our content (size first, then every byte); otherwise someone else's
                    # file, never overwritten.
                    if existing.st_size == size and _remote_sha256(sftp, target, size) == sha256:
                        return self._delivered(name, size, sha256, target)
                    raise PermanentDeliveryError(
                        f"{self.endpoint.describe()}/{name} exists with other content ({existing.st_size} "
                        f"bytes, ours {size}): not overwritten"
                    )
                sftp.put(str(local), temporary, confirm=True)
                try:
                    sftp.posix_rename(temporary, target)
                except OSError:
                    # Without posix-rename@openssh.com: a plain rename refuses an existing target.
                    sftp.rename(temporary, target)
                delivered = sftp.stat(target).st_size
                if delivered != size:
                    raise TemporaryDeliveryError(f"{target}: {delivered} bytes after upload, expected {size}")
        except (PermanentDeliveryError, TemporaryDeliveryError) as error:
            self.last_error = str(error)
            raise
        except HostKeyError as error:
            self.last_error = str(error)
            raise PermanentDeliveryError(str(error)) from error
        except paramiko.AuthenticationException as error:
            self.last_error = str(error)
            raise PermanentDeliveryError(f"{self.endpoint.describe()}: authentication failed") from error
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.last_error = str(error)
            raise TemporaryDeliveryError(f"{self.endpoint.describe()}: {error}") from error
        return self._delivered(name, size, sha256, target)

    def _delivered(self, name: str, size: int, sha256: str, target: str) -> Delivery:
        self.last_success = datetime.now(UTC).isoformat(timespec="seconds")
        return Delivery(name, size, sha256, f"{self.endpoint.describe()}/{name}")


def _remote_sha256(sftp: paramiko.SFTPClient, path: str, size: int) -> str:
    with sftp.open(path, "rb") as remote:
        remote.prefetch(size)
        return sha256_stream(remote)[0]  # type: ignore[arg-type]
