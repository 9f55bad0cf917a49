"""SoftmaxRegression and SoftmaxNetwork against independent references.

scikit-learn's LogisticRegression (a different solver on the same objective) for the
coefficients, repeated rows for sample weights, a hand-built two-unit softmax network for the
K = 2 reduction, MLPClassifier-style floors for the networks, and tracemalloc for the claim that
sparse input is never made dense.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, TrainingDivergedError
from softmaxreg.network import Network
from softmaxreg.objective import objective
from softmaxreg.solvers import lbfgs


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """These problems are small: OpenBLAS threads only contend (a digits fit took 12 s on two
    busy cores with two threads, 0.9 s with one)."""
    with threadpool_limits(1):
        yield


def _quiet(fit, *args, **kwargs):
    """Call ``fit`` with ConvergenceWarning silenced (where a short run is intended)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def _reference(X, y, sample_weight=None, **kwargs):
    """LogisticRegression solved to the last digit (Newton steps with a Cholesky solve)."""
    ref = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000, **kwargs)
    return ref.fit(X, y, sample_weight=sample_weight)


def _assert_close_rel(actual, desired, rtol):
    """Equal to ``rtol`` relative to the largest entry (entries near 0 have no relative size)."""
    desired = np.asarray(desired)
    assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.abs(desired).max())


