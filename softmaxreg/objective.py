"""The objective of a network on a flat θ, from partial sums over rows that a backend holds.

    J(θ) = (1 / Σ_i s_i) Σ_i s_i CE_i(θ) + (l2 / 2) Σ_l ‖W[l]‖²_F      (intercepts unpenalised)

A backend (:class:`Rows`) says where the rows are and returns, for the rows it holds, sums
that add up over any split of the rows:

    loss_grad_sums(net, θ)    (Σ s_i CE_i, Σ s_i ∇CE_i, Σ s_i)                    full batch
    gram_sums(net, θ, ...)    (Σ v_i x_i x_iᵀ, Σ v_i x_i, Σ v_i)   the preconditioner's B
    batch(net, rows, l2)      one minibatch step's mean loss and gradient        minibatch

:class:`MemoryRows` holds them in this process (summed over row blocks);
:class:`softmaxreg.distributed.DaskRows` on the workers of a Dask cluster (tree-summed there).
:class:`Objective` divides by Σ s and adds the penalty, once, above every backend; the solvers
(:mod:`softmaxreg.solvers`) and the training loop (:mod:`softmaxreg.training`) see only it and
the backend's ``batch``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .functional import labels_from_logits
from .network import BLOCK_ROWS, Network

GramSums = tuple[NDArray[np.float64], NDArray[np.float64], float]


def gram_sums(X, v, diagonal: bool = False, dtype=None, block_rows: int = BLOCK_ROWS) -> GramSums:
    """(Σ_i v_i x_i x_iᵀ — or its diagonal —, Σ_i v_i x_i, Σ_i v_i), summed in float64 over row
    blocks computed in X's precision (or ``dtype``, where squares would overflow it): no
    temporary the size of X.  (d, d) or (d,), (d,), float."""
    n, d = X.shape
    G, g = np.zeros(d if diagonal else (d, d)), np.zeros(d)
    v = np.asarray(v, dtype=np.float64)
    for a in range(0, n, block_rows):
        Xb = X[a:a + block_rows]
        Xb = Xb.astype(dtype) if dtype is not None else Xb
        Xv = Xb * v[a:a + block_rows].astype(Xb.dtype)[:, None]
        G += np.einsum("ij,ij->j", Xb, Xv) if diagonal else Xb.T @ Xv
        g += Xv.sum(axis=0)
    return G, g, float(v.sum())


def curvature_weights(net: Network, X, s, floor: float) -> NDArray[np.float64]:
    """v_i = s_i max(κ_i, floor), κ_i the curvature of CE_i in its logits at the network's θ."""
    kappa = np.maximum(net.logit_curvature(X), floor)
    return kappa if s is None else kappa * s


class Rows:
    """A backend: where the rows (X, class indices y, weights s > 0) live.

    ``n`` rows of ``n_features`` in the network's ``dtype``; ``total_weight`` = Σ s; ``top`` =
    max |x| (whether Gram sums overflow); ``sparse``.
    """

    n: int
    n_features: int
    total_weight: float
    top: float
    sparse: bool
    dtype: np.dtype

    def loss_grad_sums(self, net: Network, theta) -> tuple[float, NDArray[np.float64], float]:
        """(Σ s_i CE_i, Σ s_i ∇CE_i, Σ s_i) at θ, unpenalised; the gradient in float64."""
        raise NotImplementedError

    def gram_sums(self, net: Network, theta, floor: float, diagonal: bool, dtype) -> GramSums:
        """:func:`gram_sums` with v_i = s_i (θ None) or v_i = s_i max(κ_i(θ), floor)."""
        raise NotImplementedError

    def batch(self, net: Network, rows: NDArray[np.intp], l2: float):
        """(mean CE over ``rows``, ∇J_B with the penalty l2 (net.dtype), correct predictions,
        Σ_{i∈rows} s_i) at the network's θ: one minibatch step."""
        raise NotImplementedError

    def separates(self, net: Network) -> bool:
        """Whether ``net`` puts every row on its class's side (False where it costs a pass)."""
        return False


