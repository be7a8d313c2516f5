"""Findings: what a check found, as data (never as exceptions), in Swedish and English."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    ERROR = "error"  # "Fel": rejects the case, or the whole file for F-codes
    WARNING = "warning"  # "Varning": the case is kept and flagged

    @property
    def swedish(self) -> str:
        return "Fel" if self is Severity.ERROR else "Varning"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # stable rule code, e.g. "M02"
    severity: Severity
    path: str  # XPath-like: /Arendefil/Arende[3]/Motpart[1]/Identitet
    line: int | None
    message_sv: str
    message_en: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def has_error(findings: list[Finding]) -> bool:
    return any(finding.severity is Severity.ERROR for finding in findings)
