"""NumPy's files read without pickle: ``.npz`` archives (data sets, model files, checkpoints) and
``.npy`` arrays of examples; and the helpers that write model files and checkpoints: an atomic
write and a JSON-safe conversion.

Both data formats are read whole (:func:`read_npz`, :func:`read_npy`) or a chunk of rows at a
time (:func:`npz_rows`, :func:`open_npy`, for :mod:`softmaxreg.streaming`), by the same checks.
"""

from __future__ import annotations

import math
import os
import re
import stat
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import DataError, ModelFileError, SoftmaxRegError
from .dataset import (
    DataSchema,
    Dataset,
    PathLike,
    check_default_labels,
    check_fits_in_memory,
)
from .schema import MAX_METADATA_CHARS
from .tabular import integer_labels

# Deflate cannot expand data more than 1032-fold, so s compressed bytes hold at most 1032·s
# bytes: a size claiming more is rejected before anything is decompressed.
DEFLATE_MAX_RATIO = 1032
_NPZ_KEYS = ("X", "y", "X_test", "y_test", "feature_names")
# What np.savez writes: stored or deflated members.
_NPZ_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_NPZ_STREAM = "softmaxreg.streaming.NpzSource"  # how to read an archive too large for memory
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


# -- data sets ------------------------------------------------------------------------------------
def read_npz(path: PathLike, *, require_labels: bool = True) -> Dataset:
    """Read arrays ``X`` (n, d), or images (n, h, w), and ``y`` (n,) from a .npz file, with
    optional ``X_test``, ``y_test`` and ``feature_names``. Loaded with allow_pickle=False, so
    object arrays are refused. A uint8 ``X`` is taken as pixel intensities (pixels=True).
    With ``require_labels=False``, ``y`` may be absent (rows to predict; the Dataset's y is None).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"cannot open {path}: no such file")
    held = npz_members(path, _NPZ_KEYS)  # the headers: the shapes are checked before reading
    require_npz_members(path, held, ("X", "y")[: 2 if require_labels else 1])
    npz_layout(path, held)
    check_fits_in_memory(path, sum(math.prod(s) * dtype.itemsize for s, dtype in held.values()),
                         "reading it whole", _NPZ_STREAM)
    arrays = read_npz_arrays(path, lambda problem: DataError(f"{path}: {problem}"),
                             names=_NPZ_KEYS, what=".npz file")
    X, image_shape = _npz_features(arrays["X"], "X", path)
    X_test = y_test = None
    if "X_test" in arrays:
        X_test, _ = _npz_features(arrays["X_test"], "X_test", path)
        y_test = npz_labels(arrays["y_test"], "y_test", path)
    y = npz_labels(arrays["y"], "y", path) if "y" in arrays else None
    return Dataset(X, y, X_test, y_test, name=path.stem, pixels=X.dtype == np.uint8,
                   image_shape=image_shape, feature_names=_npz_names(arrays, X.shape[1], path))


def require_npz_members(path: Path, held: Sequence[str], names: Sequence[str]) -> None:
    """DataError unless the archive ``path``, which holds the arrays ``held``, has ``names``."""
    missing = [key for key in names if key not in held]
    if missing:
        with zipfile.ZipFile(path) as zf:
            every = sorted(name.removesuffix(".npy") for name in zf.namelist())
        raise DataError(f"{path} has no array {' or '.join(missing)}; it holds "
                        f"{every}; save with np.savez(path, X=X, y=y)")


def npz_layout(path: Path, held: dict[str, tuple[tuple[int, ...], np.dtype]],
               keys: tuple[str, str] = ("X", "y")) -> tuple[int, int] | None:
    """The image shape of the features ``keys[0]`` (:func:`feature_shape`), checked from the
    headers ``held`` (:func:`npz_members`) before anything is read: one label ``keys[1]`` per
    row when the archive has labels, and ``X_test`` with ``y_test`` (both or neither), of the
    width of ``X``. DataError if not."""
    x_shape, x_dtype = held[keys[0]]
    image_shape = feature_shape(x_shape, x_dtype, keys[0], path)
    if keys[1] in held:
        y_shape = held[keys[1]][0]
        if len(y_shape) != 1:
            raise DataError(f"{path}: {keys[1]} has shape {y_shape}; expected ({x_shape[0]},), "
                            f"one label per row of {keys[0]}")
        if y_shape[0] != x_shape[0]:
            raise DataError(f"{path}: {keys[0]} has {x_shape[0]} rows but {keys[1]} has "
                            f"{y_shape[0]} labels; expected one label per row of {keys[0]}")
    if keys[0] == "X" and ("X_test" in held) != ("y_test" in held):
        raise DataError(f"{path} has only one of X_test and y_test; give both or neither")
    if keys[0] == "X" and "X_test" in held:
        npz_layout(path, held, ("X_test", "y_test"))
        width, test_width = (math.prod(held[key][0][1:]) for key in ("X", "X_test"))
        if test_width != width:
            raise DataError(f"{path}: X_test has {test_width} features, but X has {width}")
    return image_shape


def npz_feature_names(path: Path, d: int) -> list[str] | None:
    """The archive's optional ``feature_names`` (d strings), or None."""
    arrays = read_npz_arrays(path, lambda problem: DataError(f"{path}: {problem}"),
                             names=("feature_names",), what=".npz file")
    return _npz_names(arrays, d, path)


