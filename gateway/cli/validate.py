"""`validate` and `rules`: checking case files without a data folder, and the rule catalogue.

`validate` needs no store, no daemon and no network: it imports nothing of SSH, file watching or
scheduling (a test keeps it so), and starts fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway import __version__, config
from gateway.cli.common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, Parser, iso_date
from gateway.cli.validation_output import write_json, write_text, write_text_totals
from gateway.config import GatewayConfig
from gateway.domain.judging import FileStatus
from gateway.domain.rules import RULESET_VERSION, all_rules
from gateway.errors import InputError
from gateway.formats.casecsv import CsvMapping, MappingError, load_mapping
from gateway.fsutil import is_temporary_name
from gateway.service.validation import FORMATS, FileReport, ValidationSettings, validate_file

CASE_FILE_SUFFIXES = (".xml", ".zip", ".json", ".csv")


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    validate = commands.add_parser(
        "validate",
        help="check case files without storing, moving or sending anything",
        description="Dry run: check case files against the schema and every rule, and print every "
        "finding at once. A directory means every case file (*.xml, *.zip, *.json, *.csv) in it.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="case file, package or directory")
    validate.add_argument("--config", help="gateway.toml whose clients the client check (F05) uses")
    validate.add_argument(
        "--as-of", type=iso_date, metavar="YYYY-MM-DD", help="validate as if today were this date"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument(
        "--mapping",
        metavar="M.toml",
        help="the mapping of CSV files' columns (a CSV source's mapping); needed for *.csv",
    )
    validate.add_argument(
        "--input-format",
        choices=FORMATS,
        help="read every file in this format (default: by its extension, else its content)",
    )
    validate.set_defaults(handler=_validate, configured=False)

    rules = commands.add_parser("rules", help="print the rule catalogue")
    rules.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    rules.set_defaults(handler=_rules_command, configured=False)


def _rules_command(args: argparse.Namespace, out: TextIO) -> int:
    return _rules(args.format, out)


def _optional_config(explicit: str | None) -> GatewayConfig | None:
    """An explicit --config must exist; the environment's or ./gateway.toml is used when present."""
    path = config.locate(explicit)
    if explicit is None and not path.is_file():
        return None
    return config.load(path, check_schedules=False)


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


def _mapping(argument: str | None) -> CsvMapping | None:
    if argument is None:
        return None
    try:
        return load_mapping(Path(argument))
    except MappingError as error:
        raise InputError(f"{argument}: {error}") from error
    except OSError as error:
        raise InputError(f"{argument}: cannot read: {error.strerror or error}") from error


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    gateway_config = _optional_config(args.config)
    today = args.as_of or _today(gateway_config)
    mapping = _mapping(args.mapping)
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
    settings = dataclasses.replace(settings, file_format=args.input_format, csv_mapping=mapping)
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
        print("inkasso-gateway: no case files (*.xml, *.zip, *.json, *.csv) found", file=sys.stderr)
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
