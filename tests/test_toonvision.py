"""The package root: the bad-input error, did-you-mean suggestions, and lazy package exports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toonvision import (
    ExistingFileError,
    MissingFileError,
    ToonvisionError,
    did_you_mean,
    unknown_name_error,
)


def test_did_you_mean_names_the_closest_known_name_or_nothing():
    assert did_you_mean("optimised", ["baseline", "optimized", "mlp"]) == (
        " (did you mean 'optimized'?)")
    assert did_you_mean("zzz", ["baseline", "optimized"]) == ""


def test_unknown_name_error_says_what_was_given_the_suggestion_and_every_known_name():
    error = unknown_name_error("task", "sut", ["binary", "suit", "name"])
    assert isinstance(error, ToonvisionError)
    assert str(error) == "unknown task 'sut' (did you mean 'suit'?); known: binary, suit, name"


def test_file_errors_are_bad_input_and_still_the_os_errors_callers_expect():
    assert issubclass(MissingFileError, ToonvisionError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(ExistingFileError, FileExistsError)
    assert issubclass(ToonvisionError, ValueError)


@pytest.mark.parametrize("package", ["data_processing", "model_utils", "data_visualization"])
def test_each_package_names_its_notebook_functions_without_importing_keras(package):
    code = (f"import sys, toonvision.{package} as p\n"
            "assert 'keras' not in sys.modules, 'keras imported by the package itself'\n"
            "print(' '.join(p.__all__))")
    names = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    assert names
    module = __import__(f"toonvision.{package}", fromlist=["_"])
    for name in names:
        assert callable(getattr(module, name)) or isinstance(getattr(module, name), dict), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018
