"""The configuration file: every problem reported at once, with its key; paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.domain.judging import CaseErrorPolicy
from gateway.errors import ConfigError

GOOD = """
[gateway]
timezone = "Europe/Stockholm"
on_case_error = "reject-file"

[store]
url = "sqlite:///var/gateway.db"

[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"

[[clients]]
id = "museum"
orgnr = "2021000019"
name = "Statens exempelmuseum"

[[sources]]
name = "erp"
type = "folder"
path = "inbox"
clients = ["lst-exempel"]
stable_seconds = 3

[delivery]
type = "folder"
path = "outbox/journals"
schedule = "0 16 * * mon-fri"
review = "manual"

[rules]
strict_sequence = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_config_is_read_into_typed_settings(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, GOOD))
    assert loaded.on_case_error is CaseErrorPolicy.REJECT_FILE
    assert [client.orgnr for client in loaded.clients] == ["2021000001", "2021000019"]
    source = loaded.sources[0]
    assert source.path == (tmp_path / "inbox").resolve()
    assert source.stable_seconds == 3.0
    assert loaded.source_orgnrs(source) == frozenset({"2021000001"})
    assert loaded.delivery.review == "manual"
    assert loaded.delivery.path == (tmp_path / "outbox" / "journals").resolve()
    assert loaded.rules.strict_sequence is True
    assert len(loaded.sha256) == 64


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    bad = GOOD.replace('timezone = "Europe/Stockholm"', 'timezone = "Mars/Olympus"')
    bad = bad.replace('review = "manual"', 'review = "sometimes"\nreveiw = "auto"')
    bad = bad.replace('orgnr = "2021000019"', 'orgnr = "2021000018"')
    bad = bad.replace('clients = ["lst-exempel"]', 'clients = ["lst-exempel", "nobody"]')
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, bad))
    problems = error.value.problems
    assert "gateway.timezone: unknown time zone 'Mars/Olympus'" in problems
    assert "delivery.reveiw: unknown key" in problems
    assert "delivery.review: must be one of auto, manual, not 'sometimes'" in problems
    assert "clients[1].orgnr: '2021000018' is not a valid organisationsnummer" in problems
    assert "sources[0].clients: 'nobody' is not a configured client id" in problems
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("[surprise]\nx = 1\n", "surprise: unknown key"),
        ('[gateway]\nscan_seconds = "ten"\n', "gateway.scan_seconds: must be a float, not str"),
        ("[gateway]\nscan_seconds = 0\n", "gateway.scan_seconds: must be a number greater than 0"),
        # TOML has inf and nan: a loop that never wakes, or a file never taken.
        (
            "[gateway]\nscan_seconds = inf\n",
            "gateway.scan_seconds: must be a number greater than 0 and at most 3600",
        ),
        (
            '[[sources]]\nname = "s"\npath = "in"\nstable_seconds = nan\n',
            "sources[0].stable_seconds: must be a number greater than 0 and at most 86400",
        ),
        (
            '[[sources]]\nname = "s"\npath = "in"\nstable_seconds = -inf\n',
            "sources[0].stable_seconds: must be a number",
        ),
        ('[[sources]]\nname = "s"\ntype = "sftp"\nport = 70000\n', "sources[0].port: must be a TCP port"),
        (
            "[rules]\nmax_attachment_bytes = 0\n",
            "rules.max_attachment_bytes: must be a number greater than 0",
        ),
        ('[store]\nurl = "mysql://x"\n', "store.url: must start with sqlite:/// or postgresql://"),
        ('[store]\nurl = "postgresql://gw:s3cret@db/gw"\n', "store.url: holds a password: remove it"),
        (
            '[store]\nurl = "postgresql://gw@db/gw?password=s3cret"\n',
            "store.url: holds a password: remove it",
        ),
        ('[[sources]]\nname = "s"\ntype = "sftp"\n', "sources[0].known_hosts: required for an sftp source"),
        ('[[sources]]\nname = "s"\ntype = "folder"\n', "sources[0].path: required for a folder source"),
        (
            '[delivery]\nschedule = "daily"\n',
            "delivery.schedule: must be a cron expression of five fields, not 'daily'",
        ),
        ('[[clients]]\nid = "a b"\norgnr = "2021000001"\n', "clients[0].id: required; letters, digits"),
        ('[reports]\nschedule = "0 25 * * *"\n', "reports.schedule: not a valid cron expression"),
        ("[reports]\nkeep_days = 30\n", "reports.keep_days: unknown key"),
    ],
)
def test_single_problems_name_their_key(tmp_path: Path, snippet: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, snippet))
    assert any(problem.startswith(expected) for problem in error.value.problems), error.value.problems


