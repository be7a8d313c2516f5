"""Benchmark `inkasso-gateway validate` on a large generated case file (a benchmark, not a test).

Run it from the repository root (``make bench`` does)::

    .venv/bin/python bench/validate.py                  # 100,000 cases, 3 rounds
    .venv/bin/python bench/validate.py --cases 20000 --repeat 5
    .venv/bin/python bench/validate.py --profile        # also cProfile validate_file in-process
    .venv/bin/python bench/validate.py --repeat 0 --profile   # only the profile

It writes a valid case file of N cases into the work folder (default ``bench/out/``, gitignored),
checks once that the gateway accepts it (exit code 0, no findings), then times in alternating
rounds, each command in a child process of its own:

* ``inkasso-gateway validate FILE --as-of 2026-11-25 --format json > /dev/null``;
* the baseline: bare lxml, whole tree, ``XMLSchema.validate(etree.parse(...))``;
* a reference floor: bare lxml ``iterparse`` validating each global child on its own, which is
  what the gateway's reader does before it builds the model and runs the rules;
* ``xmllint --stream --schema``, when xmllint is on PATH (Debian: libxml2-utils).

Wall time includes interpreter start-up and imports for every Python child. Peak RSS is each
child's own ``ru_maxrss``, taken by a small process that starts it (GNU time when installed, else a
bare Python fork/exec wrapper; see :class:`ChildMeter` for why not straight from this script).
The targets are printed for information; the exit code is 0 whether they pass or not, and 1 only
when something did not run as it should (a crash, or a generated file the gateway rejects).

``--profile`` then times the layers in-process without a profiler (stream floor, reader, rules,
JSON output; each case rule alone), and runs ``validate_file`` under cProfile (top functions by
cumulative and by own time). cProfile inflates Python-heavy code, so read its figures as shares.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
XSD = REPO / "xsd" / "arendefil-1.xsd"
AS_OF = date(2026, 11, 25)
DEFAULT_CASES = 100_000
#: Targets from the brief: informational, they never change the exit code.
TARGET_RATIO = 3.0
TARGET_RSS_MB = 100.0
TARGET_RSS_AT_CASES = 100_000

NAMESPACE = "urn:inkasso-gateway:arendefil:1"
CASES_PER_WRITE = 500

# --------------------------------------------------------------------------------------------
# Generating the case file
# --------------------------------------------------------------------------------------------

GIVEN_NAMES = (
    "Anna", "Maria", "Erik", "Lars", "Karin", "Johan", "Eva", "Per", "Kerstin", "Anders",
    "Ingrid", "Nils", "Åsa", "Björn", "Lena", "Mikael", "Sofia", "Göran", "Emma", "Olof",
    "Märta", "Jörgen", "Elin", "Håkan", "Linnéa", "Stefan", "Birgitta", "Oskar", "Ulla", "Ali",
)  # fmt: skip
SURNAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson",
    "Jönsson", "Lindberg", "Lindström", "Åberg", "Öberg", "Berglund", "Sjöberg", "Hedström",
    "Exempelsson", "Lundqvist", "Mohammed", "Nyström", "Holmgren", "Ekström", "Dahlén",
)  # fmt: skip
STREETS = (
    "Storgatan", "Kyrkogatan", "Skolgatan", "Drottninggatan", "Industrivägen", "Ringvägen",
    "Björkvägen", "Parkvägen", "Strandvägen", "Södra Långgatan", "Östra Hamngatan", "Järnvägsgatan",
    "Verkstadsgatan", "Ängsvägen", "Tallstigen", "Prästgårdsvägen",
)  # fmt: skip
#: Real-looking (postal-code prefix, town) pairs; the last three digits are drawn at random.
TOWNS = (
    ("111", "Stockholm"), ("413", "Göteborg"), ("211", "Malmö"), ("753", "Uppsala"),
    ("903", "Umeå"), ("582", "Linköping"), ("702", "Örebro"), ("721", "Västerås"),
    ("352", "Växjö"), ("972", "Luleå"), ("851", "Sundsvall"), ("553", "Jönköping"),
    ("252", "Helsingborg"), ("602", "Norrköping"), ("791", "Falun"), ("831", "Östersund"),
)  # fmt: skip
FIRMS = ("Nisses Plåt och Svets", "Åsas Hår och Skönhet", "Bergs Måleri", "Lindas Hundtrim")
BASES = (
    "Extra offentlig kontroll, beslut {d}",
    "Tillsynsavgift miljöfarlig verksamhet {y}, beslut {d}",
    "Avgift för prövning av ansökan om dispens, beslut {d}",
    "Återkrav av felaktigt utbetalt stöd enligt beslut {d}",
    "Årlig avgift för tillsyn enligt livsmedelslagen {y}",
    "Sanktionsavgift djurskydd, beslut {d}",
    "Handläggningsavgift, beslut {d}",
    "Återbetalning av för mycket utbetalt bidrag, beslut {d}",
)  # fmt: skip
REFERENCE_FORMATS = (
    "LST-{y}-{n:06d}",
    "{y}/{n:06d}",
    "KK {y}-{n:07d}",
    "Dnr 501-{n}-{y}",
    "ÄR{y}{n:08d}",
)
SYSTEMS = ("Raindance", "Agresso", "Unit4 ERP", "Visma Control")

_EPOCH_BIRTH = date(1940, 1, 1).toordinal()
_BIRTH_SPAN = date(2000, 12, 31).toordinal() - _EPOCH_BIRTH
#: Invoices fall within the last three years before AS_OF and are overdue by then (R05, R10, R11).
_FIRST_INVOICE = date(2024, 1, 2).toordinal()
_INVOICE_SPAN = date(2026, 9, 30).toordinal() - _FIRST_INVOICE


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(slots=True)
class Totals:
    cases: int = 0
    claims: int = 0
    capital_ore: int = 0  # integer öre: the sum stays exact


def personnummer(rng: random.Random, luhn_check_digit: Callable[[str], str]) -> str:
    """A valid test personnummer: a real birth date, birth number 980-999 and its Luhn digit."""
    born = date.fromordinal(_EPOCH_BIRTH + rng.randrange(_BIRTH_SPAN))
    nine = f"{born:%y%m%d}{rng.randint(980, 999)}"
    check = luhn_check_digit(nine)
    style = rng.random()
    if style < 0.6:
        return f"{nine[:6]}-{nine[6:]}{check}"
    if style < 0.9:
        return f"{born.year // 100}{nine}{check}"
    return f"{nine}{check}"


def _amount(rng: random.Random) -> int:
    """An amount in öre, skewed towards small fees."""
    kronor = int(rng.lognormvariate(8.2, 1.0))
    return max(100, min(kronor, 2_000_000)) * 100 + (rng.choice((0, 0, 0, 50, rng.randrange(100))))


def _kr(ore: int) -> str:
    return f"{ore // 100}.{ore % 100:02d}"


def case_xml(
    index: int,
    rng: random.Random,
    totals: Totals,
    invoice_counter: list[int],
    luhn_check_digit: Callable[[str], str],
) -> str:
    """One Arende in the example file's layout; every field is valid and rule-clean."""
    year = 2024 + index % 3
    parts = ["  <Arende>\n"]
    reference = REFERENCE_FORMATS[index % len(REFERENCE_FORMATS)].format(y=year, n=index)
    parts.append(f"    <ArendeReferens>{_esc(reference)}</ArendeReferens>\n")
    if rng.random() < 0.4:
        parts.append(f"    <Kundnummer>K-{rng.randrange(1, 10_000_000)}</Kundnummer>\n")

    given = rng.choice(GIVEN_NAMES)
    second = rng.choice(GIVEN_NAMES) if rng.random() < 0.3 else None
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.2:
        surname = f"{surname}-{rng.choice(SURNAMES)}"
    parts.append("    <Motpart>\n      <Typ>Privat</Typ>\n")
    parts.append(f"      <Identitet>{personnummer(rng, luhn_check_digit)}</Identitet>\n")
    parts.append("      <Person>\n")
    if second:
        parts.append(f"        <Fornamn>{given} {second}</Fornamn>\n")
        if rng.random() < 0.5:
            parts.append(f"        <Tilltalsnamn>{second}</Tilltalsnamn>\n")
    else:
        parts.append(f"        <Fornamn>{given}</Fornamn>\n")
    parts.append(f"        <Efternamn>{surname}</Efternamn>\n")
    sole_trader = rng.random() < 0.03
    if sole_trader:
        parts.append(f"        <Firma>{_esc(rng.choice(FIRMS))}</Firma>\n")
    parts.append("      </Person>\n      <Adress>\n")
    parts.append(
        f"        <Utdelningsadress>{rng.choice(STREETS)} {rng.randint(1, 120)}</Utdelningsadress>\n"
    )
    if rng.random() < 0.1:
        parts.append(f"        <Utdelningsadress>Lgh {rng.randint(1001, 1704)}</Utdelningsadress>\n")
    if rng.random() < 0.05:
        parts.append(f"        <CoAdress>c/o {rng.choice(SURNAMES)}</CoAdress>\n")
    prefix, town = rng.choice(TOWNS)
    parts.append(f"        <Postnummer>{prefix}{rng.randrange(100):02d}</Postnummer>\n")
    parts.append(f"        <Postort>{town}</Postort>\n")
    if rng.random() < 0.1:
        parts.append("        <Land>SE</Land>\n")
    parts.append("      </Adress>\n")
    if rng.random() < 0.3:
        parts.append(
            f"      <Telefon>07{rng.randint(0, 9)}-{rng.randint(100, 999)} "
            f"{rng.randint(10, 99)} {rng.randint(10, 99)}</Telefon>\n"
        )
    if rng.random() < 0.2:
        mail = f"{given}.{surname}".lower().translate(_MAIL_ASCII)
        parts.append(f"      <Epost>{mail}@example.se</Epost>\n")
    parts.append("    </Motpart>\n")

    claims = 1 if rng.random() < 0.8 else 2
    first_invoice = _FIRST_INVOICE + rng.randrange(_INVOICE_SPAN)
    for _ in range(claims):
        invoiced = date.fromordinal(first_invoice + rng.randrange(0, 20))
        due = invoiced + timedelta(days=rng.choice((10, 20, 30, 30, 30)))
        invoice_counter[0] += 1
        number = invoice_counter[0]
        parts.append("    <Fordran>\n")
        if rng.random() < 0.9:
            parts.append(f"      <Fakturanummer>{invoiced.year}-{number:07d}</Fakturanummer>\n")
        else:
            parts.append(f"      <Diarienummer>{number}-{invoiced.year}</Diarienummer>\n")
        basis = rng.choice(BASES).format(d=invoiced.isoformat(), y=invoiced.year)
        parts.append(f"      <FordranAvser>{_esc(basis)}</FordranAvser>\n")
        parts.append(f"      <Fakturadatum>{invoiced.isoformat()}</Fakturadatum>\n")
        parts.append(f"      <Forfallodatum>{due.isoformat()}</Forfallodatum>\n")
        capital = _amount(rng)
        valuta = ' valuta="SEK"' if rng.random() < 0.2 else ""
        parts.append(f"      <Kapitalbelopp{valuta}>{_kr(capital)}</Kapitalbelopp>\n")
        if rng.random() < 0.15:
            parts.append(f"      <KvarvarandeBelopp>{_kr(rng.randint(100, capital))}</KvarvarandeBelopp>\n")
        interest = rng.random()
        if interest < 0.35:
            parts.append('      <Ranta typ="rantelagen"/>\n')
        elif interest < 0.45:
            start = due + timedelta(days=1)
            parts.append(f'      <Ranta typ="rantelagen" franDatum="{start.isoformat()}"/>\n')
        elif interest < 0.5:
            start = due + timedelta(days=1)
            parts.append(
                f'      <Ranta typ="avtalad" procent="{rng.choice(("8.00", "10.50", "12"))}" '
                f'franDatum="{start.isoformat()}"/>\n'
            )
        if rng.random() < 0.25:
            parts.append(f"      <Beslut>\n        <Beslutsdatum>{invoiced.isoformat()}</Beslutsdatum>\n")
            if rng.random() < 0.5:
                final = invoiced + timedelta(days=22)
                parts.append(f"        <LagakraftDatum>{final.isoformat()}</LagakraftDatum>\n")
            parts.append("      </Beslut>\n")
        parts.append("    </Fordran>\n")
        totals.claims += 1
        totals.capital_ore += capital
    parts.append("  </Arende>\n")
    totals.cases += 1
    return "".join(parts)