def _npz_names(arrays: dict[str, NDArray[Any]], d: int, path: Path) -> list[str] | None:
    """The optional ``feature_names``: d strings (numbers are taken as their text)."""
    names = arrays.get("feature_names")
    if names is None:
        return None
    if names.dtype.kind not in "iuU" or names.size != d:
        raise DataError(f"{path}: feature_names must hold {d} names (strings), got "
                        f"{names.size} of dtype {names.dtype}")
    return [str(n) for n in names.ravel()]


def _npz_features(X: NDArray[Any], key: str, path: Path) -> tuple[NDArray[Any], Any]:
    """Check a feature array's type; flatten images (n, h, w) to (n, h·w)."""
    image_shape = feature_shape(X.shape, X.dtype, key, path)
    check_finite(X, key, path)
    return (X if image_shape is None else X.reshape(len(X), -1)), image_shape


def feature_shape(shape: tuple[int, ...], dtype: np.dtype, key: str, path: Path
                   ) -> tuple[int, int] | None:
    """The image shape (h, w) of features of ``shape`` (n, h, w), None for (n, d); DataError
    for any other shape, for no rows or no features, or for a dtype that is not numbers."""
    if dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} has dtype {dtype}; expected numbers")
    if len(shape) not in (2, 3):
        raise DataError(f"{path}: {key} has shape {shape}; expected (n, d) or images "
                        "(n, h, w)")
    if not math.prod(shape):  # an empty X trained into numpy's 'zero-size array' errors
        raise DataError(f"{path}: {key} has shape {shape}: no "
                        f"{'rows' if shape[0] == 0 else 'features'}")
    return (int(shape[1]), int(shape[2])) if len(shape) == 3 else None


def check_finite(X: NDArray[Any], key: str, path: Path) -> None:
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise DataError(f"{path}: {key} contains NaN or infinity")


def npz_labels(y: NDArray[Any], key: str, path: Path) -> NDArray[Any]:
    """Labels must be integers, booleans, finite floats or strings (not dates, bytes, ...)."""
    if y.dtype.kind not in "biufU" or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise DataError(f"{path}: {key} has dtype {y.dtype} or non-finite values; expected "
                        "integer, finite float or string labels")
    return y


# -- .npy arrays ---------------------------------------------------------------------------------
NPY_LAYOUT = ("a .npy data file holds one array (n, d + 1) of numbers: d features, then the "
              "labels (whole numbers) in the last column, or in the column that --label-column "
              "(label_column=) gives by index")


def read_npy(path: PathLike, label_column: int | str | None = None, *,
             schema: DataSchema | None = None, require_labels: bool = True) -> Dataset:
    """Read a ``.npy`` file of examples: one array (n, d + 1) of numbers, the d features and,
    in its last column, the labels.

    ``label_column``: the index of the label column instead (negative counts from the end).
    The labels must be whole numbers (``3.0`` becomes the integer 3); a column of other
    values is refused, as it cannot hold classes. ``schema``: the columns of the model the rows
    are for (by position); then the array may hold the model's d features alone (``y`` None),
    with ``require_labels=False``. Features may be any numbers, but not NaN or infinity. Labels
    taken from the last column by default that look like a feature give one UserWarning
    (:func:`~softmaxreg.io.dataset.check_default_labels`). Streaming reads the same files the
    same way (:class:`softmaxreg.streaming.NpySource`).
    """
    path = Path(path)
    data = open_npy(path)
    features, label = npy_layout(data, path, label_column, schema, require_labels)
    check_fits_in_memory(path, data.shape[0] * len(features) * data.dtype.itemsize,
                         "reading its rows", "softmaxreg.streaming.NpySource")
    X = np.asarray(data[:, features])  # the column index copies them out of the mapped file
    check_finite(X, "a feature", path)
    y = None if label is None else npy_labels(np.array(data[:, label]), path, label)
    reason = "the last column" if y is not None and label_column is None and schema is None \
        else None
    if reason is not None:
        check_default_labels(np.unique(y), len(y), label, reason)
    return Dataset(X, y, name=path.stem, label_column=label, label_reason=reason)


