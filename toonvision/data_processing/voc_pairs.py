"""The VOC reader of `annotations.find_annotated`: labelImg XML beside each screenshot.

The XML is parsed later, when the screenshot is read (`extractor.read_screenshot`), so that
parsing runs in the reading threads; here images and XML are only paired, folder by folder,
by `voc.pair_files`' rule.
"""

from __future__ import annotations

from pathlib import Path

from toonvision.data_processing import voc
from toonvision.data_processing.annotations import Found, ScreenshotPair
from toonvision.data_processing.extract_results import (
    AMBIGUOUS_PAIR,
    IMAGE_WITHOUT_XML,
    XML_WITHOUT_IMAGE,
    Problem,
)
from toonvision.data_processing.images import IMAGE_EXTENSIONS


def find(root: Path, folders: list[tuple[Path, list[str]]]) -> Found:
    """Pairs every image with its labelImg XML below `root` (see `voc.pair_files`).

    Returns:
        The pairs, folder by folder and by stem within a folder, and one problem per file
        that cannot be paired: an image without XML, an XML without image, or several files
        that cannot be told apart.
    """
    found = Found(format="voc")
    for folder, file_names in folders:
        pairing = voc.pair_files(folder / name for name in file_names)
        found.pairs += [ScreenshotPair(image, xml, image.relative_to(root))
                        for image, xml in pairing.pairs]
        problems = [Problem(image, IMAGE_WITHOUT_XML, f"expected {image.stem}.xml beside it")
                    for image in pairing.images_without_annotation]
        problems += [Problem(xml, XML_WITHOUT_IMAGE,
                             f"expected {xml.stem}{', '.join(IMAGE_EXTENSIONS[:-1])} or "
                             f"{IMAGE_EXTENSIONS[-1]} beside it")
                     for xml in pairing.annotations_without_image]
        for group in pairing.ambiguous:
            names = ", ".join(path.name for path in group)
            problems += [Problem(path, AMBIGUOUS_PAIR, f"cannot tell apart {names}")
                         for path in group]
        found.problems += sorted(problems, key=lambda problem: problem.path.stem)
    return found