_MAIL_ASCII = str.maketrans({"å": "a", "ä": "a", "ö": "o", "é": "e", " ": "."})


def case_file_chunks(cases: int, seed: int) -> Iterator[str]:
    """The whole file as a stream of text chunks; the summary comes from what was written."""
    from gateway.domain.identity import luhn_check_digit

    rng = random.Random(seed)
    totals = Totals()
    counter = [10_000 + rng.randrange(1000)]
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- Generated by bench/validate.py: {cases} cases, seed {seed}. -->\n"
        f'<Arendefil xmlns="{NAMESPACE}" version="1.0">\n'
        "  <Filhuvud>\n"
        f"    <FilId>BENCH-{cases}-{seed}</FilId>\n"
        "    <Lopnummer>1</Lopnummer>\n"
        "    <Skapad>2026-11-24T22:15:00+01:00</Skapad>\n"
        f"    <Avsandarsystem>{rng.choice(SYSTEMS)}</Avsandarsystem>\n"
        "  </Filhuvud>\n"
        "  <Uppdragsgivare>\n"
        "    <Organisationsnummer>202100-0001</Organisationsnummer>\n"
        "    <Namn>Länsstyrelsen i Exempellän</Namn>\n"
        "  </Uppdragsgivare>\n"
    )
    generated = (case_xml(index, rng, totals, counter, luhn_check_digit) for index in range(1, cases + 1))
    while batch := list(islice(generated, CASES_PER_WRITE)):
        yield "".join(batch)
    yield (
        "  <Filsummering>\n"
        f"    <AntalArenden>{totals.cases}</AntalArenden>\n"
        f"    <AntalFordringar>{totals.claims}</AntalFordringar>\n"
        f"    <SummaKapitalbelopp>{_kr(totals.capital_ore)}</SummaKapitalbelopp>\n"
        "  </Filsummering>\n"
        "</Arendefil>\n"
    )


