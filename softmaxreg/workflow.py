"""The use cases, as plain functions: train (in memory, on Dask, or from a stream), evaluate,
predict, plot, check the gradients.

The CLI parses arguments and prints; everything it prints is computed here (and nothing here
prints), so each step can be used and tested from Python.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from ._array_api import largest_abs
from .activations import ACTIVATIONS
from .checkpoint import Checkpointer, read_settings
from .distributed import available_memory
from .estimators import (
    MINIBATCH_SOLVERS,
    NETWORK_SOLVERS,
    REGRESSION_SOLVERS,
    SoftmaxNetwork,
    SoftmaxRegression,
)
from .exceptions import DataError, ModelFileError
from .gradcheck import LayerError, gradcheck, random_problem
from .io import (
    DATA_SUFFIXES,
    DataSchema,
    Dataset,
    data_fingerprint,
    load_dataset,
    named_dataset,
)
from .io.dataset import check_held_out_labels, check_known_labels, label_column_hint
from .io.schema import EPOCHS, MAX_LAYERS, MODEL, OBJECTIVE, SchemaError, parse_json, unique_names
from .io.schema import check as check_schema
from .optim import SCHEDULES
from .persistence import load_bundle, model_schema, save
from .preprocessing import METHODS as SCALINGS
from .preprocessing import Scaling

TARGET_STEPS = 5000  # "auto" epochs: about this many minibatch steps, within [15, 200] epochs
GRADCHECK_TOLERANCE = 1e-6  # largest relative error of a layer that passes
# Adam's rate for softmax regression from a stream (in memory its solver is L-BFGS): with the
# cosine schedule and the default epochs, the objective ends within 4% of L-BFGS's minimum on
# wine and digits (whole or in chunks of 50 rows) and the train log loss within 5% (MNIST:
# 0.2227 against 0.2208). 1e-3 (Adam's default) ends far above (MNIST 0.264, wine 0.39); 0.1
# is noisier (digits: 0.050 against 0.031).
STREAM_SOFTMAX_LR = 0.03
# Copies of the parameters a fit holds (θ, ∇J, the optimiser's state; L-BFGS: 10 pairs of
# history vectors), for the memory a network needs.
STATE_COPIES = {"sgd": 3, "adam": 4, "adamw": 4, "lbfgs": 24, "fista": 4}
# Bytes per (row, class) that :func:`metrics` holds at its peak, by the network's itemsize:
# the probabilities, their logits, and scikit-learn's log loss (a one-hot Y, float64 copies);
# measured on 3000 rows of 3000 classes (the confusion matrix included).
METRIC_BYTES = {4: 29, 8: 49}


@dataclass
class TrainSettings:
    """Everything ``softmaxreg train`` can be told; the defaults are the CLI's defaults."""

    dataset: str = "digits"
    test: str | None = None
    model: str = "softmax"
    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    solver: str | None = None  # lbfgs for softmax, adam for network
    epochs: int | None = None  # lbfgs: 100 iterations; minibatch: "auto" (see TARGET_STEPS)
    batch_size: int = 128
    lr: float | None = None
    schedule: str = "cosine"  # minibatch solvers: 98.1% vs 97.5% for constant, MNIST 15 epochs
    C: float = 1.0
    alpha: float = 1e-4
    seed: int = 0
    val_fraction: float = 0.0
    early_stopping: bool = False
    scale: str = "auto"
    label_column: str | None = None
    header: str = "auto"  # CSV: whether the first row is a header (auto, yes, no)
    empty: str = "error"  # CSV: an empty feature cell is an error, or its row is dropped, or 0
    test_fraction: float = 0.25
    data_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuse values the CLI's parser refuses too (see :data:`SETTING_CHECKS`), with a
        ValueError naming the setting."""
        self.hidden = _hidden_sizes(self.hidden)
        for name, check in SETTING_CHECKS.items():
            value = getattr(self, name)
            if value is not None or name not in _OPTIONAL:
                try:
                    check(value)
                except ValueError as exc:
                    raise ValueError(f"{name} {exc}") from None
        for name, choices in (("model", ("softmax", "network")), ("activation", ACTIVATIONS),
                              ("schedule", SCHEDULES), ("scale", SCALINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got "
                                 f"{getattr(self, name)!r}")
        solvers = NETWORK_SOLVERS if self.model == "network" else REGRESSION_SOLVERS
        if self.solver is not None and self.solver not in solvers:
            raise ValueError(f"solver must be one of {', '.join(solvers)} for model "
                             f"{self.model!r}, got {self.solver!r}")


# -- the values a setting may take: the CLI's parser and TrainSettings check them alike --------
def positive_int(value) -> int:
    """``value`` if it is a whole number ≥ 1, else ValueError (0 is not read as "default")."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return int(value)


def positive_real(value, *, infinite: bool = False) -> float:
    """``value`` if it is a number > 0 whose inverse is finite (not 5e-324), finite unless
    ``infinite``; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (
            value > 0 and (infinite or math.isfinite(value))):
        kind = "a positive number (or inf)" if infinite else "a finite positive number"
        raise ValueError(f"must be {kind}, got {value!r}")
    tiny = np.finfo(np.float64).tiny
    if value < tiny:
        raise ValueError(f"must be at least {tiny:.3g} (its inverse overflows), got {value!r}")
    return float(value)


def nonnegative_real(value) -> float:
    """``value`` if it is a finite number ≥ 0, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (
            math.isfinite(value) and value >= 0):
        raise ValueError(f"must be a finite number ≥ 0, got {value!r}")
    return float(value)


def fraction(value, *, zero: bool = True) -> float:
    """``value`` if it is in [0, 1) (``zero``) or (0, 1), else ValueError."""
    low_ok = value >= 0 if zero else value > 0
    if isinstance(value, bool) or not isinstance(value, Real) or not (low_ok and value < 1):
        raise ValueError(f"must be a fraction in {'[0' if zero else '(0'}, 1), got {value!r}")
    return float(value)


