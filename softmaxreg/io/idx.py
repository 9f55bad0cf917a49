"""IDX files (MNIST's format), plain or gzipped: the header, bounded reading, and folders of them.

An IDX file is a magic number (two zero bytes, a type code, the number of dimensions), the
dimensions as big-endian uint32, then the values, row-major and big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from ..exceptions import DataError
from .dataset import Dataset, PathLike, check_fits_in_memory
from .npz import DEFLATE_MAX_RATIO

# The third magic byte gives the element type; multi-byte types are big-endian.
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxHeader:
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

    def array(self, payload: bytearray, rows: int | None = None) -> NDArray[Any]:
        """The payload as the header's array (or its first ``rows`` entries along the first
        axis), converted to native byte order."""
        shape = self.dims if rows is None else (rows, *self.dims[1:])
        array = np.frombuffer(payload, dtype=self.dtype).reshape(shape)
        return array.astype(self.dtype.newbyteorder("="), copy=False)


def read_idx(path: PathLike) -> NDArray[Any]:
    """Read an IDX file, plain or gzip-compressed (detected by its magic bytes 1f 8b).

    Returns an array of the shape and type the header gives, in native byte order. Raises
    DataError when the file is not IDX, is truncated, has trailing data or is corrupt; a header
    announcing more data than the file can hold, or than the memory available can, is rejected
    before anything is allocated (a 3 MB gzip of zeros can truly hold 3.2 GB: read whole, it
    took 14 s and 3.2 GB; stream such files with :class:`softmaxreg.streaming.IdxSource`).
    """
    header, payload = read_idx_bytes(path)
    return header.array(payload)


def read_idx_bytes(path: PathLike, source: str | None = None) -> tuple[IdxHeader, bytearray]:
    """Header and payload bytes of an IDX file; ``source`` names the file in messages."""
    source = source or str(path)
    with open_idx(path, source) as (header, stream):
        _check_fits_in_memory(header, source)
        payload = _read_exactly(stream, header.nbytes,
                                f"{source} is truncated: header says {header.describe()}")
        if stream.read(1):
            raise DataError(f"{source} has trailing data after the {header.nbytes} bytes its "
                            "header describes")
        return header, payload


def _check_fits_in_memory(header: IdxHeader, source: str) -> None:
    """DataError unless the payload, and the native-order copy :meth:`IdxHeader.array` makes
    of multi-byte values, fit in the memory available."""
    copies = 1 if header.dtype.itemsize == 1 or header.dtype.isnative else 2
    check_fits_in_memory(source, copies * header.nbytes,
                         f"its header says {header.describe()}; reading it whole",
                         "softmaxreg.streaming.IdxSource")


def read_idx_rows(stream: BinaryIO, header: IdxHeader, rows: int, source: str) -> NDArray[Any]:
    """The next ``rows`` entries along the first axis: (rows, *dims[1:]), native byte order."""
    want = rows * math.prod(header.dims[1:]) * header.dtype.itemsize
    payload = _read_exactly(stream, want, f"{source} is truncated: expected {want} more bytes")
    return header.array(payload, rows)


@contextmanager
def open_idx(path: PathLike, source: str | None = None) -> Iterator[tuple[IdxHeader, BinaryIO]]:
    """(header, stream at the first value) of an IDX file, gunzipped if its first bytes are
    1f 8b, once the header is found to fit in the file; ``source`` names the file in messages.
    Read the values with :func:`read_idx_rows`."""
    source = source or str(path)
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot open {source}: {exc.strerror or exc}") from exc
    with file:
        size = os.fstat(file.fileno()).st_size
        compressed = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        if not compressed:
            yield _checked_header(file, source, size, compressed=False), file
            return
        with gzip.GzipFile(fileobj=file, mode="rb") as gz:
            stream = _GzipReader(gz, source)
            yield _checked_header(stream, source, size * DEFLATE_MAX_RATIO,
                                  compressed=True), stream


class _GzipReader:
    """Reads a gzip stream; damage found while reading (a bad CRC, a cut-off member) is a
    DataError naming this file, even where another file's reads surround it."""

    def __init__(self, stream: BinaryIO, source: str) -> None:
        self.stream, self.source = stream, source

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.source} is a corrupt or truncated gzip file ({exc})") from exc


def _checked_header(stream: BinaryIO, source: str, capacity: int, *,
                    compressed: bool) -> IdxHeader:
    """The header, checked against ``capacity``, the most bytes the file can hold."""
    header = _read_idx_header(stream, source)
    room = capacity - len(header.raw)
    if header.nbytes > room and compressed:
        raise DataError(
            f"{source} is truncated: header says {header.describe()}, more than a "
            f"{capacity // DEFLATE_MAX_RATIO}-byte gzip file can hold"
        )
    if header.nbytes > room:
        raise DataError(f"{source} is truncated: header says {header.describe()}, found {room}")
    if header.nbytes < room and not compressed:
        raise DataError(
            f"{source} has {room - header.nbytes} bytes of trailing data after the "
            f"{header.nbytes} bytes its header describes"
        )
    return header


def _read_idx_header(stream: BinaryIO, source: str) -> IdxHeader:
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
    return IdxHeader(dtype, dims, magic + dims_raw)


def _read_exactly(stream: BinaryIO, want: int, truncated: str) -> bytearray:
    """Read exactly ``want`` bytes in chunks, else DataError ``truncated + ', found n'``.

    Memory grows with what the stream actually holds, never with what a header claims, so
    a lying header or a decompression bomb cannot exhaust it.
    """
    payload = bytearray()
    while len(payload) < want:
        chunk = stream.read(min(_READ_CHUNK, want - len(payload)))
        if not chunk:
            raise DataError(f"{truncated}, found {len(payload)}")
        payload += chunk
    return payload


def find_idx_file(folder: PathLike, stem: str) -> Path | None:
    """The file ``stem`` in ``folder``, gzipped or not; also the 'train-images.idx3-ubyte'
    spelling some distributions use. None if there is none."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            candidate = Path(folder) / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def require_idx_file(folder: PathLike, stem: str) -> Path:
    """:func:`find_idx_file`, or DataError if there is no such file."""
    found = find_idx_file(folder, stem)
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
    if find_idx_file(folder, "t10k-images-idx3-ubyte") or find_idx_file(
        folder, "t10k-labels-idx1-ubyte"
    ):
        X_test, y_test, _ = _read_idx_split(folder, "t10k")
    return Dataset(X, y, X_test, y_test, name=folder.resolve().name,
                   pixels=X.dtype == np.uint8, image_shape=image_shape)


def _read_idx_split(folder: Path, prefix: str) -> tuple[NDArray[Any], NDArray[Any], Any]:
    """(X, y, image_shape) of one split: images (n, h, w) flattened to (n, h·w)."""
    images_path = require_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = require_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2:
        raise DataError(f"{images_path} holds a {images.ndim}-D array; expected images (n, h, w)")
    if len(images) == 0:
        raise DataError(f"{images_path} holds no images (its header says {images.shape})")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds a {labels.ndim}-D array; expected labels (n,)")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels")
    image_shape = tuple(images.shape[1:]) if images.ndim == 3 else None
    return images.reshape(len(images), -1), labels, image_shape
