"""Data sets: MNIST (IDX files, download, cache), scikit-learn's bundled sets, and CSV, NPZ,
svmlight and IDX-folder files.

Every loader returns a :class:`Dataset` whose rows are examples (``X`` is ``n × d``). Every
problem with a file or its contents raises :class:`~softmaxreg.exceptions.DataError` with a
message that names the file and says what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import logging
import math
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .exceptions import DataError, SoftmaxRegError

__all__ = [
    "BUNDLED",
    "DEFAULT_MNIST_MIRRORS",
    "Dataset",
    "load_bundled",
    "load_dataset",
    "load_mnist",
    "read_csv",
    "read_idx",
    "read_idx_folder",
    "read_npz",
    "read_svmlight",
]

PathLike = str | os.PathLike[str]
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# The data set record
# --------------------------------------------------------------------------------------------


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
                raise DataError(
                    f"data set {self.name!r}: X_test has {self.X_test.shape[1]} features, "
                    f"but X has {self.n_features}"
                )
        self._check_feature_metadata()

    @property
    def n_features(self) -> int:
        """Number of features d (columns of ``X``)."""
        return int(self.X.shape[1])

    def _check_feature_metadata(self) -> None:
        if self.image_shape is not None and math.prod(self.image_shape) != self.n_features:
            raise DataError(
                f"data set {self.name!r}: image shape {self.image_shape} does not match "
                f"{self.n_features} features"
            )
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise DataError(
                f"data set {self.name!r}: {len(self.feature_names)} feature names for "
                f"{self.n_features} features"
            )


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


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

# The third magic byte gives the element type; multi-byte types are big-endian.
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Deflate cannot expand data more than 1032-fold, so a gzip file of s bytes holds at most
# 1032·s bytes: a header claiming more is rejected before anything is decompressed.
_GZIP_MAX_RATIO = 1032
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class _IdxHeader:
    """The parsed header of an IDX file; ``raw`` is its bytes as read (for hashing)."""

    dtype: np.dtype[Any]
    dims: tuple[int, ...]
    raw: bytes

    @property
    def nbytes(self) -> int:
        """Payload size the header announces: prod(dims) · itemsize."""
        return math.prod(self.dims) * self.dtype.itemsize

    def describe(self) -> str:
        """E.g. '60000×28×28 = 47040000 bytes' or '3×4 int32 values = 48 bytes'."""
        shape = "×".join(str(n) for n in self.dims)
        kind = "" if self.dtype.itemsize == 1 else f" {self.dtype.name} values"
        return f"{shape}{kind} = {self.nbytes} bytes"


def read_idx(path: PathLike) -> NDArray[Any]:
    """Read an IDX file, plain or gzip-compressed (detected by its magic bytes 1f 8b).

    Returns an array of the shape and type the header gives, in native byte order. Raises
    DataError when the file is not IDX, is truncated, has trailing data or is corrupt; a header
    announcing more data than the file can hold is rejected before anything is allocated.
    """
    header, payload = _read_idx_bytes(Path(path), str(path))
    return _idx_array(header, payload)


def _idx_array(header: _IdxHeader, payload: bytearray) -> NDArray[Any]:
    """View the payload as the header's array, converted to native byte order."""
    array = np.frombuffer(payload, dtype=header.dtype).reshape(header.dims)
    return array.astype(header.dtype.newbyteorder("="), copy=False)


def _read_idx_bytes(path: Path, source: str) -> tuple[_IdxHeader, bytearray]:
    """Header and payload bytes of an IDX file; ``source`` names the file in messages."""
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot open {source}: {exc.strerror or exc}") from exc
    with file:
        size = os.fstat(file.fileno()).st_size
        compressed = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        if not compressed:
            return _read_idx_stream(file, source, size, compressed=False)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _read_idx_stream(stream, source, size * _GZIP_MAX_RATIO, compressed=True)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{source} is a corrupt or truncated gzip file ({exc})") from exc


