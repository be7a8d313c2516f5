"""A harness for tests that run the real daemon (`inkasso-gateway run`) as a process.

:class:`Gateway` writes a ``gateway.toml`` into a temporary folder (inbox/, outbox/, var/ beside it),
starts the daemon and the command line as child processes, and reads back what they wrote as a user
sees it: receipts and journals, the files in var/, and the command line's own answers (`status`,
`journal list`, `trace`, `audit verify`, `report`), never the store's tables. Every wait polls a
condition with a timeout; nothing relies on a fixed sleep being long enough. Case files come from :func:`case_file`, a small generator of valid
files (and of files with known findings) using only test identities: the examples' personnummer
and numbers built with birth numbers 980-999 and their Luhn check digit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.domain.chain import GENESIS_SHA256
from gateway.domain.identity import luhn_check_digit
from gateway.formats.hardened import parser as hardened_parser
from gateway.formats.schemas import load_schema
from tests.faults import FAULT_ENV

FAULTY_GATEWAY = Path(__file__).resolve().parent / "faulty_gateway.py"

KVITTENS_NS = "urn:inkasso-gateway:kvittens:1"
JOURNAL_NS = "urn:inkasso-gateway:arendejournal:1"
JOURNAL_RECEIPT_NS = "urn:inkasso-gateway:journalkvittens:1"
K = "{" + KVITTENS_NS + "}"
J = "{" + JOURNAL_NS + "}"
JK = "{" + JOURNAL_RECEIPT_NS + "}"

#: A schedule that never fires during a test (03:00 on the first of January).
NEVER = "0 3 1 1 *"
MAIN_CLIENT = ("lst-exempel", "202100-0001", "Länsstyrelsen i Exempellän")
#: Personnummer from examples/ (test identities); the first is the one the privacy checks look for.
EXAMPLE_PERSONNUMMER = ("850315-9819", "880921-9853", "821109-9869")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("inkasso-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def agency_orgnr(n: int) -> str:
    """A made-up state agency's organisationsnummer (group 2, 2021xx-series), Luhn-valid."""
    nine = f"2021{n:05d}"
    return f"{nine[:6]}-{nine[6:]}{luhn_check_digit(nine)}"


def make_personnummer(i: int) -> str:
    """A valid personnummer with a birth number in 980-999 (test range), born 1955-1990."""
    born = date(1955, 1, 1) + timedelta(days=(i * 7919) % 12_700)
    nine = born.strftime("%y%m%d") + str(980 + i % 20)
    return f"{nine[:6]}-{nine[6:]}{luhn_check_digit(nine)}"


def with_wrong_check_digit(identity: str) -> str:
    return identity[:-1] + str((int(identity[-1]) + 1) % 10)


# -- case files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSpec:
    reference: str
    identity: str
    invoice: str
    amount: Decimal
    fordranstyp: str | None = None  # filled in: rule A01 rejects the case

    @property
    def valid(self) -> bool:
        return self.fordranstyp is None and _identity_ok(self.identity)


def _identity_ok(identity: str) -> bool:
    digits = identity.replace("-", "")[-10:]
    return luhn_check_digit(digits[:9]) == digits[9]


def cases(
    prefix: str,
    count: int,
    *,
    start: int = 0,
    bad_identity: Iterable[int] = (),
    fordranstyp: Iterable[int] = (),
    identities: Sequence[str] | None = None,
) -> list[CaseSpec]:
    """``count`` cases ``<prefix>-<n>``; the given positions get an M02 or an A01 error."""
    bad, typed = set(bad_identity), set(fordranstyp)
    result = []
    for n in range(start, start + count):
        identity = identities[n % len(identities)] if identities else make_personnummer(n)
        if n - start in bad:
            identity = with_wrong_check_digit(identity)
        result.append(
            CaseSpec(
                reference=f"{prefix}-{n:06d}",
                identity=identity,
                invoice=f"F{prefix}-{n:06d}",
                amount=Decimal(100 + (n * 37) % 9000) + Decimal(n % 100) / 100,
                fordranstyp="Offentligrättslig avgift" if n - start in typed else None,
            )
        )
    return result


