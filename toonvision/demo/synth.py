"""Synthetic ToonTown-like street screenshots with labelImg annotations, for trying the tool.

The real screenshots cannot ship with the project, so `make demo` draws its own: an 800x600
cartoon street with 2-8 Cogs and Toons, each labelled with a real taxonomy label in a
Pascal VOC XML file laid out exactly as labelImg writes it. The screenshots are made as
messy as real ones, because a data set a baseline memorises says nothing about a model:

- figures stand at many distances (18 to about 230 px tall); far ones are blurred and fade
  into the haze;
- nearer figures partly hide farther ones, and every nametag (drawn over everything, as the
  game draws them) may hide part of another figure;
- some figures are cut by the screen's left, right or bottom edge; their box is clipped to
  the visible part, as labelImg clips it, and marked `truncated` by labelImg's rule;
- the light is day, dusk or shade, with cast shadows across the street;
- figures are seen from the front, the side or the back;
- some Toons wear a Cog suit's colours or have dull fur, some Cog heads are tan or pink;
- Cogs are far more common than Toons, and some Cog names are rare (a skewed mix like the
  article's);
- the finished screenshot goes through JPEG compression, as real screenshots do.

The data is SYNTHETIC: it shows the pipeline working end to end, it says nothing about how a
model does on real ToonTown screenshots.

Everything is drawn with OpenCV from a `numpy.random.Generator`, so a seed and a screenshot
count always give the same files. Boxes are in pixels and follow numpy slicing
(`image[ymin:ymax, xmin:xmax]`); as a person's boxes in labelImg, they are up to 10% looser
than the figure on each side, lie inside the image, and never start at 0 (labelImg moves a
0 to 1, so a figure cut by the left edge starts at 1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from toonvision import ToonvisionError, defaults
from toonvision.data_processing.images import decode_image, encode_image
from toonvision.demo import figures, scenery
from toonvision.demo.drawing import Box, apply_light, paste, soften
from toonvision.demo.placement import SCREEN_HEIGHT, SCREEN_WIDTH, place_figures
from toonvision.fileio import write_bytes_atomic
from toonvision.labels import COG_LABELS, TOON_LABELS, is_taxonomy_label

logger = logging.getLogger(__name__)

FILE_STEM = "synth_{seed}_{index:04d}"
# --- the label mix (`plan_labels`) ----------------------------------------------------------
OBJECTS_PER_SCREENSHOT = (2, 8)
COG_SHARE = defaults.SYNTH_COG_SHARE   # share of figures that are Cogs
COG_NAME_SKEW = 1.0           # Zipf exponent of the Cog labels' frequencies (0: all alike)
TOON_ANIMAL_SKEW = 0.5        # the same for the Toon animals
# --- distance, annotation and file ----------------------------------------------------------
BLUR_BELOW = 70               # figures shorter than this (px) are blurred the more the smaller,
BLUR_PER_PIXEL = 1 / 35       # by this Gaussian sigma per pixel below BLUR_BELOW,
EXTRA_BLUR = 0.5              # plus up to this much (out of focus) for any figure
HAZE_BELOW = 100              # figures shorter than this fade toward the horizon's colour,
HAZE_PER_PIXEL = 1 / 150      # by this share per pixel below HAZE_BELOW,
MAX_HAZE = 0.5                # up to this share
BOX_SLACK = 0.1               # an annotator's box is looser than the figure by up to this share
JPEG_QUALITY = (45, 85)       # range of the JPEG quality a screenshot passes through


@dataclass(frozen=True)
class SyntheticObject:
    """One labelled figure in a synthetic screenshot.

    Attributes:
        label: its taxonomy label, e.g. `cog_sb_coldcaller` or `toon_dog`.
        box: (xmin, ymin, xmax, ymax) as written to the XML: the figure's part inside the
            screen (hidden parts behind other figures included), a little loose on each side
            as an annotator draws it.
        nametag_box: the same for its nametag, which lies above the figure's head.
        view: `front`, `side` or `back`.
        light: the scene's light, `day`, `dusk` or `shade`.
        truncated: the box touches the image's edge (labelImg's rule for `<truncated>`).
    """

    label: str
    box: Box
    nametag_box: Box
    view: str = "front"
    light: str = "day"
    truncated: bool = False


@dataclass
class SynthResult:
    """What `generate` did for one screenshot.

    Attributes:
        image_path: the PNG file.
        xml_path: its labelImg VOC file.
        objects: the labelled figures drawn in it.
        status: `written` (new files), `present` (identical files were already there) or
            `skipped` (a different file already has one of its names; nothing was written).
        reason: why it was skipped; empty otherwise.
    """

    image_path: Path
    xml_path: Path
    objects: list[SyntheticObject] = field(default_factory=list)
    status: str = "written"
    reason: str = ""


def plan_labels(screenshots: int, seed: int = 0,
                cog_share: float = COG_SHARE) -> list[tuple[str, ...]]:
    """Chooses the labels of every screenshot of a set.

    Each screenshot gets 2-8 objects. About `cog_share` of them (72% by default) are Cogs,
    the rest Toons. Within each kind the
    labels follow a Zipf law in a random order of the seed (exponent `COG_NAME_SKEW` for
    Cogs, `TOON_ANIMAL_SKEW` for Toons), so a few Cog names are common and many are rare, as
    in a set labelled from real play.

    Args:
        screenshots: how many screenshots the set has.
        seed: the seed of the set.
        cog_share: the expected share of Cogs among the figures, 0 to 1.

    Returns:
        One tuple of labels per screenshot.

    Raises:
        ValueError: if `screenshots` or `seed` is negative, or `cog_share` outside 0-1.
    """
    if screenshots < 0 or seed < 0:
        raise ToonvisionError(f"screenshots and seed must be 0 or more, got screenshots="
                              f"{screenshots}, seed={seed}")
    if not 0.0 <= cog_share <= 1.0:
        raise ToonvisionError(f"the share of Cogs must be between 0 and 1, got {cog_share}")
    rng = np.random.default_rng([seed, 0x5C3E])
    low, high = OBJECTS_PER_SCREENSHOT
    counts = rng.integers(low, high + 1, size=screenshots)
    total = int(counts.sum())
    is_cog = rng.uniform(size=total) < cog_share
    cogs = _zipf_choice(rng, COG_LABELS, COG_NAME_SKEW, int(is_cog.sum()))
    toons = _zipf_choice(rng, TOON_LABELS, TOON_ANIMAL_SKEW, total - int(is_cog.sum()))
    labels = [next(cogs) if cog else next(toons) for cog in is_cog]
    starts = np.concatenate([[0], np.cumsum(counts)])
    return [tuple(labels[starts[i]:starts[i + 1]]) for i in range(screenshots)]


def _zipf_choice(rng: np.random.Generator, labels: Sequence[str], skew: float,
                 count: int) -> Iterator[str]:
    ranks = rng.permutation(len(labels)) + 1
    weights = 1.0 / ranks ** skew
    chosen = rng.choice(len(labels), size=count, p=weights / weights.sum())
    return iter([labels[i] for i in chosen])


def render_scene(
    labels: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, list[SyntheticObject]]:
    """Draws one street screenshot with a figure for each label.

    Args:
        labels: taxonomy labels (`cog_<suit>_<name>` or `toon_<animal>`), one per figure.
        rng: the random generator that decides everything else.

    Returns:
        The image as (600, 800, 3) uint8 RGB, and the objects in the order of `labels`.

    Raises:
        ValueError: if a label is not a Cog or Toon label of the taxonomy.
    """
    unknown = [label for label in labels if not is_taxonomy_label(label)]
    if unknown:
        raise ToonvisionError(f"cannot draw labels {unknown}: only the 43 taxonomy labels are "
                              "drawn")
    image = np.zeros((SCREEN_HEIGHT, SCREEN_WIDTH, 3), dtype=np.uint8)
    light = str(rng.choice(scenery.LIGHTS, p=scenery.LIGHT_SHARES))
    horizon = int(rng.integers(290, 350))
    scenery.draw_street(image, horizon, light, rng)

    views = [str(rng.choice(figures.VIEWS, p=figures.VIEW_SHARES)) for _ in labels]
    tag_lines = [figures.nametag_lines(label, rng) for label in labels]
    tag_sizes = [figures.nametag_size(lines) for lines in tag_lines]
    placements = place_figures(labels, views, tag_sizes, horizon, rng)
    # Far figures first, so nearer ones are drawn over them.
    order = sorted(range(len(labels)), key=lambda index: placements[index][1])
    haze_color = scenery.horizon_color(light)
    boxes: dict[int, Box] = {}
    for index in order:
        left, foot, width, height = placements[index]
        patch = figures.draw_figure(labels[index], width, height, views[index], rng)
        sigma = max(0.0, BLUR_BELOW - height) * BLUR_PER_PIXEL + rng.uniform(0, EXTRA_BLUR)
        pad = int(np.ceil(2 * sigma))
        patch = np.pad(patch, ((pad, pad), (pad, pad), (0, 0)))
        haze = float(np.clip((HAZE_BELOW - height) * HAZE_PER_PIXEL, 0, MAX_HAZE))
        soft = soften(patch, sigma, haze, haze_color)
        box = paste(image, soft, left - pad, foot - height - pad, full_patch=patch)
        if box is None:  # placement keeps a share of every figure on screen
            raise AssertionError(f"figure {labels[index]} fell off the screen")
        boxes[index] = _annotate(box, rng)
    apply_light(image, scenery.light_gains(image.shape[:2], horizon, light, rng))
    # Nametags are drawn last and over everything, unaffected by the scene's light.
    tag_boxes = {}
    for index in order:
        left, _, width, _ = placements[index]
        center = int(np.clip(left + width // 2, 0, SCREEN_WIDTH))
        tag_boxes[index] = figures.draw_nametag(image, center, boxes[index][1] - 3,
                                                tag_lines[index],
                                                labels[index].startswith("cog_"))
    quality = int(rng.integers(*JPEG_QUALITY))
    image = decode_image(encode_image(image, ".jpg", jpeg_quality=quality))
    return image, [SyntheticObject(label, boxes[index], tag_boxes[index], views[index], light,
                                   _touches_edge(boxes[index]))
                   for index, label in enumerate(labels)]


def _annotate(box: Box, rng: np.random.Generator) -> Box:
    """The box an annotator draws around a figure's tight `box` in labelImg: each side up to
    `BOX_SLACK` of the box's size looser, kept inside the image, and never starting at 0
    (labelImg moves a 0 to 1)."""
    xmin, ymin, xmax, ymax = box
    slack = rng.uniform(0, BOX_SLACK, 4) * np.array([xmax - xmin, ymax - ymin] * 2)
    return (max(1, int(xmin - slack[0])), max(1, int(ymin - slack[1])),
            min(SCREEN_WIDTH, int(round(xmax + slack[2]))),
            min(SCREEN_HEIGHT, int(round(ymax + slack[3]))))


def _touches_edge(box: Box) -> bool:
    """labelImg's rule for `<truncated>`: the box reaches the image's edge."""
    xmin, ymin, xmax, ymax = box
    return xmin == 1 or ymin == 1 or xmax == SCREEN_WIDTH or ymax == SCREEN_HEIGHT


def voc_xml(image_path: Path, objects: Sequence[SyntheticObject],
            size: tuple[int, int] = (SCREEN_HEIGHT, SCREEN_WIDTH)) -> str:
    """Returns the Pascal VOC XML that labelImg would write for these objects.

    Args:
        image_path: the annotated image; its folder name, file name and absolute path are
            recorded as labelImg records them.
        objects: the labelled objects.
        size: the image's (height, width).
    """
    root = etree.Element("annotation")
    etree.SubElement(root, "folder").text = image_path.parent.name
    etree.SubElement(root, "filename").text = image_path.name
    etree.SubElement(root, "path").text = str(image_path.absolute())
    source = etree.SubElement(root, "source")
    etree.SubElement(source, "database").text = "Unknown"
    size_element = etree.SubElement(root, "size")
    for name, value in (("width", size[1]), ("height", size[0]), ("depth", 3)):
        etree.SubElement(size_element, name).text = str(value)
    etree.SubElement(root, "segmented").text = "0"
    for obj in objects:
        element = etree.SubElement(root, "object")
        for name, value in (("name", obj.label), ("pose", "Unspecified"),
                            ("truncated", str(int(obj.truncated))), ("difficult", "0")):
            etree.SubElement(element, name).text = value
        box = etree.SubElement(element, "bndbox")
        for name, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.box, strict=True):
            etree.SubElement(box, name).text = str(value)
    etree.indent(root, space="\t")
    return etree.tostring(root, encoding="unicode") + "\n"


def generate(out_dir: str | os.PathLike, screenshots: int = 60, seed: int = 0,
             cog_share: float = COG_SHARE) -> Iterator[SynthResult]:
    """Writes a set of synthetic screenshots, each PNG with its labelImg XML beside it.

    Files are named `synth_<seed>_<index>.png` / `.xml` and written atomically. Existing
    files are never replaced: a screenshot whose files are already there with the same bytes
    counts as `present` (so an interrupted run can simply be repeated), and one where a
    different file holds either name is `skipped` without writing anything.

    Args:
        out_dir: the folder to write into; created if missing.
        screenshots: how many screenshots to write.
        seed: the seed; the same seed and count give the same files.
        cog_share: the expected share of Cogs among the figures (`plan_labels`); files of
            another share have other bytes, so they are `skipped`, never overwritten.

    Yields:
        One `SynthResult` per screenshot, in order, after its files are on disk.

    Raises:
        ValueError: if `screenshots` or `seed` is negative, or `out_dir` is a file.

    Example:
        >>> results = list(generate("data/raw", screenshots=2, seed=0))  # doctest: +SKIP
        >>> [result.status for result in results]  # doctest: +SKIP
        ['written', 'written']
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ToonvisionError(f"output folder {out_dir} is a file, not a folder")
    plan = plan_labels(screenshots, seed, cog_share)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, labels in enumerate(plan):
        stem = FILE_STEM.format(seed=seed, index=index)
        image_path, xml_path = out_dir / f"{stem}.png", out_dir / f"{stem}.xml"
        image, objects = render_scene(labels, np.random.default_rng([seed, index]))
        contents = {image_path: encode_image(image, ".png"),
                    xml_path: voc_xml(image_path, objects).encode("utf-8")}
        result = SynthResult(image_path, xml_path, objects)
        different = [path for path, data in contents.items()
                     if path.exists() and (not path.is_file() or path.read_bytes() != data)]
        if different:
            result.status = "skipped"
            result.reason = f"{different[0]} already exists with other content; left untouched"
            logger.info("%s", result.reason)
        elif all(path.exists() for path in contents):
            result.status = "present"
        else:
            for path, data in contents.items():
                if not path.exists():
                    write_bytes_atomic(path, data)
        yield result
