"""Numerical extremes: features of magnitude 1e30 and 1e-30 (and up to 1e300), constant and
duplicated columns, perfectly separable data with almost no penalty, one sample per class,
1,000 classes, one feature, float32 features whose squares overflow; and property-based tests of
the math on random shapes and extreme logits.

Whatever the data, a fit either ends with finite weights and probabilities (with a warning when
it stopped for a reason the user should know) or raises TrainingDivergedError, which keeps the
last finite weights; never another exception, never a NaN.  Where the answer is known it is
checked against scikit-learn's LogisticRegression or StandardScaler.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, TrainingDivergedError
from softmaxreg.functional import log_softmax, softmax, softmax_cross_entropy
from softmaxreg.network import Network
from softmaxreg.preprocessing import Scaling
from softmaxreg.workflow import TrainSettings
from softmaxreg.workflow import train as workflow_train


def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


XS, Y = iris()
DATA = {
    "1e30": (XS * 1e30, Y),
    "1e-30": (XS * 1e-30, Y),
    "1e30 and 1e-30 columns": (np.column_stack([XS[:, :2] * 1e30, XS[:, 2:] * 1e-30]), Y),
    "1e300": (XS * 1e300, Y),
    "float32 1e20 (squares overflow)": ((XS * 1e20).astype(np.float32), Y),
    "float32 1e20, two classes": ((XS * 1e20).astype(np.float32), Y == 1),
    "constant and duplicated columns": (np.column_stack([XS, np.full(150, 7.0), XS, XS[:, :1]]),
                                        Y),
    "one sample per class": (XS[[0, 50, 100]], Y[[0, 50, 100]]),
    "one feature": (XS[:, 2:3], Y),
}
ESTIMATORS = {
    "lbfgs": lambda: SoftmaxRegression(),
    "fista": lambda: SoftmaxRegression(solver="fista", l1_ratio=0.5, max_iter=50),
    "sgd": lambda: SoftmaxRegression(solver="sgd", max_iter=10, random_state=0),
    "adam": lambda: SoftmaxRegression(solver="adam", max_iter=10, random_state=0),
    "network adam": lambda: SoftmaxNetwork((8,), max_iter=10, random_state=0),
    "network lbfgs": lambda: SoftmaxNetwork((8,), solver="lbfgs", max_iter=30, random_state=0),
}


def fit_or_diverge(estimator, X, y):
    """Fit; the model must be usable afterwards (finite weights, probabilities summing to 1),
    whether the fit ended or raised TrainingDivergedError. Returns the warnings' messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(X, y)
        except TrainingDivergedError as exc:
            assert "scale the features" in str(exc) or "scale the data" in str(exc)
    assert np.all(np.isfinite(estimator.network_.params))
    P = estimator.predict_proba(X)
    assert np.all(np.isfinite(P)) and np.all(P >= 0)
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-5)
    assert set(estimator.predict(X)) <= set(np.unique(y))
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("solver", list(ESTIMATORS))
@pytest.mark.parametrize("data", list(DATA))
def test_every_solver_survives_extreme_data(data, solver):
    fit_or_diverge(ESTIMATORS[solver](), *DATA[data])


@pytest.mark.parametrize("data", ["constant and duplicated columns", "one sample per class",
                                  "one feature", "1e-30"])
def test_lbfgs_agrees_with_scikit_learn_where_the_problem_is_benign(data):
    X, y = DATA[data]
    ours = SoftmaxRegression(tol=1e-10, max_iter=1000).fit(X, y)
    ref = LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_float32_features_that_overflow_when_squared_fit_like_float64():
    X64 = XS * 1e20
    a = SoftmaxRegression().fit(X64.astype(np.float32), Y)
    b = SoftmaxRegression().fit(X64, Y)
    assert np.mean(a.predict(X64) == b.predict(X64)) >= 0.95
    assert np.mean(b.predict(X64) == Y) > 0.8


@pytest.mark.parametrize("classes", [2, 3])
def test_separable_data_without_penalty_warns_why_the_fit_stops(classes):
    X = np.vstack([XS[Y == k] + 10 * k for k in range(classes)])
    y = np.repeat(np.arange(classes), 50)
    with pytest.warns(ConvergenceWarning, match="perfectly separable.*smaller C"):
        model = SoftmaxRegression(C=1e10).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and model.score(X, y) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a real penalty: no warning
        SoftmaxRegression(C=1.0).fit(X, y)


def test_a_thousand_classes():
    rng = np.random.default_rng(0)
    K, d = 1000, 16
    centres = rng.normal(scale=4.0, size=(K, d))
    y = np.repeat(np.arange(K), 3)
    X = centres[y] + rng.normal(size=(len(y), d))
    full = SoftmaxRegression(max_iter=200).fit(X, y)
    assert full.coef_.shape == (K, d) and full.score(X, y) > 0.9
    mini = SoftmaxRegression(solver="adam", learning_rate_init=0.05, max_iter=20,
                             random_state=0)
    fit_or_diverge(mini, X, y)
    assert mini.score(X, y) > 0.5
    P = full.predict_proba(X)
    assert P.shape == (len(y), K) and np.all(np.isfinite(P))


