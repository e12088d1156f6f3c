"""Background removal and centering for flat labelled image sets (the Pokemon challenge's recipe).

The challenge team's lesson was that preprocessing decides everything: removing the background
and centering the Pokemon took their MLP from ~0.30 to 0.93 validation accuracy. Background
removal follows their four steps, each an OpenCV call:

1. fix the border: every border pixel is set to the background value, so that the border is
   background by definition (a Pokemon touching the edge cannot leak into it);
2. threshold: background black, everything else white. An image with transparency uses its
   alpha channel (palette images with a transparent colour are expanded to RGBA when read);
   an opaque image (a JPG on a white background) uses the distance of each pixel from the
   background colour, the median of its border;
3. morphological closing (`cv2.morphologyEx`, N iterations of a 3x3 kernel) fills the holes
   that background-coloured parts of the object (white eyes on a white background) leave in
   the mask; too many iterations also close the gaps between limbs and let background in;
4. apply the mask to the original.

Centering moves the bounding rectangle of the mask to the middle of the image, then resizes
the image to the target size. `steps_examples` computes every stage on a few images for the
steps figure, which `data_visualization.dataset_figures` draws.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonvision import ExistingFileError, ToonvisionError
from toonvision.data_processing.dataset import Dataset
from toonvision.data_processing.images import ImageReadError, read_image, resize, write_image_atomic
from toonvision.fileio import write_text_atomic

logger = logging.getLogger(__name__)

REMOVE_BACKGROUND = "remove-background"
CENTER = "center"
STEPS: tuple[str, ...] = (REMOVE_BACKGROUND, CENTER)
DEFAULT_SIZE = 64
DEFAULT_ITERATIONS = 9
BORDER_WIDTH = 1
# Distance (max over R, G, B) from the background colour above which an opaque pixel is
# object; JPEG noise around a white background stays well below it.
COLOUR_TOLERANCE = 30
# Alpha above which a pixel is object (the antialiased fringe of these sprites is 17..68).
ALPHA_THRESHOLD = 0
KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
TRADE_OFF_ITERATIONS: tuple[int, ...] = (1, 5, 9, 10, 15)
LABELS_FILE = "labels.csv"
STEPS_FIGURE = "preprocess_steps.png"


@dataclass
class MaskSteps:
    """The intermediate images of background removal, for inspection and the steps figure.

    Attributes:
        original: the image as RGB uint8 (transparent pixels composited onto black).
        fixed_border: the thresholding input (alpha, or distance from the background colour)
            with the border set to the background value 0.
        thresholded: the mask after thresholding, 0 or 255.
        closed: the mask after morphological closing, 0 or 255, border zero.
        result: the original with the closed mask applied.
        background: the background colour (RGB) the original was judged against.
    """

    original: np.ndarray
    fixed_border: np.ndarray
    thresholded: np.ndarray
    closed: np.ndarray
    result: np.ndarray
    background: tuple[int, int, int]


def check_steps(steps: Sequence[str]) -> tuple[str, ...]:
    """Returns `steps` as a tuple after checking each name.

    Raises:
        ValueError: for an unknown step name or no steps at all.
    """
    steps = tuple(step.strip() for step in steps if step.strip())
    unknown = [step for step in steps if step not in STEPS]
    if unknown or not steps:
        raise ToonvisionError(
            f"unknown preprocessing steps {unknown or list(steps)}; use one or more of "
            f"{', '.join(STEPS)}"
        )
    return steps


def remove_background_steps(
    image: np.ndarray, iterations: int = DEFAULT_ITERATIONS
) -> MaskSteps:
    """Runs the four background-removal steps on one image and returns every stage.

    Args:
        image: uint8 RGB or RGBA (as `read_image(path, keep_alpha=True)` returns it).
        iterations: iterations of the 3x3 morphological closing (0 = no closing).

    Returns:
        Every stage of the removal; `result` is the image without its background.

    Raises:
        ValueError: for an image that is not (H, W, 3|4) uint8 or a negative iteration count.
    """
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ToonvisionError(
            f"expected an (height, width, 3 or 4) uint8 image, got {image.shape} {image.dtype}"
        )
    if iterations < 0:
        raise ToonvisionError(f"closing iterations must be >= 0, got {iterations}")
    rgb = np.ascontiguousarray(image[:, :, :3])
    alpha = image[:, :, 3] if image.shape[2] == 4 else None
    if alpha is not None and (alpha < 255).any():
        original = (rgb.astype(np.uint16) * alpha[:, :, None] // 255).astype(np.uint8)
        signal, threshold = alpha.copy(), ALPHA_THRESHOLD
        background = (0, 0, 0)
    else:
        original = rgb
        border = _border_pixels(rgb)
        background = tuple(int(value) for value in np.median(border, axis=0))
        difference = cv2.absdiff(rgb, np.full_like(rgb, background))
        signal, threshold = difference.max(axis=2), COLOUR_TOLERANCE
    fixed_border = _zero_border(signal)
    _, thresholded = cv2.threshold(fixed_border, threshold, 255, cv2.THRESH_BINARY)
    closed = _zero_border(_close(thresholded, iterations))
    result = cv2.bitwise_and(original, original, mask=closed)
    return MaskSteps(original, fixed_border, thresholded, closed, result, background)


def _close(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Morphological closing of `mask` as if the world outside the image were background.

    The mask is padded with `iterations` background pixels first: OpenCV's own border handling
    either lets the dilation stick to the image edge (the default) or erodes a band of
    `iterations` pixels off any object touching the edge (a constant 0 border).
    """
    if iterations == 0:
        return mask.copy()
    padded = cv2.copyMakeBorder(
        mask, iterations, iterations, iterations, iterations, cv2.BORDER_CONSTANT, value=0
    )
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, KERNEL, iterations=iterations)
    return closed[iterations:-iterations, iterations:-iterations]


