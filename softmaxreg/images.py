"""Turn ordinary pictures of digits into MNIST-style 28×28 inputs.

MNIST's digits were size-normalised to fit a 20×20 box (keeping their aspect ratio, with
anti-aliasing) and then centred by centre of mass in a 28×28 field, white ink (255) on
black (0). :func:`image_to_mnist` repeats those steps on any picture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from .exceptions import DataError

__all__ = ["image_to_mnist", "load_images"]

_CANVAS = 28
_BOX = 20
_CENTRE = 14.0  # where MNIST puts the centre of mass (row, column)
_INK_THRESHOLD = 0.1 * 255  # after stretching the ink to 0..255; fainter counts as paper

ImageSource = str | os.PathLike[str] | NDArray[Any]


def image_to_mnist(image: ImageSource) -> NDArray[np.uint8]:
    """A picture of one digit -> (784,) uint8, MNIST style.

    ``image`` is a file Pillow can read, or an array (h, w) or (h, w, 3|4): integers as
    0..255 intensities, floats as 0..1. Steps: greyscale (transparent parts count as white
    paper); invert if the background, the border's median, is light; subtract the background
    and stretch the ink to 0..255; crop to the ink's bounding box (pixels above 10 % of the
    peak); resize (Lanczos) so the longer side is 20 px; place in 28×28 so that the centre of
    mass is at (14, 14). DataError if the file is unreadable or the picture holds no ink.
    """
    source = "image array" if isinstance(image, np.ndarray) else str(image)
    grey = _greyscale(image, source)
    ink = _ink(grey, source)
    digit = _resize_longer_side(_crop_to_ink(ink), _BOX)
    return _centre_by_mass(digit).reshape(-1)


def load_images(paths: Iterable[ImageSource]) -> NDArray[np.uint8]:
    """:func:`image_to_mnist` of each picture, stacked: (k, 784) uint8."""
    rows = [image_to_mnist(path) for path in paths]
    return np.stack(rows) if rows else np.zeros((0, _CANVAS * _CANVAS), dtype=np.uint8)


def _greyscale(image: ImageSource, source: str) -> NDArray[np.float64]:
    """(h, w) float intensities 0..255 (0 black, 255 white)."""
    if isinstance(image, np.ndarray):
        return _grey_from_pil(Image.fromarray(_array_to_uint8(image)))
    try:
        with Image.open(image) as picture:
            picture.load()
            return _grey_from_pil(ImageOps.exif_transpose(picture))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {source}: {exc}") from exc


def _array_to_uint8(array: NDArray[Any]) -> NDArray[np.uint8]:
    """Check an image array's shape and range; return it as 0..255 uint8."""
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise DataError(f"image array has shape {array.shape}; expected (h, w), (h, w, 3) or "
                        "(h, w, 4)")
    if array.size == 0:
        raise DataError("image array is empty")
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise DataError("float image arrays must hold intensities in [0, 1]")
        return np.rint(array * 255).astype(np.uint8)
    if array.dtype.kind not in "biu":
        raise DataError(f"image array has dtype {array.dtype}; expected numbers")
    if array.min() < 0 or array.max() > 255:
        raise DataError("integer image arrays must hold intensities in 0..255")
    return array.astype(np.uint8)


def _grey_from_pil(picture: Image.Image) -> NDArray[np.float64]:
    """Greyscale, with transparent parts composited onto white paper."""
    if "A" in picture.getbands() or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(paper, rgba)
    return np.asarray(picture.convert("L"), dtype=np.float64)


def _ink(grey: NDArray[np.float64], source: str) -> NDArray[np.float64]:
    """Ink as light on 0: invert a light background, remove its level, stretch to 0..255."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127.5:
        grey, border = 255.0 - grey, 255.0 - border
    ink = np.clip(grey - np.median(border), 0.0, None)
    peak = ink.max()
    if peak <= 0:
        raise DataError(f"{source} holds no digit: it has no ink darker/lighter than its "
                        "background")
    ink *= 255.0 / peak
    ink[ink < _INK_THRESHOLD] = 0.0
    return ink


def _crop_to_ink(ink: NDArray[np.float64]) -> NDArray[np.float64]:
    """The smallest rectangle holding every ink pixel."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]


def _resize_longer_side(box: NDArray[np.float64], side: int) -> NDArray[np.float64]:
    """Resize (Lanczos, in floating point) keeping the aspect ratio; longer side = ``side``."""
    height, width = box.shape
    factor = side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resized = Image.fromarray(box.astype(np.float32)).resize(
        size, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)


def _centre_by_mass(digit: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Place ``digit`` in a 28×28 canvas so that its centre of mass falls on (14, 14).

    The offset is rounded to whole pixels and clamped so that no ink leaves the canvas.
    """
    height, width = digit.shape
    rows, cols = np.indices(digit.shape)
    total = digit.sum()
    centre_row, centre_col = (rows * digit).sum() / total, (cols * digit).sum() / total
    top = min(max(round(_CENTRE - centre_row), 0), _CANVAS - height)
    left = min(max(round(_CENTRE - centre_col), 0), _CANVAS - width)
    canvas = np.zeros((_CANVAS, _CANVAS))
    canvas[top: top + height, left: left + width] = digit
    return np.rint(canvas).astype(np.uint8)
