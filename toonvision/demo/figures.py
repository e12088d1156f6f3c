"""The figures of a synthetic screenshot: Cogs and Toons seen from front, back or side, and
the nametags above them.

- Cogs wear a suit in their suit's colour (brown bossbot, blue lawbot, green cashbot, maroon
  sellbot) with grey hands; the suit's shade, the head's shape and the head's colour (grey,
  tan, pale pink or blue-grey) differ per Cog name, so the `name` task has something to learn.
- Toons have big animal heads with white eyes and white gloves; each animal has its own
  ears, snout, beak, antlers or eye bumps. Most wear bright clothes and have bright fur, but
  some dress in a Cog suit's colours and some have grey, black, white or brown fur, like the
  article's dark "cat_20" that models took for a Cog.

A figure is drawn on a transparent patch as wide and tall as its box; the patch's alpha
channel marks the figure's pixels.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from toonvision.demo.drawing import Color, Painter, bright, hsv, jitter, pick, scale
from toonvision.labels import COG_NAMES, SUITS

VIEWS: tuple[str, ...] = ("front", "side", "back")
VIEW_SHARES: tuple[float, ...] = (0.5, 0.3, 0.2)
COG_COLORED_TOONS = 0.4     # share of Toons dressed in a Cog suit's colours
DULL_FUR_TOONS = 0.35       # share of Toons with grey, black, white or brown fur
SUIT_COLORS: dict[str, Color] = {
    "bb": (120, 80, 48),
    "lb": (48, 66, 135),
    "cb": (56, 110, 64),
    "sb": (112, 34, 46),
}
COG_HEAD_COLORS: tuple[Color, ...] = ((160, 160, 170), (205, 175, 145), (225, 190, 185),
                                      (150, 165, 185))
# Room above a Toon's head for its ears or antlers, as a share of the figure's height.
EAR_ROOM: dict[str, float] = {
    "rabbit": 0.2, "deer": 0.15, "mouse": 0.09, "bear": 0.07, "cat": 0.08, "horse": 0.07,
    "pig": 0.06, "crocodile": 0.06, "dog": 0.03, "duck": 0.03, "monkey": 0.03,
}
NAMETAG_FONT, NAMETAG_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.3
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
BLACK, WHITE, PINK = (20, 20, 20), (250, 250, 250), (245, 160, 180)


def draw_figure(label: str, width: int, height: int, view: str,
                rng: np.random.Generator) -> np.ndarray:
    """Returns the figure of `label` seen from `view` as an RGBA patch.

    Args:
        label: a Cog or Toon label of the taxonomy.
        width, height: the patch's size in pixels; the figure fills it. Side views face
            right or left at random, and the caller gives them a narrower patch.
        view: `front`, `side` or `back`.
        rng: decides the colours and the side view's direction.

    Returns:
        A (height, width, 4) uint8 array, premultiplied: transparent black where the
        figure is not.
    """
    patch = np.zeros((height, width, 4), dtype=np.uint8)
    painter = Painter(patch)
    if label.startswith("cog_"):
        _, suit, name = label.split("_", 2)
        _draw_cog(painter, suit, COG_NAMES[suit].index(name), view, rng)
    else:
        _draw_toon(painter, label.split("_", 1)[1], view, rng)
    return patch[:, ::-1].copy() if view == "side" and rng.uniform() < 0.5 else patch


# ----------------------------------------------------------------------------- cogs


def _draw_cog(painter: Painter, suit: str, name_index: int, view: str,
              rng: np.random.Generator) -> None:
    """A Cog: suit in the suit's colour (shade set by the name), grey hands."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in SUIT_COLORS[suit]))
    hue_shift = ((name_index % 4) - 1.5) * 0.012
    suit_color = jitter(rng, hsv((h + hue_shift) % 1, s, min(1.0, v * (0.8 + 0.06 * name_index))),
                        value=0.04)
    dark = scale(suit_color, 0.75)
    head = jitter(rng, COG_HEAD_COLORS[(name_index // 2) % len(COG_HEAD_COLORS)], value=0.04)
    grey = (150, 150, 160)
    shoulder, waist = 0.3, 0.68
    if view == "side":
        painter.rectangle(0.3, waist - 0.02, 0.52, 0.95, scale(dark, 0.8))
        painter.rectangle(0.48, waist - 0.02, 0.7, 0.95, dark)
        painter.ellipse(0.5, 0.965, 0.22, 0.035, (25, 25, 30))
        painter.polygon([(0.2, shoulder), (0.8, shoulder), (0.76, waist), (0.24, waist)],
                        suit_color)
        painter.rectangle(0.38, shoulder + 0.03, 0.62, 0.62, scale(suit_color, 0.85))
        painter.ellipse(0.5, 0.655, 0.14, 0.04, grey)
    else:
        painter.rectangle(0.28, waist - 0.02, 0.47, 0.95, dark)
        painter.rectangle(0.53, waist - 0.02, 0.72, 0.95, dark)
        painter.ellipse(0.36, 0.965, 0.14, 0.035, (25, 25, 30))
        painter.ellipse(0.64, 0.965, 0.14, 0.035, (25, 25, 30))
        painter.rectangle(0.02, shoulder + 0.03, 0.17, 0.62, suit_color)
        painter.rectangle(0.83, shoulder + 0.03, 0.98, 0.62, suit_color)
        painter.polygon([(0.1, shoulder + 0.05), (0.2, shoulder), (0.8, shoulder),
                         (0.9, shoulder + 0.05), (0.76, waist), (0.24, waist)], suit_color)
        if view == "front":
            painter.polygon([(0.4, shoulder), (0.6, shoulder), (0.5, shoulder + 0.13)],
                            (240, 240, 235))
            painter.polygon([(0.48, shoulder + 0.01), (0.52, shoulder + 0.01),
                             (0.53, shoulder + 0.1), (0.5, shoulder + 0.12),
                             (0.47, shoulder + 0.1)], scale(dark, 0.6))
        else:
            painter.line(0.5, shoulder + 0.02, 0.5, waist, dark, 0.02)
        painter.ellipse(0.095, 0.655, 0.09, 0.04, grey)
        painter.ellipse(0.905, 0.655, 0.09, 0.04, grey)
    _draw_cog_head(painter, name_index % 8, head, view)


def _draw_cog_head(painter: Painter, shape: int, color: Color, view: str) -> None:
    """Eight head shapes, one per Cog name within a suit; a face unless seen from behind."""
    eyes_v, dark = 0.13, (30, 30, 35)
    if shape == 0:
        painter.ellipse(0.5, 0.15, 0.22, 0.14, color)
    elif shape == 1:
        painter.ellipse(0.5, 0.14, 0.16, 0.14, color)
    elif shape == 2:
        painter.ellipse(0.5, 0.2, 0.3, 0.09, color)
        eyes_v = 0.19
    elif shape == 3:
        painter.rectangle(0.3, 0.03, 0.7, 0.29, color)
    elif shape == 4:
        painter.polygon([(0.5, 0.0), (0.3, 0.27), (0.7, 0.27)], color)
        painter.ellipse(0.5, 0.23, 0.2, 0.06, color)
        eyes_v = 0.19
    elif shape == 5:
        painter.ellipse(0.5, 0.16, 0.2, 0.13, color)
        painter.ellipse(0.5, 0.06, 0.18, 0.05, (60, 50, 45))
    elif shape == 6:
        painter.ellipse(0.5, 0.15, 0.24, 0.13, color)
        if view == "front":
            painter.ellipse(0.41, eyes_v, 0.07, 0.03, dark, thickness=1)
            painter.ellipse(0.59, eyes_v, 0.07, 0.03, dark, thickness=1)
    else:
        painter.polygon([(0.34, 0.02), (0.66, 0.02), (0.76, 0.28), (0.24, 0.28)], color)
    if view == "front":
        painter.ellipse(0.42, eyes_v, 0.03, 0.012, dark)
        painter.ellipse(0.58, eyes_v, 0.03, 0.012, dark)
        painter.line(0.44, eyes_v + 0.07, 0.56, eyes_v + 0.07, scale(color, 0.6), 0.03)
    elif view == "side":
        painter.ellipse(0.64, eyes_v, 0.04, 0.012, dark)
        painter.ellipse(0.72, eyes_v + 0.04, 0.05, 0.02, scale(color, 0.85))


# ----------------------------------------------------------------------------- toons


def _draw_toon(painter: Painter, animal: str, view: str, rng: np.random.Generator) -> None:
    """A Toon: clothes, white gloves, big animal head with its own features."""
    if rng.uniform() < DULL_FUR_TOONS:
        fur = hsv(rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.3), rng.uniform(0.2, 0.9))
    else:
        fur = bright(rng, saturation=(0.35, 0.9), value=(0.8, 1.0))
    if rng.uniform() < COG_COLORED_TOONS:
        suit = pick(rng, tuple(SUIT_COLORS.values()))
        shirt = jitter(rng, suit, 0.02, 0.1, 0.1)
        pants = jitter(rng, scale(suit, 0.8), 0.02, 0.1, 0.1)
    else:
        shirt, pants = bright(rng), bright(rng)
    head_top = EAR_ROOM[animal]
    head_height = 0.3 if animal != "horse" else 0.33
    neck = head_top + head_height
    hips, knees = neck + 0.22, neck + 0.34
    shoe = bright(rng, saturation=(0.3, 0.9), value=(0.3, 0.8))
    if view == "side":
        painter.rectangle(0.4, knees - 0.01, 0.5, 0.94, scale(fur, 0.85))
        painter.rectangle(0.5, knees - 0.01, 0.6, 0.94, fur)
        painter.ellipse(0.58, 0.955, 0.2, 0.045, shoe)
        painter.rectangle(0.34, hips - 0.02, 0.66, knees, pants)
        painter.polygon([(0.34, neck - 0.01), (0.66, neck - 0.01), (0.64, hips), (0.36, hips)],
                        shirt)
        painter.line(0.5, neck + 0.04, 0.56, hips, fur, 0.12)
        painter.ellipse(0.57, hips + 0.01, 0.13, 0.045, WHITE)
    else:
        painter.rectangle(0.36, knees - 0.01, 0.46, 0.94, fur)
        painter.rectangle(0.54, knees - 0.01, 0.64, 0.94, fur)
        painter.ellipse(0.37, 0.955, 0.15, 0.045, shoe)
        painter.ellipse(0.63, 0.955, 0.15, 0.045, shoe)
        if rng.uniform() < 0.3:
            painter.polygon([(0.32, hips - 0.02), (0.68, hips - 0.02), (0.8, knees + 0.02),
                             (0.2, knees + 0.02)], pants)
        else:
            painter.rectangle(0.32, hips - 0.02, 0.68, knees, pants)
        painter.line(0.3, neck + 0.04, 0.12, hips, fur, 0.08)
        painter.line(0.7, neck + 0.04, 0.88, hips, fur, 0.08)
        painter.polygon([(0.3, neck - 0.01), (0.7, neck - 0.01), (0.68, hips), (0.32, hips)],
                        shirt)
        painter.ellipse(0.24, neck + 0.04, 0.09, 0.04, shirt)
        painter.ellipse(0.76, neck + 0.04, 0.09, 0.04, shirt)
        painter.ellipse(0.11, hips + 0.01, 0.1, 0.045, WHITE)
        painter.ellipse(0.89, hips + 0.01, 0.1, 0.045, WHITE)
    radius_u = 0.26 if animal != "horse" else 0.21
    if view == "side":
        radius_u *= 1.4
    center_v, radius_v = head_top + head_height / 2, head_height / 2
    _draw_ears(painter, animal, center_v, radius_u, radius_v, fur)
    painter.ellipse(0.5, center_v, radius_u, radius_v, fur)
    if view == "front":
        _draw_face(painter, animal, center_v, radius_u, radius_v, fur)
    elif view == "side":
        _draw_profile(painter, animal, center_v, radius_u, radius_v, fur)


def _draw_ears(painter: Painter, animal: str, v: float, ru: float, rv: float,
               fur: Color) -> None:
    dark, light = scale(fur, 0.7), tuple(min(255, c + 40) for c in scale(fur, 1.25))
    top = v - rv
    if animal in ("bear", "mouse"):
        size = 0.5 if animal == "mouse" else 0.32
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.8 * ru, top + 0.2 * rv, size * ru, size * rv * 0.9,
                            fur)
            painter.ellipse(0.5 + side * 0.8 * ru, top + 0.2 * rv, size * ru * 0.55,
                            size * rv * 0.5, PINK)
    elif animal in ("cat", "pig", "horse"):
        height = 0.55 if animal == "cat" else 0.4
        for side in (-1, 1):
            painter.polygon([(0.5 + side * 0.9 * ru, top + 0.5 * rv),
                             (0.5 + side * 0.75 * ru, top - height * rv),
                             (0.5 + side * 0.3 * ru, top + 0.2 * rv)], fur)
    elif animal == "rabbit":
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.4 * ru, top - 0.55 * rv, 0.2 * ru, 0.8 * rv, fur)
            painter.ellipse(0.5 + side * 0.4 * ru, top - 0.5 * rv, 0.1 * ru, 0.6 * rv, PINK)
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


