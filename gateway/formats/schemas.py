"""The XML schemas in ``xsd/``, found both in a source tree and in an installed package.

A wheel carries them as ``gateway/xsd/*.xsd`` (pyproject's force-include); an editable install or a
plain checkout reads the repository's top-level ``xsd/`` folder.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from gateway.formats import hardened

ARENDEFIL = "arendefil-1.xsd"
KVITTENS = "kvittens-1.xsd"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def schema_path(name: str) -> Path:
    for folder in (_PACKAGE_DIR / "xsd", _PACKAGE_DIR.parent / "xsd"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema {name} not found beside the gateway package")


@cache
def load_schema(name: str) -> etree.XMLSchema:
    # Open the file ourselves: lxml given a path may transparently gunzip it.
    with schema_path(name).open("rb") as handle:
        return etree.XMLSchema(hardened.parse(handle))
