"""The journal (arendejournal-1.xsd) and journal receipt (journalkvittens-1.xsd) writers and reader.

Every journal written here validates against its schema; a journal read back gives the same header,
the same cases in the same order and totals whose manifest is gateway.domain.journal.manifest.
Identity numbers are the examples' or generated with birth numbers 980-999 (Skatteverket's test
series) and gateway.domain.identity.luhn_check_digit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.identity import luhn_check_digit
from gateway.domain.journal import JournalCase, JournalClaim, JournalDebtor, journal_case, manifest
from gateway.domain.judging import CaseOutcome, CaseStatus
from gateway.domain.model import Case
from gateway.formats.hardened import parser as hardened_parser
from gateway.formats.journal import (
    ARENDEJOURNAL,
    JOURNALKVITTENS,
    NAMESPACE,
    RECEIPT_NAMESPACE,
    JournalDelivery,
    JournalFormatError,
    JournalHeader,
    JournalTotals,
    journal_file_name,
    read_journal,
    write_journal,
    write_journal_receipt,
)
from gateway.formats.schemas import load_schema
from gateway.service.validation import ValidationSettings, validate_file
from tests.conftest import EXAMPLE, TODAY, broken_copy

NS = {"j": NAMESPACE}
RNS = {"r": RECEIPT_NAMESPACE}
STOCKHOLM_WINTER = timezone(timedelta(hours=1))
CONFIG_SHA256 = hashlib.sha256(b"[gateway]\ntimezone = 'Europe/Stockholm'\n").hexdigest()
EXAMPLE_ORGNRS = ("559000-1235", "5590001235", "969000-4560")

HEADER = JournalHeader(
    journal_id="lst-exempel-J0007",
    sequence=7,
    client_orgnr="2021000001",
    client_name="Länsstyrelsen i Exempellän",
    created=datetime(2026, 11, 25, 16, 0, 5, tzinfo=STOCKHOLM_WINTER),
    sealed=datetime(2026, 11, 25, 16, 0, tzinfo=STOCKHOLM_WINTER),
    approved_by="Åsa Öberg",
    approved_at=datetime(2026, 11, 25, 16, 30, tzinfo=STOCKHOLM_WINTER),
    gateway_version="0.1.0",
    ruleset_version="2026.11",
    config_sha256=CONFIG_SHA256,
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def person_identity(born: date, birth_number: int, *, coordination: bool = False) -> str:
    """ÅÅMMDD-NNNN (+ from the year of the 100th birthday, as of TODAY) with a test birth number."""
    assert 980 <= birth_number <= 999
    day = born.day + 60 if coordination else born.day
    nine = f"{born.year % 100:02d}{born.month:02d}{day:02d}{birth_number:03d}"
    ten = nine + luhn_check_digit(nine)
    separator = "+" if TODAY.year - born.year >= 100 else "-"
    return f"{ten[:6]}{separator}{ten[6:]}"


def twelve_digits(born: date, birth_number: int) -> str:
    nine = f"{born.year % 100:02d}{born.month:02d}{born.day:02d}{birth_number:03d}"
    return f"{born.year // 100}{nine}{luhn_check_digit(nine)}"


def validate(document: bytes, schema_name: str) -> etree._Element:
    root = etree.fromstring(document, hardened_parser())
    schema = load_schema(schema_name)
    assert schema.validate(root), schema.error_log
    return root


def written(cases: list[JournalCase], header: JournalHeader = HEADER) -> tuple[bytes, JournalTotals]:
    out = io.BytesIO()
    totals = write_journal(out, header, cases)
    return out.getvalue(), totals


def claim(capital: str = "1250.00", **changes: str | None) -> JournalClaim:
    base = JournalClaim(
        invoice_number="2026-20001",
        registry_number=None,
        basis="Tillsynsavgift enligt miljöbalken, beslut 2026-05-04",
        invoice_date="2026-05-04",
        due_date="2026-06-03",
        capital=capital,
        remaining=None,
        interest_kind="rantelagen",
        interest_percent=None,
        interest_from=None,
        decision_date=None,
        final_date=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def debtor(**changes: object) -> JournalDebtor:
    base = JournalDebtor(
        kind="Privat",
        identity=person_identity(date(1979, 4, 2), 982),
        name="Örjan Åkesson",
        street_lines=("Östra Långgatan 4 lgh 1102",),
        care_of=None,
        postal_code="21122",
        town="Malmö",
        country="SE",
        phone=None,
        email=None,
        protected=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def realistic_cases() -> list[JournalCase]:
    source = sha256_hex(b"lst-exempel-2026-11-24.xml")
    return [
        JournalCase(
            reference="LST-2026-0501",
            customer_number="K-20077",
            debtors=(
                debtor(
                    phone="070-123 45 67",
                    email="orjan.akesson@example.se",
                    care_of="c/o Bengtsson-Öhman",
                    street_lines=("Östra Långgatan 4", "lgh 1102"),
                ),
            ),
            claims=(claim(),),
            attachments=(),
            source_sha256=source,
        ),
        # A protected debtor: no address at all, held for review before the journal was approved.
        JournalCase(
            reference="LST-2026-0502",
            customer_number=None,
            debtors=(
                debtor(
                    identity=person_identity(date(1990, 12, 31), 991),
                    name="Ylva Ärlig",
                    street_lines=(),
                    postal_code=None,
                    town=None,
                    protected=True,
                ),
            ),
            claims=(
                claim(
                    "990.00",
                    invoice_number=None,
                    registry_number="503-1204-2026",
                    interest_kind="avtalad",
                    interest_percent="7.50",
                    interest_from="2026-06-04",
                    decision_date="2026-05-04",
                    final_date="2026-05-26",
                ),
            ),
            attachments=("beslut-503-1204-2026.pdf",),
            source_sha256=source,
        ),
        # A sole trader and a company, jointly liable, for two claims; one debtor abroad.
        JournalCase(
            reference="LST-2026-0503",
            customer_number="K-30001",
            debtors=(
                debtor(
                    identity=person_identity(date(1926, 3, 14), 987),
                    name="Nils Exempelberg m.u.f. Nisses Plåt och Svets",
                    street_lines=("Verkstadsgatan 3",),
                    postal_code="41301",
                    town="Göteborg",
                ),
                debtor(
                    kind="Foretag",
                    identity="559000-1235",
                    name="Exempelbyggarna i Norr AB",
                    street_lines=("Storgata 12",),
                    postal_code="0150",
                    town="Oslo",
                    country="NO",
                ),
            ),
            claims=(
                claim("12500.00", remaining="10000.00", interest_from="2026-08-01"),
                claim("2300.50", invoice_number="2026-20002", interest_kind=None),
            ),
            attachments=("faktura-2026-20001.pdf", "påminnelse.png"),
            source_sha256=sha256_hex(b"another file"),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Writing and reading


def test_a_journal_of_realistic_cases_validates_and_states_its_totals() -> None:
    cases = realistic_cases()
    document, totals = written(cases)
    root = validate(document, ARENDEJOURNAL)

    assert root.get("version") == "1.0"
    assert root.findtext("j:Journalhuvud/j:Lopnummer", namespaces=NS) == "7"
    assert root.findtext("j:Journalhuvud/j:Godkand/j:Av", namespaces=NS) == "Åsa Öberg"
    assert [element.text for element in root.iterfind("j:Arende/j:ArendeReferens", NS)] == [
        "LST-2026-0501",
        "LST-2026-0502",
        "LST-2026-0503",
    ]
    assert [element.text for element in root.iterfind("j:Arende/j:ArendeSha256", NS)] == [
        case.sha256() for case in cases
    ]
    assert root.findtext("j:Arende[3]/j:Motpart[1]/j:Identitet", namespaces=NS) == person_identity(
        date(1926, 3, 14), 987
    )
    assert root.find("j:Arende[2]/j:Motpart/j:Adress", NS) is None
    assert root.findtext("j:Arende[2]/j:Motpart/j:SkyddadePersonuppgifter", namespaces=NS) == "true"
    assert root.find("j:Arende[1]/j:Fordran/j:Kapitalbelopp", NS).get("valuta") == "SEK"  # type: ignore[union-attr]
    assert root.findtext("j:Journalsummering/j:AntalArenden", namespaces=NS) == "3"
    assert root.findtext("j:Journalsummering/j:AntalFordringar", namespaces=NS) == "4"
    assert root.findtext("j:Journalsummering/j:SummaKapitalbelopp", namespaces=NS) == "17040.50"
    assert root.findtext("j:Journalsummering/j:Manifest", namespaces=NS) == totals.manifest
    assert totals == JournalTotals(3, 4, Decimal("17040.50"), manifest([case.sha256() for case in cases]))
    assert read_journal(io.BytesIO(document)) == (HEADER, cases, totals)


def test_the_same_header_and_cases_give_the_same_bytes() -> None:
    first, _ = written(realistic_cases())
    second, _ = written(realistic_cases())
    assert first == second
    reordered, _ = written(realistic_cases()[::-1])
    assert reordered != first


def test_a_journal_without_approval_or_optional_parts_reads_back() -> None:
    header = dataclasses.replace(HEADER, approved_by=None, approved_at=None)
    cases = [dataclasses.replace(realistic_cases()[1], customer_number=None, attachments=())]
    document, totals = written(cases, header)
    root = validate(document, ARENDEJOURNAL)
    assert root.find("j:Journalhuvud/j:Godkand", NS) is None
    assert read_journal(io.BytesIO(document)) == (header, cases, totals)


def test_nothing_is_written_for_an_empty_or_inconsistent_journal() -> None:
    out = io.BytesIO()
    with pytest.raises(ValueError, match="at least one case"):
        write_journal(out, HEADER, iter([]))
    with pytest.raises(ValueError, match="approval"):
        write_journal(out, dataclasses.replace(HEADER, approved_at=None), realistic_cases())
    with pytest.raises(ValueError, match="positive"):
        write_journal(out, dataclasses.replace(HEADER, sequence=0), realistic_cases())
    assert out.getvalue() == b""


def test_a_tampered_journal_is_refused_on_reading() -> None:
    document, _ = written(realistic_cases())
    altered = document.replace("Örjan Åkesson".encode(), "Örjan Åkeson".encode())
    with pytest.raises(JournalFormatError, match="ArendeSha256"):
        read_journal(io.BytesIO(altered))
    # An audit may read what the file says and compare for itself.
    _, cases, _ = read_journal(io.BytesIO(altered), verify=False)
    assert cases[0].debtors[0].name == "Örjan Åkeson"

    miscounted = document.replace(b"<AntalFordringar>4<", b"<AntalFordringar>5<")
    with pytest.raises(JournalFormatError, match="Journalsummering"):
        read_journal(io.BytesIO(miscounted))


def test_a_journal_with_a_doctype_or_broken_xml_is_refused() -> None:
    document, _ = written(realistic_cases())
    declaration, rest = document.split(b"\n", 1)
    hostile = (declaration + b'\n<!DOCTYPE Arendejournal [<!ENTITY x "injected">]>\n' + rest).replace(
        b"<Postort>Malm\xc3\xb6</Postort>", b"<Postort>&x;</Postort>", 1
    )
    with pytest.raises(JournalFormatError, match="DOCTYPE"):
        read_journal(io.BytesIO(hostile))
    with pytest.raises(JournalFormatError, match="well-formed"):
        read_journal(io.BytesIO(document[: len(document) // 2]))
    kvittens = b'<Kvittens xmlns="urn:inkasso-gateway:kvittens:1" version="1.0"/>'
    with pytest.raises(JournalFormatError, match="not an Arendejournal"):
        read_journal(io.BytesIO(kvittens))


def test_journal_file_names() -> None:
    assert journal_file_name("lst-exempel", 7, packaged=False) == "lst-exempel-000007.xml"
    assert journal_file_name("lst-exempel", 123456, packaged=True) == "lst-exempel-123456.zip"
    with pytest.raises(ValueError):
        journal_file_name("../lst", 1, packaged=False)
    with pytest.raises(ValueError):
        journal_file_name("lst", 0, packaged=False)


# --------------------------------------------------------------------------------------------
# Property: write -> read gives back the same journal


SWEDISH_WORDS = (
    "Åsa",
    "Örjan",
    "Ängelholm",
    "Bengtsson-Öhman",
    "Plåt & Rör",
    "Väg 7",
    "Skåne län",
    "ÅÄÖ åäö",
)
# Anything XML 1.0 carries, tab, newline and carriage return included (they must survive too).
XML_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"), include_characters="\t\n\r")


def texts(max_size: int, *, min_size: int = 0) -> st.SearchStrategy[str]:
    words = st.lists(st.sampled_from(SWEDISH_WORDS), min_size=1, max_size=3).map(" ".join)
    plain = st.text(XML_TEXT, min_size=min_size, max_size=max_size)
    return st.one_of(words.filter(lambda text: len(text) <= max_size), plain)


def optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), strategy)


ISO_DATES = st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(date.isoformat)
AMOUNTS = st.decimals(Decimal("0.01"), Decimal("99999999.99"), places=2).map(lambda value: f"{value:.2f}")
SHA256S = st.binary(max_size=8).map(sha256_hex)
ZONES = st.sampled_from([UTC, STOCKHOLM_WINTER, timezone(timedelta(hours=2))])
MOMENTS = st.datetimes(datetime(2020, 1, 1), datetime(2099, 12, 31), timezones=ZONES)


@st.composite
def debtors(draw: st.DrawFn) -> JournalDebtor:
    kind = draw(st.sampled_from(["Privat", "Foretag"]))
    if kind == "Privat":
        born = draw(st.dates(date(1900, 1, 1), date(2008, 12, 31)))
        identity = person_identity(born, draw(st.integers(980, 999)), coordination=draw(st.booleans()))
        name = " ".join([draw(texts(30)), draw(texts(30))])
        if draw(st.booleans()):  # a sole trader
            name += f" m.u.f. {draw(texts(60))}"
    else:
        identity = draw(st.sampled_from(EXAMPLE_ORGNRS))
        name = draw(texts(100))
    protected = draw(st.booleans())
    has_address = not protected and draw(st.booleans())
    return JournalDebtor(
        kind=kind,
        identity=identity,
        name=name,
        street_lines=tuple(draw(st.lists(texts(40), max_size=2))) if has_address else (),
        care_of=draw(optional(texts(40))) if has_address else None,
        postal_code=draw(optional(st.from_regex(r"[1-9][0-9]{4}", fullmatch=True))) if has_address else None,
        town=draw(optional(texts(40))) if has_address else None,
        country=draw(st.sampled_from(["SE", "SE", "NO", "FI", "DK"])) if has_address else "SE",
        phone=draw(optional(st.from_regex(r"0[0-9]{2}-[0-9]{3} [0-9]{2} [0-9]{2}", fullmatch=True))),
        email=draw(optional(st.emails().filter(lambda address: len(address) <= 254))),
        protected=protected,
    )


@st.composite
def claims(draw: st.DrawFn) -> JournalClaim:
    numbers = draw(st.sampled_from(["invoice", "registry", "both"]))
    interest_kind = draw(st.sampled_from([None, "rantelagen", "avtalad"]))
    decided = draw(st.booleans())
    return JournalClaim(
        invoice_number=draw(texts(50, min_size=1)) if numbers != "registry" else None,
        registry_number=draw(texts(50, min_size=1)) if numbers != "invoice" else None,
        basis=draw(texts(200, min_size=1)),
        invoice_date=draw(ISO_DATES),
        due_date=draw(ISO_DATES),
        capital=draw(AMOUNTS),
        remaining=draw(optional(AMOUNTS)),
        interest_kind=interest_kind,
        interest_percent=str(draw(st.decimals(Decimal(0), Decimal(50), places=2)))
        if interest_kind == "avtalad"
        else None,
        interest_from=draw(optional(ISO_DATES)) if interest_kind else None,
        decision_date=draw(ISO_DATES) if decided else None,
        final_date=draw(optional(ISO_DATES)) if decided else None,
    )


@st.composite
def cases(draw: st.DrawFn) -> JournalCase:
    reference = draw(
        st.one_of(
            st.from_regex(r"[A-Z]{2,4}-20[0-9]{2}-[0-9]{1,6}", fullmatch=True),
            texts(50, min_size=1).filter(bool),
        )
    )
    return JournalCase(
        reference=reference,
        customer_number=draw(optional(texts(50))),
        debtors=tuple(draw(st.lists(debtors(), min_size=1, max_size=3))),
        claims=tuple(draw(st.lists(claims(), min_size=1, max_size=3))),
        attachments=tuple(draw(st.lists(texts(60, min_size=1), max_size=2))),
        source_sha256=draw(SHA256S),
    )


@st.composite
def headers(draw: st.DrawFn) -> JournalHeader:
    approved = draw(st.booleans())
    return JournalHeader(
        journal_id=draw(st.from_regex(r"[a-z-]{1,20}-J[0-9]{1,6}", fullmatch=True)),
        sequence=draw(st.integers(1, 999_999)),
        client_orgnr=draw(st.sampled_from(["2021000001", "202100-0001"])),
        client_name=draw(texts(100)),
        created=draw(MOMENTS),
        sealed=draw(MOMENTS),
        approved_by=draw(texts(100)) if approved else None,
        approved_at=draw(MOMENTS) if approved else None,
        gateway_version="0.1.0",
        ruleset_version=draw(st.sampled_from(["2026.11", "2027.1"])),
        config_sha256=draw(SHA256S),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers(), st.lists(cases(), min_size=1, max_size=4))
def test_a_written_journal_reads_back_as_the_same_journal(
    header: JournalHeader, journal_cases: list[JournalCase]
) -> None:
    document, totals = written(journal_cases, header)
    validate(document, ARENDEJOURNAL)

    read_header, read_cases, read_totals = read_journal(io.BytesIO(document))

    assert read_header == header
    assert read_cases == journal_cases
    assert [case.sha256() for case in read_cases] == [case.sha256() for case in journal_cases]
    expected = JournalTotals(
        case_count=len(journal_cases),
        claim_count=sum(len(case.claims) for case in journal_cases),
        capital=sum((case.capital for case in journal_cases), Decimal(0)),
        manifest=manifest([case.sha256() for case in journal_cases]),
    )
    assert totals == expected
    assert read_totals == expected
    assert written(read_cases, read_header)[0] == document


# --------------------------------------------------------------------------------------------
# A large journal streams


def test_a_journal_of_20000_cases_is_written_from_a_generator_and_validates(tmp_path: Path) -> None:
    template = realistic_cases()[0]
    count = 20_000
    path = tmp_path / "lst-exempel-000007.xml"
    written_before_last_case: list[int] = []

    with path.open("wb") as out:

        def generated() -> Iterator[JournalCase]:
            for number in range(1, count + 1):
                if number == count:
                    written_before_last_case.append(out.tell())
                yield dataclasses.replace(template, reference=f"LST-2026-{number:06d}")

        totals = write_journal(out, HEADER, generated())

    # The cases went out as they came, not as one tree serialised at the end.
    assert written_before_last_case[0] > path.stat().st_size // 2
    assert (totals.case_count, totals.claim_count) == (count, count)
    assert totals.capital == count * Decimal("1250.00")

    # Validate while streaming and forget each part once seen, as a receiver of a big journal would.
    seen = 0
    summary: dict[str, str | None] = {}
    with path.open("rb") as source:
        for _event, element in etree.iterparse(
            source,
            events=("end",),
            tag=(f"{{{NAMESPACE}}}Arende", f"{{{NAMESPACE}}}Journalsummering"),
            schema=load_schema(ARENDEJOURNAL),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
        ):
            if etree.QName(element).localname == "Arende":
                seen += 1
            else:
                summary = {etree.QName(child).localname: child.text for child in element}
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]  # type: ignore[union-attr]
    assert seen == count
    assert summary == {
        "AntalArenden": str(count),
        "AntalFordringar": str(count),
        "SummaKapitalbelopp": f"{totals.capital:f}",
        "Manifest": totals.manifest,
    }


# --------------------------------------------------------------------------------------------
# The journal receipt


DELIVERY = JournalDelivery(
    journal_id="lst-exempel-J0007",
    sequence=7,
    client_orgnr="2021000001",
    client_name="Länsstyrelsen i Exempellän",
    file_name="lst-exempel-000007.xml",
    size=48213,
    sha256=sha256_hex(b"the journal's bytes"),
    transport="sftp",
    destination="sftp://filer.example.se/inkasso/in",
    delivered=datetime(2026, 11, 25, 16, 31, 2, tzinfo=STOCKHOLM_WINTER),
    attempts=2,
    references=["LST-2026-0501", "LST-2026-0502", "LST-2026-0503"],
    gateway_version="0.1.0",
    ruleset_version="2026.11",
    config_sha256=CONFIG_SHA256,
)


def receipt(delivery: JournalDelivery) -> bytes:
    out = io.BytesIO()
    write_journal_receipt(out, delivery)
    return out.getvalue()


def test_the_journal_receipt_validates_and_names_the_delivery() -> None:
    root = validate(receipt(DELIVERY), JOURNALKVITTENS)

    assert root.tag == f"{{{RECEIPT_NAMESPACE}}}Journalkvittens"
    assert root.get("version") == "1.0"
    assert root.findtext("r:Lopnummer", namespaces=RNS) == "7"
    assert root.findtext("r:Uppdragsgivare/r:Namn", namespaces=RNS) == "Länsstyrelsen i Exempellän"
    assert root.findtext("r:Fil/r:Namn", namespaces=RNS) == "lst-exempel-000007.xml"
    assert root.findtext("r:Fil/r:Storlek", namespaces=RNS) == "48213"
    assert root.findtext("r:Fil/r:Sha256", namespaces=RNS) == DELIVERY.sha256
    assert root.findtext("r:Transport", namespaces=RNS) == "sftp"
    assert root.findtext("r:Levererad", namespaces=RNS) == "2026-11-25T16:31:02+01:00"
    assert root.findtext("r:Forsok", namespaces=RNS) == "2"
    assert [
        element.text for element in root.iterfind("r:Arenden/r:ArendeReferens", RNS)
    ] == DELIVERY.references
    assert receipt(DELIVERY) == receipt(DELIVERY)


def test_a_journal_receipt_without_client_name_validates_and_bad_deliveries_are_refused() -> None:
    root = validate(
        receipt(dataclasses.replace(DELIVERY, client_name="", transport="folder", attempts=1)),
        JOURNALKVITTENS,
    )
    assert root.find("r:Uppdragsgivare/r:Namn", RNS) is None
    refused: list[dict[str, object]] = [
        {"references": []},
        {"transport": "ftp"},
        {"attempts": 0},
        {"sequence": 0},
    ]
    for bad in refused:
        with pytest.raises(ValueError):
            receipt(dataclasses.replace(DELIVERY, **bad))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# From a case file to the journal: normalisation (gateway.domain.journal.journal_case)


def accepted_journal_cases(path: Path) -> list[JournalCase]:
    source_sha256 = sha256_hex(path.read_bytes())
    collected: list[JournalCase] = []

    def collect(case: Case, outcome: CaseOutcome) -> None:
        assert outcome.status is CaseStatus.ACCEPTED, (outcome.reference, outcome.findings)
        collected.append(journal_case(case, today=TODAY, source_sha256=source_sha256))

    validate_file(path, ValidationSettings(today=TODAY), on_case=collect)
    return collected


def test_the_example_file_cases_are_normalised_for_the_journal() -> None:
    cases = accepted_journal_cases(EXAMPLE)
    source = sha256_hex(EXAMPLE.read_bytes())

    assert [case.reference for case in cases] == ["LST-2026-0412", "LST-2026-0419", "LST-2026-0425"]
    assert cases[0].debtors[0] == JournalDebtor(
        kind="Privat",
        identity="850315-9819",
        name="Maria Exempelsson",  # Tilltalsnamn, not all Fornamn
        street_lines=("Storgatan 1",),
        care_of=None,
        postal_code="11122",
        town="Stockholm",
        country="SE",
        phone="070-123 45 67",
        email="maria.exempelsson@example.se",
        protected=False,
    )
    assert cases[1].debtors[0].identity == "559000-1235"
    assert cases[1].debtors[0].name == "Exempelbyggarna i Norr AB"
    assert cases[1].claims[0].remaining == "10000.00"
    assert cases[1].claims[0].interest_from == "2026-08-01"
    assert cases[2] == JournalCase(
        reference="LST-2026-0425",
        customer_number=None,
        debtors=(
            JournalDebtor(
                kind="Privat",
                identity="700163-9835",  # a samordningsnummer, given with 12 digits
                name="Nils Exempelberg m.u.f. Nisses Plåt och Svets",
                street_lines=("Verkstadsgatan 3",),
                care_of=None,
                postal_code="41301",
                town="Göteborg",
                country="SE",
                phone=None,
                email=None,
                protected=False,
            ),
        ),
        claims=(
            JournalClaim(
                invoice_number=None,
                registry_number="501-4711-2026",
                basis="Återkrav av felaktigt utbetalt stöd enligt beslut 2026-06-15",
                invoice_date="2026-06-15",
                due_date="2026-07-15",
                capital="18250.50",
                remaining=None,
                interest_kind=None,
                interest_percent=None,
                interest_from=None,
                decision_date="2026-06-15",
                final_date="2026-07-07",
            ),
        ),
        attachments=(),
        source_sha256=source,
    )

    document, totals = written(cases)
    validate(document, ARENDEJOURNAL)
    assert totals.capital == Decimal("37850.50")
    assert totals.claim_count == 4
    assert read_journal(io.BytesIO(document))[1] == cases


def test_centenarians_get_a_plus_and_postal_codes_lose_their_spaces(tmp_path: Path) -> None:
    turns_100_this_year = date(1926, 12, 20)  # still 99 on TODAY, but 100 in the year: "+"
    turns_100_next_year = date(1927, 1, 5)
    path = broken_copy(
        tmp_path,
        {
            "<Identitet>850315-9819</Identitet>": f"<Identitet>{twelve_digits(turns_100_this_year, 983)}</Identitet>",
            "<Tilltalsnamn>Maria</Tilltalsnamn>": "",
            "<Postnummer>11122</Postnummer>": "<Postnummer>111 22</Postnummer>",
            "<Identitet>197001639835</Identitet>": f"<Identitet>{twelve_digits(turns_100_next_year, 994)}</Identitet>",
            "<Postnummer>41301</Postnummer>": "<Postnummer> 413 01 </Postnummer>",
        },
    )
    cases = accepted_journal_cases(path)

    first, third = cases[0].debtors[0], cases[2].debtors[0]
    assert first.identity == person_identity(turns_100_this_year, 983)
    assert first.identity[6] == "+"
    assert first.name == "Anna Maria Exempelsson"  # no Tilltalsnamn: all Fornamn
    assert first.postal_code == "11122"
    assert third.identity == person_identity(turns_100_next_year, 994)
    assert third.identity[6] == "-"
    assert third.postal_code == "41301"
    validate(written(cases)[0], ARENDEJOURNAL)


def test_a_small_agreed_interest_rate_is_written_as_a_plain_decimal(tmp_path: Path) -> None:
    # journal_case() renders procent with str(Decimal): 0.0000001 became "1E-7", which is not an
    # xs:decimal, so the journal would not validate.
    path = broken_copy(
        tmp_path,
        {'<Ranta typ="rantelagen" franDatum="2026-08-01"/>': '<Ranta typ="avtalad" procent="0.0000001"/>'},
    )
    cases = accepted_journal_cases(path)
    percent = cases[1].claims[0].interest_percent
    assert percent is not None
    assert Decimal(percent) == Decimal("0.0000001")
    assert "E" not in percent.upper()
    validate(written(cases)[0], ARENDEJOURNAL)
