"""The `toonvision` command line: a thin layer over the library.

Every sub-command lives in `toonvision/commands/<name>.py`; this module only finds them,
builds the argument parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from toonvision import __version__

# The order here is the order of the user's workflow and of `toonvision --help`.
COMMANDS: tuple[str, ...] = (
    "synth",
    "extract",
    "split",
    "stats",
    "explore",
    "preprocess",
    "compare",
    "optimizers",
    "ablate",
    "predict",
    "report",
)


def _available_commands() -> dict[str, object]:
    modules = {}
    for name in COMMANDS:
        try:
            modules[name] = importlib.import_module(f"toonvision.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"toonvision.commands.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    """Builds the parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="toonvision",
        description="From labelled game screenshots to trained, explained image classifiers.",
        epilog="Run 'toonvision COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"toonvision {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands().items():
        doc = (module.__doc__ or name).strip()
        summary = doc.splitlines()[0]
        subparser = subparsers.add_parser(
            name,
            help=summary,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"toonvision {args.command}: error: {error}", file=sys.stderr)
        return 2
