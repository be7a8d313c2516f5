"""R codes: the claim (fordran); see rules.md section R and the guide's third step."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from gateway.domain.findings import Finding, Severity
from gateway.domain.model import Amount, Case, Claim
from gateway.domain.rules.case_rules import FileState, is_blank
from gateway.domain.rules.debtor_rules import PRIVATE
from gateway.domain.rules.registry import Rule, RuleContext, Scope, describe, rule

#: FordranAvser shorter than this is rarely "stated clearly" (the guide's example is 60+ characters).
MIN_BASIS_LENGTH = 15
GENERIC_BASIS_WORDS = frozenset(
    {
        "faktura",
        "avgift",
        "fordran",
        "skuld",
        "krav",
        "belopp",
        "ersättning",
        "diverse",
        "övrigt",
        "återkrav",
        "kostnad",
        "fakturor",
        "avgifter",
        "invoice",
        "fee",
    }
)
CURRENCY = "SEK"
LIMITATION_YEARS = 10  # preskriptionslagen 2 §
CONSUMER_LIMITATION_YEARS = 3  # preskriptionslagen 2 § second paragraph
STATUTORY_INTEREST_POINTS = 8  # räntelagen 6 §: reference rate + 8 percentage points


@lru_cache(maxsize=16)
def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _claim_label(claim: Claim) -> str:
    return claim.reference or claim.path.rsplit("/", 1)[-1]


@rule(
    "R01",
    "E",
    Scope.CASE,
    sv="Fakturanummer eller Diarienummer finns (lathunden: om fakturanummer saknas anges diarienummer)",
    en="Fakturanummer or Diarienummer present (the guide: without an invoice number, give the diarienummer)",
)
def claim_numbered(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        if is_blank(claim.invoice_number) and is_blank(claim.registry_number):
            found.append(
                r.finding(
                    claim,
                    "Fakturanummer",
                    "Fordran saknar både Fakturanummer och Diarienummer. Om fakturanummer inte finns, ange "
                    "ert diarienummer.",
                    "The claim has neither Fakturanummer nor Diarienummer. Without an invoice number, give "
                    "your registry number (Diarienummer).",
                )
            )
    return found


@rule(
    "R02",
    "E/V",
    Scope.CASE,
    sv='FordranAvser inte tom (fel); minst 15 tecken och inte bara ett allmänt ord som "faktura" (varning)',
    en="FordranAvser not empty (error); at least 15 characters and not only a generic word such as "
    '"faktura" (warning)',
)
def basis_stated(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        if claim.basis is None:
            continue  # missing element: the schema reported it (S01)
        basis = claim.basis.strip()
        if not basis:
            found.append(
                r.finding(
                    claim,
                    "FordranAvser",
                    'FordranAvser är tom. Ange tydligt vad fordran avser, t.ex. "avgift för extra offentlig '
                    'kontroll enligt Länsstyrelsens beslut 2026-03-01".',
                    'FordranAvser is empty. State clearly what the claim is for, e.g. "fee for an extra '
                    "official inspection under the County Administrative Board's decision of 2026-03-01\".",
                    severity=Severity.ERROR,
                )
            )
        elif len(basis) < MIN_BASIS_LENGTH or basis.strip(" .:").casefold() in GENERIC_BASIS_WORDS:
            found.append(
                r.finding(
                    claim,
                    "FordranAvser",
                    f"FordranAvser {describe(basis)} är för allmän. Ange grunden tydligt: vad avgiften eller "
                    "fakturan gäller och vilket beslut den bygger på.",
                    f"FordranAvser {describe(basis)} is too general. State the basis clearly: what the fee "
                    "or invoice is for and which decision it rests on.",
                    severity=Severity.WARNING,
                )
            )
    return found


@rule(
    "R03",
    "E",
    Scope.CASE,
    sv="Fakturadatum är inte senare än i dag",
    en="Fakturadatum not after today",
)
def invoice_date_not_future(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        if claim.invoice_date is not None and claim.invoice_date > ctx.today:
            found.append(
                r.finding(
                    claim,
                    "Fakturadatum",
                    f"Fakturadatum {claim.invoice_date} ligger i framtiden (i dag är det {ctx.today}).",
                    f"Fakturadatum {claim.invoice_date} is in the future (today is {ctx.today}).",
                )
            )
    return found


@rule(
    "R04",
    "V",
    Scope.CASE,
    sv="Med Beslut: Fakturadatum är samma dag som Beslutsdatum (lathunden: Fakturadatum: dag för beslutet)",
    en="With Beslut: Fakturadatum equals Beslutsdatum (the guide: Fakturadatum is the day of the decision)",
)
def decision_date_is_invoice_date(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        decision = claim.decision
        if decision is None or decision.decision_date is None or claim.invoice_date is None:
            continue
        if decision.decision_date != claim.invoice_date:
            found.append(
                r.finding(
                    claim,
                    "Fakturadatum",
                    f"Fakturadatum {claim.invoice_date} är inte beslutsdagen {decision.decision_date}. För en "
                    "beslutad avgift anges dagen för beslutet som fakturadatum.",
                    f"Fakturadatum {claim.invoice_date} is not the decision day {decision.decision_date}. For "
                    "a decided fee, the day of the decision is the invoice date.",
                )
            )
    return found


@rule(
    "R05",
    "E",
    Scope.CASE,
    sv="Förfallen: Forfallodatum på eller efter Fakturadatum, och före i dag",
    en="Overdue: Forfallodatum on or after Fakturadatum, and before today",
)
def claim_overdue(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        due = claim.due_date
        if due is None:
            continue
        if claim.invoice_date is not None and due < claim.invoice_date:
            found.append(
                r.finding(
                    claim,
                    "Forfallodatum",
                    f"Forfallodatum {due} ligger före Fakturadatum {claim.invoice_date}.",
                    f"Forfallodatum {due} is before Fakturadatum {claim.invoice_date}.",
                )
            )
        if due >= ctx.today:
            found.append(
                r.finding(
                    claim,
                    "Forfallodatum",
                    f"Fordran har inte förfallit: Forfallodatum är {due}. Bara förfallna fordringar kan "
                    "lämnas för indrivning; skicka den efter förfallodagen och påminnelsen.",
                    f"The claim is not overdue: Forfallodatum is {due}. Only overdue claims can be sent for "
                    "collection; send it after the due date and the reminder.",
                )
            )
    return found


def _has_more_than_two_decimals(value: Decimal) -> bool:
    """Whether a digit other than 0 stands past the öre, read off the digits themselves: quantizing
    would raise for an amount longer than Decimal's precision, which the reader can hand over.

    >>> _has_more_than_two_decimals(Decimal("12.500")), _has_more_than_two_decimals(Decimal("0.125"))
    (False, True)
    >>> _has_more_than_two_decimals(Decimal("2434467722650531260871325294.143"))
    True
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= -2:
        return False
    past_the_ore = -exponent - 2
    return any(digits[-past_the_ore:])


