"""Apply a trained classifier to crops, folders of crops, or annotated screenshots.

Three kinds of input, told apart by what is on disk (read by `data_processing.inputs`, as
the report reads them):

- an image file paired with a labelImg XML beside it (or the XML itself) is a screenshot:
  every box of the XML is cropped, classified, and its true label kept beside the
  prediction. Files pair as `extract` pairs them (`voc.pair_files`: same stem, the XML's
  `<filename>` settling which of several same-stem images it describes);
- any other image file is one crop; if its name follows the extracted-crop pattern
  (`cog_sb_coldcaller_12.png`) and the task knows that label, it is kept as the true label;
- a folder is every image and XML under it (recursively), each taken as above.

Crops are resized to the model's `ModelInfo.image_size` and fed as 0..255 float RGB, which is
what our models and the ToonVision author's legacy model expect. `draw_predictions` draws the
boxes, predicted classes and confidences onto a screenshot.

A model kept by `compare` has a confidence rule beside it (`training.confidence`,
`<model>.confidence.npz`): with it the probabilities are calibrated, every crop gets a
novelty score, and a crop the model does not recognise is answered `unknown`
(`confidence.UNKNOWN`). Without it (older models, legacy HDF5 ones) the probabilities are
the model's own and the answer is never `unknown`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision.data_processing.images import (
    decode_image,
    draw_labelled_box,
    encode_image,
    is_image_file,
    read_image,
)
from toonvision.data_processing.inputs import Crop, find_inputs, iter_crops
from toonvision.labels import Task, task_for_classes
from toonvision.model_utils.training.confidence import UNKNOWN

if TYPE_CHECKING:
    from toonvision.model_utils.comparison.provenance import SeenCrops
    from toonvision.model_utils.training.confidence import ConfidenceRule

logger = logging.getLogger(__name__)

CSV_COLUMNS: tuple[str, ...] = (
    "source", "xmin", "ymin", "xmax", "ymax", "label", "predicted", "confidence", "part",
    "novelty", "accepted",
)
BATCH_SIZE = 32
CORRECT_COLOR = (40, 200, 40)
WRONG_COLOR = (230, 30, 30)
UNKNOWN_COLOR = (255, 190, 0)     # the true class is not known
REJECTED_COLOR = (150, 150, 150)  # the model answered unknown


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one crop.

    Attributes:
        source: the image file (a crop, or the screenshot the box is in).
        box: (xmin, ymin, xmax, ymax) in the screenshot, clipped to it; None for a crop.
        label: the true raw label (from the XML, or the crop's file name), or '' if unknown.
        true_class: the class of `label` under the task, or None if unknown or not covered.
        predicted: the predicted class, or `unknown` when the model's confidence rule
            rejects the crop.
        confidence: the (calibrated, when the model has a rule) probability of the most
            probable class.
        part: for a crop of the data the model was trained on, its part of the model's
            split (`train`, `validate`, `test`; `provenance.seen_crops`), else ''.
        novelty: the crop's novelty score under the rule (higher: more like the training
            crops); None without a rule.
        accepted: False when the rule answers `unknown`.
    """

    source: Path
    box: tuple[int, int, int, int] | None
    label: str
    true_class: str | None
    predicted: str
    confidence: float
    part: str = ""
    novelty: float | None = None
    accepted: bool = True

    @property
    def correct(self) -> bool | None:
        """Whether the prediction matches the true class; None when the truth is unknown or
        the model answered `unknown` (it abstained: neither right nor wrong)."""
        if self.true_class is None or not self.accepted:
            return None
        return self.true_class == self.predicted