@pytest.fixture(scope="module")
def digits_split():
    """Digits standardised, 75/25 stratified split with seed 0 (the CLI's protocol)."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# -- the objective is LogisticRegression's -------------------------------------------------
@pytest.mark.parametrize("load", [load_iris, load_wine, load_digits],
                         ids=["iris", "wine", "digits"])
def test_multinomial_solution_matches_logistic_regression(load):
    """Wine is left unscaled on purpose: its features span five orders of magnitude."""
    X, y = load(return_X_y=True)
    ref = _reference(X, y)
    model = SoftmaxRegression(tol=1e-8, max_iter=10_000).fit(X, y)
    assert model.coef_.shape == ref.coef_.shape == (len(np.unique(y)), X.shape[1])
    _assert_close_rel(model.coef_, ref.coef_, 1e-4)
    _assert_close_rel(model.intercept_, ref.intercept_, 1e-4)
    assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_binary_solution_is_one_sigmoid_unit_matching_logistic_regression(cancer):
    X, y = cancer
    ref = _reference(X, y)
    model = SoftmaxRegression(tol=1e-8, max_iter=10_000).fit(X, y)
    assert model.coef_.shape == (1, X.shape[1]) and model.intercept_.shape == (1,)
    assert model.decision_function(X).shape == (X.shape[0],)
    assert model.predict_proba(X).shape == (X.shape[0], 2)
    _assert_close_rel(model.coef_, ref.coef_, 1e-4)
    _assert_close_rel(model.intercept_, ref.intercept_, 1e-4)
    assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert_array_equal(model.predict(X), ref.predict(X))


def test_two_classes_reduce_to_two_softmax_units_at_half_the_C(cancer):
    """Two softmax units W = [w0; w1] with penalty ½(‖w0‖² + ‖w1‖²) have, at the optimum,
    w0 = −w1 (a common shift of both rows leaves every probability unchanged and only the
    penalty moves, least at w0 + w1 = 0).  The logit of class 1 is then z = (w1 − w0)ᵀx = 2 w1ᵀx,
    and the penalty ‖w1‖² = ‖z-weights‖²/4 = ½ ‖v‖² / 2 with v = 2 w1: the objective
    C Σ CE + ¼ ‖v‖² is half of 2C Σ CE + ½ ‖v‖².  So one sigmoid unit at C = 2c equals two
    softmax units at C = c."""
    X, y = cancer
    c = 0.05
    n, d = X.shape
    two_units = Network((d, 2), activation="identity", output="softmax")
    f = objective(two_units, X, y, None, 1.0 / (c * n))
    res = lbfgs(f, two_units.params, 10_000, 1e-10)
    two_units.params[...] = res.x
    w0, w1 = two_units.W[0]
    assert_allclose(w0, -w1, atol=1e-6)

    sigmoid = SoftmaxRegression(C=2 * c, tol=1e-10, max_iter=10_000).fit(X, y)
    assert_allclose(sigmoid.coef_[0], 2 * w1, rtol=1e-5, atol=1e-7)
    assert_allclose(sigmoid.predict_proba(X), two_units.predict_proba(X), atol=1e-6)


def test_fit_intercept_false_matches_logistic_regression():
    X, y = load_iris(return_X_y=True)
    ref = _reference(X, y, fit_intercept=False)
    model = SoftmaxRegression(fit_intercept=False, tol=1e-8, max_iter=10_000).fit(X, y)
    _assert_close_rel(model.coef_, ref.coef_, 1e-4)
    assert_array_equal(model.intercept_, 0)


# -- labels, probabilities, dtypes -------------------------------------------------------
def test_string_and_integer_labels_give_the_same_model():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    by_int = SoftmaxRegression().fit(X, y + 10)
    by_name = SoftmaxRegression().fit(X, names)
    assert_array_equal(by_int.classes_, [10, 11, 12])
    assert_array_equal(by_name.classes_, ["setosa", "versicolor", "virginica"])
    assert_array_equal(by_name.predict(X), np.array(by_name.classes_)[by_int.predict(X) - 10])
    assert_allclose(by_name.predict_proba(X), by_int.predict_proba(X))


def test_predict_log_proba_is_log_of_predict_proba_and_keeps_its_digits():
    X, y = load_iris(return_X_y=True)
    model = SoftmaxRegression(C=1e4, max_iter=1000).fit(X, y)
    P, log_P = model.predict_proba(X), model.predict_log_proba(X)
    finite = P > 1e-300
    assert_allclose(log_P[finite], np.log(P[finite]), rtol=1e-10, atol=1e-12)
    # Far from the boundary P rounds to 1, yet the log-probability of the other class survives.
    far = np.array([[10.0, 0.0, 0.0, 0.0]]) * 100
    binary = SoftmaxRegression().fit(X[y < 2], y[y < 2])
    z = binary.decision_function(far)[0]
    assert abs(z) > 40
    assert_allclose(binary.predict_log_proba(far)[0].min(), -abs(z), rtol=1e-12)
    assert binary.predict_proba(far)[0].min() > 0  # σ(−z), not 1 − σ(z) = 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_input_give_the_same_predictions(dtype, digits_split):
    X_tr, X_te, y_tr, y_te = digits_split
    ref = SoftmaxRegression().fit(X_tr, y_tr)
    model = SoftmaxRegression().fit(X_tr.astype(dtype), y_tr)
    assert model.coef_.dtype == dtype  # L-BFGS works in the precision of the input
    assert np.mean(model.predict(X_te.astype(dtype)) == ref.predict(X_te)) > 0.99
    # both stop by tol (max |∂J/∂θ_i| ≤ 1e-5); float32's gradient is rounded near there:
    # the largest difference measured was 1.6e-3
    assert_allclose(model.predict_proba(X_te), ref.predict_proba(X_te), atol=2e-3)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_minibatch_solvers_reach_93_percent_on_digits(solver, digits_split):
    X_tr, X_te, y_tr, y_te = digits_split
    model = _quiet(SoftmaxRegression(solver=solver, random_state=0).fit, X_tr, y_tr)
    assert model.coef_.dtype == np.float32  # minibatch training defaults to float32
    assert model.score(X_te, y_te) >= 0.93
    float64 = _quiet(SoftmaxRegression(solver=solver, random_state=0, dtype="float64").fit,
                     X_tr, y_tr)
    assert float64.coef_.dtype == np.float64 and float64.score(X_te, y_te) >= 0.93


# -- the network ---------------------------------------------------------------------------
def test_network_reaches_97_percent_on_digits_with_its_defaults(digits_split):
    X_tr, X_te, y_tr, y_te = digits_split
    model = _quiet(SoftmaxNetwork(random_state=0).fit, X_tr, y_tr)
    assert model.score(X_te, y_te) >= 0.97
    assert [W.shape for W in model.coefs_] == [(64, 128), (128, 64), (64, 10)]
    assert [b.shape for b in model.intercepts_] == [(128,), (64,), (10,)]
    assert model.n_iter_ == len(model.loss_curve_) >= 1
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert_allclose(model.predict_proba(X_te).sum(axis=1), 1, rtol=1e-5)


def test_network_is_reproducible_from_random_state(digits_split):
    X_tr, _, y_tr, _ = digits_split
    a, b, c = (_quiet(SoftmaxNetwork((16,), max_iter=3, random_state=s).fit, X_tr, y_tr)
               for s in (1, 1, 2))
    assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_loss_raises_and_leaves_finite_weights(digits_split):
    X_tr, _, y_tr, _ = digits_split
    model = SoftmaxNetwork((32,), solver="sgd", learning_rate_init=1e12, max_iter=5,
                           random_state=0)
    with pytest.raises(TrainingDivergedError, match="smaller learning rate"):
        model.fit(X_tr, y_tr)
    assert all(np.all(np.isfinite(W)) for W in model.coefs_ + model.intercepts_)
    assert model.predict(X_tr[:5]).shape == (5,)


# -- bad input -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.mark.parametrize("Estimator", [SoftmaxRegression, SoftmaxNetwork])
@pytest.mark.parametrize("bad, message", [
    ("nan", "Input X contains NaN"),
    ("inf", "Input X contains infinity"),
    ("one_class", "at least 2 classes"),
    ("lengths", "inconsistent numbers of samples"),
    ("empty", "0 sample"),
    ("strings", "could not convert string to float"),
])
def test_bad_training_input_gets_a_clear_value_error(Estimator, bad, message, iris):
    X, y = iris[0].copy(), iris[1]
    if bad == "nan":
        X[3, 2] = np.nan
    elif bad == "inf":
        X[3, 2] = np.inf
    elif bad == "one_class":
        X, y = X[y == 0], y[y == 0]
    elif bad == "lengths":
        y = y[:-1]
    elif bad == "empty":
        X, y = X[:0], y[:0]
    elif bad == "strings":
        X = X.astype(object)
        X[0, 0] = "setosa"
    with pytest.raises(ValueError, match=message):
        Estimator(max_iter=5).fit(X, y)


def test_predicting_with_another_number_of_features_names_both(iris):
    X, y = iris
    model = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegression is expecting 4"):
        model.predict(X[:, :3])


def test_l1_ratio_needs_the_proximal_solver(iris):
    with pytest.raises(ValueError, match="solver='fista'"):
        SoftmaxRegression(l1_ratio=0.5).fit(*iris)


# -- sparse input ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["lbfgs", "fista", "adam"])
def test_sparse_input_gives_the_dense_result_without_densifying(fmt, solver, digits_split):
    X_tr, X_te, y_tr, _ = digits_split
    kwargs = dict(solver=solver, random_state=0, max_iter=20, dtype="float64")
    if solver != "adam":
        kwargs.update(max_iter=10_000, tol=1e-8)
    dense = _quiet(SoftmaxRegression(**kwargs).fit, X_tr, y_tr)
    sparse_tr, sparse_te = sp.csr_matrix(X_tr).asformat(fmt), sp.csr_matrix(X_te).asformat(fmt)
    with pytest.MonkeyPatch.context() as mp:
        _never_densify(mp)
        model = _quiet(SoftmaxRegression(**kwargs).fit, sparse_tr, y_tr)
        P = model.predict_proba(sparse_te)
        log_P = model.predict_log_proba(sparse_te)
        Z = model.decision_function(sparse_te)
    assert_allclose(model.coef_, dense.coef_, atol=1e-5 * np.abs(dense.coef_).max())
    assert_allclose(P, dense.predict_proba(X_te), atol=2e-5)
    assert_allclose(log_P, np.log(P), atol=1e-9)
    assert Z.shape == P.shape


def _refuse_dense(self, *args, **kwargs):
    raise AssertionError("a sparse matrix was made dense")


def _sparse_classes():
    """Every class of scipy.sparse (CSR, CSC, COO, ... and their bases, matrices and arrays)."""
    seen = {}
    for name in dir(sp):
        obj = getattr(sp, name)
        if isinstance(obj, type) and issubclass(obj, (sp.spmatrix, sp.sparray)):
            seen.update((id(k), k) for k in obj.__mro__ if k.__module__.startswith("scipy.sparse"))
    return list(seen.values())


def _never_densify(mp):
    """Make every way scipy.sparse turns a matrix dense raise.  ``toarray`` is defined again by
    the CSR/CSC base (``_cs_matrix``), COO, BSR and LIL, and ``todense`` by ``spmatrix``: patching
    ``_spbase`` alone intercepts nothing on CSR or CSC."""
    for cls in _sparse_classes():
        for method in ("toarray", "todense", "__array__"):
            if method in vars(cls):
                mp.setattr(cls, method, _refuse_dense)


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array,
                                  sp.csc_array, sp.lil_matrix, sp.bsr_matrix])
def test_the_densify_guard_fires(make):
    X = make(np.eye(3))
    with pytest.MonkeyPatch.context() as mp:
        _never_densify(mp)
        for densify in (X.toarray, X.todense, lambda: X.T.toarray(), lambda: X.tocsr().toarray()):
            with pytest.raises(AssertionError, match="made dense"):
                densify()
    assert_array_equal(X.toarray(), np.eye(3))  # restored


def test_a_densified_minibatch_is_caught(digits_split):
    """The guard as the tests below use it, against the bug it is there for: minibatches of
    sparse rows gathered as dense arrays."""
    from softmaxreg.objective import MemoryRows

    X_tr, _, y_tr, _ = digits_split
    gather = MemoryRows._gather

    def dense_gather(self, rows):
        out = gather(self, rows)
        return out.toarray() if sp.issparse(out) else out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MemoryRows, "_gather", dense_gather)
        _never_densify(mp)
        with pytest.raises(AssertionError, match="made dense"):
            SoftmaxNetwork((8,), max_iter=1, random_state=0).fit(sp.csr_matrix(X_tr), y_tr)


def test_sparse_partial_fit_and_network_never_densify(digits_split):
    X_tr, _, y_tr, _ = digits_split
    X_csc = sp.csc_matrix(X_tr)
    with pytest.MonkeyPatch.context() as mp:
        _never_densify(mp)
        streamed = SoftmaxRegression(solver="adam", random_state=0)
        for chunk in np.array_split(np.arange(X_csc.shape[0]), 4):
            streamed.partial_fit(X_csc[chunk], y_tr[chunk], classes=np.arange(10))
        net = _quiet(SoftmaxNetwork((32,), max_iter=3, random_state=0).fit, X_csc, y_tr)
        streamed.predict(X_csc)
        net.predict_proba(X_csc)
    dense_net = _quiet(SoftmaxNetwork((32,), max_iter=3, random_state=0).fit, X_tr, y_tr)
    assert_allclose(net.coefs_[0], dense_net.coefs_[0], atol=1e-5)


def _sparse_corpus(n_docs, n_features, n_classes, seed=0):
    """TF-IDF of a generated corpus: Zipf-distributed common words shared by every class, plus
    15 draws from a class's 2000 topic words; about 45 distinct words per document."""
    rng = np.random.default_rng(seed)
    y = rng.integers(n_classes, size=n_docs)
    common = np.minimum(rng.zipf(1.3, size=(n_docs, 40)) - 1, n_features - 1)
    band = n_features // n_classes
    topic = y[:, None] * band + rng.integers(0, 2000, size=(n_docs, 15))
    cols = np.concatenate([common, topic], axis=1)
    rows = np.repeat(np.arange(n_docs), cols.shape[1])
    counts = sp.csr_matrix((np.ones(rows.size), (rows, cols.ravel())), shape=(n_docs, n_features))
    counts.sum_duplicates()
    return TfidfTransformer().fit_transform(counts).tocsr(), y


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_sparse_corpus_fits_in_a_tenth_of_its_dense_size(solver, peak_memory):
    """5000 documents × 131072 features: dense float64 would take 5.2 GB.  The fit and the
    prediction may take at most twice the peak measured (tracemalloc): L-BFGS 129.5 MB (mostly
    its history of 10 pairs of 393k-parameter vectors), Adam 14.3 MB; the CSR matrix is 2.3 MB."""
    X, y = _sparse_corpus(5000, 2**17, 3)
    dense_bytes = X.shape[0] * X.shape[1] * 8
    X_tr, X_te, y_tr, y_te = X[:4000], X[4000:], y[:4000], y[4000:]
    model = SoftmaxRegression(solver=solver, max_iter=100 if solver == "lbfgs" else 5,
                              learning_rate_init=0.01, random_state=0)
    with peak_memory() as traced:
        _quiet(model.fit, X_tr, y_tr)
        accuracy = model.score(X_te, y_te)
    peak = traced.bytes
    measured = {"lbfgs": 129_470_925, "adam": 14_349_107}[solver]
    assert peak * 10 < dense_bytes, f"peak {peak / 1e6:.0f} MB vs dense {dense_bytes / 1e6:.0f} MB"
    assert peak < 2 * measured, f"peak {peak / 1e6:.1f} MB, measured {measured / 1e6:.1f} MB"
    assert accuracy > 0.9


