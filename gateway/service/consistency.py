"""Is the store behind the data folder? Checked at start and by `config check`.

A store deleted, restored from an older backup, or whose WAL was lost knows fewer receipts,
originals and journals than the folders hold. Run on such a store, the gateway would number rows
and journals again from where the store stands: an archived original ``<id>-<name>`` clashing with
an older one, cases already delivered accepted again, a report saying everything is accounted
for. So the daemon refuses to start, and says what is ahead and how to recover.

Only what the gateway publishes after its commit is looked at (receipts, originals, sent journals
and journal receipts), so a ``kill -9`` at any moment never makes a store look behind. Receipts and
originals are looked at from the day of the store's newest verdict on (a store behind the files
knows nothing newer; earlier days were checked at earlier starts); the journal folders are small
and looked at whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.folders import Folders
from gateway.store.roles import LedgerReader

#: Files listed in the refusal at most (the count says how many more).
MAX_LISTED = 10


def files_ahead_of_store(store: LedgerReader | None, folders: Folders, zone: ZoneInfo) -> list[str]:
    """Files in the data folder that the store has no record of (empty when it is not behind).

    ``store`` None: there is no store at all, so everything the gateway ever wrote is ahead."""
    ahead: list[str] = []
    newest = store.newest_judgement() if store is not None else None
    since = None if newest is None else newest.astimezone(zone).date() - timedelta(days=1)
    for path in _published_files(folders, since):
        if store is None or not store.knows_path(folders.stored(path)):
            ahead.append(str(path))
    for top, suffix in ((folders.sent, ""), (folders.journal_receipts, ".kvittens.xml")):
        for path in _plain_files(top):
            if store is None or not store.journal_file_known(path.name.removesuffix(suffix)):
                ahead.append(str(path))
    return ahead


def describe_refusal(ahead: list[str], store_location: str) -> str:
    listed = "; ".join(ahead[:MAX_LISTED]) + (
        f"; and {len(ahead) - MAX_LISTED} more" if len(ahead) > MAX_LISTED else ""
    )
    return (
        f"the store {store_location} is behind the data folder: {len(ahead)} file(s) the gateway wrote are unknown to it "
        f"({listed}). It was deleted, restored from an older backup or lost its last commits. Starting on it would "
        "reuse numbers and accept delivered cases again, so the gateway does not start. To recover: restore the store "
        'and the data folder together from one `inkasso-gateway backup` (see the README, "Backup and restore"); '
        "nothing in the data folder has been changed"
    )


def _plain_files(top: Path) -> Iterator[Path]:
    if top.is_dir():
        for path in top.iterdir():
            if path.is_file() and not path.name.startswith("."):
                yield path


def _published_files(folders: Folders, since: date | None) -> Iterator[Path]:
    """Receipts and originals in day folders from ``since`` on (every day when None), and the
    quarantine (not by day)."""
    for top, suffix in (
        (folders.receipts, ".kvittens.xml"),
        (folders.archive, ""),
        (folders.rejected, ""),
    ):
        if not top.is_dir():
            continue
        for day_folder in top.iterdir():
            try:
                day = date.fromisoformat(day_folder.name)
            except ValueError:
                continue  # receipts/journals/, or anything not a day
            if since is not None and day < since:
                continue
            for path in _plain_files(day_folder):
                if path.name.endswith(suffix):
                    yield path
    for path in _plain_files(folders.quarantine):
        if not path.name.endswith(".reason.txt"):
            yield path