class MemoryRows(Rows):
    """Rows held in this process: X (n, d) dense or CSR, already in the network's dtype."""

    def __init__(self, X, y: NDArray, sample_weight: NDArray | None = None,
                 block_rows: int = BLOCK_ROWS):
        self.X, self.y = X, np.asarray(y)
        self.s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.n, self.n_features = X.shape
        self.sparse = sp.issparse(X)
        self.dtype = X.dtype
        self.total_weight = float(self.n if self.s is None else self.s.sum())
        self.block_rows = block_rows
        self._buffer = None

    @cached_property
    def top(self) -> float:
        values = self.X.data if self.sparse else self.X
        return float(max(values.max(), -values.min())) if values.size else 0.0

    def _weights(self, rows) -> NDArray[np.float64] | None:
        return None if self.s is None else self.s[rows]

    def _blocks(self) -> list[slice]:
        """Row blocks of ``block_rows``: each block's forward and backward pass reuse its rows
        while they are still in cache (X is read once per evaluation) and the temporaries are
        block-sized, never n × K.  Blocks of weight 0 are skipped."""
        n, b = self.n, self.block_rows
        blocks = [slice(a, min(a + b, n)) for a in range(0, n, b)]
        return blocks if self.s is None else [r for r in blocks if self.s[r].sum() > 0]

    def loss_grad_sums(self, net: Network, theta):
        net.params[...] = theta
        loss, grad = 0.0, np.zeros(net.params.size)
        for rows in self._blocks():
            s = self._weights(rows)
            m = rows.stop - rows.start if s is None else float(s.sum())
            J_B, g_B, _ = net.loss_grad(self.X[rows], self.y[rows], s)
            loss += m * J_B
            grad += m * g_B
        return loss, grad, self.total_weight

    def gram_sums(self, net: Network, theta, floor: float, diagonal: bool, dtype) -> GramSums:
        v = np.ones(self.n) if self.s is None else self.s
        if theta is not None:
            net.params[...] = theta
            v = curvature_weights(net, self.X, self.s, floor)
        return gram_sums(self.X, v, diagonal, dtype, self.block_rows)

    def _gather(self, rows: NDArray[np.intp]):
        """X[rows] copied into one buffer that every step reuses (no fancy-index copy per step,
        no second copy of X); valid only until the next call.  CSR rows are sliced as they are."""
        if self.sparse:
            return self.X[rows]
        if self._buffer is None or len(self._buffer) < len(rows):
            self._buffer = np.empty((len(rows), self.n_features), dtype=self.dtype)
        out = self._buffer[: len(rows)]
        np.take(self.X, rows, axis=0, out=out)
        return out

    def batch(self, net: Network, rows: NDArray[np.intp], l2: float):
        y, s = self.y[rows], self._weights(rows)
        loss, grads, Z = net.loss_grad(self._gather(rows), y, s)
        if l2:
            net.add_penalty_grad(l2)
        m = len(rows) if s is None else float(s.sum())
        return loss, grads, int(np.sum(labels_from_logits(Z) == y)), m

    def separates(self, net: Network) -> bool:
        return bool(np.all(labels_from_logits(net.logits(self.X)) == self.y))


def as_rows(X, y=None, sample_weight=None, net: Network | None = None) -> Rows:
    """``X`` itself when it is a backend, else the in-memory rows (X, y, sample_weight) with X in
    the dtype of ``net`` (converted once, not at every step) and sparse X as CSR (whose row
    slices are cheap)."""
    if isinstance(X, Rows):
        return X
    X = X if net is None else net.as_input(X)
    return MemoryRows(X.tocsr() if sp.issparse(X) else X, y, sample_weight)


class Objective:
    """``f(θ) -> (J, ∇J)`` on a float64 flat vector, for the full-batch solvers: the backend's
    sums divided by Σ s, plus the penalty (l2 / 2) Σ_l ‖W[l]‖² and its gradient l2 · W[l].

    It also answers what the preconditioned solver (:func:`solvers.preconditioned_lbfgs`) asks:
    the shape of the problem, and the weighted Gram sums of the rows, normalised by Σ s.
    """

    def __init__(self, rows: Rows, net: Network, l2: float = 0.0):
        self.rows, self.net, self.l2 = rows, net, float(l2)

    def __call__(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        loss_sum, grad_sum, S = self.rows.loss_grad_sums(self.net, theta)
        net = self.net
        net.params[...] = theta
        return loss_sum / S + net.penalty(self.l2), grad_sum / S + self.l2 * theta * net.penalty_mask

    # -- what a preconditioner needs --------------------------------------------------------
    @property
    def linear(self) -> bool:
        """One layer (softmax regression): the Hessian block of each class is X̃ᵀ diag(·) X̃."""
        return len(self.net.layers) == 1

    @property
    def n_classes(self) -> int:
        return self.net.layer_sizes[-1]

    @property
    def fit_intercept(self) -> bool:
        return self.net.fit_intercept

    @property
    def curvature_bound(self) -> float:
        """The largest curvature of CE_i in one logit: ½ (softmax), ¼ (sigmoid)."""
        return 0.5 if self.net.output == "softmax" else 0.25

    def gram(self, theta, weight: float, floor: float, diagonal: bool, dtype) -> GramSums:
        """The sums of X̃ᵀ diag(w) X̃ with w_i = weight · s_i / Σ s (θ None: the Hessian bound), or
        w_i = s_i max(κ_i(θ), floor) / Σ s (the curvature at θ)."""
        G, g, g0 = self.rows.gram_sums(self.net, theta, floor, diagonal, dtype)
        scale = weight / self.rows.total_weight
        return G * scale, g * scale, g0 * scale


def objective(net: Network, X, y, sample_weight=None, l2: float = 0.0) -> Objective:
    """The full-batch objective of ``net`` on in-memory data (X, y, sample_weight)."""
    return Objective(as_rows(X, y, sample_weight, net), net, l2)
