"""Proximal gradient (FISTA) for objectives with an L1 term: the elastic-net solver.

The problem, on a flat float64 vector θ, is

    F(θ) = f(θ) + l1 · Σ_j m_j |θ_j|

with f smooth and convex (``fun(θ) -> (f, ∇f)``, e.g. the cross-entropy plus an L2 penalty)
and m the penalty mask (1 on weights, 0 on intercepts).  Each step is a gradient step on f
followed by the proximal map of the L1 term, the soft threshold, which sets small weights to
exactly zero:

    θ ← S(y − ∇f(y)/L, l1/L),      S(x, t)_j = sign(x_j) max(|x_j| − t m_j, 0)

with Nesterov's extrapolation y (Beck & Teboulle's FISTA), the step 1/L found by backtracking,
and the momentum restarted whenever it points uphill (O'Donoghue & Candès).
Like :mod:`softmaxreg.solvers`, it knows nothing of networks or estimators.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .solvers import STOPPED, Callback, Objective, SolverResult

Array = NDArray[np.float64]


def soft_threshold(x: Array, t: float, mask: NDArray[np.bool_]) -> Array:
    """S(x, t) = sign(x) max(|x| − t, 0) where ``mask``, x elsewhere (a new array)."""
    out = x.copy()
    out[mask] = np.sign(x[mask]) * np.maximum(np.abs(x[mask]) - t, 0.0)
    return out


def optimality(theta: Array, grad: Array, l1: float, mask: NDArray[np.bool_]) -> float:
    """max_j |g_j| over the minimum-norm subgradient of F at θ: 0 exactly at the minimum.

    g_j = ∇f_j + l1 sign(θ_j) where θ_j ≠ 0 (or j unpenalised), max(|∇f_j| − l1, 0) where θ_j = 0.
    With l1 = 0 this is max |∇f|, the stopping test of L-BFGS.
    """
    g = grad.copy()
    on = mask & (theta != 0)
    off = mask & (theta == 0)
    g[on] += l1 * np.sign(theta[on])
    g[off] = np.maximum(np.abs(grad[off]) - l1, 0.0)
    return float(np.max(np.abs(g))) if g.size else 0.0


def fista(
    fun: Objective,
    x0: NDArray,
    l1: float,
    mask: NDArray[np.bool_],
    max_iter: int = 1000,
    tol: float = 1e-4,
    lipschitz: float = 1.0,
    callback: Callback | None = None,
) -> SolverResult:
    """Minimise f(θ) + l1 ‖m ∘ θ‖₁ until :func:`optimality` ≤ tol or ``max_iter`` steps.

    ``lipschitz`` is a first guess of the Lipschitz constant L of ∇f; backtracking doubles it
    until it bounds the curvature of f along the step, and each step tries L a little smaller.
    """
    x = np.array(x0, dtype=np.float64)
    y, t, L = x.copy(), 1.0, float(lipschitz)
    _, gy = fun(y)
    for it in range(1, max_iter + 1):
        x_new, fx, gx, L = _backtracking_step(fun, y, gy, L, l1, mask)
        F = fx + l1 * float(np.abs(x_new[mask]).sum())
        if callback is not None and callback(it, F, x_new):
            return SolverResult(x_new, F, it, False, STOPPED)
        if not math.isfinite(F):
            return SolverResult(x_new, F, it, False, "the objective is not finite")
        if optimality(x_new, gx, l1, mask) <= tol:
            return SolverResult(x_new, F, it, True, "optimality below tol")
        if np.dot(y - x_new, x_new - x) > 0:  # the momentum points uphill: restart it
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        if beta:
            y = x_new + beta * (x_new - x)
            _, gy = fun(y)
        else:
            y, gy = x_new, gx
        x, t = x_new, t_new
        L *= 0.9
    return SolverResult(x, F, max_iter, False, "max_iter reached")


def _backtracking_step(fun: Objective, y: Array, gy: Array, L: float, l1: float,
                       mask: NDArray[np.bool_]):
    """θ⁺ = S(y − ∇f(y)/L, l1/L), doubling L until L bounds the curvature between y and θ⁺:

        (∇f(θ⁺) − ∇f(y))ᵀ d ≤ L ‖d‖²,      d = θ⁺ − y.

    For a quadratic this is exactly the upper bound f(θ⁺) ≤ f(y) + ∇f(y)ᵀd + L/2 ‖d‖² of the
    textbook test, but it compares gradients rather than values of f: near the minimum the steps
    are so small that f(θ⁺) − f(y) drowns in the rounding of f, the value test then accepts any
    L, and the iterates oscillate instead of converging.
    """
    while True:
        x = soft_threshold(y - gy / L, l1 / L, mask)
        fx, gx = fun(x)
        d = x - y
        dd = float(np.dot(d, d))
        if dd == 0 or float(np.dot(gx - gy, d)) <= L * dd:
            return x, fx, gx.copy(), L
        L *= 2.0
