"""Checkpoints of a minibatch training run: write them as it goes, stop cleanly, resume exactly.

A checkpoint is what :func:`softmaxreg.training.train` needs to go on as if it had never stopped:
the flat parameters θ, the optimiser's state (velocity, or Adam's moments and step count), the
:class:`~softmaxreg.training.Position` (epoch, minibatch steps done in it, the epoch's running sums,
the stall tracker), the seed and the loop's settings, the history so far, and the caller's own
settings (estimator parameters, the command line's training settings).  Shuffles are functions of
(seed, epoch), so a resumed run ends with parameters bit-identical to an uninterrupted one.

File layout (an ``.npz`` archive, read with ``allow_pickle=False``; written atomically):

    metadata            0-d unicode array holding a JSON object (see :func:`_metadata`)
    params              θ, in the network's dtype
    optimizer.<key>     each array of the optimiser's ``state_dict()``
    best_params         the best parameters so far (early stopping only)

Use it around an estimator's ``fit`` (or pass it as ``hooks=`` to ``training.train``)::

    with Checkpointer("run.ckpt.npz", every=1) as ckpt:       # first run
        estimator.fit(X, y)
    with Checkpointer("run.ckpt.npz", resume="run.ckpt.npz"):  # after an interruption
        estimator.fit(X, y)

Inside the ``with`` block (main thread), SIGINT and SIGTERM no longer kill the process: the
current step finishes, a last checkpoint is written and :class:`TrainingInterrupted` is raised.
A second signal stops at once (KeyboardInterrupt) and leaves the last checkpoint as it was.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._version import __version__
from .exceptions import ModelFileError, SoftmaxRegError
from .io import atomic_write_bytes, data_fingerprint, json_safe, read_model_npz
from .io.schema import CHECKPOINT, MAX_METADATA_CHARS, SchemaError, check, parse_json
from .training import Position, Run, hooks_active

FORMAT = "softmaxreg-checkpoint"
FORMAT_VERSION = 1
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CONFIG_KEYS = ("epochs", "batch_size", "l2", "seed", "early_stopping", "n_iter_no_change", "tol")
_HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
_MEMBERS = ("metadata", "params", "optimizer.", "best_params")  # what loading reads


__all__ = ["Checkpoint", "Checkpointer", "TrainingInterrupted", "load_checkpoint",
           "read_settings"]


class TrainingInterrupted(SoftmaxRegError):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint (``path``) to resume from.

    ``signum`` is the signal's number: a command line exits with status 128 + signum.
    """

    def __init__(self, message: str, path: Path, signum: int):
        super().__init__(message)
        self.path, self.signum = path, signum