def _read_idx_stream(
    stream: BinaryIO, source: str, capacity: int, *, compressed: bool
) -> tuple[_IdxHeader, bytearray]:
    """Parse the header, check it against the most the file can hold, then read the payload."""
    header = _read_idx_header(stream, source)
    room = capacity - len(header.raw)
    if header.nbytes > room and compressed:
        raise DataError(
            f"{source} is truncated: header says {header.describe()}, more than a "
            f"{capacity // _GZIP_MAX_RATIO}-byte gzip file can hold"
        )
    if header.nbytes > room:
        raise DataError(f"{source} is truncated: header says {header.describe()}, found {room}")
    if header.nbytes < room and not compressed:
        raise DataError(
            f"{source} has {room - header.nbytes} bytes of trailing data after the "
            f"{header.nbytes} bytes its header describes"
        )
    return header, _read_payload(stream, header, source)


def _read_idx_header(stream: BinaryIO, source: str) -> _IdxHeader:
    """Magic (2 zero bytes, type code, number of dims), then the dims as big-endian uint32."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{source} is not an IDX file (it has only {len(magic)} bytes)")
    if magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise DataError(f"{source} is not an IDX file (magic 0x{magic.hex()})")
    n_dims = magic[3]
    dims_raw = stream.read(4 * n_dims)
    if len(dims_raw) < 4 * n_dims:
        raise DataError(
            f"{source} is truncated: its header announces {n_dims} dimensions "
            f"({4 * n_dims} bytes) but only {len(dims_raw)} bytes follow the magic"
        )
    dims = struct.unpack(f">{n_dims}I", dims_raw)
    dtype = _IDX_TYPES[magic[2]]
    # numpy refuses shapes like (0, 2³², 2³²) although they hold no bytes
    if math.prod(max(d, 1) for d in dims) * dtype.itemsize >= 2**63:
        raise DataError(f"{source} is not a valid IDX file: no array has the dimensions {dims}")
    return _IdxHeader(dtype, dims, magic + dims_raw)


def _read_payload(stream: BinaryIO, header: _IdxHeader, source: str) -> bytearray:
    """Read exactly header.nbytes in chunks; stop as soon as the stream gives more.

    Memory grows with what the stream actually holds, never with what the header claims, so
    a lying header or a decompression bomb cannot exhaust it.
    """
    want = header.nbytes
    payload = bytearray()
    while len(payload) < want:
        chunk = stream.read(min(_READ_CHUNK, want - len(payload)))
        if not chunk:
            raise DataError(
                f"{source} is truncated: header says {header.describe()}, found {len(payload)}"
            )
        payload += chunk
    if stream.read(1):
        raise DataError(f"{source} has trailing data after the {want} bytes its header describes")
    return payload


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    """The file ``stem`` in ``folder``, gzipped or not; also the 'train-images.idx3-ubyte'
    spelling some distributions use."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _require_idx_file(folder: Path, stem: str) -> Path:
    found = _find_idx_file(folder, stem)
    if found is None:
        raise DataError(f"{folder} has no {stem} or {stem}.gz")
    return found


