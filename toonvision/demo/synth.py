"""Synthetic ToonTown-like street screenshots with labelImg annotations, for trying the tool.

The real screenshots cannot ship with the project, so `make demo` draws its own: an 800x600
cartoon street (sky and clouds, a row of colourful buildings, trees, cobbled pavement) with
2-6 figures, each labelled with a real taxonomy label in a Pascal VOC XML file laid out
exactly as labelImg writes it.

- Cogs wear a suit in their suit's colour (brown bossbot, blue lawbot, green cashbot, maroon
  sellbot) with a grey head and grey hands; the suit's shade and the head's shape differ per
  Cog name, so the `name` task has something to learn.
- Toons wear bright clothes and white gloves and have big animal heads with white eyes; each
  animal has its own ears, snout, beak, antlers or eye bumps.
- Every figure has a nametag drawn above it, outside its box: the box holds the figure only.

The data is SYNTHETIC: it shows the pipeline working end to end, it says nothing about how a
model does on real ToonTown screenshots.

Everything is drawn with OpenCV from a `numpy.random.Generator`, so a seed and a screenshot
count always give the same files. Boxes follow numpy slicing: `image[ymin:ymax, xmin:xmax]`
is exactly the figure's tight bounding box.
"""

from __future__ import annotations

import colorsys
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from lxml import etree

from toonvision import ToonvisionError
from toonvision.fileio import write_bytes_atomic
from toonvision.labels import COG_LABELS, COG_NAMES, SUITS, TOON_LABELS, is_taxonomy_label

logger = logging.getLogger(__name__)

SCREEN_HEIGHT = 600
SCREEN_WIDTH = 800
OBJECTS_PER_SCREENSHOT = (2, 6)
FIGURE_HEIGHT_RANGE = (40, 160)
FILE_STEM = "synth_{seed}_{index:04d}"
NAMETAG_FONT, NAMETAG_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.3

SUIT_COLORS: dict[str, tuple[int, int, int]] = {
    "bb": (120, 80, 48),
    "lb": (48, 66, 135),
    "cb": (56, 110, 64),
    "sb": (112, 34, 46),
}
BUILDING_COLORS: tuple[tuple[int, int, int], ...] = (
    (245, 150, 50), (250, 215, 70), (230, 80, 60), (240, 130, 170), (70, 190, 180),
    (160, 110, 200), (150, 210, 90), (250, 180, 120),
)
TRIM_COLORS: tuple[tuple[int, int, int], ...] = (
    (40, 150, 60), (50, 90, 180), (200, 40, 50), (250, 250, 240), (120, 70, 40),
)
TOON_FIRST_NAMES = ("Lucky", "Flippy", "Daffy", "Sir", "Lady", "Captain", "Bubbles", "Zippy",
                    "Gizmo", "Penny", "Doctor", "Buster", "Twinkle", "Sparky", "Sunny")
TOON_LAST_NAMES = ("Fluffyfoot", "McSnooze", "Bizzlebee", "Wigglepaw", "Doodlesmith",
                   "Gigglefizz", "Poodlebop", "Tinkerbocker", "Sillyspinner", "Zapcrunch")
# Cog names as the game writes them on nametags; the labels only have them squashed.
COG_DISPLAY_NAMES: dict[str, str] = {
    "thebigcheese": "The Big Cheese", "pencilpusher": "Pencil Pusher", "yesman": "Yesman",
    "micromanager": "Micromanager", "corporateraider": "Corporate Raider",
    "bottomfeeder": "Bottom Feeder", "doubletalker": "Double Talker",
    "ambulancechaser": "Ambulance Chaser", "spindoctor": "Spin Doctor",
    "legaleagle": "Legal Eagle", "bigwig": "Big Wig", "shortchange": "Short Change",
    "pennypincher": "Penny Pincher", "beancounter": "Bean Counter",
    "numbercruncher": "Number Cruncher", "moneybags": "Money Bags", "loanshark": "Loan Shark",
    "robberbaron": "Robber Baron", "coldcaller": "Cold Caller", "namedropper": "Name Dropper",
    "gladhander": "Glad Hander", "movershaker": "Mover & Shaker", "twoface": "Two-Face",
    "themingler": "The Mingler", "mrhollywood": "Mr. Hollywood",
}

# Room above a Toon's head for its ears or antlers, as a share of the figure's height.
EAR_ROOM: dict[str, float] = {
    "rabbit": 0.2, "deer": 0.15, "mouse": 0.09, "bear": 0.07, "cat": 0.08, "horse": 0.07,
    "pig": 0.06, "crocodile": 0.06, "dog": 0.03, "duck": 0.03, "monkey": 0.03,
}

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SyntheticObject:
    """One labelled figure in a synthetic screenshot.

    Attributes:
        label: its taxonomy label, e.g. `cog_sb_coldcaller` or `toon_dog`.
        box: (xmin, ymin, xmax, ymax), the figure's tight box; `image[ymin:ymax, xmin:xmax]`.
        nametag_box: the same for its nametag, which lies wholly above `box`.
    """

    label: str
    box: Box
    nametag_box: Box


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


