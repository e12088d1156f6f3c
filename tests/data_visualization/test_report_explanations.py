"""The report's explanation scores: on the ToonVision author's legacy H5 model, and what the
page says when no image can check a map."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("keras")

from toonvision.data_visualization import (  # noqa: E402
    evaluation,
    faithfulness,
    report_explanations,
)
from toonvision.data_visualization.report_page import Page  # noqa: E402
from toonvision.labels import make_task  # noqa: E402


def test_author_model_gets_scores_for_every_crop_of_the_two_screenshots(
    shared_data: Path, author_model_path: Path, tmp_path: Path,
) -> None:
    import pandas as pd

    from toonvision.model_utils.training.model_io import load_model

    model, info = load_model(author_model_path)
    toontown = shared_data / "toontown"
    data = evaluation.load_inputs([toontown / "sample_img0.png", toontown / "sample_img1.png"],
                                  info.class_names, info.image_size, make_task(info.task))
    scored = evaluation.evaluate(model, data)
    page = Page(tmp_path)
    comparison = report_explanations.explanations_section(
        page, model, data, scored, list(range(len(data))), None, steps=8, baseline="auto",
        batch_size=32)
    scores = pd.read_csv(tmp_path / report_explanations.FAITHFULNESS_FILE)
    assert sorted(set(scores["image"])) == sorted(data.names) and len(data) == 7
    assert {"gradcam", "random"} <= set(scores["method"])
    assert scores[["deletion_auc", "insertion_auc"]].notna().all().all()
    sanity = pd.read_csv(tmp_path / report_explanations.SANITY_FILE)
    assert sanity.set_index("method").loc["random", "not_explaining"]
    assert comparison.best[0] in ("gradcam", "gradcam++", "saliency")
    # Blurring every pixel leaves this sure model's answers (no image could check a map);
    # painting them the mean colour changes most: "auto" takes that baseline, and there the
    # best map beats the random one more than chance would.
    blurred = faithfulness.removal_effect(model, data.images, scored.y_pred, "blur")
    assert (blurred < faithfulness.REMOVAL_EFFECT_MIN).all()
    assert comparison.baseline == "mean" and comparison.tried == ("blur", "mean")
    assert len(comparison.uncheckable) < len(data) and comparison.checked
    assert "explains this model best" in page.sections[0]
    assert "Removed pixels become the mean baseline (--explain-baseline auto" in page.sections[0]
    assert scores["removal_effect"].max() >= faithfulness.REMOVAL_EFFECT_MIN
    assert (tmp_path / "explanations.png").is_file()


def test_a_model_that_keeps_its_answer_without_the_pixels_gets_no_best_method() -> None:
    """Deletion and insertion need an answer that removing pixels changes: a model that
    reads only the mean colour keeps its answer under both baselines (the blurred copy and
    the mean colour both keep the mean), so the page must not name a method that explains
    it, whatever the scores' noise says."""
    import keras
    import numpy as np

    inputs = keras.Input((12, 8, 3))
    mixed = keras.layers.Conv2D(2, 1, name="mix")(inputs)       # a convolution for the CAMs
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(mixed)))
    images = np.random.default_rng(0).integers(0, 256, (4, 12, 8, 3)).astype(np.float32)
    names = ["a", "b", "c", "d"]
    comparison = faithfulness.compare_methods(model, images, names=names, steps=4)
    assert comparison.uncheckable == [0, 1, 2, 3] and np.isnan(comparison.p_value)
    assert np.abs(comparison.removal_effect).max() < faithfulness.REMOVAL_EFFECT_MIN
    assert not comparison.checked and comparison.tried == ("blur", "mean")
    text = report_explanations.verdict_text(comparison, names)
    assert text.startswith("Removing pixels cannot check these maps")
    assert "No method is shown to explain this model" in text
    assert "explains this model best" not in text
    assert "no other baseline changes its answers either" in text
    # Asked for blur alone, it points to the other baseline.
    blur = faithfulness.compare_methods(model, images, names=names, steps=4, baseline="blur",
                                        sanity=False)
    assert "--explain-baseline mean may remove more" in report_explanations.verdict_text(
        blur, names)