@dataclass
class PredictionResults:
    """All predictions of one call, and the inputs that could not be used.

    Attributes:
        predictions: one per crop or box, in input order.
        skipped: one message per file or box left out, naming it and saying why.
    """

    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def accuracy(self, parts: Iterable[str] | None = None) -> float | None:
        """The share of correct predictions among the accepted ones with a known true class
        (only those of the model's split `parts`, e.g. `("validate", "test")`, when given)."""
        parts = None if parts is None else set(parts)
        known = [item.correct for item in self.predictions if item.correct is not None
                 and (parts is None or item.part in parts)]
        return float(np.mean(known)) if known else None

    def count(self, parts: Iterable[str]) -> int:
        """How many accepted predictions with a known true class lie in the model's split
        `parts`."""
        parts = set(parts)
        return sum(item.correct is not None and item.part in parts
                   for item in self.predictions)


def task_for(info: Any, spec: str | None = None) -> Task | None:
    """The task that maps true labels to the model's classes, or None if none fits.

    Args:
        info: the model's `ModelInfo`.
        spec: a task spec overriding `info.task` (e.g. `binary`).
    """
    try:
        return task_for_classes(spec or info.task, info.class_names)
    except ValueError as error:
        logger.warning("cannot map true labels to classes: %s; true classes left out", error)
        return None