_CASE = """  <Arende>
    <ArendeReferens>{reference}</ArendeReferens>{fordranstyp}
    <Motpart>
      <Typ>Privat</Typ>
      <Identitet>{identity}</Identitet>
      <Person>
        <Fornamn>Test Person</Fornamn>
        <Tilltalsnamn>Test</Tilltalsnamn>
        <Efternamn>Testsson</Efternamn>
      </Person>
      <Adress>
        <Utdelningsadress>Provgatan {street}</Utdelningsadress>
        <Postnummer>11122</Postnummer>
        <Postort>Stockholm</Postort>
      </Adress>
    </Motpart>
    <Fordran>
      <Fakturanummer>{invoice}</Fakturanummer>
      <FordranAvser>Avgift för extra offentlig kontroll enligt beslut 2026-08-12</FordranAvser>
      <Fakturadatum>2026-08-12</Fakturadatum>
      <Forfallodatum>2026-09-11</Forfallodatum>
      <Kapitalbelopp valuta="SEK">{amount}</Kapitalbelopp>
    </Fordran>
  </Arende>
"""


def case_file(
    file_id: str,
    specs: Sequence[CaseSpec],
    *,
    orgnr: str = MAIN_CLIENT[1],
    wrong_totals: bool = False,
) -> bytes:
    """A case file (Arendefil 1.0) with the right Filsummering, or a wrong one (rule F06)."""
    return "".join(case_file_parts(file_id, specs, orgnr=orgnr, wrong_totals=wrong_totals)).encode("utf-8")


def write_case_file(path: Path, file_id: str, specs: Iterable[CaseSpec]) -> None:
    """A case file of any size, written as it is generated."""
    with path.open("w", encoding="utf-8") as out:
        for part in case_file_parts(file_id, specs):
            out.write(part)


