"""The array-API backend: fits on PyTorch (CPU) tensors and array-api-strict arrays under
``sklearn.config_context(array_api_dispatch=True)`` against the NumPy fit of the same estimator.

The reference is independent of the namespace under test in the way that matters: NumPy runs the
same equations through NumPy's own idioms (``out=``, fancy indexing, einsum), the other namespaces
through the standard's expressions; PyTorch brings its own kernels and summation orders.  In
float64 the two agree to 1e-8 relative (same solver path, same iterations); in float32 to what
float32 and the solver's tolerance allow.  array-api-strict's "device1" refuses every implicit
conversion to NumPy, so a fit there shows that X never goes to the host.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.utils._array_api import move_estimator_to
from sklearn.utils.estimator_checks import (
    check_array_api_input_and_values,
    check_array_api_mixed_inputs,
)

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, load
from softmaxreg._array_api import device, namespace, to_numpy
from softmaxreg.network import Network
from softmaxreg.objective import objective

torch = pytest.importorskip("torch")
xps = pytest.importorskip("array_api_strict")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NAMESPACES = {  # name -> array on that namespace and device, from a NumPy array
    "torch": lambda a: torch.asarray(a),
    "strict": lambda a: xps.asarray(a),
    "strict-device1": lambda a: xps.asarray(a, device=xps.Device("device1")),
}


@pytest.fixture(autouse=True)
def _scipy_array_api(monkeypatch):
    """scikit-learn refuses array_api_dispatch unless SCIPY_ARRAY_API=1 (its CI sets it)."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def _dispatch():
    return sklearn.config_context(array_api_dispatch=True)


