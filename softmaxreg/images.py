"""Turn ordinary pictures of digits into the inputs of a model trained on digit images.

Two formats are known. MNIST's digits were size-normalised to fit a 20×20 box (keeping their
aspect ratio, with anti-aliasing) and centred by centre of mass in a 28×28 field, white ink
(255) on black (0). scikit-learn's digits (``load_digits``) are 32×32 bitmaps whose height
fills the field, counted in 4×4 blocks: 8×8 images with values 0..16. :func:`image_to_digit`
finds the digit in a picture and renders it in either format (any other shape follows MNIST's
proportions); :func:`digit_format` says which format a model takes.

Finding the ink, step by step:

1. greyscale in [0, 1] by the picture's own range (8-bit, 16-bit, float), a large picture
   averaged down to 512 px;
2. a small Gaussian blur against sensor noise;
3. the paper: a quadratic surface fitted to the majority of the picture, the ink trimmed
   away as outliers; ink is the heavier tail of the rest (dark on light, or the reverse);
   a digit cropped to its ink, with no majority, takes its paper from the picture's border;
4. the lighting: a white top-hat (the picture minus its grey opening by a square a third of
   the picture wide) keeps the strokes and removes what is wider: gradients, shadows, the
   table around the page;
5. Otsu's threshold on the ink, never below a floor set by the paper's noise;
6. the connected components that make the digit: the largest one not touching the border,
   with the sizeable pieces near it (a 5's detached bar, a broken stroke);
7. crop to the digit (binary from here on), widen the strokes of a thin pen to the
   training digits' width, resize with anti-aliasing into the model's format.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps
from scipy import ndimage

from .exceptions import DataError

__all__ = ["digit_format", "image_to_digit", "image_to_mnist", "load_images"]

MNIST_SHAPE = (28, 28)
DIGITS_SHAPE = (8, 8)  # scikit-learn's load_digits, values 0..16
_MNIST_BOX = 20 / 28  # the longer side of an MNIST digit, as a fraction of the field
_DIGITS_BITMAP = 32  # load_digits: 32×32 bitmaps counted in 4×4 blocks
_WORKING_SIDE = 512  # larger pictures are averaged down to this longer side first
_MIN_CONTRAST = 0.08  # ink at least this much (of the full range) off the paper: ~20 levels
_NOISE_FACTOR = 6.0  # ... and this many times the paper's noise
_MIN_DIGIT_SIDE = 0.05  # the digit's longer side, as a fraction of the picture's, at least
_MNIST_STROKE = 0.10  # widen thinner strokes (width / longer side) to MNIST's 10th percentile
_DIGITS_STROKE = 0.15  # ... or load_digits' (its 32×32 bitmaps; medians 0.13 and 0.19)
_THICKEN_SIDE = 96  # strokes are measured and widened on the digit shrunk to this size
_SHADOW_WIDTH = 3  # marks wider than 1/3 of the picture are lighting, not strokes
_PIECE_SIZE = 0.05  # a component joins the digit if this large (relative to the largest) ...
_PIECE_GAP = 0.3  # ... and this close (relative to the digit's longer side)

ImageSource = str | os.PathLike[str] | NDArray[Any]


def image_to_digit(image: ImageSource, shape: tuple[int, int] = MNIST_SHAPE,
                   max_value: float = 255) -> NDArray[np.uint8] | NDArray[np.float64]:
    """A picture of one digit -> (h·w,) values in ``0..max_value``, light ink on 0.

    ``image`` is a file Pillow can read, or an array (h, w), (h, w, 3) or (h, w, 4): uint8 as
    0..255, uint16 as 0..65535, other integers as 0..255, floats as 0..1. ``shape`` (8, 8)
    gives scikit-learn's digits (use ``max_value=16``); any other shape MNIST's layout (the
    longer side in 20/28 of the field, centre of mass at the centre). An integer
    ``max_value`` gives uint8 levels 0..max_value; a float (:func:`digit_format`'s for a model
    trained in another range, e.g. ``load_digits`` / 16) gives float64: the format's own
    levels (0..16 for 8×8, else 0..255) times max_value / levels. DataError, naming the
    file, if it is unreadable or holds no digit (no ink, only specks, or nothing left after
    resizing).
    """
    source = "image array" if isinstance(image, np.ndarray) else str(image)
    grey = _working_size(_greyscale(image, source))
    ink, noise = _ink(grey, source)
    mask = _digit_mask(ink, noise, source)
    sklearn_digits = tuple(shape) == DIGITS_SHAPE
    digit = _crop(mask)
    digit = _thicken(_shrink(digit, _THICKEN_SIDE), _stroke_width(digit),
                     _DIGITS_STROKE if sklearn_digits else _MNIST_STROKE)
    render = _render_digits if sklearn_digits else _render_mnist
    out = render(digit, tuple(shape))
    if out.sum() < 0.01 * out.size:  # less than 1 % of the field in full ink
        raise DataError(f"{source} holds no digit: its ink vanishes at {shape[0]}×{shape[1]}")
    if isinstance(max_value, (int, np.integer)):
        return np.rint(out * max_value).astype(np.uint8).reshape(-1)
    levels = _format_max(tuple(shape))
    return (np.rint(out * levels) / levels * max_value).reshape(-1)  # ≤ max_value: no inf


def image_to_mnist(image: ImageSource) -> NDArray[np.uint8]:
    """:func:`image_to_digit` in MNIST's format: (784,) uint8, 0..255."""
    return image_to_digit(image, MNIST_SHAPE, 255)


