"""Full-batch solvers on a function ``f(θ) -> (J(θ), ∇J(θ))`` of a flat float64 vector.

Solvers know nothing of networks or estimators: they see only the objective.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

Objective = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64]]]
Callback = Callable[[int, float], None]


@dataclass
class SolverResult:
    x: NDArray[np.float64]
    fun: float
    n_iter: int
    converged: bool
    message: str


class BlockPreconditioner:
    """The linear change of variables W̃ = U L⁻¹ for one dense layer, with B = L Lᵀ.

    θ holds ``W`` (K × d, row-major) then ``b`` (K); W̃ = [W | b] is K × (d+1).  If the Hessian of
    J is bounded by I_K ⊗ B, then J(U L⁻¹) has its Hessian bounded by I: the scale and correlation
    of the features no longer slow the solver down.  The chain rule gives ∇_U = ∇_W̃ L⁻ᵀ.
    """

    def __init__(self, L: NDArray[np.float64], n_classes: int, fit_intercept: bool = True):
        self.L, self.K, self.fit_intercept = L, n_classes, fit_intercept
        # L⁻¹ once, so the per-iteration maps are NumPy products: calls into scipy's own BLAS
        # between NumPy's would make the two thread pools contend for the cores.
        self.L_inv = scipy.linalg.solve_triangular(L, np.eye(len(L)), lower=True)

    @classmethod
    def from_hessian_bound(cls, X, w, l2: float, curvature: float, n_classes: int,
                           fit_intercept: bool = True) -> BlockPreconditioner:
        """B = c X̃ᵀ diag(w) X̃ + l2 D (D = 1 on weights, 0 on the intercept), with c the bound on
        the curvature of the loss in one logit (½ for softmax, ¼ for the sigmoid)."""
        Xw = X * w[:, None]
        d = X.shape[1]
        B = np.zeros((d + fit_intercept,) * 2)
        B[:d, :d] = curvature * (X.T @ Xw)
        B[np.arange(d), np.arange(d)] += l2
        if fit_intercept:
            B[:d, d] = B[d, :d] = curvature * Xw.sum(axis=0)
            B[d, d] = curvature * w.sum()
        B[np.diag_indices_from(B)] += 1e-10 * np.trace(B) / len(B)  # constant or duplicate columns
        return cls(scipy.linalg.cholesky(B, lower=True), n_classes, fit_intercept)

    def _split(self, theta):
        K, d = self.K, self.L.shape[0] - self.fit_intercept
        W = theta[: K * d].reshape(K, d)
        return np.column_stack([W, theta[K * d : K * d + K]]) if self.fit_intercept else W

    def _join(self, Wt):
        K, d = self.K, self.L.shape[0] - self.fit_intercept
        b = Wt[:, d] if self.fit_intercept else np.zeros(K)
        return np.concatenate([Wt[:, :d].ravel(), b])

    def to_theta(self, u):
        """W̃ = U L⁻¹, i.e. W̃ᵀ = L⁻ᵀ Uᵀ."""
        return self._join(self._split(u) @ self.L_inv)

    def to_u(self, theta):
        """U = W̃ L."""
        return self._join(self._split(theta) @ self.L)

    def grad_to_u(self, g):
        """∇_U = ∇_W̃ L⁻ᵀ, i.e. (L⁻¹ ∇_W̃ᵀ)ᵀ."""
        return self._join(self._split(g) @ self.L_inv.T)


@contextmanager
def _scipy_blas_single_threaded():
    """Run scipy's own OpenBLAS on one thread for the duration of a solve.

    scipy and NumPy each ship an OpenBLAS with its own thread pool.  L-BFGS-B calls scipy's
    between our NumPy products, and on few cores the two pools' spinning threads contend: an
    objective evaluation measured 0.4 ms alone and 8 ms inside L-BFGS-B on digits.  The
    L-BFGS-B updates are tiny, so one thread costs them nothing.
    """
    controllers = [c for c in ThreadpoolController().lib_controllers
                   if "scipy.libs" in (c.filepath or "") and c.user_api == "blas"]
    before = [c.num_threads for c in controllers]
    for c in controllers:
        c.set_num_threads(1)
    try:
        yield
    finally:
        for c, n in zip(controllers, before):
            c.set_num_threads(n)


def lbfgs(
    fun: Objective,
    x0: NDArray,
    max_iter: int = 100,
    tol: float = 1e-4,
    callback: Callback | None = None,
    preconditioner: BlockPreconditioner | None = None,
) -> SolverResult:
    """Minimise with scipy's L-BFGS-B, stopping when max_i |∇J(θ)_i| ≤ tol (as scikit-learn does).

    With a ``preconditioner`` the iterations run on u with θ = P(u); the stopping test is still
    on the gradient with respect to θ.  ``callback(iteration, J)`` follows each iteration.
    """
    P = preconditioner
    state = {"it": 0, "f": np.nan, "gmax": np.inf, "converged": False}

    def f(u):
        theta = u if P is None else P.to_theta(u)
        J, g = fun(theta)
        state["f"], state["gmax"] = J, float(np.max(np.abs(g)))
        return J, (g if P is None else P.grad_to_u(g))

    def cb(intermediate_result):
        state["it"] += 1
        if callback is not None:
            callback(state["it"], state["f"])
        if state["gmax"] <= tol:
            state["converged"] = True
            raise StopIteration

    x0 = np.asarray(x0, dtype=np.float64)
    with _scipy_blas_single_threaded():
        res = scipy.optimize.minimize(
            f,
            x0 if P is None else P.to_u(x0),
            method="L-BFGS-B",
            jac=True,
            callback=cb,
            options={
                "maxiter": max_iter,
                "maxfun": 2 * max_iter + 50,
                "maxls": 50,
                "gtol": 0 if P is not None else tol,
                "ftol": 64 * np.finfo(float).eps,
            },
        )
    x = res.x if P is None else P.to_theta(res.x)
    converged = state["converged"] or bool(res.success)
    return SolverResult(x, float(res.fun), int(res.nit), converged, str(res.message))


def gradient_descent(
    fun: Objective,
    x0: NDArray,
    lr: float = 0.1,
    max_iter: int = 1000,
    tol: float = 1e-4,
    callback: Callback | None = None,
) -> SolverResult:
    """Full-batch gradient descent θ ← θ − η ∇J(θ), until max_i |∇J_i| ≤ tol or max_iter steps."""
    x = np.array(x0, dtype=np.float64)
    for it in range(1, max_iter + 1):
        J, g = fun(x)
        if not np.isfinite(J):
            return SolverResult(x, J, it, False, "loss is not finite; try a smaller learning rate")
        if np.max(np.abs(g)) <= tol:
            return SolverResult(x, J, it - 1, True, "gradient below tol")
        x -= lr * g
        if callback is not None:
            callback(it, J)
    J, _ = fun(x)
    return SolverResult(x, J, max_iter, False, "max_iter reached")
