#!/usr/bin/env python3
"""Check the inkasso-gateway receipt chain offline, from the receipt files alone.

Every receipt (``Kvittens``, namespace ``urn:inkasso-gateway:kvittens:1``) names the SHA-256 of
the receipt written before it in ``ForegaendeKvittensSha256``; the first names 64 zeros (the
genesis). This script hashes every ``*.kvittens.xml`` under RECEIPTS_FOLDER (any depth; the
``journals`` folder, hidden and temporary files and files that are not a ``Kvittens`` are
skipped) and follows the links from the genesis. It trusts no file name and no file time, so it
works on any copy, and it needs only Python 3.11's standard library:

    python3 tools/verify_receipts.py outbox/receipts [--anchor SHA256 ...]

Exit 0 and one ``OK:`` line when every receipt lies on one unbroken chain from the genesis; exit 1
and ``BROKEN: <kind>: <path>`` (the first break), an explanation and the count of further breaks
otherwise; exit 2 for a usage error. The kinds of break:

- ``unreadable``: the file cannot be read;
- ``doctype``: the receipt holds ``<!DOCTYPE`` or ``<!ENTITY`` (the gateway never writes one);
- ``malformed``: not well-formed XML, or no valid ``ForegaendeKvittensSha256``/``Kedjeposition``;
- ``fork``: two or more receipts name the same predecessor (the walk stops there);
- ``predecessor-missing``: no receipt has the SHA-256 the receipt names: the receipt before it
  was changed or removed;
- ``unreachable``: the receipt's predecessor exists but is itself cut off from the genesis (it
  follows one of the breaks above);
- ``position-mismatch``: ``Kedjeposition`` differs from the receipt's place in the walk
  (receipts written before ``Kedjeposition`` existed carry none and are not checked);
- ``anchor-missing``: no receipt in the chain has the SHA-256 given with ``--anchor``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

GENESIS = "0" * 64
NS = "{urn:inkasso-gateway:kvittens:1}"
SHA256 = re.compile(r"[0-9a-f]{64}")
REFUSED = (b"<!DOCTYPE", b"<!ENTITY")


class Receipt(NamedTuple):
    path: str
    sha256: str
    previous: str
    position: int | None  # Kedjeposition; None on receipts from before it existed
    file_name: str  # Fil/Namn: the file the receipt is for


class Break(NamedTuple):
    kind: str
    path: str
    explanation: str


class ReceiptError(Exception):
    """A receipt that is a break by itself: ``kind`` is unreadable, doctype or malformed."""

    def __init__(self, kind: str, explanation: str) -> None:
        super().__init__(explanation)
        self.kind = kind


class _HashingReader:
    """Hands the parser a file's bytes, hashing them and refusing a DTD before the parser sees it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.tail = b""  # the end of the previous chunk: a marker may straddle two chunks

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.digest.update(chunk)
        window = self.tail + chunk
        if any(marker in window for marker in REFUSED):
            raise ReceiptError("doctype", "holds a DOCTYPE or ENTITY declaration, which no receipt may")
        self.tail = window[-len(REFUSED[0]) :]
        return chunk


def receipt_files(folder: str) -> Iterator[str]:
    """Every ``*.kvittens.xml`` under ``folder``, sorted per folder, skipping ``journals`` and dot-names."""
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        folders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "journals":
                    folders.append(entry.path)
            elif entry.name.endswith(".kvittens.xml") and entry.is_file():
                yield entry.path
        stack.extend(reversed(folders))  # so that folders are visited in name order