def seed(value) -> int:
    """``value`` if it is a whole number in [0, 2³²) (NumPy's seeds), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < 2**32:
        raise ValueError(f"must be a whole number from 0 to {2**32 - 1}, got {value!r}")
    return int(value)


SETTING_CHECKS = {
    "epochs": positive_int, "batch_size": positive_int, "lr": positive_real,
    "C": lambda v: positive_real(v, infinite=True), "alpha": nonnegative_real, "seed": seed,
    "val_fraction": fraction, "test_fraction": lambda v: fraction(v, zero=False),
}
_OPTIONAL = {"epochs", "lr"}  # None: the default of the solver

#: The settings that only some runs use: one model's, or the minibatch solvers' (see
#: :func:`inapplicable`); every other setting applies to every run.
SCOPES = {"hidden": "network", "activation": "network", "alpha": "network", "C": "softmax",
          "batch_size": "minibatch", "lr": "minibatch", "schedule": "minibatch",
          "early_stopping": "minibatch"}


def default_solver(model: str, stream: bool = False) -> str:
    """The solver of a run that names none: L-BFGS for softmax regression in memory, Adam for a
    network and for any model trained from a stream (chunk by chunk, so minibatches)."""
    return "adam" if model == "network" or stream else "lbfgs"


def inapplicable(model: str, solver: str) -> dict[str, str]:
    """{setting: why it does not apply} for each setting of :data:`SCOPES` that a run of
    ``model`` fitted by ``solver`` does not use."""
    own = NETWORK_SOLVERS if model == "network" else REGRESSION_SOLVERS
    minibatch = [s for s in MINIBATCH_SOLVERS if s in own]
    why = {"network": "applies to --model network only, not to softmax regression",
           "softmax": "applies to --model softmax only, not to a network (whose L2 penalty is "
                      "--alpha)",
           "minibatch": f"applies to the minibatch solvers ({', '.join(minibatch)}) only, not "
                        f"to {solver}, which works on the whole data set at once"}
    used = {"network": model == "network", "softmax": model == "softmax",
            "minibatch": solver in MINIBATCH_SOLVERS}
    return {name: why[scope] for name, scope in SCOPES.items() if not used[scope]}


MAX_HIDDEN_LAYERS = MAX_LAYERS - 2  # a model file's layer_sizes hold the input and output too


def _hidden_sizes(hidden) -> tuple[int, ...]:
    """The hidden layer sizes as a tuple of at most :data:`MAX_HIDDEN_LAYERS` positive
    integers; else ValueError."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise ValueError(f"hidden must be a sequence of layer sizes, got {hidden!r}")
    sizes = tuple(hidden)
    if len(sizes) > MAX_HIDDEN_LAYERS:
        raise ValueError(f"hidden: at most {MAX_HIDDEN_LAYERS} hidden layers (what a model file "
                         f"holds), got {len(sizes)}")
    for h in sizes:
        try:
            positive_int(h)
        except ValueError as exc:
            raise ValueError(f"hidden: a layer size {exc}") from None
    return tuple(int(h) for h in sizes)


def network_memory(layer_sizes, solver: str, itemsize: int) -> tuple[int, int]:
    """(parameters, bytes) of a network of ``layer_sizes`` (d, hidden..., outputs): Σ (a + 1) b
    weights and intercepts, each held :data:`STATE_COPIES` times by ``solver``."""
    sizes = [int(s) for s in layer_sizes]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return params, params * itemsize * STATE_COPIES.get(solver, 4)


def check_network_fits(layer_sizes, solver: str, itemsize: int, what: str = "the network",
                       shown: str | None = None) -> None:
    """ValueError, before anything is allocated, when a network of ``layer_sizes`` would not
    fit in the memory available (:func:`softmaxreg.distributed.available_memory`).
    ``shown``: how the message describes the network (default: its layer sizes, ``4-8-3``);
    e.g. only the hidden layers, when the input and output sizes are not yet known."""
    params, needed = network_memory(layer_sizes, solver, itemsize)
    memory = available_memory()
    if memory is not None and needed > memory:
        shown = shown or "-".join(map(str, layer_sizes))
        raise ValueError(
            f"{what} ({shown}) has {params:,} parameters: "
            f"{_bytes(params * itemsize)} in float{8 * itemsize}, {_bytes(needed)} with the "
            f"{STATE_COPIES.get(solver, 4) - 1} copies its fit keeps (gradient, {solver} "
            f"state), more than the {_bytes(memory)} of memory available; choose smaller "
            "layers")


def _bytes(n: float) -> str:
    """'364.0 TiB', '12.5 MiB', '512 B'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


@dataclass
class Split:
    X_train: object
    y_train: np.ndarray
    X_val: object | None
    y_val: np.ndarray | None
    X_test: object | None
    y_test: np.ndarray | None


def split_dataset(ds: Dataset, settings: TrainSettings) -> Split:
    """The source's own test split (or ``--test``), else a stratified hold-out; then validation."""
    X, y = ds.X, np.asarray(ds.y)
    if settings.test is not None:  # its columns matched to the training data's by name
        test = load_dataset(settings.test, label_column=settings.label_column,
                            data_dir=settings.data_dir, schema=ds.schema,
                            **_csv_options(settings.test, settings))
        X_test, y_test = test.X, np.asarray(test.y)
    elif ds.X_test is not None:
        X_test, y_test = ds.X_test, np.asarray(ds.y_test)
    else:
        train, test = holdout_rows(y, settings)
        X, X_test, y, y_test = X[train], X[test], y[train], y[test]
    X_val = y_val = None
    if settings.val_fraction > 0 and not settings.early_stopping:
        X, X_val, y, y_val = train_test_split(
            X, y, test_size=settings.val_fraction, random_state=settings.seed,
            stratify=_stratify(y))
    return Split(X, y, X_val, y_val, X_test, y_test)


def holdout_rows(y: np.ndarray, settings: TrainSettings) -> tuple[np.ndarray, np.ndarray]:
    """(training, test) row indices of the hold-out split of rows with labels ``y`` (n,):
    ``settings.test_fraction`` of the rows, stratified when every class has two, drawn with
    ``settings.seed`` — the same rows whether the data are in memory or streamed."""
    train, test = train_test_split(np.arange(len(y)), test_size=settings.test_fraction,
                                   random_state=settings.seed, stratify=_stratify(y))
    return train, test


def _stratify(y: np.ndarray):
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None


def make_estimator(settings: TrainSettings, n_train: int):
    """The estimator the settings describe (CLI defaults: lbfgs softmax regression, Adam net)."""
    if settings.model not in ("softmax", "network"):
        raise ValueError(f"unknown model {settings.model!r}: expected 'softmax' or 'network'")
    network = settings.model == "network"
    solver = settings.solver or default_solver(settings.model)
    defaults = TrainSettings()  # a setting left at its default is no choice of the user's
    for name, why in inapplicable(settings.model, solver).items():  # the CLI's check, for Python
        value = getattr(settings, name)
        if value != getattr(defaults, name):
            raise ValueError(f"{name}={value!r} {why}")
    common = dict(solver=solver, max_iter=_max_iter(settings, solver, n_train),
                  random_state=settings.seed, verbose=int(settings.progress))
    if solver in MINIBATCH_SOLVERS:  # the others keep the estimator's defaults: not used
        common.update(batch_size=settings.batch_size, learning_rate_init=settings.lr,
                      learning_rate=settings.schedule, early_stopping=settings.early_stopping,
                      validation_fraction=settings.val_fraction or 0.1)
    if network:
        return SoftmaxNetwork(hidden_layer_sizes=tuple(settings.hidden),
                              activation=settings.activation, alpha=settings.alpha, **common)
    return SoftmaxRegression(C=settings.C, **common)


def _max_iter(settings: TrainSettings, solver: str, n_train: int) -> int:
    """``settings.epochs``; else the estimator's default full-batch iterations (200), or for
    a minibatch solver about TARGET_STEPS steps, within [15, 200] epochs."""
    if settings.epochs is not None:
        return settings.epochs
    if solver not in MINIBATCH_SOLVERS:
        model = SoftmaxNetwork if settings.model == "network" else SoftmaxRegression
        return model().max_iter
    steps_per_epoch = math.ceil(n_train / settings.batch_size)
    return int(min(200, max(15, math.ceil(TARGET_STEPS / steps_per_epoch))))


