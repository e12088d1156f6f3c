"""Drawing primitives of the synthetic screenshots: colours, a relative-coordinate painter,
compositing of figure patches (with distance blur and haze) and the per-pixel light.

Everything here is plain OpenCV and numpy; randomness always comes from the caller's
`numpy.random.Generator`, so the same generator state draws the same pixels.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]

# A patch pixel belongs to the figure's box when its opacity is above this (of 255).
OPAQUE = 64


def jitter(rng: np.random.Generator, color: Color, hue: float = 0.0, saturation: float = 0.0,
           value: float = 0.0) -> Color:
    """Returns `color` with its HSV components shifted by up to the given amounts."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in color))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = float(np.clip(s + rng.uniform(-saturation, saturation), 0, 1))
    v = float(np.clip(v + rng.uniform(-value, value), 0, 1))
    return hsv(h, s, v)


def hsv(hue: float, saturation: float, value: float) -> Color:
    """The RGB colour (0-255) of HSV components in 0-1."""
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue, saturation, value))


def scale(color: Color, factor: float) -> Color:
    """`color` with every channel multiplied by `factor` (clipped to 0-255)."""
    return tuple(int(np.clip(c * factor, 0, 255)) for c in color)


def bright(rng: np.random.Generator, saturation: tuple[float, float] = (0.65, 1.0),
           value: tuple[float, float] = (0.85, 1.0)) -> Color:
    """A random colour of any hue with saturation and value drawn from the given ranges."""
    return hsv(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))


def pick(rng: np.random.Generator, options: Sequence[Color]) -> Color:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


class Painter:
    """Draws on an RGBA patch in coordinates relative to its size (0..1 on each axis).

    Args:
        patch: a (height, width, 4) uint8 array, drawn on in place; the alpha channel marks
            what belongs to the figure.
    """

    def __init__(self, patch: np.ndarray):
        self.patch = patch
        self.height, self.width = patch.shape[:2]

    def _point(self, u: float, v: float) -> tuple[int, int]:
        return int(round(u * self.width)), int(round(v * self.height))

    def ellipse(self, u: float, v: float, radius_u: float, radius_v: float, color: Color,
                thickness: int = -1) -> None:
        """An ellipse centred at (u, v); filled unless `thickness` (pixels) is given."""
        axes = (max(1, int(round(radius_u * self.width))),
                max(1, int(round(radius_v * self.height))))
        cv2.ellipse(self.patch, self._point(u, v), axes, 0, 0, 360, (*color, 255), thickness,
                    cv2.LINE_AA)

    def polygon(self, points: Sequence[tuple[float, float]], color: Color) -> None:
        """A filled polygon through `points`."""
        pixels = np.array([self._point(u, v) for u, v in points], dtype=np.int32)
        cv2.fillPoly(self.patch, [pixels], (*color, 255), cv2.LINE_AA)

    def rectangle(self, u0: float, v0: float, u1: float, v1: float, color: Color) -> None:
        """A filled axis-aligned rectangle between two corners."""
        self.polygon([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], color)

    def line(self, u0: float, v0: float, u1: float, v1: float, color: Color,
             thickness: float) -> None:
        """A line whose thickness is a share of the patch's width."""
        cv2.line(self.patch, self._point(u0, v0), self._point(u1, v1), (*color, 255),
                 max(1, int(round(thickness * self.width))), cv2.LINE_AA)


def soften(patch: np.ndarray, sigma: float, haze: float, haze_color: Color) -> np.ndarray:
    """Returns a figure patch as seen from afar: blurred by `sigma` pixels and blended by the
    share `haze` toward `haze_color`, as far objects fade into the air.

    The patch is premultiplied RGBA (colour channels already multiplied by opacity: OpenCV's
    anti-aliased drawing on a transparent patch gives exactly that), so the blur spreads
    colour and opacity together and leaves no dark fringe.

    Args:
        patch: the figure, (height, width, 4) uint8 premultiplied RGBA; pad it by about
            2 * `sigma` so the blur is not cut at its border.
        sigma: the Gaussian blur's standard deviation in pixels (none below 0.3).
        haze: the share (0-1) of `haze_color` mixed into the figure's colours.
        haze_color: the air's colour, usually the sky's at the horizon.

    Returns:
        The softened patch as premultiplied float32 RGBA, for `paste`.
    """
    out = patch.astype(np.float32)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    alpha = out[:, :, 3:] / 255
    out[:, :, :3] = out[:, :, :3] * (1 - haze) + np.array(haze_color, np.float32) * haze * alpha
    return out


def paste(image: np.ndarray, patch: np.ndarray, left: int, top: int,
          full_patch: np.ndarray | None = None) -> Box | None:
    """Composites a premultiplied float RGBA patch onto `image`, cut by the image's edges.

    Args:
        image: (height, width, 3) uint8, drawn on in place.
        patch: what is composited (premultiplied float32 RGBA).
        left, top: where the patch's corner lands; may lie outside the image.
        full_patch: the figure's own opacity before blurring (uint8 RGBA), which decides the
            box; `patch` itself when omitted.

    Returns:
        The tight box (xmin, ymin, xmax, ymax) of the figure's visible part, in numpy slice
        coordinates, or None when none of it is inside the image.
    """
    height, width = patch.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, image.shape[1]), min(top + height, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    part = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    alpha = part[:, :, 3:] / 255
    region = image[y0:y1, x0:x1]
    region[:] = (region * (1 - alpha) + part[:, :, :3]).clip(0, 255).astype(np.uint8)
    source = patch if full_patch is None else full_patch
    mask = source[y0 - top:y1 - top, x0 - left:x1 - left, 3] > OPAQUE
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return (x0 + int(columns[0]), y0 + int(rows[0]), x0 + int(columns[-1]) + 1,
            y0 + int(rows[-1]) + 1)


def apply_light(image: np.ndarray, gains: np.ndarray) -> None:
    """Multiplies `image` (uint8 RGB, in place) by per-pixel RGB `gains` of the same shape."""
    image[:] = (image * gains).clip(0, 255).astype(np.uint8)
