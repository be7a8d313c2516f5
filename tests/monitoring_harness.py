"""What the monitoring tests share: a gateway with ``[monitoring] listen`` on a free port, HTTP
answers read as a scraper or a health checker reads them, and the figures the receipts say.

Everything is read from outside the daemon: its HTTP endpoints, its receipts, its command line.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from gateway.formats.hardened import parser as hardened_parser
from tests.daemon_harness import MAIN_CLIENT, Gateway, K, agency_orgnr

#: A second client and a second source, so that every label set is more than one.
OTHER_CLIENT = ("lst-annan", agency_orgnr(7), "Länsstyrelsen i Annanlän")
OTHER_SOURCE = "erp2"
#: A receipt's Status, as the metrics' status label says it.
RECEIPT_STATUS = {
    "Godkand": "accepted",
    "DelvisGodkand": "partially_accepted",
    "Underkand": "rejected",
    "Dubblett": "duplicate",
}


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice; taken again a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def monitored_gateway(root: Path, **options: object) -> tuple[Gateway, str]:
    """A gateway with two clients and two folder sources, serving monitoring on a free port."""
    port = free_port()
    (root / "inbox2").mkdir(parents=True, exist_ok=True)
    extra = str(options.pop("extra_config", ""))
    gateway = Gateway(
        root,
        clients=(MAIN_CLIENT, OTHER_CLIENT),
        extra_config=(
            f'\n[[sources]]\nname = "{OTHER_SOURCE}"\ntype = "folder"\npath = "inbox2"\nstable_seconds = 0.3\n'
            f'\n[monitoring]\nlisten = "127.0.0.1:{port}"\n' + extra
        ),
        **options,  # type: ignore[arg-type]
    )
    return gateway, f"http://127.0.0.1:{port}"


@dataclass
class Answer:
    status: int
    content_type: str
    body: str


def get(url: str) -> Answer | None:
    """One GET; None while nothing listens (the daemon is starting)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return Answer(response.status, response.headers["Content-Type"], response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers["Content-Type"], error.read().decode())
    except (urllib.error.URLError, ConnectionError):
        return None


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in scraped.items() if sample == name}


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


@dataclass
class ReceiptFigures:
    files: Counter[tuple[str, str]]  # (source, status label)
    cases: Counter[tuple[str, str]]  # (client id, outcome)
    capital: Counter[str]  # client id -> kronor


def receipt_figures(gateway: Gateway, clients: dict[str, str]) -> ReceiptFigures:
    """What the receipts say, counted as the metrics count: files by source (the receipt's Kalla)
    and status, cases by client (by organisationsnummer) and outcome, accepted capital."""
    figures = ReceiptFigures(Counter(), Counter(), Counter())
    for path in gateway.receipt_paths():
        root = etree.fromstring(path.read_bytes(), hardened_parser())
        source = root.findtext(f"{K}Fil/{K}Kalla") or ""
        figures.files[(source, RECEIPT_STATUS[root.findtext(K + "Status") or ""])] += 1
        orgnr = (root.findtext(f"{K}Uppdragsgivare/{K}Organisationsnummer") or "").replace("-", "")
        client = clients.get(orgnr, "")
        summary = f"{K}Summering/{K}"
        figures.cases[(client, "accepted")] += int(root.findtext(summary + "AntalGodkanda") or 0)
        figures.cases[(client, "rejected")] += int(root.findtext(summary + "AntalUnderkanda") or 0)
        figures.cases[(client, "duplicate")] += int(root.findtext(summary + "AntalDubbletter") or 0)
        figures.capital[client] += Decimal(root.findtext(summary + "SummaGodkantKapitalbelopp") or 0)
    return figures
