"""Feature scaling, fitted on the training set and stored with the model.

Every method is the same per-feature affine map ``X' = (X - mean) / scale`` with ``mean`` and
``scale`` of shape (d,); the methods differ only in how they choose them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike, NDArray

from .exceptions import DataError

__all__ = ["Scaling"]

METHODS = ("auto", "none", "unit", "standard")
_PIXEL_MAX = 255.0
_CHUNK_ROWS = 4096  # rows per pass when computing statistics, to bound temporary memory
_STATE_KEYS = ("mean", "method", "scale")

Matrix = NDArray[Any] | sp.spmatrix | sp.sparray


class Scaling:
    """Per-feature scaling ``X' = (X - mean) / scale``, shapes (n, d) -> (n, d).

    Methods: ``"unit"`` divides 8-bit pixel intensities by 255 (mean 0, scale 255), mapping
    [0, 255] to [0, 1]; ``"standard"`` uses each feature's mean and population standard
    deviation (ddof=0, as scikit-learn's StandardScaler), with scale 1 for constant features;
    for sparse X it only scales (mean 0) so that X stays sparse; ``"none"`` is the identity;
    ``"auto"`` resolves at fit time to "unit" for pixel data and "standard" otherwise.
    """

    def __init__(self, method: str = "auto") -> None:
        if method not in METHODS:
            raise ValueError(f"unknown scaling method {method!r}: expected one of "
                             f"{', '.join(METHODS)}")
        self.method = method
        self.resolved: str | None = None
        self.mean: NDArray[np.float64] | None = None
        self.scale: NDArray[np.float64] | None = None

    def __repr__(self) -> str:
        return f"Scaling(method={self.method!r}, resolved={self.resolved!r})"

    @property
    def n_features(self) -> int:
        """d, the number of features the scaling was fitted on."""
        return len(self._fitted()[0])

    def fit(self, X: Matrix, pixels: bool = False) -> Scaling:
        """Choose ``mean`` and ``scale`` (d,) from the training features X (n, d)."""
        X = _check_matrix(X)
        resolved = ("unit" if pixels else "standard") if self.method == "auto" else self.method
        d = X.shape[1]
        if resolved == "standard":
            mean, scale = _standard_statistics(X)
        elif resolved == "unit":
            mean, scale = np.zeros(d), np.full(d, _PIXEL_MAX)
        else:
            mean, scale = np.zeros(d), np.ones(d)
        self.resolved, self.mean, self.scale = resolved, mean, scale
        return self

    def transform(self, X: Matrix, dtype: DTypeLike = np.float32) -> Matrix:
        """A new float array ``(X - mean) / scale`` (n, d); sparse X gives a CSR matrix."""
        mean, scale = self._fitted()
        X = _check_matrix(X)
        if X.shape[1] != len(mean):
            raise DataError(f"X has {X.shape[1]} features, but the scaling was fitted with "
                            f"{len(mean)}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a floating-point type, got {dtype}")
        if sp.issparse(X):
            return _transform_sparse(X, mean, scale, dtype)
        with np.errstate(over="ignore"):
            out = np.array(X, dtype=dtype)  # always a copy: the caller's X is never modified
        if not _survives(out, X, mean, scale):  # e.g. float64 features of 1e200 or 1e-300
            return ((X - mean) / scale).astype(dtype)
        if mean.any():
            out -= mean.astype(dtype)
        if (scale != 1).any():
            out /= scale.astype(dtype)
        return out

    def fit_transform(self, X: Matrix, pixels: bool = False,
                      dtype: DTypeLike = np.float32) -> Matrix:
        """``fit(X, pixels)`` then ``transform(X, dtype)``."""
        return self.fit(X, pixels).transform(X, dtype)

    def get_state(self) -> dict[str, NDArray[Any]]:
        """The fitted scaling as plain arrays (storable in a .npz without pickle)."""
        mean, scale = self._fitted()
        return {"method": np.array(self.resolved), "mean": mean.copy(), "scale": scale.copy()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Scaling:
        """Rebuild a fitted scaling from :meth:`get_state`'s dict; DataError if malformed."""
        if sorted(state) != list(_STATE_KEYS):
            raise DataError(f"scaling state has keys {sorted(state)}; expected "
                            f"{list(_STATE_KEYS)}")
        method = _state_method(state["method"])
        mean = _state_vector(state["mean"], "mean")
        scale = _state_vector(state["scale"], "scale")
        if mean.shape != scale.shape:
            raise DataError(f"scaling state: mean has shape {mean.shape} but scale has "
                            f"{scale.shape}")
        if not (scale > 0).all():
            raise DataError("scaling state: every scale must be positive")
        scaling = cls(method)
        scaling.resolved, scaling.mean, scaling.scale = method, mean, scale
        return scaling

    def _fitted(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.mean is None or self.scale is None:
            raise ValueError("this Scaling is not fitted yet: call fit(X, pixels) first")
        return self.mean, self.scale


def _check_matrix(X: Matrix) -> Matrix:
    """X as a 2-D numeric ndarray or a CSR matrix, with finite values."""
    if sp.issparse(X):
        X = X.tocsr()
        values = X.data
    else:
        X = np.asarray(X)
        values = X
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (n, d), got shape {X.shape}")
    if values.dtype.kind not in "biuf":
        raise DataError(f"X has dtype {values.dtype}; expected numbers")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DataError("X contains NaN or infinity")
    return X


def _standard_statistics(X: Matrix) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mean, std) per feature; std is 1 for constant features; mean is 0 for sparse X."""
    if sp.issparse(X):
        low, high = X.min(axis=0).toarray().ravel(), X.max(axis=0).toarray().ravel()
        unit = _unit(low, high)
        mean, var = _sparse_mean_var(X, unit)
        center = np.zeros_like(mean)
    else:
        low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
        unit = _unit(low, high)
        mean, var = _dense_mean_var(X, unit)
        center = mean * unit
    scale = np.sqrt(var) * unit
    # Constant features get scale 1. Test max == min exactly (rounding makes their variance
    # tiny, not 0), and also var == 0, which a tiny spread can underflow to.
    scale[(low == high) | (scale == 0)] = 1.0
    return center, scale


def _unit(low: NDArray[np.float64], high: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per feature, the power of two nearest its largest magnitude (1 for an all-zero column).

    Statistics are computed in these units: dividing by a power of two is exact, and it keeps
    sums and squares of features near the float64 limit (1e200, 1e300) from overflowing.
    """
    _, exponent = np.frexp(np.maximum(np.abs(low), np.abs(high)))
    return np.ldexp(1.0, exponent)


def _dense_mean_var(X: NDArray[Any], unit: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Two-pass mean and variance of X / unit, in row blocks of bounded memory."""
    n = X.shape[0]
    blocks = [X[i: i + _CHUNK_ROWS] for i in range(0, n, _CHUNK_ROWS)]
    mean = sum((b / unit).sum(axis=0) for b in blocks) / n
    var = sum(((b / unit - mean) ** 2).sum(axis=0) for b in blocks) / n
    return mean, var


def _sparse_mean_var(X: sp.csr_matrix, unit: NDArray[np.float64]
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-pass mean and variance of X / unit over columns, counting the implicit zeros:
    n·var = Σ_stored (x - μ)² + (n - nnz) μ²."""
    n, d = X.shape
    values = X.data / unit[X.indices]
    mean = np.bincount(X.indices, weights=values, minlength=d) / n
    deviations = values - mean[X.indices]
    stored = np.bincount(X.indices, weights=deviations**2, minlength=d)
    nnz = np.bincount(X.indices, minlength=d)
    return mean, (stored + (n - nnz) * mean**2) / n


def _survives(out: NDArray[Any], X: NDArray[Any], mean: NDArray[np.float64],
              scale: NDArray[np.float64]) -> bool:
    """Whether X, mean and scale keep their meaning in ``out``'s (narrower) dtype: no feature
    overflowed in the cast, and no scale became 0 or infinite."""
    if out.dtype.itemsize >= X.dtype.itemsize:
        return True
    with np.errstate(over="ignore", under="ignore"):
        narrow_scale, narrow_mean = scale.astype(out.dtype), mean.astype(out.dtype)
    return bool(np.all(np.isfinite(narrow_mean)) and np.all(narrow_scale > 0)
                and np.all(np.isfinite(narrow_scale)) and np.isfinite(out).all())


def _transform_sparse(X: sp.csr_matrix, mean: NDArray[np.float64], scale: NDArray[np.float64],
                      dtype: np.dtype[Any]) -> sp.csr_matrix:
    """Scale the stored values only; centring would make the matrix dense."""
    if mean.any():
        raise DataError("this scaling centres features (it was fitted on dense X); centring "
                        "would make sparse X dense: pass X as a dense array")
    with np.errstate(over="ignore"):  # the stored values are replaced just below
        out = X.astype(dtype, copy=True)
    out.data[...] = X.data / scale[X.indices]  # divided in float64: 1e200 / 1e200 fits float32
    return out


def _state_method(value: Any) -> str:
    method = np.asarray(value)
    if method.shape != () or method.dtype.kind not in "US":
        raise DataError(f"scaling state: method must be a string, got {method.dtype} of shape "
                        f"{method.shape}")
    text = str(method.astype(str))
    if text not in METHODS[1:]:
        raise DataError(f"scaling state: unknown method {text!r}; expected one of "
                        f"{', '.join(METHODS[1:])}")
    return text


def _state_vector(value: Any, key: str) -> NDArray[np.float64]:
    vector = np.asarray(value)
    if vector.ndim != 1 or vector.dtype.kind not in "iuf":
        raise DataError(f"scaling state: {key} must be a 1-D numeric array, got {vector.dtype} "
                        f"of shape {vector.shape}")
    if not np.isfinite(vector).all():
        raise DataError(f"scaling state: {key} contains NaN or infinity")
    return vector.astype(np.float64)
