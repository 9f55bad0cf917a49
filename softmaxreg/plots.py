"""Figures with matplotlib, drawn from arrays: learning curves (per epoch of a minibatch fit, or
per iteration of a full-batch solver), the confusion matrix, softmax-regression weights as image
templates (or as a class × feature map for tabular data), and the most confidently misclassified
images.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
no backend chosen here, nothing to close); :func:`save` writes one as a PNG.  None reads a file
or knows about models: the caller passes the arrays and a ``subject`` ("softmax regression
(lbfgs) on digits") that every title names.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from .io.npz import atomic_write_bytes

MAX_TICK_LABELS = 25  # class or feature names along an axis beyond this are thinned
MAX_NAME_CHARS = 40  # a feature name along an axis is cut to this many characters
MAX_CELL_COUNTS = 20  # the confusion matrix writes counts in its cells up to this many classes
EVIDENCE = "RdBu_r"  # weights: red raises a class's score, blue lowers it, white is 0
EVIDENCE_LABEL = "weight: evidence for the class (red)\nor against it (blue)"


def epoch_curves(history: Mapping[str, Sequence[float]], subject: str,
                 final: Mapping[str, Mapping[str, float]] | None = None) -> Figure:
    """Loss and accuracy per epoch of a minibatch fit, training and (when kept) validation.

    ``history``: lists ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (any may be
    missing or empty), one value per epoch.  The training values are means over the epoch's
    batches, taken as the parameters moved; the validation ones are measured after the epoch.
    ``final``: scores of the final model on held-out parts, e.g. ``{"test": {"loss": 0.07,
    "accuracy": 0.98}}``, marked at the last epoch.
    """
    panels = [key for key in ("loss", "accuracy") if len(history.get(key) or ())]
    fig = Figure(figsize=(5.2 * len(panels), 4.2), layout="constrained")
    units = {"loss": "cross-entropy (nats per row)", "accuracy": "accuracy (share of rows)"}
    for ax, key in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for prefix, label in (("", "training (mean over the epoch)"),
                              ("val_", "validation (after the epoch)")):
            values = history.get(prefix + key) or ()
            if len(values):
                ax.plot(np.arange(1, len(values) + 1), values, marker="." if
                        len(values) <= 30 else None, label=label)
        for (part, scores), marker in zip((final or {}).items(), "*Dsv^"):
            if key in scores:
                ax.plot([len(history[key])], [scores[key]], marker=marker, markersize=9,
                        linestyle="none", label=f"{part} (final model)")
        ax.set_title("loss" if key == "loss" else "accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylabel(units[key])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Learning curves: {subject}")
    return fig


def objective_curve(objective: Sequence[float], subject: str, solver: str) -> Figure:
    """The objective J(θ_t) after each iteration t = 1..T of a full-batch solver (left), and
    its distance to the best value reached, J(θ_t) − min J, on a log scale (right; the
    iterations at the minimum, where it is 0, are left out)."""
    J = np.asarray(objective, dtype=np.float64)
    t = np.arange(1, len(J) + 1)
    fig = Figure(figsize=(10.4, 4.2), layout="constrained")
    ax, gap_ax = fig.subplots(1, 2)
    ax.plot(t, J, marker="." if len(J) <= 30 else None)
    ax.set_title("objective")
    ax.set_ylabel("J = mean cross-entropy + penalty (nats per row)")
    gap = J - np.nanmin(J) if len(J) else J
    above = gap > 0
    gap_ax.semilogy(t[above], gap[above], marker="." if len(J) <= 30 else None)
    gap_ax.set_title("distance to the best value (log scale)")
    gap_ax.set_ylabel("J − min J (nats per row, log scale)")
    if not above.any():
        gap_ax.text(0.5, 0.5, "no iteration above the minimum", transform=gap_ax.transAxes,
                    ha="center", va="center")
    for a in (ax, gap_ax):
        a.set_xlabel(f"{solver} iteration")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.grid(alpha=0.3)
    fig.suptitle(f"Learning curve: {subject}")
    return fig


def confusion_matrix(counts: ArrayLike, classes: Sequence, subject: str) -> Figure:
    """The confusion matrix (rows: true class, columns: predicted class), coloured by the share
    of each row, so that the diagonal reads as each class's recall whatever its size; with up
    to :data:`MAX_CELL_COUNTS` classes the counts are written in the non-empty cells.

    Drawn by scikit-learn's ``ConfusionMatrixDisplay``; beyond :data:`MAX_TICK_LABELS`
    classes only every few class names are shown.  ``counts``: (K, K).
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    counts = np.asarray(counts)
    K = len(classes)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    side = float(np.clip(2.5 + 0.45 * K, 5.0, 12.0))
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.subplots()
    display = ConfusionMatrixDisplay(share, display_labels=[str(c) for c in classes])
    display.plot(ax=ax, cmap="Blues", include_values=K <= MAX_CELL_COUNTS,
                 im_kw={"vmin": 0.0, "vmax": 1.0}, text_kw={"fontsize": 10 if K <= 10 else 8})
    if display.text_ is not None:
        for (i, j), text in np.ndenumerate(display.text_):
            text.set_text(str(counts[i, j]) if counts[i, j] else "")
    display.im_.colorbar.set_label("share of the true class's rows (each row sums to 1)")
    _class_ticks(ax, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    n, right = int(counts.sum()), int(np.trace(counts))
    numbers = "; numbers: counts" if display.text_ is not None else ""
    ax.set_title(f"Confusion matrix: {subject}\n{n} rows, {right / max(n, 1):.1%} correct "
                 f"(colour: share of the row{numbers})")
    return fig


def _class_ticks(ax, classes: Sequence) -> None:
    """Every class name on both axes, or every ``step``-th when there are too many to read;
    x labels turned upright when they would collide."""
    K = len(classes)
    ticks = np.arange(0, K, math.ceil(K / MAX_TICK_LABELS))
    names = [str(classes[k]) for k in ticks]
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    if K > 10 or max(map(len, names)) > 3:
        ax.tick_params(axis="x", labelrotation=90)


def weight_templates(W: ArrayLike, classes: Sequence, image_shape: Sequence[int],
                     subject: str) -> Figure:
    """Each row w_k of W (K × d, d = prod(image_shape)) as an image: the pixels whose (scaled)
    value raises the score z_k = w_k · x + b_k of class k (red) or lowers it (blue), on one
    colour scale for all classes, centred at 0 (see :func:`_evidence_limit`).

    With one sigmoid unit (K = 2, W is 1 × d) the single template is the evidence for
    ``classes[1]`` (red) against ``classes[0]`` (blue).
    """
    W = np.asarray(W, dtype=np.float64)
    binary = W.shape[0] == 1
    cols = min(W.shape[0], 10 if W.shape[0] > 25 else 5)
    rows = math.ceil(W.shape[0] / cols)
    size = 1.25 if W.shape[0] > 25 else 3.2 if binary else 1.9
    fig = Figure(figsize=(max(size * cols + 1.6, 7.5), size * rows + 1.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    limit = _evidence_limit(W)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < W.shape[0]:
            image = ax.imshow(W[k].reshape(tuple(image_shape)), cmap=EVIDENCE, vmin=-limit,
                              vmax=limit)
            ax.set_title(f"{classes[1]} vs {classes[0]}" if binary else str(classes[k]),
                         fontsize=8 if W.shape[0] > 25 else 10)
    bar = fig.colorbar(image, ax=axes, shrink=min(1.0, 4.0 / (size * rows)), aspect=25,
                       extend=_extend(W, limit))
    bar.set_label(_evidence_label(classes, binary))
    fig.suptitle(f"Weights as image templates: {subject}")
    return fig


def weight_map(W: ArrayLike, classes: Sequence, feature_names: Sequence[str],
               subject: str) -> Figure:
    """The weights W (K × d) of tabular data as a class × feature map, on a colour scale
    centred at 0: red where a larger (scaled) feature raises the class's score, blue where it
    lowers it.  One sigmoid unit (K = 2, W is 1 × d): evidence for ``classes[1]``."""
    W = np.asarray(W, dtype=np.float64)
    binary = W.shape[0] == 1
    rows = [f"{classes[1]} vs {classes[0]}"] if binary else [str(c) for c in classes]
    features = [_shortened(str(name)) for name in feature_names]
    width = float(np.clip(2.5 + 0.35 * W.shape[1], 8.0, 14.0))
    # the rows, plus room for the feature names written upright (about 0.08 in a character)
    # and for the colour bar below
    names_room = 0.08 * max(map(len, features), default=0)
    height = float(np.clip(1.6 + 0.35 * W.shape[0], 2.4, 10.0) + names_room + 1.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    limit = _evidence_limit(W)
    image = ax.imshow(W, cmap=EVIDENCE, vmin=-limit, vmax=limit, aspect="auto")
    for axis, names in ((ax.xaxis, features), (ax.yaxis, rows)):
        ticks = np.arange(0, len(names), math.ceil(len(names) / MAX_TICK_LABELS))
        axis.set_ticks(ticks, [names[i] for i in ticks])
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("feature")
    ax.set_ylabel("class")
    # below the map, its label on one line: a bar beside a map of a few classes is shorter
    # than its label, which was cut off ("evidence for the clas")
    bar = fig.colorbar(image, ax=ax, extend=_extend(W, limit), location="bottom", aspect=50,
                       shrink=0.6)
    bar.set_label(" ".join(_evidence_label(classes, binary).split()))
    fig.suptitle(f"Weights per class and feature: {subject}")
    return fig


def _shortened(name: str, most: int = MAX_NAME_CHARS) -> str:
    """``name``, or its first characters and "…" when it is longer than ``most``."""
    return name if len(name) <= most else name[:most - 1] + "…"


def _evidence_label(classes: Sequence, binary: bool) -> str:
    """The weights' colour bar label, in two lines: what red and blue mean."""
    return (f"weight: evidence for {classes[1]} (red)\nor for {classes[0]} (blue)" if binary
            else EVIDENCE_LABEL)


def _evidence_limit(W: np.ndarray) -> float:
    """The colour scale of weights runs over [−L, L], L the 99th percentile of |W|: a few
    large weights (pixels rarely inked) would otherwise wash out every template."""
    return float(np.percentile(np.abs(W), 99)) or float(np.abs(W).max()) or 1.0


def _extend(W: np.ndarray, limit: float) -> str:
    """The colour bar's arrows: 'both' when some weights lie beyond ±limit."""
    return "both" if np.abs(W).max() > limit else "neither"


def misclassified_grid(images: ArrayLike, true: Sequence, predicted: Sequence,
                       confidence: ArrayLike, image_shape: Sequence[int], subject: str,
                       n: int = 25) -> Figure:
    """The ``n`` misclassified images with the highest predicted probability, each with its
    true and predicted class; ``images`` (m, d) are the misclassified rows, unscaled."""
    confidence = np.asarray(confidence)
    order = np.argsort(-confidence, kind="stable")[:n]
    cols = min(5, max(1, len(order)))
    rows = max(1, math.ceil(len(order) / cols))
    fig = Figure(figsize=(max(2.0 * cols, 8.0), 2.25 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = np.asarray(images[order] if len(order) else images, dtype=np.float64)
    ink = (min(0.0, shown.min(initial=0.0)), shown.max(initial=1.0) or 1.0)  # one grey scale
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i, image in zip(axes.flat, order, shown):
        ax.set_axis_on()  # a frame shows where the image ends
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(image.reshape(tuple(image_shape)), cmap="gray_r", vmin=ink[0], vmax=ink[1])
        ax.set_title(f"true {true[i]}, predicted {predicted[i]}\np = {confidence[i]:.2f}",
                     fontsize=8)
    most = (f"all {len(order)}" if len(order) == len(confidence)
            else f"the {len(order)} most confident of {len(confidence)}")
    fig.suptitle(f"Most confident mistakes: {subject}\n{most} misclassified rows "
                 "(p: the probability the model gave its wrong answer)")
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder created if needed); returns the path.

    The file is replaced atomically: a link at ``path`` is replaced, never written through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path
