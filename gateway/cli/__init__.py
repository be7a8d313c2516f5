"""The command line: `inkasso-gateway` (also `python -m gateway`).

One module per command group, each registering its sub-commands with a handler:
:mod:`~gateway.cli.validate` (`validate`, `rules`), :mod:`~gateway.cli.convert`, :mod:`~gateway.cli.run`,
:mod:`~gateway.cli.config_check`, :mod:`~gateway.cli.journal`, :mod:`~gateway.cli.status`,
:mod:`~gateway.cli.quarantine`, :mod:`~gateway.cli.accounting` (`report`, `audit verify`,
`trace`), :mod:`~gateway.cli.backup` and :mod:`~gateway.cli.store` (`store copy`). Exit codes are
defined once, in :mod:`~gateway.cli.common`: 0 success; 1 something was rejected, failed or waits
for a person; 2 usage, configuration or I/O error; 3 (`status`) no daemon runs.

Command modules are imported only when their command runs, so that `validate` never loads SSH,
file watching or scheduling.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    Parser,
    load_config,
    refuse_a_stranger,
)
from gateway.domain.rules import RULESET_VERSION
from gateway.errors import ConfigError, InputError, StoreError, StoreUnavailableError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "build_parser", "main"]

#: Command groups, by the first word on the command line: the module that registers them.
_GROUPS = {
    "validate": "validate",
    "rules": "validate",
    "convert": "convert",
    "run": "run",
    "config": "config_check",
    "journal": "journal",
    "status": "status",
    "quarantine": "quarantine",
    "report": "accounting",
    "audit": "accounting",
    "trace": "accounting",
    "backup": "backup",
    "store": "store",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) the one group that a command line names: help lists every
    command either way, but only the named group's module is imported."""
    parser = Parser(
        prog="inkasso-gateway",
        description="File-based integration gateway for collection cases to Kammarkollegiet.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__} (rules {RULESET_VERSION})"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    configured = Parser(add_help=False)
    configured.add_argument(
        "--config",
        help="gateway.toml (default: $INKASSO_GATEWAY_CONFIG, else ./gateway.toml, else "
        "/etc/inkasso-gateway/gateway.toml)",
    )
    # Commands that only look can look at a copy: a data folder moved, copied or restored elsewhere.
    looking = Parser(add_help=False, parents=[configured])
    looking.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="read this data folder (a copy, a restored backup) instead of the configured one; nothing is "
        "written into it",
    )
    modules = [_GROUPS[only]] if only in _GROUPS else list(dict.fromkeys(_GROUPS.values()))
    for name in modules:
        module = importlib.import_module(f"gateway.cli.{name}")
        module.register(commands, configured=configured, looking=looking)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in arguments if not a.startswith("-")), None)
    args = build_parser(only=first).parse_args(arguments)
    try:
        if not getattr(args, "configured", True):
            return int(args.handler(args, sys.stdout))
        config = load_config(args)
        if args.writes:
            refuse_a_stranger(config)
        return int(args.handler(config, args, sys.stdout))
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
