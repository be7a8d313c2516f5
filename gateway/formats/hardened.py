"""The one way the gateway parses XML: lxml, hardened, from a stream.

Every parser made here reads no DTD, resolves no entity, touches no network, refuses huge trees
and drops comments and processing instructions. Each takes an open binary stream and refuses a
path or a name: lxml given a path may transparently gunzip a compressed file, so a 50 kB upload
could become gigabytes behind every size check.

>>> import io
>>> root = parse(io.BytesIO(b'<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>')).getroot()
>>> root.text is None  # the entity stays unresolved
True
>>> parse("receipt.xml")
Traceback (most recent call last):
...
TypeError: an open binary stream, never a path or a name: 'receipt.xml'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, BinaryIO, Literal

from lxml import etree

Event = Literal["start", "end"]


def _stream(source: object) -> BinaryIO:
    if isinstance(source, str | bytes | os.PathLike) or not hasattr(source, "read"):
        raise TypeError(f"an open binary stream, never a path or a name: {source!r}")
    return source  # type: ignore[return-value]


def parser() -> etree.XMLParser:
    """A parser for a whole (small) document: schemas, journal receipts."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse(source: BinaryIO) -> etree._ElementTree:
    """A whole (small) document from ``source``."""
    return etree.parse(_stream(source), parser())


def iterparse(
    source: BinaryIO, *, events: Sequence[Event] = ("end",), tag: Sequence[str] | None = None
) -> etree.iterparse[tuple[str, Any]]:
    """Elements as they end (or start), for documents of any size read in constant memory."""
    return etree.iterparse(
        _stream(source),
        events=tuple(events),
        tag=None if tag is None else list(tag),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def pull_parser(*, events: Sequence[Event] = ("start", "end")) -> etree.XMLPullParser:
    """A parser fed by the caller chunk by chunk (a journal read from any stream)."""
    return etree.XMLPullParser(
        events=tuple(events),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