# -- weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True], ids=["multinomial", "binary"])
def test_integer_sample_weights_equal_repeated_rows(binary, iris):
    X, y = iris
    if binary:
        X, y = X[y > 0], y[y > 0]
    w = np.random.default_rng(0).integers(0, 4, size=len(y))
    kwargs = dict(tol=1e-10, max_iter=10_000)
    weighted = SoftmaxRegression(**kwargs).fit(X, y, sample_weight=w)
    repeated = SoftmaxRegression(**kwargs).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    _assert_close_rel(weighted.coef_, repeated.coef_, 1e-6)
    _assert_close_rel(weighted.intercept_, repeated.intercept_, 1e-6)


def test_sample_and_class_weights_match_logistic_regression(iris):
    X, y = iris
    w = np.random.default_rng(1).uniform(0.2, 3, size=len(y))
    for kwargs in (dict(class_weight="balanced"), dict(class_weight={0: 3, 1: 0.5, 2: 1})):
        ref = _reference(X[20:], y[20:], sample_weight=w[20:], **kwargs)
        model = SoftmaxRegression(tol=1e-8, max_iter=10_000, **kwargs)
        model.fit(X[20:], y[20:], sample_weight=w[20:])
        _assert_close_rel(model.coef_, ref.coef_, 1e-4)
        _assert_close_rel(model.intercept_, ref.intercept_, 1e-4)