def test_a_postgresql_url_without_a_password_is_taken_and_the_refusal_never_shows_one(tmp_path: Path) -> None:
    taken = config.load(write(tmp_path, '[store]\nurl = "postgresql://gw@db.example:5432/gateway"\n'))
    assert taken.store_url == "postgresql://gw@db.example:5432/gateway"
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, '[store]\nurl = "postgresql://gw:s3cret@db/gw"\n'))
    assert "s3cret" not in str(error.value) and "PGPASSWORD" in str(error.value)


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        config.load(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[gateway\n"))


def test_config_is_found_by_flag_then_environment_then_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    assert config.locate(None, cwd=tmp_path) == tmp_path / "gateway.toml"
    monkeypatch.setenv(config.CONFIG_ENV, "/etc/inkasso/gateway.toml")
    assert config.locate(None, cwd=tmp_path) == Path("/etc/inkasso/gateway.toml")
    assert config.locate("mine.toml", cwd=tmp_path) == Path("mine.toml")


def test_postal_directory_reads_plain_and_geonames_files(tmp_path: Path) -> None:
    (tmp_path / "postnummer.tsv").write_text("111 22\tStockholm\n", encoding="utf-8")
    (tmp_path / "SE.txt").write_text("SE\t903 26\tUmeå\tVästerbotten\t24\n", encoding="utf-8")
    for name, code, town in (("postnummer.tsv", "11122", "Stockholm"), ("SE.txt", "90326", "Umeå")):
        loaded = config.load(write(tmp_path, f'[rules]\npostal_directory = "{name}"\n'))
        assert loaded.load_postal_directory() == {code: town}


def test_a_cron_expression_that_cannot_fire_is_caught_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, '[delivery]\nschedule = "0 25 * * mon-fri"\n'))
    assert error.value.problems[0].startswith("delivery.schedule: not a valid cron expression")


def test_a_malformed_postal_directory_is_caught_at_start(tmp_path: Path) -> None:
    (tmp_path / "postnummer.tsv").write_text("11122\tStockholm\nbroken line\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        config.load(write(tmp_path, '[rules]\npostal_directory = "postnummer.tsv"\n'))


def test_outbox_and_var_follow_data_dir(tmp_path: Path) -> None:
    from gateway.folders import Folders

    loaded = config.load(write(tmp_path, '[gateway]\ndata_dir = "/srv/inkasso"\n'))
    folders = Folders.from_config(loaded)
    assert folders.journals == Path("/srv/inkasso/outbox/journals")
    assert folders.archive == Path("/srv/inkasso/var/archive")


def test_reports_default_to_a_nightly_run_into_the_outbox_and_can_be_turned_off(tmp_path: Path) -> None:
    from gateway.folders import Folders

    loaded = config.load(write(tmp_path, ""))
    assert loaded.reports.schedule == "30 0 * * *"
    assert Folders.from_config(loaded).reports == tmp_path / "outbox" / "reports"
    off = config.load(write(tmp_path, '[reports]\nschedule = ""\npath = "/srv/rapporter"\n'))
    assert off.reports.schedule is None
    assert Folders.from_config(off).reports == Path("/srv/rapporter")


@pytest.mark.parametrize(
    ("snippet", "keys"),
    [
        # A source that is the delivery folder would take the gateway's own journals as case files.
        (
            '[[sources]]\nname = "in"\npath = "outbox/journals"\n',
            ("sources[0].path", "delivery.path"),
        ),
        # "." is the data folder itself: var/ and the configuration inside a source.
        ('[[sources]]\nname = "in"\npath = "."\n', ("sources[0].path", "gateway.data_dir (its var/)")),
        (
            '[[sources]]\nname = "in"\npath = "var/inbox"\n',
            ("sources[0].path", "gateway.data_dir (its var/)"),
        ),
        ('[reports]\npath = "outbox/receipts/reports"\n', ("reports.path", "outbox/receipts")),
        (
            '[[sources]]\nname = "a"\npath = "in"\n[[sources]]\nname = "b"\npath = "in/b"\n',
            ("sources[1].path", "sources[0].path"),
        ),
        ('[delivery]\npath = "var"\n', ("delivery.path", "gateway.data_dir (its var/)")),
    ],
)
def test_folders_that_overlap_or_nest_are_refused_naming_both_keys(
    tmp_path: Path, snippet: str, keys: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, snippet))
    assert any(all(key in problem for key in keys) for problem in error.value.problems), error.value.problems