def _check_two_classes(classes, where: str, column=None, reason=None) -> None:
    """DataError, before fitting, if the training rows hold fewer than two classes."""
    if len(classes) < 2:
        only = np.asarray(classes)[:1].tolist()
        raise DataError(f"{where}: every training row has the label {only[0]!r}: a classifier "
                        f"needs two classes at least{label_column_hint(column, reason)}")


def metrics(estimator, X, y, label_column: str | int | None = None) -> dict:
    """Accuracy, log loss, per-class precision/recall/F1 and the confusion matrix on (X, y);
    ``label_column``: where a CSV file's labels were, named when they are unknown."""
    y = np.asarray(y)
    check_known_labels(estimator.classes_, y, label_column)
    P, pred = estimator.predict_proba(X), estimator.predict(X)
    labels = estimator.classes_
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "log_loss": float(log_loss(y, P, labels=labels)),
        "classes": labels.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def _summary(m: dict) -> dict:
    return {"accuracy": m["accuracy"], "log_loss": m["log_loss"], "n": m["n"]}


@dataclass
class TrainResult:
    estimator: object
    scaling: Scaling
    report: dict
    dataset: Dataset


def train(settings: TrainSettings, out: str | Path | None = None, *,
          checkpoint: str | Path | None = None, checkpoint_every: int = 1,
          resume: str | Path | None = None, dask: str | None = None, stream: bool = False,
          chunk_rows: int = 10_000) -> TrainResult:
    """Load, split, scale, fit, measure, and (with ``out``) save the model with its metadata.

    ``checkpoint``: write the training state there every ``checkpoint_every`` epochs, and on
    SIGINT/SIGTERM before stopping with :class:`~softmaxreg.checkpoint.TrainingInterrupted`.
    ``resume``: continue the run saved in that checkpoint (its settings: see
    :func:`resume_settings`); it goes on checkpointing to ``checkpoint``, else to ``resume``.
    ``dask``: fit on a Dask cluster, ``local:N`` or ``tcp://HOST:PORT`` (:func:`_fit`).
    ``stream``: read the training file ``chunk_rows`` rows at a time (:func:`train_stream`).

    Before anything is read, outputs that would replace an input are refused
    (:func:`check_outputs`), and so is a network too large for the memory once the data's
    width is known.
    """
    check_outputs(settings, out, checkpoint=checkpoint, resume=resume)
    positive_int(checkpoint_every)
    if stream:
        if checkpoint is not None or resume is not None or dask is not None:
            raise ValueError("--stream does not take --checkpoint, --resume or --dask")
        return train_stream(settings, out, chunk_rows=chunk_rows)
    if dask is not None and (checkpoint is not None or resume is not None):
        raise ValueError("--dask and checkpoints do not go together: a distributed fit "
                         "survives lost workers by itself")
    ds = load_dataset(settings.dataset, label_column=settings.label_column,
                      data_dir=settings.data_dir, **_csv_options(settings.dataset, settings))
    if (out, checkpoint, resume) != (None, None, None):
        check_savable(ds.schema, settings.dataset)
    label = _default_label(settings, ds.label_column, np.unique(ds.y))
    split = split_dataset(ds, settings)
    shown = _shown(settings.dataset)
    _check_two_classes(np.unique(split.y_train), shown, ds.label_column, ds.label_reason)
    if settings.test is None and ds.X_test is None:  # held out of the file: as a stream does
        check_held_out_labels(split.y_train, split.y_test, shown, ds.label_column,
                              ds.label_reason)
    else:  # a test file, or the file's own test part: checked before fitting as well
        check_known_labels(np.unique(split.y_train), split.y_test, ds.label_column,
                           f"{settings.test or shown}, the test rows: ", ds.label_reason)
    scaling = Scaling(settings.scale).fit(split.X_train, pixels=ds.pixels)
    X_train = scaling.transform(split.X_train)
    # The held-out parts are scaled before fitting: a value that their scaled features cannot
    # hold is refused before a long fit, not after it.
    held_out = {name: (_scaled(scaling, X, f"the {name} rows"), y) for name, X, y in (
        ("validation", split.X_val, split.y_val), ("test", split.X_test, split.y_test))
        if X is not None}
    estimator = make_estimator(settings, X_train.shape[0])
    _check_fits(estimator, X_train.shape[1], len(np.unique(split.y_train)))
    _check_metrics_fit(estimator, len(np.unique(split.y_train)), max(
        len(y) for y in (split.y_train, split.y_val, split.y_test) if y is not None))
    checkpointer = _checkpointer(settings, estimator, checkpoint, checkpoint_every, resume)
    start = time.perf_counter()
    with checkpointer or contextlib.nullcontext():
        _fit(estimator, X_train, split.y_train, dask)
    report = _report(_shown(settings.dataset), settings, estimator,
                     time.perf_counter() - start,  # before the metrics: the fit alone
                     _summary(metrics(estimator, X_train, split.y_train)))
    report.update(label, **_stopped_early(estimator))
    for name, (X, y) in held_out.items():
        report[name] = _summary(metrics(estimator, X, y, ds.label_column))
    history = getattr(estimator, "history_", None)
    if "validation" not in report and history is not None and history.val_accuracy:
        report["validation"] = {"accuracy": history.val_accuracy[-1],
                                "log_loss": history.val_loss[-1]}
    if out is not None:
        _save_run(out, estimator, scaling, report, ds.image_shape,
                  _model_record(settings, estimator.solver),
                  schema=ds.schema, data_sha256=data_fingerprint(split.X_train, split.y_train))
    return TrainResult(estimator, scaling, report, ds)


def check_savable(schema: DataSchema, dataset) -> None:
    """DataError, before training, if a model file could not hold the data's columns: the
    checks its loader makes (:data:`~softmaxreg.io.schema.MODEL`'s ``schema``: names of at most
    :data:`~softmaxreg.io.schema.MAX_NAME` characters, the label's too; no feature named
    twice)."""
    try:
        check_schema({"feature_names": list(schema.feature_names), "named": schema.named,
                      "label": schema.label, "index_base": schema.index_base},
                     MODEL.fields["schema"])
        unique_names(schema.feature_names, "feature_names")
    except SchemaError as exc:
        raise DataError(f"{dataset}: a model file cannot hold its columns: {exc}") from None


def _scaled(scaling: Scaling, X, what: str):
    """``scaling.transform(X)``; its DataError says which rows, ``what``, it is about."""
    try:
        return scaling.transform(X)
    except DataError as exc:
        raise DataError(f"{what}: {exc}") from None


def _default_label(settings: TrainSettings, label_column, classes: np.ndarray) -> dict:
    """{"label_column", "n_classes"} for the report when a file's label column was chosen by
    default, else {}. Whether those labels look like a feature the reader has already said
    (:func:`softmaxreg.io.dataset.check_default_labels`)."""
    if settings.label_column is not None or label_column is None:
        return {}
    return {"label_column": label_column, "n_classes": len(classes)}