def open_npy(path: Path) -> NDArray[Any]:
    """The array of the ``.npy`` file ``path``, memory-mapped: rows are read when used.

    Its header is checked first, as an archive's members are (:func:`_npy_header`): a file that
    is not a ``.npy`` (a pickle, text) never reaches ``np.load``, and the header must describe
    exactly the bytes the file holds (not 10¹² rows in a file of 200 bytes)."""
    def fail(problem: str) -> DataError:
        return DataError(f"{path} is not a readable .npy file: {problem}")

    try:
        with open(path, "rb") as file:
            if file.read(4) == b"PK\x03\x04":  # what np.load opens as an .npz archive
                raise DataError(f"{path} is an .npz archive, not a .npy file: name it .npz")
            file.seek(0)
            _npy_header(file, "it", os.fstat(file.fileno()).st_size, fail, "it")
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:  # DataError is a ValueError: ours go through
        if isinstance(exc, DataError):
            raise
        raise fail(f"{type(exc).__name__}: {exc}") from None


def npy_layout(data: NDArray[Any], path: Path, label_column: int | str | None = None,
               schema: DataSchema | None = None, require_labels: bool = True
               ) -> tuple[NDArray[np.intp], int | None]:
    """(feature columns, label column or None) of the array ``data`` (n, c) of a ``.npy`` file
    (:func:`read_npy`): ``label_column``, else the model's (``schema``: none when the array
    has just the model's d columns), else the last column."""
    if data.ndim != 2 or data.dtype.kind not in "biuf":
        raise DataError(f"{path} holds an array of shape {data.shape} and dtype {data.dtype}; "
                        f"{NPY_LAYOUT}")
    if not data.shape[0]:
        raise DataError(f"{path} has no data rows")
    c = data.shape[1]
    if label_column is None and schema is not None:
        label = _schema_npy_label(c, path, schema)
    else:
        label = c - 1 if label_column is None else _column_index(label_column, path)
        if not -c <= label < c:
            raise DataError(f"label column {label} is out of range: {path} has {c} columns")
        if c < 2:
            raise DataError(f"{path} has a single column, no features beside the labels; "
                            f"{NPY_LAYOUT}")
        label %= c
    if label is None and require_labels:
        raise DataError(f"{path} holds the model's {c} features but no label column, and "
                        f"scoring needs the labels; {NPY_LAYOUT}")
    columns = np.arange(c)
    return (columns if label is None else np.delete(columns, label)), label


def _column_index(label_column: int | str, path: Path) -> int:
    """``label_column`` as an index (an int, or its text from the command line); DataError for
    a name or a fraction: a .npy file's columns have no names."""
    text = str(label_column).strip()
    if isinstance(label_column, (bool, float)) or not re.fullmatch(r"[+-]?\d+", text):
        raise DataError(f"label column {label_column!r} is not a column index: {path} is a .npy "
                        "file, whose columns have no names; give the label column's index "
                        "(0 for the first, -1 for the last)")
    return int(text)


def _schema_npy_label(c: int, path: Path, schema: DataSchema) -> int | None:
    """The label column of an array of c columns read for a model with ``schema``."""
    d = schema.n_features
    if c == d:
        return None
    if c != d + 1:
        raise DataError(f"{path} has {c} columns, but the model takes {d} features (and, for "
                        "scoring, a label column)")
    return schema.label % c if isinstance(schema.label, int) else c - 1


def npy_labels(values: NDArray[Any], path: Path, column: int) -> NDArray[Any]:
    """The labels ``values`` (n,) of column ``column`` of a ``.npy`` file: integers as they are,
    whole floats as int64; DataError for any other number (``0.37``, NaN): not classes."""
    if values.dtype.kind != "f":
        return values
    typed = integer_labels(values)
    if typed is values:
        odd = values[~(np.isfinite(values) & (values == np.round(values)))]
        shown = float(odd[0] if odd.size else values.max())
        raise DataError(f"{path}: column {column} holds {shown!r}, which is not a class label "
                        f"(the labels are whole numbers); {NPY_LAYOUT}")
    return typed