class Checkpointer:
    """Training hooks (:class:`softmaxreg.training.TrainHooks`) that write checkpoints to ``path``.

    ``every``: a checkpoint after every ``every`` epochs (and after the last one); 0 writes only
    at the start, at the end and on interruption.  ``resume``: a checkpoint to continue from; it
    must come from the same run (architecture, optimiser, seed, loop settings, training data and
    ``settings``), else :class:`ModelFileError` says what differs.  ``settings``: a JSON-able
    dict the caller wants kept with the run (read back with :func:`read_settings`).  Without
    ``resume``, an existing file at ``path`` is never overwritten.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1,
                 resume: str | os.PathLike | None = None, settings: dict | None = None):
        if int(every) < 0:
            raise ValueError(f"checkpoint every {every} epochs: expected 0 or a positive number")
        self.path = Path(path)
        self.every = int(every)
        self.resume = None if resume is None else Path(resume)
        self.settings = json_safe(settings or {})
        self._saved: Checkpoint | None = None if resume is None else load_checkpoint(resume)
        if self._saved is not None:
            _check_settings(self._saved, self.settings)
        if self.path.exists() and (self.resume is None or not self.path.samefile(self.resume)):
            raise FileExistsError(
                f"checkpoint {self.path} already exists: continue that run with --resume "
                f"{self.path} (resume=), or delete the file or choose another path")
        self._run: Run | None = None
        self._fingerprint = ""
        self._signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._context = None

    # -- the context: signal handlers and the active hooks ------------------------------------
    def __enter__(self) -> Checkpointer:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in _SIGNALS}
        self._context = hooks_active(self)
        self._context.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._context.__exit__(exc_type, exc, tb)
        self._restore_handlers()
        if exc_type is None and self._signum is not None:
            self._stop()  # the signal came after the last step: the run is complete, keep it

    def _on_signal(self, signum: int, frame) -> None:
        if self._signum is not None:  # a second signal: stop now, the last checkpoint stays
            self._restore_handlers()
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopped at once")
        self._signum = signum

    def _restore_handlers(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    # -- the hooks -------------------------------------------------------------------------------
    def start(self, run: Run, X, y: NDArray) -> Position | None:
        """Remember the run; restore the saved one into it when resuming (once)."""
        self._run, self._fingerprint = run, data_fingerprint(X, y)
        saved, self._saved = self._saved, None
        if saved is not None:
            saved.restore(run, self._fingerprint, X.shape[0])
        self.write(run)
        return run.position

    def after_step(self, run: Run) -> None:
        if self._signum is not None:
            self._stop()

    def after_epoch(self, run: Run) -> None:
        if self._signum is not None:
            self._stop()
        last = run.position.finished or run.position.epoch >= run.config.epochs
        if last or (self.every and run.position.epoch % self.every == 0):
            self.write(run)

    def _stop(self) -> None:
        signum, run = self._signum, self._run
        name = signal.Signals(signum).name
        if run is None:
            raise TrainingInterrupted(f"interrupted by {name} before training started; "
                                      "no checkpoint written", self.path, signum)
        self.write(run)
        pos = run.position
        where = (f"after epoch {pos.epoch}" if pos.step == 0
                 else f"in epoch {pos.epoch + 1} after {pos.step} minibatch steps")
        raise TrainingInterrupted(
            f"interrupted by {name} {where}; the training state is saved in {self.path} — "
            f"continue with: softmaxreg train --resume {self.path}", self.path, signum)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, run: Run) -> None:
        """Write the run's state to ``path`` atomically (a complete old or new file, never half)."""
        if not np.all(np.isfinite(run.net.params)):
            return  # a step just overflowed: training is about to stop with TrainingDivergedError
        arrays = {"metadata": np.array(json.dumps(_metadata(run, self._fingerprint,
                                                            self.settings))),
                  "params": run.net.params}
        arrays.update({f"optimizer.{k}": np.asarray(v)
                       for k, v in run.optimizer.state_dict().items()})
        if run.position.best["params"] is not None:
            arrays["best_params"] = run.position.best["params"]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.path, buffer.getvalue())


def _metadata(run: Run, fingerprint: str, settings: dict) -> dict:
    """The JSON part of a checkpoint: everything but the arrays."""
    pos = run.position
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "position": {"epoch": pos.epoch, "step": pos.step, "total": pos.total,
                     "correct": pos.correct, "best_loss": pos.best["loss"],
                     "stale": pos.best["stale"], "finished": pos.finished},
        **_identity(run),
        "history": run.history.as_dict(),
        "data_sha256": fingerprint,
        "settings": settings,
    }


def _identity(run: Run) -> dict:
    """What a resumed run must share with the saved one: network, loop settings, and the
    optimiser's class and numeric settings (not its state)."""
    net, opt, state = run.net, run.optimizer, set(run.optimizer.state_dict())
    return {"config": {k: getattr(run.config, k) for k in _CONFIG_KEYS},
            "network": net.spec.as_dict(),
            "optimizer": {"class": type(opt).__name__, **{
                k: v for k, v in vars(opt).items()
                if not k.startswith("_") and k not in state and isinstance(v, (bool, int, float))}}}


