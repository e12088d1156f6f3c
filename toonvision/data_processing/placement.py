"""Where a crop lies inside the model input it is resized to: the geometry of `resize`.

A crop becomes a model input of a fixed (height, width) in one of `RESIZE_MODES`:

- `stretch` (the article's, the default): each side is resized to its size, so a tall crop
  is squeezed and a wide one stretched; the crop fills the whole input.
- `letterbox`: the crop is scaled by one factor so that it fits inside the input with its
  aspect ratio kept, centred, and the rest is padded with `PAD_VALUE` (black).

`placement` says where the crop's pixels lie in the input (`Placement`); loading
(`images.letterbox`, `images.resize`) and the mapping of a heatmap back onto the crop
(`Placement.to_source`) both use it, so they cannot disagree. No OpenCV at import: the
comparison settings (and `toonvision --help`) read `RESIZE_MODES` from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toonvision import unknown_name_error

# How a crop becomes a model input: each side stretched to its size (the article's), or
# scaled to fit with its aspect ratio kept and the rest padded (letterbox).
RESIZE_MODES: tuple[str, ...] = ("stretch", "letterbox")
# Letterbox padding: black. The models rescale pixels to [0, 1] first, so black is an input
# of zeros, which adds nothing to a convolution but its bias; replicated edges would invent
# stripes of content the crop does not hold, and make the padding look like the object.
PAD_VALUE = 0


@dataclass(frozen=True)
class Placement:
    """Where an image lies inside a model input it was resized to (`placement`).

    The content fills rows `top:top + height` and columns `left:left + width` of the input;
    the rest is padding (`PAD_VALUE`). With `stretch` the content is the whole input.

    Attributes:
        source_size: (height, width) of the image before resizing.
        size: (height, width) of the model input.
        top, left: the content's first row and column in the input.
        height, width: the content's size in the input.
    """

    source_size: tuple[int, int]
    size: tuple[int, int]
    top: int
    left: int
    height: int
    width: int

    @property
    def scale(self) -> tuple[float, float]:
        """(vertical, horizontal) input pixels per image pixel (equal under letterbox)."""
        return self.height / self.source_size[0], self.width / self.source_size[1]

    def content(self, array: np.ndarray) -> np.ndarray:
        """The content part of an input-sized `array` (an image or a heatmap), padding cut."""
        return array[self.top:self.top + self.height, self.left:self.left + self.width]

    def to_source(self, heatmap: np.ndarray) -> np.ndarray:
        """A heatmap over the model input (at the input's size, or coarser: it is resized to
        the input first), mapped onto the pixels of the original image: the padding is cut
        out, then the content part is resized to `source_size` (bilinear)."""
        import cv2

        heatmap = np.asarray(heatmap, dtype=np.float32)
        if heatmap.shape[:2] != self.size:
            heatmap = cv2.resize(heatmap, self.size[::-1], interpolation=cv2.INTER_LINEAR)
        height, width = self.source_size
        return cv2.resize(self.content(heatmap), (width, height), interpolation=cv2.INTER_LINEAR)


def placement(source_size: tuple[int, int], size: tuple[int, int],
              mode: str = "stretch") -> Placement:
    """Where an image of `source_size` lies in an input of `size` under `mode`.

    `letterbox` scales by the smaller of the two ratios, so the whole image fits with its
    aspect ratio kept; the content is centred (an odd leftover pixel goes below or right).
    An image that already has the input's aspect ratio fills it exactly, as with `stretch`.

    Args:
        source_size: (height, width) of the image.
        size: (height, width) of the model input.
        mode: one of `RESIZE_MODES`.

    Raises:
        ToonvisionError: for an unknown mode (with a did-you-mean).
    """
    if mode not in RESIZE_MODES:
        raise unknown_name_error("resize mode", mode, RESIZE_MODES)
    source_size = (int(source_size[0]), int(source_size[1]))
    size = (int(size[0]), int(size[1]))
    if mode == "stretch":
        return Placement(source_size, size, 0, 0, *size)
    scale = min(size[0] / source_size[0], size[1] / source_size[1])
    height = min(size[0], max(1, round(source_size[0] * scale)))
    width = min(size[1], max(1, round(source_size[1] * scale)))
    return Placement(source_size, size, (size[0] - height) // 2, (size[1] - width) // 2,
                     height, width)
