"""A real, non-editable install (`pip install .` into a fresh venv) finds its schemas from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO


@pytest.mark.slow
@pytest.mark.integration
def test_pip_install_dot_into_a_fresh_venv_validates_from_another_folder(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(python), "-c", "import gateway, pathlib; print(pathlib.Path(gateway.__file__).resolve())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=elsewhere,
        env=clean_env,
    )
    assert Path(where.stdout.strip()).is_relative_to(environment.resolve()), "imported the source tree"

    result = subprocess.run(
        [
            str(environment / "bin" / "inkasso-gateway"),
            "validate",
            str(EXAMPLE),
            "--as-of",
            "2026-11-25",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=elsewhere,
        env=clean_env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "accepted"