def test_class_weight_dict_is_a_per_class_sample_weight(iris):
    X, y = iris
    cw = {0: 2.0, 1: 0.5, 2: 1.5}
    by_class = SoftmaxRegression(class_weight=cw, tol=1e-10, max_iter=10_000).fit(X, y)
    by_row = SoftmaxRegression(tol=1e-10, max_iter=10_000).fit(
        X, y, sample_weight=np.vectorize(cw.get)(y))
    _assert_close_rel(by_class.coef_, by_row.coef_, 1e-6)


def test_partial_fit_sample_weights_equal_repeated_rows(iris):
    """With a batch as large as the chunk, each call is one Adam step on the chunk's objective,
    whose weighted and repeated forms are the same function."""
    X, y = iris
    w = np.random.default_rng(2).integers(1, 4, size=len(y))
    kwargs = dict(solver="adam", batch_size=1000, dtype="float64", learning_rate_init=0.05)
    weighted, repeated = SoftmaxRegression(**kwargs), SoftmaxRegression(**kwargs)
    for _ in range(5):
        weighted.partial_fit(X, y, classes=[0, 1, 2], sample_weight=w)
        repeated.partial_fit(np.repeat(X, w, axis=0), np.repeat(y, w), classes=[0, 1, 2])
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_zero_weights_leave_rows_out(solver):
    """Whole minibatches (sgd, batch_size=1) and whole row blocks of the full-batch objective
    (the first 3000 rows) may carry no weight at all."""
    X, y = make_classification(n_samples=6000, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)
    w = np.ones(len(y))
    w[:3000] = 0
    w[3000::3] = 0
    kwargs = dict(solver=solver, batch_size=1, max_iter=2, random_state=0)
    weighted = _quiet(SoftmaxRegression(**kwargs).fit, X, y, sample_weight=w)
    subset = _quiet(SoftmaxRegression(**kwargs).fit, X[w > 0], y[w > 0])
    assert_allclose(weighted.coef_, subset.coef_)


