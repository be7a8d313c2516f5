"""`quarantine list|resolve`: the files the gateway gave up on, and a person dealing with them."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from gateway.bootstrap import wire
from gateway.cli.common import EXIT_OK, Parser, iso
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities
from gateway.folders import Folders
from gateway.monitoring.facts import masked_text as _masked_text
from gateway.service.runner import utc_now


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    quarantine = commands.add_parser("quarantine", help="files the gateway gave up on, and dealing with them")
    quarantine_actions = quarantine.add_subparsers(dest="action", required=True, parser_class=Parser)
    quarantine_list = quarantine_actions.add_parser(
        "list", parents=[looking], help="quarantined files no person has dealt with yet (--all: every one)"
    )
    quarantine_list.add_argument("--all", action="store_true", help="also the files dealt with")
    quarantine_list.add_argument("--format", choices=("text", "json"), default="text")
    quarantine_list.set_defaults(handler=_quarantine, writes=False)
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
    resolve.set_defaults(handler=_quarantine, writes=True)


def _quarantine(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "resolve":
        store = wire(config).open_store()
        try:
            record = store.resolve_quarantined(args.file_id, by=args.by, resolution=args.note, now=utc_now())
        finally:
            store.close()
        out.write(
            mask_identities(f"file {record.id} ({record.name}) dealt with by {args.by}: {args.note}") + "\n"
        )
        return EXIT_OK
    reader = wire(config, data_dir=args.data_dir).open_reader()
    try:
        records = reader.quarantined_files(unresolved_only=not args.all)
    finally:
        reader.close()
    folders = Folders.from_config(config, data_dir=args.data_dir)
    listed = [
        {
            "file_id": record.id,
            "name": mask_identities(record.name),
            "source": record.source,
            "received_at": iso(record.received_at),
            "quarantined_at": iso(record.judged_at),
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