def read_idx_folder(path: PathLike) -> Dataset:
    """Read a folder in MNIST's IDX layout: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte`` and, optionally, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each may be gzipped). Works for MNIST look-alikes such as
    Fashion-MNIST; no checksums are verified (``load_mnist`` does that for MNIST itself).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    X, y, image_shape = _read_idx_split(folder, "train")
    X_test = y_test = None
    if _find_idx_file(folder, "t10k-images-idx3-ubyte") or _find_idx_file(
        folder, "t10k-labels-idx1-ubyte"
    ):
        X_test, y_test, _ = _read_idx_split(folder, "t10k")
    return Dataset(X, y, X_test, y_test, name=folder.resolve().name,
                   pixels=X.dtype == np.uint8, image_shape=image_shape)


def _read_idx_split(folder: Path, prefix: str) -> tuple[NDArray[Any], NDArray[Any], Any]:
    """(X, y, image_shape) of one split: images (n, h, w) flattened to (n, h·w)."""
    images_path = _require_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _require_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2:
        raise DataError(f"{images_path} holds a {images.ndim}-D array; expected images (n, h, w)")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds a {labels.ndim}-D array; expected labels (n,)")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels")
    image_shape = tuple(images.shape[1:]) if images.ndim == 3 else None
    return images.reshape(len(images), -1), labels, image_shape


# --------------------------------------------------------------------------------------------
# MNIST: local folder, cache, download
# --------------------------------------------------------------------------------------------

DEFAULT_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_TIMEOUT_S = 30.0  # per connection attempt and per read
_DEADLINE_S = 900.0  # whole download of one file
_DOWNLOAD_CHUNK = 1 << 16


@dataclass(frozen=True)
class _MnistFile:
    """One of MNIST's four files, identified by the SHA-256 of its *decompressed* content,
    which (unlike the .gz's hash) does not change when a mirror recompresses it."""

    stem: str
    sha256: str
    dims: tuple[int, ...]

    @property
    def max_download(self) -> int:
        """Most bytes a mirror may send: the raw size plus gzip's worst-case overhead."""
        raw = 4 + 4 * len(self.dims) + math.prod(self.dims)
        return raw + raw // 100 + 1024


# Small files first, so that a bad mirror is found cheaply.
_MNIST_FILES = (
    _MnistFile("train-labels-idx1-ubyte",
               "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", (60000,)),
    _MnistFile("t10k-labels-idx1-ubyte",
               "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", (10000,)),
    _MnistFile("t10k-images-idx3-ubyte",
               "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
               (10000, 28, 28)),
    _MnistFile("train-images-idx3-ubyte",
               "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
               (60000, 28, 28)),
)


def load_mnist(
    data_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    mirrors: Sequence[str] | str | None = None,
    progress: bool = True,
) -> Dataset:
    """MNIST: 60 000 training and 10 000 test images, X uint8 (n, 784), y uint8 labels 0..9.

    The files come from, in order: ``data_dir``; the folder in the environment variable
    ``SOFTMAXREG_DATA``; the cache folder (``cache_dir``, else ``SOFTMAXREG_CACHE``, else
    ``~/.cache/softmaxreg``, in its ``mnist`` subfolder); else a download into the cache from
    ``mirrors`` (else ``SOFTMAXREG_MNIST_MIRRORS``, comma-separated, else
    ``DEFAULT_MNIST_MIRRORS``), tried in order. Every file is verified by the SHA-256 of its
    decompressed content: a bad file in ``data_dir`` raises DataError, a bad cached file is
    deleted and downloaded again, and a mirror that is down, slow, or serves a wrong, short
    or oversized file is abandoned for the next. DataError lists every mirror if all fail.
    """
    folder = data_dir if data_dir is not None else os.environ.get("SOFTMAXREG_DATA") or None
    if folder is not None:
        arrays = {f.stem: _read_local_mnist(Path(folder), f) for f in _MNIST_FILES}
    else:
        arrays = _fetch_mnist(_mnist_cache(cache_dir), _mirror_urls(mirrors), progress)
    return Dataset(
        X=arrays["train-images-idx3-ubyte"].reshape(60000, 784),
        y=arrays["train-labels-idx1-ubyte"],
        X_test=arrays["t10k-images-idx3-ubyte"].reshape(10000, 784),
        y_test=arrays["t10k-labels-idx1-ubyte"],
        name="mnist",
        pixels=True,
        image_shape=(28, 28),
    )


def _read_local_mnist(folder: Path, spec: _MnistFile) -> NDArray[Any]:
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    return _read_verified(_require_idx_file(folder, spec.stem), spec)


def _read_verified(path: Path, spec: _MnistFile, source: str | None = None) -> NDArray[Any]:
    """Read an MNIST IDX file and check the SHA-256 of its decompressed content."""
    source = source or str(path)
    header, payload = _read_idx_bytes(path, source)
    digest = hashlib.sha256(header.raw)
    digest.update(payload)
    if digest.hexdigest() != spec.sha256:
        raise DataError(
            f"{source} is not MNIST's {spec.stem}: the SHA-256 of its content is "
            f"{digest.hexdigest()}, expected {spec.sha256}"
        )
    return _idx_array(header, payload)


def _mnist_cache(cache_dir: PathLike | None) -> Path:
    """``<cache>/mnist``: the argument, else $SOFTMAXREG_CACHE, else pooch's OS cache folder
    for softmaxreg (``~/.cache/softmaxreg`` on Linux)."""
    root = cache_dir if cache_dir is not None else os.environ.get("SOFTMAXREG_CACHE") or None
    if root is None:
        import pooch

        root = pooch.os_cache("softmaxreg")
    return Path(root).expanduser() / "mnist"


def _mirror_urls(mirrors: Sequence[str] | str | None) -> list[str]:
    """Mirror base URLs, each ending in '/'."""
    if mirrors is None:
        env = os.environ.get("SOFTMAXREG_MNIST_MIRRORS", "")
        mirrors = env if env.strip() else DEFAULT_MNIST_MIRRORS
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    urls = [m.strip() for m in mirrors if m.strip()]
    if not urls:
        raise DataError("no MNIST mirrors to download from")
    return [url if url.endswith("/") else url + "/" for url in urls]


def _fetch_mnist(cache: Path, mirrors: list[str], progress: bool) -> dict[str, NDArray[Any]]:
    """Each file from the cache if it verifies, else downloaded; a mirror that fails once is
    abandoned for the remaining files."""
    failures: dict[str, str] = {}
    return {f.stem: _cached_or_downloaded(f, cache, mirrors, failures, progress)
            for f in _MNIST_FILES}


def _cached_or_downloaded(
    spec: _MnistFile, cache: Path, mirrors: list[str], failures: dict[str, str], progress: bool
) -> NDArray[Any]:
    path = cache / f"{spec.stem}.gz"
    if path.exists():
        try:
            return _read_verified(path, spec)
        except DataError as exc:
            _log.warning("deleting a bad cached file and downloading it again: %s", exc)
            path.unlink()
    return _download(spec, path, mirrors, failures, progress)


def _download(
    spec: _MnistFile, path: Path, mirrors: list[str], failures: dict[str, str], progress: bool
) -> NDArray[Any]:
    """Try each mirror not yet abandoned; record why each one fails."""
    import requests

    for mirror in mirrors:
        if mirror in failures:
            continue
        try:
            return _download_from(mirror + path.name, spec, path, progress)
        except DataError as exc:
            failures[mirror] = str(exc)
        except requests.RequestException as exc:
            failures[mirror] = _network_error(exc)
        except OSError as exc:  # not the mirror's fault: the cache folder is unusable
            raise DataError(f"cannot write MNIST into the cache folder {path.parent}: {exc}; "
                            "choose another with cache_dir= or SOFTMAXREG_CACHE") from exc
    reasons = "\n".join(f"  {mirror}: {failures[mirror]}" for mirror in mirrors)
    raise DataError(f"could not download MNIST's {path.name} from any mirror:\n{reasons}")


def _download_from(url: str, spec: _MnistFile, path: Path, progress: bool) -> NDArray[Any]:
    """Download with pooch into ``path``; pooch moves the file there only once verified."""
    import pooch

    downloader = _VerifyingDownloader(spec, progress)
    _log.info("downloading %s", url)
    with _quiet_pooch():
        pooch.retrieve(url, known_hash=None, fname=path.name, path=path.parent,
                       downloader=downloader)
    if downloader.array is None:  # another process put the file there in the meantime
        return _read_verified(path, spec)
    return downloader.array


class _VerifyingDownloader:
    """A pooch downloader that bounds the download's size and time and verifies the file.

    pooch downloads into a temporary file and moves it into the cache only when the
    downloader returns; raising DataError here (a ValueError, which pooch lets through after
    deleting the temporary file) keeps a bad file out of the cache.
    """

    def __init__(self, spec: _MnistFile, progress: bool) -> None:
        self.spec = spec
        self.progress = progress
        self.array: NDArray[Any] | None = None

    def __call__(self, url: str, output_file: str, pooch_instance: Any) -> None:
        bar = _progress_bar(self.spec.stem) if self.progress else None
        try:
            with open(output_file, "wb") as file:
                _stream(url, _BoundedSink(file, self.spec.max_download, url), bar)
        finally:
            if bar is not None:
                bar.close()
        self.array = _read_verified(Path(output_file), self.spec, source=url)


def _stream(url: str, sink: _BoundedSink, bar: Any) -> None:
    """GET ``url`` into ``sink``, each piece as soon as it arrives.

    ``read1`` returns whatever has arrived (at most a chunk), so the sink checks size and
    deadline however slowly a server drips its bytes; pooch's ``iter_content`` waits for a full
    64 KiB chunk, which at one byte per second never comes, while every byte resets the read
    timeout: a download that never ended.
    """
    import requests
    import urllib3

    with requests.get(url, stream=True, timeout=_TIMEOUT_S) as response:
        response.raise_for_status()
        if bar is not None:
            bar.total = int(response.headers.get("content-length") or 0) or None
        try:
            while chunk := response.raw.read1(_DOWNLOAD_CHUNK, decode_content=True):
                sink.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        except urllib3.exceptions.ReadTimeoutError:
            raise DataError(f"{url} sent nothing for {_TIMEOUT_S:g} s") from None
        except urllib3.exceptions.HTTPError as exc:  # a broken connection, a short body
            raise DataError(f"{url}: the download broke off ({exc})") from None


class _BoundedSink:
    """Write-only file wrapper that stops a download that is too large or too slow."""

    def __init__(self, file: IO[bytes], max_bytes: int, url: str) -> None:
        self._file = file
        self._max_bytes = max_bytes
        self._url = url
        self._written = 0
        self._deadline = time.monotonic() + _DEADLINE_S

    def write(self, chunk: bytes) -> int:
        self._written += len(chunk)
        if self._written > self._max_bytes:
            raise DataError(f"{self._url} sent more than {self._max_bytes} bytes, more than "
                            "this file can be")
        if time.monotonic() > self._deadline:
            raise DataError(f"{self._url} took longer than {_DEADLINE_S:.0f} s")
        return self._file.write(chunk)

    def flush(self) -> None:
        """No-op: pooch flushes after every chunk, but the file is read only once closed."""


def _progress_bar(name: str) -> Any:
    """A tqdm bar named after the file; pooch sets its total from Content-Length."""
    from tqdm import tqdm

    # total=1, not None: pooch tests the bar's truth, which tqdm refuses when total is None.
    return tqdm(total=1, desc=name, unit="B", unit_scale=True, ncols=79, leave=True)


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's advice to pin the .gz's hash: we verify the decompressed content."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _network_error(exc: Exception) -> str:
    """A one-line reason for a failed request."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP error {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return f"no answer within {_TIMEOUT_S:g} s"
    found = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc))
    return f"connection failed ({found.group(0).strip() if found else type(exc).__name__})"


# --------------------------------------------------------------------------------------------
# scikit-learn's bundled sets
# --------------------------------------------------------------------------------------------

BUNDLED = ("digits", "iris", "wine", "breast_cancer")


def load_bundled(name: str) -> Dataset:
    """One of scikit-learn's bundled sets: "digits" (8×8 images of 0..16 counts, so not
    8-bit pixels), "iris", "wine" or "breast_cancer"; feature names from scikit-learn."""
    key = name.strip().lower().replace("-", "_")
    if key not in BUNDLED:
        raise DataError(f"unknown bundled dataset {name!r}: expected one of {', '.join(BUNDLED)}")
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{key}")()
    return Dataset(
        X=bunch.data,
        y=bunch.target,
        name=key,
        pixels=False,
        image_shape=(8, 8) if key == "digits" else None,
        feature_names=[str(n) for n in bunch.feature_names],
    )


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------

_CSV_CHUNK = 4096  # rows converted to floats at once


def read_csv(path: PathLike, label_column: int | str | None = None) -> Dataset:
    """Read a CSV (or TSV) file: numeric features and one label column.

    The header row is optional and detected (a first row with a non-numeric field above a
    numeric one). ``label_column`` is a column name or index (negative counts from the end);
    by default the column named ``label`` if the header has one, else the last column. Labels
    that are all integers become int64, others stay strings. A ragged row, an empty label or
    a non-numeric or non-finite feature raises DataError naming the line and the column.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            return _read_csv_file(path, file, label_column)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file ({exc})") from exc
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file ({exc})") from exc


