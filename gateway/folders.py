"""The data folder's layout (contract section 5): where receipts, journals, reports, originals and
the gateway's own working files live, and how the store records a path in it (relative, so that a
data folder can be moved, copied and restored elsewhere)."""

from __future__ import annotations

import grp
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewayConfig, SourceConfig
from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Folders:
    """The folders of the contract (section 5), resolved against the config file's folder."""

    receipts: Path
    journal_receipts: Path
    journals: Path
    reports: Path
    var: Path
    archive: Path
    rejected: Path
    quarantine: Path
    sent: Path
    spool: Path
    staging: Path  # the gateway's own copy of each file in hand, until it is archived
    attachments: Path  # accepted cases' attachments by SHA-256, until their journal is built
    data_dir: Path  # what recorded paths are relative to
    configs: Path  # every configuration in force, by its SHA-256 (var/config/<sha256>.toml)

    @classmethod
    def from_config(cls, config: GatewayConfig, *, data_dir: Path | None = None) -> Folders:
        """The folders of ``config``; ``data_dir`` reads another data folder (a copy, a restored
        backup) instead of the configured one."""
        base = data_dir or config.data_dir
        var = base / "var"
        return cls(
            receipts=base / "outbox" / "receipts",
            journal_receipts=base / "outbox" / "receipts" / "journals",
            journals=config.delivery.path or base / "outbox" / "journals",  # default under data_dir
            reports=config.reports.path or base / "outbox" / "reports",
            var=var,
            archive=var / "archive",
            rejected=var / "rejected",
            quarantine=var / "quarantine",
            sent=var / "sent",
            spool=var / "spool",
            staging=var / "staging",
            attachments=var / "attachments",
            data_dir=base,
            configs=var / "config",
        )

    def stored(self, path: Path) -> str:
        """A path as the store records it: relative to the data folder when it lies in it (so that
        the data folder can be moved, copied and restored elsewhere), else absolute."""
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return str(path)

    def located(self, recorded: str) -> Path:
        """A path the store recorded, in this data folder (a relative one) or where it is."""
        path = Path(recorded)
        return path if path.is_absolute() else self.data_dir / path

    def written(self) -> Iterator[Path]:
        """Every folder the gateway writes files into (day folders included)."""
        for name in self.__dataclass_fields__:
            folder = getattr(self, name)
            yield folder
            if folder in (self.receipts, self.archive, self.rejected) and folder.is_dir():
                yield from (day for day in folder.iterdir() if day.is_dir())

    def ensure(self, *, sources: tuple[SourceConfig, ...], mode: int = 0o700) -> None:
        """Create the gateway's own folders (only ever under the data folder) and check each is
        writable; check every folder source exists (outside the data folder it is never created:
        a misspelt path must not quietly become a new, empty inbox), and give it its configured
        group and mode. ConfigError names the first problem."""
        for problem in self.problems(sources=sources):
            raise ConfigError(problem)
        for name in self.__dataclass_fields__:
            folder = getattr(self, name)
            if folder != self.data_dir and not folder.is_relative_to(self.data_dir) and not folder.is_dir():
                raise ConfigError(f"{folder}: no such folder (only folders in the data folder are created)")
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=mode)
            except OSError as error:
                raise ConfigError(f"{folder}: cannot create the folder: {error.strerror or error}") from error
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{folder}: the folder is not writable by this user")
        for position, source in enumerate(sources):
            if source.type != "folder" or source.path is None:
                continue
            if source.path.is_relative_to(self.data_dir):
                source.path.mkdir(parents=True, exist_ok=True, mode=mode)
            try:
                if source.group is not None:
                    os.chown(source.path, -1, grp.getgrnam(source.group).gr_gid)
                if source.mode is not None:
                    source.path.chmod(source.mode)
            except (OSError, KeyError) as error:
                raise ConfigError(
                    f"sources[{position}]: cannot give {source.path} group {source.group} and mode "
                    f"{oct(source.mode or 0)[2:]}: {getattr(error, 'strerror', None) or error}"
                ) from error

    def problems(self, *, sources: tuple[SourceConfig, ...]) -> list[str]:
        """What `config check` and a start refuse about the folders, each with its key."""
        found = []
        for position, source in enumerate(sources):
            if source.type == "folder" and source.path is not None:
                if not source.path.is_dir() and not source.path.is_relative_to(self.data_dir):
                    found.append(
                        f"sources[{position}].path: {source.path} does not exist (folders outside the data folder "
                        "are never created: check the spelling, or create it)"
                    )
                elif source.path.exists() and not os.access(source.path, os.R_OK | os.W_OK | os.X_OK):
                    found.append(
                        f"sources[{position}].path: {source.path} must be readable and writable by this user"
                    )
            if source.type == "folder" and source.receipt_dir is not None:
                receipts = Path(source.receipt_dir)
                if not receipts.is_dir() and not receipts.is_relative_to(self.data_dir):
                    found.append(
                        f"sources[{position}].receipt_dir: {receipts} does not exist (folders outside the data "
                        "folder are never created: check the spelling, or create it)"
                    )
                elif receipts.exists() and not os.access(receipts, os.W_OK | os.X_OK):
                    found.append(f"sources[{position}].receipt_dir: {receipts} must be writable by this user")
        for key, folder in (("delivery.path", self.journals), ("reports.path", self.reports)):
            if not folder.is_relative_to(self.data_dir) and not folder.is_dir():
                found.append(
                    f"{key}: {folder} does not exist (folders outside the data folder are never created)"
                )
        return found
