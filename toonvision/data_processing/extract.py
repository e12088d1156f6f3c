"""Extraction: labelled screenshots in, a growing folder of crops plus a manifest out.

`toonvision extract` walks a folder of screenshots, each with its labelImg Pascal VOC XML
beside it, and crops every labelled box into `<data_dir>/unsorted/<prefix>/<label>_<index>.png`
(`<prefix>` is `cog`, `toon`, or the label itself for labels outside the ToonTown taxonomy).

Three promises shape the code:

- Nothing is extracted twice and no number is reused. `<data_dir>/manifest.csv` records each
  crop with the content hash of its screenshot and the object's position in the XML, so a
  screenshot seen again (even renamed or moved) adds nothing; the next index of a label is
  one past the highest ever recorded or found on disk, so deleted crops leave a gap.
- A crash or kill never leaves a half-done state that a re-run cannot finish exactly. For each
  screenshot the indices of its new crops are first recorded in the manifest as `planned`,
  then the crops are written (each to a temporary name, then renamed), then the rows become
  `written`. A re-run reuses planned indices, so it produces the very files an uninterrupted
  run would have produced.
- Bad input is reported, never fatal: each problem is one message naming the file and the
  reason, the batch goes on, and no file is written outside `<data_dir>` (or the drawing
  folder the user named).

This module finds the screenshots and drives a run; `extractor` extracts each screenshot,
`extract_results` holds what a run reports, `manifest` the manifest, and `voc.pair_files`
the rule that pairs an image with its XML.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from toonvision import MissingFileError, ToonvisionError
from toonvision.data_processing import voc
from toonvision.data_processing.dataset import CROPS_FOLDER
from toonvision.data_processing.extract_results import (
    AMBIGUOUS_PAIR,
    IMAGE_WITHOUT_XML,
    XML_WITHOUT_IMAGE,
    Problem,
    ScreenshotResult,
)
from toonvision.data_processing.extractor import Extractor, ScreenshotPair, read_screenshot
from toonvision.data_processing.images import IMAGE_EXTENSIONS
from toonvision.data_processing.manifest import PROCESSED_FOLDER
from toonvision.fileio import exclusive_lock, remove_temporary_files

logger = logging.getLogger(__name__)

# Decoding and encoding run in threads (OpenCV releases the GIL); screenshots are read up to
# READ_AHEAD ahead of the one being written. Indices are still given out in order.
WORKERS = min(4, os.cpu_count() or 1)
READ_AHEAD = 2 * WORKERS
LOCK_NAME = ".extract.lock"


def find_screenshots(
    root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()
) -> tuple[list[ScreenshotPair], list[Problem]]:
    """Finds every screenshot with its XML below `root`, recursively.

    An image and its XML pair by `voc.pair_files`' rule, the one `predict` and `report`
    follow too: same folder and file stem (`shot.png` + `shot.xml`), with the XML's
    `<filename>` settling which of several same-stem images it describes, or naming its image
    when the XML's own stem has none.

    Args:
        root: the folder to search.
        exclude: folders not to descend into (the data folder, the drawing folder).

    Returns:
        The pairs, folder by folder and by stem within a folder, and one problem per file
        that cannot be paired: an image without XML, an XML without image, or several files
        that cannot be told apart. Both lists are empty for a folder without images or XML.

    Raises:
        FileNotFoundError: if `root` does not exist.
        ValueError: if `root` is not a folder.
    """
    root = Path(root)
    if not root.exists():
        raise MissingFileError(f"{root}: no such folder")
    if not root.is_dir():
        raise ToonvisionError(f"{root}: not a folder")
    excluded = {Path(folder).resolve() for folder in exclude}
    pairs: list[ScreenshotPair] = []
    problems: list[Problem] = []
    for folder_name, subfolders, file_names in os.walk(root):
        folder = Path(folder_name)
        subfolders[:] = sorted(name for name in subfolders
                               if (folder / name).resolve() not in excluded)
        pairing = voc.pair_files(folder / name for name in file_names)
        pairs += [ScreenshotPair(image, xml, image.relative_to(root))
                  for image, xml in pairing.pairs]
        found = [Problem(image, IMAGE_WITHOUT_XML, f"expected {image.stem}.xml beside it")
                 for image in pairing.images_without_annotation]
        found += [Problem(xml, XML_WITHOUT_IMAGE,
                          f"expected {xml.stem}{', '.join(IMAGE_EXTENSIONS[:-1])} or "
                          f"{IMAGE_EXTENSIONS[-1]} beside it")
                  for xml in pairing.annotations_without_image]
        for group in pairing.ambiguous:
            names = ", ".join(path.name for path in group)
            found += [Problem(path, AMBIGUOUS_PAIR, f"cannot tell apart {names}")
                      for path in group]
        problems += sorted(found, key=lambda problem: problem.path.stem)
    return pairs, problems


def output_folders(
    data_dir: str | os.PathLike, draw_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Returns the folders extraction writes to, which a search for screenshots must skip.

    The data folder itself is one (its crops have no XML); its `unsorted/` and
    `raw/processed/` are named too for when the screenshots folder lies inside it
    (e.g. `toonvision extract data/raw --data-dir data`).
    """
    data_dir = Path(data_dir)
    folders = [data_dir, data_dir / CROPS_FOLDER, data_dir / PROCESSED_FOLDER]
    return folders + ([Path(draw_dir)] if draw_dir is not None else [])


