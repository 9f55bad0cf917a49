"""A feed-forward network of dense layers ending in a softmax (or, for K = 2, one sigmoid unit).

Softmax regression is the network with no hidden layer.  All parameters live in one contiguous
flat buffer ``params``; each layer's ``W[l]`` and ``b[l]`` are views into it (and ``dW[l]``,
``db[l]`` into ``grads``), so solvers and optimisers update the whole model in place, with no
copies.

The objective, stated once (rows weighted by w_i = 1/n, or s_i / Σ s with sample weights):

    J(θ) = Σ_i w_i CE_i + (l2 / 2) Σ_l ‖W[l]‖²_F        (intercepts b[l] are not penalised)

with CE_i = −Σ_k y_ik log ŷ_ik (softmax output) or the binary cross-entropy (sigmoid output).

The buffers live in one array namespace and on one device (NumPy by default; PyTorch, CuPy, … with
``xp`` and ``device``), and so does everything the network computes: it is handed X in that
namespace, and θ crosses from and to the host only through :meth:`Network.set_params` and
:meth:`Network.to_numpy`.  ``penalty_mask`` is a host (NumPy) vector, like the solvers' θ.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from ._array_api import NUMPY, asarray, dtype_of, is_numpy, namespace, to_numpy, widest_float
from ._array_api import device as device_of
from ._threads import blas_threads, even_slices, map_parts
from .activations import get_activation
from .functional import sigmoid, sigmoid_binary_cross_entropy, softmax, softmax_cross_entropy
from .layers import Dense

Array = NDArray[np.floating]

OUTPUTS = ("softmax", "sigmoid")
BLOCK_ROWS = 2048  # rows per block in full-batch evaluations: 2048 × 784 float32 = 6.4 MB
SPLIT_ROWS = 1024  # inference splits its rows across threads in parts of at least this


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that defines a network but its parameters: what pickling, model files,
    checkpoints and the Dask workers need to rebuild it (θ travels separately)."""

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    output: str = "softmax"
    dtype: str = "float64"
    fit_intercept: bool = True

    def as_dict(self) -> dict:
        """The spec as JSON values (model files and checkpoints store it so)."""
        return {"layer_sizes": list(self.layer_sizes), "activation": self.activation,
                "output": self.output, "dtype": self.dtype, "fit_intercept": self.fit_intercept}

    def build(self, params: ArrayLike | None = None, xp=None, device=None) -> Network:
        """The network of this spec, with ``params`` (θ) copied in when given; in namespace
        ``xp`` on ``device`` (default: those of ``params``, else NumPy)."""
        if xp is None and params is not None:
            xp, device = namespace(params), device_of(params)
        net = Network(self.layer_sizes, self.activation, self.output, np.dtype(self.dtype),
                      self.fit_intercept, xp=xp, device=device)
        if params is not None:
            net.set_params(params)
        return net