def _stopped_early(estimator) -> dict:
    """{"stopped": {"epochs", "max_epochs", "monitored", "tol", "n_iter_no_change"}} when a
    minibatch fit stopped before its epoch budget because its monitored loss (the validation
    loss with early stopping, else the training loss) stalled; else {}."""
    epochs = int(np.ravel(getattr(estimator, "n_iter_", 0))[0])
    if estimator.solver not in MINIBATCH_SOLVERS or epochs >= estimator.max_iter:
        return {}
    return {"stopped": {"epochs": epochs, "max_epochs": int(estimator.max_iter),
                        "monitored": "validation" if estimator.early_stopping else "training",
                        "tol": float(estimator.tol),
                        "n_iter_no_change": int(estimator.n_iter_no_change)}}


def _report(dataset: str, settings: TrainSettings, estimator, seconds: float, train: dict):
    """The head of a run's report: what was fitted, its size, how long it took."""
    return {"dataset": dataset, "model": settings.model,
            "n_parameters": int(estimator.network_.params.size), "fit_seconds": seconds,
            "train": train}


def _save_run(out, estimator, scaling, report: dict, image_shape, training: dict, *,
              schema=None, **extra):
    """The model file of a run: the estimator, its scaling, the data's schema (columns and
    label, see :class:`~softmaxreg.io.DataSchema`), the settings (``training``: see
    :func:`_model_record`) and the report."""
    save(estimator, out, scaling=scaling, schema=schema, metadata={
        "dataset": training["dataset"], "image_shape": image_shape, "training": training,
        "metrics": {k: report[k] for k in ("train", "validation", "test") if k in report},
        "fit_seconds": report["fit_seconds"], **extra})


def _fit(estimator, X, y, dask: str | None) -> None:
    """``estimator.fit(X, y)`` in memory, or with X in row chunks on the Dask cluster named by
    ``dask`` (see :func:`softmaxreg.distributed.connect`), which is closed afterwards.

    For minibatch solvers the number of epochs is the user's budget, not a failure to converge:
    scikit-learn's "maximum iterations reached" warning is not repeated to the CLI's user.
    """
    with warnings.catch_warnings():
        if estimator.solver in MINIBATCH_SOLVERS:  # (a fit that learned little still warns)
            warnings.filterwarnings("ignore", "Stochastic optimizer: maximum iterations",
                                    ConvergenceWarning)
        if dask is None:
            estimator.fit(X, y)
            return
        from .distributed import as_dask_array, connect

        with connect(dask) as client:
            estimator.fit(as_dask_array(X, client), y)


def train_stream(settings: TrainSettings, out: str | Path | None = None, *,
                 chunk_rows: int = 10_000) -> TrainResult:
    """:func:`train` for data larger than memory: ``settings.dataset`` (a CSV, svmlight, .npy
    file or IDX folder; ``mnist`` from ``data_dir``, ``SOFTMAXREG_DATA`` or the cache) is read
    ``chunk_rows`` rows at a time, and trained as in memory (:mod:`softmaxreg.streaming`):

    * the same test part: ``settings.test``, else an IDX folder's t10k part, else the hold-out
      :func:`split_dataset` makes, chosen by row index from the labels of a first pass;
    * the same labels (typed once for the whole file) and the same scaling, fitted on the
      training rows;
    * a minibatch solver (adam by default; softmax regression at rate
      :data:`STREAM_SOFTMAX_LR`) for the epochs :func:`_max_iter` gives (a file of one chunk,
      read once: about TARGET_STEPS steps, at least 15 epochs, however many epochs that takes),
      the learning-rate schedule spread over epochs × chunks, and the whole training set's
      penalty.
    """
    from .streaming import fit_stream, open_source, read_labels, scan, stream_metrics

    check_outputs(settings, out)
    positive_int(chunk_rows)
    _check_stream(settings)
    spec = _stream_spec(settings)
    source = open_source(spec, settings.label_column, **_csv_options(spec, settings))
    test = _stream_test_source(settings, source)
    labels = held_out = None
    if test is None:  # the in-memory hold-out, by row index
        labels = read_labels(source, chunk_rows, progress=settings.progress)
        held_out = np.zeros(labels.n, dtype=bool)
        held_out[holdout_rows(labels.y, settings)[1]] = True
    stats = scan(source, chunk_rows, labels=labels, held_out=held_out,
                 progress=settings.progress)
    column = source.schema(stats.moments.n_features).label
    _check_two_classes(stats.classes, _shown(settings.dataset), column)
    if test is not None:  # its labels, before fitting
        check_known_labels(stats.classes, read_labels(test, chunk_rows,
                                                      progress=settings.progress).classes,
                           column, f"{test.path}, the test rows: ")
    if out is not None:
        check_savable(source.schema(stats.moments.n_features), settings.dataset)
    label = _default_label(settings, source.schema(stats.moments.n_features).label,
                           stats.classes)
    settings = replace(settings, solver=settings.solver or default_solver(settings.model, True),
                       lr=settings.lr or (STREAM_SOFTMAX_LR if settings.model == "softmax"
                                          else None))
    estimator = make_estimator(settings, stats.n)
    _check_fits(estimator, stats.moments.n_features, len(stats.classes))
    epochs = estimator.max_iter
    if settings.epochs is None and stats.n_chunks == 1:  # passes over one chunk are free:
        epochs = max(15, math.ceil(TARGET_STEPS / math.ceil(stats.n / settings.batch_size)))
    estimator.set_params(max_iter=epochs * stats.n_chunks, verbose=0)
    start = time.perf_counter()
    _, scaling = fit_stream(estimator, source, epochs=epochs, chunk_rows=chunk_rows,
                            scaling=settings.scale, stats=stats, progress=settings.progress)
    seconds = time.perf_counter() - start
    trained, held = stream_metrics(estimator, source, scaling, chunk_rows, labels=stats.labels,
                                   held_out=held_out, progress=settings.progress)
    report = _report(_shown(settings.dataset), settings, estimator, seconds, trained)
    report.update(label)
    if held is not None:
        report["test"] = held
    elif test is not None:
        report["test"] = stream_metrics(estimator, test, scaling, chunk_rows,
                                        progress=settings.progress)[0]
    if out is not None:
        stream = {"chunk_rows": chunk_rows, "n": stats.n}
        _save_run(out, estimator, scaling, report, None,
                  {**_model_record(settings, settings.solver), "stream": stream},
                  schema=source.schema(stats.moments.n_features))
    return TrainResult(estimator, scaling, report, None)


def _check_stream(settings: TrainSettings) -> None:
    if named_dataset(settings.dataset) not in (None, "mnist"):
        raise ValueError(f"--stream reads a data file chunk by chunk (a file, an IDX folder or "
                         f"mnist); {settings.dataset!r} is one of the bundled data sets, which "
                         "are small and in memory anyway: drop --stream")
    if settings.solver not in (None, *MINIBATCH_SOLVERS):
        raise ValueError("--stream trains chunk by chunk with partial_fit: choose a minibatch "
                         f"solver (sgd, adam or adamw), not {settings.solver}")
    if settings.val_fraction > 0 or settings.early_stopping:
        raise ValueError("--stream takes no --val-fraction or --early-stopping: give a --test "
                         "file instead")


