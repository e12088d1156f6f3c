"""Reading, converting and atomically writing images.

Real screenshots lie about their format (ToonTown `.png` files that are JPEG, fruit `.jpg`
files that are PNG), so images are always decoded by content, never by extension. Every
function here returns or takes RGB (or RGBA) arrays; OpenCV's BGR order stays inside.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from toonvision import ToonvisionError
from toonvision.data_processing.placement import PAD_VALUE, Placement, placement
from toonvision.fileio import write_bytes_atomic

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageReadError(ToonvisionError):
    """An image file could not be read or decoded; the message names the file and why."""


def is_image_file(path: Path) -> bool:
    """Returns whether `path` has an image extension, in any case."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | os.PathLike, keep_alpha: bool = False) -> np.ndarray:
    """Reads an image by content and returns it as uint8 RGB (or RGBA).

    Grayscale images become 3 channels, palette images are expanded, 16-bit images are
    scaled to 8 bits. Without `keep_alpha`, transparent pixels are composited onto black.

    Args:
        path: the image file; its extension is ignored.
        keep_alpha: return RGBA (alpha 255 where the file has none) instead of RGB.

    Returns:
        An array of shape (height, width, 3 or 4), dtype uint8.

    Raises:
        ImageReadError: if the file is missing, empty, truncated or not an image.
    """
    path = Path(path)
    try:
        encoded = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read file ({error.strerror or error})") from error
    if encoded.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    try:
        return decode_image(encoded, keep_alpha)
    except ImageReadError as error:
        raise ImageReadError(f"{path}: {error}") from None


def decode_image(data: bytes | np.ndarray, keep_alpha: bool = False) -> np.ndarray:
    """Decodes encoded image bytes by content, as `read_image` does for a file.

    Raises:
        ImageReadError: if the bytes are not a decodable image.
    """
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageReadError("not a decodable image (corrupt, truncated or unknown format)")
    if image.dtype != np.uint8:
        image = (image.astype(np.float32) * (255.0 / np.iinfo(image.dtype).max)).astype(np.uint8)
    return _to_rgb(image, keep_alpha)


def _to_rgb(image: np.ndarray, keep_alpha: bool) -> np.ndarray:
    if image.ndim == 2:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        alpha = None
    elif image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        alpha = image[:, :, 3]
    else:
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        alpha = None
    if keep_alpha:
        if alpha is None:
            alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
        return np.dstack([rgb, alpha])
    if alpha is not None:
        rgb = (rgb.astype(np.uint16) * alpha[:, :, None] // 255).astype(np.uint8)
    return rgb


def to_input(image: np.ndarray, size: tuple[int, int],
             mode: str = "stretch") -> tuple[np.ndarray, Placement]:
    """`image` resized to a model input of `size` = (height, width) in `mode`, and where its
    pixels lie in that input (`placement.Placement`, whose `to_source` maps a heatmap of the
    input back onto `image`).

    Args:
        image: (height, width[, channels]).
        size: (height, width) of the input.
        mode: `stretch` (each side to its size: the article's) or `letterbox` (scaled to fit
            with the aspect ratio kept, centred, the rest `PAD_VALUE`: black).

    Raises:
        ToonvisionError: for an unknown mode.
    """
    where = placement(image.shape[:2], size, mode)
    if (where.height, where.width) == where.size:
        return _stretch(image, where.size), where
    boxed = np.full((*where.size, *image.shape[2:]), PAD_VALUE, dtype=image.dtype)
    boxed[where.top:where.top + where.height, where.left:where.left + where.width] = _stretch(
        image, (where.height, where.width))
    return boxed, where


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Placement]:
    """`image` scaled to fit inside `size` = (height, width) with its aspect ratio kept,
    centred, the rest black (`to_input` in `letterbox` mode), and where it lies."""
    return to_input(image, size, "letterbox")


def resize(image: np.ndarray, size: tuple[int, int], mode: str = "stretch") -> np.ndarray:
    """Resizes `image` to `size` = (height, width) in `mode` (`to_input`), with area
    averaging when shrinking."""
    return _stretch(image, size) if mode == "stretch" else to_input(image, size, mode)[0]


def _stretch(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def draw_labelled_box(image: np.ndarray, box: tuple[int, int, int, int], text: str,
                      color: tuple[int, int, int]) -> None:
    """Draws `box` = (xmin, ymin, xmax, ymax) on an RGB uint8 `image`, in place, with `text`
    in black on a band of `color` above the box (below it when there is no room above).

    Line width and text size grow with the image, so labels stay readable on large
    screenshots and small crops alike.
    """
    scale = max(0.4, min(image.shape[:2]) / 1200)
    thickness = max(1, round(2 * scale))
    xmin, ymin, xmax, ymax = box
    cv2.rectangle(image, (xmin, ymin), (xmax - 1, ymax - 1), color, thickness)
    (text_width, text_height), baseline = cv2.getTextSize(
        text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = text_height + baseline + 2
    top = ymin - band if ymin > band else ymax
    cv2.rectangle(image, (xmin, top), (xmin + text_width + 4, top + band), color, cv2.FILLED)
    cv2.putText(image, text, (xmin + 2, top + text_height + 1), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (0, 0, 0), thickness, cv2.LINE_AA)


def encode_image(image: np.ndarray, extension: str = ".png",
                 jpeg_quality: int | None = None) -> bytes:
    """Encodes an RGB(A) or grey uint8 image in the format of `extension` (".png", ".jpg", ...),
    at `jpeg_quality` (0-100) for JPEG when given.

    Raises:
        ToonvisionError: if OpenCV cannot encode it in that format.
    """
    if image.ndim == 3 and image.shape[2] == 4:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    elif image.ndim == 3:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    else:
        bgr = image
    parameters = [] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, encoded = cv2.imencode(extension.lower(), bgr, parameters)
    if not ok:
        raise ToonvisionError(f"OpenCV could not encode the image as {extension}")
    return encoded.tobytes()


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an RGB(A) uint8 image as PNG (or JPEG by extension), atomically.

    The image is encoded in memory, written to a temporary file in the same folder, synced,
    then renamed into place: a crash leaves either no file or the whole file.

    Raises:
        ToonvisionError: if the image cannot be encoded.
    """
    path = Path(path)
    extension = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg") else ".png"
    try:
        data = encode_image(image, extension)
    except ToonvisionError as error:
        raise ToonvisionError(f"{path}: {error}") from None
    write_bytes_atomic(path, data)


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of encoded image bytes; 1 when there is none.

    Pillow reads only the header; it is imported only when the bytes hold an EXIF block.
    """
    head = data[:131072]
    if b"Exif\x00\x00" not in head and b"eXIf" not in head:
        return 1
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """`image` turned as a viewer shows it for EXIF `orientation` (Pillow's `exif_transpose`).
    """
    transposed = np.swapaxes(image, 0, 1)
    turned = {
        2: lambda: image[:, ::-1],
        3: lambda: image[::-1, ::-1],
        4: lambda: image[::-1],
        5: lambda: transposed,
        6: lambda: transposed[:, ::-1],
        7: lambda: transposed[::-1, ::-1],
        8: lambda: transposed[::-1],
    }.get(orientation)
    return image if turned is None else np.ascontiguousarray(turned())
