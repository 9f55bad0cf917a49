"""Figures with matplotlib (Agg backend, PNG files): learning curves, confusion matrix,
softmax-regression weights as image templates, and the most confidently misclassified images."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .exceptions import DataError  # noqa: E402


def learning_curves(history: dict, path: Path) -> Path:
    """Loss and accuracy per epoch, training and (when present) validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        epochs = np.arange(1, len(history.get(key, [])) + 1)
        ax.plot(epochs, history.get(key, []), label="train")
        if history.get(f"val_{key}"):
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy" if key == "loss" else key)
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_heatmap(cm: np.ndarray, classes, path: Path) -> Path:
    """The confusion matrix as a heat map, counts written in the cells."""
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(classes),) * 2)
    ax.imshow(cm, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes])
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                color="white" if cm[i, j] > cm.max() / 2 else "black")
    return _save(fig, path)


def weight_templates(W: np.ndarray, classes, image_shape, path: Path) -> Path:
    """Each row w_k of W (K × d) drawn as an image: what the model looks for in class k."""
    K = W.shape[0]
    cols = min(K, 5)
    rows = int(np.ceil(K / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    limit = np.abs(W).max() or 1.0
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < K:
            ax.imshow(W[k].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(classes[k]))
    return _save(fig, path)


def misclassified_grid(images, true, predicted, confidence, image_shape, path: Path,
                       n: int = 25) -> Path:
    """The ``n`` test images misclassified with the highest confidence, with both labels."""
    order = np.argsort(-confidence)[:n]
    cols = 5
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        ax.imshow(np.asarray(images[i]).reshape(image_shape), cmap="gray_r")
        ax.set_title(f"true {true[i]}, pred {predicted[i]}\np = {confidence[i]:.2f}", fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_all(source, out, *, dataset: str | None = None, data_dir=None) -> list[Path]:
    """Every figure that ``source`` (a model file or a history JSON) allows; returns the paths."""
    source, out = Path(source), Path(out)
    if source.suffix.lower() == ".json":
        return [learning_curves(_read_history(source), out / "learning_curves.png")]
    from .persistence import load_bundle

    estimator, scaling, meta = load_bundle(source)
    paths = []
    if meta.get("history"):
        paths.append(learning_curves(meta["history"], out / "learning_curves.png"))
    shape = meta.get("image_shape")
    if meta.get("kind") == "SoftmaxRegression" and shape and len(estimator.classes_) > 2:
        paths.append(weight_templates(estimator.coef_, estimator.classes_, tuple(shape),
                                      out / "weights.png"))
    dataset = dataset or meta.get("dataset")
    if dataset:
        paths += _data_figures(estimator, scaling, meta, dataset, data_dir,
                               tuple(shape or ()), out)
    return paths


def _data_figures(estimator, scaling, meta, dataset, data_dir, shape, out: Path) -> list[Path]:
    from .datasets import load_dataset
    from .workflow import _evaluation_part, metrics

    ds = load_dataset(dataset, data_dir=data_dir)
    X, y = _evaluation_part(ds, dataset, meta)
    Xs = scaling.transform(X) if scaling is not None else X
    m = metrics(estimator, Xs, y)
    paths = [confusion_heatmap(np.array(m["confusion_matrix"]), m["classes"],
                               out / "confusion_matrix.png")]
    if shape and int(np.prod(shape)) == X.shape[1]:
        P = estimator.predict_proba(Xs)
        pred = estimator.classes_[P.argmax(axis=1)]
        wrong = np.flatnonzero(pred != np.asarray(y))
        if wrong.size:
            paths.append(misclassified_grid(X[wrong], np.asarray(y)[wrong], pred[wrong],
                                            P[wrong].max(axis=1), shape, out / "mistakes.png"))
    return paths


def _read_history(path: Path) -> dict:
    try:
        history = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable history file ({exc})") from None
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list):
        raise DataError(f"{path}: a history file holds a JSON object with a 'loss' list")
    return history
