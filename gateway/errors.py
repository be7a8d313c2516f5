"""Operational errors: one tree under GatewayError. Findings about a file's content are data
(:class:`gateway.domain.findings.Finding`), never exceptions.

    GatewayError
    ├── ConfigError          the configuration is missing, unreadable or wrong (exit code 2)
    ├── InputError           a file named on the command line cannot be read (exit code 2)
    ├── StoreError           the store refuses a step (a journal in the wrong state, a newer schema)
    ├── SourceError          a source cannot be listed or read (transient: retried next scan)
    └── TransportError       a journal could not be delivered
        ├── TemporaryDeliveryError   retried with backoff
        └── PermanentDeliveryError   needs a person: reported and alarmed, not retried forever
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


class StoreError(GatewayError):
    """The store refused a step, or cannot be opened."""


class SourceError(GatewayError):
    """A source could not be listed or a file in it read; the next scan tries again."""


class TransportError(GatewayError):
    """A journal could not be delivered."""


class TemporaryDeliveryError(TransportError):
    """Worth retrying: the destination was unreachable or failed mid-way."""


class PermanentDeliveryError(TransportError):
    """Not worth retrying: e.g. a different file already has the journal's name at the destination."""
