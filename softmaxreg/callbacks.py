"""Progress and monitoring of a fit through scikit-learn's callback API (``sklearn.callback``).

A fit is one root task whose subtasks are the solver's iterations (L-BFGS, FISTA) or the
epochs of a minibatch solver.  At the end of each, the callbacks set with
``estimator.set_callbacks(...)`` — scikit-learn's ``ProgressBar``, ``ScoringMonitor`` or your
own — see the estimator as if the fit had stopped there (``fitted_estimator``), and any of them
may stop the fit by returning True.  Our own progress bar (``verbose=1``) is one more such
callback, :class:`TqdmProgress`, so it goes through the same hooks.

With a scikit-learn older than 1.9, which has no callback API, :class:`CallbackSupportMixin` is
a stand-in that drives :class:`TqdmProgress` alone: the estimators work as before.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

from tqdm.auto import tqdm

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9
    CallbackSupportMixin = None


class TqdmProgress:
    """A tqdm bar over the subtasks (iterations or epochs) of a fit, with the last loss."""

    def setup(self, estimator, context):
        self.bar = None

    def on_fit_task_begin(self, estimator, context):
        if context.parent is None:
            self.bar = tqdm(total=context.max_subtasks or None, desc=type(estimator).__name__,
                            unit=context.task_name.rsplit(" ", 1)[-1], leave=False)

    def on_fit_task_end(self, estimator, context):
        if context.parent is not None and self.bar is not None:
            self.bar.update()
            curve = getattr(estimator, "loss_curve_", None)
            if curve:
                self.bar.set_postfix(loss=f"{curve[-1]:.6f}")

    def teardown(self, estimator, context):
        if self.bar is not None:
            self.bar.close()


class _Context:
    """The least of ``sklearn.callback.CallbackContext`` that :class:`TqdmProgress` needs, for a
    scikit-learn without callbacks."""

    def __init__(self, callbacks, task_name, max_subtasks=0, parent=None):
        self.callbacks, self.task_name = callbacks, task_name
        self.max_subtasks, self.parent = max_subtasks, parent

    def subcontext(self, task_name=""):
        return _Context(self.callbacks, task_name, 0, self)

    def call_on_fit_task_begin(self, *, estimator, **kwargs):
        for callback in self.callbacks:
            callback.on_fit_task_begin(estimator, self)

    def call_on_fit_task_end(self, *, estimator, **kwargs):
        for callback in self.callbacks:
            callback.on_fit_task_end(estimator, self)
        return False


if CallbackSupportMixin is None:

    class CallbackSupportMixin:  # type: ignore[no-redef]
        def _init_callback_context(self, task_name="fit", max_subtasks=0):
            self._callback_fit_ctx = _Context(self._skl_callbacks, task_name, max_subtasks)
            for callback in self._skl_callbacks:
                callback.setup(self, self._callback_fit_ctx)
            return self._callback_fit_ctx

    def with_callbacks(method):
        return method


class FitTasks:
    """The callback context of one fit: ``step(...)`` after each iteration or epoch."""

    def __init__(self, estimator, context, X, y):
        self.estimator, self.context, self.X, self.y = estimator, context, X, y

    def step(self, task_name: str, snapshot) -> bool:
        """One subtask done; ``snapshot()`` gives the attributes of the estimator as fitted so
        far (called only if a callback asks).  True when a callback asks to stop."""
        sub = self.context.subcontext(task_name=task_name)
        sub.call_on_fit_task_begin(estimator=self.estimator, X=self.X, y=self.y)
        return bool(sub.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y,
                                             reconstruction_attributes=snapshot))


@contextmanager
def fit_tasks(estimator, task: str, max_subtasks: int, X, y):
    """The fit as a root task of at most ``max_subtasks`` subtasks, with the estimator's
    callbacks and, when ``estimator.verbose``, a :class:`TqdmProgress`."""
    own = [TqdmProgress()] if estimator.verbose else []
    user = list(estimator.__dict__.get("_skl_callbacks", []))
    estimator.__dict__["_skl_callbacks"] = user + own
    try:
        context = estimator._init_callback_context(task_name=task, max_subtasks=max_subtasks)
    finally:
        _restore(estimator, user)
    context.call_on_fit_task_begin(estimator=estimator, X=X, y=y)
    try:
        yield FitTasks(estimator, context, X, y)
        context.call_on_fit_task_end(estimator=estimator, X=X, y=y,
                                     reconstruction_attributes=lambda: {})
    finally:
        if own and not hasattr(estimator, "_skl_callbacks_to_teardown"):  # no sklearn API
            for callback in own:
                callback.teardown(estimator, context)


def _restore(estimator, user: list) -> None:
    if user:
        estimator.__dict__["_skl_callbacks"] = user
    else:
        estimator.__dict__.pop("_skl_callbacks", None)


def snapshot_of(network, params=None) -> dict:
    """The reconstruction attributes of an estimator whose network is ``network`` with its
    parameters now, or ``params`` (θ, a flat host vector)."""
    snapshot = copy.deepcopy(network)
    if params is not None:
        snapshot.set_params(params)
    return {"network_": snapshot}
