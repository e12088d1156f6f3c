"""The report's explanation scores on the ToonVision author's legacy H5 model."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("keras")

from toonvision.data_visualization import evaluation, report_explanations  # noqa: E402
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
        page, model, data, scored, list(range(len(data))), None, steps=8, baseline="blur",
        batch_size=32)
    scores = pd.read_csv(tmp_path / report_explanations.FAITHFULNESS_FILE)
    assert sorted(set(scores["image"])) == sorted(data.names) and len(data) == 7
    assert {"gradcam", "random"} <= set(scores["method"])
    assert scores[["deletion_auc", "insertion_auc"]].notna().all().all()
    sanity = pd.read_csv(tmp_path / report_explanations.SANITY_FILE)
    assert sanity.set_index("method").loc["random", "not_explaining"]
    assert comparison.best[0] in ("gradcam", "gradcam++", "saliency")
    assert "explains this model best" in page.sections[0]
    assert (tmp_path / "explanations.png").is_file()
