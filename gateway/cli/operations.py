"""The operations commands: `run`, `journal …`, `status`, `report`, `audit`, `trace`, `config check`.

Each opens the store itself, so it is safe to use while the daemon runs: every change is one
``BEGIN IMMEDIATE`` transaction, and sealing, approving and delivering check the journal's state
inside it (two processes cannot seal or send the same journal). Commands that only look
(`status`, `report`, `audit verify`, `trace`, `journal list|show`) open the store read-only: they
never take its write lock, never wait behind a writer, never migrate it and never create one.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import pwd
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway import config as config_module
from gateway.accounting import audit
from gateway.accounting import backup as backup_module
from gateway.accounting.reports import build as reporting
from gateway.accounting.reports import json as report_json
from gateway.accounting.reports import text as report_text
from gateway.accounting.trace import Tracer
from gateway.adapters.folder import is_being_written, is_temporary_name, not_taken_reason
from gateway.adapters.sftp import Endpoint
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities, mask_identity
from gateway.errors import (
    ConfigError,
    StoreError,
    StoreMissingError,
    StoreOutdatedError,
    StoreUnavailableError,
)
from gateway.folders import Folders
from gateway.fsutil import display_name
from gateway.logs import setup_logging
from gateway.service.consistency import describe_refusal, files_ahead_of_store
from gateway.service.journals import JournalService
from gateway.service.runner import Daemon, make_transport, open_store, store_path, utc_now
from gateway.service.runstate import daemon_running, read_state
from gateway.store import FileState, JournalRecord, JournalState

EXIT_OK = 0
EXIT_FAILED = 1


#: Commands that write into the data folder: only its owner may run them.
_WRITING = {("run", None), ("journal", "seal"), ("journal", "approve"), ("journal", "send"),
            ("journal", "withdraw"), ("quarantine", "resolve")}  # fmt: skip


def dispatch(args: argparse.Namespace, out: TextIO) -> int:
    config = config_module.load(config_module.locate(args.config))
    if (args.command, getattr(args, "action", None)) in _WRITING:
        _refuse_a_stranger(config)
    if args.command == "run":
        setup_logging(json_lines=args.log_format == "json", level=args.log_level)
        return Daemon(config, once=args.once).run()
    if args.command == "config":
        return _config_check(config, out)
    if args.command == "status":
        return _status(config, out, as_json=args.format == "json", data_dir=args.data_dir)
    if args.command == "report":
        return _report(config, args, out)
    if args.command == "audit":
        return _audit(config, args, out)
    if args.command == "quarantine":
        return _quarantine(config, args, out)
    if args.command == "backup":
        return _backup(config, args.destination, out)
    if args.command == "trace":
        return _trace(config, args.key, out, data_dir=args.data_dir)
    return _journal(config, args, out)


def _refuse_a_stranger(config: GatewayConfig) -> None:
    """Only the data folder's owner writes into it: a file written by anyone else (root
    included) would be one the daemon cannot read or replace later. Looking is for anyone who may
    read it."""
    owned = next((p for p in (config.data_dir / "var", config.data_dir) if p.exists()), None)
    if owned is None:
        return  # a first start: the folder is created by whoever runs it
    owner = owned.stat().st_uid
    if owner != os.geteuid():
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise ConfigError(
            f"{config.data_dir} belongs to the user {name}: run this command as {name} "
            f"(sudo -u {name} inkasso-gateway ...); nothing was changed"
        )


def _config_check(config: GatewayConfig, out: TextIO) -> int:
    folders = Folders.from_config(config)
    problems = folders.problems(sources=config.sources)
    for name in folders.__dataclass_fields__:
        folder = getattr(folders, name)
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"{folder}: not writable by this user")
    for source in config.sources:
        if source.type == "sftp":
            try:
                Endpoint.from_settings(source.settings, base=config.base_dir, where=f"sources.{source.name}")
            except (ConfigError, OSError) as error:
                problems.append(str(error))
    if config.delivery.type == "sftp":
        try:
            Endpoint.from_settings(config.delivery.settings, base=config.base_dir, where="delivery")
        except (ConfigError, OSError) as error:
            problems.append(str(error))
    warnings: list[str] = []
    outdated = None
    try:
        store = open_store(config, read_only=True)
    except StoreOutdatedError as error:
        store, outdated = None, error  # the daemon migrates it at start; compared with the files then
    except StoreMissingError:
        store = None  # no store yet: the first start creates it (unless the folders say one was lost)
    if outdated is not None:
        warnings.append(f"{outdated}; the daemon does so when it starts")
    else:
        ahead = files_ahead_of_store(store, folders, ZoneInfo(config.timezone))
        if ahead:
            problems.append(describe_refusal(ahead, store_path(config)))
    if store is not None:
        try:
            configured = {client.id for client in config.clients}
            warnings += [
                f"journal {journal.journal_id} ({journal.state.value}, {journal.case_count} case(s)) belongs to "
                f"client {journal.client_id!r}, which is no longer configured: it is not sealed or sent until the "
                "client is put back (or its cases are withdrawn)"
                for journal in store.journals(
                    states=[JournalState.OPEN, JournalState.SEALED, JournalState.APPROVED]
                )
                if journal.client_id not in configured and journal.case_count
            ]
        finally:
            store.close()
    if problems:
        raise ConfigError(f"{config.path}: " + "; ".join(problems), problems=problems)
    for warning in warnings:
        out.write(f"WARNING: {warning}\n")
    out.write(
        f"{config.path}: OK (sha256 {config.sha256[:12]}); {len(config.clients)} client(s), "
        f"{len(config.sources)} source(s), delivery {config.delivery.type} to {folders.journals} on "
        f"{config.delivery.schedule!r} ({config.timezone}), review {config.delivery.review}, store {store_path(config)}\n"
    )
    return EXIT_OK


def _journal_line(record: JournalRecord) -> str:
    number = f"#{record.sequence}" if record.sequence is not None else "(open)"
    state = record.state.value
    if record.state is JournalState.SEALED:
        state = "sealed, waits for approval"
    line = (
        f"{record.journal_id:<24} {record.client_id:<16} {number:<8} {state:<28} {record.case_count:>6} cases "
        f"{record.capital_ore / 100:>14,.2f} SEK"
    )
    if record.file_name:
        line += f"  {record.file_name}"
    if record.last_error and record.state is JournalState.APPROVED:
        line += f"  last error: {_masked_text(record.last_error)}"
    return line


def _journal_json(record: JournalRecord) -> dict[str, Any]:
    return {
        "journal_id": record.journal_id,
        "client": record.client_id,
        "sequence": record.sequence,
        "state": record.state.value,
        "needs_review": record.needs_review,
        "cases": record.case_count,
        "capital": f"{record.capital_ore / 100:.2f}",
        "sealed_at": _iso(record.sealed_at),
        "approved_by": record.approved_by,
        "approved_at": _iso(record.approved_at),
        "file_name": record.file_name,
        "sha256": record.sha256,
        "delivered_at": _iso(record.delivered_at),
        "attempts": record.attempts,
        "last_error": _masked_text(record.last_error),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


#: The days a report or an audit may cover: what a timestamp in the store can hold.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9999, 12, 30)
READ_ONLY_JOURNAL_ACTIONS = ("list", "show")


def _check_period(period_from: date | None, period_to: date | None) -> None:
    for flag, day in (("--from", period_from), ("--to", period_to)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ConfigError(f"{flag} {day}: a day between {FIRST_DAY} and {LAST_DAY}")
    if period_from and period_to and period_from > period_to:
        raise ConfigError(f"--from {period_from} is after --to {period_to}")


def _journal(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    looking = args.action in READ_ONLY_JOURNAL_ACTIONS
    data_dir = args.data_dir if looking else None
    store = open_store(config, read_only=looking, data_dir=data_dir)
    try:
        folders = Folders.from_config(config, data_dir=data_dir)
        service = JournalService(config, store, folders, make_transport(config, folders), clock=utc_now)
        action = args.action
        if action == "list":
            records = store.journals()
            if args.format == "json":
                json.dump([_journal_json(r) for r in records], out, indent=2)
                out.write("\n")
            else:
                for record in records:
                    out.write(_journal_line(record) + "\n")
                if not records:
                    out.write("no journals yet\n")
            return EXIT_OK
        if action == "show":
            shown = store.journal(args.journal_id)
            if shown is None:
                raise StoreError(f"no such journal: {args.journal_id}")
            out.write(_journal_line(shown) + "\n")
            for key, value in _journal_json(shown).items():
                if value is not None:
                    out.write(f"  {key}: {value}\n")
            out.write("  cases:\n")
            for case in store.journal_cases(shown.journal_id):
                debtors = "; ".join(f"{d.name} ({_masked(d.identity)})" for d in case.debtors)
                out.write(
                    f"    {mask_identities(case.reference):<24} {case.capital:>12,.2f} SEK  {debtors}\n"
                )
            return EXIT_OK
        if action == "seal":
            if args.client is not None and args.client not in {c.id for c in config.clients}:
                raise ConfigError(
                    f"no client {args.client!r} in {config.path}: a journal is sealed only for a configured client"
                )
            sealing = service.seal([args.client] if args.client else None)
            for record in sealing.sealed:
                out.write("sealed " + _journal_line(record) + "\n")
            for journal_id, reason in sealing.refused:
                out.write(f"NOT sealed {journal_id}: {reason}\n")
            if not sealing.sealed and not sealing.refused:
                out.write("nothing to seal: no open journal has cases\n")
            return EXIT_FAILED if sealing.refused else EXIT_OK
        if action == "approve":
            record = store.approve_journal(args.journal_id, by=args.by, now=utc_now())
            out.write("approved " + _journal_line(record) + "\n")
            return EXIT_OK
        if action == "send":
            if args.journal_id is not None:
                wanted = store.journal(args.journal_id)
                if wanted is None:
                    raise StoreError(f"no such journal: {args.journal_id}")
                if wanted.state is JournalState.DELIVERED:
                    # Asked to send what is sent already (the daemon was quicker): say so, it is done.
                    by = f" by {wanted.delivered_by}" if wanted.delivered_by else ""
                    out.write(
                        f"{wanted.journal_id} {wanted.file_name}: delivered{by} at {_iso(wanted.delivered_at)}\n"
                    )
                    return EXIT_OK
                if wanted.state is not JournalState.APPROVED:
                    raise StoreError(
                        f"journal {args.journal_id} is {wanted.state.value}: only an approved journal is sent"
                        + (
                            " (approve it first: `journal approve ID --by NAME`)"
                            if wanted.state is JournalState.SEALED
                            else ""
                        )
                    )
            # A person asking to send means now: the backoff after a failure is cancelled, and a
            # delivery another process is making right now is waited for and its outcome told.
            results = service.deliver_approved(only=args.journal_id, force=True)
            for result in results:
                if result.delivered:
                    by = f" (by {result.delivered_by})" if result.delivered_by else ""
                    word = f"delivered{by}"
                else:
                    word = f"NOT delivered: {_masked_text(result.error)}"
                out.write(f"{result.journal_id} {result.file_name}: {word}\n")
            if not results:
                out.write("nothing to send: no approved journal is waiting\n")
            return EXIT_OK if all(result.delivered for result in results) else EXIT_FAILED
        if action == "withdraw":
            withdrawn = store.withdraw_case(
                args.reference, client_id=args.client, by=args.by, reason=args.reason, now=utc_now()
            )
            store.log_event(
                "case-withdrawn", withdrawn.reference, f"by {args.by}: {args.reason}", now=utc_now()
            )
            out.write(
                mask_identities(
                    f"withdrew case {withdrawn.reference} from journal {withdrawn.journal_id} "
                    f"(by {args.by}: {args.reason})"
                )
                + "\n"
            )
            return EXIT_OK
    finally:
        store.close()
    raise AssertionError(f"unknown journal action {args.action}")


def _masked(identity: str) -> str:
    return mask_identity(identity)


def _masked_text(text: str | None) -> str | None:
    return None if text is None else mask_identities(text)


#: `status` exit codes, as LSB's `status` action: running and nothing waits; running and something
#: waits for a person; no daemon on this data folder.
STATUS_OK = 0
STATUS_NEEDS_A_PERSON = 1
STATUS_NOT_RUNNING = 3


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
    running = daemon_running(folders.var)
    state = (read_state(folders.var) or {}) if running else {}
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
        "store": str(store_path(config, data_dir=data_dir)),
        "store_error": None,
        "daemon": {
            "running": running,
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
        "attention": attention,
    }
    try:
        store = open_store(config, read_only=True, data_dir=data_dir)
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
    store: Any, config: GatewayConfig, status: dict[str, Any], attention: list[dict[str, str]]
) -> None:
    last = store.last_received()
    for source in status["sources"]:
        received = last.get(source["name"])
        source["last_received_at"] = received.isoformat() if received else None
    status["files"] = store.counts()
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
                    "message": f"sealed {_iso(journal.sealed_at)}; approve it: `journal approve {journal.journal_id} --by NAME`",
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
                "message": f"file {record.id} in quarantine since {_iso(record.judged_at)}: "
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
    if not status["daemon"]["running"]:
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
    else:
        out.write("daemon NOT running on this data folder\n")
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


def _report(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    zone = ZoneInfo(config.timezone)
    today = utc_now().astimezone(zone).date()
    _check_period(args.period_from, args.period_to)
    period_to = args.period_to or today
    period_from = args.period_from or period_to
    _check_period(period_from, period_to)
    if args.client is not None and args.client not in {client.id for client in config.clients}:
        raise ConfigError(f"--client {args.client}: not a client in {config.path}")
    folders = Folders.from_config(config, data_dir=args.data_dir)
    store = open_store(config, read_only=True, data_dir=args.data_dir)
    try:
        report = reporting.build_report(
            store,
            config,
            period_from=period_from,
            period_to=period_to,
            client=args.client,
            now=utc_now(),
            folders=folders,
        )
    finally:
        store.close()
    written = [] if args.no_write else reporting.write_report(report, folders.reports)
    if args.format == "json":
        json.dump(report_json.summary_json(report, written), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        report_text.write_summary(report, written, out)
    return EXIT_OK if report.settled else EXIT_FAILED


def _audit(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    _check_period(args.period_from, args.period_to)
    store = open_store(config, read_only=True, data_dir=args.data_dir)
    try:
        result = audit.verify(
            store,
            Folders.from_config(config, data_dir=args.data_dir),
            zone=ZoneInfo(config.timezone),
            period_from=args.period_from,
            period_to=args.period_to,
            anchors=args.anchor,
        )
    finally:
        store.close()
    audit.write_result(result, out)
    return EXIT_OK if result.ok else EXIT_FAILED


def _quarantine(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "resolve":
        store = open_store(config)
        try:
            record = store.resolve_quarantined(args.file_id, by=args.by, resolution=args.note, now=utc_now())
        finally:
            store.close()
        out.write(
            mask_identities(f"file {record.id} ({record.name}) dealt with by {args.by}: {args.note}") + "\n"
        )
        return EXIT_OK
    store = open_store(config, read_only=True, data_dir=args.data_dir)
    try:
        records = store.quarantined_files(unresolved_only=not args.all)
    finally:
        store.close()
    folders = Folders.from_config(config, data_dir=args.data_dir)
    listed = [
        {
            "file_id": record.id,
            "name": mask_identities(record.name),
            "source": record.source,
            "received_at": _iso(record.received_at),
            "quarantined_at": _iso(record.judged_at),
            "reason": _masked_text(record.last_error),
            "original": str(folders.located(record.final_path)) if record.final_path else None,
        }
        for record in records
    ]
    if args.format == "json":
        json.dump(listed, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        for item in listed:
            out.write(f"{item['file_id']:>6}  {item['quarantined_at']}  {item['name']}  ({item['reason']})\n")
        if not listed:
            out.write("no quarantined file waits for a person\n")
    return EXIT_OK


def _backup(config: GatewayConfig, destination: Path, out: TextIO) -> int:
    os.umask(0o077)  # the copy holds personal data: owner-only
    result = backup_module.backup(config, store_path(config), destination)
    out.write(
        f"copied {result.copied} file(s) to {destination} ({result.kept} already there from an earlier backup)\n"
    )
    for missing in result.missing or []:
        out.write(f"MISSING in the data folder (not copied): {mask_identities(missing)}\n")
    assert result.audit is not None
    out.write("audit of the copy: ")
    audit.write_result(result.audit, out)
    return EXIT_OK if result.audit.ok and not result.missing else EXIT_FAILED


def _trace(config: GatewayConfig, key: str, out: TextIO, *, data_dir: Path | None = None) -> int:
    store = open_store(config, read_only=True, data_dir=data_dir)
    try:
        found = Tracer(
            store, Folders.from_config(config, data_dir=data_dir), ZoneInfo(config.timezone)
        ).trace(key, out)
    finally:
        store.close()
    if not found:
        out.write(
            f"nothing known as {mask_identities(key)!r}: give a file name or SHA-256 (at least 12 hex), "
            "an accepted case's ArendeReferens, or a journal id (e.g. lst-exempel-j1 or lst-exempel-000001)\n"
        )
        return EXIT_FAILED
    return EXIT_OK
