"""The data set record with its schema (the columns a model learns from and needs again), the
check of a label column chosen by default, the fingerprint that tells whether two runs saw the
same data, and the memory left to hold one."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ..exceptions import DataError

PathLike = str | os.PathLike[str]


def generated_names(n_features: int) -> list[str]:
    """The names of columns that had none: ``x0, x1, …, x{d-1}``."""
    return [f"x{j}" for j in range(n_features)]


@dataclass(frozen=True)
class DataSchema:
    """The columns a model was trained on, which new rows must present again.

    ``feature_names`` (d,) in the order of the model's inputs; ``named``: whether they came from
    the data (a CSV header, DataFrame columns, a bundled set's names) rather than being
    generated as ``x0..x{d-1}``; ``label``: the label column, by name when the file had a
    header, else by its 0-based index among the file's columns, or None when the data did not
    come as one table (NPZ, svmlight, IDX, bundled sets); ``index_base``: for svmlight data,
    the index of the first feature (0 or 1), which a file of a few rows cannot reveal.
    """

    feature_names: tuple[str, ...]
    named: bool = True
    label: str | int | None = None
    index_base: int | None = None

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def order(self, names: Sequence[str], where: str) -> list[int]:
        """The position in ``names`` (the columns of a file) of each of this schema's features,
        so that ``columns[:, order]`` puts them in the model's order; one DataError naming every
        missing and every extra column if the names are not the model's."""
        index, known = {name: j for j, name in enumerate(names)}, set(self.feature_names)
        missing = [n for n in self.feature_names if n not in index]
        extra = [n for n in names if n not in known]
        if missing or extra:
            parts = ([f"missing {_listed(missing)}"] if missing else []) + (
                [f"extra {_listed(extra)}"] if extra else [])
            raise DataError(f"{where}: the columns do not match the model's features: "
                            f"{'; '.join(parts)} (the model was trained on "
                            f"{_listed(self.feature_names)})")
        return [index[n] for n in self.feature_names]


def warn_by_position(where: str, names: Sequence[str], schema: DataSchema) -> None:
    """UserWarning that the columns ``names`` of ``where`` are taken by position, because the
    model (``schema``) was trained on data without column names (unless the names are the
    generated ones, in order)."""
    if schema.named or tuple(names) == schema.feature_names:
        return
    warnings.warn(f"{where} names its columns, but the model does not know its own columns' "
                  "names (it was trained on data without them): the columns are taken by "
                  "position, in the order of the training data", UserWarning, stacklevel=3)


LABEL_LIKE_FEATURE = 50  # distinct numbers in a label column that make it look like a feature


def check_default_labels(classes: NDArray[Any], n_rows: int, column: str | int,
                         reason: str) -> None:
    """One UserWarning when the labels of a column chosen by default (``column``, taken as
    ``reason`` says) look like a feature: numbers ``classes`` (K,), of which more than
    :data:`LABEL_LIKE_FEATURE` are distinct, or more than half of the ``n_rows`` rows when
    there are more than 20 (as scikit-learn judges a target; 2 classes in 2 rows are labels).

    Every reader that chooses a label column runs it once, on the labels of the whole file (a
    streamed file: in its first pass, before any training)."""
    try:
        numeric = bool(np.isfinite(np.asarray(classes, dtype=np.float64)).all())
    except (TypeError, ValueError):
        numeric = False
    k = len(classes)
    if numeric and (k > LABEL_LIKE_FEATURE or n_rows > 20 and k > n_rows / 2):
        warnings.warn(f"the label column {column!r} (chosen by default) holds {k} distinct "
                      f"numbers in {n_rows} rows: it looks like a feature, not labels; it was "
                      f"taken as {reason}: if the labels are in another column, name it with "
                      "--label-column (label_column= in Python)", UserWarning, stacklevel=3)


def label_column_hint(column: str | int | None, reason: str | None = None) -> str:
    """What an error that may follow from the choice of the label column adds: the column taken
    (and why, when the user did not choose it) and how to choose another; "" when the labels
    were not a column of the file."""
    if column is None:
        return ""
    which = f"the column {column!r}" if isinstance(column, str) else \
        f"the column at index {column}"
    why = f", chosen by default as {reason}" if reason else ""
    return (f" (the labels were taken from {which}{why}: if they are in another column, name "
            "it with --label-column, label_column= in Python)")


def check_held_out_labels(train: NDArray[Any], held_out: NDArray[Any], where: str,
                          column: str | int | None = None, reason: str | None = None, *,
                          classes: NDArray[Any] | None = None) -> None:
    """DataError, before any training, if rows held out for testing have labels that no
    training row has: the model could not score them. ``train`` and ``held_out``: the labels of
    both parts, or their positions in ``classes`` when given; ``column``, ``reason``: where
    the labels were taken from (:func:`label_column_hint`)."""
    seen, held = np.unique(train), np.unique(held_out)
    unseen = np.setdiff1d(held, seen)
    if unseen.size:
        shown = (unseen if classes is None else classes[unseen])[:10].tolist()
        k, n = np.union1d(seen, held).size, len(train) + len(held_out)
        raise DataError(f"{where}: labels {shown} of the held-out test rows are in no training "
                        f"row, so the model could not score them; {k} distinct labels in {n} "
                        f"rows{label_column_hint(column, reason)}; else give every class at "
                        "least two rows")


def check_fits_in_memory(source, nbytes: int, doing: str, streaming: str) -> None:
    """DataError, before reading, unless the ``nbytes`` that ``doing`` holds fit in the memory
    available (a few MB of deflated zeros can declare gigabytes), naming ``streaming``, the
    way to read ``source`` a chunk at a time instead. Every whole-file reader checks this."""
    memory = available_memory()
    if memory is not None and nbytes > memory:
        raise DataError(f"{source}: {doing} needs {nbytes / 2**20:,.0f} MiB, more than the "
                        f"{memory / 2**20:,.0f} MiB of memory available (stream it instead: "
                        f"train --stream, {streaming})")


def check_known_labels(classes: NDArray[Any], y: NDArray[Any],
                       column: str | int | None = None, where: str = "",
                       reason: str | None = None) -> None:
    """DataError if labels ``y`` (n,) are not all among ``classes`` (K,), the model's or its
    training rows': such rows cannot be scored. ``where`` names the rows; ``column``,
    ``reason``: where the labels were taken from (:func:`label_column_hint`)."""
    classes = np.asarray(classes)
    unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()), key=str)
    if unknown:
        known = classes[:20].tolist() + (["..."] if len(classes) > 20 else [])
        raise DataError(f"{where}labels {unknown[:10]} never seen in training; the model knows "
                        f"{len(classes)}: {known}{label_column_hint(column, reason)}")