def _border_pixels(image: np.ndarray) -> np.ndarray:
    """Returns the pixels of the outer ring of `image`, one per row."""
    ring = np.ones(image.shape[:2], dtype=bool)
    ring[BORDER_WIDTH:-BORDER_WIDTH, BORDER_WIDTH:-BORDER_WIDTH] = False
    return image[ring]


def _zero_border(plane: np.ndarray) -> np.ndarray:
    """Returns a copy of the 2-D `plane` with its outer ring set to 0 (background)."""
    fixed = plane.copy()
    fixed[:BORDER_WIDTH, :] = 0
    fixed[-BORDER_WIDTH:, :] = 0
    fixed[:, :BORDER_WIDTH] = 0
    fixed[:, -BORDER_WIDTH:] = 0
    return fixed


def center_object(
    image: np.ndarray, mask: np.ndarray, fill: Sequence[int] = (0, 0, 0)
) -> np.ndarray:
    """Moves the bounding rectangle of `mask` to the middle of the image.

    Args:
        image: (H, W, 3) uint8.
        mask: (H, W) uint8, non-zero on the object.
        fill: the colour of the uncovered area (the background colour).

    Returns:
        An image of the same size with the object centred; the image unchanged when the mask
        is empty.
    """
    x, y, width, height = cv2.boundingRect(mask)
    if width == 0 or height == 0:
        return image.copy()
    centred = np.empty_like(image)
    centred[:] = np.asarray(fill, dtype=np.uint8)
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    centred[top:top + height, left:left + width] = image[y:y + height, x:x + width]
    return centred


