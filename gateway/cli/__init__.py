"""The command line: `inkasso-gateway` (also `python -m gateway`).

Exit codes (contract section 7): 0 success (for validate: every case accepted, warnings allowed);
1 something was rejected or failed; 2 usage, configuration or I/O error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from gateway import __version__, config
from gateway.adapters.folder import is_temporary_name
from gateway.cli import operations
from gateway.cli.validation_output import write_json, write_text, write_text_totals
from gateway.config import GatewayConfig
from gateway.domain.judging import FileStatus
from gateway.domain.rules import RULESET_VERSION, all_rules
from gateway.errors import ConfigError, InputError, StoreError, StoreUnavailableError
from gateway.service.validation import FileReport, ValidationSettings, validate_file

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

CASE_FILE_SUFFIXES = (".xml", ".zip")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _sha256(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"not a SHA-256 (64 hex digits): {text!r}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="inkasso-gateway",
        description="File-based integration gateway for collection cases to Kammarkollegiet.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__} (rules {RULESET_VERSION})"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser(
        "validate",
        help="check case files without storing, moving or sending anything",
        description="Dry run: check case files against the schema and every rule, and print every "
        "finding at once. A directory means every case file (*.xml, *.zip) in it.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="case file, package or directory")
    validate.add_argument("--config", help="gateway.toml whose clients the client check (F05) uses")
    validate.add_argument(
        "--as-of", type=_iso_date, metavar="YYYY-MM-DD", help="validate as if today were this date"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text")

    rules = commands.add_parser("rules", help="print the rule catalogue")
    rules.add_argument("--format", choices=("text", "markdown", "json"), default="text")

    configured = _Parser(add_help=False)
    configured.add_argument(
        "--config",
        help="gateway.toml (default: $INKASSO_GATEWAY_CONFIG, else ./gateway.toml, else "
        "/etc/inkasso-gateway/gateway.toml)",
    )
    # Commands that only look can look at a copy: a data folder moved, copied or restored elsewhere.
    looking = _Parser(add_help=False, parents=[configured])
    looking.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="read this data folder (a copy, a restored backup) instead of the configured one; nothing is "
        "written into it",
    )

    run = commands.add_parser("run", parents=[configured], help="the daemon")
    run.add_argument("--once", action="store_true", help="process what is there, deliver what is due, exit")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")

    journal = commands.add_parser("journal", help="list, show, seal, approve, send journals; withdraw a case")
    actions = journal.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = actions.add_parser("list", parents=[looking], help="every journal with its state")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = actions.add_parser("show", parents=[looking], help="one journal and its cases")
    show.add_argument("journal_id", metavar="ID")
    seal = actions.add_parser(
        "seal", parents=[configured], help="seal open journals now (all, or one client's)"
    )
    seal.add_argument("client", nargs="?", metavar="CLIENT")
    approve = actions.add_parser(
        "approve", parents=[configured], help="approve a sealed journal for delivery"
    )
    approve.add_argument("journal_id", metavar="ID")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves (recorded in the journal)")
    send = actions.add_parser(
        "send", parents=[configured], help="deliver approved journals now (or one, retried)"
    )
    send.add_argument("journal_id", nargs="?", metavar="ID")
    withdraw = actions.add_parser(
        "withdraw", parents=[configured], help="take a case out of its unsent journal (recorded)"
    )
    withdraw.add_argument("reference", metavar="CASE-REF")
    withdraw.add_argument("--reason", required=True)
    withdraw.add_argument("--by", default=os.environ.get("USER", "operator"), metavar="NAME")
    withdraw.add_argument("--client", metavar="CLIENT", help="the client id, when several have the reference")

    status = commands.add_parser("status", parents=[looking], help="sources, queue, journals, last errors")
    status.add_argument("--format", choices=("text", "json"), default="text")

    report = commands.add_parser(
        "report",
        parents=[looking],
        help="write the reconciliation report (HTML and CSV) to outbox/reports",
        description="Reconcile files, cases, kronor and journals for a period (default: today), write "
        "the report as HTML and CSV to the reports folder, and print a summary. Exit 1 when anything "
        "is not accounted for.",
    )
    report.add_argument("--from", dest="period_from", type=_iso_date, metavar="YYYY-MM-DD")
    report.add_argument("--to", dest="period_to", type=_iso_date, metavar="YYYY-MM-DD")
    report.add_argument("--client", metavar="CLIENT", help="one client's files and journals only")
    report.add_argument("--format", choices=("text", "json"), default="text", help="of the printed summary")
    report.add_argument(
        "--no-write",
        action="store_true",
        help="print the figures only; write no report files (for monitoring that polls it, or a copy)",
    )

    audit = commands.add_parser("audit", help="verify receipts, originals and sent journals")
    audit_actions = audit.add_subparsers(dest="action", required=True, parser_class=_Parser)
    verify = audit_actions.add_parser(
        "verify",
        parents=[looking],
        help="check the receipt chain and every original and sent journal against its receipt",
    )
    verify.add_argument("--from", dest="period_from", type=_iso_date, metavar="YYYY-MM-DD")
    verify.add_argument("--to", dest="period_to", type=_iso_date, metavar="YYYY-MM-DD")
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=_sha256,
        metavar="SHA256",
        help="a receipt chain head noted earlier (printed by every report): it must still be in the chain",
    )

    trace = commands.add_parser(
        "trace", parents=[looking], help="the whole history of a file, a case or a journal"
    )
    trace.add_argument("key", metavar="FILE|CASE-REF|JOURNAL-ID")

    quarantine = commands.add_parser("quarantine", help="files the gateway gave up on, and dealing with them")
    quarantine_actions = quarantine.add_subparsers(dest="action", required=True, parser_class=_Parser)
    quarantine_list = quarantine_actions.add_parser(
        "list", parents=[looking], help="quarantined files no person has dealt with yet (--all: every one)"
    )
    quarantine_list.add_argument("--all", action="store_true", help="also the files dealt with")
    quarantine_list.add_argument("--format", choices=("text", "json"), default="text")
    resolve = quarantine_actions.add_parser(
        "resolve",
        parents=[configured],
        help="record that a person has dealt with a quarantined file (it stays where it is)",
    )
    resolve.add_argument("file_id", type=int, metavar="FILE-ID", help="the file's number (`quarantine list`)")
    resolve.add_argument("--by", required=True, metavar="NAME")
    resolve.add_argument(
        "--note", required=True, metavar="TEXT", help="what was done (e.g. asked the sender to resend)"
    )

    backup = commands.add_parser(
        "backup",
        parents=[configured],
        help="copy the store and every file the audit needs to DEST, then audit the copy",
        description="A consistent copy of the data folder, safe while the daemon runs: the store "
        "(SQLite's online backup) and every receipt, original, sent journal, journal receipt and "
        "configuration it knows. Run again into the same DEST, it copies only what is new. Exit 1 "
        "when the copy does not pass `audit verify`.",
    )
    backup.add_argument("destination", type=Path, metavar="DEST")

    config_command = commands.add_parser("config", help="check the configuration")
    config_actions = config_command.add_subparsers(dest="action", required=True, parser_class=_Parser)
    config_actions.add_parser(
        "check", parents=[configured], help="read and check gateway.toml and its folders"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args, sys.stdout)
        if args.command == "rules":
            return _rules(args.format, sys.stdout)
        return operations.dispatch(args, sys.stdout)
    except (ConfigError, InputError, StoreUnavailableError) as error:
        # A store that cannot be opened, or is locked by another process for too long, is an I/O
        # error of the command (exit 2); a store that refuses a step is a failure (exit 1).
        print(f"inkasso-gateway: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"inkasso-gateway: {error}", file=sys.stderr)
        return EXIT_REJECTED
    except BrokenPipeError:
        # The reader went away (`trace X | head`): not a failure. Point stdout at /dev/null so that
        # Python's flush at exit does not print a traceback about it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _optional_config(explicit: str | None) -> GatewayConfig | None:
    """An explicit --config must exist; the environment's or ./gateway.toml is used when present."""
    path = config.locate(explicit)
    if explicit is None and not path.is_file():
        return None
    return config.load(path)


