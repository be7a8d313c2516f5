"""`status`: whether a daemon runs on this data folder, and what waits for a person.

Exit codes as LSB's `status` action: 0 a daemon runs and nothing waits; 1 a daemon runs and
something waits for a person; 3 no daemon runs on this data folder. `--format json` carries the
same facts and the same exit code.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.adapters.folder import not_taken_reason
from gateway.bootstrap import wire
from gateway.cli.common import EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, Parser, iso
from gateway.cli.journal import _journal_json, _masked_text
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities
from gateway.errors import StoreMissingError, StoreUnavailableError
from gateway.folders import Folders
from gateway.fsutil import display_name, is_being_written, is_temporary_name
from gateway.service.runner import utc_now
from gateway.service.runstate import daemon_running, read_state
from gateway.store import FileState, JournalState
from gateway.store.roles import LedgerReader

STATUS_OK = EXIT_OK
STATUS_NEEDS_A_PERSON = EXIT_FAILED
STATUS_NOT_RUNNING = EXIT_NOT_RUNNING


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    status = commands.add_parser("status", parents=[looking], help="sources, queue, journals, last errors")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=_status_command, writes=False)


def _status_command(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    return _status(config, out, as_json=args.format == "json", data_dir=args.data_dir)


def _status(config: GatewayConfig, out: TextIO, *, as_json: bool, data_dir: Path | None = None) -> int:
    status = _status_facts(config, data_dir=data_dir, now=utc_now())
    if as_json:
        json.dump(status, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        _write_status(status, out)
    return int(status["exit_code"])


def _source_facts(config: GatewayConfig) -> list[dict[str, Any]]:
    """Each source as `status` sees it by looking (not from the daemon): what waits, what is being
    written, and what will never be taken (a FIFO or a folder named like a case file)."""
    sources = []
    for source in config.sources:
        entry: dict[str, Any] = {"name": source.name, "type": source.type}
        if source.path is not None:
            names: list[str] = []
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
            except OSError as error:
                entry["error"] = str(error)
            entry["path"] = str(source.path)
            entry["files_waiting"] = sum(1 for name in names if not is_temporary_name(name))
            entry["files_being_written"] = sum(1 for name in names if is_being_written(name))
            entry["not_taken"] = not_taken
        sources.append(entry)
    return sources


def _status_facts(config: GatewayConfig, *, data_dir: Path | None = None, now: datetime) -> dict[str, Any]:
    """Everything `status` says: the daemon's own account (var/daemon.state, and whether it holds
    the data folder's lock), a look at the sources, and the store read-only. A store that cannot
    be read (its disk full, say) is one more fact, not a failure. ``attention`` lists what waits
    for a person; the exit code follows from it and from whether a daemon runs."""
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
        "sources": _source_facts(config),
        "files": {},
        "in_progress": [],
        "journals": [],
        "delivered_journals": 0,
        "endpoints": {},
        "nodes": [],
        "attention": attention,
    }
    try:
        store = wire(config, data_dir=data_dir).open_reader()
    except StoreMissingError:
        if not running:
            raise
        status["store_error"] = "no store yet: the daemon is starting and creates it"
        return _settle_status(status)
    except StoreUnavailableError as error:
        status["store_error"] = mask_identities(str(error))
        attention.append(
            {"kind": "store-unavailable", "subject": status["store"], "message": status["store_error"]}
        )
        return _settle_status(status)
    try:
        _store_facts(store, config, status, attention)
    except StoreUnavailableError as error:
        status["store_error"] = mask_identities(str(error))
        attention.append(
            {"kind": "store-unavailable", "subject": status["store"], "message": status["store_error"]}
        )
    finally:
        store.close()
    return _settle_status(status)


def _store_facts(
    store: LedgerReader, config: GatewayConfig, status: dict[str, Any], attention: list[dict[str, str]]
) -> None:
    last = store.last_received()
    for source in status["sources"]:
        received = last.get(source["name"])
        source["last_received_at"] = received.isoformat() if received else None
    status["files"] = store.counts()
    now = datetime.now(UTC)
    status["nodes"] = [
        {
            "name": node.name,
            "alive": node.alive(now),
            "version": node.version,
            "started_at": node.started_at.isoformat(),
            "heartbeat_at": node.heartbeat_at.isoformat(),
            "stopped_at": iso(node.stopped_at) if node.stopped_at else None,
        }
        for node in store.nodes()
    ]
    if config.several_nodes and any(node["alive"] for node in status["nodes"]):
        status["daemon"]["running_elsewhere"] = True
    status["in_progress"] = [
        {"name": mask_identities(r.name), "attempts": r.attempts, "last_error": _masked_text(r.last_error)}
        for r in store.files_in_state(FileState.CLAIMED)
    ]
    journals = store.journals(states=[JournalState.OPEN, JournalState.SEALED, JournalState.APPROVED])
    status["journals"] = [_journal_json(r) for r in journals]
    status["delivered_journals"] = len(store.journals(states=[JournalState.DELIVERED]))
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
                    "message": f"{_masked_text(journal.last_error)}; then `journal send {journal.journal_id}`",
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
                f"{_masked_text(record.last_error)}; when dealt with: `quarantine resolve {record.id} --by NAME --note TEXT`",
            }
        )
    endpoints = {
        key.removeprefix("endpoint:"): json.loads(value)
        for key, value in store.meta_items("endpoint:").items()
    }
    # Only what is still wrong: an endpoint's error counts while it is newer than its last success.
    status["endpoints"] = {
        name: {
            "last_success": state.get("last_success"),
            "last_error": _masked_text(state.get("last_error"))
            if (state.get("last_error") or "") > (state.get("last_success") or "")
            else None,
        }
        for name, state in endpoints.items()
    }


def _settle_status(status: dict[str, Any]) -> dict[str, Any]:
    if not status["daemon"]["running"] and not status["daemon"].get("running_elsewhere"):
        status["exit_code"] = STATUS_NOT_RUNNING
    elif status["attention"]:
        status["exit_code"] = STATUS_NEEDS_A_PERSON
    else:
        status["exit_code"] = STATUS_OK
    return status


def _write_status(status: dict[str, Any], out: TextIO) -> None:
    daemon = status["daemon"]
    out.write(f"config {status['config']}\nstore  {status['store']}\n")
    if status["store_error"]:
        out.write(f"STORE UNAVAILABLE: {status['store_error']}\n")
    if daemon["running"]:
        out.write(
            f"daemon running: pid {daemon['pid']}, version {daemon['version']}, since {daemon['started_at']}, "
            f"last heartbeat {daemon['heartbeat_age_seconds']} s ago\n"
        )
        out.write(
            f"next seal and delivery {status['next_seal_at']}; next report {status['next_report_at']}\n"
        )
    elif daemon.get("running_elsewhere"):
        out.write(f"daemon NOT running as node {daemon['node']} here; other nodes run (below)\n")
    else:
        out.write("daemon NOT running on this data folder\n")
    if len(status["nodes"]) > 1 or any(not node["alive"] for node in status["nodes"]):
        out.write("nodes:\n")
        for node in status["nodes"]:
            state = "alive" if node["alive"] else ("stopped" if node["stopped_at"] else "NOT RESPONDING")
            out.write(
                f"  {node['name']:<20} {state:<14} version {node['version']}, heartbeat {node['heartbeat_at']}\n"
            )
    if status["attention"]:
        out.write(f"\nWAITING FOR A PERSON ({len(status['attention'])}):\n")
        for item in status["attention"]:
            out.write(f"  [{item['kind']}] {item['subject']}: {item['message']}\n")
    else:
        out.write("\nnothing waits for a person\n")
    out.write("\nsources:\n")
    for entry in status["sources"]:
        out.write(
            f"  {entry['name']:<12} {entry['type']:<7} {entry.get('path', '')}  "
            f"{entry.get('files_waiting', 0)} waiting, {entry.get('files_being_written', 0)} being written; "
            f"last file received {entry.get('last_received_at') or 'never'}\n"
        )
        for item in entry.get("not_taken", []):
            out.write(f"    NOT TAKEN: {item['name']} is {item['reason']}; move it away\n")
    out.write(
        "\nfiles: " + (", ".join(f"{k} {v}" for k, v in sorted(status["files"].items())) or "none yet") + "\n"
    )
    for item in status["in_progress"]:
        out.write(f"  in progress: {item['name']} (attempt {item['attempts']}) {item['last_error'] or ''}\n")
    out.write("\njournals not yet delivered:\n")
    for journal in status["journals"]:
        out.write(
            f"  {journal['journal_id']:<24} {journal['client']:<16} {journal['state']:<10} {journal['cases']:>6} cases "
            f"{journal['capital']:>14} SEK"
            + (f"  last error: {journal['last_error']}" if journal["last_error"] else "")
            + "\n"
        )
    if not status["journals"]:
        out.write("  none\n")
    out.write(f"journals delivered: {status['delivered_journals']}\n")
    for name, state in status["endpoints"].items():
        out.write(
            f"sftp {name}: last success {state.get('last_success') or 'never'}"
            + (f"; FAILING: {state['last_error']}" if state.get("last_error") else "")
            + "\n"
        )