def test_a_source_holding_the_configuration_is_refused(tmp_path: Path) -> None:
    # Data-side paths (sources, delivery, reports) are relative to the data folder.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gateway.toml").write_text(
        '[gateway]\ndata_dir = "../data"\n[[sources]]\nname = "in"\npath = "../etc"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: .* holds the configuration file"):
        config.load(tmp_path / "etc" / "gateway.toml")


def test_data_side_paths_follow_the_data_folder_and_keys_stay_beside_the_configuration(
    tmp_path: Path,
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "postnummer.txt").write_text("11122\tStockholm\n", encoding="utf-8")
    (tmp_path / "etc" / "gateway.toml").write_text(
        '[gateway]\ndata_dir = "/srv/inkasso"\n'
        '[[sources]]\nname = "in"\npath = "inbox"\n'
        '[delivery]\npath = "outbox/to-kammarkollegiet"\n'
        '[reports]\npath = "rapporter"\n'
        '[rules]\npostal_directory = "postnummer.txt"\n',
        encoding="utf-8",
    )
    loaded = config.load(tmp_path / "etc" / "gateway.toml")
    assert loaded.sources[0].path == Path("/srv/inkasso/inbox")
    assert loaded.delivery.path == Path("/srv/inkasso/outbox/to-kammarkollegiet")
    assert loaded.reports.path == Path("/srv/inkasso/rapporter")
    assert loaded.rules.postal_directory == tmp_path / "etc" / "postnummer.txt"


def test_a_source_folder_gets_a_group_and_a_mode_and_others_get_nothing(tmp_path: Path) -> None:
    import grp
    import os

    group = grp.getgrgid(os.getgid()).gr_name
    loaded = config.load(
        write(tmp_path, f'[[sources]]\nname = "in"\npath = "in"\ngroup = "{group}"\nmode = "2770"\n')
    )
    assert (loaded.sources[0].group, loaded.sources[0].mode) == (group, 0o2770)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.mode: 2777: others may not"):
        config.load(write(tmp_path, '[[sources]]\nname = "in"\npath = "in"\nmode = "2777"\n'))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.group: no Unix group 'no-such-group-x'"):
        config.load(write(tmp_path, '[[sources]]\nname = "in"\npath = "in"\ngroup = "no-such-group-x"\n'))


def test_the_installed_configuration_is_found_without_flag_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INKASSO_GATEWAY_CONFIG", raising=False)
    installed = tmp_path / "etc" / "gateway.toml"
    assert config.locate(None, cwd=tmp_path, installed=installed) == tmp_path / "gateway.toml"
    installed.parent.mkdir()
    installed.write_text("", encoding="utf-8")
    assert config.locate(None, cwd=tmp_path, installed=installed) == installed
    (tmp_path / "gateway.toml").write_text("", encoding="utf-8")
    assert config.locate(None, cwd=tmp_path, installed=installed) == tmp_path / "gateway.toml"
