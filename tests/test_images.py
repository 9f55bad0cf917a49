"""Tests of softmaxreg.images: pictures of digits -> the inputs of an image model.

The references are independent of the code under test: the digit drawn on clean paper (each
disturbance must give back the same 28×28 digit), scipy's centre of mass, a brute-force
Otsu threshold, scikit-learn's ``load_digits`` for the 8×8 format, and MNIST itself.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from softmaxreg import images
from softmaxreg.cli import main
from softmaxreg.exceptions import DataError
from softmaxreg.images import digit_format, image_to_digit, image_to_mnist, load_images
from softmaxreg.io import load_dataset
from softmaxreg.workflow import TrainSettings, predict, split_dataset, train


def draw_digit(shape: str, ink: int = 0, paper: int = 255, size=(90, 120)) -> Image.Image:
    """A thick 'one' (a bar) or an 'L', off-centre on a picture larger than 28 px."""
    picture = Image.new("L", size, paper)
    pen = ImageDraw.Draw(picture)
    pen.rectangle([60, 15, 72, 95], fill=ink)  # the stem, right of centre
    if shape == "L":
        pen.rectangle([30, 80, 72, 95], fill=ink)
    return picture


def draw_four(width: int = 18) -> np.ndarray:
    """A pen-drawn '4' (two strokes, grey levels 0..1, ink 1) on a 240 px square."""
    picture = Image.new("L", (240, 240), 0)
    pen = ImageDraw.Draw(picture)
    for stroke in [[(150, 40), (60, 150), (180, 150)], [(150, 40), (150, 210)]]:
        pen.line(stroke, fill=255, width=width, joint="curve")
    return np.asarray(picture.filter(ImageFilter.GaussianBlur(1)), dtype=np.float64) / 255


def photograph(ink: np.ndarray, *, dark_ink=True, noise=0.0, gradient=0.0, seed=0) -> np.ndarray:
    """``ink`` (0..1) as a uint8 photo: paper 220 / ink 30 (or the reverse), a lighting ramp
    of ``gradient`` grey levels across the picture, Gaussian noise of std ``noise`` levels."""
    paper, pen = (220.0, 30.0) if dark_ink else (30.0, 220.0)
    picture = paper + (pen - paper) * ink
    picture += gradient * (np.linspace(-0.5, 0.5, ink.shape[1])[None, :])
    picture += np.random.default_rng(seed).normal(0.0, noise, ink.shape)
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


@pytest.fixture(scope="module")
def clean_four() -> np.ndarray:
    return image_to_mnist(photograph(draw_four()))


# --- the MNIST layout ---------------------------------------------------------------------


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
    assert abs(height / width - 81 / 13) < 1.5  # the bar is 81 px tall and 13 px wide


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
    np.testing.assert_allclose(image_to_mnist(rgba), reference, atol=1)  # the array route


@pytest.mark.parametrize(("orientation", "turns"), [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_a_camera_rotation_in_exif_is_applied(tmp_path, orientation, turns):
    """EXIF orientation 6 is a picture to be turned 90° clockwise to stand upright."""
    stored = draw_digit("L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "turned.png", exif=exif)
    upright = np.rot90(np.asarray(stored), turns)
    np.testing.assert_array_equal(image_to_mnist(tmp_path / "turned.png"), image_to_mnist(upright))


def test_float_arrays_are_0_to_1():
    as_uint8 = np.asarray(draw_digit("one"))
    np.testing.assert_array_equal(image_to_mnist(as_uint8 / 255.0), image_to_mnist(as_uint8))


# --- finding the ink: each disturbance gives back the clean digit ------------------------


@pytest.mark.parametrize("noise", [8.0, 15.0])
def test_noise_does_not_stretch_the_crop(clean_four, noise):
    """σ = 8/255 used to count speckles as ink: the box grew and the digit shrank."""
    out = image_to_mnist(photograph(draw_four(), noise=noise)).reshape(28, 28)
    assert max(ink_box(out)) in (19, 20, 21)
    assert correlation(out, clean_four) > 0.95


def test_faint_pencil_under_noise(clean_four):
    """40 grey levels of contrast under σ = 15 levels of noise: found after the denoising."""
    rng = np.random.default_rng(0)
    picture = 200 - 40 * draw_four() + rng.normal(0, 15, (240, 240))
    out = image_to_mnist(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
    assert correlation(out, clean_four) > 0.97


def test_blue_ballpoint_on_colour_paper_jpeg(tmp_path, clean_four):
    ink = draw_four()[..., None]
    paper, pen = np.array([238, 232, 215]), np.array([30, 40, 140])
    picture = np.clip(paper + (pen - paper) * ink, 0, 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "four.jpg", quality=80)
    assert correlation(image_to_mnist(tmp_path / "four.jpg"), clean_four) > 0.97


def test_a_108_megapixel_phone_jpeg_is_read_at_reduced_size(tmp_path):
    """A 9000×12000 JPEG (a 108 MP phone camera) is decoded at 1/8 (1125×1500), within the
    pixel limit: it was refused as '9000×12000 pixels, more than the 100 million', after
    Pillow's DecompressionBombWarning. It gives the digit of the same photo at 750×1000, with
    no warning, and Pillow's bound is the user's again after. Measured: 0.07 s and 14 MB more
    peak memory (0.32 s for a 33 MB photo of noisy paper)."""
    import warnings

    photo = Image.fromarray(photograph(draw_four(), noise=4.0))
    photo.resize((9000, 12000), Image.Resampling.BILINEAR).save(tmp_path / "big.jpg",
                                                                 quality=90)
    small = image_to_mnist(np.asarray(photo.resize((750, 1000), Image.Resampling.BILINEAR)))
    bound = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digit = image_to_mnist(tmp_path / "big.jpg")
    assert caught == [] and Image.MAX_IMAGE_PIXELS == bound
    assert correlation(digit, small) > 0.97


def test_a_90_megapixel_tiff_in_one_strip_is_read_without_pillows_warning(tmp_path):
    """Pillow checks a TIFF's strip again while decoding, against its own bound (89 MP):
    its warning is not the user's business, the picture being within ours."""
    import warnings

    picture = Image.new("L", (9000, 10000), 255)
    ImageDraw.Draw(picture).rectangle([4000, 2000, 5000, 8000], fill=0)  # a 1
    picture.save(tmp_path / "one_strip.tif", compression="tiff_deflate", strip_size=2**31 - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digit = image_to_mnist(tmp_path / "one_strip.tif").reshape(28, 28)
    assert caught == [] and ink_box(digit > 0)[0] == 20


def _png_declaring(path, width: int, height: int) -> None:
    """A small PNG whose header (IHDR, CRC fixed) declares ``width`` × ``height``."""
    import struct
    import zlib

    Image.new("L", (8, 8), 255).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("width", "height", "message"), [
    (20000, 15000, "is 20000×15000 pixels, more than"),  # 300 MP
    (70000, 95000, "is 70000×95000 pixels, more than"),  # where Pillow warns while we open
    (2**31 - 1, 2**31 - 1, "has more than"),  # past the bound Pillow refuses by itself
])
def test_a_huge_png_is_refused_naming_one_limit(tmp_path, capsys, width, height, message):
    """A 300 MP PNG was refused with Pillow's '178956970' in the message beside ours."""
    import warnings

    path = tmp_path / "huge.png"
    _png_declaring(path, width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as error:
            image_to_mnist(path)
    assert caught == []
    assert str(error.value) == (f"{path} {message} the 100 million pixels a picture may have")


def test_lighting_gradient_is_removed(clean_four):
    for gradient in (60.0, -60.0, 120.0):
        out = image_to_mnist(photograph(draw_four(), gradient=gradient, noise=5.0))
        assert correlation(out, clean_four) > 0.95, gradient


def test_a_shadow_is_not_ink(clean_four):
    """A soft dark shadow over a third of the page (a hand, a phone) is removed."""
    picture = photograph(draw_four(), noise=4.0).astype(np.float64)
    shade = np.zeros(picture.shape)
    shade[150:, :110] = 1.0
    picture *= 1 - 0.45 * ndimage.gaussian_filter(shade, 15)
    out = image_to_mnist(np.clip(picture, 0, 255).astype(np.uint8))
    assert correlation(out, clean_four) > 0.9


def test_inverted_polarity_with_noise_and_gradient(clean_four):
    out = image_to_mnist(photograph(draw_four(), dark_ink=False, noise=15.0, gradient=60.0))
    assert correlation(out, clean_four) > 0.95


def test_off_centre_digit(clean_four):
    """Shifted by a fifth of the picture's width (and height): the same digit, centred by
    mass."""
    for dy, dx in [(-80, 80), (80, -80), (70, 70)]:
        ink = np.zeros((400, 400))
        ink[80 + dy: 320 + dy, 80 + dx: 320 + dx] = draw_four()
        out = image_to_mnist(photograph(ink, noise=8.0))
        assert correlation(out, clean_four) > 0.95, (dy, dx)
        centre = ndimage.center_of_mass(out.reshape(28, 28).astype(np.float64))
        np.testing.assert_allclose(centre, (14, 14), atol=0.6)


def test_a_table_around_the_page_is_not_the_digit(clean_four):
    """Dark borders (the table the page lies on) touch the picture's edge; the digit does not."""
    picture = photograph(draw_four(), noise=5.0)
    picture[:, :25] = 20
    picture[-18:, :] = 25
    assert correlation(image_to_mnist(picture), clean_four) > 0.95


def test_thin_pen_strokes_are_widened_to_mnist_strokes(monkeypatch):
    """A 3 px pen on a 240 px page would be a faint hairline at 28×28; MNIST's strokes are
    about 2-3 px wide in the 20 px box."""
    thin = image_to_mnist(photograph(draw_four(width=3))).reshape(28, 28)
    thick = image_to_mnist(photograph(draw_four())).reshape(28, 28)
    for digit in (thin, thick):
        assert 1.5 <= images._stroke_width(digit / 255.0) * 20 <= 4.0
    assert correlation(thin, thick) > 0.8
    monkeypatch.setattr(images, "_MNIST_STROKE", 0.0)  # no widening: the hairline
    hairline = image_to_mnist(photograph(draw_four(width=3))).reshape(28, 28)
    assert hairline.sum() < 0.6 * thin.sum()


def test_a_broken_stroke_keeps_both_pieces():
    ink = draw_four()
    ink[100:112, :] = 0  # a gap across the whole digit: two components
    digit = image_to_mnist(photograph(ink)).reshape(28, 28)
    assert max(ink_box(digit)) in (19, 20, 21)
    assert ink_box(digit)[0] >= 19  # both pieces: the full height


def test_otsu_threshold_against_brute_force():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.2, 0.05, 700), rng.normal(0.7, 0.1, 300)])
    threshold, separability = images._otsu(values, bins=1024)

    def between(t):  # ω0 ω1 (μ0 − μ1)², by definition
        low, high = values[values <= t], values[values > t]
        return len(low) * len(high) / values.size ** 2 * (low.mean() - high.mean()) ** 2

    best = max(between(t) for t in np.sort(values)[1:-1])  # every possible cut
    assert between(threshold) >= 0.999 * best
    np.testing.assert_allclose(separability, best / values.var(), atol=0.01)
    noise_only = images._otsu(rng.normal(0.5, 0.1, 10_000))[1]
    np.testing.assert_allclose(noise_only, 2 / np.pi, atol=0.02)  # one Gaussian: 2/π


