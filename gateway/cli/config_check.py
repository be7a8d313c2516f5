"""`config check`: what would make the service fail, found before it starts (the unit runs it as
ExecStartPre): every key checked, folders that must exist, SFTP endpoints' files, and a store
behind the data folder."""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway.bootstrap import endpoint, wire
from gateway.cli.common import EXIT_OK, Parser
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, StoreMissingError, StoreOutdatedError
from gateway.folders import Folders
from gateway.service.consistency import describe_refusal, files_ahead_of_store
from gateway.store import JournalState


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    config_command = commands.add_parser("config", help="check the configuration")
    config_actions = config_command.add_subparsers(dest="action", required=True, parser_class=Parser)
    check = config_actions.add_parser(
        "check", parents=[configured], help="read and check gateway.toml and its folders"
    )
    check.set_defaults(handler=_config_check_command, writes=False)


def _config_check_command(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    return _config_check(config, out)


def _address(listen: tuple[str, int]) -> str:
    host, port = listen
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
                endpoint(config, source=source.name)
            except (ConfigError, OSError) as error:
                problems.append(str(error))
    if config.delivery.type == "sftp":
        try:
            endpoint(config)
        except (ConfigError, OSError) as error:
            problems.append(str(error))
    warnings: list[str] = []
    outdated = None
    try:
        store = wire(config).open_reader()
    except StoreOutdatedError as error:
        store, outdated = None, error  # the daemon migrates it at start; compared with the files then
    except StoreMissingError:
        store = None  # no store yet: the first start creates it (unless the folders say one was lost)
    if outdated is not None:
        warnings.append(f"{outdated}; the daemon does so when it starts")
    else:
        ahead = files_ahead_of_store(store, folders, ZoneInfo(config.timezone))
        if ahead:
            problems.append(describe_refusal(ahead, wire(config).store_location()))
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
    if config.monitoring.listens_everywhere:
        assert config.monitoring.listen is not None
        warnings.append(
            f"monitoring.listen {config.monitoring.listen[0]!r} serves /metrics, /livez and /readyz on every network "
            "interface, without authentication: make sure only Prometheus can reach the port"
        )
    if problems:
        raise ConfigError(f"{config.path}: " + "; ".join(problems), problems=problems)
    for warning in warnings:
        out.write(f"WARNING: {warning}\n")
    out.write(
        f"{config.path}: OK (sha256 {config.sha256[:12]}); {len(config.clients)} client(s), "
        f"{len(config.sources)} source(s), delivery {config.delivery.type} to {folders.journals} on "
        f"{config.delivery.schedule!r} ({config.timezone}), review {config.delivery.review}, store {wire(config).store_location()}"
        + (f", monitoring on {_address(config.monitoring.listen)}" if config.monitoring.listen else "")
        + "\n"
    )
    return EXIT_OK
