"""The configuration file (``gateway.toml``): read, checked whole, and turned into typed settings.

Found as ``--config FILE``, else ``$INKASSO_GATEWAY_CONFIG``, else ``./gateway.toml``. Every problem
is reported with its key and reason, all at once (an operator fixes the file in one go), and
unknown keys are errors: a misspelt key silently ignored is how a gateway ends up misconfigured.
Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import grp
import hashlib
import math
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain.identity import normalize_orgnr, parse_identity
from gateway.domain.judging import CaseErrorPolicy
from gateway.domain.rules.registry import DEFAULT_MAX_ATTACHMENT_BYTES
from gateway.errors import ConfigError
from gateway.formats.casecsv import CsvMapping, MappingError, load_mapping

CONFIG_ENV = "INKASSO_GATEWAY_CONFIG"
DEFAULT_CONFIG_NAME = "gateway.toml"
DEFAULT_STABLE_SECONDS = 2.0
DEFAULT_SCAN_SECONDS = 10.0
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_TIMEZONE = "Europe/Stockholm"
DEFAULT_SCHEDULE = "0 16 * * mon-fri"
#: Upper bounds: a number beyond them is a typo (or ``inf``), and a loop would never wake.
MAX_SCAN_SECONDS = 3600.0
MAX_STABLE_SECONDS = 86400.0
MAX_POLL_SECONDS = 86400.0
MAX_ATTACHMENT_BYTES_LIMIT = 2**31
#: The daily reconciliation report, for the day before: just after midnight.
DEFAULT_REPORT_SCHEDULE = "30 0 * * *"

SFTP_KEYS = frozenset(
    {"host", "port", "username", "key_file", "passphrase_file", "passphrase_env", "known_hosts", "remote_dir"}
)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    id: str
    orgnr: str  # 10 digits
    name: str


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    type: str  # folder | sftp
    path: Path | None
    clients: tuple[str, ...] | None  # client ids; None = all
    stable_seconds: float
    done_marker: str | None
    pattern: str
    settings: Mapping[str, Any] = field(default_factory=dict)  # sftp keys, poll_seconds, after
    #: A folder source's group and mode (e.g. "inkasso-erp", 0o2770): the ERP's transfer account
    #: writes into it through the group, nobody else may. Set by the daemon at start.
    group: str | None = None
    mode: int | None = None
    #: Where the sender gets a copy of each receipt (and of the journal receipts of its cases):
    #: a local folder for a folder source (absolute, resolved against the data folder), a path
    #: on the same server for an SFTP source. None: receipts stay in outbox/receipts/ only.
    receipt_dir: str | None = None
    #: "xml", "json" or "csv"; None: each file by its extension, else its content.
    format: str | None = None
    #: The mapping file of a CSV source (relative to the configuration's folder) and what it says.
    mapping: Path | None = None
    csv_mapping: CsvMapping | None = None


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    type: str
    path: Path | None
    schedule: str
    review: str  # auto | manual
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    #: Cron (in [gateway].timezone) for the daily report of the previous day; None: on demand only.
    schedule: str | None = DEFAULT_REPORT_SCHEDULE
    #: Where reports are written; None: <data_dir>/outbox/reports.
    path: Path | None = None


#: Hosts that mean every interface: served there when so configured, but `config check` warns.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    #: Where the daemon serves /metrics, /livez and /readyz: (host, port), exactly as configured
    #: (no wildcard is ever chosen for the operator); None: not served.
    listen: tuple[str, int] | None = None

    @property
    def listens_everywhere(self) -> bool:
        return self.listen is not None and self.listen[0] in WILDCARD_HOSTS


@dataclass(frozen=True, slots=True)
class ExpectConfig:
    """An ``[[expect]]``: at least ``min_files`` files from ``source`` (of ``client``, when given)
    between one deadline and the next, a deadline being a time of ``schedule`` (cron, in the
    gateway's zone) plus ``grace``."""

    source: str
    client: str | None
    schedule: str
    min_files: int = 1
    grace: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 25
    starttls: bool = False
    username: str | None = None
    #: A file holding the password (never the password itself in the configuration).
    password_file: Path | None = None


@dataclass(frozen=True, slots=True)
class AlarmsConfig:
    delivery_failing_minutes: float = 30.0
    approval_waiting_hours: float = 24.0
    min_free_mb: int = 1024
    source_failing_minutes: float = 15.0
    #: Where each alarm's change is POSTed as JSON; None: not told over HTTP.
    webhook: str | None = None
    smtp: SmtpConfig | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return (("webhook",) if self.webhook else ()) + (("smtp",) if self.smtp else ())


@dataclass(frozen=True, slots=True)
class RulesConfig:
    strict_sequence: bool = False
    postal_directory: Path | None = None
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES


#: A node name: what `status` shows and what its leases are held as (no ":", which separates them).
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def default_node_name() -> str:
    """The host's name, as far as it makes a node name (a host called "db:1" is "db-1")."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.")[:63]
    return name or "node"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    path: Path
    sha256: str  # of the file's bytes, stamped on every receipt
    timezone: str
    on_case_error: CaseErrorPolicy
    scan_seconds: float
    #: Where outbox/ and var/ live (and sqlite:/// paths are resolved): [gateway] data_dir,
    #: by default the config file's folder.
    data_dir: Path
    store_url: str
    clients: tuple[ClientConfig, ...]
    sources: tuple[SourceConfig, ...]
    delivery: DeliveryConfig
    rules: RulesConfig
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    #: [gateway] node: this daemon's name among the nodes on one store (default: the host name).
    node: str = field(default_factory=default_node_name)
    expectations: tuple[ExpectConfig, ...] = ()
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)

    @property
    def several_nodes(self) -> bool:
        """Whether other daemons may share this store and data folder: only a PostgreSQL store
        (SQLite allows one daemon per data folder)."""
        return self.store_url.startswith("postgresql://")

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def client_orgnrs(self) -> frozenset[str]:
        return frozenset(client.orgnr for client in self.clients)

    def source_orgnrs(self, source: SourceConfig) -> frozenset[str] | None:
        if source.clients is None:
            return None
        by_id = {client.id: client.orgnr for client in self.clients}
        return frozenset(by_id[client_id] for client_id in source.clients if client_id in by_id)

    def load_postal_directory(self) -> dict[str, str] | None:
        """Postal code -> town, from a tab- or semicolon-separated file (e.g. GeoNames' SE.txt)."""
        path = self.rules.postal_directory
        return None if path is None else _read_postal_directory(path)


def _read_postal_directory(path: Path) -> dict[str, str]:
    directory: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").replace(";", "\t").split("\t")
            # GeoNames: country, postal code, place name, ...; plain files: code, town.
            if len(parts) > 3 and len(parts[0]) == 2:
                code, town = parts[1], parts[2]
            elif len(parts) >= 2:
                code, town = parts[0], parts[1]
            else:
                raise ValueError(f"{path}, line {number}: expected postal code and town separated by a tab")
            directory[code.replace(" ", "")] = town.strip()
    return directory


#: Where an installed gateway's configuration lives (deploy/README): found without --config.
INSTALLED_CONFIG = Path("/etc/inkasso-gateway/gateway.toml")


def locate(explicit: str | None, *, cwd: Path | None = None, installed: Path = INSTALLED_CONFIG) -> Path:
    """``--config``, else $INKASSO_GATEWAY_CONFIG, else ./gateway.toml, else the installed one."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    if local.is_file() or not installed.is_file():
        return local
    return installed


class _Checker:
    """Collects every problem with its key, so the operator sees them all at once."""

    def __init__(self, *, check_schedules: bool = True) -> None:
        self.problems: list[str] = []
        self.check_schedules = check_schedules

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(f"{key}: {reason}")

    def table(self, data: Any, key: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.problem(key, "must be a table")
            return {}
        for unknown in sorted(set(data) - allowed):
            self.problem(f"{key}.{unknown}" if key else unknown, "unknown key")
        return data

    def get(
        self, data: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any
    ) -> Any:
        if key not in data:
            return default
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem(f"{where}.{key}", f"must be a {expected}, not {type(value).__name__}")
            return default
        return value

    def choice(
        self, data: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str
    ) -> str:
        value = self.get(data, key, where, str, default)
        if value not in choices:
            self.problem(f"{where}.{key}", f"must be one of {', '.join(choices)}, not {value!r}")
            return default
        return str(value)

    def positive(self, value: float, key: str) -> float:
        if value <= 0:
            self.problem(key, "must be greater than 0")
        return value

    def within(self, value: float, key: str, low: float, high: float, default: float) -> float:
        """A finite number in (low, high] (``inf`` and ``nan`` are TOML floats too); else the default."""
        if not math.isfinite(value) or not low < value <= high:
            self.problem(key, f"must be a number greater than {low:g} and at most {high:g}, not {value!r}")
            return default
        return value


_TOP = frozenset(
    {
        "gateway",
        "store",
        "clients",
        "sources",
        "delivery",
        "rules",
        "reports",
        "monitoring",
        "expect",
        "alarms",
    }
)
_GATEWAY = frozenset({"timezone", "on_case_error", "scan_seconds", "data_dir", "node"})
_STORE = frozenset({"url"})
_CLIENT = frozenset({"id", "orgnr", "name"})
_SOURCE = frozenset(
    {
        "name", "type", "path", "clients", "stable_seconds", "done_marker", "pattern", "poll_seconds", "after",
        "group", "mode", "receipt_dir", "format", "mapping",
    }
    | SFTP_KEYS
)  # fmt: skip
_DELIVERY = frozenset({"type", "path", "schedule", "review"} | SFTP_KEYS)
_RULES = frozenset({"strict_sequence", "postal_directory", "max_attachment_bytes"})
_REPORTS = frozenset({"schedule", "path"})
_MONITORING = frozenset({"listen"})
_EXPECT = frozenset({"source", "client", "schedule", "min_files", "grace"})
_ALARMS = frozenset(
    {
        "delivery_failing_minutes",
        "approval_waiting_hours",
        "min_free_mb",
        "source_failing_minutes",
        "webhook",
        "smtp",
    }
)
_SMTP = frozenset({"host", "port", "starttls", "from", "to", "username", "password_file"})
#: A duration such as "30m", "2h", "1h30m", "90s" or "1d".
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def load(path: Path, *, check_schedules: bool = True) -> GatewayConfig:
    """Read and check a config file; raise ConfigError listing every problem.

    ``check_schedules=False`` (for `validate`, which schedules nothing) leaves the cron
    expressions to `config check` and the daemon, and so never loads the scheduler."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error.strerror or error}") from error
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return parse(
        data,
        path=path.resolve(),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        check_schedules=check_schedules,
    )


def parse(data: Mapping[str, Any], *, path: Path, sha256: str, check_schedules: bool = True) -> GatewayConfig:
    check = _Checker(check_schedules=check_schedules)
    base = path.parent
    top = check.table(dict(data), "", _TOP)

    def resolve(value: str | None) -> Path | None:
        """A path of the configuration's side (keys, known_hosts, the postal directory): relative
        to the configuration file's folder."""
        return None if value is None else (base / value).resolve()

    gateway = check.table(top.get("gateway", {}), "gateway", _GATEWAY)
    data_dir = resolve(check.get(gateway, "data_dir", "gateway", str, ".")) or base

    def on_data_side(value: str | None) -> Path | None:
        """A path of the data side (sources, delivery, reports): relative to the data folder."""
        return None if value is None else (data_dir / value).resolve()

    timezone = check.get(gateway, "timezone", "gateway", str, DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        check.problem("gateway.timezone", f"unknown time zone {timezone!r}")
    policy = CaseErrorPolicy(
        check.choice(gateway, "on_case_error", "gateway", ("reject-case", "reject-file"), "reject-case")
    )
    scan_seconds = check.within(
        check.get(gateway, "scan_seconds", "gateway", float, DEFAULT_SCAN_SECONDS),
        "gateway.scan_seconds",
        0,
        MAX_SCAN_SECONDS,
        DEFAULT_SCAN_SECONDS,
    )

    node = check.get(gateway, "node", "gateway", str, default_node_name())
    if not _NODE_NAME.fullmatch(node):
        check.problem(
            "gateway.node",
            f"{node!r} is not a node name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )

    store = check.table(top.get("store", {}), "store", _STORE)
    store_url = check.get(store, "url", "store", str, "sqlite:///var/gateway.db")
    if not store_url.startswith(("sqlite:///", "postgresql://")):
        check.problem("store.url", "must start with sqlite:/// or postgresql://")
    elif (password_problem := url_password_problem(store_url)) is not None:
        check.problem("store.url", password_problem)

    clients = _clients(check, top.get("clients", []))
    client_ids = {client.id for client in clients}
    sources = _sources(check, top.get("sources", []), client_ids, on_data_side, resolve)
    delivery = _delivery(check, top.get("delivery", {}), on_data_side)

    rules_table = check.table(top.get("rules", {}), "rules", _RULES)
    postal = check.get(rules_table, "postal_directory", "rules", str, None)
    rules = RulesConfig(
        strict_sequence=check.get(rules_table, "strict_sequence", "rules", bool, False),
        postal_directory=resolve(postal),
        max_attachment_bytes=int(
            check.within(
                check.get(rules_table, "max_attachment_bytes", "rules", int, DEFAULT_MAX_ATTACHMENT_BYTES),
                "rules.max_attachment_bytes",
                0,
                MAX_ATTACHMENT_BYTES_LIMIT,
                DEFAULT_MAX_ATTACHMENT_BYTES,
            )
        ),
    )
    if rules.postal_directory is not None:
        try:
            _read_postal_directory(rules.postal_directory)
        except (OSError, ValueError) as error:
            check.problem("rules.postal_directory", str(error))

    reports_table = check.table(top.get("reports", {}), "reports", _REPORTS)
    report_schedule = check.get(reports_table, "schedule", "reports", str, DEFAULT_REPORT_SCHEDULE).strip()
    if report_schedule:
        _check_cron(check, "reports.schedule", report_schedule)
    reports = ReportsConfig(
        schedule=report_schedule or None,
        path=on_data_side(check.get(reports_table, "path", "reports", str, None)),
    )

    monitoring_table = check.table(top.get("monitoring", {}), "monitoring", _MONITORING)
    listen_text = check.get(monitoring_table, "listen", "monitoring", str, None)
    monitoring = MonitoringConfig(
        listen=None if listen_text is None else _listen_address(check, "monitoring.listen", listen_text)
    )

    expectations = _expectations(check, top.get("expect", []), {s.name for s in sources}, client_ids)
    alarms = _alarms(check, top.get("alarms", {}), resolve)

    if check.problems:
        raise ConfigError(f"{path}: " + "; ".join(check.problems), problems=check.problems)
    config = GatewayConfig(
        path=path,
        sha256=sha256,
        timezone=timezone,
        on_case_error=policy,
        scan_seconds=scan_seconds,
        data_dir=data_dir,
        store_url=store_url,
        node=node,
        clients=tuple(clients),
        sources=tuple(sources),
        delivery=delivery,
        rules=rules,
        reports=reports,
        monitoring=monitoring,
        expectations=tuple(expectations),
        alarms=alarms,
    )
    _check_overlaps(check, config)
    if check.problems:
        raise ConfigError(f"{path}: " + "; ".join(check.problems), problems=check.problems)
    return config


def url_password_problem(url: str) -> str | None:
    """What is wrong with a ``postgresql://`` URL that holds a password (None: nothing): the
    configuration is read by people and kept in var/config/; libpq finds the password itself."""
    if not url.startswith("postgresql://"):
        return None
    parts = urlsplit(url)
    if parts.password is None and "password" not in parse_qs(parts.query):
        return None
    return (
        "holds a password: remove it, and give it as libpq reads it: PGPASSWORD in the service's "
        "environment, ~/.pgpass (or the file PGPASSFILE names), or a PGSERVICE entry"
    )


def _clients(check: _Checker, raw: Any) -> list[ClientConfig]:
    if not isinstance(raw, list):
        check.problem("clients", "must be an array of tables ([[clients]])")
        return []
    clients: list[ClientConfig] = []
    seen_ids: set[str] = set()
    seen_orgnrs: set[str] = set()
    for position, entry in enumerate(raw):
        where = f"clients[{position}]"
        table = check.table(entry, where, _CLIENT)
        client_id = check.get(table, "id", where, str, "")
        orgnr_raw = check.get(table, "orgnr", where, str, "")
        name = check.get(table, "name", where, str, "")
        if not client_id or not all(c.isalnum() or c in "-_." for c in client_id):
            check.problem(
                f"{where}.id", "required; letters, digits, '-', '_' and '.' only (used in file names)"
            )
        elif client_id in seen_ids:
            check.problem(f"{where}.id", f"{client_id!r} is used by two clients")
        orgnr = normalize_orgnr(orgnr_raw)
        if len(orgnr) != 10 or not orgnr.isdigit():
            check.problem(f"{where}.orgnr", "required; an organisationsnummer of 10 digits (NNNNNN-NNNN)")
        elif orgnr in seen_orgnrs:
            check.problem(f"{where}.orgnr", f"{orgnr_raw!r} is used by two clients")
        elif parse_identity(orgnr, today=date.today()).identity is None:
            check.problem(f"{where}.orgnr", f"{orgnr_raw!r} is not a valid organisationsnummer")
        seen_ids.add(client_id)
        seen_orgnrs.add(orgnr)
        clients.append(ClientConfig(client_id, orgnr, name))
    return clients


def _sources(
    check: _Checker,
    raw: Any,
    client_ids: set[str],
    resolve: Callable[[str | None], Path | None],
    on_config_side: Callable[[str | None], Path | None],
) -> list[SourceConfig]:
    if not isinstance(raw, list):
        check.problem("sources", "must be an array of tables ([[sources]])")
        return []
    sources: list[SourceConfig] = []
    names: set[str] = set()
    for position, entry in enumerate(raw):
        where = f"sources[{position}]"
        table = check.table(entry, where, _SOURCE)
        name = check.get(table, "name", where, str, "")
        if not name:
            check.problem(f"{where}.name", "required")
        elif name in names:
            check.problem(f"{where}.name", f"{name!r} is used by two sources")
        names.add(name)
        kind = check.choice(table, "type", where, ("folder", "sftp"), "folder")
        path = check.get(table, "path", where, str, None)
        if kind == "folder" and path is None:
            check.problem(f"{where}.path", "required for a folder source")
        listed = check.get(table, "clients", where, list, None)
        if listed is not None:
            for client_id in listed:
                if client_id not in client_ids:
                    check.problem(f"{where}.clients", f"{client_id!r} is not a configured client id")
        stable = check.within(
            check.get(table, "stable_seconds", where, float, DEFAULT_STABLE_SECONDS),
            f"{where}.stable_seconds",
            0,
            MAX_STABLE_SECONDS,
            DEFAULT_STABLE_SECONDS,
        )
        if "poll_seconds" in table:
            check.within(
                check.get(table, "poll_seconds", where, float, DEFAULT_POLL_SECONDS),
                f"{where}.poll_seconds",
                0,
                MAX_POLL_SECONDS,
                DEFAULT_POLL_SECONDS,
            )
        _check_port(check, table, where)
        settings = {key: table[key] for key in table if key in SFTP_KEYS | {"poll_seconds", "after"}}
        if kind == "sftp":
            for required in ("host", "username", "key_file", "known_hosts", "remote_dir"):
                if required not in table:
                    check.problem(f"{where}.{required}", "required for an sftp source")
            if "after" in table and table["after"] not in ("move", "delete"):
                check.problem(f"{where}.after", "must be move or delete")
        group = check.get(table, "group", where, str, None)
        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                check.problem(f"{where}.group", f"no Unix group {group!r} on this machine")
        mode = _folder_mode(check, table, where)
        if (group is not None or mode is not None) and kind != "folder":
            check.problem(f"{where}.group", "group and mode are for folder sources")
        receipt_dir = check.get(table, "receipt_dir", where, str, None)
        if receipt_dir is not None and kind == "sftp":
            remote = receipt_dir.rstrip("/") or "/"
            if not receipt_dir.startswith("/"):
                check.problem(
                    f"{where}.receipt_dir",
                    f"{receipt_dir!r} must be an absolute path on the source's server (e.g. /export/inkasso/kvittenser)",
                )
            elif remote == str(table.get("remote_dir", "")).rstrip("/"):
                check.problem(
                    f"{where}.receipt_dir",
                    f"{receipt_dir} is the source's remote_dir: receipts would be taken as case files",
                )
            receipt_dir = remote
        elif receipt_dir is not None:
            receipt_dir = str(resolve(receipt_dir))
        file_format, mapping_path, csv_mapping = _source_format(check, table, where, on_config_side)
        sources.append(
            SourceConfig(
                name=name,
                type=kind,
                group=group,
                mode=mode,
                format=file_format,
                mapping=mapping_path,
                csv_mapping=csv_mapping,
                path=resolve(path),
                clients=tuple(listed) if listed is not None else None,
                stable_seconds=stable,
                done_marker=check.get(table, "done_marker", where, str, None),
                pattern=check.get(table, "pattern", where, str, "*"),
                settings=settings,
                receipt_dir=receipt_dir,
            )
        )
    return sources


def _source_format(
    check: _Checker, table: Mapping[str, Any], where: str, on_config_side: Callable[[str | None], Path | None]
) -> tuple[str | None, Path | None, CsvMapping | None]:
    """A source's ``format`` and, for CSV, its ``mapping``: read now, so that a broken mapping is a
    configuration error at start and in `config check`, never a surprise on the first file."""
    file_format = None
    if "format" in table:
        file_format = check.choice(table, "format", where, ("xml", "json", "csv"), "xml")
    mapping_path = on_config_side(check.get(table, "mapping", where, str, None))
    if file_format == "csv" and mapping_path is None:
        check.problem(f"{where}.mapping", 'required for format = "csv": the mapping file of its columns')
    if mapping_path is not None and file_format != "csv":
        check.problem(f"{where}.mapping", 'a mapping is for format = "csv"')
    csv_mapping = None
    if mapping_path is not None and file_format == "csv":
        try:
            csv_mapping = load_mapping(mapping_path)
        except MappingError as error:
            for problem in error.problems:
                check.problem(f"{where}.mapping", problem)
        except OSError as error:
            check.problem(f"{where}.mapping", f"cannot read {mapping_path}: {error.strerror or error}")
    return file_format, mapping_path, csv_mapping


def _delivery(check: _Checker, raw: Any, resolve: Callable[[str | None], Path | None]) -> DeliveryConfig:
    table = check.table(raw, "delivery", _DELIVERY)
    kind = check.choice(table, "type", "delivery", ("folder", "sftp"), "folder")
    # Without a path, folder delivery goes to <data_dir>/outbox/journals (decided by the daemon).
    path = check.get(table, "path", "delivery", str, None)
    schedule = check.get(table, "schedule", "delivery", str, DEFAULT_SCHEDULE)
    _check_cron(check, "delivery.schedule", schedule)
    review = check.choice(table, "review", "delivery", ("auto", "manual"), "auto")
    settings = {key: table[key] for key in table if key in SFTP_KEYS}
    _check_port(check, table, "delivery")
    if kind == "sftp":
        for required in ("host", "username", "key_file", "known_hosts", "remote_dir"):
            if required not in table:
                check.problem(f"delivery.{required}", "required for sftp delivery")
    return DeliveryConfig(kind, resolve(path), schedule, review, settings)


def parse_duration(text: str) -> timedelta | None:
    """ "30m", "2h", "1h30m", "90s", "1d" as a timedelta; None when it is none of these.

    >>> parse_duration("1h30m"), parse_duration("0m"), parse_duration("30"), parse_duration("")
    (datetime.timedelta(seconds=5400), datetime.timedelta(0), None, None)
    """
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _expectations(
    check: _Checker, raw: Any, source_names: set[str], client_ids: set[str]
) -> list[ExpectConfig]:
    if not isinstance(raw, list):
        check.problem("expect", "must be an array of tables ([[expect]])")
        return []
    expectations: list[ExpectConfig] = []
    for position, entry in enumerate(raw):
        where = f"expect[{position}]"
        table = check.table(entry, where, _EXPECT)
        source = check.get(table, "source", where, str, "")
        if source not in source_names:
            check.problem(f"{where}.source", f"required; the name of a configured source, not {source!r}")
        client = check.get(table, "client", where, str, None)
        if client is not None and client not in client_ids:
            check.problem(f"{where}.client", f"{client!r} is not a configured client id")
        schedule = check.get(table, "schedule", where, str, "")
        if not schedule:
            check.problem(f"{where}.schedule", 'required; a cron expression such as "0 22 * * mon-fri"')
        else:
            _check_cron(check, f"{where}.schedule", schedule)
        min_files = check.get(table, "min_files", where, int, 1)
        if not 1 <= min_files <= 1_000_000:
            check.problem(f"{where}.min_files", f"must be a whole number from 1 to 1000000, not {min_files}")
        grace_text = check.get(table, "grace", where, str, "30m")
        grace = parse_duration(grace_text)
        if grace is None or grace > timedelta(days=7):
            check.problem(
                f"{where}.grace",
                f'must be a duration such as "30m", "2h" or "1h30m" (at most 7d), not {grace_text!r}',
            )
            grace = timedelta(minutes=30)
        expectations.append(ExpectConfig(source, client, schedule, min_files, grace))
    return expectations


def _alarms(check: _Checker, raw: Any, resolve: Callable[[str | None], Path | None]) -> AlarmsConfig:
    table = check.table(raw, "alarms", _ALARMS)
    defaults = AlarmsConfig()

    def number(key: str, default: float, high: float) -> float:
        return check.within(
            check.get(table, key, "alarms", float, default), f"alarms.{key}", 0, high, default
        )

    webhook = check.get(table, "webhook", "alarms", str, None)
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            check.problem("alarms.webhook", f"must be an http:// or https:// URL, not {webhook!r}")
        elif parts.password is not None:
            check.problem(
                "alarms.webhook", "holds a password: a webhook's URL is shown and kept in var/config/"
            )
    smtp: SmtpConfig | None = None
    if "smtp" in table:
        smtp = _smtp(check, table["smtp"], resolve)
    return AlarmsConfig(
        delivery_failing_minutes=number(
            "delivery_failing_minutes", defaults.delivery_failing_minutes, 10_080
        ),
        approval_waiting_hours=number("approval_waiting_hours", defaults.approval_waiting_hours, 8_760),
        min_free_mb=int(number("min_free_mb", defaults.min_free_mb, 1 << 30)),
        source_failing_minutes=number("source_failing_minutes", defaults.source_failing_minutes, 10_080),
        webhook=webhook,
        smtp=smtp,
    )


def _smtp(check: _Checker, raw: Any, resolve: Callable[[str | None], Path | None]) -> SmtpConfig | None:
    where = "alarms.smtp"
    if isinstance(raw, dict) and "password" in raw:
        check.problem(
            f"{where}.password", "never a password in the configuration: give password_file instead"
        )
        raw = {key: value for key, value in raw.items() if key != "password"}
    table = check.table(raw, where, _SMTP)
    host = check.get(table, "host", where, str, "")
    if not host:
        check.problem(f"{where}.host", "required")
    sender = check.get(table, "from", where, str, "")
    if "@" not in sender:
        check.problem(f"{where}.from", f"required; an e-mail address, not {sender!r}")
    to = check.get(table, "to", where, list, [])
    if not to or not all(isinstance(address, str) and "@" in address for address in to):
        check.problem(f"{where}.to", "required; a list of e-mail addresses")
    _check_port(check, table, where)
    username = check.get(table, "username", where, str, None)
    password_file = resolve(check.get(table, "password_file", where, str, None))
    if password_file is not None:
        if username is None:
            check.problem(f"{where}.password_file", "needs username")
        try:
            password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            check.problem(f"{where}.password_file", f"cannot be read: {error}")
    return SmtpConfig(
        host=host,
        sender=sender,
        to=tuple(str(address) for address in to),
        port=check.get(table, "port", where, int, 25),
        starttls=check.get(table, "starttls", where, bool, False),
        username=username,
        password_file=password_file,
    )


def _folder_mode(check: _Checker, table: Mapping[str, Any], where: str) -> int | None:
    """A folder's mode as octal text ("2770"), the way chmod takes it."""
    if "mode" not in table:
        return None
    text = check.get(table, "mode", where, str, "")
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        check.problem(f"{where}.mode", f'must be an octal mode such as "2770", not {text!r}')
        return None
    if mode & 0o007:
        check.problem(f"{where}.mode", f"{text}: others may not have any access to an inbox of personal data")
        return None
    return mode


def _listen_address(check: _Checker, key: str, text: str) -> tuple[str, int] | None:
    """``host:port`` (an IPv6 address in brackets: ``[::1]:9464``) as (host, port).

    >>> _listen_address(_Checker(), "k", "127.0.0.1:9464"), _listen_address(_Checker(), "k", "[::1]:9464")
    (('127.0.0.1', 9464), ('::1', 9464))
    """
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = ":" in host and all(c in "0123456789abcdefABCDEF:." for c in host)
    else:
        valid_host = bool(host) and ":" not in host and all(c.isalnum() or c in "-." for c in host)
    if not colon or not valid_host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        check.problem(
            key, f'must be "host:port" (e.g. "127.0.0.1:9464", "[::1]:9464", port 1-65535), not {text!r}'
        )
        return None
    return host, int(port_text)


def _check_port(check: _Checker, table: Mapping[str, Any], where: str) -> None:
    if "port" in table:
        port = check.get(table, "port", where, int, 22)
        if not 1 <= port <= 65535:
            check.problem(f"{where}.port", f"must be a TCP port (1-65535), not {port}")


def _check_overlaps(check: _Checker, config: GatewayConfig) -> None:
    """No two of the folders the gateway reads and writes may be the same or inside each other.

    A source folder that is the delivery folder would take the gateway's own journals as case
    files; ``path = "."`` would take the configuration and var/ itself. So every overlap is an
    error naming both keys."""
    data_dir = config.data_dir
    folders: list[tuple[str, Path]] = [
        ("gateway.data_dir (its var/)", data_dir / "var"),
        ("gateway.data_dir (its outbox/receipts/)", data_dir / "outbox" / "receipts"),
        ("reports.path", config.reports.path or data_dir / "outbox" / "reports"),
    ]
    if config.delivery.type == "folder":
        folders.append(("delivery.path", config.delivery.path or data_dir / "outbox" / "journals"))
    for position, source in enumerate(config.sources):
        if source.type == "folder" and source.path is not None:
            key = f"sources[{position}].path"
            folders.append((key, source.path))
            if source.receipt_dir is not None:
                # A receipt folder inside an inbox (or the inbox itself) would feed receipts back in.
                folders.append((f"sources[{position}].receipt_dir", Path(source.receipt_dir)))
            if source.path == config.path.parent or source.path in config.path.parents:
                check.problem(
                    key,
                    f"{source.path} holds the configuration file {config.path}: it would be taken as a case file",
                )
    resolved = [(key, path.resolve()) for key, path in folders]
    for index, (key, path) in enumerate(resolved):
        for other_key, other in resolved[index + 1 :]:
            if path == other:
                check.problem(key, f"{path} is also {other_key}: each folder may have one use only")
            elif other in path.parents or path in other.parents:
                inner, outer = (key, other_key) if other in path.parents else (other_key, key)
                check.problem(key, f"{inner} lies inside {outer} ({path} / {other}): folders may not nest")


def _check_cron(check: _Checker, key: str, schedule: str) -> None:
    if len(schedule.split()) != 5:
        check.problem(key, f"must be a cron expression of five fields, not {schedule!r}")
        return
    if not check.check_schedules:
        return
    # Imported here: `validate` reads a configuration too, and never schedules anything.
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(schedule)
    except ValueError as error:
        check.problem(key, f"not a valid cron expression ({error}): {schedule!r}")
