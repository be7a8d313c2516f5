"""Operational errors: one tree under GatewayError. Findings about a file's content are data
(:class:`gateway.domain.findings.Finding`), never exceptions.

    GatewayError
    ├── ConfigError                the configuration is missing, unreadable or wrong (exit code 2)
    ├── InputError                 a file named on the command line cannot be read (exit code 2)
    ├── StoreError                 the store refuses a step (a journal in the wrong state)
    │   ├── StoreConflictError     another writer changed what the step relied on: do it again
    │   │                          (e.g. the journal a file was judged into was sealed meanwhile)
    │   └── StoreUnavailableError  the store cannot be read or written now (its lock held
    │       │                      elsewhere, a full disk, an I/O error, a damaged page): pause
    │       │                      and try again (exit code 2 for a command)
    │       └── StoreMissingError  no store where the configuration points, or one that needs
    │           │                  an upgrade a read-only command may not do (exit code 2)
    │           └── StoreOutdatedError  the store is of an older schema: the daemon migrates it
    ├── OutputError                a folder the gateway writes (outbox/, var/) refused a write:
    │                              full, read-only, gone: pause and retry; never the file's fault
    ├── SourceError                a source cannot be listed (transient: retried with backoff)
    │   └── FileUnavailableError   one file cannot be taken now (it may not be read, or changed or
    │                              vanished while it was read): that file waits; never its fault
    └── TransportError             a journal could not be delivered
        ├── TemporaryDeliveryError retried with backoff
        └── PermanentDeliveryError needs a person: reported and alarmed, not retried forever

The distinction that matters to the daemon: a failure of the *environment* (StoreUnavailableError,
OutputError, SourceError, FileUnavailableError) pauses what it affects and is retried with a capped
backoff; it never counts as an attempt at the file. Only a failure that follows the file (an
exception while judging its content, a crash or timeout while it was in hand) counts towards its
quarantine.
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
    """The store refused a step."""


class StoreConflictError(StoreError):
    """Another writer changed what this step relied on; doing the step again is the cure."""


class StoreUnavailableError(StoreError):
    """The store cannot be used now (locked by another process, disk full, I/O error, damaged)."""


class StoreMissingError(StoreUnavailableError):
    """There is no store to read, or it needs a migration that only the daemon may run."""


class StoreOutdatedError(StoreMissingError):
    """The store has an older schema: the daemon migrates it at start; read-only commands do not."""


class OutputError(GatewayError):
    """A folder the gateway writes refused a write (full, read-only, missing)."""

    def __init__(self, message: str, *, folder: str, waits_for: str) -> None:
        super().__init__(message)
        self.folder = folder
        self.waits_for = waits_for


class SourceError(GatewayError):
    """A source could not be listed or a file in it read; the next scan tries again."""


class FileUnavailableError(SourceError):
    """One file cannot be taken now: the gateway may not read it, or it changed or vanished
    while it was read. It waits (with a backoff) and is never counted as a failed attempt."""

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause  # a short key: "unreadable", "changed", "vanished", ...


class TransportError(GatewayError):
    """A journal could not be delivered."""


class TemporaryDeliveryError(TransportError):
    """Worth retrying: the destination was unreachable or failed mid-way."""


class PermanentDeliveryError(TransportError):
    """Not worth retrying: e.g. a different file already has the journal's name at the destination."""
