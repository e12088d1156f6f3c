"""toonvision: from labelled game screenshots to trained, explained image classifiers.

The package is a library first; `toonvision.cli` is a thin command line over it. Data flows
one way through three packages named as the ToonVision article names its modules:

    toonvision.data_processing     screenshots + VOC XML -> crops + manifest -> arrays per split
    toonvision.model_utils         configurations -> trained models, comparisons, predictions
    toonvision.data_visualization  figures, Grad-CAM, activations, filters, the HTML report

Importing `toonvision` (or any of the three packages) does not import Keras, so data tools
and `toonvision --help` stay quick; each package's functions load their module on first use.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Mapping

__version__ = "0.1.0"


class ToonvisionError(ValueError):
    """Bad input: a file, value or name that toonvision cannot use.

    The message says what was given and what is allowed, naming the file where there is one.
    The command line prints it on one line and exits with status 2; any other exception is a
    bug and shows its traceback. (A `ValueError` subclass, so `except ValueError` still works.)
    """


class MissingFileError(ToonvisionError, FileNotFoundError):
    """A file or folder the caller named does not exist (also a `FileNotFoundError`)."""


class ExistingFileError(ToonvisionError, FileExistsError):
    """A file or folder that would be overwritten already exists (also a `FileExistsError`)."""


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """Returns " (did you mean 'x'?)" for the closest of `known` to `given`, or "".

    Example:
        >>> did_you_mean("optimised", ["baseline", "optimized"])
        " (did you mean 'optimized'?)"
    """
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name_error(kind: str, given: str, known: Iterable[str]) -> ToonvisionError:
    """The error for an unknown name: what was given, the closest known one, and all of them.

    Example:
        >>> str(unknown_name_error("configuration", "optimised", ["baseline", "optimized"]))
        "unknown configuration 'optimised' (did you mean 'optimized'?); known: baseline, optimized"
    """
    known = list(known)
    return ToonvisionError(f"unknown {kind} {given!r}{did_you_mean(given, known)}; known: "
                           f"{', '.join(known)}")


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` (PEP 562) that imports `package.<module>` on first use of a name.

    Args:
        package: the package's `__name__`.
        exports: public name -> the submodule that defines it.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
