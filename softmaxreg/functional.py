"""The math of the notes as pure functions on arrays.

Notation (rows are examples): ``Z`` is the ``n × K`` matrix of logits (pre-activation scores of the
last layer), ``Y`` the ``n × K`` one-hot (or probability) matrix of targets, ``Y_hat = softmax(Z)``
the estimated class probabilities, and ``y`` a vector of ``n`` integer labels in ``0..K-1``.

Every loss here is a *weighted mean* over rows, as in the notes,
``J = -(1/n) Σ_i Σ_k y_ik log ŷ_ik`` (with sample weights ``s_i``: ``Σ_i s_i CE_i / Σ_i s_i``),
and every gradient is the gradient of that mean.  Penalties are added elsewhere (network.py).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "one_hot",
    "cross_entropy",
    "cross_entropy_grad",
    "softmax_cross_entropy",
    "sigmoid",
    "log_sigmoid",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy",
    "labels_from_logits",
]


def _float(Z: ArrayLike) -> NDArray[np.floating]:
    Z = np.asarray(Z)
    return Z if Z.dtype.kind == "f" else Z.astype(np.float64)


def _row_max(Z: NDArray[np.floating]) -> NDArray[np.floating]:
    """Row maxima, with non-finite maxima replaced by 0 so that ``Z - m`` stays well defined."""
    m = Z.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0
    return m


def logsumexp(Z: ArrayLike) -> NDArray[np.floating]:
    """log Σ_k exp(z_k) per row, computed as m + log Σ_k exp(z_k − m) with m = max_k z_k.

    Shifting by the row maximum makes every exponent ≤ 0: no overflow, and the largest term is
    exactly 1, so the sum never underflows to 0.  ``(n, K) -> (n,)``; a 1-D input gives a scalar.
    """
    Z = _float(Z)
    m = _row_max(Z)
    with np.errstate(under="ignore"):
        s = np.exp(Z - m).sum(axis=-1, keepdims=True)
    return (np.log(s) + m)[..., 0]


def softmax(Z: ArrayLike) -> NDArray[np.floating]:
    """ŷ_k = exp(z_k) / Σ_j exp(z_j) per row, shifted by the row maximum.  ``(n, K) -> (n, K)``.

    Worked example of the notes: softmax([5, 2, -1, 3]) = [0.842, 0.042, 0.002, 0.114].
    """
    Z = _float(Z)
    with np.errstate(under="ignore"):
        E = np.exp(Z - _row_max(Z))
    E /= E.sum(axis=-1, keepdims=True)
    return E


def log_softmax(Z: ArrayLike) -> NDArray[np.floating]:
    """log ŷ_k = z_k − log Σ_j exp(z_j).  ``(n, K) -> (n, K)``; never log(0) for finite z.

    Computed as (z_k − m) − log Σ_j exp(z_j − m): subtracting the rounded m + log Σ from z_k
    would cancel catastrophically for large |z| (ln 3 came out as 1.09863 in float32 at 1e4).
    """
    Z = _float(Z)
    S = Z - _row_max(Z)
    with np.errstate(under="ignore"):
        return S - np.log(np.exp(S).sum(axis=-1, keepdims=True))


def one_hot(y: ArrayLike, n_classes: int | None = None, dtype=np.float64) -> NDArray:
    """Y with y_ik = 1 if y_i = k else 0.  ``(n,) int -> (n, K)``."""
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.dtype.kind not in "iu" or y.min() < 0)):
        raise ValueError("one_hot expects a 1-D array of non-negative integer labels")
    K = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if y.size and y.max() >= K:
        raise ValueError(f"label {int(y.max())} does not fit in {K} classes")
    Y = np.zeros((y.shape[0], K), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


def _row_weights(n: int, sample_weight: ArrayLike | None, dtype) -> NDArray[np.floating]:
    """Weights s_i / Σ s that turn a per-row sum into the (weighted) mean over rows."""
    if sample_weight is None:
        return np.full(n, 1.0 / n, dtype=dtype)
    s = np.asarray(sample_weight, dtype=dtype)
    if s.shape != (n,):
        raise ValueError(f"sample_weight has shape {s.shape}, expected ({n},)")
    total = s.sum()
    if not total > 0:
        raise ValueError("sample_weight must have a positive sum")
    return s / total


def _is_labels(y: NDArray) -> bool:
    return y.ndim == 1


def softmax_cross_entropy(
    Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[float, NDArray[np.floating]]:
    """Loss and gradient at the logits in one pass over Z.

    J = −Σ_i w_i Σ_k y_ik log ŷ_ik  and  ∂J/∂Z = w ∘ (Ŷ − Y),  with w_i = 1/n (or s_i / Σ s).
    ``y`` is ``(n,)`` integer labels or an ``(n, K)`` one-hot/probability matrix.  Integer
    labels are never expanded into a one-hot matrix: ``(Ŷ − Y)`` is Ŷ with 1 subtracted at
    ``[i, y_i]``.  Returns ``(J, dZ)`` with ``dZ`` of shape ``(n, K)``, the dtype of Z.
    """
    Z = _float(Z)
    y = np.asarray(y)
    n = Z.shape[0]
    w = _row_weights(n, sample_weight, Z.dtype)
    m = _row_max(Z)
    with np.errstate(under="ignore"):
        dZ = np.exp(Z - m)
    s = dZ.sum(axis=1, keepdims=True)
    # (n,): log Σ_k exp(z_ik − m_i); m is kept apart so that CE_i = log_s_i − (z_{i,y_i} − m_i)
    # does not cancel the large lse_i against z_{i,y_i} in float32
    log_s = np.log(s[:, 0])
    dZ /= s  # Ŷ
    if _is_labels(y):
        rows = np.arange(n)
        loss = float(w @ (log_s - (Z[rows, y] - m[:, 0])))  # CE_i = lse_i − z_{i,y_i}
        dZ[rows, y] -= 1
    else:
        Y = y.astype(Z.dtype, copy=False)
        loss = float(w @ (log_s * Y.sum(axis=1) - np.einsum("ik,ik->i", Y, Z - m)))
        dZ -= Y
    dZ *= w[:, None]
    return loss, dZ


def cross_entropy(Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """J = −(1/n) Σ_i Σ_k y_ik log softmax(z_i)_k, from logits ``Z`` ``(n, K)``.

    ``y``: integer labels ``(n,)`` or one-hot / probability rows ``(n, K)``.  With
    ``sample_weight`` the mean is weighted: Σ_i s_i CE_i / Σ_i s_i (as
    ``sklearn.metrics.log_loss``).
    """
    Z = _float(Z)
    y = np.asarray(y)
    w = _row_weights(Z.shape[0], sample_weight, Z.dtype)
    log_P = log_softmax(Z)
    if _is_labels(y):
        return float(-(w @ log_P[np.arange(Z.shape[0]), y]))
    Y = y.astype(Z.dtype, copy=False)
    return float(-(w @ np.einsum("ik,ik->i", Y, log_P)))


def cross_entropy_grad(
    Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> NDArray[np.floating]:
    """∂J/∂Z = (Ŷ − Y)/n (weighted: s_i (ŷ_i − y_i) / Σ s), fused; ``(n, K) -> (n, K)``."""
    return softmax_cross_entropy(Z, y, sample_weight)[1]


def sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """σ(z) = 1 / (1 + e^{−z}), evaluated without overflow for any sign of z."""
    z = _float(z)
    e = np.exp(-np.abs(z))  # ≤ 1: never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def log_sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """log σ(z) = −log(1 + e^{−z}) = −logaddexp(0, −z)."""
    return -np.logaddexp(0, -_float(z))


def sigmoid_binary_cross_entropy(
    z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[float, NDArray[np.floating]]:
    """Binary cross-entropy from the logit and its gradient at the logit, in one pass.

    J = −Σ_i w_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))] = Σ_i w_i [log(1 + e^{z_i}) − y_i z_i]
    and ∂J/∂z = w ∘ (σ(z) − y), with w_i = 1/n (or s_i / Σ s); ``y`` in {0, 1} (or [0, 1]).
    ``z`` is ``(n,)`` or ``(n, 1)``; the gradient has the shape of ``z``.
    """
    z = _float(z)
    y = np.asarray(y, dtype=z.dtype).reshape(z.shape)
    w = _row_weights(z.shape[0], sample_weight, z.dtype).reshape((-1,) + (1,) * (z.ndim - 1))
    loss = float(np.sum(w * (np.logaddexp(0, z) - y * z)))
    return loss, w * (sigmoid(z) - y)


def binary_cross_entropy(
    z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> float:
    """J = −(1/n) Σ_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))], from logits z.

    The K = 2 case of :func:`cross_entropy`: with z = z_1 − z_0 the two agree (see the notes).
    """
    return sigmoid_binary_cross_entropy(z, y, sample_weight)[0]


def binary_cross_entropy_grad(
    z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> NDArray[np.floating]:
    """∂J/∂z = (σ(z) − y)/n (weighted: s_i (σ(z_i) − y_i) / Σ s)."""
    return sigmoid_binary_cross_entropy(z, y, sample_weight)[1]


def labels_from_logits(Z: ArrayLike) -> NDArray[np.intp]:
    """ŷ_i = argmax_k z_ik, as indices 0..K−1: (n, K) -> (n,).

    One sigmoid unit (Z of shape (n,) or (n, 1)) decides class 1 where z > 0, i.e. σ(z) > ½.
    """
    Z = np.asarray(Z)
    if Z.ndim == 1 or Z.shape[1] == 1:
        return (Z.reshape(-1) > 0).astype(np.intp)
    return Z.argmax(axis=1)