def _draw_face(painter: Painter, animal: str, v: float, ru: float, rv: float,
               fur: Color) -> None:
    light, dark = tuple(min(255, c + 40) for c in scale(fur, 1.25)), scale(fur, 0.7)
    top = v - rv
    if animal == "horse":
        painter.ellipse(0.5, top + 0.1 * rv, 0.5 * ru, 0.18 * rv, dark)
    if animal == "monkey":
        painter.ellipse(0.5, v + 0.25 * rv, 0.75 * ru, 0.65 * rv, light)
    if animal == "duck":
        painter.ellipse(0.5, top + 0.05 * rv, 0.12 * ru, 0.25 * rv, fur)
    eye_v = v - (0.25 if animal != "crocodile" else 0.7) * rv
    for side in (-1, 1):
        painter.ellipse(0.5 + side * 0.33 * ru, eye_v, 0.26 * ru, 0.3 * rv, (255, 255, 255))
        painter.ellipse(0.5 + side * 0.3 * ru, eye_v + 0.08 * rv, 0.11 * ru, 0.14 * rv, BLACK)
    if animal == "duck":
        painter.ellipse(0.5, v + 0.42 * rv, 0.7 * ru, 0.25 * rv, (250, 160, 30))
    elif animal == "pig":
        painter.ellipse(0.5, v + 0.35 * rv, 0.38 * ru, 0.28 * rv, PINK)
        for side in (-1, 1):
            painter.ellipse(0.5 + side * 0.13 * ru, v + 0.35 * rv, 0.07 * ru, 0.1 * rv, dark)
    elif animal in ("dog", "horse", "bear"):
        size = {"dog": 0.45, "horse": 0.6, "bear": 0.35}[animal]
        painter.ellipse(0.5, v + 0.5 * rv, size * ru, size * rv * 0.75, light)
        painter.ellipse(0.5, v + 0.35 * rv, 0.15 * ru, 0.1 * rv, BLACK)
    elif animal == "crocodile":
        painter.ellipse(0.5, v + 0.35 * rv, 0.75 * ru, 0.5 * rv, dark)
        painter.line(0.5 - 0.6 * ru, v + 0.4 * rv, 0.5 + 0.6 * ru, v + 0.4 * rv, WHITE, 0.025)
    elif animal == "cat":
        painter.ellipse(0.5, v + 0.2 * rv, 0.1 * ru, 0.07 * rv, PINK)
        for side in (-1, 1):
            painter.line(0.5 + side * 0.2 * ru, v + 0.3 * rv, 0.5 + side * 0.95 * ru,
                         v + 0.2 * rv, BLACK, 0.01)
    else:
        painter.ellipse(0.5, v + 0.25 * rv, 0.1 * ru, 0.07 * rv,
                        PINK if animal == "rabbit" else BLACK)