class Network:
    """``layer_sizes = (d[0], d[1], …, d[L])``; d[L] = K for softmax, 1 for the sigmoid (K = 2).

    Hidden layers use ``activation``; the last layer is linear and its logits go to the loss.
    The flat buffers are arrays of namespace ``xp`` on ``device`` (NumPy when ``xp`` is None).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        output: str = "softmax",
        dtype: type = np.float64,
        fit_intercept: bool = True,
        xp=None,
        device=None,
    ):
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes must hold at least 2 positive sizes, got {layer_sizes}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if (sizes[-1] == 1) != (output == "sigmoid"):
            raise ValueError(
                f"a {output} output needs {'1 unit' if output == 'sigmoid' else 'K >= 2 units'}, "
                f"but the last layer has {sizes[-1]}"
            )
        self.layer_sizes = tuple(sizes)
        self.activation = activation
        self.output = output
        self.fit_intercept = fit_intercept
        self.dtype = np.dtype(dtype)  # by name: the buffers' dtype is xp's of the same name
        n_params = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:]))
        if xp is None or is_numpy(xp):
            xp, device = NUMPY, None
        else:  # the library's own module (torch) or its array-API namespace: the latter
            xp = namespace(xp.zeros(0, device=device))
        self.params = xp.zeros(n_params, dtype=dtype_of(xp, self.dtype), device=device)
        self.grads = xp.zeros(n_params, dtype=dtype_of(xp, self.dtype), device=device)
        self.penalty_mask = np.zeros(n_params, dtype=bool)  # True on weights, False on intercepts
        self._slices: list[tuple[slice, slice]] = []  # (W[l], b[l]) in the flat buffers
        self.layers = self._make_layers(get_activation(activation), xp)

    def _make_layers(self, hidden, xp) -> list[Dense]:
        layers, start = [], 0
        identity = get_activation("identity")
        pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        for l, (d_in, d_out) in enumerate(pairs, start=1):
            w_stop = start + d_out * d_in
            b_stop = w_stop + d_out
            self.penalty_mask[start:w_stop] = True
            self._slices.append((slice(start, w_stop), slice(w_stop, b_stop)))
            # views (copy=False raises where a namespace would copy): updates of the flat
            # buffers are updates of W[l], b[l] and back
            layers.append(
                Dense(
                    W=xp.reshape(self.params[start:w_stop], (d_out, d_in), copy=False),
                    b=self.params[w_stop:b_stop],
                    dW=xp.reshape(self.grads[start:w_stop], (d_out, d_in), copy=False),
                    db=self.grads[w_stop:b_stop],
                    activation=identity if l == len(pairs) else hidden,
                )
            )
            start = b_stop
        return layers

    @property
    def spec(self) -> NetworkSpec:
        return NetworkSpec(self.layer_sizes, self.activation, self.output, self.dtype.name,
                           self.fit_intercept)

    @property
    def xp(self):
        """The array namespace of the buffers (``numpy`` by default)."""
        return namespace(self.params)

    @property
    def device(self):
        return device_of(self.params)

    def set_params(self, theta: ArrayLike) -> None:
        """θ copied into ``params``, from the host or any namespace, in the buffers' dtype."""
        if isinstance(self.params, np.ndarray):
            self.params[...] = to_numpy(theta)
        else:
            self.params[...] = asarray(theta, self.params, self.dtype)

    def replica(self) -> Network:
        """A network that shares this one's parameters (the same ``params`` buffer, so the same
        W[l], b[l]) with a gradient buffer and layer caches of its own: one per thread when the
        rows of one evaluation are split across threads (each computes its part's ∇, the caller
        sums them)."""
        twin = copy.copy(self)
        twin.grads = self.xp.zeros_like(self.grads)
        twin.penalty_mask, twin._slices = self.penalty_mask.copy(), []
        twin.layers = twin._make_layers(get_activation(self.activation), self.xp)
        return twin

    def to_numpy(self) -> Network:
        """A copy of this network on the host (NumPy): what model files and exports store."""
        return self.spec.build(to_numpy(self.params))

    # -- parameters -------------------------------------------------------------------------
    @property
    def W(self) -> list[Array]:
        """W[1..L] as views, each (d[l], d[l-1])."""
        return [layer.W for layer in self.layers]

    @property
    def b(self) -> list[Array]:
        """b[1..L] as views, each (d[l],)."""
        return [layer.b for layer in self.layers]

    def initialize(self, random_state: int | np.random.Generator | None = 0) -> Network:
        """He (relu, leaky_relu) or Glorot (tanh, sigmoid, identity) uniform weights, zero biases.

        He:     W ~ U(−r, r), r = √(6 / d_in)          Glorot: r = √(6 / (d_in + d_out))
        """
        rng = np.random.default_rng(random_state)
        he = self.activation in ("relu", "leaky_relu")
        theta = np.zeros(self.params.shape[0])  # drawn on the host: the same θ on every device
        for layer, (w, _) in zip(self.layers, self._slices):
            d_out, d_in = layer.shape
            r = np.sqrt(6.0 / (d_in if he and layer is not self.layers[-1] else d_in + d_out))
            theta[w] = rng.uniform(-r, r, size=(d_out, d_in)).ravel()
        self.set_params(theta)
        return self

    # -- forward and backward -----------------------------------------------------------------
    def as_input(self, X: ArrayLike) -> Array:
        """X in the buffers' dtype, namespace and device (no copy when it already is)."""
        if sp.issparse(X):
            return X if X.dtype == self.dtype else X.astype(self.dtype)
        if isinstance(self.params, np.ndarray):
            return np.asarray(X, dtype=self.dtype)
        if (type(X) is type(self.params) and X.dtype == self.params.dtype
                and device_of(X) == self.device):  # (at every step: no conversion to look up)
            return X
        return asarray(X, self.params, self.dtype)

    def forward(self, X: ArrayLike, keep: bool = True) -> Array:
        """A[0] = X; Z[l] = A[l-1] W[l]ᵀ + b[l]ᵀ, A[l] = σ[l](Z[l]); returns the logits Z[L].

        ``keep=True`` keeps each layer's A[l-1], Z[l], A[l] for the backward pass that follows.
        """
        A = self.as_input(X)
        for layer in self.layers:
            A = layer.forward(A, keep)
        return A

    def logits(self, X: ArrayLike) -> Array:
        """Z[L] for inference: no layer state is written, so concurrent calls are safe.

        Dense rows on the host are split across as many threads as NumPy's BLAS may use, each
        part on one BLAS thread, which was faster than BLAS's own threads inside each product of
        a 784-128-64-10 network (``benchmarks/fair.py``'s prediction task measures it).
        """
        X = self.as_input(X)
        n = X.shape[0]
        if n < 2 * SPLIT_ROWS or not isinstance(X, np.ndarray):  # (sparse, or on a device)
            return self.forward(X, keep=False)
        Z = np.empty((n, self.layer_sizes[-1]), dtype=np.result_type(X, self.params))

        def part(rows: slice) -> None:
            Z[rows] = self.forward(X[rows], keep=False)

        map_parts(part, even_slices(n, min(blas_threads(), n // SPLIT_ROWS)))
        return Z

    def predict_proba(self, X: ArrayLike) -> Array:
        """Ŷ = softmax(Z[L]) (n, K); for the sigmoid output, [1 − σ(z), σ(z)] (n, 2)."""
        return self.proba_from_logits(self.logits(X))

    def proba_from_logits(self, Z: Array) -> Array:
        """Ŷ from the logits Z[L] (n, d[L]); 1 − σ(z) is computed as σ(−z), which keeps its
        digits where σ(z) rounds to 1 (z > 37 in float64) instead of becoming 0."""
        if self.output == "softmax":
            return softmax(Z)
        xp = namespace(Z)
        z = xp.reshape(Z, (-1,))
        return xp.stack([sigmoid(-z), sigmoid(z)], axis=1)

    def decision_function(self, X: ArrayLike) -> Array:
        """The logits Z[L]: (n, K), or (n,) for the sigmoid output."""
        Z = self.logits(X)
        return Z[:, 0] if self.output == "sigmoid" else Z

    def clear_caches(self) -> None:
        for layer in self.layers:
            layer._A_prev = layer._Z = layer._A = None

    def logit_curvature(self, X: ArrayLike, block_rows: int = BLOCK_ROWS) -> NDArray[np.float64]:
        """κ_i: the mean diagonal entry of the Hessian of CE_i with respect to the logits z_i.

        Softmax: ∂²CE/∂z_k² = ŷ_k (1 − ŷ_k), so κ_i = (1/K) Σ_k ŷ_ik (1 − ŷ_ik); sigmoid:
        κ_i = σ(z_i)(1 − σ(z_i)).  Near 0 for rows the model already classifies confidently.
        """
        X, xp = self.as_input(X), self.xp
        kappa = xp.empty(X.shape[0], dtype=widest_float(xp, self.device), device=self.device)
        for a in range(0, X.shape[0], block_rows):
            rows = slice(a, min(a + block_rows, X.shape[0]))
            P = self.predict_proba(X[rows, :])
            # sigmoid: both columns are σ(1 − σ)
            kappa[rows] = xp.astype(xp.mean(P * (1 - P), axis=1), kappa.dtype)
        return kappa

    def loss_from_logits(
        self, Z: Array, y: NDArray, sample_weight: ArrayLike | None = None
    ) -> tuple[float, Array]:
        """Σ_i w_i CE_i and dZ[L] = w ∘ (Ŷ − Y) for integer labels y in 0..K−1."""
        if self.output == "softmax":
            return softmax_cross_entropy(Z, y, sample_weight)
        return sigmoid_binary_cross_entropy(Z, y, sample_weight)

    def penalty(self, l2: float) -> float:
        """(l2 / 2) Σ_l ‖W[l]‖² (a float; a 0-d array of the buffers' namespace off NumPy)."""
        if not l2:
            return 0.0
        if isinstance(self.params, np.ndarray):
            return 0.5 * l2 * sum(float(np.vdot(W, W)) for W in self.W)
        xp = self.xp
        return 0.5 * l2 * sum(xp.sum(W * W) for W in self.W)

    def loss_grad(
        self, X: ArrayLike, y: NDArray, sample_weight: ArrayLike | None = None, l2: float = 0.0
    ) -> tuple[float, Array, Array]:
        """J(θ) and ∂J/∂θ (the flat ``grads`` buffer, overwritten), plus the logits Z[L].

        Backward from dZ[L] = w ∘ (Ŷ − Y) through every layer; the penalty adds l2 · W[l] to dW[l].
        """
        Z = self.forward(X)
        loss, dZ = self.loss_from_logits(Z, y, sample_weight)
        last = len(self.layers) - 1
        for l in range(last, -1, -1):
            layer = self.layers[l]
            if l == last:
                dA = layer.backward_linear(dZ, need_dA_prev=l > 0)
            else:
                dA = layer.backward(dA, need_dA_prev=l > 0)
        if not self.fit_intercept:
            self.layers[-1].db[...] = 0
        if l2:
            loss += self.penalty(l2)
            self.add_penalty_grad(l2)
        return loss, self.grads, Z

    def add_penalty_grad(self, l2: float) -> None:
        """dW[l] += l2 · W[l] for every layer: the weights only, intercepts are not penalised."""
        for layer in self.layers:
            layer.dW += l2 * layer.W