# -- reading ---------------------------------------------------------------------------------------
class Checkpoint:
    """A validated checkpoint file: its metadata and arrays (see the module's docstring)."""

    def __init__(self, path: Path, meta: dict, members: dict[str, np.ndarray]):
        self.path, self.meta = path, meta
        self.params = members["params"]
        self.optimizer = {k.split(".", 1)[1]: v for k, v in members.items()
                          if k.startswith("optimizer.")}
        self.best_params = members.get("best_params")

    def _fail(self, problem: str) -> ModelFileError:
        return ModelFileError(f"checkpoint {self.path}: {problem}")

    def restore(self, run: Run, fingerprint: str, n_rows: int) -> None:
        """Put the saved state into ``run`` (parameters, optimiser, history, position)."""
        self._check_matches(run, fingerprint)
        self._check_position(run, n_rows)
        run.net.params[...] = self.params
        state = run.optimizer.state_dict()
        for key, value in state.items():
            saved = self.optimizer.get(key)
            if saved is None or np.shape(saved) != np.shape(value):
                raise self._fail(f"optimiser state {key!r} is missing or has the wrong shape")
        if set(self.optimizer) != set(state):
            raise self._fail(f"optimiser state holds {sorted(self.optimizer)}, expected "
                             f"{sorted(state)}")
        run.optimizer.load_state_dict(self.optimizer)
        for key in _HISTORY_KEYS:
            getattr(run.history, key)[:] = self.meta["history"][key]
        p = self.meta["position"]
        best = {"loss": p["best_loss"], "stale": p["stale"],
                "params": None if self.best_params is None else self.best_params.copy()}
        run.position = Position(p["epoch"], p["step"], p["total"], p["correct"], best,
                                p["finished"])

    def _check_matches(self, run: Run, fingerprint: str) -> None:
        net, here = run.net, json_safe(_identity(run))
        for part in ("network", "optimizer", "config"):
            diff = _differences(self.meta[part], here[part])
            if diff:
                raise self._fail(f"written for another run: its {part} differs ({diff})")
        if self.meta["data_sha256"] != fingerprint:
            raise self._fail("written for other training data (the SHA-256 of the data differs)")
        if self.params.shape != net.params.shape or self.params.dtype != net.params.dtype:
            raise self._fail(f"params must be {net.params.size} {net.dtype.name} values")
        if self.best_params is not None and self.best_params.shape != net.params.shape:
            raise self._fail("best_params has the wrong shape")

    def _check_position(self, run: Run, n_rows: int) -> None:
        p, config = self.meta["position"], run.config
        steps = math.ceil(n_rows / max(1, min(config.batch_size, n_rows)))
        history = self.meta["history"]
        ok = (config.start_epoch <= p["epoch"] <= config.epochs and 0 <= p["step"] <= steps
              and 0 <= p["correct"] <= n_rows and p["stale"] >= 0
              and len(history["accuracy"]) == len(history["loss"]))
        if not ok:
            raise self._fail(f"position {p} does not fit a run of {config.epochs} epochs "
                             f"of {steps} steps")


def _differences(saved: dict, here: dict) -> str:
    keys = sorted(set(saved) | set(here))
    return ", ".join(f"{k}: {saved.get(k)!r} there, {here.get(k)!r} here"
                     for k in keys if saved.get(k) != here.get(k))


def _check_settings(saved: Checkpoint, settings: dict) -> None:
    diff = _differences(saved.meta["settings"], settings)
    if settings and diff:
        raise saved._fail(f"written with other settings ({diff})")


def read_settings(path: str | os.PathLike) -> dict:
    """The ``settings`` stored with a checkpoint (e.g. the command line's training settings)."""
    return load_checkpoint(path).meta["settings"]


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint file; any problem is one :class:`ModelFileError`."""
    path = Path(path)
    members = read_model_npz(path, _MEMBERS, what="checkpoint")
    raw = members.get("metadata")
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(f"checkpoint {path}: not a softmaxreg checkpoint (no metadata)")
    try:
        meta = parse_json(str(raw), MAX_METADATA_CHARS)
    except SchemaError as exc:
        raise ModelFileError(f"checkpoint {path}: metadata {exc}") from None
    _check_metadata(path, meta)
    params = members.get("params")
    if params is None or params.ndim != 1 or params.dtype.kind != "f" or params.size == 0:
        raise ModelFileError(f"checkpoint {path}: params must be a float vector")
    for name, array in members.items():
        if name != "metadata" and (array.dtype.kind not in "biuf" or not _finite(array)):
            raise ModelFileError(f"checkpoint {path}: {name} must hold finite numbers")
    return Checkpoint(path, meta, members)


def _finite(array: np.ndarray) -> bool:
    return array.dtype.kind != "f" or bool(np.all(np.isfinite(array)))


def _check_metadata(path: Path, meta: Any) -> None:
    """The JSON part fits :data:`softmaxreg.io.schema.CHECKPOINT` (every field, each of its
    type and range, the caller's ``settings.training`` those of ``softmaxreg train``)."""
    def fail(problem: str) -> ModelFileError:
        return ModelFileError(f"checkpoint {path}: {problem}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise fail("not a softmaxreg checkpoint (wrong format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise fail(f"checkpoint format {version!r}; this softmaxreg reads format "
                   f"{FORMAT_VERSION} — upgrade softmaxreg")
    try:
        check(meta, CHECKPOINT)
    except SchemaError as exc:
        raise fail(f"bad metadata: {exc}") from None
    history = meta["history"]
    if len(history["accuracy"]) != len(history["loss"]):
        raise fail("bad metadata: history.loss and history.accuracy differ in length")
