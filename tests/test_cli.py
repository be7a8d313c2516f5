"""The `validate` and `rules` commands as a user and a program see them: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from gateway.domain.rules import all_rules
from tests.conftest import EXAMPLE, REPO, SAMPLE_CONFIG, broken_copy

AS_OF = ["--as-of", "2026-11-25"]
CONFIG = SAMPLE_CONFIG


@pytest.fixture(autouse=True)
def _away_from_the_repository_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # validate uses ./gateway.toml when present: run where there is none unless a test says so.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INKASSO_GATEWAY_CONFIG", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clean_file_exits_0_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLE), *AS_OF)
    assert code == EXIT_OK
    assert "accepted / godkänd: 3 of 3 cases accepted, 37850.50 SEK; 0 finding(s)" in out
    assert "no config: the client check (F05) is skipped" in out


def test_broken_file_prints_every_finding_with_code_line_and_both_languages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = broken_copy(
        tmp_path,
        {
            "<Identitet>850315-9819</Identitet>": "<Identitet>850231-9819</Identitet>",
            "<Postnummer>90326</Postnummer>": "<Postnummer>903 26</Postnummer>",
            "<AntalArenden>3</AntalArenden>": "<AntalArenden>4</AntalArenden>",
        },
    )
    code, out, _ = run(capsys, "validate", str(broken), *AS_OF)
    assert code == EXIT_REJECTED
    assert "REJECTED / underkänd" in out
    assert "F06 error   line 105" in out
    assert "M02 error   line 19     /Arendefil/Arende[1]/Motpart[1]/Identitet" in out
    assert "M10 warning line 55" in out
    assert "sv: Personnumret 850231-XXXX innehåller inget giltigt födelsedatum." in out
    assert "en: The personal identity number 850231-XXXX does not hold a valid date of birth." in out
    assert "9819" not in out


def test_json_output_is_one_object_per_file_in_the_contract_shape(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = broken_copy(
        tmp_path, {"<Identitet>850315-9819</Identitet>": "<Identitet>850315-9818</Identitet>"}
    )
    code, out, _ = run(capsys, "validate", str(EXAMPLE), str(broken), *AS_OF, "--format", "json")
    assert code == EXIT_REJECTED
    lines = out.splitlines()
    assert len(lines) == 2
    clean, partial = (json.loads(line) for line in lines)
    assert clean["status"] == "accepted"
    assert clean["violations"] == []
    assert [case["status"] for case in clean["cases"]] == ["accepted"] * 3
    assert partial["status"] == "partially-accepted"
    assert len(partial["sha256"]) == 64
    first = partial["cases"][0]
    assert first["ref"] == "LST-2026-0412"
    assert first["status"] == "rejected"
    assert first["violations"] == [
        {
            "code": "M02",
            "severity": "error",
            "path": "/Arendefil/Arende[1]/Motpart[1]/Identitet",
            "line": 19,
            "message_sv": "Personnumret 850315-XXXX har fel kontrollsiffra; kontrollera att numret är rätt avskrivet.",
            "message_en": "The personal identity number 850315-XXXX has a wrong check digit; check that the number was copied correctly.",
        }
    ]
    assert partial["summary"] == {
        "cases": 3,
        "accepted": 2,
        "rejected": 1,
        "duplicate": 0,
        "accepted_capital": "33050.50",
    }


def test_a_directory_means_every_case_file_in_it_but_never_temporary_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("a.xml", "b.XML", "c.xml.part", "d.xml.tmp", ".e.xml", "notes.txt"):
        (tmp_path / name).write_bytes(EXAMPLE.read_bytes())
    code, out, _ = run(capsys, "validate", str(tmp_path), *AS_OF, "--format", "json")
    assert code == EXIT_OK
    assert sorted(Path(json.loads(line)["file"]).name for line in out.splitlines()) == ["a.xml", "b.XML"]


def test_missing_file_is_an_io_error_exit_2_after_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(EXAMPLE), "/no/such/file.xml", *AS_OF)
    assert code == EXIT_USAGE
    assert "accepted / godkänd" in out
    assert "/no/such/file.xml: no such file or directory" in err


def test_bad_as_of_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(EXAMPLE), "--as-of", "25/11/2026"])
    assert exit_info.value.code == EXIT_USAGE
    assert "not a date" in capsys.readouterr().err


def test_config_clients_drive_the_client_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG, encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(EXAMPLE), *AS_OF, "--config", str(config))
    assert code == EXIT_OK
    assert f"config {config}" in out

    other = broken_copy(tmp_path, {"202100-0001": "202100-6255"}, name="other-client.xml")
    code, out, _ = run(capsys, "validate", str(other), *AS_OF, "--config", str(config))
    assert code == EXIT_REJECTED
    assert "F05 error" in out
    assert "Uppdragsgivaren 202100-6255 är inte ansluten" in out


def test_a_broken_config_is_exit_2_with_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG + "\n[gateway]\ntimezon = 'Europe/Stockholm'\n", encoding="utf-8")
    code, _, err = run(capsys, "validate", str(EXAMPLE), *AS_OF, "--config", str(config))
    assert code == EXIT_USAGE
    assert "gateway.timezon: unknown key" in err


def test_rules_markdown_lists_every_registered_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "--format", "markdown")
    assert code == EXIT_OK
    for rule in all_rules():
        assert f"| {rule.code} | {rule.severity} |" in out


def test_readme_rule_table_matches_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    _, table, _ = run(capsys, "rules", "--format", "markdown")
    assert table in (REPO / "README.md").read_text(encoding="utf-8"), (
        "README's rule table is out of date: paste `inkasso-gateway rules --format markdown`"
    )


@pytest.mark.integration
def test_python_dash_m_gateway_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "validate", str(EXAMPLE), *AS_OF, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert json.loads(result.stdout)["status"] == "accepted"
