"""The house keeps its shape: the import contracts in pyproject.toml ([tool.importlinter]) hold,
the domain imports nothing but the standard library and itself, and `validate` loads no SSH, file
watching or scheduling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import EXAMPLE, REPO


def _lint_imports(config: Path, cache: Path) -> int:
    """import-linter as its own process: in this one it reconfigures logging and would disable
    the loggers other tests listen to."""
    command = [str(Path(sys.executable).with_name("lint-imports")), str(config)]
    command += ["--cache-dir", str(cache), "--no-logo"]
    return subprocess.run(command, cwd=REPO, capture_output=True, check=False).returncode


def test_the_import_contracts_hold(tmp_path: Path) -> None:
    exit_code = _lint_imports(REPO / "pyproject.toml", tmp_path)
    assert exit_code == 0, "an import contract is broken: run `lint-imports` to see which import"


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    graph = grimp.build_graph("gateway", include_external_packages=True, cache_dir=None)
    foreign = {
        (module, imported)
        for module in graph.find_descendants("gateway.domain") | {"gateway.domain"}
        for imported in graph.find_modules_directly_imported_by(module)
        if not (imported == "gateway.domain" or imported.startswith("gateway.domain."))
        and imported.split(".")[0] not in sys.stdlib_module_names
    }
    assert not foreign, f"the domain is pure: these imports reach outside it: {sorted(foreign)}"


def test_a_contract_that_is_broken_is_reported(tmp_path: Path) -> None:
    """The guard can fail: a contract that forbids what the code does is reported broken."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "gateway"\n\n[[tool.importlinter.contracts]]\n'
        'name = "the service may not read the store (it must)"\ntype = "forbidden"\n'
        'source_modules = ["gateway.service"]\nforbidden_modules = ["gateway.store"]\n',
        encoding="utf-8",
    )
    assert _lint_imports(config, tmp_path) == 1


def test_validate_loads_no_ssh_file_watching_or_scheduling() -> None:
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"code = main(['validate', {str(EXAMPLE)!r}])\n"
        "loaded = sorted({name.split('.')[0] for name in sys.modules})\n"
        "print(code, ' '.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    code, loaded = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert code == "0"
    unwanted = {"paramiko", "watchdog", "apscheduler", "cryptography", "nacl"} & set(loaded.split())
    assert not unwanted, f"validate loaded {sorted(unwanted)}"