def preprocess_image(
    image: np.ndarray,
    size: int | tuple[int, int] = DEFAULT_SIZE,
    steps: Sequence[str] = STEPS,
    iterations: int = DEFAULT_ITERATIONS,
) -> np.ndarray:
    """Removes the background and/or centres the object, then resizes.

    Args:
        image: uint8 RGB or RGBA.
        size: the output side, or (height, width).
        steps: any of `remove-background`, `center`, applied in that order.
        iterations: closing iterations of the background mask.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    steps = check_steps(steps)
    target = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    stages = remove_background_steps(image, iterations)
    if REMOVE_BACKGROUND in steps:
        output, fill = stages.result, (0, 0, 0)
    else:
        output, fill = stages.original, stages.background
    if CENTER in steps:
        output = center_object(output, stages.closed, fill)
    return resize(output, target)


@dataclass
class ProcessedImage:
    """The outcome for one input image.

    Attributes:
        source: the input file.
        label: its label.
        output: the written file, or None when it was skipped.
        error: why it was skipped, or None.
    """

    source: Path
    label: str
    output: Path | None
    error: str | None = None


def output_names(paths: Sequence[Path]) -> list[str]:
    """Returns a unique output file stem per input path (the stem, made unique by a suffix)."""
    used: set[str] = set()
    names = []
    for path in paths:
        name, number = path.stem, 1
        while name in used:
            number += 1
            name = f"{path.stem}_{number}"
        used.add(name)
        names.append(name)
    return names


def check_output_dir(out_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> Path:
    """Checks that `out_dir` may receive a processed set.

    Raises:
        ValueError: if `out_dir` is, or is inside, one of the input folders, or is a file.
        FileExistsError: if `out_dir` exists and is not empty.
    """
    out_dir = Path(out_dir).resolve()
    for folder in inputs:
        folder = Path(folder).resolve()
        if out_dir == folder or folder in out_dir.parents:
            raise ToonvisionError(
                f"output folder {out_dir} is inside the input folder {folder}; "
                "choose a folder outside the input"
            )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ToonvisionError(f"output {out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            raise ExistingFileError(
                f"output folder {out_dir} is not empty; choose a new or empty folder"
            )
    return out_dir


def preprocess_dataset(
    dataset: Dataset,
    out_dir: str | os.PathLike,
    size: int | tuple[int, int] = DEFAULT_SIZE,
    steps: Sequence[str] = STEPS,
    iterations: int = DEFAULT_ITERATIONS,
) -> Iterator[ProcessedImage]:
    """Processes every image of `dataset` into `out_dir`, yielding the outcome per image.

    Each image is written as `<out_dir>/images/<stem>.png`; once every image is done,
    `<out_dir>/labels.csv` (`Id,label`) names the written ones, so the output is itself a
    flat labelled set. A broken image is yielded with its error and left out; the batch goes
    on. Call `check_output_dir` first to refuse a non-empty or input folder.

    Args:
        dataset: the images and their labels.
        out_dir: the output folder (created).
        size: the output side, or (height, width).
        steps: any of `remove-background`, `center`.
        iterations: closing iterations of the background mask.

    Yields:
        One `ProcessedImage` per input image, in dataset order.
    """
    steps = check_steps(steps)
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    for path, label, name in zip(
        dataset.paths, dataset.labels, output_names(dataset.paths), strict=True
    ):
        try:
            processed = preprocess_image(read_image(path, keep_alpha=True), size, steps, iterations)
        except ImageReadError as error:
            logger.warning("skipping %s", error)
            yield ProcessedImage(path, label, None, str(error))
            continue
        target = images_dir / f"{name}.png"
        write_image_atomic(target, processed)
        rows.append((name, label))
        yield ProcessedImage(path, label, target)
    write_text_atomic(out_dir / LABELS_FILE, labels_csv_text(rows))


def labels_csv_text(rows: Sequence[tuple[str, str]]) -> str:
    """Renders `(id, label)` rows as the challenge's `Id,label` CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Id", "label"])
    writer.writerows(rows)
    return buffer.getvalue()


def _on_gray(stages: MaskSteps) -> np.ndarray:
    """Returns the original where the mask keeps it and mid-gray elsewhere."""
    panel = np.full_like(stages.original, 128)
    kept = stages.closed > 0
    panel[kept] = stages.original[kept]
    return panel


@dataclass
class StepsExample:
    """One row of the steps figure.

    Attributes:
        name: the example's file stem.
        panels: one image per column of `steps_columns`: the original, each step's output,
            the centred and resized result, then the kept pixels for each iteration count
            compared (on gray, so that background let into the mask shows).
    """

    name: str
    panels: list[np.ndarray]


def steps_columns(
    iterations: int = DEFAULT_ITERATIONS,
    trade_off: Sequence[int] = TRADE_OFF_ITERATIONS,
    size: int = DEFAULT_SIZE,
) -> list[str]:
    """Returns the column titles of the steps figure, matching `StepsExample.panels`."""
    return [
        "original", "1. fix border", "2. threshold", f"3. close x{iterations}",
        "4. mask applied", f"centred {size}x{size}",
    ] + [f"kept, close x{count}" for count in trade_off]


def steps_examples(
    paths: Sequence[Path],
    iterations: int = DEFAULT_ITERATIONS,
    trade_off: Sequence[int] = TRADE_OFF_ITERATIONS,
    size: int = DEFAULT_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> list[StepsExample]:
    """Runs each step on a few examples, and the closing-iteration trade-off, for the figure.

    `data_visualization.dataset_figures.preprocess_steps_figure` draws the result.

    Args:
        paths: the example images (unreadable ones are left out, with a warning).
        iterations: the iteration count of the main columns.
        trade_off: the iteration counts compared in the last columns.
        size: the output side of the centred column.
        progress: called as `progress(done, total)` per example.

    Returns:
        One `StepsExample` per readable image, in order.

    Raises:
        ToonvisionError: if none of `paths` can be read.
    """
    images = []
    for path in paths:
        try:
            images.append((path, read_image(path, keep_alpha=True)))
        except ImageReadError as error:
            logger.warning("steps figure: skipping %s", error)
    if not images:
        raise ToonvisionError("no readable example image for the steps figure")
    examples = []
    for path, image in images:
        stages = remove_background_steps(image, iterations)
        panels = [
            stages.original, stages.fixed_border, stages.thresholded, stages.closed,
            stages.result, preprocess_image(image, size, STEPS, iterations),
        ] + [_on_gray(remove_background_steps(image, count)) for count in trade_off]
        examples.append(StepsExample(path.stem, panels))
        if progress is not None:
            progress(len(examples), len(images))
    return examples
