"""Photos of digits that work (issue 12, point 6), measured end to end.

MNIST test digits are turned into "photos" — upscaled to 200–320 px, dark ink on light paper
or the reverse, Gaussian noise of σ up to 15/255, a lighting gradient of 60 grey levels across
the picture, off-centre by up to a fifth of the width — written as PNG files and classified
by ``softmaxreg predict`` with the default MNIST network (``softmaxreg train --dataset mnist
--model network``). The target: accuracy within 3 points of the same digits' clean accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from softmaxreg.cli import main
from softmaxreg.io import read_idx
from softmaxreg.persistence import load_bundle

pytestmark = pytest.mark.slow

N_RANDOM = 1000  # photos with random transformations, each within the target's bounds
N_WORST = 300  # photos with every transformation at its bound at once
TOLERANCE = 0.03


def make_photo(digit: np.ndarray, rng: np.random.Generator, *, dark_ink: bool, noise: float,
               offset: tuple[float, float], gradient: float = 60.0) -> np.ndarray:
    """An MNIST digit (28×28, ink 255 on 0) as a uint8 photo of W×W, W in [200, 320].

    The digit's 28×28 field is scaled (bicubic) to 0.6 W and its centre moved by ``offset``
    × W from the picture's centre (|offset| ≤ 0.2 keeps it inside); paper and ink levels are
    drawn at random; the lighting is a ramp of ``gradient`` levels across the picture in a
    random direction; then Gaussian noise of std ``noise`` levels.
    """
    width = int(rng.integers(200, 321))
    field = round(0.6 * width)
    big = np.asarray(Image.fromarray(digit).resize((field, field), Image.Resampling.BICUBIC))
    top, left = (np.rint((width - field) / 2 + np.asarray(offset) * width)).astype(int)
    ink = np.zeros((width, width))
    ink[top: top + field, left: left + field] = big / 255.0
    paper, pen = (rng.uniform(190, 235), rng.uniform(10, 60)) if dark_ink else (
        rng.uniform(10, 50), rng.uniform(190, 245))
    angle = rng.uniform(0, 2 * np.pi)
    r, c = np.mgrid[0:width, 0:width] / (width - 1)
    ramp = r * np.sin(angle) + c * np.cos(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min()) - 0.5  # spans exactly 1
    picture = paper + (pen - paper) * ink + gradient * ramp + rng.normal(0, noise, ink.shape)
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def _test_digits(mnist_dir, n):
    X = read_idx(next(mnist_dir.glob("t10k-images*")))[:n].reshape(n, 28, 28)
    y = read_idx(next(mnist_dir.glob("t10k-labels*")))[:n]
    return X, np.asarray(y)


def _predict_files(model, pictures, folder, capsys) -> np.ndarray:
    """Write the pictures as PNG files and classify them with ``softmaxreg predict``."""
    paths = []
    for i, picture in enumerate(pictures):
        paths.append(str(folder / f"photo{i:04d}.png"))
        Image.fromarray(picture).save(paths[-1])
    capsys.readouterr()
    assert main(["predict", str(model), *paths]) == 0
    labels = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    return np.array([int(labels[p].split(" ")[0]) for p in paths])


@pytest.fixture(scope="module")
def mnist_network(mnist_dir, tmp_path_factory):
    """The default MNIST network, trained as the README's command does."""
    out = tmp_path_factory.mktemp("model") / "mnist.npz"
    assert main(["train", "--dataset", "mnist", "--model", "network", "--quiet",
                 "--out", str(out)]) == 0
    return out


def _clean_hits(model, X, y) -> np.ndarray:
    estimator, scaling, _ = load_bundle(model)
    return estimator.predict(scaling.transform(X.reshape(len(X), -1))) == y


def test_photos_with_random_transformations(mnist_network, mnist_dir, tmp_path, capsys):
    X, y = _test_digits(mnist_dir, N_RANDOM)
    clean = _clean_hits(mnist_network, X, y)
    rng = np.random.default_rng(12)
    pictures, dark, noise, shift = [], [], [], []
    for digit in X:
        dark.append(bool(rng.integers(2)))
        noise.append(rng.uniform(0, 15))
        offset = rng.uniform(-0.2, 0.2, 2)
        shift.append(np.abs(offset).max())
        pictures.append(make_photo(digit, rng, dark_ink=dark[-1], noise=noise[-1],
                                   offset=tuple(offset)))
    photo = _predict_files(mnist_network, pictures, tmp_path, capsys) == y
    dark, noise, shift = np.array(dark), np.array(noise), np.array(shift)
    groups = {"all": np.ones(len(y), bool), "dark ink on light paper": dark,
              "light ink on dark paper": ~dark, "noise σ < 5/255": noise < 5,
              "noise σ 5-10/255": (noise >= 5) & (noise < 10), "noise σ 10-15/255": noise >= 10,
              "offset < 1/10 width": shift < 0.1, "offset 1/10 - 1/5 width": shift >= 0.1}
    with capsys.disabled():
        print(f"\nMNIST photos (n={len(y)}, gradient 60 levels in every photo): "
              "group, n, clean accuracy, photo accuracy")
        for name, rows in groups.items():
            print(f"  {name:26s} {rows.sum():5d}  {clean[rows].mean():.4f}  "
                  f"{photo[rows].mean():.4f}")
    for name in ("all", "dark ink on light paper", "light ink on dark paper"):
        rows = groups[name]
        assert photo[rows].mean() >= clean[rows].mean() - TOLERANCE, name


def test_photos_with_every_transformation_at_its_bound(mnist_network, mnist_dir, tmp_path,
                                                        capsys):
    """σ = 15/255, the gradient, and the digit a fifth of the width off in both directions."""
    X, y = _test_digits(mnist_dir, N_WORST)
    clean = _clean_hits(mnist_network, X, y)
    rng = np.random.default_rng(13)
    pictures = [make_photo(digit, rng, dark_ink=bool(i % 2), noise=15.0,
                           offset=tuple(rng.choice([-0.2, 0.2], 2)))
                for i, digit in enumerate(X)]
    photo = _predict_files(mnist_network, pictures, tmp_path, capsys) == y
    with capsys.disabled():
        print(f"\nMNIST photos at the bounds (n={len(y)}): clean {clean.mean():.4f}, "
              f"photos {photo.mean():.4f}")
    assert photo.mean() >= clean.mean() - TOLERANCE
