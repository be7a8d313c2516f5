"""Operators and auditors: a data folder that can be moved, copied, backed up and restored, and
audited where it is by someone who may only read it.

The day's traffic comes from the in-process gateway of tests/test_intake.py; the auditor's side
is the command line (`audit verify`, `report --no-write`, `trace`) as a user would run it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import cli
from tests.conftest import EXAMPLE, REPO
from tests.system import WITHOUT_ROOT_POWERS, needs_root
from tests.test_intake import NOW, Gateway

MIXED = REPO / "examples" / "with-errors" / "lst-exempel-2026-11-25-blandad.xml"


def _a_day(folder: Path) -> Gateway:
    folder.mkdir()
    gateway = Gateway(folder)
    gateway.drop_and_process(EXAMPLE, MIXED)
    gateway.journals.seal()
    assert all(result.delivered for result in gateway.journals.deliver_approved())
    gateway.store.close()
    return gateway


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A day's data folder copied elsewhere (`cp -r`: new file times), the original moved away,
    and the copy seen through a read-only mount: (the copy, its read-only view)."""
    original = _a_day(tmp_path / "production")
    copy = tmp_path / "copy"
    shutil.copytree(original.config.path.parent, copy, copy_function=shutil.copy)
    original.config.path.parent.rename(tmp_path / "moved-away")  # reading the original now fails
    view = tmp_path / "view"
    view.mkdir()
    subprocess.run(["mount", "--bind", str(copy), str(view)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    try:
        yield copy, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.root
@needs_root
def test_a_copy_is_audited_where_it_is_never_the_original_and_nothing_is_written_into_it(
    read_only_copy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    copy, view = read_only_copy
    before = _listing(copy)
    config = str(view / "gateway.toml")
    code, out = _run(capsys, "audit", "verify", "--config", config, "--data-dir", str(view))
    assert code == 0 and out.startswith("OK: 2 receipt(s)"), out
    code, out = _run(capsys, "report", "--no-write", "--from", NOW.date().isoformat(), "--config", config)
    assert code == 0 and "Everything accounted for" in out and "written:" not in out, out
    code, out = _run(capsys, "trace", "LST-2026-0412", "--config", config, "--data-dir", str(view))
    assert code == 0 and "delivered as lst-exempel-000001.xml" in out, out
    assert str(copy.parent / "moved-away") not in out
    assert _listing(copy) == before, "nothing was written into the copy"

    # A changed byte in the copy is named, in the copy.
    receipt = next(path for path in copy.rglob("*.kvittens.xml") if "journals" not in path.parts)
    data = bytearray(receipt.read_bytes())
    data[len(data) // 2] ^= 0x01
    receipt.write_bytes(bytes(data))
    code, out = _run(capsys, "audit", "verify", "--config", config, "--data-dir", str(view))
    assert code == 1 and str(view / receipt.relative_to(copy)) in out.splitlines()[0], out


@pytest.mark.root
@needs_root
def test_a_file_the_auditor_may_not_read_is_a_named_break_not_a_traceback(
    read_only_copy: tuple[Path, Path],
) -> None:
    copy, view = read_only_copy
    archived = next((copy / "var" / "archive").rglob("*-lst-exempel-2026-11-24.xml"))
    archived.chmod(0)
    gateway = Path(sys.executable).with_name("inkasso-gateway")
    result = subprocess.run(
        [*WITHOUT_ROOT_POWERS, str(gateway), "audit", "verify", "--config", str(view / "gateway.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("BROKEN: unreadable:") and archived.name in first, result.stdout


# -- backup and restore -------------------------------------------------------------------------------


@pytest.mark.process
def test_a_backup_beside_the_running_daemon_is_consistent_audited_and_restorable_elsewhere(
    tmp_path: Path,
) -> None:
    from tests.daemon_harness import Gateway as Installation
    from tests.daemon_harness import case_file, cases, drop, wait_for

    gw = Installation(tmp_path / "production")
    daemon = gw.start()
    try:
        for n in range(10):
            drop(gw.inbox, f"b{n}.xml", case_file(f"B-{n}", cases(f"BK{n}", 2)))
        wait_for(lambda: len(gw.receipt_paths()) >= 4, timeout=30, what="some receipts", daemon=daemon)
        # While files keep arriving: the copy is of one moment, whatever comes after.
        first = gw.cli("backup", str(tmp_path / "backup"), timeout=120)
        assert "audit of the copy: OK" in first.stdout, first.stdout
        wait_for(lambda: len(gw.receipt_paths()) == 10, timeout=30, what="every receipt", daemon=daemon)
        gw.cli("journal", "seal")
        wait_for(lambda: gw.journal_files(), timeout=30, what="the journal", daemon=daemon)
        again = gw.cli("backup", str(tmp_path / "backup"), timeout=120)
        assert "audit of the copy: OK: 10 receipt(s)" in again.stdout, again.stdout
        assert "already there from an earlier backup" in again.stdout
    finally:
        assert daemon.terminate() == 0
    backup = tmp_path / "backup"
    modes = {path.stat().st_mode & 0o777 for path in backup.rglob("*")}
    assert modes <= {0o600, 0o700}, f"owner-only: {sorted(oct(m) for m in modes)}"
    assert list((backup / "var" / "config").glob("*.toml")), "the configuration in force is kept"

    # Restored to another path (and the original gone): the daemon starts on it and carries on.
    restored = tmp_path / "restored"
    shutil.copytree(backup, restored)
    gw.root.rename(tmp_path / "gone")
    config = restored / "gateway.toml"
    checked = _gateway("config", "check", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    audited = _gateway("audit", "verify", "--config", str(config))
    assert audited.returncode == 0 and audited.stdout.startswith("OK: 10 receipt(s)"), audited.stdout


def _gateway(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("inkasso-gateway")
    return subprocess.run([str(command), *args], capture_output=True, text=True, check=False, timeout=60)


def test_the_auditors_own_script_verifies_the_gateways_receipts_from_the_receipts_alone(
    tmp_path: Path,
) -> None:
    gateway = _a_day(tmp_path / "day")
    copy = tmp_path / "handed-over"
    shutil.copytree(gateway.folders.receipts, copy, copy_function=shutil.copy)  # new file times
    script = [sys.executable, str(REPO / "tools" / "verify_receipts.py"), str(copy)]
    result = subprocess.run(script, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("OK: 2 receipt(s)"), (
        result.stdout + result.stderr
    )
    receipt = next(copy.rglob("lst-exempel-2026-11-24.xml.*.kvittens.xml"))
    assert b"<Kedjeposition>1</Kedjeposition>" in receipt.read_bytes()
    receipt.write_bytes(
        receipt.read_bytes().replace(b"<Status>Godkand</Status>", b"<Status>Underkand</Status>", 1)
    )
    result = subprocess.run(script, capture_output=True, text=True, check=False)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN:"), result.stdout


# -- status tells the truth ------------------------------------------------------------------------


@pytest.mark.process
def test_status_says_whether_a_daemon_runs_and_what_waits_for_a_person(tmp_path: Path) -> None:
    import json

    from tests.daemon_harness import Gateway as Installation
    from tests.daemon_harness import case_file, cases, drop, wait_for

    gw = Installation(tmp_path / "gw")
    daemon = gw.start(env={"GATEWAY_TEST_FAULT": "raise:poison"})

    def status() -> tuple[int, dict[str, object], str]:
        as_json = gw.cli("status", "--format", "json", check=False)
        as_text = gw.cli("status", check=False)
        assert as_json.returncode == as_text.returncode, "the JSON and the text tell the same"
        facts = json.loads(as_json.stdout)
        assert facts["exit_code"] == as_json.returncode
        return as_json.returncode, facts, as_text.stdout

    wait_for(lambda: " started: " in daemon.stderr(), timeout=20, what="the daemon started", daemon=daemon)
    wait_for(lambda: status()[0] == 0, timeout=20, what="status 0: running, nothing waits", daemon=daemon)
    code, facts, text = status()
    assert facts["daemon"]["pid"] == daemon.pid and facts["daemon"]["heartbeat_age_seconds"] < 5  # type: ignore[index]
    assert "nothing waits for a person" in text and f"pid {daemon.pid}" in text

    drop(gw.inbox, "good.xml", case_file("GOOD-1", cases("G", 1)))
    drop(gw.inbox, "poison.xml", case_file("POISON-1", cases("P", 1)))
    wait_for(lambda: len(gw.receipt_paths()) == 2, timeout=60, what="two receipts", daemon=daemon)
    code, facts, text = status()
    assert code == 1, text
    (item,) = facts["attention"]  # type: ignore[misc]
    assert item["kind"] == "file-quarantined" and item["subject"] == "poison.xml"
    (source,) = facts["sources"]  # type: ignore[misc]
    assert source["last_received_at"] is not None

    listed = json.loads(gw.cli("quarantine", "list", "--format", "json").stdout)
    gw.cli(
        "quarantine", "resolve", str(listed[0]["file_id"]), "--by", "Karin", "--note", "asked ERP to resend"
    )
    assert status()[0] == 0
    assert json.loads(gw.cli("quarantine", "list", "--format", "json").stdout) == []

    assert daemon.terminate() == 0
    code, facts, text = status()
    assert code == 3 and facts["daemon"]["running"] is False, text  # type: ignore[index]
    assert "daemon NOT running" in text


# -- config check and who may write -------------------------------------------------------------------


def test_a_missing_source_folder_outside_the_data_folder_is_an_error_and_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    misspelt = tmp_path / "srv" / "inbxo"
    config = tmp_path / "etc" / "gateway.toml"
    config.parent.mkdir()
    config.write_text(
        '[gateway]\ndata_dir = "../data"\n'
        '[[clients]]\nid = "lst-exempel"\norgnr = "202100-0001"\nname = "L"\n'
        f'[[sources]]\nname = "erp"\npath = "{misspelt}"\n'
        '[[sources]]\nname = "local"\npath = "inbox/local"\n',
        encoding="utf-8",
    )
    code, out = _run(capsys, "config", "check", "--config", str(config))
    assert code == 2 and f"sources[0].path: {misspelt} does not exist" in out, out
    code, out = _run(capsys, "run", "--once", "--config", str(config))
    assert code == 2 and "does not exist" in out
    assert not misspelt.exists()
    misspelt.mkdir(parents=True)
    code, out = _run(capsys, "run", "--once", "--config", str(config))
    assert code == 0, out
    assert (tmp_path / "data" / "inbox" / "local").is_dir(), "a folder in the data folder is created"


@pytest.mark.root
@needs_root
def test_a_command_that_writes_is_refused_to_anyone_but_the_data_folders_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    gateway = _a_day(tmp_path / "day")
    # The data folder belongs to the service user; an operator runs a command as someone else
    # (here root, who would otherwise leave root-owned files the daemon cannot touch).
    for path in [gateway.folders.data_dir / "var", *(gateway.folders.data_dir / "var").rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    config = str(gateway.config.path)
    for command in (
        ("journal", "seal"),
        ("journal", "send"),
        ("quarantine", "resolve", "1", "--by", "x", "--note", "y"),
    ):
        code, out = _run(capsys, *command, "--config", config)
        assert code == 2 and "belongs to the user nobody: run this command as nobody" in out, (command, out)
    code, out = _run(capsys, "journal", "list", "--config", config)  # looking is for anyone who may read
    assert code == 0 and "lst-exempel-j1" in out, out


def test_a_source_folder_gets_its_configured_group_and_mode_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import grp
    import os

    group = grp.getgrgid(os.getgid())
    (tmp_path / "inbox").mkdir(mode=0o755)
    (tmp_path / "gateway.toml").write_text(
        '[[clients]]\nid = "lst-exempel"\norgnr = "202100-0001"\nname = "L"\n'
        f'[[sources]]\nname = "erp"\npath = "inbox"\ngroup = "{group.gr_name}"\nmode = "2770"\n',
        encoding="utf-8",
    )
    code, out = _run(capsys, "run", "--once", "--config", str(tmp_path / "gateway.toml"))
    assert code == 0, out
    info = (tmp_path / "inbox").stat()
    assert (info.st_mode & 0o7777, info.st_gid) == (0o2770, group.gr_gid)
