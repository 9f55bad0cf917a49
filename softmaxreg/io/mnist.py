"""MNIST: its four IDX files from a local folder, the cache, or a download from mirrors, each
verified by the SHA-256 of its decompressed content.

A download is bounded in size and time (a mirror that sends too much, too slowly or nothing at
all is abandoned for the next), and only a verified file enters the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from numpy.typing import NDArray

from ..exceptions import DataError
from .dataset import Dataset, PathLike
from .idx import read_idx_bytes, require_idx_file

_log = logging.getLogger(__name__)

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


def load_mnist(data_dir: PathLike | None = None, *, cache_dir: PathLike | None = None,
               mirrors: Sequence[str] | str | None = None, progress: bool = True) -> Dataset:
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
        if not Path(folder).is_dir():
            raise DataError(f"MNIST folder {Path(folder)} does not exist")
        arrays = {f.stem: _read_verified(require_idx_file(folder, f.stem), f) for f in _MNIST_FILES}
    else:  # a mirror that fails once is abandoned for the remaining files
        cache, urls, failures = _mnist_cache(cache_dir), _mirror_urls(mirrors), {}
        with _cleaned_up(cache):
            arrays = {f.stem: _cached_or_downloaded(f, cache, urls, failures, progress)
                      for f in _MNIST_FILES}
    return Dataset(X=arrays["train-images-idx3-ubyte"].reshape(60000, 784),
                   y=arrays["train-labels-idx1-ubyte"],
                   X_test=arrays["t10k-images-idx3-ubyte"].reshape(10000, 784),
                   y_test=arrays["t10k-labels-idx1-ubyte"],
                   name="mnist", pixels=True, image_shape=(28, 28))


def mnist_folder(data_dir: PathLike | None = None, *, cache_dir: PathLike | None = None,
                 mirrors: Sequence[str] | str | None = None, progress: bool = True) -> Path:
    """The folder that holds MNIST's four IDX files, found as :func:`load_mnist` finds them:
    ``data_dir``, else ``SOFTMAXREG_DATA``, else the cache folder, into which whatever is
    missing is first downloaded and verified (what streaming reads from)."""
    folder = data_dir if data_dir is not None else os.environ.get("SOFTMAXREG_DATA") or None
    if folder is not None:
        if not Path(folder).is_dir():
            raise DataError(f"MNIST folder {Path(folder)} does not exist")
        return Path(folder)
    cache = _mnist_cache(cache_dir)
    if not all((cache / f"{f.stem}.gz").is_file() for f in _MNIST_FILES):
        load_mnist(cache_dir=cache_dir, mirrors=mirrors, progress=progress)
    return cache


@contextmanager
def _cleaned_up(cache: Path) -> Iterator[None]:
    """Remove the folders made for the cache (pooch makes them before it downloads) when
    nothing could be put in them: a failed download leaves no empty cache folder."""
    made = [folder for folder in (cache, *cache.parents) if not folder.exists()]
    try:
        yield
    except BaseException:
        for folder in made:  # the deepest first
            with contextlib.suppress(OSError):  # not empty, or already gone
                folder.rmdir()
        raise


def _read_verified(path: Path, spec: _MnistFile, source: str | None = None) -> NDArray[Any]:
    """Read an MNIST IDX file and check the SHA-256 of its decompressed content."""
    source = source or str(path)
    header, payload = read_idx_bytes(path, source)
    digest = hashlib.sha256(header.raw)
    digest.update(payload)
    if digest.hexdigest() != spec.sha256:
        raise DataError(
            f"{source} is not MNIST's {spec.stem}: the SHA-256 of its content is "
            f"{digest.hexdigest()}, expected {spec.sha256}"
        )
    return header.array(payload)


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


def _cached_or_downloaded(spec: _MnistFile, cache: Path, mirrors: list[str],
                          failures: dict[str, str], progress: bool) -> NDArray[Any]:
    """The file from the cache if it verifies (else it is deleted), or downloaded."""
    path = cache / f"{spec.stem}.gz"
    if path.exists():
        try:
            return _read_verified(path, spec)
        except DataError as exc:
            _log.warning("deleting a bad cached file and downloading it again: %s", exc)
            path.unlink()
    return _download(spec, path, mirrors, failures, progress)


def _download(spec: _MnistFile, path: Path, mirrors: list[str], failures: dict[str, str],
              progress: bool) -> NDArray[Any]:
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
    names = ", ".join(f"{f.stem}.gz" for f in _MNIST_FILES)
    raise DataError(
        f"could not download MNIST's {path.name} from any mirror:\n{reasons}\n"
        f"Without a connection, put MNIST's four files ({names}; plain or gzipped) in a folder "
        "and either name it with --data-dir FOLDER (data_dir= in Python), or set the "
        f"environment variable SOFTMAXREG_DATA=FOLDER, or copy the files into the cache "
        f"folder {path.parent}.")


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
    """A tqdm bar named after the file, drawn only when stderr is a terminal (a log file would
    get every frame); pooch sets its total from Content-Length."""
    from tqdm import tqdm

    # total=1, not None: pooch tests the bar's truth, which tqdm refuses when total is None.
    return tqdm(total=1, desc=name, unit="B", unit_scale=True, ncols=79, leave=True,
                disable=None)


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