def plan_labels(screenshots: int, seed: int = 0) -> list[tuple[str, ...]]:
    """Chooses the labels of every screenshot of a set.

    Each screenshot gets 2-6 objects; over the set about half are Cogs and half Toons, and
    each kind cycles through shuffled rounds of all its labels, so a set with at least 32
    Cogs and 11 Toons (about 20 screenshots) holds every one of the 43 labels.

    Args:
        screenshots: how many screenshots the set has.
        seed: the seed of the set.

    Returns:
        One tuple of labels per screenshot.

    Raises:
        ValueError: if `screenshots` or `seed` is negative.
    """
    if screenshots < 0 or seed < 0:
        raise ToonvisionError(f"screenshots and seed must be 0 or more, got screenshots="
                              f"{screenshots}, seed={seed}")
    rng = np.random.default_rng([seed, 0x5C3E])
    low, high = OBJECTS_PER_SCREENSHOT
    counts = rng.integers(low, high + 1, size=screenshots)
    total = int(counts.sum())
    is_cog = rng.permutation(np.arange(total) % 2 == 0)
    cog_labels = _shuffled_rounds(rng, COG_LABELS, int(is_cog.sum()))
    toon_labels = _shuffled_rounds(rng, TOON_LABELS, total - int(is_cog.sum()))
    labels = [next(cog_labels) if cog else next(toon_labels) for cog in is_cog]
    starts = np.concatenate([[0], np.cumsum(counts)])
    return [tuple(labels[starts[i]:starts[i + 1]]) for i in range(screenshots)]


def _shuffled_rounds(rng: np.random.Generator, labels: Sequence[str], count: int) -> Iterator[str]:
    rounds = -(-count // len(labels))
    order = [labels[i] for _ in range(rounds) for i in rng.permutation(len(labels))]
    return iter(order[:count])


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
    horizon = int(rng.integers(290, 350))
    _draw_sky(image, horizon, rng)
    _draw_buildings(image, horizon, rng)
    _draw_pavement(image, horizon, rng)
    _draw_trees(image, horizon, rng)

    tag_lines = [_nametag_lines(label, rng) for label in labels]
    placements = _place_figures(labels, [_nametag_size(lines) for lines in tag_lines], horizon,
                                rng)
    # Far figures first, so nearer ones (and their nametags) are drawn over them.
    order = sorted(range(len(labels)), key=lambda index: placements[index][1])
    boxes: dict[int, Box] = {}
    for index in order:
        left, foot, width, height = placements[index]
        boxes[index] = _paste(image, _draw_figure(labels[index], width, height, rng), left,
                              foot - height)
    tag_boxes = {index: _draw_nametag(image, boxes[index], tag_lines[index],
                                      labels[index].startswith("cog_"))
                 for index in order}
    return image, [SyntheticObject(label, boxes[index], tag_boxes[index])
                   for index, label in enumerate(labels)]


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
        for name, value in (("name", obj.label), ("pose", "Unspecified"), ("truncated", "0"),
                            ("difficult", "0")):
            etree.SubElement(element, name).text = value
        box = etree.SubElement(element, "bndbox")
        for name, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.box, strict=True):
            etree.SubElement(box, name).text = str(value)
    etree.indent(root, space="\t")
    return etree.tostring(root, encoding="unicode") + "\n"


def generate(out_dir: str | os.PathLike, screenshots: int = 60, seed: int = 0
             ) -> Iterator[SynthResult]:
    """Writes a set of synthetic screenshots, each PNG with its labelImg XML beside it.

    Files are named `synth_<seed>_<index>.png` / `.xml` and written atomically. Existing
    files are never replaced: a screenshot whose files are already there with the same bytes
    counts as `present` (so an interrupted run can simply be repeated), and one where a
    different file holds either name is `skipped` without writing anything.

    Args:
        out_dir: the folder to write into; created if missing.
        screenshots: how many screenshots to write.
        seed: the seed; the same seed and count give the same files.

    Yields:
        One `SynthResult` per screenshot, in order, after its files are on disk.

    Raises:
        ValueError: if `screenshots` or `seed` is negative, or `out_dir` is a file.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ToonvisionError(f"output folder {out_dir} is a file, not a folder")
    plan = plan_labels(screenshots, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, labels in enumerate(plan):
        stem = FILE_STEM.format(seed=seed, index=index)
        image_path, xml_path = out_dir / f"{stem}.png", out_dir / f"{stem}.xml"
        image, objects = render_scene(labels, np.random.default_rng([seed, index]))
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ToonvisionError(f"{image_path}: OpenCV could not encode the image")
        contents = {image_path: encoded.tobytes(),
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


# ----------------------------------------------------------------------------- colours


def _jitter(rng: np.random.Generator, color: Color, hue: float = 0.0, saturation: float = 0.0,
            value: float = 0.0) -> Color:
    """Returns `color` with its HSV components shifted by up to the given amounts."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in color))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = float(np.clip(s + rng.uniform(-saturation, saturation), 0, 1))
    v = float(np.clip(v + rng.uniform(-value, value), 0, 1))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))