def write_case_file(path: Path, cases: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with partial.open("w", encoding="utf-8", newline="\n", buffering=1024 * 1024) as out:
        for chunk in case_file_chunks(cases, seed):
            out.write(chunk)
    partial.replace(path)


# --------------------------------------------------------------------------------------------
# Measuring child processes
# --------------------------------------------------------------------------------------------

#: The baseline: bare lxml, whole tree in memory, one schema validation.
BASELINE_CODE = """
import sys
from lxml import etree
with open(sys.argv[1], 'rb') as handle:
    schema = etree.XMLSchema(etree.parse(handle))
with open(sys.argv[2], 'rb') as handle:
    ok = schema.validate(etree.parse(handle))
sys.exit(0 if ok else 1)
"""

#: The floor of the gateway's design: stream, validate each global child alone, free it. No model,
#: no rules, no envelope checks.
STREAM_CODE = """
import sys
from lxml import etree
with open(sys.argv[1], 'rb') as handle:
    schema = etree.XMLSchema(etree.parse(handle))
q = '{urn:inkasso-gateway:arendefil:1}'
tags = [q + n for n in ('Filhuvud', 'Uppdragsgivare', 'Arende', 'Filsummering')]
ok = True
with open(sys.argv[2], 'rb') as handle:
    for _event, element in etree.iterparse(handle, events=('end',), tag=tags, resolve_entities=False,
                                           no_network=True, load_dtd=False, huge_tree=False):
        ok = schema.validate(element) and ok
        element.clear(keep_tail=True)
        parent = element.getparent()
        while element.getprevious() is not None:
            del parent[0]
sys.exit(0 if ok else 1)
"""


@dataclass(slots=True)
class Run:
    wall: float
    cpu: float
    max_rss_kib: int
    returncode: int


@dataclass(slots=True)
class Tool:
    key: str
    label: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)


