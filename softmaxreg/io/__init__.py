"""Data and files: data sets (MNIST, bundled sets, CSV, NPZ, NPY, svmlight, IDX) by name or path,
and the safe ``.npz`` reading and atomic writing that model files and checkpoints share.

Every loader returns a :class:`Dataset` whose rows are examples (``X`` is ``n × d``). Every
problem with a file or its contents raises :class:`~softmaxreg.exceptions.DataError` with a
message that names the file and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..exceptions import DataError
from .dataset import DataSchema, Dataset, PathLike, data_fingerprint, generated_names
from .idx import find_idx_file, read_idx, read_idx_folder
from .mnist import DEFAULT_MNIST_MIRRORS, load_mnist
from .npz import (
    atomic_write_bytes,
    json_safe,
    read_model_npz,
    read_npy,
    read_npz,
    read_npz_arrays,
)
from .tabular import EMPTY_CHOICES, HEADER_CHOICES, read_csv, read_svmlight

__all__ = ["BUNDLED", "DATA_SUFFIXES", "DEFAULT_MNIST_MIRRORS", "EMPTY_CHOICES", "HEADER_CHOICES",
           "DataSchema", "Dataset", "atomic_write_bytes", "data_fingerprint",
           "find_idx_file", "generated_names", "json_safe", "load_bundled",
           "load_dataset", "load_mnist", "named_dataset", "read_csv", "read_idx",
           "read_idx_folder", "read_model_npz", "read_npy", "read_npz",
           "read_npz_arrays", "read_svmlight", "reader_for"]

BUNDLED = ("digits", "iris", "wine", "breast_cancer")
# The one table of data files by suffix: each is read whole by its reader here, and chunk by
# chunk by the streaming source of that reader (softmaxreg.streaming), so both read every format.
_READERS: dict[str, Callable[..., Dataset]] = {
    ".csv": read_csv,
    ".tsv": read_csv,
    ".npz": read_npz,
    ".npy": read_npy,
    ".svm": read_svmlight,
    ".svmlight": read_svmlight,
    ".libsvm": read_svmlight,
    ".txt": read_svmlight,
}
DATA_SUFFIXES = tuple(_READERS)  # the data files load_dataset reads (and folders of IDX files)


def reader_for(path: PathLike, doing: str = "load") -> Callable[..., Dataset]:
    """The reader of the data file ``path``, by its suffix; DataError for a suffix that none
    reads (``doing``: what the caller does with the file, for the message)."""
    suffix = Path(path).suffix
    reader = _READERS.get(suffix.lower())
    if reader is None:
        raise DataError(f"cannot {doing} {str(path)!r}: unknown file type "
                        f"{suffix or '(none)'!r}; expected {', '.join(_READERS)} or a folder of "
                        "IDX files")
    return reader


def load_bundled(name: str) -> Dataset:
    """One of scikit-learn's bundled sets: "digits" (8×8 images of 0..16 counts, so not
    8-bit pixels), "iris", "wine" or "breast_cancer"; feature names from scikit-learn."""
    key = named_dataset(name)
    if key not in BUNDLED:
        raise DataError(f"unknown bundled dataset {name!r}: expected one of {', '.join(BUNDLED)}")
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{key}")()
    return Dataset(X=bunch.data, y=bunch.target, name=key, pixels=False,
                   image_shape=(8, 8) if key == "digits" else None,
                   feature_names=[str(n) for n in bunch.feature_names])


def named_dataset(spec: PathLike) -> str | None:
    """The data set ``spec`` names, "mnist" or one of :data:`BUNDLED` (any case, ``-`` for
    ``_``: "Breast-Cancer"), or None for a path. Names win over paths: "./mnist" is a folder."""
    key = str(spec).strip().lower().replace("-", "_")
    return key if key == "mnist" or key in BUNDLED else None


def load_dataset(spec: PathLike, *, label_column: int | str | None = None,
                 data_dir: PathLike | None = None, schema: DataSchema | None = None,
                 header: str = "auto", empty: str = "error",
                 require_labels: bool = True) -> Dataset:
    """Load a data set by name ("mnist", "digits", "iris", "wine", "breast_cancer") or path
    (.csv/.tsv, .npz, .npy, .svm/.svmlight/.libsvm/.txt, or a folder of IDX files).

    Names win over paths: write "./mnist" for a folder called mnist. ``data_dir`` is where
    MNIST's files are (see :func:`load_mnist`); ``label_column`` applies to CSV files (see
    :func:`read_csv`) and .npy files (an index: see :func:`read_npy`, whose labels are the
    last column by default), ``header`` and ``empty`` to CSV files only. ``schema``: the
    columns a model was trained on; the features come out in its order, matched by name where
    both sides have names, by position otherwise (:meth:`Dataset.conform`).
    ``require_labels=False``: rows without labels are accepted (a CSV without the label column,
    an .npz without ``y``, a .npy of the model's features alone), with ``y`` None.
    """
    text = str(spec)
    key = named_dataset(spec)
    if key is not None:
        _csv_only(label_column, header, empty, text)
        ds = load_mnist(data_dir) if key == "mnist" else load_bundled(key)
        return ds if schema is None else ds.conform(schema)
    path = Path(text)
    if path.is_dir():
        _csv_only(label_column, header, empty, text)
        ds = read_idx_folder(path)
        return ds if schema is None else ds.conform(schema)
    if not path.is_file() and path.suffix.lower() in _READERS:
        raise DataError(f"not a regular file: {text}" if path.exists() else f"no such file: {text}")
    if not path.is_file():
        raise DataError(
            f"unknown dataset {text!r}: expected mnist, digits, iris, wine, breast_cancer, or a "
            "path to a .csv, .npz, .npy, .svmlight file or an IDX folder"
        )
    reader = reader_for(text)
    if reader is read_csv:
        return read_csv(path, label_column, header=header, empty=empty, schema=schema,
                        require_labels=require_labels)
    _csv_only(None if reader is read_npy else label_column, header, empty, text)
    if reader is read_npy:
        ds = read_npy(path, label_column, schema=schema, require_labels=require_labels)
    elif reader is read_npz:
        ds = read_npz(path, require_labels=require_labels)
    else:
        ds = read_svmlight(path, schema=schema)
    return ds if schema is None else ds.conform(schema)


def _csv_only(label_column: int | str | None, header: str, empty: str, spec: str) -> None:
    if label_column is not None:
        raise DataError(f"label_column applies to CSV and .npy files only, not to {spec!r}")
    if (header, empty) != ("auto", "error"):
        raise DataError(f"header and empty-cell options apply to CSV files only, not to "
                        f"{spec!r}")
