"""`convert`: a case file from XML to JSON or from JSON to XML (xmlschema's converter's shape).

Like `validate` it needs no data folder, no store and no configuration. Only a valid file converts:
the first problem is printed (identities masked) and the command exits 1, writing nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from gateway.cli.common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, Parser
from gateway.formats.conversion import ConversionError, json_to_xml, xml_to_json
from gateway.fsutil import temporary_name


def register(commands: Any, *, configured: Parser, looking: Parser) -> None:
    convert = commands.add_parser(
        "convert",
        help="convert a case file between XML and JSON",
        description="Convert a case file to JSON (xmlschema's converter's shape for arendefil-1.xsd) "
        "or a JSON case file to XML. Only a valid file converts; `validate` says what is wrong with one.",
    )
    convert.add_argument("file", metavar="FILE", help="the case file (.xml or .json)")
    convert.add_argument("--to", choices=("json", "xml"), required=True, help="the format to write")
    convert.add_argument("--output", "-o", metavar="OUT", help="write here (default: standard output)")
    convert.set_defaults(handler=_convert, configured=False)


def _write(to: str, stream: BinaryIO, target: BinaryIO) -> int:
    """Convert ``stream`` into ``target`` as it is read: memory stays flat however many cases."""
    if to == "xml":
        return json_to_xml(stream, target)
    text = io.TextIOWrapper(target, encoding="utf-8", newline="\n")
    try:
        return xml_to_json(stream, text)
    finally:
        text.flush()
        text.detach()


def _convert(args: argparse.Namespace, out: TextIO) -> int:
    source = Path(args.file)
    cases = 0
    try:
        with source.open("rb") as stream:
            if args.output is None:
                out.flush()
                cases = _write(args.to, stream, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                return EXIT_OK
            target = Path(args.output)
            temporary = temporary_name(target)
            try:
                # Written beside the target and renamed: a failed conversion leaves no half file.
                with temporary.open("xb") as handle:
                    cases = _write(args.to, stream, handle)
                temporary.replace(target)
            finally:
                temporary.unlink(missing_ok=True)
    except ConversionError as error:
        print(f"inkasso-gateway: {source}: not converted: {error}", file=sys.stderr)
        return EXIT_REJECTED
    except OSError as error:
        print(f"inkasso-gateway: {error.filename or source}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{source} -> {args.output}: {cases} case(s)", file=sys.stderr)
    return EXIT_OK
