"""`store copy --to postgresql://…`: the configured SQLite store, as of one moment, into an empty
PostgreSQL database (the move to a store several nodes share)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from gateway.bootstrap import wire
from gateway.cli.common import EXIT_OK, Parser
from gateway.config import GatewayConfig


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    store = commands.add_parser("store", help="the store itself: copy it into PostgreSQL")
    actions = store.add_subparsers(dest="action", required=True, parser_class=Parser)
    copy = actions.add_parser(
        "copy",
        parents=[configured],
        help="copy the SQLite store into an empty PostgreSQL database",
        description="Copy the configured SQLite store, as of one moment and read-only, into an empty "
        "PostgreSQL database: the schema is created there, every row keeps its id. Stop the daemon "
        "first; afterwards set [store] url to the same URL and start it again. The password comes "
        "from PGPASSWORD, ~/.pgpass, PGPASSFILE or PGSERVICE, never from the URL. Exit 1 when the "
        "database is not empty, 2 when it cannot be reached.",
    )
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host[:port]/database")
    copy.add_argument("--format", choices=("text", "json"), default="text")
    copy.set_defaults(handler=_copy, writes=False)


def _copy(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    wiring = wire(config)
    copied = wiring.copy_store(args.to)
    source, target = wiring.store_location(), wiring.shown_url(args.to)
    if args.format == "json":
        json.dump({"from": source, "to": target, "rows": copied}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    out.write(f"copied {source} to {target}:\n")
    for table, rows in copied.items():
        out.write(f"  {table:<20} {rows:>10,} row(s)\n")
    out.write(f'set [store] url = "{target}" in {config.path} and start the daemon\n')
    return EXIT_OK
