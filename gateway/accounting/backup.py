"""`inkasso-gateway backup DEST`: a consistent copy of a data folder, safe beside the daemon.

1. The store copies itself (:meth:`~gateway.store.roles.LedgerReader.backup_to`; SQLite's online
   backup: a consistent snapshot while the daemon goes on writing) into ``DEST/var/gateway.db``,
   one self-contained file anybody who may read it can open.
2. Every file that snapshot knows is copied: receipts, archived, rejected and quarantined
   originals (with their reason files), sent journals and their journal receipts, every
   configuration in force (``var/config/<sha256>.toml``), the attachments of cases not yet
   delivered, and the staged copy and temporary receipt of a file committed but not yet published.
   Files the daemon writes after the snapshot are not copied: the copy is of one moment.
3. ``audit verify`` runs on the copy, and decides the exit code.

Everything the gateway publishes is append-only and never rewritten, so running ``backup`` again
into the same DEST copies only what is new (a file already there with the same size is kept) and
replaces the store. Files and folders are owner-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.accounting import audit
from gateway.config import GatewayConfig
from gateway.errors import InputError
from gateway.folders import Folders
from gateway.fsutil import copy_new
from gateway.store import FileState, JournalState
from gateway.store.roles import LedgerReader


@dataclass(slots=True)
class BackupResult:
    copied: int = 0
    kept: int = 0  # already in DEST from an earlier backup
    missing: list[str] | None = None  # known to the store, not found in the data folder
    audit: audit.AuditResult | None = None


def backup(config: GatewayConfig, open_store: Callable[[], LedgerReader], destination: Path) -> BackupResult:
    """Copy the data folder of ``config`` (its store opened to read by ``open_store``) to
    ``destination``."""
    if destination.exists() and not destination.is_dir():
        raise InputError(f"{destination}: not a folder")
    source = Folders.from_config(config)
    target = Folders.from_config(config, data_dir=destination)
    target.var.mkdir(parents=True, exist_ok=True, mode=0o700)
    destination.chmod(0o700)
    live = open_store()
    try:
        copy = live.backup_to(target.var / "gateway.db")
    finally:
        live.close()
    result = BackupResult(missing=[])
    try:
        for relative, required in _files_known(copy, source):
            origin, place = source.data_dir / relative, destination / relative
            if not origin.exists():
                if required:
                    result.missing.append(relative)  # type: ignore[union-attr]
                continue
            if place.exists() and place.stat().st_size == origin.stat().st_size:
                result.kept += 1
                continue
            place.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with origin.open("rb") as handle:
                copy_new(handle, place)
            result.copied += 1
        config_copy = destination / "gateway.toml"
        if not config_copy.exists():
            with config.path.open("rb") as handle:
                copy_new(handle, config_copy)
        result.audit = audit.verify(copy, target, zone=ZoneInfo(config.timezone))
    finally:
        copy.close()
    return result


def _files_known(store: LedgerReader, folders: Folders) -> Iterator[tuple[str, bool]]:
    """Every file the store's snapshot knows, relative to the data folder, and whether it must be
    there (a published file) or may have moved on since (what a committed file still waits with)."""
    base = folders.data_dir
    for record in store.files_in_state(FileState.DONE):
        for recorded in (record.receipt_path, record.final_path):
            if recorded and not Path(recorded).is_absolute():
                yield recorded, True
        if record.final_path and record.status == "quarantined":
            yield record.final_path + ".reason.txt", True
    for record in store.files_in_state(FileState.JUDGED):
        if record.receipt_path:
            receipt = Path(record.receipt_path)
            yield record.receipt_path, False
            yield str(receipt.with_name(f".{receipt.name}.tmp")), False  # committed, not yet published
        if record.final_path:
            yield record.final_path, False
        yield str(folders.staging.relative_to(base) / str(record.id)), False
    for journal in store.journals():
        if journal.file_name and journal.sha256:
            yield (
                str(folders.sent.relative_to(base) / journal.file_name),
                journal.state is JournalState.DELIVERED,
            )
        if journal.state is JournalState.DELIVERED and journal.file_name:
            yield str(folders.journal_receipts.relative_to(base) / f"{journal.file_name}.kvittens.xml"), True
    for top in (folders.configs, folders.attachments):
        if top.is_dir():
            for path in sorted(top.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    yield str(path.relative_to(base)), False
