"""The street behind the figures of a synthetic screenshot, and the light over the scene.

A scene is a sky (a day, dusk or overcast gradient with clouds), a row of cartoon buildings
on the horizon, sometimes trees, a sidewalk and a cobbled street. The light is a per-pixel
RGB gain applied after the figures are drawn, so figures that stand in a cast shadow are
darkened with the street under them.
"""

from __future__ import annotations

import cv2
import numpy as np

from toonvision.demo.drawing import Color, jitter, pick, scale

LIGHTS: tuple[str, ...] = ("day", "dusk", "shade")
LIGHT_SHARES: tuple[float, ...] = (0.5, 0.25, 0.25)
# (sky top, sky bottom) per light.
SKY_COLORS: dict[str, tuple[Color, Color]] = {
    "day": ((40, 95, 205), (150, 195, 245)),
    "dusk": ((70, 55, 130), (250, 160, 100)),
    "shade": ((120, 135, 160), (190, 198, 210)),
}
# The gain of the whole scene per light, and of cast shadows on top of it.
LIGHT_GAINS: dict[str, tuple[float, float, float]] = {
    "day": (1.0, 1.0, 1.0),
    "dusk": (1.0, 0.78, 0.62),
    "shade": (0.66, 0.71, 0.86),
}
SHADOW_GAIN = (0.55, 0.6, 0.78)
BUILDING_COLORS: tuple[Color, ...] = (
    (245, 150, 50), (250, 215, 70), (230, 80, 60), (240, 130, 170), (70, 190, 180),
    (160, 110, 200), (150, 210, 90), (250, 180, 120),
)
TRIM_COLORS: tuple[Color, ...] = (
    (40, 150, 60), (50, 90, 180), (200, 40, 50), (250, 250, 240), (120, 70, 40),
)


def draw_street(image: np.ndarray, horizon: int, light: str, rng: np.random.Generator) -> None:
    """Draws sky, buildings, pavement and trees on `image` (uint8 RGB, in place)."""
    _draw_sky(image, horizon, light, rng)
    _draw_buildings(image, horizon, rng)
    _draw_pavement(image, horizon, rng)
    _draw_trees(image, horizon, rng)


def horizon_color(light: str) -> Color:
    """The colour far figures fade toward: the sky's at the horizon, under `light`."""
    gains = LIGHT_GAINS[light]
    return tuple(int(c * g) for c, g in zip(SKY_COLORS[light][1], gains, strict=True))


def light_gains(shape: tuple[int, int], horizon: int, light: str,
                rng: np.random.Generator) -> np.ndarray:
    """Returns the per-pixel RGB gain of the scene's light.

    The whole scene gets the light's tint; in day and dusk light 0-2 cast shadows (long
    slanted bands from buildings off screen) fall across the street and darken what stands
    in them. Shadow edges are softened as real shadows are.

    Args:
        shape: the image's (height, width).
        horizon: the horizon's y; shadows start a little above it.
        light: one of `LIGHTS`.
        rng: decides the brightness and the shadows.

    Returns:
        A (height, width, 3) float32 array to multiply the image by.
    """
    height, width = shape
    gains = np.empty((height, width, 3), dtype=np.float32)
    gains[:] = np.array(LIGHT_GAINS[light], np.float32) * rng.uniform(0.85, 1.08)
    shadows = int(rng.integers(0, 3)) if light != "shade" else 0
    if not shadows:
        return gains
    mask = np.zeros((height, width), dtype=np.float32)
    for _ in range(shadows):
        x = rng.uniform(-0.2, 1.0) * width
        span = rng.uniform(0.15, 0.45) * width
        slant = rng.uniform(-0.6, 0.6) * (height - horizon)
        top = horizon - rng.uniform(0, 120)
        points = np.array([[x, top], [x + span, top], [x + span + slant, height],
                           [x + slant, height]], dtype=np.int32)
        cv2.fillPoly(mask, [points], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)[:, :, None]
    shadow = np.array(SHADOW_GAIN, np.float32) * rng.uniform(0.9, 1.1)
    return gains * (1 - mask + mask * shadow)


