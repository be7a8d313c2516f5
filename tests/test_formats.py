"""JSON and CSV case files: the same cases as XML get the same answers; hostile ones get findings.

The examples hold the same three cases three times: ``lst-exempel-2026-11-24.xml``, its JSON
(``convert --to json``) and an Agresso open-items export with its mapping. Every comparison is
case for case: statuses and rule codes, in `validate`, `validate --format json` and the intake.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway import config as config_module
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.formats.casecsv import MAX_CASE_ROWS, MAX_CELL_CHARS, load_mapping
from gateway.formats.casefile import CaseFileReader
from gateway.formats.casejson import MAX_DEPTH, MAX_STRING_CHARS, JsonCaseFileReader
from gateway.formats.conversion import ConversionError, json_to_xml, xml_to_json
from gateway.service.validation import FileReport, ValidationSettings, validate_file
from tests.conftest import REPO, SAMPLE_CONFIG, TODAY
from tests.test_intake import KV, Gateway

EXAMPLES = REPO / "examples"
XML = EXAMPLES / "lst-exempel-2026-11-24.xml"
JSON = EXAMPLES / "lst-exempel-2026-11-24.json"
CSV = EXAMPLES / "lst-exempel-kundreskontra-2026-11-24.csv"
MAPPING = EXAMPLES / "agresso-kundreskontra.toml"
MIXED = EXAMPLES / "with-errors" / "lst-exempel-2026-11-25-blandad.xml"
CLIENTS = frozenset({"2021000001"})


def _settings(**overrides: Any) -> ValidationSettings:
    return ValidationSettings(today=TODAY, clients=CLIENTS, csv_mapping=load_mapping(MAPPING), **overrides)


def _validate(path: Path, **overrides: Any) -> FileReport:
    return validate_file(path, _settings(**overrides))


def _answers(report: FileReport) -> tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]:
    """What must agree between formats: the file's status, and each case's reference, status and
    findings (code and severity), in order."""
    verdict = report.verdict
    return verdict.status.value, [
        (case.reference, case.status.value, sorted((f.code, f.severity.value) for f in case.findings))
        for case in verdict.cases
    ]


def _codes(report: FileReport) -> set[str]:
    verdict = report.verdict
    return {f.code for f in verdict.findings} | {f.code for c in verdict.cases for f in c.findings}


def _as_json(xml: Path, folder: Path) -> Path:
    target = folder / (xml.stem + ".json")
    with xml.open("rb") as source, target.open("w", encoding="utf-8") as out:
        xml_to_json(source, out)
    return target


# -- the same cases, the same answers ---------------------------------------------------------


def test_the_example_agrees_case_for_case_in_xml_json_and_csv() -> None:
    answers = [_answers(_validate(path)) for path in (XML, JSON, CSV)]
    assert answers[0][0] == "accepted"
    assert answers[0] == answers[1] == answers[2]
    assert [case[0] for case in answers[0][1]] == ["LST-2026-0412", "LST-2026-0419", "LST-2026-0425"]


def test_the_examples_json_is_what_convert_makes_of_the_xml(tmp_path: Path) -> None:
    assert _as_json(XML, tmp_path).read_text(encoding="utf-8") == JSON.read_text(encoding="utf-8")


def test_a_file_with_findings_gets_the_same_findings_as_json_pointing_into_the_json(tmp_path: Path) -> None:
    xml_report, json_report = _validate(MIXED), _validate(_as_json(MIXED, tmp_path))
    assert _answers(xml_report) == _answers(json_report)
    assert _answers(xml_report)[0] == "partially-accepted"
    paths = {f.code: f.path for case in json_report.verdict.cases for f in case.findings}
    assert paths == {
        "M02": "/Arende/1/Motpart/0/Identitet",
        "A01": "/Arende/2/Fordranstyp",
        "M10": "/Arende/3/Motpart/0/Adress/Postnummer",
    }


def test_a_schema_error_in_json_is_s01_at_its_json_pointer(tmp_path: Path) -> None:
    data = json.loads(JSON.read_text(encoding="utf-8"))
    data["Arende"][2]["Fordran"][0]["Kapitalbelopp"] = {"@valuta": "SEK", "$": "abc"}
    data["Arende"][1]["Fordran"][1]["Ranta"] = {"@typ": "okand"}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    report = _validate(path)
    found = {(f.code, f.path) for case in report.verdict.cases for f in case.findings}
    assert found == {
        ("S01", "/Arende/2/Fordran/0/Kapitalbelopp"),
        ("S01", "/Arende/1/Fordran/1/Ranta/@typ"),
    }
    assert [case.status.value for case in report.verdict.cases] == ["accepted", "rejected", "rejected"]


def test_json_keys_in_any_order_mean_the_same_case(tmp_path: Path) -> None:
    data = json.loads(JSON.read_text(encoding="utf-8"))
    data["Arende"] = [dict(reversed(list(case.items()))) for case in data["Arende"]]
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert _answers(_validate(path)) == _answers(_validate(XML))


def test_csv_findings_name_the_line_and_the_column(tmp_path: Path) -> None:
    text = (
        CSV.read_bytes()
        .decode("cp1252")
        .replace("4800,00", "-4800,00")
        .replace("12.08.2026;11.09", "12.08.2026;31.02")
    )
    path = tmp_path / "lst-exempel-kundreskontra-2026-11-24.csv"
    path.write_bytes(text.encode("cp1252"))
    case = next(iter(_validate(path).verdict.cases))
    assert {(f.code, f.path, f.line) for f in case.findings} == {
        ("R06", "/rad/2/Belopp", 2),  # a negative amount is data (R06), not a formula
        ("S01", "/rad/2/Förfallodatum", 2),
    }


def _as_receipt_answers(
    receipt: etree._Element,
) -> tuple[str | None, list[tuple[str | None, str | None, list[str]]]]:
    return receipt.findtext("k:Status", namespaces=KV), [
        (
            case.findtext("k:ArendeReferens", namespaces=KV),
            case.findtext("k:Status", namespaces=KV),
            sorted(
                str(a.findtext("k:Regel", namespaces=KV)) for a in case.findall("k:Anmarkning", namespaces=KV)
            ),
        )
        for case in receipt.findall("k:Arende", namespaces=KV)
    ]


@pytest.mark.parametrize(
    ("source_keys", "sample"),
    [
        ("", XML),
        ('format = "json"\n', JSON),
        (f'format = "csv"\nmapping = "{MAPPING}"\n', CSV),
    ],
    ids=["xml", "json", "csv"],
)
def test_the_intake_gives_the_same_receipt_in_every_format(
    tmp_path: Path, source_keys: str, sample: Path
) -> None:
    gateway = _gateway(tmp_path, source_keys)
    gateway.drop_and_process(sample)
    (receipt,) = gateway.receipts()
    assert _as_receipt_answers(receipt) == (
        "Godkand",
        [
            ("LST-2026-0412", "Godkand", []),
            ("LST-2026-0419", "Godkand", []),
            ("LST-2026-0425", "Godkand", []),
        ],
    )
    assert receipt.findtext("k:Fil/k:Namn", namespaces=KV) == sample.name
    assert receipt.findtext("k:Fil/k:Storlek", namespaces=KV) == str(sample.stat().st_size)


def test_the_intake_judges_a_json_file_with_findings_as_its_xml(tmp_path: Path) -> None:
    answers = []
    for name, sample in (("xml", MIXED), ("json", _as_json(MIXED, tmp_path))):
        gateway = _gateway(tmp_path / name, "")
        gateway.drop_and_process(sample)
        (receipt,) = gateway.receipts()
        answers.append(_as_receipt_answers(receipt))
        plats = [
            a.findtext("k:Plats", namespaces=KV)
            for a in receipt.iter("{urn:inkasso-gateway:kvittens:1}Anmarkning")
        ]
        assert all(p.startswith("/Arende/" if name == "json" else "/Arendefil/") for p in plats if p)
    assert answers[0] == answers[1]
    assert answers[0][0] == "DelvisGodkand"


def _gateway(folder: Path, source_keys: str) -> Gateway:
    folder.mkdir(parents=True, exist_ok=True)
    return Gateway(folder, config=SAMPLE_CONFIG + source_keys + "stable_seconds = 0.001\n")


def test_validate_format_json_answers_the_same_for_every_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "validate",
            str(XML),
            str(JSON),
            str(CSV),
            "--mapping",
            str(MAPPING),
            "--as-of",
            str(TODAY),
            "--format",
            "json",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(XML), str(JSON), str(CSV)]
    shapes = [
        (line["status"], line["summary"], [(c["ref"], c["status"], c["violations"]) for c in line["cases"]])
        for line in lines
    ]
    assert shapes[0] == shapes[1] == shapes[2]


def test_validate_a_directory_takes_json_and_csv_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for sample in (XML, JSON, CSV):
        shutil.copyfile(sample, tmp_path / sample.name)
    assert main(["validate", str(tmp_path), "--mapping", str(MAPPING), "--as-of", str(TODAY)]) == 0
    assert "3 file(s): 3 accepted" in capsys.readouterr().out


def test_a_csv_file_without_a_mapping_is_f11(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CSV), "--as-of", str(TODAY), "--format", "json"]) == 1
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [v["code"] for v in line["violations"]] == ["F11"]


# -- convert and the round trip ----------------------------------------------------------------


def _model(value: object) -> object:
    """A model object's content, without where it stood (paths and lines differ between formats)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _model(getattr(value, f.name))
            for f in fields(value)
            if f.name not in ("path", "line", "lines", "paths")
        }
    if isinstance(value, list):
        return [_model(item) for item in value]
    return value


