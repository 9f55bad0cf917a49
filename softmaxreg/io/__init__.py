"""Data and files: data sets (MNIST, bundled sets, CSV, NPZ, svmlight, IDX) by name or path,
and the safe ``.npz`` reading and atomic writing that model files and checkpoints share.

Every loader returns a :class:`Dataset` whose rows are examples (``X`` is ``n × d``). Every
problem with a file or its contents raises :class:`~softmaxreg.exceptions.DataError` with a
message that names the file and says what is wrong.
"""

from __future__ import annotations

from pathlib import Path

from ..exceptions import DataError
from .dataset import Dataset, PathLike, data_fingerprint
from .idx import find_idx_file, read_idx, read_idx_folder
from .mnist import DEFAULT_MNIST_MIRRORS, load_mnist
from .npz import atomic_write_bytes, json_safe, read_model_npz, read_npz, read_npz_arrays
from .tabular import read_csv, read_svmlight

__all__ = ["BUNDLED", "DEFAULT_MNIST_MIRRORS", "Dataset", "atomic_write_bytes", "data_fingerprint",
           "find_idx_file", "json_safe", "load_bundled", "load_dataset", "load_mnist", "read_csv",
           "read_idx", "read_idx_folder", "read_model_npz", "read_npz", "read_npz_arrays",
           "read_svmlight"]

BUNDLED = ("digits", "iris", "wine", "breast_cancer")
_READERS = {
    ".csv": read_csv,
    ".tsv": read_csv,
    ".npz": read_npz,
    ".svm": read_svmlight,
    ".svmlight": read_svmlight,
    ".libsvm": read_svmlight,
    ".txt": read_svmlight,
}


def load_bundled(name: str) -> Dataset:
    """One of scikit-learn's bundled sets: "digits" (8×8 images of 0..16 counts, so not
    8-bit pixels), "iris", "wine" or "breast_cancer"; feature names from scikit-learn."""
    key = name.strip().lower().replace("-", "_")
    if key not in BUNDLED:
        raise DataError(f"unknown bundled dataset {name!r}: expected one of {', '.join(BUNDLED)}")
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{key}")()
    return Dataset(X=bunch.data, y=bunch.target, name=key, pixels=False,
                   image_shape=(8, 8) if key == "digits" else None,
                   feature_names=[str(n) for n in bunch.feature_names])


def load_dataset(spec: PathLike, *, label_column: int | str | None = None,
                 data_dir: PathLike | None = None) -> Dataset:
    """Load a data set by name ("mnist", "digits", "iris", "wine", "breast_cancer") or path
    (.csv/.tsv, .npz, .svm/.svmlight/.libsvm/.txt, or a folder of IDX files).

    Names win over paths: write "./mnist" for a folder called mnist. ``data_dir`` is where
    MNIST's files are (see :func:`load_mnist`); ``label_column`` applies to CSV files only.
    """
    text = str(spec)
    key = text.strip().lower().replace("-", "_")
    if key == "mnist" or key in BUNDLED:
        _no_label_column(label_column, text)
        return load_mnist(data_dir) if key == "mnist" else load_bundled(key)
    path = Path(text)
    if path.is_dir():
        _no_label_column(label_column, text)
        return read_idx_folder(path)
    if not path.is_file():
        raise DataError(
            f"unknown dataset {text!r}: expected mnist, digits, iris, wine, breast_cancer, or a "
            "path to a .csv, .npz, .svmlight file or an IDX folder"
        )
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"cannot load {text!r}: unknown file type {path.suffix!r}; expected "
                        f"{', '.join(_READERS)} or a folder of IDX files")
    if reader is read_csv:
        return read_csv(path, label_column)
    _no_label_column(label_column, text)
    return reader(path)


def _no_label_column(label_column: int | str | None, spec: str) -> None:
    if label_column is not None:
        raise DataError(f"label_column applies to CSV files only, not to {spec!r}")