def load_images(paths: Iterable[ImageSource], shape: tuple[int, int] = MNIST_SHAPE,
                max_value: float = 255) -> NDArray[np.uint8] | NDArray[np.float64]:
    """:func:`image_to_digit` of each picture, stacked: (k, h·w) uint8 (float64 for a float
    ``max_value``)."""
    rows = [image_to_digit(path, shape, max_value) for path in paths]
    return np.stack(rows) if rows else np.zeros((0, math.prod(shape)), dtype=np.uint8)


def digit_format(n_features: int, image_shape=None,
                 input_max_abs: float | None = None) -> tuple[tuple[int, int], float]:
    """(shape, max_value) of the images a model with ``n_features`` inputs was trained on.

    The shape: the model file's ``image_shape`` when it has one; else 784 -> MNIST (28×28),
    64 -> scikit-learn's digits (8×8), a square number -> a square image. The range: the
    file's ``input_max_abs`` (the largest |x| the model was trained on) when it has one, as a
    float unless it is the format's own; else the format's, 16 for 8×8 and 255 for others.
    """
    if image_shape and math.prod(image_shape) == n_features:
        shape = (int(image_shape[0]), int(image_shape[1]))
    else:
        side = math.isqrt(n_features)
        if side * side != n_features or side < 8:
            raise DataError(f"the model takes {n_features} features, not images of digits")
        shape = (side, side)
    levels = _format_max(shape)
    if input_max_abs is None or not 0 < input_max_abs < math.inf or input_max_abs == levels:
        return shape, levels
    return shape, float(input_max_abs)


def _format_max(shape: tuple[int, int]) -> int:
    """The largest value of a digit image of ``shape``: 16 in scikit-learn's 8×8 digits, 255
    (8-bit) in MNIST's and any other format."""
    return 16 if shape == DIGITS_SHAPE else 255


# --- reading: greyscale in [0, 1], 0 black, 1 white --------------------------------------


# Formats a picture of a digit comes in, recognised from the file's content: Pillow tries only
# these plugins, so an EPS named .png never reaches the EPS plugin (which runs Ghostscript).
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
# More pixels than any camera's photo (a 50 MP sensor has 8688 × 5792); checked from the header,
# before anything is decoded: a 52 KB PNG can declare 9000 × 9000.
MAX_PIXELS = 100_000_000
_ORIENTATION = 0x0112  # the EXIF tag of a camera's rotation; 1: upright
# What Pillow's parsers raise on a hostile file, besides OSError (DataError names the file)
_PARSER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
                  KeyError, TypeError, ZeroDivisionError, OverflowError, MemoryError)


