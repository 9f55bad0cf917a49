"""scikit-learn's callback API (sklearn.callback, 1.9+) on both estimators: what a callback sees
after an iteration or epoch is the model a fit stopped there gives, ProgressBar and
ScoringMonitor work alone and inside Pipeline/GridSearchCV, a callback can stop a fit, our own
progress bar goes through the same hooks, and without the API the estimators fit as before."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, callbacks

sk_callback = pytest.importorskip("sklearn.callback")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def _quiet(fit, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args)


def _scores(monitor) -> dict[int, float]:
    """accuracy per subtask (iteration or epoch), by its 0-based task id."""
    return {row["task_id"]: row["accuracy"] for row in monitor.get_logs().data
            if len(row["task_id_path"]) == 2}


@pytest.mark.parametrize("make", [
    lambda k: SoftmaxRegression(max_iter=k),
    lambda k: SoftmaxRegression(solver="fista", l1_ratio=0.5, C=10, max_iter=k),
    lambda k: SoftmaxNetwork((16,), max_iter=k, random_state=0),
], ids=["lbfgs", "fista", "network-adam"])
def test_scoring_monitor_sees_the_model_a_shorter_fit_gives(digits, make):
    """The score logged after subtask k is the score of the same fit stopped by max_iter = k
    (the solvers and the epoch order are deterministic): the independent reference."""
    X, y = digits
    monitor = sk_callback.ScoringMonitor(scoring="accuracy")
    model = _quiet(make(12).set_callbacks(monitor).fit, X, y)
    scores = _scores(monitor)
    assert len(scores) == int(np.ravel(model.n_iter_)[0])
    for k in (1, 5, len(scores)):
        shorter = _quiet(make(k).fit, X, y)
        assert scores[k - 1] == pytest.approx(shorter.score(X, y), abs=1e-12)


def test_a_callback_can_stop_the_fit(digits):
    X, y = digits

    class StopAfterFive:
        def setup(self, estimator, context): ...
        def teardown(self, estimator, context): ...
        def on_fit_task_begin(self, estimator, context): ...

        def on_fit_task_end(self, estimator, context):
            return context.parent is not None and context.task_id == 4

    for model in (SoftmaxRegression(max_iter=100), SoftmaxNetwork((8,), max_iter=50)):
        _quiet(model.set_callbacks(StopAfterFive()).fit, X, y)
        assert int(np.ravel(model.n_iter_)[0]) == 5


def test_progress_bar_alone_and_in_meta_estimators(digits):
    pytest.importorskip("rich")
    X, y = digits
    _quiet(SoftmaxRegression(max_iter=5).set_callbacks(sk_callback.ProgressBar()).fit, X, y)
    _quiet(SoftmaxNetwork((8,), max_iter=2).set_callbacks(sk_callback.ProgressBar()).fit, X, y)
    search = GridSearchCV(make_pipeline(StandardScaler(), SoftmaxRegression(max_iter=20)),
                          {"softmaxregression__C": [0.1, 1.0]}, cv=2)
    _quiet(search.set_callbacks(sk_callback.ProgressBar()).fit, X, y)
    assert search.best_params_["softmaxregression__C"] in (0.1, 1.0)


def test_our_progress_bar_goes_through_the_hooks(digits, monkeypatch):
    X, y = digits
    ends = []
    original = callbacks.TqdmProgress.on_fit_task_end

    def counted(self, estimator, context):
        ends.append(context.task_name)
        return original(self, estimator, context)

    monkeypatch.setattr(callbacks.TqdmProgress, "on_fit_task_end", counted)
    model = _quiet(SoftmaxNetwork((8,), max_iter=4, verbose=1).fit, X, y)
    assert ends.count("epoch") == model.n_iter_ == 4
    ends.clear()
    _quiet(SoftmaxNetwork((8,), max_iter=4, verbose=0).fit, X, y)
    assert ends == []


def test_without_the_callback_api_the_estimators_fit_as_before():
    """scikit-learn < 1.9 has no sklearn.callback: hide it, fit with and without verbose."""
    code = (
        "import sys, types\n"
        "import sklearn.base, sklearn.datasets, sklearn.linear_model, sklearn.metrics\n"
        "import sklearn.model_selection, sklearn.pipeline, sklearn.preprocessing\n"
        "sys.modules['sklearn.callback'] = types.ModuleType('sklearn.callback')  # no API\n"
        "from sklearn.datasets import load_iris\n"
        "from softmaxreg import SoftmaxNetwork, SoftmaxRegression\n"
        "X, y = load_iris(return_X_y=True)\n"
        "a = SoftmaxRegression(verbose=1).fit(X, y)\n"
        "b = SoftmaxNetwork((8,), max_iter=3, verbose=1).fit(X, y)\n"
        "assert not hasattr(a, 'set_callbacks')\n"
        "print(a.score(X, y) > 0.9, b.n_iter_)\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "3"]


def test_a_kept_fitted_estimator_stays_as_it_was(digits):
    """A callback may keep the ``fitted_estimator`` it is given: it must stay the model of that
    iteration, not follow the fit (the snapshot copies the network)."""
    X, y = digits

    class Keep:
        def __init__(self):
            self.kept = []

        def setup(self, estimator, context): ...
        def teardown(self, estimator, context): ...
        def on_fit_task_begin(self, estimator, context): ...

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if context.parent is not None:
                self.kept.append(fitted_estimator)

    for make in (lambda k: SoftmaxRegression(max_iter=k),
                 lambda k: SoftmaxNetwork((8,), max_iter=k, random_state=0)):
        keep = Keep()
        _quiet(make(6).set_callbacks(keep).fit, X, y)
        for k in (1, 3):
            shorter = _quiet(make(k).fit, X, y)
            np.testing.assert_allclose(keep.kept[k - 1].predict_proba(X),
                                       shorter.predict_proba(X), rtol=1e-6, atol=1e-9)
