"""M codes: the debtor (motpart); see rules.md section M and the guide's second step."""

from __future__ import annotations

import re
from datetime import date

from gateway.domain.findings import Finding
from gateway.domain.identity import (
    IdentityKind,
    IdentityProblem,
    IdentityResult,
    is_placeholder,
    mask_identity,
    parse_identity,
)
from gateway.domain.model import Case, Debtor
from gateway.domain.rules.case_rules import FileState, is_blank
from gateway.domain.rules.registry import Rule, RuleContext, Scope, describe, rule

PRIVATE = "Privat"
COMPANY = "Foretag"
ADULT_AGE = 18

#: Legal-form words by the organisationsnummer's group digit (M08), lower case.
LEGAL_FORMS_BY_GROUP: dict[int, tuple[str, ...]] = {
    5: ("ab", "aktiebolag", "aktiebolaget", "(publ)"),
    7: (
        "ek. för.",
        "ek.för.",
        "ekonomisk förening",
        "ekonomiska föreningen",
        "brf",
        "bostadsrättsförening",
        "bostadsrättsföreningen",
    ),
    8: ("ideell förening", "ideella föreningen", "stiftelse", "stiftelsen"),
    9: ("hb", "kb", "handelsbolag", "handelsbolaget", "kommanditbolag", "kommanditbolaget"),
}
# Registered names use both the indefinite and the definite form ("Bostadsrättsföreningen X").
_LEGAL_FORM_WORD = re.compile(
    r"(?<![\wåäö])(ab|hb|kb|aktiebolag(?:et)?|handelsbolag(?:et)?|kommanditbolag(?:et)?|ek\.\s?för\.|"
    r"ekonomisk förening|ekonomiska föreningen|brf|bostadsrättsförening(?:en)?|ideell förening|"
    r"ideella föreningen|stiftelse(?:n)?|\(publ\))(?![\wåäö])",
    re.IGNORECASE,
)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,22}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def _identity(debtor: Debtor, today: date) -> IdentityResult:
    # Several M-rules look at the same identity: parse it once per debtor.
    result = debtor.identity_result
    if result is None:
        result = debtor.identity_result = parse_identity(debtor.identity, today=today)
    return result


def _placeholder(debtor: Debtor) -> bool:
    flag = debtor.placeholder
    if flag is None:
        flag = debtor.placeholder = is_placeholder(debtor.identity)
    return flag


def _person_wanted(debtor: Debtor) -> bool:
    return debtor.kind == PRIVATE


