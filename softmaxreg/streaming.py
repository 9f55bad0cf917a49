"""Out of core: train from a file chunk by chunk, with memory bounded by the chunk, not the file.

A :class:`Source` reads a CSV, svmlight, ``.npy`` (memory-mapped), ``.npz`` or IDX file as a
sequence of row chunks ``(X_c, y_c)``, through the readers that load the whole file in memory
(:mod:`softmaxreg.io`): every file type :func:`softmaxreg.io.load_dataset` reads has a source
(:func:`open_source`), found through the same table of suffixes.  Training is the in-memory
training, pass by pass:

1. :func:`read_labels` — the label of every row, typed once for the whole file as the in-memory
   reader types them (``007`` and ``12A`` in one file are both strings, wherever the chunks
   break), kept as one small class index per row.  From them the held-out test rows are chosen
   by row index, with the in-memory split's seed and stratification;
2. :func:`scan` — the scaling statistics (:class:`~softmaxreg.preprocessing.Moments`, merged
   chunk by chunk) of the training rows, from which the :class:`~softmaxreg.preprocessing.Scaling`
   that is stored with the model is built: the one ``Scaling.fit`` gives on those rows;
3. :func:`fit_stream` — ``epochs`` times: ``estimator.partial_fit(scaling(X_c), y_c)`` on the
   training rows of each chunk, i.e. one epoch of minibatch steps of the estimator's solver over
   the chunk, the optimiser's state carried from chunk to chunk and the penalty that of the
   whole training set;
4. :func:`stream_metrics` — accuracy and log loss of the training and the held-out rows, in
   one pass.

Peak memory is a few chunks (the chunk as read, scaled, and the network's minibatch buffers)
plus one class index per row (1 byte for fewer than 257 classes), whatever the number of
features.  A file of one chunk is read once, and its epochs run in one call of ``fit``.  Rows
are shuffled within each chunk (by ``partial_fit``), not across chunks: a file sorted by label
should be shuffled once on disk first.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .estimators import SoftmaxRegression
from .exceptions import DataError
from .io import read_csv, read_npy, read_npz, read_svmlight, reader_for
from .io.dataset import (
    DataSchema,
    check_default_labels,
    check_held_out_labels,
    check_known_labels,
    column_order,
    generated_names,
)
from .io.idx import open_idx, read_idx_rows, require_idx_file
from .io.npz import (
    check_finite,
    npy_labels,
    npy_layout,
    npz_feature_names,
    npz_labels,
    npz_layout,
    npz_members,
    npz_rows,
    open_npy,
    require_npz_members,
)
from .io.tabular import check_svmlight_width, integer_labels, open_csv, parse_labels, parse_svmlight
from .preprocessing import Moments, Scaling

__all__ = ["Source", "CsvSource", "SvmlightSource", "NpySource", "NpzSource", "IdxSource",
           "open_source",
           "Labels", "read_labels", "StreamStats", "scan", "fit_stream", "stream_metrics"]

CHUNK_ROWS = 10_000
Chunk = tuple[Any, NDArray[Any]]  # (X_c (m, d) dense or CSR, y_c (m,))


class Source:
    """Row chunks of a labelled file; ``pixels`` says whether X holds 8-bit intensities.

    A subclass reads the file in :meth:`raw_chunks` (labels as the file writes them) and says in
    :meth:`type_labels` how the labels of the whole file are typed.
    """

    path: Path
    pixels: bool = False

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        """(X_c, labels as written in the file) of each chunk of ``chunk_rows`` rows or fewer."""
        raise NotImplementedError

    def label_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[NDArray[Any]]:
        """The labels of each chunk, as written in the file (a source that can skip the
        features, IDX, does)."""
        for _, y in self.raw_chunks(chunk_rows):
            yield y

    def type_labels(self, values: NDArray[Any]) -> NDArray[Any]:
        """The distinct label ``values`` of the whole file typed as the in-memory reader types
        its labels (default: as they are)."""
        return values

    def schema(self, n_features: int) -> DataSchema:
        """The columns a model trained on this file needs again (stored in the model file):
        by default ``n_features`` generated names."""
        return DataSchema(tuple(generated_names(n_features)), named=False)

    def label_choice(self) -> tuple[str | int | None, str | None]:
        """(the label column, by name or index, or None when the labels are not a column of the
        file; why it was taken when no one named it, else None)."""
        return None, None

    def extent(self) -> tuple[int | None, str]:
        """(size, unit) of one pass, for a progress bar: the rows of the file (None: unknown
        before the pass), or for a text file its bytes ("B")."""
        return None, "row"

    def position(self, rows: int) -> int:
        """How far the pass under way has read, in :meth:`extent`'s unit, after ``rows`` rows."""
        return rows

    def test_part(self) -> Source | None:
        """The source's own test rows (an IDX folder's ``t10k`` files, an archive's ``X_test``
        and ``y_test``), as the in-memory reader gives them; None when it has none."""
        return None

    def chunks(self, chunk_rows: int = CHUNK_ROWS, labels: Labels | None = None
               ) -> Iterator[Chunk]:
        """(X_c, y_c) of each chunk, the labels typed for the whole file: ``labels``
        (:func:`read_labels`), read first in a pass of their own when not given."""
        labels = read_labels(self, chunk_rows) if labels is None else labels
        a = 0
        for X, _ in self.raw_chunks(chunk_rows):
            yield X, labels.rows(a, a + X.shape[0])
            a += X.shape[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CsvSource(Source):
    """A CSV/TSV file as :func:`softmaxreg.io.read_csv` reads it (its layout settled by
    :func:`softmaxreg.io.tabular.open_csv`: header, label column by name or index, default
    ``label`` or the last column; ``csv_options`` as ``read_csv``'s), in chunks."""

    def __init__(self, path, label_column: int | str | None = None, **csv_options: Any):
        self.path, self.label_column = Path(path), label_column
        self.csv_options = csv_options

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        with open_csv(self.path, self.label_column, **self.csv_options) as (table, rows):
            self._tell = table.tell
            while block := list(itertools.islice(rows, chunk_rows)):
                yield table.parse(block, typed=False)

    def extent(self) -> tuple[int | None, str]:
        return _file_size(self.path), "B"

    def position(self, rows: int) -> int:
        return self._tell()

    def type_labels(self, values: NDArray[Any]) -> NDArray[Any]:
        return parse_labels(values)

    def label_choice(self) -> tuple[str | int | None, str | None]:
        with open_csv(self.path, self.label_column, **self.csv_options) as (table, _):
            return table.label_name, table.label_reason

    def schema(self, n_features: int) -> DataSchema:
        """The header's names and the label column, as :func:`softmaxreg.io.read_csv` gives."""
        with open_csv(self.path, self.label_column, **self.csv_options) as (table, _):
            if table.feature_names is None:
                return DataSchema(tuple(generated_names(n_features)), False, table.label_name)
            return DataSchema(tuple(table.feature_names), True, table.label_name)


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
            low, high, n, nnz = math.inf, -1, 0, 0
            for X, _ in self._parse_chunks(CHUNK_ROWS, None, True):
                n, nnz = n + X.shape[0], nnz + X.nnz
                if X.nnz:
                    low, high = min(low, int(X.indices.min())), max(high, int(X.indices.max()))
            zero_based = low == 0 if self.zero_based is None else self.zero_based
            if self.n_features is None:
                d = max(high + (1 if zero_based else 0), 1)
                check_svmlight_width(self.path, d, n, nnz)
                self.n_features = d
            self.zero_based = zero_based
        return self.n_features, self.zero_based

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        for X, y in self._parse_chunks(chunk_rows, *self.layout()):
            yield X, y.astype(np.float64)  # exact: integer_labels made int64 only up to 2**53

    def type_labels(self, values: NDArray[Any]) -> NDArray[Any]:
        return integer_labels(values)

    def schema(self, n_features: int) -> DataSchema:
        """Generated names, and the index of the first feature (0 or 1), which a file of a few
        rows to predict cannot reveal."""
        d, zero_based = self.layout()
        return DataSchema(tuple(generated_names(d)), False, None, 0 if zero_based else 1)

    def _parse_chunks(self, chunk_rows: int, d: int | None, zero_based: bool) -> Iterator[Chunk]:
        try:
            file = open(self.path, "rb")
        except OSError as exc:
            raise DataError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        with file:
            self._tell = file.tell
            while lines := list(itertools.islice(file, chunk_rows)):
                yield parse_svmlight(io.BytesIO(b"".join(lines)), self.path, d, zero_based)

    def extent(self) -> tuple[int | None, str]:
        return _file_size(self.path), "B"

    def position(self, rows: int) -> int:
        return self._tell()


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class NpySource(Source):
    """A ``.npy`` file as :func:`softmaxreg.io.read_npy` reads it, memory-mapped: (n, d + 1),
    the labels (whole numbers) in ``label_column`` (an index, default the last); or, from
    Python, features alone with ``labels`` in a second ``.npy`` file of shape (n,), whose uint8
    features are taken as pixels.  ``schema``: the model's columns, for a test file."""

    def __init__(self, path, labels=None, label_column: int | str | None = None,
                 schema: DataSchema | None = None):
        self.path = Path(path)
        self.labels = None if labels is None else Path(labels)
        data = open_npy(self.path)
        guessed = labels is None and label_column is None and schema is None
        self.label_reason = "the last column" if guessed else None
        if self.labels is None:
            self.features, self.label_column = npy_layout(data, self.path, label_column, schema)
        elif data.ndim != 2:
            raise DataError(f"{self.path} holds an array of shape {data.shape}; expected (n, d)")
        else:
            self.features, self.label_column = np.arange(data.shape[1]), None
        self.pixels = data.dtype == np.uint8 and self.labels is not None

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        data = open_npy(self.path)
        labels = None if self.labels is None else self._labels_file(data.shape[0])
        for a in range(0, data.shape[0], chunk_rows):
            block = np.asarray(data[a: a + chunk_rows])  # only these rows are read from disk
            X = block if labels is not None else block[:, self.features]
            check_finite(X, "a feature", self.path)
            yield X, (block[:, self.label_column] if labels is None
                      else np.asarray(labels[a: a + chunk_rows]))

    def label_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[NDArray[Any]]:
        data = open_npy(self.path)
        labels = data[:, self.label_column] if self.labels is None \
            else self._labels_file(data.shape[0])
        for a in range(0, labels.shape[0], chunk_rows):
            yield np.asarray(labels[a: a + chunk_rows])

    def _labels_file(self, n: int) -> NDArray[Any]:
        labels = open_npy(self.labels)
        if labels.shape != (n,):
            raise DataError(f"{self.labels} has shape {labels.shape}; expected ({n},), one label "
                            f"per row of {self.path}")
        return labels

    def type_labels(self, values: NDArray[Any]) -> NDArray[Any]:
        return values if self.labels is not None else \
            npy_labels(values, self.path, self.label_column)

    def label_choice(self) -> tuple[str | int | None, str | None]:
        return self.label_column, self.label_reason

    def extent(self) -> tuple[int | None, str]:
        return open_npy(self.path).shape[0], "row"

    def schema(self, n_features: int) -> DataSchema:
        """Generated names, and the label column's index, as :func:`read_npy` gives."""
        return DataSchema(tuple(generated_names(n_features)), False, self.label_column)


class NpzSource(Source):
    """An ``.npz`` archive as :func:`softmaxreg.io.read_npz` reads it: ``X`` (n, d) or images
    (n, h, w) and ``y`` (n,), ``feature_names`` if any, and ``X_test``, ``y_test`` as its
    :meth:`test_part`; uint8 features are pixels.

    Rows are read from the archive a chunk at a time (:func:`softmaxreg.io.npz.npz_rows`): a
    member stored by ``np.savez`` is read as it lies; one deflated by ``np.savez_compressed``
    is inflated again on every pass (time, not memory); one in Fortran order is read whole."""

    def __init__(self, path, part: str = "", schema: DataSchema | None = None):
        self.path, self.part = Path(path), part
        self.keys = (f"X{part}", f"y{part}")
        held = npz_members(self.path, ("X", "y", "X_test", "y_test"))
        require_npz_members(self.path, held, self.keys)
        self.image_shape = npz_layout(self.path, held, self.keys)  # for X: X_test's too
        self.has_test = "X_test" in held
        self.pixels = held[self.keys[0]][1] == np.uint8
        self.order = None  # the columns of a test file, in the training file's order
        if schema is not None:
            d = math.prod(held[self.keys[0]][0][1:])
            order = column_order(schema, npz_feature_names(self.path, d), d, str(self.path))
            self.order = None if order == list(range(d)) else order

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        for X, y in zip(npz_rows(self.path, self.keys[0], chunk_rows),
                        npz_rows(self.path, self.keys[1], chunk_rows), strict=True):
            X = X.reshape(len(X), -1)
            check_finite(X, self.keys[0], self.path)
            yield (X if self.order is None else X[:, self.order]), y

    def label_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[NDArray[Any]]:
        yield from npz_rows(self.path, self.keys[1], chunk_rows)

    def type_labels(self, values: NDArray[Any]) -> NDArray[Any]:
        return npz_labels(values, self.keys[1], self.path)

    def schema(self, n_features: int) -> DataSchema:
        """The archive's ``feature_names``, else generated names."""
        names = npz_feature_names(self.path, n_features)
        return DataSchema(tuple(names or generated_names(n_features)), names is not None)

    def extent(self) -> tuple[int | None, str]:
        return npz_members(self.path, self.keys[1:])[self.keys[1]][0][0], "row"

    def test_part(self) -> NpzSource | None:
        return NpzSource(self.path, "_test") if self.has_test and not self.part else None


class IdxSource(Source):
    """MNIST's IDX layout (a folder with ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte``, plain or gzipped), read ``chunk_rows`` images at a time; the
    labels as the file stores them (uint8), as in memory."""

    pixels = True

    def __init__(self, path, prefix: str = "train"):
        self.path, self.prefix = Path(path), prefix
        if not self.path.is_dir():
            raise DataError(f"{self.path} is not a folder")
        self.images = require_idx_file(self.path, f"{prefix}-images-idx3-ubyte")
        self.labels = require_idx_file(self.path, f"{prefix}-labels-idx1-ubyte")

    def raw_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
        with open_idx(self.images) as (hx, images), open_idx(self.labels) as (hy, labels):
            if hx.dims[0] != hy.dims[0]:
                raise DataError(f"{self.images} has {hx.dims[0]} images but {self.labels} has "
                                f"{hy.dims[0]} labels")
            for a in range(0, hx.dims[0], chunk_rows):
                m = min(chunk_rows, hx.dims[0] - a)
                X = read_idx_rows(images, hx, m, str(self.images)).reshape(m, -1)
                yield X, read_idx_rows(labels, hy, m, str(self.labels))

    def label_chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[NDArray[Any]]:
        with open_idx(self.labels) as (hy, labels):
            for a in range(0, hy.dims[0], chunk_rows):
                yield read_idx_rows(labels, hy, min(chunk_rows, hy.dims[0] - a), str(self.labels))

    def extent(self) -> tuple[int | None, str]:
        with open_idx(self.labels) as (header, _):
            return header.dims[0], "row"

    def test_part(self) -> IdxSource | None:
        """The folder's ``t10k`` files, when it has them and this is its ``train`` part."""
        if self.prefix != "train":
            return None
        try:
            return IdxSource(self.path, "t10k")
        except DataError:  # a folder without t10k files has no test part
            return None


# The source of each whole-file reader: the file types are those of softmaxreg.io's one table.
SOURCES: dict[Callable[..., Any], type[Source]] = {
    read_csv: CsvSource, read_svmlight: SvmlightSource, read_npy: NpySource,
    read_npz: NpzSource}


def open_source(path, label_column: int | str | None = None, *,
                schema: DataSchema | None = None, **csv_options: Any) -> Source:
    """The :class:`Source` for a path, by its type (:func:`softmaxreg.io.reader_for`): a folder
    of IDX files, .csv/.tsv (with ``csv_options`` as :func:`softmaxreg.io.read_csv`'s),
    .svm/.svmlight/.libsvm/.txt, .npy (:func:`softmaxreg.io.read_npy`: the labels in the last
    column, or the one ``label_column`` gives by index) or .npz (arrays ``X`` and ``y``).
    ``schema``: the columns of the training file, for a test file (a CSV's columns matched by
    name, svmlight's width and index base, a .npy file's label column)."""
    path = Path(path)
    if path.is_dir():
        return IdxSource(path)
    if not path.is_file():
        raise DataError(f"cannot stream {str(path)!r}: no such file or folder")
    kind = SOURCES[reader_for(path, "stream")]
    if kind is CsvSource:
        return CsvSource(path, label_column, schema=schema, **csv_options)
    if label_column is not None and kind is not NpySource:
        raise DataError(f"label_column applies to CSV and .npy files only, not to {path}")
    if kind is SvmlightSource:
        if schema is not None and schema.index_base is not None:
            return SvmlightSource(path, schema.n_features, schema.index_base == 0)
        return SvmlightSource(path)
    if kind is NpzSource:
        return NpzSource(path, schema=schema)
    return NpySource(path, label_column=label_column, schema=schema)


# -- pass 1: the labels ---------------------------------------------------------------------------
@dataclass
class Labels:
    """The label of every row of a file, typed once for the whole file: ``classes`` (K,),
    sorted, and ``index`` (n,), the position in ``classes`` of each row's label."""

    classes: NDArray[Any]
    index: NDArray[np.integer]

    @property
    def n(self) -> int:
        return int(self.index.shape[0])

    @property
    def y(self) -> NDArray[Any]:
        """All n labels (n,)."""
        return self.classes[self.index]

    def rows(self, a: int, b: int) -> NDArray[Any]:
        """The labels of rows a..b-1."""
        return self.classes[self.index[a:b]]


class _LabelReader:
    """Labels gathered chunk by chunk as codes of the distinct values seen so far; typed at the
    end, once, by the source (distinct values that type alike, ``7`` and ``007`` as integers,
    become one class)."""

    def __init__(self, source: Source):
        self.source = source
        self.codes: list[NDArray[np.unsignedinteger]] = []  # per chunk, 1 byte a row for < 256
        self.values: list[NDArray[Any]] = []  # the distinct values, in code order
        self.known: dict[Any, int] = {}

    def add(self, y: NDArray[Any]) -> None:
        distinct, inverse = np.unique(np.asarray(y), return_inverse=True)
        values = distinct.tolist()
        new = np.array([v not in self.known for v in values], dtype=bool)
        for v in itertools.compress(values, new):
            self.known[v] = len(self.known)
        if new.any():
            self.values.append(distinct[new])
        lookup = np.array([self.known[v] for v in values], dtype=_index_dtype(len(self.known)))
        self.codes.append(lookup[inverse.ravel()])

    def labels(self) -> Labels:
        if not self.values:
            raise DataError(f"{self.source.path} has no data rows")
        typed = self.source.type_labels(np.concatenate(self.values))
        classes, remap = np.unique(typed, return_inverse=True)
        remap = remap.ravel().astype(_index_dtype(len(classes)))
        index = np.empty(sum(len(c) for c in self.codes), dtype=remap.dtype)
        a = 0
        while self.codes:  # chunk by chunk, each freed once copied: n bytes at a time, not 3n
            codes = self.codes.pop(0)
            index[a: a + len(codes)] = remap[codes]
            a += len(codes)
        column, reason = self.source.label_choice()
        if reason is not None:
            check_default_labels(classes, len(index), column, reason)
        return Labels(classes, index)


def _index_dtype(n_values: int) -> np.dtype:
    """The smallest unsigned integer type that numbers ``n_values`` values."""
    return np.min_scalar_type(max(n_values - 1, 0))


def read_labels(source: Source, chunk_rows: int = CHUNK_ROWS, *,
                progress: bool = False) -> Labels:
    """One pass over ``source``'s labels: :class:`Labels`, typed once for the whole file.
    ``progress``: a bar named "labels" (:func:`_passing`)."""
    reader = _LabelReader(source)
    for y in _passing(source, source.label_chunks(chunk_rows), "labels", progress):
        reader.add(y)
    return reader.labels()


def _passing(source: Source, chunks: Iterator[Any], name: str, progress: bool
             ) -> Iterator[Any]:
    """``chunks``, the chunks of one pass over ``source``, with a tqdm bar named ``name`` over
    the file (its bytes for a text file, else its rows) on stderr when ``progress`` is set and
    stderr is a terminal, the training loop's bar; gone when the pass ends."""
    from tqdm.auto import tqdm

    total, unit = source.extent() if progress else (None, "row")
    rows = 0
    with tqdm(total=total, desc=name, unit=unit, unit_scale=True, leave=False,
              disable=None if progress else True) as bar:
        for chunk in chunks:
            rows += (chunk[1] if isinstance(chunk, tuple) else chunk).shape[0]
            yield chunk
            bar.update(source.position(rows) - bar.n)


# -- pass 2: the scaling statistics of the training rows ------------------------------------------
@dataclass
class StreamStats:
    """What the first passes over a source learn: every row's label, the held-out rows, and the
    :class:`~softmaxreg.preprocessing.Moments` of the training rows (the statistics
    :class:`Scaling` is fitted on)."""

    labels: Labels
    moments: Moments
    n_chunks: int  # chunks holding training rows
    held_out: NDArray[np.bool_] | None = None  # (n,) rows kept for testing; None: none

    @property
    def n(self) -> int:
        """The number of training rows."""
        return self.labels.n - (0 if self.held_out is None else int(self.held_out.sum()))

    @property
    def classes(self) -> NDArray[Any]:
        """The classes of the training rows (K,), as an in-memory fit on them finds them."""
        if self.held_out is None:
            return self.labels.classes
        return self.labels.classes[np.unique(self.labels.index[~self.held_out])]

    def training(self, a: int, b: int) -> NDArray[np.bool_] | None:
        """Which of rows a..b-1 are training rows (None: all)."""
        return None if self.held_out is None else ~self.held_out[a:b]

    def scaling(self, method: str = "auto", pixels: bool = False) -> Scaling:
        """The :class:`Scaling` that ``Scaling(method).fit(X, pixels)`` gives on the training
        rows."""
        return Scaling(method).fit_moments(self.moments, pixels)


def scan(source: Source, chunk_rows: int = CHUNK_ROWS, *, labels: Labels | None = None,
         held_out: NDArray[np.bool_] | None = None, progress: bool = False) -> StreamStats:
    """One pass over ``source``: :class:`StreamStats` — the labels (read in the same pass when
    ``labels`` is None) and the moments of every row not ``held_out`` (n,).  ``progress``: a
    bar named "statistics" (:func:`_passing`).  DataError if held-out rows have labels that no
    training row has (:func:`~softmaxreg.io.dataset.check_held_out_labels`): the metrics pass
    after training would find it."""
    if held_out is not None and labels is None:
        raise ValueError("held_out rows are chosen from the labels: read them first "
                         "(read_labels) and pass them")
    reader = _LabelReader(source) if labels is None else None
    moments, n_chunks, a = Moments(), 0, 0
    name = "statistics" if reader is None else "labels and statistics"
    for X, y in _passing(source, source.raw_chunks(chunk_rows), name, progress):
        m = X.shape[0]
        if reader is not None:
            reader.add(y)
        keep = None if held_out is None else ~held_out[a: a + m]
        if keep is None or keep.all():
            moments.update(X)
        elif keep.any():
            moments.update(X[keep])
        n_chunks += int(m > 0 and (keep is None or bool(keep.any())))
        a += m
    labels = reader.labels() if reader is not None else labels
    if labels.n != a:
        raise DataError(f"{source.path} changed while it was read: {labels.n} rows, then {a}")
    if held_out is not None:  # after the file's own problems, before any training
        _check_held_out(source, labels, held_out)
    return StreamStats(labels, moments, n_chunks, held_out)


def _check_held_out(source: Source, labels: Labels, held_out: NDArray[np.bool_]) -> None:
    """The held-out rows' labels checked before any training (as :func:`stream_metrics` would
    find after it), by their class indices: one byte a row."""
    check_held_out_labels(labels.index[~held_out], labels.index[held_out], str(source.path),
                          *source.label_choice(), classes=labels.classes)


# -- pass 3: training, and scores -----------------------------------------------------------------
def fit_stream(estimator, source: Source, *, epochs: int = 1, chunk_rows: int = CHUNK_ROWS,
               scaling: str | Scaling = "auto", stats: StreamStats | None = None,
               progress: bool = False):
    """Train ``estimator`` (a minibatch solver) on ``source`` chunk by chunk: (estimator,
    scaling).

    ``scaling`` is a method of :class:`Scaling` ("auto": "unit" for pixels, else "standard"),
    fitted on the statistics of a first pass (:func:`scan`, skipped when ``stats`` are given),
    or a fitted Scaling.  Then ``epochs`` passes call ``estimator.partial_fit`` on the scaled
    training rows of each chunk; each call is one epoch of the estimator's learning-rate
    schedule, so give ``max_iter`` = ``epochs × stats.n_chunks`` for a schedule that spans the
    whole run.  The penalty is the whole training set's (:func:`_whole_set_penalty`), so chunks
    of any size minimise the objective of the in-memory fit.
    """
    from tqdm.auto import tqdm

    if stats is None:
        stats = scan(source, chunk_rows)
    if not isinstance(scaling, Scaling):
        scaling = stats.scaling(scaling, pixels=source.pixels)
    with warnings.catch_warnings():  # about a chunk, not the file: its labels were checked
        warnings.filterwarnings("ignore", "The number of unique classes is greater than 50%",
                                UserWarning)
        if stats.n_chunks == 1:  # a file of one chunk is read once, its epochs run in one call
            ((X, y),) = _training_chunks(source, chunk_rows, stats, scaling)
            _epochs_in_one_call(estimator, X, y, epochs)
            return estimator, scaling
        bar = tqdm(total=epochs * stats.n_chunks, desc="chunks", unit="chunk",
                   disable=not progress)
        with bar, _whole_set_penalty(estimator, stats.n) as for_rows:
            for _ in range(epochs):
                for X, y in _training_chunks(source, chunk_rows, stats, scaling):
                    for_rows(X.shape[0])
                    estimator.partial_fit(X, y, classes=stats.classes)
                    bar.update()
    return estimator, scaling


def _epochs_in_one_call(estimator, X, y, epochs: int) -> None:
    """What ``epochs`` calls of ``partial_fit`` on (X, y) do — the same epochs, schedule (over
    ``epochs``), penalty and shuffles, no stop before the last epoch — in one call of ``fit``,
    without the per-call cost (validation, BLAS thread limits: about 10 ms a call)."""
    from sklearn.exceptions import ConvergenceWarning

    kept = estimator.get_params()
    try:
        estimator.set_params(max_iter=epochs, n_iter_no_change=epochs, warm_start=False)
        with warnings.catch_warnings():  # running every epoch is the plan, not a failure
            warnings.filterwarnings("ignore", "Stochastic optimizer: maximum iterations",
                                    ConvergenceWarning)
            estimator.fit(X, y)
    finally:
        estimator.set_params(**{k: kept[k] for k in ("max_iter", "n_iter_no_change",
                                                     "warm_start")})


def _training_chunks(source: Source, chunk_rows: int, stats: StreamStats,
                     scaling: Scaling) -> Iterator[Chunk]:
    """(scaled X_c, y_c) of the training rows of each chunk that has some."""
    a = 0
    for X, _ in source.raw_chunks(chunk_rows):
        m = X.shape[0]
        y, keep = stats.labels.rows(a, a + m), stats.training(a, a + m)
        a += m
        if keep is not None and not keep.all():
            if not keep.any():
                continue
            X, y = X[keep], y[keep]
        yield scaling.transform(X), y


@contextlib.contextmanager
def _whole_set_penalty(estimator, n: int) -> Iterator[Callable[[int], None]]:
    """A function to call before ``partial_fit`` on m rows, which makes its penalty that of the
    n training rows.

    SoftmaxRegression's ``partial_fit`` penalises a chunk as a data set of its own: C Σ_chunk CE
    + ½‖W‖², i.e. ½‖W‖² / (C m) in the mean form its steps take, where the in-memory fit has
    ½‖W‖² / (C n).  With m = 10 000 of MNIST's 60 000 rows that is a penalty 6 times too strong.
    So the chunk is given C n / m, and C is restored afterwards.  (A network's penalty, α per
    minibatch, does not depend on the chunk.)
    """
    if not isinstance(estimator, SoftmaxRegression):
        yield lambda m: None
        return
    C = estimator.C
    try:
        yield lambda m: estimator.set_params(C=C * n / m)
    finally:
        estimator.set_params(C=C)


def stream_metrics(estimator, source: Source, scaling: Scaling | None,
                   chunk_rows: int = CHUNK_ROWS, *, labels: Labels | None = None,
                   held_out: NDArray[np.bool_] | None = None, progress: bool = False
                   ) -> tuple[dict, dict | None]:
    """Accuracy and log loss (mean cross-entropy) of ``estimator`` over ``source``, by chunks,
    in one pass: (scores of the rows not ``held_out``, scores of the held-out rows or None when
    none are), each ``{"accuracy", "log_loss", "n"}``.  ``labels``: the source's
    (:func:`read_labels`), read first when not given.  A label the model never saw is a
    DataError, as in memory.  ``progress``: a bar named "metrics" (:func:`_passing`)."""
    labels = read_labels(source, chunk_rows, progress=progress) if labels is None else labels
    column, reason = source.label_choice()  # every class has rows: all checked at once
    check_known_labels(estimator.classes_, labels.classes, column, f"{source.path}: ", reason)
    kept, held = _Score(), _Score()
    a = 0
    for X, _ in _passing(source, source.raw_chunks(chunk_rows), "metrics", progress):
        m = X.shape[0]
        y, test = labels.rows(a, a + m), None if held_out is None else held_out[a: a + m]
        a += m
        P = estimator.predict_proba(X if scaling is None else scaling.transform(X))
        if test is None:
            kept.add(estimator.classes_, P, y)
        else:
            kept.add(estimator.classes_, P[~test], y[~test])
            held.add(estimator.classes_, P[test], y[test])
    return kept.result(), (held.result() if held_out is not None else None)


class _Score:
    """Running accuracy and mean cross-entropy."""

    def __init__(self) -> None:
        self.n, self.correct, self.total = 0, 0, 0.0

    def add(self, classes: NDArray[Any], P: NDArray[Any], y: NDArray[Any]) -> None:
        from sklearn.metrics import log_loss

        if not len(y):
            return
        self.correct += int(np.sum(classes[P.argmax(axis=1)] == y))
        self.total += log_loss(y, P, labels=classes, normalize=False)
        self.n += len(y)

    def result(self) -> dict:
        if not self.n:
            raise DataError("no rows to score")
        return {"accuracy": self.correct / self.n, "log_loss": self.total / self.n, "n": self.n}
