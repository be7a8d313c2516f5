"""The composition root: a configuration turned into wired parts.

This is the only module that names a concrete store, source, transport or watcher. The services
are given what they need (:class:`Wiring` satisfies :class:`gateway.service.runner.Parts`); the
commands ask it for a store to read or write. A test wires other parts (a memory file system, a
mock transport) the same way, without touching the services.
"""

from __future__ import annotations

import dataclasses
import grp
import threading
from pathlib import Path
from typing import Any

from gateway.adapters import Source, Transport
from gateway.adapters.alarm_channels import AlarmChannel, SmtpChannel, WebhookChannel
from gateway.adapters.folder import FolderSource, FolderTransport, LocalFileSystem
from gateway.adapters.sftp import DEFAULT_POLL_SECONDS, Endpoint, SftpFileSystem, SftpSource, SftpTransport
from gateway.adapters.transport import FileSystemTransport
from gateway.adapters.watch import FolderWatcher
from gateway.config import GatewayConfig, url_password_problem
from gateway.errors import ConfigError
from gateway.folders import Folders
from gateway.fsutil import NETWORK_FILE_SYSTEMS, file_system_type
from gateway.service.runstate import daemon_running
from gateway.store.postgres import PostgresStore, displayed_url
from gateway.store.roles import LedgerReader, Store
from gateway.store.sqlite import SqliteStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIX = "postgresql://"
#: A copy of a receipt in a sender's receipt folder: its ERP's account reads it through the group.
RECEIPT_COPY_MODE = 0o640


def store_path(config: GatewayConfig, *, data_dir: Path | None = None) -> Path:
    """The SQLite store's file. ``data_dir``: another data folder (a copy, a restored backup), where
    a store kept inside the configured data folder is looked for at the same place."""
    url = config.store_url
    if not url.startswith(SQLITE_PREFIX):
        raise ConfigError(f"store.url: {displayed_url(url)} is no SQLite file")
    path = Path(url.removeprefix(SQLITE_PREFIX))
    if not path.is_absolute():
        return ((data_dir or config.data_dir) / path).resolve()
    if data_dir is not None and path.is_relative_to(config.data_dir):
        return data_dir / path.relative_to(config.data_dir)
    return path


def endpoint(config: GatewayConfig, *, source: str | None = None) -> Endpoint:
    """The SFTP endpoint of a source (by name) or of the delivery, its files found beside the
    configuration."""
    if source is None:
        return Endpoint.from_settings(config.delivery.settings, base=config.base_dir, where="delivery")
    (settings,) = [s.settings for s in config.sources if s.name == source]
    return Endpoint.from_settings(settings, base=config.base_dir, where=f"sources.{source}")


