"""The proximal-gradient (FISTA) solver against closed forms and scikit-learn's Lasso."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from sklearn.datasets import make_regression
from sklearn.linear_model import Lasso

from softmaxreg.proximal import fista, optimality, soft_threshold

finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(arrays(np.float64, 20, elements=finite), st.floats(0, 100), arrays(bool, 20))
def test_soft_threshold_is_the_prox_of_the_masked_l1_norm(x, t, mask):
    """S(x, t) minimises ½(u − x)² + t|u| coordinate-wise: it shrinks toward 0 by t, never past."""
    s = soft_threshold(x, t, mask)
    assert np.array_equal(s[~mask], x[~mask])
    m = mask
    assert np.all(np.abs(s[m]) <= np.abs(x[m])) and np.all(s[m] * x[m] >= 0)
    assert_allclose(np.abs(s[m]), np.maximum(np.abs(x[m]) - t, 0))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, 8, elements=st.floats(-10, 10)), st.floats(0, 5),
       st.floats(0.1, 10))
def test_fista_solves_the_separable_quadratic_in_closed_form(a, l1, curvature):
    """min ½ c ‖θ − a‖² + l1 ‖θ‖₁ has the solution S(a, l1 / c), exact zeros included."""
    mask = np.ones_like(a, dtype=bool)

    def fun(theta):
        return 0.5 * curvature * float(np.sum((theta - a) ** 2)), curvature * (theta - a)

    res = fista(fun, np.zeros_like(a), l1, mask, max_iter=1000, tol=1e-10)
    assert res.converged
    assert_allclose(res.x, soft_threshold(a, l1 / curvature, mask), atol=1e-8)


def test_fista_matches_coordinate_descent_lasso_and_leaves_the_intercept_unpenalised():
    X, y = make_regression(n_samples=100, n_features=30, n_informative=5, noise=5.0,
                           random_state=0)
    y = y + 40.0  # an intercept the penalty must not shrink
    n, alpha = len(y), 2.0
    Xb = np.column_stack([X, np.ones(n)])
    mask = np.r_[np.ones(30, dtype=bool), False]

    def fun(theta):  # (1/2n) ‖y − X̃θ‖², sklearn's Lasso loss
        r = Xb @ theta - y
        return 0.5 * float(r @ r) / n, Xb.T @ r / n

    res = fista(fun, np.zeros(31), alpha, mask, max_iter=10_000, tol=1e-10)
    ref = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(X, y)
    assert res.converged
    assert_allclose(res.x[:30], ref.coef_, atol=1e-7)
    assert_allclose(res.x[30], ref.intercept_, atol=1e-7)
    assert np.array_equal(res.x[:30] == 0, ref.coef_ == 0) and np.sum(ref.coef_ == 0) > 10
    assert optimality(res.x, fun(res.x)[1], alpha, mask) <= 1e-10


def test_optimality_is_the_minimum_norm_subgradient():
    theta = np.array([0.0, 0.0, 2.0, -1.0, 0.0])
    grad = np.array([0.5, -3.0, -1.0, 1.0, 0.25])
    mask = np.array([True, True, True, True, False])
    # |0.5| ≤ 1 at a zero weight: 0; |−3| > 1: 2; −1 + sign(2) = 0; 1 − 1 = 0; unpenalised: 0.25
    assert optimality(theta, grad, 1.0, mask) == 2.0
    assert optimality(theta, np.array([0.5, -0.5, -1, 1, 0.25]), 1.0, mask) == 0.25
