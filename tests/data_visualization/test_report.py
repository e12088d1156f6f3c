"""The heatmap report: inputs, evaluation, the written page (checked in headless Chromium),
the `toonvision report` command, and the author's model on the annotated screenshots."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from toonvision.data_processing.images import read_image, write_image_atomic  # noqa: E402
from toonvision.data_visualization import evaluation, report  # noqa: E402
from toonvision.fileio import write_text_atomic  # noqa: E402
from toonvision.labels import make_task  # noqa: E402

IMAGE_SIZE = (96, 32)
CLASSES = ("cog", "toon")
SCREENSHOTS_ENVIRONMENT_VARIABLE = "TOONVISION_KEEP_SCREENSHOTS"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def write_crops(folder: Path, count: int = 6, seed: int = 0) -> list[Path]:
    """Writes crops named `<label>_<index>.png`: cogs dark, toons bright."""
    generator = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        label = "cog_bb_flunky" if index % 2 == 0 else "toon_dog"
        base = 40 if label.startswith("cog") else 200
        image = np.clip(generator.normal(base, 30, (60, 24, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{label}_{index}.png"
        write_image_atomic(path, image)
        paths.append(path)
    return paths


def write_screenshot(folder: Path, name: str = "shot") -> Path:
    """Writes a 120x160 screenshot with a VOC XML of three boxes (one outside the image)."""
    image = np.zeros((120, 160, 3), np.uint8)
    image[10:70, 10:40] = (200, 30, 30)
    image[20:110, 90:130] = (30, 200, 30)
    path = folder / f"{name}.png"
    write_image_atomic(path, image)
    boxes = [("cog_lb_bloodsucker", 10, 10, 40, 70), ("toon_cat", 90, 20, 130, 110),
             ("toon_cat", 300, 300, 340, 360)]
    objects = "".join(
        f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for label, x0, y0, x1, y1 in boxes)
    write_text_atomic(folder / f"{name}.xml",
                      f"<annotation><filename>{name}.png</filename>{objects}</annotation>")
    return path


def test_load_inputs_reads_crops_folders_and_screenshots(tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    write_crops(crops, 4)
    write_image_atomic(crops / "king_1.png", np.zeros((10, 10, 3), np.uint8))
    screenshots = tmp_path / "shots"
    write_screenshot(screenshots)
    data = evaluation.load_inputs([crops, screenshots / "shot.xml"], CLASSES, IMAGE_SIZE,
                              make_task("binary"))
    assert data.images.shape == (6, *IMAGE_SIZE, 3) and data.images.dtype == np.uint8
    # Folders are read in sorted file order, then the screenshot's boxes in XML order.
    assert data.labels == ["cog_bb_flunky", "cog_bb_flunky", "toon_dog", "toon_dog",
                           "cog_lb_bloodsucker", "toon_cat"]
    assert data.y.tolist() == [0, 0, 1, 1, 0, 1]
    assert data.names[-2:] == ["shot.png#0", "shot.png#1"]
    # The red box became the first screenshot crop, resized to the model's size.
    assert data.images[4][..., 0].mean() > 150 and data.images[4][..., 1].mean() < 60
    assert any("king_1.png" in message and "'king'" in message for message in data.skipped)
    assert any("shot.xml: object 2 (toon_cat)" in message and "outside" in message
               for message in data.skipped)


def test_load_inputs_takes_a_screenshot_image_once_with_its_xml(tmp_path: Path) -> None:
    write_screenshot(tmp_path)
    data = evaluation.load_inputs([tmp_path], CLASSES, IMAGE_SIZE, make_task("binary"))
    assert data.labels == ["cog_lb_bloodsucker", "toon_cat"]


def test_load_inputs_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        evaluation.load_inputs([tmp_path / "missing"], CLASSES, IMAGE_SIZE)
    (tmp_path / "broken_1.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="no usable labelled images.*broken_1.png"):
        evaluation.load_inputs([tmp_path], CLASSES, IMAGE_SIZE)


def test_evaluation_ranks_mistakes_by_error() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.95, 0.05], [0.3, 0.7]])
    scored = evaluation.Evaluation(probabilities, np.array([0, 0, 0, 1, 1]), CLASSES, True)
    assert scored.y_pred.tolist() == [0, 1, 1, 0, 1]
    np.testing.assert_allclose(scored.errors, [0.1, 0.8, 0.55, 0.95, 0.3])
    assert scored.wrong_indices().tolist() == [3, 1, 2]
    assert scored.title(3) == "toon\nE=0.950  A=0.050"
    scores = evaluation.metrics(scored)
    assert scores["accuracy"] == pytest.approx(0.4)
    assert scores["confusion_matrix"].tolist() == [[1, 2], [1, 1]]
    assert scores["report"]["toon"]["recall"] == pytest.approx(0.5)


def test_choose_samples_spreads_over_classes() -> None:
    scored = evaluation.Evaluation(np.full((10, 2), 0.5), np.array([0] * 8 + [1] * 2), CLASSES,
                                   True)
    chosen = evaluation.choose_samples(scored, 4)
    assert len(set(chosen)) == 4 and sorted(scored.y_true[chosen]).count(1) == 2


def _chromium() -> str | None:
    return next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)


_CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener("error", function (event) {
  var target = event.target || {};
  window.__errors.push(String(event.message || target.src || target.href || "load error"));
}, true);
var originalConsoleError = console.error;
console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " "));
  originalConsoleError.apply(console, arguments);
};
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (image) {
    return {src: image.getAttribute("src"), naturalWidth: image.naturalWidth};
  });
  var out = document.createElement("pre");
  out.id = "toonvision-check";
  out.textContent = JSON.stringify({images: images, errors: window.__errors});
  document.body.appendChild(out);
});
</script>
"""