class Wiring:
    """The parts of one configuration: the store, the sources, the transport and the watcher."""

    def __init__(self, config: GatewayConfig, *, data_dir: Path | None = None) -> None:
        self.config = config
        self.data_dir = data_dir or config.data_dir
        self.folders = Folders.from_config(config, data_dir=data_dir)

    # -- the store -----------------------------------------------------------------------------

    def store_location(self) -> str:
        if self.config.several_nodes:
            return displayed_url(self.config.store_url)
        return str(store_path(self.config, data_dir=self.data_dir))

    def store_exists(self) -> bool:
        # A database is made by its administrator, never by the gateway: it is there.
        return self.config.several_nodes or store_path(self.config, data_dir=self.data_dir).exists()

    def forget_new_store(self) -> None:
        """Remove a store this start created and then refused (nothing was written into it)."""
        if self.config.several_nodes:
            return  # an empty schema in a database is harmless, and the database is not ours
        path = store_path(self.config, data_dir=self.data_dir)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def open_store(self, *, busy_seconds: float | None = None, holder: str | None = None) -> Store:
        """The store, to write (created and migrated when needed). ``holder``: who the process is
        among the nodes (a daemon's "<node>:<pid>:<token>"); a command is "<host>:<pid>"."""
        options: dict[str, Any] = {}
        if busy_seconds is not None:
            options["busy_seconds"] = busy_seconds
        if holder is not None:
            options["lease_holder"] = holder
        if self.config.several_nodes:
            return PostgresStore(self.config.store_url, **options)
        path = store_path(self.config, data_dir=self.data_dir)
        fs_type = file_system_type(path.parent)
        if fs_type in NETWORK_FILE_SYSTEMS:
            raise ConfigError(
                f"store.url: the SQLite store {path} is on a network file system ({fs_type}), where "
                "SQLite's locking cannot be trusted: keep it on a local disk, or use PostgreSQL for "
                'several nodes (README, "Several nodes")'
            )
        return SqliteStore(path, **options)

    def open_reader(self) -> LedgerReader:
        """The store, for commands that only look: never a write lock, never a migration, never a
        new store. At rest (no daemon on the data folder) an SQLite store is opened immutable."""
        if self.config.several_nodes:
            return PostgresStore(self.config.store_url, read_only=True)
        path = store_path(self.config, data_dir=self.data_dir)
        return SqliteStore(path, read_only=True, at_rest=not daemon_running(self.folders.var))

    @staticmethod
    def shown_url(url: str) -> str:
        """A store URL as it may be printed (never a password)."""
        return displayed_url(url)

    def copy_store(self, url: str) -> dict[str, int]:
        """Copy the configured SQLite store, as of one moment, into the empty PostgreSQL database
        at ``url`` (its schema created there first), ids and all: the rows copied per table."""
        if self.config.several_nodes:
            raise ConfigError(
                f"store.url: the store is {self.store_location()} already; store copy copies an SQLite store"
            )
        if not url.startswith(POSTGRES_PREFIX):
            raise ConfigError(f"--to: {displayed_url(url)} is not a postgresql:// URL")
        if (problem := url_password_problem(url)) is not None:
            raise ConfigError(f"--to: {problem}")
        if daemon_running(self.folders.var):
            raise ConfigError(
                "a daemon runs on this data folder: stop it first, so that nothing is written into the "
                "SQLite store after the copy"
            )
        source = SqliteStore(store_path(self.config, data_dir=self.data_dir), read_only=True, at_rest=True)
        try:
            target = PostgresStore(url)
            try:
                return source.copy_into(target)
            finally:
                target.close()
        finally:
            source.close()

    # -- the outside world ---------------------------------------------------------------------

    def sources(self) -> list[Source]:
        sources: list[Source] = []
        for source in self.config.sources:
            if source.type == "sftp":
                settings = source.settings
                sources.append(
                    SftpSource(
                        name=source.name,
                        endpoint=endpoint(self.config, source=source.name),
                        stable_seconds=source.stable_seconds,
                        pattern=source.pattern,
                        after="delete" if settings.get("after") == "delete" else "move",
                        poll_seconds=float(settings.get("poll_seconds", DEFAULT_POLL_SECONDS)),
                    )
                )
            else:
                assert source.path is not None
                sources.append(
                    FolderSource(
                        name=source.name,
                        folder=source.path,
                        stable_seconds=source.stable_seconds,
                        pattern=source.pattern,
                        done_marker=source.done_marker,
                    )
                )
        return sources

    def receipt_folders(self) -> dict[str, Transport]:
        """Each source's receipt folder (``receipt_dir``), by source name, as a transport: on an
        SFTP source's own server, or a local folder whose receipts its group may read (0640, the
        source's ``group``, else the folder's own when it is setgid). Only a folder inside the
        data folder is ever made."""
        folders: dict[str, Transport] = {}
        for source in self.config.sources:
            if source.receipt_dir is None:
                continue
            if source.type == "sftp":
                remote = dataclasses.replace(
                    endpoint(self.config, source=source.name), remote_dir=source.receipt_dir
                )
                # Folders it makes there (the days') are as the server makes any: the ERP reads them.
                folders[source.name] = SftpTransport(
                    remote, fs=SftpFileSystem(remote, folder_mode=0o777), what="receipt"
                )
            else:
                group = -1 if source.group is None else grp.getgrnam(source.group).gr_gid
                folders[source.name] = FileSystemTransport(
                    LocalFileSystem(group=group),
                    source.receipt_dir,
                    kind="folder",
                    mode=RECEIPT_COPY_MODE,
                    make_folder=Path(source.receipt_dir).is_relative_to(self.data_dir),
                    what="receipt",
                )
        return folders

    def transport(self) -> Transport:
        if self.config.delivery.type == "sftp":
            return SftpTransport(endpoint(self.config))
        return FolderTransport(self.folders.journals)

    def alarm_channels(self) -> list[AlarmChannel]:
        """Where alarms are told ([alarms] webhook and smtp); none: only the log and the store."""
        alarms = self.config.alarms
        channels: list[AlarmChannel] = []
        if alarms.webhook:
            channels.append(WebhookChannel(url=alarms.webhook))
        if alarms.smtp is not None:
            smtp = alarms.smtp
            channels.append(
                SmtpChannel(
                    host=smtp.host,
                    port=smtp.port,
                    sender=smtp.sender,
                    to=smtp.to,
                    starttls=smtp.starttls,
                    username=smtp.username,
                    password_file=smtp.password_file,
                )
            )
        return channels

    def watcher(self, sources: list[Source], wake: threading.Event) -> FolderWatcher:
        """Wakes the daemon's loop when a file in a local folder source is finished (the loop
        also polls, so a missed event only delays a file)."""
        return FolderWatcher([s.folder for s in sources if isinstance(s, FolderSource)], wake)


def wire(config: GatewayConfig, *, data_dir: Path | None = None) -> Wiring:
    return Wiring(config, data_dir=data_dir)