def _read_csv_file(path: Path, file: IO[str], label_column: int | str | None) -> Dataset:
    rows = _csv_rows(file, _csv_delimiter(path, file))
    head = list(itertools.islice(rows, 2))
    if not head:
        raise DataError(f"{path} is empty")
    has_header = _looks_like_header(head[0][1], head[1][1] if len(head) > 1 else None)
    names = [n.strip() for n in head[0][1]] if has_header else None
    table = _CsvTable(path, len(head[0][1]), head[0][0], names)
    table.label = table.label_index(label_column)
    X, y = table.parse(itertools.chain(head[1:] if has_header else head, rows))
    features = None if names is None else names[: table.label] + names[table.label + 1:]
    return Dataset(X, y, name=path.stem, feature_names=features)


def _csv_delimiter(path: Path, file: IO[str]) -> str:
    """Tab for .tsv/.tab; otherwise the first of ',', tab, ';' found on the first line."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    first = file.readline()
    file.seek(0)
    return next((d for d in (",", "\t", ";") if d in first), ",")


def _csv_rows(file: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row."""
    reader = csv.reader(file, delimiter=delimiter)
    for fields in reader:
        if fields and (len(fields) > 1 or fields[0].strip()):
            yield reader.line_num, fields


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A header has a non-numeric field above a numeric one (or, alone, no number at all)."""
    if second is None:
        return not any(_is_number(field) for field in first)
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False))


@dataclass
class _CsvTable:
    """The layout of a CSV file being read, and the conversion of its rows."""

    path: Path
    n_columns: int
    first_line: int
    names: list[str] | None
    label: int = -1

    def column(self, j: int) -> str:
        """'column 3' or "column 3 ('petal_length')" for messages (1-based)."""
        name = f" ({self.names[j]!r})" if self.names else ""
        return f"column {j + 1}{name}"

    def label_index(self, label_column: int | str | None) -> int:
        """Resolve the label column to a 0-based index."""
        if self.n_columns < 2:
            raise DataError(f"{self.path} has a single column on line {self.first_line}; "
                            "expected features and a label separated by ',', tab or ';'")
        if label_column is None:
            lowered = [n.lower() for n in self.names or []]
            return lowered.index("label") if "label" in lowered else self.n_columns - 1
        if isinstance(label_column, str) and self.names and label_column in self.names:
            return self.names.index(label_column)
        if isinstance(label_column, str) and not re.fullmatch(r"-?\d+", label_column.strip()):
            columns = f"its columns are {self.names}" if self.names else "it has no header row"
            raise DataError(f"{self.path} has no column named {label_column!r}: {columns}")
        index = int(label_column)
        if not -self.n_columns <= index < self.n_columns:
            raise DataError(f"label column {index} is out of range: {self.path} has "
                            f"{self.n_columns} columns")
        return index % self.n_columns

    def parse(self, rows: Iterable[tuple[int, list[str]]]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Features (n, d) float64 and labels (n,) from the data rows."""
        blocks: list[NDArray[np.float64]] = []
        labels: list[str] = []
        chunk: list[list[str]] = []
        lines: list[int] = []
        for line, fields in rows:
            if len(fields) != self.n_columns:
                raise DataError(f"{self.path}, line {line}: {len(fields)} fields, expected "
                                f"{self.n_columns} as on line {self.first_line}")
            label = fields.pop(self.label).strip()
            if not label:
                raise DataError(f"{self.path}, line {line}: the label ({self.column(self.label)}) "
                                "is empty")
            labels.append(label)
            chunk.append(fields)
            lines.append(line)
            if len(chunk) == _CSV_CHUNK:
                blocks.append(self._floats(chunk, lines))
                chunk, lines = [], []
        if chunk:
            blocks.append(self._floats(chunk, lines))
        if not blocks:
            raise DataError(f"{self.path} has a header but no data rows")
        return np.concatenate(blocks), _parse_labels(labels)

    def _floats(self, chunk: list[list[str]], lines: list[int]) -> NDArray[np.float64]:
        """Convert a block of rows; on failure find and name the offending cell."""
        try:
            block = np.array(chunk, dtype=np.float64)
        except ValueError:
            block = None
        if block is not None and np.isfinite(block).all():
            return block
        for row, line in zip(chunk, lines, strict=True):
            for k, text in enumerate(row):
                if not _is_number(text) or not math.isfinite(float(text)):
                    j = k if k < self.label else k + 1
                    raise DataError(f"{self.path}, line {line}, {self.column(j)}: {text!r} is "
                                    "not a finite number")
        raise DataError(f"{self.path}: cannot convert the rows on lines {lines[0]}–{lines[-1]} "
                        "to numbers")


