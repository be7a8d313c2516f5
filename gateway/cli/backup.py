"""`backup DEST`: a consistent copy of the data folder, safe beside the running daemon, audited."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from gateway.accounting import audit
from gateway.accounting import backup as backup_module
from gateway.bootstrap import wire
from gateway.cli.common import EXIT_FAILED, EXIT_OK, Parser
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
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
    backup.set_defaults(handler=_backup_command, writes=False)


def _backup_command(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    return _backup(config, args.destination, out)


def _backup(config: GatewayConfig, destination: Path, out: TextIO) -> int:
    os.umask(0o077)  # the copy holds personal data: owner-only
    result = backup_module.backup(config, wire(config).open_reader, destination)
    out.write(
        f"copied {result.copied} file(s) to {destination} ({result.kept} already there from an earlier backup)\n"
    )
    for missing in result.missing or []:
        out.write(f"MISSING in the data folder (not copied): {mask_identities(missing)}\n")
    assert result.audit is not None
    out.write("audit of the copy: ")
    audit.write_result(result.audit, out)
    return EXIT_OK if result.audit.ok and not result.missing else EXIT_FAILED
