"""CSV of open items (an ERP's kundreskontra export) as case files, by a mapping file.

One row is one claim; rows that follow one another with the same case key make one case. A
mapping (TOML, README "CSV case files") names the column of each case field, the file's encoding,
delimiter, decimal comma and date formats, and the header values that are not in the rows. Each
case is built as the ``Arende`` element it stands for and checked and read exactly as an XML case
(:mod:`gateway.formats.casetree`); places are rows and columns: ``/rad/12/Belopp``, line 12.

The reader streams: one case's rows at a time. Hostile input gets findings: an encoding other than
the mapping's, a missing column, a ragged row (F11); more than :data:`MAX_ROWS` rows, a line longer
than :data:`MAX_LINE_CHARS`, a cell longer than :data:`MAX_CELL_CHARS`, a case of more than
:data:`MAX_CASE_ROWS` rows or :data:`MAX_CASE_CHARS` characters (F12); a cell that starts like a spreadsheet formula (S03); the rows of
one case disagreeing on a case field (S04).
"""

from __future__ import annotations

import codecs
import csv
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities
from gateway.domain.model import Case, FileHeader
from gateway.formats import schema_messages
from gateway.formats.casefile import ByteSource
from gateway.formats.casetree import PartBuilder, PartTooLargeError, Spot, read_case, read_header_part

MAX_ROWS = 1_000_000
MAX_LINE_CHARS = 64 * 1024
#: No field of the schema is longer than 500 characters.
MAX_CELL_CHARS = 2_000
MAX_CASE_ROWS = 1_000
#: The characters of one case's rows, bounded like one part of an XML file (4 MiB).
MAX_CASE_CHARS = 4 * 1024 * 1024
READ_BYTES = 64 * 1024

ENCODINGS = {"utf-8": "utf-8", "windows-1252": "cp1252"}
#: Fields of a case, a debtor and a claim a mapping may name, as paths below Arende, Motpart and
#: Fordran in arendefil-1.xsd (an attribute as "Element/@name").
CASE_FIELDS = ("ArendeReferens", "Kundnummer", "Fordranstyp", "Kostnadsuppgifter")
DEBTOR_FIELDS = (
    "Typ", "Identitet", "Person/Fornamn", "Person/Tilltalsnamn", "Person/Efternamn", "Person/Firma",
    "Foretag/Firma", "Adress/Utdelningsadress", "Adress/CoAdress", "Adress/Postnummer", "Adress/Postort",
    "Adress/Land", "Telefon", "Epost", "SkyddadePersonuppgifter",
)  # fmt: skip
CLAIM_FIELDS = (
    "Fakturanummer", "Diarienummer", "FordranAvser", "Fakturadatum", "Forfallodatum", "Kapitalbelopp",
    "Kapitalbelopp/@valuta", "KvarvarandeBelopp", "KvarvarandeBelopp/@valuta", "Ranta/@typ",
    "Ranta/@procent", "Ranta/@franDatum", "Beslut/Beslutsdatum", "Beslut/LagakraftDatum", "Skuldgrupp",
)  # fmt: skip
DATE_FIELDS = frozenset(
    {"Fakturadatum", "Forfallodatum", "Ranta/@franDatum", "Beslut/Beslutsdatum", "Beslut/LagakraftDatum"}
)
DECIMAL_FIELDS = frozenset({"Kapitalbelopp", "KvarvarandeBelopp", "Ranta/@procent"})
FILE_KEYS = ("client_orgnr", "client_name", "file_id", "sequence", "created", "sender_system")
_FILE_ELEMENTS = {
    "file_id": "FilId",
    "sequence": "Lopnummer",
    "created": "Skapad",
    "sender_system": "Avsandarsystem",
}
_CSV_KEYS = frozenset({"encoding", "delimiter", "quote", "decimal_comma", "date_formats", "case_key"})
_TOP_KEYS = frozenset({"csv", "file", "case", "debtor", "claim", "file_name_pattern"})
#: A cell a spreadsheet would run as a formula (OWASP's list: = + - @, tab and carriage return).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: What starts with + or - and is data, not a formula: a signed amount, a phone number.
_NUMBER_LIKE = re.compile(r"[+-][\d\s().,/-]*\d[\d\s().,/-]*")
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MappingError(Exception):
    """A mapping file that cannot be used; ``problems`` lists every problem, each with its key."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class FieldSource:
    """Where one field's value comes from: a column (values translated), or a fixed value."""

    column: str | None = None
    columns: tuple[str, ...] = ()  # several columns, one element each (Utdelningsadress)
    value: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)

    def all_columns(self) -> tuple[str, ...]:
        return ((self.column,) if self.column else ()) + self.columns