def _stream_spec(settings: TrainSettings) -> str | Path:
    """The file or folder to stream: MNIST's folder (:func:`softmaxreg.io.mnist.mnist_folder`)
    for ``mnist``, else the data set's path."""
    if named_dataset(settings.dataset) != "mnist":
        return settings.dataset
    from .io.mnist import mnist_folder

    return mnist_folder(settings.data_dir, progress=settings.progress)


def _stream_width(source) -> int:
    """The number of features of the source's rows, from its first rows."""
    for X, _ in source.raw_chunks(100):
        return X.shape[1]
    raise DataError(f"{source.path} has no data rows")


def _stream_test_source(settings: TrainSettings, source):
    """The stream's own test part: ``settings.test`` (its columns matched to the training
    file's by name, as in memory), else an IDX folder's t10k files; None when the test part is
    to be held out of the training file."""
    from .streaming import open_source

    if settings.test is not None:
        schema = source.schema(_stream_width(source))
        return open_source(settings.test, settings.label_column, schema=schema,
                           **_csv_options(settings.test, settings))
    return source.test_part()


def _check_fits(estimator, n_features: int, n_classes: int) -> None:
    """:func:`check_network_fits` for the network ``estimator`` will build on this data."""
    hidden = tuple(getattr(estimator, "hidden_layer_sizes", ()))
    sizes = (n_features, *hidden, 1 if n_classes == 2 else max(n_classes, 1))
    itemsize = 4 if estimator.solver in MINIBATCH_SOLVERS else 8
    what = "the network" if hidden else "the softmax regression"
    check_network_fits(sizes, estimator.solver, itemsize, what)


def _check_metrics_fit(estimator, n_classes: int, n_rows: int) -> None:
    """DataError, before fitting, if :func:`metrics` on up to ``n_rows`` rows of ``n_classes``
    classes would not fit in the memory available."""
    itemsize = 4 if estimator.solver in MINIBATCH_SOLVERS else 8
    needed, memory = n_rows * n_classes * METRIC_BYTES[itemsize], available_memory()
    if memory is not None and needed > memory:
        advice = (f"{n_classes:,} distinct labels for {n_rows:,} rows look like identifiers or "
                  "measurements, not classes: if the labels are in another column, name it "
                  "with --label-column" if n_classes > n_rows / 2 else
                  "train with --stream, which measures --chunk-rows rows at a time")
        raise DataError(
            f"{n_classes:,} classes: measuring the model on {n_rows:,} rows takes "
            f"{n_rows:,} × {n_classes:,} class probabilities, about {_bytes(needed)} with the "
            f"log loss, more than the {_bytes(memory)} of memory available; {advice}")


def check_outputs(settings: TrainSettings, out=None, *, checkpoint=None, resume=None) -> None:
    """Refuse, before anything is read or trained, files to write that would go wrong: an
    ``out`` or ``checkpoint`` that is a folder, in a folder that does not exist, or that names
    an input (the data set, the test file, a file of an IDX or MNIST folder, the checkpoint to
    resume); ``out`` and ``checkpoint`` the same file.  ValueError naming the option."""
    inputs = _input_files(settings)
    if resume is not None:
        inputs[Path(resume)] = "the checkpoint to resume"
    for option, path in (("--out", out), ("--checkpoint", checkpoint)):
        if path is None:
            continue
        _check_writable(option, Path(path))
        for given, what in inputs.items():
            if option == "--checkpoint" and what == "the checkpoint to resume":
                continue  # a resumed run goes on checkpointing where it was
            if _same_file(Path(path), given):
                raise ValueError(f"{option} {path} is {what}: writing there would replace it; "
                                 "choose another file name")
    if out is not None and checkpoint is not None and _same_file(Path(out), Path(checkpoint)):
        raise ValueError(f"--out and --checkpoint name the same file ({out}): the model would "
                         "replace the checkpoint; choose two file names")


def _input_files(settings: TrainSettings) -> dict[Path, str]:
    """The files a run reads, with what they are."""
    found: dict[Path, str] = {}
    given = [(settings.dataset, "the training data"), (settings.test, "the test data")]
    if named_dataset(settings.dataset) == "mnist":
        given.append((settings.data_dir or os.environ.get("SOFTMAXREG_DATA"), "MNIST's folder"))
    for spec, what in given:
        if spec is None:
            continue
        path = Path(spec)
        if path.is_dir():
            found.update({p: f"a file of {what} ({path})" for p in path.iterdir()})
        elif path.suffix:  # names like "wine" are bundled data sets, not files
            found[path] = what
    return found


def _check_writable(option: str, path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name, e.g. "
                         f"{path / 'model.npz'}")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot write in the folder {folder} (permission "
                         "denied)")


def _same_file(a: Path, b: Path) -> bool:
    """Whether a and b name one file: the same inode when both exist (links, other spellings),
    else the same absolute path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _run_settings(settings: TrainSettings) -> dict:
    """The settings that define a run (not how it reports progress)."""
    return {k: v for k, v in asdict(settings).items() if k != "progress"}


def _model_record(settings: TrainSettings, solver: str) -> dict:
    """The settings of a run as its model file records them: the solver it used, none that it
    did not use (:func:`inapplicable`), and its data by name or absolute path
    (:func:`_recorded`), so that the file finds them from any folder."""
    skipped = inapplicable(settings.model, solver)
    record = {k: v for k, v in _run_settings(settings).items() if k not in skipped}
    record.update(solver=solver, dataset=_recorded(settings.dataset),
                  test=_recorded(settings.test), data_dir=settings.data_dir and
                  os.path.abspath(settings.data_dir))
    return record


def _shown(spec) -> str:
    """A data set as a run's report names it: "wine", or the file "wine.csv" as given."""
    return named_dataset(spec) or str(spec)


def _recorded(spec) -> str | None:
    """A data set as a model file records it: "wine", or the absolute path of a file or folder
    (so that a file "wine.csv" is never taken for the bundled set "wine")."""
    if spec is None:
        return None
    return named_dataset(spec) or os.path.abspath(spec)


def _same_data(a, b) -> bool:
    """Whether the data sets ``a`` and ``b`` (names or paths) are the same by name or path."""
    return a is not None and b is not None and _recorded(a) == _recorded(b)


def _checkpointer(settings: TrainSettings, estimator, path, every: int, resume):
    """The checkpoint hooks of a run, or None when it asks for no checkpoints."""
    if path is None and resume is None:
        return None
    if estimator.solver not in MINIBATCH_SOLVERS:
        raise ValueError("checkpoints need a minibatch solver (--solver sgd, adam or adamw); "
                         f"{estimator.solver} works on the whole data set at once and has no "
                         "epochs to save")
    training = _run_settings(settings)
    if resume is not None:  # where the data are is not a setting of the run: not compared
        saved = read_settings(resume).get("training") or {}
        training["data_dir"] = saved.get("data_dir", training["data_dir"])
    return Checkpointer(path if path is not None else resume, every=every, resume=resume,
                        settings={"training": training})