@rule(
    "M01",
    "E",
    Scope.CASE,
    sv="Typ och identitet stämmer: Privat har person- eller samordningsnummer och Person; Foretag har "
    "organisationsnummer och Foretag (enskild näringsidkare är Privat med Person/Firma)",
    en="Type and identity agree: Privat has a personnummer or samordningsnummer and a Person block; "
    "Foretag has an organisationsnummer and a Foretag block (a sole trader is Privat with Person/Firma)",
)
def type_matches_identity(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.kind not in (PRIVATE, COMPANY) or _placeholder(debtor):
            continue
        looks_like = _identity(debtor, ctx.today).looks_like
        if debtor.kind == PRIVATE:
            if debtor.has_company_block:
                found.append(
                    r.finding(
                        debtor,
                        "Foretag",
                        "Motpart av typ Privat ska ha ett Person-block, inte Foretag. En enskild "
                        "näringsidkare anges som Privat med firman i Person/Firma.",
                        "A debtor of type Privat needs a Person block, not Foretag. A sole trader is Privat "
                        "with the firm name in Person/Firma.",
                    )
                )
            if looks_like is IdentityKind.ORGANISATION_NUMBER:
                found.append(
                    r.finding(
                        debtor,
                        "Identitet",
                        f"Motpart av typ Privat har ett organisationsnummer ({mask_identity(debtor.identity)}). "
                        "Ange personnummer eller samordningsnummer, eller ändra Typ till Foretag.",
                        f"A debtor of type Privat has an organisation number ({mask_identity(debtor.identity)}). Give a "
                        "personnummer or samordningsnummer, or change Typ to Foretag.",
                    )
                )
        else:
            if debtor.person is not None:
                found.append(
                    r.finding(
                        debtor,
                        "Person",
                        "Motpart av typ Foretag ska ha ett Foretag-block med firmanamnet, inte Person.",
                        "A debtor of type Foretag needs a Foretag block with the firm name, not Person.",
                    )
                )
            if looks_like in (IdentityKind.PERSONAL_NUMBER, IdentityKind.COORDINATION_NUMBER):
                masked = mask_identity(debtor.identity)
                found.append(
                    r.finding(
                        debtor,
                        "Identitet",
                        f"Motpart av typ Foretag har ett personnummer ({masked}). En enskild "
                        "näringsidkare anges som Typ Privat med Person och Firma.",
                        f"A debtor of type Foretag has a personal identity number ({masked}). A sole "
                        "trader is Typ Privat with Person and Firma.",
                    )
                )
    return found


_PERSON_PROBLEMS = {
    IdentityProblem.FORMAT: (
        "har fel format: ange ÅÅMMDD-NNNN eller ÅÅÅÅMMDDNNNN",
        "has the wrong format: give YYMMDD-NNNN or YYYYMMDDNNNN",
    ),
    IdentityProblem.DATE: (
        "innehåller inget giltigt födelsedatum",
        "does not hold a valid date of birth",
    ),
    IdentityProblem.CHECK_DIGIT: (
        "har fel kontrollsiffra; kontrollera att numret är rätt avskrivet",
        "has a wrong check digit; check that the number was copied correctly",
    ),
    IdentityProblem.PLUS_UNDER_100: (
        "har skiljetecknet + som bara används för personer som fyllt 100 år; använd -",
        "uses the separator + which is only for people aged 100 or more; use -",
    ),
}

_ORGNR_PROBLEMS = {
    IdentityProblem.FORMAT: (
        "har fel format: ange NNNNNN-NNNN",
        "has the wrong format: give NNNNNN-NNNN",
    ),
    IdentityProblem.CHECK_DIGIT: (
        "har fel kontrollsiffra; kontrollera att numret är rätt avskrivet",
        "has a wrong check digit; check that the number was copied correctly",
    ),
    IdentityProblem.ORGNR_MIDDLE: (
        "är inget organisationsnummer: siffra 3-4 ska vara minst 20",
        "is not an organisation number: digits 3-4 must be at least 20",
    ),
    IdentityProblem.ORGNR_PREFIX: (
        "har 12 siffror men inte prefixet 16",
        "has 12 digits but not the prefix 16",
    ),
}


@rule(
    "M02",
    "E",
    Scope.CASE,
    sv="Personnummer eller samordningsnummer giltigt: riktigt datum (samordningsnummer: dag + 60, dag 00 "
    "tillåten), kontrollsiffra, + bara från 100 år",
    en="Personnummer or samordningsnummer valid: a real date (samordningsnummer: day + 60; day 00 "
    "allowed), Luhn check digit, + only for 100 years or more",
)
def personal_number_valid(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if not _person_wanted(debtor) or _placeholder(debtor):
            continue
        result = _identity(debtor, ctx.today)
        if result.problem is None or result.looks_like is IdentityKind.ORGANISATION_NUMBER:
            continue  # valid, or an organisation number on a Privat debtor: that is M01
        sv, en = _PERSON_PROBLEMS.get(result.problem, _PERSON_PROBLEMS[IdentityProblem.FORMAT])
        masked = mask_identity(debtor.identity)
        found.append(
            r.finding(
                debtor,
                "Identitet",
                f"Personnumret {masked} {sv}.",
                f"The personal identity number {masked} {en}.",
            )
        )
    return found


@rule(
    "M03",
    "E",
    Scope.CASE,
    sv="Organisationsnummer giltigt: 10 siffror (eller 12 med prefix 16), siffra 3-4 minst 20, kontrollsiffra",
    en="Organisationsnummer valid: 10 digits (or 12 with prefix 16), digits 3-4 at least 20, Luhn check digit",
)
def organisation_number_valid(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.kind != COMPANY or _placeholder(debtor):
            continue
        result = _identity(debtor, ctx.today)
        if result.problem is None or result.looks_like in (
            IdentityKind.PERSONAL_NUMBER,
            IdentityKind.COORDINATION_NUMBER,
        ):
            continue  # valid, or a personal number on a company: that is M01
        sv, en = _ORGNR_PROBLEMS.get(result.problem, _ORGNR_PROBLEMS[IdentityProblem.FORMAT])
        shown = mask_identity(debtor.identity)  # shows an organisation number whole, masks the rest
        found.append(
            r.finding(
                debtor,
                "Identitet",
                f"Organisationsnumret {shown} {sv}.",
                f"The organisation number {shown} {en}.",
            )
        )
    return found


@rule(
    "M04",
    "E",
    Scope.CASE,
    sv="Identiteten är ingen platshållare (en och samma siffra, 000000-0000, 999999-9999 och liknande)",
    en="The identity is not a placeholder (all one digit, 000000-0000, 999999-9999 and the like)",
)
def identity_not_placeholder(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if _placeholder(debtor):
            found.append(
                r.finding(
                    debtor,
                    "Identitet",
                    f"Identiteten {mask_identity(debtor.identity)} är en platshållare, inget riktigt "
                    "nummer. Ange motpartens verkliga person- eller organisationsnummer.",
                    f"The identity {mask_identity(debtor.identity)} is a placeholder, not a real number. "
                    "Give the debtor's real personal or organisation number.",
                )
            )
    return found


@rule(
    "M05",
    "E",
    Scope.CASE,
    sv="Fysisk person: Efternamn, och Tilltalsnamn eller samtliga Fornamn (lathunden)",
    en="Natural person: Efternamn, and Tilltalsnamn or all Fornamn (the guide)",
)
def person_named(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        person = debtor.person
        if debtor.kind != PRIVATE or person is None:
            continue
        if is_blank(person.surname):
            found.append(
                r.finding(
                    person,
                    "Efternamn",
                    "Efternamn saknas för motparten.",
                    "The debtor's surname (Efternamn) is missing.",
                )
            )
        if is_blank(person.preferred_name) and is_blank(person.given_names):
            found.append(
                r.finding(
                    person,
                    "Fornamn",
                    "Ange motpartens tilltalsnamn, eller samtliga förnamn om tilltalsnamnet inte är känt.",
                    "Give the debtor's preferred name (Tilltalsnamn), or all given names (Fornamn) if it "
                    "is not known.",
                )
            )
    return found


@rule(
    "M06",
    "V",
    Scope.CASE,
    sv='Enskild näringsidkare: Firma skrivs efter efternamnet som "m.u.f. <Firma>"; varnar när Firma '
    'har en egen bolagsform eller redan "m.u.f."',
    en='Sole trader: Firma goes after the surname as "m.u.f. <Firma>"; warns when Firma carries a '
    'legal form of its own or already has "m.u.f."',
)
def sole_trader_firm(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        person = debtor.person
        if debtor.kind != PRIVATE or person is None or is_blank(person.firm):
            continue
        firm = (person.firm or "").strip()
        if firm.lower().startswith("m.u.f"):
            found.append(
                r.finding(
                    person,
                    "Firma",
                    f'Firma {describe(firm)} börjar redan med "m.u.f."; gatewayen lägger till det själv. '
                    "Ange bara firmanamnet.",
                    f'Firma {describe(firm)} already starts with "m.u.f."; the gateway adds it itself. '
                    "Give the firm name only.",
                )
            )
        elif _LEGAL_FORM_WORD.search(firm):
            found.append(
                r.finding(
                    person,
                    "Firma",
                    f"Firma {describe(firm)} har en egen bolagsform. Ett bolag är en juridisk person och "
                    "anges som Typ Foretag med sitt organisationsnummer.",
                    f"Firma {describe(firm)} carries a legal form of its own. A company is a legal person "
                    "and is given as Typ Foretag with its organisation number.",
                )
            )
    return found


@rule(
    "M07",
    "E",
    Scope.CASE,
    sv="Juridisk person: Foretag/Firma finns och är inte tom (firmanamn enligt bolagsregistret)",
    en="Legal person: Foretag/Firma present and not empty (firm name as registered)",
)
def company_named(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.kind == COMPANY and debtor.has_company_block and is_blank(debtor.company_name):
            found.append(
                r.finding(
                    debtor,
                    "Foretag/Firma",
                    "Firmanamn saknas. Ange firmanamnet enligt bolagsregistret, med AB, HB, KB eller liknande.",
                    "The firm name is missing. Give the name as registered, including AB, HB, KB or similar.",
                )
            )
    return found


@rule(
    "M08",
    "V",
    Scope.CASE,
    sv="Firmanamnet har ett bolagsformsord som stämmer med organisationsnumrets gruppsiffra",
    en="The firm name has a legal-form word consistent with the organisationsnummer's group digit",
)
def legal_form_matches(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.kind != COMPANY or is_blank(debtor.company_name):
            continue
        identity = _identity(debtor, ctx.today).identity
        group = identity.group_digit if identity is not None else None
        expected = LEGAL_FORMS_BY_GROUP.get(group) if group is not None else None
        if expected is None:
            continue
        name = (debtor.company_name or "").lower()
        words = [match.group(1).lower().replace(" ", "") for match in _LEGAL_FORM_WORD.finditer(name)]
        if any(word in (form.replace(" ", "") for form in expected) for word in words):
            continue
        forms = ", ".join(expected)
        found.append(
            r.finding(
                debtor,
                "Foretag/Firma",
                f"Firmanamnet {describe(debtor.company_name)} saknar en bolagsform som passar "
                f"organisationsnumrets grupp {group} ({forms}). Kontrollera namnet mot bolagsregistret.",
                f"The firm name {describe(debtor.company_name)} lacks a legal form matching the "
                f"organisation number's group {group} ({forms}). Check the name against the register.",
            )
        )
    return found


@rule(
    "M09",
    "E",
    Scope.CASE,
    sv="Postnummer (Land SE): fem siffror utan mellanslag, den första 1-9",
    en="Postnummer (Land SE): five digits after removing spaces, the first 1-9",
)
def postal_code_valid(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        address = debtor.address
        if address is None or address.country != "SE" or address.postal_code is None:
            continue
        digits = address.postal_code.replace(" ", "")
        if not (len(digits) == 5 and digits.isascii() and digits.isdigit() and digits[0] != "0"):
            found.append(
                r.finding(
                    address,
                    "Postnummer",
                    f"Postnumret {describe(address.postal_code)} är inte ett svenskt postnummer: fem "
                    "siffror, den första 1-9.",
                    f"The postal code {describe(address.postal_code)} is not a Swedish postal code: five "
                    "digits, the first 1-9.",
                )
            )
    return found


@rule(
    "M10",
    "V",
    Scope.CASE,
    sv="Postnumret hade mellanslag; normaliserat till fem siffror (lathunden: utan något mellanslag)",
    en="The postal code had spaces; normalised to five digits (the guide: without any space)",
)
def postal_code_spaces(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        address = debtor.address
        if address is None or address.country != "SE" or address.postal_code is None:
            continue
        code = address.postal_code
        digits = code.replace(" ", "")
        if " " in code and len(digits) == 5 and digits.isascii() and digits.isdigit():
            found.append(
                r.finding(
                    address,
                    "Postnummer",
                    f"Postnumret {describe(code)} skrivs utan mellanslag; det skickas som {digits}.",
                    f"The postal code {describe(code)} should be written without spaces; it is sent as {digits}.",
                )
            )
    return found


@rule(
    "M11",
    "V",
    Scope.CASE,
    sv="Postorten stämmer inte med postnummerkatalogen (bara när en katalog är konfigurerad)",
    en="Postort disagrees with the postal-code directory (only when one is configured)",
)
def town_matches_directory(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    directory = ctx.postal_directory
    if not directory:
        return found
    for debtor in case.debtors:
        address = debtor.address
        if address is None or address.country != "SE" or not address.town or not address.postal_code:
            continue
        if debtor.protected:
            continue  # M16: nothing about a protected person's address goes into a receipt
        known = directory.get(address.postal_code.replace(" ", ""))
        if known is not None and known.casefold() != address.town.strip().casefold():
            found.append(
                r.finding(
                    address,
                    "Postort",
                    f"Postort {describe(address.town)} stämmer inte med postnumret, som hör till {known}. "
                    "Utan Postort fyller Kammarkollegiet i orten från postnumret.",
                    f"Postort {describe(address.town)} does not match the postal code, which belongs to "
                    f"{known}. Without Postort, Kammarkollegiet fills in the town from the postal code.",
                )
            )
    return found


@rule(
    "M12",
    "E",
    Scope.CASE,
    sv="Adress med minst en Utdelningsadress, utom när SkyddadePersonuppgifter är sant",
    en="Address with at least one Utdelningsadress, unless SkyddadePersonuppgifter is true",
)
def address_present(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.protected:
            continue
        if debtor.address is None or not any(line.strip() for line in debtor.address.street_lines):
            found.append(
                r.finding(
                    debtor,
                    "Adress",
                    "Motparten saknar adress: ange minst en Utdelningsadress och Postnummer.",
                    "The debtor has no address: give at least one Utdelningsadress and a Postnummer.",
                )
            )
    return found


@rule(
    "M13",
    "V",
    Scope.CASE,
    sv="Telefon och Epost, när de anges, har rätt form",
    en="Telefon and Epost, when given, are well formed",
)
def contact_details_valid(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.protected:
            continue  # M16: a protected person's contact details are not repeated anywhere
        if debtor.phone and not _PHONE.match(debtor.phone.strip()):
            found.append(
                r.finding(
                    debtor,
                    "Telefon",
                    f"Telefonnumret {describe(debtor.phone)} har fel form: bara siffror, mellanslag, "
                    "bindestreck och ett inledande +.",
                    f"The phone number {describe(debtor.phone)} is malformed: digits, spaces, hyphens "
                    "and a leading + only.",
                )
            )
        if debtor.email and not _EMAIL.match(debtor.email.strip()):
            found.append(
                r.finding(
                    debtor,
                    "Epost",
                    f"E-postadressen {describe(debtor.email)} har fel form.",
                    f"The e-mail address {describe(debtor.email)} is malformed.",
                )
            )
    return found


@rule(
    "M14",
    "E",
    Scope.CASE,
    sv="Samma identitet två gånger i ett ärende",
    en="The same identity twice in one case",
)
def identity_once(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    if len(case.debtors) < 2:
        return found
    seen: dict[str, int] = {}
    for position, debtor in enumerate(case.debtors, start=1):
        identity = _identity(debtor, ctx.today).identity
        key = identity.normalized if identity else "".join(c for c in debtor.identity if c.isdigit())
        if not key:
            continue
        if key in seen:
            found.append(
                r.finding(
                    debtor,
                    "Identitet",
                    f"Motpart {position} har samma identitet ({mask_identity(debtor.identity)}) som motpart "
                    f"{seen[key]}. Ange varje gäldenär en gång.",
                    f"Debtor {position} has the same identity ({mask_identity(debtor.identity)}) as debtor "
                    f"{seen[key]}. Give each debtor once.",
                )
            )
        else:
            seen[key] = position
    return found


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@rule(
    "M15",
    "V",
    Scope.CASE,
    sv="Privat gäldenär under 18 år på fakturadatum: kontrollera den rättsliga grunden",
    en="Private debtor under 18 on Fakturadatum: check the legal basis",
)
def debtor_minor(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    invoice_dates = [claim.invoice_date for claim in case.claims if claim.invoice_date]
    if not invoice_dates:
        return found
    earliest = min(invoice_dates)
    for debtor in case.debtors:
        if debtor.kind != PRIVATE:
            continue
        identity = _identity(debtor, ctx.today).identity
        if identity is None or identity.birth_date is None:
            continue
        if _age_on(identity.birth_date, earliest) < ADULT_AGE:
            found.append(
                r.finding(
                    debtor,
                    "Identitet",
                    f"Motparten ({identity.masked()}) var under 18 år på fakturadatum {earliest}. "
                    "Indrivning mot den som var underårig kräver stöd i lag: kontrollera grunden.",
                    f"The debtor ({identity.masked()}) was under 18 on the invoice date {earliest}. "
                    "Collecting from someone who was a minor needs a legal basis: check it.",
                )
            )
    return found


@rule(
    "M16",
    "V",
    Scope.CASE,
    sv="Skyddade personuppgifter: ärendet hålls för manuell granskning och ingen adress eller telefon "
    "visas i loggar eller rapporter",
    en="Protected identity: the case is held for manual review and no address or phone of it appears "
    "in logs or reports",
)
def protected_identity(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for debtor in case.debtors:
        if debtor.protected:
            found.append(
                r.finding(
                    debtor,
                    "SkyddadePersonuppgifter",
                    "Motparten har skyddade personuppgifter. Ärendet hålls för manuell granskning innan "
                    "journalen skickas, och adressen visas inte i kvittenser, loggar eller rapporter.",
                    "The debtor has a protected identity. The case is held for manual review before the "
                    "journal is sent, and the address is kept out of receipts, logs and reports.",
                )
            )
    return found
