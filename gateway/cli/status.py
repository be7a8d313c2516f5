"""`status`: whether a daemon runs on this data folder, and what waits for a person.

Exit codes as LSB's `status` action: 0 a daemon runs and nothing waits; 1 a daemon runs and
something waits for a person; 3 no daemon runs on this data folder. `--format json` carries the
same facts and the same exit code. The facts are gathered by :mod:`gateway.monitoring.facts`, the
same code the daemon's ``/readyz`` answers from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from gateway.cli.common import EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, Parser
from gateway.config import GatewayConfig
from gateway.monitoring.facts import status_facts
from gateway.service.runner import utc_now

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
    status = _settle(status_facts(config, data_dir=data_dir, now=utc_now()))
    if as_json:
        json.dump(status, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        _write_status(status, out)
    return int(status["exit_code"])


def _settle(status: dict[str, Any]) -> dict[str, Any]:
    """The exit code the facts call for (it is part of the JSON, so that a program need not run
    the command twice)."""
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
    out.write(f"alarms firing: {len(status['alarms']) or 'none'}\n")
    for alarm in status["alarms"]:
        out.write(f"  [{alarm['alarm']}] {alarm['subject']} since {alarm['since']}: {alarm['message']}\n")
    out.write("\nsources:\n")
    for entry in status["sources"]:
        out.write(
            f"  {entry['name']:<12} {entry['type']:<7} {entry.get('path', '')}  "
            f"{entry.get('files_waiting', 0)} waiting, {entry.get('files_being_written', 0)} being written; "
            f"last file received {entry.get('last_received_at') or 'never'}; "
            f"last scanned {entry.get('last_scan_at') or 'never'}\n"
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
    uploads = status["receipt_uploads"]
    if uploads["pending"] or uploads["refused"]:
        out.write(
            f"receipts not yet back with their senders: {uploads['pending']} pending"
            + (f" ({uploads['failing']} failing)" if uploads["failing"] else "")
            + (f", oldest queued {uploads['oldest_queued_at']}" if uploads["oldest_queued_at"] else "")
            + (f", {len(uploads['refused'])} refused" if uploads["refused"] else "")
            + "\n"
        )
    for name, state in status["endpoints"].items():
        out.write(
            f"sftp {name}: last success {state.get('last_success') or 'never'}"
            + (f"; FAILING: {state['last_error']}" if state.get("last_error") else "")
            + "\n"
        )
