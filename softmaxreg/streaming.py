"""Out of core: train from a file chunk by chunk, with memory bounded by the chunk, not the file.

A :class:`Source` reads a CSV, svmlight, ``.npy`` (memory-mapped) or IDX file as a sequence of
row chunks ``(X_c, y_c)``.  Training takes two kinds of pass over it:

1. :func:`scan` — once: the number of rows, the classes, and the scaling statistics
   (:class:`~softmaxreg.preprocessing.Moments`, merged chunk by chunk), from which the
   :class:`~softmaxreg.preprocessing.Scaling` that is stored with the model is built;
2. :func:`fit_stream` — ``epochs`` times: ``estimator.partial_fit(scaling(X_c), y_c)`` on each
   chunk, i.e. one epoch of minibatch steps of the estimator's solver over the chunk, the
   optimiser's state carried from chunk to chunk.

Nothing is kept per row: peak memory is a few chunks (the chunk as read, scaled, and the
network's minibatch buffers), whatever the number of rows.  Rows are shuffled within each
chunk (by ``partial_fit``), not across chunks: a file sorted by label should be shuffled once
on disk first.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .exceptions import DataError
from .io.idx import open_idx, read_idx_rows, require_idx_file
from .io.tabular import integer_labels, open_csv, parse_svmlight
from .preprocessing import Moments, Scaling

__all__ = ["Source", "CsvSource", "SvmlightSource", "NpySource", "IdxSource", "open_source",
           "StreamStats", "scan", "fit_stream", "stream_metrics"]

CHUNK_ROWS = 10_000
Chunk = tuple[Any, NDArray[Any]]  # (X_c (m, d) dense or CSR, y_c (m,))


class Source:
    """Row chunks of a labelled file; ``pixels`` says whether X holds 8-bit intensities."""

    path: Path
    pixels: bool = False

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CsvSource(Source):
    """A CSV/TSV file as :func:`softmaxreg.io.read_csv` reads it (header detected,
    ``label_column`` by name or index, default ``label`` or the last column), in chunks."""

    def __init__(self, path, label_column: int | str | None = None):
        self.path, self.label_column = Path(path), label_column

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        with open_csv(self.path, self.label_column) as (table, rows):
            while block := list(itertools.islice(rows, chunk_rows)):
                yield table.parse(block)


class SvmlightSource(Source):
    """A svmlight/libsvm file, in chunks of lines parsed by scikit-learn into CSR matrices.

    The number of features and whether indices start at 0 or 1 are properties of the whole
    file: the first pass over it (:meth:`layout`) finds them, so that every chunk agrees.
    """

    def __init__(self, path, n_features: int | None = None, zero_based: bool | None = None):
        self.path = Path(path)
        self.n_features, self.zero_based = n_features, zero_based

    def layout(self) -> tuple[int, bool]:
        """(d, zero_based) of the file: from the largest and the smallest index in it."""
        if self.n_features is None or self.zero_based is None:
            low, high = math.inf, -1
            for X, _ in self._parse_chunks(CHUNK_ROWS, None, True):
                if X.nnz:
                    low, high = min(low, int(X.indices.min())), max(high, int(X.indices.max()))
            zero_based = low == 0 if self.zero_based is None else self.zero_based
            self.zero_based = zero_based
            self.n_features = self.n_features or max(high + (1 if zero_based else 0), 1)
        return self.n_features, self.zero_based

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        yield from self._parse_chunks(chunk_rows, *self.layout())

    def _parse_chunks(self, chunk_rows: int, d: int | None, zero_based: bool) -> Iterator[Chunk]:
        try:
            file = open(self.path, "rb")
        except OSError as exc:
            raise DataError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        with file:
            while lines := list(itertools.islice(file, chunk_rows)):
                yield parse_svmlight(io.BytesIO(b"".join(lines)), self.path, d, zero_based)


class NpySource(Source):
    """A ``.npy`` file opened with ``np.load(mmap_mode='r')``: either (n, d + 1) with the
    labels in ``label_column`` (default the last), or features alone with ``labels`` in a
    second ``.npy`` file of shape (n,).  uint8 features are taken as pixels."""

    def __init__(self, path, labels=None, label_column: int | None = None):
        self.path = Path(path)
        self.labels = None if labels is None else Path(labels)
        self.label_column = label_column
        data = self._open(self.path)
        if data.ndim != 2:
            raise DataError(f"{self.path} holds an array of shape {data.shape}; expected (n, d)")
        if self.labels is None and data.shape[1] < 2:
            raise DataError(f"{self.path} has one column: give the labels as a second .npy file")
        self.pixels = data.dtype == np.uint8 and self.labels is not None

    @staticmethod
    def _open(path: Path) -> NDArray[Any]:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable .npy file ({exc})") from exc

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        data = self._open(self.path)
        if self.labels is None:
            j = (data.shape[1] - 1 if self.label_column is None else self.label_column)
            j %= data.shape[1]
            features = np.delete(np.arange(data.shape[1]), j)
        else:
            labels = self._open(self.labels)
            if labels.shape != (data.shape[0],):
                raise DataError(f"{self.labels} has shape {labels.shape}; expected "
                                f"({data.shape[0]},), one label per row of {self.path}")
        for a in range(0, data.shape[0], chunk_rows):
            block = np.asarray(data[a: a + chunk_rows])  # only these rows are read from disk
            if self.labels is not None:
                yield block, np.asarray(labels[a: a + chunk_rows])
                continue
            yield block[:, features], integer_labels(block[:, j])


class IdxSource(Source):
    """MNIST's IDX layout (a folder with ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte``, plain or gzipped), read ``chunk_rows`` images at a time."""

    pixels = True

    def __init__(self, path, prefix: str = "train"):
        self.path, self.prefix = Path(path), prefix
        if not self.path.is_dir():
            raise DataError(f"{self.path} is not a folder")
        self.images = require_idx_file(self.path, f"{prefix}-images-idx3-ubyte")
        self.labels = require_idx_file(self.path, f"{prefix}-labels-idx1-ubyte")

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        with open_idx(self.images) as (hx, images), open_idx(self.labels) as (hy, labels):
            if hx.dims[0] != hy.dims[0]:
                raise DataError(f"{self.images} has {hx.dims[0]} images but {self.labels} has "
                                f"{hy.dims[0]} labels")
            for a in range(0, hx.dims[0], chunk_rows):
                m = min(chunk_rows, hx.dims[0] - a)
                X = read_idx_rows(images, hx, m, str(self.images)).reshape(m, -1)
                yield X, read_idx_rows(labels, hy, m, str(self.labels)).astype(np.int64)


