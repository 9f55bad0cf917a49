"""The math of the notes as pure functions on arrays.

Notation (rows are examples): ``Z`` is the ``n × K`` matrix of logits (pre-activation scores of the
last layer), ``Y`` the ``n × K`` one-hot (or probability) matrix of targets, ``Y_hat = softmax(Z)``
the estimated class probabilities, and ``y`` a vector of ``n`` integer labels in ``0..K-1``.

Every loss here is a *weighted mean* over rows, as in the notes,
``J = -(1/n) Σ_i Σ_k y_ik log ŷ_ik`` (with sample weights ``s_i``: ``Σ_i s_i CE_i / Σ_i s_i``),
and every gradient is the gradient of that mean.  Penalties are added elsewhere (network.py).

Every function computes in the namespace of its array arguments (:mod:`._array_api`): NumPy, or
PyTorch, CuPy, … on their device.  A loss comes back as a Python float from NumPy, and as a 0-d
array from the other namespaces, so that reading it (a device synchronisation) is the caller's
choice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_api import asarray, is_numpy, namespace

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
]


def _float(Z: ArrayLike):
    """(Z as a float array of its namespace, that namespace)."""
    xp = namespace(Z)
    if is_numpy(xp):
        Z = np.asarray(Z)
        return (Z if Z.dtype.kind == "f" else Z.astype(np.float64)), xp
    return (Z if xp.isdtype(Z.dtype, "real floating") else xp.astype(Z, xp.float64)), xp


def _row_max(Z, xp):
    """Row maxima, with non-finite maxima replaced by 0 so that ``Z - m`` stays well defined."""
    m = xp.max(Z, axis=-1, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0.0)


def _loss(value, xp):
    """A loss as the caller reads it: a float from NumPy, a 0-d array on a device."""
    return float(value) if is_numpy(xp) else value


def logsumexp(Z: ArrayLike) -> NDArray[np.floating]:
    """log Σ_k exp(z_k) per row, computed as m + log Σ_k exp(z_k − m) with m = max_k z_k.

    Shifting by the row maximum makes every exponent ≤ 0: no overflow, and the largest term is
    exactly 1, so the sum never underflows to 0.  ``(n, K) -> (n,)``; a 1-D input gives a scalar.
    """
    Z, xp = _float(Z)
    m = _row_max(Z, xp)
    with np.errstate(under="ignore"):
        s = xp.sum(xp.exp(Z - m), axis=-1, keepdims=True)
    return (xp.log(s) + m)[..., 0]


def softmax(Z: ArrayLike) -> NDArray[np.floating]:
    """ŷ_k = exp(z_k) / Σ_j exp(z_j) per row, shifted by the row maximum.  ``(n, K) -> (n, K)``.

    Worked example of the notes: softmax([5, 2, -1, 3]) = [0.842, 0.042, 0.002, 0.114].
    """
    Z, xp = _float(Z)
    with np.errstate(under="ignore"):
        E = xp.exp(Z - _row_max(Z, xp))
    E /= xp.sum(E, axis=-1, keepdims=True)
    return E


def log_softmax(Z: ArrayLike) -> NDArray[np.floating]:
    """log ŷ_k = z_k − log Σ_j exp(z_j).  ``(n, K) -> (n, K)``; never log(0) for finite z.

    Computed as (z_k − m) − log Σ_j exp(z_j − m): subtracting the rounded m + log Σ from z_k
    would cancel catastrophically for large |z| (ln 3 came out as 1.09863 in float32 at 1e4).
    """
    Z, xp = _float(Z)
    S = Z - _row_max(Z, xp)
    with np.errstate(under="ignore"):
        return S - xp.log(xp.sum(xp.exp(S), axis=-1, keepdims=True))


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


def _row_weights(n: int, sample_weight: ArrayLike | None, Z):
    """Weights s_i / Σ s that turn a per-row sum into the (weighted) mean over rows, in the dtype,
    namespace and on the device of Z (where ``sample_weight`` is moved if it is not there)."""
    xp = namespace(Z)
    if sample_weight is None:
        return xp.full(n, 1.0 / n, dtype=Z.dtype, device=_device(Z, xp))
    if is_numpy(xp):
        s = np.asarray(sample_weight, dtype=Z.dtype)
    elif namespace(sample_weight) is xp:
        s = xp.astype(sample_weight, Z.dtype)
    else:
        s = asarray(sample_weight, Z, Z.dtype)
    if tuple(s.shape) != (n,):
        raise ValueError(f"sample_weight has shape {tuple(s.shape)}, expected ({n},)")
    total = xp.sum(s)
    if is_numpy(xp) and not total > 0:  # (a device's weights were checked on the host)
        raise ValueError("sample_weight must have a positive sum")
    return s / total


def _device(Z, xp):
    return None if is_numpy(xp) else Z.device


def _labels(y, Z, xp):
    """y as labels (n,) or targets (n, K) where Z is (moved there if it is not)."""
    if is_numpy(xp):
        return np.asarray(y)
    return y if namespace(y) is xp else asarray(y, Z)


def _is_labels(y) -> bool:
    return y.ndim == 1


def _picked(Z, y, xp):
    """z_{i, y_i} for each row: (n, K), (n,) -> (n,)."""
    if is_numpy(xp):
        return Z[np.arange(Z.shape[0]), y]
    return xp.take_along_axis(Z, xp.reshape(y, (-1, 1)), axis=1)[:, 0]


def _subtract_one_at_labels(dZ, y, xp) -> None:
    """dZ[i, y_i] −= 1 in place: Ŷ − Y without building the one-hot Y (NumPy), or by the
    comparison y_i = k where integer-array assignment is not in the standard."""
    if is_numpy(xp):
        dZ[np.arange(dZ.shape[0]), y] -= 1
    else:
        K = dZ.shape[1]
        dZ -= xp.astype(xp.reshape(y, (-1, 1)) == xp.arange(K, device=dZ.device), dZ.dtype)


def softmax_cross_entropy(
    Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[float, NDArray[np.floating]]:
    """Loss and gradient at the logits in one pass over Z.

    J = −Σ_i w_i Σ_k y_ik log ŷ_ik  and  ∂J/∂Z = w ∘ (Ŷ − Y),  with w_i = 1/n (or s_i / Σ s).
    ``y`` is ``(n,)`` integer labels or an ``(n, K)`` one-hot/probability matrix.  Integer
    labels are never expanded into a one-hot matrix: ``(Ŷ − Y)`` is Ŷ with 1 subtracted at
    ``[i, y_i]``.  Returns ``(J, dZ)`` with ``dZ`` of shape ``(n, K)``, the dtype of Z.
    """
    Z, xp = _float(Z)
    y = _labels(y, Z, xp)
    w = _row_weights(Z.shape[0], sample_weight, Z)
    m = _row_max(Z, xp)
    with np.errstate(under="ignore"):
        dZ = xp.exp(Z - m)
    s = xp.sum(dZ, axis=1, keepdims=True)
    # (n,): log Σ_k exp(z_ik − m_i); m is kept apart so that CE_i = log_s_i − (z_{i,y_i} − m_i)
    # does not cancel the large lse_i against z_{i,y_i} in float32
    log_s = xp.log(s[:, 0])
    dZ /= s  # Ŷ
    if _is_labels(y):
        loss = w @ (log_s - (_picked(Z, y, xp) - m[:, 0]))  # CE_i = lse_i − z_{i,y_i}
        _subtract_one_at_labels(dZ, y, xp)
    else:
        Y = xp.astype(y, Z.dtype, copy=False)
        loss = w @ (log_s * xp.sum(Y, axis=1) - xp.sum(Y * (Z - m), axis=1))
        dZ -= Y
    dZ *= w[:, None]
    return _loss(loss, xp), dZ


def cross_entropy(Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """J = −(1/n) Σ_i Σ_k y_ik log softmax(z_i)_k, from logits ``Z`` ``(n, K)``.

    ``y``: integer labels ``(n,)`` or one-hot / probability rows ``(n, K)``.  With
    ``sample_weight`` the mean is weighted: Σ_i s_i CE_i / Σ_i s_i (as
    ``sklearn.metrics.log_loss``).
    """
    Z, xp = _float(Z)
    y = _labels(y, Z, xp)
    w = _row_weights(Z.shape[0], sample_weight, Z)
    log_P = log_softmax(Z)
    if _is_labels(y):
        return _loss(-(w @ _picked(log_P, y, xp)), xp)
    Y = xp.astype(y, Z.dtype, copy=False)
    return _loss(-(w @ xp.sum(Y * log_P, axis=1)), xp)


def cross_entropy_grad(
    Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> NDArray[np.floating]:
    """∂J/∂Z = (Ŷ − Y)/n (weighted: s_i (ŷ_i − y_i) / Σ s), fused; ``(n, K) -> (n, K)``."""
    return softmax_cross_entropy(Z, y, sample_weight)[1]


def sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """σ(z) = 1 / (1 + e^{−z}), evaluated without overflow for any sign of z."""
    z, xp = _float(z)
    e = xp.exp(-xp.abs(z))  # ≤ 1: never overflows
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def log_sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """log σ(z) = −log(1 + e^{−z}) = −logaddexp(0, −z)."""
    z, xp = _float(z)
    return -xp.logaddexp(xp.zeros_like(z), -z)


def sigmoid_binary_cross_entropy(
    z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[float, NDArray[np.floating]]:
    """Binary cross-entropy from the logit and its gradient at the logit, in one pass.

    J = −Σ_i w_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))] = Σ_i w_i [log(1 + e^{z_i}) − y_i z_i]
    and ∂J/∂z = w ∘ (σ(z) − y), with w_i = 1/n (or s_i / Σ s); ``y`` in {0, 1} (or [0, 1]).
    ``z`` is ``(n,)`` or ``(n, 1)``; the gradient has the shape of ``z``.
    """
    z, xp = _float(z)
    y = xp.reshape(np.asarray(y, dtype=z.dtype) if is_numpy(xp) else xp.astype(y, z.dtype),
                   z.shape)
    w = xp.reshape(_row_weights(z.shape[0], sample_weight, z), (-1,) + (1,) * (z.ndim - 1))
    loss = xp.sum(w * (xp.logaddexp(xp.zeros_like(z), z) - y * z))
    return _loss(loss, xp), w * (sigmoid(z) - y)


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
    xp = namespace(Z)
    Z = np.asarray(Z) if is_numpy(xp) else Z
    if Z.ndim == 1 or Z.shape[1] == 1:
        return xp.astype(xp.reshape(Z, (-1,)) > 0, np.intp if is_numpy(xp) else xp.int64)
    return xp.argmax(Z, axis=1)
