"""`run`: the daemon, wired by the composition root, watched by the monitor."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from gateway import monitoring
from gateway.bootstrap import wire
from gateway.cli.common import Parser
from gateway.config import GatewayConfig
from gateway.logs import setup_logging
from gateway.service.runner import Daemon


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    run = commands.add_parser("run", parents=[configured], help="the daemon")
    run.add_argument("--once", action="store_true", help="process what is there, deliver what is due, exit")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")
    run.set_defaults(handler=_run, writes=True)


def _run(config: GatewayConfig, args: argparse.Namespace, out: TextIO) -> int:
    setup_logging(json_lines=args.log_format == "json", level=args.log_level)
    # A run with --once is over before anyone could scrape it or systemd could watch it.
    # The heartbeat is looked up here, on the package, so that a test entry point can put in one
    # whose loop hangs (tests/faulty_gateway.py); the gateway has no such hook of its own.
    watch = (
        None
        if args.once
        else monitoring.Monitor(config, heartbeat=monitoring.Heartbeat(scan_seconds=config.scan_seconds))
    )
    return Daemon(config, wire(config), once=args.once, watch=watch).run()