def _draw_sky(image: np.ndarray, horizon: int, light: str, rng: np.random.Generator) -> None:
    top_color, bottom_color = SKY_COLORS[light]
    top = np.array(jitter(rng, top_color, 0.02, 0.1, 0.08), dtype=np.float32)
    bottom = np.array(jitter(rng, bottom_color, 0.02, 0.1, 0.05), dtype=np.float32)
    weights = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    image[:horizon] = (top * (1 - weights) + bottom * weights).astype(np.uint8)[:, None, :]
    for _ in range(int(rng.integers(3, 8))):
        x, y = rng.uniform(0, image.shape[1]), rng.uniform(10, horizon * 0.5)
        size = rng.uniform(18, 45)
        shade = jitter(rng, (250, 252, 255), value=0.04)
        for _ in range(int(rng.integers(3, 6))):
            center = (int(x + rng.uniform(-2, 2) * size), int(y + rng.uniform(-0.4, 0.3) * size))
            axes = (int(size * rng.uniform(0.7, 1.3)), int(size * rng.uniform(0.45, 0.7)))
            cv2.ellipse(image, center, axes, 0, 0, 360, shade, -1, cv2.LINE_AA)


def _draw_buildings(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    outline = (60, 45, 40)
    x = int(rng.integers(-60, 0))
    while x < image.shape[1]:
        width = int(rng.integers(90, 230))
        top = horizon - int(rng.integers(90, 230))
        wall = jitter(rng, pick(rng, BUILDING_COLORS), 0.02, 0.1, 0.08)
        trim = pick(rng, TRIM_COLORS)
        left, right = x, x + width
        cv2.rectangle(image, (left, top), (right, horizon), wall, -1)
        roof = int(rng.integers(4))
        roof_color = jitter(rng, pick(rng, TRIM_COLORS), 0.02, 0.1, 0.1)
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
        door_color = jitter(rng, trim, value=0.15)
        cv2.rectangle(image, (door_left, door_top + door_width // 2),
                      (door_left + door_width, horizon), door_color, -1)
        cv2.ellipse(image, (door_left + door_width // 2, door_top + door_width // 2),
                    (door_width // 2, door_width // 2), 0, 180, 360, door_color, -1, cv2.LINE_AA)
        x = right + int(rng.integers(0, 40))


def _draw_windows(image: np.ndarray, left: int, right: int, top: int, bottom: int,
                  trim: Color, rng: np.random.Generator) -> None:
    shape = int(rng.integers(3))
    size = int(rng.integers(14, 24))
    glass = jitter(rng, (90, 140, 200), 0.05, 0.2, 0.2)
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
    screen_height, screen_width = image.shape[:2]
    sidewalk = jitter(rng, (205, 190, 160), value=0.05)
    sand = np.array(jitter(rng, (228, 196, 145), 0.02, 0.08, 0.05), dtype=np.float32)
    street = horizon + 18
    image[horizon:horizon + 14] = sidewalk
    image[horizon + 14:street] = scale(sidewalk, 0.8)
    image[street:] = (sand * 0.82).astype(np.uint8)
    y = float(street + 2)
    while y < screen_height + 20:
        depth = (y - horizon) / (screen_height - horizon)
        height = 5 + 22 * depth
        width = height * 2.2
        count = int((screen_width + 2 * width) // width) + 1
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
        grass = jitter(rng, (110, 180, 70), 0.03, 0.1, 0.1)
        side = int(rng.integers(2))
        edge = np.array([[screen_width * side, street],
                         [int(screen_width * (0.4 + 0.2 * side)), street],
                         [screen_width * side, horizon + int(rng.integers(60, 140))]])
        cv2.fillPoly(image, [edge], grass, cv2.LINE_AA)
        cv2.polylines(image, [edge[1:]], False, scale(sidewalk, 0.8), 4, cv2.LINE_AA)


def _draw_trees(image: np.ndarray, horizon: int, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(0, 4))):
        x = int(rng.uniform(0, image.shape[1]))
        base = horizon + int(rng.integers(4, 14))
        height = int(rng.integers(150, 260))
        trunk = jitter(rng, (150, 120, 80), value=0.1)
        half = int(rng.integers(8, 16))
        points = np.array([[x - half - 4, base], [x - half // 2, base - height],
                           [x + half // 2, base - height], [x + half + 4, base]])
        cv2.fillPoly(image, [points], trunk, cv2.LINE_AA)
        leaves = jitter(rng, (90, 170, 50), 0.04, 0.1, 0.1)
        for _ in range(int(rng.integers(5, 9))):
            center = (int(x + rng.uniform(-60, 60)), int(base - height + rng.uniform(-50, 30)))
            radius = int(rng.uniform(30, 55))
            cv2.circle(image, center, radius, jitter(rng, leaves, value=0.08), -1, cv2.LINE_AA)