def _listed(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"column{'s' if len(names) != 1 else ''} {shown}{more}"


@dataclass
class Dataset:
    """A data set, with the source's own test split when it has one, and its schema.

    ``X``: (n, d) array or CSR matrix, one example per row; ``y``: (n,) labels (integers or
    strings), or None for rows without labels (what ``predict`` may be given). ``X_test``,
    ``y_test``: the source's test split, or both None. ``pixels``: the features are 8-bit pixel
    intensities (0..255), so "auto" scaling divides them by 255. ``image_shape``: (height,
    width) when each row is an image flattened row by row. ``feature_names``: the columns'
    names, generated (``x0..x{d-1}``) when the source has none. ``label_column``: where the
    labels were, by name or index, and ``index_base`` svmlight's first feature index (see
    :class:`DataSchema`). ``dropped_rows``: the 0-based data rows of the file that were left
    out (a CSV's rows with empty cells, ``empty="drop"``); :attr:`row_numbers` those kept.
    ``label_reason``: why ``label_column`` was taken when no one named it ("the last column"),
    for messages (:func:`label_column_hint`).
    """

    X: NDArray[Any] | sp.csr_matrix
    y: NDArray[Any] | None
    X_test: NDArray[Any] | sp.csr_matrix | None = None
    y_test: NDArray[Any] | None = None
    name: str = ""
    pixels: bool = False
    image_shape: tuple[int, int] | None = None
    feature_names: list[str] | None = None
    label_column: str | int | None = None
    index_base: int | None = None
    dropped_rows: tuple[int, ...] = ()
    label_reason: str | None = None
    names_generated: bool = field(init=False, default=False)

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
        if self.feature_names is None:
            self.feature_names, self.names_generated = generated_names(self.n_features), True
        if len(self.feature_names) != self.n_features:
            raise DataError(f"data set {self.name!r}: {len(self.feature_names)} feature names "
                            f"for {self.n_features} features")

    @property
    def n_features(self) -> int:
        """Number of features d (columns of ``X``)."""
        return int(self.X.shape[1])

    @property
    def row_numbers(self) -> NDArray[np.int64]:
        """The 0-based data row of the file that each row of ``X`` (n,) came from."""
        n = self.X.shape[0] + len(self.dropped_rows)
        return np.delete(np.arange(n), list(self.dropped_rows))

    @property
    def schema(self) -> DataSchema:
        """The columns a model trained on these rows needs again."""
        return DataSchema(tuple(self.feature_names), not self.names_generated, self.label_column,
                          self.index_base)

    def conform(self, schema: DataSchema) -> Dataset:
        """These rows with their columns in ``schema``'s order: matched by name when both sides
        have names, else by position (then only the count must agree); DataError if they do
        not match."""
        names = None if self.names_generated else self.feature_names
        order = column_order(schema, names, self.n_features, f"data set {self.name!r}")
        if order != list(range(self.n_features)):
            pick = lambda X: None if X is None else X[:, order]  # noqa: E731
            X, X_test = pick(self.X), pick(self.X_test)
        else:
            X, X_test = self.X, self.X_test
        conformed = Dataset(X, self.y, X_test, self.y_test, self.name, self.pixels,
                            self.image_shape, list(schema.feature_names), self.label_column,
                            self.index_base, self.dropped_rows, self.label_reason)
        conformed.names_generated = not schema.named
        return conformed


def column_order(schema: DataSchema, names, n_features: int, where: str) -> list[int]:
    """The positions, in rows of ``n_features`` columns called ``names`` (None: unnamed), of
    ``schema``'s columns: matched by name when both sides have names, else by position (then
    only the count must agree, with a warning when only the rows are named); DataError if
    they do not match."""
    if schema.named and names is not None:
        return schema.order(names, where)
    if n_features != schema.n_features:
        raise DataError(f"{where} has {n_features} features, but the model was trained "
                        f"with {schema.n_features}")
    if names is not None:
        warn_by_position(where, names, schema)
    return list(range(n_features))


def _check_split(X: Any, y: Any, x_name: str, y_name: str, name: str) -> None:
    """Check that X is (n, d) and y is (n,) or None."""
    if len(getattr(X, "shape", ())) != 2:
        raise DataError(f"data set {name!r}: {x_name} must be 2-D (n, d), got {type(X).__name__}"
                        f" of shape {getattr(X, 'shape', None)}")
    if y is None:
        return
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


def available_memory() -> int | None:
    """Bytes of memory this process can still take, as far as the system says (Linux: the
    kernel's MemAvailable, within a cgroup's limit); None where it does not say."""
    found = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as meminfo:
            found += [int(line.split()[1]) * 1024 for line in meminfo
                      if line.startswith("MemAvailable:")]
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            found.append(max(0, int(limit) - int(used)))
    if not found:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(found) if found else None
