"""MNIST end to end with the command line's defaults (real data from SOFTMAXREG_DATA)."""

import numpy as np
import pytest

from softmaxreg.cli import main
from softmaxreg.io import read_idx
from softmaxreg.persistence import load_bundle

pytestmark = pytest.mark.slow


def _test_split(mnist_dir):
    """The 10k test images and labels, read straight from the IDX files."""
    X = read_idx(next(mnist_dir.glob("t10k-images*"))).reshape(10000, 784)
    y = read_idx(next(mnist_dir.glob("t10k-labels*")))
    return X, y


@pytest.mark.parametrize("model, floor", [("softmax", 0.925), ("network", 0.978)])
def test_cli_defaults_reach_the_accuracy_floors(mnist_dir, tmp_path, capsys, model, floor):
    out = tmp_path / f"{model}.npz"
    argv = ["train", "--dataset", "mnist", "--model", model, "--quiet", "--out", str(out)]
    assert main(argv) == 0
    estimator, scaling, meta = load_bundle(out)
    X, y = _test_split(mnist_dir)
    np.testing.assert_allclose(scaling.transform(X[:5]), X[:5] / 255, rtol=1e-6)  # auto: [0, 1]
    accuracy = float(np.mean(estimator.predict(X / np.float32(255)) == y))
    assert accuracy >= floor
    if model == "network":
        assert meta["training"]["hidden"] == [128, 64] and len(meta["history"]["loss"]) <= 15
    print(f"MNIST {model}: test accuracy {accuracy:.4f}, fit {meta['fit_seconds']:.1f} s")