def _scale(color: Color, factor: float) -> Color:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in color)


def _bright(rng: np.random.Generator, saturation: tuple[float, float] = (0.65, 1.0),
            value: tuple[float, float] = (0.85, 1.0)) -> Color:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return tuple(int(round(c * 255)) for c in rgb)


def _pick(rng: np.random.Generator, options: Sequence[Color]) -> Color:
    return options[int(rng.integers(len(options)))]


# ----------------------------------------------------------------------------- scenery


def _draw_sky(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    top = np.array(_jitter(rng, (40, 95, 205), 0.02, 0.1, 0.08), dtype=np.float32)
    bottom = np.array(_jitter(rng, (150, 195, 245), 0.02, 0.1, 0.05), dtype=np.float32)
    weights = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    image[:horizon] = (top * (1 - weights) + bottom * weights).astype(np.uint8)[:, None, :]
    for _ in range(int(rng.integers(3, 8))):
        x, y = rng.uniform(0, SCREEN_WIDTH), rng.uniform(10, horizon * 0.5)
        size = rng.uniform(18, 45)
        shade = _jitter(rng, (250, 252, 255), value=0.04)
        for _ in range(int(rng.integers(3, 6))):
            center = (int(x + rng.uniform(-2, 2) * size), int(y + rng.uniform(-0.4, 0.3) * size))
            axes = (int(size * rng.uniform(0.7, 1.3)), int(size * rng.uniform(0.45, 0.7)))
            cv2.ellipse(image, center, axes, 0, 0, 360, shade, -1, cv2.LINE_AA)


def _draw_buildings(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    outline = (60, 45, 40)
    x = int(rng.integers(-60, 0))
    while x < SCREEN_WIDTH:
        width = int(rng.integers(90, 230))
        top = horizon - int(rng.integers(90, 230))
        wall = _jitter(rng, _pick(rng, BUILDING_COLORS), 0.02, 0.1, 0.08)
        trim = _pick(rng, TRIM_COLORS)
        left, right = x, x + width
        cv2.rectangle(image, (left, top), (right, horizon), wall, -1)
        roof = int(rng.integers(4))
        roof_color = _jitter(rng, _pick(rng, TRIM_COLORS), 0.02, 0.1, 0.1)
        if roof == 0:
            peak = top - int(rng.integers(25, 70))
            points = np.array([[left - 8, top], [(left + right) // 2, peak], [right + 8, top]])
            cv2.fillPoly(image, [points], roof_color, cv2.LINE_AA)
            cv2.polylines(image, [points], False, outline, 2, cv2.LINE_AA)
        elif roof == 1:
            radius = (width // 2, int(rng.integers(20, 50)))
            cv2.ellipse(image, ((left + right) // 2, top), radius, 0, 180, 360, wall, -1,
                        cv2.LINE_AA)
            cv2.ellipse(image, ((left + right) // 2, top), radius, 0, 180, 360, outline, 2,
                        cv2.LINE_AA)
        elif roof == 2:
            cv2.rectangle(image, (left - 6, top - 12), (right + 6, top), roof_color, -1)
        cv2.rectangle(image, (left, top), (right, horizon), outline, 2, cv2.LINE_AA)
        _draw_windows(image, left, right, top, horizon, trim, rng)
        door_width = int(rng.integers(22, 36))
        door_left = int(rng.integers(left + 8, max(left + 9, right - door_width - 8)))
        door_top = horizon - int(rng.integers(45, 65))
        door_color = _jitter(rng, trim, value=0.15)
        cv2.rectangle(image, (door_left, door_top + door_width // 2),
                      (door_left + door_width, horizon), door_color, -1)
        cv2.ellipse(image, (door_left + door_width // 2, door_top + door_width // 2),
                    (door_width // 2, door_width // 2), 0, 180, 360, door_color, -1, cv2.LINE_AA)
        x = right + int(rng.integers(0, 40))


def _draw_windows(image: np.ndarray, left: int, right: int, top: int, bottom: int,
                  trim: Color, rng: np.random.Generator) -> None:
    shape = int(rng.integers(3))
    size = int(rng.integers(14, 24))
    glass = _jitter(rng, (90, 140, 200), 0.05, 0.2, 0.2)
    for row_y in range(top + 18, bottom - 70, size * 2 + 6):
        for col_x in range(left + 14, right - size - 10, size * 2):
            if rng.uniform() < 0.25:
                continue
            center = (col_x + size // 2, row_y + size // 2)
            if shape == 0:
                cv2.rectangle(image, (col_x, row_y), (col_x + size, row_y + size), trim, -1)
                cv2.rectangle(image, (col_x + 3, row_y + 3), (col_x + size - 3, row_y + size - 3),
                              glass, -1)
            elif shape == 1:
                cv2.circle(image, center, size // 2, trim, -1, cv2.LINE_AA)
                cv2.circle(image, center, size // 2 - 3, glass, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(image, (col_x, row_y + size // 2), (col_x + size, row_y + size + 6),
                              trim, -1)
                cv2.ellipse(image, center, (size // 2, size // 2), 0, 180, 360, trim, -1,
                            cv2.LINE_AA)
                cv2.rectangle(image, (col_x + 3, row_y + size // 2), (col_x + size - 3,
                              row_y + size + 3), glass, -1)


def _draw_pavement(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    """A sidewalk and curb below the buildings, then cobbles that grow toward the viewer."""
    sidewalk = _jitter(rng, (205, 190, 160), value=0.05)
    sand = np.array(_jitter(rng, (228, 196, 145), 0.02, 0.08, 0.05), dtype=np.float32)
    street = horizon + 18
    image[horizon:horizon + 14] = sidewalk
    image[horizon + 14:street] = _scale(sidewalk, 0.8)
    image[street:] = (sand * 0.82).astype(np.uint8)
    y = float(street + 2)
    while y < SCREEN_HEIGHT + 20:
        depth = (y - horizon) / (SCREEN_HEIGHT - horizon)
        height = 5 + 22 * depth
        width = height * 2.2
        count = int((SCREEN_WIDTH + 2 * width) // width) + 1
        xs = rng.uniform(-width, 0) + width * np.arange(count)
        ys = y + rng.uniform(-0.12, 0.12, count) * height
        radii_x = width * rng.uniform(0.4, 0.48, count)
        radii_y = height * rng.uniform(0.38, 0.46, count)
        shades = (sand * (0.92 + 0.1 * depth) * rng.uniform(0.95, 1.05, (count, 1)))
        shades = np.clip(shades, 0, 255).astype(int).tolist()
        for x, center_y, radius_x, radius_y, shade in zip(xs, ys, radii_x, radii_y, shades,
                                                         strict=True):
            cv2.ellipse(image, (int(x), int(center_y)), (int(radius_x), int(radius_y)), 0, 0,
                        360, shade, -1, cv2.LINE_AA)
        y += height
    if rng.uniform() < 0.5:
        grass = _jitter(rng, (110, 180, 70), 0.03, 0.1, 0.1)
        side = int(rng.integers(2))
        edge = np.array([[SCREEN_WIDTH * side, street],
                         [int(SCREEN_WIDTH * (0.4 + 0.2 * side)), street],
                         [SCREEN_WIDTH * side, horizon + int(rng.integers(60, 140))]])
        cv2.fillPoly(image, [edge], grass, cv2.LINE_AA)
        cv2.polylines(image, [edge[1:]], False, _scale(sidewalk, 0.8), 4, cv2.LINE_AA)


def _draw_trees(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(0, 4))):
        x = int(rng.uniform(0, SCREEN_WIDTH))
        base = horizon + int(rng.integers(4, 14))
        height = int(rng.integers(150, 260))
        trunk = _jitter(rng, (150, 120, 80), value=0.1)
        half = int(rng.integers(8, 16))
        points = np.array([[x - half - 4, base], [x - half // 2, base - height],
                           [x + half // 2, base - height], [x + half + 4, base]])
        cv2.fillPoly(image, [points], trunk, cv2.LINE_AA)
        leaves = _jitter(rng, (90, 170, 50), 0.04, 0.1, 0.1)
        for _ in range(int(rng.integers(5, 9))):
            center = (int(x + rng.uniform(-60, 60)), int(base - height + rng.uniform(-50, 30)))
            radius = int(rng.uniform(30, 55))
            cv2.circle(image, center, radius, _jitter(rng, leaves, value=0.08), -1, cv2.LINE_AA)


# ----------------------------------------------------------------------------- figures


def _place_figures(labels: Sequence[str], tag_sizes: Sequence[tuple[int, int]], horizon: int,
                   rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Returns (left, foot_y, width, height) per label: farther figures stand higher and are
    smaller; boxes may overlap partly (a box covers at most 40% of another), but a nametag
    hides at most 10% of another figure."""
    placed: list[tuple[int, int, int, int]] = []
    tags: list[tuple[int, int, int, int]] = []
    nearest, farthest = SCREEN_HEIGHT - 12, horizon + 20
    for label, (tag_width, tag_height) in zip(labels, tag_sizes, strict=True):
        best = best_tag = None
        best_cost = np.inf
        for _ in range(40):
            if placed and rng.uniform() < 0.3:
                other = placed[int(rng.integers(len(placed)))]
                foot = int(np.clip(other[1] + rng.integers(-25, 26), farthest, nearest))
            else:
                foot = int(farthest + (nearest - farthest) * rng.uniform() ** 1.6)
            depth = (foot - farthest) / (nearest - farthest)
            low, high = FIGURE_HEIGHT_RANGE
            height = int(np.clip((low + (high - low) * depth) * rng.uniform(0.85, 1.15), low,
                                 high))
            aspect = rng.uniform(0.5, 0.72) if label.startswith("cog_") else rng.uniform(0.5, 0.66)
            width = int(height * aspect)
            if placed and rng.uniform() < 0.3:
                other = placed[int(rng.integers(len(placed)))]
                left = int(other[0] + rng.uniform(-0.8, 0.8) * other[2])
            else:
                left = int(rng.uniform(0, SCREEN_WIDTH - width))
            left = int(np.clip(left, 2, SCREEN_WIDTH - width - 2))
            candidate = (left, foot, width, height)
            tag = (left + width // 2 - tag_width // 2, foot - height - 3, tag_width, tag_height)
            box_overlap = max((_overlap(candidate, other) for other in placed), default=0.0)
            tag_overlap = max([_overlap(tag, other) for other in placed]
                              + [_overlap(candidate, other) for other in tags], default=0.0)
            cost = max(box_overlap / 0.4, tag_overlap / 0.1)
            if cost < best_cost:
                best, best_cost, best_tag = candidate, cost, tag
            if cost <= 1:
                break
        placed.append(best)
        tags.append(best_tag)
    return placed


def _overlap(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    """The intersection of two placements as a share of the smaller one's area."""
    (left1, foot1, width1, height1), (left2, foot2, width2, height2) = first, second
    across = min(left1 + width1, left2 + width2) - max(left1, left2)
    down = min(foot1, foot2) - max(foot1 - height1, foot2 - height2)
    if across <= 0 or down <= 0:
        return 0.0
    return across * down / min(width1 * height1, width2 * height2)


def _draw_figure(label: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Returns the figure as a premultiplied RGBA patch of shape (height, width, 4)."""
    patch = np.zeros((height, width, 4), dtype=np.uint8)
    painter = _Painter(patch)
    if label.startswith("cog_"):
        _, suit, name = label.split("_", 2)
        _draw_cog(painter, suit, COG_NAMES[suit].index(name), rng)
    else:
        _draw_toon(painter, label.split("_", 1)[1], rng)
    return patch


def _paste(image: np.ndarray, patch: np.ndarray, left: int, top: int) -> Box:
    """Composites a premultiplied RGBA patch onto `image`; returns its tight box."""
    height, width = patch.shape[:2]
    alpha = patch[:, :, 3:].astype(np.float32) / 255
    region = image[top:top + height, left:left + width]
    region[:] = (region * (1 - alpha) + patch[:, :, :3]).clip(0, 255).astype(np.uint8)
    rows = np.flatnonzero((patch[:, :, 3] > 64).any(axis=1))
    columns = np.flatnonzero((patch[:, :, 3] > 64).any(axis=0))
    return (left + int(columns[0]), top + int(rows[0]), left + int(columns[-1]) + 1,
            top + int(rows[-1]) + 1)


class _Painter:
    """Draws on an RGBA patch in coordinates relative to its size (0..1 on each axis)."""

    def __init__(self, patch: np.ndarray):
        self.patch = patch
        self.height, self.width = patch.shape[:2]

    def _point(self, u: float, v: float) -> tuple[int, int]:
        return int(round(u * self.width)), int(round(v * self.height))

    def ellipse(self, u: float, v: float, radius_u: float, radius_v: float, color: Color,
                thickness: int = -1) -> None:
        axes = (max(1, int(round(radius_u * self.width))),
                max(1, int(round(radius_v * self.height))))
        cv2.ellipse(self.patch, self._point(u, v), axes, 0, 0, 360, (*color, 255), thickness,
                    cv2.LINE_AA)

    def polygon(self, points: Sequence[tuple[float, float]], color: Color) -> None:
        pixels = np.array([self._point(u, v) for u, v in points], dtype=np.int32)
        cv2.fillPoly(self.patch, [pixels], (*color, 255), cv2.LINE_AA)

    def rectangle(self, u0: float, v0: float, u1: float, v1: float, color: Color) -> None:
        self.polygon([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], color)

    def line(self, u0: float, v0: float, u1: float, v1: float, color: Color,
             thickness: float) -> None:
        cv2.line(self.patch, self._point(u0, v0), self._point(u1, v1), (*color, 255),
                 max(1, int(round(thickness * self.width))), cv2.LINE_AA)


def _draw_cog(painter: _Painter, suit: str, name_index: int, rng: np.random.Generator) -> None:
    """A Cog: suit in the suit's colour (shade set by the name), grey head and hands."""
    hue_shift = ((name_index % 4) - 1.5) * 0.012
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in SUIT_COLORS[suit]))
    v = min(1.0, v * (0.8 + 0.06 * name_index))
    suit_color = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((h + hue_shift) % 1, s, v))
    suit_color = _jitter(rng, suit_color, value=0.03)
    dark = _scale(suit_color, 0.75)
    grey_level = 150 + 12 * (name_index % 4) + int(rng.integers(-6, 7))
    grey = (grey_level, grey_level, min(255, grey_level + 10))
    shoulder, waist = 0.3, 0.68
    painter.rectangle(0.28, waist - 0.02, 0.47, 0.95, dark)
    painter.rectangle(0.53, waist - 0.02, 0.72, 0.95, dark)
    painter.ellipse(0.36, 0.965, 0.14, 0.035, (25, 25, 30))
    painter.ellipse(0.64, 0.965, 0.14, 0.035, (25, 25, 30))
    painter.rectangle(0.02, shoulder + 0.03, 0.17, 0.62, suit_color)
    painter.rectangle(0.83, shoulder + 0.03, 0.98, 0.62, suit_color)
    painter.polygon([(0.1, shoulder + 0.05), (0.2, shoulder), (0.8, shoulder),
                     (0.9, shoulder + 0.05), (0.76, waist), (0.24, waist)], suit_color)
    painter.polygon([(0.4, shoulder), (0.6, shoulder), (0.5, shoulder + 0.13)], (240, 240, 235))
    painter.polygon([(0.48, shoulder + 0.01), (0.52, shoulder + 0.01), (0.53, shoulder + 0.1),
                     (0.5, shoulder + 0.12), (0.47, shoulder + 0.1)], _scale(dark, 0.6))
    painter.ellipse(0.095, 0.655, 0.09, 0.04, grey)
    painter.ellipse(0.905, 0.655, 0.09, 0.04, grey)
    _draw_cog_head(painter, name_index, grey)


def _draw_cog_head(painter: _Painter, shape: int, grey: Color) -> None:
    """Eight head shapes, one per Cog name within a suit."""
    eyes_v, dark = 0.13, (30, 30, 35)
    if shape == 0:
        painter.ellipse(0.5, 0.15, 0.22, 0.14, grey)
    elif shape == 1:
        painter.ellipse(0.5, 0.14, 0.16, 0.14, grey)
    elif shape == 2:
        painter.ellipse(0.5, 0.2, 0.3, 0.09, grey)
        eyes_v = 0.19
    elif shape == 3:
        painter.rectangle(0.3, 0.03, 0.7, 0.29, grey)
    elif shape == 4:
        painter.polygon([(0.5, 0.0), (0.3, 0.27), (0.7, 0.27)], grey)
        painter.ellipse(0.5, 0.23, 0.2, 0.06, grey)
        eyes_v = 0.19
    elif shape == 5:
        painter.ellipse(0.5, 0.16, 0.2, 0.13, grey)
        painter.ellipse(0.5, 0.06, 0.18, 0.05, (60, 50, 45))
    elif shape == 6:
        painter.ellipse(0.5, 0.15, 0.24, 0.13, grey)
        painter.ellipse(0.41, eyes_v, 0.07, 0.03, dark, thickness=1)
        painter.ellipse(0.59, eyes_v, 0.07, 0.03, dark, thickness=1)
    else:
        painter.polygon([(0.34, 0.02), (0.66, 0.02), (0.76, 0.28), (0.24, 0.28)], grey)
    painter.ellipse(0.42, eyes_v, 0.03, 0.012, dark)
    painter.ellipse(0.58, eyes_v, 0.03, 0.012, dark)
    painter.line(0.44, eyes_v + 0.07, 0.56, eyes_v + 0.07, _scale(grey, 0.6), 0.03)


def _draw_toon(painter: _Painter, animal: str, rng: np.random.Generator) -> None:
    """A Toon: bright clothes, white gloves, big animal head with its own features."""
    fur = _bright(rng, saturation=(0.35, 0.9), value=(0.8, 1.0))
    shirt, pants = _bright(rng), _bright(rng)
    head_top = EAR_ROOM[animal]
    head_height = 0.3 if animal != "horse" else 0.33
    center_v = head_top + head_height / 2
    neck = head_top + head_height
    hips = neck + 0.22
    knees = hips + 0.12
    painter.rectangle(0.36, knees - 0.01, 0.46, 0.94, fur)
    painter.rectangle(0.54, knees - 0.01, 0.64, 0.94, fur)
    shoe = _bright(rng, saturation=(0.3, 0.9), value=(0.3, 0.8))
    painter.ellipse(0.37, 0.955, 0.15, 0.045, shoe)
    painter.ellipse(0.63, 0.955, 0.15, 0.045, shoe)
    if rng.uniform() < 0.3:
        painter.polygon([(0.32, hips - 0.02), (0.68, hips - 0.02), (0.8, knees + 0.02),
                         (0.2, knees + 0.02)], pants)
    else:
        painter.rectangle(0.32, hips - 0.02, 0.68, knees, pants)
    painter.line(0.3, neck + 0.04, 0.12, hips, fur, 0.08)
    painter.line(0.7, neck + 0.04, 0.88, hips, fur, 0.08)
    painter.polygon([(0.3, neck - 0.01), (0.7, neck - 0.01), (0.68, hips), (0.32, hips)], shirt)
    painter.ellipse(0.24, neck + 0.04, 0.09, 0.04, shirt)
    painter.ellipse(0.76, neck + 0.04, 0.09, 0.04, shirt)
    painter.ellipse(0.11, hips + 0.01, 0.1, 0.045, (250, 250, 250))
    painter.ellipse(0.89, hips + 0.01, 0.1, 0.045, (250, 250, 250))
    radius_u = 0.26 if animal != "horse" else 0.21
    _draw_animal_head(painter, animal, center_v, radius_u, head_height / 2, fur)


def _draw_animal_head(painter: _Painter, animal: str, v: float, ru: float, rv: float,
                      fur: Color) -> None:
    light, dark, pink = _scale(fur, 1.25), _scale(fur, 0.7), (245, 160, 180)
    light = tuple(min(255, c + 40) for c in light)
    black = (20, 20, 20)
    top = v - rv
    if animal in ("bear", "mouse"):
        size = 0.5 if animal == "mouse" else 0.32
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.8 * ru, top + 0.2 * rv, size * ru, size * rv * 0.9,
                            fur)
            painter.ellipse(0.5 + side * 0.8 * ru, top + 0.2 * rv, size * ru * 0.55,
                            size * rv * 0.5, pink)
    elif animal in ("cat", "pig", "horse"):
        height = 0.55 if animal == "cat" else 0.4
        for side in (-1, 1):
            painter.polygon([(0.5 + side * 0.9 * ru, top + 0.5 * rv),
                             (0.5 + side * 0.75 * ru, top - height * rv),
                             (0.5 + side * 0.3 * ru, top + 0.2 * rv)], fur)
    elif animal == "rabbit":
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.4 * ru, top - 0.55 * rv, 0.2 * ru, 0.8 * rv, fur)
            painter.ellipse(0.5 + side * 0.4 * ru, top - 0.5 * rv, 0.1 * ru, 0.6 * rv, pink)
    elif animal == "deer":
        antler = (150, 105, 60)
        for side in (-1, 1):
            base_u = 0.5 + side * 0.45 * ru
            painter.line(base_u, top + 0.2 * rv, base_u + side * 0.3 * ru, top - 0.9 * rv,
                         antler, 0.05)
            painter.line(base_u + side * 0.15 * ru, top - 0.35 * rv, base_u + side * 0.7 * ru,
                         top - 0.55 * rv, antler, 0.04)
            painter.ellipse(0.5 + side * 1.1 * ru, v - 0.5 * rv, 0.3 * ru, 0.15 * rv, fur)
    elif animal == "dog":
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 1.0 * ru, v + 0.1 * rv, 0.28 * ru, 0.75 * rv, dark)
    elif animal == "monkey":
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 1.05 * ru, v, 0.32 * ru, 0.35 * rv, fur)
            painter.ellipse(0.5 + side * 1.05 * ru, v, 0.18 * ru, 0.2 * rv, light)
    elif animal == "crocodile":
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.45 * ru, top + 0.05 * rv, 0.3 * ru, 0.3 * rv, fur)
    painter.ellipse(0.5, v, ru, rv, fur)
    if animal == "horse":
        painter.ellipse(0.5, top + 0.1 * rv, 0.5 * ru, 0.18 * rv, dark)
    if animal == "monkey":
        painter.ellipse(0.5, v + 0.25 * rv, 0.75 * ru, 0.65 * rv, light)
    if animal == "duck":
        painter.ellipse(0.5, top + 0.05 * rv, 0.12 * ru, 0.25 * rv, fur)
    eye_v = v - (0.25 if animal != "crocodile" else 0.7) * rv
    for side in (-1, 1):
        painter.ellipse(0.5 + side * 0.33 * ru, eye_v, 0.26 * ru, 0.3 * rv, (255, 255, 255))
        painter.ellipse(0.5 + side * 0.3 * ru, eye_v + 0.08 * rv, 0.11 * ru, 0.14 * rv, black)
    _draw_snout(painter, animal, v, ru, rv, light, dark, pink, black)


def _draw_snout(painter: _Painter, animal: str, v: float, ru: float, rv: float, light: Color,
                dark: Color, pink: Color, black: Color) -> None:
    if animal == "duck":
        painter.ellipse(0.5, v + 0.42 * rv, 0.7 * ru, 0.25 * rv, (250, 160, 30))
    elif animal == "pig":
        painter.ellipse(0.5, v + 0.35 * rv, 0.38 * ru, 0.28 * rv, pink)
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.13 * ru, v + 0.35 * rv, 0.07 * ru, 0.1 * rv, dark)
    elif animal in ("dog", "horse", "bear"):
        size = {"dog": 0.45, "horse": 0.6, "bear": 0.35}[animal]
        painter.ellipse(0.5, v + 0.5 * rv, size * ru, size * rv * 0.75, light)
        painter.ellipse(0.5, v + 0.35 * rv, 0.15 * ru, 0.1 * rv, black)
    elif animal == "crocodile":
        painter.ellipse(0.5, v + 0.35 * rv, 0.75 * ru, 0.5 * rv, dark)
        painter.line(0.5 - 0.6 * ru, v + 0.4 * rv, 0.5 + 0.6 * ru, v + 0.4 * rv, (250, 250, 250),
                     0.025)
    elif animal == "cat":
        painter.ellipse(0.5, v + 0.2 * rv, 0.1 * ru, 0.07 * rv, pink)
        for side in (-1, 1):
            painter.line(0.5 + side * 0.2 * ru, v + 0.3 * rv, 0.5 + side * 0.95 * ru,
                         v + 0.2 * rv, black, 0.01)
    elif animal in ("mouse", "rabbit", "deer", "monkey"):
        painter.ellipse(0.5, v + 0.25 * rv, 0.1 * ru, 0.07 * rv, black if animal != "rabbit"
                        else pink)


# ----------------------------------------------------------------------------- nametags


def _nametag_lines(label: str, rng: np.random.Generator) -> list[str]:
    if label.startswith("cog_"):
        _, suit, name = label.split("_", 2)
        display = COG_DISPLAY_NAMES.get(name, name.capitalize())
        return [display, SUITS[suit].capitalize(), f"Level {int(rng.integers(1, 13))}"]
    first = TOON_FIRST_NAMES[int(rng.integers(len(TOON_FIRST_NAMES)))]
    last = TOON_LAST_NAMES[int(rng.integers(len(TOON_LAST_NAMES)))]
    return [first, last] if rng.uniform() < 0.5 else [f"{first} {last}"]


def _nametag_size(lines: Sequence[str]) -> tuple[int, int]:
    """Returns the (width, height) of the nametag panel for these lines."""
    sizes = [cv2.getTextSize(line, NAMETAG_FONT, NAMETAG_SCALE, 1)[0] for line in lines]
    line_height = max(height for _, height in sizes) + 4
    return max(width for width, _ in sizes) + 6, line_height * len(lines) + 3


def _draw_nametag(image: np.ndarray, box: Box, lines: Sequence[str], is_cog: bool) -> Box:
    """Draws a nametag panel centred above `box`; returns the panel's box."""
    width, height = _nametag_size(lines)
    line_height = (height - 3) // len(lines)
    xmin, ymin, xmax, _ = box
    bottom = ymin - 3
    top = max(0, bottom - height)
    left = int(np.clip((xmin + xmax) // 2 - width // 2, 0, SCREEN_WIDTH - width))
    panel = image[top:bottom, left:left + width]
    panel[:] = (panel * 0.35 + np.array((225, 225, 225)) * 0.65).astype(np.uint8)
    text_color = (20, 20, 20) if is_cog else (30, 60, 200)
    for row, line in enumerate(lines):
        text_width = cv2.getTextSize(line, NAMETAG_FONT, NAMETAG_SCALE, 1)[0][0]
        origin = (left + (width - text_width) // 2, top + line_height * (row + 1) - 1)
        cv2.putText(image, line, origin, NAMETAG_FONT, NAMETAG_SCALE, text_color, 1,
                    cv2.LINE_AA)
    return left, top, left + width, bottom