def case_file_parts(
    file_id: str,
    specs: Iterable[CaseSpec],
    *,
    orgnr: str = MAIN_CLIENT[1],
    wrong_totals: bool = False,
) -> Iterator[str]:
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Arendefil xmlns="urn:inkasso-gateway:arendefil:1" version="1.0">\n'
        f"  <Filhuvud>\n    <FilId>{file_id}</FilId>\n    <Skapad>2026-11-24T22:15:00+01:00</Skapad>\n"
        "    <Avsandarsystem>pytest</Avsandarsystem>\n  </Filhuvud>\n"
        f"  <Uppdragsgivare>\n    <Organisationsnummer>{orgnr}</Organisationsnummer>\n"
        "    <Namn>Testmyndigheten</Namn>\n  </Uppdragsgivare>\n"
    )
    total = Decimal(0)
    count = 0
    for i, spec in enumerate(specs):
        typed = f"\n    <Fordranstyp>{spec.fordranstyp}</Fordranstyp>" if spec.fordranstyp else ""
        yield _CASE.format(
            reference=spec.reference,
            fordranstyp=typed,
            identity=spec.identity,
            street=i % 90 + 1,
            invoice=spec.invoice,
            amount=f"{spec.amount:.2f}",
        )
        total += spec.amount
        count += 1
    count += 1 if wrong_totals else 0
    yield (
        f"  <Filsummering>\n    <AntalArenden>{count}</AntalArenden>\n"
        f"    <AntalFordringar>{count}</AntalFordringar>\n"
        f"    <SummaKapitalbelopp>{total:.2f}</SummaKapitalbelopp>\n  </Filsummering>\n</Arendefil>\n"
    )


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Put a finished file into an inbox the way a careful producer does: temp name, then rename."""
    temporary = folder / f"{name}.part"
    temporary.write_bytes(data)
    target = folder / name
    temporary.rename(target)
    return target


# -- what the gateway wrote -----------------------------------------------------------------------


@dataclass
class CaseResult:
    reference: str
    status: str
    journal_id: str | None
    codes: list[str]


@dataclass
class Receipt:
    path: Path
    data: bytes
    sha256: str
    name: str
    file_sha256: str
    status: str
    previous: str
    earlier: str | None
    file_codes: list[str]
    cases: list[CaseResult]
    accepted: int
    accepted_capital: Decimal

    @property
    def accepted_references(self) -> list[str]:
        return [case.reference for case in self.cases if case.status == "Godkand"]


def parse_receipt(path: Path) -> Receipt:
    """Parse and schema-validate one receipt (AssertionError naming the file when it is invalid)."""
    data = path.read_bytes()
    root = etree.fromstring(data, hardened_parser())
    schema = load_schema("kvittens-1.xsd")
    assert schema.validate(root), f"{path.name} does not validate: {schema.error_log}"
    assert root.tag == K + "Kvittens"
    case_results = [
        CaseResult(
            reference=element.findtext(K + "ArendeReferens") or "",
            status=element.findtext(K + "Status") or "",
            journal_id=element.findtext(K + "JournalId"),
            codes=[code.text or "" for code in element.iterfind(f"{K}Anmarkning/{K}Regel")],
        )
        for element in root.iterfind(K + "Arende")
    ]
    return Receipt(
        path=path,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        name=root.findtext(f"{K}Fil/{K}Namn") or "",
        file_sha256=root.findtext(f"{K}Fil/{K}Sha256") or "",
        status=root.findtext(K + "Status") or "",
        previous=root.findtext(K + "ForegaendeKvittensSha256") or "",
        earlier=root.findtext(K + "TidigareKvittens"),
        file_codes=[code.text or "" for code in root.iterfind(f"{K}Anmarkning/{K}Regel")],
        cases=case_results,
        accepted=int(root.findtext(f"{K}Summering/{K}AntalGodkanda") or "-1"),
        accepted_capital=Decimal(root.findtext(f"{K}Summering/{K}SummaGodkantKapitalbelopp") or "-1"),
    )


@dataclass
class Journal:
    path: Path
    journal_id: str
    sequence: int
    approved_by: str | None
    references: list[str]
    case_count: int
    capital: Decimal


def parse_journal(path: Path) -> Journal:
    data = path.read_bytes()
    root = etree.fromstring(data, hardened_parser())
    schema = load_schema("arendejournal-1.xsd")
    assert schema.validate(root), f"{path.name} does not validate: {schema.error_log}"
    head = root.find(J + "Journalhuvud")
    assert head is not None
    return Journal(
        path=path,
        journal_id=head.findtext(J + "JournalId") or "",
        sequence=int(head.findtext(J + "Lopnummer") or "0"),
        approved_by=head.findtext(f"{J}Godkand/{J}Av"),
        references=[e.text or "" for e in root.iterfind(f"{J}Arende/{J}ArendeReferens")],
        case_count=int(root.findtext(f"{J}Journalsummering/{J}AntalArenden") or "-1"),
        capital=Decimal(root.findtext(f"{J}Journalsummering/{J}SummaKapitalbelopp") or "-1"),
    )


def parse_journal_receipt(path: Path) -> dict[str, Any]:
    root = etree.fromstring(path.read_bytes(), hardened_parser())
    schema = load_schema("journalkvittens-1.xsd")
    assert schema.validate(root), f"{path.name} does not validate: {schema.error_log}"
    return {
        "journal_id": root.findtext(JK + "JournalId"),
        "sequence": int(root.findtext(JK + "Lopnummer") or "0"),
        "file_name": root.findtext(f"{JK}Fil/{JK}Namn"),
        "sha256": root.findtext(f"{JK}Fil/{JK}Sha256"),
        "references": [e.text or "" for e in root.iterfind(f"{JK}Arenden/{JK}ArendeReferens")],
    }


def check_receipt_chain(receipts: Sequence[Receipt], head: str | None = None) -> None:
    """One unbroken chain from the genesis hash through every receipt, without a fork."""
    by_sha = {receipt.sha256: receipt for receipt in receipts}
    assert len(by_sha) == len(receipts), "two receipts have the same bytes"
    successors: dict[str, list[Receipt]] = {}
    for receipt in receipts:
        assert receipt.previous == GENESIS_SHA256 or receipt.previous in by_sha, (
            f"{receipt.path.name} names a previous receipt {receipt.previous[:12]} that does not exist"
        )
        successors.setdefault(receipt.previous, []).append(receipt)
    forks = {prev[:12]: [r.path.name for r in rs] for prev, rs in successors.items() if len(rs) > 1}
    assert not forks, f"the receipt chain forks: {forks}"
    walked, current = 0, GENESIS_SHA256
    while current in successors:
        current = successors[current][0].sha256
        walked += 1
    assert walked == len(receipts), f"the chain from genesis reaches {walked} of {len(receipts)} receipts"
    if head is not None:
        assert current == head, "the store's chain head is not the last receipt"


# -- processes ------------------------------------------------------------------------------------


class DaemonProcess:
    """One `inkasso-gateway run` process; its stderr goes to ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, *, ready: str | None = None) -> None:
        self.proc = proc
        self.log = log
        self._ready = ready  # the log text that says its signal handlers are in place

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait: the exit code (AssertionError when it does not exit in time)."""
        self.send_sigterm(timeout)
        return self.wait(timeout)

    def started(self) -> bool:
        """Whether it has started (its handlers are in place, it holds the data folder's lock),
        or has already ended."""
        return not self._ready or not self.alive() or self._ready in self.stderr()

    def send_sigterm(self, timeout: float = 10.0) -> None:
        """SIGTERM, once the daemon has started.

        A daemon is first given the time to start: before it has installed its handlers, SIGTERM
        is Python's default (death by the signal), which says nothing about the gateway. (Its
        start is the one thing read from its log: nothing else tells it, even on a full disk.)
        """
        deadline = time.monotonic() + timeout
        while self._ready and self.alive() and self._ready not in self.stderr():
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not start within {timeout} s\n{tail(self.stderr())}")
            time.sleep(0.02)
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 10.0) -> int:
        """The exit code, once it exits (AssertionError, and SIGKILL, when it does not in time)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the daemon did not exit within {timeout} s\n{tail(self.stderr())}"
            ) from None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Gateway:
    """A gateway installation in ``root``: its config, folders, processes and outputs."""

    root: Path
    review: str = "auto"
    stable_seconds: float = 0.3
    scan_seconds: float = 0.5
    clients: Sequence[tuple[str, str, str]] = (MAIN_CLIENT,)
    #: Put before every command (e.g. tests.system.WITHOUT_ROOT_POWERS).
    command_prefix: Sequence[str] = ()
    #: More TOML, appended to the generated gateway.toml.
    extra_config: str = ""
    #: Where the processes' logs go (default root/logs); elsewhere when root is a disk to fill.
    logs_dir: Path | None = None
    processes: list[DaemonProcess] = field(default_factory=list)
    _runs: int = 0

    def __post_init__(self) -> None:
        self.config = self.root / "gateway.toml"
        self.inbox = self.root / "inbox"
        self.outbox = self.root / "outbox"
        self.receipts = self.outbox / "receipts"
        self.journal_receipts = self.receipts / "journals"
        self.journals = self.outbox / "journals"
        self.var = self.root / "var"
        self.archive = self.var / "archive"
        self.rejected = self.var / "rejected"
        self.quarantine = self.var / "quarantine"
        self.sent = self.var / "sent"
        self.db = self.var / "gateway.db"
        self.logs = self.logs_dir or self.root / "logs"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.write_config()

    def write_config(self) -> None:
        clients = "".join(
            f'[[clients]]\nid = "{cid}"\norgnr = "{orgnr}"\nname = "{name}"\n\n'
            for cid, orgnr, name in self.clients
        )
        self.config.write_text(
            "[gateway]\n"
            'timezone = "Europe/Stockholm"\n'
            'on_case_error = "reject-case"\n'
            f"scan_seconds = {self.scan_seconds}\n\n"
            '[store]\nurl = "sqlite:///var/gateway.db"\n\n'
            f"{clients}"
            "[[sources]]\n"
            'name = "erp"\ntype = "folder"\npath = "inbox"\n'
            f"stable_seconds = {self.stable_seconds}\n\n"
            "[delivery]\n"
            'type = "folder"\npath = "outbox/journals"\n'
            f'schedule = "{NEVER}"\nreview = "{self.review}"\n' + self.extra_config,
            encoding="utf-8",
        )

    # -- processes --------------------------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INKASSO_GATEWAY_")}
        env.update(extra or {})
        return env

    def start(
        self, *, env: dict[str, str] | None = None, once: bool = False, args: Sequence[str] = ()
    ) -> DaemonProcess:
        """The daemon (``args``: more of its options, e.g. --log-format json); with
        GATEWAY_TEST_FAULT in ``env``, the one with a fault planted."""
        self._runs += 1
        log = self.logs / f"daemon-{self._runs:02d}.log"
        command = _command() if FAULT_ENV not in (env or {}) else [sys.executable, str(FAULTY_GATEWAY)]
        argv = [*self.command_prefix, *command, "run", "--config", str(self.config)]
        if once:
            argv.append("--once")
        argv += args
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                argv, cwd=self.root, env=self.env(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        daemon = DaemonProcess(proc, log, ready=" started: ")
        self.processes.append(daemon)
        return daemon

    def start_command(self, *args: str) -> DaemonProcess:
        """A command-line process (e.g. `journal send`) started in the background, to be killed."""
        self._runs += 1
        log = self.logs / f"command-{self._runs:02d}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [*self.command_prefix, *_command(), *args, "--config", str(self.config)], cwd=self.root, env=self.env(),
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT,
            )  # fmt: skip
        daemon = DaemonProcess(proc, log)
        self.processes.append(daemon)
        return daemon

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run one command (`journal seal`, `status`, ...) to its end, with this config."""
        result = subprocess.run(
            [*self.command_prefix, *_command(), *args, "--config", str(self.config)],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"`inkasso-gateway {' '.join(args)}` exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def stop_all(self) -> None:
        for process in self.processes:
            if process.alive():
                process.kill()

    def all_stderr(self) -> str:
        return "".join(
            log.read_text(encoding="utf-8", errors="replace") for log in sorted(self.logs.iterdir())
        )

    # -- outputs ----------------------------------------------------------------------------

    def receipt_paths(self) -> list[Path]:
        """File receipts (not journal receipts, not temporaries)."""
        if not self.receipts.exists():
            return []
        return sorted(
            path
            for day in self.receipts.iterdir()
            if day.is_dir() and day.name != "journals"
            for path in day.iterdir()
            if path.name.endswith(".kvittens.xml") and not path.name.startswith(".")
        )

    def receipts_by_name(self) -> dict[str, Receipt]:
        """Parsed receipts by original file name (AssertionError when a file has two)."""
        result: dict[str, Receipt] = {}
        for path in self.receipt_paths():
            receipt = parse_receipt(path)
            assert receipt.name not in result, f"{receipt.name} has two receipts"
            result[receipt.name] = receipt
        return result

    def receipt_for(self, name: str) -> Receipt | None:
        for path in self.receipt_paths():
            if path.name.startswith(name + "."):
                receipt = parse_receipt(path)
                if receipt.name == name:
                    return receipt
        return None

    def inbox_names(self) -> list[str]:
        return sorted(path.name for path in self.inbox.iterdir())

    def placed(self, folder: Path) -> list[Path]:
        """Originals in archive/ or rejected/ (by day) or quarantine/ (reason files left out)."""
        if not folder.exists():
            return []
        return sorted(
            path
            for path in folder.rglob("*")
            if path.is_file() and not path.name.endswith(".reason.txt") and not path.name.startswith(".")
        )

    def hidden_files(self, *folders: Path) -> list[Path]:
        return sorted(
            path for folder in folders if folder.exists() for path in folder.rglob(".*") if path.is_file()
        )

    def in_hand_since(self, moment_ns: int) -> bool:
        """Whether the gateway took a file in hand since ``moment_ns`` (time.time_ns()): from its
        claim until it is archived, its own copy of the file sits in var/staging/ under the file's
        number, written when it was taken."""
        staging = self.var / "staging"
        try:
            entries = list(os.scandir(staging))
        except FileNotFoundError:
            return False
        taken = []
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(FileNotFoundError):  # archived meanwhile
                    taken.append(entry.stat().st_mtime_ns)
        return any(mtime >= moment_ns for mtime in taken)

    # -- what the command line tells ----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`status --format json` (its exit code, 0, 1 or 3, is in the answer as ``exit_code``),
        asked once every daemon started here has started (before, it has no lock nor store yet)."""
        wait_for(lambda: all(p.started() for p in self.processes), timeout=30, what="the daemon started")
        result = self.cli("status", "--format", "json", check=False)
        assert result.returncode in (0, 1, 3), f"`status` exited {result.returncode}: {result.stderr}"
        answer: dict[str, Any] = json.loads(result.stdout)
        assert answer["exit_code"] == result.returncode
        return answer

    def journals_listed(self) -> list[dict[str, Any]]:
        """`journal list --format json`: every journal with its state, cases and delivered file."""
        listed: list[dict[str, Any]] = json.loads(self.cli("journal", "list", "--format", "json").stdout)
        return listed

    def delivered_journals(self) -> int:
        return sum(1 for journal in self.journals_listed() if journal["state"] == "delivered")

    def cases_in_journals(self) -> int:
        """The accepted cases not withdrawn, in all journals (open, sealed or delivered)."""
        return sum(int(journal["cases"]) for journal in self.journals_listed())

    def trace(self, key: str) -> str:
        """`trace KEY`: the history of a file, a case or a journal ("" when nothing is known by it)."""
        result = self.cli("trace", key, check=False)
        assert result.returncode in (0, 1), f"`trace {key}` exited {result.returncode}: {result.stderr}"
        return result.stdout if result.returncode == 0 else ""

    def traced_files(self, name: str) -> list[str]:
        """The files `trace NAME` knows by that name, as it titles them: one each time it was taken."""
        return [line for line in self.trace(name).splitlines() if line.startswith("File ")]

    def audit(self) -> subprocess.CompletedProcess[str]:
        """`audit verify`: every receipt, original and sent journal against the store (exit 0: OK)."""
        return self.cli("audit", "verify", check=False)

    def receipt_chain_head(self) -> str:
        """The receipt chain's head, as every report states it (`report --no-write --format json`)."""
        result = self.cli("report", "--no-write", "--format", "json", check=False)
        head: str = json.loads(result.stdout)["receipt_chain_head"]
        return head

    def journal_files(self) -> list[Path]:
        """Delivered journals (temporary dot-files left out: see :meth:`hidden_files`)."""
        if not self.journals.exists():
            return []
        return sorted(p for p in self.journals.iterdir() if p.is_file() and not p.name.startswith("."))


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    daemon: DaemonProcess | None = None,
    interval: float = 0.05,
) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` (and the daemon's log) on timeout.

    When ``daemon`` is given and it exits meanwhile, fail at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if daemon is not None and not daemon.alive():
            raise AssertionError(
                f"the daemon exited ({daemon.proc.returncode}) while waiting for {what}\n{tail(daemon.stderr())}"
            )
        if time.monotonic() > deadline:
            log = f"\n{tail(daemon.stderr())}" if daemon is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{log}")
        time.sleep(interval)


def full_identities_in(text: str, identities: Iterable[str]) -> list[str]:
    """Which of ``identities`` occur in full in ``text`` (with or without separator or century)."""
    found = []
    for identity in identities:
        digits = identity.replace("-", "").replace("+", "")[-10:]
        forms = {digits, f"{digits[:6]}-{digits[6:]}", f"{digits[:6]}+{digits[6:]}"}
        if any(form in text for form in forms):
            found.append(identity)
    return found
