"""The facts `status` tells, gathered once: for `status` (text and JSON), for the daemon's
``/readyz`` and for its metrics, so that no two of them can disagree.

What the daemon says of itself (var/daemon.state, and whether it holds the data folder's lock), a
look at the sources, and the store read-only. A store that cannot be read (its disk full, say) is
one more fact, not a failure. ``attention`` lists what waits for a person; the exit code follows
from it and from whether a daemon runs, as LSB's `status`: 0 a daemon runs and nothing waits, 1 a
daemon runs and something waits for a person, 3 no daemon runs on this data folder.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.adapters.folder import not_taken_reason
from gateway.bootstrap import wire
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities
from gateway.errors import StoreMissingError, StoreUnavailableError
from gateway.folders import Folders
from gateway.fsutil import display_name, is_being_written, is_temporary_name
from gateway.monitoring.alarms import read_alarms
from gateway.service.runstate import daemon_running, read_state
from gateway.store import FileState, JournalRecord, JournalState
from gateway.store.roles import LedgerReader


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def masked_text(text: str | None) -> str | None:
    return None if text is None else mask_identities(text)


def journal_json(record: JournalRecord) -> dict[str, Any]:
    """One journal as `journal list --format json` and `status --format json` show it."""
    return {
        "journal_id": record.journal_id,
        "client": record.client_id,
        "sequence": record.sequence,
        "state": record.state.value,
        "needs_review": record.needs_review,
        "cases": record.case_count,
        "capital": f"{record.capital_ore / 100:.2f}",
        "sealed_at": iso(record.sealed_at),
        "approved_by": record.approved_by,
        "approved_at": iso(record.approved_at),
        "file_name": record.file_name,
        "sha256": record.sha256,
        "delivered_at": iso(record.delivered_at),
        "attempts": record.attempts,
        "last_error": masked_text(record.last_error),
    }


def free_bytes(folder: Path) -> int | None:
    """What an unprivileged writer may still write on the file system of ``folder`` (None: unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def source_facts(config: GatewayConfig, scanned: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each source as `status` sees it by looking (not from the daemon): what waits and since when
    (the oldest waiting file's modification time), what is being written, and what will never be
    taken (a FIFO or a folder named like a case file); with ``scanned`` (the daemon's account),
    when the daemon last listed it."""
    sources = []
    for source in config.sources:
        entry: dict[str, Any] = {"name": source.name, "type": source.type}
        entry["last_scan_at"] = (scanned or {}).get(source.name)
        entry["oldest_waiting_at"] = None
        if source.path is not None:
            names: list[str] = []
            oldest: float | None = None
            not_taken: list[dict[str, str]] = []
            try:
                with os.scandir(source.path) as entries:
                    for dir_entry in entries:
                        reason = None if is_temporary_name(dir_entry.name) else not_taken_reason(dir_entry)
                        if reason is not None and fnmatch.fnmatch(dir_entry.name, source.pattern):
                            not_taken.append(
                                {"name": mask_identities(display_name(dir_entry.name)), "reason": reason}
                            )
                        elif reason is None:
                            names.append(dir_entry.name)
                            if not is_temporary_name(dir_entry.name):
                                oldest = _older(oldest, dir_entry)
            except OSError as error:
                entry["error"] = str(error)
            entry["path"] = str(source.path)
            entry["files_waiting"] = sum(1 for name in names if not is_temporary_name(name))
            entry["files_being_written"] = sum(1 for name in names if is_being_written(name))
            entry["not_taken"] = not_taken
            if oldest is not None:
                entry["oldest_waiting_at"] = datetime.fromtimestamp(oldest, UTC).isoformat()
        sources.append(entry)
    return sources


def _older(oldest: float | None, entry: os.DirEntry[str]) -> float | None:
    try:
        mtime = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return oldest  # gone meanwhile: taken, most likely
    return mtime if oldest is None else min(oldest, mtime)


def status_facts(config: GatewayConfig, *, data_dir: Path | None = None, now: datetime) -> dict[str, Any]:
    """Everything `status` says (see the module's docstring); the exit code is the command's."""
    folders = Folders.from_config(config, data_dir=data_dir)
    # With several nodes on the data folder each keeps its own lock and account (var/nodes/);
    # `status` tells this host's node, and the store tells every node.
    own = config.node if config.several_nodes else None
    running = daemon_running(folders.var, own)
    state = (read_state(folders.var, own) or {}) if running else {}
    heartbeat = state.get("heartbeat_at")
    pauses = [
        {**pause, "cause": mask_identities(str(pause.get("cause", "")))} for pause in state.get("pauses", [])
    ]
    waiting = [
        {
            **wait,
            "name": mask_identities(str(wait.get("name", ""))),
            "message": mask_identities(str(wait.get("message", ""))),
        }
        for wait in state.get("waiting_files", [])
    ]
    attention: list[dict[str, str]] = []
    for pause in pauses:
        attention.append(
            {
                "kind": "paused",
                "subject": str(pause["scope"]),
                "message": f"{pause['cause']}; waiting for {pause['waits_for']}",
            }
        )
    for wait in waiting:
        attention.append(
            {"kind": "file-waiting", "subject": str(wait["name"]), "message": str(wait["message"])}
        )
    status: dict[str, Any] = {
        "config": str(config.path),
        "data_dir": str(folders.data_dir),
        "store": wire(config, data_dir=data_dir).store_location(),
        "store_error": None,
        "store_response_ms": None,
        "daemon": {
            "running": running,
            "node": config.node,
            "pid": state.get("pid"),
            "version": state.get("version"),
            "started_at": state.get("started_at"),
            "heartbeat_at": heartbeat,
            "heartbeat_age_seconds": (
                round((now - datetime.fromisoformat(heartbeat)).total_seconds(), 1) if heartbeat else None
            ),
        },
        "next_seal_at": state.get("next_seal_at"),
        "next_report_at": state.get("next_report_at"),
        "paused": pauses,
        "waiting_files": waiting,
        "sources": source_facts(config, state.get("sources_scanned_at")),
        "data_free_bytes": free_bytes(folders.data_dir),
        "files": {},
        "in_progress": [],
        "journals": [],
        "delivered_journals": 0,
        "last_delivery_at": None,
        "endpoints": {},
        "nodes": [],
        "alarms": [],
        "receipt_uploads": {"pending": 0, "failing": 0, "oldest_queued_at": None, "refused": []},
        "attention": attention,
    }
    started = time.monotonic()
    try:
        store = wire(config, data_dir=data_dir).open_reader()
    except StoreMissingError:
        if not running:
            raise
        status["store_error"] = "no store yet: the daemon is starting and creates it"
        return status
    except StoreUnavailableError as error:
        status["store_error"] = mask_identities(str(error))
        attention.append(
            {"kind": "store-unavailable", "subject": status["store"], "message": status["store_error"]}
        )
        return status
    try:
        _store_facts(store, config, status, attention, now)
    except StoreUnavailableError as error:
        status["store_error"] = mask_identities(str(error))
        attention.append(
            {"kind": "store-unavailable", "subject": status["store"], "message": status["store_error"]}
        )
    finally:
        store.close()
        status["store_response_ms"] = round((time.monotonic() - started) * 1000, 1)
    return status


def _store_facts(
    store: LedgerReader,
    config: GatewayConfig,
    status: dict[str, Any],
    attention: list[dict[str, str]],
    now: datetime,
) -> None:
    last = store.last_received()
    for source in status["sources"]:
        received = last.get(source["name"])
        source["last_received_at"] = received.isoformat() if received else None
    status["files"] = store.counts()
    status["nodes"] = [
        {
            "name": node.name,
            "alive": node.alive(now),
            "version": node.version,
            "started_at": node.started_at.isoformat(),
            "heartbeat_at": node.heartbeat_at.isoformat(),
            "stopped_at": iso(node.stopped_at),
        }
        for node in store.nodes()
    ]
    if config.several_nodes and any(node["alive"] for node in status["nodes"]):
        status["daemon"]["running_elsewhere"] = True
    status["in_progress"] = [
        {"name": mask_identities(r.name), "attempts": r.attempts, "last_error": masked_text(r.last_error)}
        for r in store.files_in_state(FileState.CLAIMED)
    ]
    journals = store.journals(states=[JournalState.OPEN, JournalState.SEALED, JournalState.APPROVED])
    status["journals"] = [journal_json(r) for r in journals]
    delivered = store.journals(states=[JournalState.DELIVERED])
    status["delivered_journals"] = len(delivered)
    status["last_delivery_at"] = iso(max((j.delivered_at for j in delivered if j.delivered_at), default=None))
    configured = {client.id for client in config.clients}
    for journal in journals:
        if journal.state is JournalState.SEALED:
            attention.append(
                {
                    "kind": "journal-waiting-approval",
                    "subject": journal.journal_id,
                    "message": f"sealed {iso(journal.sealed_at)}; approve it: `journal approve {journal.journal_id} --by NAME`",
                }
            )
        if journal.state is JournalState.APPROVED and (journal.last_error or "").startswith("PERMANENT"):
            attention.append(
                {
                    "kind": "delivery-failed",
                    "subject": journal.journal_id,
                    "message": f"{masked_text(journal.last_error)}; then `journal send {journal.journal_id}`",
                }
            )
        if journal.client_id not in configured and journal.case_count:
            attention.append(
                {
                    "kind": "client-not-configured",
                    "subject": journal.journal_id,
                    "message": f"client {journal.client_id!r} is no longer configured",
                }
            )
    for record in store.quarantined_files():
        attention.append(
            {
                "kind": "file-quarantined",
                "subject": mask_identities(record.name),
                "message": f"file {record.id} in quarantine since {iso(record.judged_at)}: "
                f"{masked_text(record.last_error)}; when dealt with: `quarantine resolve {record.id} --by NAME --note TEXT`",
            }
        )
    _receipt_upload_facts(store, status, attention)
    status["alarms"] = [
        {
            "alarm": alarm.alarm,
            "subject": alarm.subject,
            "since": alarm.since.isoformat(),
            "message": mask_identities(alarm.message),
            "message_sv": mask_identities(alarm.message_sv),
        }
        for alarm in read_alarms(store, now=now)
        if alarm.firing
    ]
    # A firing alarm waits for a person too; what is listed above already (a quarantined file, a
    # journal waiting for approval, a delivery failed for good) is not listed twice.
    listed = {item["kind"] for item in attention} | {item["subject"] for item in attention}
    for alarm in status["alarms"]:
        if alarm["alarm"] not in listed and alarm["subject"] not in listed:
            attention.append(
                {"kind": f"alarm:{alarm['alarm']}", "subject": alarm["subject"], "message": alarm["message"]}
            )
    endpoints = {
        key.removeprefix("endpoint:"): json.loads(value)
        for key, value in store.meta_items("endpoint:").items()
    }
    # Only what is still wrong: an endpoint's error counts while it is newer than its last success.
    status["endpoints"] = {
        name: {
            "last_success": state.get("last_success"),
            "last_error": masked_text(state.get("last_error"))
            if (state.get("last_error") or "") > (state.get("last_success") or "")
            else None,
        }
        for name, state in endpoints.items()
    }


#: Copies refused by a receipt folder that `status` lists one by one, at most.
MAX_REFUSED_SHOWN = 50


def _receipt_upload_facts(
    store: LedgerReader, status: dict[str, Any], attention: list[dict[str, str]]
) -> None:
    """The copies of receipts not yet in their senders' receipt folders (a backlog while a server
    is down), and those refused for good, which wait for a person."""
    backlog = store.receipt_upload_backlog(limit=MAX_REFUSED_SHOWN)
    refused = [
        {
            "source": upload.source,
            "name": mask_identities(upload.name),
            "receipt": mask_identities(upload.local_path),
            "error": masked_text(upload.last_error),
        }
        for upload in backlog.refused
    ]
    status["receipt_uploads"] = {
        "pending": backlog.pending,
        "failing": backlog.failing,
        "oldest_queued_at": iso(backlog.oldest_queued_at),
        "refused": refused,
    }
    for item in refused:
        attention.append(
            {
                "kind": "receipt-refused",
                "subject": f"{item['source']}: {item['name']}",
                "message": f"{item['error']}; remove or rename that file in the receipt folder, then restart "
                "the gateway to send the receipt",
            }
        )
