"""`report`, `audit verify` and `trace`: accounting for what arrived, where it went, and why.

They only look: the store is opened read-only, and with --data-dir they read a copy (a backup, a
day's data folder handed to an auditor) wherever it is, writing nothing into it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway.accounting import audit
from gateway.accounting.reports import build as reporting
from gateway.accounting.reports import json as report_json
from gateway.accounting.reports import text as report_text
from gateway.accounting.trace import Tracer
from gateway.bootstrap import wire
from gateway.cli.common import EXIT_FAILED, EXIT_OK, Parser, check_period, iso_date, sha256_argument
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities
from gateway.errors import ConfigError
from gateway.folders import Folders
from gateway.service.runner import utc_now


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    report = commands.add_parser(
        "report",
        parents=[looking],
        help="write the reconciliation report (HTML and CSV) to outbox/reports",
        description="Reconcile files, cases, kronor and journals for a period (default: today), write "
        "the report as HTML and CSV to the reports folder, and print a summary. Exit 1 when anything "
        "is not accounted for.",
    )
    report.add_argument("--from", dest="period_from", type=iso_date, metavar="YYYY-MM-DD")
    report.add_argument("--to", dest="period_to", type=iso_date, metavar="YYYY-MM-DD")
    report.add_argument("--client", metavar="CLIENT", help="one client's files and journals only")
    report.add_argument("--format", choices=("text", "json"), default="text", help="of the printed summary")
    report.add_argument(
        "--no-write",
        action="store_true",
        help="print the figures only; write no report files (for monitoring that polls it, or a copy)",
    )
    report.set_defaults(handler=_report, writes=False)

    audit_command = commands.add_parser("audit", help="verify receipts, originals and sent journals")
    audit_actions = audit_command.add_subparsers(dest="action", required=True, parser_class=Parser)
    verify = audit_actions.add_parser(
        "verify",
        parents=[looking],
        help="check the receipt chain and every original and sent journal against its receipt",
    )
    verify.add_argument("--from", dest="period_from", type=iso_date, metavar="YYYY-MM-DD")
    verify.add_argument("--to", dest="period_to", type=iso_date, metavar="YYYY-MM-DD")
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=sha256_argument,
        metavar="SHA256",
        help="a receipt chain head noted earlier (printed by every report): it must still be in the chain",
    )
    verify.set_defaults(handler=_audit, writes=False)

    trace = commands.add_parser(
        "trace", parents=[looking], help="the whole history of a file, a case or a journal"
    )
    trace.add_argument("key", metavar="FILE|CASE-REF|JOURNAL-ID")
    trace.set_defaults(handler=_trace_command, writes=False)


def _trace_command(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    return _trace(config, args.key, out, data_dir=args.data_dir)


def _report(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    zone = ZoneInfo(config.timezone)
    today = utc_now().astimezone(zone).date()
    check_period(args.period_from, args.period_to)
    period_to = args.period_to or today
    period_from = args.period_from or period_to
    check_period(period_from, period_to)
    if args.client is not None and args.client not in {client.id for client in config.clients}:
        raise ConfigError(f"--client {args.client}: not a client in {config.path}")
    folders = Folders.from_config(config, data_dir=args.data_dir)
    store = wire(config, data_dir=args.data_dir).open_reader()
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
    check_period(args.period_from, args.period_to)
    store = wire(config, data_dir=args.data_dir).open_reader()
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


def _trace(config: GatewayConfig, key: str, out: TextIO, *, data_dir: Path | None = None) -> int:
    store = wire(config, data_dir=data_dir).open_reader()
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