def predict_paths(
    model: Any,
    info: Any,
    paths: Iterable[str | os.PathLike],
    task: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    parts: SeenCrops | None = None,
    confidence: ConfidenceRule | None = None,
) -> PredictionResults:
    """Classifies every crop and screenshot box that `paths` name.

    Args:
        model: a Keras classifier (`model_io.load_model`).
        info: its `ModelInfo` (class names, image size, task).
        paths: crop images, screenshots with their XML beside them (or the XML), or folders
            of these (see `data_processing.inputs`).
        task: a task spec for reading true labels; default `info.task`.
        batch_size: crops per forward pass.
        progress: called with the number of crops classified so far, after each batch.
        parts: the part of the model's split of each crop of its data, by file or by
            screenshot box (`provenance.seen_crops`), to say which crops it trained on.
        confidence: the model's confidence rule (`confidence.load_confidence`): calibrated
            probabilities, novelty scores and `unknown` answers; None: the raw
            probabilities, never `unknown`.

    Returns:
        The predictions and the skipped inputs.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: if a file is neither an image nor an XML, or a folder holds neither.
    """
    from toonvision.model_utils.training.models import predict_probabilities

    results = PredictionResults()
    mapping = task_for(info, task)
    image_size = tuple(info.image_size)
    batch: list[Crop] = []

    def flush() -> None:
        images = np.stack([crop.image for crop in batch]).astype(np.float32)
        probabilities = predict_probabilities(model, images, batch_size)
        scores, accepted = np.full(len(batch), np.nan), np.ones(len(batch), dtype=bool)
        if confidence is not None:
            judgement = confidence.judge(model, images, probabilities)
            probabilities, scores, accepted = (judgement.probabilities, judgement.scores,
                                               judgement.accepted)
        for crop, row, score, known in zip(batch, probabilities, scores, accepted,
                                           strict=True):
            index = int(np.argmax(row))
            label = crop.label if parts is None else parts.label_of(crop)
            true_class = mapping.class_of(label) if mapping is not None else None
            # A crop's file name is a label only when the task knows it; a box's always is.
            label = label if crop.box is not None or true_class is not None else ""
            results.predictions.append(Prediction(
                source=crop.source, box=crop.box, label=label, true_class=true_class,
                predicted=info.class_names[index] if known else UNKNOWN,
                confidence=float(row[index]),
                part="" if parts is None else parts.part_of(crop.source, crop.box),
                novelty=None if confidence is None else float(score), accepted=bool(known),
            ))
        batch.clear()
        if progress is not None:
            progress(len(results.predictions))

    for crop in iter_crops(find_inputs(paths), image_size, results.skipped, info.resize):
        batch.append(crop)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return results


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """The predictions as CSV text with `CSV_COLUMNS` (box columns empty for crops)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in predictions:
        box = item.box if item.box is not None else ("", "", "", "")
        writer.writerow([item.source, *box, item.label, item.predicted,
                         f"{item.confidence:.4f}", item.part,
                         "" if item.novelty is None else f"{item.novelty:.4f}",
                         int(item.accepted)])
    return buffer.getvalue()


def predictions_table(predictions: Sequence[Prediction]) -> str:
    """The predictions as aligned text for a terminal, with a mark for right and wrong."""
    import pandas as pd

    marks = {True: "ok", False: "WRONG", None: ""}
    rows = [{
        "source": str(item.source),
        "box": "" if item.box is None else "{},{},{},{}".format(*item.box),
        "label": item.label,
        "predicted": item.predicted,
        "confidence": f"{item.confidence:.3f}",
        "": marks[item.correct],
        **({"part": item.part} if any(other.part for other in predictions) else {}),
        **({"novelty": f"{item.novelty:.3f}"} if item.novelty is not None else {}),
    } for item in predictions]
    return pd.DataFrame(rows).to_string(index=False) if rows else "(no predictions)"


def draw_predictions(image: np.ndarray, predictions: Sequence[Prediction]) -> np.ndarray:
    """Draws each prediction's box and `class confidence` (and the true label when wrong).

    Args:
        image: the screenshot, uint8 RGB.
        predictions: predictions with boxes in this screenshot.

    Returns:
        A copy of the image with the boxes drawn: green when right, red when wrong, amber
        when the true class is unknown, grey (with the word `unknown`) when the model did
        not recognise the crop.
    """
    drawn = image.copy()
    for item in predictions:
        if item.box is None:
            continue
        if not item.accepted:
            draw_labelled_box(drawn, item.box, UNKNOWN, REJECTED_COLOR)
            continue
        color = {True: CORRECT_COLOR, False: WRONG_COLOR, None: UNKNOWN_COLOR}[item.correct]
        text = f"{item.predicted} {item.confidence:.2f}"
        if item.correct is False:
            text += f" (true: {item.true_class})"
        draw_labelled_box(drawn, item.box, text, color)
    return drawn


def write_drawings(predictions: Sequence[Prediction], out_dir: str | os.PathLike) -> list[Path]:
    """Writes every screenshot that has boxed predictions, drawn, as `<stem>_predicted.png`.

    Returns:
        The files written (names made unique when two screenshots share a stem).
    """
    from toonvision.data_processing.images import write_image_atomic

    out_dir = Path(out_dir)
    written: list[Path] = []
    for source, items, name in _by_screenshot(predictions, "_predicted", ".png"):
        target = out_dir / name
        write_image_atomic(target, draw_predictions(screenshot_pixels(source), items))
        written.append(target)
    return written


def _by_screenshot(predictions: Sequence[Prediction], tag: str,
                   suffix: str) -> Iterator[tuple[Path, list[Prediction], str]]:
    """Each screenshot with boxed predictions, its predictions, and a file name
    `<stem><tag><suffix>` made unique (`<stem><tag>_2<suffix>`...) when stems repeat."""
    by_source: dict[Path, list[Prediction]] = {}
    for item in predictions:
        if item.box is not None:
            by_source.setdefault(item.source, []).append(item)
    used: set[str] = set()
    for source, items in by_source.items():
        name, counter = f"{source.stem}{tag}{suffix}", 1
        while name in used:
            counter += 1
            name = f"{source.stem}{tag}_{counter}{suffix}"
        used.add(name)
        yield source, items, name


def write_voc(predictions: Sequence[Prediction], out_dir: str | os.PathLike) -> list[Path]:
    """Writes one labelImg XML per screenshot: its boxes, named with the predicted classes,
    with the screenshot beside it.

    A box the model did not recognise is named `unknown` (rename or delete it in labelImg).
    `out_dir` becomes a folder labelImg opens and `extract` reads as it is: each XML's
    screenshot is placed beside it under the XML's stem (a hard link, or a copy where the
    folders are on different file systems; nothing to place when `out_dir` is the screenshots'
    own folder). Open `out_dir` in labelImg, correct the few wrong names, and extract
    `out_dir`. The confidences go to `out_dir/predictions.csv` (`predictions_csv`). An XML
    that exists already (perhaps corrected by hand) is never overwritten, nor is an image
    of the XML's name that is another picture: that screenshot's XML is left out (a warning
    says which) and not in the returned list.

    Args:
        predictions: predictions with boxes (crop files are ignored).
        out_dir: the folder for `<stem>.xml` (`<stem>_2.xml`... when stems repeat) and the
            screenshots.

    Returns:
        The XML files written, then the CSV.
    """
    from lxml import etree

    from toonvision.fileio import write_text_atomic

    out_dir = Path(out_dir)
    written: list[Path] = []
    boxed: list[Prediction] = []   # every boxed prediction, grouped by screenshot, for the CSV
    for source, items, name in _by_screenshot(predictions, "", ".xml"):
        boxed.extend(items)
        target = out_dir / name
        if target.exists():
            logger.warning("%s exists and is left as it is", target)
            continue
        pixels = screenshot_pixels(source)
        image = _screenshot_beside(source, pixels, target)
        if image is None:
            continue
        height, width, depth = pixels.shape
        root = etree.Element("annotation")
        for tag, text in (("folder", out_dir.absolute().name), ("filename", image.name),
                          ("path", str(image.absolute()))):
            etree.SubElement(root, tag).text = text
        etree.SubElement(etree.SubElement(root, "source"), "database").text = "Unknown"
        size = etree.SubElement(root, "size")
        for tag, value in (("width", width), ("height", height), ("depth", depth)):
            etree.SubElement(size, tag).text = str(value)
        etree.SubElement(root, "segmented").text = "0"
        for item in items:
            element = etree.SubElement(root, "object")
            for tag, text in (("name", item.predicted), ("pose", "Unspecified"),
                              ("truncated", "0"), ("difficult", "0")):
                etree.SubElement(element, tag).text = text
            box = etree.SubElement(element, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), item.box, strict=True):
                etree.SubElement(box, tag).text = str(value)
        text = etree.tostring(root, pretty_print=True, encoding="unicode")
        written.append(write_text_atomic(target, text))
    written.append(write_text_atomic(out_dir / "predictions.csv", predictions_csv(boxed)))
    return written


def screenshot_pixels(source: Path) -> np.ndarray:
    """The RGB pixels of a prediction's screenshot: its image file, or the image a labelme
    file embeds as `imageData` (the labelme file is then the source)."""
    if is_image_file(source):
        return read_image(source)
    from toonvision.data_processing.labelme import embedded_image

    return decode_image(embedded_image(source))


def _screenshot_beside(source: Path, pixels: np.ndarray, xml: Path) -> Path | None:
    """The screenshot placed beside `xml` under its stem: `source` itself (a hard link, else a
    copy), or a PNG of `pixels` when the source is a labelme file that embeds them. None (with
    a warning) when a file of that name is another picture, which is kept."""
    from toonvision.fileio import copy_without_overwrite, write_bytes_new

    xml.parent.mkdir(parents=True, exist_ok=True)
    if is_image_file(source):
        target = xml.with_suffix(source.suffix)

        def place() -> None:
            copy_without_overwrite(source, target)

        def same() -> bool:
            return target.samefile(source) or target.read_bytes() == source.read_bytes()
    else:
        target, data = xml.with_suffix(".png"), encode_image(pixels, ".png")

        def place() -> None:
            write_bytes_new(target, data)

        def same() -> bool:
            return target.read_bytes() == data
    try:
        place()
    except FileExistsError:
        if not same():
            logger.warning("%s exists and is another image: %s is not written beside it",
                           target, xml.name)
            return None
    return target