def test_balanced_class_weight_is_refused_by_partial_fit(iris):
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        SoftmaxRegression(solver="adam", class_weight="balanced").partial_fit(*iris,
                                                                              classes=[0, 1, 2])


# -- streaming, warm starts, convergence warnings -----------------------------------------
def test_partial_fit_continues_one_run(digits_split):
    """Three calls on the whole data are the three epochs of one fit: same shuffles (seeded by
    the epoch count), and the optimiser's moments and step count carried over."""
    X_tr, _, y_tr, _ = digits_split
    for solver in ("adam", "sgd"):
        kwargs = dict(solver=solver, random_state=3, max_iter=3)
        fitted = _quiet(SoftmaxRegression(**kwargs).fit, X_tr, y_tr)
        streamed = SoftmaxRegression(**kwargs)
        for _ in range(3):
            streamed.partial_fit(X_tr, y_tr, classes=np.unique(y_tr))
        assert_allclose(streamed.coef_, fitted.coef_, rtol=1e-5, atol=1e-6)
        assert streamed.n_iter_[0] == 3 and len(streamed.loss_curve_) == 3


def test_partial_fit_streams_chunks_to_a_good_model(digits_split):
    X_tr, X_te, y_tr, y_te = digits_split
    model = SoftmaxNetwork((64,), learning_rate_init=0.01, random_state=0)
    for _ in range(10):
        for chunk in np.array_split(np.arange(len(y_tr)), 7):
            model.partial_fit(X_tr[chunk], y_tr[chunk], classes=np.arange(10))
    assert model.n_iter_ == 70
    assert model.score(X_te, y_te) > 0.95