@dataclass(frozen=True, slots=True)
class CsvMapping:
    path: Path
    encoding: str  # "utf-8" | "windows-1252"
    delimiter: str
    quote: str
    decimal_comma: bool
    date_formats: tuple[str, ...]
    case_key: str  # the column whose value groups rows into cases
    file: Mapping[str, str]  # header templates: client_orgnr, file_id, ...
    file_name_pattern: re.Pattern[str] | None
    case: Mapping[str, FieldSource]
    debtors: tuple[Mapping[str, FieldSource], ...]
    claim: Mapping[str, FieldSource]

    def columns(self) -> list[str]:
        """Every column the mapping names, once, in order."""
        seen: dict[str, None] = {self.case_key: None}
        for fields in (self.case, *self.debtors, self.claim):
            for source in fields.values():
                seen.update(dict.fromkeys(source.all_columns()))
        return list(seen)


def load_mapping(path: Path) -> CsvMapping:
    """Read and check a mapping file; raise MappingError naming every problem, OSError if unreadable."""
    with path.open("rb") as handle:
        try:
            raw = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise MappingError([f"{path.name}: not valid TOML: {error}"]) from error
    problems: list[str] = []
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown key")
    settings = _table(raw, "csv", problems)
    for key in settings:
        if key not in _CSV_KEYS:
            problems.append(f"csv.{key}: unknown key")
    encoding = settings.get("encoding", "utf-8")
    if encoding not in ENCODINGS:
        problems.append(f"csv.encoding: must be utf-8 or windows-1252, not {encoding!r}")
    delimiter = settings.get("delimiter", ";")
    quote = settings.get("quote", '"')
    for key, value in (("delimiter", delimiter), ("quote", quote)):
        if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
            problems.append(f"csv.{key}: must be one character")
    decimal_comma = settings.get("decimal_comma", True)
    if not isinstance(decimal_comma, bool):
        problems.append("csv.decimal_comma: must be true or false")
    date_formats = settings.get("date_formats", ["%Y-%m-%d"])
    if (
        not isinstance(date_formats, list)
        or not date_formats
        or not all(isinstance(f, str) and "%" in f for f in date_formats)
    ):
        problems.append('csv.date_formats: a list of strptime formats, e.g. ["%d.%m.%Y", "%Y-%m-%d"]')
        date_formats = ["%Y-%m-%d"]
    file_table = _table(raw, "file", problems)
    templates: dict[str, str] = {}
    for key, value in file_table.items():
        if key not in FILE_KEYS:
            problems.append(f"file.{key}: unknown key (one of {', '.join(FILE_KEYS)})")
        elif not isinstance(value, str | int):
            problems.append(f"file.{key}: must be a string")
        else:
            templates[key] = str(value)
    for required in ("client_orgnr", "file_id"):
        if required not in templates:
            problems.append(f"file.{required}: required")
    pattern: re.Pattern[str] | None = None
    if "file_name_pattern" in raw:
        try:
            pattern = re.compile(str(raw["file_name_pattern"]))
        except re.error as error:
            problems.append(f"file_name_pattern: not a regular expression: {error}")
    known = {"name", "stem", *(pattern.groupindex if pattern else ())}
    for key, template in templates.items():
        for variable in _TEMPLATE.findall(template):
            if variable not in known:
                problems.append(
                    f"file.{key}: {{{variable}}} is neither name, stem nor a group of file_name_pattern"
                )
    case = _fields(_table(raw, "case", problems), CASE_FIELDS, "case", problems)
    debtor_tables = raw.get("debtor", [])
    if isinstance(debtor_tables, dict):
        debtor_tables = [debtor_tables]
    if not isinstance(debtor_tables, list) or not debtor_tables:
        problems.append("debtor: at least one [[debtor]] table")
        debtor_tables = []
    debtors = tuple(
        _fields(table if isinstance(table, dict) else {}, DEBTOR_FIELDS, f"debtor[{position}]", problems)
        for position, table in enumerate(debtor_tables)
    )
    claim = _fields(_table(raw, "claim", problems), CLAIM_FIELDS, "claim", problems)
    for required, fields, where in (
        ("ArendeReferens", case, "case"),
        ("Kapitalbelopp", claim, "claim"),
        *(("Identitet", debtor, f"debtor[{n}]") for n, debtor in enumerate(debtors)),
    ):
        if required not in fields:
            problems.append(f"{where}.{required}: required")
    case_key = settings.get("case_key")
    if case_key is None and "ArendeReferens" in case:
        case_key = case["ArendeReferens"].column
    if not isinstance(case_key, str) or not case_key:
        problems.append(
            "csv.case_key: the column that groups rows into cases (default: ArendeReferens's column)"
        )
        case_key = ""
    if problems:
        raise MappingError([f"{path.name}: {problem}" for problem in problems])
    return CsvMapping(
        path=path,
        encoding=encoding,
        delimiter=delimiter,
        quote=quote,
        decimal_comma=decimal_comma,
        date_formats=tuple(date_formats),
        case_key=case_key,
        file=templates,
        file_name_pattern=pattern,
        case=case,
        debtors=debtors,
        claim=claim,
    )


