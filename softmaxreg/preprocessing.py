"""Feature scaling, fitted on the training set and stored with the model.

Every method is the same per-feature affine map ``X' = (X - mean) / scale`` with ``mean`` and
``scale`` of shape (d,); the methods differ only in how they choose them. :class:`Scaling` is
the map itself; :class:`FeatureScaler` is its scikit-learn face, the first step of the
``Pipeline`` that :func:`softmaxreg.load` returns for a model file with a stored scaling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .exceptions import DataError

__all__ = ["FeatureScaler", "Moments", "Scaling"]

METHODS = ("auto", "none", "unit", "standard", "maxabs")
_PIXEL_MAX = 255.0
DENSE_ENTRIES = 2**26  # sparse data a centring scaling makes dense, up to 256 MiB in float32
_CHUNK_ROWS = 4096  # rows per pass when computing statistics, to bound temporary memory
_STATE_KEYS = ("mean", "method", "scale")

Matrix = NDArray[Any] | sp.spmatrix | sp.sparray


class Scaling:
    """Per-feature scaling ``X' = (X - mean) / scale``, shapes (n, d) -> (n, d).

    Methods: ``"unit"`` divides 8-bit pixel intensities by 255 (mean 0, scale 255), mapping
    [0, 255] to [0, 1]; ``"standard"`` uses each feature's mean and population standard
    deviation (ddof=0, as scikit-learn's StandardScaler), with scale 1 for constant features;
    for sparse data given as a sparse matrix it only scales (mean 0) so that X stays sparse;
    ``"maxabs"`` divides each feature by its largest |x| (scikit-learn's MaxAbsScaler: values in
    [-1, 1], zeros stay zeros); ``"none"`` is the identity; ``"auto"`` resolves at fit time to
    "unit" for pixel data, "maxabs" for sparse data — fewer than half the entries non-zero,
    however the rows are stored (:func:`sparse_data`; dividing a rare feature by its tiny
    standard deviation gives values of 30 or more, and L-BFGS stops unconverged) — and
    "standard" otherwise, so that the same rows get the same scaling from a CSV or a svmlight
    file. A scaling that centres makes rows given as a sparse matrix dense (up to
    :data:`DENSE_ENTRIES` values of sparse data).
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
        moments = Moments(X.shape[1])
        if self._resolve(pixels, sp.issparse(X)) in ("standard", "maxabs"):  # others: d only
            moments.update(X)
        return self.fit_moments(moments, pixels)

    def fit_moments(self, moments: Moments, pixels: bool = False) -> Scaling:
        """Choose ``mean`` and ``scale`` (d,) from statistics gathered chunk by chunk: after
        ``moments.update(X_c)`` for every chunk X_c of X, the same as ``fit(X, pixels)``."""
        resolved = self._resolve(pixels, moments.sparse)
        d = moments.n_features
        if resolved == "standard":
            mean, scale = moments.standard()
        elif resolved == "maxabs":
            mean, scale = np.zeros(d), moments.maxabs()
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
            if not mean.any():
                return _transform_sparse(X, scale, dtype)
            X = _densified(X)  # centred rows are dense
        with np.errstate(over="ignore"):  # always a C-ordered copy: the caller's X is never
            out = np.array(X, dtype=dtype, order="C")  # modified, and BLAS sees one layout
        if not _survives(out, X, mean, scale):  # e.g. float64 features of 1e200 or 1e-300
            with np.errstate(over="ignore"):
                out = ((X - mean) / scale).astype(dtype, order="C")
            _check_in_range(out, X, dtype)
            return out
        with np.errstate(over="ignore"):  # said by _check_in_range, naming the value
            if mean.any():
                out -= mean.astype(dtype)
            if (scale != 1).any():
                out /= scale.astype(dtype)
        _check_in_range(out, X, dtype)
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

    def _resolve(self, pixels: bool, sparse: bool = False) -> str:
        if self.method != "auto":
            return self.method
        return "unit" if pixels else "maxabs" if sparse else "standard"

    def _fitted(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.mean is None or self.scale is None:
            raise ValueError("this Scaling is not fitted yet: call fit(X, pixels) first")
        return self.mean, self.scale


class FeatureScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """A :class:`Scaling` as a scikit-learn transformer: ``transform(X)`` is
    ``Scaling.transform(X, dtype)``, shapes (n, d) -> (n, d), with scikit-learn's checks of the
    number of features and, when fitted on named columns (a DataFrame, a model file's schema),
    of their names (``feature_names_in_``).

    ``method`` and ``pixels`` are :meth:`Scaling.fit`'s; ``dtype`` is the float type of the
    output (float32, what the command line feeds its models).  A model file's scaling comes
    back fitted through :meth:`from_scaling`; ``get_state`` is the stored state, which
    :func:`softmaxreg.to_onnx` reads.
    """

    def __init__(self, method: str = "auto", pixels: bool = False, dtype: str = "float32"):
        self.method = method
        self.pixels = pixels
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        return tags

    def fit(self, X, y=None) -> FeatureScaler:
        """Fit the scaling on the training features X (n, d)."""
        X = validate_data(self, X, accept_sparse="csr", dtype="numeric", reset=True)
        self.scaling_ = Scaling(self.method).fit(X, pixels=self.pixels)
        return self

    def transform(self, X):
        """``(X - mean) / scale`` (n, d) in ``dtype``; a CSR matrix for sparse X."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype="numeric", reset=False)
        return self.scaling_.transform(X, self.dtype)

    def get_state(self) -> dict[str, NDArray[Any]]:
        """The fitted scaling's state (:meth:`Scaling.get_state`)."""
        check_is_fitted(self)
        return self.scaling_.get_state()

    @classmethod
    def from_scaling(cls, scaling: Scaling, feature_names=None,
                     dtype: str = "float32") -> FeatureScaler:
        """A fitted transformer applying ``scaling``, with ``feature_names_in_`` when the
        columns had names."""
        scaler = cls(scaling.method, dtype=dtype)
        scaler.scaling_ = scaling
        scaler.n_features_in_ = scaling.n_features
        if feature_names is not None:
            scaler.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        return scaler


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


_LARGEST_EXPONENT = np.finfo(np.float64).maxexp - 1  # 1023: 2.0**1023 is float64's largest power


class Moments:
    """Per-feature count n, ``mean``, ``m2`` = Σ (x − mean)², ``low`` and ``high`` of the rows
    seen so far, gathered chunk by chunk (sparse chunks count their implicit zeros).

    A chunk's mean and m2 are taken in two passes in units of ``unit``: per feature, the power of
    two nearest its largest magnitude. Dividing by a power of two is exact, and it keeps sums and
    squares of features of 1e200 or 1e-300 from overflowing or underflowing. Two sets merge in
    the larger unit (Chan, Golub & LeVeque): n = n_a + n_b,  δ = mean_b − mean_a,
    mean = mean_a + δ n_b / n,  M2 = M2_a + M2_b + δ² n_a n_b / n.
    """

    def __init__(self, n_features: int | None = None) -> None:
        self.n_features = n_features
        self.n = 0
        self.nonzeros = 0  # entries that are not 0, for :attr:`sparse`
        self.stored_sparse = False  # whether rows came as a sparse matrix, for :meth:`standard`
        self.mean = self.m2 = self.low = self.high = self.unit = np.zeros(n_features or 0)

    def update(self, X: Matrix) -> Moments:
        """Add the rows of the chunk X (m, d)."""
        X = _check_matrix(X)
        m, d = X.shape
        if self.n_features is not None and d != self.n_features:
            raise DataError(f"a chunk has {d} features, the first had {self.n_features}")
        self.n_features = d
        if m == 0:
            return self
        if sp.issparse(X):
            low, high = X.min(axis=0).toarray().ravel(), X.max(axis=0).toarray().ravel()
        else:
            low, high = X.min(axis=0), X.max(axis=0)
        low, high = low.astype(np.float64), high.astype(np.float64)
        _, exponent = np.frexp(np.maximum(np.abs(low), np.abs(high)))
        unit = np.ldexp(1.0, np.minimum(exponent, _LARGEST_EXPONENT))  # 2**1024 is inf
        mean, m2 = (_sparse_moments if sp.issparse(X) else _dense_moments)(X, unit)
        self.nonzeros += np.count_nonzero(X.data if sp.issparse(X) else X)
        self.stored_sparse |= sp.issparse(X)
        if self.n == 0:
            self.mean, self.m2, self.low, self.high, self.unit = mean, m2, low, high, unit
        else:
            self._merge(m, mean, m2, unit)
            np.minimum(self.low, low, out=self.low)
            np.maximum(self.high, high, out=self.high)
        self.n += m
        return self

    @property
    def sparse(self) -> bool:
        """Whether the rows seen are sparse data (:func:`sparse_data`), however stored."""
        return self.n > 0 and sparse_data(self.nonzeros, self.n * self.n_features)

    def _merge(self, m: int, mean: NDArray[np.float64], m2: NDArray[np.float64],
               unit: NDArray[np.float64]) -> None:
        """Chan et al.'s update (see the class), both sides first put in the larger unit."""
        common = np.maximum(self.unit, unit)
        ra, rb = self.unit / common, unit / common  # powers of two ≤ 1
        mean_a, n = self.mean * ra, self.n + m
        delta = mean * rb - mean_a
        self.mean = mean_a + delta * (m / n)
        self.m2 = self.m2 * ra * ra + m2 * rb * rb + delta**2 * (self.n * m / n)
        self.unit = common

    def standard(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(center, scale) (d,): mean and population standard deviation (ddof=0) per feature;
        scale 1 for constant features; center 0 for sparse data given as a sparse matrix, which
        is only scaled so that it stays sparse (dense arrays are centred, however many zeros
        they hold, as scikit-learn's StandardScaler does)."""
        if self.n == 0:
            raise DataError("no rows to compute the scaling statistics from")
        scale = np.sqrt(self.m2 / self.n) * self.unit
        # Constant features get scale 1. Test max == min exactly (rounding makes their variance
        # tiny, not 0), and also var == 0, which a tiny spread can underflow to.
        scale[(self.low == self.high) | (scale == 0)] = 1.0
        only_scaled = self.stored_sparse and self.sparse
        center = np.zeros_like(self.mean) if only_scaled else self.mean * self.unit
        return center, scale

    def maxabs(self) -> NDArray[np.float64]:
        """The largest |x| of each feature (d,), 1 for a feature that is always 0."""
        if self.n == 0:
            raise DataError("no rows to compute the scaling statistics from")
        scale = np.maximum(np.abs(self.low), np.abs(self.high))
        scale[scale == 0] = 1.0
        return scale


def sparse_data(nonzeros: int, entries: int) -> bool:
    """Whether data of ``entries`` values, ``nonzeros`` of them not 0, are sparse: fewer than
    half non-zero, where the sparse form of the float32 rows a model takes (a value and a
    column index per non-zero) is smaller than the dense one."""
    return 2 * nonzeros < entries


def _dense_moments(X: NDArray[Any], unit: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Two-pass mean and Σ (x − mean)² of X / unit, in row blocks of bounded memory."""
    n = X.shape[0]
    blocks = [X[i: i + _CHUNK_ROWS] for i in range(0, n, _CHUNK_ROWS)]
    mean = sum((b / unit).sum(axis=0) for b in blocks) / n
    m2 = sum(((b / unit - mean) ** 2).sum(axis=0) for b in blocks)
    return mean, m2


def _sparse_moments(X: sp.csr_matrix, unit: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-pass mean and Σ (x − mean)² of X / unit over columns, counting the implicit zeros."""
    n, d = X.shape
    values = X.data / unit[X.indices]
    mean = np.bincount(X.indices, weights=values, minlength=d) / n
    deviations = values - mean[X.indices]
    stored = np.bincount(X.indices, weights=deviations**2, minlength=d)
    nnz = np.bincount(X.indices, minlength=d)
    return mean, stored + (n - nnz) * mean**2


def _check_in_range(out: NDArray[Any], X: NDArray[Any], dtype: np.dtype) -> None:
    """DataError naming the first value of X whose scaled value ``out`` overflowed ``dtype``."""
    bad = np.argwhere(~np.isfinite(out))
    if bad.size:
        i, j = bad[0]
        raise DataError(f"X[{i}, {j}] = {X[i, j]:.4g} is beyond what its feature's scaling can "
                        f"hold in {dtype} (±{np.finfo(dtype).max:.3g}): it lies far outside the "
                        f"values the scaling was fitted on"
                        + (f" ({bad.shape[0]} values of X are)" if bad.shape[0] > 1 else ""))


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


def _densified(X: sp.csr_matrix) -> NDArray[Any]:
    """Rows X (n, d) stored sparse, for a scaling that centres: as an array if they are dense
    data (:func:`sparse_data`) or at most :data:`DENSE_ENTRIES` values; else DataError."""
    entries = X.shape[0] * X.shape[1]
    if entries > DENSE_ENTRIES and sparse_data(np.count_nonzero(X.data), entries):
        raise DataError(f"this scaling centres features (it was fitted on dense data); "
                        f"centring would make sparse X dense ({X.shape[0]} × {X.shape[1]} "
                        "values): pass X as a dense array, or fewer rows at a time")
    return X.toarray()


def _transform_sparse(X: sp.csr_matrix, scale: NDArray[np.float64],
                      dtype: np.dtype[Any]) -> sp.csr_matrix:
    """Scale the stored values only (a scaling that does not centre)."""
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
