"""Saving a model with what it predicts, and loading legacy models."""

from pathlib import Path

import numpy as np
import pytest

from toonvision.model_utils.training.model_io import (
    ModelInfo,
    load_model,
    save_model_atomic,
    sidecar_path,
)


def test_save_and_load_roundtrip(tmp_path, tiny_model):
    model = tiny_model((16, 12), classes=3)
    info = ModelInfo(("bossbot", "lawbot", "cashbot"), (16, 12), "suit", "baseline", 7)
    path = save_model_atomic(model, tmp_path / "best.keras", info)
    assert sidecar_path(path).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "best.keras.json"]
    loaded, loaded_info = load_model(path)
    assert loaded_info == info
    batch = np.random.default_rng(0).random((2, 16, 12, 3)).astype("float32")
    assert np.allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0))


def test_a_failed_save_leaves_the_earlier_model_and_no_temporary_file(tmp_path, tiny_model):
    path = save_model_atomic(tiny_model((16, 12), classes=3), tmp_path / "best.keras",
                             ModelInfo(task="first"))
    before = path.read_bytes()

    class FailingModel:
        def save(self, temporary):
            Path(temporary).write_bytes(b"half a model")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model_atomic(FailingModel(), path, ModelInfo(task="second"))
    assert path.read_bytes() == before
    assert load_model(path)[1].task == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "best.keras.json"]
    with pytest.raises(ValueError, match=r"\.keras files"):
        save_model_atomic(tiny_model((16, 12), classes=3), tmp_path / "best.h5", ModelInfo())


def test_model_without_sidecar_infers_size(tmp_path, tiny_model):
    path = tmp_path / "plain.keras"
    tiny_model((16, 12), classes=3).save(path)
    _, info = load_model(path)
    assert info.image_size == (16, 12) and len(info.class_names) == 3


def test_missing_and_broken_model_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.keras"):
        load_model(tmp_path / "bad.keras")


def test_author_legacy_model_loads_as_binary(author_model_path):
    model, info = load_model(author_model_path)
    assert info.image_size == (600, 200)
    assert info.class_names == ("cog", "toon")
    assert model.count_params() == 25537