def _greyscale(image: ImageSource, source: str) -> NDArray[np.float64]:
    """(h, w) intensities in [0, 1]; transparent parts count as white paper.

    A file is opened in one of IMAGE_FORMATS only, a large picture set to be reduced by an
    integer factor towards ``_WORKING_SIDE`` while (JPEG: ``draft``, 1/2 to 1/8) or right
    after decoding, what will be decoded checked against MAX_PIXELS before decoding, decoded
    in 8 bits (16-bit and float pictures in their own mode), so float64 only ever holds the
    reduced picture.
    """
    if isinstance(image, np.ndarray):
        return _grey_from_array(image)
    try:
        with _bomb_warnings_ignored():  # ours is checked
            return _decode(image, source)
    except DataError:  # ours, already naming the file (a ValueError: not to be wrapped again)
        raise
    except Image.DecompressionBombError as exc:  # the user's bound, while decoding
        raise DataError(f"cannot read image {source}: Pillow's bound PIL.Image.MAX_IMAGE_PIXELS "
                        f"refuses it ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise DataError(f"cannot read image {source}: not a picture in one of the formats "
                        f"{', '.join(IMAGE_FORMATS)}") from exc
    except _PARSER_ERRORS as exc:
        raise DataError(f"cannot read image {source}: {_what_is_wrong(exc)}") from exc


