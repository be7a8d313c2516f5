"""The rule registry: every rule code once, with its severity, scope and titles in both languages.

Rules register themselves at import with :func:`rule`; a second registration of the same code is
refused, so a code can never silently mean two things. Codes that the reader itself reports
(F01 unreadable, F02 unsafe, F03 and S01 schema) are registered with ``check=None`` so that the
catalogue (``inkasso-gateway rules``) and the README table list every code from one place.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from gateway.domain.findings import Finding, Severity
from gateway.domain.identity import mask_identities
from gateway.domain.model import Located

#: Stamped on every receipt; raised whenever a rule's meaning changes.
RULESET_VERSION = "1"
#: Largest attachment accepted (A06) unless the configuration says otherwise.
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


class Scope(enum.Enum):
    READER = "reader"  # reported while reading and schema-checking the file
    FILE = "file"  # run once per file, at its end
    CASE = "case"  # run once per case


class History(Protocol):
    """What earlier files tell: answered by the store, or by :class:`NoHistory` for a dry run."""

    def receipt_for_bytes(self, sha256: str) -> str | None:
        """The receipt of an earlier file with exactly these bytes (F04)."""

    def receipt_for_file_id(self, client_orgnr: str, file_id: str) -> str | None:
        """The receipt of an earlier file from this client with this FilId (F04)."""

    def last_sequence(self, client_orgnr: str) -> int | None:
        """The last Lopnummer received from this client (F07)."""

    def accepted_case_fingerprint(self, client_orgnr: str, reference: str) -> str | None:
        """The content fingerprint of an accepted case with this ArendeReferens (A04/A05)."""

    def case_for_claim_reference(self, client_orgnr: str, claim_reference: str) -> str | None:
        """The ArendeReferens of an accepted case holding this claim number (R08)."""


class NoHistory:
    """No earlier files: what `validate` without a store knows."""

    def receipt_for_bytes(self, sha256: str) -> str | None:
        return None

    def receipt_for_file_id(self, client_orgnr: str, file_id: str) -> str | None:
        return None

    def last_sequence(self, client_orgnr: str) -> int | None:
        return None

    def accepted_case_fingerprint(self, client_orgnr: str, reference: str) -> str | None:
        return None

    def case_for_claim_reference(self, client_orgnr: str, claim_reference: str) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class AttachmentFacts:
    """What the package holds under one attachment name, measured by the formats layer."""

    size: int
    sha256: str
    content_type: str | None  # detected from the bytes: application/pdf, image/png, ...; None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything a rule may know beyond the case itself. "Today" comes in from the edge."""

    today: date
    history: History
    #: Configured clients by organisationsnummer (10 digits); None when no config is known.
    clients: frozenset[str] | None = None
    #: The clients allowed to send through this file's source; None means all configured.
    source_clients: frozenset[str] | None = None
    strict_sequence: bool = False
    postal_directory: Mapping[str, str] | None = None
    #: Attachments in the package by name; None for a plain XML file (no attachments at all).
    attachments: Mapping[str, AttachmentFacts] | None = None
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    file_sha256: str = ""


#: A check returns its findings as a list (usually empty): cheaper per case than a generator.
CheckFunction = Callable[..., list[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: str  # as the catalogue shows it: "E", "V" or "E/V"
    scope: Scope
    title_sv: str
    title_en: str
    check: CheckFunction | None

    def finding(
        self,
        at: Located,
        element: str | None,
        sv: str,
        en: str,
        *,
        severity: Severity | None = None,
    ) -> Finding:
        """A finding at ``at`` (or at its child ``element``), in the rule's default severity."""
        if severity is None:
            severity = Severity.WARNING if self.severity == "V" else Severity.ERROR
        if element is None:
            return Finding(self.code, severity, at.path, at.line, sv, en)
        return Finding(self.code, severity, at.path_of(element), at.line_of(element), sv, en)


_REGISTRY: dict[str, Rule] = {}


def rule(
    code: str,
    severity: str,
    scope: Scope,
    *,
    sv: str,
    en: str,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under a stable code; a duplicate code is a programming error."""

    def register(check: CheckFunction) -> CheckFunction:
        _add(Rule(code, severity, scope, sv, en, check))
        return check

    return register


def reader_rule(code: str, severity: str, *, sv: str, en: str) -> Rule:
    """Register a code that the reader reports itself (no check function)."""
    return _add(Rule(code, severity, Scope.READER, sv, en, None))


def _add(new: Rule) -> Rule:
    if new.code in _REGISTRY:
        raise ValueError(f"rule code {new.code} registered twice")
    _REGISTRY[new.code] = new
    return new


def get_rule(code: str) -> Rule:
    return _REGISTRY[code]


def all_rules() -> list[Rule]:
    """Every registered rule, in catalogue order (F, S, A, M, R, each by number)."""
    order = {"F": 0, "S": 1, "A": 2, "M": 3, "R": 4}
    return sorted(_REGISTRY.values(), key=lambda r: (order[r.code[0]], r.code))


def rules_in(scope: Scope) -> list[Rule]:
    return [r for r in all_rules() if r.scope is scope]


def describe(value: Any) -> str:
    """Quote a value for a message: shortened (a hostile value cannot flood a receipt) and with
    anything shaped like a personal identity number masked (it may stand in any field)."""
    text = mask_identities(str(value))
    return f"'{text[:60]}…'" if len(text) > 60 else f"'{text}'"
