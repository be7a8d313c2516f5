"""Adapters to the outside world: sources and transports (folder, SFTP), on one file-system seam.

A source lists finished files (:class:`Candidate`), hands each over as a stream for the gateway to
copy into its own staging area (:meth:`Source.open`), says whether the file is still the one that
was taken (:meth:`Source.unchanged`), and tidies it away once its receipt is out
(:meth:`Source.finish`). A transport delivers one journal file and is idempotent. Third-party
errors are mapped at this boundary to the gateway's own (:mod:`gateway.errors`): SourceError,
FileUnavailableError, TemporaryDeliveryError, PermanentDeliveryError.

Both are written once over a :class:`FileSystem` (:mod:`gateway.adapters.ports`): the local disk
(:mod:`.folder`), an SFTP server (:mod:`.sftp`), or memory (:mod:`.memory`, with a mock transport,
for tests). Only :mod:`gateway.bootstrap` picks the concrete ones.
"""

from __future__ import annotations

from gateway.adapters.ports import Candidate, Delivery, FileSystem, Source, Transport

__all__ = ["Candidate", "Delivery", "FileSystem", "Source", "Transport"]
