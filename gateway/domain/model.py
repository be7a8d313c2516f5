"""The case model: what one case file says, in English names, with where each value stood.

Field names map one-to-one onto the case file's Swedish elements (the README has the table).
Every object carries its path (``/Arendefil/Arende[3]/Motpart[1]``; in a JSON case file a JSON
pointer, ``/Arende/2/Motpart/0``; in a CSV file the row, ``/rad/12``) and line so that a rule can
point at the exact place of a finding; ``lines`` holds the line of each child field by its Swedish
element name. Values the schema already rejected arrive as ``None`` so rules can skip them and
still report everything else at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from gateway.domain.identity import IdentityResult


@dataclass(slots=True)
class Located:
    path: str
    line: int | None
    lines: dict[str, int | None] = field(default_factory=dict)
    #: Where a child field stood when that is not ``path/element``: a case read from CSV has its
    #: fields in named columns of numbered rows (``/rad/12/Belopp``). None for XML and JSON.
    paths: dict[str, str] | None = None

    def line_of(self, element: str) -> int | None:
        return self.lines.get(element, self.line)

    def path_of(self, element: str) -> str:
        paths = self.paths
        if paths is not None and element in paths:
            return paths[element]
        return f"{self.path}/{element}"


@dataclass(slots=True)
class Amount:
    value: Decimal | None
    currency: str  # the valuta attribute, default SEK


@dataclass(slots=True)
class Interest(Located):
    kind: str = ""  # rantelagen | avtalad
    percent: Decimal | None = None
    from_date: date | None = None


@dataclass(slots=True)
class Decision(Located):
    decision_date: date | None = None
    final_date: date | None = None


@dataclass(slots=True)
class Claim(Located):
    """Fordran: one claim of a case."""

    invoice_number: str | None = None  # Fakturanummer
    registry_number: str | None = None  # Diarienummer
    basis: str | None = None  # FordranAvser
    invoice_date: date | None = None  # Fakturadatum
    due_date: date | None = None  # Forfallodatum
    capital: Amount | None = None  # Kapitalbelopp
    remaining: Amount | None = None  # KvarvarandeBelopp
    interest: Interest | None = None  # Ranta
    decision: Decision | None = None  # Beslut
    debt_group: str | None = None  # Skuldgrupp: must be blank

    @property
    def reference(self) -> str | None:
        """The claim's number for duplicate checks: Fakturanummer, else Diarienummer (R08)."""
        return self.invoice_number or self.registry_number or None


@dataclass(slots=True)
class Address(Located):
    street_lines: list[str] = field(default_factory=list)  # Utdelningsadress{0,2}
    care_of: str | None = None  # CoAdress
    postal_code: str | None = None  # Postnummer
    town: str | None = None  # Postort
    country: str = "SE"  # Land


@dataclass(slots=True)
class Person(Located):
    given_names: str | None = None  # Fornamn
    preferred_name: str | None = None  # Tilltalsnamn
    surname: str | None = None  # Efternamn
    firm: str | None = None  # Firma: a sole trader's firm name


@dataclass(slots=True)
class Debtor(Located):
    """Motpart: one debtor; several in a case are jointly and severally liable."""

    kind: str = ""  # Typ: Privat | Foretag
    identity: str = ""  # Identitet as written
    person: Person | None = None
    company_name: str | None = None  # Foretag/Firma; None when the Foretag block is absent
    has_company_block: bool = False
    address: Address | None = None
    phone: str | None = None
    email: str | None = None
    protected: bool = False  # SkyddadePersonuppgifter
    #: The identity as parsed, once, by the first rule that needs it (several M-rules do).
    identity_result: IdentityResult | None = None
    placeholder: bool | None = None


@dataclass(slots=True)
class Attachment(Located):
    """Bilaga: a file named by the case, to be found in the package."""

    filename: str = ""
    sha256: str = ""
    mimetype: str | None = None


@dataclass(slots=True)
class Case(Located):
    """Arende: one case as the ERP exported it."""

    index: int = 0  # 1-based position in the file
    reference: str = ""  # ArendeReferens
    customer_number: str | None = None  # Kundnummer
    claim_type: str | None = None  # Fordranstyp: must be blank
    costs: str | None = None  # Kostnadsuppgifter content: must be empty; None when absent
    debtors: list[Debtor] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    content_sha256: str = ""  # of the canonical case bytes; set when history checks need it

    @property
    def capital_total(self) -> Decimal:
        return sum(
            (claim.capital.value for claim in self.claims if claim.capital and claim.capital.value),
            Decimal(0),
        )


@dataclass(slots=True)
class FileHeader(Located):
    """Filhuvud and Uppdragsgivare: who sent the file."""

    file_id: str | None = None  # FilId
    sequence: int | None = None  # Lopnummer
    created: str | None = None  # Skapad
    sender_system: str | None = None  # Avsandarsystem
    client_orgnr: str | None = None  # Uppdragsgivare/Organisationsnummer
    client_name: str | None = None  # Uppdragsgivare/Namn


@dataclass(slots=True)
class FileSummary(Located):
    """Filsummering: the sender's control totals."""

    case_count: int | None = None
    claim_count: int | None = None
    capital_sum: Decimal | None = None


@dataclass(slots=True)
class FileTotals:
    """What the file actually holds, counted while streaming, to check Filsummering (F06)."""

    case_count: int = 0
    claim_count: int = 0
    capital_sum: Decimal = Decimal(0)