def _draw_profile(painter: Painter, animal: str, v: float, ru: float, rv: float,
                  fur: Color) -> None:
    """One eye toward the front (right) and the snout or beak sticking out past the head."""
    light, dark = tuple(min(255, c + 40) for c in scale(fur, 1.25)), scale(fur, 0.7)
    eye_v = v - (0.25 if animal != "crocodile" else 0.7) * rv
    painter.ellipse(0.5 + 0.5 * ru, eye_v, 0.22 * ru, 0.3 * rv, (255, 255, 255))
    painter.ellipse(0.5 + 0.6 * ru, eye_v + 0.08 * rv, 0.09 * ru, 0.14 * rv, BLACK)
    snouts = {"duck": (0.55, 0.2, (250, 160, 30)), "pig": (0.25, 0.25, PINK),
              "dog": (0.4, 0.3, light), "horse": (0.5, 0.4, light), "bear": (0.3, 0.3, light),
              "crocodile": (0.7, 0.35, dark)}
    length, thickness, color = snouts.get(animal, (0.15, 0.15, light))
    painter.ellipse(0.5 + (0.85 + length / 2) * ru, v + 0.35 * rv, length * ru,
                    thickness * rv, color)
    painter.ellipse(0.5 + (0.85 + length) * ru, v + 0.3 * rv, 0.06 * ru, 0.07 * rv,
                    BLACK if animal not in ("duck", "pig", "rabbit") else dark)


