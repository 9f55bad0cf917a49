"""Statistical inference, checked against statsmodels' MNLogit and against first principles."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, inference
from softmaxreg.inference import (
    InferenceError,
    PenalizedInferenceWarning,
    SeparationError,
)

sm = pytest.importorskip("statsmodels.api")

RTOL = 1e-4


def _standard(X):
    return (X - X.mean(0)) / X.std(0)


def _iris_two():
    """Versicolor against virginica on three measurements: overlapping classes, K = 2."""
    X, y = load_iris(return_X_y=True)
    return X[y > 0, :3], y[y > 0]


def _wine():
    X, y = load_wine(return_X_y=True)
    return _standard(X[:, [0, 1, 3, 4]]), y


def _four_classes():
    X, y = make_classification(600, 5, n_informative=4, n_redundant=0, n_classes=4,
                               class_sep=0.6, random_state=0)
    return X, np.array(["a", "b", "c", "d"])[y]


DATA = {"iris K=2": _iris_two, "wine K=3": _wine, "synthetic K=4": _four_classes}


def _mle(X, y, sample_weight=None, fit_intercept=True):
    model = SoftmaxRegression(C=np.inf, tol=1e-10, max_iter=2000, dtype="float64",
                              fit_intercept=fit_intercept)
    return model.fit(X, y, sample_weight=sample_weight)


def _statsmodels(X, y, fit_intercept=True):
    y_codes = np.unique(y, return_inverse=True)[1]
    exog = sm.add_constant(X) if fit_intercept else X
    return sm.MNLogit(y_codes, exog).fit(method="newton", maxiter=100, disp=0)


def _assert_matches(result, reference):
    for name in ("params", "bse", "pvalues", "tvalues"):
        np.testing.assert_allclose(getattr(result, name), getattr(reference, name),
                                   rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(result.cov_params(), reference.cov_params(), rtol=RTOL,
                               atol=1e-12)
    np.testing.assert_allclose(result.conf_int(0.1), reference.conf_int(0.1), rtol=RTOL,
                               atol=1e-6)  # an end can lie near 0
    np.testing.assert_allclose([result.llf, result.llnull], [reference.llf, reference.llnull],
                               rtol=RTOL)
    assert (result.nobs, result.df_resid) == (reference.nobs, reference.df_resid)
    if reference.model.k_constant:  # without one, statsmodels still counts a constant out
        assert result.df_model == reference.df_model
        np.testing.assert_allclose(result.llr_pvalue, reference.llr_pvalue, rtol=RTOL)


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["const", "no-const"])
def test_matches_statsmodels_mnlogit(data, fit_intercept):
    X, y = DATA[data]()
    result = inference(_mle(X, y, fit_intercept=fit_intercept), X, y)
    _assert_matches(result, _statsmodels(X, y, fit_intercept))


def test_frequency_weights_are_repeated_rows():
    X, y = _wine()
    w = np.random.default_rng(0).integers(1, 4, len(y)).astype(float)
    weighted = inference(_mle(X, y, sample_weight=w), X, y, sample_weight=w)
    X_rep, y_rep = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    repeated = inference(_mle(X_rep, y_rep), X_rep, y_rep)
    np.testing.assert_allclose(weighted.bse, repeated.bse, rtol=RTOL)
    assert weighted.nobs == len(y_rep)
    _assert_matches(weighted, _statsmodels(X_rep, y_rep))


def test_sparse_and_float32_inputs_give_the_dense_results():
    X, y = _wine()
    model = _mle(X, y)
    dense = inference(model, X, y)
    for X_other in (sp.csr_matrix(X), X.astype(np.float32)):
        other = inference(model, X_other, y)
        np.testing.assert_allclose(other.bse, dense.bse, rtol=1e-6)


def test_summary_reads_like_statsmodels():
    X, y = _four_classes()
    text = inference(_mle(X, y), X, y).summary()
    assert "Reference class:" in text and "nonrobust" in text
    for label in ("y=b", "y=c", "y=d", "const", "x5", "P>|z|", "[0.025", "0.975]"):
        assert label in text


def test_feature_names_label_the_rows():
    pd = pytest.importorskip("pandas")
    X, y = _wine()
    frame = pd.DataFrame(X, columns=["alcohol", "malic", "alcalinity", "magnesium"])
    result = inference(_mle(frame, y), frame, y)
    assert result.xnames == ["const", "alcohol", "malic", "alcalinity", "magnesium"]


# -- penalised fits ------------------------------------------------------------------------------
def _penalty(beta, C, binary):
    """‖W‖²/(2C) of the centred softmax weights that have the differences β (intercept row 0
    unpenalised); one sigmoid unit: ½‖w‖²/C.  Written from the estimator's objective."""
    weights = beta[1:]
    if not binary:
        W = np.column_stack([np.zeros(len(weights)), weights])
        weights = W - W.mean(axis=1, keepdims=True)
    return 0.5 * np.sum(weights**2) / C


