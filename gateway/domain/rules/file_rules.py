"""F and S codes: the file as a whole, and the schema (rules.md, sections F and S)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities, normalize_orgnr
from gateway.domain.model import FileHeader, FileSummary, FileTotals
from gateway.domain.rules.registry import Rule, RuleContext, Scope, reader_rule, rule

F01 = reader_rule(
    "F01",
    "E",
    sv="Läsbar XML: välformad, kodad som deklarerat (UTF-8), rotelement Arendefil i rätt namnrymd, inte tom",
    en="Readable XML: well-formed, encoded as declared (UTF-8), root Arendefil in the right namespace, not empty",
)
F02 = reader_rule(
    "F02",
    "E",
    sv="Säker XML och paket: ingen DOCTYPE, inga entiteter, ingen XInclude, djup och storlek inom gränserna; "
    "zip: exakt en .xml i roten, inga absoluta namn, '..' eller länkar, uppackning inom gränserna",
    en="Safe XML and package: no DOCTYPE or entities, no XInclude, nesting and size within limits; zip: "
    "exactly one .xml at the root, no absolute or '..' names, no links, expansion within limits",
)
F03 = reader_rule(
    "F03",
    "E",
    sv="Schemafel (XSD) utanför ett ärende: i Filhuvud, Uppdragsgivare, Filsummering eller filens ordning",
    en="Schema (XSD) violation outside a case: in Filhuvud, Uppdragsgivare, Filsummering or the file's order",
)
F08 = reader_rule(
    "F08",
    "E",
    sv="Filen kunde inte behandlas efter flera försök (gatewayen kraschade eller tog för lång tid) och "
    "ligger i karantän för en handläggare",
    en="The file could not be processed after several attempts (the gateway crashed or timed out on "
    "it) and is quarantined for a person to look at",
)
F09 = reader_rule(
    "F09",
    "E",
    sv="Läsbar JSON-ärendefil: UTF-8 (byte order mark tillåten), välformad, ett objekt i formen som "
    "xmlschema ger för arendefil-1.xsd, ingen nyckel två gånger utanför ett ärende",
    en="Readable JSON case file: UTF-8 (a byte-order mark is allowed), well-formed, an object in the "
    "shape xmlschema gives arendefil-1.xsd, no key twice outside a case",
)
F10 = reader_rule(
    "F10",
    "E",
    sv="JSON inom gränserna: filens storlek, nästlingsdjup, längden på en sträng eller ett tal, "
    "storleken på ett ärende",
    en="JSON within limits: file size, nesting depth, length of a string or number, size of one case",
)
F11 = reader_rule(
    "F11",
    "E",
    sv="Läsbar CSV: kodad som mappningen anger (UTF-8 eller Windows-1252), en rubrikrad med varje "
    "mappad kolumn, lika många celler på varje rad som i rubriken",
    en="Readable CSV: encoded as the mapping says (UTF-8 or Windows-1252), a header row naming every "
    "mapped column, as many cells in each row as in the header",
)
F12 = reader_rule(
    "F12",
    "E",
    sv="CSV inom gränserna: filens storlek, antal rader, radlängd, cellängd, rader per ärende",
    en="CSV within limits: file size, number of rows, line length, cell length, rows per case",
)
S01 = reader_rule(
    "S01",
    "E",
    sv="Schemafel (XSD) i ett ärende: endast det ärendet underkänns",
    en="Schema (XSD) violation inside a case: only that case is rejected",
)
S02 = reader_rule(
    "S02",
    "E",
    sv="Ett JSON-ärende har samma nyckel två gånger i ett objekt (vilket värde som gäller beror på "
    "läsaren): ärendet underkänns",
    en="A JSON case has the same key twice in one object (which value counts depends on the reader): "
    "the case is rejected",
)
S03 = reader_rule(
    "S03",
    "E",
    sv="En CSV-cell i ett ärende börjar som en kalkylformel (=, +, -, @) utan att vara ett tal "
    "(CSV-injektion): ärendet underkänns",
    en="A CSV cell of a case starts like a spreadsheet formula (=, +, -, @) and is not a number (CSV "
    "injection): the case is rejected",
)
S04 = reader_rule(
    "S04",
    "E",
    sv="CSV-raderna i ett ärende är oense om ett ärendefält (motpart, kundnummer): det första radens "
    "värde gäller inte tyst",
    en="The CSV rows of one case disagree on a case field (debtor, customer number): the first row's "
    "value is not taken silently",
)


@dataclass(slots=True)
class FileFacts:
    """What a file rule sees: the header, the sender's totals and what the file really held."""

    header: FileHeader
    summary: FileSummary | None
    totals: FileTotals
    #: True when an amount could not be read, so the money total cannot be checked.
    capital_unknown: bool = False
    notes: list[str] = field(default_factory=list)