# --- 16-bit and float pictures ----------------------------------------------------------


def test_16_bit_png_and_arrays_by_their_range(tmp_path):
    """16-bit greyscale PNGs used to be clipped by the conversion and 'hold no digit'."""
    reference = image_to_mnist(np.asarray(draw_digit("L")))
    levels = np.asarray(draw_digit("L"), dtype=np.float64) / 255  # 0 ink, 1 paper
    wide = np.rint(12_000 + 30_000 * levels).astype(np.uint16)  # ink 12000, paper 42000
    Image.fromarray(wide).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as check:
        assert check.mode in ("I;16", "I")  # a real 16-bit file
    np.testing.assert_allclose(image_to_mnist(tmp_path / "sixteen.png"), reference, atol=2)
    np.testing.assert_allclose(image_to_mnist(wide), reference, atol=2)


def test_float_tiff_by_its_range(tmp_path):
    reference = image_to_mnist(np.asarray(draw_digit("L")))
    levels = np.asarray(draw_digit("L"), dtype=np.float32) / 255
    for name, scale in (("unit.tif", 1.0), ("eight_bit.tif", 255.0)):
        Image.fromarray(levels * np.float32(scale)).save(tmp_path / name)
        with Image.open(tmp_path / name) as check:
            assert check.mode == "F"
        np.testing.assert_allclose(image_to_mnist(tmp_path / name), reference, atol=2)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "noise", "gradient", "shadow", "speck", "tiny"])