#: A small wrapper for when GNU time is missing: it forks and execs the command at once and reports
#: the command's own rusage. Run with -S -E so that its own (inherited) memory floor stays small.
WRAPPER_CODE = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], 'w') as out:
    out.write(f'{wall} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {os.waitstatus_to_exitcode(status)}')
"""


class ChildMeter:
    """Run a command and measure it alone: wall time, CPU time, peak RSS and exit code.

    Linux carries a process's memory high-water mark across ``exec``, and Python's subprocess
    starts children with vfork, so a child of this (large) script would report this script's peak
    RSS as its own (a /bin/true started here reported over 200 MB). The command is therefore
    started from a small process: GNU time when installed (a floor of about 1 MB), else a bare
    Python wrapper (a floor of about 10 MB). The floor is measured with /bin/true and printed.
    """

    def __init__(self, workdir: Path, env: dict[str, str], *, use_gnu_time: bool = True) -> None:
        self.workdir = workdir
        self.env = env
        self.result_file = workdir / ".child-rusage"
        self.gnu_time = self._find_gnu_time() if use_gnu_time else None
        self.method = "GNU time" if self.gnu_time else "a Python fork/exec wrapper"
        true = shutil.which("true") or "/bin/true"
        self.floor_kib = self.run([true]).max_rss_kib

    def _find_gnu_time(self) -> str | None:
        candidate = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None
        if candidate is None:
            return None
        probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
        return candidate if "GNU" in probe.stdout + probe.stderr else None

    def run(self, argv: Sequence[str]) -> Run:
        """Run ``argv`` with stdout to /dev/null; stderr is shown only when it fails."""
        self.result_file.unlink(missing_ok=True)
        if self.gnu_time:
            wrapped = [self.gnu_time, "-f", "%M %U %S %x", "-o", str(self.result_file), *argv]
        else:
            wrapped = [sys.executable, "-S", "-E", "-c", WRAPPER_CODE, str(self.result_file), *argv]
        started = time.perf_counter()
        completed = subprocess.run(
            wrapped,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        wall = time.perf_counter() - started
        try:
            fields = self.result_file.read_text().split("\n")[-2 if self.gnu_time else -1].split()
        except (OSError, IndexError):
            fields = []
        if self.gnu_time and len(fields) == 4:
            run = Run(wall, float(fields[1]) + float(fields[2]), int(fields[0]), int(fields[3]))
        elif not self.gnu_time and len(fields) == 4:
            run = Run(float(fields[0]), float(fields[2]), int(fields[1]), int(fields[3]))
        else:
            run = Run(wall, 0.0, 0, completed.returncode or -1)
        if run.returncode != 0:
            shown = completed.stderr.decode("utf-8", "replace").strip()[-2000:]
            print(f"  ! {argv[0]} exited {run.returncode}: {shown}", file=sys.stderr)
        return run


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("INKASSO_GATEWAY_CONFIG", None)  # a dry run without any configuration
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def gateway_command() -> list[str]:
    script = Path(sys.executable).with_name("inkasso-gateway")
    if script.is_file():
        return [str(script)]
    found = shutil.which("inkasso-gateway")
    return [found] if found else [sys.executable, "-m", "gateway"]


def check_clean(case_file: Path, workdir: Path, env: dict[str, str], cases: int) -> bool:
    """Run the gateway once, keep its JSON, and confirm every case is accepted without findings."""
    report_path = workdir / "validate-check.json"
    argv = [*gateway_command(), "validate", str(case_file), "--as-of", AS_OF.isoformat()]
    argv += ["--format", "json"]
    started = time.perf_counter()
    with report_path.open("wb") as out:
        completed = subprocess.run(
            argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.PIPE, check=False
        )
    elapsed = time.perf_counter() - started
    try:
        report = json.loads(report_path.read_text(encoding="utf-8").splitlines()[0])
    except (IndexError, ValueError):
        report = None
    if completed.returncode != 0 or report is None:
        print(f"check run: exit code {completed.returncode} (want 0)", file=sys.stderr)
        print(completed.stderr.decode("utf-8", "replace")[-2000:], file=sys.stderr)
        if report is not None:
            print(f"summary: {report['summary']}", file=sys.stderr)
            shown = list(report["violations"])
            shown += [v for case in report["cases"] for v in case["violations"]]
            for violation in shown[:10]:
                message = str(violation.get("message_en", ""))[:140]
                print(f"  {violation['code']} {violation['path']}: {message}", file=sys.stderr)
        return False
    warnings = sum(len(case["violations"]) for case in report["cases"]) + len(report["violations"])
    print(
        f"check run: exit code 0, status {report['status']}, {report['summary']['accepted']} of "
        f"{cases} cases accepted, {warnings} findings, {elapsed:.2f} s (untimed warm-up)"
    )
    if report["summary"]["accepted"] != cases or warnings:
        print("  ! the generated file is not entirely clean", file=sys.stderr)
    return True


def print_table(tools: list[Tool], cases: int, size: int) -> None:
    baseline = next(t for t in tools if t.key == "baseline")
    base_median = statistics.median(r.wall for r in baseline.runs)
    header = f"{'command':<44} {'median s':>9} {'min s':>7} {'cpu s':>7} {'x base':>7} {'cases/s':>9} {'peak RSS MB':>12}"
    print()
    print(f"{cases:,} cases, {size / 1e6:.1f} MB, {len(baseline.runs)} rounds; MB here = MiB")
    print(header)
    print("-" * len(header))
    for tool in tools:
        walls = [r.wall for r in tool.runs]
        median = statistics.median(walls)
        cpu = statistics.median(r.cpu for r in tool.runs)
        rss = max(r.max_rss_kib for r in tool.runs) / 1024
        print(
            f"{tool.label:<44} {median:>9.2f} {min(walls):>7.2f} {cpu:>7.2f} "
            f"{median / base_median:>7.2f} {cases / median:>9,.0f} {rss:>12.1f}"
        )
    validate = next(t for t in tools if t.key == "validate")
    ratio = statistics.median(r.wall for r in validate.runs) / base_median
    rss = max(r.max_rss_kib for r in validate.runs) / 1024
    print()
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"target: validate / baseline median wall <= {TARGET_RATIO:.1f}: {verdict} ({ratio:.2f})")
    verdict = "PASS" if rss <= TARGET_RSS_MB else "FAIL"
    note = (
        "" if cases == TARGET_RSS_AT_CASES else f" (the target is stated for {TARGET_RSS_AT_CASES:,} cases)"
    )
    print(f"target: validate peak RSS <= {TARGET_RSS_MB:.0f} MB: {verdict} ({rss:.1f} MB){note}")
    print("(informational: the exit code does not depend on the targets)")


def measure(case_file: Path, workdir: Path, repeat: int, cases: int, *, use_gnu_time: bool) -> bool:
    env = child_env()
    file_arg = str(case_file)
    tools = [
        Tool(
            "validate",
            "inkasso-gateway validate --format json",
            [*gateway_command(), "validate", file_arg, "--as-of", AS_OF.isoformat(), "--format", "json"],
        ),
        Tool(
            "baseline",
            "lxml whole tree (baseline)",
            [sys.executable, "-c", BASELINE_CODE, str(XSD), file_arg],
        ),
        Tool(
            "stream",
            "lxml iterparse + per-child validate (floor)",
            [sys.executable, "-c", STREAM_CODE, str(XSD), file_arg],
        ),
    ]
    xmllint = shutil.which("xmllint")
    if xmllint:
        tools.append(
            Tool(
                "xmllint",
                "xmllint --stream --schema",
                [xmllint, "--stream", "--noout", "--schema", str(XSD), file_arg],
            )
        )
    else:
        print("xmllint not on PATH: skipped (Debian: apt-get install libxml2-utils)")
    ok = True
    meter = ChildMeter(workdir, env, use_gnu_time=use_gnu_time)
    print(
        f"each command runs alone under {meter.method}; its RSS floor (/bin/true): {meter.floor_kib / 1024:.1f} MB"
    )
    for round_number in range(repeat):
        # Rotate the order each round so no command always runs first (or after the slowest).
        shift = round_number % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            run = meter.run(tool.argv)
            tool.runs.append(run)
            ok = ok and run.returncode == 0
            print(
                f"  round {round_number + 1}: {tool.key:<9} {run.wall:6.2f} s "
                f"{run.max_rss_kib / 1024:7.1f} MB  exit {run.returncode}",
                flush=True,
            )
    print_table(tools, cases, case_file.stat().st_size)
    return ok


# --------------------------------------------------------------------------------------------
# Profiling in-process
# --------------------------------------------------------------------------------------------


def _stream_floor(case_file: Path) -> int:
    """In-process twin of STREAM_CODE: parse and validate each child; nothing else."""
    from lxml import etree

    from gateway.formats.schemas import ARENDEFIL, load_schema

    schema = load_schema(ARENDEFIL)
    tags = [f"{{{NAMESPACE}}}{name}" for name in ("Filhuvud", "Uppdragsgivare", "Arende", "Filsummering")]
    count = 0
    with case_file.open("rb") as handle:
        for _event, element in etree.iterparse(
            handle, events=("end",), tag=tags, resolve_entities=False, no_network=True, load_dtd=False
        ):
            schema.validate(element)
            count += 1
            element.clear(keep_tail=True)
            parent = element.getparent()
            while element.getprevious() is not None:
                del parent[0]
    return count


def phases(case_file: Path) -> None:
    """Where the wall time goes, without cProfile's distortion: each layer timed on its own."""
    from gateway.cli.validation_output import write_json
    from gateway.domain.rules import FileState, NoHistory, RuleContext, Scope, rules_in
    from gateway.formats.casefile import CaseFileReader
    from gateway.service.validation import ValidationSettings, validate_file

    clock = time.perf_counter
    print("\nphases in-process, without a profiler (one run each; each row includes the rows above it):")

    started = clock()
    _stream_floor(case_file)
    floor = clock() - started
    print(f"  {'iterparse + per-child XSD validation':<48} {floor:7.2f} s")

    started = clock()
    with case_file.open("rb") as handle:
        reader = CaseFileReader(handle)
        for _case in reader.cases():
            pass
    read = clock() - started
    print(f"  {'+ envelope checks and model building (reader)':<48} {read:7.2f} s  (+{read - floor:.2f})")

    started = clock()
    report = validate_file(case_file, ValidationSettings(today=AS_OF))
    judged = clock() - started
    print(f"  {'+ hashing, rules and verdict (validate_file)':<48} {judged:7.2f} s  (+{judged - read:.2f})")

    started = clock()
    with Path(os.devnull).open("w", encoding="utf-8") as sink:
        write_json(sink, report)
    written = clock() - started
    print(f"  {'JSON output to /dev/null (write_json)':<48} {written:7.2f} s")
    del report

    # Each case rule timed alone over every case (the timer itself adds ~0.1 us per call).
    context = RuleContext(today=AS_OF, history=NoHistory())
    state = FileState(None)
    rules = [(registered, registered.check) for registered in rules_in(Scope.CASE) if registered.check]
    spent = dict.fromkeys((registered.code for registered, _check in rules), 0.0)
    cases = 0
    with case_file.open("rb") as handle:
        for case, _findings in CaseFileReader(handle).cases():
            cases += 1
            for registered, check in rules:
                started = clock()
                for _finding in check(registered, case, context, state):
                    pass
                spent[registered.code] += clock() - started
    total = sum(spent.values())
    ranked = sorted(spent.items(), key=lambda item: -item[1])
    print(f"  case rules, each timed alone: {len(rules)} rules, {total:.2f} s in all; slowest:")
    for code, seconds in ranked[:10]:
        print(f"    {code}  {seconds:5.2f} s  {seconds / cases * 1e6:5.1f} us/case")
    rest = ranked[10:]
    if rest:
        print(f"    the other {len(rest)}: {sum(v for _, v in rest):.2f} s together")