def _cases(reader: CaseFileReader | JsonCaseFileReader) -> list[object]:
    return [_model(case) for case, findings in reader.cases() if not findings]


@pytest.mark.parametrize(
    "sample",
    [XML, MIXED, *sorted((REPO / "tests" / "data" / "valid").glob("*.xml"))],
    ids=lambda p: p.name,
)
def test_xml_to_json_to_xml_gives_the_same_cases(sample: Path) -> None:
    as_json = io.StringIO()
    with sample.open("rb") as source:
        count = xml_to_json(source, as_json)
    back = io.BytesIO()
    assert json_to_xml(io.BytesIO(as_json.getvalue().encode()), back) == count
    original = _cases(CaseFileReader(sample.open("rb")))
    assert len(original) == count
    assert _cases(JsonCaseFileReader(io.BytesIO(as_json.getvalue().encode()))) == original
    assert _cases(CaseFileReader(io.BytesIO(back.getvalue()))) == original
    # Converting again changes nothing: the canonical XML of both conversions is the same.
    again = io.StringIO()
    xml_to_json(io.BytesIO(back.getvalue()), again)
    assert again.getvalue() == as_json.getvalue()


def test_convert_command_both_ways(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json, out_xml = tmp_path / "a.json", tmp_path / "a.xml"
    assert main(["convert", str(XML), "--to", "json", "--output", str(out_json)]) == 0
    assert main(["convert", str(out_json), "--to", "xml", "--output", str(out_xml)]) == 0
    assert _cases(CaseFileReader(out_xml.open("rb"))) == _cases(CaseFileReader(XML.open("rb")))
    assert main(["convert", str(XML), "--to", "json"]) == 0


def test_convert_refuses_an_invalid_file_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = json.loads(JSON.read_text(encoding="utf-8"))
    data["Arende"][0]["Fordran"][0]["Kapitalbelopp"] = "abc"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    target = tmp_path / "out.xml"
    assert main(["convert", str(bad), "--to", "xml", "--output", str(target)]) == 1
    assert "not converted" in capsys.readouterr().err
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.json"]
    with pytest.raises(ConversionError):
        json_to_xml(io.BytesIO(b'{"Arende": [1], "Arende": []}'), io.BytesIO())


# -- hostile JSON ------------------------------------------------------------------------------


def _json_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    return path


def _example_json() -> dict[str, Any]:
    return dict(json.loads(JSON.read_text(encoding="utf-8")))


def _with_case_text(replace: Callable[[str], str]) -> bytes:
    return replace(JSON.read_text(encoding="utf-8")).encode("utf-8")


HOSTILE_JSON: dict[str, tuple[bytes, str]] = {
    "deep nesting": (b'{"Arende": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "F10"),
    "deep in a case": (
        json.dumps(
            {"Arende": [{"Kundnummer": json.loads("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))}]}
        ).encode(),
        "F10",
    ),
    "huge string": (b'{"Filhuvud": {"FilId": "' + b"x" * (MAX_STRING_CHARS + 1) + b'"}}', "F10"),
    "huge case": (
        b'{"Arende": [{"ArendeReferens": "A", "Motpart": ['
        + b",".join([b'{"Typ": "Privat"}'] * 300_000)
        + b"]}]}",
        "F10",
    ),
    "huge number": (b'{"Filsummering": {"AntalArenden": ' + b"9" * 50_000 + b"}}", "F10"),
    "latin-1": (_with_case_text(lambda t: t).replace("Umeå".encode(), "Umeå".encode("latin-1")), "F09"),
    "utf-16": ("{}".encode("utf-16"), "F09"),
    "not json": (b"<Arendefil/>", "F09"),
    "not an object": (b"[1, 2]", "F09"),
    "trailing garbage": (JSON.read_bytes() + b"{}", "F09"),
    "duplicate key outside a case": (
        _with_case_text(lambda t: t.replace('"@version": "1.0"', '"@version": "1.0", "@version": "1.0"')),
        "F09",
    ),
    "duplicate key in a case": (
        _with_case_text(
            lambda t: t.replace(
                '"ArendeReferens": "LST-2026-0419"',
                '"ArendeReferens": "LST-2026-0419", "ArendeReferens": "X"',
            )
        ),
        "S02",
    ),
    "wrong namespace": (
        _with_case_text(lambda t: t.replace("urn:inkasso-gateway:arendefil:1", "urn:x")),
        "F09",
    ),
    "a list in a list": (
        _with_case_text(lambda t: t.replace('"Utdelningsadress": [', '"Utdelningsadress": [[1], ')),
        "S01",
    ),
    "control character": (_with_case_text(lambda t: t.replace("Storgatan 1", "Storgatan\\u0001")), "S01"),
    "unknown key": (
        _with_case_text(lambda t: t.replace('"@version": "1.0",', '"@version": "1.0", "Extra": 1,')),
        "F03",
    ),
    "no version": (_with_case_text(lambda t: t.replace('"@version": "1.0",', "")), "F03"),
    "empty": (b"", "F09"),
}


@pytest.mark.parametrize("name", HOSTILE_JSON)
def test_hostile_json_gets_a_finding_with_a_code(tmp_path: Path, name: str) -> None:
    content, code = HOSTILE_JSON[name]
    report = _validate(_json_file(tmp_path, content))
    assert code in _codes(report), [(f.code, f.message_en) for f in report.verdict.findings]
    assert report.verdict.status.value in ("rejected", "partially-accepted")
    for finding in report.verdict.findings:
        assert "850315-9819" not in finding.message_sv + finding.message_en


def test_a_json_bom_is_read_and_the_receipt_hashes_the_bytes_as_sent(tmp_path: Path) -> None:
    path = _json_file(tmp_path, b"\xef\xbb\xbf" + JSON.read_bytes())
    report = _validate(path)
    assert _answers(report) == _answers(_validate(XML))
    assert report.size == JSON.stat().st_size + 3


def test_a_json_file_cut_off_mid_write_is_taken_for_one_still_being_written(tmp_path: Path) -> None:
    report = _validate(_json_file(tmp_path, JSON.read_bytes()[:-40]))
    assert report.truncated
    assert "F09" in _codes(report)


# -- hostile CSV -------------------------------------------------------------------------------


def _csv_file(tmp_path: Path, text: str, encoding: str = "cp1252") -> Path:
    path = tmp_path / "lst-exempel-kundreskontra-2026-11-24.csv"
    path.write_bytes(text.encode(encoding))
    return path


def _csv_text() -> str:
    return CSV.read_bytes().decode("cp1252")


def _long_case() -> str:
    lines = _csv_text().split("\r\n")
    return "\r\n".join([lines[0], *[lines[1]] * (MAX_CASE_ROWS + 1)])


HOSTILE_CSV: dict[str, tuple[Callable[[], str], str, str]] = {
    "formula": (lambda: _csv_text().replace("Storgatan 1", '=HYPERLINK("http://x")'), "cp1252", "S03"),
    "formula at": (lambda: _csv_text().replace("K-10442", "@SUM(A1)"), "cp1252", "S03"),
    "formula plus": (
        lambda: _csv_text().replace("Maria;Exempelsson", "+cmd|' /C calc'!A0;Exempelsson"),
        "cp1252",
        "S03",
    ),
    "formula tab": (lambda: _csv_text().replace("Storgatan 1", "\t=1+1"), "cp1252", "S03"),
    "utf-8 for windows-1252": (_csv_text, "utf-8", "F11"),
    "windows-1252 undefined byte": (
        lambda: _csv_text().replace("Storgatan", "Storgatan\x81"),
        "latin-1",
        "F11",
    ),
    "utf-16": (_csv_text, "utf-16", "F11"),
    "huge cell": (lambda: _csv_text().replace("Storgatan 1", "x" * (MAX_CELL_CHARS + 1)), "cp1252", "F12"),
    "huge line": (lambda: _csv_text().replace("Storgatan 1", "x;" * 40_000), "cp1252", "F12"),
    "ragged row": (lambda: _csv_text().replace("Storgatan 1;", "Storgatan 1;;"), "cp1252", "F11"),
    "missing column": (lambda: _csv_text().replace("Förfallodatum", "Forfall"), "cp1252", "F11"),
    "doubled column": (lambda: _csv_text().replace("Laga kraft", "Belopp"), "cp1252", "F11"),
    "unclosed quote": (lambda: _csv_text().replace("Storgatan 1", '"Storgatan 1'), "cp1252", "F11"),
    "rows disagree": (
        lambda: _csv_text().replace(
            "Industrivägen 12;;90326;Umeå;;;2026-10913", "Industrivägen 14;;90326;Umeå;;;2026-10913"
        ),
        "cp1252",
        "S04",
    ),
    "too many rows in a case": (_long_case, "cp1252", "F12"),
    "empty": (lambda: "", "cp1252", "F11"),
}


@pytest.mark.parametrize("name", HOSTILE_CSV)
def test_hostile_csv_gets_a_finding_with_a_code(tmp_path: Path, name: str) -> None:
    make, encoding, code = HOSTILE_CSV[name]
    report = _validate(_csv_file(tmp_path, make(), encoding))
    assert code in _codes(report), (
        [(f.code, f.message_en) for f in report.verdict.findings],
        [(f.code, f.path, f.message_en) for c in report.verdict.cases for f in c.findings],
    )
    assert report.verdict.status.value in ("rejected", "partially-accepted")


def test_a_utf8_bom_means_utf8_whatever_the_mapping_says(tmp_path: Path) -> None:
    path = _csv_file(tmp_path, "\ufeff" + _csv_text(), "utf-8")
    assert _answers(_validate(path)) == _answers(_validate(XML))


def test_a_phone_number_and_a_negative_amount_are_no_formula(tmp_path: Path) -> None:
    text = _csv_text().replace("070-123 45 67", "+46 70-123 45 67")
    assert _answers(_validate(_csv_file(tmp_path, text))) == _answers(_validate(XML))


def test_a_co_debtor_comes_from_a_second_debtor_table(tmp_path: Path) -> None:
    mapping = MAPPING.read_text(encoding="utf-8").replace(
        "[claim]",
        '[[debtor]]\nTyp = { value = "Privat" }\nIdentitet = "Medgäldenär"\n"Person/Efternamn" = "Medgäldenär namn"\n"Person/Fornamn" = "Förnamn"\n'
        '"Adress/Postnummer" = "Postnr"\n"Adress/Utdelningsadress" = "Adress 1"\n\n[claim]',
    )
    (tmp_path / "m.toml").write_text(mapping, encoding="utf-8")
    lines = _csv_text().split("\r\n")
    lines[0] += ";Medgäldenär;Medgäldenär namn"
    lines[1] += ";850315-9819;Exempelsson"  # the same person twice in one case: M14
    lines[2:5] = [line + ";;" for line in lines[2:5]]
    path = _csv_file(tmp_path, "\r\n".join(lines))
    report = validate_file(
        path, ValidationSettings(today=TODAY, clients=CLIENTS, csv_mapping=load_mapping(tmp_path / "m.toml"))
    )
    assert _answers(report)[1][0][2] == [("M14", "error")]
    assert [status for _ref, status, _f in _answers(report)[1][1:]] == ["accepted", "accepted"]


# -- configuration ------------------------------------------------------------------------------


def test_a_source_takes_format_and_mapping(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        SAMPLE_CONFIG + f'format = "csv"\nmapping = "{MAPPING.name}"\n', encoding="utf-8"
    )
    shutil.copyfile(MAPPING, tmp_path / MAPPING.name)
    (source,) = config_module.load(tmp_path / "gateway.toml").sources
    assert source.format == "csv"
    assert source.mapping == tmp_path / MAPPING.name
    assert source.csv_mapping is not None and source.csv_mapping.case_key == "Ärende"


@pytest.mark.parametrize(
    ("keys", "mapping", "says"),
    [
        ('format = "csv"\n', None, "mapping: required"),
        ('format = "yaml"\n', None, "format: must be one of xml, json, csv"),
        ('mapping = "m.toml"\n', "", "a mapping is for format"),
        ('format = "csv"\nmapping = "m.toml"\n', "[csv]\nencoding = 'latin-9'\n", "csv.encoding"),
        ('format = "csv"\nmapping = "m.toml"\n', "[claim]\nBelopp = 'x'\n", "claim.Belopp: not a field here"),
        ('format = "csv"\nmapping = "nowhere.toml"\n', None, "cannot read"),
    ],
)
def test_a_bad_format_or_mapping_is_a_config_error_naming_the_key(
    tmp_path: Path, keys: str, mapping: str | None, says: str
) -> None:
    if mapping is not None:
        (tmp_path / "m.toml").write_text(mapping, encoding="utf-8")
    (tmp_path / "gateway.toml").write_text(SAMPLE_CONFIG + keys, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        config_module.load(tmp_path / "gateway.toml")
    assert "sources[0]" in str(raised.value) and says in str(raised.value)


# -- the daemon ---------------------------------------------------------------------------------

_DAEMON_MAPPING = """
[csv]
encoding = "windows-1252"
date_formats = ["%d.%m.%Y"]

[file]
client_orgnr = "202100-0001"
file_id = "{stem}"

[case]
ArendeReferens = "Ärende"

[[debtor]]
Typ = { value = "Privat" }
Identitet = "Personnummer"
"Person/Fornamn" = "Förnamn"
"Person/Efternamn" = "Efternamn"
"Adress/Utdelningsadress" = "Adress"
"Adress/Postnummer" = "Postnr"
"Adress/Postort" = "Ort"

[claim]
Fakturanummer = "Fakturanr"
FordranAvser = "Text"
Fakturadatum = "Fakturadatum"
Forfallodatum = "Förfallodatum"
Kapitalbelopp = "Belopp"
"""


@pytest.mark.process
def test_the_daemon_answers_a_csv_source_with_a_mapping_and_a_json_file(tmp_path: Path) -> None:
    from tests import daemon_harness as harness

    (tmp_path / "kundreskontra.toml").write_text(_DAEMON_MAPPING, encoding="utf-8")
    gw = harness.Gateway(
        tmp_path / "gw",
        extra_config=(
            '\n[[sources]]\nname = "erp-csv"\ntype = "folder"\npath = "inbox-csv"\nstable_seconds = 0.3\n'
            f'format = "csv"\nmapping = "{tmp_path / "kundreskontra.toml"}"\n'
        ),
    )
    try:
        daemon = gw.start()
        specs = harness.cases("CSV", 3, bad_identity=[1])
        rows = [
            "Ärende;Personnummer;Förnamn;Efternamn;Adress;Postnr;Ort;Fakturanr;Text;Fakturadatum;Förfallodatum;Belopp"
        ]
        rows += [
            f"{s.reference};{s.identity};Test;Testsson;Provgatan 1;11122;Stockholm;{s.invoice};"
            f"Avgift för extra offentlig kontroll enligt beslut;12.08.2026;11.09.2026;{s.amount:.2f}".replace(
                f"{s.amount:.2f}", f"{s.amount:.2f}".replace(".", ",")
            )
            for s in specs
        ]
        (gw.root / "inbox-csv").mkdir(exist_ok=True)
        harness.drop(gw.root / "inbox-csv", "kundreskontra-1.csv", "\r\n".join(rows).encode("cp1252"))
        harness.drop(gw.inbox, JSON.name, JSON.read_bytes())
        harness.wait_for(lambda: len(gw.receipt_paths()) >= 2, timeout=60, what="two receipts", daemon=daemon)
        receipts = gw.receipts_by_name()
        csv_receipt, json_receipt = receipts["kundreskontra-1.csv"], receipts[JSON.name]
        assert csv_receipt.status == "DelvisGodkand"
        assert [(c.status, c.codes) for c in csv_receipt.cases] == [
            ("Godkand", []),
            ("Underkand", ["M02"]),
            ("Godkand", []),
        ]
        root = etree.parse(csv_receipt.path.open("rb")).getroot()
        (place,) = root.iterfind(
            ".//{urn:inkasso-gateway:kvittens:1}Arende/{urn:inkasso-gateway:kvittens:1}Anmarkning"
        )
        assert place.findtext("k:Plats", namespaces=KV) == "/rad/3/Personnummer"
        assert place.findtext("k:Rad", namespaces=KV) == "3"
        assert json_receipt.status == "Godkand" and len(json_receipt.cases) == 3
        assert daemon.terminate() == 0
    finally:
        gw.stop_all()
