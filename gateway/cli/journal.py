"""`journal list|show|seal|approve|send|withdraw`: the journals, and a person's say over them.

Safe beside the running daemon: every change is one transaction that checks the journal's state
inside it, so two processes cannot seal or send the same journal. `list` and `show` only look.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from gateway.bootstrap import wire
from gateway.cli.common import EXIT_FAILED, EXIT_OK, Parser, iso
from gateway.config import GatewayConfig
from gateway.domain.identity import mask_identities, mask_identity
from gateway.errors import ConfigError, StoreError
from gateway.monitoring.facts import journal_json as _journal_json
from gateway.monitoring.facts import masked_text as _masked_text
from gateway.service.journals import JournalService
from gateway.service.runner import utc_now
from gateway.store import JournalRecord, JournalState
from gateway.store.roles import JournalStore, LedgerReader

READ_ONLY_JOURNAL_ACTIONS = ("list", "show")


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    journal = commands.add_parser("journal", help="list, show, seal, approve, send journals; withdraw a case")
    actions = journal.add_subparsers(dest="action", required=True, parser_class=Parser)
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
    for parser in (listing, show):
        parser.set_defaults(handler=_journal, writes=False)
    for parser in (seal, approve, send, withdraw):
        parser.set_defaults(handler=_journal, writes=True)


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


def _masked(identity: str) -> str:
    return mask_identity(identity)


def _journal(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    if args.action in READ_ONLY_JOURNAL_ACTIONS:
        reader = wire(config, data_dir=args.data_dir).open_reader()
        try:
            return _look(args, reader, out)
        finally:
            reader.close()
    wiring = wire(config)
    store = wiring.open_store()
    try:
        service = JournalService(config, store, wiring.folders, wiring.transport(), clock=utc_now)
        return _change(config, args, store, service, out)
    finally:
        store.close()


def _look(args: argparse.Namespace, store: LedgerReader, out: TextIO) -> int:
    """`list` and `show` only look (a copy too, with --data-dir): no service, no transport."""
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
            out.write(f"    {mask_identities(case.reference):<24} {case.capital:>12,.2f} SEK  {debtors}\n")
        return EXIT_OK
    raise AssertionError(f"unknown journal action {action}")


def _change(
    config: GatewayConfig, args: argparse.Namespace, store: JournalStore, service: JournalService, out: TextIO
) -> int:
    """`seal`, `approve`, `send` and `withdraw`: one transaction each, on the store itself."""
    action = args.action
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
                    f"{wanted.journal_id} {wanted.file_name}: delivered{by} at {iso(wanted.delivered_at)}\n"
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
        store.log_event("case-withdrawn", withdrawn.reference, f"by {args.by}: {args.reason}", now=utc_now())
        out.write(
            mask_identities(
                f"withdrew case {withdrawn.reference} from journal {withdrawn.journal_id} "
                f"(by {args.by}: {args.reason})"
            )
            + "\n"
        )
        return EXIT_OK
    raise AssertionError(f"unknown journal action {action}")