def profile(case_file: Path, top: int) -> bool:
    from gateway.service.validation import ValidationSettings, validate_file

    phases(case_file)
    settings = ValidationSettings(today=AS_OF)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    report = validate_file(case_file, settings)
    profiler.disable()
    elapsed = time.perf_counter() - started
    verdict = report.verdict
    print()
    print(
        f"profile: validate_file in-process under cProfile: {elapsed:.2f} s (cProfile adds overhead), "
        f"status {verdict.status.value}, {len(verdict.cases):,} cases"
    )
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        body = text.getvalue()
        start = body.find("   ncalls")  # skip pstats' preamble but keep its column header
        print(f"\n=== top {top} by {order} time ===")
        print(body[start:].rstrip() if start >= 0 else body.rstrip())
    return verdict.status.value == "accepted"


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="cases in the file (100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; 0 skips timing (3)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out", help="(bench/out)")
    parser.add_argument("--seed", type=int, default=20261125, help="random seed of the generator")
    parser.add_argument("--profile", action="store_true", help="also cProfile validate_file in-process")
    parser.add_argument(
        "--no-gnu-time",
        action="store_true",
        help="measure children with the Python wrapper, not /usr/bin/time",
    )
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile listing (25)")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.repeat < 0:
        parser.error("--cases must be at least 1 and --repeat at least 0")

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: figures are noisy on a shared machine"
    )
    case_file = workdir / f"arendefil-{args.cases}.xml"
    started = time.perf_counter()
    write_case_file(case_file, args.cases, args.seed)
    elapsed = time.perf_counter() - started
    size = case_file.stat().st_size
    print(
        f"generated {case_file} ({args.cases:,} cases, {size / 1e6:.1f} MB) in {elapsed:.2f} s "
        f"({args.cases / elapsed:,.0f} cases/s)"
    )

    env = child_env()
    ok = check_clean(case_file, workdir, env, args.cases)
    if not ok:
        return 1
    if args.repeat:
        ok = measure(case_file, workdir, args.repeat, args.cases, use_gnu_time=not args.no_gnu_time)
    if args.profile:
        ok = profile(case_file, args.top) and ok
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