def test_partial_fit_needs_classes_and_rejects_unknown_labels(iris):
    X, y = iris
    model = SoftmaxRegression(solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X, y, classes=[0, 1])
    model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X, y + 1)


def test_partial_fit_exists_only_for_minibatch_solvers():
    assert not hasattr(SoftmaxRegression(), "partial_fit")
    assert not hasattr(SoftmaxNetwork(solver="lbfgs"), "partial_fit")
    assert hasattr(SoftmaxNetwork(), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as error:
        getattr(SoftmaxRegression(solver="lbfgs"), "partial_fit")  # noqa: B009
    assert "available for the minibatch solvers sgd, adam" in str(error.value)


def test_pickled_model_predicts_the_same_and_keeps_streaming(iris):
    X, y = iris
    model = SoftmaxRegression(solver="adam", random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    clone = pickle.loads(pickle.dumps(model))
    assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    model.partial_fit(X, y)
    clone.partial_fit(X, y)
    assert_array_equal(clone.coef_, model.coef_)
    assert np.shares_memory(clone.coef_, clone.network_.params)  # still a view of the flat buffer


def test_warm_start_resumes_from_the_last_solution(digits_split):
    X_tr, _, y_tr, _ = digits_split
    cold = SoftmaxRegression(tol=1e-6, max_iter=10_000).fit(X_tr, y_tr)
    warm = SoftmaxRegression(tol=1e-6, max_iter=5, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X_tr, y_tr)
    warm.set_params(max_iter=10_000).fit(X_tr, y_tr)
    assert warm.n_iter_[0] < cold.n_iter_[0]
    _assert_close_rel(warm.coef_, cold.coef_, 1e-3)
    refit = SoftmaxRegression(tol=1e-6, max_iter=10_000).fit(X_tr, y_tr)
    assert refit.n_iter_[0] == cold.n_iter_[0]  # without warm_start every fit starts at zero


@pytest.mark.parametrize("kwargs, advice", [
    (dict(), "Increase the number of iterations"),
    (dict(solver="fista", l1_ratio=0.5), "Increase the number of iterations"),
    (dict(solver="adam"), "Increase max_iter"),
])
def test_max_iter_reached_warns_with_advice(kwargs, advice, digits_split):
    X_tr, _, y_tr, _ = digits_split
    with pytest.warns(ConvergenceWarning, match=advice):
        SoftmaxRegression(max_iter=2, **kwargs).fit(X_tr, y_tr)


# -- drop-in for LogisticRegression ---------------------------------------------------------
@pytest.mark.parametrize("load", [load_digits, load_breast_cancer], ids=["digits", "cancer"])
def test_drop_in_for_logistic_regression_in_pipeline_grid_search_and_cv(load):
    X, y = load(return_X_y=True)
    results = {}
    for Estimator in (LogisticRegression, SoftmaxRegression):
        pipe = Pipeline([("scale", StandardScaler()),
                         ("clf", Estimator(max_iter=1000, tol=1e-5, random_state=0))])
        search = GridSearchCV(pipe, {"clf__C": [0.01, 0.1, 1.0]}, cv=3).fit(X, y)
        log_loss = cross_val_score(pipe, X, y, cv=3, scoring="neg_log_loss")
        results[Estimator] = (search.best_params_, search.cv_results_["mean_test_score"],
                              search.score(X, y), log_loss)
    ref, ours = results[LogisticRegression], results[SoftmaxRegression]
    assert ours[0] == ref[0]
    assert_allclose(ours[1], ref[1], atol=1e-3)
    assert_allclose(ours[2], ref[2], atol=1e-3)
    assert_allclose(ours[3], ref[3], atol=1e-3)


# -- elastic net -----------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [3, 2])
@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_elastic_net_matches_saga_with_exact_zeros(n_classes, l1_ratio):
    X, y = make_classification(n_samples=200, n_features=12, n_informative=4,
                               n_classes=n_classes, random_state=0)
    X = StandardScaler().fit_transform(X)
    ref = LogisticRegression(solver="saga", l1_ratio=l1_ratio, C=0.1, tol=1e-10,
                             max_iter=100_000).fit(X, y)
    model = SoftmaxRegression(solver="fista", l1_ratio=l1_ratio, C=0.1, tol=1e-9,
                              max_iter=100_000).fit(X, y)
    assert np.sum(model.coef_ == 0) > 0
    assert_array_equal(model.coef_ == 0, np.abs(ref.coef_) < 1e-8)
    assert_allclose(model.coef_, ref.coef_, atol=1e-3)
    centre = (lambda b: b - b.mean()) if n_classes > 2 else (lambda b: b)
    assert_allclose(model.intercept_, centre(ref.intercept_), atol=1e-3)


def test_fista_without_l1_finds_the_lbfgs_solution(iris):
    fista = SoftmaxRegression(solver="fista", tol=1e-8, max_iter=100_000).fit(*iris)
    lbfgs_model = SoftmaxRegression(tol=1e-8, max_iter=10_000).fit(*iris)
    _assert_close_rel(fista.coef_, lbfgs_model.coef_, 1e-4)


def test_adamw_decays_the_weights_and_is_a_network_solver():
    X, y = load_iris(return_X_y=True)
    common = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = SoftmaxNetwork(solver="adam", **common).fit(X, y)
        adamw = SoftmaxNetwork(solver="adamw", weight_decay=0.5, **common).fit(X, y)
    norm = [sum(float(np.sum(W * W)) for W in m.coefs_) for m in (adam, adamw)]
    assert norm[1] < 0.9 * norm[0]  # the decoupled decay shrinks the weights
    with pytest.raises(ValueError, match="solver"):
        SoftmaxRegression(solver="adamw").fit(X, y)  # its regulariser is C, not a second decay


def test_network_records_what_mlpclassifier_records(iris):
    """t_, best_loss_, validation_scores_, best_validation_score_ mean what they mean in
    MLPClassifier: checked on the same data and epoch count against MLPClassifier itself."""
    from sklearn.neural_network import MLPClassifier

    X, y = iris
    ours = _quiet(SoftmaxNetwork((8,), max_iter=7, random_state=0).fit, X, y)
    ref = _quiet(MLPClassifier((8,), max_iter=7, random_state=0).fit, X, y)
    assert ours.t_ == ref.t_ == 7 * len(X)
    assert ours.best_loss_ == min(ours.loss_curve_)  # as ref.best_loss_ == min(ref.loss_curve_)
    assert ref.best_loss_ == min(ref.loss_curve_)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    stopped = _quiet(SoftmaxNetwork((8,), max_iter=30, early_stopping=True,
                                    random_state=0).fit, X, y)
    ref = _quiet(MLPClassifier((8,), max_iter=30, early_stopping=True, random_state=0).fit, X, y)
    for model in (stopped, ref):
        assert model.best_loss_ is None
        assert len(model.validation_scores_) == model.n_iter_
        assert model.best_validation_score_ == max(model.validation_scores_)
        assert all(0 <= s <= 1 for s in model.validation_scores_)


def test_a_network_that_learns_little_says_why():
    """Unscaled wine (proline ~ 1e3): the network stops far above a useful loss and the warning
    says to scale the features; scaled, it learns and does not warn."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="learned little.*StandardScaler"):
        SoftmaxNetwork(random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxNetwork(random_state=0, max_iter=300).fit(
            StandardScaler().fit_transform(X), y)
    assert model.loss_ < 0.1


# -- the network's α and momentum against PyTorch (an independent implementation) ------------
def _torch_layers(coefs, intercepts):
    torch = pytest.importorskip("torch")
    Ws = [torch.tensor(W.T.copy(), requires_grad=True) for W in coefs]  # (d_out, d_in)
    bs = [torch.tensor(b.copy(), requires_grad=True) for b in intercepts]
    return torch, Ws, bs


def _mlp_objective(torch, Ws, bs, X, y, alpha):
    """MLPClassifier's objective: mean cross-entropy + α / (2n) Σ‖W‖² (tanh hidden layers)."""
    A = torch.tensor(X)
    for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Z = A @ W.T + b
        A = torch.tanh(Z) if l < len(Ws) - 1 else Z
    penalty = alpha / (2 * len(y)) * sum((W * W).sum() for W in Ws)
    return torch.nn.functional.cross_entropy(A, torch.tensor(y)) + penalty


@pytest.mark.parametrize("alpha", [1.0, 5.0])
def test_network_lbfgs_solution_is_stationary_for_mlpclassifiers_objective(alpha, iris):
    """At the fitted weights, PyTorch's gradient of mean CE + α/(2n) Σ‖W‖² vanishes; were α
    ignored, it would be the penalty's α W / n (0.03 to 0.11 here)."""
    X, y = iris
    X = StandardScaler().fit_transform(X)
    est = SoftmaxNetwork((5,), activation="tanh", solver="lbfgs", alpha=alpha, max_iter=5000,
                         tol=1e-10, random_state=0, dtype="float64").fit(X, y)
    torch, Ws, bs = _torch_layers(est.coefs_, est.intercepts_)
    _mlp_objective(torch, Ws, bs, X, y, alpha).backward()
    grad = np.concatenate([p.grad.numpy().ravel() for p in Ws + bs])
    penalty_grad = alpha / len(y) * np.concatenate([W.ravel() for W in est.coefs_])
    assert np.linalg.norm(penalty_grad) > 1e-2
    assert np.linalg.norm(grad) < 1e-5, np.linalg.norm(grad)


@pytest.mark.parametrize("nesterov", [True, False], ids=["nesterov", "classical"])
@pytest.mark.parametrize("alpha", [0.0, 3.0])
def test_network_sgd_steps_equal_pytorch_sgd(nesterov, alpha, iris):
    """Six full-batch steps of SoftmaxNetwork(solver='sgd') from the same weights equal
    torch.optim.SGD(momentum=0.9, nesterov=...) on MLPClassifier's objective (α / 2n Σ‖W‖²)."""
    X, y = iris
    X = StandardScaler().fit_transform(X)
    est = SoftmaxNetwork((5,), activation="tanh", solver="sgd", momentum=0.9,
                         nesterovs_momentum=nesterov, learning_rate="constant",
                         learning_rate_init=0.05, batch_size=len(y), max_iter=1, alpha=alpha,
                         dtype="float64", warm_start=True, random_state=0, n_iter_no_change=100)
    _quiet(est.fit, X, y)  # one step, to have weights to start from
    torch, Ws, bs = _torch_layers(est.coefs_, est.intercepts_)
    _quiet(est.set_params(max_iter=6).fit, X, y)  # warm start: from those weights, new momentum
    opt = torch.optim.SGD(Ws + bs, lr=0.05, momentum=0.9, nesterov=nesterov)
    for _ in range(6):
        opt.zero_grad()
        _mlp_objective(torch, Ws, bs, X, y, alpha).backward()
        opt.step()
    for ours, theirs in zip(est.coefs_ + est.intercepts_, Ws + bs, strict=True):
        theirs = theirs.detach().numpy()
        assert_allclose(ours, theirs.T if theirs.ndim == 2 else theirs, rtol=0, atol=1e-12)


# -- what a model remembers of its training features -----------------------------------------
def test_the_largest_abs_training_feature_is_recorded_by_every_fit_path():
    """``_input_max_abs_`` is max |x| over the training rows (numpy's, of the whole X): the
    latest ``fit``'s, or every ``partial_fit`` chunk's so far, dense or sparse."""
    X, y = load_iris(return_X_y=True)
    X = X * [1.0, -3.0, 0.5, 2.0]  # the largest |x| is a negative value: -3 × 4.4
    X[:, 2] = np.where(X[:, 2] > 2, 0.0, X[:, 2])  # zeros for the sparse matrix to leave out
    expected = np.abs(X).max()
    assert expected == pytest.approx(13.2) and X.max() < expected
    assert SoftmaxRegression().fit(X, y)._input_max_abs_ == expected
    sparse = _quiet(SoftmaxNetwork((3,), max_iter=3, random_state=0).fit, sp.csr_matrix(X), y)
    assert sparse._input_max_abs_ == expected
    refit = SoftmaxRegression(warm_start=True).fit(X, y).fit(X / 16, y)
    assert refit._input_max_abs_ == expected / 16
    streamed = SoftmaxRegression(solver="sgd", random_state=0)
    order = np.argsort(np.abs(X).max(axis=1))  # chunks of growing range, then a small one
    seen = np.zeros(0, dtype=int)
    for chunk in (order[:50], order[50:], order[:10]):
        streamed.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
        seen = np.union1d(seen, chunk)
        assert streamed._input_max_abs_ == np.abs(X[seen]).max()
