"""Figures with matplotlib (Agg backend, PNG files): learning curves, confusion matrix,
softmax-regression weights as image templates, and the most confidently misclassified images.

Each is drawn from arrays (a history, a confusion matrix, weights, images); none reads a file."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