def resume_settings(path: str | Path, progress: bool = True) -> TrainSettings:
    """The training settings stored in the checkpoint ``path`` by :func:`train`."""
    stored = dict(read_settings(path).get("training") or {})
    known = set(TrainSettings.__dataclass_fields__) - {"progress"}
    if set(stored) != known:
        raise ModelFileError(f"checkpoint {path} holds no settings of `softmaxreg train`")
    try:
        return TrainSettings(**stored, progress=progress)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"checkpoint {path}: its training settings are not valid ({exc})"
                             ) from None


def evaluate(model_path, dataset: str | None = None, *, label_column=None, data_dir=None,
             header: str = "auto", empty: str = "error") -> dict:
    """Metrics of a saved model on a data set's test part (see :func:`_evaluation_part`);
    ``dataset`` by default the one it was trained on.

    The data's columns are matched to the model's by name (see :func:`_evaluation_part`);
    ``header`` and ``empty`` are :func:`softmaxreg.io.read_csv`'s, for CSV files.
    """
    estimator, scaling, meta = load_bundle(model_path)
    dataset = dataset or _training_data(meta)
    if not dataset:
        raise DataError(f"{model_path}: the model file does not say which data it was trained "
                        "on; give a data set with --dataset")
    part = _evaluation_part(dataset, meta, label_column, data_dir, header=header, empty=empty)
    m = metrics(estimator, _features_for(estimator, scaling, part.X, meta), part.y,
                part.label_column)
    m["includes_training_rows"] = part.includes_training
    if part.includes_training is not False:
        m["note"] = part.note
    return m


def _training_data(meta: dict) -> str | None:
    """The data set a model file says it was trained on: a bundled set's name, or a file's
    absolute path (older files: the path as given, or only a name); None if it does not say."""
    return (meta.get("training") or {}).get("dataset") or meta.get("dataset")


def _csv_options(spec, settings) -> dict:
    """The CSV reading options of ``settings`` when ``spec`` is a CSV file (other sources
    refuse them)."""
    if Path(str(spec)).suffix.lower() not in (".csv", ".tsv"):
        return {}
    return {"header": settings.header, "empty": settings.empty}


@dataclass
class EvaluationPart:
    """The rows :func:`evaluate` scores: features X (n, d), labels y (n,), the CSV label
    column they came from, and whether they include the rows the model was trained on (None:
    the model cannot tell), with a ``note`` saying so."""

    X: object
    y: np.ndarray
    label_column: str | int | None = None
    includes_training: bool | None = False
    note: str = ""


def _evaluation_part(dataset: str, meta: dict, label_column=None, data_dir=None, *,
                     header: str = "auto", empty: str = "error") -> EvaluationPart:
    """The data set's test split; for the training data (named as in training, or the same
    rows, by the model's ``data_sha256``) without one, the same hold-out as in training, so
    that a model is never scored on the rows it was fitted to; else all rows, noting when they
    include the training rows (a model trained with a separate test file) or may (a model
    that does not say what it was trained on).

    Its features come in the model's order, matched by name to the columns it was trained on
    (:func:`softmaxreg.persistence.model_schema`), whose label column is used unless
    ``label_column`` names another. MNIST is read from ``data_dir``, else ``SOFTMAXREG_DATA``,
    else the training's ``data_dir`` if that folder still exists, else the cache.
    """
    training = meta.get("training") or {}
    if (header, empty) == ("auto", "error") and _same_data(training.get("dataset"), dataset):
        header, empty = training.get("header", header), training.get("empty", empty)
    options = {"header": header, "empty": empty} if (header, empty) != ("auto", "error") else {}
    ds = load_dataset(dataset, label_column=label_column, data_dir=_data_dir(data_dir, training),
                      schema=model_schema(meta), **options)
    if ds.X_test is not None:
        return EvaluationPart(ds.X_test, ds.y_test, ds.label_column)
    whole = EvaluationPart(ds.X, ds.y, ds.label_column)
    if not training.get("dataset"):
        whole.includes_training, whole.note = None, (
            "the model file does not say which data it was trained on: these rows may "
            "include its training rows")
        return whole
    same = _same_data(training.get("dataset"), dataset)
    if training.get("test") is None:  # trained on a hold-out split of its data set
        part = _training_split(ds, training) if same or meta.get("data_sha256") else None
        if part is not None and (same or _same_rows(meta, part.X_train, part.y_train)):
            return EvaluationPart(part.X_test, part.y_test, ds.label_column)
        return whole
    if same or _same_rows(meta, ds.X, ds.y):
        whole.includes_training, whole.note = True, (
            f"these rows include the training rows: the model was trained on all rows of "
            f"{training['dataset']} (its test rows came from {training['test']})")
    return whole


def _training_split(ds: Dataset, training: dict) -> Split | None:
    """The split :func:`train` made of ``ds`` with the stored ``training`` settings; None
    when these rows cannot be split so."""
    settings = TrainSettings(seed=int(training.get("seed", 0)),
                             test_fraction=float(training.get("test_fraction", 0.25)),
                             val_fraction=float(training.get("val_fraction", 0.0)),
                             early_stopping=bool(training.get("early_stopping", False)))
    try:
        return split_dataset(ds, settings)
    except ValueError:  # too few rows for the split: not the training data
        return None


def _same_rows(meta: dict, X, y) -> bool:
    """Whether (X, y) are the rows the model was fitted to (its ``data_sha256``)."""
    return meta.get("data_sha256") == data_fingerprint(X, np.asarray(y))


def _data_dir(data_dir, training: dict):
    """``data_dir``; else, without ``SOFTMAXREG_DATA``, the folder the model was trained from
    (``training.data_dir``) if it still exists; else None (the cache)."""
    if data_dir is not None or os.environ.get("SOFTMAXREG_DATA"):
        return data_dir
    stored = training.get("data_dir")
    return stored if stored and Path(stored).is_dir() else None


@dataclass
class PlotResult:
    """What :func:`plot` did: the PNG files it wrote, and for each figure it did not draw (by
    file name) why not."""

    paths: list[Path]
    skipped: dict[str, str]


FIGURES = ("learning_curves", "weights", "confusion_matrix", "mistakes")
_SOLVER_NAMES = {"lbfgs": "L-BFGS", "fista": "FISTA"}
_SCALED = {"unit": "pixels scaled to [0, 1]", "standard": "standardised features"}
_MAX_MAP_FEATURES = 100  # tabular weights are drawn as a class × feature map up to this d


def plot(source, out, *, dataset: str | None = None, data_dir=None) -> PlotResult:
    """Every figure that ``source`` allows (see :func:`figures`), as PNG files in the folder
    ``out`` (made if missing; ValueError, before anything is drawn, if it is a file)."""
    from . import plots  # matplotlib: loaded for this use case only

    _check_folder("--out", Path(out))
    drawn, skipped = figures(source, dataset=dataset, data_dir=data_dir)
    paths = [plots.save(fig, Path(out) / f"{name}.png") for name, fig in drawn.items()]
    return PlotResult(paths, {f"{name}.png": why for name, why in skipped.items()})


