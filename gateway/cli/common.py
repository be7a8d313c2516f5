"""What every command shares: exit codes (defined once, here), the argument parser's behaviour,
the configuration each command reads, and the guards of the data folder."""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from datetime import date, datetime
from typing import NoReturn

from gateway import config as config_module
from gateway.config import GatewayConfig
from gateway.errors import ConfigError

#: Success (for `validate`: every case accepted, warnings allowed).
EXIT_OK = 0
#: Something was rejected, failed or is not accounted for (for `status`: a person is needed).
EXIT_FAILED = 1
EXIT_REJECTED = EXIT_FAILED
#: Usage, configuration or I/O error (a store that cannot be opened; a refused start).
EXIT_USAGE = 2
#: `status` only, as LSB's `status` action: no daemon runs on this data folder.
EXIT_NOT_RUNNING = 3

#: The days a report or an audit may cover: what a timestamp in the store can hold.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9999, 12, 30)


class Parser(argparse.ArgumentParser):
    """Usage errors exit 2, as the contract says (argparse's own default is also 2; said here once)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def sha256_argument(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"not a SHA-256 (64 hex digits): {text!r}")
    return text.lower()


def load_config(args: argparse.Namespace) -> GatewayConfig:
    """The configuration: --config, else $INKASSO_GATEWAY_CONFIG, ./gateway.toml, the installed one."""
    return config_module.load(config_module.locate(args.config))


def refuse_a_stranger(config: GatewayConfig) -> None:
    """Only the data folder's owner writes into it: a file written by anyone else (root
    included) would be one the daemon cannot read or replace later. Looking is for anyone who may
    read it."""
    owned = next((p for p in (config.data_dir / "var", config.data_dir) if p.exists()), None)
    if owned is None:
        return  # a first start: the folder is created by whoever runs it
    owner = owned.stat().st_uid
    if owner != os.geteuid():
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise ConfigError(
            f"{config.data_dir} belongs to the user {name}: run this command as {name} "
            f"(sudo -u {name} inkasso-gateway ...); nothing was changed"
        )


def check_period(period_from: date | None, period_to: date | None) -> None:
    for flag, day in (("--from", period_from), ("--to", period_to)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ConfigError(f"{flag} {day}: a day between {FIRST_DAY} and {LAST_DAY}")
    if period_from and period_to and period_from > period_to:
        raise ConfigError(f"--from {period_from} is after --to {period_to}")


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
