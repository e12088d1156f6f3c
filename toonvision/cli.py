"""The `toonvision` command line: a thin layer over the library.

Every sub-command lives in `toonvision/commands/<name>.py`; this module only finds them,
builds the argument parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence

from toonvision import ToonvisionError, __version__

# The order here is the order of the user's workflow and of `toonvision --help`.
COMMANDS: tuple[str, ...] = (
    "synth",
    "extract",
    "split",
    "stats",
    "explore",
    "preprocess",
    "compare",
    "doctor",
    "relabel",
    "summarize",
    "optimizers",
    "ablate",
    "search",
    "predict",
    "report",
)


# What TensorFlow (2.19 and later) writes to stderr while it is imported, whatever
# TF_CPP_MIN_LOG_LEVEL says: that oneDNN is on and which CPU instructions it was built for.
# Information for TensorFlow's developers, not for our users; other lines are passed on.
TENSORFLOW_IMPORT_BANNER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\."
)


def without_tensorflow_banner(text: str) -> str:
    """`text` without the lines of TensorFlow's import banner (`TENSORFLOW_IMPORT_BANNER`)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not TENSORFLOW_IMPORT_BANNER.fullmatch(line.rstrip("\r\n")))


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow (when it is Keras' backend) with its import banner kept off stderr.

    The banner comes from C++ code, so standard error is redirected at the file-descriptor
    level into a temporary file for the import; every other line is written back. Later
    C++ messages of level INFO (XLA's "compiled cluster" and the like) are turned off with
    TF_CPP_MIN_LOG_LEVEL=1 unless the environment sets that variable; warnings and errors
    still show.
    """
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # Keras says what is missing when a command needs it
        finally:
            # Also when the import fails otherwise: what TensorFlow said then is wanted most.
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = without_tensorflow_banner(captured.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


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
        subparser.set_defaults(handler=module.run,
                               needs_keras=getattr(module, "NEEDS_KERAS", False))
    return parser


def _no_retracing_notice(record: logging.LogRecord) -> bool:
    """Drops TensorFlow's "N out of the last N calls ... triggered tf.function retracing".

    The report and the doctor build one explainer (one `tf.function`) per method and layer
    on purpose; TensorFlow counts their first traces as retracing of one function and says
    so in a warning a user cannot act on. `-v` shows it.
    """
    return "triggered tf.function retracing" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.needs_keras and not args.verbose:
        import_tensorflow_quietly()
        logging.getLogger("tensorflow").addFilter(_no_retracing_notice)
    if not args.verbose:
        # A label in a script the figures' font lacks (DejaVu Sans: no CJK) is drawn as boxes,
        # and matplotlib warns once per glyph and figure, dozens of lines (docs/extract.md).
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font",
                                category=UserWarning)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ToonvisionError as error:
        # Bad input: its message on one line. Anything else is a bug and shows a traceback.
        message = " ".join(str(error).split())
        print(f"toonvision {args.command}: error: {message}", file=sys.stderr)
        return 2