def _check_folder(option: str, path: Path) -> None:
    """ValueError unless ``path`` is a folder or can be made one: it, or the nearest of the
    folders above it that exists, is not a file."""
    for there in (path, *path.parents):
        if there.exists():
            if not there.is_dir():
                where = "is a file" if there == path else f"is inside {there}, a file"
                raise ValueError(f"{option} must be a folder for the PNG files (made if "
                                 f"missing), but {path} {where}")
            return


def figures(source, *, dataset: str | None = None, data_dir=None) -> tuple[dict, dict[str, str]]:
    """``({name: Figure}, {name: why not drawn})`` over :data:`FIGURES`, for ``source`` (a
    model file or a history JSON).

    A model file gives its learning curve (per epoch for minibatch solvers, the objective per
    iteration for full-batch ones) and softmax regression's weights (image templates, or a
    class × feature map for tabular data); on ``dataset`` (default: the one it was trained on;
    the part :func:`evaluate` scores) the confusion matrix and, for images, the most confident
    mistakes.
    """
    source = Path(source)
    if source.suffix.lower() == ".json":
        drawn = {"learning_curves": _curve_figure(_read_history(source), source.name, "")}
        return drawn, dict.fromkeys(FIGURES[1:], "a history file holds no model")
    estimator, scaling, meta = load_bundle(source)
    model = _model_name(meta)
    trained_on = f"{model}, trained on {_data_name(meta.get('dataset') or 'unnamed data')}"
    solver = (meta.get("params") or {}).get("solver", "")
    made = {"learning_curves": _curve_figure(meta.get("history") or {}, trained_on, solver,
                                             _held_out_scores(meta))
            or "the model file holds no learning curve (files written before full-batch fits "
               "kept theirs have none: refit the model to get it)",
            "weights": _weights_figure(estimator, scaling, meta, trained_on)}
    made.update(_data_figures(estimator, scaling, meta, model, dataset, data_dir))
    return ({k: v for k, v in made.items() if not isinstance(v, str)},
            {k: v for k, v in made.items() if isinstance(v, str)})


def _held_out_scores(meta: dict) -> dict:
    """{"validation"/"test": {"loss", "accuracy"}} of the final model, from the file's report."""
    keys = (("loss", "log_loss"), ("accuracy", "accuracy"))
    return {part: {k: m[src] for k, src in keys if isinstance(m.get(src), (int, float))}
            for part, m in (meta.get("metrics") or {}).items()
            if part != "train" and isinstance(m, dict)}


def _model_name(meta: dict) -> str:
    """'softmax regression (lbfgs)' or 'network 784-128-64-10, relu (adam)'."""
    solver = (meta.get("params") or {}).get("solver", "?")
    if meta.get("kind") == "SoftmaxRegression":
        return f"softmax regression ({solver})"
    sizes = "-".join(str(s) for s in meta.get("layer_sizes") or ())
    return f"network {sizes}, {meta.get('activation')} ({solver})"


def _data_name(spec: str) -> str:
    """A data set as titles name it: 'digits', or a file's name without its folder."""
    return Path(str(spec)).name


def _curve_figure(history: dict, subject: str, solver: str, final: dict | None = None):
    """The learning curve a history allows (full batch: ``objective``; minibatch: ``loss``
    and the rest per epoch, with the ``final`` scores of held-out parts), or None."""
    from . import plots

    if history.get("objective"):
        return plots.objective_curve(history["objective"], subject,
                                     _SOLVER_NAMES.get(solver, solver))
    if history.get("loss"):
        return plots.epoch_curves(history, subject, final)
    return None


def _weights_figure(estimator, scaling, meta: dict, subject: str):
    """Softmax regression's W as image templates or a class × feature map; else why not."""
    from . import plots

    if meta.get("kind") != "SoftmaxRegression":
        return ("a network's first weights feed its hidden units, not the classes: "
                "there are no per-class templates to draw")
    W, classes = estimator.coef_, estimator.classes_
    inputs = _SCALED.get(getattr(scaling, "resolved", None), "unscaled features")
    subject = f"{subject}\n(weights on {inputs})"
    shape = tuple(meta.get("image_shape") or ())
    if shape and math.prod(shape) == W.shape[1]:
        return plots.weight_templates(W, classes, shape, subject)
    if W.shape[1] > _MAX_MAP_FEATURES:
        return (f"the {W.shape[1]} features are not an image and too many to map "
                f"(at most {_MAX_MAP_FEATURES})")
    names = meta.get("feature_names") or [f"x{j}" for j in range(W.shape[1])]
    return plots.weight_map(W, classes, names, subject)


def _data_figures(estimator, scaling, meta: dict, model: str, dataset, data_dir) -> dict:
    """The confusion matrix and the most confident mistakes on ``dataset`` (default: the
    training data set, whose failure to load then skips both instead of failing the rest)."""
    from . import plots

    named = dataset or _training_data(meta)
    if not named:
        return dict.fromkeys(FIGURES[2:], "no data set to score: give one with --dataset")
    try:
        part = _evaluation_part(named, meta, data_dir=data_dir)
    except DataError as exc:
        if dataset:
            raise
        return dict.fromkeys(FIGURES[2:], f"the training data set could not be loaded ({exc}); "
                                          "give one with --dataset")
    X, y = part.X, np.asarray(part.y)
    Xs = _features_for(estimator, scaling, X, meta)
    subject = f"{model} on {_data_name(named)}"
    m = metrics(estimator, Xs, y, part.label_column)
    return {"confusion_matrix": plots.confusion_matrix(m["confusion_matrix"], m["classes"],
                                                       subject),
            "mistakes": _mistakes_figure(estimator, Xs, X, y, meta, subject)}


def _mistakes_figure(estimator, Xs, images, y, meta: dict, subject: str):
    """The misclassified rows of (Xs, y) with the highest confidence, drawn from the unscaled
    ``images``; else why not."""
    from . import plots

    shape = tuple(meta.get("image_shape") or ())
    if not shape:
        return "the rows are not images (the model file names no image shape)"
    if math.prod(shape) != images.shape[1]:
        return f"rows of {images.shape[1]} features are not images of {shape}"
    pred = estimator.predict(Xs)
    wrong = np.flatnonzero(pred != y)
    if not wrong.size:
        return f"no mistakes: all {len(y)} rows are classified correctly"
    confidence = estimator.predict_proba(Xs[wrong]).max(axis=1)
    return plots.misclassified_grid(images[wrong], y[wrong], pred[wrong], confidence, shape,
                                    subject)


