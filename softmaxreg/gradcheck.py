"""Finite-difference check of backpropagation, layer by layer (the teaching tool of the notes).

For a coordinate θ_j the central difference  g_j = (J(θ + h e_j) − J(θ − h e_j)) / 2h  is compared
with the analytic ∂J/∂θ_j of the backward pass.  Each layer is judged block by block (its W, then
its b), by the relative error of the block's vector of checked coordinates:

    err = ‖g − ĝ‖ / max(‖g‖ + ‖ĝ‖, noise / rtol),      noise = C √m ε max(|J|, 1) / h

where m is the number of coordinates checked.  ε |J| / h is the rounding error of one central
difference (J is known to about ε |J|, and the difference divides by 2h), so ``noise`` bounds the
rounding part of ‖g − ĝ‖ with a safety factor C.  The verdict err < rtol therefore reads: backprop
agrees with finite differences to ``rtol`` relative to the gradient, or, for gradients too small for
finite differences to resolve that well, to within their rounding noise.  Judging W and b apart
keeps an error in the few intercepts from being drowned by the many weights.

Cost: two forward passes per coordinate checked.  Blocks with at most ``max_checks`` coordinates
are checked in full; larger ones on a seeded random sample, so a layer of any size costs
O(max_checks) forward passes.  Each pass costs the whole network, though: 3000 inputs to 3 classes
took 1.5 s through hidden layers (5, 4) and 21-25 s through (3000,); through (3000, 3000) to 3000
classes 2.5 min.  So a check expected to last more than :data:`SLOW_SECONDS` says first how long
(a UserWarning, from the time of one forward pass).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._threads import one_blas_thread
from .network import Network

SAFETY = 10.0  # C: measured per entry, up to 1.2 ε max(|J|, 1) / h and 0.35 of it on average
SLOW_SECONDS = 10.0  # a check expected to take longer warns how long, before it starts


@dataclass
class LayerError:
    """``max_rel_error``: the larger of the W and b blocks' relative errors; ``checked``: the
    number of coordinates (weights and intercepts) compared."""

    layer: int
    shape: tuple[int, int]
    max_rel_error: float
    checked: int


def gradcheck(
    net: Network,
    X: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    l2: float = 0.0,
    h: float = 1e-5,
    rtol: float = 1e-6,
    max_checks: int | None = 256,
    random_state: int = 0,
) -> list[LayerError]:
    """Relative error between backprop and central differences, per layer (float64).

    h = 1e-5 balances the truncation error O(h²) against the rounding error O(ε/h).  ``rtol`` sets
    the floor of the relative error (see the module docstring): a layer passes when its error is
    below ``rtol``.  ``max_checks`` coordinates are drawn per W and per b block (all of them when
    the block is that small, or when ``max_checks`` is None), with ``random_state``.
    The network's parameters are left as they were.
    """
    if net.dtype != np.float64:
        raise ValueError("gradcheck needs a float64 network: float32 differences are too coarse")
    y = np.asarray(y)
    J0, grads, _ = net.loss_grad(X, y, sample_weight, l2)
    analytic = grads.copy()
    noise = SAFETY * np.finfo(np.float64).eps * max(abs(J0), 1.0) / h  # per central difference
    rng = np.random.default_rng(random_state)
    saved = net.params.copy()

    def J() -> float:
        Z = net.forward(X, keep=False)
        return net.loss_from_logits(Z, y, sample_weight)[0] + net.penalty(l2)

    def block_error(index: NDArray[np.intp]) -> float:
        numeric = central_differences(J, net.params, index, h)
        return _relative_error(numeric, analytic[index], noise * np.sqrt(index.size) / rtol)

    samples = [[_sample(index, max_checks, rng) for index in blocks] for blocks in _blocks(net)]
    # many small forward passes: BLAS threads would cost more than they save
    with one_blas_thread():
        try:
            _warn_if_slow(J, sum(index.size for blocks in samples for index in blocks))
            errors = []
            for l, blocks in enumerate(samples, start=1):
                worst = max(block_error(index) for index in blocks)
                checked = sum(index.size for index in blocks)
                errors.append(LayerError(l, net.layers[l - 1].shape, worst, checked))
            return errors
        finally:
            net.params[...] = saved
            net.clear_caches()


def _warn_if_slow(J: Callable[[], float], n_checks: int) -> None:
    """A UserWarning saying how long the check will take, from the time of one forward pass,
    when that is more than :data:`SLOW_SECONDS`."""
    start = time.perf_counter()
    J()
    seconds = 2 * n_checks * (time.perf_counter() - start)
    if seconds > SLOW_SECONDS:
        took = f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
        warnings.warn(f"gradcheck: {n_checks:,} coordinates to check, two forward passes of the "
                      f"whole network each: about {took} (fewer with max_checks)", UserWarning,
                      stacklevel=3)


def _blocks(net: Network) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """Flat indices of each layer's W and b in ``net.params``; the output intercepts, held at 0
    without ``fit_intercept`` (their gradient is set to 0), are left out."""
    blocks, start = [], 0
    for layer in net.layers:
        w_stop = start + layer.W.size
        b_stop = w_stop + layer.b.size
        frozen = layer is net.layers[-1] and not net.fit_intercept
        blocks.append((np.arange(start, w_stop), np.arange(w_stop, w_stop if frozen else b_stop)))
        start = b_stop
    return blocks


def _sample(index: NDArray[np.intp], max_checks: int | None, rng) -> NDArray[np.intp]:
    if max_checks is None or index.size <= max_checks:
        return index
    return np.sort(rng.choice(index, size=max_checks, replace=False))


def central_differences(
    J: Callable[[], float], theta: NDArray[np.float64], index: NDArray[np.intp], h: float = 1e-5
) -> NDArray[np.float64]:
    """(J(θ + h e_j) − J(θ − h e_j)) / 2h for each j in ``index``, where J() reads θ (changed in
    place, and put back).  The divisor is (θ_j + h) − (θ_j − h) as stored, so it is exact."""
    numeric = np.empty(index.size)
    for i, j in enumerate(index):
        t = theta[j]
        up, down = t + h, t - h
        theta[j] = up
        J_up = J()
        theta[j] = down
        J_down = J()
        theta[j] = t
        numeric[i] = (J_up - J_down) / (up - down)
    return numeric


def _relative_error(numeric, analytic, floor: float) -> float:
    """‖g − ĝ‖ / max(‖g‖ + ‖ĝ‖, floor); 0 for an empty block."""
    if numeric.size == 0:
        return 0.0
    scale = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    return float(np.linalg.norm(numeric - analytic) / max(scale, floor))


def random_problem(
    layer_sizes, activation: str = "tanh", n: int = 12, seed: int = 0
) -> tuple[Network, np.ndarray, np.ndarray]:
    """A random float64 network with random inputs and labels, for :func:`gradcheck`."""
    rng = np.random.default_rng(seed)
    K = layer_sizes[-1]
    output = "sigmoid" if K == 1 else "softmax"
    net = Network(layer_sizes, activation=activation, output=output).initialize(seed)
    net.params[net.penalty_mask == 0] = rng.normal(scale=0.1, size=(~net.penalty_mask).sum())
    X = rng.normal(size=(n, layer_sizes[0]))
    y = rng.integers(0, max(K, 2), size=n)
    return net, X, y