# -- any archive ----------------------------------------------------------------------------------
def read_npz_arrays(path: Path, fail: Callable[[str], Exception],
                    names: Sequence[str] | None = None,
                    what: str = "file") -> dict[str, NDArray[Any]]:
    """The arrays of the ``.npz`` archive ``path`` (all, or those of ``names`` it has), unpickled.

    Nothing is expanded before every member read has been checked: it must be a stored or
    deflated ``.npy`` whose header describes exactly the bytes the zip directory declares for
    it, and that size must be one deflate can reach from the member's compressed size. So no
    header (``shape (10¹²,)``) and no directory entry can make the reader allocate more than the
    file can hold. ``fail(problem)`` builds the caller's error (DataError, ModelFileError).
    """
    with _archive(path, fail, what) as (zf, infos):
        wanted = [n for n in (infos if names is None else names) if n in infos]
        size = path.stat().st_size
        for name in wanted:
            _check_npy_member(zf, infos[name], size, fail)
        return {name: _read_npy_member(zf, infos[name]) for name in wanted}


def npz_members(path: Path, names: Sequence[str]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The (shape, dtype) of each array of ``names`` that the archive ``path`` holds, from its
    header, checked as :func:`read_npz_arrays` checks it; nothing is expanded."""
    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}")

    with _archive(path, fail, ".npz file") as (zf, infos):
        size = path.stat().st_size
        return {name: _check_npy_member(zf, infos[name], size, fail)[:2]
                for name in names if name in infos}


def npz_rows(path: Path, name: str, chunk_rows: int) -> Iterator[NDArray[Any]]:
    """The array ``name`` of the archive ``path``, ``chunk_rows`` rows (along its first axis) at
    a time, checked as :func:`read_npz_arrays` checks it.

    Each member is decompressed as it is read: a deflated one (``np.savez_compressed``) costs
    the time to inflate it again on every pass, not the memory to hold it. A member in Fortran
    order (a transposed array saved as it was) has no rows to read one after the other: it is
    read whole, on every pass; save ``np.ascontiguousarray(X)`` to stream it.
    """
    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}")

    with _archive(path, fail, ".npz file") as (zf, infos):
        info = infos[name]
        shape, dtype, fortran, header = _check_npy_member(zf, info, path.stat().st_size, fail)
        if fortran:
            check_fits_in_memory(path, math.prod(shape) * dtype.itemsize,
                                 f"its member {info.filename!r} in Fortran order, read whole,",
                                 _NPZ_STREAM)
            whole = _read_npy_member(zf, info)
            for a in range(0, shape[0], chunk_rows):
                yield whole[a: a + chunk_rows]
            return
        row_bytes = math.prod(shape[1:]) * dtype.itemsize
        with zf.open(info) as member:
            member.read(header)
            for a in range(0, shape[0], chunk_rows):
                m = min(chunk_rows, shape[0] - a)
                data = member.read(m * row_bytes)
                if len(data) != m * row_bytes:
                    raise fail(f"member {info.filename!r} ends before its {shape[0]} rows")
                yield np.frombuffer(data, dtype).reshape(m, *shape[1:])


@contextmanager
def _archive(path: Path, fail: Callable[[str], Exception], what: str
             ) -> Iterator[tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]]:
    """The open archive and its members by array name; every error a damaged archive raises
    inside the block becomes ``fail(...)``."""
    with open(path, "rb") as file:
        if file.read(6) == b"\x93NUMPY":
            raise fail("holds a single array (.npy format); expected a .npz archive with "
                       "arrays X and y, e.g. np.savez(path, X=X, y=y)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename.removesuffix(".npy") for i in zf.infolist()]
            twice = sorted(name for name, k in Counter(names).items() if k > 1)
            if twice:  # which one is read differs between readers (np.load takes 'X' first)
                raise fail(f"holds more than one member for the array {twice[0]!r} (X.npy twice, "
                           "or X and X.npy): which one is meant is unclear")
            yield zf, dict(zip(names, zf.infolist(), strict=True))
    except SoftmaxRegError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError,
            RuntimeError, struct.error, OverflowError) as exc:  # what a damaged archive raises
        raise fail(f"not a readable {what} ({type(exc).__name__}: {exc})") from None


def _check_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int,
                      fail: Callable[[str], Exception]
                      ) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, Fortran order, header bytes) of the member ``info``; ``fail(...)`` unless
    it is a plain .npy whose sizes agree (see :func:`read_npz_arrays`)."""
    name = info.filename
    if info.compress_type not in _NPZ_METHODS or info.flag_bits & 0x1:
        raise fail(f"member {name!r} is encrypted or uses compression method "
                   f"{info.compress_type}; expected stored or deflated members (np.savez)")
    most = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED
                                 else DEFLATE_MAX_RATIO) + 64
    if info.compress_size > archive_size or info.file_size > most:
        raise fail(f"member {name!r} claims {info.file_size} bytes from {info.compress_size} "
                   f"compressed bytes in a {archive_size}-byte file: refusing to expand")
    with zf.open(info) as member:
        return _npy_header(member, f"member {name!r}", info.file_size, fail,
                           f"array {name.removesuffix('.npy')!r}")