def open_source(path, label_column: int | str | None = None) -> Source:
    """The :class:`Source` for a path, by its type: a folder of IDX files, .csv/.tsv,
    .svm/.svmlight/.libsvm/.txt, or .npy (labels in ``label_column``, default the last)."""
    path = Path(path)
    if path.is_dir():
        return IdxSource(path)
    if not path.is_file():
        raise DataError(f"cannot stream {str(path)!r}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return CsvSource(path, label_column)
    if label_column is not None and suffix != ".npy":
        raise DataError(f"label_column applies to CSV and .npy files only, not to {path}")
    if suffix in (".svm", ".svmlight", ".libsvm", ".txt"):
        return SvmlightSource(path)
    if suffix == ".npy":
        return NpySource(path, label_column=None if label_column is None else int(label_column))
    raise DataError(f"cannot stream {str(path)!r}: expected a .csv, .tsv, .svmlight, .npy file "
                    "or a folder of IDX files")


# -- pass 1: rows, classes, scaling ---------------------------------------------------------------
@dataclass
class StreamStats:
    """What one pass over a source learns: rows n, chunks, classes, and the features'
    :class:`~softmaxreg.preprocessing.Moments` (the statistics :class:`Scaling` is fitted on)."""

    n: int = 0
    n_chunks: int = 0
    classes: NDArray[Any] = field(default_factory=lambda: np.array([]))
    moments: Moments = field(default_factory=Moments)

    def update(self, X, y) -> None:
        m = X.shape[0]
        if m == 0:
            return
        self.moments.update(X)
        self.n += m
        self.n_chunks += 1
        self.classes = np.union1d(self.classes, np.unique(y)) if self.n > m else np.unique(y)

    def scaling(self, method: str = "auto", pixels: bool = False) -> Scaling:
        """The :class:`Scaling` that ``Scaling(method).fit(X, pixels)`` would give on all rows."""
        return Scaling(method).fit_moments(self.moments, pixels)


def scan(source: Source, chunk_rows: int = CHUNK_ROWS) -> StreamStats:
    """One pass over ``source``: :class:`StreamStats` (rows, chunks, classes, moments)."""
    stats = StreamStats()
    for X, y in source.chunks(chunk_rows):
        stats.update(X, y)
    if stats.n == 0:
        raise DataError(f"{source.path} has no data rows")
    return stats


# -- pass 2: training, and scores -----------------------------------------------------------------
def fit_stream(estimator, source: Source, *, epochs: int = 1, chunk_rows: int = CHUNK_ROWS,
               scaling: str | Scaling = "auto", stats: StreamStats | None = None):
    """Train ``estimator`` (a minibatch solver) on ``source`` chunk by chunk: (estimator,
    scaling).

    ``scaling`` is a method of :class:`Scaling` ("auto": "unit" for pixels, else "standard"),
    fitted in a first pass (:func:`scan`, skipped when ``stats`` are given), or a fitted
    Scaling.  Then ``epochs`` passes call ``estimator.partial_fit`` on each scaled chunk; each
    call is one epoch of the estimator's learning-rate schedule, so give ``max_iter`` =
    ``epochs × stats.n_chunks`` for a schedule that spans the whole run.
    """
    if stats is None:
        stats = scan(source, chunk_rows)
    if not isinstance(scaling, Scaling):
        scaling = stats.scaling(scaling, pixels=source.pixels)
    for _ in range(epochs):
        for X, y in source.chunks(chunk_rows):
            estimator.partial_fit(scaling.transform(X), y, classes=stats.classes)
    return estimator, scaling


def stream_metrics(estimator, source: Source, scaling: Scaling | None,
                   chunk_rows: int = CHUNK_ROWS) -> dict:
    """Accuracy and log loss (mean cross-entropy) of ``estimator`` over ``source``, by chunks."""
    from sklearn.metrics import log_loss

    n = correct = 0
    total = 0.0
    for X, y in source.chunks(chunk_rows):
        P = estimator.predict_proba(X if scaling is None else scaling.transform(X))
        pred = estimator.classes_[P.argmax(axis=1)]
        correct += int(np.sum(pred == y))
        total += log_loss(y, P, labels=estimator.classes_, normalize=False)
        n += len(y)
    return {"accuracy": correct / n, "log_loss": total / n, "n": n}
