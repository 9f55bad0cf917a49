"""The data set record, and the fingerprint that tells whether two runs saw the same data."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ..exceptions import DataError

PathLike = str | os.PathLike[str]


@dataclass
class Dataset:
    """A labelled data set, with the source's own test split when it has one.

    ``X``: (n, d) array or CSR matrix, one example per row; ``y``: (n,) labels (integers or
    strings). ``X_test``, ``y_test``: the source's test split, or both None. ``pixels``: the
    features are 8-bit pixel intensities (0..255), so "auto" scaling divides them by 255.
    ``image_shape``: (height, width) when each row is an image flattened row by row.
    """

    X: NDArray[Any] | sp.csr_matrix
    y: NDArray[Any]
    X_test: NDArray[Any] | sp.csr_matrix | None = None
    y_test: NDArray[Any] | None = None
    name: str = ""
    pixels: bool = False
    image_shape: tuple[int, int] | None = None
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        _check_split(self.X, self.y, "X", "y", self.name)
        if (self.X_test is None) != (self.y_test is None):
            raise DataError(f"data set {self.name!r}: X_test and y_test must be given together")
        if self.X_test is not None:
            _check_split(self.X_test, self.y_test, "X_test", "y_test", self.name)
            if self.X_test.shape[1] != self.n_features:
                raise DataError(f"data set {self.name!r}: X_test has {self.X_test.shape[1]} "
                                f"features, but X has {self.n_features}")
        if self.image_shape is not None and math.prod(self.image_shape) != self.n_features:
            raise DataError(f"data set {self.name!r}: image shape {self.image_shape} does not "
                            f"match {self.n_features} features")
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise DataError(f"data set {self.name!r}: {len(self.feature_names)} feature names "
                            f"for {self.n_features} features")

    @property
    def n_features(self) -> int:
        """Number of features d (columns of ``X``)."""
        return int(self.X.shape[1])


def _check_split(X: Any, y: Any, x_name: str, y_name: str, name: str) -> None:
    """Check that X is (n, d) and y is (n,)."""
    if len(getattr(X, "shape", ())) != 2:
        raise DataError(f"data set {name!r}: {x_name} must be 2-D (n, d), got {type(X).__name__}"
                        f" of shape {getattr(X, 'shape', None)}")
    if not isinstance(y, np.ndarray) or y.ndim != 1:
        raise DataError(f"data set {name!r}: {y_name} must be a 1-D array of labels, got "
                        f"shape {getattr(y, 'shape', None)}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"data set {name!r}: {x_name} has {X.shape[0]} rows but {y_name} has "
                        f"{y.shape[0]} labels")


def data_fingerprint(X: NDArray[Any] | sp.spmatrix, y: NDArray[Any]) -> str:
    """SHA-256 (hex) of training data as the loop sees it: shape, dtype and values of X (n, d),
    dense or sparse, and of the labels y (n,) (object labels by their text, not their address)."""
    h, y = hashlib.sha256(), np.asarray(y)
    if y.dtype == object:
        y = y.astype(str)
    if sp.issparse(X):
        X = X.tocsr()
        parts = (X.data, X.indices, X.indptr)
    else:
        parts = (X,)
    h.update(repr((X.shape, X.dtype.str)).encode())
    for part in (*parts, y):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()