# -- preprocessing at the edges of float64 -------------------------------------------------------
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("X", [XS * 1e200, XS * 1e300, XS * 1e-300,
                               (XS * 1e20).astype(np.float32),
                               np.column_stack([XS[:, :2] * 1e300, XS[:, 2:] * 1e-300])],
                         ids=["1e200", "1e300", "1e-300", "float32 1e20", "mixed"])
def test_standard_scaling_of_extreme_features(X):
    """Sums and squares of 1e300 overflow; 1e-300 underflows in float32: neither may show."""
    reference = StandardScaler().fit_transform(X.astype(np.float64) / np.abs(X).max(axis=0))
    for matrix in (X, sp.csr_matrix(X)):
        scaling = Scaling("standard").fit(matrix)
        out = scaling.transform(matrix)
        out = out.toarray() if sp.issparse(out) else out
        if sp.issparse(matrix):  # sparse scaling divides by the standard deviation only
            reference_sparse = X / np.abs(X).max(axis=0) / (X / np.abs(X).max(axis=0)).std(0)
            assert_allclose(out, reference_sparse, rtol=1e-5, atol=1e-6)
        else:
            assert_allclose(out, reference, rtol=1e-5, atol=1e-5)


def test_the_command_line_workflow_scales_features_of_1e300_and_1e_minus_30(tmp_path):
    X, y = load_iris(return_X_y=True)
    X = np.column_stack([X[:, :2] * 1e300, X[:, 2:] * 1e-30])
    path = tmp_path / "extreme.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g")
    result = workflow_train(TrainSettings(dataset=str(path), progress=False))
    assert result.report["test"]["accuracy"] > 0.9


# -- properties of the math (hypothesis) --------------------------------------------------------
BIG = float(np.float32(1e30))  # logits up to ±1e30, in float32 and float64


@settings(max_examples=150, deadline=None, derandomize=True)
@given(Z=st.integers(1, 6).flatmap(lambda K: arrays(
    st.sampled_from([np.float64, np.float32]), st.tuples(st.integers(1, 5), st.just(K)),
    elements=st.floats(-BIG, BIG, width=32))))
def test_probabilities_of_extreme_logits_sum_to_one_without_nan(Z):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        P, log_P = softmax(Z), log_softmax(Z)
    assert P.dtype == Z.dtype and np.all(np.isfinite(log_P) | (P == 0))
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6 if Z.dtype == np.float32 else 1e-12)
    y = Z.argmax(axis=1)
    loss, _ = softmax_cross_entropy(Z, y)
    assert 0 <= loss < 10  # the argmax class: -log p ≤ log K


@settings(max_examples=100, deadline=None, derandomize=True)
@given(Z=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 5)),
                elements=st.floats(-30, 30)),
       c=st.floats(-1e6, 1e6))
def test_cross_entropy_is_shift_invariant_and_nonnegative(Z, c):
    y = np.arange(len(Z)) % Z.shape[1]
    a, dA = softmax_cross_entropy(Z, y)
    b, dB = softmax_cross_entropy(Z + c, y)
    assert a >= 0 and b >= 0
    assert b == pytest.approx(a, rel=1e-9, abs=abs(c) * 1e-15)
    assert_allclose(dB, dA, atol=abs(c) * 1e-15 + 1e-15)


@st.composite
def networks(draw):
    """A random float64 network (smooth activations: differences near a relu kink mislead),
    inputs, labels, row weights and penalty."""
    d = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 4), max_size=2))
    K = draw(st.sampled_from([1, 2, 3, 5]))  # 1: the sigmoid output for two classes
    activation = draw(st.sampled_from(["tanh", "sigmoid", "identity"]))
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    net = Network((d, *hidden, K), activation=activation,
                  output="sigmoid" if K == 1 else "softmax").initialize(rng)
    net.params[...] += rng.normal(scale=0.3, size=net.params.size)  # intercepts too
    X = rng.normal(size=(n, d))
    y = rng.integers(0, max(K, 2), size=n)
    weights = rng.uniform(0.2, 2.0, size=n) if draw(st.booleans()) else None
    l2 = draw(st.sampled_from([0.0, 0.3]))
    return net, X, y, weights, l2


@settings(max_examples=120, deadline=None, derandomize=True)
@given(problem=networks())
def test_backpropagation_matches_central_differences_on_random_shapes(problem):
    net, X, y, weights, l2 = problem
    theta = net.params.copy()
    _, grad, _ = net.loss_grad(X, y, weights, l2)
    grad = grad.copy()

    def J(vector):
        net.params[...] = vector
        return net.loss_grad(X, y, weights, l2)[0]

    h = 1e-6
    numeric = np.array([(J(theta + h * e) - J(theta - h * e)) / (2 * h)
                        for e in np.eye(theta.size)])
    assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