@pytest.mark.parametrize("data", ["iris K=2", "wine K=3"])
def test_penalised_fit_reports_the_sandwich_and_warns(data):
    X, y = DATA[data]()
    C = 0.05
    model = SoftmaxRegression(C=C, tol=1e-10, max_iter=2000, dtype="float64").fit(X, y)
    with pytest.warns(PenalizedInferenceWarning, match="sandwich"):
        result = inference(model, X, y)
    assert result.penalized and "sandwich" in result.summary()
    beta = result.params
    theta = beta.T.ravel()  # class-major, as statsmodels flattens
    information = -_statsmodels(X, y).model.hessian(theta)  # I at the penalised estimate
    # R by central differences of the penalty (a quadratic: the differences are exact)
    binary, h, n = beta.shape[1] == 1, 1e-3, theta.size
    steps = np.eye(n) * h

    def f(t):
        return _penalty(t.reshape(beta.shape[::-1]).T, C, binary)

    R = np.array([[(f(theta + a + b) - f(theta + a - b) - f(theta - a + b) + f(theta - a - b))
                   / (4 * h * h) for b in steps] for a in steps])
    H_inv = np.linalg.inv(information + R)
    np.testing.assert_allclose(result.cov_params(), H_inv @ information @ H_inv, rtol=1e-6,
                               atol=1e-12)


def test_penalised_optimum_is_recognised_as_one():
    """At the penalised optimum the gradient −score + Rβ vanishes: no off-optimum warning.
    A wrong R (e.g. without the centring term 11ᵀ/K) would show up here as a warning."""
    X, y = _wine()
    model = SoftmaxRegression(C=0.01, tol=1e-10, max_iter=2000, dtype="float64").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", PenalizedInferenceWarning)
        inference(model, X, y)


def test_unconverged_fit_warns():
    X, y = _wine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegression(C=np.inf, max_iter=2).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="not at the optimum"):
        inference(model, X, y)


# -- when there is nothing to report -------------------------------------------------------------
def _fit_quietly(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # separable: the fit says so too
        return SoftmaxRegression(C=np.inf, max_iter=500, **params).fit(X, y)


def test_complete_separation_is_named():
    X, y = load_iris(return_X_y=True)
    X, y = X[y < 2, 2:3], y[y < 2]  # petal length separates setosa from versicolor
    with pytest.raises(SeparationError, match="complete separation.*all 100 rows"):
        inference(_fit_quietly(X, y), X, y)


@pytest.mark.parametrize("tol", [1e-4, 1e-10])
def test_quasi_complete_separation_is_named(tol):
    rng = np.random.default_rng(0)
    dummy, x = (rng.random(300) < 0.3).astype(float), rng.normal(size=300)
    y = np.where(dummy == 1, 0, rng.random(300) < 1 / (1 + np.exp(-x))).astype(int)
    X = np.column_stack([dummy, x])  # every row with dummy = 1 is of class 0
    with pytest.raises(SeparationError, match=r"quasi-complete separation.*\(mostly x1\)"):
        inference(_fit_quietly(X, y, tol=tol), X, y)


def test_quasi_complete_separation_of_one_class_among_three():
    X, y = load_iris(return_X_y=True)  # setosa is separable from the other two; they overlap
    with pytest.raises(SeparationError, match="50 of them ahead of every rival"):
        inference(_fit_quietly(X, y), X, y)


@pytest.mark.parametrize("extra, names", [(lambda X: X[:, 0] + X[:, 1], "x1, x2, x4"),
                                          (lambda X: np.full(len(X), 3.0), "const, x4")])
def test_collinear_regressors_are_named(extra, names):
    X, y = _wine()
    X = np.column_stack([X[:, :3], extra(X)])
    with pytest.raises(InferenceError, match=f"collinear: {names} are linearly dependent"):
        inference(_fit_quietly(X, y), X, y)


def test_collinearity_is_judged_on_the_rows_of_positive_weight():
    X, y = _wine()
    X = np.column_stack([X[:, :3], X[:, 0] + X[:, 1]])
    w = np.ones(len(y))
    X[:20, 3], w[:20] = 5.0, 0.0  # rows that break the dependence, but weigh nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegression(C=np.inf, max_iter=500).fit(X, y, sample_weight=w)
    with pytest.raises(InferenceError, match="collinear: x1, x2, x4"):
        inference(model, X, y, sample_weight=w)


def test_a_class_without_rows_is_named():
    X, y = _wine()
    model = _mle(X, y)
    with pytest.raises(InferenceError, match=r"class \[2\] has no rows"):
        inference(model, X[y < 2], y[y < 2])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_unsupported_models_and_settings():
    X, y = _wine()
    with pytest.raises(TypeError, match="supports a fitted softmaxreg SoftmaxRegression"):
        inference(SoftmaxNetwork((3,), solver="lbfgs", max_iter=20).fit(X, y), X, y)
    with pytest.raises(ValueError, match="l1_ratio"):
        inference(SoftmaxRegression(l1_ratio=0.5, solver="fista").fit(X, y), X, y)
    with pytest.raises(ValueError, match="class_weight"):
        inference(SoftmaxRegression(class_weight="balanced").fit(X, y), X, y)
    model = _mle(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but the model was fitted with 4"):
        inference(model, X[:, :3], y)
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        inference(model, X, np.where(y == 2, 7, y))