def _integral(values: NDArray[np.floating]) -> bool:
    """Whole numbers that int64 holds exactly (1e300 is whole but would wrap around)."""
    return bool(np.all(np.abs(values) <= 2**53) and np.all(values == np.round(values)))


def _parse_labels(labels: list[str]) -> NDArray[Any]:
    """int64 when every label is an integer (also '3.0'), else the strings."""
    text = np.array(labels)
    try:
        return text.astype(np.int64)
    except (ValueError, OverflowError):  # OverflowError: an integer beyond int64's range
        pass
    try:
        values = text.astype(np.float64)
    except ValueError:
        return text
    if _integral(values):
        return values.astype(np.int64)
    return text


# --------------------------------------------------------------------------------------------
# NPZ and svmlight
# --------------------------------------------------------------------------------------------

_NPZ_KEYS = ("X", "y", "X_test", "y_test", "feature_names")


def read_npz(path: PathLike) -> Dataset:
    """Read arrays ``X`` (n, d), or images (n, h, w), and ``y`` (n,) from a .npz file, with
    optional ``X_test``, ``y_test`` and ``feature_names``. Loaded with allow_pickle=False, so
    object arrays are refused. A uint8 ``X`` is taken as pixel intensities (pixels=True).
    """
    path = Path(path)
    arrays = _npz_arrays(path)
    X, image_shape = _npz_features(arrays["X"], "X", path)
    X_test = y_test = None
    if "X_test" in arrays or "y_test" in arrays:
        if "X_test" not in arrays or "y_test" not in arrays:
            raise DataError(f"{path} has only one of X_test and y_test; give both or neither")
        X_test, _ = _npz_features(arrays["X_test"], "X_test", path)
        y_test = _npz_labels(arrays["y_test"], "y_test", path)
    names = arrays.get("feature_names")
    y = _npz_labels(arrays["y"], "y", path)
    return Dataset(X, y, X_test, y_test, name=path.stem, pixels=X.dtype == np.uint8,
                   image_shape=image_shape,
                   feature_names=None if names is None else [str(n) for n in names.ravel()])


