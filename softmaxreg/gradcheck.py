"""Finite-difference check of backpropagation, layer by layer (the teaching tool of the notes).

For each parameter θ_j the central difference (J(θ + h e_j) − J(θ − h e_j)) / 2h is compared with
the analytic ∂J/∂θ_j from the backward pass.  The error of a layer is
max_j |g_j − ĝ_j| / max(|g_j| + |ĝ_j|, floor) over its W and b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network


@dataclass
class LayerError:
    layer: int
    shape: tuple[int, int]
    max_rel_error: float


def gradcheck(
    net: Network, X, y, sample_weight=None, l2: float = 0.0, h: float = 1e-5, floor: float = 1e-8
) -> list[LayerError]:
    """Largest relative error between backprop and central differences, per layer (float64).

    h = 1e-5 balances the truncation error O(h²) against the rounding error O(ε/h).
    """
    if net.dtype != np.float64:
        raise ValueError("gradcheck needs a float64 network: float32 differences are too coarse")
    theta = net.params.copy()
    _, g, _ = net.loss_grad(X, y, sample_weight, l2)
    analytic = g.copy()

    def J(vec):
        net.params[...] = vec
        return net.loss_grad(X, y, sample_weight, l2)[0]

    numeric = np.empty_like(theta)
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = h
        numeric[j] = (J(theta + step) - J(theta - step)) / (2 * h)
    net.params[...] = theta
    net.clear_caches()
    rel = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)
    errors, start = [], 0
    for l, layer in enumerate(net.layers, start=1):
        stop = start + layer.W.size + layer.b.size
        errors.append(LayerError(l, layer.shape, float(rel[start:stop].max())))
        start = stop
    return errors


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