def _read_history(path: Path) -> dict:
    """A history JSON, as a model file's ``history`` (:data:`softmaxreg.io.schema.HISTORY`):
    per-epoch lists (``loss``, ...) or ``objective`` per iteration, of finite numbers."""
    try:
        with path.open(encoding="utf-8") as f:
            text = f.read(_MAX_HISTORY_CHARS + 1)
        if len(text) > _MAX_HISTORY_CHARS:
            raise DataError(f"{path}: a history file is longer than {_MAX_HISTORY_CHARS} "
                            "characters")
        history = parse_json(text, _MAX_HISTORY_CHARS)
        # one of HISTORY's two forms, chosen by its key, so that the error is about that one
        check_schema(history, OBJECTIVE if isinstance(history, dict) and "objective" in history
                     else EPOCHS)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable history file ({exc})") from None
    except SchemaError as exc:
        raise DataError(f"{path}: not a history file: {exc}") from None
    if not any(history.get(k) for k in ("loss", "objective")):
        raise DataError(f"{path}: a history file holds a JSON object with a non-empty 'loss' "
                        "(per epoch) or 'objective' (per iteration) list")
    for key, values in history.items():
        if values and not math.isfinite(float(max(values)) - float(min(values))):  # axes
            raise DataError(f"{path}: {key}: its values span more than a float can hold")
    return history


_MAX_HISTORY_CHARS = 2**24  # as a model file's metadata
OUT_OF_RANGE = 4.0  # data reaching this many times the training range's largest |x| warn


def _features_for(estimator, scaling, X, meta: dict):
    """The rows X (n, d) as the model takes them: through its stored scaling (which makes
    sparse rows dense when it centres, see :meth:`softmaxreg.preprocessing.Scaling.transform`).
    A UserWarning when a model without one meets values beyond :data:`OUT_OF_RANGE` times the
    largest |x| it was trained on (``input_max_abs``): rows not scaled as its training rows
    were, such as load_digits' 0..16 for a model fitted on X / 16."""
    if X.shape[1] != estimator.n_features_in_:
        raise DataError(f"the data have {X.shape[1]} features, but the model was trained "
                        f"with {estimator.n_features_in_}")
    if scaling is not None:  # in the model's own float type: a float64 model gets float64
        return scaling.transform(X, estimator.network_.dtype)
    trained = meta.get("input_max_abs")
    top = largest_abs(X)
    if trained is not None and top > OUT_OF_RANGE * trained:
        warnings.warn(f"the data reach |x| = {top:.4g}, but the model was trained on values up "
                      f"to {trained:.4g}: if its training data were scaled (divided by 16, by "
                      "255, standardised), scale these the same way", UserWarning, stacklevel=3)
    return X


def predict(model_path, inputs: list[str], *, top_k: int = 1, label_column=None,
            header: str = "auto", empty: str = "error") -> dict:
    """Top-k classes and probabilities for a data file or for images of digits.

    Images are made in the format of the model's training images (see
    :func:`softmaxreg.images.digit_format`). An image that cannot be read or holds no digit
    is reported in ``"errors"`` as (name, message) and the others are classified; DataError
    when none can be. A data file's rows are named by their 0-based data row in the file;
    those left out (``empty="drop"``) are listed in ``"dropped_rows"``.
    """
    estimator, scaling, meta = load_bundle(model_path)
    _known_types(inputs)
    errors: list[tuple[str, str]] = []
    dropped: list[int] = []
    if all(Path(p).suffix.lower() in image_suffixes() for p in inputs):
        X, names, errors = _read_images(inputs, estimator.n_features_in_, meta)
    elif len(inputs) == 1:  # columns matched to the model's by name; the label column optional
        options = {"header": header, "empty": empty} if (header, empty) != ("auto",
                                                                            "error") else {}
        ds = load_dataset(inputs[0], label_column=label_column, schema=model_schema(meta),
                          require_labels=False, **options)
        X, names = ds.X, [str(i) for i in ds.row_numbers]
        dropped = list(ds.dropped_rows)
    else:
        raise DataError("give one data file, or one or more images of digits")
    P = estimator.predict_proba(_features_for(estimator, scaling, X, meta))
    k = max(1, min(int(top_k), P.shape[1]))
    order = np.argsort(-P, axis=1, kind="stable")[:, :k]
    return {
        "inputs": names,
        "classes": estimator.classes_[order].tolist(),
        "probabilities": np.take_along_axis(P, order, axis=1).tolist(),
        "proba_all": P,
        "class_labels": estimator.classes_.tolist(),
        "errors": errors,
        "dropped_rows": dropped,
    }


@functools.cache
def image_suffixes() -> frozenset[str]:
    """The file suffixes of the picture formats ``predict`` reads
    (:data:`softmaxreg.images.IMAGE_FORMATS`), as Pillow registers them: ``.png``, ``.jpg``..."""
    from PIL import Image

    from .images import IMAGE_FORMATS

    Image.init()
    return frozenset(suffix for suffix, kind in Image.registered_extensions().items()
                     if kind in IMAGE_FORMATS)


def _known_types(inputs: list[str]) -> None:
    """DataError naming the first input that is neither a data file nor an image, with the
    formats ``predict`` reads."""
    for spec in inputs:
        suffix = Path(spec).suffix.lower()
        if suffix not in image_suffixes() and suffix not in DATA_SUFFIXES and \
                not Path(spec).is_dir() and Path(spec).suffix:
            raise DataError(f"cannot read {spec!r}: unknown file type {suffix!r}; predict reads "
                            f"data files ({', '.join(DATA_SUFFIXES)}, or a folder of IDX files) "
                            f"and images of digits ({', '.join(sorted(image_suffixes()))})")


def _read_images(paths: list[str], n_features: int, meta: dict):
    """(X, names, errors): the images that hold a digit, in the model's format, their names,
    and (name, message) for each of the others; DataError when none does."""
    from .images import digit_format, image_to_digit

    try:
        shape, max_value = digit_format(n_features, meta.get("image_shape"),
                                        meta.get("input_max_abs"))
    except DataError as exc:
        raise DataError(f"{', '.join(map(str, paths))}: {exc}") from None
    rows, names, errors = [], [], []
    for path in paths:
        try:
            rows.append(image_to_digit(path, shape, max_value))
            names.append(str(path))
        except DataError as exc:
            errors.append((str(path), str(exc)))
    if not rows:
        raise DataError("; ".join(message for _, message in errors))
    return np.stack(rows), names, errors


def check_gradients(n_inputs: int, hidden, n_classes: int, activation: str = "tanh",
                    seed: int = 0) -> tuple[list[int], list[LayerError], bool]:
    """Backpropagation against central differences on a random float64 network: its layer
    sizes (one sigmoid unit for two classes), each layer's error, and whether all pass."""
    if n_classes < 2:
        raise ValueError(f"gradcheck needs at least 2 classes, got {n_classes} (two classes "
                         "are checked as one sigmoid unit)")
    for what, n in (("inputs", n_inputs), *(("a hidden layer size", h) for h in hidden)):
        try:
            positive_int(n)
        except ValueError as exc:
            raise ValueError(f"gradcheck: {what} {exc}") from None
    sizes = [n_inputs, *hidden, 1 if n_classes == 2 else n_classes]
    check_network_fits(sizes, "sgd", 8, "the network to check")
    net, X, y = random_problem(sizes, activation, seed=seed)
    errors = gradcheck(net, X, y, l2=1e-2, rtol=GRADCHECK_TOLERANCE)
    return sizes, errors, max(e.max_rel_error for e in errors) < GRADCHECK_TOLERANCE