def _npz_arrays(path: Path) -> dict[str, NDArray[Any]]:
    """The arrays of interest in a .npz file, read without pickle."""
    if not path.is_file():
        raise DataError(f"cannot open {path}: no such file")

    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}")

    arrays = read_npz_arrays(path, fail, names=_NPZ_KEYS, what=".npz file")
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path} has no array {' or '.join(missing)}; it holds "
                        f"{sorted(_npz_member_names(path))}; save with np.savez(path, X=X, y=y)")
    return arrays


def _npz_member_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [name.removesuffix(".npy") for name in zf.namelist()]


# What np.savez writes: stored or deflated members (deflate expands at most 1032-fold).
_NPZ_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


def read_npz_arrays(path: Path, fail: Any, names: Sequence[str] | None = None,
                    what: str = "file") -> dict[str, NDArray[Any]]:
    """The arrays of the ``.npz`` archive ``path`` (all, or those of ``names`` it has), unpickled.

    Nothing is expanded before every member read has been checked: it must be a stored or
    deflated ``.npy`` whose header describes exactly the bytes the zip directory declares for
    it, and that size must be one deflate can reach from the member's compressed size. So no
    header (``shape (10¹²,)``) and no directory entry can make the reader allocate more than the
    file can hold. ``fail(problem)`` builds the caller's error (DataError, ModelFileError).
    """
    with open(path, "rb") as file:
        if file.read(6) == b"\x93NUMPY":
            raise fail("holds a single array (.npy format); expected a .npz archive with "
                       "arrays X and y, e.g. np.savez(path, X=X, y=y)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
            wanted = [n for n in (infos if names is None else names) if n in infos]
            size = path.stat().st_size
            for name in wanted:
                _check_npy_member(zf, infos[name], size, fail)
            return {name: _read_npy_member(zf, infos[name]) for name in wanted}
    except SoftmaxRegError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError,
            RuntimeError, struct.error, OverflowError) as exc:  # what a damaged archive raises
        raise fail(f"not a readable {what} ({type(exc).__name__}: {exc})") from None


