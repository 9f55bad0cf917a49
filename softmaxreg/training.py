"""The minibatch training loop: epochs, shuffling, validation, early stopping, callbacks, history.

Each epoch draws its permutation from ``(seed, epoch)``, so a run is reproducible and can be resumed
at any step: a :class:`Position` (epoch, steps done, the epoch's running sums, the stall tracker)
together with the parameters, the optimiser's state and the history is all there is to a run.
Where the rows are is the backend's business (:class:`softmaxreg.objective.Rows`): each step asks
it for the gradient of the minibatch's rows, gathered in memory or summed from the Dask chunks
that hold them, so one loop serves every backend.  Rows on a device (PyTorch, CuPy) get the
epoch's permutation once per epoch (a small int array) and return the step's loss, count and
weight as device scalars: the running sums stay on the device and are read once per epoch, so
nothing crosses per step (unless hooks are given, which are shown plain numbers at every step).

Checkpoints (:mod:`softmaxreg.checkpoint`) plug in through :class:`TrainHooks`, passed as
``hooks=`` or made active around code that trains indirectly (an estimator's ``fit``) with
:func:`hooks_active`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from ._array_api import asarray, namespace
from ._threads import one_blas_thread
from .exceptions import TrainingDivergedError
from .functional import labels_from_logits
from .network import Network
from .objective import Rows, as_rows
from .optim import Schedule

Callback = Callable[[int, dict], "bool | None"]


@dataclass
class History:
    """Per-epoch training and validation loss (the objective J without penalty) and accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    def append(self, logs: dict) -> None:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                getattr(self, key).append(float(logs[key]))

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in vars(self).items()}

    @property
    def n_epochs(self) -> int:
        return len(self.loss)


@dataclass
class TrainConfig:
    """Settings of the minibatch loop (penalty strength ``l2`` as in :class:`Network`)."""

    epochs: int = 10
    batch_size: int = 128
    l2: float = 0.0
    seed: int = 0
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-4
    progress: bool = True
    start_epoch: int = 0


def _fresh_tracker() -> dict:
    return {"loss": np.inf, "params": None, "stale": 0}


@dataclass
class Position:
    """Where a run stands: ``step`` minibatches of ``epoch`` (0-based) are done, with the epoch's
    running weighted loss sum ``total`` and ``correct`` count so far; ``best`` tracks the best
    monitored loss, the epochs since it improved and (early stopping) the best parameters;
    ``finished`` once the run has stopped early."""

    epoch: int = 0
    step: int = 0
    total: float = 0.0
    correct: int = 0
    best: dict = field(default_factory=_fresh_tracker)
    finished: bool = False


@dataclass
class Run:
    """One call of :func:`train` as its hooks see it; ``position`` changes as it runs."""

    net: Network
    optimizer: Any
    history: History
    config: TrainConfig
    position: Position


class TrainHooks(Protocol):
    """What :func:`train` calls: ``start`` once (it may restore a saved run in place and return
    the position to continue from), ``after_step`` after every optimiser step, ``after_epoch``
    after every epoch's history entry; a hook stops training by raising."""

    def start(self, run: Run, X, y: NDArray) -> Position | None: ...

    def after_step(self, run: Run) -> None: ...

    def after_epoch(self, run: Run) -> None: ...


_ACTIVE_HOOKS: ContextVar[TrainHooks | None] = ContextVar("softmaxreg_train_hooks", default=None)


@contextmanager
def hooks_active(hooks: TrainHooks) -> Iterator[TrainHooks]:
    """Every :func:`train` called inside (in this thread or task) without ``hooks=`` uses these."""
    token = _ACTIVE_HOOKS.set(hooks)
    try:
        yield hooks
    finally:
        _ACTIVE_HOOKS.reset(token)


def epoch_permutation(n: int, seed: int, epoch: int) -> NDArray[np.intp]:
    """The order of the rows in ``epoch``: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def evaluate(net: Network, X, y: NDArray, sample_weight=None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``net`` on (X, y), in chunks to bound memory; y and
    the weights are moved once to X's namespace and device."""
    losses, correct, n = 0.0, 0, X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    y_x, w_x = asarray(y, X), asarray(w, X)
    xp = namespace(X)
    for start in range(0, n, 8192):
        rows = slice(start, min(start + 8192, n))
        Z = net.logits(X[rows, :])
        losses += net.loss_from_logits(Z, y_x[rows], w_x[rows])[0] * float(w[rows].sum())
        correct += xp.count_nonzero(labels_from_logits(Z) == y_x[rows])
    return float(losses) / w.sum(), int(correct) / n


