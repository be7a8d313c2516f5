"""A codes: the case (ärende) as a whole; see rules.md section A and the guide's first step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import looks_like_identity, mask_identity
from gateway.domain.model import Case
from gateway.domain.rules.registry import Rule, RuleContext, Scope, describe, rule

#: Content types accepted for attachments (contract section 1), detected from the bytes.
ALLOWED_ATTACHMENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/tiff"})
_SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f:*?\"<>|]{1,255}$")


@dataclass(slots=True)
class FileState:
    """What the cases of one file have shown so far, for checks across cases (A04, R08)."""

    client_orgnr: str | None
    # A plain dict, or one that spills to disk (the service layer's, for files of a million cases).
    references: dict[str, int] = field(default_factory=dict)  # ArendeReferens -> case index
    claim_references: dict[str, str] = field(default_factory=dict)  # claim number -> case ref


def is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


@rule(
    "A01",
    "E",
    Scope.CASE,
    sv="Fordranstyp saknas eller är tom (lathunden: lämnas blankt)",
    en="Fordranstyp absent or empty (the guide: leave blank)",
)
def claim_type_blank(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    if not is_blank(case.claim_type):
        found.append(
            r.finding(
                case,
                "Fordranstyp",
                f"Fordranstyp ska lämnas blankt men innehåller {describe(case.claim_type)}. Ta bort värdet i exporten.",
                f"Fordranstyp must be left blank but holds {describe(case.claim_type)}. Remove the value from the export.",
            )
        )
    return found


@rule(
    "A02",
    "E",
    Scope.CASE,
    sv="Kostnadsuppgifter saknas eller är tomma; Kammarkollegiet lägger själv på kostnader",
    en="Kostnadsuppgifter absent or empty; Kammarkollegiet adds costs itself",
)
def costs_empty(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    if not is_blank(case.costs):
        found.append(
            r.finding(
                case,
                "Kostnadsuppgifter",
                "Kostnadsuppgifter ska lämnas tomma: Kammarkollegiet lägger själv på påminnelse- och "
                "inkassokostnader. Skicka bara kapitalbelopp och ränta.",
                "Kostnadsuppgifter must be left empty: Kammarkollegiet adds reminder and collection costs "
                "itself. Send only the capital amount and interest.",
            )
        )
    return found


@rule(
    "A03",
    "E",
    Scope.CASE,
    sv="Kundnummer är inte ett person-, samordnings- eller organisationsnummer",
    en="Kundnummer is not a personnummer, samordningsnummer or organisationsnummer",
)
def customer_number_not_identity(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    if case.customer_number and looks_like_identity(case.customer_number, today=ctx.today):
        masked = mask_identity(case.customer_number)
        found.append(
            r.finding(
                case,
                "Kundnummer",
                f"Kundnummer {masked} är ett person- eller organisationsnummer. Ange ert eget kundnummer "
                "för motparten; identiteten hör hemma i Motpart/Identitet.",
                f"Kundnummer {masked} is a personal or organisation number. Give your own customer id "
                "for the debtor; the identity belongs in Motpart/Identitet.",
            )
        )
    return found


@rule(
    "A04",
    "E",
    Scope.CASE,
    sv="ArendeReferens upprepas inte i filen; redan godkänd tidigare med samma innehåll ger Dubblett",
    en="ArendeReferens not repeated in the file; already accepted earlier with the same content is a Dubblett",
)
def reference_unique(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    first = state.references.get(case.reference)
    if first is not None and first != case.index:
        found.append(
            r.finding(
                case,
                "ArendeReferens",
                f"ArendeReferens {describe(case.reference)} förekommer redan i ärende {first} i samma fil. "
                "Varje ärende behöver en egen referens.",
                f"ArendeReferens {describe(case.reference)} already appears in case {first} of this file. "
                "Every case needs a reference of its own.",
            )
        )
        return found
    if state.client_orgnr and case.content_sha256:
        earlier = ctx.history.accepted_case_fingerprint(state.client_orgnr, case.reference)
        if earlier == case.content_sha256:
            found.append(
                r.finding(
                    case,
                    "ArendeReferens",
                    f"Ärendet {describe(case.reference)} är redan registrerat med samma innehåll. Det "
                    "registreras inte igen.",
                    f"Case {describe(case.reference)} is already registered with the same content. It is "
                    "not registered again.",
                )
            )
    return found


@rule(
    "A05",
    "E",
    Scope.CASE,
    sv="ArendeReferens redan godkänd tidigare för uppdragsgivaren med annat innehåll: en konflikt",
    en="ArendeReferens already accepted earlier for this client with different content: a conflict",
)
def reference_conflict(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    if not (state.client_orgnr and case.content_sha256):
        return found
    earlier = ctx.history.accepted_case_fingerprint(state.client_orgnr, case.reference)
    if earlier is not None and earlier != case.content_sha256:
        found.append(
            r.finding(
                case,
                "ArendeReferens",
                f"Ärendet {describe(case.reference)} är redan registrerat med annat innehåll. En ändring "
                "av ett registrerat ärende görs inte via fil: kontakta handläggaren, eller ge ett nytt "
                "ärende en ny referens.",
                f"Case {describe(case.reference)} is already registered with different content. A "
                "registered case is not changed by file: contact the case officer, or give a new case a "
                "new reference.",
            )
        )
    return found


@rule(
    "A06",
    "E",
    Scope.CASE,
    sv="Bilagor: finns i paketet, SHA-256 stämmer, PDF/PNG/JPEG/TIFF, storlek inom gränsen, säkert namn",
    en="Attachments: in the package, SHA-256 matches, PDF/PNG/JPEG/TIFF, size within the limit, safe name",
)
def attachments_present(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for attachment in case.attachments:
        name = attachment.filename
        shown = describe(name)
        if not _SAFE_NAME.match(name) or name in (".", "..") or name.startswith("."):
            found.append(
                r.finding(
                    attachment,
                    "@filnamn",
                    f"Bilagans filnamn {shown} är inte tillåtet: använd ett enkelt filnamn utan sökväg, "
                    "kontrolltecken eller inledande punkt.",
                    f"The attachment name {shown} is not allowed: use a plain file name without a path, "
                    "control characters or a leading dot.",
                )
            )
            continue
        facts = ctx.attachments.get(name) if ctx.attachments is not None else None
        if facts is None:
            where_sv = (
                "zip-paketet" if ctx.attachments is not None else "filen (bilagor skickas i ett zip-paket)"
            )
            where_en = (
                "the zip package"
                if ctx.attachments is not None
                else "the file (attachments travel in a zip package)"
            )
            found.append(
                r.finding(
                    attachment,
                    "@filnamn",
                    f"Bilagan {shown} saknas i {where_sv}.",
                    f"The attachment {shown} is missing from {where_en}.",
                )
            )
            continue
        if facts.sha256 != attachment.sha256.lower():
            found.append(
                r.finding(
                    attachment,
                    "@sha256",
                    f"Bilagan {shown} har inte den SHA-256 som anges: filen i paketet har {facts.sha256}.",
                    f"The attachment {shown} does not have the stated SHA-256: the file in the package has "
                    f"{facts.sha256}.",
                )
            )
        if facts.content_type not in ALLOWED_ATTACHMENT_TYPES:
            found.append(
                r.finding(
                    attachment,
                    "@filnamn",
                    f"Bilagan {shown} är inte en PDF-, PNG-, JPEG- eller TIFF-fil (innehållet avgör, inte namnet).",
                    f"The attachment {shown} is not a PDF, PNG, JPEG or TIFF file (its content decides, not its name).",
                )
            )
        if facts.size > ctx.max_attachment_bytes:
            found.append(
                r.finding(
                    attachment,
                    "@filnamn",
                    f"Bilagan {shown} är {facts.size} byte; högst {ctx.max_attachment_bytes} byte är tillåtet.",
                    f"The attachment {shown} is {facts.size} bytes; at most {ctx.max_attachment_bytes} bytes are allowed.",
                )
            )
    return found


__all__ = ["FileState", "Severity", "is_blank"]