def _npy_header(stream: Any, what: str, size: int, fail: Callable[[str], Exception],
                array: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, Fortran order, header bytes) of the .npy ``what`` (a file or an archive's
    member) at the start of ``stream``, whose ``size`` bytes must be its header and exactly
    the data the header describes, and not Python objects (``array``: what to call it then);
    ``fail(...)`` if not. A stream that is not a .npy (a pickle, text) is refused here."""
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError:
        raise fail(f"{what} does not begin with NumPy's .npy header (a pickle or a text file "
                   "is not read)") from None
    if version not in _NPY_HEADER_READERS:
        raise fail(f"{what} is in .npy format {version}, which is not read")
    try:
        shape, fortran, dtype = _NPY_HEADER_READERS[version](stream)
    except (ValueError, SyntaxError, tokenize.TokenError, EOFError) as exc:  # parsed as Python
        said = (str(exc).splitlines() or [""])[0][:200]
        raise fail(f"{what} has a malformed .npy header ({type(exc).__name__}: {said})") from None
    if dtype.hasobject:
        raise fail(f"{array} holds Python objects, which are not loaded (allow_pickle=False); "
                   "store numbers or strings")
    header, nbytes = stream.tell(), math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or header + nbytes != size:
        raise fail(f"{what} has a header for {shape} {dtype} ({nbytes} bytes) but holds "
                   f"{size - header} bytes")
    return shape, dtype, fortran, header


def _read_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NDArray[Any]:
    with zf.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


# -- model files and checkpoints ------------------------------------------------------------------
def read_model_npz(path: Path, members: Sequence[str],
                   what: str = "model file") -> dict[str, NDArray[Any]]:
    """The arrays ``members`` of the archive at ``path`` (a ``what``), read without pickle once
    the sizes they claim are found reasonable for the file's size; ModelFileError if not.

    A member name ending in ``.`` stands for every array it prefixes (``"scaling."``). Other
    members are never read, whatever size they claim: an extra 1 GB of deflated zeros costs
    nothing (a hostile pass measured 5 s and a 1 GB peak when every member was read).
    """

    def fail(problem: str) -> ModelFileError:
        return ModelFileError(f"{path}: {problem}")

    if not path.is_file():
        raise fail(f"no such {what}")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [info for info in zf.infolist()
                     if _wanted(info.filename.removesuffix(".npy"), members)]
        total = sum(info.file_size for info in infos)
        if total > 64 * max(path.stat().st_size, 2**20) + 2**30:
            raise fail(f"its members claim {total} bytes uncompressed: refusing to expand")
        for info in infos:  # a 0-d unicode array: 4 bytes a character, and its .npy header
            if info.filename in ("metadata", "metadata.npy") \
                    and info.file_size > 4 * MAX_METADATA_CHARS + 4096:
                raise fail(f"its metadata member claims {info.file_size} bytes, more than "
                           f"{MAX_METADATA_CHARS} characters of metadata: refusing to expand")
        return read_npz_arrays(path, fail, [info.filename.removesuffix(".npy") for info in infos],
                               what=f"softmaxreg {what}")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as exc:
        raise fail(f"not a readable softmaxreg {what} ({exc})") from None
    except Exception as exc:  # zlib errors and the like from a damaged archive
        raise fail(f"damaged {what} ({type(exc).__name__}: {exc})") from None


def _wanted(name: str, members: Sequence[str]) -> bool:
    return any(name == m or (m.endswith(".") and name.startswith(m)) for m in members)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and a rename:
    ``path`` holds either its old content or all of the new, never a part.

    The file gets the mode an ordinary ``open(path, "w")`` would give it: a file it replaces
    keeps its mode, a new one gets 0o666 less the umask (0644 under umask 022), not the 0600 of
    ``tempfile.mkstemp``.  A missing folder or a folder in place of ``path`` is an OSError that
    names ``path``, not the temporary file.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc, kernel 4.7+);
    elsewhere set and restored at once, as there is no other way to read it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def json_safe(value: Any) -> Any:
    """Estimator parameters as JSON (tuples become lists; numpy scalars become numbers)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