_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--disable-quic", "--virtual-time-budget=10000")


def check_page_in_chromium(page: Path, work_dir: Path) -> tuple[dict, Path]:
    """Opens `page` in headless Chromium; returns what it loaded and a screenshot's path."""
    chromium = _chromium()
    checked = page.with_name("chromium_check.html")
    checked.write_text(page.read_text(encoding="utf-8").replace("</head>",
                                                                _CHECK_SCRIPT + "</head>", 1),
                       encoding="utf-8")
    profile = work_dir / "chromium-profile"
    result = subprocess.run(
        [chromium, *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
         checked.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    found = re.search(r'<pre id="toonvision-check">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"the check script did not run; chromium said: {result.stderr[-2000:]}"
    screenshot = work_dir / "report_screenshot.png"
    subprocess.run(
        [chromium, *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
         "--window-size=1280,4000", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    checked.unlink()
    return json.loads(html.unescape(found.group(1))), screenshot


@pytest.fixture(scope="module")
def written_report(tmp_path_factory: pytest.TempPathFactory,
                   tiny_model) -> tuple[Path, evaluation.Evaluation]:
    """A report of the tiny model on crops, with a comparison folder beside it."""
    root = tmp_path_factory.mktemp("report")
    crops = root / "crops"
    write_crops(crops, 10)
    run_dir = root / "runs" / "compare"
    run_dir.mkdir(parents=True)
    write_image_atomic(run_dir / "boxplots.png", np.full((40, 60, 3), 128, np.uint8))
    write_text_atomic(run_dir / "summary.csv",
                      "config,runs,median_test_accuracy\nbaseline,3,0.9635\noptimized,3,0.97812\n")
    model = tiny_model()
    data = evaluation.load_inputs([crops], CLASSES, IMAGE_SIZE, make_task("binary"))
    steps = []
    page = report.write_report(model, data, root / "out", "model: tiny\ntask: binary",
                               samples=4, run_dir=run_dir, filters=2, progress=steps.append,
                               explain=4, explain_steps=4)
    assert steps == list(report.REPORT_STEPS)
    return page, evaluation.evaluate(model, data)


def test_report_page_links_every_figure_with_a_caption(written_report) -> None:
    page, scored = written_report
    text = page.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == len(set(sources)) >= 10
    for source in sources:
        assert (page.parent / source).is_file(), source
        assert read_image(page.parent / source).shape[0] > 10
    assert text.count("<figure>") == text.count("<figcaption>") == len(sources)
    for section in ("metrics", "mistakes", "gradcam", "explanations", "activations", "filters",
                    "architecture", "comparison"):
        assert f'<section id="{section}">' in text
    assert "run_boxplots.png" in sources and "run_learning_curves.png" not in sources
    assert '<td>optimized</td><td class="number">3</td><td class="number">0.9781</td>' in text
    assert "model: tiny" in text and "<td>macro avg</td>" in text
    wrong = len(scored.wrong_indices())
    assert f"{wrong} of 10 images misclassified" in text
    assert ("wrong_predictions.png" in sources) == (wrong > 0)
    assert "http://" not in text and "https://" not in text  # opens offline
    # The verdict on the heatmaps (this tiny model's maps need not pass: test_faithfulness).
    verdict = re.search(r'<p class="verdict">([^<]+)</p>', text.split('id="explanations"')[1])
    assert "explanations.png" in sources and verdict is not None
    assert any(phrase in verdict.group(1) for phrase in (
        "explains this model best", "read its maps as unchecked",
        "No method is shown to explain this model"))


def test_report_writes_the_scores_of_every_explanation_beside_the_page(written_report) -> None:
    import pandas as pd

    page, _ = written_report
    scores = pd.read_csv(page.parent / "faithfulness.csv")
    for column in ("image", "method", "layer", "deletion_auc", "insertion_auc", "average_drop",
                   "increase_in_confidence"):
        assert column in scores.columns
    assert {"gradcam", "gradcam++", "saliency", "random"} == set(scores["method"])
    # --samples 4 images are explained by every method (CAMs on both convolutions).
    assert len(set(scores["image"])) == 4 and len(scores) == 4 * 6
    sanity = pd.read_csv(page.parent / "sanity.csv")
    assert list(sanity.columns[:3]) == ["method", "layer", "spearman"]
    assert set(sanity["method"]) == {"gradcam", "gradcam++", "saliency", "random"}


def test_report_page_loads_every_image_in_chromium(written_report, tmp_path: Path) -> None:
    if _chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); the page "
                    "check needs a headless browser")
    page, _ = written_report
    loaded, screenshot = check_page_in_chromium(page, tmp_path)
    assert loaded["errors"] == []
    assert len(loaded["images"]) >= 10
    assert all(image["naturalWidth"] > 0 for image in loaded["images"]), loaded["images"]
    assert screenshot.is_file() and read_image(screenshot).shape[1] == 1280
    keep = os.environ.get(SCREENSHOTS_ENVIRONMENT_VARIABLE)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "report_tiny_model.png")


def test_report_without_gradients_says_what_is_left_out(tmp_path: Path, monkeypatch,
                                                        tiny_model) -> None:
    """On a Keras backend other than TensorFlow: no Grad-CAM or filter patterns, the rest."""
    from toonvision.data_visualization import interpret

    monkeypatch.setattr(interpret, "gradients_supported", lambda: False)
    write_crops(tmp_path / "crops", 4)
    data = evaluation.load_inputs([tmp_path / "crops"], CLASSES, IMAGE_SIZE, make_task("binary"))
    page = report.write_report(tiny_model(), data, tmp_path / "out", samples=2, filters=2)
    text = page.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', text)
    # Said in the Grad-CAM, explanation scores and filters sections, and under the mistakes
    # grid when there is one.
    assert text.count("need the TensorFlow backend") == 3 + ("wrong_predictions.png" in sources)
    assert not (tmp_path / "out" / "faithfulness.csv").exists()
    assert "gradcam_samples.png" not in sources and "confusion_matrix.png" in sources
    assert "confident_mistakes_gradcam.png" not in sources
    assert not any(source.startswith("filters_0") for source in sources)
    assert "filters_first_layer_kernels.png" in sources


def test_report_on_a_model_without_convolutions(tmp_path: Path) -> None:
    inputs = keras.Input((*IMAGE_SIZE, 3))
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    write_crops(tmp_path / "crops", 4)
    data = evaluation.load_inputs([tmp_path / "crops"], CLASSES, IMAGE_SIZE, make_task("binary"))
    page = report.write_report(model, data, tmp_path / "out", samples=2)
    text = page.read_text(encoding="utf-8")
    assert html.escape(report.NO_CONVOLUTION_NOTE) in text
    assert "no convolution or pooling layer" in text and "confusion_matrix.png" in text


def test_report_command_on_a_dataset_test_split(tmp_path: Path, capsys, tiny_model) -> None:
    from toonvision import cli
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    for prefix in ("cog", "toon"):
        write_crops(tmp_path / "data" / "unsorted" / prefix, 10, seed=len(prefix))
    model_path = save_model_atomic(tiny_model(), tmp_path / "tiny.keras",
                                   ModelInfo(image_size=IMAGE_SIZE, split_seed=3))
    out = tmp_path / "reports" / "tiny"
    status = cli.main(["report", str(model_path), "--data-dir", str(tmp_path / "data"),
                       "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                       "--samples", "2", "--filters", "1"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"written to {out / 'index.html'}" in captured.out
    text = (out / "index.html").read_text(encoding="utf-8")
    # 20 crops, 10 per class: the 0.6/0.2/0.2 test split holds 2 of each.
    assert "Accuracy <strong>" in text and "on 4 images (2 cog, 2 toon)" in text
    assert "split seed 3 (recorded with the model)" in text


def test_report_on_a_label_model_reads_only_its_labels_of_a_grown_data_folder(
        tmp_path: Path, capsys, tiny_model) -> None:
    """A `label`-task model of two labels; the data folder has a third label since."""
    from toonvision import cli
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    write_crops(tmp_path / "data" / "unsorted" / "mixed", 20, seed=1)
    grown = tmp_path / "data" / "unsorted" / "king"
    for index in range(6):
        write_image_atomic(grown / f"king_{index}.png", np.full((60, 24, 3), 99, np.uint8))
    model_path = save_model_atomic(
        tiny_model(), tmp_path / "tiny.keras",
        ModelInfo(image_size=IMAGE_SIZE, split_seed=3, task="label",
                  class_names=("cog_bb_flunky", "toon_dog")))
    out = tmp_path / "out"
    assert cli.main(["report", str(model_path), "--data-dir", str(tmp_path / "data"),
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                     "--samples", "1", "--filters", "1"]) == 0, capsys.readouterr().err
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "on 4 images (2 cog_bb_flunky, 2 toon_dog)" in text and "king_" not in text


def test_report_on_a_grouped_comparisons_model_tests_on_its_grouped_split(
        tmp_path: Path, capsys, tiny_model, write_screenshot) -> None:
    """A best model of `compare --group-by screenshot` was tested on a split that kept each
    screenshot whole: the report evaluates it on that split, not on a plain one."""
    from toonvision import cli
    from toonvision.data_processing.dataset import from_crops, select_for_task
    from toonvision.data_processing.extract import extract
    from toonvision.data_processing.splits import grouped_stratified_split, screenshot_groups
    from toonvision.labels import make_task
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    for shot in range(10):
        boxes = [("toon_dog" if (shot + box) % 2 else "cog_bb_flunky", 4 + 20 * box, 4,
                  20 + 20 * box, 40) for box in range(3)]
        write_screenshot(tmp_path / "shots", f"shot_{shot}", boxes, seed=shot)
    list(extract(tmp_path / "shots", tmp_path / "data"))
    dataset = from_crops(tmp_path / "data")
    paths, _, y = select_for_task(dataset, make_task("binary", dataset.labels))
    groups = screenshot_groups(paths, tmp_path / "data")
    test = grouped_stratified_split(y, groups, (0.6, 0.2, 0.2), seed=3)["test"]
    model_path = save_model_atomic(tiny_model(), tmp_path / "tiny.keras",
                                   ModelInfo(image_size=IMAGE_SIZE, split_seed=3,
                                             extra={"group_by": "screenshot"}))
    out = tmp_path / "out"
    assert cli.main(["report", str(model_path), "--data-dir", str(tmp_path / "data"),
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                     "--samples", "1", "--filters", "1"]) == 0, capsys.readouterr().err
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "ratios (0.6, 0.2, 0.2), grouped by screenshot of 30 images" in text
    assert f"({len(test)} images; classes" in text and len(test) % 3 == 0


def test_report_command_rejects_a_task_the_model_was_not_trained_for(tmp_path: Path,
                                                                     capsys, tiny_model) -> None:
    from toonvision import cli
    from toonvision.model_utils.training.model_io import ModelInfo, save_model_atomic

    write_crops(tmp_path / "crops", 2)
    model_path = save_model_atomic(tiny_model(), tmp_path / "tiny.keras",
                                   ModelInfo(image_size=IMAGE_SIZE))
    status = cli.main(["report", str(model_path), "--inputs", str(tmp_path / "crops"),
                       "--task", "suit", "--out", str(tmp_path / "out")])
    assert status == 2
    assert "model predicts cog, toon" in capsys.readouterr().err


def test_author_model_makes_no_mistake_on_the_annotated_screenshots(
    shared_data: Path, author_model_path: Path,
) -> None:
    from toonvision.model_utils.training.model_io import load_model

    model, info = load_model(author_model_path)
    toontown = shared_data / "toontown"
    data = evaluation.load_inputs([toontown / "sample_img0.png", toontown / "sample_img1.png"],
                              info.class_names, info.image_size, make_task(info.task))
    assert len(data) == 7 and data.skipped == []
    scored = evaluation.evaluate(model, data)
    assert len(scored.wrong_indices()) == 0
    assert evaluation.metrics(scored)["accuracy"] == 1.0


def test_comparison_section_shows_the_verdict_and_the_forest_plot(tmp_path: Path) -> None:
    from toonvision.data_visualization.report_page import Page
    from toonvision.data_visualization.report_sections import run_section
    from toonvision.model_utils.comparison.runlog import evaluation_records
    from toonvision.model_utils.comparison.summary import summarize

    generator = np.random.default_rng(3)
    baseline = generator.uniform(0.9, 0.95, 12)
    evaluations = {"baseline": {"accuracy": baseline, "loss": 1 - baseline},
                   "optimized": {"accuracy": baseline + generator.normal(0.01, 0.01, 12),
                                 "loss": 0.9 - baseline}}
    records = evaluation_records(evaluations, {"train": 410, "validate": 137, "test": 137})
    summary = summarize(records, ["baseline", "optimized"])
    run_dir = tmp_path / "run"
    write_text_atomic(run_dir / "summary.csv", summary.table.to_csv(index=False))
    page = Page(tmp_path / "out")
    run_section(page, run_dir)
    text = page.sections[0]
    assert html.escape(summary.sentences[0]) in text
    assert summary.sentences[0].startswith("optimized vs baseline: ")
    assert page.figures == ["run_forest.png"]
    assert read_image(tmp_path / "out" / "run_forest.png").shape[1] > 400
    assert "<th>resplit_ci_low</th>" in text and "<th>reason</th>" not in text
