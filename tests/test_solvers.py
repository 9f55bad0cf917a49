"""Full-batch solvers: known minimisers (Rosenbrock, quadratics), the preconditioner's change of
variables against finite differences, and agreement of independent routes on softmax regression."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import rosen, rosen_der
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from softmaxreg.network import Network
from softmaxreg.objective import gram_sums, objective
from softmaxreg.solvers import BlockPreconditioner, gradient_descent, lbfgs


def rosenbrock(x):
    return rosen(x), rosen_der(x)


def softmax_regression_problem(n=80, d=4, K=3, seed=0, scale=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (scale if scale is not None else 1.0)
    W = rng.normal(size=(K, d)) / (1.0 if scale is None else np.asarray(scale))
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, K)), axis=1)
    return X, y, rng


def preconditioner_for(X, w, l2, K, fit_intercept=True):
    return BlockPreconditioner.from_sums(*gram_sums(X, 0.5 * w), l2, K, fit_intercept)  # the bound


# -- L-BFGS ----------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 5])
def test_lbfgs_finds_the_rosenbrock_minimum(d):
    x0 = np.tile([-1.2, 1.0], d)[:d]
    res = lbfgs(rosenbrock, x0, max_iter=2000, tol=1e-9)
    assert res.converged
    assert_allclose(res.x, np.ones(d), atol=1e-6)
    assert res.fun == pytest.approx(0.0, abs=1e-12)


def test_lbfgs_calls_back_each_iteration_and_stops_at_tol():
    seen = []
    tol = 1e-3
    res = lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=500, tol=tol,
                callback=lambda it, J, theta: seen.append((it, J)))
    assert res.converged
    assert [it for it, _ in seen] == list(range(1, len(seen) + 1))
    assert np.max(np.abs(rosen_der(res.x))) <= tol
    assert seen[-1][1] == pytest.approx(rosen(res.x))


def test_lbfgs_reports_failure_to_converge():
    res = lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=3, tol=1e-12)
    assert not res.converged
    assert res.n_iter <= 3


# -- the preconditioner ------------------------------------------------------------------------
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_preconditioner_maps_are_inverse(fit_intercept):
    X, _, rng = softmax_regression_problem()
    P = preconditioner_for(X, np.full(len(X), 1 / len(X)), 0.1, 3, fit_intercept)
    theta = rng.normal(size=3 * 4 + 3)
    if not fit_intercept:
        theta[-3:] = 0  # there are no intercepts to carry
    assert_allclose(P.to_theta(P.to_u(theta)), theta, rtol=1e-10, atol=1e-12)
    assert_allclose(P.to_u(P.to_theta(theta)), theta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_preconditioned_gradient_matches_finite_differences(fit_intercept):
    X, y, rng = softmax_regression_problem(n=30, d=3, K=3)
    s = rng.uniform(0.5, 2.0, size=30)
    w, l2 = s / s.sum(), 0.05
    J = objective(Network((3, 3), fit_intercept=fit_intercept), X, y, s, l2)
    P = preconditioner_for(X, w, l2, 3, fit_intercept)
    u = rng.normal(size=12)
    if not fit_intercept:
        u[-3:] = 0
    analytic = P.grad_to_u(J(P.to_theta(u))[1])
    h, numeric = 1e-6, np.zeros_like(u)
    for j in range(u.size - (0 if fit_intercept else 3)):
        e = np.zeros_like(u)
        e[j] = h
        numeric[j] = (J(P.to_theta(u + e))[0] - J(P.to_theta(u - e))[0]) / (2 * h)
    assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_preconditioned_hessian_is_bounded_by_the_identity():
    """The point of B = c X̃ᵀ diag(w) X̃ + l2 D: in u the Hessian has eigenvalues at most 1."""
    X, y, rng = softmax_regression_problem(n=50, d=3, K=3, scale=np.array([1.0, 30.0, 0.01]))
    l2 = 1e-2
    J = objective(Network((3, 3)), X, y, None, l2)
    P = preconditioner_for(X, np.full(50, 1 / 50), l2, 3)
    u, h = P.to_u(rng.normal(size=12) * 0.1), 1e-5
    H = np.empty((12, 12))
    for j in range(12):
        e = np.zeros(12)
        e[j] = h
        H[:, j] = (P.grad_to_u(J(P.to_theta(u + e))[1])
                   - P.grad_to_u(J(P.to_theta(u - e))[1])) / (2 * h)
    eigenvalues = np.linalg.eigvalsh((H + H.T) / 2)
    assert eigenvalues.max() <= 1 + 1e-6
    assert eigenvalues.min() > -1e-6


def test_preconditioned_and_plain_lbfgs_reach_the_same_minimiser():
    X, y, _ = softmax_regression_problem(n=120, d=4, K=3, seed=1,
                                         scale=np.array([1.0, 20.0, 0.2, 3.0]))
    n, l2 = len(y), 1.0 / (10.0 * 120)  # C = 10 in LogisticRegression's sum form
    f = objective(Network((4, 3)), X, y, None, l2)
    P = preconditioner_for(X, np.full(n, 1 / n), l2, 3)
    plain = lbfgs(f, np.zeros(15), max_iter=5000, tol=1e-8)
    pre = lbfgs(f, np.zeros(15), max_iter=5000, tol=1e-8, preconditioner=P)
    assert plain.converged and pre.converged
    assert pre.fun == pytest.approx(plain.fun, rel=1e-10)
    for res in (plain, pre):
        assert res.fun == pytest.approx(f(res.x)[0], rel=1e-14)
        # L-BFGS-B may also stop when f no longer decreases, just short of tol
        assert np.max(np.abs(f(res.x)[1])) <= 1e-6

    def coef(theta):  # intercepts are defined up to a common shift: centre them
        W, b = theta[:12].reshape(3, 4), theta[12:]
        return W, b - b.mean()

    for a, b in zip(coef(plain.x), coef(pre.x), strict=True):
        assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a third, independent route: scikit-learn minimises C Σ CE + ½‖W‖², the same problem
    with threadpool_limits(1):  # BLAS threads only contend on a problem this small
        ref = LogisticRegression(C=10.0, tol=1e-12, max_iter=100000).fit(X, y)
    W, b = coef(pre.x)
    assert_allclose(W, ref.coef_, rtol=1e-4, atol=1e-5)
    assert_allclose(b, ref.intercept_ - ref.intercept_.mean(), rtol=1e-4, atol=1e-5)


def test_preconditioner_helps_on_badly_scaled_features():
    X, y, _ = softmax_regression_problem(n=120, d=4, K=3, seed=1,
                                         scale=np.array([1.0, 100.0, 0.01, 3.0]))
    l2 = 1.0 / 1200
    f = objective(Network((4, 3)), X, y, None, l2)
    P = preconditioner_for(X, np.full(120, 1 / 120), l2, 3)
    plain = lbfgs(f, np.zeros(15), max_iter=5000, tol=1e-6)
    pre = lbfgs(f, np.zeros(15), max_iter=5000, tol=1e-6, preconditioner=P)
    assert pre.n_iter < plain.n_iter


# -- gradient descent ----------------------------------------------------------------------------
def quadratic(d=5, seed=2):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(d, d))
    A = M @ M.T + np.eye(d)
    c = rng.normal(size=d)

    def f(x):
        return 0.5 * x @ A @ x - c @ x, A @ x - c

    return f, A, np.linalg.solve(A, c)


def test_gradient_descent_reaches_the_closed_form_minimiser():
    f, A, x_star = quadratic()
    lr = 1.0 / np.linalg.eigvalsh(A).max()
    res = gradient_descent(f, np.zeros(5), lr=lr, max_iter=20000, tol=1e-10)
    assert res.converged
    assert_allclose(res.x, x_star, atol=1e-8)
    assert res.fun == pytest.approx(-0.5 * x_star @ A @ x_star, rel=1e-12)


def test_gradient_descent_one_step_is_x_minus_lr_grad():
    f, A, _ = quadratic()
    x0 = np.arange(5.0)
    res = gradient_descent(f, x0, lr=0.01, max_iter=1, tol=0)
    assert_allclose(res.x, x0 - 0.01 * f(x0)[1], rtol=1e-15)
    assert not res.converged and res.n_iter == 1


def test_gradient_descent_stops_on_a_non_finite_loss():
    f, A, _ = quadratic()
    lr = 10.0 / np.linalg.eigvalsh(A).max()
    with np.errstate(over="ignore", invalid="ignore"):
        res = gradient_descent(f, np.ones(5), lr=lr, max_iter=100000, tol=1e-10)
    assert not res.converged
    assert "smaller learning rate" in res.message