def _today(gateway_config: GatewayConfig | None) -> date:
    zone = ZoneInfo(gateway_config.timezone if gateway_config else config.DEFAULT_TIMEZONE)
    return datetime.now(zone).date()


def _case_files(arguments: Sequence[str]) -> Iterator[Path | InputError]:
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                name = child.name
                if is_temporary_name(name):
                    continue
                if child.is_file() and name.lower().endswith(CASE_FILE_SUFFIXES):
                    yield child
        elif path.is_file():
            yield path
        else:
            yield InputError(f"{argument}: no such file or directory")


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    gateway_config = _optional_config(args.config)
    today = args.as_of or _today(gateway_config)
    if gateway_config is None:
        settings = ValidationSettings(today=today)
    else:
        settings = ValidationSettings(
            today=today,
            clients=gateway_config.client_orgnrs(),
            strict_sequence=gateway_config.rules.strict_sequence,
            postal_directory=gateway_config.load_postal_directory(),
            max_attachment_bytes=gateway_config.rules.max_attachment_bytes,
            policy=gateway_config.on_case_error,
        )
    if args.format == "text":
        where = (
            f"config {gateway_config.path}"
            if gateway_config
            else "no config: the client check (F05) is skipped"
        )
        out.write(
            f"inkasso-gateway {__version__}, rules {RULESET_VERSION}, as of {settings.today}; {where}\n"
        )
    reports: list[FileReport] = []
    io_errors = 0
    for item in _case_files(args.files):
        if isinstance(item, InputError):
            print(f"inkasso-gateway: {item}", file=sys.stderr)
            io_errors += 1
            continue
        try:
            report = validate_file(item, settings, name=str(item))
        except OSError as error:
            print(f"inkasso-gateway: {item}: cannot read: {error.strerror or error}", file=sys.stderr)
            io_errors += 1
            continue
        if args.format == "json":
            write_json(out, report)
        else:
            write_text(out, report)
        out.flush()
        # Keep only the status: the verdict's spooled cases can go once printed.
        reports.append(report)
        report.close()
    if args.format == "text" and reports:
        write_text_totals(out, reports)
    if io_errors:
        return EXIT_USAGE
    if not reports:
        print("inkasso-gateway: no case files (*.xml, *.zip) found", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if all(r.verdict.status is FileStatus.ACCEPTED for r in reports) else EXIT_REJECTED


def _rules(output_format: str, out: TextIO) -> int:
    rules = all_rules()
    if output_format == "json":
        catalogue = [
            {
                "code": r.code,
                "severity": r.severity,
                "scope": r.scope.value,
                "sv": r.title_sv,
                "en": r.title_en,
            }
            for r in rules
        ]
        json.dump(catalogue, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif output_format == "markdown":
        out.write("| Code | Severity | Check (en) | Kontroll (sv) |\n|---|---|---|---|\n")
        for r in rules:
            out.write(f"| {r.code} | {r.severity} | {r.title_en} | {r.title_sv} |\n")
    else:
        for r in rules:
            out.write(f"{r.code} [{r.severity}] {r.title_en}\n    {r.title_sv}\n")
    return EXIT_OK