def read_receipt(path: str) -> Receipt | None:
    """The receipt's own SHA-256 and its chain fields, streamed; None if the file is no ``Kvittens``.

    Raises ReceiptError for a file that is a break by itself. Each child of the root is dropped
    once read, so a receipt of 100,000 cases takes no more memory than one of a single case.
    """
    previous = position = file_name = None
    try:
        with Path(path).open("rb") as raw:
            reader = _HashingReader(raw)
            depth = 0
            root = ET.Element("placeholder")  # the Kvittens element, from the first start event
            for event, element in ET.iterparse(reader, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        if element.tag != NS + "Kvittens":
                            return None
                        root = element
                    continue
                depth -= 1
                if depth != 1:
                    continue
                if element.tag == NS + "ForegaendeKvittensSha256":
                    previous = element.text or ""
                elif element.tag == NS + "Kedjeposition":
                    position = (element.text or "").strip()
                elif element.tag == NS + "Fil":
                    file_name = element.findtext(NS + "Namn") or ""
                root.clear()  # drop the children read so far: memory stays flat
            while reader.read(1 << 20):  # iterparse reads to the end already; never hash less
                pass
    except OSError as error:
        raise ReceiptError("unreadable", f"cannot be read: {error.strerror or error}") from error
    except (ET.ParseError, ValueError, LookupError) as error:
        raise ReceiptError("malformed", f"is not well-formed XML: {error}") from error
    if previous is None or not SHA256.fullmatch(previous):
        raise ReceiptError("malformed", "has no valid ForegaendeKvittensSha256 (64 lowercase hex digits)")
    if position is not None and not (position.isascii() and position.isdigit() and int(position) > 0):
        raise ReceiptError("malformed", f"has Kedjeposition {position!r}, not a positive integer")
    return Receipt(
        path,
        reader.digest.hexdigest(),
        previous,
        int(position) if position is not None else None,
        file_name or "(no Fil/Namn)",
    )


def verify(folder: str, anchors: list[str]) -> tuple[list[Receipt], list[Break]]:
    """The chain walked from the genesis, and every break, the most telling first."""
    receipts: list[Receipt] = []
    breaks: list[Break] = []
    broken_sha256: dict[str, str] = {}  # a receipt that is a break by itself: sha256 -> path
    for path in receipt_files(folder):
        try:
            receipt = read_receipt(path)
        except ReceiptError as error:
            breaks.append(Break(error.kind, path, f"this receipt {error}"))
            try:
                with Path(path).open("rb") as raw:
                    broken_sha256[hashlib.file_digest(raw, "sha256").hexdigest()] = path
            except OSError:
                pass
            continue
        if receipt is not None:
            receipts.append(receipt)

    successors: dict[str, list[int]] = {}
    by_sha256: dict[str, int] = {}
    for index, receipt in enumerate(receipts):
        successors.setdefault(receipt.previous, []).append(index)
        by_sha256[receipt.sha256] = index

    chain: list[Receipt] = []
    reported: set[int] = set()
    link, predecessor_name = GENESIS, "the genesis (64 zeros)"
    while (following := successors.get(link)) is not None:
        if len(following) > 1:
            names = ", ".join(receipts[index].path for index in following)
            for index in following:
                breaks.append(
                    Break(
                        "fork",
                        receipts[index].path,
                        f"{len(following)} receipts name {predecessor_name} as their predecessor: {names}",
                    )
                )
            reported.update(following)
            break
        receipt = receipts[following[0]]
        chain.append(receipt)
        reported.add(following[0])
        if receipt.position is not None and receipt.position != len(chain):
            breaks.append(
                Break(
                    "position-mismatch",
                    receipt.path,
                    f"its Kedjeposition is {receipt.position} but it is receipt {len(chain)} from the genesis",
                )
            )
        link, predecessor_name = receipt.sha256, receipt.path

    missing: list[Break] = []
    cut_off: list[Break] = []
    for index, receipt in enumerate(receipts):
        if index in reported:
            continue
        if receipt.previous in by_sha256:
            cause = f"its predecessor {receipts[by_sha256[receipt.previous]].path} is itself not on the chain from the genesis"
            cut_off.append(Break("unreachable", receipt.path, cause))
        elif receipt.previous in broken_sha256:
            cause = f"its predecessor {broken_sha256[receipt.previous]} is broken itself"
            cut_off.append(Break("unreachable", receipt.path, cause))
        else:
            end = f"; the chain from the genesis ends at {chain[-1].path}" if chain else ""
            cause = (
                f"it (the receipt for {receipt.file_name}) names predecessor {receipt.previous}, but no receipt "
                f"has that SHA-256: the receipt before it was changed or removed{end}"
            )
            missing.append(Break("predecessor-missing", receipt.path, cause))
    breaks += missing + cut_off

    on_chain = {receipt.sha256 for receipt in chain}
    for anchor in anchors:
        if anchor not in on_chain:
            breaks.append(
                Break("anchor-missing", anchor, "no receipt on the chain from the genesis has this SHA-256")
            )
    return chain, breaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", metavar="RECEIPTS_FOLDER", help="e.g. outbox/receipts (or a copy of it)")
    parser.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SHA256",
        help="a receipt chain head kept outside the gateway; it must be on the chain (repeatable)",
    )
    args = parser.parse_args(argv)
    anchors = [anchor.lower() for anchor in args.anchor]
    for anchor in anchors:
        if not SHA256.fullmatch(anchor):
            parser.error(f"--anchor {anchor}: not a SHA-256 (64 hex digits)")
    if not Path(args.folder).is_dir():
        parser.error(f"{args.folder}: not a folder")

    chain, breaks = verify(args.folder, anchors)
    if not chain and not breaks:
        breaks.append(Break("no-receipts", args.folder, "holds no Kvittens receipt (*.kvittens.xml)"))
    if breaks:
        first = breaks[0]
        print(f"BROKEN: {first.kind}: {first.path}")
        print(f"  {first.explanation}")
        print(f"{len(breaks) - 1} further break(s)")
        return 1
    print(
        f"OK: {len(chain)} receipt(s) in an unbroken chain from {chain[0].path} to {chain[-1].path}; "
        f"head {chain[-1].sha256}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