# ----------------------------------------------------------------------------- nametags


def nametag_lines(label: str, rng: np.random.Generator) -> list[str]:
    """The text of a figure's nametag: a Cog's name, suit and level, or a Toon's name."""
    if label.startswith("cog_"):
        _, suit, name = label.split("_", 2)
        display = COG_DISPLAY_NAMES.get(name, name.capitalize())
        return [display, SUITS[suit].capitalize(), f"Level {int(rng.integers(1, 13))}"]
    first = TOON_FIRST_NAMES[int(rng.integers(len(TOON_FIRST_NAMES)))]
    last = TOON_LAST_NAMES[int(rng.integers(len(TOON_LAST_NAMES)))]
    return [first, last] if rng.uniform() < 0.5 else [f"{first} {last}"]


def nametag_size(lines: Sequence[str]) -> tuple[int, int]:
    """Returns the (width, height) of the nametag panel for these lines."""
    sizes = [cv2.getTextSize(line, NAMETAG_FONT, NAMETAG_SCALE, 1)[0] for line in lines]
    line_height = max(height for _, height in sizes) + 4
    return max(width for width, _ in sizes) + 6, line_height * len(lines) + 3


def draw_nametag(image: np.ndarray, center_x: int, bottom: int, lines: Sequence[str],
                 is_cog: bool) -> tuple[int, int, int, int]:
    """Draws a nametag panel whose bottom edge is centred at (center_x, bottom), kept inside
    the image (cut at its top edge if need be); returns the panel's box."""
    width, height = nametag_size(lines)
    line_height = (height - 3) // len(lines)
    top = max(0, bottom - height)
    left = int(np.clip(center_x - width // 2, 0, image.shape[1] - width))
    panel = image[top:bottom, left:left + width]
    panel[:] = (panel * 0.35 + np.array((225, 225, 225)) * 0.65).astype(np.uint8)
    text_color = (20, 20, 20) if is_cog else (30, 60, 200)
    for row, line in enumerate(lines):
        text_width = cv2.getTextSize(line, NAMETAG_FONT, NAMETAG_SCALE, 1)[0][0]
        origin = (left + (width - text_width) // 2, top + line_height * (row + 1) - 1)
        cv2.putText(image, line, origin, NAMETAG_FONT, NAMETAG_SCALE, text_color, 1,
                    cv2.LINE_AA)
    return left, top, left + width, bottom