def extract(
    screenshots_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    move: bool = False,
    draw_dir: str | os.PathLike | None = None,
) -> Iterator[ScreenshotResult]:
    """Finds the screenshots below `screenshots_dir` and extracts them into `data_dir`.

    Files that cannot be paired come first, as results with only `skipped` filled in; then
    one result per screenshot, as `extract_screenshots` produces them.

    Args:
        screenshots_dir: the folder of screenshots and their VOC XML, searched recursively.
        data_dir: the data folder; crops go to `<data_dir>/unsorted/`.
        move: move each fully extracted screenshot and its XML to `<data_dir>/raw/processed/`.
        draw_dir: if given, write a copy of each screenshot with its boxes drawn there.

    Yields:
        One `ScreenshotResult` per file or screenshot (see `ExtractionSummary` to add them up).
    """
    pairs, problems = find_screenshots(screenshots_dir, exclude=output_folders(data_dir, draw_dir))
    for problem in problems:
        yield ScreenshotResult(problem.path, skipped=[problem])
    yield from extract_screenshots(pairs, data_dir, move=move, draw_dir=draw_dir)


def extract_screenshots(
    pairs: Iterable[ScreenshotPair],
    data_dir: str | os.PathLike,
    move: bool = False,
    draw_dir: str | os.PathLike | None = None,
) -> Iterator[ScreenshotResult]:
    """Crops every labelled object of each screenshot into `<data_dir>/unsorted/`.

    Only one extraction may write to a data folder at a time (a lock file ensures it). The
    screenshots are processed in the order given; the same order gives the same indices.

    Args:
        pairs: the screenshots and their XML, e.g. from `find_screenshots`.
        data_dir: the data folder (created if missing).
        move: move each screenshot and its XML to `<data_dir>/raw/processed/` once all its
            crops are on disk and in the manifest. A screenshot with a skipped object stays
            where it is, so that what is left behind is what needs attention.
        draw_dir: if given, write `<draw_dir>/<relative path>.png`, the screenshot with its
            boxes and labels drawn.

    Yields:
        One `ScreenshotResult` per pair, after that screenshot is completely done.

    Raises:
        ValueError: if another extraction holds the data folder or the manifest is corrupt.
        OSError: if a file cannot be written (disk full, permissions); a re-run completes it.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with (exclusive_lock(data_dir / LOCK_NAME, "another 'toonvision extract'"),
          ThreadPoolExecutor(WORKERS) as pool):
        _remove_temporary_files(data_dir)
        extractor = Extractor(data_dir, move, Path(draw_dir) if draw_dir else None, pool)
        try:
            for screenshot in _read_ahead(pool, read_screenshot, pairs, READ_AHEAD):
                yield extractor.extract(screenshot)
        finally:
            extractor.save_if_changed()


def _read_ahead(
    pool: ThreadPoolExecutor, function: Callable, items: Iterable, window: int
) -> Iterator:
    """Yields `function(item)` for each item in order, computing up to `window` items ahead."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()



def _remove_temporary_files(data_dir: Path) -> None:
    """Deletes temporary files left by a killed run (the caller holds the lock)."""
    removed = remove_temporary_files(data_dir)
    for folder in (data_dir / CROPS_FOLDER, data_dir / PROCESSED_FOLDER):
        removed += remove_temporary_files(folder, recursive=True)
    for path in removed:
        logger.info("removed %s, left by an interrupted run", path)
