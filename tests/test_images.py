"""Tests of softmaxreg.images: pictures of digits -> MNIST-style 28×28 inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from softmaxreg.exceptions import DataError
from softmaxreg.images import image_to_mnist, load_images


def draw_digit(shape: str, ink: int = 0, paper: int = 255, size=(90, 120)) -> Image.Image:
    """A thick 'one' (a bar) or an 'L', off-centre on a picture larger than 28 px."""
    picture = Image.new("L", size, paper)
    pen = ImageDraw.Draw(picture)
    pen.rectangle([60, 15, 72, 95], fill=ink)  # the stem, right of centre
    if shape == "L":
        pen.rectangle([30, 80, 72, 95], fill=ink)
    return picture


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("shape", ["one", "L"])
def test_dark_ink_on_paper_becomes_an_mnist_digit(tmp_path, shape):
    path = tmp_path / f"{shape}.png"
    draw_digit(shape).save(path)
    out = image_to_mnist(path)
    assert out.shape == (784,) and out.dtype == np.uint8
    digit = out.reshape(28, 28)
    height, width = ink_box(digit)
    assert max(height, width) in (19, 20, 21) and height <= 21 and width <= 21
    centre = ndimage.center_of_mass(digit.astype(np.float64))
    np.testing.assert_allclose(centre, (14, 14), atol=1.0)
    assert digit.max() == 255  # ink is light, as in MNIST
    assert digit[:2].max() == digit[-2:].max() == digit[:, :2].max() == 0  # background is 0
    assert (digit == 0).mean() > 0.5


def test_aspect_ratio_is_kept():
    digit = image_to_mnist(np.asarray(draw_digit("one"))).reshape(28, 28)
    height, width = ink_box(digit)
    assert abs(height / width - 81 / 13) < 1.0  # the bar is 81 px tall and 13 px wide


def test_light_ink_on_dark_paper_gives_the_same_digit():
    dark_on_light = image_to_mnist(np.asarray(draw_digit("L")))
    light_on_dark = image_to_mnist(np.asarray(draw_digit("L", ink=255, paper=0)))
    np.testing.assert_array_equal(dark_on_light, light_on_dark)


def test_grey_paper_and_transparency(tmp_path):
    reference = image_to_mnist(np.asarray(draw_digit("L")))
    grey = image_to_mnist(np.asarray(draw_digit("L", ink=40, paper=200)))
    np.testing.assert_allclose(grey, reference, atol=2)
    alpha = np.asarray(draw_digit("L", ink=255, paper=0))
    rgba = np.zeros(alpha.shape + (4,), np.uint8)  # black ink, transparent elsewhere
    rgba[..., 3] = alpha
    Image.fromarray(rgba).save(tmp_path / "transparent.png")
    np.testing.assert_array_equal(image_to_mnist(tmp_path / "transparent.png"), reference)


def test_float_arrays_are_0_to_1():
    as_uint8 = np.asarray(draw_digit("one"))
    np.testing.assert_array_equal(image_to_mnist(as_uint8 / 255.0), image_to_mnist(as_uint8))


def test_mnist_digits_survive_a_round_trip():
    """Real MNIST digits, enlarged, inverted and pasted off-centre, come back close."""
    folder = os.environ.get("SOFTMAXREG_DATA")
    if not folder:
        pytest.skip("SOFTMAXREG_DATA is not set: point it at the folder of MNIST's IDX files")
    from softmaxreg.io import load_mnist

    digits = load_mnist(folder).X_test[:50].reshape(-1, 28, 28)
    correlations = []
    for digit in digits:
        big = Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC)
        picture = np.pad(np.asarray(big), ((10, 40), (60, 5)), constant_values=255)
        out = image_to_mnist(picture)
        correlations.append(np.corrcoef(out, digit.ravel())[0, 1])
    assert np.median(correlations) > 0.95 and min(correlations) > 0.5


def test_load_images(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.jpg"]
    draw_digit("one").save(paths[0])
    draw_digit("L").save(paths[1])
    stack = load_images(paths)
    assert stack.shape == (2, 784) and stack.dtype == np.uint8
    np.testing.assert_array_equal(stack[0], image_to_mnist(paths[0]))
    assert load_images([]).shape == (0, 784)


def test_errors(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot read image .*notes.png"):
        image_to_mnist(tmp_path / "notes.png")
    with pytest.raises(DataError, match="cannot read image .*missing.png"):
        image_to_mnist(tmp_path / "missing.png")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank.png holds no digit"):
        image_to_mnist(tmp_path / "blank.png")
    with pytest.raises(DataError, match="shape"):
        image_to_mnist(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        image_to_mnist(np.full((4, 4), 2.0))
