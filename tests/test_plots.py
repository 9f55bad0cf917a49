"""Figures: every figure for softmax regression (lbfgs) and a network (adam) on 2, 10 and 100
classes of synthetic 8×8 images, read back as matplotlib objects (titles, colour bars and
their labels, tick labels, cell numbers, colour limits) and checked against independent
references: the estimator's own recorded curves and scikit-learn's confusion matrix."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from softmaxreg import plots  # noqa: E402
from softmaxreg.cli import main  # noqa: E402
from softmaxreg.estimators import SoftmaxNetwork, SoftmaxRegression  # noqa: E402
from softmaxreg.persistence import load_bundle, save  # noqa: E402
from softmaxreg.workflow import FIGURES, figures, plot  # noqa: E402

SHAPE = (8, 8)


def _images(K: int, n_per_class: int, seed: int):
    """K classes of 8×8 'images': a random template per class plus noise that makes a few
    rows ambiguous (so that there are mistakes to show)."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(0).normal(size=(K, 64))
    y = np.repeat(np.arange(K), n_per_class)
    X = templates[y] + rng.normal(scale=1.6 if K > 2 else 4.0, size=(len(y), 64))
    return X, y


def _estimator(kind: str):
    if kind == "softmax":
        return SoftmaxRegression(solver="lbfgs", max_iter=40)
    return SoftmaxNetwork(hidden_layer_sizes=(16,), solver="adam", max_iter=6,
                          early_stopping=True, random_state=0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(kind, K) -> (model file, fitted estimator, test X, test y), with the test part in an
    NPZ data set of its own for ``--dataset``."""
    folder = tmp_path_factory.mktemp("plots")
    made = {}
    for K in (2, 10, 100):
        X, y = _images(K, 30 if K < 100 else 12, seed=1)
        X_test, y_test = _images(K, 10 if K < 100 else 3, seed=2)
        data = folder / f"synthetic{K}.npz"
        np.savez(data, X=X.reshape(-1, *SHAPE), y=y, X_test=X_test.reshape(-1, *SHAPE),
                 y_test=y_test)
        for kind in ("softmax", "network"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator = _estimator(kind).fit(X, y)
            path = folder / f"{kind}{K}.npz"
            save(estimator, path, metadata={"dataset": str(data), "image_shape": list(SHAPE)})
            made[kind, K] = path, estimator, X_test, y_test
    return made


CASES = [(kind, K) for kind in ("softmax", "network") for K in (2, 10, 100)]


@pytest.fixture(scope="module")
def drawn(models):
    """(kind, K) -> the figures :func:`figures` draws for that model file (built once)."""
    cache = {}

    def get(kind: str, K: int) -> dict:
        if (kind, K) not in cache:
            cache[kind, K] = figures(models[kind, K][0])[0]
        return cache[kind, K]

    return get


@pytest.mark.parametrize("kind, K", CASES)
def test_plot_writes_each_figure_that_applies_as_a_png(models, tmp_path, kind, K):
    path, *_ = models[kind, K]
    result = plot(path, tmp_path)
    written = {p.stem for p in result.paths}
    skipped = {name.removesuffix(".png") for name in result.skipped}
    assert written | skipped == set(FIGURES) and not written & skipped
    expected_skips = {"weights"} if kind == "network" else set()
    assert skipped == expected_skips
    if kind == "network":
        assert "hidden units" in result.skipped["weights.png"]
    for p in result.paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as im:
            assert 300 <= min(im.size) and max(im.size) <= 1500, (p.name, im.size)


@pytest.mark.parametrize("kind, K", CASES)
def test_every_figure_has_a_title_and_every_colour_a_label(drawn, kind, K):
    for name, fig in drawn(kind, K).items():
        titles = [fig.get_suptitle()]
        titles += [ax.get_title() for ax in fig.axes]
        assert any(t.strip() for t in titles), name
        assert any(kind_word in " ".join(titles) for kind_word in ("softmax", "network"))
        assert "synthetic" in " ".join(titles), name  # the data set is named
        images = [im for ax in fig.axes for im in ax.images]
        if name in ("confusion_matrix", "weights"):
            bars = [im.colorbar for im in images if im.colorbar is not None]
            assert len(bars) == 1 and bars[0].ax.get_ylabel().strip(), name
        for ax in fig.axes:
            if ax.lines:  # a curve's axes say what runs along them
                assert ax.get_xlabel() and ax.get_ylabel()


@pytest.mark.parametrize("kind, K", CASES)
def test_confusion_matrix_counts_and_readable_ticks(models, drawn, kind, K):
    _, estimator, X_test, y_test = models[kind, K]
    fig = drawn(kind, K)["confusion_matrix"]
    ax = fig.axes[0]
    expected = confusion_matrix(y_test, estimator.predict(X_test), labels=estimator.classes_)
    shares = ax.images[0].get_array()
    np.testing.assert_allclose(shares, expected / expected.sum(axis=1, keepdims=True))
    xlabels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    ylabels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    if K <= 10:
        assert xlabels == ylabels == [str(c) for c in estimator.classes_]
        cells = [t.get_text() for t in ax.texts]
        assert cells == [str(c) if c else "" for c in expected.ravel()]
    else:
        assert 5 <= len(xlabels) <= 30 and 5 <= len(ylabels) <= 30
        assert not ax.texts  # 10 000 numbers would be unreadable
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert max(fig.get_size_inches()) <= 14


@pytest.mark.parametrize("K", [2, 10, 100])
def test_weight_templates_centre_their_colours_at_zero(models, drawn, K):
    _, estimator, *_ = models["softmax", K]
    fig = drawn("softmax", K)["weights"]
    templates = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(templates) == (1 if K == 2 else K)
    for k, image in enumerate(templates):
        low, high = image.get_clim()
        assert high > 0 and low == -high
        np.testing.assert_array_equal(image.get_array(), estimator.coef_[k].reshape(SHAPE))
    (bar,) = [image.colorbar for image in templates if image.colorbar is not None]
    label = bar.ax.get_ylabel()
    assert "evidence" in label and "red" in label and "blue" in label
    if K == 2:  # one sigmoid unit: evidence for one class against the other
        assert "1" in label and "0" in label
    assert max(fig.get_size_inches()) <= 16


@pytest.mark.parametrize("K", [2, 10])
def test_full_batch_curve_is_the_recorded_objective(models, drawn, K):
    path, estimator, *_ = models["softmax", K]
    assert load_bundle(path)[2]["history"] == {"objective": estimator.loss_curve_}
    fig = drawn("softmax", K)["learning_curves"]
    J = np.asarray(estimator.loss_curve_)
    line = fig.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_ydata(), J)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(J) + 1))
    gap = fig.axes[1].lines[0]
    assert fig.axes[1].get_yscale() == "log"
    np.testing.assert_allclose(gap.get_ydata(), (J - J.min())[J > J.min()])
    assert "L-BFGS" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize("K", [2, 10])
def test_minibatch_curves_are_the_recorded_history(models, drawn, K):
    _, estimator, *_ = models["network", K]
    fig = drawn("network", K)["learning_curves"]
    loss_ax, accuracy_ax = fig.axes
    h = estimator.history_
    for ax, train, val in ((loss_ax, estimator.loss_curve_, h.val_loss),
                           (accuracy_ax, h.accuracy, h.val_accuracy)):
        assert ax.get_xlabel() == "epoch"
        curves = {line.get_label(): line.get_ydata() for line in ax.lines}
        np.testing.assert_array_equal(curves["training (mean over the epoch)"], train)
        np.testing.assert_array_equal(curves["validation (after the epoch)"], val)


def test_a_file_without_a_curve_says_so(models, tmp_path):
    old = SoftmaxRegression(solver="lbfgs", max_iter=40).fit(*_images(10, 30, seed=1))
    del old.loss_curve_  # as a full-batch fit saved before model files kept the curve
    save(old, tmp_path / "old.npz", metadata={"image_shape": list(SHAPE)})
    result = plot(tmp_path / "old.npz", tmp_path / "figs")
    assert "no learning curve" in result.skipped["learning_curves.png"]
    assert "--dataset" in result.skipped["confusion_matrix.png"]
    assert [p.name for p in result.paths] == ["weights.png"]


def test_cli_prints_what_it_skipped(models, tmp_path, capsys):
    path, *_ = models["network", 10]
    assert main(["plot", str(path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert str(tmp_path / "confusion_matrix.png") in out
    assert any(line.startswith("skipped weights.png: ") for line in out)


def test_tabular_weights_are_a_class_by_feature_map():
    W = np.array([[1.0, -2.0, 0.5], [-0.5, 0.0, 3.0]])
    fig = plots.weight_map(W, ["a", "b"], ["height", "width", "depth"], "a model on toys")
    ax = fig.axes[0]
    low, high = ax.images[0].get_clim()
    assert high > 0 and low == -high
    assert [t.get_text() for t in ax.get_xticklabels()] == ["height", "width", "depth"]
    assert "evidence" in ax.images[0].colorbar.ax.get_xlabel()  # a bar below the map


def _outside(fig) -> list[float]:
    """How far (inches) what is drawn reaches beyond the figure's left, bottom, right and top
    edges (negative: inside), as rendered."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    drawn, page = fig.get_tightbbox(canvas.get_renderer()), fig.bbox_inches
    return [page.x0 - drawn.x0, page.y0 - drawn.y0, drawn.x1 - page.x1, drawn.y1 - page.y1]


@pytest.mark.parametrize("kind, K", CASES)
def test_nothing_drawn_is_cut_off(drawn, kind, K):
    for name, fig in drawn(kind, K).items():
        assert max(_outside(fig)) <= 0, name


@pytest.mark.parametrize("K", [1, 2, 3, 10])
def test_a_weight_map_of_few_classes_keeps_its_colour_bar_label(K):
    """wine's 13 features and 3 classes: the bar's label beside the map was longer than the
    map ("evidence for the clas"); also with a very long feature name."""
    from sklearn.datasets import load_wine

    names = load_wine().feature_names
    W = np.random.default_rng(0).normal(size=(K, len(names)))
    classes = [f"class {k}" for k in range(max(K, 2))]
    for features in (names, [*names[:-1], "x" * 4096]):
        fig = plots.weight_map(W, classes, features, "softmax regression (lbfgs) on wine.csv")
        assert max(_outside(fig)) <= 0
        assert "evidence" in fig.axes[0].images[0].colorbar.ax.get_xlabel()
        width, height = fig.get_size_inches()
        assert max(width, height) * 100 <= 1500  # pixels, as saved


def test_save_replaces_a_link_rather_than_writing_through_it(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    (tmp_path / "figs").mkdir()
    link = tmp_path / "figs" / "weights.png"
    link.symlink_to("../data.csv")
    fig = plots.weight_map(np.eye(2), ["a", "b"], ["x", "y"], "toy")
    assert plots.save(fig, link) == link
    assert data.read_text() == "a,b\n1,2\n"  # untouched
    assert not link.is_symlink() and Image.open(link).format == "PNG"
