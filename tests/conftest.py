"""Shared fixtures: the repository's own paths and the fixed "today" every test validates on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.sshd_server import sshd  # noqa: F401  (the real-sshd fixture, for tests/test_sftp.py)

# The store contract is a module of tests that each backend's test module subclasses: pytest
# rewrites the asserts of test modules only, so that a failing one there says what it compared.
pytest.register_assert_rewrite("tests.store_contract")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "lst-exempel-2026-11-24.xml"
#: The sample client and an inbox folder source, as the repository's gateway.toml has them.
SAMPLE_CONFIG = """
[[clients]]
id = "lst-exempel"
orgnr = "202100-0001"
name = "Länsstyrelsen i Exempellän"

[[sources]]
name = "erp"
type = "folder"
path = "inbox"
"""
#: Every test validates "as of" this day, so that the samples never age into other findings.
TODAY = date(2026, 11, 25)


@pytest.fixture
def example_bytes() -> bytes:
    return EXAMPLE.read_bytes()


def broken_copy(tmp_path: Path, replacements: dict[str, str], name: str = "broken.xml") -> Path:
    """The example file with some text replaced: a quick way to make a file with known findings."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the example"
        text = text.replace(old, new)
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target
