"""Journal assembly: an accepted case as the e-service wants it, and a journal's control totals.

Pure: a :class:`JournalCase` is made from a validated :class:`~gateway.domain.model.Case` once, when
the case is accepted, stored as canonical JSON, and later written into the journal file exactly as
stored. Its SHA-256 (over that canonical JSON) goes into the journal's manifest, so the manifest
proves which cases a journal holds and in which order.

Normalisation follows the guide: the identity as ÅÅMMDD-NNNN (+ from the year the person turns 100)
or NNNNNN-NNNN; the debtor's name as one line (Tilltalsnamn, else all Fornamn, then Efternamn, then
"m.u.f. <Firma>" for a sole trader); the postal code as five digits without a space.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from gateway.domain.identity import parse_identity
from gateway.domain.model import Case, Claim, Debtor

SOLE_TRADER_PREFIX = "m.u.f."


@dataclass(frozen=True, slots=True)
class JournalDebtor:
    kind: str  # Privat | Foretag
    identity: str  # ÅÅMMDD-NNNN, ÅÅMMDD+NNNN or NNNNNN-NNNN
    name: str  # one line, as the e-service wants it
    street_lines: tuple[str, ...]
    care_of: str | None
    postal_code: str | None  # five digits for Sweden, as written elsewhere
    town: str | None
    country: str
    phone: str | None
    email: str | None
    protected: bool


@dataclass(frozen=True, slots=True)
class JournalClaim:
    invoice_number: str | None
    registry_number: str | None
    basis: str
    invoice_date: str  # ISO dates and decimal strings: exactly what the journal file says
    due_date: str
    capital: str
    remaining: str | None
    interest_kind: str | None
    interest_percent: str | None
    interest_from: str | None
    decision_date: str | None
    final_date: str | None


@dataclass(frozen=True, slots=True)
class JournalCase:
    reference: str
    customer_number: str | None
    debtors: tuple[JournalDebtor, ...]
    claims: tuple[JournalClaim, ...]
    attachments: tuple[str, ...]
    source_sha256: str  # the file the case came in
    #: The attachments' SHA-256, in the same order as ``attachments``; empty for a journal read
    #: back without them.
    attachment_sha256: tuple[str, ...] = ()

    @property
    def capital(self) -> Decimal:
        return sum((Decimal(claim.capital) for claim in self.claims), Decimal(0))

    @property
    def capital_ore(self) -> int:
        """The capital in öre, from the two-decimal strings without Decimal arithmetic."""
        return sum(int(claim.capital.replace(".", "")) for claim in self.claims)

    @property
    def protected(self) -> bool:
        return any(debtor.protected for debtor in self.debtors)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, UTF-8 text."""
        # Built by hand: dataclasses.asdict deep-copies every value and was most of a journal's cost.
        data = {
            "reference": self.reference,
            "customer_number": self.customer_number,
            "debtors": [_fields(debtor) for debtor in self.debtors],
            "claims": [_fields(claim) for claim in self.claims],
            "attachments": list(self.attachments),
            "source_sha256": self.source_sha256,
        }
        if self.attachment_sha256:
            data["attachment_sha256"] = list(self.attachment_sha256)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JournalCase:
        data: dict[str, Any] = json.loads(text)
        return cls(
            reference=data["reference"],
            customer_number=data["customer_number"],
            debtors=tuple(
                JournalDebtor(**{**debtor, "street_lines": tuple(debtor["street_lines"])})
                for debtor in data["debtors"]
            ),
            claims=tuple(JournalClaim(**claim) for claim in data["claims"]),
            attachments=tuple(data["attachments"]),
            source_sha256=data["source_sha256"],
            attachment_sha256=tuple(data.get("attachment_sha256", ())),
        )

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


def _fields(item: JournalDebtor | JournalClaim) -> dict[str, Any]:
    values = {name: getattr(item, name) for name in item.__slots__}
    if isinstance(item, JournalDebtor):
        values["street_lines"] = list(item.street_lines)
    return values


def debtor_name(debtor: Debtor) -> str:
    """The name line: Tilltalsnamn, else all Fornamn; Efternamn; "m.u.f. <Firma>" for a sole trader."""
    if debtor.person is None:
        return (debtor.company_name or "").strip()
    person = debtor.person
    given = (person.preferred_name or "").strip() or (person.given_names or "").strip()
    parts = [given, (person.surname or "").strip()]
    firm = (person.firm or "").strip()
    if firm:
        parts.append(f"{SOLE_TRADER_PREFIX} {firm}")
    return " ".join(part for part in parts if part)


def _journal_debtor(debtor: Debtor, *, today: date) -> JournalDebtor:
    # The rules parsed it already (and kept the result on the debtor); parse only when they did not.
    result = debtor.identity_result or parse_identity(debtor.identity, today=today)
    parsed = result.identity
    identity = parsed.formatted(today=today) if parsed is not None else debtor.identity
    address = debtor.address
    postal_code = None
    if address is not None and address.postal_code is not None:
        postal_code = address.postal_code.strip()
        if address.country == "SE":
            postal_code = postal_code.replace(" ", "")
    return JournalDebtor(
        kind=debtor.kind,
        identity=identity,
        name=debtor_name(debtor),
        street_lines=tuple(line for line in (address.street_lines if address else []) if line),
        care_of=address.care_of or None if address else None,
        postal_code=postal_code,
        town=address.town or None if address else None,
        country=address.country if address else "SE",
        phone=debtor.phone or None,
        email=debtor.email or None,
        protected=debtor.protected,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _journal_claim(claim: Claim) -> JournalClaim:
    interest = claim.interest
    decision = claim.decision
    return JournalClaim(
        invoice_number=claim.invoice_number or None,
        registry_number=claim.registry_number or None,
        basis=(claim.basis or "").strip(),
        invoice_date=str(claim.invoice_date),
        due_date=str(claim.due_date),
        capital=f"{claim.capital.value:.2f}" if claim.capital and claim.capital.value is not None else "0.00",
        remaining=f"{claim.remaining.value:.2f}"
        if claim.remaining and claim.remaining.value is not None
        else None,
        interest_kind=interest.kind if interest else None,
        # format(..., "f"): str() of a small Decimal is "1E-7", which is no xs:decimal.
        interest_percent=format(interest.percent, "f") if interest and interest.percent is not None else None,
        interest_from=_text(interest.from_date) if interest else None,
        decision_date=_text(decision.decision_date) if decision else None,
        final_date=_text(decision.final_date) if decision else None,
    )


def journal_case(case: Case, *, today: date, source_sha256: str) -> JournalCase:
    """The accepted case as it will stand in the journal (call only for accepted cases)."""
    return JournalCase(
        reference=case.reference,
        customer_number=case.customer_number or None,
        debtors=tuple(_journal_debtor(debtor, today=today) for debtor in case.debtors),
        claims=tuple(_journal_claim(claim) for claim in case.claims),
        attachments=tuple(attachment.filename for attachment in case.attachments),
        source_sha256=source_sha256,
        attachment_sha256=tuple(attachment.sha256.lower() for attachment in case.attachments),
    )


def manifest(case_hashes: list[str]) -> str:
    """SHA-256 over the cases' SHA-256s in journal order, one hex digest per line."""
    digest = hashlib.sha256()
    for case_hash in case_hashes:
        digest.update(case_hash.encode("ascii") + b"\n")
    return digest.hexdigest()