def _table(raw: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        problems.append(f"{key}: must be a table ([{key}])")
        return {}
    return table


def _fields(
    table: Mapping[str, Any], allowed: Sequence[str], where: str, problems: list[str]
) -> dict[str, FieldSource]:
    fields: dict[str, FieldSource] = {}
    for key, spec in table.items():
        if key not in allowed:
            problems.append(f"{where}.{key}: not a field here (one of {', '.join(allowed)})")
            continue
        if isinstance(spec, str) and spec:
            fields[key] = FieldSource(column=spec)
        elif (
            isinstance(spec, list)
            and key == "Adress/Utdelningsadress"
            and 1 <= len(spec) <= 2
            and all(isinstance(c, str) and c for c in spec)
        ):
            fields[key] = FieldSource(columns=tuple(spec))
        elif isinstance(spec, dict) and set(spec) <= {"column", "values", "value"} and spec:
            column, values, value = spec.get("column"), spec.get("values", {}), spec.get("value")
            if (column is None) == (value is None):
                problems.append(f"{where}.{key}: give either column or value")
            elif not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                problems.append(f"{where}.{key}.values: a table of cell value = field value")
            else:
                fields[key] = FieldSource(
                    column=str(column) if column is not None else None,
                    value=str(value) if value is not None else None,
                    values={str(k): v for k, v in values.items()},
                )
        else:
            problems.append(
                f'{where}.{key}: a column name, or {{ column = "...", values = {{ ... }} }}, or {{ value = "..." }}'
            )
    return fields


# -- reading -----------------------------------------------------------------------------------


class _StopReadingError(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message_en)
        self.finding = finding


def _file_finding(code: str, path: str, line: int | None, sv: str, en: str) -> Finding:
    return Finding(code, Severity.ERROR, path, line, sv, en)


def _shown(value: str) -> str:
    return schema_messages.clean(mask_identities(value[:60]))


@dataclass(slots=True)
class _Row:
    line: int
    cells: dict[str, str]


class CsvCaseFileReader:
    """Read one CSV file by its mapping; iterate :meth:`cases`, then read ``header`` and ``findings``."""

    def __init__(self, stream: ByteSource, mapping: CsvMapping | None, *, name: str, today: date) -> None:
        self._stream = stream
        self._mapping = mapping
        self._name = name
        self._today = today
        self.header = FileHeader("/fil", None)
        self.summary = None  # a CSV export has no control totals: F06 has nothing to compare
        self.findings: list[Finding] = []
        self.truncated = False
        self._lines_read = 0

    def cases(self) -> Iterator[tuple[Case, list[Finding]]]:
        mapping = self._mapping
        if mapping is None:
            self.findings.append(
                _file_finding(
                    "F11",
                    "/",
                    None,
                    "En CSV-fil läses bara med en mappning (källans mapping, eller validate --mapping).",
                    "A CSV file is read only with a mapping (the source's mapping, or validate --mapping).",
                )
            )
            return
        try:
            self._read_header_values(mapping)
            yield from self._read(mapping)
        except _StopReadingError as stop:
            self.findings.append(stop.finding)
        except PartTooLargeError:
            self.findings.append(
                _file_finding(
                    "F12",
                    "/",
                    None,
                    "Ett ärende har för många fält; filen läses inte vidare.",
                    "A case has too many fields; the file is not read further.",
                )
            )

    # -- the header from the mapping and the file's name --------------------------------------

    def _read_header_values(self, mapping: CsvMapping) -> None:
        variables = {"name": self._name, "stem": Path(self._name).stem}
        if mapping.file_name_pattern is not None:
            match = mapping.file_name_pattern.fullmatch(self._name)
            if match is None:
                raise _StopReadingError(
                    _file_finding(
                        "F11",
                        "/fil/namn",
                        None,
                        f"Filnamnet {_shown(self._name)} passar inte mappningens file_name_pattern.",
                        f"The file name {_shown(self._name)} does not fit the mapping's file_name_pattern.",
                    )
                )
            variables.update({k: v or "" for k, v in match.groupdict().items()})
        values = {
            key: _TEMPLATE.sub(lambda m: variables.get(m.group(1), ""), template)
            for key, template in mapping.file.items()
        }
        values.setdefault("created", f"{self._today.isoformat()}T00:00:00")
        builder = PartBuilder()
        head = builder.element(None, "Filhuvud", Spot("/fil", None))
        for key in ("file_id", "sequence", "created", "sender_system"):
            if key in values:
                child = builder.element(head, _FILE_ELEMENTS[key], Spot(f"/mappning/file/{key}", None))
                builder.text(child, values[key])
        for finding in read_header_part(builder, head, self.header, client=False):
            self.findings.append(finding)
        builder = PartBuilder()
        client = builder.element(None, "Uppdragsgivare", Spot("/fil", None))
        for key, element_name in (("client_orgnr", "Organisationsnummer"), ("client_name", "Namn")):
            if key in values:
                child = builder.element(client, element_name, Spot(f"/mappning/file/{key}", None))
                builder.text(child, values[key])
        for finding in read_header_part(builder, client, self.header, client=True):
            self.findings.append(finding)

    # -- rows --------------------------------------------------------------------------------

    def _lines(self, mapping: CsvMapping) -> Iterator[str]:
        """Decoded physical lines; an encoding error or an overlong line stops the file."""
        first = self._stream.read(READ_BYTES)
        if first.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _StopReadingError(
                _file_finding(
                    "F11",
                    "/",
                    1,
                    "Filen är kodad som UTF-16; mappningen anger " + mapping.encoding + ".",
                    "The file is encoded as UTF-16; the mapping says " + mapping.encoding + ".",
                )
            )
        encoding = ENCODINGS[mapping.encoding]
        if first.startswith(codecs.BOM_UTF8):
            # A byte-order mark says UTF-8 whatever the mapping says: Excel writes one.
            first, encoding = first[len(codecs.BOM_UTF8) :], "utf-8"
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        pending = ""
        chunk = first
        while True:
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                line = self._lines_read + pending.count("\n") + 1
                raise _StopReadingError(
                    _file_finding(
                        "F11",
                        f"/rad/{line}",
                        line,
                        f"Filen är inte kodad som {mapping.encoding}, som mappningen anger (rad {line}). "
                        "Exportera filen med den kodningen, eller ändra mappningens encoding.",
                        f"The file is not encoded as {mapping.encoding}, as the mapping says (line {line}). "
                        "Export it in that encoding, or change the mapping's encoding.",
                    )
                ) from None
            pending += text
            parts = pending.split("\n")
            pending = parts.pop()
            for part in parts:
                self._check_line_length(part)
                self._lines_read += 1
                yield part + "\n"
            self._check_line_length(pending)
            if not chunk:
                break
            chunk = self._stream.read(READ_BYTES)
        if pending:
            self._lines_read += 1
            yield pending

    def _check_line_length(self, line: str) -> None:
        if len(line) > MAX_LINE_CHARS:
            where = self._lines_read + 1
            raise _StopReadingError(
                _file_finding(
                    "F12",
                    f"/rad/{where}",
                    where,
                    f"Rad {where} är längre än {MAX_LINE_CHARS} tecken; filen läses inte vidare.",
                    f"Line {where} is longer than {MAX_LINE_CHARS} characters; the file is not read further.",
                )
            )

    def _rows(self, mapping: CsvMapping) -> Iterator[_Row]:
        reader = csv.reader(
            self._lines(mapping), delimiter=mapping.delimiter, quotechar=mapping.quote, strict=True
        )
        try:
            header = next(reader, None)
            if header is None:
                raise _StopReadingError(
                    _file_finding("F11", "/", None, "Filen är tom.", "The file is empty.")
                )
            names = [name.strip() for name in header]
            self._check_header(mapping, names)
            count = 0
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not any(cell.strip() for cell in cells):
                    continue
                count += 1
                if count > MAX_ROWS:
                    raise _StopReadingError(
                        _file_finding(
                            "F12",
                            f"/rad/{line}",
                            line,
                            f"Filen har fler än {MAX_ROWS} rader; den läses inte vidare.",
                            f"The file has more than {MAX_ROWS} rows; it is not read further.",
                        )
                    )
                if len(cells) != len(names):
                    raise _StopReadingError(
                        _file_finding(
                            "F11",
                            f"/rad/{line}",
                            line,
                            f"Rad {line} har {len(cells)} celler men rubrikraden {len(names)}; kontrollera "
                            "avgränsaren och citattecknen.",
                            f"Line {line} has {len(cells)} cells but the header row {len(names)}; check the "
                            "delimiter and the quotes.",
                        )
                    )
                for name, cell in zip(names, cells, strict=True):
                    if len(cell) > MAX_CELL_CHARS:
                        raise _StopReadingError(
                            _file_finding(
                                "F12",
                                f"/rad/{line}/{name}",
                                line,
                                f"En cell är längre än {MAX_CELL_CHARS} tecken; filen läses inte vidare.",
                                f"A cell is longer than {MAX_CELL_CHARS} characters; the file is not read further.",
                            )
                        )
                yield _Row(line, dict(zip(names, cells, strict=True)))
        except csv.Error as error:
            line = reader.line_num
            raise _StopReadingError(
                _file_finding(
                    "F11",
                    f"/rad/{line}",
                    line,
                    f"Rad {line} kan inte läsas som CSV ({_shown(str(error))}).",
                    f"Line {line} cannot be read as CSV ({_shown(str(error))}).",
                )
            ) from None

    def _check_header(self, mapping: CsvMapping, names: list[str]) -> None:
        doubled = sorted({name for name in names if names.count(name) > 1})
        missing = [column for column in mapping.columns() if column not in names]
        if doubled or missing:
            listed = ", ".join(_shown(name) for name in (missing or doubled))
            sv, en = (
                (f"Rubrikraden saknar kolumnerna {listed} som mappningen anger.", f"The header row lacks the columns {listed} the mapping names.")
                if missing
                else (f"Rubrikraden har kolumnerna {listed} två gånger.", f"The header row has the columns {listed} twice.")
            )  # fmt: skip
            if any("Ã" in name for name in names):
                sv += " Rubrikerna ser ut som UTF-8 lästa som Windows-1252: ändra mappningens encoding."
                en += " The names look like UTF-8 read as Windows-1252: change the mapping's encoding."
            raise _StopReadingError(_file_finding("F11", "/rad/1", 1, sv, en))

    def _read(self, mapping: CsvMapping) -> Iterator[tuple[Case, list[Finding]]]:
        rows: list[_Row] = []
        index = 0
        size = 0  # characters in the case's rows: one case at a time is held, as in XML
        for row in self._rows(mapping):
            if rows and row.cells[mapping.case_key].strip() != rows[0].cells[mapping.case_key].strip():
                index += 1
                yield self._case(mapping, rows, index)
                rows, size = [], 0
            rows.append(row)
            size += sum(map(len, row.cells.values()))
            if len(rows) > MAX_CASE_ROWS or size > MAX_CASE_CHARS:
                raise _StopReadingError(
                    _file_finding(
                        "F12",
                        f"/rad/{row.line}",
                        row.line,
                        f"Ett ärende har fler än {MAX_CASE_ROWS} rader eller {MAX_CASE_CHARS} tecken; filen läses "
                        "inte vidare.",
                        f"A case has more than {MAX_CASE_ROWS} rows or {MAX_CASE_CHARS} characters; the file is "
                        "not read further.",
                    )
                )
        if rows:
            yield self._case(mapping, rows, index + 1)

    # -- one case ----------------------------------------------------------------------------

    def _case(self, mapping: CsvMapping, rows: list[_Row], index: int) -> tuple[Case, list[Finding]]:
        first = rows[0]
        builder = PartBuilder()
        extra: list[Finding] = []
        case = builder.element(None, "Arende", Spot(f"/rad/{first.line}", first.line))
        case_level = [mapping.case, *mapping.debtors]
        for row in rows:
            extra += self._formulas(mapping, row)
        for row in rows[1:]:
            extra += _disagreements(case_level, first, row)
        for name in ("ArendeReferens", "Kundnummer", "Fordranstyp"):
            self._field(builder, case, mapping, mapping.case, name, first)
        for debtor in mapping.debtors:
            identity = debtor["Identitet"]
            if (
                identity.column
                and not first.cells[identity.column].strip()
                and debtor is not mapping.debtors[0]
            ):
                continue  # a co-debtor's columns left empty: no second debtor in this case
            self._debtor(builder, case, mapping, debtor, first)
        for row in rows:
            self._claim(builder, case, mapping, row)
        self._field(builder, case, mapping, mapping.case, "Kostnadsuppgifter", first)
        built, findings = read_case(builder, case, index)
        return built, findings + extra

    def _debtor(
        self,
        builder: PartBuilder,
        case: etree._Element,
        mapping: CsvMapping,
        fields: Mapping[str, FieldSource],
        row: _Row,
    ) -> None:
        debtor = builder.element(case, "Motpart", Spot(f"/rad/{row.line}", row.line))
        kind = self._field(builder, debtor, mapping, fields, "Typ", row)
        self._field(builder, debtor, mapping, fields, "Identitet", row)
        person_fields = [
            f for f in fields if f.startswith("Person/") and self._value(mapping, fields, f, row)
        ]
        company = self._value(mapping, fields, "Foretag/Firma", row)
        if kind == "Foretag" or (kind != "Privat" and company and not person_fields):
            block = builder.element(debtor, "Foretag", Spot(f"/rad/{row.line}", row.line))
            self._field(builder, block, mapping, fields, "Foretag/Firma", row, always=True)
        else:
            block = builder.element(debtor, "Person", Spot(f"/rad/{row.line}", row.line))
            for name in ("Fornamn", "Tilltalsnamn", "Efternamn", "Firma"):
                self._field(
                    builder, block, mapping, fields, f"Person/{name}", row, always=name == "Efternamn"
                )
        if any(f.startswith("Adress/") and self._value(mapping, fields, f, row) for f in fields):
            address = builder.element(debtor, "Adress", Spot(f"/rad/{row.line}", row.line))
            for name in ("Utdelningsadress", "CoAdress", "Postnummer", "Postort", "Land"):
                self._field(
                    builder, address, mapping, fields, f"Adress/{name}", row, always=name == "Postnummer"
                )
        for name in ("Telefon", "Epost", "SkyddadePersonuppgifter"):
            self._field(builder, debtor, mapping, fields, name, row)

    def _claim(self, builder: PartBuilder, case: etree._Element, mapping: CsvMapping, row: _Row) -> None:
        fields = mapping.claim
        claim = builder.element(case, "Fordran", Spot(f"/rad/{row.line}", row.line))
        for name in ("Fakturanummer", "Diarienummer", "FordranAvser", "Fakturadatum", "Forfallodatum"):
            self._field(
                builder,
                claim,
                mapping,
                fields,
                name,
                row,
                always=name != "Fakturanummer" and name != "Diarienummer",
            )
        for amount in ("Kapitalbelopp", "KvarvarandeBelopp"):
            element = self._field(
                builder, claim, mapping, fields, amount, row, always=amount == "Kapitalbelopp", element=True
            )
            if isinstance(element, etree._Element):
                self._attribute(builder, element, mapping, fields, f"{amount}/@valuta", row)
        if self._value(mapping, fields, "Ranta/@typ", row):
            interest = builder.element(claim, "Ranta", self._spot(fields, "Ranta/@typ", row))
            for name in ("typ", "procent", "franDatum"):
                self._attribute(builder, interest, mapping, fields, f"Ranta/@{name}", row)
        if self._value(mapping, fields, "Beslut/Beslutsdatum", row):
            decision = builder.element(claim, "Beslut", self._spot(fields, "Beslut/Beslutsdatum", row))
            for name in ("Beslutsdatum", "LagakraftDatum"):
                self._field(builder, decision, mapping, fields, f"Beslut/{name}", row)
        self._field(builder, claim, mapping, fields, "Skuldgrupp", row)

    @staticmethod
    def _spot(fields: Mapping[str, FieldSource], name: str, row: _Row, column: str | None = None) -> Spot:
        source = fields.get(name)
        column = column or (source.column if source else None)
        if column is None:
            # A fixed value from the mapping: the place names the field, not a column.
            return Spot(f"/rad/{row.line}/({name})", row.line)
        return Spot(f"/rad/{row.line}/{column}", row.line)

    def _value(self, mapping: CsvMapping, fields: Mapping[str, FieldSource], name: str, row: _Row) -> str:
        source = fields.get(name)
        if source is None:
            return ""
        if source.value is not None:
            return source.value
        if source.column is None:
            return " ".join(row.cells[c].strip() for c in source.columns).strip()
        cell = row.cells[source.column].strip()
        cell = source.values.get(cell, cell)
        if not cell:
            return ""
        if name in DATE_FIELDS:
            return _date(cell, mapping.date_formats)
        if name in DECIMAL_FIELDS:
            return _decimal(cell, mapping.decimal_comma)
        return cell

    def _field(
        self,
        builder: PartBuilder,
        parent: etree._Element,
        mapping: CsvMapping,
        fields: Mapping[str, FieldSource],
        name: str,
        row: _Row,
        *,
        always: bool = False,
        element: bool = False,
    ) -> str | etree._Element | None:
        """Add the field's element when it has a value (``always``: even empty, for the schema to
        name it as missing); return its value (``element``: the element)."""
        local = name.rsplit("/", 1)[-1]
        source = fields.get(name)
        if source is not None and source.columns:
            made = None
            for column in source.columns:
                cell = row.cells[column].strip()
                if cell:
                    made = builder.element(parent, local, self._spot(fields, name, row, column))
                    builder.text(made, cell)
            return made if element else None
        value = self._value(mapping, fields, name, row)
        if not value and not always:
            return None
        if not value and source is None:
            return None  # the mapping does not name it: the schema's own message says it is missing
        made = builder.element(parent, local, self._spot(fields, name, row))
        builder.text(made, value)
        return made if element else value

    def _attribute(
        self,
        builder: PartBuilder,
        element: etree._Element,
        mapping: CsvMapping,
        fields: Mapping[str, FieldSource],
        name: str,
        row: _Row,
    ) -> None:
        value = self._value(mapping, fields, name, row)
        if value:
            builder.attribute(element, name.rsplit("/@", 1)[-1], value, self._spot(fields, name, row))

    @staticmethod
    def _formulas(mapping: CsvMapping, row: _Row) -> list[Finding]:
        found: list[Finding] = []
        for column in mapping.columns():
            cell = row.cells[column]
            stripped = cell.strip()
            if cell.startswith(_FORMULA_START) or stripped.startswith(_FORMULA_START[:4]):
                if _NUMBER_LIKE.fullmatch(stripped):
                    continue
                found.append(
                    Finding(
                        "S03",
                        Severity.ERROR,
                        f"/rad/{row.line}/{column}",
                        row.line,
                        f"Cellen börjar med {_shown(stripped[:1] or cell[:1])!r} som en kalkylformel och är inget "
                        "tal; den tas inte emot (CSV-injektion). Ta bort tecknet i exporten.",
                        f"The cell starts with {_shown(stripped[:1] or cell[:1])!r} like a spreadsheet formula and "
                        "is no number; it is not taken (CSV injection). Remove the character in the export.",
                    )
                )
        return found


def _disagreements(case_level: list[Mapping[str, FieldSource]], first: _Row, row: _Row) -> list[Finding]:
    found: list[Finding] = []
    for fields in case_level:
        for source in fields.values():
            for column in source.all_columns():
                if row.cells[column].strip() != first.cells[column].strip():
                    found.append(
                        Finding(
                            "S04",
                            Severity.ERROR,
                            f"/rad/{row.line}/{column}",
                            row.line,
                            f"Kolumnen {_shown(column)} skiljer sig från ärendets första rad (rad {first.line}); "
                            "ett ärendes rader ska ha samma motpart och ärendeuppgifter.",
                            f"The column {_shown(column)} differs from the case's first row (line {first.line}); "
                            "the rows of one case must have the same debtor and case details.",
                        )
                    )
    return found


def _date(cell: str, formats: Sequence[str]) -> str:
    """A date in one of the mapping's formats as ISO 8601; anything else as it stands, for the
    schema to refuse with its own message (S01)."""
    for date_format in formats:
        try:
            return datetime.strptime(cell, date_format).date().isoformat()
        except ValueError:
            continue
    return cell


def _decimal(cell: str, decimal_comma: bool) -> str:
    """An amount as xs:decimal text: spaces (thousands) removed, a decimal comma made a point.

    >>> _decimal("12 500,50", True), _decimal("-100,00", True), _decimal("1,234.50", False)
    ('12500.50', '-100.00', '1234.50')
    """
    text = cell.replace(" ", "").replace("\u00a0", "")
    if decimal_comma:
        return text.replace(",", ".") if "." not in text else text
    return text.replace(",", "")
