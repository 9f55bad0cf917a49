"""The objective of a network on a flat θ, from partial sums over rows that a backend holds.

    J(θ) = (1 / Σ_i s_i) Σ_i s_i CE_i(θ) + (l2 / 2) Σ_l ‖W[l]‖²_F      (intercepts unpenalised)

A backend (:class:`Rows`) says where the rows are and returns, for the rows it holds, sums
that add up over any split of the rows:

    loss_grad_sums(net, θ)    (Σ s_i CE_i, Σ s_i ∇CE_i, Σ s_i)                    full batch
    gram_sums(net, θ, ...)    (Σ v_i x_i x_iᵀ, Σ v_i x_i, Σ v_i)   the preconditioner's B
    batch(net, rows, l2)      one minibatch step's mean loss and gradient        minibatch

:class:`MemoryRows` holds them in this process (summed over row blocks), as NumPy arrays or as
arrays of another namespace on their device (PyTorch, CuPy: the sums are computed there, and only
θ, the loss and ∇J cross to the host per evaluation).  On the host the sums of one evaluation, and
its preconditioner's Gram sums, are split across as many threads as NumPy's BLAS could use when the
rows were made, each with a replica of the network that shares its θ (:meth:`Network.replica`),
BLAS on one thread (a minibatch step of 128 rows split in two was slower: 0.45 against 0.41 s per
MNIST epoch, the two halves contending for the GIL);
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

from ._array_api import (
    asarray,
    device,
    dtype_of,
    is_numpy,
    namespace,
    numpy_dtype,
    to_numpy,
    widest_float,
)
from ._threads import blas_threads, even_slices, map_parts
from .functional import labels_from_logits
from .network import BLOCK_ROWS, Network

SPARSE_BLOCK_ROWS = 2**16  # the largest block of sparse rows: its n × K temporaries
GramSums = tuple[NDArray[np.float64], NDArray[np.float64], float]


def gram_sums(X, v, diagonal: bool = False, dtype=None, block_rows: int = BLOCK_ROWS) -> GramSums:
    """(Σ_i v_i x_i x_iᵀ — or its diagonal —, Σ_i v_i x_i, Σ_i v_i), summed in float64 over row
    blocks computed in X's precision (or ``dtype``, where squares would overflow it): no
    temporary the size of X.  (d, d) or (d,), (d,), float — on the host, whatever X's device
    (where X is, the sums are computed; only they cross)."""
    n, d = X.shape
    xp, dev = namespace(X), device(X)
    wide = widest_float(xp, dev)
    G = xp.zeros(d if diagonal else (d, d), dtype=wide, device=None if is_numpy(xp) else dev)
    g = xp.zeros(d, dtype=wide, device=None if is_numpy(xp) else dev)
    v = asarray(v, G, np.float64) if is_numpy(xp) else asarray(v, G)
    for a in range(0, n, block_rows):
        rows = slice(a, min(a + block_rows, n))  # (the standard has no out-of-bounds slices)
        Xb = X[rows, :]
        Xb = xp.astype(Xb, dtype_of(xp, dtype)) if dtype is not None else Xb
        Xv = Xb * xp.astype(v[rows], Xb.dtype)[:, None]
        if diagonal:
            G += np.einsum("ij,ij->j", Xb, Xv) if is_numpy(xp) else xp.sum(Xb * Xv, axis=0)
        else:
            G += Xb.T @ Xv
        g += xp.sum(Xv, axis=0)
    host = np.asarray(to_numpy(G), dtype=np.float64), np.asarray(to_numpy(g), dtype=np.float64)
    return *host, float(xp.sum(v))


def curvature_weights(net: Network, X, s, floor: float) -> NDArray[np.float64]:
    """v_i = s_i max(κ_i, floor), κ_i the curvature of CE_i in its logits at the network's θ
    (in the network's namespace, as ``s``)."""
    kappa = net.logit_curvature(X)
    kappa = namespace(kappa).clip(kappa, min=floor)
    return kappa if s is None else kappa * s


class Rows:
    """A backend: where the rows (X, class indices y, weights s > 0) live.

    ``n`` rows of ``n_features`` in the network's ``dtype`` (a NumPy dtype, whichever namespace
    holds the rows); ``total_weight`` = Σ s; ``top`` = max |x| (whether Gram sums overflow);
    ``sparse``; ``xp`` and ``device``: the namespace and device the network computes in.
    """

    n: int
    n_features: int
    total_weight: float
    top: float
    sparse: bool
    dtype: np.dtype
    device = None

    @property
    def xp(self):
        return np

    def order(self, perm: NDArray[np.intp]):
        """The epoch's order of the rows (a host permutation) as :meth:`batch` takes its
        ``rows``: the permutation itself, or moved once per epoch to where the rows are."""
        return perm

    def loss_grad_sums(self, net: Network, theta) -> tuple[float, NDArray[np.float64], float]:
        """(Σ s_i CE_i, Σ s_i ∇CE_i, Σ s_i) at θ, unpenalised; the gradient in float64."""
        raise NotImplementedError

    def gram_sums(self, net: Network, theta, floor: float, diagonal: bool, dtype) -> GramSums:
        """:func:`gram_sums` with v_i = s_i (θ None) or v_i = s_i max(κ_i(θ), floor)."""
        raise NotImplementedError

    def batch(self, net: Network, rows: NDArray[np.intp], l2: float):
        """(mean CE over ``rows``, ∇J_B with the penalty l2 (net.dtype), correct predictions,
        Σ_{i∈rows} s_i) at the network's θ: one minibatch step.  ``rows``: a slice of
        :meth:`order`.  Off the host, the loss, count and sum are 0-d arrays on the device
        (nothing crosses per step)."""
        raise NotImplementedError

    def separates(self, net: Network) -> bool:
        """Whether ``net`` puts every row on its class's side (False where it costs a pass)."""
        return False


class MemoryRows(Rows):
    """Rows held in this process: X (n, d) dense or CSR, already in the network's dtype; a dense
    X may be an array of any namespace on its device (PyTorch, CuPy, …), the network's.

    ``y`` (class indices) and ``s`` (weights) are kept on the host for planning (block weights,
    Σ s, class frequencies) and, off NumPy, also once on X's device for the math.
    """

    def __init__(self, X, y: NDArray, sample_weight: NDArray | None = None,
                 block_rows: int = BLOCK_ROWS, threads: int | None = None):
        self.X, self.y = X, np.asarray(to_numpy(y))
        self.s = (None if sample_weight is None
                  else np.asarray(to_numpy(sample_weight), dtype=np.float64))
        self.n, self.n_features = X.shape
        self.sparse = sp.issparse(X)
        self.dtype = numpy_dtype(X.dtype)
        self.total_weight = float(self.n if self.s is None else self.s.sum())
        self.block_rows = block_rows
        self._buffer = None
        self._twins: list[Network] = []  # the network and its replicas (:meth:`_replicas`)
        self.on_host = self.sparse or isinstance(X, np.ndarray)  # else: on X's device
        # how many threads share a full-batch evaluation: as many as NumPy's BLAS may use now
        # (scipy's sparse products hold the GIL: threads would only add the parts' gradients)
        self.threads = 1 if not self.on_host or self.sparse else threads or blas_threads()
        self.device = None if self.on_host else device(X)
        self._y = self.y if self.on_host else asarray(self.y, X)
        self._wide = widest_float(self.xp, self.device)  # what sums are kept in
        self._s = (self.s if self.on_host or self.s is None
                   else asarray(self.s, X, self._wide))

    @property
    def xp(self):
        return namespace(self.X)

    @cached_property
    def top(self) -> float:
        values = self.X.data if self.sparse else self.X
        if 0 in values.shape:
            return 0.0
        xp = namespace(values)
        return float(max(xp.max(values), -xp.min(values)))

    def _weights(self, rows) -> NDArray[np.float64] | None:
        return None if self.s is None else self.s[rows]

    def order(self, perm: NDArray[np.intp]):
        return perm if self.on_host else asarray(perm, self.X, np.int64)

    @cached_property
    def _blocks(self) -> list[tuple[slice, float]]:
        """Row blocks of ``block_rows`` with their weights Σ_{i∈B} s_i, planned once: each
        block's forward and backward pass reuse its rows while they are still in cache (X is read
        once per evaluation) and the temporaries are block-sized, never n × K.  Blocks of weight 0
        are skipped.  Sparse rows cost a dense K × d gradient per block whatever its size, so
        they come in blocks of SPARSE_BLOCK_ROWS."""
        n, b = self.n, self.block_rows
        if self.sparse:
            b = max(b, SPARSE_BLOCK_ROWS)
        blocks = [slice(a, min(a + b, n)) for a in range(0, n, b)]
        weighed = [(r, float(r.stop - r.start if self.s is None else self.s[r].sum()))
                   for r in blocks]
        return [(r, m) for r, m in weighed if m > 0]

    def loss_grad_sums(self, net: Network, theta):
        net.set_params(theta)
        blocks = self._blocks
        parts = [blocks[r] for r in even_slices(len(blocks), self.threads)]
        # each part its share of the blocks, in a replica with its own gradient buffer
        sums = map_parts(self._block_sums, self._replicas(net, len(parts)), parts)
        loss, grad = sum(J for J, _ in sums), sum(g for _, g in sums)
        return float(loss), np.asarray(to_numpy(grad), dtype=np.float64), self.total_weight

    def _block_sums(self, net: Network, blocks: list[tuple[slice, float]]):
        """(Σ s_i CE_i, Σ s_i ∇CE_i) over ``blocks``, summed in the widest float there is."""
        xp, wide = net.xp, widest_float(net.xp, net.device)
        loss, grad = 0.0, xp.zeros(net.params.shape[0], dtype=wide, device=net.device)
        for rows, m in blocks:
            J_B, g_B, _ = net.loss_grad(self.X[rows, :], self._y[rows],
                                        None if self.s is None else self._s[rows])
            # on a device, J_B and ∇J_B stay there until the sums are done (summed, as on the
            # host, in float64)
            loss += m * (J_B if self.on_host else xp.astype(J_B, wide))
            grad += m * g_B
        return loss, grad

    def _replicas(self, net: Network, k: int) -> list[Network]:
        """``net`` and k − 1 replicas sharing its parameters (kept while ``net`` is the same)."""
        twins = self._twins
        if not twins or twins[0] is not net or len(twins) < k:
            self._twins = twins = [net, *(net.replica() for _ in range(k - 1))]
        return twins[:k]

    def gram_sums(self, net: Network, theta, floor: float, diagonal: bool, dtype) -> GramSums:
        if theta is not None:
            net.set_params(theta)

        def part(rows: slice) -> GramSums:
            X = self.X[rows, :]
            s = None if self._s is None else self._s[rows]
            if theta is not None:  # (logits only: no layer state, so threads share the net)
                v = curvature_weights(net, X, s, floor)
            elif s is not None:
                v = s
            else:
                v = net.xp.ones(X.shape[0], dtype=widest_float(net.xp, net.device),
                                device=net.device)
            return gram_sums(X, v, diagonal, dtype, self.block_rows)

        sums = map_parts(part, even_slices(self.n, min(self.threads, self.n // self.block_rows)))
        return sum(G for G, _, _ in sums), sum(g for _, g, _ in sums), sum(v for _, _, v in sums)

    def _gather(self, rows: NDArray[np.intp]):
        """X[rows] copied into one buffer that every step reuses (no fancy-index copy per step,
        no second copy of X); valid only until the next call.  CSR rows are sliced as they are."""
        if self.sparse:
            return self.X[rows]
        if not self.on_host:
            return self.xp.take(self.X, rows, axis=0)
        if self._buffer is None or len(self._buffer) < len(rows):
            self._buffer = np.empty((len(rows), self.n_features), dtype=self.dtype)
        out = self._buffer[: len(rows)]
        np.take(self.X, rows, axis=0, out=out)
        return out

    def batch(self, net: Network, rows: NDArray[np.intp], l2: float):
        if self.on_host:
            y, s = self.y[rows], self._weights(rows)
        else:  # rows: device indices (order); the sums below stay on the device
            take = self.xp.take
            y, s = take(self._y, rows, axis=0), None if self.s is None else take(self._s, rows)
        loss, grads, Z = net.loss_grad(self._gather(rows), y, s)
        if l2:
            net.add_penalty_grad(l2)
        correct = namespace(Z).count_nonzero(labels_from_logits(Z) == y)
        m = rows.shape[0] if s is None else namespace(s).sum(s)
        if self.on_host:
            return loss, grads, int(correct), (m if s is None else float(m))
        return namespace(Z).astype(loss, self._wide), grads, correct, m

    def separates(self, net: Network) -> bool:
        xp = namespace(self.X)
        return bool(xp.all(labels_from_logits(net.logits(self.X)) == self._y))


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
        if not self.l2:  # C = inf, or a network without alpha: no penalty to add
            return loss_sum / S, grad_sum / S
        penalty_grad = theta * self._penalty_scale  # l2 · W[l], 0 on intercepts
        grad_sum /= S  # (the backend's array: a new one at every call)
        grad_sum += penalty_grad
        return loss_sum / S + 0.5 * float(theta @ penalty_grad), grad_sum

    @cached_property
    def _penalty_scale(self) -> NDArray[np.float64]:
        """l2 on the weights, 0 on the intercepts: one pass per evaluation where the wide
        problems (20 classes × 130,107 features) spent two."""
        return self.l2 * self.net.penalty_mask

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