def _amount_problems(amount: Amount) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    value = amount.value
    if value is None:
        return problems  # not a decimal: the schema reported it (S01)
    exponent = value.as_tuple().exponent
    if value > 0 and amount.currency == CURRENCY and isinstance(exponent, int) and exponent >= -2:
        return problems  # the common case, decided without building messages
    if value <= 0:
        problems.append(
            (f"är {value}; beloppet ska vara större än 0", f"is {value}; it must be greater than 0")
        )
    if isinstance(exponent, int) and exponent < -2 and _has_more_than_two_decimals(value):
        problems.append(
            (
                f"är {value}; högst två decimaler (öre) är tillåtna",
                f"is {value}; at most two decimals (öre) are allowed",
            )
        )
    if amount.currency != CURRENCY:
        problems.append(
            (
                f"har valutan {describe(amount.currency)}; bara SEK tas emot",
                f"has the currency {describe(amount.currency)}; only SEK is accepted",
            )
        )
    return problems


@rule(
    "R06",
    "E",
    Scope.CASE,
    sv="Kapitalbelopp (och KvarvarandeBelopp) större än 0, högst två decimaler, valuta SEK",
    en="Kapitalbelopp (and KvarvarandeBelopp) greater than 0, at most two decimals, valuta SEK",
)
def amounts_valid(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        for element, amount in (("Kapitalbelopp", claim.capital), ("KvarvarandeBelopp", claim.remaining)):
            if amount is None:
                continue
            for sv, en in _amount_problems(amount):
                found.append(r.finding(claim, element, f"{element} {sv}.", f"{element} {en}."))
    return found


@rule(
    "R07",
    "E",
    Scope.CASE,
    sv="Skuldgrupp saknas eller är tom (lathunden: lämnas blankt)",
    en="Skuldgrupp absent or empty (the guide: leave blank)",
)
def debt_group_blank(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        if not is_blank(claim.debt_group):
            found.append(
                r.finding(
                    claim,
                    "Skuldgrupp",
                    f"Skuldgrupp ska lämnas blankt men innehåller {describe(claim.debt_group)}.",
                    f"Skuldgrupp must be left blank but holds {describe(claim.debt_group)}.",
                )
            )
    return found


@rule(
    "R08",
    "E",
    Scope.CASE,
    sv="Samma Fakturanummer (eller Diarienummer) inte två gånger i ärendet, och inte i ett annat redan "
    "godkänt ärende för uppdragsgivaren",
    en="The same Fakturanummer (or Diarienummer) not twice in the case, nor in another case already "
    "accepted for this client",
)
def claim_once(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    seen: set[str] = set()
    for claim in case.claims:
        reference = claim.reference
        if not reference:
            continue
        element = "Fakturanummer" if claim.invoice_number else "Diarienummer"
        if reference in seen:
            found.append(
                r.finding(
                    claim,
                    element,
                    f"{element} {describe(reference)} förekommer två gånger i ärendet. Varje fordran anges en gång.",
                    f"{element} {describe(reference)} appears twice in the case. Give each claim once.",
                )
            )
            continue
        seen.add(reference)
        other = state.claim_references.get(reference)
        if other is None and state.client_orgnr:
            other = ctx.history.case_for_claim_reference(state.client_orgnr, reference)
        if other is not None and other != case.reference:
            found.append(
                r.finding(
                    claim,
                    element,
                    f"{element} {describe(reference)} finns redan i ärende {describe(other)} som är godkänt "
                    "för uppdragsgivaren. Samma fordran kan inte lämnas två gånger.",
                    f"{element} {describe(reference)} is already in case {describe(other)}, accepted for "
                    "this client. The same claim cannot be sent twice.",
                )
            )
    return found


@rule(
    "R09",
    "V",
    Scope.CASE,
    sv="Ränta: typ rantelagen (referensränta + 8 procentenheter), eller avtalad med procent; franDatum "
    "efter Forfallodatum",
    en="Interest: typ rantelagen (reference rate + 8 percentage points), or avtalad with procent; "
    "franDatum after Forfallodatum",
)
def interest_stated(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        interest = claim.interest
        if interest is None:
            continue
        if interest.kind == "avtalad" and interest.percent is None:
            found.append(
                r.finding(
                    interest,
                    "@procent",
                    "Avtalad ränta saknar procent. Ange den avtalade räntesatsen i attributet procent.",
                    "Agreed interest (avtalad) has no rate. Give the agreed rate in the procent attribute.",
                )
            )
        if interest.kind == "rantelagen" and interest.percent is not None:
            found.append(
                r.finding(
                    interest,
                    "@procent",
                    f"Ränta enligt räntelagen är referensräntan + {STATUTORY_INTEREST_POINTS} procentenheter; "
                    f"angiven procent {interest.percent} används inte.",
                    f"Interest under räntelagen is the reference rate + {STATUTORY_INTEREST_POINTS} "
                    f"percentage points; the given procent {interest.percent} is not used.",
                )
            )
        if interest.percent is not None and not (Decimal(0) < interest.percent <= Decimal(100)):
            found.append(
                r.finding(
                    interest,
                    "@procent",
                    f"Räntesatsen {interest.percent} procent är orimlig.",
                    f"The interest rate of {interest.percent} percent is implausible.",
                )
            )
        if (
            interest.from_date is not None
            and claim.due_date is not None
            and interest.from_date <= claim.due_date
        ):
            found.append(
                r.finding(
                    interest,
                    "@franDatum",
                    f"Ränta från {interest.from_date} börjar inte efter förfallodagen {claim.due_date}.",
                    f"Interest from {interest.from_date} does not start after the due date {claim.due_date}.",
                )
            )
    return found


@rule(
    "R10",
    "E",
    Scope.CASE,
    sv="Fakturadatum mer än 10 år före i dag: fordran kan vara preskriberad",
    en="Fakturadatum more than 10 years before today: the claim may be time-barred",
)
def claim_not_time_barred(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    limit = _years_before(ctx.today, LIMITATION_YEARS)
    for claim in case.claims:
        if claim.invoice_date is not None and claim.invoice_date < limit:
            found.append(
                r.finding(
                    claim,
                    "Fakturadatum",
                    f"Fakturadatum {claim.invoice_date} är mer än {LIMITATION_YEARS} år gammalt: fordran kan "
                    "vara preskriberad. Kontrollera preskriptionsavbrott innan den skickas.",
                    f"Fakturadatum {claim.invoice_date} is more than {LIMITATION_YEARS} years old: the claim "
                    "may be time-barred. Check for an interruption of limitation before sending it.",
                )
            )
    return found


@rule(
    "R11",
    "V",
    Scope.CASE,
    sv="Privat gäldenär och Fakturadatum mer än 3 år före i dag: konsumentfordringar kan preskriberas efter 3 år",
    en="Private debtor and Fakturadatum more than 3 years before today: consumer claims may be "
    "time-barred after 3 years",
)
def consumer_claim_age(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    # A sole trader (Privat with Firma) is a business, not a consumer.
    found: list[Finding] = []
    if not any(d.kind == PRIVATE and (d.person is None or is_blank(d.person.firm)) for d in case.debtors):
        return found
    limit = _years_before(ctx.today, CONSUMER_LIMITATION_YEARS)
    ten_years = _years_before(ctx.today, LIMITATION_YEARS)
    for claim in case.claims:
        invoiced = claim.invoice_date
        if invoiced is not None and ten_years <= invoiced < limit:
            found.append(
                r.finding(
                    claim,
                    "Fakturadatum",
                    f"Fakturadatum {invoiced} är mer än {CONSUMER_LIMITATION_YEARS} år gammalt och gäldenären "
                    "är privatperson: en konsumentfordran kan vara preskriberad.",
                    f"Fakturadatum {invoiced} is more than {CONSUMER_LIMITATION_YEARS} years old and the "
                    "debtor is a private person: a consumer claim may be time-barred.",
                )
            )
    return found


@rule(
    "R12",
    "E",
    Scope.CASE,
    sv="KvarvarandeBelopp är inte större än Kapitalbelopp",
    en="KvarvarandeBelopp not greater than Kapitalbelopp",
)
def remaining_within_capital(r: Rule, case: Case, ctx: RuleContext, state: FileState) -> list[Finding]:
    found: list[Finding] = []
    for claim in case.claims:
        capital, remaining = claim.capital, claim.remaining
        if capital is None or remaining is None or capital.value is None or remaining.value is None:
            continue
        if remaining.value > capital.value:
            found.append(
                r.finding(
                    claim,
                    "KvarvarandeBelopp",
                    f"KvarvarandeBelopp {remaining.value} är större än Kapitalbelopp {capital.value}.",
                    f"KvarvarandeBelopp {remaining.value} is greater than Kapitalbelopp {capital.value}.",
                )
            )
    return found


__all__ = ["_claim_label"]
