"""Operational errors: one tree under GatewayError. Findings about a file's content are data
(:class:`gateway.domain.findings.Finding`), never exceptions.

    GatewayError
    ├── ConfigError          the configuration is missing, unreadable or wrong (exit code 2)
    └── InputError           a file named on the command line cannot be read (exit code 2)
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InputError(GatewayError):
    """A path given to a command does not exist or cannot be read."""