def test_blank_pictures_are_refused(tmp_path, kind):
    rng = np.random.default_rng(1)
    picture = np.full((200, 240), 225.0)
    if kind == "noise":
        picture += rng.normal(0, 15, picture.shape)
    elif kind == "gradient":
        picture += np.linspace(-40, 40, 240)[None, :] + rng.normal(0, 4, picture.shape)
    elif kind == "shadow":
        shade = np.zeros(picture.shape)
        shade[120:, :100] = 1.0
        picture *= 1 - 0.45 * ndimage.gaussian_filter(shade, 20)
    elif kind == "speck":  # a dust speck: 3 px on a 240 px page
        picture[100:103, 50:53] = 20
    elif kind == "tiny":  # a digit 7 px tall on a 240 px page: resized, nothing is left
        picture[90:97, 120:122] = 20
    path = tmp_path / f"{kind}.png"
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path)
    with pytest.raises(DataError, match=f"{kind}.png holds no digit"):
        image_to_mnist(path)
    with pytest.raises(DataError, match=f"{kind}.png holds no digit"):
        image_to_digit(path, (8, 8), 16)


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
    with pytest.raises(DataError, match="0..65535"):
        image_to_mnist(np.full((4, 4), 300, dtype=np.int32))


def test_a_truncated_or_missing_picture_is_named_in_plain_words(tmp_path, digits_model,
                                                                capsys):
    """They gave 'OSError: image file is truncated (5 bytes not processed)' and
    'FileNotFoundError: [Errno 2] No such file or directory: ...'. On the command line each
    bad picture is one line on stderr, and the good one is still classified."""
    good = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four(), noise=8.0)).save(good)
    Image.open(good).save(tmp_path / "whole.jpg", quality=90)
    for cut, ext in ((0.5, "jpg"), (0.9, "png")):
        data = (tmp_path / ("whole.jpg" if ext == "jpg" else "four.png")).read_bytes()
        (tmp_path / f"cut.{ext}").write_bytes(data[: int(len(data) * cut)])
    truncated = "the file is cut short (truncated): it ends before the picture does"
    for name, reason in (("cut.jpg", truncated), ("cut.png", truncated),
                         ("missing.png", "No such file or directory")):
        with pytest.raises(DataError) as error:
            image_to_mnist(tmp_path / name)
        assert str(error.value) == f"cannot read image {tmp_path / name}: {reason}"
    capsys.readouterr()
    paths = [str(tmp_path / name) for name in ("cut.jpg", "four.png", "missing.png")]
    assert main(["predict", str(digits_model), *paths]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good}: 4 (" + out.split(" (", 1)[1].strip()]
    assert err.splitlines() == [
        f"softmaxreg predict: error: cannot read image {paths[0]}: {truncated}",
        f"softmaxreg predict: error: cannot read image {paths[2]}: No such file or directory"]


def test_load_images(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.jpg"]
    draw_digit("one").save(paths[0])
    draw_digit("L").save(paths[1])
    stack = load_images(paths)
    assert stack.shape == (2, 784) and stack.dtype == np.uint8
    np.testing.assert_array_equal(stack[0], image_to_mnist(paths[0]))
    assert load_images([]).shape == (0, 784)
    assert load_images(paths, (8, 8), 16).shape == (2, 64)


# --- the model's format -----------------------------------------------------------------


def test_digit_format_follows_the_model():
    assert digit_format(784) == ((28, 28), 255)
    assert digit_format(64) == ((8, 8), 16)  # scikit-learn's digits
    assert digit_format(64, [8, 8]) == ((8, 8), 16)
    assert digit_format(256) == ((16, 16), 255)
    assert digit_format(600, [20, 30]) == ((20, 30), 255)
    with pytest.raises(DataError, match="takes 4 features, not images"):
        digit_format(4)
    with pytest.raises(DataError, match="takes 600 features"):
        digit_format(600)


def test_digit_format_takes_the_range_the_model_was_trained_on():
    assert digit_format(64, None, 1.0) == ((8, 8), 1.0)  # load_digits / 16
    assert digit_format(64, [8, 8], 16.0) == ((8, 8), 16)  # the format's own: uint8 levels
    assert digit_format(784, None, 255.0) == ((28, 28), 255)
    assert digit_format(784, None, 1.0) == ((28, 28), 1.0)  # MNIST / 255
    assert digit_format(64, None, 0.0) == ((8, 8), 16)  # all-zero training data: no range
    picture = photograph(draw_four(), noise=8.0)
    levels = image_to_digit(picture, (8, 8), 16)
    scaled = image_to_digit(picture, (8, 8), 1.0)
    assert scaled.dtype == np.float64 and levels.max() == 16
    np.testing.assert_array_equal(scaled, levels / 16.0)
    np.testing.assert_array_equal(image_to_digit(picture, (8, 8), 255.0), levels * 255.0 / 16)
    np.testing.assert_array_equal(image_to_mnist(picture) / 255.0,
                                  image_to_digit(picture, (28, 28), 1.0))


def test_a_model_trained_on_digits_over_16_reads_a_photo_of_a_four(tmp_path):
    """The README's Python route, ``SoftmaxRegression(C=1.0).fit(X / 16, y)`` saved with
    ``.save``: the photo is made in 0..1, the range the file records, as the CLI's predict
    makes it (``digit_format`` of the file's ``image_shape`` and ``input_max_abs``, then
    ``image_to_digit``). In 0..16 it was read as a 1 with probability 1.000."""
    from sklearn.datasets import load_digits

    from softmaxreg import SoftmaxRegression
    from softmaxreg.persistence import load_bundle

    X, y = load_digits(return_X_y=True)
    SoftmaxRegression(C=1.0).fit(X / 16, y).save(tmp_path / "m.npz")
    path = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four(), noise=8.0)).save(path)
    estimator, scaling, meta = load_bundle(tmp_path / "m.npz")
    assert scaling is None and meta["input_max_abs"] == 1.0
    shape, max_value = digit_format(estimator.n_features_in_, meta.get("image_shape"),
                                    meta.get("input_max_abs"))
    row = image_to_digit(path, shape, max_value)
    assert 0.75 <= row.max() <= 1.0  # the training rows' range, not load_digits' 0..16
    assert estimator.predict(row[None]).tolist() == [4]


def test_the_cli_reads_the_photo_as_python_does_for_a_model_trained_on_digits_over_16(
        tmp_path, capsys):
    """``softmaxreg predict`` on the X / 16 model's file: the 4, with the probabilities Python
    gives the picture made in the file's recorded range (0..1)."""
    import json

    from sklearn.datasets import load_digits

    from softmaxreg import SoftmaxRegression
    from softmaxreg.cli import main

    X, y = load_digits(return_X_y=True)
    model = SoftmaxRegression(C=1.0).fit(X / 16, y)
    model.save(tmp_path / "m.npz")
    path = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four(), noise=8.0)).save(path)
    assert main(["predict", str(tmp_path / "m.npz"), str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predicted"] == [4]
    expected = model.predict_proba(image_to_digit(path, (8, 8), 16)[None] / 16.0)
    np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-6, atol=1e-9)


def test_8x8_output_has_load_digits_format():
    """load_digits: the ink spans all 8 rows, 4 to 8 columns, values 0..16, centred."""
    from sklearn.datasets import load_digits

    reference = load_digits().images
    digit = image_to_digit(photograph(draw_four(), noise=8.0), (8, 8), 16)
    assert digit.shape == (64,) and digit.max() <= 16 and digit.max() >= 12
    image = digit.reshape(8, 8)
    height, width = ink_box(image > 0)
    assert height == 8 and 4 <= width <= 8
    centre = ndimage.center_of_mass(image.astype(np.float64))
    typical = np.array([ndimage.center_of_mass(im) for im in reference])
    assert np.all(np.abs(centre - typical.mean(axis=0)) < 3 * typical.std(axis=0) + 0.1)
    assert 0.5 * reference.sum(axis=(1, 2)).min() < image.sum() < reference.sum(axis=(1, 2)).max()
    bar = image_to_digit(np.asarray(draw_digit("one")), (8, 8), 16).reshape(8, 8)
    assert ink_box(bar > 0)[1] >= 4  # never narrower than half its height, as in load_digits


def _bitmap(image: np.ndarray) -> np.ndarray:
    """A binary 32×32 bitmap for a load_digits image (8×8, 0..16: the on-pixels of each 4×4
    block of such a bitmap): the image upscaled smoothly, its brightest ``image.sum()``
    pixels on."""
    smooth = np.asarray(Image.fromarray(image.astype(np.float32)).resize(
        (32, 32), Image.Resampling.BICUBIC))
    n_on = max(1, int(round(image.sum())))
    return smooth >= np.sort(smooth.ravel())[-n_on]


def _bitmap_photo(bitmap: np.ndarray, rng) -> np.ndarray:
    """The bitmap drawn at 60-100 px on a 120-200 px page, off-centre, either polarity,
    noise up to σ = 15 levels, a 60-level gradient."""
    size = int(rng.integers(120, 201))
    side = size // 2
    ink = np.zeros((size, size))
    top, left = rng.integers(0, size - side, 2)
    ink[top: top + side, left: left + side] = np.asarray(Image.fromarray(
        bitmap.astype(np.uint8) * 255).resize((side, side), Image.Resampling.NEAREST)) / 255
    return photograph(ink, dark_ink=bool(rng.integers(2)), noise=rng.uniform(0, 15),
                      gradient=60.0 * rng.choice([-1, 1]), seed=int(rng.integers(1 << 30)))


def test_photos_of_load_digits_classified_by_a_load_digits_model(tmp_path):
    """The 8×8 format checked by the model it is for: the CLI's default model (softmax
    regression on load_digits) classifies photos of its held-out digits as well as the 32×32
    bitmaps they stand for (within 3 points), and within 5 points of the 8×8 digits
    themselves (the bitmaps, rebuilt from the counts, already cost about 3)."""
    settings = TrainSettings(progress=False)
    model = tmp_path / "digits.npz"
    result = train(settings, out=model)
    split = split_dataset(load_dataset("digits"), settings)
    X_test, y_test = np.asarray(split.X_test), np.asarray(split.y_test)

    def accuracy(X):
        return float(np.mean(result.estimator.predict(result.scaling.transform(X)) == y_test))

    bitmaps = [_bitmap(image) for image in X_test.reshape(-1, 8, 8)]
    counts = np.array([b.reshape(8, 4, 8, 4).sum(axis=(1, 3)).ravel() for b in bitmaps])
    rng = np.random.default_rng(0)
    paths = []
    for i, bitmap in enumerate(bitmaps):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(_bitmap_photo(bitmap, rng)).save(paths[-1])
    out = predict(model, paths)
    assert out["errors"] == [] and out["inputs"] == paths
    photo = float(np.mean(np.array(out["classes"])[:, 0] == y_test))
    clean, rebuilt = accuracy(X_test), accuracy(counts)
    print(f"load_digits (n={len(paths)}): digits {clean:.4f}, their bitmaps {rebuilt:.4f}, "
          f"photos of the bitmaps {photo:.4f}")
    assert photo >= rebuilt - 0.03 and photo >= clean - 0.05


# --- predict: per-image reporting ---------------------------------------------------------


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "digits.npz"
    assert main(["train", "--quiet", "--out", str(path)]) == 0
    return path


def test_predict_reports_each_image(tmp_path, digits_model, capsys):
    """A blank image among several: the others are classified, the blank gets its own error
    line, and the status is 1 (some input failed)."""
    capsys.readouterr()
    good = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four(), noise=8.0)).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 230).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    argv = ["predict", str(digits_model), str(good), str(blank), str(broken)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{good}: 4 (")
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2
    assert "blank.png holds no digit" in errors[0] and "broken.jpg" in errors[1]
    out = predict(digits_model, [str(good), str(blank)])
    assert out["inputs"] == [str(good)] and [name for name, _ in out["errors"]] == [str(blank)]
    assert main(["predict", str(digits_model), str(good)]) == 0
    assert main(["predict", str(digits_model), str(blank)]) == 1  # nothing classified
    assert "blank.png holds no digit" in capsys.readouterr().err
    with pytest.raises(DataError, match="blank.png holds no digit"):
        predict(digits_model, [str(blank)])


def test_predict_with_a_model_of_another_image_shape(tmp_path, digits_model, capsys):
    """The README's default model is trained on 8×8 digits (64 features, 0..16): a photo is
    made in that format (it used to fail: 'the data have 784 features, ... 64')."""
    capsys.readouterr()
    path = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four(), dark_ink=False, noise=8.0)).save(path)
    assert main(["predict", str(digits_model), str(path), "--top-k", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 4 (")


def test_predict_images_with_a_model_that_takes_no_images(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    rng = np.random.default_rng(0)
    np.savetxt(data, np.column_stack([rng.normal(size=(40, 3)), np.arange(40) % 2]),
               delimiter=",")
    model = tmp_path / "rows.npz"
    assert main(["train", "--dataset", str(data), "--quiet", "--out", str(model)]) == 0
    path = tmp_path / "four.png"
    Image.fromarray(photograph(draw_four())).save(path)
    assert main(["predict", str(model), str(path)]) == 1
    assert "four.png: the model takes 3 features, not images of digits" in capsys.readouterr().err


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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_or_folder_is_refused_without_waiting(tmp_path):
    import signal

    os.mkfifo(tmp_path / "x.png")
    (tmp_path / "dir.png").mkdir()
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("waited on the FIFO"))
    signal.alarm(10)
    try:
        for name in ("x.png", "dir.png"):
            with pytest.raises(DataError, match=f"^cannot read image [^:]*{name}: not a regu"):
                image_to_mnist(tmp_path / name)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