def _rel(a, b) -> float:
    """max |a − b| / max |b|, on the host."""
    a, b = (np.asarray(to_numpy(v), dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _params(model) -> list:
    return [model.coef_, model.intercept_] if hasattr(model, "coef_") else \
        [*model.coefs_, *model.intercepts_]


def _fit_both(make, X, y, name, sample_weight=None):
    """(NumPy fit, fit on namespace ``name`` under dispatch, that namespace's converter)."""
    to = NAMESPACES[name]
    kw = {} if sample_weight is None else {"sample_weight": sample_weight}
    ref = make().fit(X, y, **kw)
    kw = {} if sample_weight is None else {"sample_weight": to(sample_weight)}
    with _dispatch():
        model = make().fit(to(X), to(y), **kw)
    return ref, model, to


CASES_64 = {
    "lbfgs": (lambda: SoftmaxRegression(C=1.0, dtype="float64"), False, False),
    "lbfgs, two classes": (lambda: SoftmaxRegression(C=1.0, dtype="float64"), True, False),
    "lbfgs, balanced, weights": (
        lambda: SoftmaxRegression(C=0.5, class_weight="balanced", dtype="float64"), False, True),
    "fista, elastic net": (
        lambda: SoftmaxRegression(solver="fista", l1_ratio=0.5, max_iter=300, dtype="float64"),
        False, False),
    "network, adam, 1 epoch": (
        lambda: SoftmaxNetwork((32, 16), max_iter=1, random_state=0, dtype="float64"),
        False, False),
    "network, sgd, early stopping, weights": (
        lambda: SoftmaxNetwork((32,), solver="sgd", max_iter=3, early_stopping=True,
                               random_state=0, dtype="float64"), False, True),
    "network, lbfgs": (
        lambda: SoftmaxNetwork((16,), solver="lbfgs", max_iter=30, random_state=0,
                               dtype="float64"), False, False),
}


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("case", CASES_64)
def test_float64_fits_equal_the_numpy_fit(digits, case, name):
    """Same solver path: the same iterations, parameters to 1e-8 relative, the same labels."""
    make, binary, weighted = CASES_64[case]
    X, y = digits
    if binary:
        X, y = X[y < 2], y[y < 2]
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    ref, model, to = _fit_both(make, X, y, name, sw)
    for got, want in zip(_params(model), _params(ref)):
        assert _rel(got, want) <= 1e-8
    assert_array_equal(np.ravel(to_numpy(model.n_iter_)), np.ravel(ref.n_iter_))
    assert_allclose(model.loss_, ref.loss_, rtol=1e-8)
    with _dispatch():
        P, labels = model.predict_proba(to(X)), model.predict(to(X))
    assert_allclose(to_numpy(P), ref.predict_proba(X), rtol=1e-8, atol=1e-12)
    assert_array_equal(to_numpy(labels), ref.predict(X))


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_objective_and_epoch_agree_to_float32_precision(digits, name):
    """One objective evaluation at the same θ, and one epoch of Adam, in float32."""
    X, y = digits
    X32, to = X.astype(np.float32), NAMESPACES[name]
    theta = np.random.default_rng(1).normal(0, 0.1, 65 * 10)
    J_ref, g_ref = objective(Network((64, 10), dtype=np.float32), X32, y, None, 1e-3)(theta)
    net = Network((64, 10), dtype=np.float32, xp=namespace(to(X32)), device=device(to(X32)))
    J, g = objective(net, to(X32), y, None, 1e-3)(theta)
    assert abs(J - J_ref) <= 1e-6 * abs(J_ref)
    assert _rel(g, g_ref) <= 1e-5

    ref, model, _ = _fit_both(lambda: SoftmaxNetwork((32, 16), max_iter=1, random_state=0,
                                                     dtype="float32"), X32, y, name)
    assert model.coefs_[0].dtype == to(X32).dtype
    for got, want in zip(_params(model), _params(ref)):
        assert _rel(got, want) <= 1e-5


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_exact_fit_agrees_within_the_solver_tolerance(digits, name):
    """L-BFGS in float32 follows the NumPy path up to rounding that the line search can amplify:
    the iterations match, and the coefficients agree far inside their distance to the optimum
    at tol=1e-4 (about 1e-2 relative on digits)."""
    X, y = digits
    ref, model, to = _fit_both(lambda: SoftmaxRegression(C=1.0), X.astype(np.float32), y, name)
    assert model.coef_.dtype == to(X.astype(np.float32)).dtype
    assert_array_equal(to_numpy(model.n_iter_), ref.n_iter_)
    assert _rel(model.coef_, ref.coef_) <= 1e-3
    assert_allclose(model.loss_, ref.loss_, rtol=1e-6)


@pytest.mark.parametrize("name", NAMESPACES)
def test_fitted_attributes_and_outputs_live_where_X_lives(digits, name):
    X, y = digits
    to = NAMESPACES[name]
    Xd = to(X)
    with _dispatch():
        reg = SoftmaxRegression().fit(Xd, to(y))
        net = SoftmaxNetwork((8,), max_iter=2, random_state=0).fit(Xd, to(y))
        outputs = [reg.coef_, reg.intercept_, reg.n_iter_, *net.coefs_, *net.intercepts_]
        for model in (reg, net):
            outputs += [model.classes_, model.predict(Xd), model.predict_proba(Xd),
                        model.predict_log_proba(Xd), model.decision_function(Xd)]
        assert isinstance(reg.score(Xd, to(y)), float)
    for out in outputs:
        assert namespace(out) is namespace(Xd) and device(out) == device(Xd)


def test_classes_follow_y_and_string_labels_come_back_as_numpy(digits):
    """As LogisticRegression under dispatch: classes_ in y's namespace; string labels stay
    NumPy, and predict returns them as NumPy."""
    X, y = digits
    names = np.array(["zero", "one", "two"])[y[y < 3]]
    Xt = torch.asarray(X[y < 3])
    with _dispatch():
        model = SoftmaxRegression().fit(Xt, names)
        labels = model.predict(Xt)
    assert isinstance(model.classes_, np.ndarray) and isinstance(labels, np.ndarray)
    assert_array_equal(labels, SoftmaxRegression().fit(X[y < 3], names).predict(X[y < 3]))


def test_without_dispatch_tensors_are_converted_to_numpy_as_before(digits):
    X, y = digits
    model = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(model.coef_, np.ndarray) and isinstance(model.classes_, np.ndarray)
    P = model.predict_proba(torch.asarray(X))
    assert isinstance(P, np.ndarray)
    assert_allclose(P, SoftmaxRegression().fit(X, y).predict_proba(X), rtol=1e-12, atol=1e-15)


def test_sparse_input_under_dispatch_is_fitted_on_the_host(digits):
    X, y = digits
    with _dispatch():
        model = SoftmaxRegression().fit(sp.csr_matrix(X), y)
    assert isinstance(model.coef_, np.ndarray)
    assert_array_equal(model.coef_, SoftmaxRegression().fit(sp.csr_matrix(X), y).coef_)


@pytest.mark.parametrize("name", ["torch", "strict-device1"])
def test_a_model_fitted_on_a_device_saves_moves_and_pickles(digits, name, tmp_path):
    X, y = digits
    to = NAMESPACES[name]
    for model in (SoftmaxRegression(), SoftmaxNetwork((8,), max_iter=2, random_state=0)):
        with _dispatch():
            model.fit(to(X), to(y))
            P = to_numpy(model.predict_proba(to(X)))
        model.save(tmp_path / "model.npz")  # stored as NumPy
        loaded = load(tmp_path / "model.npz")
        assert isinstance(loaded.network_.params, np.ndarray)
        assert_allclose(loaded.predict_proba(X), P, rtol=1e-6, atol=1e-7)
        host = move_estimator_to(model, np, "cpu")  # scikit-learn's way to move a model
        assert isinstance(host.network_.params, np.ndarray) and isinstance(host.classes_,
                                                                           np.ndarray)
        assert_allclose(host.predict_proba(X), P, rtol=1e-6, atol=1e-7)
        again = pickle.loads(pickle.dumps(model))
        with _dispatch():
            assert_allclose(to_numpy(again.predict_proba(to(X))), P)


def test_partial_fit_continues_on_the_device(digits):
    X, y = digits
    Xt, yt = torch.asarray(X), torch.asarray(y)
    ref = SoftmaxNetwork((16,), random_state=0, dtype="float64")
    ref.partial_fit(X, y, classes=np.arange(10)).partial_fit(X, y)
    model = SoftmaxNetwork((16,), random_state=0, dtype="float64")
    with _dispatch():
        model.partial_fit(Xt, yt, classes=torch.arange(10)).partial_fit(Xt, yt)
    assert model.network_.xp is namespace(Xt)
    assert _rel(model.coefs_[0], ref.coefs_[0]) <= 1e-8


def _crossings(monkeypatch) -> list[tuple]:
    """Record the shape of every array that leaves array-api-strict for NumPy (to_numpy uses
    DLPack; device1 refuses ``np.asarray``, so there is no other way out)."""
    seen, original = [], np.from_dlpack

    def recorded(a, *args, **kwargs):
        seen.append(tuple(a.shape))
        return original(a, *args, **kwargs)

    monkeypatch.setattr(np, "from_dlpack", recorded)
    return seen


def test_only_theta_and_the_gradient_cross_per_lbfgs_evaluation(digits, monkeypatch):
    X, y = digits
    Xd, yd = NAMESPACES["strict-device1"](X), NAMESPACES["strict-device1"](y)
    seen = _crossings(monkeypatch)
    evaluations = []
    model = SoftmaxRegression()
    with _dispatch():
        from softmaxreg import objective as objective_module

        call = objective_module.Objective.__call__
        monkeypatch.setattr(objective_module.Objective, "__call__",
                            lambda self, theta: evaluations.append(1) or call(self, theta))
        model.fit(Xd, yd)
    n_params = 65 * 10
    assert (X.shape[0], X.shape[1]) not in seen  # X itself never crossed
    # per evaluation one gradient (n_params,); besides: θ once at the start of the solve, the
    # labels y (n,) and classes (K,), and the Gram sums of the two preconditioner stages
    assert seen.count((n_params,)) == len(evaluations) + 1
    assert set(seen) <= {(n_params,), (X.shape[0],), (10,), (64,), (64, 64)}


def test_nothing_crosses_per_minibatch_step(digits, monkeypatch):
    X, y = digits
    Xd, yd = NAMESPACES["strict-device1"](X), NAMESPACES["strict-device1"](y)
    counts = []
    for batch_size in (64, 16):  # 29 and 113 steps per epoch
        seen = _crossings(monkeypatch)
        with _dispatch():
            SoftmaxNetwork((16,), batch_size=batch_size, max_iter=2, random_state=0).fit(Xd, yd)
        counts.append(len(seen))
        assert all(len(s) <= 1 and s != (X.shape[0], X.shape[1]) for s in seen)
    assert counts[0] == counts[1]  # what crosses does not grow with the number of steps


@pytest.mark.parametrize("name", ["torch", "array_api_strict"])
@pytest.mark.parametrize("estimator", [SoftmaxRegression(), SoftmaxNetwork((8,), max_iter=20)],
                         ids=type)
def test_sklearn_array_api_values_check(estimator, name):
    """scikit-learn's value-checking variant (not in its default list): attributes and outputs
    equal to the NumPy fit's at its float64 tolerance."""
    device_name = "cpu" if name == "torch" else "CPU_DEVICE"
    check_array_api_input_and_values(type(estimator).__name__, estimator,
                                     array_namespace=name, device_name=device_name,
                                     check_sample_weight=True)


def test_sklearn_mixed_inputs_check_with_numpy_labels():
    """X on array-api-strict's device1, y and sample_weight NumPy (scikit-learn's mixed check
    covers the torch-labels permutation in test_sklearn_compat)."""
    from sklearn.utils._array_api import NamespaceAndDevice

    check_array_api_mixed_inputs("SoftmaxRegression", SoftmaxRegression(),
                                 X_ns_and_device=NamespaceAndDevice("array_api_strict", "device1"),
                                 other_ns_and_device=NamespaceAndDevice("numpy", None))
