"""Shared fixtures: the real data sets beside the repository, and quiet TensorFlow logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present beside a checkout "
                    "in the project's workspace and CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def author_model_path(shared_data: Path) -> Path:
    """The ToonVision author's own trained binary model (Keras 2 HDF5)."""
    path = shared_data / "toontown" / "toonvision_optimized_1e-5_run12.h5"
    if not path.is_file():
        pytest.skip(f"author's model not found at {path}")
    return path