def train(
    net: Network,
    optimizer,
    schedule: Schedule,
    X,
    y: NDArray,
    config: TrainConfig,
    sample_weight: NDArray | None = None,
    validation: tuple | None = None,
    callbacks: Sequence[Callback] = (),
    history: History | None = None,
    hooks: TrainHooks | None = None,
) -> History:
    """Train ``net`` in place by minibatch steps of ``optimizer`` for ``config.epochs`` epochs.

    ``X`` is an array (n, d) with labels ``y`` and ``sample_weight``, or a backend
    (:class:`~softmaxreg.objective.Rows`) that holds the rows (``y`` then unused).
    The minibatch objective is J_B(θ) = Σ_{i∈B} w_i CE_i + (l2/2) Σ‖W‖² (mean over the batch).
    ``validation`` is ``(X_val, y_val)``; with ``early_stopping`` training stops once the
    validation loss (else the training loss) has not improved by ``tol`` for ``n_iter_no_change``
    epochs, and the best parameters are restored.  A callback returning True stops training.
    A non-finite loss restores the parameters of the last finite epoch and raises
    :class:`TrainingDivergedError`.  ``hooks`` (else those of :func:`hooks_active`) see the run
    at its start, after each step and after each epoch.
    """
    hooks = hooks if hooks is not None else _ACTIVE_HOOKS.get()
    run = Run(net, optimizer, history if history is not None else History(), config,
              Position(epoch=config.start_epoch))
    if hooks is not None:
        run.position = hooks.start(run, X, y) or run.position
    with _blas_threads_for(net, config.batch_size):
        _loop(run, schedule, as_rows(X, y, sample_weight, net), validation, callbacks, hooks)
    if config.early_stopping and run.position.best["params"] is not None:
        net.set_params(run.position.best["params"])
    return run.history


SMALL_STEP_MACS = 2**25  # multiply-adds of the largest product of one step


def _blas_threads_for(net: Network, batch_size: int):
    """One BLAS thread for steps whose products are small, else BLAS's own setting.

    A step of the 784-128-64-10 network at batch 128 multiplies 128 × 784 by 784 × 128
    (1.3e7 multiply-adds): on 2 cores, one epoch took 0.51 s with one OpenBLAS thread and
    0.70 s with two (the threads' start and join cost more than they save at this size; on a
    loaded machine two threads were 8× slower).  Products 2.5× larger or more keep all threads.
    """
    widths = net.layer_sizes
    largest = batch_size * max(a * b for a, b in zip(widths[:-1], widths[1:]))
    return one_blas_thread() if largest < SMALL_STEP_MACS else nullcontext()


def _loop(run: Run, schedule, rows: Rows, validation, callbacks, hooks) -> None:
    """The epochs of :func:`train` from ``run.position`` on; ``pos`` is updated as they go."""
    net, optimizer, history, config, pos = (run.net, run.optimizer, run.history, run.config,
                                            run.position)
    n, bs = rows.n, max(1, min(config.batch_size, rows.n))
    epochs = range(pos.epoch, pos.epoch if pos.finished else config.epochs)
    bar = tqdm(epochs, desc="training", unit="epoch", disable=not config.progress, leave=False)
    xp = net.xp
    for epoch in bar:
        lr = schedule(epoch)
        last_good = xp.asarray(net.params, copy=True)
        order = rows.order(epoch_permutation(n, config.seed, epoch))
        for start in range(pos.step * bs, n, bs):
            lr = schedule(epoch + start / n)  # schedules are functions of the (fractional) epoch
            loss, grads, correct, m = rows.batch(net, order[start:min(start + bs, n)], config.l2)
            if isinstance(loss, float) and not math.isfinite(loss):  # (a device's: per epoch)
                _diverged(net, last_good, f"the training loss became {loss}", epoch, lr)
            pos.total += loss * m  # the batch's weighted loss, without the penalty
            optimizer.step(net.params, grads, lr)
            pos.correct += correct
            pos.step += 1
            if hooks is not None:
                pos.total, pos.correct = float(pos.total), int(pos.correct)
                hooks.after_step(run)
        pos.total, pos.correct = float(pos.total), int(pos.correct)
        if not math.isfinite(pos.total):  # a step's loss on a device overflowed
            _diverged(net, last_good, f"the training loss became {pos.total}", epoch, lr)
        if not bool(xp.all(xp.isfinite(net.params))):  # the epoch's last step overflowed
            _diverged(net, last_good, "the parameters became non-finite", epoch, lr)
        logs = {"epoch": epoch + 1, "loss": pos.total / rows.total_weight,
                "accuracy": pos.correct / n, "lr": lr}
        if validation is not None:
            logs["val_loss"], logs["val_accuracy"] = evaluate(net, *validation)
        history.append(logs)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k not in ("epoch", "lr")})
        stop = any(cb(epoch, logs) for cb in callbacks)
        if _no_improvement(pos.best, net, logs, config):
            stop = True
        pos.epoch, pos.step, pos.total, pos.correct, pos.finished = epoch + 1, 0, 0.0, 0, stop
        if hooks is not None:
            hooks.after_epoch(run)
        if stop:
            break
    bar.close()


def _diverged(net: Network, last_good: NDArray, what: str, epoch: int, lr: float):
    net.params[...] = last_good  # (a copy in the buffers' own namespace)
    raise TrainingDivergedError(
        f"{what} in epoch {epoch + 1} (learning rate {lr:g}); training stopped and the model "
        "keeps the weights of the last finite epoch. Try a smaller learning rate, or scale "
        "the features (e.g. sklearn.preprocessing.StandardScaler)."
    )


def _no_improvement(best: dict, net: Network, logs: dict, config: TrainConfig) -> bool:
    """Track the best monitored loss; True once it has stalled for n_iter_no_change epochs."""
    monitored = logs.get("val_loss", logs["loss"]) if config.early_stopping else logs["loss"]
    if monitored < best["loss"] - config.tol:
        best["stale"] = 0
        if config.early_stopping:
            best["params"] = net.xp.asarray(net.params, copy=True)
    else:
        best["stale"] += 1
    best["loss"] = min(best["loss"], monitored)
    return best["stale"] >= config.n_iter_no_change
