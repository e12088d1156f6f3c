"""Extraction: labelled screenshots in, a growing folder of crops plus a manifest out.

`toonvision extract` walks a folder of screenshots with their boxes (labelImg Pascal VOC XML
beside each, or a YOLO, COCO, labelme, Label Studio or CVAT export: see `annotations`), and
crops every labelled box into `<data_dir>/unsorted/<prefix>/<label>_<index>.png`
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
`extract_results` holds what a run reports, `manifest` the manifest, and `annotations` the
readers of every format.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from toonvision import ToonvisionError
from toonvision.data_processing.annotations import ScreenshotPair, find_annotated
from toonvision.data_processing.dataset import CROPS_FOLDER
from toonvision.data_processing.extract_results import Problem, ScreenshotResult
from toonvision.data_processing.extractor import Extractor, read_screenshot
from toonvision.data_processing.manifest import PROCESSED_FOLDER
from toonvision.fileio import exclusive_lock, remove_temporary_files

logger = logging.getLogger(__name__)

# Decoding and encoding run in threads (OpenCV releases the GIL); screenshots are read up to
# READ_AHEAD ahead of the one being written. Indices are still given out in order.
WORKERS = min(4, os.cpu_count() or 1)
READ_AHEAD = 2 * WORKERS
LOCK_NAME = ".extract.lock"


def find_screenshots(
    root: str | os.PathLike, exclude: Iterable[str | os.PathLike] = (), format: str | None = None
) -> tuple[list[ScreenshotPair], list[Problem]]:
    """Finds every screenshot with its boxes below `root`, recursively, in any format.

    The format is detected from what the folder holds, or forced (see
    `annotations.find_annotated`). For labelImg VOC an image and its XML pair by
    `voc.pair_files`' rule, the one `predict` and `report` follow too: same folder and file
    stem (`shot.png` + `shot.xml`), with the XML's `<filename>` settling which of several
    same-stem images it describes, or naming its image when the XML's own stem has none.

    Args:
        root: the folder to search.
        exclude: folders not to descend into (the data folder, the drawing folder).
        format: one of `annotations.FORMATS`, or None to detect it.

    Returns:
        The pairs and one problem per file that cannot be used: for VOC an image without
        XML, an XML without image, or several files that cannot be told apart. Both lists
        are empty for a folder without images or annotations.

    Raises:
        FileNotFoundError: if `root` does not exist.
        ValueError: if `root` is not a folder, or its format cannot be told.
    """
    found = find_annotated(root, exclude, format)
    return found.pairs, found.problems


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
    format: str | None = None,
    dry_run: bool = False,
) -> Iterator[ScreenshotResult]:
    """Finds the screenshots below `screenshots_dir` and extracts them into `data_dir`.

    Files that cannot be used come first, as results with only `skipped` filled in, then
    facts about files that hold nothing to extract (a YOLO background image), as results
    with only `notes`; then one result per screenshot, as `extract_screenshots` produces them.

    Args:
        screenshots_dir: the folder of screenshots and their annotations, searched
            recursively.
        data_dir: the data folder; crops go to `<data_dir>/unsorted/`.
        move: move each fully extracted screenshot and its XML to `<data_dir>/raw/processed/`
            (labelImg VOC only: the other formats keep many images' boxes in shared files).
        draw_dir: if given, write a copy of each screenshot with its boxes drawn there.
        format: one of `annotations.FORMATS`, or None to detect it from the folder.
        dry_run: read everything and report what would be extracted, writing nothing.

    Yields:
        One `ScreenshotResult` per file or screenshot (see `ExtractionSummary` to add them up).

    Raises:
        ToonvisionError: if `move` is asked for a format other than VOC.
    """
    found = find_annotated(screenshots_dir, output_folders(data_dir, draw_dir), format)
    check_move(move, found.format)
    for problem in found.problems:
        yield ScreenshotResult(problem.path, skipped=[problem])
    for note in found.notes:
        yield ScreenshotResult(note.path, notes=[note])
    if dry_run:
        yield from dry_run_screenshots(found.pairs, data_dir)
    else:
        yield from extract_screenshots(found.pairs, data_dir, move=move, draw_dir=draw_dir)


def check_move(move: bool, format: str) -> None:
    """Refuses `move` for exports other than VOC, whose files describe many images.

    Raises:
        ToonvisionError: if `move` is set and `format` is not `voc`.
    """
    if move and format != "voc":
        raise ToonvisionError(f"--move moves each screenshot with its own labelImg XML; a "
                              f"{format} export keeps its boxes elsewhere, so nothing would "
                              "be left consistent: leave --move out")


def dry_run_screenshots(
    pairs: Iterable[ScreenshotPair], data_dir: str | os.PathLike
) -> Iterator[ScreenshotResult]:
    """What `extract_screenshots` would do, without writing anything anywhere.

    Every screenshot is read (annotation parsed, image decoded, boxes checked); each result
    lists the crops that would be written, under the names they would get now; objects an
    earlier run extracted count as `already_extracted`. No folder, lock, crop or manifest
    is created or changed.
    """
    with ThreadPoolExecutor(WORKERS) as pool:
        extractor = Extractor(Path(data_dir), False, None, pool, dry_run=True)
        for screenshot in _read_ahead(pool, read_screenshot, pairs, READ_AHEAD):
            yield extractor.extract(screenshot)


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
