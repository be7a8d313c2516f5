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
import logging
import os
import random
import socket
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from gateway.adapters import Candidate
from gateway.adapters.folder import (
    Delivery,
    StabilityTracker,
    fsync_folder,
    is_being_written,
    is_temporary_name,
)
from gateway.config import SourceConfig
from gateway.errors import ConfigError, PermanentDeliveryError, SourceError, TemporaryDeliveryError

log = logging.getLogger(__name__)

DEFAULT_PORT = 22
DEFAULT_POLL_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 15.0
OPERATION_TIMEOUT_SECONDS = 60.0
KEEPALIVE_SECONDS = 30
#: Reconnect backoff after a failure: base * 2^(failures-1), capped, with jitter.
RECONNECT_BASE_SECONDS = 2.0
RECONNECT_MAX_SECONDS = 300.0
PROCESSED_FOLDER = "processed"
REJECTED_FOLDER = "rejected"
_COPY_CHUNK = 1024 * 1024


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


class SftpSource:
    """Takes finished files from a remote folder: listed, downloaded to local staging, then moved.

    Stability is judged across polls on the gateway's clock (size and mtime unchanged for
    ``stable_seconds``); temporary names are never taken. After a file's receipt the remote file
    is moved into ``processed/`` or ``rejected/`` (``after = "move"``) or deleted.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        base: Path,
        staging: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = config.name
        self.endpoint = Endpoint.from_settings(config.settings, base=base, where=f"sources.{config.name}")
        self._pattern = config.pattern
        self._after = str(config.settings.get("after", "move"))
        self._poll_seconds = float(config.settings.get("poll_seconds", DEFAULT_POLL_SECONDS))
        self._clock = clock
        self._stability = StabilityTracker(config.stable_seconds, clock)
        self._staging = staging / config.name
        self._staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._next_poll = 0.0
        self._failures = 0
        self._session: contextlib.ExitStack | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.being_written = 0
        self.remote = True
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
            self._session.close()
        self._session, self._sftp = None, None

    def _failed(self, error: BaseException) -> SourceError:
        self.end_batch()
        self._failures += 1
        delay = min(RECONNECT_MAX_SECONDS, RECONNECT_BASE_SECONDS * 2 ** (self._failures - 1))
        self._next_poll = self._clock() + delay * random.uniform(0.8, 1.2)
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
            for entry in sftp.listdir_iter(self.endpoint.remote_dir):
                name = entry.filename
                if is_temporary_name(name):
                    self.being_written += is_being_written(name)
                    continue
                if entry.st_mode is None or not stat.S_ISREG(entry.st_mode):
                    continue  # folders (processed/, rejected/) and links are not taken
                if fnmatch.fnmatch(name, self._pattern):
                    present[name] = (entry.st_size or 0, entry.st_mtime or 0)
            ready = sorted(self._stability.observe(present), key=lambda n: (present[n][1], n))
            candidates = [self._download(sftp, name, *present[name]) for name in ready]
        except HostKeyError as error:
            raise self._failed(error) from error
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise self._failed(error) from error
        if self.being_written:
            self._next_poll = min(self._next_poll, now + 1.0)
        self._failures = 0
        self.last_success = datetime.now(UTC).isoformat(timespec="seconds")
        return candidates

    def _download(self, sftp: paramiko.SFTPClient, name: str, size: int, mtime: int) -> Candidate:
        """Copy a remote file to local staging (temp, fsync, rename) and check its size.

        The copy keeps the remote modification time: when the producer finished the file, from
        which the drop-to-receipt latency is measured.
        """
        local = self._staging / name
        temporary = self._staging / f".{name}.download"
        with sftp.open(_remote(self.endpoint.remote_dir, name), "rb") as remote:
            remote.prefetch(size)
            with temporary.open("wb") as out:
                while chunk := remote.read(_COPY_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        received = temporary.stat().st_size
        if received != size:
            temporary.unlink()
            raise OSError(f"{name}: downloaded {received} bytes but the server listed {size}")
        if mtime:
            os.utime(temporary, (mtime, mtime))
        temporary.replace(local)
        fsync_folder(self._staging)
        return Candidate(self.name, name, local, size, int(local.stat().st_mtime_ns))

    def finish(self, candidate: Candidate, *, accepted: bool) -> None:
        """The receipt is out: move the remote file to processed/ or rejected/, or delete it."""
        self._stability.forget(candidate.name)
        self.finish_remote(candidate.name, accepted=accepted)

    def finish_remote(self, name: str, *, accepted: bool) -> None:
        source = _remote(self.endpoint.remote_dir, name)
        try:
            sftp = self._open()
            if self._after == "delete":
                sftp.remove(source)
                return
            folder = _remote(self.endpoint.remote_dir, PROCESSED_FOLDER if accepted else REJECTED_FOLDER)
            with contextlib.suppress(OSError):
                sftp.mkdir(folder, 0o700)
            target = _remote(folder, name)
            with contextlib.suppress(OSError):
                sftp.stat(target)
                target = _remote(folder, f"{int(time.time())}-{name}")  # never overwrite an earlier one
            sftp.posix_rename(source, target)
        except FileNotFoundError:
            return  # already moved: a retry after a crash
        except (OSError, EOFError, paramiko.SSHException, HostKeyError) as error:
            # The receipt is written; the file will be seen again and recognised as done.
            log.warning("source %s: could not move %s away yet: %s", self.name, name, error)
            self.end_batch()


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
                    # has the size; otherwise someone else's file, never overwritten.
                    if existing.st_size == size:
                        return self._delivered(name, size, sha256, target)
                    raise PermanentDeliveryError(
                        f"{self.endpoint.describe()}/{name} exists with another size ({existing.st_size} bytes, "
                        f"ours {size}): not overwritten"
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