def _check_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int,
                      fail: Any) -> None:
    """Raise ``fail(...)`` unless ``info`` is a plain .npy whose sizes agree (see above)."""
    name = info.filename
    if info.compress_type not in _NPZ_METHODS or info.flag_bits & 0x1:
        raise fail(f"member {name!r} is encrypted or uses compression method "
                   f"{info.compress_type}; expected stored or deflated members (np.savez)")
    most = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED
                                 else _GZIP_MAX_RATIO) + 64
    if info.compress_size > archive_size or info.file_size > most:
        raise fail(f"member {name!r} claims {info.file_size} bytes from {info.compress_size} "
                   f"compressed bytes in a {archive_size}-byte file: refusing to expand")
    with zf.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
        except ValueError:
            raise fail(f"member {name!r} is not a .npy array") from None
        if version not in _NPY_HEADER_READERS:
            raise fail(f"member {name!r} is in .npy format {version}, which is not read")
        shape, _, dtype = _NPY_HEADER_READERS[version](member)
        header = member.tell()
    if dtype.hasobject:
        raise fail(f"array {name.removesuffix('.npy')!r} holds Python objects, which are not "
                   "loaded (allow_pickle=False); store numbers or strings")
    nbytes = math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or header + nbytes != info.file_size:
        raise fail(f"member {name!r} has a header for {shape} {dtype} ({nbytes} bytes) but "
                   f"holds {info.file_size - header} bytes")