def _decode(path: str | os.PathLike[str], source: str) -> NDArray[np.float64]:
    with _CappedReads(_open_regular(path, source)) as file, \
            _open_picture(file, source) as picture:
        held = picture.size  # what decoding holds in memory: the whole picture, ...
        factor = max(picture.size) // _WORKING_SIDE
        if factor >= 2 and picture.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale
            picture.draft(picture.mode, tuple(-(-n // factor) for n in picture.size))
            if _one_pass(picture, file):  # ... or, for most JPEGs, only the reduced one
                held = picture.size
        _check_pixels(held, source)
        picture.load()
        if picture.getexif().get(_ORIENTATION, 1) != 1:  # else exif_transpose copies it
            picture = ImageOps.exif_transpose(picture)
        return _grey_from_pil(picture)


def _one_pass(picture: Image.Image, file: io.BufferedReader) -> bool:
    """Whether libjpeg decodes the JPEG ``picture`` in one pass (sequential, every component in
    its first scan), holding only the rows of the reduced picture a draft asks for. Else
    (progressive, or a scan per component) it keeps every DCT coefficient of the whole picture,
    2 bytes a pixel per component at any scale: a 1.5 MB progressive JPEG declaring 400 MP
    took 980 MB. Anything unexpected in the segments before the first scan counts as not."""
    if picture.info.get("progressive"):
        return False
    where = file.tell()
    try:
        file.seek(2)  # after SOI: segments (0xFF, marker, 2-byte length) up to the first scan
        while len(head := file.read(4)) == 4 and head[0] == 0xFF:
            length = int.from_bytes(head[2:], "big")
            if head[1] == 0xDA:  # SOS: its first byte is the number of components in the scan
                return file.read(1) == bytes([picture.layers])
            if length < 2:
                return False
            file.seek(length - 2, io.SEEK_CUR)
        return False
    finally:
        file.seek(where)


def _what_is_wrong(exc: BaseException) -> str:
    """What a Pillow parser's exception says about the file, in words where they are known."""
    if isinstance(exc, OSError) and str(exc).startswith("image file is truncated"):
        return "the file is cut short (truncated): it ends before the picture does"
    return f"{type(exc).__name__}: {exc}"


def _open_picture(file: io.BufferedReader, source: str) -> Image.Image:
    """``Image.open`` of ``file`` in one of IMAGE_FORMATS, with Pillow's decompression-bomb
    bound (a warning past 89 MP, an error past 179 MP: a 108 MP phone photo) raised, while the
    header is read, to what a JPEG decoded at 1/8 scale may declare: our own check, of the
    size that will be decoded, is the one that counts. Set under a lock and restored at once,
    unless the user set a bound meanwhile (from another thread): theirs stands. Our decoding
    (TIFF tiles, GIF frames) runs under the user's bound. Pillow's bound is one global: a
    picture that another thread opens or decodes with Pillow during those moments sees ours."""
    raised = _RaisedBound(_JPEG_MAX_PIXELS)
    with _PILLOW_BOUND:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, raised
        try:
            return Image.open(file, formats=IMAGE_FORMATS)
        except Image.DecompressionBombError as exc:
            if Image.MAX_IMAGE_PIXELS is not raised:  # the user's, set meanwhile
                raise
            raise DataError(f"{source} has more than the {MAX_PIXELS // 1_000_000} million "
                            "pixels a picture may have") from exc
        finally:
            if Image.MAX_IMAGE_PIXELS is raised:
                Image.MAX_IMAGE_PIXELS = saved


class _RaisedBound(int):
    """Pillow's bound as :func:`_open_picture` raises it: an int of its own, told (``is``) from
    any bound the user sets meanwhile, which restoring ours must not overwrite."""


@contextlib.contextmanager
def _bomb_warnings_ignored() -> Iterator[None]:
    """Pillow's DecompressionBombWarning ignored while pictures are read, by one filter entry
    that readers in every thread share: the first in puts it first in ``warnings.filters``,
    the last out takes that entry out, and nothing else. (``catch_warnings`` puts back the
    whole list it found: two readers in two threads left the filter in place for good, and
    a filter set meanwhile by the user was lost.) The filters are one list for the process:
    a ``catch_warnings`` block that another thread enters or leaves while a picture is read
    may keep this entry, or drop it early (Python's warnings are not thread-safe)."""
    with _QUIET:
        if not _quiet_readers[0]:
            warnings.filters.insert(0, _IGNORE_BOMBS)
        _quiet_readers[0] += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet_readers[0] -= 1
            if not _quiet_readers[0]:
                filters = warnings.filters
                at = next((i for i, f in enumerate(filters) if f is _IGNORE_BOMBS), None)
                if at is not None:
                    del filters[at]


_PILLOW_BOUND = threading.Lock()
_QUIET = threading.Lock()
_quiet_readers = [0]  # pictures being read, in all threads
_IGNORE_BOMBS = ("ignore", None, Image.DecompressionBombWarning, None, 0)  # filterwarnings'
_JPEG_MAX_PIXELS = 8 * 8 * MAX_PIXELS  # declared: 100 million pixels once decoded at 1/8


def _open_regular(path: str | os.PathLike[str], source: str) -> io.FileIO:
    """``path`` opened for reading if it is a regular file; DataError for a FIFO, a device or
    a folder, found without waiting (a FIFO is opened non-blocking, then checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:  # "No such file or directory", "Permission denied"
        raise DataError(f"cannot read image {source}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"cannot read image {source}: not a regular file")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _CappedReads(io.BufferedReader):
    """A file whose large reads never ask for more than it holds: Pillow's PNG plugin skips
    the rest of an IDAT chunk by reading its declared length (up to 2³¹ bytes), and CPython
    allocates what is asked before reading."""

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > _READ_CAP:
            size = max(0, min(size, os.fstat(self.fileno()).st_size - self.tell()))
        return super().read(size)


_READ_CAP = 1 << 24


def _check_pixels(size: tuple[int, int], source: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise DataError(f"{source} is {width}×{height} pixels, more than the "
                        f"{MAX_PIXELS // 1_000_000} million pixels a picture may have")
    if width * height == 0:
        raise DataError(f"{source} is {width}×{height} pixels: it holds no picture")


def _reduced(picture: Image.Image) -> Image.Image:
    """A picture more than twice ``_WORKING_SIDE`` reduced by an integer factor (box average),
    to at least ``_WORKING_SIDE`` on its longer side; :func:`_working_size` does the rest."""
    factor = max(picture.size) // _WORKING_SIDE
    return picture.reduce(factor) if factor >= 2 else picture


def _grey_from_array(array: NDArray[Any]) -> NDArray[np.float64]:
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise DataError(f"image array has shape {array.shape}; expected (h, w), (h, w, 3) or "
                        "(h, w, 4)")
    if array.size == 0:
        raise DataError("image array is empty")
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise DataError("float image arrays must hold intensities in [0, 1]")
        values = array.astype(np.float64)
    elif array.dtype == np.uint16:
        values = array / 65535.0
    elif array.dtype.kind in "biu":
        if array.min() < 0 or array.max() > 255:
            raise DataError("integer image arrays must hold intensities in 0..255 "
                            "(uint16: 0..65535)")
        values = array / 255.0
    else:
        raise DataError(f"image array has dtype {array.dtype}; expected numbers")
    if values.ndim == 2:
        return values
    grey = values[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's "L"
    if values.shape[2] == 4:
        grey = values[..., 3] * grey + (1.0 - values[..., 3])  # composite onto white paper
    return grey


def _grey_from_pil(picture: Image.Image) -> NDArray[np.float64]:
    """8-bit modes through Pillow's "L"; 16-bit, 32-bit and float modes by their range."""
    if picture.mode in ("I", "F") or picture.mode.startswith("I;16"):
        full = 65535.0 if picture.mode.startswith("I;16") else None
        picture = _reduced(picture.convert("I") if full else picture)
        return _by_range(np.asarray(picture, dtype=np.float64), full)
    opaque = "A" not in picture.getbands() and "transparency" not in picture.info
    grey = picture.convert("L") if opaque else _on_white_paper(picture)
    return np.asarray(_reduced(grey), dtype=np.float64) / 255.0


def _on_white_paper(picture: Image.Image) -> Image.Image:
    """A picture with transparency, in "L", composited onto white paper: L·α + 255·(1 − α).

    Composited in place in one 8-bit channel: Pillow keeps LA and RGBA at 4 bytes a pixel,
    and an RGBA copy, a white RGBA page and their composite took 1.6 GB for an 81-megapixel
    LA picture."""
    if picture.mode not in ("LA", "RGBA"):  # a palette's or a colour key's transparency
        picture = picture.convert("RGBA")
    paper = picture.getchannel("A").point(lambda a: 255 - a)  # where the paper shows through
    grey = picture.convert("L")
    grey.paste(255, mask=paper)
    return grey


def _by_range(values: NDArray[np.float64], full: float | None) -> NDArray[np.float64]:
    """Intensities of a 16-bit, 32-bit or float picture in [0, 1]: divided by the full scale
    of the smallest usual range that holds them (1, 255, 65535), else stretched min to max."""
    if not np.isfinite(values).all():
        raise ValueError("the picture holds values that are not finite numbers")
    low, high = values.min(), values.max()
    if full is None and low >= 0:
        full = next((f for f in (1.0, 255.0, 65535.0) if high <= f), None)
    if full is None:
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
    return values / full


def _working_size(grey: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average a large picture down to a longer side of ``_WORKING_SIDE`` pixels."""
    height, width = grey.shape
    factor = max(height, width) / _WORKING_SIDE
    if factor <= 1:
        return grey
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = Image.fromarray(grey.astype(np.float32)).resize(size, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


# --- finding the ink ---------------------------------------------------------------------


def _ink(grey: NDArray[np.float64], source: str) -> tuple[NDArray[np.float64], float]:
    """Ink strength (0 on paper, up to ~1 for black on white) and its noise (std) on paper.

    A picture of 64 px or more is first denoised (Gaussian blur), and its ink is then a
    white top-hat of the picture with the ink turned light: the picture minus its grey opening
    by a square a third of the picture wide, which keeps what is narrower than that
    (strokes) and removes what is wider (lighting gradients, shadows, the table around the
    page). A smaller picture (a digit already cropped) keeps the residual of its paper.
    """
    big = max(grey.shape) >= 64
    sigma = min(2.0, max(grey.shape) / 256) if big else 0.0
    smooth = ndimage.gaussian_filter(grey, sigma) if big else grey
    residual, noise, sign = _paper(smooth, source)
    if not big:
        return np.clip(sign * residual, 0.0, None), noise
    oriented = sign * smooth
    ink = oriented - ndimage.grey_opening(oriented, size=max(grey.shape) // _SHADOW_WIDTH)
    # the paper's noise after the blur, from the fine detail the blur removed (lighting-free)
    step = max(1, max(grey.shape) // 128)  # a median of ~128×128 samples is plenty
    detail = (grey - smooth)[::step, ::step]
    noise = _robust_std(detail) / (2.0 * math.sqrt(math.pi) * sigma)
    return np.clip(ink, 0.0, None), noise


def _paper(grey: NDArray[np.float64], source: str) -> tuple[NDArray[np.float64], float, float]:
    """(``grey`` minus the paper's level, the paper's noise, +1 for light ink or -1 for dark).

    Paper is what most of the picture is (:func:`_remove_lighting`), and ink the heavier tail
    of the rest, when that tail stands out of the paper's noise. Otherwise (a digit cropped
    to its ink: no level holds a clear majority) the picture must fall into two classes of
    grey levels (Otsu's separability η = σ²_between / σ² at least 0.8; noise gives 0.64), and
    paper is the class that holds most of the picture's border.
    """
    residual, noise = _remove_lighting(grey)
    tolerance = max(3.0 * noise, 0.5 * _MIN_CONTRAST)
    dark = -residual[residual < -tolerance].sum()
    light = residual[residual > tolerance].sum()
    stands_out = np.abs(residual).max() >= max(_NOISE_FACTOR * noise, _MIN_CONTRAST)
    if stands_out and max(dark, light) > 0 and np.mean(np.abs(residual) <= tolerance) >= 0.5:
        return residual, noise, (-1.0 if dark >= light else 1.0)
    threshold, separability = _otsu(grey)
    low = grey <= threshold
    edge = np.concatenate([low[0], low[-1], low[:, 0], low[:, -1]])
    paper = low if edge.mean() > 0.5 else ~low
    level = float(np.median(grey[paper]))
    if (separability < 0.8 or paper.all()
            or abs(np.median(grey[~paper]) - level) < _MIN_CONTRAST):
        raise DataError(f"{source} holds no digit: it has no ink darker or lighter than its "
                        "background")
    inner = ndimage.binary_erosion(paper, border_value=1)  # the anti-aliased edge is not noise
    noise = _robust_std(grey[inner]) if inner.any() else 0.0
    return grey - level, noise, (1.0 if edge.mean() > 0.5 else -1.0)


def _robust_std(values: NDArray[np.float64]) -> float:
    """The standard deviation of the bulk of ``values`` (1.4826 × the median absolute
    deviation: exact for a normal distribution, deaf to a minority of outliers)."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _remove_lighting(grey: NDArray[np.float64]):
    """``grey`` minus the paper's lighting, and the paper's noise (robust std).

    The lighting is a least-squares surface in (row, column) through the pixels within 2.5
    robust standard deviations of the previous round's surface, of growing order: a constant
    (their median), a plane, then a quadratic refitted until the paper stops changing. Each
    round refits on what the previous one called paper, so ink (the outliers) stops pulling
    the surface, even where it covers a third of the picture.
    """
    height, width = grey.shape
    step = -(-max(height, width) // 48)  # fit on at most 48×48 samples: plenty for 6 terms
    scale = max(height, width, 2)
    rows, cols = np.arange(height)[:, None] / scale, np.arange(width)[None, :] / scale
    A = _quadratic_terms(rows[::step], cols[:, ::step])  # (m, 6)
    g = grey[::step, ::step].reshape(-1)
    paper = np.ones(g.shape, dtype=bool)
    coef = np.zeros(6)
    for n_terms in (1, 3, 6, 6, 6, 6):
        Ap = A[paper, :n_terms]
        # normal equations by elementwise sums: BLAS threads cost more than they save here
        gram = (Ap[:, :, None] * Ap[:, None, :]).sum(axis=0) + 1e-9 * np.eye(n_terms)
        coef[:n_terms] = np.linalg.solve(gram, (Ap * g[paper, None]).sum(axis=0))
        res = g - (A * coef).sum(axis=1)
        centre = np.median(res[paper])
        noise = _robust_std(res[paper])
        paper = np.abs(res - centre) <= max(2.5 * noise, 0.01)
    c0, cr, cc, crr, crc, ccc = coef
    surface = c0 + centre + (cr + crr * rows) * rows + (cc + crc * rows + ccc * cols) * cols
    return grey - surface, float(noise)


def _quadratic_terms(rows: NDArray[np.float64], cols: NDArray[np.float64]):
    """(h·w, 6): 1, r, c, r², rc, c² at each pixel, from rows (h, 1) and columns (1, w)."""
    r, c = (a.reshape(-1) for a in np.broadcast_arrays(rows, cols))
    return np.stack([np.ones_like(r), r, c, r * r, r * c, c * c], axis=-1)


def _otsu(values: NDArray[np.float64], bins: int = 256) -> tuple[float, float]:
    """Otsu's threshold, the cut maximising the between-class variance ω0 ω1 (μ0 − μ1)², and
    the separability η: that variance over the total (1 for two pure levels)."""
    low, high = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=bins, range=(low, high if high > low else low + 1))
    p = counts / values.size
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)[:-1]
    mu0 = np.cumsum(p * mids)[:-1]
    mean = (p * mids).sum()
    between = (mean * w0 - mu0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    best = int(np.argmax(between))
    total = (p * (mids - mean) ** 2).sum()
    return float(edges[best + 1]), float(between[best] / total) if total > 0 else 0.0


def _digit_mask(ink: NDArray[np.float64], noise: float, source: str) -> NDArray[np.bool_]:
    """The pixels of the digit: Otsu's cut (above the noise floor), then the components that
    make the digit (see :func:`_digit_components`)."""
    floor = max(_MIN_CONTRAST, _NOISE_FACTOR * noise)
    if ink.max() < floor:
        raise DataError(f"{source} holds no digit: its darkest or lightest marks are within "
                        "the paper's noise")
    mask = ink > max(_otsu(ink)[0], floor / 2)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    keep = _digit_components(labels, n, ink, floor)
    if keep.size == 0:
        raise DataError(f"{source} holds no digit: its marks are too faint or too small")
    return np.isin(labels, keep)


def _digit_components(labels: NDArray[np.int_], n: int, ink: NDArray[np.float64],
                      floor: float) -> NDArray[np.int_]:
    """Labels of the digit: the largest contrasted component (preferring those that do not
    touch the border: the table around the page), and the sizeable pieces near it."""
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    contrasted = np.bincount(labels[ink >= floor], minlength=n + 1)[1:] > 0
    boxes = ndimage.find_objects(labels)
    side = max(labels.shape)
    extent = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes])
    inner = np.array([b[0].start > 0 and b[1].start > 0 and b[0].stop < labels.shape[0]
                      and b[1].stop < labels.shape[1] for b in boxes], dtype=bool)
    real = contrasted & (extent >= max(3, _MIN_DIGIT_SIDE * side))
    if not real.any():
        return np.zeros(0, dtype=int)
    candidates = real & inner if (real & inner).any() else real
    main = int(np.argmax(np.where(candidates, sizes, -1)))
    gap = np.array([_gap(boxes[main], b) for b in boxes])
    near = candidates & (sizes >= _PIECE_SIZE * sizes[main]) & (gap <= _PIECE_GAP * extent[main])
    return np.flatnonzero(near) + 1


def _gap(a: tuple[slice, slice], b: tuple[slice, slice]) -> int:
    """Pixels between two bounding boxes (0 when they overlap)."""
    return max(max(b[k].start - a[k].stop, a[k].start - b[k].stop, 0) for k in (0, 1))


def _crop(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The digit's bounding box, as ink 1 on 0. The digit is binary from here on, as NIST's
    were before MNIST's normalisation: the resizing anti-aliases it, and ink that a shadow
    made fainter counts as much as the rest."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1].astype(np.float64)


def _stroke_width(digit: NDArray[np.float64]) -> float:
    """The strokes' mean width, as a fraction of the digit's longer side: 2·area / boundary
    (a stroke of width w and length L has area wL and 2L boundary pixels)."""
    core = digit > 0.5
    boundary = core & ~ndimage.binary_erosion(core)
    return 2.0 * core.sum() / max(boundary.sum(), 1) / max(digit.shape)


def _shrink(digit: NDArray[np.float64], side: int) -> NDArray[np.float64]:
    """``digit`` resized (anti-aliased) so that its longer side is at most ``side``."""
    height, width = digit.shape
    factor = side / max(height, width)
    if factor >= 1:
        return digit
    return _resize(digit, max(1, round(height * factor)), max(1, round(width * factor)))


def _thicken(digit: NDArray[np.float64], width: float, wanted: float) -> NDArray[np.float64]:
    """A digit written with a thinner pen than the model's training digits (stroke ``width``
    below ``wanted``, both relative to the longer side), widened by a grey dilation with a
    disc; others unchanged."""
    radius = int(round((wanted - width) * max(digit.shape) / 2))
    if radius < 1:
        return digit
    r, c = np.mgrid[-radius: radius + 1, -radius: radius + 1]
    padded = np.pad(digit, radius)
    return ndimage.grey_dilation(padded, footprint=r * r + c * c <= radius * radius)


# --- rendering in a model's format -------------------------------------------------------


def _resize(box: NDArray[np.float64], height: int, width: int) -> NDArray[np.float64]:
    """Anti-aliased resize (Lanczos on floats), clipped to [0, 1]."""
    resized = Image.fromarray(box.astype(np.float32)).resize(
        (max(1, width), max(1, height)), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _render_mnist(digit: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.float64]:
    """MNIST's layout: the longer side in 20/28 of the field, aspect kept, the centre of mass
    at the field's centre (offset rounded, clamped so no ink leaves the field)."""
    height, width = digit.shape
    factor = round(_MNIST_BOX * min(shape)) / max(height, width)
    small = _resize(digit, round(height * factor), round(width * factor))
    centre = np.array(shape) / 2
    return _place(small, shape, centre - np.array(ndimage.center_of_mass(small)))


def _render_digits(digit: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.float64]:
    """scikit-learn's digits: the height fills a 32×32 bitmap (a wide digit: its width), the
    width at least half the height (as in 1793 of load_digits' 1797 images: its 1s have
    serifs), centred; then each 4×4 block's ink (0..1 as a fraction of 16 pixels) -> 8×8."""
    height, width = digit.shape
    factor = _DIGITS_BITMAP / max(height, width)
    rows = round(height * factor)
    bitmap = _resize(digit, rows, min(_DIGITS_BITMAP, max(round(width * factor), rows // 2)))
    offset = (np.array([_DIGITS_BITMAP] * 2) - bitmap.shape) / 2
    field = _place(bitmap, (_DIGITS_BITMAP, _DIGITS_BITMAP), offset)
    block = _DIGITS_BITMAP // shape[0]
    return field.reshape(shape[0], block, shape[1], block).mean(axis=(1, 3))


def _place(small: NDArray[np.float64], shape: tuple[int, int],
           offset: NDArray[np.float64]) -> NDArray[np.float64]:
    """``small`` pasted at ``offset`` (rounded; clamped inside) in a zero field of ``shape``."""
    height, width = small.shape
    top = min(max(round(offset[0]), 0), shape[0] - height)
    left = min(max(round(offset[1]), 0), shape[1] - width)
    field = np.zeros(shape)
    field[top: top + height, left: left + width] = small
    return field
