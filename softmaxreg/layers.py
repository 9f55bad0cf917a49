"""A dense layer: forward and backward propagation exactly as in the notes.

Forward (rows are examples):   Z[l] = A[l-1] W[l]ᵀ + b[l]ᵀ,   A[l] = σ[l](Z[l])
Backward, given dA[l]:         dZ[l] = dA[l] ∘ σ[l]'(Z[l])
                               dW[l] = dZ[l]ᵀ A[l-1]
                               db[l] = dZ[l]ᵀ 1
                               dA[l-1] = dZ[l] W[l]
Shapes: A[l-1] is (n, d[l-1]); W[l] is (d[l], d[l-1]); b[l] is (d[l],); Z[l], A[l] are (n, d[l]).
The arrays are those of the network's namespace and device (NumPy, or PyTorch, CuPy, …).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ._array_api import into
from .activations import Activation

Array = NDArray[np.floating]


class Dense:
    """One layer whose ``W``, ``b`` (and ``dW``, ``db``) are views into the network's flat buffers.

    ``forward`` keeps ``A[l-1]``, ``Z[l]`` and ``A[l]`` for the ``backward`` that follows it.
    """

    def __init__(self, W: Array, b: Array, dW: Array, db: Array, activation: Activation):
        self.W, self.b, self.dW, self.db = W, b, dW, db
        self.activation = activation
        self._A_prev: Array | None = None
        self._Z: Array | None = None
        self._A: Array | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(d[l], d[l-1])."""
        return self.W.shape

    def forward(self, A_prev: Array, keep: bool = True) -> Array:
        """Z = A_prev Wᵀ + bᵀ, A = σ(Z)  —  (n, d_in) @ (d_in, d_out) -> (n, d_out).

        ``keep`` stores A_prev, Z, A for :meth:`backward`; inference passes ``keep=False`` and
        then touches no state, so one layer can serve many threads at once.
        """
        Z = A_prev @ self.W.T  # sparse @ dense gives a dense ndarray too
        Z += self.b
        A = self.activation.forward(Z)
        if keep:
            self._A_prev, self._Z, self._A = A_prev, Z, A
        return A

    def backward(self, dA: Array, need_dA_prev: bool = True) -> Array | None:
        """dZ = dA ∘ σ'(Z), then :meth:`backward_linear`.  Returns dA[l-1] (n, d_in)."""
        dZ = dA * self.activation.derivative(self._Z, self._A)
        return self.backward_linear(dZ, need_dA_prev)

    def backward_linear(self, dZ: Array, need_dA_prev: bool = True) -> Array | None:
        """dW = dZᵀ A_prev, db = dZᵀ 1, dA_prev = dZ W; writes dW and db in place.

        (d_out, n) @ (n, d_in) -> (d_out, d_in);  (n, d_out) @ (d_out, d_in) -> (n, d_in).
        """
        A_prev = self._A_prev
        if sp.issparse(A_prev):
            self.dW[...] = (A_prev.T @ dZ).T  # sparse product; A_prev is never made dense
        else:
            into(self.dW, "matmul", dZ.T, A_prev)
        into(self.db, "sum", dZ, axis=0)
        self._A_prev = self._Z = self._A = None  # release the cache of this step
        return dZ @ self.W if need_dA_prev else None