def _read_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NDArray[Any]:
    with zf.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _npz_features(X: NDArray[Any], key: str, path: Path) -> tuple[NDArray[Any], Any]:
    """Check a feature array's type; flatten images (n, h, w) to (n, h·w)."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} has dtype {X.dtype}; expected numbers")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise DataError(f"{path}: {key} contains NaN or infinity")
    if X.ndim == 3:
        return X.reshape(len(X), -1), (int(X.shape[1]), int(X.shape[2]))
    if X.ndim != 2:
        raise DataError(f"{path}: {key} has shape {X.shape}; expected (n, d) or images "
                        "(n, h, w)")
    return X, None


def _npz_labels(y: NDArray[Any], key: str, path: Path) -> NDArray[Any]:
    """Labels must be integers, booleans, finite floats or strings (not dates, bytes, ...)."""
    if y.dtype.kind not in "biufU" or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise DataError(f"{path}: {key} has dtype {y.dtype} or non-finite values; expected "
                        "integer, finite float or string labels")
    return y


def read_svmlight(path: PathLike) -> Dataset:
    """Read a svmlight/libsvm file into a CSR matrix (scikit-learn's load_svmlight_file);
    integral labels become int64."""
    from sklearn.datasets import load_svmlight_file

    path = Path(path)
    try:
        X, y = load_svmlight_file(str(path))
    except FileNotFoundError as exc:
        raise DataError(f"cannot open {path}: no such file") from exc
    except (ValueError, OSError, TypeError, OverflowError) as exc:
        raise DataError(f"{path} is not a valid svmlight/libsvm file ({exc})") from exc
    for what, values in (("a label", y), ("a feature value", X.data)):
        if not np.isfinite(values).all():
            raise DataError(f"{path}: {what} is not a finite number (NaN or infinity)")
    if _integral(y):
        y = y.astype(np.int64)
    return Dataset(sp.csr_matrix(X), y, name=path.stem)


# --------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------

_READERS = {
    ".csv": read_csv,
    ".tsv": read_csv,
    ".npz": read_npz,
    ".svm": read_svmlight,
    ".svmlight": read_svmlight,
    ".libsvm": read_svmlight,
    ".txt": read_svmlight,
}


def load_dataset(
    spec: PathLike,
    *,
    label_column: int | str | None = None,
    data_dir: PathLike | None = None,
) -> Dataset:
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