@rule(
    "F04",
    "E",
    Scope.FILE,
    sv="Dubblett: samma filinnehåll, eller samma FilId från samma uppdragsgivare, har tagits emot förut",
    en="Duplicate file: the same bytes, or the same FilId from the same client, were received before",
)
def duplicate_file(r: Rule, facts: FileFacts, ctx: RuleContext) -> list[Finding]:
    found: list[Finding] = []
    earlier = ctx.history.receipt_for_bytes(ctx.file_sha256) if ctx.file_sha256 else None
    if earlier is not None:
        found.append(
            r.finding(
                facts.header,
                None,
                f"Filen har redan tagits emot med exakt samma innehåll (kvittens {earlier}). "
                "Inget har registrerats på nytt.",
                f"This file was already received with exactly the same content (receipt {earlier}). "
                "Nothing was registered again.",
            )
        )
        return found
    header = facts.header
    if header.file_id and header.client_orgnr:
        earlier = ctx.history.receipt_for_file_id(normalize_orgnr(header.client_orgnr), header.file_id)
        if earlier is not None:
            found.append(
                r.finding(
                    header,
                    "FilId",
                    f"FilId '{header.file_id}' har redan använts av den här uppdragsgivaren (kvittens "
                    f"{earlier}). Ge varje exportfil ett nytt FilId.",
                    f"FilId '{header.file_id}' was already used by this client (receipt {earlier}). "
                    "Give every exported file a new FilId.",
                )
            )
    return found


@rule(
    "F05",
    "E",
    Scope.FILE,
    sv="Uppdragsgivaren (Organisationsnummer) är konfigurerad och får skicka via den här källan",
    en="The client (Organisationsnummer) is configured and may send through this source",
)
def known_client(r: Rule, facts: FileFacts, ctx: RuleContext) -> list[Finding]:
    found: list[Finding] = []
    header = facts.header
    if ctx.clients is None or not header.client_orgnr:
        return found
    orgnr = normalize_orgnr(header.client_orgnr)
    # The client stands in Uppdragsgivare, not in Filhuvud; a JSON or CSV file says where it was.
    where = (header.paths or {}).get("Organisationsnummer", "/Arendefil/Uppdragsgivare/Organisationsnummer")
    line = header.line_of("Organisationsnummer")
    if orgnr not in ctx.clients:
        found.append(
            Finding(
                r.code,
                Severity.ERROR,
                where,
                line,
                f"Uppdragsgivaren {mask_identities(header.client_orgnr)} är inte ansluten till gatewayen. Kontrollera att "
                "rätt uppdragsgivare anges i exporten.",
                f"The client {mask_identities(header.client_orgnr)} is not configured in the gateway. Check that the "
                "export names the right client (uppdragsgivare).",
            )
        )
    elif ctx.source_clients is not None and orgnr not in ctx.source_clients:
        found.append(
            Finding(
                r.code,
                Severity.ERROR,
                where,
                line,
                f"Uppdragsgivaren {mask_identities(header.client_orgnr)} får inte skicka filer via den här källan.",
                f"The client {mask_identities(header.client_orgnr)} may not send files through this source.",
            )
        )
    return found


@rule(
    "F06",
    "E",
    Scope.FILE,
    sv="Kontrollsummor: Filsummering stämmer med filens antal ärenden, antal fordringar och summa kapitalbelopp",
    en="Control totals: Filsummering equals the file's number of cases, number of claims and capital sum",
)
def control_totals(r: Rule, facts: FileFacts, ctx: RuleContext) -> list[Finding]:
    found: list[Finding] = []
    summary, totals = facts.summary, facts.totals
    if summary is None:
        return found
    if summary.case_count is not None and summary.case_count != totals.case_count:
        found.append(
            r.finding(
                summary,
                "AntalArenden",
                f"AntalArenden är {summary.case_count} men filen innehåller {totals.case_count} ärenden.",
                f"AntalArenden is {summary.case_count} but the file holds {totals.case_count} cases.",
            )
        )
    if summary.claim_count is not None and summary.claim_count != totals.claim_count:
        found.append(
            r.finding(
                summary,
                "AntalFordringar",
                f"AntalFordringar är {summary.claim_count} men filen innehåller {totals.claim_count} fordringar.",
                f"AntalFordringar is {summary.claim_count} but the file holds {totals.claim_count} claims.",
            )
        )
    if (
        summary.capital_sum is not None
        and not facts.capital_unknown
        and summary.capital_sum != totals.capital_sum
    ):
        found.append(
            r.finding(
                summary,
                "SummaKapitalbelopp",
                f"SummaKapitalbelopp är {summary.capital_sum} men kapitalbeloppen i filen summerar till "
                f"{totals.capital_sum}.",
                f"SummaKapitalbelopp is {summary.capital_sum} but the capital amounts in the file add up to "
                f"{totals.capital_sum}.",
            )
        )
    return found


@rule(
    "F07",
    "V",
    Scope.FILE,
    sv="Löpnummer: när det anges är det föregående från samma uppdragsgivare + 1 (fel vid strikt kontroll)",
    en="Sequence: Lopnummer, when given, is the previous one from this client + 1 (error when strict)",
)
def sequence_number(r: Rule, facts: FileFacts, ctx: RuleContext) -> list[Finding]:
    found: list[Finding] = []
    header = facts.header
    if header.sequence is None or not header.client_orgnr:
        return found
    previous = ctx.history.last_sequence(normalize_orgnr(header.client_orgnr))
    if previous is None or header.sequence == previous + 1:
        return found
    severity = Severity.ERROR if ctx.strict_sequence else Severity.WARNING
    found.append(
        r.finding(
            header,
            "Lopnummer",
            f"Lopnummer {header.sequence} följer inte på föregående fil ({previous}); väntat {previous + 1}. "
            "Kontrollera om en fil saknas eller skickats två gånger.",
            f"Lopnummer {header.sequence} does not follow the previous file ({previous}); expected "
            f"{previous + 1}. Check whether a file is missing or was sent twice.",
            severity=severity,
        )
    )
    return found
